/*
 * Cluster-wide throttle buckets (README "Running a cluster", "Throttling in a cluster"):
 * the cluster's part that settles every bucket's local share with Redis. Each bucket of
 * base/throttle.h has one hash in Redis, "<key_prefix>:thr:<bucket id>", holding the
 * cluster's token bucket (tokens, when it was last refilled) and each node's recent
 * demand. On every sync tick a node sends, for each bucket it used or holds a share of,
 * one script that refills the bucket from Redis's clock, takes back what the node
 * returns and leases it new tokens sized to its demand; under contention a node gets at
 * most its part of the demand of all nodes, so a node with 80% of the traffic gets about
 * 80% of the tokens. The tokens in Redis's bucket and in the nodes' shares together never
 * exceed the burst. All the buckets of a tick go out together (hiredis pipelines them).
 *
 * While Redis is unreachable every bucket runs locally with limit / mgw_cluster_nodes()
 * (FALLBACK); when it is back, every bucket leases a share again.
 */
#ifndef MGW_CLUSTER_THROTTLE_H
#define MGW_CLUSTER_THROTTLE_H

#include <stdint.h>

#include "cluster/cluster.h"

extern const mgw_cluster_part_t mgw_cluster_throttle_part;

/*
 * The share arithmetic, pure: the demand estimate after a tick (tokens/second, an average
 * that follows the demand within a few ticks) from the previous one, the takes seen in
 * the tick and its length; then how many tokens a node holding `have` returns (*ret) or
 * asks for (*want) so that its share covers two ticks of that demand plus a standby (at
 * least one token), never more than burst.
 */
double mgw__thr_demand(double prev, uint64_t takes, uint64_t tick_ms);
void mgw__thr_plan(double demand, uint64_t tick_ms, uint64_t burst, int64_t standby, int64_t have,
                   int64_t *ret, int64_t *want);

#endif
