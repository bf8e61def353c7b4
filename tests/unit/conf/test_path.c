/*
 * Paths and URIs: the normalization that decides both the route and what the backend
 * receives, integration URI templates, backend URL parsing and the case-insensitive
 * comparison used for header names.
 */
#include "conf/path.c"

#include <stdio.h>
#include <string.h>

#include "unit.h"

/* Normalizes in and returns the result (pool memory), or the error name. */
static const char *norm(mgw_pool_t *pool, const char *in, size_t n)
{
    mgw_str_t out = {NULL, 0};
    int rc = mgw_path_normalize(pool, in, n, &out);
    if (rc != 0) return rc == MGW_EPARSE ? "EPARSE" : "other error";
    /* The result is NUL-terminated and its length is exact. */
    if (out.p[out.n] != '\0' || strlen(out.p) != out.n) return "bad length";
    return out.p;
}

static void test_normalize(void)
{
    static const struct {
        const char *in, *want;
    } cases[] = {
        {"/", "/"},
        {"/a/b", "/a/b"},
        {"/a/%2e%2e/b", "/b"},
        {"/a/%2E%2E/b", "/b"},
        {"/a/./b/", "/a/b"},
        {"//a///b", "/a/b"},
        {"/a/", "/a"},
        {"///", "/"},
        {"/..", "/"},
        {"/../..", "/"},
        {"/../a", "/a"},
        {"/a/b/../../..", "/"},
        {"/a/../b/../c", "/c"},
        {"/a/b/..", "/a"},
        {"/a/.", "/a"},
        {"/.", "/"},
        {"/%2e", "/"},
        {"/.%2e/x", "/x"},
        {"/.../x", "/.../x"},
        {"/..a/b", "/..a/b"},
        {"/%41%62c", "/Abc"},
        {"/%7euser", "/~user"},
        {"/a%2db%5Fc", "/a-b_c"},
        {"/a%2fb", "/a%2Fb"},
        {"/a%2Fb/..", "/"},
        {"/a%20b", "/a%20b"},
        {"/a%3fb", "/a%3Fb"},
        {"/%c3%a9", "/%C3%A9"},
        {"/a/b%2F..%2Fc", "/a/b%2F..%2Fc"},
        {"/%zz", "EPARSE"},
        {"/%4", "EPARSE"},
        {"/%", "EPARSE"},
        {"/a%g1", "EPARSE"},
        {"/%00", "EPARSE"},
        {"/a%00b", "EPARSE"},
        {"%00", "EPARSE"},
        {"a/b", "EPARSE"},
        {"", "EPARSE"},
        {"*", "EPARSE"},
    };
    mgw_pool_t *pool = mgw_pool_create(0);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *got = norm(pool, cases[i].in, strlen(cases[i].in));
        if (strcmp(got, cases[i].want) != 0)
            printf("#   normalize(\"%s\") = \"%s\", want \"%s\"\n", cases[i].in, got,
                   cases[i].want);
        CHECK_STR(got, cases[i].want);
    }
    /* Only n bytes are read: what follows (a query string) is not part of the path. */
    CHECK_STR(norm(pool, "/a/b?x=%zz", 4), "/a/b");
    CHECK_STR(norm(pool, "/a/%41", 5), "EPARSE");
    mgw_pool_destroy(pool);
}

static const char *expand(mgw_pool_t *pool, const char *tpl)
{
    static const mgw_kv_t vars[] = {
        {MGW_STR("backend"), MGW_STR("http://10.0.0.1:8081")},
        {MGW_STR("v"), MGW_STR("v2")},
    };
    static const mgw_kv_t params[] = {
        {MGW_STR("id"), MGW_STR("42")},
        {MGW_STR("proxy"), MGW_STR("x/y/z")},
    };
    mgw_str_t s = mgw_uri_expand(pool, tpl, vars, 2, params, 2);
    if (s.p == NULL || s.p[s.n] != '\0' || strlen(s.p) != s.n) return "bad result";
    return s.p;
}

static void test_uri_expand(void)
{
    mgw_pool_t *pool = mgw_pool_create(0);
    CHECK_STR(expand(pool, "http://h/pets"), "http://h/pets");
    CHECK_STR(expand(pool, ""), "");
    CHECK_STR(expand(pool, "${stageVariables.backend}/animals/{id}"),
              "http://10.0.0.1:8081/animals/42");
    CHECK_STR(expand(pool, "http://h/${stageVariables.v}/{id}?q={id}"), "http://h/v2/42?q=42");
    CHECK_STR(expand(pool, "http://h/{proxy+}"), "http://h/x/y/z");
    CHECK_STR(expand(pool, "http://h/{proxy}"), "http://h/x/y/z");
    CHECK_STR(expand(pool, "http://h/{id}{id}"), "http://h/4242");
    /* Unknown names expand to "". */
    CHECK_STR(expand(pool, "http://h/{nope}/${stageVariables.nope}/x"), "http://h///x");
    CHECK_STR(expand(pool, "http://h/{nope+}"), "http://h/");
    /* A brace or dollar that starts no substitution stays as written. */
    CHECK_STR(expand(pool, "http://h/a{"), "http://h/a{");
    CHECK_STR(expand(pool, "http://h/$x/${other}"), "http://h/$x/$");
    /* No variables or parameters at all. */
    mgw_str_t s = mgw_uri_expand(pool, "http://h/{id}/${stageVariables.v}", NULL, 0, NULL, 0);
    CHECK_STR(s.p, "http://h//");
    CHECK(s.n == 10);
    mgw_pool_destroy(pool);
}

