#include "conf/config.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <stdio.h>
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/crypto.h"
#include "base/geodb.h"
#include "conf/truststore.h"
#include "base/err.h"
#include "base/log.h"
#include "conf/cacheconf.h"
#include "conf/jwtconf.h"
#include "conf/token.h"
#include "conf/modsec.h"
#include "conf/wafstmt.h"
#include "conf/valconf.h"
#include "conf/wafrate.h"
#include "conf/wsconf.h"
#include "conf/lfield.h"
#include "conf/logsink.h"

#ifndef MGW_LUA_DIR
#define MGW_LUA_DIR "lua"
#endif

typedef struct {
    lua_State *L;
    mgw_gen_t *g;
    mgw_buf_t *errors;
    int nerrors;
    mgw_route_t **routes; /* the routes of the API being built, by idx */
    int nroutes;
    int check_only;
    int quota_open;
} builder_t;

const char *mgw_config_lua_dir(void)
{
    const char *d = getenv("MOONGATE_LUA_DIR");
    return d && *d ? d : MGW_LUA_DIR;
}

static void add_error(builder_t *b, const char *where, const char *reason)
{
    mgw_buf_printf(b->errors, "%s: %s: %s\n", b->g->file, where, reason);
    b->nerrors++;
}

/* Field readers for the table on top of the stack (conf/lfield.h), into the generation. */
static const char *get_str(builder_t *b, const char *key)
{
    return mgw__lfield_str(b->L, b->g->pool, key);
}

static mgw_str_t get_lstr(builder_t *b, const char *key)
{
    return mgw__lfield_lstr(b->L, b->g->pool, key, MGW_STR(""));
}

static double get_num(builder_t *b, const char *key, double def)
{
    return mgw__lfield_num(b->L, key, def);
}

static int get_bool(builder_t *b, const char *key, int def)
{
    return mgw__lfield_bool(b->L, key, def);
}

static int push_list(builder_t *b, const char *key)
{
    return mgw__lfield_list(b->L, key);
}

/* Reads a list of { name =, value = } pairs at t[key]. */
static mgw_kv_t *get_kvs(builder_t *b, const char *key, int *count)
{
    *count = 0;
    int n = push_list(b, key);
    if (n < 0) return NULL;
    mgw_kv_t *kv = mgw_pool_calloc(b->g->pool, sizeof(*kv) * (size_t)(n ? n : 1));
    for (int i = 0; i < n; i++) {
        lua_rawgeti(b->L, -1, i + 1);
        kv[i].name = get_lstr(b, "name");
        kv[i].value = get_lstr(b, "value");
        lua_pop(b->L, 1);
    }
    lua_pop(b->L, 1);
    *count = n;
    return kv;
}

static mgw_template_t *compile(builder_t *b, const char *src, const char *where)
{
    const char *err = NULL;
    mgw_template_t *t = mgw_template_compile(b->g->pool, src, &err);
    if (t == NULL) add_error(b, where, err);
    return t;
}

static void jwt_error(void *b, const char *where, const char *reason);

/* The log target of the destination shaped at t.sink (conf/logsink.h). */
static int open_log(builder_t *b, int check_only)
{
    return mgw__logsink_open(b->L, b->g, check_only, jwt_error, b);
}

/* A throttle limit: t[key] = { rate =, burst =, exact = }. */
typedef struct {
    double rate;
    uint64_t burst;
    int exact;
} limit_t;

/* The bucket named name with limit l; the limit itself is part of the bucket's key, so
 * that an unchanged limit keeps its state across reloads (and an exact limit is a bucket
 * of its own: base/throttle.h). */
static mgw_bucket_t *make_bucket(builder_t *b, const char *name, const limit_t *l)
{
    char k[1024];
    int n = snprintf(k, sizeof(k), "%s|%.17g|%llu%s", name, l->rate, (unsigned long long)l->burst,
                     l->exact ? "|exact" : "");
    mgw_bucket_t *bk = mgw_throttle_bucket(k, (size_t)n, l->rate, l->burst);
    if (bk == NULL) {
        add_error(b, name, "too many throttle buckets");
    } else if (l->exact) {
        mgw_bucket_set_exact(bk);
        b->g->exact_limits = 1;
    }
    return bk;
}

/* Reads t[key] = { rate =, burst =, exact = } of the table on top of the stack: 1 when
 * present. */
static int get_limit(builder_t *b, const char *key, limit_t *l)
{
    lua_getfield(b->L, -1, key);
    int found = lua_type(b->L, -1) == LUA_TTABLE;
    if (found) {
        l->rate = get_num(b, "rate", 1);
        l->burst = (uint64_t)get_num(b, "burst", 0);
        l->exact = get_bool(b, "exact", 0);
    }
    lua_pop(b->L, 1);
    return found;
}

/* The bucket for t[key] of the table on top of the stack, or NULL when absent. */
static mgw_bucket_t *get_bucket(builder_t *b, const char *key, const char *name)
{
    limit_t l;
    return get_limit(b, key, &l) ? make_bucket(b, name, &l) : NULL;
}

static int route_idx(builder_t *b, const char *key)
{
    for (int i = 0; i < b->nroutes; i++)
        if (strcmp(b->routes[i]->key, key) == 0) return i;
    return -1;
}

static mgw_limit_t *route_limits_alloc(builder_t *b)
{
    return mgw_pool_calloc(b->g->pool, sizeof(mgw_limit_t) * (size_t)(b->nroutes ? b->nroutes : 1));
}

/*
 * Reads route_settings = { { key =, throttle = {} } } of the table on top of the stack
 * into one bucket per route, named policy. With a default (the stage's throttle), every
 * other route gets its own bucket with that limit, named default_policy: a busy route
 * never uses up another route's tokens. Returns NULL when no route has a limit.
 */
static mgw_limit_t *get_route_limits(builder_t *b, const char *name, const char *policy,
                                     const char *default_key, const char *default_policy)
{
    mgw_limit_t *out = NULL;
    char full[1024];
    int n = push_list(b, "route_settings");
    for (int i = 0; i < n; i++) {
        lua_rawgeti(b->L, -1, i + 1);
        const char *key = get_str(b, "key");
        int idx = key ? route_idx(b, key) : -1;
        if (idx >= 0) {
            if (out == NULL) out = route_limits_alloc(b);
            snprintf(full, sizeof(full), "%s|%s", name, key);
            out[idx] = (mgw_limit_t){get_bucket(b, "throttle", full), policy};
        }
        lua_pop(b->L, 1);
    }
    if (n >= 0) lua_pop(b->L, 1);
    limit_t l;
    if (default_key == NULL || !get_limit(b, default_key, &l)) return out;
    if (out == NULL) out = route_limits_alloc(b);
    for (int idx = 0; idx < b->nroutes; idx++) {
        if (out[idx].bucket) continue;
        snprintf(full, sizeof(full), "%s|%s", name, b->routes[idx]->key);
        out[idx] = (mgw_limit_t){make_bucket(b, full, &l), default_policy};
    }
    return out;
}

static void tls_ctx_free_cb(void *ctx);

