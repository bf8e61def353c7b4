/*
 * test-upstream: the fake backend the end-to-end tests proxy to.
 *
 * Usage: test-upstream [--tls CERT KEY] PORT [RAWLOG]
 *
 * With RAWLOG, every byte received on any connection is appended to that file as it
 * arrives (one write per recv, before the bytes are parsed), so a test can assert what
 * reached the backend at all, parsed or not, complete or not.
 *
 * With --tls, every connection is TLS (OpenSSL, blocking): CERT is the PEM certificate
 * chain to present and KEY its private key; RAWLOG then holds the decrypted bytes.
 *
 * A deliberately plain HTTP/1.1 server: POSIX sockets, one detached thread per
 * connection, blocking I/O, no event loop. It is simple enough to be obviously
 * right, so a failing end-to-end test points at the gateway, not at this file.
 *
 * Endpoints (the path is matched exactly; a query string is allowed):
 *   /slow?ms=N      sleep N milliseconds, then echo
 *   /chunked        200, Transfer-Encoding: chunked, "hello " "chunked " "world"
 *   /status/NNN     status NNN with the body {"status":NNN}
 *   /reset          close the socket at once with an RST, no response
 *   /big?bytes=N    200 with N bytes of 'x'; with &pause_at=K&pause_ms=M (K > 0) it
 *                   sleeps M milliseconds after the first K bytes of the body
 *   /close          echo, then Connection: close and close the connection
 *   /drop-next      echo (keep-alive), and the next request on this connection is read
 *                   and answered by closing the connection: a pooled connection that
 *                   the server closed as the client reused it
 *   anything else   200 application/json echo of the request:
 *                   {"method":..,"target":..,"headers":{..},"body":..,
 *                    "bodyLength":N,"connection":K}
 *                   where K numbers the accepted connections of this process
 *                   (equal K across requests = the client reused a connection).
 *
 * Keep-alive follows HTTP/1.1 (Connection: close ends it; HTTP/1.0 needs
 * Connection: keep-alive). Request bodies may use Content-Length or chunked
 * encoding. SIGTERM exits. Nothing is printed except errors.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#define MAX_HEAD (64 * 1024)
#define MAX_HEADERS 128

static unsigned long connection_counter;
static int rawlog_fd = -1; /* RAWLOG, opened O_APPEND, or -1 */
static SSL_CTX *tls_ctx;   /* --tls, or NULL */

typedef struct {
    char *data;
    size_t len;
    size_t cap;
} buf_t;

typedef struct {
    int fd;
    SSL *ssl; /* --tls: the connection's TLS state */
    unsigned long id;
    int drop_next; /* /drop-next was served: close at the next request */
    buf_t in;      /* bytes received and not yet consumed */
    size_t pos;    /* start of the unconsumed bytes in `in` */
} conn_t;

typedef struct {
    char *name; /* lower-cased */
    char *value;
} header_t;

typedef struct {
    char method[32];
    char *target;
    int minor; /* HTTP/1.<minor> */
    header_t headers[MAX_HEADERS];
    int nheaders;
    buf_t body;
} request_t;

static void die(const char *msg)
{
    fprintf(stderr, "test-upstream: %s: %s\n", msg, strerror(errno));
    exit(1);
}

static void buf_reserve(buf_t *b, size_t extra)
{
    if (b->len + extra <= b->cap) return;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + extra)
        cap *= 2;
    char *p = realloc(b->data, cap);
    if (p == NULL) {
        fprintf(stderr, "test-upstream: out of memory\n");
        exit(1);
    }
    b->data = p;
    b->cap = cap;
}

