/*
 * The WebSocket side of an API's configuration (wsconf.h): the shaped websocket table
 * read into mgw_ws_conf_t, the $connect and $disconnect routes every WebSocket API has,
 * the compiled route selection expression, and the route index by key that
 * mgw_api_find_route searches (for every API: a sorted array, no allocation per lookup).
 */
#include "conf/wsconf.h"
#include "conf/lfield.h"

#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>

void mgw__ws_read(lua_State *L, mgw_ws_conf_t *ws)
{
    ws->max_frame = (size_t)mgw__lfield_num(L, "max_frame_size", 32768);
    ws->max_message = (size_t)mgw__lfield_num(L, "max_message_size", 131072);
    ws->idle_timeout_ms = (uint64_t)(mgw__lfield_num(L, "idle_timeout", 600) * 1000);
    ws->max_duration_ms = (uint64_t)(mgw__lfield_num(L, "max_duration", 7200) * 1000);
    ws->ping_interval_ms = (uint64_t)(mgw__lfield_num(L, "ping_interval", 0) * 1000);
    ws->pong_timeout_ms = (uint64_t)(mgw__lfield_num(L, "pong_timeout", 30) * 1000);
    ws->send_queue_max = (size_t)mgw__lfield_num(L, "send_queue_size", 1048576);
}

static int has_route(mgw_route_t **routes, int n, const char *key)
{
    for (int i = 0; i < n; i++)
        if (strcmp(routes[i]->key, key) == 0) return 1;
    return 0;
}

mgw_route_t **mgw__ws_add_routes(mgw_pool_t *pool, mgw_route_t **routes, int *n)
{
    static const char *const keys[] = {"$connect", "$disconnect"};
    for (int k = 0; k < 2; k++) {
        if (has_route(routes, *n, keys[k])) continue;
        mgw_route_t **grown = mgw_pool_calloc(pool, sizeof(*grown) * (size_t)(*n + 1));
        if (*n) memcpy(grown, routes, sizeof(*grown) * (size_t)*n);
        mgw_route_t *r = mgw_pool_calloc(pool, sizeof(*r));
        r->key = keys[k];
        r->key_len = strlen(keys[k]);
        r->idx = *n;
        r->integration.type = MGW_INTEG_MOCK;
        r->integration.status = 200;
        r->integration.body = MGW_STR("");
        grown[(*n)++] = r;
        routes = grown;
    }
    return routes;
}

const char *mgw__ws_finish(mgw_pool_t *pool, mgw_api_t *api, const char *expr)
{
    const char *err = NULL;
    mgw_ws_conf_t *ws = api->ws;
    ws->selection = mgw_rsel_compile(pool, expr ? expr : "", &err);
    ws->connect_route = mgw_api_find_route(api, "$connect", 8);
    ws->disconnect_route = mgw_api_find_route(api, "$disconnect", 11);
    ws->default_route = mgw_api_find_route(api, "$default", 8);
    ws->connections_route = mgw_api_find_route(api, "$connections", 12);
    return ws->selection ? NULL : (err ? err : "invalid route selection expression");
}

/* Route keys in the order mgw_api_find_route searches: by bytes, then by length. */
static int key_cmp(const char *a, size_t an, const char *b, size_t bn)
{
    int c = memcmp(a, b, an < bn ? an : bn);
    if (c) return c;
    return an < bn ? -1 : an > bn;
}

static int route_cmp(const void *x, const void *y)
{
    const mgw_route_t *a = *(mgw_route_t *const *)x, *b = *(mgw_route_t *const *)y;
    return key_cmp(a->key, a->key_len, b->key, b->key_len);
}

void mgw__api_index_routes(mgw_pool_t *pool, mgw_api_t *api)
{
    size_t n = (size_t)api->nroutes;
    api->by_key = mgw_pool_calloc(pool, sizeof(*api->by_key) * (n ? n : 1));
    if (n) memcpy(api->by_key, api->routes, sizeof(*api->by_key) * n);
    qsort(api->by_key, n, sizeof(*api->by_key), route_cmp);
}

const mgw_route_t *mgw_api_find_route(const mgw_api_t *api, const char *key, size_t n)
{
    int lo = 0, hi = api->nroutes - 1;
    while (lo <= hi && api->by_key) {
        int mid = (lo + hi) / 2;
        const mgw_route_t *r = api->by_key[mid];
        int c = key_cmp(r->key, r->key_len, key, n);
        if (c == 0) return r;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return NULL;
}

int mgw__native_rsel_error(lua_State *L)
{
    const char *src = luaL_checkstring(L, 1);
    mgw_pool_t *pool = mgw_pool_create(4096);
    const char *err = NULL;
    if (mgw_rsel_compile(pool, src, &err) == NULL)
        lua_pushstring(L, err ? err : "invalid route selection expression");
    else
        lua_pushnil(L);
    mgw_pool_destroy(pool);
    return 1;
}
