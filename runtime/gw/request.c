/*
 * A request from head to access-log line, whatever protocol it came by: handing it to the
 * handler of its listener, resolving the API, stage and route, the phases, starting the
 * integration, gateway responses, the $context variables and the tables of gw/gw.h that
 * the layers above fill in. Responses reach the client through the request's writer.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/crypto.h"
#include "base/log.h"
#include "gw/gw.h"
#include "gw/metrics.h"
#include "gw/req_int.h"

/* ---- the tables the layers above fill in (gw.h) ---- */

static void serve_api(mgw_req_t *r);
static const mgw_integ_ops_t mock_integration;

static struct {
    const mgw_writer_ops_t *writer;
    const mgw_gw_hooks_t *hooks;
    const mgw_integ_ops_t *integ[MGW_INTEG__COUNT];
    const mgw_authz_ops_t *authz[MGW_AUTHZ__COUNT];
    mgw_req_handler_t serve[MGW_LISTEN__COUNT];
    mgw_req_handler_t proto[MGW_PROTO__COUNT];
    mgw_req_handler_t span_sink;
    const mgw_exact_ops_t *exact;
} ext = {
    .integ = {[MGW_INTEG_MOCK] = &mock_integration},
    .serve = {[MGW_LISTEN_API] = serve_api},
};

void mgw_gw_set_writer(const mgw_writer_ops_t *writer)
{
    ext.writer = writer;
}

void mgw_gw_set_exact(const mgw_exact_ops_t *ops)
{
    ext.exact = ops;
}

void mgw_gw_set_integration(int type, const mgw_integ_ops_t *ops)
{
    ext.integ[type] = ops;
}

void mgw_gw_set_authorizer(int type, const mgw_authz_ops_t *ops)
{
    ext.authz[type] = ops;
}

void mgw_gw_set_hooks(const mgw_gw_hooks_t *hooks)
{
    ext.hooks = hooks;
}

void mgw_gw_set_handler(int kind, mgw_req_handler_t handler)
{
    ext.serve[kind] = handler;
}

void mgw_gw_set_span_sink(mgw_req_handler_t sink)
{
    ext.span_sink = sink;
}

void mgw_gw_set_protocol(int protocol, mgw_req_handler_t handler)
{
    ext.proto[protocol] = handler;
}

uint64_t mgw__now_ms(const mgw_req_t *r)
{
    return uv_now(&r->from.w->loop);
}

mgw_req_t *mgw__req_new(mgw_conn_t *c, const mgw_req_from_t *from)
{
    /* 16 KB: a proxied request (heads both ways, header tables, log state) fits in the
     * first block, which the pool keeps when it is recycled. */
    mgw_pool_t *pool = mgw_pool_create(16384);
    mgw_req_t *r = mgw_pool_calloc(pool, sizeof(*r));
    r->pool = pool;
    r->c = c;
    r->from = *from;
    r->wr = ext.writer;
    /* The request keeps the generation it started with until its pool goes away. */
    if (from->wgen) {
        r->wgen = from->wgen;
        r->wgen->nreqs++;
    } else {
        r->wgen = mgw__wgen_acquire(from->w);
    }
    mgw_pool_cleanup_add(pool, mgw__wgen_release, r->wgen);
    mgw_gen_t *g = r->gen = r->wgen->gen;
    /* Most heads fit in 2 KB of the arena's first block; head_append (http/server.c) grows it up
     * to max_header_size. */
    r->head_cap = g->max_header_size < 2048 ? g->max_header_size : 2048;
    r->head = mgw_pool_alloc(pool, r->head_cap);
    r->error_type = MGW_GW_NONE;
    r->start_ns = uv_hrtime();
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    r->start_ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
    r->method = MGW_STR("-");
    mgw__make_id(from->w, r->id);
    return r;
}

mgw_str_t mgw__req_header(const mgw_req_t *r, const char *name)
{
    size_t n = strlen(name);
    for (int i = 0; i < r->nheaders; i++)
        if (r->headers[i].name.n == n && memcmp(r->headers[i].name.p, name, n) == 0)
            return r->headers[i].value;
    return MGW_NULL_STR;
}

/* ---- $context ---- */

int mgw__req_u64(mgw_req_t *r, uint64_t v, mgw_str_t *out)
{
    mgw_sbuf_t b = {mgw_pool_alloc(r->pool, 24), 0};
    mgw_sbuf_u64(&b, v);
    *out = (mgw_str_t){b.p, b.n};
    return 1;
}

static int str(const char *s, mgw_str_t *out)
{
    if (s == NULL) return 0;
    *out = (mgw_str_t){s, strlen(s)};
    return 1;
}

static int lstr(mgw_str_t s, mgw_str_t *out)
{
    if (s.p == NULL) return 0;
    *out = s;
    return 1;
}

/* The caller's API key, from where the API takes it (api_key_source): the authorizer's
 * usageIdentifierKey and/or the x-api-key header; p NULL when there is none. */
static mgw_str_t caller_key(const mgw_req_t *r)
{
    int src = r->api ? r->api->api_key_source : MGW_KEYSRC_ANY;
    if (src != MGW_KEYSRC_HEADER && r->api_key.p) return r->api_key;
    if (src == MGW_KEYSRC_AUTHORIZER) return MGW_NULL_STR;
    return mgw__req_header(r, "x-api-key");
}

mgw_str_t mgw__req_caller_key(const mgw_req_t *r)
{
    return caller_key(r);
}

