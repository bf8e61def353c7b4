/*
 * The HTTP/1 server side: the protocol handler of client connections (net/conn.h) that
 * parses requests (http1.c), hands them to the request core (gw/request.c, which answers
 * through http/writer.c) and moves on to the next one (keep-alive, pipelining), with the
 * header and body timeouts. Request bodies go to the request core too, which passes them
 * on to the integration or the policy hooks.
 */
#include "http/server.h"

#include <string.h>

#include "base/log.h"
#include "http/http1.h"
#include "net/conn.h"

static const mgw_http1_cbs_t server_cbs;

static mgw_http1_t *parser_of(const mgw_conn_t *c)
{
    return c->proto_data;
}

/* A new request on c, which becomes c's current one. */
static mgw_req_t *new_request(mgw_conn_t *c)
{
    mgw_req_from_t from = {
        .w = c->w,
        .listen_idx = c->listen_idx,
        .peer = c->peer,
        .tls_host = c->tls_host,
        .client_cert = c->client_cert,
        .tls = c->tls,
    };
    return c->req = mgw__req_new(c, &from);
}

/* ---- reading ---- */

/* The connection whose bytes the parser is reading on this thread, if any: an upgrade
 * that completes inside the parser's callbacks leaves the parser to parse() to free. */
static _Thread_local mgw_conn_t *parsing;

