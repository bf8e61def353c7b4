/*
 * Client connections: reading, HTTP/1.x parsing into requests, pipelining, timeouts and
 * ordered writes. Request handling itself is in request.c.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/log.h"
#include "lua/lua_int.h"
#include "gw/req_int.h"

static const mgw_http1_cbs_t server_cbs;
static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);
static void parse(mgw_conn_t *c, mgw_rbuf_t *rb, const char *p, size_t n);
static void stop_reading(mgw_conn_t *c);

/* ---- buffers and writes ---- */

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

/* ---- lifetime ---- */

/* ---- TLS ---- */

/* Sends the ciphertext a TLS engine produced (handshake messages, records, alerts). */
void mgw__tls_flush(mgw_tls_t *t, uv_stream_t *stream, mgw_wq_t *q)
{
    char buf[16384 + 1024];
    size_t n;
    while ((n = mgw_tls_pending(t, buf, sizeof(buf))) > 0) {
        uv_buf_t b = uv_buf_init(buf, (unsigned)n);
        mgw__write(stream, q, &b, 1, NULL);
    }
}

static void tls_flush(mgw_conn_t *c)
{
    mgw__tls_flush(c->tls, (uv_stream_t *)&c->tcp, &c->wq);
}

int mgw__tls_send(mgw_tls_t *t, uv_stream_t *stream, mgw_wq_t *q, const uv_buf_t *bufs, int nbufs)
{
    /* Pieces that fit one TLS record (head, chunk framing, body) are encrypted as one: a
     * record per piece would cost a header, a MAC and a cipher call each. */
    size_t total = 0;
    for (int i = 0; i < nbufs; i++)
        total += bufs[i].len;
    if (nbufs > 1 && total <= 16384) {
        char one[16384];
        size_t off = 0;
        for (int i = 0; i < nbufs; i++) {
            memcpy(one + off, bufs[i].base, bufs[i].len);
            off += bufs[i].len;
        }
        if (mgw_tls_write(t, one, off) != MGW_TLS_OK) return UV_EPROTO;
    } else {
        for (int i = 0; i < nbufs; i++)
            if (mgw_tls_write(t, bufs[i].base, bufs[i].len) != MGW_TLS_OK) return UV_EPROTO;
    }
    mgw__tls_flush(t, stream, q);
    return 0;
}

int mgw__conn_write(mgw_conn_t *c, const uv_buf_t *bufs, int nbufs, mgw_rbuf_t *ref)
{
    if (c->tls == NULL) return mgw__write((uv_stream_t *)&c->tcp, &c->wq, bufs, nbufs, ref);
    return mgw__tls_send(c->tls, (uv_stream_t *)&c->tcp, &c->wq, bufs, nbufs);
}

/* The handshake is over: keep what requests need to know of it, unpin the generation. */
static void tls_established(mgw_conn_t *c)
{
    c->tls_ready = 1;
    c->tls_pool = mgw_pool_create(4096);
    const mgw_domain_t *d = mgw_tls_site_data(c->tls);
    if (d) c->tls_host = mgw_pool_strdup(c->tls_pool, d->host);
    mgw_client_cert_t cert;
    if (mgw_tls_client_cert(c->tls, c->tls_pool, &cert) == 0) {
        c->client_cert = mgw_pool_alloc(c->tls_pool, sizeof(cert));
        *c->client_cert = cert;
    }
    mgw_gen_unref(c->tls_gen);
    c->tls_gen = NULL;
}

static void close_after_write(mgw_conn_t *c);
static void arm_output_timer(mgw_conn_t *c);

/* A handshake or record failed: one error-log line, an answer if one makes sense, close. */
static void tls_failed(mgw_conn_t *c)
{
    mgw_log_info("TLS from %s: %s", c->peer, mgw_tls_error(c->tls));
    if (mgw_tls_plain_http(c->tls)) {
        static const char body[] =
            "{\"message\":\"The plain HTTP request was sent to HTTPS port\"}";
        char head[512], id[24];
        mgw__make_id(c->w, id);
        int n = snprintf(head, sizeof(head),
                         "HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\n"
                         "x-amzn-errortype: BadRequestException\r\ndate: %s\r\n"
                         "apigw-requestid: %s\r\nconnection: close\r\n"
                         "content-length: %zu\r\n\r\n",
                         mgw__date(c->w), id, sizeof(body) - 1);
        uv_buf_t b[2] = {uv_buf_init(head, (unsigned)n),
                         uv_buf_init((char *)body, sizeof(body) - 1)};
        mgw__write((uv_stream_t *)&c->tcp, &c->wq, b, 2, NULL);
    } else {
        tls_flush(c); /* the alert */
    }
    if (c->req) {
        mgw_req_t *r = c->req;
        c->req = NULL;
        if (r->px) mgw__proxy_abort(r);
        mgw__req_free(r);
    }
    close_after_write(c);
}

