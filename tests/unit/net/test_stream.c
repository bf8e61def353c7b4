/*
 * The stream ops (runtime/net/stream*.c) over a real loopback TCP connection: the stream
 * is accepted from a listener on 127.0.0.1 and the test plays the peer on the other end
 * with a plain non-blocking socket (and, for TLS, a client engine of base/tls.c pumped by
 * hand). Plain TCP: writes and reads, a large write with backpressure (pending bytes,
 * progress and drained), pause and resume (the bytes held meanwhile), read_stop and
 * read_start, shutdown and EOF, close. TLS: the handshake, data both ways, a pause that
 * leaves records decrypted inside the engine, close_notify both ways, a plain-HTTP
 * refusal answered in plain text, garbage refused with an alert. Reading: two streams on
 * one loop are read in the order their bytes arrived, and a socket holding more than an
 * event's share is read to its end. The PKI is made by
 * tls_certs.sh, as in tests/unit/base/test_tls.c.
 */
/* two full buffers per event, so that a test can see a socket queued again */
#define READS_MAX 2
#include "net/stream.c"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/pool.h"
#include "unit.h"

/* ---- the owner ---- */

typedef struct {
    mgw_stream_t s;
    mgw_buf_t got; /* plaintext the stream handed over */
    int reads, eofs, handshakes, refusals, plain_http, progress, drained, shutdowns, closes;
    size_t take; /* pause_read takes this many bytes, then pauses (0: takes everything) */
    char why[256];
    char id; /* when set, each read appends it to order */
} owner_t;

static char order[64];
static size_t norder;

static void own_read(mgw_stream_t *s, mgw_rbuf_t *rb, const char *p, size_t n)
{
    (void)rb;
    owner_t *o = s->data;
    o->reads++;
    mgw_buf_add(&o->got, p, n);
    if (o->id && norder < sizeof(order) - 1) order[norder++] = o->id;
}

static void own_eof(mgw_stream_t *s)
{
    ((owner_t *)s->data)->eofs++;
}

static void own_handshake(mgw_stream_t *s, mgw_tls_t *t)
{
    owner_t *o = s->data;
    if (mgw_tls_handshake_done(t)) o->handshakes++;
}

static void own_refused(mgw_stream_t *s, mgw_tls_t *t, int plain_http)
{
    owner_t *o = s->data;
    o->refusals++;
    o->plain_http = plain_http;
    snprintf(o->why, sizeof(o->why), "%s", mgw_tls_error(t));
}

static void own_progress(mgw_stream_t *s)
{
    ((owner_t *)s->data)->progress++;
}

static void own_drained(mgw_stream_t *s)
{
    ((owner_t *)s->data)->drained++;
}

static void own_shutdown(mgw_stream_t *s)
{
    owner_t *o = s->data;
    o->shutdowns++;
    mgw_stream_close(s);
}

static void own_close(mgw_stream_t *s)
{
    ((owner_t *)s->data)->closes++;
}

static const mgw_stream_cbs_t cbs = {
    .on_read = own_read,
    .on_eof = own_eof,
    .on_handshake = own_handshake,
    .on_refused = own_refused,
    .on_progress = own_progress,
    .on_drained = own_drained,
    .on_shutdown = own_shutdown,
    .on_close = own_close,
};

/* ---- a loop, a listener and the peer's socket ---- */

static uv_loop_t loop;
static uv_tcp_t listener;
static owner_t *accepting;
static int accepted;

static void on_connection(uv_stream_t *server, int status)
{
    if (status == 0 && accepting && mgw_stream_accept(&accepting->s, server) == 0) accepted = 1;
}

/* Runs the loop (and peer, when given) until done(arg) or about two seconds. */
static int run_until(int (*done)(void *), void *arg, void (*peer)(void *))
{
    for (int i = 0; i < 4000; i++) {
        uv_run(&loop, UV_RUN_NOWAIT);
        if (peer) peer(arg);
        if (done(arg)) return 1;
        usleep(500);
    }
    return 0;
}

static int is_accepted(void *arg)
{
    (void)arg;
    return accepted;
}

