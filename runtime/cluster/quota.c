/*
 * Usage-plan quotas counted across the nodes of a cluster (README "Running a cluster"):
 * a part of the link (cluster/cluster.h). Requests count as on one node, in base/quota's
 * slots (one atomic word, the write-ahead file as the local record); this part, on the
 * main thread, settles the slots with Redis every sync tick:
 *
 *   <prefix>:quota:<slot key>:<period>   a hash: node id -> that node's count
 *
 * Each node writes its own full count of the current period (not a difference), so a
 * write is idempotent: a Redis that restarted empty, or lost a write, has every count back
 * after the next tick that sends it (every slot is sent again when Redis comes back), and
 * the counts come from the nodes' write-ahead files: nothing acknowledged to them is lost.
 * The same script returns the other nodes' sum, which the slot keeps
 * (mgw_quota_set_others): a request is refused when its node's live count plus that sum
 * reaches the limit. A node therefore admits at most what the other nodes served since
 * the last tick too many (sync_interval_ms × the cluster's request rate for the key).
 *
 * A tick sends at most BATCH slots: those counted since they were last sent first, then
 * the others in turn (their sums change through other nodes), so every slot's sum is at
 * most (slots / BATCH) ticks old. One script call is in Redis at a time.
 *
 * The first time a slot is settled after start-up the script only reads: when Redis holds
 * more of this node's requests than the file gave back (the node stopped between a tick
 * and the file's sync, or lost its state directory), the node takes that count.
 *
 * Redis down: each node counts alone, against the limit minus the others' last known sum
 * (which only grows within a period), and the write-ahead file as always.
 */
#include "cluster/quota.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/log.h"
#include "base/mem.h"
#include "base/quota.h"
#include "base/stat.h"
#include "cluster/cluster.h"

#define BATCH 256
/* "<key_prefix>:quota:" (at most 71) + a slot's key (at most 511: base/quota.c's WAL) +
 * ":" + the period index */
#define KEY_MAX 608
/* a period's hash outlives the period by a day: nodes' clocks differ a little */
#define SLACK_S 86400

/* KEYS: a hash per slot and period. ARGV[1]: this node's id; then per key its count ("?":
 * only read; "0": none) and the Unix time the hash expires at. Returns per key the other
 * nodes' sum and what the hash held for this node before. */
static mgw_redis_script_t script = {
    .source = "local me, out = ARGV[1], {}\n"
              "for i = 1, #KEYS do\n"
              "  local k, own, at = KEYS[i], ARGV[2 * i], ARGV[2 * i + 1]\n"
              "  local mine = tonumber(redis.call('HGET', k, me) or '0')\n"
              "  if own == '0' then redis.call('HDEL', k, me)\n"
              "  elseif own ~= '?' then\n"
              "    redis.call('HSET', k, me, own)\n"
              "    redis.call('EXPIREAT', k, at)\n"
              "  end\n"
              "  local all, sum = redis.call('HGETALL', k), 0\n"
              "  for j = 1, #all, 2 do\n"
              "    if all[j] ~= me then sum = sum + tonumber(all[j + 1]) end\n"
              "  end\n"
              "  out[#out + 1] = sum\n"
              "  out[#out + 1] = mine\n"
              "end\n"
              "return out\n",
};

typedef struct {
    int slot;       /* index of the slot (mgw_quota_at) */
    int64_t period; /* the period sent */
    uint64_t own;   /* this node's count sent */
    int changed;    /* it was counted since last sent: sent again if this batch fails */
    int first;      /* a read-only first settlement */
} item_t;

static struct {
    int busy;                   /* a batch is in Redis */
    int next;                   /* the slot the turn goes on from */
    int changed_from;           /* the slot the scan for changed ones goes on from */
    mgw_cluster_once_t failing; /* batches answered with an error */
    unsigned char *seen;        /* per slot: settled once since start-up */
    int nseen;
    item_t items[BATCH];
    int n;
} st;

static mgw_stat_family_t syncs = {
    .name = "moongate_cluster_quota_syncs_total",
    .type = "counter",
    .help = "Quota settlements with Redis (a script call for up to 256 quota keys), by outcome "
            "(ok, error)",
    .labels = {"outcome"},
};
static mgw_stat_family_t synced = {
    .name = "moongate_cluster_quota_keys_synced_total",
    .type = "counter",
    .help = "Quota keys settled with Redis (sent and their cluster sum read back)",
    .labels = {NULL},
};

static int seen(int i)
{
    return i < st.nseen && st.seen[i];
}

static void set_seen(int i)
{
    if (i >= st.nseen) {
        int n = st.nseen ? st.nseen : 1024;
        while (n <= i)
            n *= 2;
        st.seen = mgw_realloc(st.seen, (size_t)n);
        memset(st.seen + st.nseen, 0, (size_t)(n - st.nseen));
        st.nseen = n;
    }
    st.seen[i] = 1;
}

/* Adds slot i to the batch (changed: it was counted since last sent). */
static void add(int i, mgw_quota_t *q, int64_t period, uint64_t count, int changed, time_t now)
{
    int kind = mgw_quota_kind(q);
    int64_t cur = kind >= 0 ? mgw_quota_period(kind, now) : period;
    item_t *it = &st.items[st.n++];
    it->slot = i;
    it->period = cur;
    it->own = period == cur ? count : 0;
    it->changed = changed;
    it->first = !seen(i);
}

