/* UTF-8 validation (utf8.h). */
#include "base/utf8.h"

#include <string.h>

/*
 * UTF-8 validation that can stop anywhere and go on with the next bytes (RFC 3629
 * section 4): u8_need is the number of continuation bytes still expected, u8_lo..u8_hi
 * the range the next one must lie in. The narrower ranges after E0, ED, F0 and F4 are what
 * refuses overlong forms, surrogates and code points above U+10FFFF; C0, C1 and F5..FF
 * never start a sequence. Returns 0, or -1 at the first byte that cannot be UTF-8.
 */
/* How many bytes at p (of n) are ASCII, sixteen at a time while they are. */
static size_t ascii_run(const uint8_t *p, size_t n)
{
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        uint64_t a, b;
        memcpy(&a, p + i, 8);
        memcpy(&b, p + i + 8, 8);
        if ((a | b) & 0x8080808080808080ull) break;
    }
    while (i < n && p[i] < 0x80)
        i++;
    return i;
}

int mgw_utf8_run(uint8_t st[3], const uint8_t *p, size_t n)
{
    unsigned need = st[0], lo = st[1], hi = st[2];
    size_t i = need ? 0 : ascii_run(p, n);
    while (i < n) {
        unsigned c = p[i++];
        if (need) {
            if (c < lo || c > hi) return -1;
            need--;
            lo = 0x80, hi = 0xBF;
        } else if (c < 0x80) {
            i += ascii_run(p + i, n - i);
        } else if (c < 0xC2) {
            return -1;
        } else if (c < 0xE0) {
            need = 1, lo = 0x80, hi = 0xBF;
        } else if (c < 0xF0) {
            need = 2, lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
        } else if (c < 0xF5) {
            need = 3, lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
        } else {
            return -1;
        }
    }
    st[0] = (uint8_t)need, st[1] = (uint8_t)lo, st[2] = (uint8_t)hi;
    return 0;
}

int mgw_utf8_valid(const void *p, size_t n)
{
    uint8_t st[3] = {0, 0x80, 0xBF};
    return mgw_utf8_run(st, p, n) == 0 && st[0] == 0;
}

int mgw_utf8_text(const void *p, size_t n)
{
    return memchr(p, 0, n) == NULL && mgw_utf8_valid(p, n);
}

size_t mgw_utf8_put(unsigned cp, char out[4])
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | cp >> 6);
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | cp >> 12);
        out[1] = (char)(0x80 | (cp >> 6 & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | cp >> 18);
    out[1] = (char)(0x80 | (cp >> 12 & 0x3F));
    out[2] = (char)(0x80 | (cp >> 6 & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

int mgw_hex_digit(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}