/* Decrypts what arrived (n may be 0: drain what OpenSSL holds) and parses it. */
static void tls_read(mgw_conn_t *c, const char *p, size_t n)
{
    if (n) mgw_tls_feed(c->tls, p, n);
    while (!c->done && !c->paused) {
        if (c->plain == NULL || c->plain->refs > 1) {
            mgw__rbuf_unref(c->plain);
            c->plain = mgw__rbuf_new();
        }
        ssize_t got = mgw_tls_read(c->tls, c->plain->data, c->plain->cap);
        if (!c->tls_ready && mgw_tls_handshake_done(c->tls)) tls_established(c);
        if (got > 0) {
            mgw_rbuf_t *rb = c->plain;
            mgw__rbuf_ref(rb);
            parse(c, rb, rb->data, (size_t)got);
            mgw__rbuf_unref(rb);
            continue;
        }
        if (got == MGW_TLS_WANT) break;
        if (got == MGW_TLS_CLOSED) {
            c->eof = 1;
            stop_reading(c);
            if (!(c->req && c->req->body_done && !c->req->resp_done)) mgw__conn_close(c);
            return;
        }
        tls_failed(c);
        return;
    }
    if (!c->closing) tls_flush(c);
}

static void handle_closed(uv_handle_t *h)
{
    mgw_conn_t *c = h->data;
    if (--c->handles > 0) return;
    mgw_tls_free(c->tls);
    mgw__rbuf_unref(c->plain);
    mgw_pool_destroy(c->tls_pool);
    mgw_gen_unref(c->tls_gen);
    mgw__rbuf_unref(c->rbuf);
    mgw__rbuf_unref(c->pend_buf);
    mgw_http1_destroy(c->parser);
    free(c);
}

void mgw__conn_close(mgw_conn_t *c)
{
    if (c->closing) return;
    c->closing = 1;
    c->done = 1;
    if (c->req) {
        mgw_req_t *r = c->req;
        c->req = NULL;
        if (r->px) mgw__proxy_abort(r);
        if (!r->resp_done && r->status == 0) r->status = 499; /* the client went away */
        mgw__req_free(r);
    }
    /* unlink */
    if (c->prev)
        c->prev->next = c->next;
    else
        c->w->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    uv_close((uv_handle_t *)&c->timer.t, handle_closed);
    uv_close((uv_handle_t *)&c->tcp, handle_closed);
}

static void shutdown_cb(uv_shutdown_t *req, int status)
{
    (void)status;
    mgw_conn_t *c = req->data;
    free(req);
    mgw__conn_close(c);
}

/* Closes after everything queued has been written. */
static void close_after_write(mgw_conn_t *c)
{
    if (c->closing || c->done) return;
    c->done = 1;
    uv_read_stop((uv_stream_t *)&c->tcp);
    c->reading = 0;
    mgw_deadline_clear(&c->timer);
    if (c->tls) {
        mgw_tls_shutdown(c->tls); /* close_notify */
        tls_flush(c);
    }
    arm_output_timer(c); /* the shutdown waits for the client to take what is queued */
    uv_shutdown_t *req = mgw_malloc(sizeof(*req));
    req->data = c;
    if (uv_shutdown(req, (uv_stream_t *)&c->tcp, shutdown_cb) != 0) {
        free(req);
        mgw__conn_close(c);
    }
}

/* ---- timers ---- */

static void timeout_cb(uv_timer_t *t)
{
    mgw_conn_t *c = t->data;
    mgw_req_t *r = c->req;
    if (r && !r->head_done) {
        /* The head did not arrive in time (slowloris): answer 408 and close. */
        r->keepalive = 0;
        r->error_reason = "Request head timed out";
        mgw__req_fail(r, MGW_GW_REQUEST_TIMEOUT, NULL);
        return;
    }
    if (r && !r->body_done && !r->resp_started) {
        r->keepalive = 0;
        r->error_reason = "Request body timed out";
        mgw__req_fail(r, MGW_GW_REQUEST_TIMEOUT, NULL);
        return;
    }
    if (c->tls && !c->tls_ready) mgw_log_info("TLS from %s: handshake timed out", c->peer);
    mgw__conn_close(c);
}