int mgw_config_client_cert(const mgw_stage_t *st, char *err, size_t errlen)
{
    if (access(st->client_cert_file, R_OK) == 0 && access(st->client_key_file, R_OK) == 0) return 0;
    /* state_dir/client-certs, created as needed */
    char dir[1024];
    snprintf(dir, sizeof(dir), "%s", st->client_cert_file);
    for (char *s = dir + 1; *s; s++) {
        if (*s != '/') continue;
        *s = '\0';
        mkdir(dir, 0700);
        *s = '/';
    }
    char cn[256];
    snprintf(cn, sizeof(cn), "moongate %s/%s", st->api->id, st->name);
    if (mgw_tls_generate_cert(cn, st->client_cert_file, st->client_key_file, err, errlen) != 0)
        return -1;
    mgw_log_info("generated client certificate \"%s\" (valid 365 days)", st->client_cert_file);
    return 0;
}

/*
 * The stage's client certificate for https backends: given files, or a self-signed one
 * generated under state_dir/client-certs when missing (not in check mode). Rotation:
 * replace the files (or delete the generated ones) and reload.
 */
static void build_client_cert(builder_t *b, mgw_api_t *api, mgw_stage_t *st)
{
    mgw_gen_t *g = b->g;
    lua_getfield(b->L, -1, "client_certificate");
    if (lua_type(b->L, -1) == LUA_TTABLE) {
        st->client_cert_generate = get_bool(b, "generate", 0);
        if (st->client_cert_generate) {
            const char *dir = g->state_dir ? g->state_dir : "state";
            st->client_cert_file =
                mgw_pool_printf(g->pool, "%s/client-certs/%s-%s.pem", dir, api->id, st->name);
            st->client_key_file =
                mgw_pool_printf(g->pool, "%s/client-certs/%s-%s.key", dir, api->id, st->name);
        } else {
            st->client_cert_file = get_str(b, "certificate");
            st->client_key_file = get_str(b, "key");
        }
    }
    lua_pop(b->L, 1);
    if (st->client_cert_file == NULL || b->check_only) return;
    char where[512], err[512];
    snprintf(where, sizeof(where), "apis.%s.stages.%s.client_certificate", api->id, st->name);
    if (st->client_cert_generate && mgw_config_client_cert(st, err, sizeof(err)) != 0) {
        add_error(b, where, err);
        return;
    }
    st->backend_tls = mgw_tls_client_ctx_new(b->g->backend_ca, st->client_cert_file,
                                             st->client_key_file, err, sizeof(err));
    if (st->backend_tls == NULL) {
        add_error(b, where, err);
        return;
    }
    mgw_pool_cleanup_add(g->pool, tls_ctx_free_cb, st->backend_tls);
    st->backend_tls_id = mgw_pool_printf(g->pool, "%s|%s", g->backend_ca ? g->backend_ca : "-",
                                         st->client_cert_file);
}

static const char **get_strs(builder_t *b, const char *key, int *count);

/* The stage's WAF log (README "WAF logs"), shaped by lua/moongate/config/waf.lua; its
 * file is one of the generation's log files, written by the access-log writer. */
static const mgw_waflog_t *build_waf_log(builder_t *b, mgw_api_t *api, mgw_stage_t *st,
                                         int check_only)
{
    mgw_pool_t *pool = b->g->pool;
    mgw_waflog_t *w = mgw_pool_calloc(pool, sizeof(*w));
    w->log_id = open_log(b, check_only);
    double rate = get_num(b, "sample_rate", 1);
    w->sample_all = rate >= 1;
    /* 2^64 * rate, below 2^64 since rate < 1 here */
    w->sample_below = rate > 0 && rate < 1 ? (uint64_t)(rate * 18446744073709551616.0) : 0;
    w->webacl_id = mgw_pool_printf(pool, "arn:moongate:wafv2:::webacl/apis.%s.stages.%s.waf",
                                   api->id, st->name);
    w->source_id = mgw_pool_printf(pool, "%s:%s", api->id, st->name);
    w->redact_headers = get_strs(b, "redact_headers", &w->nredact_headers);
    w->redact_query = get_bool(b, "redact_query", 0);
    w->redact_uri = get_bool(b, "redact_uri", 0);
    w->redact_method = get_bool(b, "redact_method", 0);
    w->keep = get_bool(b, "keep", 1);
    int n = push_list(b, "filters");
    if (n > 0) {
        w->filters = mgw_pool_calloc(pool, sizeof(*w->filters) * (size_t)n);
        w->nfilters = n;
        for (int i = 0; i < n; i++) {
            lua_rawgeti(b->L, -1, i + 1);
            mgw_waflog_filter_t *f = &w->filters[i];
            f->keep = get_bool(b, "keep", 1);
            f->all = get_bool(b, "all", 0);
            f->actions = (get_bool(b, "allow", 0) ? MGW_WAFLOG_ALLOW : 0) |
                         (get_bool(b, "block", 0) ? MGW_WAFLOG_BLOCK : 0) |
                         (get_bool(b, "count", 0) ? MGW_WAFLOG_COUNT : 0);
            lua_pop(b->L, 1);
        }
    }
    if (n >= 0) lua_pop(b->L, 1);
    n = push_list(b, "managed");
    if (n > 0) {
        w->managed = mgw_pool_calloc(pool, sizeof(*w->managed) * (size_t)n);
        w->nmanaged = n;
        for (int i = 0; i < n; i++) {
            lua_rawgeti(b->L, -1, i + 1);
            mgw_waflog_managed_t *m = &w->managed[i];
            m->idx = (int)get_num(b, "index", -1);
            m->name = get_str(b, "name");
            m->group = get_str(b, "group");
            m->count = get_bool(b, "count", 0);
            lua_pop(b->L, 1);
        }
    }
    if (n >= 0) lua_pop(b->L, 1);
    return w;
}

static void build_stage(builder_t *b, mgw_api_t *api, mgw_stage_t *st, int check_only)
{
    st->api = api;
    st->name = get_str(b, "name");
    st->vars = get_kvs(b, "variables", &st->nvars);
    st->log_id = -1;
    st->rate_limit_headers = get_bool(b, "rate_limit_headers", 1);
    char name[512];
    snprintf(name, sizeof(name), "stage|%s|%s", api->id, st->name);
    st->route_limits = get_route_limits(b, name, "route", "throttle", "stage");
    snprintf(name, sizeof(name), "shared|%s|%s", api->id, st->name);
    st->shared_throttle = get_bucket(b, "shared_throttle", name);
    build_client_cert(b, api, st);
    if (st->backend_tls == NULL) {
        st->backend_tls = b->g->backend_tls;
        st->backend_tls_id = b->g->backend_ca ? b->g->backend_ca : "-";
    }
    st->waf = (int)get_num(b, "waf", 0);
    lua_getfield(b->L, -1, "waf_log");
    if (lua_type(b->L, -1) == LUA_TTABLE) st->waf_log = build_waf_log(b, api, st, check_only);
    lua_pop(b->L, 1);
    mgw__cacheconf_read(b->L, b->g, api, st, check_only, jwt_error, b); /* response caching */
    lua_getfield(b->L, -1, "access_log");
    if (lua_type(b->L, -1) == LUA_TTABLE) {
        /* where names the format; the path's errors are reported at its sibling key */
        const char *where = get_str(b, "where");
        if (where == NULL) where = "access_log.format";
        const char *format = get_str(b, "format");
        st->log_policy = (int)get_num(b, "policy", 0);
        /* A log policy may write whole lines itself: the format is then optional. */
        if (format || !st->log_policy) st->log_format = compile(b, format ? format : "", where);
        st->log_id = open_log(b, check_only);
    }
    lua_pop(b->L, 1);
}

