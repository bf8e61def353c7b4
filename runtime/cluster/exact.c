#include "cluster/exact.h"

#include <stdio.h>
#include <string.h>

#include "base/mem.h"
#include "base/stat.h"
#include "cluster/ask.h"

/*
 * The generic cell rate algorithm over KEYS (one per exact bucket, a string: the
 * theoretical arrival time in ms of Redis's clock), ARGV rate and burst per key: admits
 * the request at every key or at none. Returns {0, remaining, reset_ms, ...} (per key,
 * in order) or {i, retry_after_ms} when key i (from 1) refused.
 */
static mgw_redis_script_t gcra_script = {
    .source = "local t = redis.call('TIME')\n"
              "local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000\n"
              "local tats, out = {}, {0}\n"
              "for i = 1, #KEYS do\n"
              "  local iv = 1000 / tonumber(ARGV[2 * i - 1])\n"
              "  local tol = tonumber(ARGV[2 * i]) * iv\n"
              "  local tat = tonumber(redis.call('GET', KEYS[i])) or now\n"
              "  if tat < now then tat = now end\n"
              "  local ahead = tat + iv - now\n"
              "  if ahead > tol then return {i, math.ceil(ahead - tol)} end\n"
              "  tats[i] = tat + iv\n"
              "  out[#out + 1] = math.floor((tol - ahead) / iv)\n"
              "  out[#out + 1] = math.ceil(ahead)\n"
              "end\n"
              "for i = 1, #KEYS do\n"
              "  redis.call('SET', KEYS[i], string.format('%.3f', tats[i]), 'PX',\n"
              "    math.ceil(tats[i] - now) + 1000)\n"
              "end\n"
              "return out\n",
};

static mgw_stat_family_t checks = {.name = "moongate_cluster_throttle_exact_total",
                                   .type = "counter",
                                   .help = "Requests checked against exact throttle limits in "
                                           "Redis by outcome: allowed, throttled, late (no "
                                           "answer within sync_interval_ms), error, down "
                                           "(Redis unreachable); the last three are decided by "
                                           "the node's fallback limit.",
                                   .labels = {"outcome"}};

enum { OUT_ALLOWED, OUT_THROTTLED, OUT_LATE, OUT_ERROR, OUT_DOWN, NOUT };

static mgw_stat_t out[NOUT];
static int stat_ready;
static mgw_cluster_once_t failing; /* checks answered with an error (main loop) */

/* A check in flight (cluster/ask.h). */
typedef struct {
    mgw_ask_t ask;
    void (*done)(mgw_req_t *r, void *arg, const mgw_exact_t *answer);
    void *arg;
    int n;
    char key[MGW_LIMITS_MAX][128]; /* key_prefix (at most 64) + ":thrx:" + 32 */
    char rate[MGW_LIMITS_MAX][32], burst[MGW_LIMITS_MAX][24];
    int outcome; /* OUT_*, of Redis's answer */
    mgw_exact_t answer;
} check_t;

/* Main loop: the script over the check's keys. */
static int send_check(mgw_ask_t *a)
{
    check_t *c = (check_t *)a;
    const char *argv[3 * MGW_LIMITS_MAX];
    for (int k = 0; k < c->n; k++) {
        argv[k] = c->key[k];
        argv[c->n + 2 * k] = c->rate[k];
        argv[c->n + 2 * k + 1] = c->burst[k];
    }
    return mgw_cluster_eval(&gcra_script, mgw_ask_replied, a, c->n, 3 * c->n, argv, NULL);
}

/* Reads Redis's answer into c->answer; returns the outcome. */
static int parse(check_t *c, const mgw_redis_reply_t *reply)
{
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 2) return OUT_ERROR;
    for (size_t i = 0; i < reply->elements; i++)
        if (reply->element[i]->type != REDIS_REPLY_INTEGER || reply->element[i]->integer < 0)
            return OUT_ERROR;
    long long first = reply->element[0]->integer;
    mgw_exact_t *a = &c->answer;
    if (first > 0) {
        if (first > c->n || reply->elements != 2) return OUT_ERROR;
        a->refused = (int)first - 1;
        a->take[a->refused] = (mgw_take_t){.retry_after_ms = (uint64_t)reply->element[1]->integer};
        return OUT_THROTTLED;
    }
    if (reply->elements != 1 + 2 * (size_t)c->n) return OUT_ERROR;
    a->refused = -1;
    for (int k = 0; k < c->n; k++)
        a->take[k] = (mgw_take_t){.remaining = (uint64_t)reply->element[1 + 2 * k]->integer,
                                  .reset_ms = (uint64_t)reply->element[2 + 2 * k]->integer};
    return OUT_ALLOWED;
}

/* Main loop: Redis answered in time. */
static void keep(mgw_ask_t *a, const mgw_redis_reply_t *reply)
{
    check_t *c = (check_t *)a;
    c->outcome = parse(c, reply);
    c->answer.decided = c->outcome != OUT_ERROR;
    if (c->outcome == OUT_ERROR)
        mgw_cluster_failed(&failing, "an exact throttle check", reply);
    else
        mgw_cluster_ok(&failing);
}

/* r's worker: the phase goes on (undecided: the local fallback decides). */
static void done(mgw_req_t *r, mgw_ask_t *a)
{
    check_t *c = (check_t *)a;
    int outcome = a->outcome == MGW_ASK_ANSWERED ? c->outcome
                  : a->outcome == MGW_ASK_DOWN   ? OUT_DOWN
                                                 : OUT_LATE;
    mgw_stat_add(out[outcome], 1);
    c->done(r, c->arg, &c->answer);
}

static const mgw_ask_ops_t check_ops = {.send = send_check, .keep = keep, .done = done};

/* ---- the request core's table (gw/gw.h) ---- */

static int check(mgw_req_t *r, mgw_bucket_t *const *b, int n,
                 void (*done)(mgw_req_t *r, void *arg, const mgw_exact_t *answer), void *arg)
{
    if (!stat_ready) return -1; /* no cluster */
    check_t *c = mgw_calloc(1, sizeof(*c));
    c->ask.ops = &check_ops;
    c->done = done;
    c->arg = arg;
    c->n = n;
    for (int k = 0; k < n; k++) {
        char id[33], name[40];
        mgw_bucket_id(b[k], id);
        snprintf(name, sizeof(name), "thrx:%s", id);
        mgw_cluster_key(c->key[k], sizeof(c->key[k]), name);
        snprintf(c->rate[k], sizeof(c->rate[k]), "%.17g", mgw_bucket_rate(b[k]));
        snprintf(c->burst[k], sizeof(c->burst[k]), "%llu",
                 (unsigned long long)mgw_bucket_burst(b[k]));
    }
    if (mgw_ask_start(r, &c->ask) != 0) {
        mgw_stat_add(out[OUT_DOWN], 1);
        return -1;
    }
    return 0;
}

static const mgw_exact_ops_t exact_ops = {.check = check};

/* ---- the cluster's part ---- */

static int start(const mgw_gen_t *g)
{
    (void)g;
    static const char *const names[NOUT] = {"allowed", "throttled", "late", "error", "down"};
    for (int i = 0; i < NOUT; i++)
        out[i] = mgw_stat_series(&checks, (const char *const[]){names[i]});
    stat_ready = 1;
    return 0;
}

const mgw_cluster_part_t mgw_cluster_exact_part = {
    .name = "throttle-exact",
    .start = start,
};

void mgw_cluster_exact_register(void)
{
    mgw_gw_set_exact(&exact_ops);
}
