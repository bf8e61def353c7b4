/*
 * HTTP proxy integrations on the HTTP client (client.h): the backend's request head is
 * built in the request arena from the client's request, its body streamed to the backend
 * as it arrives, and the backend's response streamed back to the client, with
 * backpressure both ways: a client slower than the backend pauses the backend's reads
 * (timeouts.send then bounds the wait), and a backend slower than the client stops the
 * client's reads. The client's error kinds become the gateway responses: a timeout before
 * the response head is INTEGRATION_TIMEOUT (504), anything else INTEGRATION_FAILURE (502);
 * after the head has gone to the client, the client connection is closed instead.
 */
#include "http/proxy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/log.h"
#include "http/http1.h"
#include "net/conn.h"

struct mgw_proxy_s {
    mgw_hc_req_t q; /* the backend request */
    mgw_req_t *r;
    mgw_url_t url;
    char *host;
};

static const mgw_hc_cbs_t proxy_cbs;

mgw_hc_pool_t *mgw__http_pool(mgw_worker_t *w)
{
    if (w->hc == NULL) w->hc = mgw_hc_pool_new(&w->loop);
    return w->hc;
}

void mgw__upstream_close_idle(mgw_worker_t *w)
{
    if (w->hc) mgw_hc_pool_close_idle(w->hc, w->shutting_down);
}

/* Frees the pool; the loop has closed every connection by then. */
void mgw__upstream_free(mgw_worker_t *w)
{
    mgw_hc_pool_free(w->hc);
    w->hc = NULL;
}

/* ---- the request head ---- */

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
    return mgw_list_has(connection, name);
}

/* The backend's request head, built in the request arena (its size is known up front). */
static void build_head(mgw_proxy_t *px, const char *method)
{
    static const char hex[] = "0123456789ABCDEF";
    mgw_req_t *r = px->r;
    const mgw_client_cert_t *cert =
        r->domain && r->domain->forward_header ? r->from.client_cert : NULL;
    const mgw_tracing_t *tracing = r->gen->tracing;
    mgw_hdr_t th[3];
    int nth = 0;
    size_t cap = 512 + strlen(method) + px->url.path.n + r->query.n + px->url.authority.n +
                 r->head_len + 4 * (size_t)r->nheaders + (cert ? 3 * strlen(cert->pem) + 64 : 0);
    if (tracing) {
        /* The backend's parent is the integration's span (README "Tracing"). */
        mgw_trace_t *t = mgw__trace(r);
        nth = mgw__trace_headers(r, t->integ_id, th);
        for (int i = 0; i < nth; i++)
            cap += th[i].name.n + th[i].value.n + 4;
        if (t->exported) /* for its span */
            t->integ_url = mgw_pool_printf(r->pool, "%s://%.*s%.*s", px->url.tls ? "https" : "http",
                                           (int)px->url.authority.n, px->url.authority.p,
                                           (int)px->url.path.n, px->url.path.p);
    }
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
        /* So are the trace context and request id headers, when tracing is on. */
        if (tracing && mgw__trace_own_header(r, h->name)) continue;
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
    mgw_sbuf_adds(&b, r->from.peer);
    mgw_sbuf_adds(&b, r->from.tls ? "\r\nx-forwarded-proto: https\r\nx-forwarded-port: "
                                  : "\r\nx-forwarded-proto: http\r\nx-forwarded-port: ");
    mgw_sbuf_u64(&b, (unsigned)mgw__req_listen(r)->port);
    mgw_sbuf_add(&b, "\r\n", 2);
    for (int i = 0; i < nth; i++) {
        mgw_sbuf_add(&b, th[i].name.p, th[i].name.n);
        mgw_sbuf_add(&b, ": ", 2);
        mgw_sbuf_add(&b, th[i].value.p, th[i].value.n);
        mgw_sbuf_add(&b, "\r\n", 2);
    }
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
        px->q.chunked = 1;
        mgw_sbuf_adds(&b, "transfer-encoding: chunked\r\n");
    } else if (r->has_length) {
        mgw_sbuf_add(&b, "content-length: ", 16);
        mgw_sbuf_u64(&b, r->content_length);
        mgw_sbuf_add(&b, "\r\n", 2);
    }
    mgw_sbuf_add(&b, "\r\n", 2);
    px->q.head = (mgw_str_t){b.p, b.n};
}