static int lookup(void *ud, int var, mgw_str_t arg, mgw_str_t *out)
{
    mgw_req_t *r = ud;
    switch (var) {
    case MGW_VAR_REQUEST_ID:
        return str(mgw__req_id(r), out);
    case MGW_VAR_EXTENDED_REQUEST_ID:
        return str(r->id, out);
    case MGW_VAR_TRACE_ID:
    case MGW_VAR_SPAN_ID: { /* made here when tracing is off */
        const mgw_trace_t *t = mgw__trace(r);
        size_t n = var == MGW_VAR_TRACE_ID ? 16 : 8;
        char *s = mgw_pool_alloc(r->pool, 2 * n);
        mgw__hex(var == MGW_VAR_TRACE_ID ? t->trace_id : t->span_id, n, s);
        *out = (mgw_str_t){s, 2 * n};
        return 1;
    }
    case MGW_VAR_RESOURCE_PATH: { /* the route's path template ("/pets/{id}") */
        const char *sp = r->route ? strchr(r->route->key, ' ') : NULL;
        return sp ? str(sp + 1, out) : 0;
    }
    case MGW_VAR_RESOURCE_ID:
        return mgw__req_resource_id(r, out);
    case MGW_VAR_CACHE_STATUS: /* HIT, MISS or REFRESH on cached routes */
        return str(r->cache_status, out);
    case MGW_VAR_WEBACL_ARN: /* names the stage's web ACL as its configuration path */
        if (r->stage == NULL || !r->stage->waf) return 0;
        return str(mgw_pool_printf(r->pool, "arn:moongate:wafv2:::webacl/apis.%s.stages.%s.waf",
                                   r->api->id, r->stage->name),
                   out);
    case MGW_VAR_API_ID:
        return r->api ? str(r->api->id, out) : 0;
    case MGW_VAR_STAGE:
        return r->stage ? str(r->stage->name, out) : 0;
    case MGW_VAR_ROUTE_KEY:
        return r->route ? str(r->route->key, out) : 0;
    case MGW_VAR_HTTP_METHOD:
        return lstr(r->method, out);
    case MGW_VAR_PATH:
        return lstr(r->raw_path, out);
    case MGW_VAR_PROTOCOL:
        if (!r->head_done) return 0;
        return str(r->minor == 0 ? "HTTP/1.0" : "HTTP/1.1", out);
    case MGW_VAR_STATUS:
        return r->status ? mgw__req_u64(r, (uint64_t)r->status, out) : 0;
    case MGW_VAR_RESPONSE_LENGTH:
        return mgw__req_u64(r, r->resp_bytes, out);
    case MGW_VAR_REQUEST_TIME: {
        /* formatted once per second and worker thread: strftime is costly per request */
        static _Thread_local time_t cached_sec = -1;
        static _Thread_local char cached[40];
        static _Thread_local size_t cached_len;
        time_t t = (time_t)(r->start_ms / 1000);
        if (t != cached_sec) {
            struct tm tm;
            gmtime_r(&t, &tm);
            cached_len = strftime(cached, sizeof(cached), "%d/%b/%Y:%H:%M:%S +0000", &tm);
            cached_sec = t;
        }
        *out = (mgw_str_t){mgw_pool_strndup(r->pool, cached, cached_len), cached_len};
        return 1;
    }
    case MGW_VAR_REQUEST_TIME_EPOCH:
        return mgw__req_u64(r, mgw__req_type(r)->epoch_ms ? r->start_ms : r->start_ms / 1000, out);
    case MGW_VAR_RESPONSE_LATENCY:
        return mgw__req_u64(r, (uv_hrtime() - r->start_ns) / 1000000, out);
    case MGW_VAR_INTEGRATION_LATENCY:
    case MGW_VAR_INTEGRATION_LATENCY2:
        /* on responseLatency's clock, truncated the same way: never the larger */
        if (!r->integ_start_ns || !r->integ_end_ns) return 0;
        return mgw__req_u64(r, (r->integ_end_ns - r->integ_start_ns) / 1000000, out);
    case MGW_VAR_INTEGRATION_STATUS:
    case MGW_VAR_INTEGRATION_STATUS2:
    case MGW_VAR_INTEGRATION_STATUS3:
        return r->integ_status ? mgw__req_u64(r, (uint64_t)r->integ_status, out) : 0;
    case MGW_VAR_INTEGRATION_ERROR:
    case MGW_VAR_INTEGRATION_ERROR2:
        return str(r->integ_error, out);
    case MGW_VAR_SOURCE_IP:
        return str(r->from.peer, out);
    case MGW_VAR_API_KEY: {
        /* A key is a secret: the log shows only its last four characters. */
        if (r->key == NULL) return 0;
        mgw_str_t k = caller_key(r);
        int tail = k.n > 8 ? 4 : 0;
        char *m = mgw_pool_printf(r->pool, "****%.*s", tail, k.p + k.n - (size_t)tail);
        return str(m, out);
    }
    case MGW_VAR_CLIENT_CERT_PEM:
        return r->from.client_cert ? str(r->from.client_cert->pem, out) : 0;
    case MGW_VAR_CLIENT_CERT_SUBJECT:
        return r->from.client_cert ? str(r->from.client_cert->subject_dn, out) : 0;
    case MGW_VAR_CLIENT_CERT_ISSUER:
        return r->from.client_cert ? str(r->from.client_cert->issuer_dn, out) : 0;
    case MGW_VAR_CLIENT_CERT_SERIAL:
        return r->from.client_cert ? str(r->from.client_cert->serial, out) : 0;
    case MGW_VAR_CLIENT_CERT_NOT_BEFORE:
        return r->from.client_cert ? str(r->from.client_cert->not_before, out) : 0;
    case MGW_VAR_CLIENT_CERT_NOT_AFTER:
        return r->from.client_cert ? str(r->from.client_cert->not_after, out) : 0;
    case MGW_VAR_API_KEY_ID:
        return r->key ? str(r->key->id, out) : 0;
    case MGW_VAR_THROTTLE_POLICY:
        return str(r->rl_name, out);
    case MGW_VAR_THROTTLE_LIMIT:
        return r->rl_name ? mgw__req_u64(r, r->rl_quota, out) : 0;
    case MGW_VAR_THROTTLE_REMAINING:
        return r->rl_name ? mgw__req_u64(r, r->rl_remaining, out) : 0;
    case MGW_VAR_THROTTLE_RESET:
        return r->rl_name ? mgw__req_u64(r, r->rl_reset_s, out) : 0;
    case MGW_VAR_USER_AGENT:
        return lstr(mgw__req_header(r, "user-agent"), out);
    case MGW_VAR_DOMAIN_NAME:
        return r->host.n ? lstr(r->host, out) : 0;
    case MGW_VAR_DOMAIN_PREFIX: {
        if (!r->host.n) return 0;
        const char *dot = memchr(r->host.p, '.', r->host.n);
        *out = (mgw_str_t){r->host.p, dot ? (size_t)(dot - r->host.p) : r->host.n};
        return 1;
    }
    case MGW_VAR_ERROR_MESSAGE:
    case MGW_VAR_ERROR_MESSAGE_STRING:
        /* a reason without a type: why a response was cut short (a client too slow) */
        if (r->error_type == MGW_GW_NONE && r->error_reason == NULL) return 0;
        if (r->error_reason) return str(r->error_reason, out);
        if (r->error_message) return str(r->error_message, out);
        mgw_gwresp_info_t ti;
        mgw_apitype_response(mgw__req_type(r), r->error_type, &ti, NULL);
        return str(ti.message, out);
    case MGW_VAR_ERROR_VALIDATION:
        return str(r->validation_error, out);
    case MGW_VAR_ERROR_RESPONSE_TYPE:
        return r->error_type == MGW_GW_NONE ? 0 : str(mgw_gwresp_info(r->error_type)->name, out);
    case MGW_VAR_STAGE_VARIABLE:
        if (!r->stage) return 0;
        for (int i = 0; i < r->stage->nvars; i++)
            if (r->stage->vars[i].name.n == arg.n &&
                memcmp(r->stage->vars[i].name.p, arg.p, arg.n) == 0)
                return lstr(r->stage->vars[i].value, out);
        return 0;
    case MGW_VAR_CONNECTION_ID:
    case MGW_VAR_CONNECTED_AT:
    case MGW_VAR_EVENT_TYPE:
    case MGW_VAR_MESSAGE_ID:
    case MGW_VAR_DISCONNECT_STATUS:
    case MGW_VAR_DISCONNECT_REASON: /* the protocol's (WebSocket events) */
        return r->wr->lookup ? r->wr->lookup(r, var, arg, out) : 0;
    default: { /* authorizer values (its type's), WAF and log-policy values (the hooks) */
        /* an authorizer runs in the gateway: its "integration" is the authorizer itself */
        if (var == MGW_VAR_AUTHORIZER_INTEGRATION_LATENCY) var = MGW_VAR_AUTHORIZER_LATENCY;
        if (var == MGW_VAR_AUTHORIZER_INTEGRATION_STATUS) var = MGW_VAR_AUTHORIZER_STATUS;
        const mgw_authz_ops_t *az = r->route ? ext.authz[r->route->authorizer_type] : NULL;
        if (az && az->lookup && az->lookup(r, var, arg, out)) return 1;
        return ext.hooks ? ext.hooks->lookup(r, var, arg, out) : 0;
    }
    }
    return 0;
}

