#include "gw/accesslog.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"
#include "base/pool.h"

#define FLUSH_BYTES 65536
#define FLUSH_MS 100
#define MAX_PENDING (8u << 20) /* what a destination may hold while it cannot keep up */
#define MAX_DATAGRAM 65000     /* a longer syslog message over UDP is cut */
#define RETRY_MS 1000          /* a syslog server that failed is tried again after this */
#define REPORT_MS 10000        /* at most one report of lost lines per destination */
#define BATCH 64               /* datagrams per sendmmsg */

typedef struct {
    const mgw_logfile_t *t;
    mgw_accesslog_t *a;
    int fd; /* a file's or stream's (the generation's); a datagram syslog socket (its own) */
    mgw_buf_t buf;
    int in_flight;
    uint64_t dropped, reported; /* lines lost, and how many of them were reported */
    uint64_t retry_at, report_at;
    int down;      /* syslog: the socket failed; lines are dropped until retry_at */
    uv_tcp_t *tcp; /* TCP syslog: the connection, or NULL */
    int up;        /* ... connected */
    time_t ts_sec; /* syslog: the second ts holds */
    char ts[24];   /* "YYYY-MM-DDTHH:MM:SS" */
} sink_t;

typedef struct {
    uv_work_t req;
    sink_t *s;
    mgw_buf_t data;
    int err;
} fswrite_t;

typedef struct {
    uv_write_t req;
    sink_t *s;
    mgw_buf_t data;
} tcpwrite_t;

struct mgw_accesslog_s {
    uv_loop_t *loop;
    mgw_gen_t *gen; /* holds the log files open until the last write is done */
    uv_timer_t timer;
    sink_t *sinks;
    int nsinks;
    int closing, writes, handles;
};

static void flush(mgw_accesslog_t *a, sink_t *s);
static void tcp_flush(mgw_accesslog_t *a, sink_t *s);

static int is_syslog(const sink_t *s)
{
    return s->t->kind >= MGW_LOGSINK_UDP;
}

static void free_if_done(mgw_accesslog_t *a)
{
    if (a->closing && a->handles == 0 && a->writes == 0) {
        for (int i = 0; i < a->nsinks; i++) {
            if (is_syslog(&a->sinks[i]) && a->sinks[i].fd >= 0) close(a->sinks[i].fd);
            mgw_buf_free(&a->sinks[i].buf);
        }
        free(a->sinks);
        mgw_gen_unref(a->gen);
        free(a);
    }
}

static void lost(sink_t *s, uint64_t lines)
{
    s->dropped += lines;
}

/* Reports lines lost since the last report, at most once every REPORT_MS. */
static void report(sink_t *s, const char *why)
{
    uint64_t now = uv_now(s->a->loop);
    if (s->dropped == s->reported || now < s->report_at) return;
    mgw_log_warn("access log %s: %llu lines lost%s%s", s->t->path,
                 (unsigned long long)(s->dropped - s->reported), why ? ": " : "", why ? why : "");
    s->reported = s->dropped;
    s->report_at = now + REPORT_MS;
}

/* ---- files and standard streams: written by libuv's thread pool ---- */

/*
 * Writes n bytes to fd, in pieces of at most `piece` bytes that end at a line's end (a
 * longer line is one piece): a pipe keeps a write of at most PIPE_BUF bytes whole, so the
 * lines of several workers never mix. A descriptor another process made non-blocking is
 * waited for (up to 5 s at a time).
 */
static int write_all(int fd, const char *p, size_t n, size_t piece)
{
    size_t off = 0;
    while (off < n) {
        size_t len = n - off;
        if (len > piece) {
            const char *nl = memrchr(p + off, '\n', piece);
            if (nl == NULL) nl = memchr(p + off + piece, '\n', n - off - piece);
            len = nl ? (size_t)(nl - (p + off)) + 1 : n - off;
        }
        ssize_t w = write(fd, p + off, len);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0 && errno == EAGAIN) {
            struct pollfd pfd = {.fd = fd, .events = POLLOUT};
            if (poll(&pfd, 1, 5000) > 0) continue;
            return EAGAIN;
        }
        if (w <= 0) return w < 0 ? errno : EIO;
        off += (size_t)w;
    }
    return 0;
}