/* ---- the proxy, driven by the request core and the client connection ---- */

void mgw__proxy_start(mgw_req_t *r)
{
    const mgw_integration_t *in = &r->route->integration;
    mgw_proxy_t *px = mgw_pool_calloc(r->pool, sizeof(*px));
    px->r = r;
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
    mgw_hc_req_t *q = &px->q;
    q->pool = r->pool;
    q->host = px->host;
    q->port = px->url.port;
    if (px->url.tls) {
        q->tls = r->stage->backend_tls;
        q->tls_id = r->stage->backend_tls_id;
    }
    q->timeout_ms = in->timeout_ms ? in->timeout_ms : 29000;
    q->body_follows = 1;
    q->head_only = strcmp(method, "HEAD") == 0;
    q->replayable = (q->head_only || strcmp(method, "GET") == 0 || strcmp(method, "OPTIONS") == 0 ||
                     strcmp(method, "PUT") == 0 || strcmp(method, "DELETE") == 0) &&
                    !r->has_length && !r->chunked;
    q->cbs = &proxy_cbs;
    q->data = px;
    build_head(px, method);
    r->px = px;
    r->integ_start_ns = uv_hrtime();
    mgw_hc_err_t kind;
    const char *detail;
    if (mgw_hc_start(mgw__http_pool(r->from.w), q, &kind, &detail) != 0) {
        proxy_cbs.on_error(q, kind, detail); /* r may be gone */
        return;
    }
    mgw__req_forward_kept_body(r); /* what arrived while policy hooks ran */
}

void mgw__proxy_body(mgw_req_t *r, const char *p, size_t n, mgw_rbuf_t *ref)
{
    if (mgw_hc_write(&r->px->q, p, n, ref) && r->c) mgw__conn_block_read(r->c);
}

void mgw__proxy_body_done(mgw_req_t *r)
{
    mgw_hc_write_end(&r->px->q);
}

void mgw__proxy_abort(mgw_req_t *r)
{
    if (r->px == NULL) return;
    mgw_hc_abort(&r->px->q);
    r->px = NULL;
}

void mgw__proxy_client_drained(mgw_req_t *r)
{
    if (r->px) mgw_hc_resume(&r->px->q);
}

void mgw__proxy_client_progress(mgw_req_t *r)
{
    /* the backend waiting on the client waits on, for timeouts.send from now */
    if (r->px && mgw_hc_paused(&r->px->q)) mgw_hc_pause(&r->px->q, r->gen->send_timeout_ms);
}

/* ---- the client's callbacks ---- */

static int px_head(mgw_hc_req_t *q, const mgw_http1_head_t *hd, mgw_hdr_t *rhdrs, int nrhdrs)
{
    mgw_proxy_t *px = q->data;
    mgw_req_t *r = px->r;
    r->integ_end_ns = uv_hrtime();
    r->integ_status = hd->status;
    mgw_hdr_t hdrs[100];
    int n = 0;
    mgw_str_t connection = MGW_NULL_STR;
    for (int i = 0; i < nrhdrs; i++)
        if (mgw_str_ieq(rhdrs[i].name, "connection")) connection = rhdrs[i].value;
    for (int i = 0; i < nrhdrs; i++) {
        mgw_str_t name = rhdrs[i].name;
        if (hop_by_hop(name, connection) || mgw_str_ieq(name, "date") ||
            mgw_apitype_own_header(mgw__api_type(r->api), name.p, name.n))
            continue;
        hdrs[n++] = rhdrs[i];
    }
    int64_t len = hd->has_length && !hd->chunked ? (int64_t)hd->content_length : -1;
    if (q->head_only || r->head_method) {
        /* No body follows; forward the length the backend announced. */
        r->head_method = 1;
        mgw__resp_head(r, hd->status, hdrs, n, len < 0 ? 0 : len);
        return 1;
    }
    mgw__resp_head(r, hd->status, hdrs, n, len);
    return 0;
}

