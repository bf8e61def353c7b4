/*
 * IP sets: IPv4 and IPv6 CIDR blocks as sorted, merged address ranges, looked up by
 * binary search (O(log n)) in C. An IPv4-mapped IPv6 address (::ffff:a.b.c.d) is looked
 * up as the IPv4 address. Used by the ip_set rule statement (conf/wafstmt.c).
 */
#ifndef MGW_IPSET_H
#define MGW_IPSET_H

#include <stddef.h>
#include <stdint.h>

#include "base/mem.h"

typedef struct mgw_ipset_s mgw_ipset_t;

/* An IPv6 address as a number (GCC and Clang on 64-bit targets). */
typedef unsigned __int128 mgw_u128_t;

/* Inclusive address ranges; arrays of them are sorted by lo and disjoint. */
typedef struct {
    uint32_t lo, hi;
} mgw_ip4range_t;

typedef struct {
    mgw_u128_t lo, hi;
} mgw_ip6range_t;

/*
 * Parses a text address (n bytes, no NUL needed): returns 4 with *v4 set (an IPv4-mapped
 * IPv6 address, ::ffff:a.b.c.d, is returned as its IPv4 address), 6 with *v6 set, or 0
 * when it is not an address. Also used by the country database (base/geodb.h).
 */
int mgw_ipset_parse_addr(const char *p, size_t n, uint32_t *v4, mgw_u128_t *v6);

/* The index of the range of r[0..n) (sorted, disjoint) that holds a, or -1: one binary
 * search. */
ptrdiff_t mgw_ipset_find4(const mgw_ip4range_t *r, size_t n, uint32_t a);
ptrdiff_t mgw_ipset_find6(const mgw_ip6range_t *r, size_t n, mgw_u128_t a);

mgw_ipset_t *mgw_ipset_new(void);
void mgw_ipset_free(mgw_ipset_t *s);

/*
 * Adds one block ("10.0.0.0/8", "2001:db8::/32", or an address alone: /32 or /128). A
 * block whose address has bits set past its prefix is refused, as AWS does. Returns 0,
 * or -1 with the reason in err.
 */
int mgw_ipset_add(mgw_ipset_t *s, const char *cidr, size_t n, char *err, size_t errlen);

/*
 * Adds the blocks of a file: one per line, blank lines and '#' comments (whole lines or
 * after a block) skipped. Returns 0, or -1 with "path:line: reason" (or why the file
 * cannot be read) in err.
 */
int mgw_ipset_add_file(mgw_ipset_t *s, const char *path, char *err, size_t errlen);

/* Sorts and merges the ranges; call once after the last add, before any lookup. */
void mgw_ipset_seal(mgw_ipset_t *s);

/* Number of merged ranges (v4 + v6), for tests and logs. */
size_t mgw_ipset_ranges(const mgw_ipset_t *s);

/* 1 when the address (text, n bytes) is in the set, 0 when not, -1 when it is not an
 * address. */
int mgw_ipset_contains(const mgw_ipset_t *s, const char *addr, size_t n);

#endif
