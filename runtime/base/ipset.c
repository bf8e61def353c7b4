/*
 * IP sets (ipset.h). Each family is an array of [lo, hi] ranges; seal sorts them by lo
 * and merges overlapping and adjacent ones, so a lookup is one binary search for the
 * last range whose lo <= the address. IPv6 addresses are unsigned __int128 (GCC and
 * Clang on 64-bit targets).
 */
#include "base/ipset.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef mgw_u128_t u128;
typedef mgw_ip4range_t r4_t;
typedef mgw_ip6range_t r6_t;

struct mgw_ipset_s {
    r4_t *v4;
    size_t n4, cap4;
    r6_t *v6;
    size_t n6, cap6;
};

mgw_ipset_t *mgw_ipset_new(void)
{
    return mgw_calloc(1, sizeof(mgw_ipset_t));
}

void mgw_ipset_free(mgw_ipset_t *s)
{
    if (s == NULL) return;
    free(s->v4);
    free(s->v6);
    free(s);
}

static u128 be128(const unsigned char b[16])
{
    u128 v = 0;
    for (int i = 0; i < 16; i++)
        v = (v << 8) | b[i];
    return v;
}

int mgw_ipset_parse_addr(const char *p, size_t n, uint32_t *v4, u128 *v6)
{
    char buf[INET6_ADDRSTRLEN + 1];
    unsigned char b[16];
    if (n == 0 || n >= sizeof(buf)) return 0;
    memcpy(buf, p, n);
    buf[n] = 0;
    if (inet_pton(AF_INET, buf, b) == 1) {
        *v4 = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
        return 4;
    }
    if (inet_pton(AF_INET6, buf, b) == 1) {
        static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        if (memcmp(b, mapped, 12) == 0) {
            *v4 = (uint32_t)b[12] << 24 | (uint32_t)b[13] << 16 | (uint32_t)b[14] << 8 | b[15];
            return 4;
        }
        *v6 = be128(b);
        return 6;
    }
    return 0;
}

int mgw_ipset_add(mgw_ipset_t *s, const char *cidr, size_t n, char *err, size_t errlen)
{
    const char *slash = memchr(cidr, '/', n);
    size_t an = slash ? (size_t)(slash - cidr) : n;
    uint32_t a4 = 0;
    u128 a6 = 0;
    int fam = mgw_ipset_parse_addr(cidr, an, &a4, &a6);
    if (fam == 0) {
        snprintf(err, errlen, "\"%.*s\" is not an IPv4 or IPv6 address", (int)an, cidr);
        return -1;
    }
    int mapped = fam == 4 && memchr(cidr, ':', an) != NULL;
    int max = fam == 4 && !mapped ? 32 : 128;
    int len = max;
    if (slash) {
        const char *q = slash + 1;
        size_t qn = n - an - 1;
        if (qn == 0 || qn > 3) goto bad_len;
        len = 0;
        for (size_t i = 0; i < qn; i++) {
            if (q[i] < '0' || q[i] > '9') goto bad_len;
            len = len * 10 + (q[i] - '0');
        }
        if (len > max) goto bad_len;
    }
    int plen = len;
    if (mapped) {
        /* ::ffff:a.b.c.d/len is the IPv4 block of len - 96 */
        if (len < 96) {
            snprintf(err, errlen, "\"%.*s\": a v4-mapped block needs a prefix of 96 or more",
                     (int)n, cidr);
            return -1;
        }
        len -= 96;
    }
    if (fam == 4) {
        uint32_t mask = len == 0 ? 0 : ~(uint32_t)0 << (32 - len);
        if (a4 & ~mask) goto host_bits;
        if (s->n4 == s->cap4) {
            s->cap4 = s->cap4 ? 2 * s->cap4 : 16;
            s->v4 = mgw_realloc(s->v4, s->cap4 * sizeof(r4_t));
        }
        s->v4[s->n4++] = (r4_t){a4, a4 | ~mask};
    } else {
        u128 mask = len == 0 ? 0 : ~(u128)0 << (128 - len);
        if (a6 & ~mask) goto host_bits;
        if (s->n6 == s->cap6) {
            s->cap6 = s->cap6 ? 2 * s->cap6 : 16;
            s->v6 = mgw_realloc(s->v6, s->cap6 * sizeof(r6_t));
        }
        s->v6[s->n6++] = (r6_t){a6, a6 | ~mask};
    }
    return 0;
bad_len:
    snprintf(err, errlen, "\"%.*s\": the prefix length must be 0 to %d", (int)n, cidr, max);
    return -1;
host_bits:
    snprintf(err, errlen,
             "\"%.*s\" has bits set after its /%d prefix (the block's address is "
             "its first one)",
             (int)n, cidr, plen);
    return -1;
}

