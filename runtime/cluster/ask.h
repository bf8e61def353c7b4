/*
 * A request that waits for Redis (README "Running a cluster": exact limits, shared
 * authorizer caches): one call made on the main loop for a request on a worker, its
 * answer back on that worker through its mailbox, at most cluster.sync_interval_ms after
 * it was sent, so that a slow Redis never holds a request longer. A request that ends
 * first (its client left) is not touched: the answer finds nobody.
 *
 * The caller's struct begins with an mgw_ask_t and its ops: send makes the call on the
 * main loop (with mgw_ask_replied as its callback), keep reads what the worker needs out
 * of the reply there (hiredis frees it afterwards), done goes on with the request on its
 * worker; send and keep never touch the request (it may have ended: they work on copies
 * in the caller's struct). An ask is used once; the cluster frees it (ops->free first) when the
 * request, the call and the answer are all done with it.
 */
#ifndef MGW_CLUSTER_ASK_H
#define MGW_CLUSTER_ASK_H

#include <stdatomic.h>

#include "cluster/cluster.h"
#include "gw/gw.h"
#include "net/mailbox.h"

typedef struct mgw_ask_s mgw_ask_t;

/* How an ask ended (mgw_ask_t.outcome, for done). */
enum {
    MGW_ASK_ANSWERED, /* Redis answered in time (keep ran; the reply may be an error) */
    MGW_ASK_LATE,     /* no answer within sync_interval_ms, or the link broke first */
    MGW_ASK_DOWN,     /* Redis unreachable when the call was to be sent */
};

typedef struct {
    /* Main loop: makes exactly one call for a, callback mgw_ask_replied, ud a; returns as
     * mgw_cluster_cmd (not 0: a ends MGW_ASK_DOWN). */
    int (*send)(mgw_ask_t *a);
    /* Main loop: what the worker needs of the reply (not NULL). */
    void (*keep)(mgw_ask_t *a, const mgw_redis_reply_t *reply);
    /* r's worker: a ended (a->outcome); not called when r ended first. */
    void (*done)(mgw_req_t *r, mgw_ask_t *a);
    /* Optional, any thread: frees what the caller's struct holds (not the struct). */
    void (*free)(mgw_ask_t *a);
} mgw_ask_ops_t;

struct mgw_ask_s {
    const mgw_ask_ops_t *ops;
    int outcome; /* MGW_ASK_*, for done */
    /* the cluster's */
    _Atomic int refs; /* the request's pool, the call, the answer's message */
    mgw_req_t *r;     /* NULL once the request ended (worker) */
    mgw_mailbox_t *reply_to;
    mgw_msg_t msg;
    mgw_ask_t *next; /* main loop: the asks waiting, in order of sending */
    uint64_t deadline_ms;
    int answered;
};

/*
 * Worker: starts a (mgw_calloc'd by the caller, a at the start of its struct, ops set)
 * for r. Returns 0: done runs later on r's worker (unless r ends first); or -1 when
 * Redis is down or the node is shutting down: a is freed, decide without Redis.
 */
int mgw_ask_start(mgw_req_t *r, mgw_ask_t *a);
/* The callback of the call ops->send makes. */
void mgw_ask_replied(const mgw_redis_reply_t *reply, void *ud);

/* Any thread: a command nobody waits for (its arguments copied; lens NULL: C strings),
 * sent on the main loop; nothing when Redis is down. */
void mgw_cluster_send(int argc, const char **argv, const size_t *lens);

/* The part (the timer that bounds the asks) and the answers' message kind; at start-up. */
extern const mgw_cluster_part_t mgw_cluster_ask_part;
void mgw_cluster_ask_register(void);

#endif
