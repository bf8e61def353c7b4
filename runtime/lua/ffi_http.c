/*
 * The HTTP client of Lua policies (lua/moongate/http.lua): a hook starts a call and its
 * coroutine yields to the event loop; the worker goes on serving other requests; the
 * call's completion (response, error or timeout) resumes the hook. One call per request
 * at a time, one connection per call (Connection: close), plain http only until TLS
 * lands. When the request ends first (the client went away), the call is abandoned:
 * its socket and timer close and nothing is resumed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lua/lua_int.h"

#define MAX_RESPONSE_HEAD 65536
#define MAX_RESPONSE_HEADERS 100

/* What Lua passes to mgw_ffi_http_start (http.lua). */
typedef struct {
    const char *method;
    size_t method_len;
    const char *url;
    size_t url_len;
    const mgw_hdr_t *headers;
    int nheaders;
    const char *body;
    size_t body_len;
    uint64_t timeout_ms;
    uint64_t max_body; /* largest response body accepted */
} mgw_ffi_http_params_t;

/* What Lua reads with mgw_ffi_http_result. */
typedef struct {
    int status;
    int nheaders;
    mgw_str_t body;
    const char *error; /* NULL when a response arrived */
} mgw_ffi_http_result_t;

/* A finished call, in the request's arena. */
struct mgw_lhttp_result_s {
    mgw_ffi_http_result_t res;
    mgw_hdr_t *headers;
};

typedef struct {
    uv_getaddrinfo_t req;
    mgw_lhttp_t *call; /* NULL once the call was abandoned */
} resolve_t;

struct mgw_lhttp_s {
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_connect_t connect;
    uv_write_t write;
    mgw_req_t *r; /* NULL once abandoned */
    resolve_t *resolving;
    mgw_http1_t *parser;
    mgw_buf_t out; /* the serialized request */
    mgw_buf_t name, value;
    mgw_buf_t body;
    mgw_hdr_t *hdrs; /* in r's arena */
    int nhdrs, hstate, status, complete, finished, handles, too_large;
    size_t head_bytes;
    uint64_t max_body;
    char *host;
    int port;
};

static void call_closed(uv_handle_t *h)
{
    mgw_lhttp_t *call = h->data;
    if (--call->handles > 0) return;
    mgw_http1_destroy(call->parser);
    mgw_buf_free(&call->out);
    mgw_buf_free(&call->name);
    mgw_buf_free(&call->value);
    mgw_buf_free(&call->body);
    free(call->host);
    free(call);
}

/* Closes the call's handles; it is freed once they are closed. */
static void call_close(mgw_lhttp_t *call)
{
    call->finished = 1;
    if (call->resolving) {
        call->resolving->call = NULL;
        call->resolving = NULL;
    }
    uv_close((uv_handle_t *)&call->timer, call_closed);
    uv_close((uv_handle_t *)&call->tcp, call_closed);
}

/* Ends the call with a response (error NULL) or an error, and resumes the hook. */
static void finish(mgw_lhttp_t *call, const char *error)
{
    if (call->finished) return;
    mgw_req_t *r = call->r;
    call_close(call);
    if (r == NULL) return;
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
    l->http_result = res;
    l->http = NULL;
    call->r = NULL;
    mgw__hooks_wakeup(r);
}

static void timeout_cb(uv_timer_t *t)
{
    finish(t->data, "timeout");
}

/* ---- the response ---- */

static void flush_header(mgw_lhttp_t *call)
{
    if (call->hstate != 2 || call->r == NULL) return;
    if (call->nhdrs < MAX_RESPONSE_HEADERS) {
        mgw_pool_t *pool = call->r->pool;
        char *name = mgw_pool_strndup(pool, call->name.p, call->name.n);
        for (char *s = name; *s; s++)
            if (*s >= 'A' && *s <= 'Z') *s = (char)(*s + 32);
        call->hdrs[call->nhdrs++] =
            (mgw_hdr_t){{name, call->name.n},
                        {mgw_pool_strndup(pool, call->value.p ? call->value.p : "", call->value.n),
                         call->value.n}};
    }
    call->name.n = call->value.n = 0;
    call->hstate = 0;
}

static int on_field(void *ud, const char *p, size_t n)
{
    mgw_lhttp_t *call = ud;
    flush_header(call);
    call->hstate = 1;
    call->head_bytes += n;
    mgw_buf_add(&call->name, p, n);
    return call->head_bytes > MAX_RESPONSE_HEAD ? -1 : 0;
}

