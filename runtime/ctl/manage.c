/*
 * The management listener (see manage.h): a small HTTP/1.1 server on the main thread's
 * loop, one request per connection, its bearer token, and the blocking client the
 * command line uses.
 */
#include "ctl/manage.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "base/crypto.h"
#include "http/http1.h"
#include "base/log.h"
#include "ctl/reload.h"
#include "conf/token.h"

/* An Authorization value: "Bearer " and a token, with room for extra white space. */
#define AUTH_MAX (MGW_MANAGE_TOKEN_MAX + 64)

typedef struct mconn_s {
    uv_tcp_t tcp;
    mgw_http1_t *parser;
    const char *method;
    mgw_buf_t url;
    int answered, waiting;
    /* The header being read: its name (only "authorization" matters, so it is kept
     * only while it can still be that) and whether its value is being read. */
    char field[16];
    size_t nfield;
    int field_long, in_value, is_auth;
    /* The Authorization headers: how many, and the value of the last one. */
    int nauth, auth_long;
    char auth[AUTH_MAX];
    size_t auth_len;
    struct mconn_s *next, *prev;
} mconn_t;

static uv_tcp_t server;
static int serving;
static mconn_t *conns;

static void conn_closed(uv_handle_t *h)
{
    mconn_t *c = h->data;
    mgw_http1_destroy(c->parser);
    mgw_buf_free(&c->url);
    free(c);
}

static void conn_close(mconn_t *c)
{
    if (uv_is_closing((uv_handle_t *)&c->tcp)) return;
    if (c->prev)
        c->prev->next = c->next;
    else
        conns = c->next;
    if (c->next) c->next->prev = c->prev;
    uv_close((uv_handle_t *)&c->tcp, conn_closed);
}

static void written(uv_write_t *w, int status)
{
    (void)status;
    mconn_t *c = w->data;
    free(w);
    conn_close(c);
}

/* Answers status with body; extra is more header lines ("name: value\r\n"), or "". */
static void respond_with(mconn_t *c, int status, const char *extra, const char *type,
                         const char *body)
{
    if (c->answered || uv_is_closing((uv_handle_t *)&c->tcp)) return;
    c->answered = 1;
    const char *reason = status == 200   ? "OK"
                         : status == 401 ? "Unauthorized"
                         : status == 404 ? "Not Found"
                         : status == 405 ? "Method Not Allowed"
                         : status == 409 ? "Conflict"
                         : status == 422 ? "Unprocessable Content"
                                         : "Error";
    size_t n = strlen(body);
    char head[512];
    int hn = snprintf(head, sizeof(head),
                      "HTTP/1.1 %d %s\r\n%scontent-type: %s\r\ncontent-length: %zu\r\n"
                      "connection: close\r\n\r\n",
                      status, reason, extra, type, n);
    char *buf = mgw_malloc(sizeof(uv_write_t) + (size_t)hn + n);
    uv_write_t *w = (uv_write_t *)buf;
    memcpy(buf + sizeof(uv_write_t), head, (size_t)hn);
    memcpy(buf + sizeof(uv_write_t) + hn, body, n);
    w->data = c;
    uv_buf_t b = uv_buf_init(buf + sizeof(uv_write_t), (unsigned)(hn + (int)n));
    if (uv_write(w, (uv_stream_t *)&c->tcp, &b, 1, written) != 0) {
        free(buf);
        conn_close(c);
    }
}

static void respond(mconn_t *c, int status, const char *type, const char *body)
{
    respond_with(c, status, "", type, body);
}

static void reload_done(void *ud, int ok, const char *text)
{
    mconn_t *c = ud;
    c->waiting = 0;
    respond(c, ok ? 200 : 422, "text/plain", text);
}

static int on_url(void *ud, const char *p, size_t n)
{
    mconn_t *c = ud;
    if (c->url.n + n > 1024) return -1;
    mgw_buf_add(&c->url, p, n);
    return 0;
}

/* A header name, perhaps in pieces; a name after a value starts the next header. */
static int on_field(void *ud, const char *p, size_t n)
{
    mconn_t *c = ud;
    if (c->in_value) {
        c->in_value = 0;
        c->nfield = 0;
        c->field_long = 0;
    }
    if (c->field_long || c->nfield + n > sizeof("authorization") - 1) {
        c->field_long = 1;
        return 0;
    }
    memcpy(c->field + c->nfield, p, n);
    c->nfield += n;
    return 0;
}

/* A header value, perhaps in pieces: kept when the header is Authorization. */
static int on_value(void *ud, const char *p, size_t n)
{
    mconn_t *c = ud;
    if (!c->in_value) {
        c->in_value = 1;
        c->is_auth = !c->field_long && c->nfield == sizeof("authorization") - 1 &&
                     strncasecmp(c->field, "authorization", c->nfield) == 0;
        if (c->is_auth) {
            c->nauth++;
            c->auth_len = 0;
        }
    }
    if (!c->is_auth) return 0;
    if (c->auth_len + n > sizeof(c->auth)) {
        c->auth_long = 1;
        return 0;
    }
    memcpy(c->auth + c->auth_len, p, n);
    c->auth_len += n;
    return 0;
}

static int on_headers_complete(void *ud, const mgw_http1_head_t *hd)
{
    ((mconn_t *)ud)->method = hd->method;
    return 0;
}

static int on_body(void *ud, const char *p, size_t n)
{
    (void)ud;
    (void)p;
    (void)n;
    return 0;
}

