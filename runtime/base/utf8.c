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
int mgw_utf8_run(uint8_t st[3], const uint8_t *p, size_t n)
{
    unsigned need = st[0], lo = st[1], hi = st[2];
    size_t i = 0;
    while (i < n) {
        unsigned c = p[i++];
        if (need) {
            if (c < lo || c > hi) return -1;
            need--;
            lo = 0x80, hi = 0xBF;
        } else if (c < 0x80) {
            /* ASCII runs, eight bytes at a time */
            while (i + 8 <= n) {
                uint64_t v;
                memcpy(&v, p + i, 8);
                if (v & 0x8080808080808080ull) break;
                i += 8;
            }
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
