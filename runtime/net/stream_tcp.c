/*
 * The plain TCP stream, and the write queue every socket writes through (mgw__write).
 */
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"
#include "net/stream_int.h"

/* ---- the write queue ---- */

typedef struct {
    uv_write_t req;
    mgw_wq_t *q;
    mgw_rbuf_t *ref;
    size_t len;
    uv_buf_t bufs[8];
    char copy[];
} write_t;

static void write_cb(uv_write_t *req, int status)
{
    (void)status;
    write_t *w = (write_t *)req;
    mgw_wq_t *q = w->q;
    size_t before = q->pending;
    q->pending -= w->len;
    mgw__rbuf_unref(w->ref);
    free(w);
    if (q->progress) q->progress(q);
    if (before >= MGW_WQ_LOW && q->pending < MGW_WQ_LOW && q->drained) q->drained(q);
}

/* 1 when p lies inside ref's data (a slice that may be written without a copy). */
static int inside(const mgw_rbuf_t *ref, const char *p)
{
    return ref && p >= ref->data && p < ref->data + ref->cap;
}

int mgw__write(uv_stream_t *stream, mgw_wq_t *q, const uv_buf_t *bufs, int nbufs, mgw_rbuf_t *ref)
{
    /* First try to write it all now: the usual case on a healthy connection, and then
     * nothing is allocated and libuv has no write request to complete (completing one
     * makes it re-arm the epoll watcher: a system call per write). */
    uv_buf_t rest[8];
    if (nbufs > 8) nbufs = 8;
    int tw = uv_try_write(stream, bufs, (unsigned)nbufs);
    if (tw > 0) {
        size_t done = (size_t)tw;
        int k = 0;
        for (int i = 0; i < nbufs; i++) {
            if (done >= bufs[i].len) {
                done -= bufs[i].len;
                continue;
            }
            rest[k++] = uv_buf_init(bufs[i].base + done, (unsigned)(bufs[i].len - done));
            done = 0;
        }
        if (k == 0) return 0;
        bufs = rest;
        nbufs = k;
    } else if (tw != UV_EAGAIN && tw != UV_ENOSYS) {
        return tw; /* the connection is broken: its read side will say so */
    }
    /* The rest goes through one uv_write (one writev): slices of ref go out as they are,
     * everything else is copied (the caller's memory may go away before the write ends),
     * consecutive copied pieces into one buffer. */
    size_t len = 0, copied = 0;
    for (int i = 0; i < nbufs; i++) {
        len += bufs[i].len;
        if (!inside(ref, bufs[i].base)) copied += bufs[i].len;
    }
    write_t *w = mgw_malloc(sizeof(*w) + copied);
    size_t off = 0;
    int n = 0, uses_ref = 0;
    for (int i = 0; i < nbufs && n < 8; i++) {
        if (bufs[i].len == 0) continue;
        if (inside(ref, bufs[i].base)) {
            w->bufs[n++] = bufs[i];
            uses_ref = 1;
            continue;
        }
        memcpy(w->copy + off, bufs[i].base, bufs[i].len);
        if (n > 0 && w->bufs[n - 1].base + w->bufs[n - 1].len == w->copy + off)
            w->bufs[n - 1].len += bufs[i].len;
        else
            w->bufs[n++] = uv_buf_init(w->copy + off, (unsigned)bufs[i].len);
        off += bufs[i].len;
    }
    if (!uses_ref) ref = NULL;
    if (ref) mgw__rbuf_ref(ref);
    nbufs = n;
    w->q = q;
    w->ref = ref;
    w->len = len;
    q->pending += len;
    int rc = uv_write(&w->req, stream, w->bufs, (unsigned)nbufs, write_cb);
    if (rc < 0) {
        q->pending -= len;
        mgw__rbuf_unref(ref);
        free(w);
    }
    return rc;
}

/* ---- the stream ---- */

static void read_cb(uv_stream_t *u, ssize_t nread, const uv_buf_t *buf)
{
    (void)buf;
    mgw_stream_t *s = u->data;
    if (nread == 0) return;
    if (nread < 0) {
        mgw__stream_eof(s, (int)nread);
        return;
    }
    if (s->paused) {
        mgw__stream_hold(s, s->rbuf, s->rbuf->data, (size_t)nread);
        return;
    }
    mgw_rbuf_t *rb = s->rbuf;
    mgw__rbuf_ref(rb);
    s->cbs->on_read(s, rb, rb->data, (size_t)nread);
    mgw__rbuf_unref(rb);
    if (s->rbuf == rb && rb->refs == 1) {
        /* nobody points into it: back to the thread's spare buffers, so that an idle
         * connection holds no 64 KB buffer (the next read takes one again) */
        mgw__rbuf_unref(rb);
        s->rbuf = NULL;
    }
}

static int tcp_read_start(mgw_stream_t *s)
{
    s->stopped = 0;
    return mgw__stream_read(s, read_cb);
}

int mgw__stream_tcp_write(mgw_stream_t *s, const uv_buf_t *bufs, int n, mgw_rbuf_t *ref)
{
    return mgw__write((uv_stream_t *)&s->tcp, &s->wq, bufs, n, ref);
}

/* A paused plain stream keeps reading (stopping and restarting the watcher would cost two
 * system calls a request on a pipelining connection): what arrives is held. */
static void tcp_pause(mgw_stream_t *s, mgw_rbuf_t *rb, const char *p, size_t n)
{
    mgw__stream_pause(s, rb, p, n);
}

static void tcp_resume(mgw_stream_t *s)
{
    if (s->paused) mgw__stream_unpause(s);
    mgw__stream_read(s, read_cb);
}

static void tcp_shutdown(mgw_stream_t *s)
{
    if (s->done) return;
    s->done = 1;
    mgw__stream_unread(s);
    mgw__stream_shutdown(s);
}

static void tcp_closed(uv_handle_t *h)
{
    mgw__stream_closed(h->data);
}

static void tcp_close(mgw_stream_t *s)
{
    mgw__stream_close(s, tcp_closed);
}

static const mgw_stream_ops_t tcp_ops = {
    .read_start = tcp_read_start,
    .read_stop = mgw__stream_read_stop,
    .write = mgw__stream_tcp_write,
    .pause = tcp_pause,
    .resume = tcp_resume,
    .shutdown = tcp_shutdown,
    .close = tcp_close,
    .save_session = mgw__stream_no_session,
};

void mgw__stream_tcp_init(mgw_stream_t *s, uv_loop_t *loop, const mgw_stream_cbs_t *cbs, void *data)
{
    mgw__stream_setup(s, loop, &tcp_ops, cbs, data);
}
