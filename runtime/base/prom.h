/*
 * A writer of the Prometheus text exposition format, version 0.0.4 (what GET /metrics
 * on the management listener answers): family headers, label values escaped, samples
 * with integer values, and histograms written from per-bucket counts. It only appends
 * to a buffer: what is counted and how is the caller's (gw/metrics.h).
 */
#ifndef MGW_PROM_H
#define MGW_PROM_H

#include <stddef.h>
#include <stdint.h>

#include "base/pool.h"

#define MGW_PROM_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* "# HELP name help" and "# TYPE name type" (type "counter", "gauge", "histogram"); help
 * has its backslashes and line feeds escaped. Once per family, before its samples. */
void mgw_prom_family(mgw_buf_t *b, const char *name, const char *type, const char *help);

/* Appends s (n bytes) as a label value: \ as \\, " as \" and a line feed as \n. */
void mgw_prom_escape(mgw_buf_t *b, const char *s, size_t n);

/* Appends name="value" (value escaped) to a label list being built, with a comma before
 * it unless the list is empty. */
void mgw_prom_label(mgw_buf_t *b, const char *name, const char *value);

/* One sample: "name{labels} v" (no braces when labels is empty); labels is a list built
 * with mgw_prom_label (nl bytes). */
void mgw_prom_u64(mgw_buf_t *b, const char *name, const char *labels, size_t nl, uint64_t v);
/* The same with a signed value. */
void mgw_prom_i64(mgw_buf_t *b, const char *name, const char *labels, size_t nl, int64_t v);
/* The same with the value v / 10^9, written exactly ("1.250000000"): seconds counted in
 * nanoseconds. */
void mgw_prom_nano(mgw_buf_t *b, const char *name, const char *labels, size_t nl, uint64_t v);

/*
 * A histogram's samples for one label set: name_bucket{labels,le="..."} for each bound
 * of le (nb strings, ascending) and for +Inf, cumulative, then name_sum (sum_nano / 10^9)
 * and name_count. counts[i] is the number of observations in (le[i-1], le[i]], and
 * counts[nb] those above the last bound, so the caller increments one counter per
 * observation and the cumulative sums are made here.
 */
void mgw_prom_histogram(mgw_buf_t *b, const char *name, const char *labels, size_t nl,
                        const char *const *le, int nb, const uint64_t *counts, uint64_t sum_nano);

#endif
