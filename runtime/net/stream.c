/*
 * The parts of a stream that plain TCP and TLS share: reading into shared buffers (in the
 * order data arrives), the bytes kept while the owner pauses, end of stream, shutdown and
 * close.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

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

/*
 * Reading in arrival order. libuv watches sockets level-triggered, and the kernel puts a
 * level-triggered socket it has reported back at the end of its ready list at once: a
 * busy worker is then told its connections in the order of its previous batch, not in
 * the order their data arrived, and a request that arrived first can wait behind every
 * other one (W6's tail, bench/README.md). So each loop reads its streams through an
 * edge-triggered epoll set of its own, which queues a socket when data arrives (first
 * come, first served, as nginx's epoll does); libuv watches that set (one uv_poll_t) and
 * still does the writes, timers and closes. A socket in the set is read until a short
 * read (then it is drained: new data brings a new event; unless the event says the peer
 * has ended or failed, which brings no further event: then until the end is read) or 32
 * full buffers (then it is queued again, so that one fast sender cannot starve the
 * others). Stopping is a flag; a start after a stop re-arms the socket when it may hold
 * unannounced bytes. The read callbacks see what libuv would give them. Where the set
 * cannot be made, libuv reads as before.
 */
typedef struct mgw_reader_s {
    uv_poll_t poll; /* on epfd; referenced while a stream reads */
    uv_loop_t *loop;
    int epfd;
    unsigned nstreams; /* sockets in the set (until their stream closes) */
    unsigned nreading;
    struct mgw_reader_s *next; /* the thread's readers, one per loop */
} mgw_reader_t;

#define READ_BATCH 64 /* sockets taken from the set per turn of the loop */
#ifndef READS_MAX
#define READS_MAX 32 /* full buffers read from one socket per event */
#endif
#define READ_EVENTS (EPOLLIN | EPOLLRDHUP | EPOLLET)

static _Thread_local mgw_reader_t *readers;

static void reader_closed(uv_handle_t *h)
{
    mgw_reader_t *r = h->data;
    close(r->epfd);
    free(r);
}

static void reader_drop(mgw_reader_t *r)
{
    for (mgw_reader_t **p = &readers; *p; p = &(*p)->next)
        if (*p == r) {
            *p = r->next;
            break;
        }
    uv_close((uv_handle_t *)&r->poll, reader_closed);
}

static void reader_reading(mgw_reader_t *r, int delta)
{
    if (delta > 0 && r->nreading++ == 0) uv_ref((uv_handle_t *)&r->poll);
    if (delta < 0 && --r->nreading == 0) uv_unref((uv_handle_t *)&r->poll);
}

/* Reads s's socket after an event (its flags: events) or a re-arm: see above. */
static void read_ready(mgw_stream_t *s, int fd, uint32_t events)
{
    int ended = (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0;
    for (int i = 0; i < READS_MAX; i++) {
        uv_buf_t buf;
        alloc_cb((uv_handle_t *)&s->tcp, MGW_RBUF_SIZE, &buf);
        ssize_t n = read(fd, buf.base, buf.len);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            s->read_cb((uv_stream_t *)&s->tcp, 0, &buf); /* as libuv: nothing to read */
            return;
        }
        s->read_cb((uv_stream_t *)&s->tcp, n > 0 ? n : n == 0 ? UV_EOF : -errno, &buf);
        if (n <= 0) return; /* the end, or a failure */
        if (!s->reading || s->done) {
            /* stopped meanwhile: after a full buffer, or before an announced end, the
             * socket holds what no event will announce again */
            if ((size_t)n == buf.len || ended) s->missed = 1;
            return;
        }
        if ((size_t)n < buf.len && !ended) return; /* drained */
    }
    struct epoll_event ev = {.events = READ_EVENTS, .data.ptr = s};
    epoll_ctl(s->reader->epfd, EPOLL_CTL_MOD, fd, &ev); /* queued again, behind the others */
}

static void reader_cb(uv_poll_t *h, int status, int events)
{
    (void)status;
    (void)events;
    mgw_reader_t *r = h->data;
    struct epoll_event evs[READ_BATCH];
    int n = epoll_wait(r->epfd, evs, READ_BATCH, 0);
    for (int i = 0; i < n; i++) {
        mgw_stream_t *s = evs[i].data.ptr;
        if (s->done) continue;
        if (!s->reading) {
            s->missed = 1;
            continue;
        }
        int fd;
        if (uv_fileno((uv_handle_t *)&s->tcp, &fd) == 0) read_ready(s, fd, evs[i].events);
    }
}

/* The loop's reader, made on first use; NULL when no epoll set can be made. */
static mgw_reader_t *reader_of(uv_loop_t *loop)
{
    for (mgw_reader_t *r = readers; r; r = r->next)
        if (r->loop == loop) return r;
    int epfd = epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0) return NULL;
    mgw_reader_t *r = mgw_calloc(1, sizeof(*r));
    r->loop = loop;
    r->epfd = epfd;
    if (uv_poll_init(loop, &r->poll, epfd) != 0) {
        close(epfd);
        free(r);
        return NULL;
    }
    r->poll.data = r;
    uv_poll_start(&r->poll, UV_READABLE, reader_cb);
    uv_unref((uv_handle_t *)&r->poll);
    r->next = readers;
    readers = r;
    return r;
}

int mgw__stream_read(mgw_stream_t *s, uv_read_cb cb)
{
    if (s->reading || s->done || s->paused || s->stopped || s->eof) return 0;
    s->read_cb = cb;
    int fd;
    if (s->reader == NULL) {
        mgw_reader_t *r =
            uv_fileno((uv_handle_t *)&s->tcp, &fd) == 0 ? reader_of(s->tcp.loop) : NULL;
        struct epoll_event ev = {.events = READ_EVENTS, .data.ptr = s};
        if (r == NULL || epoll_ctl(r->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
            if (r && r->nstreams == 0) reader_drop(r);
            int rc = uv_read_start((uv_stream_t *)&s->tcp, alloc_cb, cb); /* libuv reads */
            if (rc == 0) s->reading = 1;
            return rc;
        }
        s->reader = r;
        r->nstreams++;
    } else if (s->missed && uv_fileno((uv_handle_t *)&s->tcp, &fd) == 0) {
        /* re-armed: queued now if it holds bytes */
        struct epoll_event ev = {.events = READ_EVENTS, .data.ptr = s};
        epoll_ctl(s->reader->epfd, EPOLL_CTL_MOD, fd, &ev);
    }
    s->missed = 0;
    s->reading = 1;
    reader_reading(s->reader, 1);
    return 0;
}

void mgw__stream_unread(mgw_stream_t *s)
{
    if (!s->reading) return;
    s->reading = 0;
    if (s->reader)
        reader_reading(s->reader, -1);
    else
        uv_read_stop((uv_stream_t *)&s->tcp);
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
    mgw__stream_unread(s);
    s->closing = 1;
    s->done = 1;
    mgw_reader_t *r = s->reader;
    if (r) { /* closing the socket takes it out of the set */
        s->reader = NULL;
        if (--r->nstreams == 0) reader_drop(r);
    }
    uv_close((uv_handle_t *)&s->tcp, closed_cb);
}

void mgw__stream_closed(mgw_stream_t *s)
{
    mgw__rbuf_unref(s->rbuf);
    mgw__rbuf_unref(s->held_buf);
    s->rbuf = s->held_buf = NULL;
    s->cbs->on_close(s);
}
