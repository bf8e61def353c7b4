/*
 * The HTTP/1 client (see client.h): per-loop pools of keep-alive connections per origin,
 * requests streamed out and responses streamed in with backpressure both ways, timeouts,
 * and one retry when a pooled connection turns out to have been closed by the server
 * before it answered.
 *
 * A connection's life: new (resolving, connecting, TLS handshake) -> ready (serving one
 * request: its head went out, the response is parsed as it arrives) -> idle in its
 * origin's list (read on, so that the server's close or stray bytes close it) -> reused,
 * or closed. A request is detached from its connection before its last callback runs,
 * so that the callback may start the next request at once, even on the same connection.
 *
 * A connection is a stream (net/stream.h: plain TCP, or TLS with a client engine), so
 * nothing here knows whether it is encrypted: the stream decrypts, finishes the
 * handshake (on_handshake), holds what arrives while the reader pauses, and keeps the
 * TLS session for the origin's next connection.
 */
#include "http/client.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/stat.h"

#define MAX_IDLE_PER_ORIGIN 64
#define IDLE_MS 30000
#define MAX_RESPONSE_HEAD 65536
#define MAX_RESPONSE_HEADERS 100
/* Origins of a pool that get series of their own; later ones count as origin="(other)",
 * so that moongate.http calls to ever new hosts cannot grow GET /metrics without end. */
#define MAX_ORIGIN_SERIES 256

typedef struct hc_origin_s hc_origin_t;
typedef struct hc_resolve_s hc_resolve_t;

/*
 * An origin: host, port and, for https, the TLS identity (CA bundle and client
 * certificate), so that connections of different identities never mix.
 */
struct hc_origin_s {
    hc_origin_t *next;
    char *host;
    int port;
    char *tls_id;  /* NULL for http */
    void *session; /* last TLS session, resumed by the next connection */
    mgw_hc_conn_t *idle;
    int nidle;
    /* GET /metrics: the origin label ("https://host:port") and its series */
    char *label;
    mgw_stat_t st_open, st_idle, st_connects, st_reuses;
};

/* A client context made by mgw_hc_pool_tls. */
typedef struct hc_ctx_s {
    struct hc_ctx_s *next;
    char *ca_file; /* NULL: the system store */
    mgw_tls_ctx_t *ctx;
} hc_ctx_t;

struct mgw_hc_pool_s {
    uv_loop_t *loop;
    hc_origin_t *origins;
    hc_ctx_t *ctxs;
    mgw_hc_stats_t stats;
    int norigins;
    int draining; /* connections close when their request ends (shutdown) */
};

struct hc_resolve_s {
    uv_getaddrinfo_t req;
    mgw_hc_conn_t *conn; /* NULL once the connection was abandoned */
};

struct mgw_hc_conn_s {
    mgw_stream_t stream;  /* plain TCP or TLS; stream.data is the connection */
    mgw_deadline_t timer; /* idle, response, body and pause timeouts */
    uv_connect_t connect;
    mgw_hc_pool_t *pool;
    hc_origin_t *origin;
    mgw_http1_t *parser;
    mgw_hc_req_t *q; /* the request it serves, or NULL */
    hc_resolve_t *resolving;
    mgw_hc_conn_t *next_idle;
    int handles;
    mgw_rbuf_t *cur; /* the buffer being parsed: body bytes are handed on from it */
    unsigned closing : 1, reused : 1, idle : 1, ready : 1, complete : 1;
};

static const mgw_http1_cbs_t hc_response_cbs;
static void conn_close(mgw_hc_conn_t *c);
static void conn_ready(mgw_hc_conn_t *c);
static void conn_input(mgw_hc_conn_t *c, mgw_rbuf_t *rb, const char *p, size_t n);
static void conn_eof(mgw_hc_conn_t *c, int err);
static void conn_fail(mgw_hc_conn_t *c, mgw_hc_err_t kind, int uverr, const char *detail);
static int attach(mgw_hc_pool_t *p, mgw_hc_req_t *q, mgw_hc_err_t *kind, const char **detail);

/* ---- metrics (README "Metrics"): per origin, counted by each worker in its own cells ---- */

