/*
 * Labelled counters and gauges counted per thread, for GET /metrics (README "Metrics"):
 * the families that the layers other than the request core count (TLS handshakes,
 * upstream pools, WebSocket, Lua, WAF, authorizers, usage plans). The request families
 * (per route, with histograms) are gw/metrics.h's.
 *
 * A family is a static definition in the file that counts it. A series is one set of
 * label values of a family, named by a small integer handle; each thread that counts
 * (the main thread and the workers) has its own cell of every series, and adds to it
 * with a plain load and store: no lock and no locked instruction. The scrape sums the
 * cells. Threads that are neither (libuv's thread pool) add to one shared cell with an
 * atomic add.
 *
 * Finding a series by its label values takes no lock either: the registry is a fixed
 * open-addressed table that only grows (series are never removed: a counter never goes
 * back, and a label value a reload removed keeps its last value), and a new series is
 * made under a mutex, once. Code on a request path finds its series when its
 * configuration is prepared, or once per connection, and keeps the handle; code on a
 * cold path (a failed handshake, a refused connect) may look the series up each time.
 *
 * Label sets must be bounded: label values come from the configuration (route keys,
 * rule names, origins) or from fixed lists (reasons, causes), never from a request.
 * Past MGW_STAT_MAX series a lookup returns the null handle (counts nothing) and the
 * error log says so once.
 */
#ifndef MGW_STAT_H
#define MGW_STAT_H

#include <stdint.h>

#include "base/pool.h"

#define MGW_STAT_MAX 32768   /* series, over every family */
#define MGW_STAT_MAXLABELS 4 /* label names per family */
#define MGW_STAT_CHUNK 1024  /* cells per chunk (a chunk per thread is 8 KB) */

typedef struct mgw_stat_family_s {
    const char *name; /* moongate_..._total */
    const char *type; /* "counter" or "gauge" */
    const char *help;
    const char *labels[MGW_STAT_MAXLABELS + 1]; /* label names, NULL after the last */
    /* The registry's, zero in the definition. */
    struct mgw_stat_family_s *next;
    struct mgw_stat_series_s *first, *last;
} mgw_stat_family_t;

/* A series' handle; 0 is the null series, which counts nothing. */
typedef uint32_t mgw_stat_t;

/* Main thread, before any other thread counts: cells for nthreads threads (the main
 * thread is 0, the workers 1 .. nthreads - 1). Later calls change nothing. */
void mgw_stat_init(int nthreads);

/* Called by a thread that counts, at its start: it counts in cell id (1 .. nthreads - 1;
 * the main thread is 0 without calling). */
void mgw_stat_thread(int id);

/* Any thread: the series of f with values (one per label of f, in order; NULL counts as
 * ""), made the first time. 0 when the registry is full or mgw_stat_init was not called. */
mgw_stat_t mgw_stat_series(mgw_stat_family_t *f, const char *const *values);

/* Adds v to the calling thread's cell of s (v < 0: a gauge that goes down). */
void mgw_stat_add(mgw_stat_t s, int64_t v);

/* Sets the calling thread's cell of s to v: a gauge that one thread owns (its series has a
 * label naming the thread, as moongate_lua_memory_bytes's worker). */
void mgw_stat_set(mgw_stat_t s, int64_t v);

/* mgw_stat_add(mgw_stat_series(f, values), 1), for cold paths. */
void mgw_stat_inc(mgw_stat_family_t *f, const char *const *values);

/* The sum of s over the threads (tests, and gauges read back). */
int64_t mgw_stat_value(mgw_stat_t s);

/* Main thread: appends every family that has a series, each series summed over the
 * threads, in the Prometheus text format (base/prom.h). */
void mgw_stat_render(mgw_buf_t *b);

/* Main thread, after every other thread has stopped: frees the registry. */
void mgw_stat_free(void);

#endif
