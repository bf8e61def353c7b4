/*
 * Rate-based rules' C side (ffi_waf.c): the key a request is counted by (each kind of key
 * part: header, cookie, query argument, query string, method, path, client and forwarded
 * address), requests missing a part, the forwarded header's fallback, and what
 * mgw__waf_rate_matches gives the WAF log (AWS's rateBasedRuleList).
 */
#include "lua/ffi_waf.c"

#include <stdio.h>
#include <string.h>

#include "unit.h"

static mgw_worker_t worker;

static mgw_gen_t *new_gen(const char *counter, int limit, const char *limit_key,
                          const mgw_rkey_t *keys, int nkeys, int fallback_match)
{
    mgw_pool_t *pool = mgw_pool_create(0);
    mgw_gen_t *g = mgw_pool_calloc(pool, sizeof(*g));
    g->pool = pool;
    g->nwaf_rate = 1;
    g->waf_rate = mgw_pool_calloc(pool, sizeof(mgw_wafrate_t));
    mgw_wafrate_t *rr = g->waf_rate;
    rr->name = "rl";
    rr->limit = (uint64_t)limit;
    rr->window_s = 60;
    rr->limit_key = limit_key;
    for (int i = 0; i < nkeys; i++)
        rr->keys[i] = keys[i];
    rr->nkeys = nkeys;
    rr->forwarded_header = MGW_STR("x-forwarded-for");
    rr->fallback_match = fallback_match;
    rr->counters = mgw_ratewin_get(counter, 60000, (uint64_t)limit);
    return g;
}

static void free_gen(mgw_gen_t *g)
{
    mgw_ratewin_release(g->waf_rate->counters);
    mgw_pool_destroy(g->pool);
}

/* A request with headers "name: value" pairs (names lower case), target path?query. */
static mgw_req_t *new_req(mgw_gen_t *g, const char *method, const char *path, const char *query,
                          const char *const *hdrs)
{
    mgw_pool_t *pool = mgw_pool_create(0);
    mgw_req_t *r = mgw_pool_calloc(pool, sizeof(*r));
    r->pool = pool;
    r->gen = g;
    r->from.w = &worker;
    r->from.peer = "192.0.2.1";
    r->method = (mgw_str_t){method, strlen(method)};
    r->raw_path = (mgw_str_t){path, strlen(path)};
    r->path = r->raw_path;
    r->query = query ? (mgw_str_t){query, strlen(query)} : MGW_NULL_STR;
    int n = 0;
    while (hdrs && hdrs[2 * n])
        n++;
    r->headers = mgw_pool_alloc(pool, sizeof(mgw_hdr_t) * (size_t)(n ? n : 1));
    for (int i = 0; i < n; i++)
        r->headers[i] = (mgw_hdr_t){{hdrs[2 * i], strlen(hdrs[2 * i])},
                                    {hdrs[2 * i + 1], strlen(hdrs[2 * i + 1])}};
    r->nheaders = r->cap_headers = n;
    return r;
}

static int run(mgw_gen_t *g, const char *method, const char *path, const char *query,
               const char *const *hdrs)
{
    mgw_req_t *r = new_req(g, method, path, query, hdrs);
    const char *err = NULL;
    int rc = mgw_ffi_waf_rate(r, 0, &err);
    mgw_pool_destroy(r->pool);
    return rc;
}

static const char *s(mgw_str_t v)
{
    static char buf[256];
    snprintf(buf, sizeof buf, "%.*s", (int)v.n, v.p ? v.p : "(null)");
    return buf;
}

static void test_custom_keys_and_the_log(void)
{
    mgw_rkey_t keys[] = {{MGW_RKEY_HEADER, MGW_STR("x-user")}, {MGW_RKEY_FORWARDED_IP, {0}}};
    mgw_gen_t *g = new_gen("u1", 10, "CUSTOMKEYS", keys, 2, 1);
    const char *h[] = {"x-user", "alice", "x-forwarded-for", "2001:0DB8::1, 10.0.0.1", NULL};
    for (int i = 0; i < 10; i++)
        CHECK(run(g, "GET", "/a", NULL, h) == 0);
    mgw_req_t *r = new_req(g, "GET", "/a", NULL, h);
    const char *err = NULL;
    CHECK(mgw_ffi_waf_rate(r, 0, &err) == 1);
    int n = 0;
    const mgw_waf_rate_match_t *m = mgw__waf_rate_matches(r, &n);
    CHECK(n == 1 && m != NULL);
    if (n == 1) {
        CHECK_STR(m->rule, "rl");
        CHECK(m->limit == 10 && m->window_s == 60 && m->count == 11 && !m->fallback);
        CHECK_STR(m->limit_key, "CUSTOMKEYS");
        CHECK(m->nvalues == 2);
        CHECK_STR(m->values[0].key, "HEADER");
        CHECK_STR(m->values[0].name, "x-user");
        CHECK_STR(s(m->values[0].value), "alice");
        CHECK_STR(m->values[1].key, "FORWARDED_IP");
        CHECK(m->values[1].name == NULL);
        CHECK_STR(s(m->values[1].value), "2001:db8::1"); /* canonical form */
    }
    mgw_pool_destroy(r->pool);
    /* another user, and a request missing a part, are not over the limit */
    const char *bob[] = {"x-user", "bob", "x-forwarded-for", "2001:db8::1", NULL};
    CHECK(run(g, "GET", "/a", NULL, bob) == 0);
    const char *no_user[] = {"x-forwarded-for", "2001:db8::1", NULL};
    for (int i = 0; i < 20; i++)
        CHECK(run(g, "GET", "/a", NULL, no_user) == 0);
    const char *no_xff[] = {"x-user", "alice", NULL};
    CHECK(run(g, "GET", "/a", NULL, no_xff) == 0); /* no header: the rule does not apply */
    free_gen(g);
}

