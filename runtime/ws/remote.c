/*
 * @connections across the nodes of a cluster (README "Running a cluster"): a call for a
 * connection of another node reaches that node through Redis pub/sub and comes back the
 * same way, on the main threads of both nodes.
 *
 * There is no registry to keep: a connection id names its node (its first 6 bytes, the
 * node's random part, are the first 8 characters of the id: the node's tag). Every node
 * subscribes to the channel "ws:TAG" of its own tag, and keeps a presence key
 * "ws:node:TAG" alive (PRESENCE_TTL_MS, refreshed every second while Redis is up).
 *
 *   caller (main thread)                         owner (main thread)
 *   EVAL: PUBLISH ws:OWNER "Q rid op bin id FROM\n" + message
 *         (0 receivers: EXISTS ws:node:OWNER) --> runs the call on the connection's
 *                                                 worker (mgw_ws_call), then
 *   the pending call answers  <--  PUBLISH ws:FROM "A rid status\n" + info
 *
 * The caller's outcome: the owner's status (200, 204, 400, 410, 413, 429); 410 when
 * nobody listens on the owner's channel and its presence key has expired (the node is
 * gone: stopped, restarted, or dead for PRESENCE_TTL_MS); 503 when the caller cannot
 * know: Redis is down, the owner's presence key is still there but its subscriber is not
 * (it is reconnecting, or died less than PRESENCE_TTL_MS ago), or no answer came within
 * 2 x cluster.redis.timeout_ms. Messages are binary (lengths, not C strings), so a
 * binary push of 128 KB passes as it is.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "cluster/cluster.h"
#include "ws/ws_int.h"

#define PRESENCE_TTL_MS 3000 /* a dead node's connections answer 410 after this */
#define PRESENCE_EVERY_MS 1000
#define GRACE_MS 10000 /* after a reconnect: nodes may not have subscribed again yet */
#define NBUCKETS 1024  /* of the pending table (chained) */

/* A call of this node for a connection of another, waiting for the owner's answer. */
typedef struct pending_s {
    uint64_t rid;
    uint64_t deadline_ms;
    mgw_ws_call_t *call;
    struct pending_s *hnext;       /* its bucket */
    struct pending_s *next, *prev; /* oldest first: deadlines are in this order */
} pending_t;

/* Main thread only. */
static struct {
    pending_t *tab[NBUCKETS];
    pending_t *first, *last;
    uint64_t rid;
    char tag[MGW_WS_TAG_LEN + 1]; /* this node's */
    uint64_t up_since_ms;         /* Redis came back then (0: the first connect) */
    uint64_t presence_ms;         /* the presence key was last set then */
    int was_up;
    mgw_cluster_once_t failing; /* calls answered with an error, once until Redis is back */
} rm;

static uint64_t now_ms(void)
{
    return uv_hrtime() / 1000000;
}

/* PUBLISH, and when nobody received it, whether the node's presence key is still there:
 * n > 0 receivers, 0 nobody (the node is gone), -1 nobody but the node is present. */
static mgw_redis_script_t publish_script = {
    .source = "local n = redis.call('PUBLISH', KEYS[1], ARGV[1])\n"
              "if n > 0 then return n end\n"
              "return -redis.call('EXISTS', KEYS[2])\n",
};

static void channel_name(char *out, size_t cap, const char *tag)
{
    snprintf(out, cap, "ws:%s", tag);
}

static void presence_name(char *out, size_t cap, const char *tag)
{
    snprintf(out, cap, "ws:node:%s", tag);
}

/* ---- the pending calls ---- */

static pending_t **bucket(uint64_t rid)
{
    return &rm.tab[rid & (NBUCKETS - 1)];
}

static pending_t *pending_add(mgw_ws_call_t *call)
{
    pending_t *p = mgw_calloc(1, sizeof(*p));
    p->rid = ++rm.rid;
    p->call = call;
    const mgw_cluster_conf_t *conf = mgw_cluster_conf();
    p->deadline_ms = now_ms() + 2 * (conf ? conf->timeout_ms : 500);
    pending_t **b = bucket(p->rid);
    p->hnext = *b;
    *b = p;
    p->prev = rm.last;
    if (rm.last)
        rm.last->next = p;
    else
        rm.first = p;
    rm.last = p;
    return p;
}

/* Takes the pending call rid out of the table: its call, or NULL when it is not there
 * (answered already, or timed out). */
static mgw_ws_call_t *pending_take(uint64_t rid)
{
    pending_t **at = bucket(rid);
    while (*at && (*at)->rid != rid)
        at = &(*at)->hnext;
    pending_t *p = *at;
    if (p == NULL) return NULL;
    *at = p->hnext;
    if (p->prev)
        p->prev->next = p->next;
    else
        rm.first = p->next;
    if (p->next)
        p->next->prev = p->prev;
    else
        rm.last = p->prev;
    mgw_ws_call_t *call = p->call;
    free(p);
    return call;
}

