/*
 * The $context values hooks produce, as an access-log line shows them: the authorizer's
 * principal, status, error and context keys, the WAF's outcome, and a log policy's
 * custom values; and when a request body counts as complete for req:body().
 */
#include "lua/hooks.c"

#include <lauxlib.h>
#include <lualib.h>
#include <stdio.h>
#include <string.h>

#include "conf/config.h"
#include "unit.h"

static int lookup(void *ud, int var, mgw_str_t arg, mgw_str_t *out)
{
    return mgw__hooks_lookup(ud, var, arg, out);
}

/* Renders src for r (static buffer). */
static const char *render(mgw_req_t *r, const char *src)
{
    static char text[512];
    const char *err = NULL;
    mgw_template_t *t = mgw_template_compile(r->pool, src, &err);
    if (t == NULL) {
        snprintf(text, sizeof text, "COMPILE: %s", err);
        return text;
    }
    mgw_buf_t b = {0};
    mgw_template_render(t, lookup, r, &b);
    snprintf(text, sizeof text, "%.*s", (int)b.n, b.p ? b.p : "");
    mgw_buf_free(&b);
    return text;
}

static mgw_req_t *new_req(void)
{
    mgw_pool_t *pool = mgw_pool_create(0);
    mgw_req_t *r = mgw_pool_calloc(pool, sizeof(*r));
    r->pool = pool;
    return r;
}

static void test_nothing_before_a_hook_ran(void)
{
    mgw_req_t *r = new_req();
    CHECK_STR(render(r,
                     "$context.authorizer.principalId $context.authorizer.user $context.waf.status "
                     "$context.wafResponseCode $context.custom.x"),
              "- - - - -");
    mgw_pool_destroy(r->pool);
}

static void test_authorizer_values(void)
{
    mgw_req_t *r = new_req();
    mgw_lreq_t *l = mgw__lreq(r);
    static mgw_kv_t ctx[] = {{{"user", 4}, {"alice", 5}}, {{"tier", 4}, {"gold", 4}}};
    l->principal = "u-1";
    l->authz = ctx;
    l->nauthz = 2;
    l->authz_status = 200;
    l->authz_latency_ms = 7;
    CHECK_STR(render(r, "$context.authorizer.principalId $context.authorizer.user "
                        "$context.authorizer.tier $context.authorizer.nope "
                        "$context.authorizer.status $context.authorizer.latency"),
              "u-1 alice gold - 200 7");
    /* JSON templates escape context values like any other */
    static mgw_kv_t q[] = {{{"q", 1}, {"say \"hi\"", 8}}};
    l->authz = q;
    l->nauthz = 1;
    CHECK_STR(render(r, "{\"q\":\"$context.authorizer.q\"}"), "{\"q\":\"say \\\"hi\\\"\"}");
    mgw_pool_destroy(r->pool);
}

static void test_authorizer_failure(void)
{
    mgw_req_t *r = new_req();
    mgw_lreq_t *l = mgw__lreq(r);
    l->authz_status = 500;
    l->authz_error = "policies/a.lua:3: boom";
    CHECK_STR(render(r, "$context.authorizer.status $context.authorizer.error"),
              "500 policies/a.lua:3: boom");
    mgw_pool_destroy(r->pool);
}

static void test_waf_values(void)
{
    mgw_req_t *r = new_req();
    mgw_lreq_t *l = mgw__lreq(r);
    const char *tpl = "$context.waf.status $context.wafResponseCode $context.waf.rule "
                      "$context.waf.counted $context.waf.latency";
    l->waf_done = 1;
    l->waf_latency_ms = 2;
    l->waf_counted = "a,b";
    CHECK_STR(render(r, tpl), "200 WAF_ALLOW - a,b 2");
    l->waf_blocked = 1;
    l->waf_rule = "deny-net";
    CHECK_STR(render(r, tpl), "403 WAF_BLOCK deny-net a,b 2");
    l->waf_error = "rule \"x\": boom";
    CHECK_STR(render(r, "$context.waf.status $context.wafResponseCode $context.waf.error"),
              "500 - rule \"x\": boom");
    mgw_pool_destroy(r->pool);
}

