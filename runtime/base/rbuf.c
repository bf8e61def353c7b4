#include "base/rbuf.h"

#include <stdlib.h>

#include "base/mem.h"

/* Free read buffers of this worker thread: a connection takes two 64 KB buffers, and a
 * TLS handshake per request would otherwise malloc and free them every time. */
#define RBUF_FREE_MAX 64
static _Thread_local mgw_rbuf_t *rbuf_free[RBUF_FREE_MAX];
static _Thread_local int rbuf_nfree;

mgw_rbuf_t *mgw__rbuf_new(void)
{
    mgw_rbuf_t *b = rbuf_nfree ? rbuf_free[--rbuf_nfree] : mgw_malloc(sizeof(*b) + MGW_RBUF_SIZE);
    b->refs = 1;
    b->cap = MGW_RBUF_SIZE;
    return b;
}

void mgw__rbuf_drain(void)
{
    while (rbuf_nfree)
        free(rbuf_free[--rbuf_nfree]);
}

void mgw__rbuf_ref(mgw_rbuf_t *b)
{
    b->refs++;
}

void mgw__rbuf_unref(mgw_rbuf_t *b)
{
    if (b == NULL || --b->refs > 0) return;
    if (b->cap == MGW_RBUF_SIZE && rbuf_nfree < RBUF_FREE_MAX)
        rbuf_free[rbuf_nfree++] = b;
    else
        free(b);
}
