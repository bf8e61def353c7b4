#include "cluster/throttle.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "base/log.h"
#include "base/mem.h"
#include "base/stat.h"
#include "base/throttle.h"

/*
 * The cluster's token bucket, in Redis (KEYS[1], a hash): tok (tokens, fractional), ts
 * (ms of Redis's clock when tok was last refilled), and per node d:<node> =
 * "<demand>:<held>:<ms>". ARGV: rate, burst, tokens the node returns, tokens it wants,
 * node id, its demand (tokens/second), the tokens it still holds after returning.
 *
 * The tokens in the bucket and in the nodes' shares together never exceed burst: the
 * refill stops at burst less what the nodes hold (a node's holding counts while its
 * field is less than 3 s old; a node gone quiet for longer has its tokens back in the
 * bucket). A grant is at most what is there; when the nodes' demand exceeds the rate, a
 * node gets at most its part of it (at least one token). Returns the grant.
 */
static mgw_redis_script_t settle_script = {
    .source =
        "local key, rate, burst = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2])\n"
        "local ret, want, node = tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5]\n"
        "local dem, have = tonumber(ARGV[6]), tonumber(ARGV[7])\n"
        "local t = redis.call('TIME')\n"
        "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
        "local h = redis.call('HGETALL', key)\n"
        "local tok, ts, total, held = nil, nil, dem, have\n"
        "for i = 1, #h, 2 do\n"
        "  local f, v = h[i], h[i + 1]\n"
        "  if f == 'tok' then tok = tonumber(v)\n"
        "  elseif f == 'ts' then ts = tonumber(v)\n"
        "  elseif f ~= 'd:' .. node and string.sub(f, 1, 2) == 'd:' then\n"
        "    local d, hd, at = string.match(v, '^([^:]+):([^:]+):(%d+)$')\n"
        "    if d and now - tonumber(at) < 3000 then\n"
        "      total = total + tonumber(d)\n"
        "      held = held + tonumber(hd)\n"
        "    end\n"
        "  end\n"
        "end\n"
        "local cap = math.max(0, burst - held)\n"
        "if not tok then tok, ts = cap, now end\n"
        "if now > ts and tok < cap then tok = math.min(cap, tok + (now - ts) * rate / 1000) end\n"
        "tok = tok + ret\n"
        "local grant = math.min(want, math.floor(tok))\n"
        "if grant > 0 and total > rate and dem < total then\n"
        "  grant = math.min(grant, math.max(1, math.floor(tok * dem / total)))\n"
        "end\n"
        "if grant < 0 then grant = 0 end\n"
        "tok = tok - grant\n"
        "redis.call('HSET', key, 'tok', tostring(tok), 'ts', tostring(now), 'd:' .. node,\n"
        "  string.format('%.3f:%d:%d', dem, have + grant, now))\n"
        "redis.call('PEXPIRE', key, math.max(60000, math.ceil(2000 * burst / rate)))\n"
        "return grant\n",
};

static mgw_stat_family_t syncs = {.name = "moongate_cluster_throttle_syncs_total",
                                  .type = "counter",
                                  .help = "Settlements of a throttle bucket's local share with "
                                          "Redis by outcome (ok, error, lost).",
                                  .labels = {"outcome"}};
static mgw_stat_family_t buckets = {.name = "moongate_cluster_throttle_buckets",
                                    .type = "gauge",
                                    .help = "Throttle buckets by mode: shared (a share leased "
                                            "from Redis), fallback (limit / nodes, locally) or "
                                            "exact (asked of Redis per request).",
                                    .labels = {"mode"}};

enum { OUT_OK, OUT_ERROR, OUT_LOST, NOUT };

/* What the part keeps per bucket, by order of creation (base/throttle.h). */
typedef struct {
    char key[128];    /* its Redis key */
    double demand;    /* tokens/second, mgw__thr_demand's */
    int64_t ret;      /* tokens in flight back to Redis */
    int inflight;     /* a settlement is unanswered */
    uint64_t sent_ms; /* when the last settlement was sent */
} slot_t;

static struct {
    slot_t *slots;
    size_t nslots;
    uint64_t tick_ms, last_ms;
    unsigned divisor;
    int nodes;                  /* mgw_cluster_nodes() at the tick */
    int up, force;              /* force: settle every bucket at the next tick (Redis came back) */
    mgw_cluster_once_t failing; /* settlements answered with an error */
    mgw_stat_t out[NOUT], mode_shared, mode_fallback, mode_exact;
} T;

double mgw__thr_demand(double prev, uint64_t takes, uint64_t tick_ms)
{
    if (tick_ms == 0) tick_ms = 1;
    double now = (double)takes * 1000.0 / (double)tick_ms;
    /* Half the old, half the new: a change of load is followed within a few ticks, a
     * tick's noise is halved. */
    double d = prev / 2 + now / 2;
    return d < 0.01 ? 0 : d;
}