static void test_custom_values(void)
{
    mgw_req_t *r = new_req();
    mgw_lreq_t *l = mgw__lreq(r);
    static mgw_kv_t custom[] = {{{"tenant", 6}, {"acme", 4}}};
    l->custom = custom;
    l->ncustom = 1;
    CHECK_STR(render(r, "$context.custom.tenant/$context.custom.other"), "acme/-");
    mgw_pool_destroy(r->pool);
}

static void test_variable_names(void)
{
    mgw_str_t arg;
    CHECK(mgw_template_var("authorizer.principalId", 22, &arg) == MGW_VAR_AUTHORIZER_PRINCIPAL);
    CHECK(arg.p == NULL);
    CHECK(mgw_template_var("authorizer.user", 15, &arg) == MGW_VAR_AUTHORIZER_KEY);
    CHECK(arg.n == 4 && memcmp(arg.p, "user", 4) == 0);
    CHECK(mgw_template_var("custom.a.b", 10, &arg) == MGW_VAR_CUSTOM);
    CHECK(arg.n == 3 && memcmp(arg.p, "a.b", 3) == 0);
    CHECK(mgw_template_var("authorizer.", 11, &arg) == -1);
    CHECK(mgw_template_var("customer", 8, &arg) == -1);
    CHECK(mgw_template_var("wafResponseCode", 15, &arg) == MGW_VAR_WAF_RESPONSE_CODE);
}

static void test_body_complete(void)
{
    mgw_req_t *r = new_req();
    CHECK(mgw__hooks_body_complete(r)); /* no Content-Length, not chunked: no body */
    r->has_length = 1;
    r->content_length = 0;
    CHECK(mgw__hooks_body_complete(r));
    r->content_length = 5;
    CHECK(!mgw__hooks_body_complete(r));
    r->body_done = 1;
    CHECK(mgw__hooks_body_complete(r));
    r->has_length = 0;
    r->chunked = 1;
    r->body_done = 0;
    CHECK(!mgw__hooks_body_complete(r));
    mgw_pool_destroy(r->pool);
}

/*
 * The kit (lua/moongate/request.lua) knows every $context variable the gateway has: its
 * list comes from lua/moongate/constants.lua, which make generates from template.h, so
 * this fails when that file is stale or request.lua stops using it.
 */
static void test_kit_knows_every_variable(void)
{
    static const char *names[] = {
#define XX(id, name) name,
        MGW_CONTEXT_VARS(XX)
#undef XX
    };
    lua_State *L = luaL_newstate();
    luaL_openlibs(L);
    lua_getglobal(L, "package");
    lua_pushfstring(L, "%s/?.lua", mgw_config_lua_dir());
    lua_setfield(L, -2, "path");
    lua_pop(L, 1);
    lua_getglobal(L, "require");
    lua_pushliteral(L, "moongate.request");
    if (lua_pcall(L, 1, 1, 0) != 0) {
        printf("#   %s\n", lua_tostring(L, -1));
        CHECK(0);
        lua_close(L);
        return;
    }
    lua_getfield(L, -1, "CONTEXT_VARIABLES");
    int n = (int)lua_objlen(L, -1);
    CHECK(n == (int)(sizeof(names) / sizeof(names[0])));
    for (int i = 0; i < (int)(sizeof(names) / sizeof(names[0])); i++) {
        int found = 0;
        for (int j = 1; j <= n && !found; j++) {
            lua_rawgeti(L, -1, j);
            found = strcmp(lua_tostring(L, -1), names[i]) == 0;
            lua_pop(L, 1);
        }
        if (!found)
            printf("#   $context.%s is missing from request.lua CONTEXT_VARIABLES\n", names[i]);
        CHECK(found);
    }
    lua_close(L);
}

int main(void)
{
    RUN(test_kit_knows_every_variable);
    RUN(test_nothing_before_a_hook_ran);
    RUN(test_authorizer_values);
    RUN(test_authorizer_failure);
    RUN(test_waf_values);
    RUN(test_custom_values);
    RUN(test_variable_names);
    RUN(test_body_complete);
    return DONE();
}