static int px_body(mgw_hc_req_t *q, const char *p, size_t n, mgw_rbuf_t *ref)
{
    mgw_req_t *r = ((mgw_proxy_t *)q->data)->r;
    mgw__resp_body(r, p, n, ref);
    /* The client is slower than the backend: stop reading the backend, and with it the
     * backend's clock (timeout_ms); the client's (timeouts.send) runs instead, moved on by
     * every write it takes (mgw__proxy_client_progress), until it has taken enough to
     * read on (mgw__proxy_client_drained). */
    if (r->c && r->c->stream.wq.pending >= MGW_WQ_HIGH) mgw_hc_pause(q, r->gen->send_timeout_ms);
    return 0;
}

/* A head whose body is not in this read goes out now. */
static void px_flush(mgw_hc_req_t *q)
{
    mgw__resp_flush(((mgw_proxy_t *)q->data)->r);
}

static void px_drain(mgw_hc_req_t *q)
{
    mgw_req_t *r = ((mgw_proxy_t *)q->data)->r;
    if (r->c) mgw__conn_unblock_read(r->c);
}

static void px_end(mgw_hc_req_t *q)
{
    mgw_req_t *r = ((mgw_proxy_t *)q->data)->r;
    r->px = NULL;
    mgw__resp_end(r);
}

static void px_error(mgw_hc_req_t *q, mgw_hc_err_t kind, const char *detail)
{
    mgw_proxy_t *px = q->data;
    mgw_req_t *r = px->r;
    mgw_gwresp_type_t type = MGW_GW_INTEGRATION_FAILURE;
    const char *why;
    r->px = NULL;
    switch (kind) {
    case MGW_HC_ETIMEOUT:
        if (q->got_head) {
            r->integ_error = "the backend stopped sending the response body";
            r->wr->abort(r);
            return;
        }
        type = MGW_GW_INTEGRATION_TIMEOUT;
        why = mgw_pool_printf(r->pool, "integration timed out after %llu ms",
                              (unsigned long long)q->timeout_ms);
        break;
    case MGW_HC_ESTALLED:
        /* The backend waits on a client that took none of the response for timeouts.send:
         * the client is closed, and the logs say it was the client (the status stands). */
        r->error_reason = "The client stopped reading the response";
        mgw_log_info("request %s: client %s took none of the response for %g s (timeouts.send)",
                     r->id, r->from.peer, (double)r->gen->send_timeout_ms / 1000);
        r->wr->abort(r);
        return;
    case MGW_HC_ERESOLVE:
        why = mgw_pool_printf(r->pool, "cannot resolve %s: %s", px->host, detail);
        break;
    case MGW_HC_ECONNECT:
        why =
            mgw_pool_printf(r->pool, "connect to %s:%d failed: %s", px->host, px->url.port, detail);
        break;
    case MGW_HC_ETLS:
        why = mgw_pool_printf(r->pool, "TLS with %s:%d: %s", px->host, px->url.port, detail);
        break;
    case MGW_HC_ECLOSED:
        why = mgw_pool_printf(r->pool, "reading from %s:%d: the backend closed the connection",
                              px->host, px->url.port);
        break;
    case MGW_HC_EPROTO:
        why = mgw_pool_printf(r->pool, "invalid response from %s:%d: %s", px->host, px->url.port,
                              detail);
        break;
    default:
        why = mgw_pool_printf(r->pool, "reading from %s:%d: %s", px->host, px->url.port, detail);
        break;
    }
    if (r->integ_end_ns == 0) r->integ_end_ns = uv_hrtime();
    r->integ_error = why;
    mgw_log_info("request %s: %s", r->id, why);
    mgw__req_fail(r, type, NULL);
}

static const mgw_hc_cbs_t proxy_cbs = {
    .on_head = px_head,
    .on_body = px_body,
    .on_flush = px_flush,
    .on_end = px_end,
    .on_error = px_error,
    .on_drain = px_drain,
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
