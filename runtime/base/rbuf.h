/*
 * Read buffers shared by reference: body bytes are written on to the other side straight
 * from the buffer they were read into, and the buffer lives until the last write that
 * points into it completes. Worker-local, so the count is not atomic.
 */
#ifndef MGW_RBUF_H
#define MGW_RBUF_H

#include <stddef.h>

typedef struct mgw_rbuf_s {
    int refs;
    size_t cap;
    char data[];
} mgw_rbuf_t;

#define MGW_RBUF_SIZE 65536

/* A buffer of MGW_RBUF_SIZE bytes with one reference (the caller's), taken from the
 * thread's spare buffers when there is one. */
mgw_rbuf_t *mgw__rbuf_new(void);
void mgw__rbuf_ref(mgw_rbuf_t *b);
/* Drops a reference (b may be NULL); the last one returns b to the spare buffers. */
void mgw__rbuf_unref(mgw_rbuf_t *b);
/* Frees the thread's spare read buffers (a worker thread, before it ends). */
void mgw__rbuf_drain(void);

#endif