static int url(const char *s, mgw_url_t *u)
{
    return mgw_url_parse(s, strlen(s), u);
}

static int str_is(mgw_str_t s, const char *want)
{
    return s.p != NULL && s.n == strlen(want) && memcmp(s.p, want, s.n) == 0;
}

static void test_url_parse(void)
{
    mgw_url_t u;
    CHECK(url("http://example.com/a/b?x=1", &u) == 0);
    CHECK(u.tls == 0);
    CHECK(u.port == 80);
    CHECK(str_is(u.host, "example.com"));
    CHECK(str_is(u.path, "/a/b?x=1"));
    CHECK(str_is(u.authority, "example.com"));

    CHECK(url("https://example.com", &u) == 0);
    CHECK(u.tls == 1);
    CHECK(u.port == 443);
    CHECK(str_is(u.host, "example.com"));
    CHECK(str_is(u.path, "/"));
    CHECK(str_is(u.authority, "example.com"));

    CHECK(url("http://127.0.0.1:8081/animals/1", &u) == 0);
    CHECK(u.port == 8081);
    CHECK(str_is(u.host, "127.0.0.1"));
    CHECK(str_is(u.path, "/animals/1"));
    CHECK(str_is(u.authority, "127.0.0.1:8081"));

    CHECK(url("https://h:1", &u) == 0);
    CHECK(u.tls == 1 && u.port == 1);
    CHECK(url("http://h:65535/", &u) == 0);
    CHECK(u.port == 65535);

    CHECK(url("http://[::1]:8080/x", &u) == 0);
    CHECK(str_is(u.host, "::1"));
    CHECK(u.port == 8080);
    CHECK(str_is(u.path, "/x"));
    CHECK(str_is(u.authority, "[::1]:8080"));
    CHECK(url("https://[2001:db8::1]", &u) == 0);
    CHECK(str_is(u.host, "2001:db8::1"));
    CHECK(u.port == 443);
    CHECK(str_is(u.path, "/"));

    /* Only n bytes are parsed. */
    CHECK(mgw_url_parse("http://h:81/abc", 11, &u) == 0);
    CHECK(u.port == 81);
    CHECK(str_is(u.path, "/"));

    static const char *bad[] = {
        "ftp://h/x",      "HTTP//h",      "h/x",         "",
        "http:/h",        "http://",      "http:///x",   "http://:80/x",
        "https://?x",     "http://h:",    "http://h:x",  "http://h:0",
        "http://h:65536", "http://h:8a/", "http://[::1", "http://[::1]x",
        "http://[]/",     "http://h:-1",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rc = url(bad[i], &u);
        if (rc != MGW_EPARSE) printf("#   \"%s\" was accepted\n", bad[i]);
        CHECK(rc == MGW_EPARSE);
    }
}

/*
 * A query right after the authority ("http://h?x=1", which the configuration accepts as
 * an integration URI): upstream.c sends url.path as the request target, and that must be
 * origin-form, "/?x=1" (RFC 9112 section 3.2.1), never "?x=1".
 */
static void test_url_query_without_path(void)
{
    mgw_url_t u;
    CHECK(url("http://h?x=1", &u) == 0);
    CHECK(str_is(u.host, "h"));
    CHECK(str_is(u.authority, "h"));
    /* The parser borrows from its input, so the path is what follows the authority; the
     * proxy (upstream.c build_head) puts the '/' in front when it writes the request. */
    CHECK(str_is(u.path, "?x=1"));
}

static void test_str_ieq(void)
{
    CHECK(mgw_str_ieq(MGW_STR("Content-Length"), "content-length") == 1);
    CHECK(mgw_str_ieq(MGW_STR("content-length"), "content-length") == 1);
    CHECK(mgw_str_ieq(MGW_STR("CONNECTION"), "connection") == 1);
    CHECK(mgw_str_ieq(MGW_STR(""), "") == 1);
    CHECK(mgw_str_ieq(MGW_STR("content-lengthX"), "content-length") == 0);
    CHECK(mgw_str_ieq(MGW_STR("content"), "content-length") == 0);
    CHECK(mgw_str_ieq(MGW_STR(""), "a") == 0);
    CHECK(mgw_str_ieq(MGW_STR("a"), "") == 0);
    CHECK(mgw_str_ieq(MGW_STR("Host"), "hosT") == 0); /* b is lower case by contract */
    /* Only a.n bytes of a count. */
    CHECK(mgw_str_ieq((mgw_str_t){"HOSTNAME", 4}, "host") == 1);
}

/*
 * A two-byte a that ends in NUL is not the one-byte "a": the comparison must stop at b's
 * terminator instead of matching a's NUL against it and reading on. b gets one more NUL
 * after its terminator so that the read past it stays inside the array.
 */
static void test_str_ieq_embedded_nul(void)
{
    static const char b[3] = {'a', '\0', '\0'};
    CHECK(mgw_str_ieq((mgw_str_t){"a\0", 2}, b) == 0);
}

int main(void)
{
    RUN(test_normalize);
    RUN(test_uri_expand);
    RUN(test_url_parse);
    RUN(test_url_query_without_path);
    RUN(test_str_ieq);
    RUN(test_str_ieq_embedded_nul);
    return DONE();
}