static void arm_timer(mgw_conn_t *c, uint64_t ms)
{
    mgw_deadline_set(&c->timer, timeout_cb, ms);
}

static void send_timeout_cb(uv_timer_t *t)
{
    mgw_conn_t *c = t->data;
    mgw_log_info("client %s took none of the response for %g s (timeouts.send)", c->peer,
                 (double)c->w->gen->send_timeout_ms / 1000);
    mgw__conn_close(c);
}

/*
 * No request is under way (between two, or closing after the writes): while the client
 * still has part of a response to take, timeouts.send bounds each wait for it to take
 * more (nginx's send_timeout); the idle time starts once it has taken everything, so
 * that a slow download is not cut off as an idle connection.
 */
static void arm_output_timer(mgw_conn_t *c)
{
    if (c->wq.pending)
        mgw_deadline_set(&c->timer, send_timeout_cb, c->w->gen->send_timeout_ms);
    else if (!c->done)
        arm_timer(c, c->w->gen->idle_timeout_ms);
}

/* ---- reading ---- */

static void alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    (void)hint;
    mgw_conn_t *c = h->data;
    /* Reuse the buffer when no pending write still points into it. */
    if (c->rbuf == NULL || c->rbuf->refs > 1) {
        mgw__rbuf_unref(c->rbuf);
        c->rbuf = mgw__rbuf_new();
    }
    buf->base = c->rbuf->data;
    buf->len = c->rbuf->cap;
}

static void start_reading(mgw_conn_t *c)
{
    if (c->reading || c->done || c->paused || c->read_blocked || c->eof) return;
    if (uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb) == 0) c->reading = 1;
}

static void stop_reading(mgw_conn_t *c)
{
    if (!c->reading) return;
    uv_read_stop((uv_stream_t *)&c->tcp);
    c->reading = 0;
}

void mgw__conn_block_read(mgw_conn_t *c)
{
    c->read_blocked = 1;
    stop_reading(c);
}

void mgw__conn_unblock_read(mgw_conn_t *c)
{
    c->read_blocked = 0;
    start_reading(c);
}

/* Bytes of later requests that arrive while one waits for its response (pipelining). */
static void queue_pending(mgw_conn_t *c, const char *p, size_t n)
{
    if (c->pend_len == 0) {
        /* take the read buffer itself: alloc_cb sees the extra reference and makes a new one */
        mgw__rbuf_ref(c->rbuf);
        mgw__rbuf_unref(c->pend_buf);
        c->pend_buf = c->rbuf;
        c->pend = p;
        c->pend_len = n;
    } else {
        size_t total = c->pend_len + n;
        mgw_rbuf_t *b = mgw_malloc(sizeof(*b) + (total > MGW_RBUF_SIZE ? total : MGW_RBUF_SIZE));
        b->refs = 1;
        b->cap = total > MGW_RBUF_SIZE ? total : MGW_RBUF_SIZE;
        memcpy(b->data, c->pend, c->pend_len);
        memcpy(b->data + c->pend_len, p, n);
        mgw__rbuf_unref(c->pend_buf);
        c->pend_buf = b;
        c->pend = b->data;
        c->pend_len = total;
    }
    /* a client that pipelines faster than we answer waits for us */
    if (c->pend_len > 256 * 1024) stop_reading(c);
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    (void)buf;
    mgw_conn_t *c = s->data;
    if (nread == 0) return;
    if (nread < 0) {
        c->eof = 1;
        stop_reading(c);
        /* A request whose response is under way may still finish; otherwise close. */
        if (c->req && c->req->body_done && !c->req->resp_done) return;
        mgw__conn_close(c);
        return;
    }
    if (c->tls) {
        tls_read(c, c->rbuf->data, (size_t)nread);
        return;
    }
    if (c->paused) {
        queue_pending(c, c->rbuf->data, (size_t)nread);
        return;
    }
    mgw_rbuf_t *rb = c->rbuf;
    mgw__rbuf_ref(rb);
    parse(c, rb, rb->data, (size_t)nread);
    mgw__rbuf_unref(rb);
}

