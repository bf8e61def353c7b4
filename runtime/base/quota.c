#include "base/quota.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/err.h"
#include "base/log.h"
#include "base/mem.h"

#define COUNT_BITS 40
#define COUNT_MASK ((1ull << COUNT_BITS) - 1)
#define MAX_SLOTS 65536

/* Why a slot is dirty: changed since the file last had it, since Redis last had it. */
#define DIRTY_WAL 1
#define DIRTY_SYNC 2
/* others' value that matches no period */
#define NO_OTHERS UINT64_MAX

/* state = period index << 40 | count; a new period starts counting from zero. others:
 * the same for what the other nodes of a cluster counted. */
struct mgw_quota_s {
    _Atomic uint64_t state;
    _Atomic uint64_t others;
    _Atomic int dirty;    /* DIRTY_* bits */
    int kind;             /* MGW_QUOTA_*, -1: unknown */
    int64_t first_period; /* the period the slot was first used in (-1: not yet) */
    char *key;
};

typedef struct {
    char *key;
    int64_t period, first;
    uint64_t count;
} record_t;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER; /* slot creation only */
static mgw_quota_t *slots[MAX_SLOTS];
static int nslots;
static record_t *replayed;
static int nreplayed;
static char *wal_path, *wal_dir;
static int wal_fd = -1;
static size_t wal_bytes; /* appended since the last compaction */

#define COMPACT_BYTES (4u << 20)

int64_t mgw_quota_period(int period, time_t t)
{
    int64_t days = (int64_t)(t >= 0 ? t / 86400 : (t - 86399) / 86400);
    if (period == MGW_QUOTA_DAY) return days;
    if (period == MGW_QUOTA_WEEK) { /* 1970-01-01 was a Thursday; floor division */
        int64_t d = days + 3;
        return d >= 0 ? d / 7 : (d - 6) / 7;
    }
    struct tm tm;
    gmtime_r(&t, &tm);
    return (int64_t)(tm.tm_year + 1900 - 1970) * 12 + tm.tm_mon;
}

time_t mgw_quota_period_end(int period, int64_t idx)
{
    if (period == MGW_QUOTA_DAY) return (time_t)((idx + 1) * 86400);
    if (period == MGW_QUOTA_WEEK) return (time_t)(((idx + 1) * 7 - 3) * 86400);
    int64_t m = idx + 1;
    struct tm tm = {0};
    tm.tm_year = (int)(1970 + m / 12 - 1900);
    tm.tm_mon = (int)(m % 12);
    tm.tm_mday = 1;
    return timegm(&tm);
}

/* FNV-1a over a record's text: enough to spot a torn or corrupted line. */
static uint32_t checksum(const char *s, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 16777619u;
    }
    return h;
}

static int format_record(char *out, size_t cap, const char *key, int64_t period, uint64_t count,
                         int64_t first)
{
    int n = snprintf(out, cap, "%s\t%lld\t%llu\t%lld", key, (long long)period,
                     (unsigned long long)count, (long long)first);
    if (n < 0 || (size_t)n + 12 >= cap) return -1;
    n += snprintf(out + n, cap - (size_t)n, "\t%08x\n", checksum(out, (size_t)n));
    return n;
}

static record_t *find_record(const char *key)
{
    for (int i = nreplayed - 1; i >= 0; i--)
        if (strcmp(replayed[i].key, key) == 0) return &replayed[i];
    return NULL;
}

static void replay(FILE *f, const char *path)
{
    char line[1024];
    int lineno = 0, bad = 0;
    while (fgets(line, sizeof(line), f)) {
        lineno++;
        char *tab = strrchr(line, '\t');
        char key[512];
        long long period, first;
        unsigned long long count;
        unsigned sum;
        if (!tab || sscanf(tab + 1, "%x", &sum) != 1 ||
            checksum(line, (size_t)(tab - line)) != sum ||
            sscanf(line, "%511[^\t]\t%lld\t%llu\t%lld", key, &period, &count, &first) != 4) {
            if (bad++ < 5) mgw_log_error("%s:%d: corrupt quota record skipped", path, lineno);
            continue;
        }
        record_t *r = find_record(key);
        if (r == NULL) {
            replayed = mgw_realloc(replayed, sizeof(*replayed) * (size_t)(nreplayed + 1));
            r = &replayed[nreplayed++];
            r->key = mgw_strdup(key);
        }
        r->period = period;
        r->count = count;
        r->first = first;
    }
    if (bad > 5) mgw_log_error("%s: %d corrupt quota records skipped in all", path, bad);
}

