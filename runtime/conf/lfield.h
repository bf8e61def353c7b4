/*
 * Readers of the shaped configuration (the Lua tables lua/moongate/config/shape.lua makes):
 * each reads t[key] of the table on top of L's stack and leaves the stack as it was.
 */
#ifndef MGW_LFIELD_H
#define MGW_LFIELD_H

#include <lua.h>

#include "base/pool.h"

/* A string copied into pool, or def when t[key] is not a string. */
mgw_str_t mgw__lfield_lstr(lua_State *L, mgw_pool_t *pool, const char *key, mgw_str_t def);
/* The same, NUL-terminated, or NULL when t[key] is not a string. */
const char *mgw__lfield_str(lua_State *L, mgw_pool_t *pool, const char *key);
/* A number, or def when t[key] is not one. */
double mgw__lfield_num(lua_State *L, const char *key, double def);
/* A boolean (0 or 1), or def when t[key] is not one. */
int mgw__lfield_bool(lua_State *L, const char *key, int def);
/* When t[key] is a table: pushes it and returns its length; else pushes nothing, -1. */
int mgw__lfield_list(lua_State *L, const char *key);

#endif
