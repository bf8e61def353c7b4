/*
 * HTTP proxy integrations: a keep-alive connection pool per backend origin and worker,
 * the request streamed to the backend and its response streamed back, with
 * backpressure both ways, timeouts, and one retry when a pooled connection turns out to
 * have been closed by the backend before it answered.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/proxy.h"

#include "base/err.h"
#include "base/log.h"
#include "http/http1.h"
#include "net/conn.h"

#define MAX_IDLE_PER_ORIGIN 64
#define UPSTREAM_IDLE_MS 30000
#define MAX_RESPONSE_HEAD 65536
#define MAX_RESPONSE_HEADERS 100

typedef struct upconn_s upconn_t;

/*
 * A backend origin: scheme, host, port and, for https, the client TLS identity (CA bundle
 * and client certificate), so that connections of different identities never mix.
 */
struct mgw_origin_s {
    mgw_origin_t *next;
    char *host;
    int port;
    char *tls_id;  /* NULL for http */
    void *session; /* last TLS session, resumed by the next connection */
    upconn_t *idle;
    int nidle;
};

typedef struct {
    uv_getaddrinfo_t req;
    upconn_t *uc; /* NULL once the connection was abandoned */
} resolve_t;

struct upconn_s {
    uv_tcp_t tcp;
    mgw_deadline_t timer; /* idle, response and body timeouts */
    uv_connect_t connect;
    mgw_worker_t *w;
    mgw_origin_t *origin;
    mgw_http1_t *parser;
    mgw_rbuf_t *rbuf;
    mgw_wq_t wq;
    mgw_proxy_t *px;
    resolve_t *resolving;
    upconn_t *next_idle;
    int handles;
    mgw_tls_t *tls; /* https: the engine; plaintext is parsed from `plain` */
    mgw_rbuf_t *plain;
    mgw_rbuf_t *cur; /* the buffer being parsed: body bytes are forwarded from it */
    unsigned closing : 1, reused : 1, idle : 1, reading : 1, blocked : 1, ready : 1;
};

struct mgw_proxy_s {
    mgw_req_t *r;
    upconn_t *uc;
    mgw_url_t url;
    char *host;
    mgw_str_t head;  /* serialized request head, kept for a retry */
    mgw_buf_t early; /* body bytes that arrived before the connection was ready */
    uint64_t timeout_ms;
    int chunked, body_done, head_request, retried, got_bytes, backend_keepalive, idempotent;
    /* response head */
    char *rhead;
    size_t rhead_len, rhead_cap;
    mgw_hdr_t *rhdrs; /* MAX_RESPONSE_HEADERS, allocated when a response begins */
    int nrhdrs, hstate, skip_interim;
};

static const mgw_http1_cbs_t response_cbs;
static void uc_close(upconn_t *uc);
static void uc_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);
static void px_fail(mgw_proxy_t *px, mgw_gwresp_type_t type, const char *why);
static void px_connect(mgw_proxy_t *px);

/* ---- connections ---- */

static void uc_closed(uv_handle_t *h)
{
    upconn_t *uc = h->data;
    if (--uc->handles > 0) return;
    mgw__rbuf_unref(uc->rbuf);
    mgw__rbuf_unref(uc->plain);
    mgw_tls_free(uc->tls);
    mgw_http1_destroy(uc->parser);
    free(uc);
}

static void idle_remove(upconn_t *uc)
{
    if (!uc->idle) return;
    mgw_origin_t *o = uc->origin;
    for (upconn_t **p = &o->idle; *p; p = &(*p)->next_idle) {
        if (*p == uc) {
            *p = uc->next_idle;
            o->nidle--;
            break;
        }
    }
    uc->idle = 0;
}

static void uc_close(upconn_t *uc)
{
    if (uc->closing) return;
    uc->closing = 1;
    idle_remove(uc);
    if (uc->resolving) {
        uc->resolving->uc = NULL;
        uc->resolving = NULL;
    }
    if (uc->px) {
        uc->px->uc = NULL;
        uc->px = NULL;
    }
    uv_close((uv_handle_t *)&uc->timer.t, uc_closed);
    uv_close((uv_handle_t *)&uc->tcp, uc_closed);
}

static void uc_alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    (void)hint;
    upconn_t *uc = h->data;
    if (uc->rbuf == NULL || uc->rbuf->refs > 1) {
        mgw__rbuf_unref(uc->rbuf);
        uc->rbuf = mgw__rbuf_new();
    }
    buf->base = uc->rbuf->data;
    buf->len = uc->rbuf->cap;
}

