/*
 * Request validation in the configuration (valconf.h): the shaped models = { {name, json,
 * where} } of an API compiled once per generation, and each route's validation = {
 * params, body, required = { {kind, name} }, models = { {content_type, model} } } read
 * into mgw_validation_t, whose models point at the compiled schemas.
 */
#include "conf/valconf.h"
#include "conf/lfield.h"

#include <lauxlib.h>
#include <lua.h>
#include <stdio.h>
#include <string.h>

typedef struct {
    const char *name;
    mgw_str_t json;
    const mgw_jschema_t *s;
} model_t;

/* The model name an AWS model URL gives (https://apigateway.amazonaws.com/restapis/ID/
 * models/NAME, any ID: the models are this API's), or NULL. */
static const char *model_url_name(const char *uri)
{
    static const char prefix[] = "https://apigateway.amazonaws.com/restapis/";
    if (strncmp(uri, prefix, sizeof(prefix) - 1) != 0) return NULL;
    const char *id = uri + sizeof(prefix) - 1, *slash = strchr(id, '/');
    if (slash == NULL || slash == id || strncmp(slash, "/models/", 8) != 0) return NULL;
    const char *name = slash + 8;
    return *name && !strchr(name, '/') ? name : NULL;
}

typedef struct {
    const model_t *models;
    int n;
} models_t;

/* mgw_jschema_load_fn over the API's models */
static const char *load_model(void *ud, const char *uri, size_t *n)
{
    const models_t *ms = ud;
    const char *name = model_url_name(uri);
    for (int i = 0; name && i < ms->n; i++)
        if (ms->models[i].name && strcmp(ms->models[i].name, name) == 0 && ms->models[i].json.p) {
            *n = ms->models[i].json.n;
            return ms->models[i].json.p;
        }
    return NULL;
}

static mgw_validation_t *read_route(lua_State *L, mgw_pool_t *pool, const model_t *models,
                                    int nmodels)
{
    mgw_validation_t *v = mgw_pool_calloc(pool, sizeof(*v));
    v->params = mgw__lfield_bool(L, "params", 0);
    v->body = mgw__lfield_bool(L, "body", 0);
    int n = mgw__lfield_list(L, "required");
    if (n > 0) {
        v->required = mgw_pool_calloc(pool, sizeof(*v->required) * (size_t)n);
        for (int i = 0; i < n; i++) {
            lua_rawgeti(L, -1, i + 1);
            mgw_str_t kind = mgw__lfield_lstr(L, pool, "kind", MGW_NULL_STR);
            v->required[i].name = mgw__lfield_lstr(L, pool, "name", MGW_NULL_STR);
            v->required[i].kind = kind.p && strcmp(kind.p, "header") == 0 ? MGW_VPARAM_HEADER
                                  : kind.p && strcmp(kind.p, "path") == 0 ? MGW_VPARAM_PATH
                                                                          : MGW_VPARAM_QUERY;
            lua_pop(L, 1);
        }
        v->nrequired = n;
    }
    if (n >= 0) lua_pop(L, 1);
    n = mgw__lfield_list(L, "models");
    if (n > 0) {
        v->models = mgw_pool_calloc(pool, sizeof(*v->models) * (size_t)n);
        for (int i = 0; i < n; i++) {
            lua_rawgeti(L, -1, i + 1);
            v->models[i].content_type = mgw__lfield_lstr(L, pool, "content_type", MGW_NULL_STR);
            int m = (int)mgw__lfield_num(L, "model", 0);
            if (m >= 1 && m <= nmodels) {
                v->models[i].model_name = models[m - 1].name;
                v->models[i].model = models[m - 1].s;
            }
            lua_pop(L, 1);
        }
        v->nmodels = n;
    }
    if (n >= 0) lua_pop(L, 1);
    return v;
}

void mgw__valconf_read(lua_State *L, mgw_pool_t *pool, mgw_api_t *api,
                       void (*error)(void *ud, const char *where, const char *reason), void *ud)
{
    int n = mgw__lfield_list(L, "models");
    model_t *models = mgw_pool_calloc(pool, sizeof(*models) * (size_t)(n > 0 ? n : 1));
    const char **where = mgw_pool_calloc(pool, sizeof(*where) * (size_t)(n > 0 ? n : 1));
    for (int i = 0; i < n; i++) {
        lua_rawgeti(L, -1, i + 1);
        models[i].name = mgw__lfield_lstr(L, pool, "name", MGW_NULL_STR).p;
        models[i].json = mgw__lfield_lstr(L, pool, "json", MGW_NULL_STR);
        where[i] = mgw__lfield_lstr(L, pool, "where", MGW_NULL_STR).p;
        lua_pop(L, 1);
    }
    /* each may name the others by their AWS model URLs */
    models_t all = {models, n > 0 ? n : 0};
    for (int i = 0; i < n; i++) {
        const mgw_str_t json = models[i].json;
        char err[512];
        models[i].s = json.p ? mgw_jschema_compile_docs(pool, json.p, json.n, load_model, &all, err,
                                                        sizeof(err))
                             : NULL;
        if (models[i].s == NULL)
            error(ud, where[i] ? where[i] : "models", json.p ? err : "no schema");
    }
    if (n >= 0) lua_pop(L, 1);
    int nr = mgw__lfield_list(L, "routes");
    for (int i = 0; i < nr && i < api->nroutes; i++) {
        lua_rawgeti(L, -1, i + 1);
        lua_getfield(L, -1, "validation");
        if (lua_type(L, -1) == LUA_TTABLE)
            api->routes[i]->validation = read_route(L, pool, models, n > 0 ? n : 0);
        lua_pop(L, 2);
    }
    if (nr >= 0) lua_pop(L, 1);
}

/* mgw_jschema_load_fn over a Lua table of JSON texts by model name, at index 2 */
static const char *load_lua_model(void *ud, const char *uri, size_t *n)
{
    lua_State *L = ud;
    const char *name = model_url_name(uri), *json = NULL;
    if (name == NULL || lua_type(L, 2) != LUA_TTABLE) return NULL;
    lua_getfield(L, 2, name);
    if (lua_type(L, -1) == LUA_TSTRING) json = lua_tolstring(L, -1, n); /* the table keeps it */
    lua_pop(L, 1);
    return json;
}

int mgw__native_jschema_error(lua_State *L)
{
    size_t n;
    const char *json = luaL_checklstring(L, 1, &n);
    mgw_pool_t *pool = mgw_pool_create(4096);
    char err[512];
    if (mgw_jschema_compile_docs(pool, json, n, load_lua_model, L, err, sizeof(err)) == NULL)
        lua_pushstring(L, err);
    else
        lua_pushnil(L);
    mgw_pool_destroy(pool);
    return 1;
}
