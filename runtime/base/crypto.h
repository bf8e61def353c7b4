/* Cryptographic helpers (OpenSSL lives here and in tls.c). */
#ifndef MGW_CRYPTO_H
#define MGW_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

/* out = SHA-256(data). */
void mgw_sha256(const void *data, size_t n, uint8_t out[32]);
/* out = SHA-1(data) (the WebSocket handshake's digest; not for anything secret). */
void mgw_sha1(const void *data, size_t n, uint8_t out[20]);
/* Writes n bytes as base64 (url: the URL-safe alphabet, no padding) and a NUL into out,
 * which has room for 4 * ((n + 2) / 3) + 1 bytes; returns the length written. */
size_t mgw_base64(const void *data, size_t n, char *out, int url);
/* Writes n bytes as 2n lower-case hex digits and a NUL into out (2n + 1 bytes). */
void mgw_hex(const void *data, size_t n, char *out);
/* Decodes 64 hex digits into 32 bytes; returns 0 or -1. */
int mgw_hex32(const char *hex, uint8_t out[32]);
/* Fills out with n bytes from OpenSSL's CSPRNG; returns 0, or -1 when it failed. */
int mgw_random_bytes(void *out, size_t n);
/*
 * 1 when a and b (n bytes each) are equal, in time that depends only on n, so that
 * comparing secrets (or their digests) leaks nothing to a caller who measures it.
 */
int mgw_equal_ct(const void *a, const void *b, size_t n);

#endif