int mgw__req_lookup(mgw_req_t *r, int var, mgw_str_t arg, mgw_str_t *out)
{
    return lookup(r, var, arg, out);
}

/* ---- responses ---- */

void mgw__resp_head(mgw_req_t *r, int status, const mgw_hdr_t *hdrs, int nhdrs,
                    int64_t content_length)
{
    r->status = status;
    r->resp_started = 1;
    /* The gateway's headers, after the response's own: the request id, and when throttling
     * had a say, Retry-After and the RateLimit pair of the limit closest to refusing
     * (draft-ietf-httpapi-ratelimit-headers). Formatted here, copied by the writer. */
    mgw_hdr_t more[8];
    int k = 0;
    const mgw_apitype_t *t = mgw__req_type(r);
    const char *rid = mgw__req_id(r);
    more[k++] =
        (mgw_hdr_t){{t->request_id_header, strlen(t->request_id_header)}, {rid, strlen(rid)}};
    if (t->extended_id_header)
        more[k++] = (mgw_hdr_t){{t->extended_id_header, strlen(t->extended_id_header)},
                                {r->id, strlen(r->id)}};
    char retry[24];
    if (r->retry_after_s) {
        mgw_sbuf_t b = {retry, 0};
        mgw_sbuf_u64(&b, r->retry_after_s);
        more[k++] = (mgw_hdr_t){MGW_STR("retry-after"), {b.p, b.n}};
    }
    /* both values: the policy's name twice ("stage-shared" the longest; at most 32
     * characters written) and four numbers of at most 20 digits */
    char rl[2 * 32 + 4 * 20 + 16];
    if (r->rl_name && r->stage && r->stage->rate_limit_headers) {
        size_t nn = strlen(r->rl_name);
        if (nn > 32) nn = 32;
        mgw_sbuf_t b = {rl, 0};
        mgw_sbuf_add(&b, "\"", 1);
        mgw_sbuf_add(&b, r->rl_name, nn);
        mgw_sbuf_add(&b, "\";q=", 4);
        mgw_sbuf_u64(&b, r->rl_quota);
        mgw_sbuf_add(&b, ";w=", 3);
        mgw_sbuf_u64(&b, r->rl_window_s);
        more[k++] = (mgw_hdr_t){MGW_STR("ratelimit-policy"), {b.p, b.n}};
        size_t at = b.n;
        mgw_sbuf_add(&b, "\"", 1);
        mgw_sbuf_add(&b, r->rl_name, nn);
        mgw_sbuf_add(&b, "\";r=", 4);
        mgw_sbuf_u64(&b, r->rl_remaining);
        mgw_sbuf_add(&b, ";t=", 3);
        mgw_sbuf_u64(&b, r->rl_reset_s);
        more[k++] = (mgw_hdr_t){MGW_STR("ratelimit"), {b.p + at, b.n - at}};
    }
    if (r->cache_status) k = mgw__cache_head(r, status, hdrs, nhdrs, more, k); /* x-cache, Age */
    r->wr->head(r, status, hdrs, nhdrs, more, k, content_length);
}

void mgw__resp_body(mgw_req_t *r, const char *p, size_t n, mgw_rbuf_t *ref)
{
    if (n == 0 || r->head_method) return;
    r->resp_bytes += n;
    if (r->cache_entry) mgw__cache_body(r, p, n); /* a miss: the entry takes a copy */
    r->wr->body(r, p, n, ref);
}

void mgw__resp_flush(mgw_req_t *r)
{
    r->wr->flush(r);
}

void mgw__resp_end(mgw_req_t *r)
{
    r->resp_done = 1;
    if (r->cache_entry) mgw__cache_end(r); /* a miss: the entry is complete */
    r->wr->end(r);
}

void mgw__resp_text(mgw_req_t *r, int status, const char *type, const char *body,
                    const mgw_hdr_t *extra, int nextra)
{
    mgw_hdr_t hdrs[2] = {{MGW_STR("content-type"), {type, strlen(type)}}};
    int n = 1;
    if (nextra) hdrs[n++] = extra[0];
    size_t len = strlen(body);
    mgw__resp_head(r, status, hdrs, n, (int64_t)len);
    mgw__resp_body(r, body, len, NULL);
    mgw__resp_end(r);
}

