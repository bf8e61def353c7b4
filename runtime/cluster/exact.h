/*
 * Exact throttle limits (README "Running a cluster", "Exact limits"): a limit with
 * `exact = true` is decided by Redis for every request, instead of from a local share.
 * The throttle phase (gw/request.c) hands the request's exact buckets to this table's
 * check on its worker; the check goes to the main loop (mgw_cluster_post), runs one
 * script there (the generic cell rate algorithm on Redis's clock, over every exact bucket
 * of the request at once: a token from each or from none) and the answer comes back
 * through the worker's mailbox (cluster/ask.h). An answer later than cluster.sync_interval_ms, an
 * error or Redis down leave the decision to the bucket's local fallback (limit / nodes), so a slow
 * Redis adds at most sync_interval_ms to a request. Each bucket is one string,
 * "<key_prefix>:thrx:<bucket id>", that expires once the bucket would be full again.
 */
#ifndef MGW_CLUSTER_EXACT_H
#define MGW_CLUSTER_EXACT_H

#include "cluster/cluster.h"

/* The part (its metrics; cluster/ask.c bounds the checks). */
extern const mgw_cluster_part_t mgw_cluster_exact_part;

/* At start-up: the request core's store of exact limits (gw/gw.h mgw_gw_set_exact).
 * Without `cluster` every check declines (local limits). */
void mgw_cluster_exact_register(void);

#endif
