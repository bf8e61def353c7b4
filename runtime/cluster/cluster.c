/*
 * The node's link to Redis (cluster.h): two connections on the main loop through
 * hiredis's libuv adapter, their set-up (AUTH, SELECT, SUBSCRIBE), a watchdog that marks
 * Redis down when an answer is late, reconnection with backoff, the heartbeat that counts
 * the nodes alive, and the parts' timers.
 *
 * A connection's life: connect -> (AUTH) -> (SELECT) -> PING -> ready; the subscriber
 * instead SUBSCRIBEs its channels. Any failure (refused, reset, an error reply during
 * set-up, an answer later than redis.timeout_ms) drops the connection; hiredis then
 * calls every pending callback with NULL, and a retry timer connects again (100 ms,
 * doubling to 1 s). Redis is "up" while both connections are ready; the parts hear of
 * each change once, and the error log says it once.
 */
#include "cluster/cluster.h"

#include <hiredis/adapters/libuv.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/crypto.h"
#include "base/err.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/stat.h"
#include "gw/req_int.h" /* the main thread's worker: its loop */

#define MAX_PARTS 8
#define MAX_CHANNELS 16
#define RETRY_MIN_MS 100
#define RETRY_MAX_MS 1000
#define HEARTBEAT_MS 1000
#define NODE_TTL_MS 5000 /* a node not heard of for this long is not counted alive */

/* One connection to Redis. */
typedef struct {
    const char *name; /* "command" or "subscriber" */
    redisAsyncContext *ac;
    int connected; /* the connect callback said so */
    int ready;
    int setup;            /* set-up replies still awaited */
    uint64_t pending;     /* commands sent and not answered */
    uint64_t progress_ms; /* the last answer, or when the oldest pending command was sent */
    uv_timer_t retry;
    uint64_t backoff_ms;
    char why[160]; /* why it last failed */
} link_t;

typedef struct {
    char name[200]; /* with the prefix */
    void (*cb)(const char *msg, size_t n, void *ud);
    void *ud;
    int confirmed; /* on the current subscriber connection */
} channel_t;

/* A command on its way: what its answer goes to. */
typedef struct {
    link_t *link;
    mgw_redis_cb cb;
    void *ud;
    mgw_redis_script_t *script; /* an EVALSHA: NOSCRIPT forgets that the script is loaded */
} pending_t;

static struct {
    int enabled;
    mgw_cluster_conf_t conf; /* copied: the generation it came from may be freed */
    char where[300];         /* "address:port" for the log */
    uv_loop_t *loop;
    link_t cmd, sub;
    atomic_int up;
    int told; /* what the log and the parts last heard: 1, 0, or -1 (nothing yet) */
    atomic_int nodes;
    int stopping;
    unsigned epoch; /* command connections made so far: scripts are loaded once per epoch */
    uint64_t last_beat_ms;
    uv_timer_t tick, watch, bound;
    mgw_mailbox_t *mailbox;
    const mgw_cluster_part_t *parts[MAX_PARTS];
    int nparts;
    channel_t channels[MAX_CHANNELS];
    int nchannels;
    mgw_stat_t s_up, s_nodes, s_ok, s_err, s_lost, s_down;
} cl;

/* ---- metrics (README "Metrics") ---- */

static mgw_stat_family_t f_up = {
    .name = "moongate_cluster_redis_up",
    .type = "gauge",
    .help = "1 while the node reaches Redis (both connections ready).",
};
static mgw_stat_family_t f_nodes = {
    .name = "moongate_cluster_nodes",
    .type = "gauge",
    .help = "Nodes alive in the cluster, as Redis last said.",
};
static mgw_stat_family_t f_cmds = {
    .name = "moongate_cluster_redis_commands_total",
    .type = "counter",
    .help = "Commands sent to Redis, by outcome (ok, error reply, lost).",
    .labels = {"outcome"},
};
static mgw_stat_family_t f_down = {
    .name = "moongate_cluster_redis_down_total",
    .type = "counter",
    .help = "Times the node lost Redis.",
};

static void stats_init(void)
{
    cl.s_up = mgw_stat_series(&f_up, NULL);
    cl.s_nodes = mgw_stat_series(&f_nodes, NULL);
    cl.s_ok = mgw_stat_series(&f_cmds, (const char *[]){"ok"});
    cl.s_err = mgw_stat_series(&f_cmds, (const char *[]){"error"});
    cl.s_lost = mgw_stat_series(&f_cmds, (const char *[]){"lost"});
    cl.s_down = mgw_stat_series(&f_down, NULL);
}