/*
 * Initializes o's stream (TLS with tls) on the loop and accepts a new peer connection to
 * the listener into it; returns the peer's non-blocking socket, or -1. rcvbuf > 0
 * shrinks the peer's receive buffer (backpressure).
 */
static int connect_peer(owner_t *o, const mgw_stream_tls_opts_t *tls, int rcvbuf)
{
    memset(o, 0, sizeof(*o));
    accepted = 0;
    accepting = o;
    struct sockaddr_in sa;
    int len = sizeof(sa);
    uv_tcp_getsockname(&listener, (struct sockaddr *)&sa, &len);
    mgw_stream_init(&o->s, &loop, &cbs, o, tls);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (rcvbuf > 0) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 && errno != EINPROGRESS) {
        close(fd);
        return -1;
    }
    if (!run_until(is_accepted, NULL, NULL)) {
        close(fd);
        return -1;
    }
    mgw_stream_read_start(&o->s);
    return fd;
}

/* Starts a loop and a listener, and a first stream as connect_peer does. */
static int open_pair(owner_t *o, const mgw_stream_tls_opts_t *tls, int rcvbuf)
{
    if (uv_loop_init(&loop) != 0) return -1;
    struct sockaddr_in sa;
    uv_ip4_addr("127.0.0.1", 0, &sa);
    uv_tcp_init(&loop, &listener);
    if (uv_tcp_bind(&listener, (const struct sockaddr *)&sa, 0) != 0 ||
        uv_listen((uv_stream_t *)&listener, 8, on_connection) != 0)
        return -1;
    return connect_peer(o, tls, rcvbuf);
}

static int is_closed(void *arg)
{
    return ((owner_t *)arg)->closes > 0;
}

/* Closes the stream (when it is open), the listener and the loop: 1 when nothing leaked. */
static int close_pair(owner_t *o, int fd)
{
    if (fd >= 0) close(fd);
    mgw_stream_close(&o->s);
    run_until(is_closed, o, NULL);
    uv_close((uv_handle_t *)&listener, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    mgw_buf_free(&o->got);
    return o->closes == 1 && uv_loop_close(&loop) == 0;
}

/* What the peer has received so far (appended to into). */
static void peer_read(int fd, mgw_buf_t *into, int *eof)
{
    char buf[65536];
    for (;;) {
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n > 0) {
            mgw_buf_add(into, buf, (size_t)n);
            continue;
        }
        if (n == 0 && eof) *eof = 1;
        break;
    }
}

static int peer_write(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EAGAIN) {
            uv_run(&loop, UV_RUN_NOWAIT);
            continue;
        }
        if (w <= 0) return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int buf_is(const mgw_buf_t *b, const char *s)
{
    return b->n == strlen(s) && memcmp(b->p, s, b->n) == 0;
}

/* ---- plain TCP ---- */

typedef struct {
    owner_t *o;
    int fd;
    mgw_buf_t peer;
    int peer_eof;
    size_t want_owner, want_peer;
} watch_t;

static void watch_peer(void *arg)
{
    watch_t *w = arg;
    peer_read(w->fd, &w->peer, &w->peer_eof);
}

static int got_enough(void *arg)
{
    watch_t *w = arg;
    return w->o->got.n >= w->want_owner && w->peer.n >= w->want_peer;
}

static void test_tcp_write_read(void)
{
    owner_t o;
    int fd = open_pair(&o, NULL, 0);
    CHECK(fd >= 0);
    if (fd < 0) return;
    uv_buf_t b[2] = {uv_buf_init("hel", 3), uv_buf_init("lo", 2)};
    CHECK(mgw_stream_write(&o.s, b, 2, NULL) == 0);
    CHECK(peer_write(fd, "ping", 4) == 0);
    watch_t w = {.o = &o, .fd = fd, .want_owner = 4, .want_peer = 5};
    CHECK(run_until(got_enough, &w, watch_peer));
    CHECK(buf_is(&w.peer, "hello"));
    CHECK(buf_is(&o.got, "ping"));
    CHECK(o.reads == 1);
    CHECK(o.eofs == 0 && o.handshakes == 0 && o.refusals == 0);
    mgw_buf_free(&w.peer);
    CHECK(close_pair(&o, fd));
}

