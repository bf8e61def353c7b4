/*
 * Hot reload (see reload.h). The main thread builds the new generation with the same
 * loader as at start-up, so a bad file is rejected with the same messages and the old
 * generation keeps serving. A good one is sent to each worker as an MGW_MSG_RELOAD
 * message through the worker's mailbox; each worker loads its policies, swaps it in for
 * new requests and acknowledges; the reload is reported done when every worker has.
 */
#include "ctl/reload.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/jwt.h"
#include "base/err.h"
#include "base/log.h"
#include "base/stat.h"
#include "cluster/cluster.h"
#include "conf/config.h"
#include "ctl/manage.h"
#include "gw/metrics.h"
#include "gw/req_int.h"
#include "ws/ws.h"
#include "lua/lua_int.h"
#include "net/mailbox.h"

/* ---- worker side ---- */

/* Called by the request core once wg is retired and its last request has ended. */
static void wgen_close(mgw_wgen_t *wg)
{
    mgw_lua_unload_gen(wg->w->lua, wg->gen);
    mgw_accesslog_close(wg->alog); /* flushes; frees itself when its writes are done */
    mgw_gen_unref(wg->gen);
    free(wg);
}

static mgw_wgen_t *wgen_open(mgw_worker_t *w, mgw_gen_t *gen)
{
    mgw_wgen_t *wg = mgw_calloc(1, sizeof(*wg));
    wg->w = w;
    wg->gen = gen;
    wg->alog = mgw_accesslog_create(&w->loop, gen);
    wg->close = wgen_close;
    mgw_lua_load_gen(w->lua, gen);
    mgw_jwt_gen_installed(w, gen); /* the first fetch of its remote JWT keys */
    return wg;
}

void mgw__reload_worker_start(mgw_worker_t *w, mgw_gen_t *gen)
{
    mgw_gen_ref(gen);
    w->wgen = wgen_open(w, gen);
    w->gen = gen;
}

void mgw__reload_worker_stop(mgw_worker_t *w)
{
    mgw__wgen_retire(w->wgen);
    w->wgen = NULL;
}

static void ack(void);

/* MGW_MSG_RELOAD, on the worker: msg->data is the new generation, with one reference
 * for this worker. */
static void reload_run(void *owner, mgw_msg_t *msg)
{
    mgw_worker_t *w = owner;
    mgw_gen_t *g = msg->data;
    free(msg);
    if (w->shutting_down) {
        mgw_gen_unref(g);
    } else {
        mgw_wgen_t *old = w->wgen;
        w->wgen = wgen_open(w, g); /* takes the reference the main thread gave */
        w->gen = g;
        mgw_ws_generation_changed(w); /* open WebSocket connections move to it */
        mgw__wgen_retire(old);
    }
    ack();
}

/* The worker closed its mailbox (shutdown) before the message ran: it will not swap,
 * and does not hold the reload up. */
static void reload_drop(mgw_msg_t *msg)
{
    mgw_gen_unref(msg->data);
    free(msg);
    ack();
}

static const mgw_msg_kind_t reload_kind = {"reload", reload_run, reload_drop};

/* ---- main thread ---- */

static struct {
    uv_loop_t *loop;
    int nworkers;
    mgw_gen_t *current; /* the main thread's reference */
    uv_signal_t sighup;
    uv_async_t done; /* a worker acknowledged */
    uv_mutex_t lock; /* guards closed against workers' acks */
    int closed;
    atomic_int pending; /* workers that have not swapped yet */
    int in_progress, again;
    uint64_t reloads[2]; /* rejected, accepted (moongate_reloads_total) */
    mgw_reload_cb cb;
    void *ud;
    /* watch = true */
    uv_fs_poll_t **polls;
    int npolls;
    uv_timer_t debounce;
} R;

static void ack(void)
{
    atomic_fetch_sub(&R.pending, 1);
    uv_mutex_lock(&R.lock);
    if (!R.closed) uv_async_send(&R.done);
    uv_mutex_unlock(&R.lock);
}

static void log_cb(void *ud, int ok, const char *text)
{
    (void)ud;
    (void)ok;
    (void)text; /* the reload logged its outcome already */
}

static void start_or_defer(const char *why)
{
    if (R.closed) return;
    if (mgw__reload_start(why, log_cb, NULL) != 0) R.again = 1; /* after the one under way */
}

