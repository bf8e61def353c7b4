/*
 * wsload: the WebSocket load generator of the bench (issue 14, workloads W6 and W7).
 *
 *   wsload [options] ws://HOST:PORT/PATH     echo (W6) or idle (W7) load on a server
 *   wsload --serve PORT [--ping S]           a tiny echo server, for the smoke test
 *
 * One thread, one libuv loop. Every connection does the HTTP/1.1 upgrade with a random
 * Sec-WebSocket-Key and checks the 101 and its Sec-WebSocket-Accept; frames are encoded
 * and decoded by runtime/ws/frame.c (client side: masked frames out, unmasked in).
 *
 * echo: each connection sends a masked text message, waits for one message back, sends
 *       the next. The clock starts when every connection is open (or has failed); replies
 *       that arrive after --warmup and before --warmup + --duration are counted, and their
 *       round-trip times go into a log-bucket histogram (1/64 relative resolution).
 *       With --expect, every reply must be that text, else it counts in "mismatch" (and
 *       errors): the bench's check that a gateway really answers the message.
 * idle: opens the connections, prints "WSLOAD open ..." when all have settled, holds them
 *       for --duration seconds (0: until SIGINT/SIGTERM), answering pings with pongs.
 *
 * Both print one line "BENCH {json}" at the end and close every connection with a close
 * frame (1000). Setup failures exit with status 2 and a message on stderr.
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <arpa/inet.h>

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <uv.h>

#include "base/utf8.h"
#include "ws/frame.h"

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define HS_MAX 4096 /* bytes of a handshake (request or response) */
#define READ_BUF (64 * 1024)

/* ---------------------------------------------------------------- common pieces */

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("wsload: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(2);
}

static char g_rbuf[READ_BUF]; /* one read buffer: read callbacks consume it at once */

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    (void)suggested;
    *buf = uv_buf_init(g_rbuf, sizeof(g_rbuf));
}

/* Masking keys need not be secret for a load generator: a seeded xorshift is enough. */
static uint64_t g_rng;

static uint32_t rng32(void)
{
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return (uint32_t)(g_rng >> 16);
}

/* The Sec-WebSocket-Accept value for key (RFC 6455 4.2.2): 28 characters and a NUL. */
static void ws_accept(const char *key, size_t n, char out[29])
{
    unsigned char md[SHA_DIGEST_LENGTH], in[64 + sizeof(WS_GUID)];
    if (n > 64) /* callers pass at most 64 bytes */
        n = 64;
    memcpy(in, key, n);
    memcpy(in + n, WS_GUID, sizeof(WS_GUID) - 1);
    SHA1(in, n + sizeof(WS_GUID) - 1, md);
    EVP_EncodeBlock((unsigned char *)out, md, SHA_DIGEST_LENGTH);
}

/* Finds header name in a head of n bytes (after the first line); value and length out. */
static int find_header(const char *head, size_t n, const char *name, const char **v, size_t *vn)
{
    size_t nl = strlen(name);
    const char *end = head + n;
    const char *p = memchr(head, '\n', n);
    while (p && p + 1 < end) {
        const char *line = p + 1;
        const char *eol = memchr(line, '\n', (size_t)(end - line));
        if (!eol) break;
        if ((size_t)(eol - line) > nl && line[nl] == ':' && strncasecmp(line, name, nl) == 0) {
            const char *a = line + nl + 1, *b = eol;
            while (a < b && (*a == ' ' || *a == '\t'))
                a++;
            while (b > a && (b[-1] == '\r' || b[-1] == ' ' || b[-1] == '\t'))
                b--;
            *v = a;
            *vn = (size_t)(b - a);
            return 1;
        }
        p = eol;
    }
    return 0;
}

/* A write request with its bytes after it; freed in its callback. */
typedef struct {
    uv_write_t req;
    int close_after;
    uint8_t data[];
} wreq_t;

static wreq_t *wreq_new(size_t n)
{
    wreq_t *w = malloc(sizeof(*w) + n);
    if (!w) die("out of memory");
    w->close_after = 0;
    return w;
}

/* Encodes one frame into a new write request; masked when client is 1. */
static wreq_t *frame_new(int client, int op, const void *p, size_t n, size_t *len)
{
    uint8_t mask[4];
    uint32_t r = rng32();
    memcpy(mask, &r, 4);
    size_t cap = mgw_ws_header_len(n, client) + n;
    wreq_t *w = wreq_new(cap + 2);
    long k;
    if (op == MGW_WS_OP_CLOSE && n == 0) /* a close without payload is sent as 1000 */
        k = mgw_ws_encode_close(w->data, cap + 2, MGW_WS_CLOSE_NORMAL, "", 0, client ? mask : NULL);
    else
        k = mgw_ws_encode(w->data, cap, op, 1, p, n, client ? mask : NULL);
    if (k < 0) die("frame encoding failed (%ld)", k);
    *len = (size_t)k;
    return w;
}

/* ---------------------------------------------------------------- histogram */

/* Log buckets: values below 128 exactly, above that 64 buckets per power of two. */
#define H_SUB 64
#define H_BUCKETS (58 * H_SUB + 2 * H_SUB)
static uint64_t g_hist[H_BUCKETS];
static uint64_t g_hist_n, g_hist_max, g_hist_sum;

