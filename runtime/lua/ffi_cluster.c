/*
 * The shared authorizer cache (README "Running a cluster", `shared_cache`): what Lua
 * authorizers' caches read from and write to Redis, through the cluster's link on the
 * main thread. A read is a GET that the hook waits for (cluster/ask.h: the value, or a
 * miss, comes back through the worker's mailbox and resumes the hook; bounded by
 * cluster.sync_interval_ms, a later answer being a miss so that a slow Redis never holds
 * a request longer; a request that ended first is not touched). A write is a SET with the
 * cache's ttl that nothing waits for. Redis down: every read is a miss at once. Keys are
 * digests (lua/moongate/runtime.lua): identity values never reach Redis.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/crypto.h"
#include "cluster/ask.h"
#include "cluster/cluster.h"
#include "lua/lua_int.h"

/* The Redis key of entry key (kn bytes) of cache ns (nsn bytes): digests only, so that
 * identity values never reach Redis. */
static void entry_key(char out[MGW_CLUSTER_DIGEST_KEY], const char *ns, size_t nsn, const char *key,
                      size_t kn)
{
    uint8_t d[32];
    mgw_sha256(ns, nsn, d);
    mgw_cluster_digest_key(out, "authz", d, key, kn);
}

/* A read in flight (cluster/ask.h). */
typedef struct {
    mgw_ask_t ask;
    char key[MGW_CLUSTER_DIGEST_KEY]; /* entry_key's */
    /* the answer */
    char *val;
    size_t vn;
    int found;
} kv_get_t;

static void get_free(mgw_ask_t *a)
{
    free(((kv_get_t *)a)->val);
}

/* Main loop: the GET. */
static int get_send(mgw_ask_t *a)
{
    kv_get_t *g = (kv_get_t *)a;
    return mgw_cluster_cmd(mgw_ask_replied, a, 2, (const char *[]){"GET", g->key}, NULL);
}

/* Main loop: the value, when there is one (anything else is a miss). */
static void get_keep(mgw_ask_t *a, const mgw_redis_reply_t *reply)
{
    kv_get_t *g = (kv_get_t *)a;
    if (reply->type != REDIS_REPLY_STRING) return;
    g->val = mgw_strndup(reply->str, reply->len);
    g->vn = reply->len;
    g->found = 1;
}

/* r's worker: the hook that waits for the read resumes with it (a miss when late). */
static void get_done(mgw_req_t *r, mgw_ask_t *a)
{
    kv_get_t *g = (kv_get_t *)a;
    mgw_lreq_t *l = r->lua;
    if (l == NULL || !l->kv_wait) return;
    l->kv_wait = 0;
    l->kv_found = g->found;
    l->kv_val =
        g->found ? (mgw_str_t){mgw_pool_strndup(r->pool, g->val, g->vn), g->vn} : MGW_STR("");
    if (l->waiting == MGW_WAIT_CLUSTER) mgw__hooks_wakeup(r);
}

static const mgw_ask_ops_t get_ops = {
    .send = get_send, .keep = get_keep, .done = get_done, .free = get_free};

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
    kv_get_t *g = mgw_calloc(1, sizeof(*g));
    g->ask.ops = &get_ops;
    entry_key(g->key, ns, nsn, key, kn);
    if (mgw_ask_start(r, &g->ask) != 0) return 0; /* Redis down: a miss now */
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
    char full[MGW_CLUSTER_DIGEST_KEY], px[24];
    entry_key(full, ns, nsn, key, kn);
    snprintf(px, sizeof(px), "%llu", (unsigned long long)ttl_ms);
    mgw_cluster_send(5, (const char *[]){"SET", full, val, "PX", px},
                     (const size_t[]){3, strlen(full), vn, 2, strlen(px)});
    return 0;
}
