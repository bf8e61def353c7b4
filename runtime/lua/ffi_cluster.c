/*
 * The shared authorizer cache (README "Running a cluster", `shared_cache`): what Lua
 * authorizers' caches read from and write to Redis, through the cluster's link on the
 * main thread. A read is a GET that the hook waits for: the worker posts it to the main
 * loop, and the value (or a miss) comes back through the worker's mailbox and resumes the
 * hook. The wait is bounded by cluster.sync_interval_ms: an answer later than that is a
 * miss (the authorizer runs), so a slow Redis never holds a request longer. A write is a
 * SET with the cache's ttl that nothing waits for. Redis down: every read is a miss at
 * once. Keys are digests (lua/moongate/runtime.lua): identity values never reach Redis.
 * A reply that arrives after the request ended resumes nothing (the slot's serial).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/crypto.h"
#include "cluster/cluster.h"
#include "lua/lua_int.h"

/* The key of entry key (kn bytes) of cache ns: "authz:" + 16 hex digits of ns's SHA-256 +
 * ":" + the 64 of key's, so that identity values never reach Redis. */
static char *entry_key(const char *ns, size_t nsn, const char *key, size_t kn)
{
    uint8_t d[32];
    char *out = mgw_malloc(6 + 16 + 1 + 64 + 1);
    memcpy(out, "authz:", 6);
    mgw_sha256(ns, nsn, d);
    mgw_hex(d, 8, out + 6);
    out[22] = ':';
    mgw_sha256(key, kn, d);
    mgw_hex(d, 32, out + 23);
    return out;
}

/* A read in flight: made on the worker, answered on the main loop, back on the worker. */
typedef struct {
    mgw_lslot_t *slot; /* the request it is for, while the slot keeps serial */
    uint32_t serial;
    mgw_mailbox_t *reply_to;
    char *key; /* entry_key's */
    /* the answer */
    char *val;
    size_t vn;
    int found;
} kv_get_t;

static void get_free(kv_get_t *g)
{
    free(g->key);
    free(g->val);
    free(g);
}

/* ---- on the worker ---- */

static void get_reply_run(void *owner, mgw_msg_t *msg)
{
    (void)owner;
    kv_get_t *g = msg->data;
    free(msg);
    mgw_req_t *r = g->slot->serial == g->serial ? g->slot->r : NULL;
    mgw_lreq_t *l = r ? r->lua : NULL;
    if (l && l->kv_wait) {
        l->kv_wait = 0;
        l->kv_found = g->found;
        l->kv_val =
            g->found ? (mgw_str_t){mgw_pool_strndup(r->pool, g->val, g->vn), g->vn} : MGW_STR("");
        if (l->waiting == MGW_WAIT_CLUSTER) mgw__hooks_wakeup(r);
    }
    get_free(g);
}

static void get_reply_drop(mgw_msg_t *msg)
{
    get_free(msg->data);
    free(msg);
}

static const mgw_msg_kind_t get_reply_kind = {"lua-kv-reply", get_reply_run, get_reply_drop};

/* ---- on the main loop ---- */

/* Sends g's answer back to its worker, once; g goes with it. */
static void answer(kv_get_t *g)
{
    mgw_msg_t *m = mgw_calloc(1, sizeof(*m));
    m->type = MGW_MSG_LUA_KV;
    m->data = g;
    if (mgw_mailbox_send(g->reply_to, m) != 0) {
        free(m);
        get_free(g);
    }
}

/* What is left of g on the main loop after its answer: the timer and the reply. */
typedef struct {
    kv_get_t *g; /* NULL once answered (the worker owns it then) */
    uv_timer_t bound;
    int pending; /* the timer's close and the command's callback */
} get_main_t;

static void main_done(get_main_t *gm)
{
    if (--gm->pending == 0) free(gm);
}

static void bound_closed(uv_handle_t *h)
{
    main_done(h->data);
}

static void finish_main(get_main_t *gm, const mgw_redis_reply_t *reply)
{
    if (gm->g) {
        kv_get_t *g = gm->g;
        gm->g = NULL;
        if (reply && reply->type == REDIS_REPLY_STRING) {
            g->val = mgw_strndup(reply->str, reply->len);
            g->vn = reply->len;
            g->found = 1;
        }
        answer(g);
        uv_timer_stop(&gm->bound);
        uv_close((uv_handle_t *)&gm->bound, bound_closed);
    }
}

