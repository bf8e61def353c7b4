/*
 * The cluster (README "Running a cluster"): nodes that share throttles, quotas,
 * WebSocket connections and caches through one Redis server, so that a limit of 100
 * requests/s stays 100 with three nodes and @connections on one node reaches a client on
 * another. Without `cluster` in the configuration none of this runs and nothing changes.
 *
 * This file is the node's link to Redis, on the main thread's loop, through hiredis's
 * libuv adapter: a command connection and a subscriber connection (pub/sub), each
 * authenticated (AUTH) and on the configured database (SELECT), reconnected with backoff
 * when they break, and watched: a command or connect unanswered for redis.timeout_ms
 * marks Redis down. Requests never wait for Redis: what a request path needs (a share of
 * a bucket, a quota count) is kept locally by the feature and settled from here.
 *
 * A feature that shares state is a part (a table entry): the link calls its functions on
 * the main thread at start, on every sync tick, when Redis comes and goes, when a new
 * generation is about to serve, and at shutdown. Workers reach the main loop with
 * mgw_cluster_post; what comes back to a worker goes through its mailbox.
 *
 * Every key and channel is "<key_prefix>:<name>" (mgw_cluster_key); pub/sub channels are
 * not per database, so two clusters on one Redis need different prefixes.
 */
#ifndef MGW_CLUSTER_H
#define MGW_CLUSTER_H

#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

#include "conf/gen.h"
#include "net/worker.h"

/* A reply from Redis (hiredis's: type REDIS_REPLY_*, integer, str/len, element/elements). */
typedef struct redisReply mgw_redis_reply_t;

/*
 * What a command's callback gets, on the main loop, exactly once: the reply (which may be
 * an error reply, type REDIS_REPLY_ERROR), or NULL when the link broke, timed out or
 * shut down before the answer came.
 */
typedef void (*mgw_redis_cb)(const mgw_redis_reply_t *reply, void *ud);

/* A feature that shares state through Redis. Any function may be NULL. Main thread. */
typedef struct {
    const char *name;
    /* Start-up, the first generation, before the link connects. 0, or an MGW_E* code
     * (logged by the part) that fails the start. */
    int (*start)(const mgw_gen_t *g);
    /* Every sync_interval_ms while the node runs; up: Redis is reachable now. */
    void (*tick)(uint64_t now_ms, int up);
    /* Redis became reachable (1: both connections ready, subscriptions made) or not (0). */
    void (*state)(int up);
    /* A new generation is about to serve (each reload; the first is start's). */
    void (*gen)(mgw_gen_t *g);
    /* Shutdown, the workers have ended: settle what is left (Redis may be down). */
    void (*stop)(void);
} mgw_cluster_part_t;

/* Adds part (static storage); at start-up, before mgw_server_run. At most 8. */
void mgw_cluster_part_register(const mgw_cluster_part_t *part);

/* The cluster's worker ops (main.c registers them after the HTTP client's). */
extern const mgw_worker_ops_t mgw__cluster_worker_ops;

/* Main thread, a new generation is about to serve (ctl/reload.c): the parts' gen, and a
 * warning when the generation's `cluster` differs from the one the node started with. */
void mgw_cluster_gen(mgw_gen_t *g);

/* ---- state, any thread ---- */

/* 1 when the configuration has `cluster` (fixed at start-up). */
int mgw_cluster_enabled(void);
/* 1 when Redis is reachable now (both connections ready). */
int mgw_cluster_up(void);
/* This node's node_id ("" when the cluster is off). */
const char *mgw_cluster_node(void);
/* The fallback divisor: expected_nodes, or the number of nodes last seen alive (>= 1). */
int mgw_cluster_nodes(void);
/* The configuration the node started with (NULL when the cluster is off). */
const mgw_cluster_conf_t *mgw_cluster_conf(void);
/* Writes "<key_prefix>:<name>" into out (cap bytes, truncated); returns its length. */
size_t mgw_cluster_key(char *out, size_t cap, const char *name);
/* The key of a shared cache's entry that names no secret: "<key_prefix>:<kind>:" + 16 hex
 * digits of ns (the cache's digest) + ":" + the 64 of id's SHA-256 (the token or identity,
 * n bytes). out has MGW_CLUSTER_DIGEST_KEY bytes. */
#define MGW_CLUSTER_DIGEST_KEY 176
void mgw_cluster_digest_key(char out[MGW_CLUSTER_DIGEST_KEY], const char *kind,
                            const uint8_t ns[32], const void *id, size_t n);

/* ---- commands, main thread ---- */

/* The main loop (for a part's own timers). */
uv_loop_t *mgw_cluster_loop(void);

/*
 * Sends a command (argc arguments; lens NULL: C strings). cb runs once (see
 * mgw_redis_cb); cb may be NULL (fire and forget). Returns 0, or MGW_ECLOSED when Redis is
 * down (cb is not called).
 */
int mgw_cluster_cmd(mgw_redis_cb cb, void *ud, int argc, const char **argv, const size_t *lens);

/* A Lua script run in Redis: source, and its SHA-1 (hex), filled in on first use. */
typedef struct {
    const char *source;
    char sha[41];
    unsigned loaded; /* the link's, zero in the definition */
} mgw_redis_script_t;

/*
 * Runs script with nkeys keys followed by the other arguments (argc in all, lens NULL: C
 * strings): EVALSHA, after a SCRIPT LOAD once per connection. A script flushed from a live
 * connection (SCRIPT FLUSH) answers that call with NOSCRIPT, and the next call loads it
 * again. Returns as mgw_cluster_cmd.
 */
int mgw_cluster_eval(mgw_redis_script_t *script, mgw_redis_cb cb, void *ud, int nkeys, int argc,
                     const char **argv, const size_t *lens);

/*
 * Subscribes to channel (the name after the prefix; made into a key by the link), for
 * the node's life: cb gets each message on the main loop; subscriptions are made again
 * after every reconnect. At start-up or later; at most 16 channels.
 */
void mgw_cluster_subscribe(const char *channel, void (*cb)(const char *msg, size_t n, void *ud),
                           void *ud);
/* PUBLISH on channel (the name after the prefix); the reply's integer is the number of
 * nodes that received it. Returns as mgw_cluster_cmd. */
int mgw_cluster_publish(const char *channel, const void *msg, size_t n, mgw_redis_cb cb, void *ud);

/*
 * A kind of call whose failures are logged once: mgw_cluster_failed logs "cluster: <what>
 * failed in Redis: <the error reply's message, or "unexpected reply">" the first time
 * after a success (nothing for reply NULL: the link logs Redis going down), and
 * mgw_cluster_ok re-arms it.
 */
typedef struct {
    int failing;
} mgw_cluster_once_t;

void mgw_cluster_failed(mgw_cluster_once_t *once, const char *what, const mgw_redis_reply_t *reply);
static inline void mgw_cluster_ok(mgw_cluster_once_t *once)
{
    once->failing = 0;
}

/* ---- from other threads ---- */

/* Any thread: runs fn(ud) on the main loop (a post still queued when shutdown closes the
 * main loop's mailbox runs then). Returns 0, or MGW_ECLOSED when the cluster is off or
 * shutting down (fn does not run; ud stays the caller's). */
int mgw_cluster_post(void (*fn)(void *ud), void *ud);

#endif