/* A write far beyond what the socket takes: the rest is queued (a copy: the caller's
 * memory is gone after the call), the producer sees pending above MGW_WQ_HIGH, and
 * on_drained says when it fell below MGW_WQ_LOW; the peer gets every byte in order. */
static void test_tcp_backpressure(void)
{
    owner_t o;
    int fd = open_pair(&o, NULL, 64 * 1024);
    CHECK(fd >= 0);
    if (fd < 0) return;
    int small = 64 * 1024;
    setsockopt(o.s.tcp.io_watcher.fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
    size_t total = 8 * 1024 * 1024;
    char *data = malloc(total);
    for (size_t i = 0; i < total; i++)
        data[i] = (char)('a' + (i * 7 + i / 4096) % 26);
    uv_buf_t b = uv_buf_init(data, (unsigned)total);
    CHECK(mgw_stream_write(&o.s, &b, 1, NULL) == 0);
    char *copy = malloc(total);
    memcpy(copy, data, total);
    memset(data, 0, total); /* the queued part must be the stream's own copy */
    CHECK(o.s.wq.pending >= MGW_WQ_HIGH);
    CHECK(o.drained == 0);
    watch_t w = {.o = &o, .fd = fd, .want_peer = total};
    CHECK(run_until(got_enough, &w, watch_peer));
    CHECK(w.peer.n == total && memcmp(w.peer.p, copy, total) == 0);
    CHECK(o.s.wq.pending == 0);
    CHECK(o.drained == 1);
    CHECK(o.progress >= 1);
    free(data);
    free(copy);
    mgw_buf_free(&w.peer);
    CHECK(close_pair(&o, fd));
}

static void pause_read(mgw_stream_t *s, mgw_rbuf_t *rb, const char *p, size_t n)
{
    owner_t *o = s->data;
    o->reads++;
    size_t k = o->take && n > o->take ? o->take : n;
    mgw_buf_add(&o->got, p, k);
    if (o->take) {
        o->take = 0;
        mgw_stream_pause(s, rb, p + k, n - k);
    }
}

static const mgw_stream_cbs_t pause_cbs = {
    .on_read = pause_read,
    .on_eof = own_eof,
    .on_handshake = own_handshake,
    .on_refused = own_refused,
    .on_progress = own_progress,
    .on_drained = own_drained,
    .on_shutdown = own_shutdown,
    .on_close = own_close,
};

static int held_at_least(void *arg)
{
    watch_t *w = arg;
    return w->o->s.held_len >= w->want_owner;
}

/* The owner takes 2 bytes and pauses: the rest, and what arrives meanwhile, waits in the
 * stream and comes back in one piece, in order, on resume. */
static void test_tcp_pause_resume(void)
{
    owner_t o;
    int fd = open_pair(&o, NULL, 0);
    CHECK(fd >= 0);
    if (fd < 0) return;
    o.s.cbs = &pause_cbs;
    o.take = 2;
    CHECK(peer_write(fd, "abcdef", 6) == 0);
    watch_t w = {.o = &o, .fd = fd, .want_owner = 2};
    CHECK(run_until(got_enough, &w, NULL));
    CHECK(o.s.paused);
    CHECK(peer_write(fd, "ghi", 3) == 0);
    w.want_owner = 7; /* "cdef" + "ghi" held */
    CHECK(run_until(held_at_least, &w, NULL));
    CHECK(o.reads == 1);
    CHECK(buf_is(&o.got, "ab"));
    mgw_stream_resume(&o.s);
    CHECK(!o.s.paused);
    CHECK(o.reads == 2);
    CHECK(buf_is(&o.got, "abcdefghi"));
    CHECK(o.s.held_len == 0);
    /* reading goes on after the resume */
    CHECK(peer_write(fd, "j", 1) == 0);
    w.want_owner = 10;
    CHECK(run_until(got_enough, &w, NULL));
    CHECK(buf_is(&o.got, "abcdefghij"));
    CHECK(close_pair(&o, fd));
}

/* read_stop: nothing reaches the owner until read_start. */
static void test_tcp_read_stop(void)
{
    owner_t o;
    int fd = open_pair(&o, NULL, 0);
    CHECK(fd >= 0);
    if (fd < 0) return;
    mgw_stream_read_stop(&o.s);
    CHECK(peer_write(fd, "later", 5) == 0);
    for (int i = 0; i < 50; i++) {
        uv_run(&loop, UV_RUN_NOWAIT);
        usleep(1000);
    }
    CHECK(o.reads == 0);
    mgw_stream_read_start(&o.s);
    watch_t w = {.o = &o, .fd = fd, .want_owner = 5};
    CHECK(run_until(got_enough, &w, NULL));
    CHECK(buf_is(&o.got, "later"));
    CHECK(close_pair(&o, fd));
}

/* Reading: two streams of one loop are read in the order their bytes arrived (an
 * edge-triggered set; libuv's level-triggered watchers would read them in the order of
 * the loop's previous turn, a then b every time). */
typedef struct {
    owner_t *a, *b;
    size_t want;
} two_t;

static int both_got(void *arg)
{
    two_t *t = arg;
    return t->a->got.n >= t->want && t->b->got.n >= t->want;
}

static void test_tcp_arrival_order(void)
{
    owner_t a, b;
    int fa = open_pair(&a, NULL, 0);
    CHECK(fa >= 0);
    if (fa < 0) return;
    int fb = connect_peer(&b, NULL, 0);
    CHECK(fb >= 0);
    a.id = 'a';
    b.id = 'b';
    norder = 0;
    two_t t = {.a = &a, .b = &b};
    const char *rounds[] = {"ab", "ba", "ab", "ba"};
    for (int r = 0; r < 4; r++) {
        int b_first = rounds[r][0] == 'b';
        CHECK(peer_write(b_first ? fb : fa, "x", 1) == 0);
        CHECK(peer_write(b_first ? fa : fb, "x", 1) == 0);
        t.want = (size_t)r + 1;
        CHECK(run_until(both_got, &t, NULL));
    }
    order[norder] = 0;
    CHECK(strcmp(order, "abbaabba") == 0);
    if (strcmp(order, "abbaabba") != 0) printf("# read order %s\n", order);
    close(fb);
    mgw_stream_close(&b.s);
    run_until(is_closed, &b, NULL);
    mgw_buf_free(&b.got);
    CHECK(close_pair(&a, fa));
}

/* More than an event's share (two full buffers here) waiting in the socket: the stream
 * is queued again and reads it all without the peer sending more. */
static void test_tcp_long_read(void)
{
    owner_t o;
    int fd = open_pair(&o, NULL, 0);
    CHECK(fd >= 0);
    if (fd < 0) return;
    int big = 4 * 1024 * 1024, sfd;
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
    if (uv_fileno((uv_handle_t *)&o.s.tcp, &sfd) == 0)
        setsockopt(sfd, SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
    size_t total = 3 * MGW_RBUF_SIZE + 1000;
    char *data = malloc(total);
    for (size_t i = 0; i < total; i++)
        data[i] = (char)('a' + i % 26);
    CHECK(peer_write(fd, data, total) == 0);
    watch_t w = {.o = &o, .fd = fd, .want_owner = total};
    CHECK(run_until(got_enough, &w, NULL));
    CHECK(o.got.n == total && memcmp(o.got.p, data, total) == 0);
    CHECK(o.reads >= 4);
    free(data);
    CHECK(close_pair(&o, fd));
}

static int saw_eof(void *arg)
{
    watch_t *w = arg;
    return w->o->eofs > 0;
}

static int shut_and_seen(void *arg)
{
    watch_t *w = arg;
    return w->o->shutdowns > 0 && w->peer_eof;
}

/* The peer ends its side: on_eof. The stream's shutdown: the queued bytes, then the peer
 * reads EOF, and on_shutdown (whose owner closes the stream here) follows. */
static void test_tcp_shutdown_eof(void)
{
    owner_t o;
    int fd = open_pair(&o, NULL, 0);
    CHECK(fd >= 0);
    if (fd < 0) return;
    CHECK(peer_write(fd, "last", 4) == 0);
    CHECK(shutdown(fd, SHUT_WR) == 0);
    watch_t w = {.o = &o, .fd = fd};
    CHECK(run_until(saw_eof, &w, NULL));
    CHECK(buf_is(&o.got, "last"));
    CHECK(o.eofs == 1);
    CHECK(o.s.eof && !o.s.reading);
    uv_buf_t b = uv_buf_init("bye", 3);
    CHECK(mgw_stream_write(&o.s, &b, 1, NULL) == 0);
    mgw_stream_shutdown(&o.s);
    CHECK(o.s.done);
    CHECK(run_until(shut_and_seen, &w, watch_peer));
    CHECK(buf_is(&w.peer, "bye"));
    CHECK(o.shutdowns == 1);
    mgw_buf_free(&w.peer);
    CHECK(close_pair(&o, fd));
}

/* close: on_close comes once, after the socket is closed; the peer sees the end. */
static void test_tcp_close(void)
{
    owner_t o;
    int fd = open_pair(&o, NULL, 0);
    CHECK(fd >= 0);
    if (fd < 0) return;
    CHECK(peer_write(fd, "x", 1) == 0);
    watch_t w = {.o = &o, .fd = fd, .want_owner = 1};
    CHECK(run_until(got_enough, &w, NULL));
    mgw_stream_close(&o.s);
    mgw_stream_close(&o.s); /* idempotent */
    CHECK(o.closes == 0);   /* not inside the call */
    CHECK(run_until(is_closed, &o, NULL));
    CHECK(o.closes == 1);
    CHECK(o.s.rbuf == NULL);
    char c;
    int end = 0;
    for (int i = 0; i < 200 && !end; i++) {
        ssize_t n = read(fd, &c, 1);
        end = n == 0 || (n < 0 && errno != EAGAIN);
        usleep(1000);
    }
    CHECK(end);
    CHECK(close_pair(&o, fd));
}

/* ---- TLS ---- */

static char dir[PATH_MAX];

static const char *P(const char *name)
{
    static char ring[8][PATH_MAX + 64];
    static int next;
    char *p = ring[next++ % 8];
    snprintf(p, PATH_MAX + 64, "%s/%s", dir, name);
    return p;
}

static mgw_tls_ctx_t *server_ctx, *client_ctx;

/* The peer: a client engine between the test and the socket. */
typedef struct {
    owner_t *o;
    int fd;
    mgw_tls_t *t;
    mgw_buf_t plain; /* what the client decrypted */
    int closed, failed, eof;
} tpeer_t;

static void tpeer_pump(void *arg)
{
    tpeer_t *k = arg;
    char buf[65536];
    for (;;) {
        ssize_t n = read(k->fd, buf, sizeof(buf));
        if (n > 0) {
            mgw_tls_feed(k->t, buf, (size_t)n);
            continue;
        }
        if (n == 0) k->eof = 1;
        break;
    }
    for (;;) {
        ssize_t n = mgw_tls_read(k->t, buf, sizeof(buf));
        if (n > 0) {
            mgw_buf_add(&k->plain, buf, (size_t)n);
            continue;
        }
        if (n == MGW_TLS_CLOSED) k->closed = 1;
        if (n == MGW_TLS_ERROR) k->failed = 1;
        break;
    }
    size_t m;
    while ((m = mgw_tls_pending(k->t, buf, sizeof(buf))) > 0)
        peer_write(k->fd, buf, m);
}

static void tpeer_send(tpeer_t *k, const char *s)
{
    mgw_tls_write(k->t, s, strlen(s));
    tpeer_pump(k);
}

static int handshaken(void *arg)
{
    tpeer_t *k = arg;
    return k->o->handshakes > 0 && mgw_tls_handshake_done(k->t);
}

static int tls_owner_got(void *arg)
{
    tpeer_t *k = arg;
    return k->o->got.n >= 5;
}

static int tls_peer_got(void *arg)
{
    tpeer_t *k = arg;
    return k->plain.n >= 4;
}

static int peer_closed(void *arg)
{
    tpeer_t *k = arg;
    return k->closed && k->o->shutdowns > 0;
}

static int tls_owner_eof(void *arg)
{
    tpeer_t *k = arg;
    return k->o->eofs > 0;
}

static int open_tls(owner_t *o, tpeer_t *k)
{
    mgw_stream_tls_opts_t tls = {.ctx = server_ctx};
    memset(k, 0, sizeof(*k));
    k->o = o;
    k->fd = open_pair(o, &tls, 0);
    if (k->fd < 0) return -1;
    k->t = mgw_tls_client_new(client_ctx, "default.test", NULL);
    tpeer_pump(k); /* the ClientHello */
    return 0;
}

static void close_tls(owner_t *o, tpeer_t *k)
{
    mgw_tls_free(k->t);
    mgw_buf_free(&k->plain);
    CHECK(close_pair(o, k->fd));
    CHECK(o->s.tls == NULL);
}

/* The handshake, data both ways, then the stream's close_notify (shutdown), and the
 * client's close_notify as on_eof. */
static void test_tls_handshake_data_close(void)
{
    owner_t o;
    tpeer_t k;
    CHECK(server_ctx && client_ctx);
    if (!server_ctx || !client_ctx || open_tls(&o, &k) != 0) {
        CHECK(0);
        return;
    }
    CHECK(o.s.handshaking);
    CHECK(run_until(handshaken, &k, tpeer_pump));
    CHECK(!o.s.handshaking);
    tpeer_send(&k, "hello");
    CHECK(run_until(tls_owner_got, &k, tpeer_pump));
    CHECK(buf_is(&o.got, "hello"));
    uv_buf_t b[2] = {uv_buf_init("wo", 2), uv_buf_init("rld", 3)};
    CHECK(mgw_stream_write(&o.s, b, 2, NULL) == 0);
    CHECK(run_until(tls_peer_got, &k, tpeer_pump));
    CHECK(buf_is(&k.plain, "world"));
    /* what went over the wire was not the plaintext: the peer's engine decrypted it */
    mgw_stream_shutdown(&o.s);
    CHECK(run_until(peer_closed, &k, tpeer_pump));
    CHECK(k.closed && !k.failed);
    CHECK(o.eofs == 0 && o.refusals == 0);
    close_tls(&o, &k);

    /* the client ends the session: the stream reports the end */
    if (open_tls(&o, &k) != 0) {
        CHECK(0);
        return;
    }
    CHECK(run_until(handshaken, &k, tpeer_pump));
    mgw_tls_shutdown(k.t);
    tpeer_pump(&k);
    CHECK(run_until(tls_owner_eof, &k, tpeer_pump));
    CHECK(o.eofs == 1 && o.refusals == 0);
    close_tls(&o, &k);
}

static int tls_got_two(void *arg)
{
    tpeer_t *k = arg;
    return k->o->got.n >= 3;
}

/* Two records in one segment; the owner pauses after the first: the second stays
 * decrypted inside the engine (no socket read will bring it) until resume drains it. */
static void test_tls_pause_drains_engine(void)
{
    owner_t o;
    tpeer_t k;
    if (!server_ctx || !client_ctx || open_tls(&o, &k) != 0) {
        CHECK(0);
        return;
    }
    CHECK(run_until(handshaken, &k, tpeer_pump));
    o.s.cbs = &pause_cbs;
    o.take = 3;
    mgw_tls_write(k.t, "one", 3);
    mgw_tls_write(k.t, "two", 3);
    tpeer_pump(&k);
    CHECK(run_until(tls_got_two, &k, tpeer_pump));
    for (int i = 0; i < 20; i++) {
        uv_run(&loop, UV_RUN_NOWAIT);
        usleep(1000);
    }
    CHECK(o.s.paused && !o.s.reading);
    CHECK(buf_is(&o.got, "one"));
    CHECK(o.reads == 1);
    mgw_stream_resume(&o.s);
    CHECK(buf_is(&o.got, "onetwo"));
    CHECK(o.reads == 2);
    CHECK(o.s.reading);
    close_tls(&o, &k);
}

static int refused(void *arg)
{
    tpeer_t *k = arg;
    return k->o->refusals > 0;
}

typedef struct {
    int fd;
    mgw_buf_t got;
    int eof;
} raw_t;

static void raw_pump(void *arg)
{
    raw_t *r = arg;
    peer_read(r->fd, &r->got, &r->eof);
}

static int raw_has(void *arg)
{
    raw_t *r = arg;
    return r->got.n > 0;
}

/* Plain HTTP to the TLS stream: refused with plain_http, and what the owner writes then
 * goes out as it is. Garbage: refused, and the peer gets an alert record. */
static void test_tls_refusals(void)
{
    owner_t o;
    mgw_stream_tls_opts_t tls = {.ctx = server_ctx};
    if (!server_ctx) {
        CHECK(0);
        return;
    }
    int fd = open_pair(&o, &tls, 0);
    CHECK(fd >= 0);
    if (fd < 0) return;
    CHECK(peer_write(fd, "GET / HTTP/1.1\r\nHost: a\r\n\r\n", 27) == 0);
    tpeer_t k = {.o = &o};
    CHECK(run_until(refused, &k, NULL));
    CHECK(o.refusals == 1 && o.plain_http == 1);
    CHECK(o.handshakes == 0 && o.reads == 0);
    uv_buf_t b = uv_buf_init("HTTP/1.1 400 Bad Request\r\n\r\n", 28);
    CHECK(mgw_stream_write(&o.s, &b, 1, NULL) == 0);
    raw_t r = {.fd = fd};
    CHECK(run_until(raw_has, &r, raw_pump));
    CHECK(buf_is(&r.got, "HTTP/1.1 400 Bad Request\r\n\r\n"));
    mgw_buf_free(&r.got);
    CHECK(close_pair(&o, fd));

    fd = open_pair(&o, &tls, 0);
    CHECK(fd >= 0);
    if (fd < 0) return;
    CHECK(peer_write(fd, "\x16\x03\x01\x00\x05garbagegarbage", 19) == 0);
    k.o = &o;
    CHECK(run_until(refused, &k, NULL));
    CHECK(o.refusals == 1 && o.plain_http == 0);
    CHECK(o.why[0] != '\0');
    r = (raw_t){.fd = fd};
    CHECK(run_until(raw_has, &r, raw_pump));
    CHECK(r.got.n >= 7 && (unsigned char)r.got.p[0] == 0x15); /* an alert record */
    mgw_buf_free(&r.got);
    CHECK(close_pair(&o, fd));
}

/* ---- the PKI (as in tests/unit/base/test_tls.c) ---- */

static int make_pki(void)
{
    if (unit_make_certs(dir, sizeof(dir), "stream", "tests/unit/tls_certs.sh") != 0) return -1;
    char err[512] = "";
    mgw_tls_site_t site = {.certificate = P("default.pem"), .key = P("default.key")};
    server_ctx = mgw_tls_ctx_new(&site, 0, err, sizeof(err));
    if (!server_ctx) printf("# server context: %s\n", err);
    client_ctx = mgw_tls_client_ctx_new(P("root.pem"), NULL, NULL, err, sizeof(err));
    if (!client_ctx) printf("# client context: %s\n", err);
    return server_ctx && client_ctx ? 0 : -1;
}

static void remove_pki(void)
{
    mgw_tls_ctx_free(server_ctx);
    mgw_tls_ctx_free(client_ctx);
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0) printf("# cannot remove %s\n", dir);
}

int main(void)
{
    RUN(test_tcp_write_read);
    RUN(test_tcp_backpressure);
    RUN(test_tcp_pause_resume);
    RUN(test_tcp_read_stop);
    RUN(test_tcp_shutdown_eof);
    RUN(test_tcp_close);
    RUN(test_tcp_arrival_order);
    RUN(test_tcp_long_read);
    if (make_pki() != 0) {
        printf("not ok - make_pki\n");
        unit_failed++;
        return DONE();
    }
    RUN(test_tls_handshake_data_close);
    RUN(test_tls_pause_drains_engine);
    RUN(test_tls_refusals);
    remove_pki();
    mgw__rbuf_drain();
    return DONE();
}