static void build_integration(builder_t *b, mgw_integration_t *in)
{
    const char *type = get_str(b, "type");
    if (type && strcmp(type, "mock") == 0) {
        in->type = MGW_INTEG_MOCK;
        in->status = (int)get_num(b, "status", 200);
        in->headers = get_kvs(b, "headers", &in->nheaders);
        in->body = get_lstr(b, "body");
    } else if (type && strcmp(type, "connections") == 0) {
        in->type = MGW_INTEG_CONNECTIONS;
    } else if (type && strcmp(type, "lua") == 0) {
        in->type = MGW_INTEG_LUA;
        in->handler = (int)get_num(b, "use", 0);
        in->timeout_ms = (uint64_t)get_num(b, "timeout_ms", 29000);
    } else {
        in->type = MGW_INTEG_HTTP;
        in->uri = get_str(b, "uri");
        if (in->uri && !strchr(in->uri, '{') &&
            mgw_url_parse(in->uri, strlen(in->uri), &in->url) == 0) {
            in->uri_static = 1;
            in->host = mgw_pool_strndup(b->g->pool, in->url.host.p, in->url.host.n);
        }
        in->method = get_str(b, "method");
        in->timeout_ms = (uint64_t)get_num(b, "timeout_ms", 29000);
    }
}

static int period_of(const char *p)
{
    if (p && strcmp(p, "week") == 0) return MGW_QUOTA_WEEK;
    if (p && strcmp(p, "month") == 0) return MGW_QUOTA_MONTH;
    return MGW_QUOTA_DAY;
}

/*
 * Usage plans: each key of a plan gets a membership with its own buckets (the plan's
 * limit applies per key, across every stage of the plan) and its own quota counter.
 */
static void build_plans(builder_t *b, mgw_api_t *api)
{
    mgw_gen_t *g = b->g;
    int n = push_list(b, "usage_plans");
    api->nplans = n > 0 ? n : 0;
    api->plans = mgw_pool_calloc(g->pool, sizeof(mgw_plan_t) * (size_t)(n > 0 ? n : 1));
    for (int i = 0; i < n; i++) {
        lua_rawgeti(b->L, -1, i + 1);
        mgw_plan_t *plan = &api->plans[i];
        plan->name = get_str(b, "name");
        plan->stages = mgw_pool_calloc(g->pool, (size_t)(api->nstages ? api->nstages : 1));
        int ns = push_list(b, "stages");
        for (int s = 0; s < api->nstages; s++)
            plan->stages[s] = ns < 0; /* no list: every stage */
        for (int j = 0; j < ns; j++) {
            lua_rawgeti(b->L, -1, j + 1);
            const char *sname = lua_tostring(b->L, -1);
            mgw_stage_t *st = sname ? mgw_api_find_stage(api, sname, strlen(sname)) : NULL;
            if (st) plan->stages[st - api->stages] = 1;
            lua_pop(b->L, 1);
        }
        if (ns >= 0) lua_pop(b->L, 1);
        lua_getfield(b->L, -1, "quota");
        if (lua_type(b->L, -1) == LUA_TTABLE) {
            plan->has_quota = 1;
            plan->quota_limit = (uint64_t)get_num(b, "limit", 0);
            plan->quota_offset = (uint64_t)get_num(b, "offset", 0);
            plan->quota_period = period_of(get_str(b, "period"));
        }
        lua_pop(b->L, 1);

        int nk = push_list(b, "keys");
        for (int j = 0; j < nk; j++) {
            lua_rawgeti(b->L, -1, j + 1);
            const char *id = lua_tostring(b->L, -1);
            lua_pop(b->L, 1);
            mgw_apikey_t *k = NULL;
            for (int x = 0; id && x < g->nkeys; x++)
                if (strcmp(g->keys[x].id, id) == 0) k = &g->keys[x];
            if (k == NULL) continue;
            mgw_member_t *m = mgw_pool_alloc(g->pool, sizeof(*m) * (size_t)(k->nmembers + 1));
            if (k->nmembers) memcpy(m, k->members, sizeof(*m) * (size_t)k->nmembers);
            k->members = m;
            m = &k->members[k->nmembers++];
            memset(m, 0, sizeof(*m));
            m->api = api;
            m->plan = plan;
            char name[512];
            snprintf(name, sizeof(name), "plan|%s|%s|%s", api->id, plan->name, id);
            lua_pushvalue(b->L, -2); /* the plan table */
            m->throttle = get_bucket(b, "throttle", name);
            m->route_limits = get_route_limits(b, name, "plan-route", NULL, NULL);
            lua_pop(b->L, 1);
            if (plan->has_quota && !b->check_only && !b->quota_open) {
                /* Counters are replayed from the state directory before the first slot. */
                mgw_buf_t err = {0};
                b->quota_open = 1;
                if (mgw_quota_open(g->state_dir ? g->state_dir : "state", &err) != 0)
                    add_error(b, "state_dir", err.p);
                mgw_buf_free(&err);
            }
            if (plan->has_quota && !b->check_only) {
                static const char *const periods[] = {"day", "week", "month"};
                snprintf(name, sizeof(name), "quota|%s|%s|%s|%s", api->id, plan->name, id,
                         periods[plan->quota_period]);
                m->quota = mgw_quota_slot(name);
                if (m->quota) mgw_quota_set_kind(m->quota, plan->quota_period);
            }
        }
        if (nk >= 0) lua_pop(b->L, 1);
        lua_pop(b->L, 1);
    }
    if (n >= 0) lua_pop(b->L, 1);
}

/* A WebSocket API's settings and its $connect and $disconnect routes, before the
 * stages: their per-route tables cover those routes too. */
static void build_ws(builder_t *b, mgw_api_t *api)
{
    api->ws = mgw_pool_calloc(b->g->pool, sizeof(*api->ws));
    lua_getfield(b->L, -1, "websocket");
    if (lua_type(b->L, -1) != LUA_TTABLE) {
        lua_pop(b->L, 1);
        lua_newtable(b->L);
    }
    mgw__ws_read(b->L, api->ws);
    lua_pop(b->L, 1);
    b->routes = api->routes = mgw__ws_add_routes(b->g->pool, b->routes, &b->nroutes);
    api->nroutes = b->nroutes;
    mgw__api_index_routes(b->g->pool, api);
    const char *err = mgw__ws_finish(b->g->pool, api, get_str(b, "route_selection_expression"));
    if (err) {
        char where[512];
        snprintf(where, sizeof(where), "apis.%s.route_selection_expression", api->id);
        add_error(b, where, err);
    }
}

static void jwt_error(void *b, const char *where, const char *reason)
{
    add_error(b, where, reason);
}

