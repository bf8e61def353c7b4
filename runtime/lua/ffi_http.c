/*
 * The HTTP client of Lua policies (lua/moongate/http.lua) on the runtime's HTTP client
 * (http/client.h): a hook starts a call and its runner thread yields to the event loop; the
 * worker goes on serving other requests; the call's completion (response, error or
 * timeout) resumes the hook. One call per request at a time; connections are pooled per
 * worker and origin (shared with proxy integrations), https:// is verified against the
 * system store or the call's ca_file. When the request ends first (the client went away),
 * the call is abandoned: its connection closes and nothing is resumed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/proxy.h"
#include "lua/lua_int.h"

/* A finished call, in the request's arena. */
struct mgw_lhttp_result_s {
    mgw_ffi_http_result_t res;
    mgw_hdr_t *headers;
};

/* A call, in the request's arena. */
struct mgw_lhttp_s {
    mgw_hc_req_t q;
    mgw_req_t *r;
    mgw_buf_t body;
    uint64_t max_body;
    int status, too_large;
    mgw_hdr_t *hdrs; /* the client's, in r's arena */
    int nhdrs;
};

/* Ends the call with a response (error NULL) or an error, and resumes the hook. */
static void finish(mgw_lhttp_t *call, const char *error)
{
    mgw_req_t *r = call->r;
    mgw_lreq_t *l = r->lua;
    struct mgw_lhttp_result_s *res = mgw_pool_calloc(r->pool, sizeof(*res));
    if (error) {
        res->res.error = mgw_pool_strdup(r->pool, error);
    } else {
        res->res.status = call->status;
        res->res.nheaders = call->nhdrs;
        res->headers = call->hdrs;
        res->res.body =
            (mgw_str_t){mgw_pool_strndup(r->pool, call->body.p ? call->body.p : "", call->body.n),
                        call->body.n};
    }
    mgw_buf_free(&call->body);
    l->http_result = res;
    l->http = NULL;
    mgw__hooks_wakeup(r);
}

static int lh_head(mgw_hc_req_t *q, const mgw_http1_head_t *hd, mgw_hdr_t *hdrs, int nhdrs)
{
    mgw_lhttp_t *call = q->data;
    /* header names reach Lua in lower case */
    for (int i = 0; i < nhdrs; i++)
        for (char *s = (char *)hdrs[i].name.p, *e = s + hdrs[i].name.n; s < e; s++)
            if (*s >= 'A' && *s <= 'Z') *s = (char)(*s + 32);
    call->status = hd->status;
    call->hdrs = hdrs;
    call->nhdrs = nhdrs;
    return 0;
}

static int lh_body(mgw_hc_req_t *q, const char *p, size_t n, mgw_rbuf_t *ref)
{
    (void)ref;
    mgw_lhttp_t *call = q->data;
    if (call->body.n + n > call->max_body) {
        call->too_large = 1;
        return -1;
    }
    mgw_buf_add(&call->body, p, n);
    return 0;
}

static void lh_end(mgw_hc_req_t *q)
{
    finish(q->data, NULL);
}

static void lh_error(mgw_hc_req_t *q, mgw_hc_err_t kind, const char *detail)
{
    mgw_lhttp_t *call = q->data;
    char msg[600];
    switch (kind) {
    case MGW_HC_ERESOLVE:
        snprintf(msg, sizeof(msg), "cannot reach %s: %s", q->host, detail);
        break;
    case MGW_HC_ECONNECT:
        snprintf(msg, sizeof(msg), "connect to %s:%d failed: %s", q->host, q->port, detail);
        break;
    case MGW_HC_ETLS:
        snprintf(msg, sizeof(msg), "TLS with %s:%d: %s", q->host, q->port, detail);
        break;
    case MGW_HC_ECLOSED:
        snprintf(msg, sizeof(msg),
                 "the server closed the connection before the response was complete");
        break;
    case MGW_HC_EPROTO:
        snprintf(msg, sizeof(msg), "%s",
                 call->too_large ? "the response body is too large" : "invalid HTTP response");
        break;
    case MGW_HC_ETIMEOUT:
    case MGW_HC_ESTALLED:
        snprintf(msg, sizeof(msg), "timeout");
        break;
    default:
        snprintf(msg, sizeof(msg), "%s", detail);
        break;
    }
    finish(call, msg);
}

static const mgw_hc_cbs_t lua_http_cbs = {
    .on_head = lh_head,
    .on_body = lh_body,
    .on_end = lh_end,
    .on_error = lh_error,
};

