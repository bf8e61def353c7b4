/*
 * Building an API's JWT authorizers (runtime/conf/config.c calls these): the shaped
 * apis[i].jwt_authorizers list (moongate.config.shape) into mgw_jwt_conf_t, with the
 * files read at load (jwks_file, secret_file), and each route's authorizer and scopes.
 * Internal to the configuration layer.
 */
#ifndef MGW_JWTCONF_H
#define MGW_JWTCONF_H

#include <lua.h>

#include "conf/gen.h"

/* How a builder reports an error: the config path and the reason. */
typedef void (*mgw_conf_error_cb)(void *ud, const char *where, const char *reason);

/*
 * Reads the shaped jwt_authorizers list of the API table on top of L's stack into
 * api->jwts (pool memory). jwks_file is read and parsed, secret_file read, in check mode
 * too, so that `moongate check` reports a bad file; errors go to err(ud, where, reason).
 * The JWK Sets read are released when pool is destroyed.
 */
void mgw__jwt_read(lua_State *L, mgw_pool_t *pool, mgw_api_t *api, mgw_conf_error_cb err, void *ud);

/* Reads the route table on top of L's stack: its JWT authorizer (the shaped jwt index)
 * and its scopes, into r. */
void mgw__jwt_route(lua_State *L, mgw_pool_t *pool, const mgw_api_t *api, mgw_route_t *r);

/* The JWT authorizer of api named name, or NULL. */
const mgw_jwt_conf_t *mgw_api_find_jwt(const mgw_api_t *api, const char *name);

#endif