/* The configured customization for type, following the DEFAULT_4XX/5XX fallback. */
static const mgw_gwresp_conf_t *gw_conf(const mgw_req_t *r, mgw_gwresp_type_t type)
{
    if (r->api == NULL) return NULL;
    if (r->api->responses[type].configured) return &r->api->responses[type];
    mgw_gwresp_type_t fb = mgw_gwresp_fallback(type);
    if (r->api->responses[fb].configured) return &r->api->responses[fb];
    return NULL;
}

void mgw__req_fail(mgw_req_t *r, mgw_gwresp_type_t type, const char *message)
{
    mgw__req_fail_with(r, type, message, NULL, 0);
}

void mgw__req_fail_with(mgw_req_t *r, mgw_gwresp_type_t type, const char *message,
                        const mgw_hdr_t *extra, int nextra)
{
    if (r->resp_started) {
        /* Too late for a gateway response: the client sees a truncated response. */
        r->wr->abort(r);
        return;
    }
    mgw__req_abort(r); /* e.g. a body over the limit while proxying */
    const mgw_apitype_t *t = mgw__req_type(r);
    mgw_gwresp_info_t tinfo;
    const mgw_gwresp_override_t *o;
    mgw_apitype_response(t, type, &tinfo, &o);
    const mgw_gwresp_info_t *info = &tinfo;
    r->error_type = type;
    r->error_message = message;
    const mgw_gwresp_conf_t *conf = gw_conf(r, type);
    /* the configured status, else the caller's (r->error_status), else the type's */
    int status = conf && conf->status ? conf->status : info->status;
    if (r->error_status && !(conf && conf->status)) status = r->error_status;

    mgw_hdr_t hdrs[48];
    int n = 0;
    hdrs[n++] = (mgw_hdr_t){MGW_STR("content-type"), MGW_STR("application/json")};
    hdrs[n++] = (mgw_hdr_t){{t->error_type_header, strlen(t->error_type_header)},
                            {info->error_type, strlen(info->error_type)}};
    for (int i = 0; conf && i < conf->nheaders && n < 40; i++) {
        mgw_str_t v = conf->headers[i].value;
        static const char from[] = "$request.header.";
        if (v.n > sizeof(from) - 1 && memcmp(v.p, from, sizeof(from) - 1) == 0) {
            char *name = mgw_pool_strndup(r->pool, v.p + sizeof(from) - 1, v.n - sizeof(from) + 1);
            for (char *s = name; *s; s++)
                if (*s >= 'A' && *s <= 'Z') *s = (char)(*s + 32);
            v = mgw__req_header(r, name);
            if (v.p == NULL) continue;
        }
        hdrs[n++] = (mgw_hdr_t){conf->headers[i].name, v};
    }
    for (int i = 0; i < nextra && n < 48; i++)
        hdrs[n++] = extra[i];
    if (conf && conf->body) {
        mgw_buf_t body = {0};
        mgw_template_render(conf->body, lookup, r, &body);
        mgw__resp_head(r, status, hdrs, n, (int64_t)body.n);
        mgw__resp_body(r, body.p, body.n, NULL);
        mgw_buf_free(&body);
    } else {
        /* {"message":"..."}: the type's message, as API Gateway's default body says it
         * (the reason, if any, is for $context.error.message); no JSON escaping needed */
        const char *m = message ? message : info->message;
        const char *key = o->key ? o->key : "message";
        size_t mn = strlen(m), kn = strlen(key);
        mgw_sbuf_t b = {mgw_pool_alloc(r->pool, mn + kn + 16), 0};
        mgw_sbuf_add(&b, "{\"", 2);
        mgw_sbuf_add(&b, key, kn);
        if (o->null_message && message == NULL) {
            mgw_sbuf_add(&b, "\":null}", 7);
        } else {
            mgw_sbuf_add(&b, "\":\"", 3);
            mgw_sbuf_add(&b, m, mn);
            mgw_sbuf_add(&b, "\"}", 2);
        }
        mgw__resp_head(r, status, hdrs, n, (int64_t)b.n);
        mgw__resp_body(r, b.p, b.n, NULL);
    }
    mgw__resp_end(r);
}

/* ---- resolution and routing ---- */

/* Removes the first segment of *path when it equals seg; returns 1 if it did. */
static int strip_segment(mgw_str_t *path, const char *seg, size_t n)
{
    if (n == 0) return 1;
    if (path->n < n + 1 || memcmp(path->p + 1, seg, n) != 0) return 0;
    if (path->n > n + 1 && path->p[n + 1] != '/') return 0;
    if (path->n == n + 1)
        *path = MGW_STR("/");
    else
        *path = (mgw_str_t){path->p + n + 1, path->n - n - 1};
    return 1;
}

static mgw_str_t first_segment(mgw_str_t path)
{
    if (path.n <= 1) return MGW_NULL_STR;
    const char *s = path.p + 1, *e = memchr(s, '/', path.n - 1);
    return (mgw_str_t){s, e ? (size_t)(e - s) : path.n - 1};
}