static void uc_start_reading(upconn_t *uc)
{
    if (uc->reading || uc->closing || uc->blocked) return;
    if (uv_read_start((uv_stream_t *)&uc->tcp, uc_alloc_cb, uc_read_cb) == 0) uc->reading = 1;
}

static void uc_stop_reading(upconn_t *uc)
{
    if (!uc->reading) return;
    uv_read_stop((uv_stream_t *)&uc->tcp);
    uc->reading = 0;
}

static void idle_timeout_cb(uv_timer_t *t)
{
    uc_close(t->data);
}

/* Parks a connection whose exchange ended cleanly in its origin's idle list. */
static void uc_release(upconn_t *uc)
{
    mgw_origin_t *o = uc->origin;
    uc->px = NULL;
    if (uc->w->shutting_down || o->nidle >= MAX_IDLE_PER_ORIGIN) {
        uc_close(uc);
        return;
    }
    if (uc->tls) mgw_tls_save_session(uc->tls, &o->session);
    uc->ready = 0;
    uc->idle = 1;
    uc->blocked = 0;
    uc->next_idle = o->idle;
    o->idle = uc;
    o->nidle++;
    mgw_deadline_set(&uc->timer, idle_timeout_cb, UPSTREAM_IDLE_MS);
    /* Keep reading: EOF or stray bytes on an idle connection close it. */
    uc_start_reading(uc);
}

static mgw_origin_t *origin_get(mgw_worker_t *w, const char *host, int port, const char *tls_id)
{
    for (mgw_origin_t *o = w->origins; o; o = o->next)
        if (o->port == port && strcmp(o->host, host) == 0 &&
            (o->tls_id == NULL ? tls_id == NULL : tls_id && strcmp(o->tls_id, tls_id) == 0))
            return o;
    mgw_origin_t *o = mgw_calloc(1, sizeof(*o));
    o->host = mgw_strdup(host);
    o->port = port;
    o->tls_id = tls_id ? mgw_strdup(tls_id) : NULL;
    o->next = w->origins;
    w->origins = o;
    return o;
}

void mgw__upstream_close_idle(mgw_worker_t *w)
{
    for (mgw_origin_t *o = w->origins; o; o = o->next)
        while (o->idle)
            uc_close(o->idle);
}

/* Frees the origin list; the loop has closed every connection by then. */
void mgw__upstream_free(mgw_worker_t *w)
{
    while (w->origins) {
        mgw_origin_t *o = w->origins;
        w->origins = o->next;
        free(o->host);
        free(o->tls_id);
        mgw_tls_session_free(o->session);
        free(o);
    }
}

static void uc_drained(mgw_wq_t *q)
{
    upconn_t *uc = (upconn_t *)((char *)q - offsetof(upconn_t, wq));
    if (uc->px && uc->px->r) mgw__conn_unblock_read(uc->px->r->c);
}

static upconn_t *uc_new(mgw_worker_t *w, mgw_origin_t *o)
{
    upconn_t *uc = mgw_calloc(1, sizeof(*uc));
    uc->w = w;
    uc->origin = o;
    uv_tcp_init(&w->loop, &uc->tcp);
    mgw_deadline_init(&w->loop, &uc->timer, uc);
    uc->tcp.data = uc;
    uc->handles = 2;
    uc->wq.drained = uc_drained;
    return uc;
}

/* ---- sending the request ---- */

static int hop_by_hop(mgw_str_t name, mgw_str_t connection)
{
    static const struct {
        const char *s;
        size_t n;
    } names[] = {{"connection", 10},
                 {"keep-alive", 10},
                 {"proxy-connection", 16},
                 {"te", 2},
                 {"trailer", 7},
                 {"transfer-encoding", 17},
                 {"upgrade", 7},
                 {"host", 4},
                 {"content-length", 14},
                 {"expect", 6},
                 {"x-forwarded-proto", 17},
                 {"x-forwarded-port", 16},
                 {"x-forwarded-for", 15}};
    /* the length first: most headers are not hop-by-hop, and most lengths say so */
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (names[i].n == name.n && mgw_str_ieq(name, names[i].s)) return 1;
    /* Headers named by Connection are hop-by-hop too. */
    if (connection.p == NULL) return 0; /* (NULL + 0 is undefined behaviour) */
    const char *s = connection.p, *end = connection.p + connection.n;
    while (s < end) {
        while (s < end && (*s == ' ' || *s == ',' || *s == '\t'))
            s++;
        const char *t = s;
        while (t < end && *t != ',' && *t != ' ' && *t != '\t')
            t++;
        if (t > s && (size_t)(t - s) == name.n && strncasecmp(s, name.p, name.n) == 0) return 1;
        s = t;
    }
    return 0;
}