/* ---- state ---- */

static uint64_t now_ms(void)
{
    return uv_now(cl.loop);
}

int mgw_cluster_enabled(void)
{
    return cl.enabled;
}

int mgw_cluster_up(void)
{
    return atomic_load_explicit(&cl.up, memory_order_acquire);
}

const char *mgw_cluster_node(void)
{
    return cl.enabled ? cl.conf.node_id : "";
}

int mgw_cluster_nodes(void)
{
    if (cl.conf.expected_nodes > 0) return cl.conf.expected_nodes;
    int n = atomic_load_explicit(&cl.nodes, memory_order_relaxed);
    return n > 0 ? n : 1;
}

uv_loop_t *mgw_cluster_loop(void)
{
    return cl.loop;
}

const mgw_cluster_conf_t *mgw_cluster_conf(void)
{
    return cl.enabled ? &cl.conf : NULL;
}

size_t mgw_cluster_key(char *out, size_t cap, const char *name)
{
    int n = snprintf(out, cap, "%s:%s", cl.enabled ? cl.conf.key_prefix : "moongate", name);
    if (n < 0) n = 0;
    return (size_t)n < cap ? (size_t)n : cap ? cap - 1 : 0;
}

void mgw_cluster_digest_key(char out[MGW_CLUSTER_DIGEST_KEY], const char *kind,
                            const uint8_t ns[32], const void *id, size_t n)
{
    /* kind is a short literal: "<prefix (at most 64)>:<kind>:" leaves room for the rest */
    uint8_t d[32];
    char name[16 + 1 + 16 + 1 + 64 + 1];
    int k = snprintf(name, 18, "%s:", kind);
    mgw_hex(ns, 8, name + k);
    name[k + 16] = ':';
    mgw_sha256(id, n, d);
    mgw_hex(d, 32, name + k + 17);
    mgw_cluster_key(out, MGW_CLUSTER_DIGEST_KEY, name);
}

void mgw_cluster_part_register(const mgw_cluster_part_t *part)
{
    if (cl.nparts < MAX_PARTS) cl.parts[cl.nparts++] = part;
}

#define EACH_PART(fn, args)                                                                        \
    for (int i_ = 0; i_ < cl.nparts; i_++)                                                         \
        if (cl.parts[i_]->fn) cl.parts[i_]->fn args;

/* Both connections ready or not: tells the parts and the log once per change. */
static void update_state(void)
{
    int up = cl.cmd.ready && cl.sub.ready;
    if (up == cl.told) return;
    if (!up && cl.told < 0 && !cl.cmd.why[0] && !cl.sub.why[0]) return; /* still starting */
    cl.told = up;
    atomic_store_explicit(&cl.up, up, memory_order_release);
    mgw_stat_set(cl.s_up, up);
    if (up) {
        mgw_log_info("cluster: Redis at %s is reachable (node %s, database %d)", cl.where,
                     cl.conf.node_id, cl.conf.redis_database);
        cl.last_beat_ms = 0; /* count the nodes now */
    } else {
        mgw_stat_add(cl.s_down, 1);
        const char *why = cl.cmd.why[0] ? cl.cmd.why : cl.sub.why;
        mgw_log_error("cluster: Redis at %s is unreachable (%s): this node throttles at "
                      "limit / %d and counts quotas and rate rules alone until it is back",
                      cl.where, why, mgw_cluster_nodes());
    }
    EACH_PART(state, (up));
}

/* ---- connections ---- */

static void connect_link(link_t *l);

static void retry_cb(uv_timer_t *t)
{
    link_t *l = t->data;
    if (!cl.stopping) connect_link(l);
}

/* The connection is gone (hiredis frees it): try again later. */
static void link_lost(link_t *l, const char *why)
{
    l->ac = NULL;
    l->ready = 0;
    l->setup = 0;
    l->pending = 0;
    l->connected = 0;
    if (why && why[0]) snprintf(l->why, sizeof(l->why), "%s", why);
    if (cl.stopping) { /* leaving: nothing to tell; the last one ends shutdown's bound */
        if (cl.cmd.ac == NULL && cl.sub.ac == NULL) uv_timer_stop(&cl.bound);
        return;
    }
    update_state();
    uv_timer_start(&l->retry, retry_cb, l->backoff_ms, 0);
    l->backoff_ms = l->backoff_ms * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : l->backoff_ms * 2;
}