/* Finds the API and the stage; returns MGW_GW_NONE or the type of the failure. */
static mgw_gwresp_type_t resolve(mgw_req_t *r)
{
    mgw_gen_t *g = r->gen;
    /* target: origin-form, or absolute-form whose authority we skip */
    mgw_str_t t = r->target;
    if (t.n > 7 && (memcmp(t.p, "http://", 7) == 0 || memcmp(t.p, "https://", 8) == 0)) {
        const char *s = memchr(t.p + 8, '/', t.n - 8);
        t = s ? (mgw_str_t){s, t.n - (size_t)(s - t.p)} : MGW_STR("/");
    }
    const char *q = memchr(t.p, '?', t.n);
    r->raw_path = (mgw_str_t){t.p, q ? (size_t)(q - t.p) : t.n};
    r->query = q ? (mgw_str_t){q + 1, t.n - (size_t)(q - t.p) - 1} : MGW_NULL_STR;
    if (mgw_path_normalize(r->pool, r->raw_path.p, r->raw_path.n, &r->path) != 0) {
        r->error_reason = "Invalid request path";
        return MGW_GW_BAD_REQUEST;
    }

    mgw_str_t host = mgw__req_header(r, "host");
    if (host.p) {
        const char *colon = host.p[0] == '[' ? memchr(host.p, ']', host.n) : NULL;
        colon = memchr(colon ? colon : host.p, ':',
                       host.n - (size_t)((colon ? colon : host.p) - host.p));
        char *h = mgw_pool_strndup(r->pool, host.p, colon ? (size_t)(colon - host.p) : host.n);
        for (char *s = h; *s; s++)
            if (*s >= 'A' && *s <= 'Z') *s = (char)(*s + 32);
        r->host = (mgw_str_t){h, strlen(h)};
    }

    mgw_str_t path = r->path;
    const mgw_domain_t *d = r->host.n ? mgw_gen_find_domain(g, r->host.p, r->host.n) : NULL;
    r->domain = d;
    /* A mutual-TLS domain is served only on connections whose handshake chose it (by
     * SNI) and so checked the client's certificate: a Host header alone cannot reach it. */
    if (d && d->mtls && (r->from.tls_host == NULL || strcmp(r->from.tls_host, d->host) != 0)) {
        r->error_reason = "This domain requires a TLS connection to it";
        return MGW_GW_MISDIRECTED_REQUEST;
    }
    if (d) {
        for (int i = 0; i < d->nmaps; i++) {
            if (strip_segment(&path, d->maps[i].base, d->maps[i].base_len)) {
                r->api = d->maps[i].api;
                r->stage = d->maps[i].stage;
                break;
            }
        }
    } else {
        /* the listener's API, else the Host's first label (README "Which API answers") */
        mgw_api_t *api = mgw__req_listen(r)->api;
        if ((api == NULL || !api->default_endpoint) && r->host.n) {
            const char *dot = memchr(r->host.p, '.', r->host.n);
            if (dot) api = mgw_gen_find_api(g, r->host.p, (size_t)(dot - r->host.p));
        }
        if (api && api->default_endpoint) r->api = api;
    }
    if (r->api == NULL) return MGW_GW_RESOURCE_NOT_FOUND;
    if (r->stage == NULL) {
        mgw_str_t seg = first_segment(path);
        mgw_stage_t *st = seg.p ? mgw_api_find_stage(r->api, seg.p, seg.n) : NULL;
        if (st && strcmp(st->name, "$default") != 0) {
            strip_segment(&path, seg.p, seg.n);
            r->stage = st;
        } else {
            r->stage = r->api->default_stage;
        }
    }
    if (r->stage == NULL) return mgw__api_type(r->api)->no_stage;
    r->route_path = path;
    return MGW_GW_NONE;
}

/* The mock integration: the route's configured status, headers and body. */
static int run_mock(mgw_req_t *r)
{
    const mgw_integration_t *in = &r->route->integration;
    mgw_hdr_t hdrs[64];
    int n = 0, has_ct = 0;
    for (int i = 0; i < in->nheaders && n < 63; i++) {
        hdrs[n++] = (mgw_hdr_t){in->headers[i].name, in->headers[i].value};
        if (mgw_str_ieq(in->headers[i].name, "content-type")) has_ct = 1;
    }
    if (!has_ct && in->body.n)
        hdrs[n++] = (mgw_hdr_t){MGW_STR("content-type"), MGW_STR("application/json")};
    mgw__resp_head(r, in->status, hdrs, n, (int64_t)in->body.n);
    mgw__resp_body(r, in->body.p, in->body.n, NULL);
    mgw__resp_end(r);
    return MGW_PHASE_STOP;
}

static const mgw_integ_ops_t mock_integration = {.name = "mock", .start = run_mock};

/* ---- phases (DESIGN.md "Request lifecycle") ---- */

/* A policy (r->stage->waf, r->api->selector) is configured but no hooks can run it. */
static int no_hooks(mgw_req_t *r)
{
    r->error_reason = "no policy hooks to run the stage's policies";
    mgw__req_fail(r, MGW_GW_API_CONFIGURATION_ERROR, NULL);
    return MGW_PHASE_STOP;
}

/* WAF: the stage's web ACL, run by the policy hooks. */
static int phase_waf(mgw_req_t *r)
{
    if (!r->stage->waf) return MGW_PHASE_NEXT;
    return ext.hooks ? ext.hooks->waf(r) : no_hooks(r);
}

/* Route selection: the API's route keys, matched in C, after its Lua selector if any. */
static int phase_route(mgw_req_t *r)
{
    mgw_route_match_t m;
    if (r->route_set) return MGW_PHASE_NEXT; /* chosen by the protocol: nothing to match */
    r->method_idx = mgw_method_index(r->method.p, r->method.n);
    /* A route_selection policy may pick the route (or leave it to the route keys). */
    if (r->api->selector) {
        int rc = ext.hooks ? ext.hooks->select_route(r) : no_hooks(r);
        if (rc != MGW_PHASE_NEXT) return rc;
    }
    int found = mgw_router_match(r->api->router, r->method_idx, r->route_path, &m) == 0;
    if (r->route == NULL) {
        if (!found) {
            mgw__req_fail(r, mgw__api_type(r->api)->no_route, NULL);
            return MGW_PHASE_STOP;
        }
        r->route = m.data;
    } else if (!found || m.data != r->route) {
        return MGW_PHASE_NEXT; /* a selected route its path does not match: no parameters */
    }
    r->nparams = m.nparams;
    if (m.nparams) {
        r->params = mgw_pool_alloc(r->pool, sizeof(mgw_kv_t) * (size_t)m.nparams);
        memcpy(r->params, m.params, sizeof(mgw_kv_t) * (size_t)m.nparams);
    }
    return MGW_PHASE_NEXT;
}

/* Authorization: the route's authorizer, by its type. */
static int phase_authorize(mgw_req_t *r)
{
    int type = r->route->authorizer_type;
    if (type == MGW_AUTHZ_NONE) return MGW_PHASE_NEXT;
    if (ext.authz[type] == NULL) {
        r->error_reason = "the route's authorizer type is not available";
        mgw__req_fail(r, MGW_GW_AUTHORIZER_CONFIGURATION_ERROR, NULL);
        return MGW_PHASE_STOP;
    }
    return ext.authz[type]->authorize(r);
}

static uint64_t ceil_s(uint64_t ms)
{
    return (ms + 999) / 1000;
}

