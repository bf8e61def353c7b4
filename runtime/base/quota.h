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

/* Appends every changed counter to the write-ahead file and syncs it. Main thread. */
void mgw_quota_flush(void);

/* The index of the period holding t (days, Monday-based weeks or months since 1970). */
int64_t mgw_quota_period(int period, time_t t);
/* The first second of the period after index idx. */
time_t mgw_quota_period_end(int period, int64_t idx);

#endif