static void parse(mgw_conn_t *c, mgw_rbuf_t *rb, const char *p, size_t n)
{
    mgw_rbuf_t *saved = c->rbuf;
    /* on_body forwards slices of the buffer being parsed: make it the current one. */
    c->rbuf = rb;
    size_t used = 0;
    int rc = mgw_http1_execute(c->parser, p, n, &used);
    c->rbuf = saved;
    if (c->done) return;
    if (rc == MGW_HTTP1_PAUSE) {
        /* A request is complete and its response is not: keep the rest for later. A plain
         * connection keeps reading (stopping and restarting the watcher costs two system
         * calls a request); what arrives meanwhile is queued (read_cb). TLS stops: the
         * bytes would pile up in OpenSSL. */
        c->paused = 1;
        if (c->tls) stop_reading(c);
        if (used < n) {
            mgw__rbuf_ref(rb);
            mgw__rbuf_unref(c->pend_buf);
            c->pend_buf = rb;
            c->pend = p + used;
            c->pend_len = n - used;
        }
        return;
    }
    if (rc == MGW_HTTP1_ERROR) {
        mgw_req_t *r = c->req;
        if (r == NULL) r = c->req = mgw__req_new(c);
        if (r->resp_started) {
            mgw__conn_close(c);
            return;
        }
        r->keepalive = 0;
        if (r->error_type == MGW_GW_NONE) {
            /* llhttp refused the bytes itself: its reason says why */
            r->error_type = MGW_GW_BAD_REQUEST;
            r->error_reason = mgw_http1_error(c->parser);
        }
        mgw__req_fail(r, r->error_type, NULL);
        return;
    }
}

/* ---- parser callbacks ---- */

static int head_append(mgw_req_t *r, const char *p, size_t n)
{
    if (r->head_len + n > r->head_cap) {
        size_t max = r->gen->max_header_size;
        if (r->head_len + n > max) {
            r->error_type = MGW_GW_REQUEST_HEADERS_TOO_LARGE;
            return -1;
        }
        /* move to a buffer of the largest size and point target and headers at it */
        char *big = mgw_pool_alloc(r->pool, max);
        memcpy(big, r->head, r->head_len);
        if (r->target.p) r->target.p = big + (r->target.p - r->head);
        for (int i = 0; i < r->nheaders; i++) {
            r->headers[i].name.p = big + (r->headers[i].name.p - r->head);
            r->headers[i].value.p = big + (r->headers[i].value.p - r->head);
        }
        r->head = big;
        r->head_cap = max;
    }
    memcpy(r->head + r->head_len, p, n);
    r->head_len += n;
    return 0;
}

static int on_begin(void *ud)
{
    mgw_conn_t *c = ud;
    if (c->req == NULL) c->req = mgw__req_new(c);
    arm_timer(c, c->w->gen->header_timeout_ms);
    return 0;
}

static int on_url(void *ud, const char *p, size_t n)
{
    mgw_req_t *r = ((mgw_conn_t *)ud)->req;
    if (r->target.p == NULL) r->target.p = r->head + r->head_len;
    if (head_append(r, p, n)) return -1;
    r->target.n += n;
    return 0;
}

static int on_field(void *ud, const char *p, size_t n)
{
    mgw_req_t *r = ((mgw_conn_t *)ud)->req;
    if (r->hstate != 1) {
        mgw_hdr_t *h = mgw__req_push_header(r);
        h->name = (mgw_str_t){r->head + r->head_len, 0};
        h->value = (mgw_str_t){r->head + r->head_len, 0};
        r->hstate = 1;
    }
    /* Header names are stored lower case: every lookup compares lower case. llhttp lets a
     * space into a name ("Transfer Encoding"); a name is a token (RFC 9110 5.1), checked
     * in the same pass. */
    mgw_hdr_t *h = &r->headers[r->nheaders - 1];
    size_t at = r->head_len;
    if (head_append(r, p, n)) return -1;
    for (size_t i = 0; i < n; i++) {
        unsigned char lc = mgw_http1_tchar[(unsigned char)r->head[at + i]];
        if (lc == 0) {
            r->error_type = MGW_GW_BAD_REQUEST;
            r->error_reason = "Invalid header name";
            return -1;
        }
        r->head[at + i] = (char)lc;
    }
    h->name.n += n;
    return 0;
}

