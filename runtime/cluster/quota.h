/*
 * Usage-plan quotas counted across the nodes of a cluster: the part that settles
 * base/quota's slots with Redis (cluster/quota.c has the design). main.c registers it.
 */
#ifndef MGW_CLUSTER_QUOTA_H
#define MGW_CLUSTER_QUOTA_H

#include "cluster/cluster.h"

extern const mgw_cluster_part_t mgw_cluster_quota_part;

#endif
