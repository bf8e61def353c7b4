/*
 * Request paths and route keys: the input is "ROUTE KEY\nMETHOD\nTARGET". The route key
 * is added to a router that already holds a small API's keys (the configuration's own
 * checks are left out: the C router must refuse what it cannot hold), the target's path
 * is normalized and matched as the request path would be, and the integration URI
 * template is expanded with the captured parameters. The target is also parsed as a
 * backend URL. Properties: a normalized path starts with '/', has no empty, "." or ".."
 * segment and no trailing slash, and normalizing it again changes nothing; a match's
 * parameters are slices of the normalized path.
 */
#include <stdint.h>
#include <string.h>

#include "fuzz.h"
#include "conf/path.h"
#include "conf/router.h"

static const char *fixed_keys[] = {
    "GET /pets",          "GET /pets/{id}", "POST /pets",       "ANY /echo/{proxy+}",
    "GET /a/{b}/c/{d}",   "PUT /a/b/c/d",   "DELETE /{x+}",     "GET /",
    "OPTIONS /pets/{id}", "HEAD /h",        "PATCH /p/{q}/{r}", "$default",
};

static void check_normalized(mgw_pool_t *pool, mgw_str_t s)
{
    FUZZ_CHECK(s.n >= 1 && s.p[0] == '/');
    FUZZ_CHECK(s.p[s.n] == '\0');
    FUZZ_CHECK(s.n == 1 || s.p[s.n - 1] != '/');
    for (size_t i = 0; i < s.n; i++) {
        if (s.p[i] != '/') continue;
        const char *seg = s.p + i + 1;
        size_t len = 0;
        while (i + 1 + len < s.n && seg[len] != '/')
            len++;
        if (s.n > 1) FUZZ_CHECK(len > 0);
        FUZZ_CHECK(!(len == 1 && seg[0] == '.'));
        FUZZ_CHECK(!(len == 2 && seg[0] == '.' && seg[1] == '.'));
    }
    mgw_str_t again;
    FUZZ_CHECK(mgw_path_normalize(pool, s.p, s.n, &again) == 0);
    FUZZ_CHECK(again.n == s.n && memcmp(again.p, s.p, s.n) == 0);
}

static mgw_str_t line(const uint8_t **p, const uint8_t *end)
{
    const uint8_t *s = *p, *nl = memchr(s, '\n', (size_t)(end - s));
    *p = nl ? nl + 1 : end;
    return (mgw_str_t){(const char *)s, (size_t)((nl ? nl : end) - s)};
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *p = data, *end = data + size;
    mgw_str_t key = line(&p, end), method = line(&p, end);
    mgw_str_t target = {(const char *)p, (size_t)(end - p)};
    mgw_pool_t *pool = mgw_pool_create(0);

    mgw_router_t *rt = mgw_router_create(pool);
    const char *err = NULL;
    for (size_t i = 0; i < sizeof(fixed_keys) / sizeof(fixed_keys[0]); i++)
        FUZZ_CHECK(mgw_router_add(rt, fixed_keys[i], (void *)fixed_keys[i], &err) == 0);
    char *k = mgw_pool_strndup(pool, key.p, key.n);
    static const char fuzzed[] = "fuzzed";
    if (mgw_router_add(rt, k, (void *)fuzzed, &err) != 0) FUZZ_CHECK(err != NULL);

    int m = mgw_method_index(method.p, method.n);
    FUZZ_CHECK(m >= 0 && m < MGW_M_COUNT);

    /* the path part of the target, as request.c takes it */
    const char *q = memchr(target.p, '?', target.n);
    mgw_str_t raw = {target.p, q ? (size_t)(q - target.p) : target.n};
    mgw_str_t path;
    if (mgw_path_normalize(pool, raw.p, raw.n, &path) == 0) {
        check_normalized(pool, path);
        mgw_route_match_t mt;
        if (mgw_router_match(rt, m, path, &mt) == 0) {
            FUZZ_CHECK(mt.data != NULL && mt.key != NULL);
            FUZZ_CHECK(mt.nparams >= 0 && mt.nparams <= MGW_ROUTER_MAX_PARAMS);
            for (int i = 0; i < mt.nparams; i++) {
                mgw_str_t v = mt.params[i].value;
                FUZZ_CHECK(mt.params[i].name.p != NULL);
                FUZZ_CHECK(v.p >= path.p && v.p + v.n <= path.p + path.n);
            }
            mgw_kv_t vars[] = {{MGW_STR("v"), {target.p, target.n}}};
            mgw_str_t u = mgw_uri_expand(pool, "http://h:8/{proxy}/{id}/${stageVariables.v}?{b}",
                                         vars, 1, mt.params, mt.nparams);
            FUZZ_CHECK(u.p[u.n] == '\0');
            mgw_url_t url;
            (void)mgw_url_parse(u.p, u.n, &url);
        }
    }
    /* the whole target as an integration URL, and the key as a URI template */
    mgw_url_t url;
    if (mgw_url_parse(target.p, target.n, &url) == 0) {
        FUZZ_CHECK(url.host.n > 0 && url.port > 0 && url.port <= 65535);
        FUZZ_CHECK(url.path.n > 0);
    }
    mgw_kv_t params[] = {{MGW_STR("id"), MGW_STR("7")}, {MGW_STR("proxy"), MGW_STR("a/b")}};
    mgw_str_t u = mgw_uri_expand(pool, k, params, 2, params, 2);
    FUZZ_CHECK(u.p[u.n] == '\0');
    (void)mgw_str_ieq(target, "content-type");
    mgw_pool_destroy(pool);
    return 0;
}