/* Drops the connection on purpose (a late answer, a failed set-up): hiredis calls what
 * is pending with NULL; the retry connects again. */
static void link_drop(link_t *l, const char *why)
{
    redisAsyncContext *ac = l->ac;
    if (ac == NULL) return;
    l->ac = NULL;
    ac->data = NULL;    /* its callbacks from now on are not this link's */
    redisAsyncFree(ac); /* deferred by hiredis when called from one of its callbacks */
    link_lost(l, why);
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    link_t *l = ac->data;
    if (l == NULL || l->ac != ac) return;
    link_lost(l, status == REDIS_OK || ac->errstr[0] == '\0' ? "connection lost" : ac->errstr);
}

static void ready(link_t *l)
{
    l->ready = 1;
    l->why[0] = '\0';
    l->backoff_ms = RETRY_MIN_MS;
    update_state();
}

/* A set-up reply (AUTH, SELECT, PING, SUBSCRIBE's confirmation): an error drops. */
static void setup_cb(redisAsyncContext *ac, void *r, void *priv)
{
    (void)priv;
    link_t *l = ac->data;
    redisReply *reply = r;
    if (l == NULL || l->ac != ac) return;
    if (l->pending) l->pending--;
    l->progress_ms = now_ms();
    if (reply == NULL) return; /* the connection is going: on_disconnect says why */
    if (reply->type == REDIS_REPLY_ERROR) {
        char why[160];
        snprintf(why, sizeof(why), "%s: %.*s", l->name, (int)reply->len, reply->str);
        link_drop(l, why);
        return;
    }
    if (--l->setup == 0 && !l->ready) ready(l);
}

static int send_setup(link_t *l, int argc, const char **argv)
{
    if (l->pending++ == 0) l->progress_ms = now_ms();
    l->setup++;
    return redisAsyncCommandArgv(l->ac, setup_cb, NULL, argc, argv, NULL);
}

static void subscribe_one(channel_t *c);

static void on_connect(const redisAsyncContext *cac, int status)
{
    redisAsyncContext *ac = (redisAsyncContext *)cac;
    link_t *l = ac->data;
    if (l == NULL || l->ac != ac) return;
    if (status != REDIS_OK) {
        char why[160];
        snprintf(why, sizeof(why), "connect: %s", ac->errstr[0] ? ac->errstr : "failed");
        link_lost(l, why); /* hiredis frees ac after this returns */
        return;
    }
    l->connected = 1;
    l->pending = 0; /* the connect was answered */
    l->progress_ms = now_ms();
    if (cl.conf.redis_password) send_setup(l, 2, (const char *[]){"AUTH", cl.conf.redis_password});
    if (l == &cl.cmd) {
        cl.epoch++;
        char db[16];
        snprintf(db, sizeof(db), "%d", cl.conf.redis_database);
        if (cl.conf.redis_database) send_setup(l, 2, (const char *[]){"SELECT", db});
        send_setup(l, 1, (const char *[]){"PING"});
    } else {
        send_setup(l, 1, (const char *[]){"PING"});
        for (int i = 0; i < cl.nchannels; i++) {
            cl.channels[i].confirmed = 0;
            subscribe_one(&cl.channels[i]);
        }
    }
}

static void connect_link(link_t *l)
{
    if (l->ac) return;
    redisAsyncContext *ac = redisAsyncConnect(cl.conf.redis_address, cl.conf.redis_port);
    if (ac == NULL || ac->err) {
        char why[160];
        snprintf(why, sizeof(why), "connect: %s", ac ? ac->errstr : "out of memory");
        if (ac) redisAsyncFree(ac);
        link_lost(l, why);
        return;
    }
    if (redisLibuvAttach(ac, cl.loop) != REDIS_OK) {
        redisAsyncFree(ac);
        link_lost(l, "connect: cannot watch the socket");
        return;
    }
    ac->data = l;
    l->ac = ac;
    l->pending = 1; /* the connect itself: the watchdog bounds it */
    l->progress_ms = now_ms();
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
}