static void build_api(builder_t *b, mgw_api_t *api, int check_only)
{
    mgw_pool_t *pool = b->g->pool;
    api->id = get_str(b, "id");
    api->default_endpoint = get_bool(b, "default_endpoint", 1);
    api->router = mgw_router_create(pool);
    api->selector = (int)get_num(b, "selector", 0);
    api->type = mgw_apitype_by_name(get_str(b, "protocol")); /* checked: NULL is "http" */
    api->protocol = api->type ? api->type->protocol : MGW_PROTO_HTTP;
    api->api_key_source = mgw_apitype_key_source(mgw__api_type(api), get_str(b, "api_key_source"));

    mgw__jwt_read(b->L, pool, api, jwt_error, b);
    int n = push_list(b, "routes");
    api->nroutes = n > 0 ? n : 0;
    b->routes = mgw_pool_calloc(pool, sizeof(mgw_route_t *) * (size_t)(n > 0 ? n : 1));
    b->nroutes = api->nroutes;
    api->routes = b->routes;
    for (int i = 0; i < n; i++) {
        lua_rawgeti(b->L, -1, i + 1);
        mgw_route_t *r = mgw_pool_calloc(pool, sizeof(*r));
        b->routes[i] = r;
        r->idx = i;
        r->key = get_str(b, "key");
        r->key_len = r->key ? strlen(r->key) : 0;
        if (r->key == NULL) r->key = "";
        r->route_response = get_bool(b, "route_response", 0);
        r->api_key_required = get_bool(b, "api_key_required", 0);
        r->authorizer = (int)get_num(b, "authorizer", 0);
        r->authorizer_type = r->authorizer ? MGW_AUTHZ_LUA : MGW_AUTHZ_NONE;
        mgw__jwt_route(b->L, pool, api, r);
        lua_getfield(b->L, -1, "integration");
        build_integration(b, &r->integration);
        lua_pop(b->L, 1);
        const char *err = NULL;
        /* WebSocket route keys are no "METHOD /path": they are found by mgw_api_find_route */
        if (api->protocol != MGW_PROTO_WEBSOCKET &&
            mgw_router_add(api->router, r->key, r, &err) != 0) {
            char where[512];
            snprintf(where, sizeof(where), "apis.%s.routes[\"%s\"]", api->id, r->key);
            add_error(b, where, err);
        }
        lua_pop(b->L, 1);
    }
    if (n >= 0) lua_pop(b->L, 1);
    mgw__valconf_read(b->L, pool, api, jwt_error, b); /* models, request validators */
    if (api->protocol == MGW_PROTO_WEBSOCKET)
        build_ws(b, api);
    else
        mgw__api_index_routes(pool, api);

    n = push_list(b, "stages");
    api->nstages = n > 0 ? n : 0;
    api->stages = mgw_pool_calloc(pool, sizeof(mgw_stage_t) * (size_t)(n > 0 ? n : 1));
    for (int i = 0; i < n; i++) {
        lua_rawgeti(b->L, -1, i + 1);
        build_stage(b, api, &api->stages[i], check_only);
        if (strcmp(api->stages[i].name, "$default") == 0) api->default_stage = &api->stages[i];
        lua_pop(b->L, 1);
    }
    if (n >= 0) lua_pop(b->L, 1);

    build_plans(b, api);

    n = push_list(b, "gateway_responses");
    for (int i = 0; i < n; i++) {
        lua_rawgeti(b->L, -1, i + 1);
        const char *type = get_str(b, "type"), *where = get_str(b, "where");
        mgw_gwresp_type_t t = type ? mgw_gwresp_by_name(type) : MGW_GW_NONE;
        if (t == MGW_GW_NONE) {
            add_error(b, where ? where : "gateway_responses", "unknown gateway response type");
        } else {
            mgw_gwresp_conf_t *c = &api->responses[t];
            c->configured = 1;
            c->status = (int)get_num(b, "status", 0);
            c->headers = get_kvs(b, "headers", &c->nheaders);
            const char *body = get_str(b, "body");
            if (body) {
                char w[512];
                snprintf(w, sizeof(w), "%s.body", where ? where : type);
                c->body = compile(b, body, w);
            }
        }
        lua_pop(b->L, 1);
    }
    if (n >= 0) lua_pop(b->L, 1);
}

static int cmp_mapping(const void *a, const void *b)
{
    const mgw_mapping_t *x = a, *y = b;
    return (int)y->base_len - (int)x->base_len;
}

static void tls_ctx_free_cb(void *ctx)
{
    mgw_tls_ctx_free(ctx);
}

/*
 * A TLS context per TLS listener: its own certificate as the default, plus every domain
 * with a certificate as an SNI site. Certificates expiring within 30 days are logged.
 */
/* mTLS domains serve a recorded truststore version (see truststore.h). */
static void resolve_truststores(builder_t *b)
{
    mgw_gen_t *g = b->g;
    for (int j = 0; j < g->ndomains && !b->check_only; j++) {
        mgw_domain_t *d = &g->domains[j];
        if (!d->mtls) continue;
        char path[4096], err[512];
        if (mgw_truststore_resolve(g->state_dir ? g->state_dir : "state", d->host,
                                   d->truststore_file, d->truststore_pin, path, sizeof(path),
                                   &d->truststore_version, err, sizeof(err)) != 0) {
            char w[512];
            snprintf(w, sizeof(w), "domains[\"%s\"].mtls", d->host);
            add_error(b, w, err);
            continue;
        }
        d->truststore = mgw_pool_strdup(g->pool, path);
        mgw_log_info("%s: truststore version %d%s", d->host, d->truststore_version,
                     strcmp(path, d->truststore_file) ? " (pinned)" : "");
    }
}

static void build_tls(builder_t *b)
{
    mgw_gen_t *g = b->g;
    resolve_truststores(b);
    for (int i = 0; i < g->nlisten; i++) {
        mgw_listen_t *l = &g->listen[i];
        if (l->certificate == NULL) continue;
        char where[64], err[512];
        snprintf(where, sizeof(where), "listen[%d].tls", i + 1);
        mgw_tls_site_t def = {.certificate = l->certificate, .key = l->key};
        l->tls = mgw_tls_ctx_new(&def, l->reject_unknown_sni, err, sizeof(err));
        if (l->tls == NULL) {
            add_error(b, where, err);
            continue;
        }
        mgw_pool_cleanup_add(g->pool, tls_ctx_free_cb, l->tls);
        for (int j = 0; j < g->ndomains; j++) {
            mgw_domain_t *d = &g->domains[j];
            if (d->certificate == NULL) continue;
            mgw_tls_site_t site = {.host = d->host,
                                   .certificate = d->certificate,
                                   .key = d->key,
                                   .mtls = d->mtls,
                                   .truststore = d->truststore,
                                   .crl = d->crl,
                                   .check = d->revocation_use != 0,
                                   .data = d};
            if (mgw_tls_ctx_add(l->tls, &site, err, sizeof(err)) != 0) {
                char w[512];
                snprintf(w, sizeof(w), "domains[\"%s\"]", d->host);
                add_error(b, w, err);
            }
        }
        const char *file;
        int days = mgw_tls_ctx_expiry(l->tls, &file);
        if (!b->check_only && days < 30)
            mgw_log_warn("%s: certificate \"%s\" %s %d day(s)", g->file, file,
                         days < 0 ? "expired" : "expires in", days < 0 ? -days : days);
    }
}

static int cmp_key(const void *a, const void *b)
{
    return memcmp(((const mgw_apikey_t *)a)->digest, ((const mgw_apikey_t *)b)->digest, 32);
}

/* API keys, stored only as SHA-256 digests, sorted for binary search. */
static void build_keys(builder_t *b)
{
    mgw_gen_t *g = b->g;
    int n = push_list(b, "api_keys");
    g->nkeys = n > 0 ? n : 0;
    g->keys = mgw_pool_calloc(g->pool, sizeof(mgw_apikey_t) * (size_t)(n > 0 ? n : 1));
    for (int i = 0; i < n; i++) {
        lua_rawgeti(b->L, -1, i + 1);
        mgw_apikey_t *k = &g->keys[i];
        k->id = get_str(b, "id");
        mgw_str_t value = get_lstr(b, "value");
        const char *digest = get_str(b, "sha256");
        if (digest) {
            if (mgw_hex32(digest, k->digest) != 0) add_error(b, "api_keys", "bad sha256 digest");
        } else {
            mgw_sha256(value.p, value.n, k->digest);
        }
        lua_pop(b->L, 1);
    }
    if (n >= 0) lua_pop(b->L, 1);
    qsort(g->keys, (size_t)g->nkeys, sizeof(mgw_apikey_t), cmp_key);
}