static void settled(const mgw_redis_reply_t *reply, void *ud)
{
    (void)ud;
    st.busy = 0;
    int ok = reply && reply->type == REDIS_REPLY_ARRAY && reply->elements == (size_t)st.n * 2;
    mgw_stat_inc(&syncs, (const char *const[]){ok ? "ok" : "error"});
    if (!ok) {
        mgw_cluster_failed(&st.failing, "the quota settlement", reply);
        for (int i = 0; i < st.n; i++)
            if (st.items[i].changed || st.items[i].first)
                mgw_quota_mark(mgw_quota_at(st.items[i].slot));
        st.n = 0;
        return;
    }
    mgw_cluster_ok(&st.failing);
    mgw_stat_add(mgw_stat_series(&synced, NULL), st.n);
    for (int i = 0; i < st.n; i++) {
        const item_t *it = &st.items[i];
        const mgw_redis_reply_t *others = reply->element[2 * i], *mine = reply->element[2 * i + 1];
        mgw_quota_t *q = mgw_quota_at(it->slot);
        if (others->type == REDIS_REPLY_INTEGER && others->integer >= 0)
            mgw_quota_set_others(q, it->period, (uint64_t)others->integer);
        if (!it->first) continue;
        /* Redis knew more of this node's requests than the file: take them. */
        if (mine->type == REDIS_REPLY_INTEGER && mine->integer > 0 &&
            (uint64_t)mine->integer > it->own)
            mgw_quota_adopt(q, it->period, (uint64_t)mine->integer - it->own);
        set_seen(it->slot);
        mgw_quota_mark(q); /* now write this node's count */
    }
    st.n = 0;
}

/* Sends the batch: one script call. */
static void send_batch(mgw_redis_cb cb)
{
    int argc = 1 + st.n * 3, k = 0;
    const char **argv = mgw_malloc(sizeof(char *) * (size_t)argc);
    char *text = mgw_malloc((size_t)st.n * (KEY_MAX + 64));
    char *keys = text, *vals = text + (size_t)st.n * KEY_MAX;
    for (int i = 0; i < st.n; i++) {
        const item_t *it = &st.items[i];
        mgw_quota_t *q = mgw_quota_at(it->slot);
        char name[KEY_MAX];
        snprintf(name, sizeof(name), "quota:%s:%" PRId64, mgw_quota_key(q), it->period);
        char *key = keys + (size_t)i * KEY_MAX;
        mgw_cluster_key(key, KEY_MAX, name);
        argv[k++] = key;
    }
    argv[k++] = mgw_cluster_node();
    for (int i = 0; i < st.n; i++) {
        const item_t *it = &st.items[i];
        mgw_quota_t *q = mgw_quota_at(it->slot);
        int kind = mgw_quota_kind(q);
        time_t end = kind >= 0 ? mgw_quota_period_end(kind, it->period) : time(NULL) + 31 * 86400;
        char *own = vals + (size_t)i * 64, *at = own + 32;
        if (it->first)
            snprintf(own, 32, "?");
        else
            snprintf(own, 32, "%" PRIu64, it->own);
        snprintf(at, 32, "%lld", (long long)end + SLACK_S);
        argv[k++] = own;
        argv[k++] = at;
    }
    st.busy = cb != NULL; /* before: a callback may come at once */
    int rc = mgw_cluster_eval(&script, cb, NULL, st.n, argc, argv, NULL);
    free(argv);
    free(text);
    if (cb == NULL)
        st.n = 0;
    else if (rc != 0)
        settled(NULL, NULL);
}

/* Fills the batch: slots counted since last sent, then the others in turn. */
static void fill(time_t now)
{
    int n = mgw_quota_nslots();
    st.n = 0;
    /* from where the last full batch stopped: busy low slots cannot starve the others */
    int j = 0;
    for (; j < n && st.n < BATCH; j++) {
        int i = (st.changed_from + j) % n;
        mgw_quota_t *q = mgw_quota_at(i);
        int64_t period;
        uint64_t count;
        if (mgw_quota_own(q, &period, &count)) add(i, q, period, count, 1, now);
    }
    st.changed_from = n ? (st.changed_from + j) % n : 0;
    int budget = BATCH - st.n;
    if (budget > n) budget = n;
    for (int j = 0; j < budget && st.n < BATCH; j++) {
        int i = (st.next + j) % n;
        int dup = 0;
        for (int k = 0; k < st.n && !dup; k++)
            dup = st.items[k].slot == i;
        if (dup) continue;
        mgw_quota_t *q = mgw_quota_at(i);
        if (mgw_quota_kind(q) < 0) continue; /* not a configured plan's: nothing to read */
        int64_t period;
        uint64_t count;
        int changed = mgw_quota_own(q, &period, &count);
        add(i, q, period, count, changed, now);
    }
    if (n) st.next = (st.next + budget) % n;
}

static void tick(uint64_t now_ms, int up)
{
    (void)now_ms;
    if (!up || st.busy) return;
    fill(time(NULL));
    if (st.n) send_batch(settled);
}

static void state(int up)
{
    /* Redis may have restarted empty: every count goes again. */
    if (up) mgw_quota_mark_all();
}

static void stop(void)
{
    /* The last counts, if Redis is there (the file has them anyway). */
    if (!st.busy && mgw_cluster_up()) {
        st.n = 0;
        time_t now = time(NULL);
        int n = mgw_quota_nslots();
        for (int i = 0; i < n && st.n < BATCH; i++) {
            mgw_quota_t *q = mgw_quota_at(i);
            int64_t period;
            uint64_t count;
            if (seen(i) && mgw_quota_own(q, &period, &count)) add(i, q, period, count, 1, now);
        }
        if (st.n) send_batch(NULL);
    }
    free(st.seen);
    st.seen = NULL;
    st.nseen = 0;
}

const mgw_cluster_part_t mgw_cluster_quota_part = {
    .name = "quota",
    .tick = tick,
    .state = state,
    .stop = stop,
};
