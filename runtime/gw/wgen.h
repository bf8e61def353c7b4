/*
 * A worker generation: a configuration generation as one worker runs it (the generation,
 * its access-log writer, and whatever the opener keeps with it: the policies loaded into
 * the worker's Lua state), and the number of the worker's requests that run on it. A
 * request takes its worker's current one when it starts (mgw__wgen_acquire) and keeps it
 * to its end; one that is no longer current (retired) is closed when its last request
 * ends. ctl/reload.c opens, swaps and retires them.
 */
#ifndef MGW_WGEN_H
#define MGW_WGEN_H

#include "conf/gen.h"
#include "gw/accesslog.h"

typedef struct mgw_worker_s mgw_worker_t;

typedef struct mgw_wgen_s {
    mgw_worker_t *w;
    mgw_gen_t *gen;        /* one reference */
    mgw_accesslog_t *alog; /* writes gen's log files (holds its own reference), or NULL */
    int nreqs;             /* requests of this worker that run on gen */
    int retired;           /* no longer the worker's current generation */
    /* Frees wg and what it holds; called once it is retired and its last request ended. */
    void (*close)(struct mgw_wgen_s *wg);
} mgw_wgen_t;

/* The worker's current generation (w->wgen), with one more request on it. */
mgw_wgen_t *mgw__wgen_acquire(mgw_worker_t *w);
/* A pool cleanup of a request: one request fewer on the generation wgen. */
void mgw__wgen_release(void *wgen);
/* wg is no longer handed to new requests: it is closed now if none runs on it, else when
 * the last one ends. */
void mgw__wgen_retire(mgw_wgen_t *wg);

#endif