/* The backend's request head, built in the request arena (its size is known up front). */
static void build_head(mgw_proxy_t *px, const char *method)
{
    static const char hex[] = "0123456789ABCDEF";
    mgw_req_t *r = px->r;
    const mgw_client_cert_t *cert =
        r->domain && r->domain->forward_header ? r->c->client_cert : NULL;
    size_t cap = 512 + strlen(method) + px->url.path.n + r->query.n + px->url.authority.n +
                 r->head_len + 4 * (size_t)r->nheaders + (cert ? 3 * strlen(cert->pem) + 64 : 0);
    mgw_sbuf_t b = {mgw_pool_alloc(r->pool, cap), 0};
    mgw_sbuf_adds(&b, method);
    mgw_sbuf_add(&b, " ", 1);
    /* "http://h?x=1" has the path "?x=1": the request line needs "/?x=1" */
    if (px->url.path.p[0] != '/') mgw_sbuf_add(&b, "/", 1);
    mgw_sbuf_add(&b, px->url.path.p, px->url.path.n);
    if (r->query.n) {
        mgw_sbuf_add(&b, memchr(px->url.path.p, '?', px->url.path.n) ? "&" : "?", 1);
        mgw_sbuf_add(&b, r->query.p, r->query.n);
    }
    mgw_sbuf_add(&b, " HTTP/1.1\r\nhost: ", 17);
    mgw_sbuf_add(&b, px->url.authority.p, px->url.authority.n);
    mgw_sbuf_add(&b, "\r\n", 2);
    mgw_str_t connection = mgw__req_header(r, "connection");
    for (int i = 0; i < r->nheaders; i++) {
        const mgw_hdr_t *h = &r->headers[i];
        if (hop_by_hop(h->name, connection)) continue;
        /* The certificate header is the gateway's to set: a client's copy is dropped. */
        if (r->domain && r->domain->forward_header &&
            mgw_str_ieq(h->name, r->domain->forward_header))
            continue;
        mgw_sbuf_add(&b, h->name.p, h->name.n);
        mgw_sbuf_add(&b, ": ", 2);
        mgw_sbuf_add(&b, h->value.p, h->value.n);
        mgw_sbuf_add(&b, "\r\n", 2);
    }
    mgw_str_t xff = mgw__req_header(r, "x-forwarded-for");
    mgw_sbuf_add(&b, "x-forwarded-for: ", 17);
    if (xff.p) {
        mgw_sbuf_add(&b, xff.p, xff.n);
        mgw_sbuf_add(&b, ", ", 2);
    }
    mgw_sbuf_adds(&b, r->c->peer);
    mgw_sbuf_adds(&b, r->c->tls ? "\r\nx-forwarded-proto: https\r\nx-forwarded-port: "
                                : "\r\nx-forwarded-proto: http\r\nx-forwarded-port: ");
    mgw_sbuf_u64(&b, (unsigned)mgw__req_listen(r)->port);
    mgw_sbuf_add(&b, "\r\n", 2);
    if (cert) {
        /* The client certificate, URL-encoded PEM (as nginx's $ssl_client_escaped_cert). */
        mgw_sbuf_adds(&b, r->domain->forward_header);
        mgw_sbuf_add(&b, ": ", 2);
        for (const unsigned char *s = (const unsigned char *)cert->pem; *s; s++) {
            if ((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
                *s == '-' || *s == '.' || *s == '_' || *s == '~') {
                mgw_sbuf_add(&b, (const char *)s, 1);
            } else {
                char e[3] = {'%', hex[*s >> 4], hex[*s & 15]};
                mgw_sbuf_add(&b, e, 3);
            }
        }
        mgw_sbuf_add(&b, "\r\n", 2);
    }
    if (r->chunked) {
        px->chunked = 1;
        mgw_sbuf_adds(&b, "transfer-encoding: chunked\r\n");
    } else if (r->has_length) {
        mgw_sbuf_add(&b, "content-length: ", 16);
        mgw_sbuf_u64(&b, r->content_length);
        mgw_sbuf_add(&b, "\r\n", 2);
    }
    mgw_sbuf_add(&b, "\r\n", 2);
    px->head = (mgw_str_t){b.p, b.n};
}

static void uc_tls_flush(upconn_t *uc)
{
    mgw__tls_flush(uc->tls, (uv_stream_t *)&uc->tcp, &uc->wq);
}

/* Writes to the backend, through TLS for https (see mgw__write for ref). */
static void uc_write(upconn_t *uc, const uv_buf_t *bufs, int nbufs, mgw_rbuf_t *ref)
{
    if (uc->tls == NULL)
        mgw__write((uv_stream_t *)&uc->tcp, &uc->wq, bufs, nbufs, ref);
    else
        mgw__tls_send(uc->tls, (uv_stream_t *)&uc->tcp, &uc->wq, bufs, nbufs);
}

static void send_body(mgw_proxy_t *px, const char *p, size_t n, mgw_rbuf_t *ref)
{
    upconn_t *uc = px->uc;
    if (px->chunked) {
        char pre[20];
        int pn = snprintf(pre, sizeof(pre), "%zx\r\n", n);
        uv_buf_t b = uv_buf_init(pre, (unsigned)pn);
        uc_write(uc, &b, 1, NULL);
    }
    uv_buf_t b = uv_buf_init((char *)p, (unsigned)n);
    uc_write(uc, &b, 1, ref);
    if (px->chunked) {
        uv_buf_t e = uv_buf_init("\r\n", 2);
        uc_write(uc, &e, 1, NULL);
    }
}

static void send_body_end(mgw_proxy_t *px)
{
    if (!px->chunked) return;
    uv_buf_t b = uv_buf_init("0\r\n\r\n", 5);
    uc_write(px->uc, &b, 1, NULL);
}

static void response_timeout_cb(uv_timer_t *t)
{
    upconn_t *uc = t->data;
    mgw_proxy_t *px = uc->px;
    if (px == NULL) return;
    char *why = mgw_pool_printf(px->r->pool, "integration timed out after %llu ms",
                                (unsigned long long)px->timeout_ms);
    px_fail(px, MGW_GW_INTEGRATION_TIMEOUT, why);
}

/* The connection is ready: send what the client has sent so far. */
static void px_start_exchange(mgw_proxy_t *px)
{
    upconn_t *uc = px->uc;
    uc->ready = 1;
    uv_buf_t b = uv_buf_init((char *)px->head.p, (unsigned)px->head.n);
    uc_write(uc, &b, 1, NULL);
    if (px->early.n) {
        send_body(px, px->early.p, px->early.n, NULL);
        mgw_buf_free(&px->early);
    }
    if (px->body_done) send_body_end(px);
    mgw__conn_unblock_read(px->r->c);
    uc_start_reading(uc);
}

static void connect_cb(uv_connect_t *req, int status)
{
    upconn_t *uc = req->handle->data;
    if (status == UV_ECANCELED || uc->closing) return;
    mgw_proxy_t *px = uc->px;
    if (px == NULL) {
        uc_close(uc);
        return;
    }
    if (status < 0) {
        char *why = mgw_pool_printf(px->r->pool, "connect to %s:%d failed: %s", px->host,
                                    px->url.port, uv_strerror(status));
        px_fail(px, MGW_GW_INTEGRATION_FAILURE, why);
        return;
    }
    uv_tcp_nodelay(&uc->tcp, 1);
    if (px->url.tls) {
        /* https: the exchange starts once the handshake is over (uc_tls_read). */
        uc->tls = mgw_tls_client_new(px->r->stage->backend_tls, px->host, uc->origin->session);
        char none[1];
        mgw_tls_read(uc->tls, none, 0); /* produces the ClientHello */
        uc_tls_flush(uc);
        uc_start_reading(uc);
        return;
    }
    px_start_exchange(px);
}

static void uc_connect(upconn_t *uc, const struct sockaddr *addr)
{
    int rc = uv_tcp_connect(&uc->connect, &uc->tcp, addr, connect_cb);
    if (rc < 0 && uc->px) {
        mgw_proxy_t *px = uc->px;
        char *why = mgw_pool_printf(px->r->pool, "connect to %s:%d failed: %s", px->host,
                                    px->url.port, uv_strerror(rc));
        px_fail(px, MGW_GW_INTEGRATION_FAILURE, why);
    }
}

static void resolved_cb(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    resolve_t *rs = (resolve_t *)req;
    upconn_t *uc = rs->uc;
    free(rs);
    if (uc == NULL) {
        uv_freeaddrinfo(res);
        return;
    }
    uc->resolving = NULL;
    mgw_proxy_t *px = uc->px;
    if (px == NULL) {
        uv_freeaddrinfo(res);
        uc_close(uc);
        return;
    }
    if (status < 0 || res == NULL) {
        char *why =
            mgw_pool_printf(px->r->pool, "cannot resolve %s: %s", px->host, uv_strerror(status));
        uv_freeaddrinfo(res);
        px_fail(px, MGW_GW_INTEGRATION_FAILURE, why);
        return;
    }
    uc_connect(uc, res->ai_addr);
    uv_freeaddrinfo(res);
}

/* Attaches a pooled connection, or opens a new one. */
static void px_connect(mgw_proxy_t *px)
{
    mgw_worker_t *w = px->r->c->w;
    mgw_origin_t *o =
        origin_get(w, px->host, px->url.port, px->url.tls ? px->r->stage->backend_tls_id : NULL);
    upconn_t *uc = o->idle;
    if (uc) {
        idle_remove(uc);
        uc->reused = 1;
    } else {
        uc = uc_new(w, o);
        uc->parser = mgw_http1_create(0, &response_cbs, uc);
    }
    uc->px = px;
    px->uc = uc;
    mgw_deadline_set(&uc->timer, response_timeout_cb, px->timeout_ms);
    if (uc->reused) {
        /* the idle connection's read watcher stays on: its callback serves both */
        px_start_exchange(px);
        return;
    }
    struct sockaddr_storage ss;
    if (uv_ip4_addr(px->host, px->url.port, (struct sockaddr_in *)&ss) == 0 ||
        uv_ip6_addr(px->host, px->url.port, (struct sockaddr_in6 *)&ss) == 0) {
        uc_connect(uc, (struct sockaddr *)&ss);
        return;
    }
    resolve_t *rs = mgw_calloc(1, sizeof(*rs));
    rs->uc = uc;
    uc->resolving = rs;
    char port[8];
    snprintf(port, sizeof(port), "%d", px->url.port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    int rc = uv_getaddrinfo(&w->loop, &rs->req, resolved_cb, px->host, port, &hints);
    if (rc < 0) {
        uc->resolving = NULL;
        free(rs);
        char *why =
            mgw_pool_printf(px->r->pool, "cannot resolve %s: %s", px->host, uv_strerror(rc));
        px_fail(px, MGW_GW_INTEGRATION_FAILURE, why);
    }
}

/* ---- the proxy, driven by the request core and the client connection ---- */

void mgw__proxy_start(mgw_req_t *r)
{
    const mgw_integration_t *in = &r->route->integration;
    mgw_proxy_t *px = mgw_pool_calloc(r->pool, sizeof(*px));
    px->r = r;
    px->timeout_ms = in->timeout_ms ? in->timeout_ms : 29000;
    if (in->uri_static) {
        px->url = in->url;
    } else {
        mgw_str_t uri = mgw_uri_expand(r->pool, in->uri, r->stage->vars, r->stage->nvars, r->params,
                                       r->nparams);
        if (mgw_url_parse(uri.p, uri.n, &px->url) != 0) {
            r->integ_error = mgw_pool_printf(r->pool, "invalid integration URI \"%s\"", uri.p);
            mgw__req_fail(r, MGW_GW_API_CONFIGURATION_ERROR, NULL);
            return;
        }
    }
    if (px->url.tls && r->stage->backend_tls == NULL) {
        r->integ_error = "no TLS client context for https backends";
        mgw__req_fail(r, MGW_GW_API_CONFIGURATION_ERROR, NULL);
        return;
    }
    px->host = in->uri_static ? (char *)in->host
                              : mgw_pool_strndup(r->pool, px->url.host.p, px->url.host.n);
    const char *method = in->method;
    if (method == NULL) method = mgw_pool_strndup(r->pool, r->method.p, r->method.n);
    px->head_request = strcmp(method, "HEAD") == 0;
    px->idempotent = px->head_request || strcmp(method, "GET") == 0 ||
                     strcmp(method, "OPTIONS") == 0 || strcmp(method, "PUT") == 0 ||
                     strcmp(method, "DELETE") == 0;
    build_head(px, method);
    r->px = px;
    r->integ_start_ns = uv_hrtime();
    mgw__req_forward_kept_body(r); /* what arrived while policy hooks ran: kept in early */
    px_connect(px);
}

void mgw__proxy_body(mgw_req_t *r, const char *p, size_t n, mgw_rbuf_t *ref)
{
    mgw_proxy_t *px = r->px;
    if (px->uc == NULL || !px->uc->ready) {
        mgw_buf_add(&px->early, p, n);
        if (px->early.n >= MGW_WQ_HIGH) mgw__conn_block_read(r->c);
        return;
    }
    send_body(px, p, n, ref);
    if (px->uc->wq.pending >= MGW_WQ_HIGH) mgw__conn_block_read(r->c);
}

void mgw__proxy_body_done(mgw_req_t *r)
{
    mgw_proxy_t *px = r->px;
    px->body_done = 1;
    if (px->uc && px->uc->ready) send_body_end(px);
}

/* Detaches the proxy from its request and connection; the connection is closed. */
static void px_detach(mgw_proxy_t *px)
{
    if (px->uc) uc_close(px->uc);
    mgw_buf_free(&px->early);
    px->r->px = NULL;
}

void mgw__proxy_abort(mgw_req_t *r)
{
    if (r->px) px_detach(r->px);
}

static void uc_tls_read(upconn_t *uc, const char *p, size_t n);

static void body_timeout_cb(uv_timer_t *t);
static void send_timeout_cb(uv_timer_t *t);

void mgw__proxy_client_drained(mgw_req_t *r)
{
    if (r->px && r->px->uc) {
        upconn_t *uc = r->px->uc;
        /* the backend's clock runs again from now, as its reads do */
        if (uc->blocked) mgw_deadline_set(&uc->timer, body_timeout_cb, r->px->timeout_ms);
        uc->blocked = 0;
        uc_start_reading(uc);
        /* OpenSSL may hold decrypted bytes no socket read will bring: drain them. */
        if (uc->tls) uc_tls_read(uc, NULL, 0);
    }
}

void mgw__proxy_client_progress(mgw_req_t *r)
{
    upconn_t *uc = r->px ? r->px->uc : NULL;
    if (uc && uc->blocked) mgw_deadline_set(&uc->timer, send_timeout_cb, r->gen->send_timeout_ms);
}

static void px_fail(mgw_proxy_t *px, mgw_gwresp_type_t type, const char *why)
{
    mgw_req_t *r = px->r;
    upconn_t *uc = px->uc;
    /* A pooled connection the backend closed before answering: try a fresh one once, for
     * an idempotent request without a body (the backend may have seen it, as Go's
     * transport and nginx reason too). */
    if (uc && uc->reused && !px->got_bytes && !px->retried && type == MGW_GW_INTEGRATION_FAILURE &&
        px->idempotent && !r->has_length && !r->chunked) {
        px->retried = 1;
        uc_close(uc);
        px->uc = NULL;
        px_connect(px);
        return;
    }
    if (r->integ_end_ns == 0) r->integ_end_ns = uv_hrtime();
    r->integ_error = why;
    mgw_log_info("request %s: %s", r->id, why);
    px_detach(px);
    mgw__req_fail(r, type, NULL);
}

/* ---- reading the response ---- */

/* The backend closed the connection (err: UV_EOF) or it failed. */
static void uc_eof(upconn_t *uc, int err)
{
    mgw_proxy_t *px = uc->px;
    if (px == NULL) {
        uc_close(uc);
        return;
    }
    if (err == UV_EOF && px->r->resp_started && mgw_http1_finish(uc->parser) == MGW_HTTP1_OK &&
        uc->px == NULL)
        return; /* a close-delimited body ended */
    const char *why = err == UV_EOF ? "the backend closed the connection" : uv_strerror(err);
    px_fail(px, MGW_GW_INTEGRATION_FAILURE,
            mgw_pool_printf(px->r->pool, "reading from %s:%d: %s", px->host, px->url.port, why));
}

/* Parses response bytes (plaintext) held in rb. */
static void uc_parse(upconn_t *uc, mgw_rbuf_t *rb, const char *p, size_t n)
{
    mgw_proxy_t *px = uc->px;
    if (px == NULL) {
        uc_close(uc); /* bytes nobody asked for: never reuse this connection */
        return;
    }
    px->got_bytes = 1;
    mgw__rbuf_ref(rb);
    uc->cur = rb;
    size_t used;
    int rc = mgw_http1_execute(uc->parser, p, n, &used);
    uc->cur = NULL;
    mgw__rbuf_unref(rb);
    /* a head whose body is not in this read goes out now */
    if (uc->px) mgw__resp_flush(uc->px->r);
    if (rc != MGW_HTTP1_ERROR) return;
    if (uc->px) {
        px_fail(uc->px, MGW_GW_INTEGRATION_FAILURE,
                mgw_pool_printf(px->r->pool, "invalid response from %s:%d: %s", px->host,
                                px->url.port, mgw_http1_error(uc->parser)));
    } else {
        uc_close(uc);
    }
}

/* https: decrypts what arrived (n may be 0: drain what OpenSSL holds), starts the
 * exchange once the handshake is over, and parses the plaintext. */
static void uc_tls_read(upconn_t *uc, const char *p, size_t n)
{
    if (n) mgw_tls_feed(uc->tls, p, n);
    while (!uc->closing && !uc->blocked) {
        if (uc->plain == NULL || uc->plain->refs > 1) {
            mgw__rbuf_unref(uc->plain);
            uc->plain = mgw__rbuf_new();
        }
        ssize_t got = mgw_tls_read(uc->tls, uc->plain->data, uc->plain->cap);
        if (!uc->ready && uc->px && mgw_tls_handshake_done(uc->tls)) px_start_exchange(uc->px);
        if (got > 0) {
            uc_parse(uc, uc->plain, uc->plain->data, (size_t)got);
            continue;
        }
        if (got == MGW_TLS_WANT) break;
        if (got == MGW_TLS_CLOSED) {
            uc_eof(uc, UV_EOF);
            return;
        }
        if (uc->px) {
            mgw_proxy_t *px = uc->px;
            px_fail(px, MGW_GW_INTEGRATION_FAILURE,
                    mgw_pool_printf(px->r->pool, "TLS with %s:%d: %s", px->host, px->url.port,
                                    mgw_tls_error(uc->tls)));
        } else {
            uc_close(uc);
        }
        return;
    }
    if (!uc->closing) uc_tls_flush(uc);
}

static void uc_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    (void)buf;
    upconn_t *uc = s->data;
    if (nread == 0) return;
    if (nread < 0) {
        uc_eof(uc, (int)nread);
        return;
    }
    if (uc->tls) {
        /* an idle TLS connection may still get tickets: the engine takes them */
        uc_tls_read(uc, uc->rbuf->data, (size_t)nread);
        return;
    }
    uc_parse(uc, uc->rbuf, uc->rbuf->data, (size_t)nread);
}

static int on_begin(void *ud)
{
    upconn_t *uc = ud;
    mgw_proxy_t *px = uc->px;
    if (px == NULL) return -1;
    px->nrhdrs = 0;
    px->hstate = 0;
    px->rhead_len = 0;
    if (px->rhead == NULL) {
        px->rhead_cap = 2048; /* most heads fit; rhead_add grows it */
        px->rhead = mgw_pool_alloc(px->r->pool, px->rhead_cap);
    }
    if (px->rhdrs == NULL)
        px->rhdrs = mgw_pool_alloc(px->r->pool, sizeof(mgw_hdr_t) * MAX_RESPONSE_HEADERS);
    return 0;
}

static int rhead_add(mgw_proxy_t *px, const char *p, size_t n)
{
    if (px->rhead_len + n > px->rhead_cap) {
        /* a large head: move to the largest buffer and point the headers at it */
        if (px->rhead_len + n > MAX_RESPONSE_HEAD) return -1;
        char *big = mgw_pool_alloc(px->r->pool, MAX_RESPONSE_HEAD);
        memcpy(big, px->rhead, px->rhead_len);
        for (int i = 0; i < px->nrhdrs; i++) {
            px->rhdrs[i].name.p = big + (px->rhdrs[i].name.p - px->rhead);
            px->rhdrs[i].value.p = big + (px->rhdrs[i].value.p - px->rhead);
        }
        px->rhead = big;
        px->rhead_cap = MAX_RESPONSE_HEAD;
    }
    memcpy(px->rhead + px->rhead_len, p, n);
    px->rhead_len += n;
    return 0;
}

static int on_field(void *ud, const char *p, size_t n)
{
    mgw_proxy_t *px = ((upconn_t *)ud)->px;
    if (px->hstate != 1) {
        if (px->nrhdrs == MAX_RESPONSE_HEADERS) return -1;
        mgw_hdr_t *h = &px->rhdrs[px->nrhdrs++];
        h->name = (mgw_str_t){px->rhead + px->rhead_len, 0};
        h->value = (mgw_str_t){px->rhead + px->rhead_len, 0};
        px->hstate = 1;
    }
    if (rhead_add(px, p, n)) return -1;
    px->rhdrs[px->nrhdrs - 1].name.n += n;
    return 0;
}

static int on_value(void *ud, const char *p, size_t n)
{
    mgw_proxy_t *px = ((upconn_t *)ud)->px;
    mgw_hdr_t *h = &px->rhdrs[px->nrhdrs - 1];
    if (px->hstate != 2) {
        h->value.p = px->rhead + px->rhead_len;
        px->hstate = 2;
    }
    if (rhead_add(px, p, n)) return -1;
    h->value.n += n;
    return 0;
}

static void body_timeout_cb(uv_timer_t *t)
{
    upconn_t *uc = t->data;
    mgw_proxy_t *px = uc->px;
    if (px == NULL) return;
    px->r->integ_error = "the backend stopped sending the response body";
    mgw_conn_t *c = px->r->c;
    px_detach(px);
    mgw__conn_close(c);
}

/*
 * The backend waits on a client that took none of the response for timeouts.send: the
 * client is closed, and the logs say it was the client (the response's status stands).
 */
static void send_timeout_cb(uv_timer_t *t)
{
    upconn_t *uc = t->data;
    mgw_proxy_t *px = uc->px;
    if (px == NULL) return;
    mgw_req_t *r = px->r;
    mgw_conn_t *c = r->c;
    r->error_reason = "The client stopped reading the response";
    mgw_log_info("request %s: client %s took none of the response for %g s (timeouts.send)", r->id,
                 c->peer, (double)r->gen->send_timeout_ms / 1000);
    px_detach(px);
    mgw__conn_close(c);
}

static int on_headers_complete(void *ud, const mgw_http1_head_t *hd)
{
    upconn_t *uc = ud;
    mgw_proxy_t *px = uc->px;
    mgw_req_t *r = px->r;
    if (hd->status >= 100 && hd->status < 200) {
        px->skip_interim = 1; /* 100 Continue and friends are not forwarded */
        return 0;
    }
    r->integ_end_ns = uv_hrtime();
    r->integ_status = hd->status;
    px->backend_keepalive = hd->keepalive;
    mgw_deadline_set(&uc->timer, body_timeout_cb, px->timeout_ms);

    mgw_hdr_t hdrs[100];
    int n = 0;
    mgw_str_t connection = MGW_NULL_STR;
    for (int i = 0; i < px->nrhdrs; i++)
        if (mgw_str_ieq(px->rhdrs[i].name, "connection")) connection = px->rhdrs[i].value;
    for (int i = 0; i < px->nrhdrs; i++) {
        mgw_str_t name = px->rhdrs[i].name;
        if (hop_by_hop(name, connection) || mgw_str_ieq(name, "date") ||
            mgw_str_ieq(name, "apigw-requestid"))
            continue;
        hdrs[n++] = px->rhdrs[i];
    }
    int64_t len = hd->has_length && !hd->chunked ? (int64_t)hd->content_length : -1;
    if (px->head_request || r->head_method) {
        /* No body follows; forward the length the backend announced. */
        r->head_method = 1;
        mgw__resp_head(r, hd->status, hdrs, n, len < 0 ? 0 : len);
        return 1;
    }
    mgw__resp_head(r, hd->status, hdrs, n, len);
    return 0;
}

static int on_body(void *ud, const char *p, size_t n)
{
    upconn_t *uc = ud;
    mgw_proxy_t *px = uc->px;
    if (px->skip_interim) return 0;
    mgw_req_t *r = px->r;
    mgw__resp_body(r, p, n, uc->cur);
    if (r->c->stream.wq.pending >= MGW_WQ_HIGH) {
        /* The client is slower than the backend: stop reading the backend, and with it
         * the backend's clock (timeout_ms); the client's (timeouts.send) runs instead,
         * moved on by every write it takes (mgw__proxy_client_progress), until it has
         * taken enough to read on (mgw__proxy_client_drained). */
        uc->blocked = 1;
        uc_stop_reading(uc);
        mgw_deadline_set(&uc->timer, send_timeout_cb, r->gen->send_timeout_ms);
    } else {
        mgw_deadline_set(&uc->timer, body_timeout_cb, px->timeout_ms);
    }
    return 0;
}

static int on_complete(void *ud)
{
    upconn_t *uc = ud;
    mgw_proxy_t *px = uc->px;
    if (px == NULL) return -1;
    if (px->skip_interim) {
        px->skip_interim = 0;
        return 0;
    }
    mgw_req_t *r = px->r;
    mgw_deadline_clear(&uc->timer);
    px->uc = NULL;
    r->px = NULL;
    /* Reuse the connection only if the backend allows it and our request went out whole. */
    if (px->backend_keepalive && px->body_done && uc->wq.pending == 0)
        uc_release(uc);
    else
        uc_close(uc);
    mgw_buf_free(&px->early);
    mgw__resp_end(r);
    return 0;
}

static const mgw_http1_cbs_t response_cbs = {
    .on_message_begin = on_begin,
    .on_header_field = on_field,
    .on_header_value = on_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_complete,
};

/* ---- the integration type ---- */

/* The integration phase: the request is answered once the backend has (or failed). */
static int integ_start(mgw_req_t *r)
{
    mgw__proxy_start(r);
    return MGW_PHASE_WAIT;
}

/* The request body goes to the backend while the proxy runs (not once it has ended). */
static void integ_body(mgw_req_t *r, const char *p, size_t n, mgw_rbuf_t *ref)
{
    if (r->px) mgw__proxy_body(r, p, n, ref);
}

static void integ_body_done(mgw_req_t *r)
{
    if (r->px) mgw__proxy_body_done(r);
}

const mgw_integ_ops_t mgw__proxy_integration = {
    .name = "http",
    .start = integ_start,
    .abort = mgw__proxy_abort,
    .body = integ_body,
    .body_done = integ_body_done,
    .client_progress = mgw__proxy_client_progress,
    .client_drained = mgw__proxy_client_drained,
};