/*
 * The management token (manage.h): the generated one is created when missing, except by
 * `moongate check`, so that the management listener never serves without one and the
 * gateway refuses to start when it cannot have one (state_dir not writable). A token
 * file that exists, and one the configuration names, must hold a valid token.
 */
static void check_token(builder_t *b, int generated)
{
    const char *path = b->g->management_token_file;
    char tok[MGW_MANAGE_TOKEN_MAX + 1], err[1200];
    if (path == NULL) return;
    if (generated && !b->check_only && mgw_manage_token_generate(path, err, sizeof(err)) != 0) {
        add_error(b, "management.token_file", err);
        return;
    }
    if (generated && b->check_only && access(path, F_OK) != 0) return;
    if (mgw_manage_token_read(path, tok, sizeof(tok), err, sizeof(err)) < 0) {
        add_error(b, "management.token_file", err);
        return;
    }
    struct stat st;
    if (!b->check_only && stat(path, &st) == 0 && (st.st_mode & 077))
        mgw_log_warn("%s: management.token_file: \"%s\" is open to other users (mode %03o): "
                     "chmod 600 it",
                     b->g->file, path, (unsigned)(st.st_mode & 0777));
}

/* Lua policies, the management listener and the file watcher (issue 3). */
static void build_lua(builder_t *b)
{
    mgw_gen_t *g = b->g;
    lua_getfield(b->L, -1, "lua_spec");
    if (lua_type(b->L, -1) == LUA_TSTRING) {
        size_t n;
        const char *s = lua_tolstring(b->L, -1, &n);
        g->lua_spec = mgw_pool_strndup(g->pool, s, n);
        g->lua_spec_len = n;
    }
    lua_pop(b->L, 1);
    lua_getfield(b->L, -1, "management");
    if (lua_type(b->L, -1) == LUA_TTABLE) {
        g->management = mgw_pool_calloc(g->pool, sizeof(mgw_listen_t));
        g->management->address = get_str(b, "address");
        g->management->port = (int)get_num(b, "port", 0);
        g->management_token_file = get_str(b, "token_file");
        check_token(b, get_bool(b, "token_generated", 0));
    }
    lua_pop(b->L, 1);
    g->watch = get_bool(b, "watch", 0);
    int n = push_list(b, "watch_files");
    g->nwatch = n > 0 ? n : 0;
    g->watch_files = mgw_pool_calloc(g->pool, sizeof(char *) * (size_t)(n > 0 ? n : 1));
    for (int i = 0; i < n; i++) {
        lua_rawgeti(b->L, -1, i + 1);
        g->watch_files[i] = mgw_pool_strdup(g->pool, lua_tostring(b->L, -1));
        lua_pop(b->L, 1);
    }
    if (n >= 0) lua_pop(b->L, 1);
}

static void modsec_free_cb(void *m)
{
    mgw_modsec_free(m);
}

/* Reads the list of strings at t[key] into the generation's pool. */
static const char **get_strs(builder_t *b, const char *key, int *count)
{
    int n = push_list(b, key);
    *count = n > 0 ? n : 0;
    const char **v = mgw_pool_calloc(b->g->pool, sizeof(char *) * (size_t)(n > 0 ? n : 1));
    for (int i = 0; i < n; i++) {
        lua_rawgeti(b->L, -1, i + 1);
        v[i] = mgw_pool_strdup(b->g->pool, lua_tostring(b->L, -1) ? lua_tostring(b->L, -1) : "");
        lua_pop(b->L, 1);
    }
    if (n >= 0) lua_pop(b->L, 1);
    return v;
}

/* The managed rule sets of web ACL rules (conf/modsec.h), compiled once per generation. */
static void build_waf_managed(builder_t *b)
{
    mgw_gen_t *g = b->g;
    int n = push_list(b, "waf_managed");
    if (n <= 0) {
        if (n == 0) lua_pop(b->L, 1);
        return;
    }
    g->waf_managed = mgw_pool_calloc(g->pool, sizeof(mgw_modsec_t *) * (size_t)n);
    g->nwaf_managed = n;
    for (int i = 0; i < n; i++) {
        lua_rawgeti(b->L, -1, i + 1);
        mgw_modsec_conf_t c = {
            .managed = get_str(b, "managed"),
            .paranoia_level = (int)get_num(b, "paranoia_level", 1),
            .anomaly_threshold = (int)get_num(b, "anomaly_threshold", 5),
            .inspection_size = (uint64_t)get_num(b, "inspection_size", 8192),
        };
        c.exclusions = get_strs(b, "exclusions", &c.nexclusions);
        c.rules_files = get_strs(b, "rules_files", &c.nrules_files);
        const char *where = get_str(b, "where");
        char err[2048];
        g->waf_managed[i] = mgw_modsec_compile(&c, err, sizeof(err));
        if (g->waf_managed[i])
            mgw_pool_cleanup_add(g->pool, modsec_free_cb, g->waf_managed[i]);
        else
            add_error(b, where ? where : "waf", err);
        lua_pop(b->L, 1);
    }
    lua_pop(b->L, 1);
}

/* Reads the statement nodes of the table on top of the stack (lua/moongate/config/waf.lua
 * shapes them: a flat list, the root first, children by 0-based index). */
static void read_stmt_nodes(builder_t *b, mgw_wafstmt_conf_t *c)
{
    int n = push_list(b, "nodes");
    c->nnodes = n > 0 ? n : 0;
    mgw_wafstmt_node_conf_t *nodes =
        mgw_pool_calloc(b->g->pool, sizeof(*nodes) * (size_t)(n > 0 ? n : 1));
    for (int i = 0; i < n; i++) {
        lua_rawgeti(b->L, -1, i + 1);
        mgw_wafstmt_node_conf_t *nc = &nodes[i];
        nc->op = get_str(b, "op");
        nc->where = get_str(b, "where");
        nc->field = get_str(b, "field");
        nc->field_name = get_str(b, "field_name");
        nc->match_scope = get_str(b, "match_scope");
        nc->oversize = get_str(b, "oversize");
        nc->size_limit = (uint64_t)get_num(b, "size_limit", 0);
        nc->transforms = get_strs(b, "transforms", &nc->ntransforms);
        nc->search = get_lstr(b, "search");
        nc->constraint = get_str(b, "constraint");
        nc->size = (uint64_t)get_num(b, "size", 0);
        nc->values = get_strs(b, "values", &nc->nvalues);
        nc->file = get_str(b, "file");
        nc->header = get_str(b, "header");
        nc->fallback = get_str(b, "fallback");
        nc->position = get_str(b, "position");
        nc->scope = get_str(b, "scope");
        nc->key = get_str(b, "key");
        nc->geodb = b->g->geodb;
        int k = push_list(b, "kids");
        nc->nkids = k > 0 ? k : 0;
        nc->kids = mgw_pool_calloc(b->g->pool, sizeof(int) * (size_t)(k > 0 ? k : 1));
        for (int j = 0; j < k; j++) {
            lua_rawgeti(b->L, -1, j + 1);
            nc->kids[j] = (int)lua_tointeger(b->L, -1);
            lua_pop(b->L, 1);
        }
        if (k >= 0) lua_pop(b->L, 1);
        lua_pop(b->L, 1);
    }
    if (n >= 0) lua_pop(b->L, 1);
    c->nodes = nodes;
}