static int is(const mconn_t *c, const char *path)
{
    size_t n = strlen(path);
    return c->url.n >= n && memcmp(c->url.p, path, n) == 0 && (c->url.n == n || c->url.p[n] == '?');
}

enum { AUTH_OK, AUTH_MISSING, AUTH_INVALID };

/*
 * Whether the request carries the token of the running generation's token file as
 * "Authorization: Bearer TOKEN". The file is read now, so that replacing it rotates
 * the token without a reload; when it cannot be read no request is let in. The
 * digests of the two tokens are compared in constant time, so neither the time taken
 * nor an early mismatch tells a caller how much of a guess was right, or the token's
 * length.
 */
static int authorize(const mconn_t *c)
{
    const mgw_gen_t *g = mgw__reload_current();
    char tok[MGW_MANAGE_TOKEN_MAX + 1], err[1200];
    int n = -1;
    if (g->management_token_file == NULL)
        snprintf(err, sizeof(err), "no token file");
    else
        n = mgw_manage_token_read(g->management_token_file, tok, sizeof(tok), err, sizeof(err));
    if (n < 0)
        mgw_log_error("%s: management.token_file: %s: every management request is refused", g->file,
                      err);
    if (c->nauth == 0) return AUTH_MISSING;
    if (n < 0 || c->nauth > 1 || c->auth_long) return AUTH_INVALID;
    const char *p = c->auth, *end = c->auth + c->auth_len;
    if (end - p < 7 || strncasecmp(p, "Bearer", 6) != 0 || (p[6] != ' ' && p[6] != '\t'))
        return AUTH_INVALID;
    for (p += 6; p < end && (*p == ' ' || *p == '\t'); p++) {
    }
    while (end > p && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    uint8_t want[32], got[32];
    mgw_sha256(tok, (size_t)n, want);
    mgw_sha256(p, (size_t)(end - p), got);
    return mgw_equal_ct(want, got, sizeof(want)) ? AUTH_OK : AUTH_INVALID;
}

static int on_complete(void *ud)
{
    mconn_t *c = ud;
    int auth = authorize(c);
    if (auth != AUTH_OK) {
        /* RFC 6750 section 3: a challenge, with error="invalid_token" when a token
         * (or anything else) was sent and refused. */
        respond_with(c, 401,
                     auth == AUTH_MISSING
                         ? "www-authenticate: Bearer realm=\"moongate management\"\r\n"
                         : "www-authenticate: Bearer realm=\"moongate management\", "
                           "error=\"invalid_token\"\r\n",
                     "application/json", "{\"message\":\"Unauthorized\"}\n");
    } else if (is(c, "/reload")) {
        if (strcmp(c->method, "POST") != 0) {
            respond(c, 405, "text/plain", "use POST /reload\n");
        } else {
            c->waiting = 1;
            if (mgw__reload_start("management request", reload_done, c) != 0) {
                c->waiting = 0;
                respond(c, 409, "text/plain", "a reload is already under way; try again\n");
            }
        }
    } else if (is(c, "/status") && strcmp(c->method, "GET") == 0) {
        const mgw_gen_t *g = mgw__reload_current();
        mgw_buf_t body = {0};
        mgw_buf_printf(&body, "{\"status\":\"running\",\"generation\":%d,\"file\":\"", g->id);
        mgw_buf_add_json(&body, g->file, strlen(g->file));
        mgw_buf_adds(&body, "\"}\n");
        respond(c, 200, "application/json", body.p);
        mgw_buf_free(&body);
    } else {
        respond(c, 404, "text/plain", "not found: POST /reload, GET /status\n");
    }
    return MGW_HTTP1_PAUSE;
}

static const mgw_http1_cbs_t cbs = {
    .on_url = on_url,
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
    static char chunk[4096];
    buf->base = chunk;
    buf->len = sizeof(chunk);
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    mconn_t *c = s->data;
    if (nread == 0) return;
    if (nread < 0) {
        uv_read_stop(s);
        if (!c->waiting) conn_close(c); /* else closed once the reload answers */
        return;
    }
    size_t used;
    if (mgw_http1_execute(c->parser, buf->base, (size_t)nread, &used) == MGW_HTTP1_ERROR)
        respond(c, 400, "text/plain", "bad request\n");
    if (c->answered || c->waiting) uv_read_stop(s);
}

static void on_connection(uv_stream_t *srv, int status)
{
    if (status < 0) return;
    mconn_t *c = mgw_calloc(1, sizeof(*c));
    uv_tcp_init(srv->loop, &c->tcp);
    c->tcp.data = c;
    c->parser = mgw_http1_create(1, &cbs, c);
    c->next = conns;
    if (conns) conns->prev = c;
    conns = c;
    if (uv_accept(srv, (uv_stream_t *)&c->tcp) != 0 ||
        uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb) != 0)
        conn_close(c);
}

void mgw__manage_start(uv_loop_t *loop, int fd, const mgw_listen_t *l)
{
    uv_tcp_init(loop, &server);
    if (uv_tcp_open(&server, fd) != 0 ||
        uv_listen((uv_stream_t *)&server, 64, on_connection) != 0) {
        mgw_log_error("management: cannot listen on %s:%d", l->address, l->port);
        uv_close((uv_handle_t *)&server, NULL);
        return;
    }
    serving = 1;
    mgw_log_info("management listener on %s:%d", l->address, l->port);
}

void mgw__manage_close(void)
{
    if (serving) uv_close((uv_handle_t *)&server, NULL);
    serving = 0;
    while (conns)
        conn_close(conns);
}