static void done_cb(uv_async_t *a)
{
    (void)a;
    if (!R.in_progress || atomic_load(&R.pending) > 0) return;
    R.in_progress = 0;
    char text[512];
    snprintf(text, sizeof(text), "%s: reloaded (generation %d)\n", R.current->file, R.current->id);
    mgw_log_info("%s: reloaded: generation %d serves new requests", R.current->file, R.current->id);
    mgw_reload_cb cb = R.cb;
    R.cb = NULL;
    if (cb) cb(R.ud, 1, text);
    if (R.again) {
        R.again = 0;
        start_or_defer("changed during a reload");
    }
}

static int same_listener(const mgw_listen_t *a, const mgw_listen_t *b)
{
    if (a == NULL || b == NULL) return a == b;
    return a->port == b->port && strcmp(a->address, b->address) == 0;
}

/* Why the new generation g cannot replace the running one, or NULL. */
static const char *incompatible(const mgw_gen_t *old, const mgw_gen_t *g, char *buf, size_t n)
{
    if (g->nlisten != old->nlisten) {
        snprintf(buf, n, "%s: listen: changing the listeners needs a restart (%d now, %d running)",
                 g->file, g->nlisten, old->nlisten);
        return buf;
    }
    for (int i = 0; i < g->nlisten; i++) {
        if (!same_listener(&g->listen[i], &old->listen[i])) {
            snprintf(buf, n,
                     "%s: listen[%d]: changing the listeners needs a restart (%s:%d, running "
                     "%s:%d)",
                     g->file, i + 1, g->listen[i].address, g->listen[i].port,
                     old->listen[i].address, old->listen[i].port);
            return buf;
        }
    }
    if (!same_listener(g->management, old->management)) {
        snprintf(buf, n, "%s: management: changing the management listener needs a restart",
                 g->file);
        return buf;
    }
    if (g->workers != old->workers) {
        snprintf(buf, n,
                 "%s: workers: changing the number of workers needs a restart (%d now, "
                 "%d running)",
                 g->file, g->workers, old->workers);
        return buf;
    }
    return NULL;
}

static void watch_start(const mgw_gen_t *g);
static void watch_stop(void);

int mgw__reload_start(const char *why, mgw_reload_cb cb, void *ud)
{
    if (R.closed || R.in_progress) return MGW_EINVAL;
    mgw_log_info("%s: reloading (%s)", R.current->file, why);
    mgw_buf_t errors = {0};
    mgw_gen_t *g = NULL;
    if (mgw_config_load(R.current->file, R.current->prefix, 0, &g, &errors) != 0) {
        const char *text = errors.p ? errors.p : "invalid configuration\n";
        for (const char *s = text; *s;) {
            const char *e = strchr(s, '\n');
            int len = e ? (int)(e - s) : (int)strlen(s);
            mgw_log_error("reload rejected, generation %d keeps serving: %.*s", R.current->id, len,
                          s);
            s += len + (e ? 1 : 0);
        }
        R.reloads[0]++;
        cb(ud, 0, text);
        mgw_buf_free(&errors);
        return 0;
    }
    mgw_buf_free(&errors);
    char buf[512];
    const char *bad = incompatible(R.current, g, buf, sizeof(buf) - 1);
    if (bad) {
        mgw_log_error("reload rejected, generation %d keeps serving: %s", R.current->id, bad);
        strcat(buf, "\n");
        R.reloads[0]++;
        cb(ud, 0, buf);
        mgw_gen_unref(g);
        return 0;
    }
    mgw_jwt_gen_prepare(g); /* before any worker sees it */
    mgw_metrics_gen_prepare(g);
    mgw_ws_gen_prepare(g);
    mgw_cluster_gen(g); /* the shared parts' view of it; a changed `cluster` is logged */
    R.reloads[1]++;
    R.in_progress = 1;
    R.cb = cb;
    R.ud = ud;
    atomic_store(&R.pending, R.nworkers);
    for (int i = 0; i < R.nworkers; i++) {
        mgw_msg_t *m = mgw_calloc(1, sizeof(*m));
        m->type = MGW_MSG_RELOAD;
        m->data = g;
        mgw_gen_ref(g);
        if (mgw_worker_send(i, m) != 0) { /* the worker is shutting down */
            mgw_gen_unref(g);
            free(m);
            ack();
        }
    }
    mgw_gen_unref(R.current);
    R.current = g;
    mgw_log_configure(g->log_level, g->log_json);
    mgw__manage_set_gen(g);
    watch_stop();
    watch_start(g);
    return 0;
}

static void sighup_cb(uv_signal_t *s, int signum)
{
    (void)s;
    (void)signum;
    start_or_defer("SIGHUP");
}