/* The watchdog: a connection whose oldest awaited answer is later than the timeout. */
static void watch_cb(uv_timer_t *t)
{
    (void)t;
    link_t *links[] = {&cl.cmd, &cl.sub};
    for (int i = 0; i < 2; i++) {
        link_t *l = links[i];
        if (l->ac && l->pending && now_ms() - l->progress_ms > cl.conf.timeout_ms) {
            char why[160];
            snprintf(why, sizeof(why), "no answer in %llu ms",
                     (unsigned long long)cl.conf.timeout_ms);
            link_drop(l, why);
        }
    }
}

/* ---- commands ---- */

static void reply_cb(redisAsyncContext *ac, void *r, void *priv)
{
    pending_t *p = priv;
    link_t *l = p->link;
    redisReply *reply = r;
    if (l->ac == ac && l->pending) l->pending--;
    if (reply) l->progress_ms = now_ms();
    mgw_stat_add(reply == NULL                      ? cl.s_lost
                 : reply->type == REDIS_REPLY_ERROR ? cl.s_err
                                                    : cl.s_ok,
                 1);
    if (reply && reply->type == REDIS_REPLY_ERROR && p->script &&
        strncmp(reply->str, "NOSCRIPT", 8) == 0)
        p->script->loaded = 0; /* flushed: load it again on the next call */
    if (p->cb) p->cb(reply, p->ud);
    free(p);
}

static int send_cmd(link_t *l, mgw_redis_cb cb, void *ud, mgw_redis_script_t *script, int argc,
                    const char **argv, const size_t *lens)
{
    if (!l->ready || l->ac == NULL || cl.stopping) return MGW_ECLOSED;
    pending_t *p = mgw_malloc(sizeof(*p));
    *p = (pending_t){l, cb, ud, script};
    if (redisAsyncCommandArgv(l->ac, reply_cb, p, argc, argv, lens) != REDIS_OK) {
        free(p);
        return MGW_ECLOSED;
    }
    if (l->pending++ == 0) l->progress_ms = now_ms();
    return 0;
}

int mgw_cluster_cmd(mgw_redis_cb cb, void *ud, int argc, const char **argv, const size_t *lens)
{
    return send_cmd(&cl.cmd, cb, ud, NULL, argc, argv, lens);
}

int mgw_cluster_eval(mgw_redis_script_t *script, mgw_redis_cb cb, void *ud, int nkeys, int argc,
                     const char **argv, const size_t *lens)
{
    if (!cl.cmd.ready) return MGW_ECLOSED;
    if (script->sha[0] == '\0') {
        uint8_t d[20];
        mgw_sha1(script->source, strlen(script->source), d);
        mgw_hex(d, 20, script->sha);
    }
    if (script->loaded != cl.epoch) { /* once per connection, before its first EVALSHA */
        send_cmd(&cl.cmd, NULL, NULL, NULL, 3, (const char *[]){"SCRIPT", "LOAD", script->source},
                 NULL);
        script->loaded = cl.epoch;
    }
    enum { STACK = 32 };
    const char *sv[STACK + 3];
    size_t sl[STACK + 3];
    const char **av = argc <= STACK ? sv : mgw_malloc(sizeof(*av) * (size_t)(argc + 3));
    size_t *al = argc <= STACK ? sl : mgw_malloc(sizeof(*al) * (size_t)(argc + 3));
    char nk[16];
    snprintf(nk, sizeof(nk), "%d", nkeys);
    av[0] = "EVALSHA", av[1] = script->sha, av[2] = nk;
    al[0] = 7, al[1] = 40, al[2] = strlen(nk);
    for (int i = 0; i < argc; i++) {
        av[3 + i] = argv[i];
        al[3 + i] = lens ? lens[i] : strlen(argv[i]);
    }
    int rc = send_cmd(&cl.cmd, cb, ud, script, argc + 3, av, al);
    if (av != sv) free(av);
    if (al != sl) free(al);
    return rc;
}

int mgw_cluster_publish(const char *channel, const void *msg, size_t n, mgw_redis_cb cb, void *ud)
{
    char name[200];
    size_t kn = mgw_cluster_key(name, sizeof(name), channel);
    return send_cmd(&cl.cmd, cb, ud, NULL, 3, (const char *[]){"PUBLISH", name, msg},
                    (const size_t[]){7, kn, n});
}

/* ---- pub/sub ---- */

