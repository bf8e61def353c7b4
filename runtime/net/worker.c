#include "net/worker.h"

#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "base/err.h"
#include "base/log.h"
#include "base/stat.h"
#include "gw/req_int.h"
#include "net/conn.h"
#include "net/mailbox.h"

/* The layers' worker ops, lowest layer first (worker.h). */
#define MAX_OPS 8
static const mgw_worker_ops_t *ops[MAX_OPS];
static int nops;

void mgw_worker_ops_register(const mgw_worker_ops_t *o)
{
    if (nops == MAX_OPS) abort();
    ops[nops++] = o;
}

/* Calls hook args (a parenthesized argument list) of every table that has the hook: in
 * registration order, or in reverse when backwards. */
#define EACH_OPS(hook, backwards, args)                                                            \
    do {                                                                                           \
        for (int i_ = 0; i_ < nops; i_++) {                                                        \
            const mgw_worker_ops_t *o_ = ops[(backwards) ? nops - 1 - i_ : i_];                    \
            if (o_->hook) o_->hook args;                                                           \
        }                                                                                          \
    } while (0)

typedef struct {
    mgw_worker_t *w;
    int idx;      /* into every generation's listen[] */
    int deferred; /* a connection waits in libuv, to be accepted by accept_check_cb */
} listener_ctx_t;

/*
 * New connections accepted per loop iteration. libuv would accept every pending one at
 * once: with many clients connecting together, all their TLS handshakes then advance in
 * turn and each finishes late. Accepting one per iteration lets connections already
 * under way finish first (nginx's multi_accept off does the same); W4 (a TLS handshake
 * per request, 64 clients): ~1,300 -> ~1,600 handshakes/s, mean latency 19 -> 8 ms.
 */
#define ACCEPT_BATCH 1

/* Opens one SO_REUSEPORT listening socket; returns the fd or -errno. */
int mgw__open_listener(const mgw_listen_t *l)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    socklen_t len;
    if (uv_ip4_addr(l->address, l->port, (struct sockaddr_in *)&ss) == 0) {
        len = sizeof(struct sockaddr_in);
    } else if (uv_ip6_addr(l->address, l->port, (struct sockaddr_in6 *)&ss) == 0) {
        len = sizeof(struct sockaddr_in6);
    } else {
        return -EINVAL;
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&ss, len) != 0 || listen(fd, 511) != 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}