/* ---- watch = true ---- */

static void debounce_cb(uv_timer_t *t)
{
    (void)t;
    start_or_defer("a watched file changed");
}

static void poll_cb(uv_fs_poll_t *h, int status, const uv_stat_t *prev, const uv_stat_t *curr)
{
    (void)h;
    (void)status;
    (void)prev;
    (void)curr;
    /* Editors write in several steps: reload once things have been quiet for 200 ms. */
    uv_timer_start(&R.debounce, debounce_cb, 200, 0);
}

static void poll_closed(uv_handle_t *h)
{
    free(h);
}

static void watch_start(const mgw_gen_t *g)
{
    if (!g->watch || R.closed) return;
    R.polls = mgw_calloc((size_t)(g->nwatch ? g->nwatch : 1), sizeof(uv_fs_poll_t *));
    for (int i = 0; i < g->nwatch; i++) {
        uv_fs_poll_t *p = mgw_malloc(sizeof(*p));
        uv_fs_poll_init(R.loop, p);
        uv_fs_poll_start(p, poll_cb, g->watch_files[i], 500);
        R.polls[R.npolls++] = p;
    }
}

static void watch_stop(void)
{
    for (int i = 0; i < R.npolls; i++)
        uv_close((uv_handle_t *)R.polls[i], poll_closed);
    free(R.polls);
    R.polls = NULL;
    R.npolls = 0;
}

/* server_start: the management listener (served by the main thread's worker main_w),
 * SIGHUP and the watcher of gen's files. */
static int server_start(mgw_worker_t *main_w, mgw_gen_t *gen)
{
    int mfd = gen->management ? mgw__open_listener(gen->management) : -1;
    if (mfd < 0 && gen->management) {
        mgw_log_error("%s: management: cannot listen on %s:%d: %s", gen->file,
                      gen->management->address, gen->management->port, strerror(-mfd));
        return MGW_EIO;
    }
    mgw_mailbox_kind(MGW_MSG_RELOAD, &reload_kind);
    mgw_jwt_gen_prepare(gen); /* before the workers start */
    mgw_metrics_gen_prepare(gen);
    mgw_ws_gen_prepare(gen);
    uv_loop_t *loop = &main_w->loop;
    R.loop = loop;
    R.nworkers = mgw_worker_count();
    mgw_gen_ref(gen);
    R.current = gen;
    mgw_log_configure(gen->log_level, gen->log_json);
    uv_mutex_init(&R.lock);
    uv_async_init(loop, &R.done, done_cb);
    uv_signal_init(loop, &R.sighup);
    uv_signal_start(&R.sighup, sighup_cb, SIGHUP);
    uv_timer_init(loop, &R.debounce);
    watch_start(gen);
    if (mfd >= 0) mgw__manage_start(main_w, mfd, gen);
    return 0;
}

/* server_stop, shutdown started: closes the reload handles; no reload starts after this. */
static void server_stop(void)
{
    if (R.closed) return;
    uv_mutex_lock(&R.lock);
    R.closed = 1;
    uv_mutex_unlock(&R.lock);
    R.cb = NULL; /* a reload under way is not reported */
    uv_close((uv_handle_t *)&R.done, NULL);
    uv_close((uv_handle_t *)&R.sighup, NULL);
    uv_close((uv_handle_t *)&R.debounce, NULL);
    watch_stop();
    mgw__manage_close();
}

const mgw_gen_t *mgw__reload_current(void)
{
    return R.current;
}

uint64_t mgw__reload_count(int accepted)
{
    return R.reloads[accepted ? 1 : 0];
}

/* server_free, after the workers have stopped: drops the main thread's generation. */
static void server_free(void)
{
    uv_mutex_destroy(&R.lock);
    mgw__manage_free();
    mgw_gen_unref(R.current);
    R.current = NULL;
    mgw_metrics_free(); /* every generation is gone: nothing counts any more */
    mgw_stat_free();
}

/* The worker's generation: its first one when it starts, retired when its loop has run
 * dry (the Lua state it loads policies into is started before and freed after). */
static void worker_start(mgw_worker_t *w)
{
    mgw__reload_worker_start(w, w->gen);
}

const mgw_worker_ops_t mgw__reload_worker_ops = {
    .name = "reload",
    .server_start = server_start,
    .worker_start = worker_start,
    .worker_end = mgw__reload_worker_stop,
    .server_stop = server_stop,
    .server_free = server_free,
};