static int h_index(uint64_t v)
{
    if (v < 2 * H_SUB) return (int)v;
    int shift = 63 - __builtin_clzll(v) - 6;
    return shift * H_SUB + (int)(v >> shift);
}

static uint64_t h_upper(int i)
{
    if (i < 2 * H_SUB) return (uint64_t)i;
    int shift = i / H_SUB - 1;
    uint64_t m = (uint64_t)(i - shift * H_SUB);
    return ((m + 1) << shift) - 1;
}

static void h_record(uint64_t v)
{
    g_hist[h_index(v)]++;
    g_hist_n++;
    g_hist_sum += v;
    if (v > g_hist_max) g_hist_max = v;
}

static uint64_t h_percentile(double p)
{
    if (!g_hist_n) return 0;
    uint64_t want = (uint64_t)(p / 100.0 * (double)g_hist_n + 0.999999);
    if (want < 1) want = 1;
    uint64_t seen = 0;
    for (int i = 0; i < H_BUCKETS; i++) {
        seen += g_hist[i];
        if (seen >= want) return h_upper(i) < g_hist_max ? h_upper(i) : g_hist_max;
    }
    return g_hist_max;
}

/* ---------------------------------------------------------------- client */

enum { ST_NEW, ST_CONNECTING, ST_HANDSHAKE, ST_OPEN, ST_CLOSING, ST_DEAD };

typedef struct {
    uv_tcp_t tcp;
    uv_connect_t creq;
    int state;
    uint64_t t0; /* start of the connect, then send time of the message in flight */
    char *hs;    /* handshake response so far (until open) */
    size_t hs_n;
    char key[25];
    mgw_ws_dec_t dec;
} conn_t;

static struct {
    int echo; /* 1: echo, 0: idle */
    int n, sources, concurrency;
    double duration, warmup, timeout;
    const char *message;
    size_t message_n;
    const char *expect; /* echo: every reply must be this text (NULL: any reply) */
    size_t expect_n;
    char host[256], path[1024];
    int port;
    struct sockaddr_storage addr;
    char request_fmt[HS_MAX];
} opt;

static uv_loop_t *g_loop;
static conn_t *g_conns;
static int g_next, g_pending, g_opened, g_failed, g_live;
static int g_phase; /* 0 opening, 1 running (echo: warmup + measure; idle: hold), 2 ending */
static uint64_t g_t_start, g_t_settled, g_t_measure, g_t_end;
static uint64_t g_messages, g_sent, g_pings, g_closes, g_err_connect, g_err_handshake,
    g_err_protocol, g_err_read, g_err_write, g_lost, g_mismatch;
static int g_reported;
static uv_timer_t g_tick, g_phase_timer;
static uv_signal_t g_sigint, g_sigterm;

static void start_more(void);
static void finish(void);

static void end_loop(void);

static void conn_close_cb(uv_handle_t *h)
{
    conn_t *c = h->data;
    mgw_ws_dec_free(&c->dec);
    free(c->hs);
    c->hs = NULL;
    if (--g_live == 0 && g_phase == 2) end_loop();
}

/* Settles a connection that was being opened: it is open, or it failed. */
static void settle(int ok)
{
    g_pending--;
    if (ok)
        g_opened++;
    else
        g_failed++;
    if (g_phase == 0) start_more();
}

static void conn_kill(conn_t *c)
{
    int old = c->state;
    if (old == ST_DEAD) return;
    /* Dead first: settling may end the run, which kills every connection not yet dead. */
    c->state = ST_DEAD;
    uv_close((uv_handle_t *)&c->tcp, conn_close_cb);
    if (old == ST_CONNECTING || old == ST_HANDSHAKE)
        settle(0);
    else if (g_phase == 1)
        g_lost++;
}

static void fail_once(const char *what, const char *detail)
{
    static int shown;
    if (shown++ < 3) fprintf(stderr, "wsload: %s: %s\n", what, detail);
}

static void conn_write_cb(uv_write_t *req, int status)
{
    wreq_t *w = (wreq_t *)req;
    conn_t *c = req->handle->data;
    if (status < 0 && status != UV_ECANCELED && c->state != ST_DEAD && c->state != ST_CLOSING) {
        g_err_write++;
        fail_once("write", uv_strerror(status));
        conn_kill(c);
    } else if (w->close_after) {
        conn_kill(c);
    }
    free(w);
}

static void conn_send(conn_t *c, int op, const void *p, size_t n, int close_after)
{
    size_t len;
    wreq_t *w = frame_new(1, op, p, n, &len);
    w->close_after = close_after;
    uv_buf_t b = uv_buf_init((char *)w->data, (unsigned)len);
    int rc = uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, conn_write_cb);
    if (rc < 0) {
        free(w);
        g_err_write++;
        conn_kill(c);
    }
}

/* The client's own batches (echo): the replies handled in one loop iteration, and how
 * long each waited there behind the ones before it (from the iteration's first reply):
 * the part of a round trip that is the client's queue, not the gateway's. */
static uv_check_t g_iter_check;
static uint64_t g_iter_first, g_iter_n, g_batches, g_batch_sum, g_client_wait_sum;

static void iter_check_cb(uv_check_t *h)
{
    (void)h;
    if (g_iter_n) {
        g_batches++;
        g_batch_sum += g_iter_n;
    }
    g_iter_n = 0;
    g_iter_first = 0;
}