static mgw_stat_family_t f_open = {
    .name = "moongate_upstream_connections",
    .type = "gauge",
    .help = "Open connections to each backend origin: connecting, serving a request or idle.",
    .labels = {"origin"},
};
static mgw_stat_family_t f_idle = {
    .name = "moongate_upstream_idle_connections",
    .type = "gauge",
    .help = "Idle keep-alive connections to each backend origin, waiting in the pool.",
    .labels = {"origin"},
};
static mgw_stat_family_t f_connects = {
    .name = "moongate_upstream_connects_total",
    .type = "counter",
    .help = "New connections started to each backend origin (resolve, connect, TLS "
            "handshake); those that failed are in moongate_upstream_connect_failures_total too.",
    .labels = {"origin"},
};
static mgw_stat_family_t f_reuses = {
    .name = "moongate_upstream_reuses_total",
    .type = "counter",
    .help = "Requests sent on a pooled keep-alive connection to each backend origin.",
    .labels = {"origin"},
};
static mgw_stat_family_t f_connect_failures = {
    .name = "moongate_upstream_connect_failures_total",
    .type = "counter",
    .help = "New connections to each backend origin that failed before the request went "
            "out, by reason.",
    .labels = {"origin", "reason"},
};
static mgw_stat_family_t f_timeouts = {
    .name = "moongate_upstream_timeouts_total",
    .type = "counter",
    .help = "Requests to each backend origin that timed out, by phase: connect (resolve, "
            "connect, TLS handshake), response (the head) or body (between two reads).",
    .labels = {"origin", "phase"},
};

/* Why a new connection failed: by the kind of failure and, when given, libuv's error. */
static const struct {
    mgw_hc_err_t kind;
    int uv_error; /* 0: any */
    const char *reason;
} connect_reasons[] = {
    {MGW_HC_ERESOLVE, 0, "dns"},
    {MGW_HC_ETLS, 0, "tls"},
    {MGW_HC_ETIMEOUT, 0, "timeout"},
    {MGW_HC_ECONNECT, UV_ECONNREFUSED, "refused"},
    {MGW_HC_ECONNECT, UV_ETIMEDOUT, "timeout"},
    {MGW_HC_ECONNECT, UV_ENETUNREACH, "unreachable"},
    {MGW_HC_ECONNECT, UV_EHOSTUNREACH, "unreachable"},
    {MGW_HC_ECONNECT, UV_ECONNRESET, "reset"},
    {MGW_HC_EREAD, UV_ECONNRESET, "reset"},
    {MGW_HC_ECLOSED, 0, "closed"},
};

static const char *connect_reason(mgw_hc_err_t kind, int uv_error)
{
    for (size_t i = 0; i < sizeof(connect_reasons) / sizeof(connect_reasons[0]); i++)
        if (connect_reasons[i].kind == kind &&
            (connect_reasons[i].uv_error == 0 || connect_reasons[i].uv_error == uv_error))
            return connect_reasons[i].reason;
    return "other";
}

static void count_connect_failure(const hc_origin_t *o, mgw_hc_err_t kind, int uv_error)
{
    const char *v[] = {o->label, connect_reason(kind, uv_error)};
    mgw_stat_inc(&f_connect_failures, v);
}

/* Finds o's series (once per origin and pool: workers' pools exist only after
 * mgw_stat_init; the CLI's count nothing). */
static void origin_stats(mgw_hc_pool_t *p, hc_origin_t *o)
{
    if (p->norigins++ < MAX_ORIGIN_SERIES) {
        const char *host = o->host;
        int v6 = strchr(host, ':') != NULL;
        size_t n = strlen(host) + 32;
        o->label = mgw_malloc(n);
        snprintf(o->label, n, "%s://%s%s%s:%d", o->tls_id ? "https" : "http", v6 ? "[" : "", host,
                 v6 ? "]" : "", o->port);
    } else {
        o->label = mgw_strdup("(other)");
    }
    const char *v[] = {o->label};
    o->st_open = mgw_stat_series(&f_open, v);
    o->st_idle = mgw_stat_series(&f_idle, v);
    o->st_connects = mgw_stat_series(&f_connects, v);
    o->st_reuses = mgw_stat_series(&f_reuses, v);
}

/* ---- connections ---- */

/* One of the connection's two handles (the stream's socket, the timer) has closed. */
static void conn_closed(mgw_hc_conn_t *c)
{
    if (--c->handles > 0) return;
    mgw_http1_destroy(c->parser);
    free(c);
}

static void timer_closed(uv_handle_t *h)
{
    conn_closed(h->data);
}

static void idle_remove(mgw_hc_conn_t *c)
{
    if (!c->idle) return;
    hc_origin_t *o = c->origin;
    for (mgw_hc_conn_t **p = &o->idle; *p; p = &(*p)->next_idle) {
        if (*p == c) {
            *p = c->next_idle;
            o->nidle--;
            mgw_stat_add(o->st_idle, -1);
            break;
        }
    }
    c->idle = 0;
}