/* Remembers the limit closest to refusing (or the one that refused: force), for the
 * RateLimit headers. */
static void note_limit(mgw_req_t *r, const char *name, uint64_t quota, uint64_t window_s,
                       uint64_t remaining, uint64_t reset_s, int force)
{
    if (!force && r->rl_name && remaining >= r->rl_remaining) return;
    r->rl_name = name;
    r->rl_quota = quota;
    r->rl_window_s = window_s ? window_s : 1;
    r->rl_remaining = remaining;
    r->rl_reset_s = reset_s;
}

/* The membership of the API key key (its SHA-256 compared) in a usage plan of r's API
 * covering r's stage, or NULL; r->key is set when the key is configured at all. */
static const mgw_member_t *find_key(mgw_req_t *r, mgw_str_t key)
{
    if (key.p == NULL || key.n == 0) return NULL;
    uint8_t digest[32];
    mgw_sha256(key.p, key.n, digest);
    r->key = mgw_gen_find_key(r->gen, digest);
    return r->key ? mgw_key_member(r->key, r->api, r->stage) : NULL;
}

/* Finds the caller's API key; returns 0, or -1 after answering 403 INVALID_API_KEY. */
static int identify_key(mgw_req_t *r, const mgw_member_t **member)
{
    const mgw_route_t *rt = r->route;
    *member = NULL;
    if (!rt->api_key_required && r->api->nplans == 0) return 0;
    mgw_str_t key = caller_key(r);
    *member = find_key(r, key);
    /* A required key must exist and, when the API has usage plans, belong to one that
     * covers this stage (as in API Gateway). */
    if (rt->api_key_required && (r->key == NULL || (r->api->nplans && *member == NULL))) {
        mgw__req_fail(r, MGW_GW_INVALID_API_KEY, NULL);
        return -1;
    }
    return 0;
}

int mgw__req_limits(const mgw_req_t *r, const mgw_member_t *m, mgw_limit_t lv[MGW_LIMITS_MAX])
{
    const mgw_stage_t *st = r->stage;
    int idx = r->route ? r->route->idx : -1;
    int n = 0;
    if (r->gen->account) lv[n++] = (mgw_limit_t){r->gen->account, "account"};
    if (st && st->shared_throttle) lv[n++] = (mgw_limit_t){st->shared_throttle, "stage-shared"};
    if (st && idx >= 0 && st->route_limits && st->route_limits[idx].bucket)
        lv[n++] = st->route_limits[idx];
    if (m && m->throttle) lv[n++] = (mgw_limit_t){m->throttle, "plan"};
    if (m && idx >= 0 && m->route_limits && m->route_limits[idx].bucket)
        lv[n++] = m->route_limits[idx];
    return n;
}

/* Records the state of level l after a take (ok) or a refusal, for the RateLimit headers. */
static void note_take(mgw_req_t *r, const mgw_limit_t *l, const mgw_take_t *t, int ok)
{
    uint64_t burst = mgw_bucket_burst(l->bucket);
    uint64_t window = (uint64_t)((double)burst / mgw_bucket_rate(l->bucket) + 0.999);
    note_limit(r, l->policy, burst, window, t->remaining,
               ceil_s(ok ? t->reset_ms : t->retry_after_ms), !ok);
}

/* Gives back the tokens of the levels of lv in taken (bit i: lv[i]). */
static void refund_levels(const mgw_limit_t *lv, int n, unsigned taken)
{
    for (int i = 0; i < n; i++)
        if (taken >> i & 1) mgw_bucket_refund(lv[i].bucket);
}

/* Answers 429 THROTTLED, a token of the refusing level being t->retry_after_ms away. */
static int throttled(mgw_req_t *r, const mgw_take_t *t)
{
    r->retry_after_s = ceil_s(t->retry_after_ms) ? ceil_s(t->retry_after_ms) : 1;
    mgw__req_fail(r, MGW_GW_THROTTLED, NULL);
    return MGW_PHASE_STOP;
}

/*
 * Takes a token at each level of lv in mask; on a refusal gives back what it took and
 * the levels of taken (taken before), and answers 429. Returns MGW_PHASE_NEXT or STOP.
 */
static int take_levels(mgw_req_t *r, const mgw_limit_t *lv, int n, unsigned mask, unsigned taken)
{
    uint64_t now = mgw_throttle_now();
    for (int i = 0; i < n; i++) {
        if (!(mask >> i & 1)) continue;
        mgw_take_t t;
        int ok = mgw_bucket_take(lv[i].bucket, now, &t);
        note_take(r, &lv[i], &t, ok);
        if (!ok) {
            refund_levels(lv, n, taken);
            return throttled(r, &t);
        }
        taken |= 1u << i;
    }
    return MGW_PHASE_NEXT;
}

/* The plan's quota, once every level admitted r; a refusal gives back the levels of
 * taken (those decided here: a token an exact level took in Redis stays spent). */
static int take_quota(mgw_req_t *r, const mgw_member_t *m, const mgw_limit_t *lv, int n,
                      unsigned taken)
{
    static const uint64_t period_s[] = {86400, 7 * 86400, 31 * 86400};
    if (!(m && m->quota)) return MGW_PHASE_NEXT;
    const mgw_plan_t *p = m->plan;
    uint64_t remaining, reset_s;
    int ok = mgw_quota_take(m->quota, p->quota_period, p->quota_limit, p->quota_offset, time(NULL),
                            &remaining, &reset_s);
    note_limit(r, "quota", p->quota_limit, period_s[p->quota_period], remaining, reset_s, !ok);
    mgw__metrics_quota(r, m, ok);
    if (ok) return MGW_PHASE_NEXT;
    refund_levels(lv, n, taken);
    r->retry_after_s = reset_s ? reset_s : 1;
    mgw__req_fail(r, MGW_GW_QUOTA_EXCEEDED, NULL);
    return MGW_PHASE_STOP;
}

/* A throttle phase waiting for the store of exact limits (gw.h mgw_exact_ops_t). */
typedef struct {
    mgw_limit_t lv[MGW_LIMITS_MAX];
    int n;
    unsigned exact; /* the levels the store decides; the others are taken */
    const mgw_member_t *m;
} exact_wait_t;