static void send_message(conn_t *c)
{
    c->t0 = uv_hrtime();
    g_sent++;
    conn_send(c, MGW_WS_OP_TEXT, opt.message, opt.message_n, 0);
}

static void on_event(conn_t *c, const mgw_ws_event_t *ev)
{
    switch (ev->type) {
    case MGW_WS_EV_MESSAGE:
        if (opt.echo && c->state == ST_OPEN) {
            uint64_t now = uv_hrtime();
            if (opt.expect && (ev->opcode != MGW_WS_OP_TEXT || ev->n != opt.expect_n ||
                               memcmp(ev->data, opt.expect, ev->n) != 0)) {
                g_mismatch++;
                char got[80];
                snprintf(got, sizeof(got), "got %s \"%.*s\"%s",
                         ev->opcode == MGW_WS_OP_TEXT ? "text" : "binary",
                         (int)(ev->n < 40 ? ev->n : 40), (const char *)ev->data,
                         ev->n > 40 ? "..." : "");
                fail_once("reply differs from --expect", got);
            }
            if (g_phase == 1 && now >= g_t_measure && now < g_t_end) {
                g_messages++;
                h_record(now - c->t0);
                if (g_iter_first == 0) g_iter_first = now;
                g_client_wait_sum += now - g_iter_first;
                g_iter_n++;
            }
            if (g_phase == 1) send_message(c);
        }
        break;
    case MGW_WS_EV_PING:
        g_pings++;
        conn_send(c, MGW_WS_OP_PONG, ev->data, ev->n, 0);
        break;
    case MGW_WS_EV_PONG:
        break;
    case MGW_WS_EV_CLOSE:
        if (c->state != ST_CLOSING) {
            g_closes++;
            char why[160];
            snprintf(why, sizeof(why), "code %d, reason \"%.*s\"", ev->code, (int)ev->n,
                     (const char *)ev->data);
            fail_once("close frame received", why);
            c->state = ST_CLOSING; /* answer the close, then end the connection */
            conn_send(c, MGW_WS_OP_CLOSE, NULL, 0, 1);
        } else {
            conn_kill(c);
        }
        break;
    case MGW_WS_EV_ERROR:
        g_err_protocol++;
        fail_once("protocol error", ev->reason);
        conn_kill(c);
        break;
    }
}

static void feed(conn_t *c, const uint8_t *p, size_t n)
{
    while (n && c->state != ST_DEAD) {
        size_t used = 0;
        mgw_ws_event_t ev;
        int t = mgw_ws_dec_feed(&c->dec, p, n, &used, &ev);
        p += used;
        n -= used;
        if (t == MGW_WS_EV_NONE) break;
        on_event(c, &ev);
        if (t == MGW_WS_EV_ERROR) break;
    }
}

/* Checks the upgrade response in c->hs (head of hn bytes); 0 when it is a good 101. */
static const char *check_response(conn_t *c, size_t hn)
{
    const char *v;
    size_t vn;
    char want[29];
    if (hn < 12 || memcmp(c->hs, "HTTP/1.1 101", 12) != 0) return "status is not 101";
    if (!find_header(c->hs, hn, "upgrade", &v, &vn) || vn != 9 || strncasecmp(v, "websocket", 9))
        return "no Upgrade: websocket";
    ws_accept(c->key, 24, want);
    if (!find_header(c->hs, hn, "sec-websocket-accept", &v, &vn) || vn != 28 ||
        memcmp(v, want, 28) != 0)
        return "bad Sec-WebSocket-Accept";
    return NULL;
}

static void on_open(conn_t *c);

static void conn_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    conn_t *c = s->data;
    if (c->state == ST_DEAD) return;
    if (nread < 0) {
        if (c->state == ST_CONNECTING || c->state == ST_HANDSHAKE) {
            g_err_handshake++;
            fail_once("handshake", uv_strerror((int)nread));
        } else if (c->state == ST_OPEN) {
            g_err_read++;
            fail_once("read", uv_strerror((int)nread));
        }
        conn_kill(c);
        return;
    }
    const uint8_t *p = (const uint8_t *)buf->base;
    size_t n = (size_t)nread;
    if (c->state == ST_HANDSHAKE) {
        size_t take = n < HS_MAX - 1 - c->hs_n ? n : HS_MAX - 1 - c->hs_n;
        memcpy(c->hs + c->hs_n, p, take);
        size_t old = c->hs_n;
        c->hs_n += take;
        c->hs[c->hs_n] = 0;
        char *e = strstr(c->hs, "\r\n\r\n");
        if (!e) {
            if (c->hs_n >= HS_MAX - 1) {
                g_err_handshake++;
                fail_once("handshake", "response head too long");
                conn_kill(c);
            }
            return;
        }
        size_t hn = (size_t)(e + 4 - c->hs);
        const char *why = check_response(c, hn);
        if (why) {
            g_err_handshake++;
            fail_once("handshake", why);
            conn_kill(c);
            return;
        }
        free(c->hs);
        c->hs = NULL;
        p += hn - old;
        n -= hn - old;
        on_open(c);
    }
    if (c->state == ST_OPEN || c->state == ST_CLOSING) feed(c, p, n);
}

static void hs_write_cb(uv_write_t *req, int status)
{
    conn_t *c = req->handle->data;
    if (status < 0 && c->state == ST_HANDSHAKE) {
        g_err_connect++;
        fail_once("connect", uv_strerror(status));
        conn_kill(c);
    }
    free(req);
}

