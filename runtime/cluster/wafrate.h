/*
 * Rate-based web ACL rules counted across the nodes of a cluster: the part that settles
 * the rules' base/ratewin stores with Redis (cluster/wafrate.c has the design). main.c
 * registers it.
 */
#ifndef MGW_CLUSTER_WAFRATE_H
#define MGW_CLUSTER_WAFRATE_H

#include "cluster/cluster.h"

extern const mgw_cluster_part_t mgw_cluster_waf_rate_part;

#endif
