/*
 * Country databases (geodb.h). A file is read whole and parsed in place: the number of
 * lines bounds the number of ranges, so each family's arrays are allocated once. The
 * ranges are structure-of-arrays (base/ipset.h's range type, then a 2-byte code per
 * range), so the binary search walks 8 (IPv4) or 32 (IPv6) bytes per step; Debian's
 * files take about 13 MB. Addresses are parsed and searched by base/ipset.c's functions.
 */
#include "base/geodb.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/ipset.h"
#include "base/mem.h"

/* What identifies a file's contents without reading it. */
typedef struct {
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
} file_id_t;

struct mgw_geodb_s {
    mgw_ip4range_t *v4;
    uint16_t *c4;
    size_t n4;
    mgw_ip6range_t *v6;
    uint16_t *c6;
    size_t n6;
    /* the registry's */
    char *path4, *path6;
    file_id_t id4, id6;
    int refs;
    mgw_geodb_t *next;
};

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static mgw_geodb_t *registry;

static file_id_t id_of(const struct stat *st)
{
    return (file_id_t){st->st_dev, st->st_ino, st->st_size, st->st_mtim};
}

static int same_id(const file_id_t *a, const file_id_t *b)
{
    return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
           a->mtime.tv_sec == b->mtime.tv_sec && a->mtime.tv_nsec == b->mtime.tv_nsec;
}

/* Reads the whole file (NUL-terminated) into *buf; its identity from the descriptor read. */
static int read_all(const char *path, char **buf, size_t *len, file_id_t *id, char *err,
                    size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) goto fail;
    *id = id_of(&st);
    size_t cap = (size_t)st.st_size + 1, n = 0;
    if (cap < 4096) cap = 4096;
    char *p = mgw_malloc(cap);
    for (;;) {
        if (n + 1 == cap) p = mgw_realloc(p, cap *= 2);
        ssize_t r = read(fd, p + n, cap - n - 1);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            free(p);
            goto fail;
        }
        if (r == 0) break;
        n += (size_t)r;
    }
    close(fd);
    p[n] = '\0';
    *buf = p;
    *len = n;
    return 0;
fail:
    snprintf(err, errlen, "cannot read \"%s\": %s", path, strerror(errno));
    if (fd >= 0) close(fd);
    return -1;
}

static size_t count_lines(const char *p, size_t n)
{
    size_t lines = 1;
    for (const char *e = p + n; (p = memchr(p, '\n', (size_t)(e - p))) != NULL; p++)
        lines++;
    return lines;
}

/* A decimal integer 0..4294967295 at p (before e): the byte after it, or NULL. */
static const char *parse_u32(const char *p, const char *e, uint32_t *out)
{
    uint64_t v = 0;
    const char *s = p;
    while (p < e && *p >= '0' && *p <= '9' && p - s < 10)
        v = v * 10 + (uint64_t)(*p++ - '0');
    if (p == s || v > UINT32_MAX || (p < e && *p >= '0' && *p <= '9')) return NULL;
    *out = (uint32_t)v;
    return p;
}

/* The code of "CC" (2 bytes): 0..675, -1 for "??", -2 when it is not a code. */
static int parse_code(const char *p, size_t n)
{
    if (n == 2 && p[0] == '?' && p[1] == '?') return -1;
    if (n != 2 || p[0] < 'A' || p[0] > 'Z' || p[1] < 'A' || p[1] > 'Z') return -2;
    return MGW_GEO_CODE(p[0], p[1]);
}

/* One file being parsed: its lines, one at a time. */
typedef struct {
    const char *path;
    char *p, *end;
    int line, prev_line;
    char *err;
    size_t errlen;
} parse_t;

/* The next line with a range, trimmed, in [*s, *e): 0, or 1 at the end of the file. */
static int next_line(parse_t *ps, const char **s, const char **e)
{
    while (ps->p < ps->end) {
        char *nl = memchr(ps->p, '\n', (size_t)(ps->end - ps->p));
        const char *a = ps->p, *b = nl ? nl : ps->end;
        ps->p = nl ? nl + 1 : ps->end;
        ps->line++;
        while (a < b && (*a == ' ' || *a == '\t'))
            a++;
        while (b > a && (b[-1] == ' ' || b[-1] == '\t' || b[-1] == '\r'))
            b--;
        if (a == b || *a == '#') continue;
        *s = a;
        *e = b;
        return 0;
    }
    return 1;
}