static void connect_cb(uv_connect_t *req, int status)
{
    conn_t *c = req->data;
    if (c->state != ST_CONNECTING) return;
    if (status < 0) {
        g_err_connect++;
        fail_once("connect", uv_strerror(status));
        conn_kill(c);
        return;
    }
    unsigned char raw[16];
    if (RAND_bytes(raw, sizeof(raw)) != 1) die("RAND_bytes failed");
    EVP_EncodeBlock((unsigned char *)c->key, raw, sizeof(raw));
    wreq_t *w = wreq_new(HS_MAX);
    int len = snprintf((char *)w->data, HS_MAX, opt.request_fmt, c->key);
    uv_buf_t b = uv_buf_init((char *)w->data, (unsigned)len);
    c->state = ST_HANDSHAKE;
    c->hs = malloc(HS_MAX);
    if (!c->hs) die("out of memory");
    c->hs_n = 0;
    if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, hs_write_cb) < 0 ||
        uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, conn_read_cb) < 0) {
        g_err_connect++;
        conn_kill(c);
    }
}

static void conn_start(conn_t *c, int i)
{
    mgw_ws_dec_opts_t o = {.client = 1};
    mgw_ws_dec_init(&c->dec, &o);
    if (uv_tcp_init_ex(g_loop, &c->tcp, AF_INET) < 0) die("cannot create a socket");
    c->tcp.data = c;
    c->creq.data = c;
    g_live++;
    g_pending++;
    c->state = ST_CONNECTING;
    c->t0 = uv_hrtime();
    uv_tcp_nodelay(&c->tcp, 1);
    if (opt.sources > 0) {
        uv_os_fd_t fd;
        int one = 1;
        struct sockaddr_in src = {.sin_family = AF_INET};
        src.sin_addr.s_addr = htonl(0x7f000001u + (uint32_t)(i % opt.sources));
#ifdef IP_BIND_ADDRESS_NO_PORT
        /* The port is then chosen at connect time, per (source, destination) pair. */
        if (uv_fileno((uv_handle_t *)&c->tcp, &fd) == 0)
            setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
#else
        (void)fd;
        (void)one;
#endif
        int rc = uv_tcp_bind(&c->tcp, (struct sockaddr *)&src, 0);
        if (rc < 0) {
            g_err_connect++;
            fail_once("bind", uv_strerror(rc));
            conn_kill(c);
            return;
        }
    }
    int rc = uv_tcp_connect(&c->creq, &c->tcp, (struct sockaddr *)&opt.addr, connect_cb);
    if (rc < 0) {
        g_err_connect++;
        fail_once("connect", uv_strerror(rc));
        conn_kill(c);
    }
}

static void all_settled(void);

static void start_more(void)
{
    while (g_phase == 0 && g_pending < opt.concurrency && g_next < opt.n) {
        int i = g_next++;
        conn_start(&g_conns[i], i);
    }
    if (g_phase == 0 && g_opened + g_failed == opt.n) all_settled();
}

static void on_open(conn_t *c)
{
    /* The last connection to open starts the run (all_settled), which sends its first
     * message; one that opens later (none does today) would start on its own. */
    int running = g_phase == 1;
    c->state = ST_OPEN;
    settle(1);
    if (opt.echo && running && c->state == ST_OPEN) send_message(c);
}

static void phase_cb(uv_timer_t *t)
{
    (void)t;
    finish();
}

static void all_settled(void)
{
    g_phase = 1;
    g_t_settled = uv_hrtime();
    if (g_opened == 0) { /* nothing to measure or hold */
        finish();
        return;
    }
    if (opt.echo) {
        g_t_measure = g_t_settled + (uint64_t)(opt.warmup * 1e9);
        g_t_end = g_t_measure + (uint64_t)(opt.duration * 1e9);
        for (int i = 0; i < opt.n; i++)
            if (g_conns[i].state == ST_OPEN) send_message(&g_conns[i]);
        uv_timer_start(&g_phase_timer, phase_cb, (uint64_t)((opt.warmup + opt.duration) * 1e3), 0);
    } else {
        printf("WSLOAD open %d failed %d in %.3f s\n", g_opened, g_failed,
               (double)(g_t_settled - g_t_start) / 1e9);
        fflush(stdout);
        if (opt.duration > 0)
            uv_timer_start(&g_phase_timer, phase_cb, (uint64_t)(opt.duration * 1e3), 0);
    }
}

/* Every 100 ms: connections still opening after --timeout fail. */
static void tick_cb(uv_timer_t *t)
{
    (void)t;
    if (g_phase != 0) return;
    uint64_t now = uv_hrtime(), lim = (uint64_t)(opt.timeout * 1e9);
    for (int i = 0; i < g_next; i++) {
        conn_t *c = &g_conns[i];
        if ((c->state == ST_CONNECTING || c->state == ST_HANDSHAKE) && now - c->t0 > lim) {
            if (c->state == ST_CONNECTING)
                g_err_connect++;
            else
                g_err_handshake++;
            fail_once("open", "timed out");
            conn_kill(c);
        }
    }
}