void mgw__thr_plan(double demand, uint64_t tick_ms, uint64_t burst, int64_t standby, int64_t have,
                   int64_t *ret, int64_t *want)
{
    /* Two ticks of demand (the lease arrives about a round trip after the tick) and a
     * standby so that the first requests after a quiet spell are not refused. */
    double need = ceil(demand * (double)tick_ms * 2 / 1000.0) + (double)(standby > 1 ? standby : 1);
    int64_t target = need > (double)burst ? (int64_t)burst : (int64_t)need;
    if (target < 1) target = 1;
    if (burst == 0) target = 0;
    *ret = have > target ? have - target : 0;
    *want = have < target ? target - have : 0;
}

static int stat_ready;

static void stats(void)
{
    if (stat_ready) return;
    static const char *const names[NOUT] = {"ok", "error", "lost"};
    for (int i = 0; i < NOUT; i++)
        T.out[i] = mgw_stat_series(&syncs, (const char *const[]){names[i]});
    T.mode_shared = mgw_stat_series(&buckets, (const char *const[]){"shared"});
    T.mode_fallback = mgw_stat_series(&buckets, (const char *const[]){"fallback"});
    T.mode_exact = mgw_stat_series(&buckets, (const char *const[]){"exact"});
    stat_ready = 1;
}

/* Slots for every bucket there is now. */
static void grow(size_t n)
{
    if (n <= T.nslots) return;
    size_t cap = T.nslots ? T.nslots : 64;
    while (cap < n)
        cap *= 2;
    T.slots = mgw_realloc(T.slots, cap * sizeof(*T.slots));
    memset(T.slots + T.nslots, 0, (cap - T.nslots) * sizeof(*T.slots));
    T.nslots = cap;
}

static void settled(const mgw_redis_reply_t *reply, void *ud)
{
    size_t i = (size_t)(uintptr_t)ud;
    slot_t *s = &T.slots[i];
    mgw_bucket_t *b = mgw_throttle_nth(i);
    s->inflight = 0;
    if (reply == NULL) {
        /* The link broke: what was returned may or may not have arrived; the state
         * callback puts the bucket in FALLBACK. */
        mgw_stat_add(T.out[OUT_LOST], 1);
        s->ret = 0;
        return;
    }
    if (reply->type != REDIS_REPLY_INTEGER) {
        mgw_stat_add(T.out[OUT_ERROR], 1);
        mgw_cluster_failed(&T.failing, "the throttle settlement", reply);
        /* Redis did not take them: the returned tokens are the node's again. A bucket
         * left with nothing runs on its fallback limit until a settlement succeeds. */
        if (s->ret && mgw_bucket_mode(b) == MGW_BUCKET_SHARED) mgw_bucket_share_add(b, s->ret);
        s->ret = 0;
        if (mgw_bucket_mode(b) != MGW_BUCKET_SHARED || mgw_bucket_share(b) <= 0)
            mgw_bucket_fallback(b, (unsigned)mgw_cluster_nodes());
        return;
    }
    mgw_stat_add(T.out[OUT_OK], 1);
    mgw_cluster_ok(&T.failing);
    s->ret = 0;
    /* Redis went down after sending this: the bucket stays in FALLBACK. */
    if (!T.up) return;
    mgw_bucket_share_add(b, reply->integer > 0 ? (int64_t)reply->integer : 0);
}

/* Sends bucket i's settlement; its demand was already folded into the slot. */
static void settle(size_t i, mgw_bucket_t *b, slot_t *s, int64_t ret, int64_t want)
{
    if (s->key[0] == 0) {
        char id[33];
        mgw_bucket_id(b, id);
        char name[64];
        snprintf(name, sizeof(name), "thr:%s", id);
        mgw_cluster_key(s->key, sizeof(s->key), name);
    }
    char rate[32], burst[32], r[32], w[32], d[32], hv[32];
    snprintf(rate, sizeof(rate), "%.17g", mgw_bucket_rate(b));
    snprintf(burst, sizeof(burst), "%llu", (unsigned long long)mgw_bucket_burst(b));
    snprintf(r, sizeof(r), "%lld", (long long)ret);
    snprintf(w, sizeof(w), "%lld", (long long)want);
    snprintf(d, sizeof(d), "%.3f", s->demand);
    int64_t have = mgw_bucket_mode(b) == MGW_BUCKET_SHARED ? mgw_bucket_share(b) : 0;
    snprintf(hv, sizeof(hv), "%lld", (long long)(have > 0 ? have : 0));
    const char *argv[] = {s->key, rate, burst, r, w, mgw_cluster_node(), d, hv};
    s->ret = ret;
    s->inflight = 1;
    if (mgw_cluster_eval(&settle_script, settled, (void *)(uintptr_t)i, 1, 8, argv, NULL) != 0) {
        /* Redis is down (the state callback follows): keep the tokens for now. */
        s->inflight = 0;
        s->ret = 0;
        if (ret) mgw_bucket_share_add(b, ret);
    }
}

/* Every bucket in FALLBACK with limit / the nodes there are (Redis is down). */
static void fall_back(void)
{
    unsigned n = (unsigned)mgw_cluster_nodes();
    if (n == 0) n = 1;
    T.divisor = n;
    mgw_throttle_cluster(n);
}

