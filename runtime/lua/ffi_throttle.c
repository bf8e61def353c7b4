/*
 * Throttling as seen from Lua policies (lua/moongate/throttle.lua): the limits that
 * apply to the current request, and named buckets a policy consumes from (a WAF rule
 * limiting by a custom key). FFI boundary per STYLE.md rule 9.
 */
#include <stdio.h>
#include <string.h>

#include "lua/lua_int.h"

static void fill(mgw_ffi_limit_t *l, const char *policy, const mgw_bucket_t *b, const mgw_take_t *t)
{
    l->policy = policy;
    l->rate = mgw_bucket_rate(b);
    l->burst = mgw_bucket_burst(b);
    l->remaining = t->remaining;
    l->reset_ms = t->reset_ms;
    l->retry_after_ms = t->retry_after_ms;
}

/*
 * The limits that apply to r so far (the plan levels once its API key is known), with
 * their current state, taking nothing. Fills at most max entries of out; returns how
 * many apply (count-then-fill: call with max 0 first).
 */
int mgw_ffi_throttle_limits(mgw_req_t *r, mgw_ffi_limit_t *out, int max)
{
    const mgw_stage_t *st = r->stage;
    const mgw_member_t *m = r->key && r->api && st ? mgw_key_member(r->key, r->api, st) : NULL;
    mgw_limit_t lv[MGW_LIMITS_MAX];
    int n = mgw__req_limits(r, m, lv);
    uint64_t now = mgw_throttle_now();
    for (int i = 0; i < n && i < max; i++) {
        mgw_take_t t;
        mgw_bucket_peek(lv[i].bucket, now, &t);
        fill(&out[i], lv[i].policy, lv[i].bucket, &t);
    }
    return n;
}

/*
 * Takes a token from the named bucket key (n bytes) with this rate and burst, shared by
 * every worker and kept across reloads while its limit is unchanged. Returns 1 when
 * admitted, 0 when refused (out says when to retry), or -1 with *err set.
 */
int mgw_ffi_throttle_take(mgw_req_t *r, const char *key, size_t n, double rate, uint64_t burst,
                          mgw_ffi_limit_t *out, const char **err)
{
    if (n == 0 || n > 512) return *err = "bucket key must be 1 to 512 bytes", -1;
    if (!(rate > 0) || rate > 1e9) return *err = "rate must be > 0 and at most 1e9", -1;
    if (burst > 1000000000ull) return *err = "burst must be at most 1e9", -1;
    char full[600];
    int len = snprintf(full, sizeof(full), "lua|%.*s|%.17g|%llu", (int)n, key, rate,
                       (unsigned long long)burst);
    mgw_bucket_t *b = mgw_throttle_bucket(full, (size_t)len, rate, burst);
    if (b == NULL) return *err = "too many throttle buckets", -1;
    mgw_take_t t;
    int ok = mgw_bucket_take(b, mgw_throttle_now(), &t);
    fill(out, "lua", b, &t);
    (void)r;
    return ok;
}