static void parse(mgw_conn_t *c, mgw_rbuf_t *rb, const char *p, size_t n)
{
    mgw_rbuf_t *saved = c->rbuf;
    mgw_http1_t *parser = parser_of(c);
    /* on_body forwards slices of the buffer being parsed: make it the current one. */
    c->rbuf = rb;
    size_t used = 0;
    parsing = c;
    int rc = mgw_http1_execute(parser, p, n, &used);
    parsing = NULL;
    c->rbuf = saved;
    if (c->proto != &mgw_http_server_handler) {
        /* upgraded inside a callback: the new handler reads what follows the request */
        mgw_http1_destroy(parser);
        if (!c->done && used < n) c->proto->on_data(c, rb, p + used, n - used);
        return;
    }
    if (c->done) return;
    if (rc == MGW_HTTP1_PAUSE) {
        /* A request is complete and its response is not: the stream keeps the rest, and
         * what arrives meanwhile, until finish_request resumes it. */
        mgw_stream_pause(&c->stream, rb, p + used, n - used);
        return;
    }
    if (rc == MGW_HTTP1_ERROR) {
        mgw_req_t *r = c->req;
        if (r == NULL) r = new_request(c);
        if (r->resp_started) {
            mgw__conn_close(c);
            return;
        }
        r->keepalive = 0;
        if (r->error_type == MGW_GW_NONE) {
            /* llhttp refused the bytes itself: its reason says why */
            r->error_type = MGW_GW_BAD_REQUEST;
            r->error_reason = mgw_http1_error(parser_of(c));
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
    if (c->req == NULL) new_request(c);
    mgw__conn_arm_timer(c, c->w->gen->header_timeout_ms);
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
    if (r->has_length || r->chunked) mgw__conn_arm_timer(c, c->w->gen->body_timeout_ms);
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
    mgw__conn_arm_timer(c, c->w->gen->body_timeout_ms);
    mgw__req_body(r, p, n, c->rbuf);
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
    mgw__req_body_done(r); /* may answer r */
    if (c->done) return MGW_HTTP1_PAUSE;
    if (c->req != r) return 0; /* answered and finished: parsing goes on */
    if (r->resp_done) {
        /* The response went out before the body finished arriving (e.g. a mock): the
         * request ends here, and parsing may go straight on to the next one (unless it
         * was an upgrade: what follows is the new protocol's). */
        finish_request(c);
        return c->done || c->proto != &mgw_http_server_handler ? MGW_HTTP1_PAUSE : 0;
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

/* The upgrade accepted for the request that just ended: the new handler takes over. */
static void upgrade(mgw_conn_t *c)
{
    mgw_http1_t *parser = parser_of(c);
    mgw__conn_set_handler(c, c->upgrade, c->upgrade_data);
    c->upgrade = NULL;
    c->upgrade_data = NULL;
    c->proto->accept(c);      /* the new handler starts (its deadline) */
    if (parsing == c) return; /* parse() frees the parser and hands on the rest */
    mgw_http1_destroy(parser);
    /* what the stream kept while the upgrade request ran goes to the new handler */
    mgw_stream_resume(&c->stream);
}

/* Ends the current request and either closes or moves on to the next one. */
static void finish_request(mgw_conn_t *c)
{
    mgw_req_t *r = c->req;
    if (c->upgrade && !c->done) {
        c->req = NULL;
        mgw__req_free(r);
        upgrade(c);
        return;
    }
    int keep = r->keepalive && !r->resp_close && !c->w->shutting_down && !c->eof;
    c->req = NULL;
    mgw__req_free(r);
    if (!keep) {
        mgw__conn_close_after_write(c);
        return;
    }
    mgw__conn_arm_output_timer(c);
    /* The next requests: what the stream kept while paused, then the socket. */
    if (c->stream.paused) mgw_http1_resume(parser_of(c));
    mgw_stream_resume(&c->stream);
}

void mgw_http_upgrade(mgw_req_t *r, const mgw_proto_ops_t *ops, void *data)
{
    mgw_conn_t *c = r->c;
    c->upgrade = ops;
    c->upgrade_data = data;
    r->keepalive = 1;
    r->resp_close = 0;
    r->resp_done = 1;
    mgw__conn_response_done(c);
}

void mgw__conn_response_done(mgw_conn_t *c)
{
    mgw_req_t *r = c->req;
    if (r == NULL) return;
    if (!r->body_done) {
        /* Keep reading the rest of the body and drop it, unless the request is to be
         * abandoned anyway. */
        if (!r->keepalive || r->resp_close) {
            mgw__conn_close_after_write(c);
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

/* ---- the handler ---- */

static void h1_accept(mgw_conn_t *c)
{
    c->proto_data = mgw_http1_create(1, &server_cbs, c);
}

static void h1_eof(mgw_conn_t *c)
{
    /* A request whose response is under way may still finish; otherwise close. */
    if (c->req && c->req->body_done && !c->req->resp_done) return;
    mgw__conn_close(c);
}

/* The request under way on c, if any, ends here: its integration stops, and the access
 * log records it, with status when nothing was answered (0: none). */
static void drop_request(mgw_conn_t *c, int status)
{
    mgw_req_t *r = c->req;
    if (r == NULL) return;
    c->req = NULL;
    mgw__req_abort(r);
    if (!r->resp_done && r->status == 0) r->status = status;
    mgw__req_free(r);
}

/* A failed handshake ends the request under way. A client that spoke plain HTTP to the
 * TLS port gets the gateway's 400 in plain HTTP (nginx answers the same), through the
 * gateway-response path like any other (the access log records it); the connection
 * closes once it is written. */
static void h1_tls_refused(mgw_conn_t *c, int plain_http)
{
    drop_request(c, 0);
    if (!plain_http) return;
    mgw_req_t *r = new_request(c);
    r->keepalive = 0;
    mgw__req_fail(r, MGW_GW_BAD_REQUEST, "The plain HTTP request was sent to HTTPS port");
}

static int h1_timeout(mgw_conn_t *c)
{
    mgw_req_t *r = c->req;
    if (r && !r->head_done) {
        /* The head did not arrive in time (slowloris): answer 408 and close. */
        r->keepalive = 0;
        r->error_reason = "Request head timed out";
        mgw__req_fail(r, MGW_GW_REQUEST_TIMEOUT, NULL);
        return 1;
    }
    if (r && !r->body_done && !r->resp_started) {
        r->keepalive = 0;
        r->error_reason = "Request body timed out";
        mgw__req_fail(r, MGW_GW_REQUEST_TIMEOUT, NULL);
        return 1;
    }
    return 0;
}

static void h1_progress(mgw_conn_t *c)
{
    if (c->req == NULL)
        mgw__conn_arm_output_timer(c);
    else
        mgw__req_client_progress(c->req);
}

static void h1_drained(mgw_conn_t *c)
{
    if (c->req) mgw__req_client_drained(c->req);
}

static void h1_shutdown(mgw_conn_t *c)
{
    if (c->req == NULL)
        mgw__conn_close_after_write(c); /* idle keep-alive connection */
    else
        c->req->keepalive = 0; /* ends after its response */
}

static void h1_close(mgw_conn_t *c)
{
    drop_request(c, 499); /* the client went away */
    if (c->upgrade) {
        /* accepted but not taken over yet: the new handler owns the connection's end */
        mgw_http1_t *parser = parser_of(c);
        mgw__conn_set_handler(c, c->upgrade, c->upgrade_data);
        c->upgrade = NULL;
        if (parsing != c) mgw_http1_destroy(parser);
        c->proto->on_close(c); /* never started: it ends at once */
    }
}

static void h1_free(mgw_conn_t *c)
{
    mgw_http1_destroy(c->proto_data);
    c->proto_data = NULL;
}

const mgw_proto_ops_t mgw_http_server_handler = {
    .name = "http/1.1",
    .accept = h1_accept,
    .on_data = parse,
    .on_eof = h1_eof,
    .on_tls_refused = h1_tls_refused,
    .on_timeout = h1_timeout,
    .on_progress = h1_progress,
    .on_drained = h1_drained,
    .on_shutdown = h1_shutdown,
    .on_close = h1_close,
    .free = h1_free,
};