static int start(const mgw_gen_t *g)
{
    (void)g;
    stats();
    const mgw_cluster_conf_t *c = mgw_cluster_conf();
    T.tick_ms = c && c->sync_interval_ms ? c->sync_interval_ms : 100;
    T.last_ms = 0;
    /* Until Redis answers, every bucket is local with limit / nodes. */
    fall_back();
    return 0;
}

static void tick(uint64_t now_ms, int up)
{
    (void)now_ms; /* the throttle's clock, as in state() */
    now_ms = mgw_throttle_now() / 1000000;
    uint64_t dt = T.last_ms && now_ms > T.last_ms ? now_ms - T.last_ms : T.tick_ms;
    T.last_ms = now_ms;
    size_t n = mgw_throttle_count();
    grow(n);
    int64_t shared = 0, fallback = 0, exact = 0;
    if (!up) {
        /* The nodes last seen alive may have changed: the fallback limit follows. */
        if ((unsigned)mgw_cluster_nodes() != T.divisor) fall_back();
        for (size_t i = 0; i < n; i++) {
            mgw_bucket_t *b = mgw_throttle_nth(i);
            if (b && mgw_bucket_exact(b)) exact++;
        }
        mgw_stat_set(T.mode_shared, 0);
        mgw_stat_set(T.mode_fallback, (int64_t)n - exact);
        mgw_stat_set(T.mode_exact, exact);
        return;
    }
    T.nodes = mgw_cluster_nodes();
    int force = T.force;
    T.force = 0;
    for (size_t i = 0; i < n; i++) {
        mgw_bucket_t *b = mgw_throttle_nth(i);
        if (b == NULL) continue;
        if (mgw_bucket_exact(b)) {
            exact++; /* asked per request (cluster/exact.c), never leased */
            continue;
        }
        slot_t *s = &T.slots[i];
        int mode = mgw_bucket_mode(b);
        if (mode == MGW_BUCKET_SHARED)
            shared++;
        else
            fallback++;
        if (s->inflight) continue;
        uint64_t takes = 0;
        if (mode == MGW_BUCKET_SHARED)
            takes = mgw_bucket_demand(b);
        else if (!force && !mgw_bucket_fallback_used(b))
            continue; /* not used since Redis came back: leased when it is */
        s->demand = mgw__thr_demand(s->demand, takes, dt);
        int64_t have = mode == MGW_BUCKET_SHARED ? mgw_bucket_share(b) : 0;
        int64_t ret, want;
        /* the standby: a quarter of a node's part of the burst */
        uint64_t burst = mgw_bucket_burst(b);
        int64_t standby = (int64_t)(burst / (4 * (uint64_t)(T.nodes ? T.nodes : 1)));
        mgw__thr_plan(s->demand, T.tick_ms, burst, standby, have, &ret, &want);
        /* Nothing to settle; but a share held is reported at least every second, or
         * Redis would count it as back in the bucket after 3 s (the script's window). */
        if (!force && mode == MGW_BUCKET_SHARED && want == 0 && ret == 0 && takes == 0 &&
            (have <= 0 || now_ms - s->sent_ms < 1000))
            continue;
        s->sent_ms = now_ms;
        if (ret) ret = mgw_bucket_share_take(b, ret);
        settle(i, b, s, ret, want);
    }
    mgw_stat_set(T.mode_shared, shared);
    mgw_stat_set(T.mode_fallback, fallback);
    mgw_stat_set(T.mode_exact, exact);
}

static void state(int up)
{
    T.up = up;
    if (up) {
        /* The shares are rebuilt now: every bucket is SHARED with an empty share (a
         * request is refused for the round trip of its lease, rather than admitted
         * locally without Redis knowing) and leases one at once. */
        mgw_cluster_ok(&T.failing);
        size_t n = mgw_throttle_count();
        for (size_t i = 0; i < n; i++) {
            mgw_bucket_t *b = mgw_throttle_nth(i);
            if (b && !mgw_bucket_exact(b) && mgw_bucket_mode(b) != MGW_BUCKET_SHARED)
                mgw_bucket_share_add(b, 0);
        }
        T.force = 1;
        tick(mgw_throttle_now() / 1000000, 1);
        return;
    }
    fall_back();
    for (size_t i = 0; i < T.nslots; i++)
        T.slots[i].demand = 0;
}

static void stop(void)
{
    /* Give back what this node holds, so that the others can use it at once. */
    if (!T.up) return;
    size_t n = mgw_throttle_count();
    grow(n);
    for (size_t i = 0; i < n; i++) {
        mgw_bucket_t *b = mgw_throttle_nth(i);
        if (b == NULL || T.slots[i].inflight || mgw_bucket_mode(b) != MGW_BUCKET_SHARED) continue;
        int64_t ret = mgw_bucket_share_take(b, INT64_MAX);
        T.slots[i].demand = 0;
        if (ret) settle(i, b, &T.slots[i], ret, 0);
    }
}

const mgw_cluster_part_t mgw_cluster_throttle_part = {
    .name = "throttle",
    .start = start,
    .tick = tick,
    .state = state,
    .stop = stop,
};
