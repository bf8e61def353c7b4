/*
 * Building the WebSocket side of an API (runtime/conf/config.c calls these): its
 * settings, its $connect/$disconnect routes, and every API's route index by key.
 * Internal to the configuration layer.
 */
#ifndef MGW_WSCONF_H
#define MGW_WSCONF_H

#include <lua.h>

#include "conf/gen.h"

/* Reads the shaped websocket = {...} table on top of L's stack (moongate.config.shape)
 * into ws; absent fields keep the defaults of the configuration contract. */
void mgw__ws_read(lua_State *L, mgw_ws_conf_t *ws);

/* Appends a mock 200 route for "$connect" and for "$disconnect" when routes (n of them,
 * by idx) has none; returns the routes (a new pool array when one was added) and updates
 * *n. */
mgw_route_t **mgw__ws_add_routes(mgw_pool_t *pool, mgw_route_t **routes, int *n);

/* Compiles expr into api->ws->selection and points api->ws at the $connect, $disconnect
 * and $default routes. Returns NULL, or the compiler's error (a static string). */
const char *mgw__ws_finish(mgw_pool_t *pool, mgw_api_t *api, const char *expr);

/* Sorts api's routes by key into api->by_key (mgw_api_find_route). */
void mgw__api_index_routes(mgw_pool_t *pool, mgw_api_t *api);

/* moongate.native.rsel_error(src): the compiler's error for a route selection
 * expression, or nil (the configuration validator asks it). */
int mgw__native_rsel_error(lua_State *L);

#endif