/* Closes c (idempotent); a request on it is detached without a callback. */
static void conn_close(mgw_hc_conn_t *c)
{
    if (c->closing) return;
    c->closing = 1;
    idle_remove(c);
    mgw_stat_add(c->origin->st_open, -1);
    if (c->resolving) {
        c->resolving->conn = NULL;
        c->resolving = NULL;
    }
    if (c->q) {
        c->q->conn = NULL;
        c->q = NULL;
    }
    uv_close((uv_handle_t *)&c->timer.t, timer_closed);
    mgw_stream_close(&c->stream);
}

static void idle_timeout_cb(uv_timer_t *t)
{
    conn_close(t->data);
}

static void timeout_cb(uv_timer_t *t)
{
    conn_fail(t->data, MGW_HC_ETIMEOUT, 0, "timed out");
}

static void stall_cb(uv_timer_t *t)
{
    conn_fail(t->data, MGW_HC_ESTALLED, 0, "paused too long");
}

/* Sets c's deadline ms from now, or sooner when the request's total_ms ends first. */
static void arm(mgw_hc_conn_t *c, uv_timer_cb cb, uint64_t ms)
{
    const mgw_hc_req_t *q = c->q;
    if (q && q->end_at) {
        uint64_t now = uv_now(c->pool->loop);
        uint64_t left = q->end_at > now ? q->end_at - now : 0;
        if (left < ms) {
            ms = left;
            cb = timeout_cb;
        }
    }
    mgw_deadline_set(&c->timer, cb, ms ? ms : 1);
}

/* ---- the stream's callbacks (s->data: the connection) ---- */

static void s_read(mgw_stream_t *s, mgw_rbuf_t *rb, const char *p, size_t n)
{
    conn_input(s->data, rb, p, n);
}

static void s_eof(mgw_stream_t *s)
{
    conn_eof(s->data, s->err);
}

/* https: the handshake is over (the server's certificate passed), the request goes out. */
static void s_handshake(mgw_stream_t *s, mgw_tls_t *t)
{
    mgw_hc_conn_t *c = s->data;
    if (mgw_tls_resumed(t)) c->pool->stats.resumed++;
    if (!c->ready && c->q) conn_ready(c);
}

static void s_refused(mgw_stream_t *s, mgw_tls_t *t, int plain_http)
{
    (void)plain_http;
    conn_fail(s->data, MGW_HC_ETLS, 0, mgw_tls_error(t));
}

static void s_drained(mgw_stream_t *s)
{
    mgw_hc_conn_t *c = s->data;
    if (c->q && c->q->cbs->on_drain) c->q->cbs->on_drain(c->q);
}

/* (The client never shuts a stream down: it closes it.) */
static void s_shutdown(mgw_stream_t *s)
{
    conn_close(s->data);
}

static void s_close(mgw_stream_t *s)
{
    conn_closed(s->data);
}

static const mgw_stream_cbs_t hc_stream_cbs = {
    .on_read = s_read,
    .on_eof = s_eof,
    .on_handshake = s_handshake,
    .on_refused = s_refused,
    .on_drained = s_drained,
    .on_shutdown = s_shutdown,
    .on_close = s_close,
};

/* A connection to o for requests like q (https: a TLS stream with q's context, checking
 * q's host and resuming the origin's last session). q may be NULL: plain TCP. */
static mgw_hc_conn_t *conn_new(mgw_hc_pool_t *p, hc_origin_t *o, const mgw_hc_req_t *q)
{
    mgw_hc_conn_t *c = mgw_calloc(1, sizeof(*c));
    c->pool = p;
    c->origin = o;
    mgw_stream_tls_opts_t tls = {0};
    if (q && q->tls) {
        tls.ctx = q->tls;
        tls.host = q->host;
        tls.session = o->session;
    }
    mgw_stream_init(&c->stream, p->loop, &hc_stream_cbs, c, &tls);
    mgw_deadline_init(p->loop, &c->timer, c);
    c->handles = 2;
    c->parser = mgw_http1_create(0, &hc_response_cbs, c);
    p->stats.opened++;
    mgw_stat_add(o->st_open, 1);
    mgw_stat_add(o->st_connects, 1);
    return c;
}

static void start_reading(mgw_hc_conn_t *c)
{
    if (!c->closing) mgw_stream_read_start(&c->stream);
}

static void conn_write(mgw_hc_conn_t *c, const uv_buf_t *bufs, int nbufs, mgw_rbuf_t *ref)
{
    mgw_stream_write(&c->stream, bufs, nbufs, ref);
}

/* ---- the pool ---- */