static void report(void)
{
    if (g_reported++) return;
    uint64_t now = uv_hrtime();
    uint64_t errors = g_err_connect + g_err_handshake + g_err_protocol + g_err_read + g_err_write +
                      g_closes + g_mismatch;
    if (opt.echo) {
        double secs = opt.duration;
        if (g_t_end == 0 || now < g_t_measure)
            secs = 0;
        else if (now < g_t_end)
            secs = (double)(now - g_t_measure) / 1e9;
        printf("BENCH {\"mode\":\"echo\",\"connections\":%d,\"open\":%d,\"messages\":%llu,"
               "\"duration_s\":%.3f,\"rate\":%.1f,\"p50_us\":%.0f,\"p90_us\":%.0f,"
               "\"p99_us\":%.0f,\"p999_us\":%.0f,\"max_us\":%.0f,\"mean_us\":%.1f,"
               "\"client_batch\":%.2f,\"client_wait_us\":%.1f,",
               opt.n, g_opened, (unsigned long long)g_messages, secs,
               secs > 0 ? (double)g_messages / secs : 0.0, h_percentile(50) / 1e3,
               h_percentile(90) / 1e3, h_percentile(99) / 1e3, h_percentile(99.9) / 1e3,
               g_hist_max / 1e3, g_hist_n ? (double)g_hist_sum / (double)g_hist_n / 1e3 : 0.0,
               g_batches ? (double)g_batch_sum / (double)g_batches : 0.0,
               g_messages ? (double)g_client_wait_sum / (double)g_messages / 1e3 : 0.0);
    } else {
        printf("BENCH {\"mode\":\"idle\",\"connections\":%d,\"open\":%d,\"open_s\":%.3f,"
               "\"held_s\":%.3f,",
               opt.n, g_opened, g_phase ? (double)(g_t_settled - g_t_start) / 1e9 : 0.0,
               g_phase ? (double)(now - g_t_settled) / 1e9 : 0.0);
    }
    printf("\"pings\":%llu,\"closes\":%llu,\"lost\":%llu,\"err_connect\":%llu,"
           "\"err_handshake\":%llu,\"err_protocol\":%llu,\"err_read\":%llu,\"err_write\":%llu,"
           "\"mismatch\":%llu,\"errors\":%llu}\n",
           (unsigned long long)g_pings, (unsigned long long)g_closes, (unsigned long long)g_lost,
           (unsigned long long)g_err_connect, (unsigned long long)g_err_handshake,
           (unsigned long long)g_err_protocol, (unsigned long long)g_err_read,
           (unsigned long long)g_err_write, (unsigned long long)g_mismatch,
           (unsigned long long)errors);
    fflush(stdout);
}

/* Closes the timers and signal handles, so that uv_run returns once connections are gone. */
static void end_loop(void)
{
    static int done;
    if (done++) return;
    uv_close((uv_handle_t *)&g_tick, NULL);
    uv_close((uv_handle_t *)&g_iter_check, NULL);
    uv_close((uv_handle_t *)&g_phase_timer, NULL);
    uv_close((uv_handle_t *)&g_sigint, NULL);
    uv_close((uv_handle_t *)&g_sigterm, NULL);
}

static void end_timer_cb(uv_timer_t *t)
{
    (void)t;
    for (int i = 0; i < g_next; i++)
        conn_kill(&g_conns[i]);
    end_loop();
}

/* Reports, then closes every connection with a close frame; waits up to 2 s for the
 * server's close frames, then closes what is left and lets the loop end. */
static void finish(void)
{
    if (g_phase == 2) return;
    report();
    g_phase = 2;
    for (int i = 0; i < g_next; i++) {
        conn_t *c = &g_conns[i];
        if (c->state == ST_OPEN) {
            c->state = ST_CLOSING;
            conn_send(c, MGW_WS_OP_CLOSE, NULL, 0, 0);
        } else if (c->state == ST_CONNECTING || c->state == ST_HANDSHAKE) {
            conn_kill(c);
        }
    }
    uv_timer_stop(&g_tick);
    uv_timer_start(&g_phase_timer, end_timer_cb, 2000, 0);
    if (g_live == 0) end_loop();
}

static void signal_cb(uv_signal_t *s, int signum)
{
    (void)s;
    (void)signum;
    finish();
}

static void parse_url(const char *url)
{
    const char *p;
    if (strncmp(url, "wss://", 6) == 0) die("wss:// is not supported (plain ws:// only)");
    if (strncmp(url, "ws://", 5) != 0) die("URL must start with ws://: %s", url);
    p = url + 5;
    size_t hl = strcspn(p, ":/");
    if (hl == 0 || hl >= sizeof(opt.host)) die("bad host in %s", url);
    memcpy(opt.host, p, hl);
    opt.host[hl] = 0;
    p += hl;
    opt.port = 80;
    if (*p == ':') {
        char *e;
        long v = strtol(p + 1, &e, 10);
        if (v <= 0 || v > 65535) die("bad port in %s", url);
        opt.port = (int)v;
        p = e;
    }
    snprintf(opt.path, sizeof(opt.path), "%s", *p ? p : "/");
    if (opt.path[0] != '/') die("bad path in %s", url);
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *res;
    char port[8];
    snprintf(port, sizeof(port), "%d", opt.port);
    int rc = getaddrinfo(opt.host, port, &hints, &res);
    if (rc != 0) die("cannot resolve %s: %s", opt.host, gai_strerror(rc));
    memcpy(&opt.addr, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    snprintf(opt.request_fmt, sizeof(opt.request_fmt),
             "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
             "Sec-WebSocket-Key: %%s\r\nSec-WebSocket-Version: 13\r\n"
             "User-Agent: wsload\r\n\r\n",
             opt.path, opt.host, opt.port);
}

/* Raises the soft limit on open files to what `need` descriptors take, or dies. */
static void need_fds(long need)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) die("getrlimit: %s", strerror(errno));
    if (need < 0) /* as many as allowed */
        need = rl.rlim_max == RLIM_INFINITY ? 1048576 : (long)rl.rlim_max;
    if ((long)rl.rlim_cur >= need) return;
    if (rl.rlim_max != RLIM_INFINITY && (long)rl.rlim_max < need)
        die("%ld connections need %ld open files, the hard limit is %ld (ulimit -Hn); "
            "run several wsload processes with fewer connections each",
            need - 16, need, (long)rl.rlim_max);
    rl.rlim_cur = (rlim_t)need;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0) die("setrlimit(%ld): %s", need, strerror(errno));
}

