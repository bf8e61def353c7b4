/*
 * Writes lua/moongate/constants.lua (to stdout): every number and name list that the Lua
 * modules share with the C runtime, read from the runtime headers by the compiler itself,
 * so that the two sides cannot disagree. `make` runs it whenever a runtime header
 * changes. Lua names a constant constants.GROUP.NAME and never types a shared number in;
 * to share a new one, add it to a list below and use it by that name.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/wafxform.h"
#include "conf/gwresp.h"
#include "conf/template.h"
#include "gw/req_int.h"
#include "lua/lua_int.h"

typedef struct {
    const char *name;
    long value;
} konst_t;

#define K(prefix, name)                                                                            \
    {                                                                                              \
#name, prefix##name                                                                        \
    }
#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static const konst_t hooks[] = {
    K(MGW_HOOK_, WAF),    K(MGW_HOOK_, ROUTE), K(MGW_HOOK_, AUTHORIZE),
    K(MGW_HOOK_, HANDLE), K(MGW_HOOK_, LOG),   K(MGW_HOOK_, CHECK_CERT),
};

static const konst_t codes[] = {
    K(MGW_LUA_, OK),           K(MGW_LUA_, WAIT), K(MGW_LUA_, ERROR),     K(MGW_LUA_, BLOCK),
    K(MGW_LUA_, UNAUTHORIZED), K(MGW_LUA_, DENY), K(MGW_LUA_, NOT_FOUND), K(MGW_LUA_, GWRESP),
};

static const konst_t certs[] = {K(MGW_CERT_, ALLOW), K(MGW_CERT_, DENY), K(MGW_CERT_, ERROR)};

static const konst_t log_levels[] = {K(MGW_LOG_, ERROR), K(MGW_LOG_, WARN), K(MGW_LOG_, INFO),
                                     K(MGW_LOG_, DEBUG)};

static const konst_t limits[] = {{"MAX", MGW_LIMITS_MAX}};

static const konst_t fields[] = {
#define XX(id, name) {name, MGW_FIELD_##id},
    MGW_REQ_FIELDS(XX)
#undef XX
};

static const char *context_vars[] = {
#define XX(id, name) name,
    MGW_CONTEXT_VARS(XX)
#undef XX
};

static const konst_t gwresp_codes[] = {
#define XX(t, s, m, e) {#t, MGW_GW_##t},
    MGW_GWRESP_TYPES(XX)
#undef XX
};

static const char *gwresp_types[] = {
#define XX(t, s, m, e) #t,
    MGW_GWRESP_TYPES(XX)
#undef XX
};

/* The C structs the Lua modules declare in ffi.cdef again: their size and field offsets. */
#define F(type, f)                                                                                 \
    {                                                                                              \
#f, (long)offsetof(type, f)                                                                \
    }
#define LAYOUT(type, ...)                                                                          \
    {                                                                                              \
#type, (long)sizeof(type),                                                                 \
            (const konst_t[]){__VA_ARGS__ },                                                       \
                              sizeof((const konst_t[]){__VA_ARGS__}) / sizeof(konst_t)             \
    }

typedef struct {
    const char *name;
    long size;
    const konst_t *fields;
    size_t nfields;
} layout_t;

static const layout_t layouts[] = {
    LAYOUT(mgw_str_t, F(mgw_str_t, p), F(mgw_str_t, n)),
    LAYOUT(mgw_kv_t, F(mgw_kv_t, name), F(mgw_kv_t, value)),
    LAYOUT(mgw_hdr_t, F(mgw_hdr_t, name), F(mgw_hdr_t, value)),
    LAYOUT(mgw_lslot_t, F(mgw_lslot_t, r), F(mgw_lslot_t, serial), F(mgw_lslot_t, next)),
    LAYOUT(mgw_ffi_limit_t, F(mgw_ffi_limit_t, policy), F(mgw_ffi_limit_t, rate),
           F(mgw_ffi_limit_t, burst), F(mgw_ffi_limit_t, remaining), F(mgw_ffi_limit_t, reset_ms),
           F(mgw_ffi_limit_t, retry_after_ms)),
    LAYOUT(mgw_ffi_http_params_t, F(mgw_ffi_http_params_t, method),
           F(mgw_ffi_http_params_t, method_len), F(mgw_ffi_http_params_t, url),
           F(mgw_ffi_http_params_t, url_len), F(mgw_ffi_http_params_t, headers),
           F(mgw_ffi_http_params_t, nheaders), F(mgw_ffi_http_params_t, body),
           F(mgw_ffi_http_params_t, body_len), F(mgw_ffi_http_params_t, timeout_ms),
           F(mgw_ffi_http_params_t, max_body), F(mgw_ffi_http_params_t, ca_file),
           F(mgw_ffi_http_params_t, ca_file_len)),
    LAYOUT(mgw_ffi_http_result_t, F(mgw_ffi_http_result_t, status),
           F(mgw_ffi_http_result_t, nheaders), F(mgw_ffi_http_result_t, body),
           F(mgw_ffi_http_result_t, error)),
};