/* Parks a connection whose exchange ended cleanly in its origin's idle list. */
static void conn_release(mgw_hc_conn_t *c)
{
    hc_origin_t *o = c->origin;
    if (c->pool->draining || o->nidle >= MAX_IDLE_PER_ORIGIN) {
        conn_close(c);
        return;
    }
    mgw_stream_save_session(&c->stream, &o->session);
    c->ready = 0;
    c->idle = 1;
    c->next_idle = o->idle;
    o->idle = c;
    o->nidle++;
    mgw_stat_add(o->st_idle, 1);
    mgw_deadline_set(&c->timer, idle_timeout_cb, IDLE_MS);
    /* Keep reading (a reader's pause ends): EOF or stray bytes close an idle connection. */
    mgw_stream_resume(&c->stream);
}

static hc_origin_t *origin_get(mgw_hc_pool_t *p, const char *host, int port, const char *tls_id)
{
    for (hc_origin_t *o = p->origins; o; o = o->next)
        if (o->port == port && strcmp(o->host, host) == 0 &&
            (o->tls_id == NULL ? tls_id == NULL : tls_id && strcmp(o->tls_id, tls_id) == 0))
            return o;
    hc_origin_t *o = mgw_calloc(1, sizeof(*o));
    o->host = mgw_strdup(host);
    o->port = port;
    o->tls_id = tls_id ? mgw_strdup(tls_id) : NULL;
    origin_stats(p, o);
    o->next = p->origins;
    p->origins = o;
    return o;
}

mgw_hc_pool_t *mgw_hc_pool_new(uv_loop_t *loop)
{
    mgw_hc_pool_t *p = mgw_calloc(1, sizeof(*p));
    p->loop = loop;
    return p;
}

void mgw_hc_pool_close_idle(mgw_hc_pool_t *p, int draining)
{
    p->draining = draining;
    for (hc_origin_t *o = p->origins; o; o = o->next)
        while (o->idle)
            conn_close(o->idle);
}

void mgw_hc_pool_free(mgw_hc_pool_t *p)
{
    if (p == NULL) return;
    while (p->origins) {
        hc_origin_t *o = p->origins;
        p->origins = o->next;
        free(o->host);
        free(o->tls_id);
        free(o->label);
        mgw_tls_session_free(o->session);
        free(o);
    }
    while (p->ctxs) {
        hc_ctx_t *x = p->ctxs;
        p->ctxs = x->next;
        mgw_tls_ctx_free(x->ctx);
        free(x->ca_file);
        free(x);
    }
    free(p);
}

mgw_tls_ctx_t *mgw_hc_pool_tls(mgw_hc_pool_t *p, const char *ca_file, char *err, size_t errlen)
{
    for (hc_ctx_t *x = p->ctxs; x; x = x->next)
        if (ca_file == NULL ? x->ca_file == NULL : x->ca_file && strcmp(x->ca_file, ca_file) == 0)
            return x->ctx;
    mgw_tls_ctx_t *ctx = mgw_tls_client_ctx_new(ca_file, NULL, NULL, err, errlen);
    if (ctx == NULL) return NULL;
    hc_ctx_t *x = mgw_calloc(1, sizeof(*x));
    x->ca_file = ca_file ? mgw_strdup(ca_file) : NULL;
    x->ctx = ctx;
    x->next = p->ctxs;
    p->ctxs = x;
    return ctx;
}

void mgw_hc_pool_stats(const mgw_hc_pool_t *p, mgw_hc_stats_t *out)
{
    *out = p->stats;
}

/* ---- sending the request ---- */

static void send_body(mgw_hc_conn_t *c, const char *p, size_t n, mgw_rbuf_t *ref)
{
    uv_buf_t b[3];
    char pre[20];
    if (!c->q->chunked) {
        b[0] = uv_buf_init((char *)p, (unsigned)n);
        conn_write(c, b, 1, ref);
        return;
    }
    b[0] = uv_buf_init(pre, (unsigned)snprintf(pre, sizeof(pre), "%zx\r\n", n));
    b[1] = uv_buf_init((char *)p, (unsigned)n);
    b[2] = uv_buf_init("\r\n", 2);
    conn_write(c, b, 3, ref);
}

static void send_body_end(mgw_hc_conn_t *c)
{
    if (!c->q->chunked) return;
    uv_buf_t b = uv_buf_init("0\r\n\r\n", 5);
    conn_write(c, &b, 1, NULL);
}