static int run_client(void)
{
    need_fds(opt.n + 16);
    g_conns = calloc((size_t)opt.n, sizeof(*g_conns));
    if (!g_conns) die("out of memory");
    g_loop = uv_default_loop();
    uv_timer_init(g_loop, &g_tick);
    uv_timer_init(g_loop, &g_phase_timer);
    uv_signal_init(g_loop, &g_sigint);
    uv_signal_init(g_loop, &g_sigterm);
    uv_signal_start(&g_sigint, signal_cb, SIGINT);
    uv_signal_start(&g_sigterm, signal_cb, SIGTERM);
    uv_timer_start(&g_tick, tick_cb, 100, 100);
    uv_check_init(g_loop, &g_iter_check);
    uv_check_start(&g_iter_check, iter_check_cb);
    uv_unref((uv_handle_t *)&g_iter_check);
    g_t_start = uv_hrtime();
    start_more();
    uv_run(g_loop, UV_RUN_DEFAULT);
    report();
    if (g_opened == 0) {
        fprintf(stderr, "wsload: no connection could be opened to ws://%s:%d%s\n", opt.host,
                opt.port, opt.path);
        return 2;
    }
    return 0;
}

/* ---------------------------------------------------------------- server (--serve) */

typedef struct sconn_s {
    uv_tcp_t tcp;
    struct sconn_s *prev, *next; /* open connections, for pings */
    int state;                   /* ST_HANDSHAKE, ST_OPEN, ST_CLOSING, ST_DEAD */
    int listed;                  /* on the g_sconns list */
    char *hs;
    size_t hs_n;
    mgw_ws_dec_t dec;
} sconn_t;

static uv_tcp_t g_listener;
static sconn_t g_sconns = {.prev = &g_sconns, .next = &g_sconns};
static uint64_t s_accepted, s_open, s_max_open, s_messages, s_pings_sent, s_pongs, s_errors,
    s_closes;
static uv_timer_t g_ping_timer;

static void sconn_close_cb(uv_handle_t *h)
{
    sconn_t *s = h->data;
    mgw_ws_dec_free(&s->dec);
    free(s->hs);
    free(s);
}

static void sconn_kill(sconn_t *s)
{
    if (s->state == ST_DEAD) return;
    if (s->listed) {
        s->listed = 0;
        s->prev->next = s->next;
        s->next->prev = s->prev;
        s_open--;
    }
    s->state = ST_DEAD;
    uv_close((uv_handle_t *)&s->tcp, sconn_close_cb);
}

static void swrite_cb(uv_write_t *req, int status)
{
    wreq_t *w = (wreq_t *)req;
    sconn_t *s = req->handle->data;
    if (status < 0 || w->close_after) sconn_kill(s);
    free(w);
}

static void swrite(sconn_t *s, wreq_t *w, size_t len)
{
    uv_buf_t b = uv_buf_init((char *)w->data, (unsigned)len);
    if (uv_write(&w->req, (uv_stream_t *)&s->tcp, &b, 1, swrite_cb) < 0) {
        free(w);
        sconn_kill(s);
    }
}

static void ssend(sconn_t *s, int op, const void *p, size_t n, int close_after)
{
    size_t len;
    wreq_t *w = frame_new(0, op, p, n, &len);
    w->close_after = close_after;
    swrite(s, w, len);
}

static void s_feed(sconn_t *s, const uint8_t *p, size_t n)
{
    while (n && s->state == ST_OPEN) {
        size_t used = 0;
        mgw_ws_event_t ev;
        int t = mgw_ws_dec_feed(&s->dec, p, n, &used, &ev);
        p += used;
        n -= used;
        switch (t) {
        case MGW_WS_EV_NONE:
            return;
        case MGW_WS_EV_MESSAGE:
            s_messages++;
            ssend(s, ev.opcode, ev.data, ev.n, 0);
            break;
        case MGW_WS_EV_PING:
            ssend(s, MGW_WS_OP_PONG, ev.data, ev.n, 0);
            break;
        case MGW_WS_EV_PONG:
            s_pongs++;
            break;
        case MGW_WS_EV_CLOSE: {
            uint8_t pl[2] = {(uint8_t)(ev.code >> 8), (uint8_t)ev.code};
            s_closes++;
            s->state = ST_CLOSING;
            ssend(s, MGW_WS_OP_CLOSE, pl, ev.code == MGW_WS_CLOSE_NO_STATUS ? 0 : 2, 1);
            return;
        }
        case MGW_WS_EV_ERROR: {
            uint8_t out[MGW_WS_MAX_HEADER + MGW_WS_MAX_CONTROL];
            long k =
                mgw_ws_encode_close(out, sizeof(out), ev.code, ev.reason, strlen(ev.reason), NULL);
            s_errors++;
            s->state = ST_CLOSING;
            if (k > 0) {
                wreq_t *w = wreq_new((size_t)k);
                memcpy(w->data, out, (size_t)k);
                w->close_after = 1;
                swrite(s, w, (size_t)k);
            } else {
                sconn_kill(s);
            }
            return;
        }
        }
    }
}