/* A group of named numbers: reading a name it does not have is an error. */
static void group(const char *name, const char *from, const konst_t *k, size_t n)
{
    printf("\n-- %s\nM.%s = enum(\"%s\", {\n", from, name, name);
    for (size_t i = 0; i < n; i++)
        printf("  %s = %ld,\n", k[i].name, k[i].value);
    printf("})\n");
}

static void list(const char *name, const char *from, const char **s, size_t n)
{
    printf("\n-- %s\nM.%s = {\n", from, name);
    for (size_t i = 0; i < n; i++)
        printf("  \"%s\",\n", s[i]);
    printf("}\n");
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int main(void)
{
    printf("-- moongate.constants: the numbers and names Lua shares with the C runtime.\n"
           "-- GENERATED by `make` (tools/gen_constants.c) from the runtime headers named\n"
           "-- below: do not edit, change the header instead.\n"
           "local M = {}\n\n"
           "local function enum(group, t)\n"
           "  return setmetatable(t, { __index = function(_, k)\n"
           "    error(\"moongate.constants: \" .. group .. \" has no \" .. tostring(k), 2)\n"
           "  end })\n"
           "end\n");
    group("HOOK", "runtime/lua/lua_int.h: MGW_HOOK_*, the hook kinds", hooks, COUNT(hooks));
    group("CODE", "runtime/lua/lua_int.h: MGW_LUA_*, what a hook call returns to C", codes,
          COUNT(codes));
    group("CERT", "runtime/lua/lua_int.h: MGW_CERT_*, what a revocation check returns to C", certs,
          COUNT(certs));
    group("LOG", "runtime/base/log.h: MGW_LOG_*, error log levels", log_levels, COUNT(log_levels));
    group("GATEWAY_RESPONSE",
          "runtime/conf/gwresp.h: MGW_GW_*, the gateway response types (a hook's MGW_LUA_GWRESP)",
          gwresp_codes, COUNT(gwresp_codes));
    group("LIMITS", "runtime/gw/req_int.h: MGW_LIMITS_MAX, the most throttle levels a request has",
          limits, COUNT(limits));

    printf("\n-- runtime/lua/lua_int.h: MGW_REQ_FIELDS, the fields of mgw_ffi_req_field by name\n"
           "M.REQUEST_FIELDS = {\n");
    for (size_t i = 0; i < COUNT(fields); i++)
        printf("  %s = %ld,\n", fields[i].name, fields[i].value);
    printf("}\n");

    static const char *wafxforms[] = {
#define XX(name, fn) #name,
        MGW_WAFXFORMS(XX)
#undef XX
    };
    list("WAF_TRANSFORMS", "runtime/base/wafxform.h: MGW_WAFXFORMS, AWS WAF's text transformations",
         wafxforms, COUNT(wafxforms));
    list("CONTEXT_VARIABLES", "runtime/conf/template.h: MGW_CONTEXT_VARS, every $context variable",
         context_vars, COUNT(context_vars));
    qsort(gwresp_types, COUNT(gwresp_types), sizeof(gwresp_types[0]), by_name);
    list("GATEWAY_RESPONSE_TYPES",
         "runtime/conf/gwresp.h: MGW_GWRESP_TYPES, the gateway response types (sorted)",
         gwresp_types, COUNT(gwresp_types));

    printf("\n-- The C structs that lua/moongate/ declares in ffi.cdef again (runtime/base/mem.h,\n"
           "-- runtime/conf/path.h, runtime/lua/lua_int.h): sizeof and field offsets;\n"
           "-- spec/lua/base_spec.lua compares them with the declarations.\n"
           "M.LAYOUT = {\n");
    for (size_t i = 0; i < COUNT(layouts); i++) {
        printf("  %s = { sizeof = %ld, offsets = {", layouts[i].name, layouts[i].size);
        for (size_t j = 0; j < layouts[i].nfields; j++)
            printf(" %s = %ld,", layouts[i].fields[j].name, layouts[i].fields[j].value);
        printf(" } },\n");
    }
    printf("}\n");
    printf("\nreturn M\n");
    return ferror(stdout) ? 1 : 0;
}