/* Rewrites the file with one record per key, atomically (temp file + rename). */
static int compact(const char *dir)
{
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s/quotas.wal.tmp", dir);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return -1;
    for (int i = 0; i < nreplayed; i++) {
        char line[1024];
        int n = format_record(line, sizeof(line), replayed[i].key, replayed[i].period,
                              replayed[i].count, replayed[i].first);
        if (n > 0 && write(fd, line, (size_t)n) != n) {
            close(fd);
            return -1;
        }
    }
    fsync(fd);
    close(fd);
    return rename(tmp, wal_path);
}

int mgw_quota_open(const char *dir, mgw_buf_t *err)
{
    if (wal_path) return 0;
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        mgw_buf_printf(err, "cannot create \"%s\": %s", dir, strerror(errno));
        return MGW_EIO;
    }
    size_t n = strlen(dir) + 16;
    wal_dir = mgw_strdup(dir);
    wal_path = mgw_malloc(n);
    snprintf(wal_path, n, "%s/quotas.wal", dir);
    FILE *f = fopen(wal_path, "r");
    if (f) {
        replay(f, wal_path);
        fclose(f);
    }
    if (compact(dir) != 0) mgw_log_error("%s: cannot rewrite: %s", wal_path, strerror(errno));
    wal_fd = open(wal_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (wal_fd < 0) {
        mgw_buf_printf(err, "cannot open \"%s\": %s", wal_path, strerror(errno));
        return MGW_EIO;
    }
    return 0;
}

mgw_quota_t *mgw_quota_slot(const char *key)
{
    pthread_mutex_lock(&lock);
    for (int i = 0; i < nslots; i++) {
        if (strcmp(slots[i]->key, key) == 0) {
            pthread_mutex_unlock(&lock);
            return slots[i];
        }
    }
    if (nslots == MAX_SLOTS) {
        pthread_mutex_unlock(&lock);
        return NULL;
    }
    /* a cache line of its own: state, others and dirty are read and written together */
    mgw_quota_t *q = aligned_alloc(64, (sizeof(*q) + 63) / 64 * 64);
    if (q == NULL) {
        pthread_mutex_unlock(&lock);
        return NULL;
    }
    memset(q, 0, sizeof(*q));
    q->key = mgw_strdup(key);
    q->first_period = -1;
    q->kind = -1;
    atomic_init(&q->others, NO_OTHERS);
    record_t *r = find_record(key);
    if (r) {
        atomic_init(&q->state, (uint64_t)r->period << COUNT_BITS | (r->count & COUNT_MASK));
        q->first_period = r->first;
        atomic_init(&q->dirty, DIRTY_SYNC); /* Redis may not have it (cluster/quota.c) */
    }
    slots[nslots++] = q;
    pthread_mutex_unlock(&lock);
    return q;
}

int mgw_quota_take(mgw_quota_t *q, int period, uint64_t limit, uint64_t offset, time_t now,
                   uint64_t *remaining, uint64_t *reset_s)
{
    int64_t cur = mgw_quota_period(period, now);
    if (q->first_period < 0) q->first_period = cur; /* benign race: same value */
    uint64_t allowed = limit - (cur == q->first_period && offset < limit ? offset : 0);
    *reset_s = (uint64_t)(mgw_quota_period_end(period, cur) - now);
    uint64_t others = mgw_quota_others(q, cur);
    uint64_t s = atomic_load_explicit(&q->state, memory_order_relaxed);
    for (;;) {
        uint64_t count = (int64_t)(s >> COUNT_BITS) == cur ? s & COUNT_MASK : 0;
        if (count + others >= allowed) {
            *remaining = 0;
            return 0;
        }
        uint64_t next = (uint64_t)cur << COUNT_BITS | (count + 1);
        if (atomic_compare_exchange_weak_explicit(&q->state, &s, next, memory_order_relaxed,
                                                  memory_order_relaxed)) {
            *remaining = allowed - count - others - 1;
            atomic_store_explicit(&q->dirty, DIRTY_WAL | DIRTY_SYNC, memory_order_relaxed);
            return 1;
        }
    }
}

void mgw_quota_refund(mgw_quota_t *q)
{
    atomic_fetch_sub_explicit(&q->state, 1, memory_order_relaxed);
    atomic_store_explicit(&q->dirty, DIRTY_WAL | DIRTY_SYNC, memory_order_relaxed);
}

/* ---- counts of other nodes ---- */

void mgw_quota_set_kind(mgw_quota_t *q, int kind)
{
    q->kind = kind;
}

int mgw_quota_kind(const mgw_quota_t *q)
{
    return q->kind;
}

int mgw_quota_nslots(void)
{
    pthread_mutex_lock(&lock);
    int n = nslots;
    pthread_mutex_unlock(&lock);
    return n;
}

