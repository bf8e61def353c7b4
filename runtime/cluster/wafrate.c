/*
 * Rate-based web ACL rules counted across the nodes of a cluster (README "Running a
 * cluster"): a part of the link (cluster/cluster.h). A rule counts as on one node, in its
 * base/ratewin store, made shared: its sub-windows are cut on the wall clock (so that
 * sub-window numbers mean the same on every node with a synchronized clock) and it notes
 * the keys requests hit. Every sync tick this part sends, for up to BATCH of those keys,
 * this node's counts of the current and the previous sub-window:
 *
 *   <prefix>:wafrate:<store name>:<key hash>   a hash: "<node>:<sub-window>" -> count
 *
 * and the script returns the other nodes' requests in the window (their last ten
 * sub-windows, and the one leaving the window weighted by the share of it still inside,
 * as the store counts its own), which the store adds to this node's count of the key. A
 * write is a node's own full count (idempotent); fields of sub-windows that left the
 * window are deleted and the hash expires 1.2 windows after its last write.
 *
 * Key hashes are SipHash-2-4 keyed alike on every node (mgw_ratewin_seed), from the
 * key prefix and Redis's password: with a password nobody outside the cluster can aim
 * collisions at the store's table.
 *
 * Accuracy: the others' count is at most one sync interval (plus the round trip) old, so
 * a key may make up to what the other nodes admitted in that time over the limit before
 * every node matches it; a key a node has not seen before starts there with its own count
 * and the others' arrives one tick later. The others' count is used for one sub-window
 * after it was read, then dropped (Redis down: each node counts alone).
 */
#include "cluster/wafrate.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/crypto.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/ratewin.h"
#include "base/stat.h"
#include "conf/wafrate.h"

#define BATCH 256
/* "<key_prefix>:wafrate:" (at most 73) + a counter name (at most COUNTER_MAX) + ":" + 16 */
#define COUNTER_MAX 200
#define KEY_MAX 320

/* KEYS: a hash per key of a store. ARGV: this node's id, the current sub-window, the
 * hashes' time to live (ms), the weight of the sub-window leaving the window (per mille);
 * then per key this node's counts in the current and the previous sub-window. Returns per
 * key the other nodes' requests in the window. */
static mgw_redis_script_t script = {
    .source = "local me, e, ttl, wt = ARGV[1], tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4])\n"
              "local out = {}\n"
              "for i = 1, #KEYS do\n"
              "  local k, a, b = KEYS[i], ARGV[3 + 2 * i], ARGV[4 + 2 * i]\n"
              "  if a ~= '0' then redis.call('HSET', k, me .. ':' .. e, a) end\n"
              "  if b ~= '0' then redis.call('HSET', k, me .. ':' .. (e - 1), b) end\n"
              "  redis.call('PEXPIRE', k, ttl)\n"
              "  local all, full, old = redis.call('HGETALL', k), 0, 0\n"
              "  for j = 1, #all, 2 do\n"
              "    local node, sub = string.match(all[j], '^(.*):(%d+)$')\n"
              "    sub = tonumber(sub)\n"
              "    if sub == nil or sub < e - 10 then redis.call('HDEL', k, all[j])\n"
              "    elseif node ~= me then\n"
              "      if sub > e - 10 then full = full + tonumber(all[j + 1])\n"
              "      else old = old + tonumber(all[j + 1]) end\n"
              "    end\n"
              "  end\n"
              "  out[i] = full + math.floor(old * wt / 1000)\n"
              "end\n"
              "return out\n",
};

typedef struct {
    mgw_ratewin_t *w; /* a reference of its own */
    mgw_ratewin_own_t o;
} item_t;

static struct {
    mgw_ratewin_t **stores; /* the serving generation's, a reference each */
    int nstores;
    int next;        /* the store the next tick begins with */
    uint64_t offset; /* wall clock - monotonic clock, ms */
    int busy;
    mgw_cluster_once_t failing; /* batches answered with an error */
    item_t items[BATCH];
    int n;
} st;

static mgw_stat_family_t syncs = {
    .name = "moongate_cluster_waf_rate_syncs_total",
    .type = "counter",
    .help = "Rate-based rule settlements with Redis (a script call for up to 256 keys), by "
            "outcome (ok, error)",
    .labels = {"outcome"},
};
static mgw_stat_family_t synced = {
    .name = "moongate_cluster_waf_rate_keys_synced_total",
    .type = "counter",
    .help = "Rate-based rule keys settled with Redis (sent and the other nodes' count read)",
    .labels = {NULL},
};

static uint64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* The hash key and the clock offset, once, before any store is shared or counts. */
static void init_once(void)
{
    static int done;
    if (done) return;
    done = 1;
    /* The same hash key on every node: SHA-256 of the prefix and the password. */
    const mgw_cluster_conf_t *c = mgw_cluster_conf();
    char seed[512];
    int n = snprintf(seed, sizeof(seed), "moongate waf rate keys|%s|%s",
                     c && c->key_prefix ? c->key_prefix : "",
                     c && c->redis_password ? c->redis_password : "");
    uint8_t d[32];
    mgw_sha256(seed, n > 0 && (size_t)n < sizeof(seed) ? (size_t)n : sizeof(seed) - 1, d);
    uint64_t k[2];
    memcpy(k, d, sizeof(k));
    mgw_ratewin_seed(k);
    st.offset = wall_ms() - mgw_ratewin_now_ms();
}

static void release_stores(void)
{
    for (int i = 0; i < st.nstores; i++)
        mgw_ratewin_release(st.stores[i]);
    free(st.stores);
    st.stores = NULL;
    st.nstores = 0;
}