static void s_handshake(sconn_t *s, size_t hn)
{
    const char *key;
    size_t kn;
    wreq_t *w = wreq_new(HS_MAX);
    int len;
    if (hn < 4 || memcmp(s->hs, "GET ", 4) != 0 ||
        !find_header(s->hs, hn, "sec-websocket-key", &key, &kn) || kn == 0 || kn > 64) {
        len =
            snprintf((char *)w->data, HS_MAX,
                     "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        w->close_after = 1;
        s->state = ST_CLOSING;
        s_errors++;
        swrite(s, w, (size_t)len);
        return;
    }
    char acc[29];
    ws_accept(key, kn, acc);
    len = snprintf((char *)w->data, HS_MAX,
                   "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                   "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
                   acc);
    s->state = ST_OPEN;
    s->listed = 1;
    s->next = g_sconns.next;
    s->prev = &g_sconns;
    g_sconns.next->prev = s;
    g_sconns.next = s;
    if (++s_open > s_max_open) s_max_open = s_open;
    swrite(s, w, (size_t)len);
}

static void sread_cb(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    sconn_t *s = st->data;
    if (nread < 0) {
        sconn_kill(s);
        return;
    }
    const uint8_t *p = (const uint8_t *)buf->base;
    size_t n = (size_t)nread;
    if (s->state == ST_HANDSHAKE) {
        size_t take = n < HS_MAX - 1 - s->hs_n ? n : HS_MAX - 1 - s->hs_n;
        size_t old = s->hs_n;
        memcpy(s->hs + s->hs_n, p, take);
        s->hs_n += take;
        s->hs[s->hs_n] = 0;
        char *e = strstr(s->hs, "\r\n\r\n");
        if (!e) {
            if (s->hs_n >= HS_MAX - 1) sconn_kill(s);
            return;
        }
        size_t hn = (size_t)(e + 4 - s->hs);
        s_handshake(s, hn);
        free(s->hs);
        s->hs = NULL;
        p += hn - old;
        n -= hn - old;
    }
    s_feed(s, p, n);
}

static void accept_cb(uv_stream_t *server, int status)
{
    if (status < 0) return;
    sconn_t *s = calloc(1, sizeof(*s));
    if (!s) die("out of memory");
    uv_tcp_init(server->loop, &s->tcp);
    s->tcp.data = s;
    if (uv_accept(server, (uv_stream_t *)&s->tcp) < 0) {
        s->state = ST_DEAD;
        uv_close((uv_handle_t *)&s->tcp, sconn_close_cb);
        return;
    }
    s_accepted++;
    uv_tcp_nodelay(&s->tcp, 1);
    s->state = ST_HANDSHAKE;
    s->hs = malloc(HS_MAX);
    if (!s->hs) die("out of memory");
    mgw_ws_dec_init(&s->dec, NULL);
    uv_read_start((uv_stream_t *)&s->tcp, alloc_cb, sread_cb);
}

static void ping_cb(uv_timer_t *t)
{
    (void)t;
    for (sconn_t *s = g_sconns.next, *nx; s != &g_sconns; s = nx) {
        nx = s->next;
        if (s->state == ST_OPEN) {
            s_pings_sent++;
            ssend(s, MGW_WS_OP_PING, "wsload", 6, 0);
        }
    }
}

static void serve_signal_cb(uv_signal_t *sig, int signum)
{
    (void)sig;
    (void)signum;
    printf("SERVE {\"accepted\":%llu,\"open\":%llu,\"max_open\":%llu,\"messages\":%llu,"
           "\"closes\":%llu,\"pings_sent\":%llu,\"pongs\":%llu,\"errors\":%llu}\n",
           (unsigned long long)s_accepted, (unsigned long long)s_open,
           (unsigned long long)s_max_open, (unsigned long long)s_messages,
           (unsigned long long)s_closes, (unsigned long long)s_pings_sent,
           (unsigned long long)s_pongs, (unsigned long long)s_errors);
    fflush(stdout);
    exit(0);
}

static int run_server(int port, double ping)
{
    need_fds(-1);
    uv_loop_t *loop = uv_default_loop();
    struct sockaddr_in a;
    uv_ip4_addr("127.0.0.1", port, &a);
    uv_tcp_init(loop, &g_listener);
    int rc = uv_tcp_bind(&g_listener, (struct sockaddr *)&a, 0);
    if (rc == 0) rc = uv_listen((uv_stream_t *)&g_listener, 4096, accept_cb);
    if (rc < 0) die("cannot listen on 127.0.0.1:%d: %s", port, uv_strerror(rc));
    struct sockaddr_storage bound;
    int bl = sizeof(bound);
    uv_tcp_getsockname(&g_listener, (struct sockaddr *)&bound, &bl);
    printf("SERVE listening 127.0.0.1:%d\n", ntohs(((struct sockaddr_in *)&bound)->sin_port));
    fflush(stdout);
    static uv_signal_t si, st;
    uv_signal_init(loop, &si);
    uv_signal_init(loop, &st);
    uv_signal_start(&si, serve_signal_cb, SIGINT);
    uv_signal_start(&st, serve_signal_cb, SIGTERM);
    if (ping > 0) {
        uv_timer_init(loop, &g_ping_timer);
        uv_timer_start(&g_ping_timer, ping_cb, (uint64_t)(ping * 1e3), (uint64_t)(ping * 1e3));
    }
    return uv_run(loop, UV_RUN_DEFAULT);
}

/* ---------------------------------------------------------------- main */

static void usage(FILE *f)
{
    fputs("usage: wsload [options] ws://HOST:PORT/PATH\n"
          "       wsload --serve PORT [--ping SECONDS]\n"
          "  -m, --mode echo|idle     echo: request/reply messages (W6); idle: hold (W7). echo\n"
          "  -c, --connections N      connections to open (100)\n"
          "  -d, --duration S         echo: measured seconds; idle: hold, 0 = until signal (5)\n"
          "  -w, --warmup S           echo: seconds before measuring (1)\n"
          "      --message TEXT       echo: the text message "
          "({\"action\":\"echo\",\"data\":\"hello\"})\n"
          "      --expect TEXT        echo: every reply must be TEXT (else counted in mismatch)\n"
          "      --sources K          bind connection i to 127.0.0.(1 + i % K)\n"
          "      --concurrency P      connections being opened at once (256)\n"
          "      --timeout S          seconds to open one connection (10)\n"
          "      --serve PORT         run the echo test server on 127.0.0.1:PORT (0: any)\n"
          "      --ping S             --serve: ping every open connection every S seconds\n",
          f);
}

static double num_arg(const char *name, const char *v, double lo, double hi)
{
    char *e;
    double d = strtod(v, &e);
    if (e == v || *e || d < lo || d > hi) die("bad value for %s: %s", name, v);
    return d;
}

int main(int argc, char **argv)
{
    static const struct option lo[] = {
        {"mode", required_argument, 0, 'm'},
        {"connections", required_argument, 0, 'c'},
        {"duration", required_argument, 0, 'd'},
        {"warmup", required_argument, 0, 'w'},
        {"message", required_argument, 0, 'M'},
        {"expect", required_argument, 0, 'E'},
        {"sources", required_argument, 0, 'S'},
        {"concurrency", required_argument, 0, 'P'},
        {"timeout", required_argument, 0, 'T'},
        {"serve", required_argument, 0, 'V'},
        {"ping", required_argument, 0, 'I'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    int serve = -1;
    double ping = 0;
    opt.echo = 1;
    opt.n = 100;
    opt.duration = 5;
    opt.warmup = 1;
    opt.timeout = 10;
    opt.concurrency = 256;
    opt.message = "{\"action\":\"echo\",\"data\":\"hello\"}";
    int ch;
    while ((ch = getopt_long(argc, argv, "m:c:d:w:h", lo, NULL)) != -1) {
        switch (ch) {
        case 'm':
            if (strcmp(optarg, "echo") == 0)
                opt.echo = 1;
            else if (strcmp(optarg, "idle") == 0)
                opt.echo = 0;
            else
                die("--mode is echo or idle, not %s", optarg);
            break;
        case 'c':
            opt.n = (int)num_arg("--connections", optarg, 1, 1000000);
            break;
        case 'd':
            opt.duration = num_arg("--duration", optarg, 0, 1e6);
            break;
        case 'w':
            opt.warmup = num_arg("--warmup", optarg, 0, 1e6);
            break;
        case 'M':
            opt.message = optarg;
            break;
        case 'E':
            opt.expect = optarg;
            opt.expect_n = strlen(optarg);
            break;
        case 'S':
            opt.sources = (int)num_arg("--sources", optarg, 1, 254);
            break;
        case 'P':
            opt.concurrency = (int)num_arg("--concurrency", optarg, 1, 1000000);
            break;
        case 'T':
            opt.timeout = num_arg("--timeout", optarg, 0.1, 1e6);
            break;
        case 'V':
            serve = (int)num_arg("--serve", optarg, 0, 65535);
            break;
        case 'I':
            ping = num_arg("--ping", optarg, 0, 1e6);
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (RAND_bytes((unsigned char *)&g_rng, sizeof(g_rng)) != 1 || g_rng == 0)
        g_rng = 0x9e3779b97f4a7c15ull ^ (uint64_t)uv_hrtime();
    signal(SIGPIPE, SIG_IGN);
    if (serve >= 0) {
        if (optind != argc) die("--serve takes no URL");
        return run_server(serve, ping);
    }
    if (optind + 1 != argc) {
        usage(stderr);
        return 2;
    }
    opt.message_n = strlen(opt.message);
    if (opt.echo && opt.duration <= 0) die("echo needs --duration > 0");
    if (!mgw_utf8_valid(opt.message, opt.message_n)) die("--message is not valid UTF-8");
    parse_url(argv[optind]);
    return run_client();
}
