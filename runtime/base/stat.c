/* Labelled counters and gauges counted per thread (see stat.h): the series registry,
 * the per-thread cells, and the scrape. */
#include "base/stat.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/mem.h"
#include "base/prom.h"

#define NCHUNKS (MGW_STAT_MAX / MGW_STAT_CHUNK)
#define SLOTS (2 * MGW_STAT_MAX) /* open addressing at most half full */

typedef struct mgw_stat_series_s {
    mgw_stat_family_t *f;
    struct mgw_stat_series_s *next; /* the family's, in creation order */
    mgw_stat_t idx;
    size_t n;
    char key[]; /* the label values, each ending with a NUL */
} series_t;

/* A thread's cells: series s at chunk[s / MGW_STAT_CHUNK][s % MGW_STAT_CHUNK]. */
typedef struct {
    int64_t *chunk[NCHUNKS];
} cells_t;

/* threads[0 .. nthreads - 1] are the counting threads; threads[nthreads] is the shared
 * cell of every other thread (atomic adds). Set once by mgw_stat_init. */
static cells_t *threads;
static int nthreads;
static _Thread_local cells_t *mine;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static series_t *slots[SLOTS]; /* stored under lock with release, read with acquire */
static uint32_t nseries = 1;   /* 0 is the null series */
static mgw_stat_family_t *families, *families_last;
static int full_logged;

static void alloc_chunk(int c)
{
    for (int t = 0; t <= nthreads; t++) {
        /* A chunk per thread on its own lines: no two threads write the same line. */
        int64_t *p = aligned_alloc(64, MGW_STAT_CHUNK * sizeof(int64_t));
        if (p == NULL) abort();
        memset(p, 0, MGW_STAT_CHUNK * sizeof(int64_t));
        __atomic_store_n(&threads[t].chunk[c], p, __ATOMIC_RELEASE);
    }
}

void mgw_stat_init(int n)
{
    if (threads || n < 1) return;
    nthreads = n;
    threads = mgw_calloc((size_t)n + 1, sizeof(cells_t));
    alloc_chunk(0);
    mine = &threads[0];
}

void mgw_stat_thread(int id)
{
    if (threads && id >= 0 && id < nthreads) mine = &threads[id];
}

static uint64_t hash(const mgw_stat_family_t *f, const char *p, size_t n)
{
    uint64_t h = 1469598103934665603ULL ^ (uint64_t)(uintptr_t)f;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)p[i]) * 1099511628211ULL;
    return h;
}

/* The series of f with key (n bytes) from slot h on, or NULL at the first empty slot
 * (*at is then that slot). */
static series_t *probe(const mgw_stat_family_t *f, const char *key, size_t n, uint64_t h,
                       size_t *at)
{
    for (size_t i = h & (SLOTS - 1);; i = (i + 1) & (SLOTS - 1)) {
        series_t *s = __atomic_load_n(&slots[i], __ATOMIC_ACQUIRE);
        if (s == NULL) {
            *at = i;
            return NULL;
        }
        if (s->f == f && s->n == n && memcmp(s->key, key, n) == 0) return s;
    }
}

static series_t *make(mgw_stat_family_t *f, const char *key, size_t n, size_t at)
{
    if (nseries >= MGW_STAT_MAX) {
        if (!full_logged)
            mgw_log_error("metrics: %d series exist; %s and later series are not counted",
                          MGW_STAT_MAX, f->name);
        full_logged = 1;
        return NULL;
    }
    series_t *s = mgw_malloc(sizeof(*s) + n);
    s->f = f;
    s->next = NULL;
    s->idx = nseries++;
    s->n = n;
    memcpy(s->key, key, n);
    if (s->idx % MGW_STAT_CHUNK == 0) alloc_chunk((int)(s->idx / MGW_STAT_CHUNK));
    if (f->first == NULL) {
        f->first = s;
        if (families_last)
            families_last->next = f;
        else
            families = f;
        families_last = f;
    } else {
        f->last->next = s;
    }
    f->last = s;
    __atomic_store_n(&slots[at], s, __ATOMIC_RELEASE);
    return s;
}

