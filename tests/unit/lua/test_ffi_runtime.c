/*
 * The failure counters of Lua hooks (runtime/lua/ffi_runtime.c mgw_ffi_runtime_failed):
 * a script error and a budget stop go to their own family, labelled with the policy and
 * the hook's configuration word; the handle found on the first failure is handed back
 * and used again without a lookup; a hook number outside the list counts nothing.
 */
#include "lua/ffi_runtime.c"

#include "unit.h"

static int rendered(const mgw_buf_t *b, const char *line)
{
    return b->n && strstr(b->p, line) != NULL;
}

static void test_failed(void)
{
    mgw_stat_init(2);
    uint32_t err_h = 0, budget_h = 0, waf_h = 0, none_h = 0;
    const char *p = "policies/boom.lua";
    CHECK(mgw_ffi_runtime_failed(NULL, MGW_HOOK_HANDLE, 0, p, strlen(p), &err_h) == 0);
    CHECK(err_h != 0);
    uint32_t first = err_h;
    mgw_ffi_runtime_failed(NULL, MGW_HOOK_HANDLE, 0, p, strlen(p), &err_h);
    CHECK(err_h == first);
    CHECK(mgw_stat_value(err_h) == 2);
    /* the handle names the series: the policy text is not looked at again */
    mgw_ffi_runtime_failed(NULL, MGW_HOOK_HANDLE, 0, "x", 1, &err_h);
    CHECK(mgw_stat_value(first) == 3);
    mgw_ffi_runtime_failed(NULL, MGW_HOOK_HANDLE, 1, p, strlen(p), &budget_h);
    CHECK(budget_h != 0 && budget_h != err_h);
    /* a policy named by n bytes of a longer string; the revocation hook */
    mgw_ffi_runtime_failed(NULL, MGW_HOOK_CHECK_CERT, 0, "policies/rev.lua<junk>", 16, &waf_h);
    mgw_ffi_runtime_failed(NULL, 0, 0, p, strlen(p), &none_h);
    mgw_ffi_runtime_failed(NULL, MGW_HOOK_CHECK_CERT + 1, 0, p, strlen(p), &none_h);
    CHECK(none_h == 0);
    mgw_buf_t b = {0};
    mgw_stat_render(&b);
    CHECK(rendered(&b, "# TYPE moongate_lua_hook_errors_total counter\n"
                       "moongate_lua_hook_errors_total{policy=\"policies/boom.lua\",hook="
                       "\"integration\"} 3\n"
                       "moongate_lua_hook_errors_total{policy=\"policies/rev.lua\",hook="
                       "\"revocation\"} 1\n"));
    CHECK(rendered(&b, "# TYPE moongate_lua_budget_stops_total counter\n"
                       "moongate_lua_budget_stops_total{policy=\"policies/boom.lua\",hook="
                       "\"integration\"} 1\n"));
    mgw_buf_free(&b);
    mgw_stat_free();
}

static void test_hook_names(void)
{
    /* the configuration's words for the uses, one per hook kind */
    CHECK_STR(hook_names[MGW_HOOK_WAF], "waf");
    CHECK_STR(hook_names[MGW_HOOK_ROUTE], "route_selection");
    CHECK_STR(hook_names[MGW_HOOK_AUTHORIZE], "authorizer");
    CHECK_STR(hook_names[MGW_HOOK_HANDLE], "integration");
    CHECK_STR(hook_names[MGW_HOOK_LOG], "log");
    CHECK_STR(hook_names[MGW_HOOK_CHECK_CERT], "revocation");
}

int main(void)
{
    RUN(test_failed);
    RUN(test_hook_names);
    return DONE();
}