static void get_reply_cb(const mgw_redis_reply_t *reply, void *ud)
{
    get_main_t *gm = ud;
    finish_main(gm, reply);
    main_done(gm);
}

static void bound_cb(uv_timer_t *t)
{
    finish_main(t->data, NULL); /* too late: a miss */
}

static void get_main(void *ud)
{
    kv_get_t *g = ud;
    get_main_t *gm = mgw_calloc(1, sizeof(*gm));
    gm->g = g;
    gm->pending = 2;
    char key[512];
    mgw_cluster_key(key, sizeof(key), g->key);
    if (mgw_cluster_cmd(get_reply_cb, gm, 2, (const char *[]){"GET", key}, NULL) != 0) {
        gm->pending = 1; /* no callback will come */
        gm->g = NULL;
        answer(g);
        free(gm);
        return;
    }
    uv_timer_init(mgw_cluster_loop(), &gm->bound);
    gm->bound.data = gm;
    uv_timer_start(&gm->bound, bound_cb, mgw_cluster_conf()->sync_interval_ms, 0);
}

typedef struct {
    char *key, *val;
    size_t vn;
    uint64_t ttl_ms;
} kv_set_t;

static void set_main(void *ud)
{
    kv_set_t *s = ud;
    char key[512], px[24];
    mgw_cluster_key(key, sizeof(key), s->key);
    snprintf(px, sizeof(px), "%llu", (unsigned long long)s->ttl_ms);
    mgw_cluster_cmd(NULL, NULL, 5, (const char *[]){"SET", key, s->val, "PX", px},
                    (const size_t[]){3, strlen(key), s->vn, 2, strlen(px)});
    free(s->key);
    free(s->val);
    free(s);
}

/* ---- what Lua calls (lua/moongate/runtime.lua), on the worker ---- */

/*
 * Starts reading entry key (kn bytes) of cache ns (nsn bytes) for r's running hook.
 * Returns 1 when the hook must wait (it is resumed with the answer), 0 when the answer is
 * a miss already (no cluster, Redis down), or -1 with *err for misuse.
 */
int mgw_ffi_cluster_get(mgw_req_t *r, const char *ns, size_t nsn, const char *key, size_t kn,
                        const char **err)
{
    mgw_lreq_t *l = mgw__lreq(r);
    if (l->slot == NULL) return *err = "the shared cache works only inside hooks", -1;
    if (l->kv_wait) return *err = "a shared cache read is already in flight for this request", -1;
    l->kv_found = 0;
    if (!mgw_cluster_up()) return 0;
    kv_get_t *g = mgw_calloc(1, sizeof(*g));
    *g = (kv_get_t){.slot = l->slot,
                    .serial = l->slot->serial,
                    .reply_to = r->from.w->mailbox,
                    .key = entry_key(ns, nsn, key, kn)};
    if (mgw_cluster_post(get_main, g) != 0) {
        get_free(g);
        return 0;
    }
    l->kv_wait = 1;
    l->waiting = MGW_WAIT_CLUSTER;
    return 1;
}

/* The answer of r's last read: 1 and *val (in r's pool), or 0 for a miss. */
int mgw_ffi_cluster_result(mgw_req_t *r, mgw_str_t *val)
{
    const mgw_lreq_t *l = r->lua;
    *val = l && l->kv_found ? l->kv_val : MGW_STR("");
    return l ? l->kv_found : 0;
}

/* Writes entry key of cache ns = val (copied) for ttl_ms, without waiting; nothing when
 * Redis is down. */
int mgw_ffi_cluster_set(const char *ns, size_t nsn, const char *key, size_t kn, const char *val,
                        size_t vn, uint64_t ttl_ms)
{
    if (!mgw_cluster_up()) return 0;
    kv_set_t *s = mgw_malloc(sizeof(*s));
    *s = (kv_set_t){entry_key(ns, nsn, key, kn), mgw_strndup(val, vn), vn, ttl_ms};
    if (mgw_cluster_post(set_main, s) != 0) {
        free(s->key);
        free(s->val);
        free(s);
    }
    return 0;
}

void mgw__lkv_register(void)
{
    mgw_mailbox_kind(MGW_MSG_LUA_KV, &get_reply_kind);
}