int mgw_ipset_add_file(mgw_ipset_t *s, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        snprintf(err, errlen, "cannot read \"%s\": %s", path, strerror(errno));
        return -1;
    }
    char line[512], why[256];
    int lineno = 0, rc = 0;
    while (fgets(line, sizeof(line), f)) {
        lineno++;
        char *hash = strchr(line, '#');
        if (hash) *hash = 0;
        char *p = line;
        while (*p == ' ' || *p == '\t')
            p++;
        size_t n = strcspn(p, " \t\r\n");
        char *rest = p + n;
        if (n == 0) continue;
        while (*rest == ' ' || *rest == '\t' || *rest == '\r' || *rest == '\n')
            rest++;
        if (*rest) {
            snprintf(err, errlen, "%s:%d: one block per line (\"%.*s\" is followed by \"%.40s\")",
                     path, lineno, (int)n, p, rest);
            rc = -1;
            break;
        }
        if (mgw_ipset_add(s, p, n, why, sizeof(why)) != 0) {
            snprintf(err, errlen, "%s:%d: %s", path, lineno, why);
            rc = -1;
            break;
        }
    }
    fclose(f);
    return rc;
}

static int cmp4(const void *a, const void *b)
{
    uint32_t x = ((const r4_t *)a)->lo, y = ((const r4_t *)b)->lo;
    return x < y ? -1 : x > y;
}

static int cmp6(const void *a, const void *b)
{
    u128 x = ((const r6_t *)a)->lo, y = ((const r6_t *)b)->lo;
    return x < y ? -1 : x > y;
}

void mgw_ipset_seal(mgw_ipset_t *s)
{
    size_t o = 0;
    if (s->n4) qsort(s->v4, s->n4, sizeof(r4_t), cmp4); /* v4 is NULL when empty */
    for (size_t i = 0; i < s->n4; i++) {
        if (o > 0 && (s->v4[o - 1].hi == UINT32_MAX || s->v4[i].lo <= s->v4[o - 1].hi + 1)) {
            if (s->v4[i].hi > s->v4[o - 1].hi) s->v4[o - 1].hi = s->v4[i].hi;
        } else {
            s->v4[o++] = s->v4[i];
        }
    }
    s->n4 = o;
    o = 0;
    if (s->n6) qsort(s->v6, s->n6, sizeof(r6_t), cmp6);
    for (size_t i = 0; i < s->n6; i++) {
        if (o > 0 && (s->v6[o - 1].hi == ~(u128)0 || s->v6[i].lo <= s->v6[o - 1].hi + 1)) {
            if (s->v6[i].hi > s->v6[o - 1].hi) s->v6[o - 1].hi = s->v6[i].hi;
        } else {
            s->v6[o++] = s->v6[i];
        }
    }
    s->n6 = o;
}

size_t mgw_ipset_ranges(const mgw_ipset_t *s)
{
    return s->n4 + s->n6;
}

/* The range holding a: the last range with lo <= a, if a <= its hi; else -1. One body for
 * both address widths. */
#define FIND_RANGE(r, n, a)                                                                        \
    do {                                                                                           \
        size_t lo_ = 0, hi_ = (n);                                                                 \
        while (lo_ < hi_) {                                                                        \
            size_t mid_ = lo_ + (hi_ - lo_) / 2;                                                   \
            if ((r)[mid_].lo <= (a))                                                               \
                lo_ = mid_ + 1;                                                                    \
            else                                                                                   \
                hi_ = mid_;                                                                        \
        }                                                                                          \
        return lo_ > 0 && (a) <= (r)[lo_ - 1].hi ? (ptrdiff_t)(lo_ - 1) : -1;                      \
    } while (0)

ptrdiff_t mgw_ipset_find4(const r4_t *r, size_t n, uint32_t a)
{
    FIND_RANGE(r, n, a);
}

ptrdiff_t mgw_ipset_find6(const r6_t *r, size_t n, u128 a)
{
    FIND_RANGE(r, n, a);
}

int mgw_ipset_contains(const mgw_ipset_t *s, const char *addr, size_t n)
{
    uint32_t a4 = 0;
    u128 a6 = 0;
    int fam = mgw_ipset_parse_addr(addr, n, &a4, &a6);
    if (fam == 0) return -1;
    return (fam == 4 ? mgw_ipset_find4(s->v4, s->n4, a4) : mgw_ipset_find6(s->v6, s->n6, a6)) >= 0;
}