static void buf_add(buf_t *b, const char *s, size_t n)
{
    buf_reserve(b, n + 1);
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

static void buf_printf(buf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    buf_reserve(b, (size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

static void buf_json_string(buf_t *b, const char *s, size_t n)
{
    buf_add(b, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"')
            buf_add(b, "\\\"", 2);
        else if (c == '\\')
            buf_add(b, "\\\\", 2);
        else if (c == '\n')
            buf_add(b, "\\n", 2);
        else if (c == '\r')
            buf_add(b, "\\r", 2);
        else if (c == '\t')
            buf_add(b, "\\t", 2);
        else if (c < 0x20 || c == 0x7f)
            buf_printf(b, "\\u%04x", c);
        else
            buf_add(b, (const char *)&c, 1);
    }
    buf_add(b, "\"", 1);
}

static int write_all(conn_t *c, const char *p, size_t n)
{
    if (c->ssl) return n == 0 || SSL_write(c->ssl, p, (int)n) == (int)n ? 0 : -1;
    while (n > 0) {
        ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
}

/* Reads more bytes into the connection buffer; 0 on EOF or error. */
static int fill(conn_t *c)
{
    /* Drop consumed bytes; callers copy what they keep before reading on. */
    if (c->pos > 0) {
        memmove(c->in.data, c->in.data + c->pos, c->in.len - c->pos);
        c->in.len -= c->pos;
        c->pos = 0;
    }
    buf_reserve(&c->in, 16384 + 1);
    for (;;) {
        ssize_t r = c->ssl ? SSL_read(c->ssl, c->in.data + c->in.len, 16384)
                           : recv(c->fd, c->in.data + c->in.len, 16384, 0);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return 0;
        if (rawlog_fd >= 0 && write(rawlog_fd, c->in.data + c->in.len, (size_t)r) != r)
            die("write RAWLOG");
        c->in.len += (size_t)r;
        c->in.data[c->in.len] = '\0';
        return 1;
    }
}

/* Returns a pointer to a NUL-terminated line (CRLF or LF stripped), or NULL. */
static char *read_line(conn_t *c)
{
    for (;;) {
        char *start = c->in.data + c->pos;
        char *nl = c->in.len > c->pos ? memchr(start, '\n', c->in.len - c->pos) : NULL;
        if (nl != NULL) {
            c->pos = (size_t)(nl - c->in.data) + 1;
            *nl = '\0';
            if (nl > start && nl[-1] == '\r') nl[-1] = '\0';
            return start;
        }
        if (c->in.len - c->pos > MAX_HEAD) return NULL;
        if (!fill(c)) return NULL;
    }
}

static int read_exact(conn_t *c, buf_t *out, size_t n)
{
    while (n > 0) {
        if (c->pos == c->in.len && !fill(c)) return 0;
        size_t avail = c->in.len - c->pos;
        size_t take = avail < n ? avail : n;
        if (out != NULL) buf_add(out, c->in.data + c->pos, take);
        c->pos += take;
        n -= take;
    }
    return 1;
}

static const char *header_get(request_t *rq, const char *name)
{
    for (int i = 0; i < rq->nheaders; i++)
        if (strcmp(rq->headers[i].name, name) == 0) return rq->headers[i].value;
    return NULL;
}

/* True when the comma-separated header `name` contains the token `tok`. */
static int header_has_token(request_t *rq, const char *name, const char *tok)
{
    size_t tl = strlen(tok);
    for (int i = 0; i < rq->nheaders; i++) {
        if (strcmp(rq->headers[i].name, name) != 0) continue;
        const char *p = rq->headers[i].value;
        while (*p) {
            while (*p == ' ' || *p == '\t' || *p == ',')
                p++;
            const char *e = p;
            while (*e && *e != ',')
                e++;
            const char *t = e;
            while (t > p && (t[-1] == ' ' || t[-1] == '\t'))
                t--;
            if ((size_t)(t - p) == tl && strncasecmp(p, tok, tl) == 0) return 1;
            p = e;
        }
    }
    return 0;
}

static void request_free(request_t *rq)
{
    free(rq->target);
    for (int i = 0; i < rq->nheaders; i++) {
        free(rq->headers[i].name);
        free(rq->headers[i].value);
    }
    free(rq->body.data);
    memset(rq, 0, sizeof(*rq));
}

static void send_simple(conn_t *c, int status, const char *reason, const char *body)
{
    buf_t out = {0};
    buf_printf(&out,
               "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
               "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
               status, reason, strlen(body), body);
    write_all(c, out.data, out.len);
    free(out.data);
}

/*
 * Reads one request (head and body). Returns 1 on success, 0 when the peer closed
 * the connection or sent something this server cannot parse (an error response
 * has then been sent where that makes sense).
 */
static int read_request(conn_t *c, request_t *rq)
{
    char *line;
    do { /* tolerate empty lines before a request line (RFC 9112 2.2) */
        line = read_line(c);
        if (line == NULL) return 0;
    } while (*line == '\0');

    char *sp1 = strchr(line, ' ');
    char *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
    if (sp1 == NULL || sp2 == NULL || (size_t)(sp1 - line) >= sizeof(rq->method) ||
        strncmp(sp2 + 1, "HTTP/1.", 7) != 0) {
        send_simple(c, 400, "Bad Request", "{\"upstream\":\"bad request line\"}");
        return 0;
    }
    memcpy(rq->method, line, (size_t)(sp1 - line));
    rq->method[sp1 - line] = '\0';
    rq->target = strndup(sp1 + 1, (size_t)(sp2 - sp1 - 1));
    rq->minor = sp2[8] == '0' ? 0 : 1;

    for (;;) {
        line = read_line(c);
        if (line == NULL) return 0;
        if (*line == '\0') break;
        char *colon = strchr(line, ':');
        if (colon == NULL || rq->nheaders == MAX_HEADERS) {
            send_simple(c, 400, "Bad Request", "{\"upstream\":\"bad header\"}");
            return 0;
        }
        char *v = colon + 1;
        while (*v == ' ' || *v == '\t')
            v++;
        char *end = v + strlen(v);
        while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
            *--end = '\0';
        *colon = '\0';
        for (char *p = line; *p; p++)
            if (*p >= 'A' && *p <= 'Z') *p = (char)(*p + 32);
        rq->headers[rq->nheaders].name = strdup(line);
        rq->headers[rq->nheaders].value = strdup(v);
        rq->nheaders++;
    }

    /* A well-behaved origin answers Expect: 100-continue before reading the body. */
    const char *expect = header_get(rq, "expect");
    if (expect != NULL && rq->minor == 1 && strcasecmp(expect, "100-continue") == 0) {
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        write_all(c, cont, sizeof(cont) - 1);
    }

    if (header_has_token(rq, "transfer-encoding", "chunked")) {
        for (;;) {
            line = read_line(c);
            if (line == NULL) return 0;
            char *endp;
            unsigned long size = strtoul(line, &endp, 16);
            if (endp == line) {
                send_simple(c, 400, "Bad Request", "{\"upstream\":\"bad chunk size\"}");
                return 0;
            }
            if (size == 0) {
                do { /* trailers up to the empty line */
                    line = read_line(c);
                    if (line == NULL) return 0;
                } while (*line != '\0');
                break;
            }
            if (!read_exact(c, &rq->body, size)) return 0;
            line = read_line(c); /* the CRLF after the chunk data */
            if (line == NULL || *line != '\0') {
                send_simple(c, 400, "Bad Request", "{\"upstream\":\"bad chunk\"}");
                return 0;
            }
        }
    } else {
        const char *cl = header_get(rq, "content-length");
        if (cl != NULL) {
            char *endp;
            unsigned long long n = strtoull(cl, &endp, 10);
            if (endp == cl || *endp != '\0') {
                send_simple(c, 400, "Bad Request", "{\"upstream\":\"bad content-length\"}");
                return 0;
            }
            if (!read_exact(c, &rq->body, (size_t)n)) return 0;
        }
    }
    if (rq->body.data == NULL) buf_add(&rq->body, "", 0);
    return 1;
}

/* The value of query parameter `name` as a number, or `dflt`. */
static long query_long(const char *target, const char *name, long dflt)
{
    const char *q = strchr(target, '?');
    size_t nl = strlen(name);
    while (q != NULL) {
        q++;
        if (strncmp(q, name, nl) == 0 && q[nl] == '=') return strtol(q + nl + 1, NULL, 10);
        q = strchr(q, '&');
    }
    return dflt;
}

static const char *reason_phrase(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 301:
        return "Moved Permanently";
    case 302:
        return "Found";
    case 304:
        return "Not Modified";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 418:
        return "I'm a teapot";
    case 429:
        return "Too Many Requests";
    case 500:
        return "Internal Server Error";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    default:
        return "Status";
    }
}

/* Sends a response with a Content-Length body; HEAD gets the head only. */
static int respond(conn_t *c, request_t *rq, int status, const char *ctype, const char *body,
                   size_t blen, int keep)
{
    buf_t out = {0};
    buf_printf(&out,
               "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
               "X-Upstream: test-upstream\r\nConnection: %s\r\n\r\n",
               status, reason_phrase(status), ctype, blen, keep ? "keep-alive" : "close");
    int rc = write_all(c, out.data, out.len);
    free(out.data);
    int no_body = strcmp(rq->method, "HEAD") == 0 || status == 204 || status == 304;
    if (rc == 0 && !no_body && blen > 0) rc = write_all(c, body, blen);
    return rc;
}

static int echo(conn_t *c, request_t *rq, int keep)
{
    buf_t out = {0};
    buf_add(&out, "{\"method\":", 10);
    buf_json_string(&out, rq->method, strlen(rq->method));
    buf_add(&out, ",\"target\":", 10);
    buf_json_string(&out, rq->target, strlen(rq->target));
    buf_add(&out, ",\"headers\":{", 12);
    int first = 1;
    for (int i = 0; i < rq->nheaders; i++) {
        int seen = 0;
        for (int j = 0; j < i; j++)
            if (strcmp(rq->headers[j].name, rq->headers[i].name) == 0) seen = 1;
        if (seen) continue;
        buf_t joined = {0};
        buf_add(&joined, rq->headers[i].value, strlen(rq->headers[i].value));
        for (int j = i + 1; j < rq->nheaders; j++) {
            if (strcmp(rq->headers[j].name, rq->headers[i].name) == 0) {
                buf_add(&joined, ", ", 2);
                buf_add(&joined, rq->headers[j].value, strlen(rq->headers[j].value));
            }
        }
        if (!first) buf_add(&out, ",", 1);
        first = 0;
        buf_json_string(&out, rq->headers[i].name, strlen(rq->headers[i].name));
        buf_add(&out, ":", 1);
        buf_json_string(&out, joined.data, joined.len);
        free(joined.data);
    }
    buf_add(&out, "},\"body\":", 9);
    buf_json_string(&out, rq->body.data, rq->body.len);
    buf_printf(&out, ",\"bodyLength\":%zu,\"connection\":%lu}", rq->body.len, c->id);
    int rc = respond(c, rq, 200, "application/json", out.data, out.len, keep);
    free(out.data);
    return rc;
}

static int chunked(conn_t *c, request_t *rq, int keep)
{
    static const char *parts[] = {"hello ", "chunked ", "world"};
    buf_t out = {0};
    buf_printf(&out,
               "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n"
               "X-Upstream: test-upstream\r\nConnection: %s\r\n\r\n",
               keep ? "keep-alive" : "close");
    int rc = write_all(c, out.data, out.len);
    free(out.data);
    if (strcmp(rq->method, "HEAD") == 0) return rc;
    for (int i = 0; rc == 0 && i < 3; i++) {
        char chunk[64];
        int n = snprintf(chunk, sizeof(chunk), "%zx\r\n%s\r\n", strlen(parts[i]), parts[i]);
        rc = write_all(c, chunk, (size_t)n);
        sleep_ms(50);
    }
    if (rc == 0) rc = write_all(c, "0\r\n\r\n", 5);
    return rc;
}

static int big(conn_t *c, request_t *rq, int keep)
{
    long n = query_long(rq->target, "bytes", 0);
    if (n < 0) n = 0;
    buf_t out = {0};
    buf_printf(&out,
               "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
               "Content-Length: %ld\r\nX-Upstream: test-upstream\r\nConnection: %s\r\n\r\n",
               n, keep ? "keep-alive" : "close");
    int rc = write_all(c, out.data, out.len);
    free(out.data);
    if (strcmp(rq->method, "HEAD") == 0) return rc;
    long pause_at = query_long(rq->target, "pause_at", 0);
    long pause_ms = query_long(rq->target, "pause_ms", 0);
    long sent = 0;
    char block[65536];
    memset(block, 'x', sizeof(block));
    while (rc == 0 && n > 0) {
        size_t take = n < (long)sizeof(block) ? (size_t)n : sizeof(block);
        if (sent < pause_at && pause_at - sent < (long)take) take = (size_t)(pause_at - sent);
        rc = write_all(c, block, take);
        n -= (long)take;
        sent += (long)take;
        if (sent == pause_at) sleep_ms(pause_ms);
    }
    return rc;
}

/* Returns 1 to keep the connection open for another request. */
static int handle(conn_t *c, request_t *rq)
{
    int keep;
    if (rq->minor == 0)
        keep = header_has_token(rq, "connection", "keep-alive");
    else
        keep = !header_has_token(rq, "connection", "close");

    size_t plen = strcspn(rq->target, "?");
    char path[1024];
    if (plen >= sizeof(path)) plen = sizeof(path) - 1;
    memcpy(path, rq->target, plen);
    path[plen] = '\0';

    if (strcmp(path, "/close") == 0) keep = 0;
    if (strcmp(path, "/drop-next") == 0) c->drop_next = 1;

    int rc;
    if (strcmp(path, "/reset") == 0) {
        struct linger lg = {1, 0};
        setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        return 0;
    } else if (strcmp(path, "/slow") == 0) {
        long ms = query_long(rq->target, "ms", 1000);
        if (ms > 0) sleep_ms(ms);
        rc = echo(c, rq, keep);
    } else if (strcmp(path, "/chunked") == 0) {
        rc = chunked(c, rq, keep);
    } else if (strcmp(path, "/big") == 0) {
        rc = big(c, rq, keep);
    } else if (strncmp(path, "/status/", 8) == 0 && strlen(path) == 11) {
        int status = atoi(path + 8);
        if (status < 100 || status > 599) status = 500;
        char body[64];
        int n = snprintf(body, sizeof(body), "{\"status\":%d}", status);
        rc = respond(c, rq, status, "application/json", body, (size_t)n, keep);
    } else {
        rc = echo(c, rq, keep);
    }
    return rc == 0 && keep;
}

static void *conn_main(void *arg)
{
    conn_t *c = arg;
    if (tls_ctx) {
        c->ssl = SSL_new(tls_ctx);
        SSL_set_mode(c->ssl, SSL_MODE_AUTO_RETRY);
        if (SSL_set_fd(c->ssl, c->fd) != 1 || SSL_accept(c->ssl) != 1) goto done;
    }
    for (;;) {
        request_t rq;
        memset(&rq, 0, sizeof(rq));
        if (!read_request(c, &rq) || c->drop_next) {
            request_free(&rq);
            break;
        }
        int again = handle(c, &rq);
        request_free(&rq);
        if (!again) break;
    }
done:
    if (c->ssl) SSL_free(c->ssl);
    close(c->fd);
    free(c->in.data);
    free(c);
    return NULL;
}

static void on_term(int sig)
{
    (void)sig;
    _exit(0);
}

int main(int argc, char **argv)
{
    if (argc >= 4 && strcmp(argv[1], "--tls") == 0) {
        tls_ctx = SSL_CTX_new(TLS_server_method());
        if (tls_ctx == NULL || SSL_CTX_use_certificate_chain_file(tls_ctx, argv[2]) != 1 ||
            SSL_CTX_use_PrivateKey_file(tls_ctx, argv[3], SSL_FILETYPE_PEM) != 1) {
            fprintf(stderr, "test-upstream: cannot load %s / %s\n", argv[2], argv[3]);
            ERR_print_errors_fp(stderr);
            return 2;
        }
        argv[3] = argv[0];
        argv += 3;
        argc -= 3;
    }
    if (argc != 2 && argc != 3) {
        fprintf(stderr, "usage: test-upstream [--tls CERT KEY] PORT [RAWLOG]\n");
        return 2;
    }
    int port = atoi(argv[1]);
    if (port <= 0 || port > 65535) {
        fprintf(stderr, "test-upstream: bad port %s\n", argv[1]);
        return 2;
    }

    if (argc == 3) {
        rawlog_fd = open(argv[2], O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (rawlog_fd < 0) die(argv[2]);
    }
    signal(SIGPIPE, SIG_IGN);
    signal(SIGTERM, on_term);
    signal(SIGINT, on_term);

    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    if (lfd < 0) die("socket");
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0) die("bind");
    if (listen(lfd, 512) < 0) die("listen");

    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);

    for (;;) {
        int fd = accept(lfd, NULL, NULL);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED || errno == EMFILE || errno == ENFILE)
                continue;
            die("accept");
        }
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        conn_t *c = calloc(1, sizeof(*c));
        if (c == NULL) {
            close(fd);
            continue;
        }
        c->fd = fd;
        c->id = __atomic_add_fetch(&connection_counter, 1, __ATOMIC_SEQ_CST);
        pthread_t t;
        if (pthread_create(&t, &attr, conn_main, c) != 0) {
            fprintf(stderr, "test-upstream: pthread_create failed\n");
            close(fd);
            free(c);
        }
    }
}