static int on_value(void *ud, const char *p, size_t n)
{
    mgw_lhttp_t *call = ud;
    call->hstate = 2;
    call->head_bytes += n;
    mgw_buf_add(&call->value, p, n);
    return call->head_bytes > MAX_RESPONSE_HEAD ? -1 : 0;
}

static int on_headers_complete(void *ud, const mgw_http1_head_t *hd)
{
    mgw_lhttp_t *call = ud;
    flush_header(call);
    if (hd->status >= 100 && hd->status < 200) {
        call->nhdrs = 0; /* an interim response: the real one follows */
        return 0;
    }
    call->status = hd->status;
    return 0;
}

static int on_body(void *ud, const char *p, size_t n)
{
    mgw_lhttp_t *call = ud;
    if (call->body.n + n > call->max_body) {
        call->too_large = 1;
        return -1;
    }
    mgw_buf_add(&call->body, p, n);
    return 0;
}

static int on_complete(void *ud)
{
    mgw_lhttp_t *call = ud;
    if (call->status == 0) return 0; /* the end of an interim response */
    call->complete = 1;
    return MGW_HTTP1_PAUSE;
}

static const mgw_http1_cbs_t response_cbs = {
    .on_header_field = on_field,
    .on_header_value = on_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_complete,
};

static void alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    (void)h;
    (void)hint;
    static _Thread_local char chunk[65536];
    buf->base = chunk;
    buf->len = sizeof(chunk);
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    mgw_lhttp_t *call = s->data;
    if (nread == 0 || call->finished) return;
    if (nread < 0) {
        /* EOF ends a response without a length */
        if (nread == UV_EOF && mgw_http1_finish(call->parser) == MGW_HTTP1_OK && call->complete) {
            finish(call, NULL);
            return;
        }
        finish(call, nread == UV_EOF ? "the server closed the connection before the response "
                                       "was complete"
                                     : uv_strerror((int)nread));
        return;
    }
    size_t used;
    int rc = mgw_http1_execute(call->parser, buf->base, (size_t)nread, &used);
    if (call->complete) {
        finish(call, NULL);
    } else if (rc == MGW_HTTP1_ERROR) {
        finish(call, call->too_large ? "the response body is too large" : "invalid HTTP response");
    }
}

/* ---- the request ---- */

static void write_cb(uv_write_t *w, int status)
{
    mgw_lhttp_t *call = w->data;
    if (status < 0 && status != UV_ECANCELED && !call->finished) finish(call, uv_strerror(status));
}

static void connect_cb(uv_connect_t *req, int status)
{
    mgw_lhttp_t *call = req->data;
    if (call->finished) return;
    if (status < 0) {
        char msg[300];
        snprintf(msg, sizeof(msg), "connect to %s:%d failed: %s", call->host, call->port,
                 uv_strerror(status));
        finish(call, msg);
        return;
    }
    uv_buf_t b = uv_buf_init(call->out.p, (unsigned)call->out.n);
    call->write.data = call;
    int rc = uv_write(&call->write, (uv_stream_t *)&call->tcp, &b, 1, write_cb);
    if (rc == 0) rc = uv_read_start((uv_stream_t *)&call->tcp, alloc_cb, read_cb);
    if (rc < 0) finish(call, uv_strerror(rc));
}

static int start_connect(mgw_lhttp_t *call, const struct sockaddr *addr)
{
    call->connect.data = call;
    return uv_tcp_connect(&call->connect, &call->tcp, addr, connect_cb);
}

static void resolved_cb(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    resolve_t *rs = (resolve_t *)req;
    mgw_lhttp_t *call = rs->call;
    free(rs);
    if (call == NULL) {
        uv_freeaddrinfo(res);
        return;
    }
    call->resolving = NULL;
    int rc = status < 0 || res == NULL ? (status < 0 ? status : UV_EAI_NONAME)
                                       : start_connect(call, res->ai_addr);
    uv_freeaddrinfo(res);
    if (rc < 0) {
        char msg[300];
        snprintf(msg, sizeof(msg), "cannot reach %s: %s", call->host, uv_strerror(rc));
        finish(call, msg);
    }
}