/* The connection is ready: send the head and what the body has brought so far. */
static void conn_ready(mgw_hc_conn_t *c)
{
    mgw_hc_req_t *q = c->q;
    c->ready = 1;
    uv_buf_t b = uv_buf_init((char *)q->head.p, (unsigned)q->head.n);
    conn_write(c, &b, 1, NULL);
    if (q->early.n) {
        send_body(c, q->early.p, q->early.n, NULL);
        mgw_buf_free(&q->early);
    }
    if (q->body_done) send_body_end(c);
    if (q->cbs->on_drain) q->cbs->on_drain(q);
    start_reading(c);
}

static void connect_cb(uv_connect_t *req, int status)
{
    mgw_hc_conn_t *c = ((mgw_stream_t *)req->handle->data)->data;
    if (status == UV_ECANCELED || c->closing) return;
    if (c->q == NULL) {
        conn_close(c);
        return;
    }
    if (status < 0) {
        conn_fail(c, MGW_HC_ECONNECT, status, uv_strerror(status));
        return;
    }
    uv_tcp_nodelay(&c->stream.tcp, 1);
    /* https sends its ClientHello now, and the request once the handshake is over */
    start_reading(c);
    if (!c->stream.handshaking) conn_ready(c);
}

static void resolved_cb(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    hc_resolve_t *rs = (hc_resolve_t *)req;
    mgw_hc_conn_t *c = rs->conn;
    free(rs);
    if (c == NULL) {
        uv_freeaddrinfo(res);
        return;
    }
    c->resolving = NULL;
    if (c->q == NULL) {
        uv_freeaddrinfo(res);
        conn_close(c);
        return;
    }
    if (status < 0 || res == NULL) {
        if (status >= 0) status = UV_EAI_NONAME;
        uv_freeaddrinfo(res);
        conn_fail(c, MGW_HC_ERESOLVE, status, uv_strerror(status));
        return;
    }
    int rc = mgw_stream_connect(&c->stream, &c->connect, res->ai_addr, connect_cb);
    uv_freeaddrinfo(res);
    if (rc < 0) conn_fail(c, MGW_HC_ECONNECT, rc, uv_strerror(rc));
}

/* Connects a new connection (resolving its host first unless it is an IP literal).
 * Returns 0, or a libuv error with *kind when it failed at once. */
