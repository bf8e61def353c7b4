#include "conf/cacheconf.h"

#include <lua.h>
#include <stdio.h>
#include <string.h>

#include "base/rcache.h"
#include "conf/lfield.h"

static void release_store(void *store)
{
    mgw_rcache_release(store);
}

/* The route's { mode, ttl, params } on top of L's stack. */
static void read_route(lua_State *L, mgw_pool_t *pool, mgw_route_cache_t *rc)
{
    const char *mode = mgw__lfield_str(L, pool, "mode");
    rc->mode = mode == NULL || strcmp(mode, "off") == 0 ? MGW_CACHE_OFF
               : strcmp(mode, "all") == 0               ? MGW_CACHE_ALL
                                                        : MGW_CACHE_GET;
    rc->ttl_ms = (uint64_t)mgw__lfield_num(L, "ttl", 0) * 1000;
    if (rc->ttl_ms == 0) rc->mode = MGW_CACHE_OFF;
    lua_getfield(L, -1, "params");
    int n = lua_type(L, -1) == LUA_TTABLE ? (int)lua_objlen(L, -1) : 0;
    rc->params = mgw_pool_calloc(pool, sizeof(*rc->params) * (size_t)(n ? n : 1));
    for (int i = 0; i < n; i++) {
        lua_rawgeti(L, -1, i + 1);
        const char *kind = mgw__lfield_str(L, pool, "kind"),
                   *name = mgw__lfield_str(L, pool, "name");
        if (kind && name) {
            mgw_cache_param_t *p = &rc->params[rc->nparams++];
            p->kind = strcmp(kind, "header") == 0 ? MGW_CKEY_HEADER : MGW_CKEY_QUERY;
            p->name = (mgw_str_t){name, strlen(name)};
        }
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
}

void mgw__cacheconf_read(lua_State *L, mgw_gen_t *g, mgw_api_t *api, mgw_stage_t *st,
                         int check_only,
                         void (*error)(void *ud, const char *where, const char *reason), void *ud)
{
    lua_getfield(L, -1, "cache");
    if (lua_type(L, -1) != LUA_TTABLE) {
        lua_pop(L, 1);
        return;
    }
    mgw_pool_t *pool = g->pool;
    mgw_stage_cache_t *c = mgw_pool_calloc(pool, sizeof(*c));
    const char *where = mgw__lfield_str(L, pool, "where");
    lua_getfield(L, -1, "require_authorization");
    c->require_authorization = lua_toboolean(L, -1);
    lua_pop(L, 1);
    const char *strategy = mgw__lfield_str(L, pool, "unauthorized");
    c->unauthorized = strategy == NULL ? MGW_CACHE_SUCCEED_WITH_RESPONSE_HEADER
                      : strcmp(strategy, "FAIL_WITH_403") == 0 ? MGW_CACHE_FAIL_WITH_403
                      : strcmp(strategy, "SUCCEED_WITHOUT_RESPONSE_HEADER") == 0
                          ? MGW_CACHE_SUCCEED_WITHOUT_RESPONSE_HEADER
                          : MGW_CACHE_SUCCEED_WITH_RESPONSE_HEADER;

    /* invalidate_keys: key ids of api_keys, kept as the digests requests are matched by */
    lua_getfield(L, -1, "invalidate_keys");
    int n = lua_type(L, -1) == LUA_TTABLE ? (int)lua_objlen(L, -1) : 0;
    c->invalidate_keys = mgw_pool_calloc(pool, 32 * (size_t)(n ? n : 1));
    for (int i = 0; i < n; i++) {
        lua_rawgeti(L, -1, i + 1);
        const char *id = lua_tostring(L, -1);
        int found = 0;
        for (int k = 0; id && k < g->nkeys && !found; k++) {
            if (strcmp(g->keys[k].id, id) != 0) continue;
            memcpy(c->invalidate_keys[c->ninvalidate_keys++], g->keys[k].digest, 32);
            found = 1;
        }
        if (!found) {
            char w[600], reason[300];
            snprintf(w, sizeof(w), "%s.invalidate_keys[%d]", where ? where : "cache", i + 1);
            snprintf(reason, sizeof(reason), "unknown API key \"%s\" (api_keys)", id ? id : "");
            error(ud, w, reason);
        }
        lua_pop(L, 1);
    }
    lua_pop(L, 1);

    c->routes =
        mgw_pool_calloc(pool, sizeof(*c->routes) * (size_t)(api->nroutes ? api->nroutes : 1));
    lua_getfield(L, -1, "routes");
    n = lua_type(L, -1) == LUA_TTABLE ? (int)lua_objlen(L, -1) : 0;
    for (int i = 0; i < n && i < api->nroutes; i++) {
        lua_rawgeti(L, -1, i + 1);
        read_route(L, pool, &c->routes[i]);
        lua_pop(L, 1);
    }
    lua_pop(L, 1);

    const char *name = mgw__lfield_str(L, pool, "name");
    size_t mb = (size_t)mgw__lfield_num(L, "size_mb", 64);
    lua_pop(L, 1);
    st->cache = c;
    if (check_only) return;
    c->store = mgw_rcache_get(name ? name : "", mb << 20);
    mgw_pool_cleanup_add(pool, release_store, c->store);
}