/* Serializes the request into out; returns NULL or why it cannot be sent. */
static const char *build(mgw_buf_t *out, const mgw_ffi_http_params_t *p, const mgw_url_t *url)
{
    if (!mgw_http1_is_token(p->method, p->method_len)) return "invalid method";
    mgw_buf_printf(out, "%.*s %s%.*s HTTP/1.1\r\nhost: %.*s\r\n", (int)p->method_len, p->method,
                   url->path.p[0] == '/' ? "" : "/", (int)url->path.n, url->path.p,
                   (int)url->authority.n, url->authority.p);
    for (int i = 0; i < p->nheaders; i++) {
        mgw_str_t n = p->headers[i].name, v = p->headers[i].value;
        if (!mgw_http1_is_token(n.p, n.n)) return "header names must be HTTP tokens";
        if (!mgw_http1_is_value(v.p, v.n)) return "header values must not contain CR, LF or NUL";
        if (mgw_str_ieq(n, "host") || mgw_str_ieq(n, "content-length") ||
            mgw_str_ieq(n, "connection") || mgw_str_ieq(n, "transfer-encoding"))
            continue; /* set by the client */
        mgw_buf_printf(out, "%.*s: %.*s\r\n", (int)n.n, n.p, (int)v.n, v.p);
    }
    if (p->body_len || !(p->method_len == 3 && memcmp(p->method, "GET", 3) == 0))
        mgw_buf_printf(out, "content-length: %zu\r\n", p->body_len);
    mgw_buf_adds(out, "connection: close\r\n\r\n");
    if (p->body_len) mgw_buf_add(out, p->body, p->body_len);
    return NULL;
}

/*
 * Starts an HTTP call for r's running hook. Returns 0 (the hook yields; it is resumed
 * when the call ends and reads the outcome with mgw_ffi_http_result); -1 with *err for
 * misuse (a bad URL or header, https, a call already in flight); -2 with *err when the
 * connection failed at once. Nothing is in flight after an error.
 */
int mgw_ffi_http_start(mgw_req_t *r, const mgw_ffi_http_params_t *p, const char **err)
{
    mgw_lreq_t *l = mgw__lreq(r);
    if (l->http) return *err = "an HTTP call is already in flight for this request", -1;
    mgw_url_t url;
    if (mgw_url_parse(p->url, p->url_len, &url) != 0)
        return *err = "url must be an absolute http:// URL", -1;
    if (url.tls) return *err = "https:// is not supported yet (TLS arrives later)", -1;
    mgw_lhttp_t *call = mgw_calloc(1, sizeof(*call));
    const char *bad = build(&call->out, p, &url);
    if (bad) {
        mgw_buf_free(&call->out);
        free(call);
        *err = bad;
        return -1;
    }
    mgw_worker_t *w = r->c->w;
    call->r = r;
    call->host = mgw_strndup(url.host.p, url.host.n);
    call->port = url.port;
    call->max_body = p->max_body;
    call->hdrs = mgw_pool_alloc(r->pool, sizeof(mgw_hdr_t) * MAX_RESPONSE_HEADERS);
    call->parser = mgw_http1_create(0, &response_cbs, call);
    uv_tcp_init(&w->loop, &call->tcp);
    uv_timer_init(&w->loop, &call->timer);
    call->tcp.data = call->timer.data = call;
    call->handles = 2;
    uv_timer_start(&call->timer, timeout_cb, p->timeout_ms ? p->timeout_ms : 1, 0);
    l->http = call;
    l->http_result = NULL;

    struct sockaddr_storage ss;
    int rc;
    if (uv_ip4_addr(call->host, call->port, (struct sockaddr_in *)&ss) == 0 ||
        uv_ip6_addr(call->host, call->port, (struct sockaddr_in6 *)&ss) == 0) {
        rc = start_connect(call, (struct sockaddr *)&ss);
    } else {
        resolve_t *rs = mgw_calloc(1, sizeof(*rs));
        rs->call = call;
        call->resolving = rs;
        char port[8];
        snprintf(port, sizeof(port), "%d", call->port);
        struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
        rc = uv_getaddrinfo(&w->loop, &rs->req, resolved_cb, call->host, port, &hints);
        if (rc < 0) {
            call->resolving = NULL;
            free(rs);
        }
    }
    if (rc < 0) {
        /* Failed at once: nothing will resume the hook, so report it now. */
        l->http = NULL;
        call->r = NULL;
        call_close(call);
        *err = uv_strerror(rc);
        return -2;
    }
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
    call->r = NULL;
    if (!call->finished) call_close(call);
}