mgw_stat_t mgw_stat_series(mgw_stat_family_t *f, const char *const *values)
{
    if (threads == NULL) return 0;
    char stack[512], *key = stack;
    size_t n = 0;
    for (int i = 0; i < MGW_STAT_MAXLABELS && f->labels[i]; i++)
        n += strlen(values[i] ? values[i] : "") + 1;
    if (n > sizeof(stack)) key = mgw_malloc(n);
    n = 0;
    for (int i = 0; i < MGW_STAT_MAXLABELS && f->labels[i]; i++) {
        const char *v = values[i] ? values[i] : "";
        size_t len = strlen(v) + 1;
        memcpy(key + n, v, len);
        n += len;
    }
    uint64_t h = hash(f, key, n);
    size_t at;
    series_t *s = probe(f, key, n, h, &at);
    if (s == NULL) {
        pthread_mutex_lock(&lock);
        s = probe(f, key, n, h, &at); /* another thread may have made it meanwhile */
        if (s == NULL) s = make(f, key, n, at);
        pthread_mutex_unlock(&lock);
    }
    if (key != stack) free(key);
    return s ? s->idx : 0;
}

static int64_t *cell(cells_t *t, mgw_stat_t s)
{
    return &t->chunk[s / MGW_STAT_CHUNK][s % MGW_STAT_CHUNK];
}

void mgw_stat_add(mgw_stat_t s, int64_t v)
{
    if (mine) {
        int64_t *c = cell(mine, s);
        __atomic_store_n(c, __atomic_load_n(c, __ATOMIC_RELAXED) + v, __ATOMIC_RELAXED);
    } else if (threads) {
        __atomic_fetch_add(cell(&threads[nthreads], s), v, __ATOMIC_RELAXED);
    }
}

void mgw_stat_set(mgw_stat_t s, int64_t v)
{
    if (mine)
        __atomic_store_n(cell(mine, s), v, __ATOMIC_RELAXED);
    else if (threads)
        __atomic_store_n(cell(&threads[nthreads], s), v, __ATOMIC_RELAXED);
}

void mgw_stat_inc(mgw_stat_family_t *f, const char *const *values)
{
    mgw_stat_add(mgw_stat_series(f, values), 1);
}

int64_t mgw_stat_value(mgw_stat_t s)
{
    int64_t v = 0;
    if (threads == NULL || s == 0) return 0;
    for (int t = 0; t <= nthreads; t++) {
        int64_t *chunk = __atomic_load_n(&threads[t].chunk[s / MGW_STAT_CHUNK], __ATOMIC_ACQUIRE);
        v += __atomic_load_n(&chunk[s % MGW_STAT_CHUNK], __ATOMIC_RELAXED);
    }
    return v;
}

void mgw_stat_render(mgw_buf_t *b)
{
    mgw_buf_t lb = {0};
    pthread_mutex_lock(&lock);
    for (mgw_stat_family_t *f = families; f; f = f->next) {
        mgw_prom_family(b, f->name, f->type, f->help);
        for (series_t *s = f->first; s; s = s->next) {
            lb.n = 0;
            const char *v = s->key;
            for (int i = 0; i < MGW_STAT_MAXLABELS && f->labels[i]; i++) {
                mgw_prom_label(&lb, f->labels[i], v);
                v += strlen(v) + 1;
            }
            mgw_prom_i64(b, f->name, lb.p, lb.n, mgw_stat_value(s->idx));
        }
    }
    pthread_mutex_unlock(&lock);
    mgw_buf_free(&lb);
}

void mgw_stat_free(void)
{
    pthread_mutex_lock(&lock);
    for (size_t i = 0; i < SLOTS; i++) {
        free(slots[i]);
        slots[i] = NULL;
    }
    for (mgw_stat_family_t *f = families, *next; f; f = next) {
        next = f->next;
        f->first = f->last = NULL;
        f->next = NULL;
    }
    families = families_last = NULL;
    for (int t = 0; threads && t <= nthreads; t++)
        for (int c = 0; c < NCHUNKS; c++)
            free(threads[t].chunk[c]);
    free(threads);
    threads = NULL;
    mine = NULL;
    nthreads = 0;
    nseries = 1;
    full_logged = 0;
    pthread_mutex_unlock(&lock);
}
