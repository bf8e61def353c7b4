/*
 * Country databases (README "geo_match"): the IPv4 and IPv6 files of Tor's geoip format
 * (Debian's tor-geoipdb, /usr/share/tor/geoip and geoip6, made from the IPFire Location
 * database by Tor's geoip-db-tool) loaded into sorted range arrays with a country code per
 * range, looked up by address in O(log n). Used by the geo_match rule statement
 * (conf/wafstmt.c) and the WAF log's httpRequest.country (lua/waflog.c).
 *
 * The format, one range per line ('#' lines and empty lines skipped):
 *   IPv4: FIRST,LAST,CC with FIRST and LAST integers (16777216,16777471,AU)
 *   IPv6: FIRST,LAST,CC with FIRST and LAST IPv6 addresses (2001:2::,2001:2:0:ffff:...,JP)
 * CC is two letters A-Z, or "??" (no country: the range is left out). Ranges are
 * inclusive, in increasing order and disjoint, as the tool writes them.
 *
 * Databases are shared: mgw_geodb_get returns the one already loaded from the same files
 * (path, device, inode, size and modification time), so that a reload that keeps the
 * files does not parse them again; the last release frees it.
 */
#ifndef MGW_GEODB_H
#define MGW_GEODB_H

#include <stddef.h>

typedef struct mgw_geodb_s mgw_geodb_t;

/* Country codes are numbers 0..675: (first letter - 'A') * 26 + (second letter - 'A'). */
#define MGW_GEO_NCODES 676
#define MGW_GEO_CODE(a, b) (((a) - 'A') * 26 + ((b) - 'A'))

/* The two letters of code c (0..675) in out, NUL-terminated. */
static inline void mgw_geo_code_text(int c, char out[3])
{
    out[0] = (char)('A' + c / 26);
    out[1] = (char)('A' + c % 26);
    out[2] = '\0';
}

/* What mgw_geodb_get says besides the database. */
typedef struct {
    int file;       /* on an error: 4 (path4) or 6 (path6), the file the error is about */
    int unreadable; /* on an error: the file could not be opened or read (errno's reason) */
    int load_ms;    /* on success: milliseconds the files took to load, -1 when shared */
    size_t n4, n6;  /* on success: ranges with a country */
} mgw_geodb_info_t;

/*
 * The database of the IPv4 file path4 and the IPv6 file path6, with a reference for the
 * caller: the one already loaded from the same files, else loaded now (on the calling
 * thread: about 100 ms for Debian's files; the configuration loader calls it on the main
 * thread, never a worker's). Returns NULL with the reason in err ("PATH:LINE: reason", or
 * "cannot read \"PATH\": reason") and info->file set. Safe from any thread.
 */
mgw_geodb_t *mgw_geodb_get(const char *path4, const char *path6, mgw_geodb_info_t *info, char *err,
                           size_t errlen);

/* Drops a reference of mgw_geodb_get; the last one frees the database. Any thread. */
void mgw_geodb_release(mgw_geodb_t *db);

/* The country code (0..675) of the text address addr (n bytes), MGW_GEO_UNKNOWN when no
 * country is known (private and reserved blocks, ranges marked "??"), or
 * MGW_GEO_NOT_ADDRESS. An IPv4-mapped IPv6 address is looked up as IPv4. Read-only: any
 * number of threads at once. */
#define MGW_GEO_UNKNOWN (-1)
#define MGW_GEO_NOT_ADDRESS (-2)
int mgw_geodb_lookup(const mgw_geodb_t *db, const char *addr, size_t n);

#endif