static void exact_done(mgw_req_t *r, void *arg, const mgw_exact_t *a)
{
    exact_wait_t *w = arg;
    if (r->resp_started) return; /* answered meanwhile */
    unsigned taken = ((1u << w->n) - 1) & ~w->exact;
    if (!a->decided) {
        /* no answer in time: the exact levels' local fallback decides */
        if (take_levels(r, w->lv, w->n, w->exact, taken) != MGW_PHASE_NEXT) return;
        taken |= w->exact;
    } else {
        for (int i = 0, k = 0; i < w->n; i++) {
            if (!(w->exact >> i & 1)) continue;
            if (k == a->refused) {
                note_take(r, &w->lv[i], &a->take[k], 0);
                refund_levels(w->lv, w->n, taken);
                throttled(r, &a->take[k]);
                return;
            }
            note_take(r, &w->lv[i], &a->take[k++], 1);
        }
    }
    if (take_quota(r, w->m, w->lv, w->n, taken) == MGW_PHASE_NEXT) mgw__req_resume(r);
}

/* Asks the store of exact limits for the levels of exact, the others being taken; returns
 * MGW_PHASE_WAIT, or what the local buckets decide when it cannot ask now. */
static int ask_exact(mgw_req_t *r, const mgw_member_t *m, const mgw_limit_t *lv, int n,
                     unsigned exact)
{
    unsigned taken = ((1u << n) - 1) & ~exact;
    exact_wait_t *w = mgw_pool_alloc(r->pool, sizeof(*w));
    mgw_bucket_t *b[MGW_LIMITS_MAX];
    int k = 0;
    memcpy(w->lv, lv, sizeof(*lv) * (size_t)n);
    w->n = n;
    w->exact = exact;
    w->m = m;
    for (int i = 0; i < n; i++)
        if (exact >> i & 1) b[k++] = lv[i].bucket;
    if (ext.exact->check(r, b, k, exact_done, w) == 0) return MGW_PHASE_WAIT;
    if (take_levels(r, lv, n, exact, taken) != MGW_PHASE_NEXT) return MGW_PHASE_STOP;
    return take_quota(r, m, lv, n, taken | exact);
}

/*
 * Throttling: the account, stage-shared, route (its route_settings limit or the stage's
 * default), plan and plan route buckets, then the plan's quota. A request takes a token
 * at every level only if it passes them all: a refusal gives back what the levels before
 * it took. Exact levels (in a cluster) are asked of Redis last, all at once, once the
 * others admitted the request.
 */
static int phase_throttle(mgw_req_t *r)
{
    const mgw_member_t *m;
    if (identify_key(r, &m) != 0) return MGW_PHASE_STOP;

    mgw_limit_t lv[MGW_LIMITS_MAX];
    int n = mgw__req_limits(r, m, lv);
    if (n == 0 && !(m && m->quota)) return MGW_PHASE_NEXT;

    unsigned all = (1u << n) - 1, exact = 0;
    if (r->gen->exact_limits && ext.exact)
        for (int i = 0; i < n; i++)
            if (mgw_bucket_exact(lv[i].bucket)) exact |= 1u << i;
    if (take_levels(r, lv, n, all & ~exact, 0) != MGW_PHASE_NEXT) return MGW_PHASE_STOP;
    if (exact) return ask_exact(r, m, lv, n, exact);
    return take_quota(r, m, lv, n, all);
}

void mgw__req_send_continue(mgw_req_t *r)
{
    if (!r->body_done) r->wr->want_body(r);
}

void mgw__req_forward_kept_body(mgw_req_t *r)
{
    if (r->body_mem.p) {
        /* known from the start (a WebSocket message): all of it, then its end */
        if (r->body_mem.n) r->integ->body(r, r->body_mem.p, r->body_mem.n, NULL);
        r->integ->body_done(r);
        return;
    }
    /* what came while the phases ran, then the end if it came too */
    if (r->kept_body.n) r->integ->body(r, r->kept_body.p, r->kept_body.n, NULL);
    mgw_buf_free(&r->kept_body);
    if (r->body_done) r->integ->body_done(r);
}

static void free_kept_body(void *data)
{
    mgw_buf_free(&((mgw_req_t *)data)->kept_body);
}

/* Keeps body bytes that came before anything takes them. */
static void keep_body(mgw_req_t *r, const char *p, size_t n)
{
    if (r->kept_body.cap == 0) mgw_pool_cleanup_add(r->pool, free_kept_body, r);
    mgw_buf_add(&r->kept_body, p, n);
}

/* ---- from the client's side ---- */

/* The integration that runs for r and takes the request body, or NULL. */
static const mgw_integ_ops_t *body_taker(const mgw_req_t *r)
{
    return r->integ && r->integ->body ? r->integ : NULL;
}

void mgw__req_body(mgw_req_t *r, const char *p, size_t n, mgw_rbuf_t *ref)
{
    if (r->discard_body) return;
    const mgw_integ_ops_t *in = body_taker(r);
    if (in)
        in->body(r, p, n, ref);
    else if (r->vbody && !r->resp_started)
        mgw__validate_body(r, p, n); /* the validate phase reads the body */
    else if (!r->resp_started)
        keep_body(r, p, n); /* the phases still run (or wait) */
}

void mgw__req_body_done(mgw_req_t *r)
{
    if (r->discard_body) return;
    const mgw_integ_ops_t *in = body_taker(r);
    if (in)
        in->body_done(r);
    else if (r->vbody && !r->resp_started)
        mgw__validate_body_done(r); /* may answer r */
    else if (r->lua && !r->resp_started && ext.hooks)
        ext.hooks->body_done(r); /* may answer r */
}

void mgw__req_client_progress(mgw_req_t *r)
{
    if (r->integ && r->integ->client_progress) r->integ->client_progress(r);
}

void mgw__req_client_drained(mgw_req_t *r)
{
    if (r->integ && r->integ->client_drained) r->integ->client_drained(r);
}

void mgw__req_abort(mgw_req_t *r)
{
    if (r->integ && r->integ->abort) r->integ->abort(r);
}

void mgw__req_take_kept_body(mgw_req_t *r, mgw_buf_t *into)
{
    if (r->kept_body.n) mgw_buf_add(into, r->kept_body.p, r->kept_body.n);
    mgw_buf_free(&r->kept_body);
}

/* Response caching (gw/cache.c), after every check (throttling counts cached requests
 * too, as in API Gateway): only routes of a stage with a cache pay more than this test. */