static int on_value(void *ud, const char *p, size_t n)
{
    mgw_req_t *r = ((mgw_conn_t *)ud)->req;
    mgw_hdr_t *h = &r->headers[r->nheaders - 1];
    if (r->hstate != 2) {
        h->value.p = r->head + r->head_len;
        r->hstate = 2;
        /* the name is complete: count what on_headers_complete checks */
        if (h->name.n == 4 && memcmp(h->name.p, "host", 4) == 0) {
            r->nhost++;
        } else if (h->name.n == 17 && memcmp(h->name.p, "transfer-encoding", 17) == 0) {
            r->nte++;
            r->te_header = r->nheaders - 1;
        }
    }
    if (head_append(r, p, n)) return -1;
    h->value.n += n;
    return 0;
}

/* 1 when s is "chunked", case-insensitive, with optional whitespace around it. */
static int is_chunked(mgw_str_t s)
{
    while (s.n && (s.p[0] == ' ' || s.p[0] == '\t'))
        s.p++, s.n--;
    while (s.n && (s.p[s.n - 1] == ' ' || s.p[s.n - 1] == '\t'))
        s.n--;
    return mgw_str_ieq(s, "chunked");
}

/*
 * Why a complete head cannot be served unambiguously, or NULL. It is checked before the
 * request is dispatched: a refused request reaches no backend.
 */
static const char *head_invalid(const mgw_req_t *r, const mgw_http1_head_t *hd)
{
    /* llhttp takes HTTP/0.9 ("GET /x") and "HTTP/2.0" request lines */
    if (hd->major != 1) return "Unsupported HTTP version";
    /* moongate picks the API by Host: none in HTTP/1.1, or two, is 400 (RFC 9112 3.2) */
    if (r->nhost > 1) return "Multiple Host headers";
    if (r->nhost == 0 && hd->minor >= 1) return "Missing Host header";
    /* Only "chunked" is decoded (and the backend gets a new chunked body): another coding
     * would reach it undeclared. HTTP/1.0 has no Transfer-Encoding (RFC 9112 6.1). */
    if (r->nte && (r->nte > 1 || hd->minor == 0 || !is_chunked(r->headers[r->te_header].value)))
        return "Unsupported Transfer-Encoding";
    return NULL;
}

static int on_headers_complete(void *ud, const mgw_http1_head_t *hd)
{
    mgw_conn_t *c = ud;
    mgw_req_t *r = c->req;
    r->method = (mgw_str_t){hd->method, strlen(hd->method)};
    if ((r->error_reason = head_invalid(r, hd)) != NULL) {
        r->error_type = MGW_GW_BAD_REQUEST;
        return -1;
    }
    r->head_done = 1;
    r->major = hd->major;
    r->minor = hd->minor;
    r->keepalive = hd->keepalive && !c->w->shutting_down;
    r->has_length = hd->has_length;
    r->content_length = hd->content_length;
    r->chunked = hd->chunked;
    mgw_deadline_clear(&c->timer);
    if (r->has_length || r->chunked) arm_timer(c, c->w->gen->body_timeout_ms);
    mgw__req_dispatch(r);
    return c->done || c->req != r ? -1 : 0;
}

static int on_body(void *ud, const char *p, size_t n)
{
    mgw_conn_t *c = ud;
    mgw_req_t *r = c->req;
    if (r == NULL) return -1;
    r->body_received += n;
    if (r->body_received > c->w->gen->max_body_size) {
        if (r->resp_started) {
            mgw__conn_close(c);
            return -1;
        }
        r->keepalive = 0;
        mgw__req_fail(r, MGW_GW_REQUEST_TOO_LARGE, NULL);
        return -1;
    }
    arm_timer(c, c->w->gen->body_timeout_ms);
    if (r->px && !r->discard_body)
        mgw__proxy_body(r, p, n, c->rbuf);
    else if (r->lua && !r->resp_started)
        mgw__hooks_body(r, p, n); /* hooks still running */
    return c->done || c->req != r ? -1 : 0;
}

static void finish_request(mgw_conn_t *c);

static int on_complete(void *ud)
{
    mgw_conn_t *c = ud;
    mgw_req_t *r = c->req;
    if (r == NULL) return -1;
    r->body_done = 1;
    mgw_deadline_clear(&c->timer);
    if (r->px && !r->discard_body)
        mgw__proxy_body_done(r);
    else if (r->lua && !r->resp_started)
        mgw__hooks_body_done(r); /* may answer r */
    if (c->done) return MGW_HTTP1_PAUSE;
    if (c->req != r) return 0; /* answered and finished: parsing goes on */
    if (r->resp_done) {
        /* The response went out before the body finished arriving (e.g. a mock): the
         * request ends here, and parsing may go straight on to the next one. */
        finish_request(c);
        return c->done ? MGW_HTTP1_PAUSE : 0;
    }
    return MGW_HTTP1_PAUSE;
}

