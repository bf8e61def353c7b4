/*
 * The parts of a stream that plain TCP and TLS share: reading into shared buffers, the
 * bytes kept while the owner pauses, end of stream, shutdown and close.
 */
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"
#include "net/stream_int.h"

/* A client that sends faster than its owner takes (pipelining) waits above this. */
#define HOLD_MAX (256 * 1024)

static mgw_stream_t *of_wq(mgw_wq_t *q)
{
    return (mgw_stream_t *)((char *)q - offsetof(mgw_stream_t, wq));
}

static void wq_progress(mgw_wq_t *q)
{
    mgw_stream_t *s = of_wq(q);
    s->cbs->on_progress(s);
}

static void wq_drained(mgw_wq_t *q)
{
    mgw_stream_t *s = of_wq(q);
    s->cbs->on_drained(s);
}

void mgw__stream_setup(mgw_stream_t *s, uv_loop_t *loop, const mgw_stream_ops_t *ops,
                       const mgw_stream_cbs_t *cbs, void *data)
{
    memset(s, 0, sizeof(*s));
    uv_tcp_init(loop, &s->tcp);
    s->tcp.data = s;
    s->ops = ops;
    s->cbs = cbs;
    s->data = data;
    s->wq.progress = cbs->on_progress ? wq_progress : NULL;
    s->wq.drained = cbs->on_drained ? wq_drained : NULL;
}

/* The one place that picks an implementation. */
void mgw_stream_init(mgw_stream_t *s, uv_loop_t *loop, const mgw_stream_cbs_t *cbs, void *data,
                     const mgw_stream_tls_opts_t *tls)
{
    if (tls && tls->ctx)
        mgw__stream_tls_init(s, loop, cbs, data, tls);
    else
        mgw__stream_tcp_init(s, loop, cbs, data);
}

int mgw_stream_accept(mgw_stream_t *s, uv_stream_t *server)
{
    int rc = uv_accept(server, (uv_stream_t *)&s->tcp);
    if (rc == 0) uv_tcp_nodelay(&s->tcp, 1);
    return rc;
}

int mgw_stream_connect(mgw_stream_t *s, uv_connect_t *req, const struct sockaddr *addr,
                       uv_connect_cb cb)
{
    return uv_tcp_connect(req, &s->tcp, addr, cb);
}

void mgw__stream_no_session(mgw_stream_t *s, void **slot)
{
    (void)s;
    (void)slot;
}

/* ---- reading ---- */

static void alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    (void)hint;
    mgw_stream_t *s = h->data;
    /* Reuse the buffer when no pending write or owner still points into it. */
    if (s->rbuf == NULL || s->rbuf->refs > 1) {
        mgw__rbuf_unref(s->rbuf);
        s->rbuf = mgw__rbuf_new();
    }
    buf->base = s->rbuf->data;
    buf->len = s->rbuf->cap;
}

int mgw__stream_read(mgw_stream_t *s, uv_read_cb cb)
{
    if (s->reading || s->done || s->paused || s->stopped || s->eof) return 0;
    int rc = uv_read_start((uv_stream_t *)&s->tcp, alloc_cb, cb);
    if (rc == 0) s->reading = 1;
    return rc;
}

void mgw__stream_unread(mgw_stream_t *s)
{
    if (!s->reading) return;
    uv_read_stop((uv_stream_t *)&s->tcp);
    s->reading = 0;
}

void mgw__stream_read_stop(mgw_stream_t *s)
{
    s->stopped = 1;
    mgw__stream_unread(s);
}

void mgw__stream_eof(mgw_stream_t *s, int err)
{
    s->err = err;
    s->eof = 1;
    mgw__stream_unread(s);
    s->cbs->on_eof(s);
}

/* ---- pausing ---- */

void mgw__stream_hold(mgw_stream_t *s, mgw_rbuf_t *rb, const char *p, size_t n)
{
    if (n == 0) return;
    if (s->held_len == 0) {
        /* keep rb itself: alloc_cb sees the extra reference and reads into a new one */
        mgw__rbuf_ref(rb);
        mgw__rbuf_unref(s->held_buf);
        s->held_buf = rb;
        s->held = p;
        s->held_len = n;
    } else {
        size_t total = s->held_len + n;
        size_t cap = total > MGW_RBUF_SIZE ? total : MGW_RBUF_SIZE;
        mgw_rbuf_t *b = mgw_malloc(sizeof(*b) + cap);
        b->refs = 1;
        b->cap = cap;
        memcpy(b->data, s->held, s->held_len);
        memcpy(b->data + s->held_len, p, n);
        mgw__rbuf_unref(s->held_buf);
        s->held_buf = b;
        s->held = b->data;
        s->held_len = total;
    }
    if (s->held_len > HOLD_MAX) mgw__stream_unread(s);
}

void mgw__stream_pause(mgw_stream_t *s, mgw_rbuf_t *rb, const char *p, size_t n)
{
    s->paused = 1;
    mgw__stream_hold(s, rb, p, n);
}

int mgw__stream_unpause(mgw_stream_t *s)
{
    s->paused = 0;
    if (s->held_len) {
        mgw_rbuf_t *rb = s->held_buf;
        const char *p = s->held;
        size_t n = s->held_len;
        s->held_buf = NULL;
        s->held = NULL;
        s->held_len = 0;
        s->cbs->on_read(s, rb, p, n);
        mgw__rbuf_unref(rb);
    }
    return !s->paused && !s->done;
}

/* ---- the end ---- */

static void shutdown_cb(uv_shutdown_t *req, int status)
{
    (void)status;
    mgw_stream_t *s = req->data;
    free(req);
    s->cbs->on_shutdown(s);
}

void mgw__stream_shutdown(mgw_stream_t *s)
{
    uv_shutdown_t *req = mgw_malloc(sizeof(*req));
    req->data = s;
    if (uv_shutdown(req, (uv_stream_t *)&s->tcp, shutdown_cb) != 0) {
        free(req);
        s->cbs->on_shutdown(s);
    }
}

void mgw__stream_close(mgw_stream_t *s, uv_close_cb closed_cb)
{
    if (s->closing) return;
    s->closing = 1;
    s->done = 1;
    uv_close((uv_handle_t *)&s->tcp, closed_cb);
}

void mgw__stream_closed(mgw_stream_t *s)
{
    mgw__rbuf_unref(s->rbuf);
    mgw__rbuf_unref(s->held_buf);
    s->rbuf = s->held_buf = NULL;
    s->cbs->on_close(s);
}