static void fswork_cb(uv_work_t *req)
{
    fswrite_t *w = (fswrite_t *)req;
    size_t piece = w->s->t->kind == MGW_LOGSINK_STREAM ? PIPE_BUF : SIZE_MAX;
    w->err = write_all(w->s->fd, w->data.p, w->data.n, piece);
}

static void fsdone_cb(uv_work_t *req, int status)
{
    fswrite_t *w = (fswrite_t *)req;
    sink_t *s = w->s;
    mgw_accesslog_t *a = s->a;
    if (w->err || status < 0)
        mgw_log_error("access log %s: write failed: %s", s->t->path,
                      strerror(w->err ? w->err : ECANCELED));
    s->in_flight = 0;
    a->writes--;
    mgw_buf_free(&w->data);
    free(w);
    if (!a->closing && s->buf.n >= FLUSH_BYTES) flush(a, s);
    free_if_done(a);
}

static void flush_fd(mgw_accesslog_t *a, sink_t *s)
{
    if (s->in_flight || s->fd < 0) return;
    fswrite_t *w = mgw_calloc(1, sizeof(*w));
    w->s = s;
    w->data = s->buf; /* hand the buffer over; the destination starts a new one */
    memset(&s->buf, 0, sizeof(s->buf));
    s->in_flight = 1;
    a->writes++;
    int rc = uv_queue_work(a->loop, &w->req, fswork_cb, fsdone_cb);
    if (rc < 0) {
        mgw_log_error("access log %s: write failed: %s", s->t->path, uv_strerror(rc));
        s->in_flight = 0;
        a->writes--;
        mgw_buf_free(&w->data);
        free(w);
    }
}

/* ---- syslog: RFC 5424 messages, octet-counted (RFC 6587) in the buffer ---- */

/* The next message of buf at *off: its bytes and length, or NULL at the end. */
static const char *next_message(const mgw_buf_t *b, size_t *off, size_t *len)
{
    if (*off >= b->n) return NULL;
    char *end;
    unsigned long n = strtoul(b->p + *off, &end, 10);
    *len = n;
    *off = (size_t)(end + 1 - b->p) + n;
    return end + 1;
}

static void fail(sink_t *s, int err)
{
    s->down = 1;
    s->retry_at = uv_now(s->a->loop) + RETRY_MS;
    if (s->report_at <= uv_now(s->a->loop))
        mgw_log_error("access log %s: %s; lines are dropped until it answers again", s->t->path,
                      strerror(err));
    s->report_at = uv_now(s->a->loop) + REPORT_MS;
}

/* A datagram socket connected to the server, or -1 (the sink is then down). */
static void dgram_connect(sink_t *s)
{
    int type = SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC;
    s->fd = socket(s->t->addr.ss_family, type, 0);
    if (s->fd >= 0 && connect(s->fd, (const struct sockaddr *)&s->t->addr, s->t->addrlen) == 0) {
        s->down = 0;
        return;
    }
    int err = errno;
    if (s->fd >= 0) close(s->fd);
    s->fd = -1;
    fail(s, err);
}

static void flush_dgram(sink_t *s)
{
    if (s->down || s->buf.n == 0) return;
    struct mmsghdr msgs[BATCH];
    struct iovec iov[BATCH];
    size_t off = 0, len, sent_to = 0;
    int err = 0;
    while (off < s->buf.n && !err) {
        int k = 0;
        size_t ends[BATCH];
        const char *m;
        while (k < BATCH && (m = next_message(&s->buf, &off, &len)) != NULL) {
            iov[k] = (struct iovec){(void *)m, len};
            msgs[k] = (struct mmsghdr){.msg_hdr = {.msg_iov = &iov[k], .msg_iovlen = 1}};
            ends[k++] = off;
        }
        int r = sendmmsg(s->fd, msgs, (unsigned)k, MSG_DONTWAIT);
        if (r <= 0) {
            err = r < 0 ? errno : EAGAIN;
        } else {
            sent_to = ends[r - 1];
            if (r < k) err = EAGAIN;
        }
        off = sent_to;
    }
    size_t left = s->buf.n - sent_to;
    if (err && err != EAGAIN && err != ENOBUFS) {
        /* the server is not there (an ICMP refusal, no socket file): drop what waits */
        size_t o = sent_to, l;
        uint64_t n = 0;
        while (next_message(&s->buf, &o, &l))
            n++;
        lost(s, n);
        left = 0;
        close(s->fd);
        s->fd = -1;
        fail(s, err);
    }
    memmove(s->buf.p, s->buf.p + s->buf.n - left, left);
    s->buf.n = left;
}