/*
 * Starts an HTTP call for r's running hook. Returns 0 (the hook yields; it is resumed
 * when the call ends and reads the outcome with mgw_ffi_http_result); -1 with *err for
 * misuse (a bad URL, header or ca_file, a call already in flight); -2 with *err when the
 * connection failed at once. Nothing is in flight after an error.
 */
int mgw_ffi_http_start(mgw_req_t *r, const mgw_ffi_http_params_t *p, const char **err)
{
    mgw_lreq_t *l = mgw__lreq(r);
    if (l->http) return *err = "an HTTP call is already in flight for this request", -1;
    mgw_url_t url;
    if (mgw_url_parse(p->url, p->url_len, &url) != 0)
        return *err = "url must be an absolute http:// or https:// URL", -1;
    mgw_lhttp_t *call = mgw_pool_calloc(r->pool, sizeof(*call));
    mgw_hc_req_t *q = &call->q;
    const mgw_hdr_t *hdrs = p->headers;
    int nhdrs = p->nheaders;
    if (r->gen->tracing) {
        /* The trace context and request id go with the call (README "Tracing"), the
         * gateway's span as the parent, unless the policy set one of them itself. */
        mgw_hdr_t th[3];
        int nth = mgw__trace_headers(r, mgw__trace(r)->span_id, th);
        mgw_hdr_t *all = mgw_pool_alloc(r->pool, sizeof(*all) * (size_t)(nhdrs + nth));
        if (nhdrs) memcpy(all, hdrs, sizeof(*all) * (size_t)nhdrs);
        for (int i = 0; i < nth; i++) {
            int set = 0;
            for (int j = 0; j < p->nheaders && !set; j++)
                set = mgw_str_ieq(hdrs[j].name, th[i].name.p); /* lower case, terminated */
            if (!set) all[nhdrs++] = th[i];
        }
        hdrs = all;
    }
    const char *bad = mgw_hc_build(q, r->pool, (mgw_str_t){p->method, p->method_len}, &url, hdrs,
                                   nhdrs, (mgw_str_t){p->body, p->body_len});
    if (bad) return *err = bad, -1;
    mgw_hc_pool_t *pool = mgw__http_pool(r->from.w);
    if (url.tls) {
        const char *ca = p->ca_file ? mgw_pool_strndup(r->pool, p->ca_file, p->ca_file_len) : NULL;
        char why[512];
        q->tls = mgw_hc_pool_tls(pool, ca, why, sizeof(why));
        if (q->tls == NULL) return *err = mgw_pool_printf(r->pool, "ca_file: %s", why), -1;
        /* the identity proxy integrations give a stage without a client certificate whose
         * backend_ca is this file (or the system store): they may share connections */
        q->tls_id = ca ? ca : "-";
    }
    q->timeout_ms = q->total_ms = p->timeout_ms ? p->timeout_ms : 1;
    q->cbs = &lua_http_cbs;
    q->data = call;
    call->r = r;
    call->max_body = p->max_body;
    mgw_hc_err_t kind;
    const char *detail;
    if (mgw_hc_start(pool, q, &kind, &detail) != 0) {
        /* Failed at once: nothing will resume the hook, so report it now. */
        *err = detail;
        return -2;
    }
    l->http = call;
    l->http_result = NULL;
    l->waiting = MGW_WAIT_HTTP;
    return 0;
}

/*
 * The outcome of r's last call: 0 with the status, headers (count-then-fill: max may be
 * 0) and body, or -1 with out->error.
 */
int mgw_ffi_http_result(mgw_req_t *r, mgw_ffi_http_result_t *out, mgw_hdr_t *hdrs, int max)
{
    const struct mgw_lhttp_result_s *res = r->lua ? r->lua->http_result : NULL;
    if (res == NULL) {
        *out = (mgw_ffi_http_result_t){.error = "no HTTP call has finished"};
        return -1;
    }
    *out = res->res;
    for (int i = 0; i < res->res.nheaders && i < max; i++)
        hdrs[i] = res->headers[i];
    return res->res.error ? -1 : 0;
}

void mgw__lhttp_cancel(mgw_req_t *r)
{
    mgw_lhttp_t *call = r->lua ? r->lua->http : NULL;
    if (call == NULL) return;
    r->lua->http = NULL;
    mgw_hc_abort(&call->q);
    mgw_buf_free(&call->body);
}
