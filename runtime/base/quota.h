/*
 * Usage-plan quotas: requests per day, week or month and API key, counted in slots
 * shared by every worker (one atomic word each: period and count), and made durable by
 * a write-ahead file in the state directory: changed counters are appended and synced at
 * least every second, and replayed at start-up. A corrupt record is reported and
 * skipped; it never stops the gateway.
 */
#ifndef MGW_QUOTA_H
#define MGW_QUOTA_H

#include <stdint.h>
#include <time.h>

#include "base/pool.h"

enum { MGW_QUOTA_DAY, MGW_QUOTA_WEEK, MGW_QUOTA_MONTH };

typedef struct mgw_quota_s mgw_quota_t;

/*
 * Opens (creating it if needed) the state directory and replays dir/quotas.wal, then
 * compacts it. Returns 0, or MGW_EIO with the reason in err. Call once, before slots are
 * created; a gateway that cannot open it still runs, without durable quotas.
 */
int mgw_quota_open(const char *dir, mgw_buf_t *err);

/*
 * The slot for key, created on first use (configuration build, not the request path).
 * A replayed record of the same key gives its count back.
 */
mgw_quota_t *mgw_quota_slot(const char *key);

/*
 * Counts one request at wall-clock time now against limit per period, where the first
 * period the slot was used in allows limit - offset. Returns 1 and sets *remaining and
 * *reset_s (seconds to the next period), or 0 when the quota is used up.
 */
int mgw_quota_take(mgw_quota_t *q, int period, uint64_t limit, uint64_t offset, time_t now,
                   uint64_t *remaining, uint64_t *reset_s);
/* Takes back a counted request (a later check refused it). */
void mgw_quota_refund(mgw_quota_t *q);

/*
 * ---- counts of other nodes (cluster/quota.c; README "Running a cluster") ----
 * A slot also holds what the other nodes of a cluster counted for its key in a period,
 * set from Redis by the main thread; mgw_quota_take refuses when this node's count plus
 * theirs reaches the limit. Without a cluster it stays empty and costs one load from the
 * slot's cache line.
 */

/* The period kind of slot q (MGW_QUOTA_*), set once by the configuration; -1: unknown. */
void mgw_quota_set_kind(mgw_quota_t *q, int kind);
int mgw_quota_kind(const mgw_quota_t *q);
/* The slots made so far (they are never freed), and slot i below such a count. Any thread. */
int mgw_quota_nslots(void);
mgw_quota_t *mgw_quota_at(int i);
/* The key the slot was made for. */
const char *mgw_quota_key(const mgw_quota_t *q);
/*
 * This node's count and its period. Returns 1 when it changed since the last call that
 * returned 1 (or since mgw_quota_mark_all), and forgets that it changed.
 */
int mgw_quota_own(mgw_quota_t *q, int64_t *period, uint64_t *count);
/* Makes every slot read as changed by the next mgw_quota_own (a resynchronization). */
void mgw_quota_mark_all(void);
/* Marks q changed again (its count could not be sent). */
void mgw_quota_mark(mgw_quota_t *q);
/* What the other nodes counted for q in period. */
void mgw_quota_set_others(mgw_quota_t *q, int64_t period, uint64_t count);
/* The other nodes' count for q in period (0 when none is known for it). */
uint64_t mgw_quota_others(const mgw_quota_t *q, int64_t period);
/* Adds n to this node's count in period (a count Redis knew and the file had not yet). */
void mgw_quota_adopt(mgw_quota_t *q, int64_t period, uint64_t n);

/* Appends every changed counter to the write-ahead file and syncs it. Main thread. */
void mgw_quota_flush(void);

/* The index of the period holding t (days, Monday-based weeks or months since 1970). */
int64_t mgw_quota_period(int period, time_t t);
/* The first second of the period after index idx. */
time_t mgw_quota_period_end(int period, int64_t idx);

#endif
