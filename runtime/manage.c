/*
 * The management listener (see manage.h): a small HTTP/1.1 server on the main thread's
 * loop, one request per connection, and the blocking client `moongate reload` uses.
 */
#include "manage.h"

#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "http1.h"
#include "log.h"
#include "reload.h"

typedef struct mconn_s {
    uv_tcp_t tcp;
    mgw_http1_t *parser;
    const char *method;
    mgw_buf_t url;
    int answered, waiting;
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

static void respond(mconn_t *c, int status, const char *type, const char *body)
{
    if (c->answered || uv_is_closing((uv_handle_t *)&c->tcp)) return;
    c->answered = 1;
    const char *reason = status == 200   ? "OK"
                         : status == 404 ? "Not Found"
                         : status == 405 ? "Method Not Allowed"
                         : status == 409 ? "Conflict"
                         : status == 422 ? "Unprocessable Content"
                                         : "Error";
    size_t n = strlen(body);
    char head[256];
    int hn = snprintf(head, sizeof(head),
                      "HTTP/1.1 %d %s\r\ncontent-type: %s\r\ncontent-length: %zu\r\n"
                      "connection: close\r\n\r\n",
                      status, reason, type, n);
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

static int on_field(void *ud, const char *p, size_t n)
{
    (void)ud;
    (void)p;
    (void)n;
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

static int on_complete(void *ud)
{
    mconn_t *c = ud;
    if (is(c, "/reload")) {
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
    .on_header_value = on_field,
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

/* ---- the client (moongate reload) ---- */

int mgw_manage_request(const char *address, int port, const char *method, const char *path,
                       mgw_buf_t *body)
{
    char service[16];
    snprintf(service, sizeof(service), "%d", port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(address, service, &hints, &res);
    if (rc != 0) {
        mgw_buf_printf(body, "cannot resolve %s: %s\n", address, gai_strerror(rc));
        return -1;
    }
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    /* A reload loads every policy: generous, but never forever. */
    struct timeval tv = {.tv_sec = 120};
    if (fd >= 0) setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (fd < 0 || connect(fd, res->ai_addr, res->ai_addrlen) != 0) {
        mgw_buf_printf(body, "cannot connect to the management listener %s:%d: %m\n", address,
                       port);
        if (fd >= 0) close(fd);
        freeaddrinfo(res);
        return -1;
    }
    freeaddrinfo(res);
    char req[512];
    int n = snprintf(req, sizeof(req),
                     "%s %s HTTP/1.1\r\nhost: %s:%d\r\ncontent-length: 0\r\n"
                     "connection: close\r\n\r\n",
                     method, path, address, port);
    mgw_buf_t in = {0};
    int status = -1;
    if (write(fd, req, (size_t)n) == n) {
        char chunk[4096];
        ssize_t got;
        while ((got = read(fd, chunk, sizeof(chunk))) > 0)
            mgw_buf_add(&in, chunk, (size_t)got);
    }
    close(fd);
    const char *sep = in.n ? memmem(in.p, in.n, "\r\n\r\n", 4) : NULL;
    if (sep && sscanf(in.p, "HTTP/1.%*d %d", &status) == 1) {
        mgw_buf_add(body, sep + 4, in.n - (size_t)(sep + 4 - in.p));
    } else {
        mgw_buf_printf(body, "no valid answer from the management listener %s:%d\n", address, port);
        status = -1;
    }
    mgw_buf_free(&in);
    return status;
}