static void test_fallback(void)
{
    mgw_rkey_t keys[] = {{MGW_RKEY_FORWARDED_IP, {0}}};
    mgw_gen_t *match = new_gen("f1", 10, "FORWARDEDIP", keys, 1, 1);
    const char *bad[] = {"x-forwarded-for", "unknown, 10.0.0.1", NULL};
    mgw_req_t *r = new_req(match, "GET", "/", NULL, bad);
    const char *err = NULL;
    CHECK(mgw_ffi_waf_rate(r, 0, &err) == 1);
    int n = 0;
    const mgw_waf_rate_match_t *m = mgw__waf_rate_matches(r, &n);
    CHECK(n == 1 && m && m->fallback && m->count == 0);
    if (n == 1) CHECK_STR(s(m->values[0].value), "unknown, 10.0.0.1");
    mgw_pool_destroy(r->pool);
    free_gen(match);
    mgw_gen_t *no = new_gen("f2", 10, "FORWARDEDIP", keys, 1, 0);
    for (int i = 0; i < 20; i++)
        CHECK(run(no, "GET", "/", NULL, bad) == 0);
    const char *empty[] = {"x-forwarded-for", "", NULL};
    CHECK(run(no, "GET", "/", NULL, empty) == 0);
    free_gen(no);
}

/* Cookie, query argument, query string, method, path and client address parts. */
static void test_key_kinds(void)
{
    mgw_rkey_t keys[] = {{MGW_RKEY_COOKIE, MGW_STR("session")},
                         {MGW_RKEY_QUERY_ARGUMENT, MGW_STR("k")},
                         {MGW_RKEY_HTTP_METHOD, {0}},
                         {MGW_RKEY_URI_PATH, {0}},
                         {MGW_RKEY_IP, {0}}};
    mgw_gen_t *g = new_gen("k1", 10, "CUSTOMKEYS", keys, 5, 0);
    const char *c1[] = {"cookie", "theme=dark; session=s1", NULL};
    for (int i = 0; i < 10; i++)
        CHECK(run(g, "GET", "/p", "a=1&%6B=v", c1) == 0); /* %6B is k */
    CHECK(run(g, "GET", "/p", "k=v&a=2", c1) == 1);       /* same key */
    const char *c2[] = {"cookie", "session=s2", NULL};
    CHECK(run(g, "GET", "/p", "k=v", c2) == 0);  /* another cookie value */
    CHECK(run(g, "GET", "/p", "k=w", c1) == 0);  /* another argument value */
    CHECK(run(g, "POST", "/p", "k=v", c1) == 0); /* another method */
    CHECK(run(g, "GET", "/q", "k=v", c1) == 0);  /* another path */
    CHECK(run(g, "GET", "/p", "kk=v", c1) == 0); /* no k: not counted */
    const char *c3[] = {"cookie", "sessionx=s1", NULL};
    CHECK(run(g, "GET", "/p", "k=v", c3) == 0); /* no session cookie: not counted */
    free_gen(g);

    mgw_rkey_t qs[] = {{MGW_RKEY_QUERY_STRING, {0}}};
    g = new_gen("k2", 10, "CUSTOMKEYS", qs, 1, 0);
    for (int i = 0; i < 15; i++)
        CHECK(run(g, "GET", "/", NULL, NULL) == 0); /* no query string: not counted */
    for (int i = 0; i < 10; i++)
        CHECK(run(g, "GET", "/", "a=1", NULL) == 0);
    CHECK(run(g, "GET", "/other", "a=1", NULL) == 1);
    free_gen(g);

    /* CONSTANT: every request is one key */
    g = new_gen("k3", 10, "CONSTANT", NULL, 0, 0);
    for (int i = 0; i < 10; i++)
        CHECK(run(g, i % 2 ? "GET" : "PUT", "/", NULL, NULL) == 0);
    mgw_req_t *r = new_req(g, "GET", "/x", NULL, NULL);
    const char *err = NULL;
    CHECK(mgw_ffi_waf_rate(r, 0, &err) == 1);
    int n = 0;
    const mgw_waf_rate_match_t *m = mgw__waf_rate_matches(r, &n);
    CHECK(n == 1 && m && m->nvalues == 0 && strcmp(m->limit_key, "CONSTANT") == 0);
    mgw_pool_destroy(r->pool);
    free_gen(g);
}

static void test_bad_index(void)
{
    mgw_gen_t *g = new_gen("b1", 10, "IP", NULL, 0, 0);
    mgw_req_t *r = new_req(g, "GET", "/", NULL, NULL);
    const char *err = NULL;
    CHECK(mgw_ffi_waf_rate(r, 1, &err) == -1);
    CHECK_STR(err, "no such rate-based rule");
    int n = 5;
    CHECK(mgw__waf_rate_matches(r, &n) == NULL && n == 0);
    mgw_pool_destroy(r->pool);
    free_gen(g);
}

int main(void)
{
    uv_loop_init(&worker.loop);
    RUN(test_custom_keys_and_the_log);
    RUN(test_fallback);
    RUN(test_key_kinds);
    RUN(test_bad_index);
    CHECK(uv_loop_close(&worker.loop) == 0);
    return DONE();
}
