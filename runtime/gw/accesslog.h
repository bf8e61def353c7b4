/*
 * Access-log writer, one per worker: lines are appended to a per-file buffer and written
 * by libuv's thread pool (so the event loop never blocks on disk), at most one write in
 * flight per file to keep lines in order; flushed every 100 ms, at 64 KB, and at exit.
 */
#ifndef MGW_ACCESSLOG_H
#define MGW_ACCESSLOG_H

#include <stddef.h>
#include <uv.h>

#include "conf/gen.h"

typedef struct mgw_accesslog_s mgw_accesslog_t;

/* A writer for the log files of gen, driven by loop; it holds a reference to gen (whose
 * file descriptors it writes) until it is freed. */
mgw_accesslog_t *mgw_accesslog_create(uv_loop_t *loop, mgw_gen_t *gen);
/* Appends a line (n bytes, newline included) to log log_id. */
void mgw_accesslog_append(mgw_accesslog_t *a, int log_id, const char *line, size_t n);
/* Writes everything buffered synchronously and stops the flush timer; frees a once the
 * loop has closed the timer. */
void mgw_accesslog_close(mgw_accesslog_t *a);

#endif
