/* Cryptographic helpers (OpenSSL lives here and in tls.c). */
#ifndef MGW_CRYPTO_H
#define MGW_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

/* out = SHA-256(data). */
void mgw_sha256(const void *data, size_t n, uint8_t out[32]);
/* Decodes 64 hex digits into 32 bytes; returns 0 or -1. */
int mgw_hex32(const char *hex, uint8_t out[32]);

#endif