const char *mgw__date(mgw_worker_t *w)
{
    time_t now = time(NULL);
    if (now != w->date_sec) {
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(w->date, sizeof(w->date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
        w->date_sec = now;
    }
    return w->date;
}

/* Seeds the generator of w's request ids. */
static void seed(mgw_worker_t *w)
{
    if (getrandom(w->rng, sizeof(w->rng), 0) != sizeof(w->rng)) {
        w->rng[0] = (uint64_t)uv_hrtime() ^ (uint64_t)w->id;
        w->rng[1] = 0x9e3779b97f4a7c15ULL * (uint64_t)(w->id + 1);
    }
}

static void on_connection(uv_stream_t *server, int status)
{
    listener_ctx_t *ctx = server->data;
    if (status < 0) {
        mgw_log_error("accept on port %d: %s", ctx->w->gen->listen[ctx->idx].port,
                      uv_strerror(status));
        return;
    }
    mgw_worker_t *w = ctx->w;
    if (w->accepts >= ACCEPT_BATCH) {
        /* Not accepting it now makes libuv keep it and stop watching the listener until
         * accept_check_cb accepts it (uv_accept watches the listener again). */
        ctx->deferred = 1;
        return;
    }
    w->accepts++;
    mgw__conn_accept(w, server, ctx->idx);
}

/* After each poll: a new batch of accepts, starting with the connections kept waiting. */
static void accept_check_cb(uv_check_t *h)
{
    mgw_worker_t *w = h->data;
    w->accepts = 0;
    for (int i = 0; i < w->nlisteners && !w->shutting_down; i++) {
        listener_ctx_t *ctx = w->listeners[i].data;
        if (!ctx->deferred) continue;
        ctx->deferred = 0;
        w->accepts++;
        mgw__conn_accept(w, (uv_stream_t *)&w->listeners[i], ctx->idx);
    }
}

static void listener_closed(uv_handle_t *h)
{
    free(h->data);
}

static void force_close_cb(uv_timer_t *t)
{
    mgw_worker_t *w = t->data;
    int n = 0;
    for (mgw_conn_t *c = w->conns, *next; c; c = next) {
        next = c->next;
        mgw__conn_close(c);
        n++;
    }
    if (n) mgw_log_warn("shutdown timeout: closed %d busy connection(s)", n);
}

/*
 * MGW_MSG_SHUTDOWN, graceful shutdown: stop accepting, close idle connections, let busy
 * ones finish (up to shutdown_timeout), and close the mailbox, so that the loop ends when
 * the last connection does.
 */
static void shutdown_run(void *owner, mgw_msg_t *msg)
{
    mgw_worker_t *w = owner;
    free(msg);
    if (w->shutting_down) return;
    w->shutting_down = 1;
    for (int i = 0; i < w->nlisteners; i++)
        uv_close((uv_handle_t *)&w->listeners[i], listener_closed);
    EACH_OPS(worker_stop, 1, (w));
    for (mgw_conn_t *c = w->conns, *next; c; c = next) {
        next = c->next;
        mgw__conn_shutdown(c);
    }
    uv_timer_start(&w->shutdown_timer, force_close_cb, w->gen->shutdown_timeout_ms, 0);
    uv_unref((uv_handle_t *)&w->shutdown_timer);
    uv_close((uv_handle_t *)&w->accept_check, NULL);
    mgw_mailbox_close(w->mailbox);
}

static void shutdown_drop(mgw_msg_t *msg)
{
    free(msg);
}

static const mgw_msg_kind_t shutdown_kind = {"shutdown", shutdown_run, shutdown_drop};

static void worker_main(void *arg)
{
    mgw_worker_t *w = arg;
    mgw_log_set_worker(w->id);
    mgw_stat_thread(w->id);
    EACH_OPS(worker_start, 0, (w));
    uv_run(&w->loop, UV_RUN_DEFAULT);
    /* Every connection is gone: the layers let go of what requests used (the worker's
     * generation, whose access log flushes), and the loop runs once more for what that
     * closed. */
    EACH_OPS(worker_end, 1, (w));
    uv_close((uv_handle_t *)&w->shutdown_timer, NULL);
    uv_run(&w->loop, UV_RUN_DEFAULT);
    EACH_OPS(worker_free, 1, (w));
    mgw__rbuf_drain();
    mgw_buf_free(&w->log_line);
    int rc = uv_loop_close(&w->loop);
    if (rc != 0) mgw_log_error("event loop closed with handles still open: %s", uv_strerror(rc));
}

static void worker_init(mgw_worker_t *w, int id, mgw_gen_t *gen, const int *fds)
{
    w->id = id;
    w->gen = gen;
    uv_loop_init(&w->loop);
    w->mailbox = mgw_mailbox_create(&w->loop, w);
    uv_timer_init(&w->loop, &w->shutdown_timer);
    w->shutdown_timer.data = w;
    uv_check_init(&w->loop, &w->accept_check);
    w->accept_check.data = w;
    uv_check_start(&w->accept_check, accept_check_cb);
    uv_unref((uv_handle_t *)&w->accept_check);
    seed(w);
    w->nlisteners = gen->nlisten;
    w->listeners = mgw_calloc((size_t)(gen->nlisten ? gen->nlisten : 1), sizeof(uv_tcp_t));
    for (int i = 0; i < gen->nlisten; i++) {
        listener_ctx_t *ctx = mgw_calloc(1, sizeof(*ctx));
        ctx->w = w;
        ctx->idx = i;
        uv_tcp_init(&w->loop, &w->listeners[i]);
        w->listeners[i].data = ctx;
        uv_tcp_open(&w->listeners[i], fds[i]);
        uv_listen((uv_stream_t *)&w->listeners[i], 511, on_connection);
    }
}

static mgw_worker_t *workers;
static int nworkers;
/* The main thread's worker (id 0): its loop is the main loop (signals, reloads), and the
 * management listener's connections are its client connections. */
static mgw_worker_t main_w;
static uv_timer_t quota_timer;

int mgw_worker_count(void)
{
    return nworkers;
}

uint64_t mgw_worker_open_connections(void)
{
    uint64_t n = 0;
    for (int i = 0; i < nworkers && workers; i++)
        n += __atomic_load_n(&workers[i].nconns, __ATOMIC_RELAXED);
    return n;
}

int mgw_worker_send(int i, mgw_msg_t *msg)
{
    if (i < 0 || i >= nworkers) return MGW_EINVAL;
    return mgw_mailbox_send(workers[i].mailbox, msg);
}

/* Quota counters reach the disk at least every second. */
static void quota_flush_cb(uv_timer_t *t)
{
    (void)t;
    mgw_quota_flush();
}

static void signal_cb(uv_signal_t *s, int signum)
{
    mgw_log_info("received %s, shutting down gracefully", signum == SIGTERM ? "SIGTERM" : "SIGINT");
    for (int i = 0; i < nworkers; i++) {
        mgw_msg_t *m = mgw_calloc(1, sizeof(*m));
        m->type = MGW_MSG_SHUTDOWN;
        if (mgw_worker_send(i, m) != 0) free(m); /* shutting down already */
    }
    uv_close((uv_handle_t *)s, NULL);
    if (!uv_is_closing((uv_handle_t *)&quota_timer)) uv_close((uv_handle_t *)&quota_timer, NULL);
    uv_signal_t *other = s->data;
    if (!uv_is_closing((uv_handle_t *)other)) uv_close((uv_handle_t *)other, NULL);
    EACH_OPS(server_stop, 1, ());
}

/* The main loop has ended and the layers have let go of the main thread's worker. */
static void name_handle(uv_handle_t *h, void *arg)
{
    mgw_buf_t *b = arg;
    mgw_buf_printf(b, " %s%s", uv_handle_type_name(h->type), uv_is_closing(h) ? "(closing)" : "");
}

static void main_end(void)
{
    if (uv_loop_close(&main_w.loop) != 0) { /* a layer left a handle open: say which */
        mgw_buf_t b = {0};
        uv_walk(&main_w.loop, name_handle, &b);
        mgw_log_warn("the main loop ends with handles open:%.*s", (int)b.n, b.p ? b.p : "");
        mgw_buf_free(&b);
    }
    mgw__rbuf_drain(); /* the management connections' read buffers */
    mgw_buf_free(&main_w.log_line);
    memset(&main_w, 0, sizeof(main_w));
}

/* Closes the listening sockets opened for the workers (a failed start). */
static void close_fds(int *fds, int n)
{
    for (int k = 0; k < n; k++)
        close(fds[k]);
    free(fds);
}

int mgw_server_run(mgw_gen_t *gen)
{
    signal(SIGPIPE, SIG_IGN);
    nworkers = gen->workers;
    mgw_stat_init(nworkers + 1);
    /* Open every socket before any thread starts, so a port in use fails the start. */
    int *fds = mgw_calloc((size_t)(nworkers * (gen->nlisten ? gen->nlisten : 1)), sizeof(int));
    for (int i = 0; i < nworkers; i++) {
        for (int j = 0; j < gen->nlisten; j++) {
            int fd = mgw__open_listener(&gen->listen[j]);
            if (fd < 0) {
                mgw_log_error("%s: listen[%d]: cannot listen on %s:%d: %s", gen->file, j + 1,
                              gen->listen[j].address, gen->listen[j].port, strerror(-fd));
                close_fds(fds, i * gen->nlisten + j);
                mgw_gen_unref(gen);
                return MGW_EIO;
            }
            fds[i * gen->nlisten + j] = fd;
        }
    }

    /* The main thread's worker, and the layers' main-thread parts on its loop (the
     * management listener among them): one that cannot start fails the start, and the
     * ones started before it are undone. */
    uv_loop_t *main_loop = &main_w.loop;
    uv_loop_init(main_loop);
    main_w.gen = gen;
    seed(&main_w);
    int started = 0, rc = 0;
    for (; started < nops; started++) {
        if (ops[started]->server_start == NULL) continue;
        if ((rc = ops[started]->server_start(&main_w, gen)) != 0) break;
    }
    if (rc != 0) {
        for (int i = started - 1; i >= 0; i--)
            if (ops[i]->server_stop) ops[i]->server_stop();
        uv_run(main_loop, UV_RUN_DEFAULT);
        for (int i = started - 1; i >= 0; i--)
            if (ops[i]->server_free) ops[i]->server_free();
        main_end();
        close_fds(fds, nworkers * gen->nlisten);
        mgw_gen_unref(gen);
        return rc;
    }

    uv_signal_t sigterm, sigint;
    uv_signal_init(main_loop, &sigterm);
    uv_signal_init(main_loop, &sigint);
    sigterm.data = &sigint;
    sigint.data = &sigterm;
    uv_signal_start(&sigterm, signal_cb, SIGTERM);
    uv_signal_start(&sigint, signal_cb, SIGINT);
    uv_timer_init(main_loop, &quota_timer);
    uv_timer_start(&quota_timer, quota_flush_cb, 1000, 1000);

    mgw_mailbox_kind(MGW_MSG_SHUTDOWN, &shutdown_kind);
    workers = mgw_calloc((size_t)nworkers, sizeof(mgw_worker_t));
    for (int i = 0; i < nworkers; i++)
        worker_init(&workers[i], i + 1, gen, fds + i * gen->nlisten);
    free(fds);
    for (int j = 0; j < gen->nlisten; j++)
        mgw_log_info("listening on %s:%d%s%s", gen->listen[j].address, gen->listen[j].port,
                     gen->listen[j].api ? " for API " : "",
                     gen->listen[j].api ? gen->listen[j].api->id : "");
    mgw_log_info("moongate started with %d worker(s)", nworkers);
    for (int i = 0; i < nworkers; i++)
        uv_thread_create(&workers[i].thread, worker_main, &workers[i]);

    uv_run(main_loop, UV_RUN_DEFAULT);
    for (int i = 0; i < nworkers; i++)
        uv_thread_join(&workers[i].thread);
    mgw_quota_flush(); /* what the drained requests counted */
    for (int i = 0; i < nworkers; i++) {
        mgw_mailbox_free(workers[i].mailbox);
        free(workers[i].listeners);
    }
    free(workers);
    workers = NULL;
    EACH_OPS(server_free, 1, ());
    main_end();
    mgw_gen_unref(gen);
    mgw_log_info("moongate stopped");
    return 0;
}