mgw_quota_t *mgw_quota_at(int i)
{
    /* slots below a count read under the lock are set and never change */
    return i >= 0 && i < MAX_SLOTS ? slots[i] : NULL;
}

const char *mgw_quota_key(const mgw_quota_t *q)
{
    return q->key;
}

int mgw_quota_own(mgw_quota_t *q, int64_t *period, uint64_t *count)
{
    /* a load first: most slots of a large table have not changed */
    int changed =
        (atomic_load_explicit(&q->dirty, memory_order_relaxed) & DIRTY_SYNC) &&
        (atomic_fetch_and_explicit(&q->dirty, ~DIRTY_SYNC, memory_order_relaxed) & DIRTY_SYNC);
    uint64_t s = atomic_load_explicit(&q->state, memory_order_relaxed);
    *period = (int64_t)(s >> COUNT_BITS);
    *count = s & COUNT_MASK;
    return changed;
}

void mgw_quota_mark(mgw_quota_t *q)
{
    atomic_fetch_or_explicit(&q->dirty, DIRTY_SYNC, memory_order_relaxed);
}

void mgw_quota_mark_all(void)
{
    pthread_mutex_lock(&lock);
    for (int i = 0; i < nslots; i++)
        mgw_quota_mark(slots[i]);
    pthread_mutex_unlock(&lock);
}

void mgw_quota_set_others(mgw_quota_t *q, int64_t period, uint64_t count)
{
    if (count > COUNT_MASK) count = COUNT_MASK;
    atomic_store_explicit(&q->others, (uint64_t)period << COUNT_BITS | count, memory_order_relaxed);
}

uint64_t mgw_quota_others(const mgw_quota_t *q, int64_t period)
{
    uint64_t o = atomic_load_explicit(&q->others, memory_order_relaxed);
    return (int64_t)(o >> COUNT_BITS) == period ? o & COUNT_MASK : 0;
}

void mgw_quota_adopt(mgw_quota_t *q, int64_t period, uint64_t n)
{
    uint64_t s = atomic_load_explicit(&q->state, memory_order_relaxed), next;
    do {
        uint64_t count = (int64_t)(s >> COUNT_BITS) == period ? s & COUNT_MASK : 0;
        if ((int64_t)(s >> COUNT_BITS) > period) return; /* a later period began meanwhile */
        next = (uint64_t)period << COUNT_BITS | ((count + n) & COUNT_MASK);
    } while (!atomic_compare_exchange_weak_explicit(&q->state, &s, next, memory_order_relaxed,
                                                    memory_order_relaxed));
    atomic_fetch_or_explicit(&q->dirty, DIRTY_WAL, memory_order_relaxed);
}

/*
 * Rewrites the file once appends made it large: the replayed records, updated from the
 * live slots, plus the slots created since. Records without a slot (a plan removed from
 * the configuration, maybe back later) are kept. Lock held.
 */
static void compact_live(void)
{
    for (int i = 0; i < nslots; i++) {
        record_t *r = find_record(slots[i]->key);
        if (r == NULL) {
            replayed = mgw_realloc(replayed, sizeof(*replayed) * (size_t)(nreplayed + 1));
            r = &replayed[nreplayed++];
            r->key = mgw_strdup(slots[i]->key);
        }
        uint64_t s = atomic_load_explicit(&slots[i]->state, memory_order_relaxed);
        r->period = (int64_t)(s >> COUNT_BITS);
        r->count = s & COUNT_MASK;
        r->first = slots[i]->first_period;
    }
    if (compact(wal_dir) == 0) {
        close(wal_fd);
        wal_fd = open(wal_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        wal_bytes = 0;
    }
}

void mgw_quota_flush(void)
{
    if (wal_fd < 0) return;
    int wrote = 0;
    pthread_mutex_lock(&lock);
    if (wal_bytes > COMPACT_BYTES) compact_live();
    for (int i = 0; i < nslots; i++) {
        mgw_quota_t *q = slots[i];
        if (!(atomic_fetch_and_explicit(&q->dirty, ~DIRTY_WAL, memory_order_relaxed) & DIRTY_WAL))
            continue;
        uint64_t s = atomic_load_explicit(&q->state, memory_order_relaxed);
        char line[1024];
        int n = format_record(line, sizeof(line), q->key, (int64_t)(s >> COUNT_BITS),
                              s & COUNT_MASK, q->first_period);
        if (n > 0 && write(wal_fd, line, (size_t)n) == n) {
            wrote = 1;
            wal_bytes += (size_t)n;
        }
    }
    pthread_mutex_unlock(&lock);
    if (wrote && fdatasync(wal_fd) != 0)
        mgw_log_error("%s: sync failed: %s", wal_path, strerror(errno));
}