static void message_cb(redisAsyncContext *ac, void *r, void *priv)
{
    channel_t *c = priv;
    link_t *l = ac->data;
    redisReply *reply = r;
    if (reply == NULL || l == NULL || l->ac != ac) return;
    l->progress_ms = now_ms();
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 3 ||
        reply->element[0]->type != REDIS_REPLY_STRING)
        return;
    const char *kind = reply->element[0]->str;
    if (strcmp(kind, "subscribe") == 0) {
        if (!c->confirmed) {
            c->confirmed = 1;
            if (l->pending) l->pending--;
            if (--l->setup == 0 && !l->ready) ready(l);
        }
    } else if (strcmp(kind, "message") == 0 && reply->element[2]->type == REDIS_REPLY_STRING) {
        c->cb(reply->element[2]->str, reply->element[2]->len, c->ud);
    }
}

static void subscribe_one(channel_t *c)
{
    link_t *l = &cl.sub;
    if (l->ac == NULL) return;
    if (l->pending++ == 0) l->progress_ms = now_ms();
    l->setup++;
    redisAsyncCommandArgv(l->ac, message_cb, c, 2, (const char *[]){"SUBSCRIBE", c->name}, NULL);
}

void mgw_cluster_subscribe(const char *channel, void (*cb)(const char *msg, size_t n, void *ud),
                           void *ud)
{
    if (cl.nchannels == MAX_CHANNELS) {
        mgw_log_error("cluster: more than %d channels: %s is not subscribed", MAX_CHANNELS,
                      channel);
        return;
    }
    channel_t *c = &cl.channels[cl.nchannels++];
    mgw_cluster_key(c->name, sizeof(c->name), channel);
    c->cb = cb;
    c->ud = ud;
    if (cl.sub.ac && cl.sub.connected) subscribe_one(c); /* else on_connect subscribes it */
}

/* ---- the heartbeat: this node is alive, and how many are ---- */

static mgw_redis_script_t beat_script = {
    .source = "local t = redis.call('TIME')\n"
              "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
              "redis.call('ZADD', KEYS[1], now, ARGV[1])\n"
              "redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[2]))\n"
              "return redis.call('ZCARD', KEYS[1])\n",
};

void mgw_cluster_failed(mgw_cluster_once_t *once, const char *what, const mgw_redis_reply_t *reply)
{
    if (reply == NULL || once->failing) return;
    once->failing = 1;
    if (reply->type == REDIS_REPLY_ERROR)
        mgw_log_error("cluster: %s failed in Redis: %.*s", what, (int)reply->len, reply->str);
    else
        mgw_log_error("cluster: %s failed in Redis: unexpected reply", what);
}

static void beat_cb(const mgw_redis_reply_t *r, void *ud)
{
    (void)ud;
    static mgw_cluster_once_t once;
    if (r == NULL || r->type != REDIS_REPLY_INTEGER) {
        mgw_cluster_failed(&once, "the heartbeat", r);
        return;
    }
    mgw_cluster_ok(&once);
    atomic_store_explicit(&cl.nodes, (int)r->integer, memory_order_relaxed);
    mgw_stat_set(cl.s_nodes, r->integer);
}

static void beat(void)
{
    char key[200], ttl[24];
    mgw_cluster_key(key, sizeof(key), "nodes");
    snprintf(ttl, sizeof(ttl), "%d", NODE_TTL_MS);
    mgw_cluster_eval(&beat_script, beat_cb, NULL, 1, 3, (const char *[]){key, cl.conf.node_id, ttl},
                     NULL);
}

static void tick_cb(uv_timer_t *t)
{
    (void)t;
    uint64_t now = now_ms();
    int up = mgw_cluster_up();
    if (up && now - cl.last_beat_ms >= HEARTBEAT_MS) {
        cl.last_beat_ms = now;
        beat();
    } else if (up && cl.cmd.pending == 0) {
        /* an idle link would not notice a Redis that stopped answering */
        mgw_cluster_cmd(NULL, NULL, 1, (const char *[]){"PING"}, NULL);
    }
    EACH_PART(tick, (now, up));
}

/* ---- posts from other threads ---- */

typedef struct {
    void (*fn)(void *ud);
    void *ud;
} post_t;

static void post_run(void *owner, mgw_msg_t *msg)
{
    (void)owner;
    post_t *p = msg->data;
    free(msg);
    p->fn(p->ud);
    free(p);
}

