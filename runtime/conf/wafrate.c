#include "conf/wafrate.h"

#include <lua.h>
#include <string.h>

#include "base/ratewin.h"
#include "conf/lfield.h"

static const struct {
    const char *name, *aws;
} KINDS[] = {
#define XX(id, name, aws) {name, aws},
    MGW_RKEY_KINDS(XX)
#undef XX
};

const char *mgw_wafrate_kind_aws(int k)
{
    return k >= 0 && k < MGW_RKEY__COUNT ? KINDS[k].aws : "";
}

static int kind_of(const char *name)
{
    for (int k = 0; name && k < MGW_RKEY__COUNT; k++)
        if (strcmp(KINDS[k].name, name) == 0) return k;
    return -1;
}

static void release_counters(void *w)
{
    mgw_ratewin_release(w);
}

/* The rule on top of L's stack. */
static void read_rule(lua_State *L, mgw_gen_t *g, mgw_wafrate_t *rr, int check_only,
                      void (*error)(void *, const char *, const char *), void *ud)
{
    mgw_pool_t *pool = g->pool;
    rr->name = mgw__lfield_str(L, pool, "name");
    rr->where = mgw__lfield_str(L, pool, "where");
    rr->limit = (uint64_t)mgw__lfield_num(L, "limit", 0);
    rr->window_s = (int)mgw__lfield_num(L, "window", 300);
    rr->limit_key = mgw__lfield_str(L, pool, "limit_key");
    rr->forwarded_header = mgw__lfield_lstr(L, pool, "forwarded_header", MGW_NULL_STR);
    rr->fallback_match = mgw__lfield_bool(L, "fallback_match", 0);
    rr->scope_down = (int)mgw__lfield_num(L, "scope_down", -1) + 1;
    int n = mgw__lfield_list(L, "keys");
    for (int i = 0; i < n; i++) {
        lua_rawgeti(L, -1, i + 1);
        int k = kind_of(mgw__lfield_str(L, pool, "kind"));
        if (k < 0 || rr->nkeys == MGW_WAFRATE_MAX_KEYS) {
            error(ud, rr->where ? rr->where : "waf", "a rate-based rule's key part is not known");
        } else {
            rr->keys[rr->nkeys].kind = k;
            rr->keys[rr->nkeys].name = mgw__lfield_lstr(L, pool, "name", MGW_NULL_STR);
            rr->nkeys++;
        }
        lua_pop(L, 1);
    }
    if (n >= 0) lua_pop(L, 1);
    if (rr->name == NULL) rr->name = "rate-based";
    if (rr->limit_key == NULL) rr->limit_key = "IP";
    if (check_only) return;
    const char *counter = mgw__lfield_str(L, pool, "counter");
    rr->counters =
        mgw_ratewin_get(counter ? counter : rr->name, (uint64_t)rr->window_s * 1000, rr->limit);
    mgw_pool_cleanup_add(pool, release_counters, rr->counters);
}

void mgw__wafrate_read(lua_State *L, mgw_gen_t *g, int check_only,
                       void (*error)(void *ud, const char *where, const char *reason), void *ud)
{
    int n = mgw__lfield_list(L, "waf_rate");
    if (n <= 0) {
        if (n == 0) lua_pop(L, 1);
        return;
    }
    g->waf_rate = mgw_pool_calloc(g->pool, sizeof(mgw_wafrate_t) * (size_t)n);
    g->nwaf_rate = n;
    for (int i = 0; i < n; i++) {
        lua_rawgeti(L, -1, i + 1);
        read_rule(L, g, &g->waf_rate[i], check_only, error, ud);
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
}
