/* Readers of the shaped configuration's fields (lfield.h). */
#include "conf/lfield.h"

mgw_str_t mgw__lfield_lstr(lua_State *L, mgw_pool_t *pool, const char *key, mgw_str_t def)
{
    lua_getfield(L, -1, key);
    mgw_str_t s = def;
    if (lua_type(L, -1) == LUA_TSTRING) {
        size_t n;
        const char *v = lua_tolstring(L, -1, &n);
        s = (mgw_str_t){mgw_pool_strndup(pool, v, n), n};
    }
    lua_pop(L, 1);
    return s;
}

const char *mgw__lfield_str(lua_State *L, mgw_pool_t *pool, const char *key)
{
    return mgw__lfield_lstr(L, pool, key, MGW_NULL_STR).p;
}

double mgw__lfield_num(lua_State *L, const char *key, double def)
{
    lua_getfield(L, -1, key);
    double v = lua_type(L, -1) == LUA_TNUMBER ? lua_tonumber(L, -1) : def;
    lua_pop(L, 1);
    return v;
}

int mgw__lfield_bool(lua_State *L, const char *key, int def)
{
    lua_getfield(L, -1, key);
    int v = lua_type(L, -1) == LUA_TBOOLEAN ? lua_toboolean(L, -1) : def;
    lua_pop(L, 1);
    return v;
}

int mgw__lfield_list(lua_State *L, const char *key)
{
    lua_getfield(L, -1, key);
    if (lua_type(L, -1) != LUA_TTABLE) {
        lua_pop(L, 1);
        return -1;
    }
    return (int)lua_objlen(L, -1);
}