/* The outcome of a call of this node is known: counted, and sent back to its caller's
 * loop (which may be this one). */
static void finish(mgw_ws_call_t *call, int status)
{
    call->status = status;
    mgw__ws_count_remote(WS_DIR_OUT, call->op, status);
    mgw__ws_reply(call);
}

/* ---- calls of this node ---- */

/* The EVAL's answer: the number of receivers, or why nobody got the call. */
static void sent(const mgw_redis_reply_t *reply, void *ud)
{
    uint64_t rid = (uint64_t)(uintptr_t)ud;
    if (reply && reply->type == REDIS_REPLY_INTEGER && reply->integer > 0) return; /* wait */
    mgw_ws_call_t *call = pending_take(rid);
    if (call == NULL) return; /* the answer came first */
    int gone = reply && reply->type == REDIS_REPLY_INTEGER && reply->integer == 0 &&
               (rm.up_since_ms == 0 || now_ms() - rm.up_since_ms >= GRACE_MS);
    if (reply && reply->type == REDIS_REPLY_ERROR)
        mgw_cluster_failed(&rm.failing, "an @connections call for another node", reply);
    finish(call, gone ? 410 : 503);
}

/* Main thread: publishes call to its owner's channel; the answer comes to receive. */
static void send_call(mgw_ws_call_t *call)
{
    if (!mgw_cluster_up()) {
        finish(call, 503);
        return;
    }
    char tag[MGW_WS_TAG_LEN + 1], chan[128], presence[128], name[64];
    memcpy(tag, call->id, MGW_WS_TAG_LEN);
    tag[MGW_WS_TAG_LEN] = '\0';
    channel_name(name, sizeof(name), tag);
    mgw_cluster_key(chan, sizeof(chan), name);
    presence_name(name, sizeof(name), tag);
    mgw_cluster_key(presence, sizeof(presence), name);
    pending_t *p = pending_add(call);
    mgw_buf_t msg = {0};
    mgw_buf_printf(&msg, "Q %" PRIu64 " %d %d %s %s\n", p->rid, call->op, call->binary ? 1 : 0,
                   call->id, rm.tag);
    if (call->op == MGW_WS_CALL_POST && call->n) mgw_buf_add(&msg, call->data, call->n);
    free(call->data); /* what the owner needs is in msg */
    call->data = NULL;
    const char *argv[] = {chan, presence, msg.p};
    const size_t lens[] = {strlen(chan), strlen(presence), msg.n};
    uint64_t rid = p->rid;
    int rc = mgw_cluster_eval(&publish_script, sent, (void *)(uintptr_t)rid, 2, 3, argv, lens);
    mgw_buf_free(&msg);
    if (rc != 0 && pending_take(rid)) finish(call, 503);
}

static void send_posted(void *ud)
{
    send_call(ud);
}

void mgw__ws_remote_call(mgw_worker_t *from, mgw_ws_call_t *call)
{
    if (call->op == MGW_WS_CALL_POST && call->n > MGW_WS_POST_MAX) {
        call->status = 413;
        mgw__ws_count_remote(WS_DIR_OUT, call->op, 413);
        call->done(call);
        return;
    }
    if (from == NULL) {
        send_call(call); /* the main thread's own (the management listener) */
        return;
    }
    if (!mgw_cluster_up() || mgw_cluster_post(send_posted, call) != 0) {
        call->status = 503;
        mgw__ws_count_remote(WS_DIR_OUT, call->op, 503);
        call->done(call);
    }
}

/* The first line of msg (n bytes) into line (a C string, cap bytes); its end in msg
 * (after the line feed), or NULL when msg has no short first line. */
static const char *first_line(const char *msg, size_t n, char *line, size_t cap)
{
    const char *nl = memchr(msg, '\n', n < cap ? n : cap);
    if (nl == NULL) return NULL;
    memcpy(line, msg, (size_t)(nl - msg));
    line[nl - msg] = '\0';
    return nl + 1;
}

/* An answer on this node's channel: "A rid status\n" + info. */
static void answer(const char *msg, size_t n)
{
    char line[128];
    const char *body = first_line(msg, n, line, sizeof(line));
    uint64_t rid;
    int status;
    if (body == NULL || sscanf(line, "A %" SCNu64 " %d", &rid, &status) != 2) return;
    mgw_ws_call_t *call = pending_take(rid);
    if (call == NULL) return; /* timed out meanwhile */
    size_t hn = (size_t)(body - msg);
    call->info.n = 0;
    if (n > hn) mgw_buf_add(&call->info, body, n - hn);
    finish(call, status);
}

/* ---- calls of other nodes for this node's connections ---- */

/* Who asked: where the answer goes. */
typedef struct {
    uint64_t rid;
    char from[MGW_WS_TAG_LEN + 1];
} asker_t;