static void geodb_release_cb(void *db)
{
    mgw_geodb_release(db);
}

/*
 * The country database of geo_match statements (base/geodb.h): lua/moongate/config/waf.lua
 * gives waf_geo only when a statement needs it, so a configuration without one never reads
 * the files. Loaded here, on the main thread (start-up, `moongate check`, reloads), never on
 * a worker's loop; a reload whose files are unchanged shares the loaded one.
 */
static void build_waf_geo(builder_t *b)
{
    mgw_gen_t *g = b->g;
    lua_getfield(b->L, -1, "waf_geo");
    if (lua_type(b->L, -1) != LUA_TTABLE) {
        lua_pop(b->L, 1);
        return;
    }
    const char *p4 = get_str(b, "ipv4"), *p6 = get_str(b, "ipv6"), *used = get_str(b, "used_by");
    lua_pop(b->L, 1);
    mgw_geodb_info_t info;
    char err[1024], msg[2048];
    g->geodb = mgw_geodb_get(p4 ? p4 : "", p6 ? p6 : "", &info, err, sizeof(err));
    if (g->geodb == NULL) {
        const char *where = info.file == 6 ? "waf_geo.ipv6" : "waf_geo.ipv4";
        if (info.unreadable)
            snprintf(msg, sizeof(msg),
                     "%s (the country database of %s; Debian's is the package tor-geoipdb: "
                     "apt-get install tor-geoipdb, or set %s to a file in Tor's geoip format)",
                     err, used ? used : "geo_match", where);
        else
            snprintf(msg, sizeof(msg), "%s", err);
        add_error(b, where, msg);
        return;
    }
    mgw_pool_cleanup_add(g->pool, geodb_release_cb, g->geodb);
    if (!b->check_only && info.load_ms >= 0)
        mgw_log_info("%s: waf_geo: loaded %zu IPv4 and %zu IPv6 country ranges in %d ms", g->file,
                     info.n4, info.n6, info.load_ms);
}

/* The rule statements of web ACL rules (conf/wafstmt.h), compiled once per generation;
 * an error names the statement's config path. */
static void build_waf_statements(builder_t *b)
{
    mgw_gen_t *g = b->g;
    int n = push_list(b, "waf_statements");
    if (n <= 0) {
        if (n == 0) lua_pop(b->L, 1);
        return;
    }
    g->waf_statements = mgw_pool_calloc(g->pool, sizeof(mgw_wafstmt_t *) * (size_t)n);
    g->nwaf_statements = n;
    for (int i = 0; i < n; i++) {
        lua_rawgeti(b->L, -1, i + 1);
        mgw_wafstmt_conf_t c = {0};
        read_stmt_nodes(b, &c);
        c.labels = get_strs(b, "labels", &c.nlabels);
        char err[2048];
        g->waf_statements[i] = mgw_wafstmt_compile(&c, g->pool, err, sizeof(err));
        if (g->waf_statements[i] == NULL) {
            mgw_buf_printf(b->errors, "%s: %s\n", g->file, err);
            b->nerrors++;
        }
        lua_pop(b->L, 1);
    }
    lua_pop(b->L, 1);
}

/* The custom block responses of web ACL rules and default actions. */
static void build_waf_responses(builder_t *b)
{
    mgw_gen_t *g = b->g;
    int n = push_list(b, "waf_responses");
    if (n <= 0) {
        if (n == 0) lua_pop(b->L, 1);
        return;
    }
    g->waf_responses = mgw_pool_calloc(g->pool, sizeof(mgw_wafresp_t) * (size_t)n);
    g->nwaf_responses = n;
    for (int i = 0; i < n; i++) {
        lua_rawgeti(b->L, -1, i + 1);
        mgw_wafresp_t *w = &g->waf_responses[i];
        w->status = (int)get_num(b, "status", 403);
        w->body = get_lstr(b, "body");
        mgw_kv_t *kv = get_kvs(b, "headers", &w->nhdrs);
        w->hdrs = mgw_pool_calloc(g->pool, sizeof(mgw_hdr_t) * (size_t)(w->nhdrs ? w->nhdrs : 1));
        for (int j = 0; j < w->nhdrs; j++)
            w->hdrs[j] = (mgw_hdr_t){kv[j].name, kv[j].value};
        lua_pop(b->L, 1);
    }
    lua_pop(b->L, 1);
}

/* tracing (README "Tracing"): absent, nothing is traced and nothing is on the request path. */
static void build_tracing(builder_t *b)
{
    lua_getfield(b->L, -1, "tracing");
    if (lua_type(b->L, -1) != LUA_TTABLE) {
        lua_pop(b->L, 1);
        return;
    }
    mgw_tracing_t *t = mgw_pool_calloc(b->g->pool, sizeof(*t));
    t->service_name = get_str(b, "service_name");
    if (t->service_name == NULL) t->service_name = "moongate";
    t->request_id_header = get_str(b, "request_id_header");
    if (t->request_id_header) t->request_id_header_len = strlen(t->request_id_header);
    lua_getfield(b->L, -1, "otlp");
    if (lua_type(b->L, -1) == LUA_TTABLE) {
        t->otlp_url = get_str(b, "endpoint");
        double ratio = get_num(b, "sample_ratio", 1);
        t->sample_all = ratio >= 1;
        t->sample_below = ratio <= 0 ? 0 : (uint64_t)(ratio * 18446744073709551616.0);
        t->batch_size = (int)get_num(b, "batch_size", 512);
        t->max_queue = (int)get_num(b, "max_queue", 2048);
        t->flush_ms = (uint64_t)get_num(b, "flush_interval_ms", 1000);
        t->timeout_ms = (uint64_t)get_num(b, "timeout_ms", 2000);
        mgw_kv_t *kv = get_kvs(b, "headers", &t->notlp_headers);
        t->otlp_headers =
            mgw_pool_calloc(b->g->pool, sizeof(mgw_hdr_t) * (size_t)(t->notlp_headers + 1));
        for (int i = 0; i < t->notlp_headers; i++)
            t->otlp_headers[i] = (mgw_hdr_t){kv[i].name, kv[i].value};
    }
    lua_pop(b->L, 1);
    lua_pop(b->L, 1);
    b->g->tracing = t;
}

/* The password of cluster.redis.password_file: its first line, without the line end. */
static const char *read_password(builder_t *b, const char *path)
{
    char line[1024];
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        char why[1200];
        snprintf(why, sizeof(why), "cannot read \"%s\": %s", path, strerror(errno));
        add_error(b, "cluster.redis.password_file", why);
        return NULL;
    }
    int ok = fgets(line, sizeof(line), f) != NULL;
    fclose(f);
    line[strcspn(line, "\r\n")] = '\0';
    if (!ok || line[0] == '\0') {
        char why[1200];
        snprintf(why, sizeof(why), "\"%s\" is empty: its first line must be the password", path);
        add_error(b, "cluster.redis.password_file", why);
        return NULL;
    }
    return mgw_pool_strdup(b->g->pool, line);
}

