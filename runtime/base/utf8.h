/* UTF-8 validation (RFC 3629): whole buffers, or a stream fed in pieces. */
#ifndef MGW_UTF8_H
#define MGW_UTF8_H

#include <stddef.h>
#include <stdint.h>

/*
 * Validates n more bytes of a stream whose state is st (start: {0, 0x80, 0xBF}).
 * Returns 0 (the stream is UTF-8 so far; st[0] != 0 while a sequence is unfinished),
 * or -1 at the first byte that cannot be UTF-8.
 */
int mgw_utf8_run(uint8_t st[3], const uint8_t *p, size_t n);
/* 1 when n bytes at p are valid UTF-8 (no overlong forms, no surrogates, <= U+10FFFF). */
int mgw_utf8_valid(const void *p, size_t n);
/* 1 when n bytes at p are text a JSON event carries as is: valid UTF-8 without NUL. */
int mgw_utf8_text(const void *p, size_t n);
/* Writes code point cp (<= U+10FFFF, not a surrogate) as UTF-8 into out; returns 1..4. */
size_t mgw_utf8_put(unsigned cp, char out[4]);
/* The value of hex digit c (0-9, a-f, A-F), or -1 (for \u escapes and %XX). */
int mgw_hex_digit(int c);

#endif