/* A call and its asker in one block (the call first), so that mgw_ws_call_free frees
 * both, also on the paths that free a call without running its done (shutdown). */
typedef struct {
    mgw_ws_call_t call;
    asker_t asker;
} served_t;

/* The call ran (main thread): its outcome goes back to the asking node. */
static void served(mgw_ws_call_t *call)
{
    asker_t *a = call->ud;
    mgw__ws_count_remote(WS_DIR_IN, call->op, call->status);
    mgw_buf_t msg = {0};
    mgw_buf_printf(&msg, "A %" PRIu64 " %d\n", a->rid, call->status);
    if (call->status == 200 && call->info.n) mgw_buf_add(&msg, call->info.p, call->info.n);
    char name[64];
    channel_name(name, sizeof(name), a->from);
    mgw_cluster_publish(name, msg.p, msg.n, NULL, NULL); /* nobody there: the asker is gone */
    mgw_buf_free(&msg);
    mgw_ws_call_free(call); /* the asker with it */
}

/* A call on this node's channel: "Q rid op binary id from\n" + message. */
static void serve(const char *msg, size_t n)
{
    char line[128];
    const char *body = first_line(msg, n, line, sizeof(line));
    uint64_t rid;
    int op, binary;
    char id[MGW_WS_ID_LEN + 1], from[MGW_WS_TAG_LEN + 1];
    if (body == NULL ||
        sscanf(line, "Q %" SCNu64 " %d %d %16s %8s", &rid, &op, &binary, id, from) != 5 ||
        strlen(id) != MGW_WS_ID_LEN || strlen(from) != MGW_WS_TAG_LEN)
        return;
    served_t *sv = mgw_calloc(1, sizeof(*sv));
    mgw_ws_call_t *call = &sv->call;
    asker_t *a = &sv->asker;
    a->rid = rid;
    memcpy(a->from, from, sizeof(from));
    call->op = op;
    memcpy(call->id, id, sizeof(id));
    call->binary = binary != 0;
    if (op == MGW_WS_CALL_POST) {
        call->n = n - (size_t)(body - msg);
        call->data = mgw_malloc(call->n ? call->n : 1);
        if (call->n) memcpy(call->data, body, call->n);
    }
    call->reply_to = NULL; /* done runs on this loop, through mgw_cluster_post */
    call->done = served;
    call->ud = a;
    mgw_ws_call(NULL, call);
}

static void receive(const char *msg, size_t n, void *ud)
{
    (void)ud;
    if (n > 0 && msg[0] == 'A')
        answer(msg, n);
    else if (n > 0 && msg[0] == 'Q')
        serve(msg, n);
}

/* ---- the cluster part ---- */

static void set_presence(void)
{
    char name[64], key[128], ttl[16];
    presence_name(name, sizeof(name), rm.tag);
    mgw_cluster_key(key, sizeof(key), name);
    snprintf(ttl, sizeof(ttl), "%d", PRESENCE_TTL_MS);
    const char *argv[] = {"SET", key, "1", "PX", ttl};
    if (mgw_cluster_cmd(NULL, NULL, 5, argv, NULL) == 0) rm.presence_ms = now_ms();
}

static int part_start(const mgw_gen_t *g)
{
    (void)g;
    mgw__ws_node_tag(rm.tag);
    char name[64];
    channel_name(name, sizeof(name), rm.tag);
    mgw_cluster_subscribe(name, receive, NULL);
    return 0;
}

/* Calls whose answer is late (or that Redis going away will not answer) end with 503. */
static void expire(uint64_t before_ms)
{
    while (rm.first && rm.first->deadline_ms <= before_ms) {
        mgw_ws_call_t *call = pending_take(rm.first->rid);
        finish(call, 503);
    }
}

static void part_tick(uint64_t now, int up)
{
    (void)now;
    uint64_t t = now_ms();
    expire(t);
    if (up && t - rm.presence_ms >= PRESENCE_EVERY_MS) set_presence();
}

static void part_state(int up)
{
    if (up) {
        if (rm.was_up) rm.up_since_ms = now_ms(); /* a reconnect: see GRACE_MS */
        rm.was_up = 1;
        mgw_cluster_ok(&rm.failing);
        set_presence();
    } else {
        expire(UINT64_MAX);
    }
}

static void part_stop(void)
{
    expire(UINT64_MAX);
    char name[64], key[128];
    presence_name(name, sizeof(name), rm.tag);
    mgw_cluster_key(key, sizeof(key), name);
    const char *argv[] = {"DEL", key};
    mgw_cluster_cmd(NULL, NULL, 2, argv, NULL); /* its connections answer 410 at once */
}

const mgw_cluster_part_t mgw__ws_cluster_part = {
    .name = "websocket",
    .start = part_start,
    .tick = part_tick,
    .state = part_state,
    .stop = part_stop,
};