static int line_error(parse_t *ps, const char *why, const char *s, const char *e)
{
    int n = (int)(e - s);
    snprintf(ps->err, ps->errlen, "%s:%d: %s, got \"%.*s%s\"", ps->path, ps->line, why,
             n > 80 ? 80 : n, s, n > 80 ? "..." : "");
    return -1;
}

static int code_error(parse_t *ps, const char *c, const char *e)
{
    snprintf(ps->err, ps->errlen,
             "%s:%d: \"%.*s\" is not a country code (two letters A-Z, or ?? for unknown)", ps->path,
             ps->line, (int)(e - c > 8 ? 8 : e - c), c);
    return -1;
}

static int order_error(parse_t *ps)
{
    snprintf(ps->err, ps->errlen,
             "%s:%d: the range starts at or before the end of the range on line %d (ranges "
             "must be in increasing order and must not overlap)",
             ps->path, ps->line, ps->prev_line);
    return -1;
}

static int parse_v4(mgw_geodb_t *db, parse_t *ps, size_t cap)
{
    static const char shape[] =
        "expected FIRST,LAST,CC (FIRST and LAST: integers 0 to 4294967295, CC: a country code)";
    db->v4 = mgw_malloc(sizeof(*db->v4) * cap);
    db->c4 = mgw_malloc(sizeof(*db->c4) * cap);
    const char *s, *e;
    uint32_t prev_hi = 0;
    while (next_line(ps, &s, &e) == 0) {
        uint32_t lo, hi;
        const char *q = parse_u32(s, e, &lo);
        if (q == NULL || q == e || *q != ',') return line_error(ps, shape, s, e);
        q = parse_u32(q + 1, e, &hi);
        if (q == NULL || q == e || *q != ',') return line_error(ps, shape, s, e);
        int code = parse_code(q + 1, (size_t)(e - q - 1));
        if (code == -2) return code_error(ps, q + 1, e);
        if (hi < lo) return line_error(ps, "the range ends before it starts", s, e);
        if (ps->prev_line && lo <= prev_hi) return order_error(ps);
        prev_hi = hi;
        ps->prev_line = ps->line;
        if (code < 0) continue; /* "??": no country */
        db->v4[db->n4] = (mgw_ip4range_t){lo, hi};
        db->c4[db->n4++] = (uint16_t)code;
    }
    return 0;
}

/* An IPv6 address of a line's field [s, e); an IPv4-mapped one is not. */
static int parse_v6_addr(parse_t *ps, const char *s, const char *e, mgw_u128_t *out)
{
    uint32_t v4;
    if (mgw_ipset_parse_addr(s, (size_t)(e - s), &v4, out) == 6) return 0;
    snprintf(ps->err, ps->errlen, "%s:%d: \"%.*s\" is not an IPv6 address", ps->path, ps->line,
             (int)(e - s > 60 ? 60 : e - s), s);
    return -1;
}

static int parse_v6(mgw_geodb_t *db, parse_t *ps, size_t cap)
{
    static const char shape[] = "expected FIRST,LAST,CC (FIRST and LAST: IPv6 addresses, CC: a "
                                "country code)";
    db->v6 = mgw_malloc(sizeof(*db->v6) * cap);
    db->c6 = mgw_malloc(sizeof(*db->c6) * cap);
    const char *s, *e;
    mgw_u128_t prev_hi = 0;
    while (next_line(ps, &s, &e) == 0) {
        const char *c1 = memchr(s, ',', (size_t)(e - s));
        const char *c2 = c1 ? memchr(c1 + 1, ',', (size_t)(e - c1 - 1)) : NULL;
        if (c2 == NULL) return line_error(ps, shape, s, e);
        mgw_u128_t lo, hi;
        if (parse_v6_addr(ps, s, c1, &lo) != 0 || parse_v6_addr(ps, c1 + 1, c2, &hi) != 0)
            return -1;
        int code = parse_code(c2 + 1, (size_t)(e - c2 - 1));
        if (code == -2) return code_error(ps, c2 + 1, e);
        if (hi < lo) return line_error(ps, "the range ends before it starts", s, e);
        if (ps->prev_line && lo <= prev_hi) return order_error(ps);
        prev_hi = hi;
        ps->prev_line = ps->line;
        if (code < 0) continue;
        db->v6[db->n6] = (mgw_ip6range_t){lo, hi};
        db->c6[db->n6++] = (uint16_t)code;
    }
    return 0;
}

static void db_free(mgw_geodb_t *db)
{
    free(db->v4);
    free(db->c4);
    free(db->v6);
    free(db->c6);
    free(db->path4);
    free(db->path6);
    free(db);
}