static const mgw_http1_cbs_t server_cbs = {
    .on_message_begin = on_begin,
    .on_url = on_url,
    .on_header_field = on_field,
    .on_header_value = on_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_complete,
};

/* ---- request completion ---- */

/* Ends the current request and either closes or moves on to the next one. */
static void finish_request(mgw_conn_t *c)
{
    mgw_req_t *r = c->req;
    int keep = r->keepalive && !r->resp_close && !c->w->shutting_down && !c->eof;
    c->req = NULL;
    mgw__req_free(r);
    if (!keep) {
        close_after_write(c);
        return;
    }
    arm_output_timer(c);
    if (c->paused) {
        c->paused = 0;
        mgw_http1_resume(c->parser);
        if (c->pend_len) {
            mgw_rbuf_t *rb = c->pend_buf;
            const char *p = c->pend;
            size_t n = c->pend_len;
            c->pend_buf = NULL;
            c->pend = NULL;
            c->pend_len = 0;
            parse(c, rb, p, n);
            mgw__rbuf_unref(rb);
        }
        /* OpenSSL may hold decrypted bytes of the next requests: no socket read will
         * bring them, so drain them now. */
        if (c->tls && !c->paused && !c->done) tls_read(c, NULL, 0);
    }
    start_reading(c);
}

void mgw__conn_response_done(mgw_conn_t *c)
{
    mgw_req_t *r = c->req;
    if (r == NULL) return;
    if (!r->body_done) {
        /* Keep reading the rest of the body and drop it, unless the request is to be
         * abandoned anyway. */
        if (!r->keepalive || r->resp_close) {
            close_after_write(c);
            mgw_req_t *req = c->req;
            c->req = NULL;
            mgw__req_free(req);
            return;
        }
        r->discard_body = 1;
        return;
    }
    finish_request(c);
}

void mgw__conn_shutdown(mgw_conn_t *c)
{
    if (c->req == NULL)
        close_after_write(c); /* idle keep-alive connection */
    else
        c->req->keepalive = 0; /* ends after its response */
}

/* ---- accept ---- */

static void conn_progress(mgw_wq_t *q)
{
    mgw_conn_t *c = (mgw_conn_t *)((char *)q - offsetof(mgw_conn_t, wq));
    if (c->closing) return;
    if (c->req == NULL)
        arm_output_timer(c);
    else if (c->req->px)
        mgw__proxy_client_progress(c->req);
}

static void conn_drained(mgw_wq_t *q)
{
    mgw_conn_t *c = (mgw_conn_t *)((char *)q - offsetof(mgw_conn_t, wq));
    if (c->req && c->req->px) mgw__proxy_client_drained(c->req);
}

void mgw__conn_accept(mgw_worker_t *w, uv_stream_t *server, int listen_idx)
{
    mgw_conn_t *c = mgw_calloc(1, sizeof(*c));
    c->w = w;
    c->listen_idx = listen_idx;
    uv_tcp_init(&w->loop, &c->tcp);
    mgw_deadline_init(&w->loop, &c->timer, c);
    c->tcp.data = c;
    c->handles = 2;
    c->wq.progress = conn_progress;
    c->wq.drained = conn_drained;
    c->next = w->conns;
    if (w->conns) w->conns->prev = c;
    w->conns = c;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
        mgw__conn_close(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    strcpy(c->peer, "-");
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) == 0) {
        if (ss.ss_family == AF_INET)
            uv_ip4_name((struct sockaddr_in *)&ss, c->peer, sizeof(c->peer));
        else
            uv_ip6_name((struct sockaddr_in6 *)&ss, c->peer, sizeof(c->peer));
    }
    c->parser = mgw_http1_create(1, &server_cbs, c);
    mgw_tls_ctx_t *tls = w->gen->listen[listen_idx].tls;
    if (tls) {
        /* The SNI sites live in the generation: keep it until the handshake is over. */
        c->tls = mgw_tls_new(tls);
        mgw_tls_set_check(c->tls, mgw__revocation_check, c);
        c->tls_gen = w->gen;
        mgw_gen_ref(w->gen);
    }
    arm_timer(c, w->gen->header_timeout_ms); /* also bounds the TLS handshake */
    start_reading(c);
}