/* Queued when the mailbox closed (shutdown, on the main thread): it runs now, so that a
 * worker waiting for its answer gets one (the link is there until server_free). */
static void post_drop(mgw_msg_t *msg)
{
    post_run(NULL, msg);
}

static const mgw_msg_kind_t post_kind = {"cluster-post", post_run, post_drop};

int mgw_cluster_post(void (*fn)(void *ud), void *ud)
{
    if (!cl.enabled || cl.mailbox == NULL) return MGW_ECLOSED;
    post_t *p = mgw_malloc(sizeof(*p));
    *p = (post_t){fn, ud};
    mgw_msg_t *m = mgw_calloc(1, sizeof(*m));
    m->type = MGW_MSG_CLUSTER;
    m->data = p;
    int rc = mgw_mailbox_send(cl.mailbox, m);
    if (rc != 0) {
        free(p);
        free(m);
    }
    return rc;
}

/* ---- reloads ---- */

static int same(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a && b && strcmp(a, b) == 0);
}

void mgw_cluster_gen(mgw_gen_t *g)
{
    if (!cl.enabled && g->cluster == NULL) return;
    const mgw_cluster_conf_t *c = g->cluster;
    if (!cl.enabled || c == NULL || !same(c->node_id, cl.conf.node_id) ||
        !same(c->redis_address, cl.conf.redis_address) || c->redis_port != cl.conf.redis_port ||
        !same(c->redis_password, cl.conf.redis_password) ||
        c->redis_database != cl.conf.redis_database || !same(c->key_prefix, cl.conf.key_prefix) ||
        c->timeout_ms != cl.conf.timeout_ms || c->sync_interval_ms != cl.conf.sync_interval_ms ||
        c->expected_nodes != cl.conf.expected_nodes)
        mgw_log_warn("%s: cluster: changed; the node keeps its cluster settings until it restarts",
                     g->file);
    if (cl.enabled) EACH_PART(gen, (g));
}

/* ---- the worker ops (main thread) ---- */

static char *dup_or_null(const char *s)
{
    return s ? mgw_strdup(s) : NULL;
}

static int server_start(mgw_worker_t *main_w, mgw_gen_t *g)
{
    if (g->cluster == NULL) return 0;
    cl.enabled = 1;
    cl.conf = *g->cluster;
    cl.conf.node_id = dup_or_null(g->cluster->node_id);
    cl.conf.redis_address = dup_or_null(g->cluster->redis_address);
    cl.conf.redis_password = dup_or_null(g->cluster->redis_password);
    cl.conf.key_prefix = dup_or_null(g->cluster->key_prefix);
    snprintf(cl.where, sizeof(cl.where), "%s:%d", cl.conf.redis_address, cl.conf.redis_port);
    cl.loop = &main_w->loop;
    cl.stopping = 0;
    cl.told = -1; /* the first failure to connect is logged too */
    stats_init();
    mgw_stat_set(cl.s_up, 0);
    mgw_mailbox_kind(MGW_MSG_CLUSTER, &post_kind);
    cl.mailbox = mgw_mailbox_create(cl.loop, NULL);
    cl.cmd.name = "command";
    cl.sub.name = "subscriber";
    link_t *links[] = {&cl.cmd, &cl.sub};
    for (int i = 0; i < 2; i++) {
        uv_timer_init(cl.loop, &links[i]->retry);
        links[i]->retry.data = links[i];
        links[i]->backoff_ms = RETRY_MIN_MS;
    }
    for (int i = 0; i < cl.nparts; i++) {
        if (cl.parts[i]->start == NULL) continue;
        int rc = cl.parts[i]->start(g);
        if (rc != 0) return rc;
    }
    uv_timer_init(cl.loop, &cl.tick);
    uv_timer_start(&cl.tick, tick_cb, cl.conf.sync_interval_ms, cl.conf.sync_interval_ms);
    uv_timer_init(cl.loop, &cl.watch);
    uint64_t every = cl.conf.timeout_ms / 4 ? cl.conf.timeout_ms / 4 : 1;
    uv_timer_start(&cl.watch, watch_cb, every, every);
    mgw_log_info("cluster: node %s, Redis at %s", cl.conf.node_id, cl.where);
    connect_link(&cl.cmd);
    connect_link(&cl.sub);
    return 0;
}