static void tcp_close_cb(uv_handle_t *h)
{
    mgw_accesslog_t *a = ((sink_t *)h->data)->a;
    free(h);
    a->handles--;
    free_if_done(a);
}

static void tcp_fail(sink_t *s, int status)
{
    if (s->tcp == NULL) return;
    if (!uv_is_closing((uv_handle_t *)s->tcp)) uv_close((uv_handle_t *)s->tcp, tcp_close_cb);
    s->tcp = NULL;
    s->up = 0;
    if (status < 0) fail(s, -status);
}

static void tcp_write_cb(uv_write_t *req, int status)
{
    tcpwrite_t *w = (tcpwrite_t *)req;
    sink_t *s = w->s;
    mgw_accesslog_t *a = s->a;
    a->writes--;
    s->in_flight = 0;
    if (status < 0) tcp_fail(s, status);
    mgw_buf_free(&w->data);
    free(w);
    /* closing: what came during this write goes next, then the connection closes */
    if (s->up && s->buf.n && (a->closing || s->buf.n >= FLUSH_BYTES))
        tcp_flush(a, s);
    else if (a->closing && s->tcp)
        tcp_fail(s, 0);
    free_if_done(a);
}

static void tcp_flush(mgw_accesslog_t *a, sink_t *s)
{
    if (!s->up || s->in_flight || s->buf.n == 0) return;
    tcpwrite_t *w = mgw_calloc(1, sizeof(*w));
    w->s = s;
    w->data = s->buf;
    memset(&s->buf, 0, sizeof(s->buf));
    uv_buf_t b = uv_buf_init(w->data.p, (unsigned)w->data.n);
    s->in_flight = 1;
    a->writes++;
    int rc = uv_write(&w->req, (uv_stream_t *)s->tcp, &b, 1, tcp_write_cb);
    if (rc < 0) {
        s->in_flight = 0;
        a->writes--;
        mgw_buf_free(&w->data);
        free(w);
        tcp_fail(s, rc);
    }
}

static void tcp_alloc_cb(uv_handle_t *h, size_t size, uv_buf_t *buf)
{
    static char sink[256]; /* a syslog server sends nothing worth keeping */
    (void)h, (void)size;
    *buf = uv_buf_init(sink, sizeof(sink));
}

/* The server closed the connection (or it broke): connect again later. */
static void tcp_read_cb(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
    sink_t *s = st->data;
    (void)buf;
    if (n < 0 && s->tcp == (uv_tcp_t *)st) tcp_fail(s, n == UV_EOF ? UV_ECONNRESET : (int)n);
}

static void tcp_connect_cb(uv_connect_t *req, int status)
{
    sink_t *s = req->data;
    free(req);
    if (status == UV_ECANCELED) return;
    if (status < 0) {
        tcp_fail(s, status);
        return;
    }
    s->up = 1;
    s->down = 0;
    uv_read_start((uv_stream_t *)s->tcp, tcp_alloc_cb, tcp_read_cb);
    tcp_flush(s->a, s);
}

static void tcp_connect(sink_t *s)
{
    mgw_accesslog_t *a = s->a;
    s->tcp = mgw_calloc(1, sizeof(*s->tcp));
    uv_tcp_init(a->loop, s->tcp);
    s->tcp->data = s;
    a->handles++;
    uv_connect_t *req = mgw_calloc(1, sizeof(*req));
    req->data = s;
    int rc = uv_tcp_connect(req, s->tcp, (const struct sockaddr *)&s->t->addr, tcp_connect_cb);
    if (rc < 0) {
        free(req);
        tcp_fail(s, rc);
    }
}

static void syslog_add(sink_t *s, const char *line, size_t n)
{
    if (n && line[n - 1] == '\n') n--;
    if (s->t->kind == MGW_LOGSINK_UDP && n > MAX_DATAGRAM) n = MAX_DATAGRAM;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME_COARSE, &now);
    if (now.tv_sec != s->ts_sec) {
        struct tm tm;
        gmtime_r(&now.tv_sec, &tm);
        strftime(s->ts, sizeof(s->ts), "%Y-%m-%dT%H:%M:%S", &tm);
        s->ts_sec = now.tv_sec;
    }
    size_t head = strlen(s->t->head), tail = strlen(s->t->tail);
    mgw_buf_printf(&s->buf, "%zu %s%s.%03dZ%s", head + 19 + 5 + tail + n, s->t->head, s->ts,
                   (int)(now.tv_nsec / 1000000), s->t->tail);
    mgw_buf_add(&s->buf, line, n);
}

