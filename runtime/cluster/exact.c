#include "cluster/exact.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"
#include "base/stat.h"
#include "gw/req_int.h"
#include "net/mailbox.h"

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

/* A check in flight: made on the worker, sent from the main loop, answered on the worker. */
typedef struct ticket_s {
    /* the request's pool (its cleanup), the Redis call, the answer's message */
    _Atomic int refs;
    mgw_req_t *r; /* NULL once the request ended (worker) */
    void (*done)(mgw_req_t *r, void *arg, const mgw_exact_t *answer);
    void *arg;
    mgw_mailbox_t *reply_to;
    mgw_msg_t msg; /* the answer's */
    int n;
    char key[MGW_LIMITS_MAX][128]; /* key_prefix (at most 64) + ":thrx:" + 32 */
    char rate[MGW_LIMITS_MAX][32], burst[MGW_LIMITS_MAX][24];
    mgw_exact_t answer;
    /* main loop: the checks waiting for Redis, in order of sending (one bound for all) */
    struct ticket_s *next;
    uint64_t deadline_ms;
    int answered;
} ticket_t;

static void unref(ticket_t *t)
{
    if (atomic_fetch_sub_explicit(&t->refs, 1, memory_order_acq_rel) == 1) free(t);
}

/* ---- on the worker ---- */

static void answer_run(void *owner, mgw_msg_t *msg)
{
    (void)owner;
    ticket_t *t = msg->data;
    /* done may end the request, whose pool's cleanup then lets go of t too */
    if (t->r) t->done(t->r, t->arg, &t->answer);
    unref(t);
}

static void answer_drop(mgw_msg_t *msg)
{
    unref(msg->data);
}

static const mgw_msg_kind_t answer_kind = {"throttle-exact", answer_run, answer_drop};

/* The request ended (its pool's cleanup): an answer that comes now finds nobody. */
static void unwait(void *data)
{
    ticket_t *t = data;
    t->r = NULL;
    unref(t);
}

/* ---- on the main loop ---- */

static struct {
    ticket_t *head, *tail; /* waiting for Redis */
    uv_timer_t bound;
    int started, armed;
} X;

static uint64_t now_ms(void)
{
    return uv_now(mgw_cluster_loop());
}

static void unlink_ticket(ticket_t *t)
{
    ticket_t **p = &X.head, *prev = NULL;
    while (*p && *p != t)
        prev = *p, p = &(*p)->next;
    if (*p == NULL) return;
    *p = t->next;
    if (X.tail == t) X.tail = prev;
    t->next = NULL;
}

/* Sends t's answer to its worker, once. */
static void answer(ticket_t *t, int outcome)
{
    t->answered = 1;
    mgw_stat_add(out[outcome], 1);
    t->msg = (mgw_msg_t){.type = MGW_MSG_EXACT, .data = t};
    if (mgw_mailbox_send(t->reply_to, &t->msg) != 0) unref(t);
}

static void arm(void);

static void bound_cb(uv_timer_t *timer)
{
    (void)timer;
    X.armed = 0;
    uint64_t now = now_ms();
    while (X.head && X.head->deadline_ms <= now) {
        ticket_t *t = X.head;
        unlink_ticket(t);
        answer(t, OUT_LATE); /* undecided: the fallback decides */
    }
    arm();
}

static void arm(void)
{
    if (X.armed || X.head == NULL) return;
    uint64_t now = now_ms();
    uv_timer_start(&X.bound, bound_cb, X.head->deadline_ms > now ? X.head->deadline_ms - now : 0,
                   0);
    X.armed = 1;
}

/* Reads Redis's answer into t->answer; returns the outcome. */
static int parse(ticket_t *t, const mgw_redis_reply_t *reply)
{
    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY || reply->elements < 2) return OUT_ERROR;
    for (size_t i = 0; i < reply->elements; i++)
        if (reply->element[i]->type != REDIS_REPLY_INTEGER || reply->element[i]->integer < 0)
            return OUT_ERROR;
    long long first = reply->element[0]->integer;
    mgw_exact_t *a = &t->answer;
    if (first > 0) {
        if (first > t->n || reply->elements != 2) return OUT_ERROR;
        a->decided = 1;
        a->refused = (int)first - 1;
        a->take[a->refused] = (mgw_take_t){.retry_after_ms = (uint64_t)reply->element[1]->integer};
        return OUT_THROTTLED;
    }
    if (reply->elements != 1 + 2 * (size_t)t->n) return OUT_ERROR;
    a->decided = 1;
    a->refused = -1;
    for (int k = 0; k < t->n; k++)
        a->take[k] = (mgw_take_t){.remaining = (uint64_t)reply->element[1 + 2 * k]->integer,
                                  .reset_ms = (uint64_t)reply->element[2 + 2 * k]->integer};
    return OUT_ALLOWED;
}