/* Reads and parses the file of one family (4 or 6) into db. */
static int load_file(mgw_geodb_t *db, int fam, const char *path, mgw_geodb_info_t *info, char *err,
                     size_t errlen)
{
    char *buf;
    size_t len;
    info->file = fam;
    if (read_all(path, &buf, &len, fam == 4 ? &db->id4 : &db->id6, err, errlen) != 0) {
        info->unreadable = 1;
        return -1;
    }
    parse_t ps = {.path = path, .p = buf, .end = buf + len, .err = err, .errlen = errlen};
    size_t cap = count_lines(buf, len);
    int rc = fam == 4 ? parse_v4(db, &ps, cap) : parse_v6(db, &ps, cap);
    free(buf);
    return rc;
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

mgw_geodb_t *mgw_geodb_get(const char *path4, const char *path6, mgw_geodb_info_t *info, char *err,
                           size_t errlen)
{
    *info = (mgw_geodb_info_t){0};
    struct stat s4, s6;
    const char *bad = stat(path4, &s4) != 0 ? path4 : stat(path6, &s6) != 0 ? path6 : NULL;
    if (bad) {
        info->file = bad == path4 ? 4 : 6;
        info->unreadable = 1;
        snprintf(err, errlen, "cannot read \"%s\": %s", bad, strerror(errno));
        return NULL;
    }
    file_id_t id4 = id_of(&s4), id6 = id_of(&s6);
    pthread_mutex_lock(&registry_lock);
    mgw_geodb_t *db = registry;
    while (db && !(strcmp(db->path4, path4) == 0 && strcmp(db->path6, path6) == 0 &&
                   same_id(&db->id4, &id4) && same_id(&db->id6, &id6)))
        db = db->next;
    if (db) db->refs++;
    pthread_mutex_unlock(&registry_lock);
    if (db) {
        *info = (mgw_geodb_info_t){.load_ms = -1, .n4 = db->n4, .n6 = db->n6};
        return db;
    }
    /* Loaded without the lock: two threads loading the same files would each keep their
     * own copy, which only costs memory (and only the main thread loads). */
    uint64_t t0 = now_ms();
    db = mgw_calloc(1, sizeof(*db));
    db->path4 = mgw_strdup(path4);
    db->path6 = mgw_strdup(path6);
    if (load_file(db, 4, path4, info, err, errlen) != 0 ||
        load_file(db, 6, path6, info, err, errlen) != 0) {
        db_free(db);
        return NULL;
    }
    db->v4 = mgw_realloc(db->v4, sizeof(*db->v4) * (db->n4 ? db->n4 : 1));
    db->c4 = mgw_realloc(db->c4, sizeof(*db->c4) * (db->n4 ? db->n4 : 1));
    db->v6 = mgw_realloc(db->v6, sizeof(*db->v6) * (db->n6 ? db->n6 : 1));
    db->c6 = mgw_realloc(db->c6, sizeof(*db->c6) * (db->n6 ? db->n6 : 1));
    db->refs = 1;
    pthread_mutex_lock(&registry_lock);
    db->next = registry;
    registry = db;
    pthread_mutex_unlock(&registry_lock);
    *info = (mgw_geodb_info_t){.load_ms = (int)(now_ms() - t0), .n4 = db->n4, .n6 = db->n6};
    return db;
}

void mgw_geodb_release(mgw_geodb_t *db)
{
    if (db == NULL) return;
    pthread_mutex_lock(&registry_lock);
    int last = --db->refs == 0;
    if (last) {
        mgw_geodb_t **pp = &registry;
        while (*pp != db)
            pp = &(*pp)->next;
        *pp = db->next;
    }
    pthread_mutex_unlock(&registry_lock);
    if (last) db_free(db);
}

int mgw_geodb_lookup(const mgw_geodb_t *db, const char *addr, size_t n)
{
    uint32_t a4 = 0;
    mgw_u128_t a6 = 0;
    ptrdiff_t i;
    switch (mgw_ipset_parse_addr(addr, n, &a4, &a6)) {
    case 4:
        i = mgw_ipset_find4(db->v4, db->n4, a4);
        return i < 0 ? MGW_GEO_UNKNOWN : db->c4[i];
    case 6:
        i = mgw_ipset_find6(db->v6, db->n6, a6);
        return i < 0 ? MGW_GEO_UNKNOWN : db->c6[i];
    default:
        return MGW_GEO_NOT_ADDRESS;
    }
}