/* Shares the stores of g's rules and keeps a reference to each (the first generation at
 * start, then each reload's). */
static void take_stores(const mgw_gen_t *g)
{
    init_once();
    mgw_ratewin_t **stores = mgw_calloc((size_t)g->nwaf_rate + 1, sizeof(*stores));
    int n = 0;
    for (int i = 0; i < g->nwaf_rate; i++) {
        mgw_ratewin_t *w = g->waf_rate[i].counters;
        if (w == NULL) continue;
        mgw_ratewin_share(w, st.offset); /* before the generation counts in it */
        stores[n++] = mgw_ratewin_ref(w);
    }
    release_stores();
    st.stores = stores;
    st.nstores = n;
    st.next = 0;
}

static int start(const mgw_gen_t *g)
{
    take_stores(g);
    return 0;
}

static void gen(mgw_gen_t *g)
{
    take_stores(g);
}

static void settled(const mgw_redis_reply_t *reply, void *ud)
{
    (void)ud;
    st.busy = 0;
    int ok = reply && reply->type == REDIS_REPLY_ARRAY && reply->elements == (size_t)st.n;
    mgw_stat_inc(&syncs, (const char *const[]){ok ? "ok" : "error"});
    if (ok)
        mgw_cluster_ok(&st.failing);
    else
        mgw_cluster_failed(&st.failing, "the rate-based rule settlement", reply);
    if (ok) mgw_stat_add(mgw_stat_series(&synced, NULL), st.n);
    for (int i = 0; i < st.n; i++) {
        item_t *it = &st.items[i];
        if (!ok)
            mgw_ratewin_mark(it->w, &it->o);
        else if (reply->element[i]->type == REDIS_REPLY_INTEGER && reply->element[i]->integer >= 0)
            mgw_ratewin_set_others(it->w, &it->o, (uint64_t)reply->element[i]->integer);
        mgw_ratewin_release(it->w);
    }
    st.n = 0;
}

/* One script call for the batch's keys (all of one store). */
static void send_batch(void)
{
    uint64_t now = mgw_ratewin_now_ms();
    int n = st.n;
    mgw_ratewin_t *w = st.items[0].w;
    uint64_t sub = mgw_ratewin_sub_ms(w), e = st.items[0].o.sub;
    uint64_t left = sub - (now + st.offset) % sub;
    int argc = 4 + 3 * n, k = 0;
    const char **argv = mgw_malloc(sizeof(char *) * (size_t)argc);
    char *text = mgw_malloc((size_t)n * (KEY_MAX + 48) + 128);
    char *keys = text, *vals = text + (size_t)n * KEY_MAX, *fixed = vals + (size_t)n * 48;
    /* a counter name longer than COUNTER_MAX is named by its digest (the same on every node) */
    const char *counter = mgw_ratewin_name(w);
    char digest[3 + 32 + 1];
    if (strlen(counter) > COUNTER_MAX) {
        uint8_t d[32];
        mgw_sha256(counter, strlen(counter), d);
        memcpy(digest, "h-", 2);
        mgw_hex(d, 16, digest + 2);
        counter = digest;
    }
    for (int i = 0; i < n; i++) {
        char name[KEY_MAX];
        snprintf(name, sizeof(name), "wafrate:%s:%016" PRIx64, counter, st.items[i].o.hash);
        mgw_cluster_key(keys + (size_t)i * KEY_MAX, KEY_MAX, name);
        argv[k++] = keys + (size_t)i * KEY_MAX;
    }
    argv[k++] = mgw_cluster_node();
    snprintf(fixed, 32, "%" PRIu64, e);
    snprintf(fixed + 32, 32, "%" PRIu64, sub * 12);
    snprintf(fixed + 64, 32, "%" PRIu64, left * 1000 / sub);
    argv[k++] = fixed;
    argv[k++] = fixed + 32;
    argv[k++] = fixed + 64;
    for (int i = 0; i < n; i++) {
        char *a = vals + (size_t)i * 48, *b = a + 24;
        snprintf(a, 24, "%" PRIu64, st.items[i].o.own[0]);
        snprintf(b, 24, "%" PRIu64, st.items[i].o.own[1]);
        argv[k++] = a;
        argv[k++] = b;
    }
    st.busy = 1; /* before: a callback may come at once */
    int rc = mgw_cluster_eval(&script, settled, NULL, n, argc, argv, NULL);
    free(argv);
    free(text);
    if (rc != 0) settled(NULL, NULL);
}

static void tick(uint64_t now_ms, int up)
{
    (void)now_ms;
    if (!up || st.busy || st.nstores == 0) return;
    uint64_t now = mgw_ratewin_now_ms();
    mgw_ratewin_own_t own[BATCH];
    /* the stores in turn: one store per call, the next store first next time */
    for (int j = 0; j < st.nstores; j++) {
        int i = (st.next + j) % st.nstores;
        int got = mgw_ratewin_changed(st.stores[i], now, own, BATCH);
        if (got == 0) continue;
        st.next = (i + 1) % st.nstores;
        for (int k = 0; k < got; k++) {
            st.items[k].w = mgw_ratewin_ref(st.stores[i]);
            st.items[k].o = own[k];
        }
        st.n = got;
        send_batch();
        return;
    }
}

static void stop(void)
{
    release_stores();
}

const mgw_cluster_part_t mgw_cluster_waf_rate_part = {
    .name = "waf_rate",
    .start = start,
    .tick = tick,
    .gen = gen,
    .stop = stop,
};