static int phase_cache(mgw_req_t *r)
{
    if (r->stage->cache == NULL) return MGW_PHASE_NEXT;
    return mgw__cache_phase(r);
}

/* The integration: always the last phase; it answers the request. */
static int phase_integration(mgw_req_t *r)
{
    /* Request validation (gw/validate.c): after every check, before the integration. */
    if (r->route->validation && !r->validated) {
        int rc = mgw__validate(r);
        if (rc != MGW_PHASE_NEXT) return rc;
    }
    const mgw_integ_ops_t *in = ext.integ[r->route->integration.type];
    if (in == NULL) {
        r->integ_error = "the route's integration type is not available";
        mgw__req_fail(r, MGW_GW_API_CONFIGURATION_ERROR, NULL);
        return MGW_PHASE_STOP;
    }
    /* "100 Continue" only once the request is sure to reach its integration. */
    mgw__req_send_continue(r);
    r->integ = in;
    return in->start(r); /* r may be gone */
}

/* The phases, in MGW_PHASES order (req_int.h). */
static int (*const phases[MGW_PHASE__COUNT])(mgw_req_t *r) = {
#define XX(id, name) [MGW_PHASE_##id] = phase_##name,
    MGW_PHASES(XX)
#undef XX
};

/* When the phase that runs began and ended, for its span (a traced request only). */
static void phase_time(mgw_req_t *r, int end)
{
    uint64_t *t = r->trace->phase_ns[r->phase];
    if (!t[end]) t[end] = uv_hrtime();
}

void mgw__req_continue(mgw_req_t *r)
{
    while (r->phase < MGW_PHASE__COUNT) {
        if (r->trace) phase_time(r, 0);
        int rc = phases[r->phase](r);
        if (rc != MGW_PHASE_NEXT) return; /* answered, or waiting for mgw__req_resume() */
        if (r->trace) phase_time(r, 1);
        r->phase++;
    }
}

void mgw__req_resume(mgw_req_t *r)
{
    if (r->trace) phase_time(r, 1);
    r->phase++;
    mgw__req_continue(r);
}

void mgw__req_dispatch(mgw_req_t *r)
{
    r->head_method = r->method.n == 4 && memcmp(r->method.p, "HEAD", 4) == 0;
    mgw_req_handler_t serve = ext.serve[mgw__req_listen(r)->kind];
    if (serve == NULL) {
        mgw__req_fail(r, MGW_GW_RESOURCE_NOT_FOUND, NULL);
        return;
    }
    serve(r);
}

/* The handler of API listeners: the gateway. */
static void serve_api(mgw_req_t *r)
{
    /* Resolve even a request about to be refused, so that its API's customized response
     * and its stage's access log apply. */
    mgw_gwresp_type_t err = resolve(r);
    if (r->has_length && r->content_length > r->gen->max_body_size) {
        r->keepalive = 0;
        r->error_reason = NULL; /* resolve's, if any, is not why */
        mgw__req_fail(r, MGW_GW_REQUEST_TOO_LARGE, NULL);
        return;
    }
    if (err != MGW_GW_NONE) {
        mgw__req_fail(r, err, NULL);
        return;
    }
    if (!mgw__api_type(r->api)->phases) {
        mgw_req_handler_t serve = ext.proto[r->api->protocol];
        if (serve) {
            serve(r);
        } else {
            r->error_reason = "the API's protocol is not available";
            mgw__req_fail(r, MGW_GW_API_CONFIGURATION_ERROR, NULL);
        }
        return;
    }
    if (r->gen->tracing) mgw__trace(r);
    r->phase = MGW_PHASE_WAF;
    mgw__req_continue(r);
}

/* ---- end ---- */

/*
 * The stage whose access log records r. A request rejected before its stage was known
 * (malformed, head too large, too slow, no such stage) is recorded by the $default stage
 * (or only stage) of its API, or of the API its listener serves.
 */
static const mgw_stage_t *log_stage(const mgw_req_t *r)
{
    if (r->stage) return r->stage;
    const mgw_api_t *api = r->api ? r->api : mgw__req_listen(r)->api;
    if (api == NULL) return NULL;
    if (api->default_stage) return api->default_stage;
    return api->nstages == 1 ? &api->stages[0] : NULL;
}

/* Appends line (its n bytes, newline included; nothing when empty) to log log_id and
 * gives the worker's line buffer back for the next line. */
static void put_line(mgw_req_t *r, int log_id, mgw_buf_t line)
{
    if (line.n) mgw_accesslog_append(r->wgen->alog, log_id, line.p, line.n);
    if (line.cap > 65536) mgw_buf_free(&line); /* after an outsized line */
    r->from.w->log_line = line;
}

/* The worker's line buffer, emptied: lines are built there one after the other. */
static mgw_buf_t take_line(mgw_req_t *r)
{
    mgw_buf_t line = r->from.w->log_line;
    line.n = 0;
    return line;
}

/* The WAF log line of r (README "WAF logs"), when the request is in the sample: one
 * draw of the worker's generator, none at sample_rate 1. */
static void waf_log(mgw_req_t *r, const mgw_stage_t *st)
{
    const mgw_waflog_t *wl = st->waf_log;
    if (!(wl->sample_all || mgw__rng(r->from.w) < wl->sample_below) || !ext.hooks ||
        !ext.hooks->waf_log)
        return;
    mgw_buf_t line = take_line(r);
    if (!ext.hooks->waf_log(r, st, &line)) line.n = 0;
    put_line(r, wl->log_id, line);
}

void mgw__req_free(mgw_req_t *r)
{
    if (r->trace && r->trace->exported && ext.span_sink) ext.span_sink(r);
    mgw__metrics_request(r);
    const mgw_stage_t *st = log_stage(r);
    if (st && st->waf_log) waf_log(r, st);
    if (st && st->log_id >= 0 && (st->log_format || st->log_policy)) {
        mgw_buf_t line = take_line(r);
        /* A log policy writes the line itself, or adds $context.custom.* values. */
        if (!(st->log_policy && ext.hooks && ext.hooks->log(r, st, &line)) && st->log_format)
            mgw_template_render(st->log_format, lookup, r, &line);
        if (line.n) mgw_buf_addc(&line, '\n');
        put_line(r, st->log_id, line);
    }
    mgw_pool_destroy(r->pool);
}