/* cluster (README "Running a cluster"): absent, the node shares nothing. */
static void build_cluster(builder_t *b)
{
    lua_getfield(b->L, -1, "cluster");
    if (lua_type(b->L, -1) != LUA_TTABLE) {
        lua_pop(b->L, 1);
        return;
    }
    mgw_gen_t *g = b->g;
    mgw_cluster_conf_t *c = mgw_pool_calloc(g->pool, sizeof(*c));
    c->node_id = get_str(b, "node_id");
    if (c->node_id == NULL) {
        char host[256] = "moongate", id[300];
        gethostname(host, sizeof(host) - 1);
        host[strcspn(host, ".")] = '\0';
        snprintf(id, sizeof(id), "%s-%d", host, g->nlisten ? g->listen[0].port : 0);
        c->node_id = mgw_pool_strdup(g->pool, id);
    }
    c->sync_interval_ms = (uint64_t)get_num(b, "sync_interval_ms", 100);
    c->expected_nodes = (int)get_num(b, "expected_nodes", 0);
    c->key_prefix = get_str(b, "key_prefix");
    if (c->key_prefix == NULL) c->key_prefix = "moongate";
    lua_getfield(b->L, -1, "redis");
    c->redis_address = get_str(b, "address");
    if (c->redis_address == NULL) c->redis_address = "127.0.0.1";
    c->redis_port = (int)get_num(b, "port", 6379);
    c->redis_database = (int)get_num(b, "database", 0);
    c->timeout_ms = (uint64_t)get_num(b, "timeout_ms", 500);
    const char *pw = get_str(b, "password_file");
    if (pw) c->redis_password = read_password(b, pw);
    lua_pop(b->L, 1);
    lua_pop(b->L, 1);
    g->cluster = c;
}