static void replied(const mgw_redis_reply_t *reply, void *ud)
{
    ticket_t *t = ud;
    if (!t->answered) {
        unlink_ticket(t);
        int outcome = parse(t, reply);
        if (outcome == OUT_ERROR) {
            t->answer.decided = 0;
            mgw_cluster_failed(&failing, "an exact throttle check", reply);
        } else {
            mgw_cluster_ok(&failing);
        }
        answer(t, outcome);
    }
    unref(t); /* the Redis call's */
}

static void send_main(void *ud)
{
    ticket_t *t = ud;
    const char *argv[3 * MGW_LIMITS_MAX];
    for (int k = 0; k < t->n; k++) {
        argv[k] = t->key[k];
        argv[t->n + 2 * k] = t->rate[k];
        argv[t->n + 2 * k + 1] = t->burst[k];
    }
    if (!X.started || mgw_cluster_eval(&gcra_script, replied, t, t->n, 3 * t->n, argv, NULL) != 0) {
        unref(t); /* no call: its reference */
        answer(t, OUT_DOWN);
        return;
    }
    t->deadline_ms = now_ms() + mgw_cluster_conf()->sync_interval_ms;
    if (X.tail)
        X.tail->next = t;
    else
        X.head = t;
    X.tail = t;
    arm();
}

/* ---- the request core's table (gw/gw.h) ---- */

static int check(mgw_req_t *r, mgw_bucket_t *const *b, int n,
                 void (*done)(mgw_req_t *r, void *arg, const mgw_exact_t *answer), void *arg)
{
    if (!mgw_cluster_enabled() || !stat_ready) return -1;
    if (!mgw_cluster_up()) {
        mgw_stat_add(out[OUT_DOWN], 1);
        return -1;
    }
    ticket_t *t = mgw_calloc(1, sizeof(*t));
    t->r = r;
    t->done = done;
    t->arg = arg;
    t->reply_to = r->from.w->mailbox;
    t->n = n;
    for (int k = 0; k < n; k++) {
        char id[33], name[40];
        mgw_bucket_id(b[k], id);
        snprintf(name, sizeof(name), "thrx:%s", id);
        mgw_cluster_key(t->key[k], sizeof(t->key[k]), name);
        snprintf(t->rate[k], sizeof(t->rate[k]), "%.17g", mgw_bucket_rate(b[k]));
        snprintf(t->burst[k], sizeof(t->burst[k]), "%llu",
                 (unsigned long long)mgw_bucket_burst(b[k]));
    }
    /* the request's, the Redis call's (or the failed send's) and the answer's */
    atomic_init(&t->refs, 3);
    if (mgw_cluster_post(send_main, t) != 0) {
        free(t);
        mgw_stat_add(out[OUT_DOWN], 1);
        return -1;
    }
    mgw_pool_cleanup_add(r->pool, unwait, t);
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
    uv_timer_init(mgw_cluster_loop(), &X.bound);
    X.started = 1;
    return 0;
}

static void stop(void)
{
    /* The workers have ended: nothing waits for these answers any more. */
    while (X.head) {
        ticket_t *t = X.head;
        unlink_ticket(t);
        answer(t, OUT_LATE);
    }
    if (X.started) uv_close((uv_handle_t *)&X.bound, NULL);
    X.started = X.armed = 0;
}

const mgw_cluster_part_t mgw_cluster_exact_part = {
    .name = "throttle-exact",
    .start = start,
    .stop = stop,
};

void mgw_cluster_exact_register(void)
{
    mgw_mailbox_kind(MGW_MSG_EXACT, &answer_kind);
    mgw_gw_set_exact(&exact_ops);
}