/* ---- the writer ---- */

static void flush(mgw_accesslog_t *a, sink_t *s)
{
    if (s->buf.n == 0) return;
    switch (s->t->kind) {
    case MGW_LOGSINK_UDP:
    case MGW_LOGSINK_UNIX:
        flush_dgram(s);
        break;
    case MGW_LOGSINK_TCP:
        tcp_flush(a, s);
        break;
    default:
        flush_fd(a, s);
    }
}

static void timer_cb(uv_timer_t *t)
{
    mgw_accesslog_t *a = t->data;
    uint64_t now = uv_now(a->loop);
    for (int i = 0; i < a->nsinks; i++) {
        sink_t *s = &a->sinks[i];
        if (s->down && now >= s->retry_at) {
            if (s->t->kind == MGW_LOGSINK_TCP && s->tcp == NULL)
                tcp_connect(s);
            else if (s->t->kind != MGW_LOGSINK_TCP)
                dgram_connect(s);
        }
        flush(a, s);
        report(s, s->down ? "the syslog server does not answer" : "written slower than they came");
    }
}

mgw_accesslog_t *mgw_accesslog_create(uv_loop_t *loop, mgw_gen_t *gen)
{
    mgw_accesslog_t *a = mgw_calloc(1, sizeof(*a));
    a->loop = loop;
    a->gen = gen;
    mgw_gen_ref(gen);
    a->nsinks = gen->nlogs;
    a->sinks = mgw_calloc((size_t)(gen->nlogs ? gen->nlogs : 1), sizeof(sink_t));
    for (int i = 0; i < gen->nlogs; i++) {
        sink_t *s = &a->sinks[i];
        s->t = &gen->logs[i];
        s->a = a;
        s->fd = gen->logs[i].fd;
        if (s->t->kind == MGW_LOGSINK_TCP)
            tcp_connect(s);
        else if (is_syslog(s))
            dgram_connect(s);
    }
    uv_timer_init(loop, &a->timer);
    a->timer.data = a;
    a->handles++;
    uv_timer_start(&a->timer, timer_cb, FLUSH_MS, FLUSH_MS);
    uv_unref((uv_handle_t *)&a->timer);
    return a;
}

void mgw_accesslog_append(mgw_accesslog_t *a, int log_id, const char *line, size_t n)
{
    sink_t *s = &a->sinks[log_id];
    if (s->buf.n + n > MAX_PENDING || s->down) {
        lost(s, 1);
        return;
    }
    if (is_syslog(s))
        syslog_add(s, line, n);
    else
        mgw_buf_add(&s->buf, line, n);
    if (s->buf.n >= FLUSH_BYTES) flush(a, s);
}

static void close_cb(uv_handle_t *h)
{
    mgw_accesslog_t *a = h->data;
    a->handles--;
    free_if_done(a);
}

void mgw_accesslog_close(mgw_accesslog_t *a)
{
    /* Whatever is still buffered goes now: files and streams synchronously, in order
     * after any write in flight (O_APPEND keeps each write whole); datagrams once; a TCP
     * connection gets its last write, then closes. */
    a->closing = 1;
    for (int i = 0; i < a->nsinks; i++) {
        sink_t *s = &a->sinks[i];
        if (s->t->kind == MGW_LOGSINK_TCP) {
            if (s->up) tcp_flush(a, s);
            if (s->in_flight) continue; /* its write callback sends the rest and closes */
            if (s->tcp) tcp_fail(s, 0);
        } else if (is_syslog(s)) {
            flush_dgram(s);
        } else if (s->fd >= 0 && s->buf.n) {
            size_t piece = s->t->kind == MGW_LOGSINK_STREAM ? PIPE_BUF : SIZE_MAX;
            write_all(s->fd, s->buf.p, s->buf.n, piece);
        }
        s->buf.n = 0;
    }
    uv_close((uv_handle_t *)&a->timer, close_cb);
}