static void set_ref(int ref)
{
    uv_handle_t *hs[] = {(uv_handle_t *)&cl.tick, (uv_handle_t *)&cl.watch,
                         (uv_handle_t *)&cl.cmd.retry, (uv_handle_t *)&cl.sub.retry};
    for (size_t i = 0; i < sizeof(hs) / sizeof(hs[0]); i++) {
        if (uv_is_closing(hs[i])) continue;
        ref ? uv_ref(hs[i]) : uv_unref(hs[i]);
    }
    link_t *links[] = {&cl.cmd, &cl.sub};
    for (int i = 0; i < 2; i++) {
        if (links[i]->ac == NULL || links[i]->ac->ev.data == NULL) continue;
        uv_handle_t *poll = (uv_handle_t *)&((redisLibuvEvents *)links[i]->ac->ev.data)->handle;
        ref ? uv_ref(poll) : uv_unref(poll);
    }
}

/* SIGTERM: the workers drain; the main loop must be able to end meanwhile. */
static void server_stop(void)
{
    if (!cl.enabled) return;
    set_ref(0);
    uv_timer_stop(&cl.cmd.retry);
    uv_timer_stop(&cl.sub.retry);
    if (cl.mailbox) mgw_mailbox_close(cl.mailbox);
}

/* Shutdown's bound on closing the connections: what is still open is freed now. */
static void bound_cb(uv_timer_t *t)
{
    (void)t;
    link_t *links[] = {&cl.cmd, &cl.sub};
    for (int i = 0; i < 2; i++)
        link_drop(links[i], "shutting down");
}

static void forget_node_cb(const mgw_redis_reply_t *r, void *ud)
{
    (void)r, (void)ud;
}

/* The workers have ended: the parts settle, the node leaves, the connections close once
 * their answers are in (at most redis.timeout_ms). */
static void server_free(void)
{
    if (!cl.enabled) return;
    EACH_PART(stop, ());
    char key[200];
    mgw_cluster_key(key, sizeof(key), "nodes");
    mgw_cluster_cmd(forget_node_cb, NULL, 3, (const char *[]){"ZREM", key, cl.conf.node_id}, NULL);
    cl.stopping = 1;
    set_ref(1);
    uv_timer_stop(&cl.tick);
    uv_timer_stop(&cl.watch);
    uv_close((uv_handle_t *)&cl.tick, NULL);
    uv_close((uv_handle_t *)&cl.watch, NULL);
    uv_close((uv_handle_t *)&cl.cmd.retry, NULL);
    uv_close((uv_handle_t *)&cl.sub.retry, NULL);
    /* A connected link closes once its answers are in (on_disconnect, then link_lost
     * stops the bound when both are gone); one still connecting is freed at once (hiredis
     * calls no disconnect callback for it). The bound ends whatever is left: a poll that
     * libuv stopped on an error, which the adapter does not pass on, would otherwise
     * stay open for good. */
    uv_timer_init(cl.loop, &cl.bound);
    uv_timer_start(&cl.bound, bound_cb, cl.conf.timeout_ms, 0);
    link_t *links[] = {&cl.cmd, &cl.sub};
    for (int i = 0; i < 2; i++) {
        if (links[i]->ac && links[i]->connected)
            redisAsyncDisconnect(links[i]->ac);
        else
            link_drop(links[i], "shutting down");
    }
    if (cl.cmd.ac == NULL && cl.sub.ac == NULL) uv_timer_stop(&cl.bound);
    uv_run(cl.loop, UV_RUN_DEFAULT);
    uv_close((uv_handle_t *)&cl.bound, NULL);
    uv_run(cl.loop, UV_RUN_DEFAULT);
    if (cl.mailbox) mgw_mailbox_free(cl.mailbox);
    free((char *)cl.conf.node_id);
    free((char *)cl.conf.redis_address);
    free((char *)cl.conf.redis_password);
    free((char *)cl.conf.key_prefix);
    cl.mailbox = NULL;
    cl.enabled = 0;
    cl.nchannels = 0; /* the parts subscribe again at a next start */
    cl.cmd = (link_t){0};
    cl.sub = (link_t){0};
    atomic_store(&cl.up, 0);
}

const mgw_worker_ops_t mgw__cluster_worker_ops = {
    .name = "cluster",
    .server_start = server_start,
    .server_stop = server_stop,
    .server_free = server_free,
};