static int conn_open(mgw_hc_conn_t *c, mgw_hc_err_t *kind)
{
    const mgw_hc_req_t *q = c->q;
    struct sockaddr_storage ss;
    if (uv_ip4_addr(q->host, q->port, (struct sockaddr_in *)&ss) == 0 ||
        uv_ip6_addr(q->host, q->port, (struct sockaddr_in6 *)&ss) == 0) {
        *kind = MGW_HC_ECONNECT;
        return mgw_stream_connect(&c->stream, &c->connect, (struct sockaddr *)&ss, connect_cb);
    }
    hc_resolve_t *rs = mgw_calloc(1, sizeof(*rs));
    rs->conn = c;
    c->resolving = rs;
    char port[8];
    snprintf(port, sizeof(port), "%d", q->port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    int rc = uv_getaddrinfo(c->pool->loop, &rs->req, resolved_cb, q->host, port, &hints);
    if (rc < 0) {
        c->resolving = NULL;
        free(rs);
        *kind = MGW_HC_ERESOLVE;
    }
    return rc;
}

/* Puts q on a pooled connection of its origin, or a new one. Returns 0, or -1 with kind
 * and detail when it failed at once. */
static int attach(mgw_hc_pool_t *p, mgw_hc_req_t *q, mgw_hc_err_t *kind, const char **detail)
{
    hc_origin_t *o = origin_get(p, q->host, q->port, q->tls ? q->tls_id : NULL);
    mgw_hc_conn_t *c = o->idle;
    if (c) {
        idle_remove(c);
        c->reused = 1;
        p->stats.reused++;
        mgw_stat_add(o->st_reuses, 1);
    } else {
        c = conn_new(p, o, q);
    }
    c->q = q;
    q->conn = c;
    arm(c, timeout_cb, q->timeout_ms);
    if (c->reused) {
        /* the idle connection's read watcher stays on: its callback serves both */
        conn_ready(c);
        return 0;
    }
    int rc = conn_open(c, kind);
    if (rc == 0) return 0;
    count_connect_failure(o, *kind, rc);
    conn_close(c);
    q->uv_error = rc;
    *detail = uv_strerror(rc);
    return -1;
}

/* ---- the request, driven by its owner ---- */

static int str_is(mgw_str_t s, const char *lit)
{
    size_t n = strlen(lit);
    return s.n == n && memcmp(s.p, lit, n) == 0;
}

const char *mgw_hc_build(mgw_hc_req_t *q, mgw_pool_t *pool, mgw_str_t method, const mgw_url_t *url,
                         const mgw_hdr_t *hdrs, int nhdrs, mgw_str_t body)
{
    if (!mgw_http1_is_token(method.p, method.n)) return "invalid method";
    size_t cap = 96 + method.n + url->path.n + url->authority.n + body.n;
    for (int i = 0; i < nhdrs; i++) {
        mgw_str_t n = hdrs[i].name, v = hdrs[i].value;
        if (!mgw_http1_is_token(n.p, n.n)) return "header names must be HTTP tokens";
        if (!mgw_http1_is_value(v.p, v.n)) return "header values must not contain CR, LF or NUL";
        cap += n.n + v.n + 4;
    }
    mgw_sbuf_t b = {mgw_pool_alloc(pool, cap), 0};
    mgw_sbuf_add(&b, method.p, method.n);
    mgw_sbuf_add(&b, " ", 1);
    /* "http://h?x=1" has the path "?x=1": the request line needs "/?x=1" */
    if (url->path.p[0] != '/') mgw_sbuf_add(&b, "/", 1);
    mgw_sbuf_add(&b, url->path.p, url->path.n);
    mgw_sbuf_add(&b, " HTTP/1.1\r\nhost: ", 17);
    mgw_sbuf_add(&b, url->authority.p, url->authority.n);
    mgw_sbuf_add(&b, "\r\n", 2);
    for (int i = 0; i < nhdrs; i++) {
        mgw_str_t n = hdrs[i].name, v = hdrs[i].value;
        if (mgw_str_ieq(n, "host") || mgw_str_ieq(n, "content-length") ||
            mgw_str_ieq(n, "connection") || mgw_str_ieq(n, "transfer-encoding"))
            continue; /* set by the client */
        mgw_sbuf_add(&b, n.p, n.n);
        mgw_sbuf_add(&b, ": ", 2);
        mgw_sbuf_add(&b, v.p, v.n);
        mgw_sbuf_add(&b, "\r\n", 2);
    }
    int get = str_is(method, "GET");
    if (body.n || !get) {
        mgw_sbuf_add(&b, "content-length: ", 16);
        mgw_sbuf_u64(&b, body.n);
        mgw_sbuf_add(&b, "\r\n", 2);
    }
    mgw_sbuf_add(&b, "\r\n", 2);
    if (body.n) mgw_sbuf_add(&b, body.p, body.n);
    q->pool = pool;
    q->host = mgw_pool_strndup(pool, url->host.p, url->host.n);
    q->port = url->port;
    q->head = (mgw_str_t){b.p, b.n};
    q->head_only = str_is(method, "HEAD");
    /* idempotent and bodyless, as the proxy's rule (README "Backend connections") */
    q->replayable = body.n == 0 && (get || q->head_only || str_is(method, "OPTIONS") ||
                                    str_is(method, "PUT") || str_is(method, "DELETE"));
    return NULL;
}

int mgw_hc_start(mgw_hc_pool_t *p, mgw_hc_req_t *q, mgw_hc_err_t *kind, const char **detail)
{
    q->body_done = !q->body_follows;
    q->end_at = q->total_ms ? uv_now(p->loop) + q->total_ms : 0;
    mgw_hc_err_t k = MGW_HC_OK;
    const char *d = NULL;
    if (attach(p, q, &k, &d) == 0) return 0;
    mgw_buf_free(&q->early);
    if (kind) *kind = k;
    if (detail) *detail = d;
    return -1;
}

int mgw_hc_write(mgw_hc_req_t *q, const char *p, size_t n, mgw_rbuf_t *ref)
{
    mgw_hc_conn_t *c = q->conn;
    if (c == NULL) return 0; /* the exchange is over: nobody wants the bytes */
    if (!c->ready) {
        mgw_buf_add(&q->early, p, n);
        return q->early.n >= MGW_WQ_HIGH;
    }
    send_body(c, p, n, ref);
    return c->stream.wq.pending >= MGW_WQ_HIGH;
}

void mgw_hc_write_end(mgw_hc_req_t *q)
{
    q->body_done = 1;
    if (q->conn && q->conn->ready) send_body_end(q->conn);
}

/* The rest of what is being parsed still reaches on_body; the stream holds what comes
 * after it. */
void mgw_hc_pause(mgw_hc_req_t *q, uint64_t stall_ms)
{
    mgw_hc_conn_t *c = q->conn;
    if (c == NULL) return;
    if (!c->stream.paused) mgw_stream_pause(&c->stream, NULL, NULL, 0);
    arm(c, stall_cb, stall_ms);
}

void mgw_hc_resume(mgw_hc_req_t *q)
{
    mgw_hc_conn_t *c = q->conn;
    if (c == NULL) return;
    /* the server's clock runs again from now, as its reads do */
    if (c->stream.paused) arm(c, timeout_cb, q->timeout_ms);
    mgw_stream_resume(&c->stream); /* hands on what the stream held */
}

int mgw_hc_paused(const mgw_hc_req_t *q)
{
    return q->conn && q->conn->stream.paused;
}

void mgw_hc_abort(mgw_hc_req_t *q)
{
    if (q->conn) conn_close(q->conn); /* detaches q */
    mgw_buf_free(&q->early);
}

/* ---- the outcome ---- */

/* The response is complete (parsed_all: nothing followed it in what was read). */
static void conn_done(mgw_hc_conn_t *c, int parsed_all)
{
    mgw_hc_req_t *q = c->q;
    c->complete = 0;
    c->q = NULL;
    q->conn = NULL;
    mgw_deadline_clear(&c->timer);
    /* Reuse the connection only if the server allows it and the request went out whole. */
    if (parsed_all && q->keepalive && q->body_done && c->stream.wq.pending == 0)
        conn_release(c);
    else
        conn_close(c);
    mgw_buf_free(&q->early);
    q->cbs->on_end(q);
}

/* The request on c failed: a replayable one that a pooled connection lost before any
 * answer is sent again on another connection (the server may have closed it just as it
 * was taken, as Go's transport and nginx reason too); otherwise on_error. */
static void conn_fail(mgw_hc_conn_t *c, mgw_hc_err_t kind, int uverr, const char *detail)
{
    mgw_hc_req_t *q = c->q;
    if (q == NULL) {
        conn_close(c);
        return;
    }
    int retry = c->reused && !q->got_bytes && !q->retried && q->replayable &&
                kind != MGW_HC_ETIMEOUT && kind != MGW_HC_ESTALLED;
    /* Counted: a new connection that never got ready (a pooled one is ready at once),
     * and a timeout by the phase it cut short. */
    if (!c->ready) count_connect_failure(c->origin, kind, uverr);
    if (kind == MGW_HC_ETIMEOUT) {
        const char *v[] = {c->origin->label, !c->ready     ? "connect"
                                             : q->got_head ? "body"
                                                           : "response"};
        mgw_stat_inc(&f_timeouts, v);
    }
    conn_close(c);
    if (retry) {
        q->retried = 1;
        if (attach(c->pool, q, &kind, &detail) == 0) return;
        uverr = q->uv_error;
    }
    q->uv_error = uverr;
    mgw_buf_free(&q->early);
    q->cbs->on_error(q, kind, detail);
}

/* The server closed the connection (err: UV_EOF) or reading failed. */
static void conn_eof(mgw_hc_conn_t *c, int err)
{
    mgw_hc_req_t *q = c->q;
    if (q && err == UV_EOF && q->got_head) {
        mgw_http1_finish(c->parser);
        if (c->complete) { /* a close-delimited body ended */
            conn_done(c, 0);
            return;
        }
    }
    if (err == UV_EOF)
        conn_fail(c, MGW_HC_ECLOSED, err, "the connection was closed");
    else
        conn_fail(c, MGW_HC_EREAD, err, uv_strerror(err));
}

/* Parses response bytes (plaintext) held in rb. */
static void conn_input(mgw_hc_conn_t *c, mgw_rbuf_t *rb, const char *p, size_t n)
{
    if (c->q == NULL) {
        conn_close(c); /* bytes nobody asked for: never reuse this connection */
        return;
    }
    c->q->got_bytes = 1;
    c->cur = rb; /* the stream holds it during the call */
    size_t used;
    int rc = mgw_http1_execute(c->parser, p, n, &used);
    c->cur = NULL;
    if (c->complete) {
        conn_done(c, rc == MGW_HTTP1_OK);
        return;
    }
    /* The callbacks may have ended the request (mgw_hc_abort): then c->q is NULL and the
     * request's memory may be gone. */
    mgw_hc_req_t *q = c->q;
    if (q == NULL) return;
    if (q->cbs->on_flush) q->cbs->on_flush(q);
    if (rc == MGW_HTTP1_ERROR && c->q) conn_fail(c, MGW_HC_EPROTO, 0, mgw_http1_error(c->parser));
}

/* ---- the response parser's callbacks (ud: the connection) ---- */

static int on_begin(void *ud)
{
    mgw_hc_conn_t *c = ud;
    mgw_hc_req_t *q = c->q;
    if (q == NULL || c->complete) return -1;
    q->nrhdrs = 0;
    q->hstate = 0;
    q->rhead_len = 0;
    if (q->rhead == NULL) {
        q->rhead_cap = 2048; /* most heads fit; rhead_add grows it */
        q->rhead = mgw_pool_alloc(q->pool, q->rhead_cap);
    }
    if (q->rhdrs == NULL)
        q->rhdrs = mgw_pool_alloc(q->pool, sizeof(mgw_hdr_t) * MAX_RESPONSE_HEADERS);
    return 0;
}

static int rhead_add(mgw_hc_req_t *q, const char *p, size_t n)
{
    if (q->rhead_len + n > q->rhead_cap) {
        /* a large head: move to the largest buffer and point the headers at it */
        if (q->rhead_len + n > MAX_RESPONSE_HEAD) return -1;
        char *big = mgw_pool_alloc(q->pool, MAX_RESPONSE_HEAD);
        memcpy(big, q->rhead, q->rhead_len);
        for (int i = 0; i < q->nrhdrs; i++) {
            q->rhdrs[i].name.p = big + (q->rhdrs[i].name.p - q->rhead);
            q->rhdrs[i].value.p = big + (q->rhdrs[i].value.p - q->rhead);
        }
        q->rhead = big;
        q->rhead_cap = MAX_RESPONSE_HEAD;
    }
    memcpy(q->rhead + q->rhead_len, p, n);
    q->rhead_len += n;
    return 0;
}

static int on_field(void *ud, const char *p, size_t n)
{
    mgw_hc_req_t *q = ((mgw_hc_conn_t *)ud)->q;
    if (q == NULL) return -1;
    if (q->hstate != 1) {
        if (q->nrhdrs == MAX_RESPONSE_HEADERS) return -1;
        mgw_hdr_t *h = &q->rhdrs[q->nrhdrs++];
        h->name = (mgw_str_t){q->rhead + q->rhead_len, 0};
        h->value = (mgw_str_t){q->rhead + q->rhead_len, 0};
        q->hstate = 1;
    }
    if (rhead_add(q, p, n)) return -1;
    q->rhdrs[q->nrhdrs - 1].name.n += n;
    return 0;
}

static int on_value(void *ud, const char *p, size_t n)
{
    mgw_hc_req_t *q = ((mgw_hc_conn_t *)ud)->q;
    if (q == NULL) return -1;
    mgw_hdr_t *h = &q->rhdrs[q->nrhdrs - 1];
    if (q->hstate != 2) {
        h->value.p = q->rhead + q->rhead_len;
        q->hstate = 2;
    }
    if (rhead_add(q, p, n)) return -1;
    h->value.n += n;
    return 0;
}

static int on_headers_complete(void *ud, const mgw_http1_head_t *hd)
{
    mgw_hc_conn_t *c = ud;
    mgw_hc_req_t *q = c->q;
    if (q == NULL) return -1;
    if (hd->status >= 100 && hd->status < 200) {
        q->interim = 1; /* 100 Continue and friends: the real response follows */
        return 0;
    }
    q->got_head = 1;
    q->keepalive = hd->keepalive != 0;
    arm(c, timeout_cb, q->timeout_ms); /* from now on: the time between body reads */
    int rc = q->cbs->on_head(q, hd, q->rhdrs, q->nrhdrs);
    if (c->q == NULL || rc < 0) return -1;
    return rc || q->head_only ? 1 : 0;
}

static int on_body(void *ud, const char *p, size_t n)
{
    mgw_hc_conn_t *c = ud;
    mgw_hc_req_t *q = c->q;
    if (q == NULL) return -1;
    if (q->interim) return 0;
    if (!c->stream.paused) arm(c, timeout_cb, q->timeout_ms);
    int rc = q->cbs->on_body(q, p, n, c->cur);
    return c->q == NULL ? -1 : rc;
}

static int on_complete(void *ud)
{
    mgw_hc_conn_t *c = ud;
    mgw_hc_req_t *q = c->q;
    if (q == NULL) return -1;
    if (q->interim) {
        q->interim = 0;
        return 0;
    }
    /* conn_input ends the request once the parser has returned; bytes after the response
     * fail the parse (on_begin) and keep the connection out of the pool */
    c->complete = 1;
    return 0;
}

static const mgw_http1_cbs_t hc_response_cbs = {
    .on_message_begin = on_begin,
    .on_header_field = on_field,
    .on_header_value = on_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_complete,
};