static void build_gen(builder_t *b, int check_only)
{
    b->check_only = check_only;
    mgw_gen_t *g = b->g;
    mgw_pool_t *pool = g->pool;
    g->workers = (int)get_num(b, "workers", 0);
    if (g->workers <= 0) g->workers = (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (g->workers <= 0) g->workers = 1;

    lua_getfield(b->L, -1, "error_log");
    if (lua_istable(b->L, -1)) {
        g->log_json = get_bool(b, "json", 0);
        const char *level = get_str(b, "level");
        g->log_level = mgw_log_level_named(level ? level : "info");
    }
    lua_pop(b->L, 1);
    lua_getfield(b->L, -1, "limits");
    g->max_body_size = (uint64_t)get_num(b, "max_body_size", 10485760);
    g->max_header_size = (size_t)get_num(b, "max_header_size", 10240);
    lua_pop(b->L, 1);
    lua_getfield(b->L, -1, "timeouts");
    g->header_timeout_ms = (uint64_t)(get_num(b, "header", 10) * 1000);
    g->idle_timeout_ms = (uint64_t)(get_num(b, "idle", 60) * 1000);
    g->body_timeout_ms = (uint64_t)(get_num(b, "body", 30) * 1000);
    g->shutdown_timeout_ms = (uint64_t)(get_num(b, "shutdown", 10) * 1000);
    g->send_timeout_ms = (uint64_t)(get_num(b, "send", 60) * 1000);
    lua_pop(b->L, 1);

    build_lua(b);
    build_tracing(b);
    build_waf_managed(b);
    mgw__wafrate_read(b->L, g, check_only, jwt_error, b); /* rate-based rules */
    build_waf_geo(b);
    build_waf_statements(b);
    build_waf_responses(b);
    g->account = get_bucket(b, "throttle", "account");
    g->state_dir = get_str(b, "state_dir");
    g->backend_ca = get_str(b, "backend_ca");
    if (!check_only) {
        char err[512];
        g->backend_tls = mgw_tls_client_ctx_new(g->backend_ca, NULL, NULL, err, sizeof(err));
        if (g->backend_tls)
            mgw_pool_cleanup_add(g->pool, tls_ctx_free_cb, g->backend_tls);
        else
            add_error(b, "backend_ca", err);
    }
    build_keys(b);

    int n = push_list(b, "apis");
    g->napis = n > 0 ? n : 0;
    g->apis = mgw_pool_calloc(pool, sizeof(mgw_api_t) * (size_t)(n > 0 ? n : 1));
    for (int i = 0; i < n; i++) {
        lua_rawgeti(b->L, -1, i + 1);
        build_api(b, &g->apis[i], check_only);
        lua_pop(b->L, 1);
    }
    if (n >= 0) lua_pop(b->L, 1);

    n = push_list(b, "listen");
    g->nlisten = n > 0 ? n : 0;
    g->listen = mgw_pool_calloc(pool, sizeof(mgw_listen_t) * (size_t)((n > 0 ? n : 0) + 1));
    for (int i = 0; i < n; i++) {
        lua_rawgeti(b->L, -1, i + 1);
        mgw_listen_t *l = &g->listen[i];
        l->address = get_str(b, "address");
        l->port = (int)get_num(b, "port", 0);
        const char *api = get_str(b, "api");
        if (api) l->api = mgw_gen_find_api(g, api, strlen(api));
        lua_getfield(b->L, -1, "tls");
        if (lua_type(b->L, -1) == LUA_TTABLE) {
            l->certificate = get_str(b, "certificate");
            l->key = get_str(b, "key");
            const char *sni = get_str(b, "unknown_sni");
            l->reject_unknown_sni = sni && strcmp(sni, "reject") == 0;
        }
        lua_pop(b->L, 1);
        lua_pop(b->L, 1);
    }
    if (n >= 0) lua_pop(b->L, 1);
    if (g->management) {
        /* after the others: connections of every listener are numbered alike */
        g->listen[g->nlisten] = *g->management;
        g->management = &g->listen[g->nlisten];
        g->management->kind = MGW_LISTEN_MANAGEMENT;
    }
    build_cluster(b); /* after the listeners: the default node_id names the first one's port */

    n = push_list(b, "domains");
    g->ndomains = n > 0 ? n : 0;
    g->domains = mgw_pool_calloc(pool, sizeof(mgw_domain_t) * (size_t)(n > 0 ? n : 1));
    for (int i = 0; i < n; i++) {
        lua_rawgeti(b->L, -1, i + 1);
        mgw_domain_t *d = &g->domains[i];
        d->host = get_str(b, "host");
        d->certificate = get_str(b, "certificate");
        d->key = get_str(b, "key");
        lua_getfield(b->L, -1, "mtls");
        if (lua_type(b->L, -1) == LUA_TTABLE) {
            const char *mode = get_str(b, "mode");
            d->mtls = mode && strcmp(mode, "request") == 0 ? MGW_MTLS_REQUEST : MGW_MTLS_REQUIRE;
            d->truststore = d->truststore_file = get_str(b, "truststore");
            d->truststore_pin = (int)get_num(b, "version", 0);
            d->revocation_use = (int)get_num(b, "revocation", 0);
            d->revocation_ttl_ms = (uint64_t)(get_num(b, "revocation_ttl", 300) * 1000);
            d->crl = get_str(b, "crl");
            d->forward_header = get_str(b, "forward_header");
        }
        lua_pop(b->L, 1);
        int m = push_list(b, "mappings");
        d->nmaps = m > 0 ? m : 0;
        d->maps = mgw_pool_calloc(pool, sizeof(mgw_mapping_t) * (size_t)(m > 0 ? m : 1));
        for (int j = 0; j < m; j++) {
            lua_rawgeti(b->L, -1, j + 1);
            mgw_mapping_t *mp = &d->maps[j];
            mp->base = get_str(b, "base");
            if (!mp->base) mp->base = "";
            mp->base_len = strlen(mp->base);
            const char *api = get_str(b, "api"), *stage = get_str(b, "stage");
            mp->api = api ? mgw_gen_find_api(g, api, strlen(api)) : NULL;
            if (mp->api && stage) mp->stage = mgw_api_find_stage(mp->api, stage, strlen(stage));
            lua_pop(b->L, 1);
        }
        if (m >= 0) lua_pop(b->L, 1);
        qsort(d->maps, (size_t)d->nmaps, sizeof(mgw_mapping_t), cmp_mapping);
        lua_pop(b->L, 1);
    }
    if (n >= 0) lua_pop(b->L, 1);
    build_tls(b);
}

/*
 * moongate.native: checks the configuration validator (moongate.config) asks of the
 * gateway's own code, so that their errors are reported together with every other
 * error of the file instead of only once the rest is valid.
 */
static int native_template_error(lua_State *L)
{
    const char *src = luaL_checkstring(L, 1);
    mgw_pool_t *pool = mgw_pool_create(4096);
    const char *err = NULL;
    if (mgw_template_compile(pool, src, &err) == NULL)
        lua_pushstring(L, err ? err : "invalid template");
    else
        lua_pushnil(L);
    mgw_pool_destroy(pool);
    return 1;
}

/* A certificate and its key as a TLS server would load them (contents, match, strength). */
static int native_tls_error(lua_State *L)
{
    mgw_tls_site_t site = {.certificate = luaL_checkstring(L, 1), .key = luaL_checkstring(L, 2)};
    char err[512];
    mgw_tls_ctx_t *ctx = mgw_tls_ctx_new(&site, 0, err, sizeof(err));
    if (ctx == NULL)
        lua_pushstring(L, err);
    else
        lua_pushnil(L);
    mgw_tls_ctx_free(ctx);
    return 1;
}

static void register_native(lua_State *L)
{
    lua_getglobal(L, "package");
    lua_getfield(L, -1, "loaded");
    lua_newtable(L);
    lua_pushcfunction(L, native_template_error);
    lua_setfield(L, -2, "template_error");
    lua_pushcfunction(L, native_tls_error);
    lua_setfield(L, -2, "tls_error");
    lua_pushcfunction(L, mgw__native_rsel_error);
    lua_setfield(L, -2, "rsel_error");
    lua_pushcfunction(L, mgw__native_jschema_error);
    lua_setfield(L, -2, "jschema_error");
    lua_setfield(L, -2, "moongate.native");
    lua_pop(L, 2);
}

int mgw_config_load(const char *file, const char *prefix, int check_only, mgw_gen_t **out,
                    mgw_buf_t *errors)
{
    lua_State *L = luaL_newstate();
    luaL_openlibs(L);
    /* package.path = <lua dir>/?.lua;<lua dir>/?/init.lua;<old> */
    lua_getglobal(L, "package");
    lua_getfield(L, -1, "path");
    lua_pushfstring(L, "%s/?.lua;%s/?/init.lua;%s", mgw_config_lua_dir(), mgw_config_lua_dir(),
                    lua_tostring(L, -1));
    lua_setfield(L, -3, "path");
    lua_pop(L, 2);

    register_native(L);

    mgw_gen_t *g = NULL;
    builder_t b = {.L = L, .errors = errors};
    lua_getglobal(L, "require");
    lua_pushliteral(L, "moongate.config");
    if (lua_pcall(L, 1, 1, 0) != 0) {
        mgw_buf_printf(errors, "%s: cannot load the configuration module: %s\n", file,
                       lua_tostring(L, -1));
        goto fail;
    }
    /* A broken installation (a module file that returns nothing) is an error, not a
     * Lua panic on the next line. */
    if (!lua_istable(L, -1)) {
        mgw_buf_printf(errors,
                       "%s: cannot load the configuration module: %s/moongate/config.lua"
                       " returned a %s, not its module table\n",
                       file, mgw_config_lua_dir(), luaL_typename(L, -1));
        goto fail;
    }
    lua_getfield(L, -1, "load");
    lua_pushstring(L, file);
    lua_pushstring(L, prefix ? prefix : ".");
    if (lua_pcall(L, 2, 2, 0) != 0) {
        mgw_buf_printf(errors, "%s: %s\n", file, lua_tostring(L, -1));
        goto fail;
    }
    if (lua_type(L, -1) == LUA_TTABLE) { /* errs */
        int n = (int)lua_objlen(L, -1);
        for (int i = 1; i <= n; i++) {
            lua_rawgeti(L, -1, i);
            mgw_buf_printf(errors, "%s\n", lua_tostring(L, -1));
            lua_pop(L, 1);
        }
        if (n == 0) mgw_buf_printf(errors, "%s: invalid configuration\n", file);
        goto fail;
    }
    lua_pop(L, 1); /* nil errs; conf on top */

    mgw_pool_t *pool = mgw_pool_create(16384);
    g = mgw_pool_calloc(pool, sizeof(*g));
    g->pool = pool;
    atomic_init(&g->refs, 1);
    g->file = mgw_pool_strdup(pool, file);
    g->prefix = mgw_pool_strdup(pool, prefix ? prefix : ".");
    static atomic_int generations;
    g->id = atomic_fetch_add(&generations, 1) + 1;
    b.g = g;
    build_gen(&b, check_only);
    if (b.nerrors) goto fail;
    lua_close(L);
    *out = g;
    return 0;

fail:
    mgw_gen_unref(g);
    lua_close(L);
    return MGW_ECONFIG;
}

int mgw_config_management(const char *file, const char *prefix, mgw_manage_addr_t *out,
                          mgw_buf_t *errors)
{
    lua_State *L = luaL_newstate();
    luaL_openlibs(L);
    lua_getglobal(L, "package");
    lua_getfield(L, -1, "path");
    lua_pushfstring(L, "%s/?.lua;%s", mgw_config_lua_dir(), lua_tostring(L, -1));
    lua_setfield(L, -3, "path");
    lua_pop(L, 2);
    int rc = MGW_ECONFIG;
    lua_getglobal(L, "require");
    lua_pushliteral(L, "moongate.config");
    if (lua_pcall(L, 1, 1, 0) != 0) {
        mgw_buf_printf(errors, "%s: %s\n", file, lua_tostring(L, -1));
        goto done;
    }
    lua_getfield(L, -1, "management");
    lua_pushstring(L, file);
    lua_pushstring(L, prefix ? prefix : ".");
    if (lua_pcall(L, 2, 4, 0) != 0) {
        mgw_buf_printf(errors, "%s: %s\n", file, lua_tostring(L, -1));
        goto done;
    }
    if (lua_type(L, -4) != LUA_TSTRING) {
        mgw_buf_printf(errors, "%s\n", lua_tostring(L, -3));
        goto done;
    }
    snprintf(out->address, sizeof(out->address), "%s", lua_tostring(L, -4));
    out->port = (int)lua_tointeger(L, -3);
    snprintf(out->token_file, sizeof(out->token_file), "%s", lua_tostring(L, -2));
    out->token_generated = lua_toboolean(L, -1);
    rc = 0;
done:
    lua_close(L);
    return rc;
}
