/*
 * Route matching: which route a request reaches (priority, methods, backtracking), the
 * path parameters it captures, the keys mgw_router_add() refuses, and that a match costs
 * the depth of the path rather than the number of routes. router.c is included so that
 * the literal-children ordering (a static invariant of the tree) can be checked too.
 */
#include "conf/router.c"

#include <stdio.h>
#include <string.h>

#include "base/err.h"
#include "unit.h"

/* Adds key with data to rt and checks that the router accepted it. */
static void add_ok(mgw_router_t *rt, const char *key, void *data)
{
    const char *err = NULL;
    int rc = mgw_router_add(rt, key, data, &err);
    if (rc != 0) printf("#   adding \"%s\" failed: %s\n", key, err ? err : "(no reason)");
    CHECK(rc == 0);
}

/* Adds a route with its own key string as data, so matches can be compared by key. */
static void add_key(mgw_router_t *rt, const char *key)
{
    add_ok(rt, key, (void *)key);
}

/* The key of the route that method + path reaches, or NULL when nothing matches. */
static const char *match_key(const mgw_router_t *rt, const char *method, const char *path,
                             mgw_route_match_t *m)
{
    int mi = mgw_method_index(method, strlen(method));
    if (mgw_router_match(rt, mi, (mgw_str_t){path, strlen(path)}, m) != 0) return NULL;
    return m->key;
}

static const char *param(const mgw_route_match_t *m, int i, char *buf, size_t size)
{
    if (i >= m->nparams) return NULL;
    snprintf(buf, size, "%.*s=%.*s", (int)m->params[i].name.n, m->params[i].name.p,
             (int)m->params[i].value.n, m->params[i].value.p);
    return buf;
}

static void test_method_index(void)
{
    CHECK(mgw_method_index("GET", 3) == MGW_M_GET);
    CHECK(mgw_method_index("POST", 4) == MGW_M_POST);
    CHECK(mgw_method_index("PUT", 3) == MGW_M_PUT);
    CHECK(mgw_method_index("DELETE", 6) == MGW_M_DELETE);
    CHECK(mgw_method_index("PATCH", 5) == MGW_M_PATCH);
    CHECK(mgw_method_index("HEAD", 4) == MGW_M_HEAD);
    CHECK(mgw_method_index("OPTIONS", 7) == MGW_M_OPTIONS);
    /* Methods are case-sensitive (RFC 9110): "get" is some other method. */
    CHECK(mgw_method_index("get", 3) == MGW_M_ANY);
    CHECK(mgw_method_index("PROPFIND", 8) == MGW_M_ANY);
    CHECK(mgw_method_index("ANY", 3) == MGW_M_ANY);
    CHECK(mgw_method_index("", 0) == MGW_M_ANY);
    /* Only n bytes count: a prefix or a longer name is not the method. */
    CHECK(mgw_method_index("GETX", 3) == MGW_M_GET);
    CHECK(mgw_method_index("GETX", 4) == MGW_M_ANY);
    CHECK(mgw_method_index("GE", 2) == MGW_M_ANY);
    CHECK(mgw_method_index("POSTS", 5) == MGW_M_ANY);
}

/* static beats {param} beats {proxy+} beats $default. */
static void test_priority(void)
{
    mgw_pool_t *pool = mgw_pool_create(0);
    mgw_router_t *rt = mgw_router_create(pool);
    mgw_route_match_t m;
    char b[64];
    /* Added least specific first, so the order of adding cannot be what decides. */
    add_key(rt, "$default");
    add_key(rt, "GET /pets/{proxy+}");
    add_key(rt, "GET /pets/{id}");
    add_key(rt, "GET /pets/dog");

    CHECK_STR(match_key(rt, "GET", "/pets/dog", &m), "GET /pets/dog");
    CHECK(m.nparams == 0);
    /* data is what was given to mgw_router_add; key is the router's own copy. */
    CHECK_STR((const char *)m.data, "GET /pets/dog");

    CHECK_STR(match_key(rt, "GET", "/pets/cat", &m), "GET /pets/{id}");
    CHECK(m.nparams == 1);
    CHECK_STR(param(&m, 0, b, sizeof b), "id=cat");

    CHECK_STR(match_key(rt, "GET", "/pets/cat/food", &m), "GET /pets/{proxy+}");
    CHECK(m.nparams == 1);
    CHECK_STR(param(&m, 0, b, sizeof b), "proxy=cat/food");

    /* A literal segment that only continues into a dead end falls to the greedy route. */
    CHECK_STR(match_key(rt, "GET", "/pets/dog/bone", &m), "GET /pets/{proxy+}");
    CHECK_STR(param(&m, 0, b, sizeof b), "proxy=dog/bone");

    CHECK_STR(match_key(rt, "GET", "/other", &m), "$default");
    CHECK(m.nparams == 0);
    /* No GET route at all for POST: the $default route answers. */
    CHECK_STR(match_key(rt, "POST", "/pets/dog", &m), "$default");
    CHECK(m.nparams == 0);
    /* Paths are case-sensitive. */
    CHECK_STR(match_key(rt, "GET", "/Pets/dog", &m), "$default");
    mgw_pool_destroy(pool);
}

static void test_method_vs_any(void)
{
    mgw_pool_t *pool = mgw_pool_create(0);
    mgw_router_t *rt = mgw_router_create(pool);
    mgw_route_match_t m;
    add_key(rt, "ANY /pets/{id}");
    add_key(rt, "GET /pets/{id}");
    add_key(rt, "ANY /pets/dog");
    add_key(rt, "POST /toys/ball");
    add_key(rt, "GET /toys/{name}");
    add_key(rt, "ANY /files/{p+}");
    add_key(rt, "PUT /files/{p+}");

    /* On the same path the exact method beats ANY; other methods take ANY. */
    CHECK_STR(match_key(rt, "GET", "/pets/cat", &m), "GET /pets/{id}");
    CHECK_STR(match_key(rt, "DELETE", "/pets/cat", &m), "ANY /pets/{id}");
    /*
     * A more specific path with ANY beats a less specific path with the exact method:
     * the path is decided first, the method only among routes of that path.
     */
    CHECK_STR(match_key(rt, "GET", "/pets/dog", &m), "ANY /pets/dog");
    CHECK(m.nparams == 0);
    /* A literal route of another method does not hide the {param} route of this one. */
    CHECK_STR(match_key(rt, "GET", "/toys/ball", &m), "GET /toys/{name}");
    CHECK_STR(match_key(rt, "POST", "/toys/ball", &m), "POST /toys/ball");
    CHECK(match_key(rt, "DELETE", "/toys/ball", &m) == NULL);
    /* The same rules for greedy routes. */
    CHECK_STR(match_key(rt, "PUT", "/files/a/b", &m), "PUT /files/{p+}");
    CHECK_STR(match_key(rt, "GET", "/files/a/b", &m), "ANY /files/{p+}");
    mgw_pool_destroy(pool);
}

static void test_unknown_method(void)
{
    mgw_pool_t *pool = mgw_pool_create(0);
    mgw_router_t *rt = mgw_router_create(pool);
    mgw_route_match_t m;
    add_key(rt, "GET /dav");
    add_key(rt, "POST /dav/{x}");
    CHECK(match_key(rt, "PROPFIND", "/dav", &m) == NULL);
    CHECK(match_key(rt, "PROPFIND", "/dav/a", &m) == NULL);
    CHECK(match_key(rt, "get", "/dav", &m) == NULL);
    add_key(rt, "ANY /dav");
    CHECK_STR(match_key(rt, "PROPFIND", "/dav", &m), "ANY /dav");
    CHECK_STR(match_key(rt, "GET", "/dav", &m), "GET /dav");
    CHECK(match_key(rt, "PROPFIND", "/dav/a", &m) == NULL);
    mgw_pool_destroy(pool);
}

/* GET /a/b/c with /a/{x}/c and /a/b/d: the literal "b" leads nowhere, {x} does. */
static void test_backtracking(void)
{
    mgw_pool_t *pool = mgw_pool_create(0);
    mgw_router_t *rt = mgw_router_create(pool);
    mgw_route_match_t m;
    char b[64];
    add_key(rt, "GET /a/{x}/c");
    add_key(rt, "GET /a/b/d");
    CHECK_STR(match_key(rt, "GET", "/a/b/c", &m), "GET /a/{x}/c");
    CHECK(m.nparams == 1);
    CHECK_STR(param(&m, 0, b, sizeof b), "x=b");
    CHECK_STR(match_key(rt, "GET", "/a/b/d", &m), "GET /a/b/d");
    CHECK(m.nparams == 0);
    CHECK_STR(match_key(rt, "GET", "/a/z/c", &m), "GET /a/{x}/c");
    CHECK_STR(param(&m, 0, b, sizeof b), "x=z");
    CHECK(match_key(rt, "GET", "/a/b/e", &m) == NULL);
    CHECK(match_key(rt, "GET", "/a/b", &m) == NULL);

    /*
     * Two routes share the {param} node under the root but name it differently: the
     * names come from the route that matched, the values from the path.
     */
    add_key(rt, "GET /{first}/q/z");
    add_key(rt, "GET /{a}/{b}/w");
    CHECK_STR(match_key(rt, "GET", "/p/q/w", &m), "GET /{a}/{b}/w");
    CHECK(m.nparams == 2);
    CHECK_STR(param(&m, 0, b, sizeof b), "a=p");
    CHECK_STR(param(&m, 1, b, sizeof b), "b=q");
    CHECK_STR(match_key(rt, "GET", "/p/q/z", &m), "GET /{first}/q/z");
    CHECK(m.nparams == 1);
    CHECK_STR(param(&m, 0, b, sizeof b), "first=p");

    /* A {param} branch that dies deeper gives way to a greedy route higher up. */
    add_key(rt, "GET /g/{x}/c");
    add_key(rt, "GET /g/{rest+}");
    CHECK_STR(match_key(rt, "GET", "/g/b/d", &m), "GET /g/{rest+}");
    CHECK(m.nparams == 1);
    CHECK_STR(param(&m, 0, b, sizeof b), "rest=b/d");
    CHECK_STR(match_key(rt, "GET", "/g/b/c", &m), "GET /g/{x}/c");
    CHECK_STR(param(&m, 0, b, sizeof b), "x=b");
    mgw_pool_destroy(pool);
}

static void test_params(void)
{
    mgw_pool_t *pool = mgw_pool_create(0);
    mgw_router_t *rt = mgw_router_create(pool);
    mgw_route_match_t m;
    char b[64];
    add_key(rt, "GET /users/{uid}/posts/{pid}");
    add_key(rt, "ANY /files/{path+}");
    add_key(rt, "GET /u/{id}/{rest+}");
    add_key(rt, "$default");

    const char *path = "/users/7/posts/42";
    CHECK_STR(match_key(rt, "GET", path, &m), "GET /users/{uid}/posts/{pid}");
    CHECK(m.nparams == 2);
    CHECK_STR(param(&m, 0, b, sizeof b), "uid=7");
    CHECK_STR(param(&m, 1, b, sizeof b), "pid=42");
    /* Values borrow from the matched path. */
    CHECK(m.params[0].value.p == path + 7);
    CHECK(m.params[1].value.p == path + 15);

    /* The greedy capture keeps its slashes. */
    CHECK_STR(match_key(rt, "DELETE", "/files/x/y/z", &m), "ANY /files/{path+}");
    CHECK(m.nparams == 1);
    CHECK_STR(param(&m, 0, b, sizeof b), "path=x/y/z");
    CHECK_STR(match_key(rt, "GET", "/files/x", &m), "ANY /files/{path+}");
    CHECK_STR(param(&m, 0, b, sizeof b), "path=x");

    CHECK_STR(match_key(rt, "GET", "/u/1/a/b", &m), "GET /u/{id}/{rest+}");
    CHECK(m.nparams == 2);
    CHECK_STR(param(&m, 0, b, sizeof b), "id=1");
    CHECK_STR(param(&m, 1, b, sizeof b), "rest=a/b");

    /* {proxy+} needs at least one segment: /files alone is not matched by it. */
    CHECK_STR(match_key(rt, "GET", "/files", &m), "$default");
    CHECK(m.nparams == 0);
    CHECK_STR(match_key(rt, "GET", "/u/1", &m), "$default");
    /* $default captures nothing even when a route matched part of the path. */
    CHECK_STR(match_key(rt, "GET", "/users/7/posts", &m), "$default");
    CHECK(m.nparams == 0);
    mgw_pool_destroy(pool);
}

static void test_greedy_needs_segment(void)
{
    mgw_pool_t *pool = mgw_pool_create(0);
    mgw_router_t *rt = mgw_router_create(pool);
    mgw_route_match_t m;
    add_key(rt, "ANY /pets/{proxy+}");
    add_key(rt, "ANY /{proxy+}");
    CHECK_STR(match_key(rt, "GET", "/pets/x", &m), "ANY /pets/{proxy+}");
    CHECK_STR(match_key(rt, "GET", "/pets", &m), "ANY /{proxy+}");
    CHECK(m.params[0].value.n == 4 && memcmp(m.params[0].value.p, "pets", 4) == 0);
    /* The root has no segment, so even /{proxy+} does not match it. */
    CHECK(match_key(rt, "GET", "/", &m) == NULL);
    mgw_pool_destroy(pool);
}

static void test_root(void)
{
    mgw_pool_t *pool = mgw_pool_create(0);
    mgw_router_t *rt = mgw_router_create(pool);
    mgw_route_match_t m;
    int root = 1, any = 2, fallback = 3;
    add_ok(rt, "GET /", &root);
    add_ok(rt, "GET /a", &any);
    CHECK_STR(match_key(rt, "GET", "/", &m), "GET /");
    CHECK(m.data == &root);
    CHECK(m.nparams == 0);
    CHECK(match_key(rt, "POST", "/", &m) == NULL);
    CHECK(mgw_router_match(rt, MGW_M_POST, MGW_STR("/"), &m) == MGW_ENOTFOUND);
    add_ok(rt, "ANY /", &any);
    CHECK_STR(match_key(rt, "POST", "/", &m), "ANY /");
    add_ok(rt, "$default", &fallback);
    CHECK_STR(match_key(rt, "GET", "/nope", &m), "$default");
    CHECK(m.data == &fallback);
    mgw_pool_destroy(pool);
}

static void test_add_errors(void)
{
    mgw_pool_t *pool = mgw_pool_create(0);
    mgw_router_t *rt = mgw_router_create(pool);
    mgw_route_match_t m;
    int first = 1, second = 2;
    const char *err;

    /* A greedy variable must be the last segment. */
    err = NULL;
    CHECK(mgw_router_add(rt, "GET /{proxy+}/x", NULL, &err) == MGW_EINVAL);
    CHECK(err != NULL && strstr(err, "greedy") != NULL);
    err = NULL;
    CHECK(mgw_router_add(rt, "ANY /a/{p+}/{q}", NULL, &err) == MGW_EINVAL);
    CHECK(err != NULL && strstr(err, "greedy") != NULL);

    /* Same method and same path shape: a conflict, whatever the parameter names. */
    add_ok(rt, "GET /pets/{id}", &first);
    err = NULL;
    CHECK(mgw_router_add(rt, "GET /pets/{name}", &second, &err) == MGW_EINVAL);
    CHECK(err != NULL && strstr(err, "conflict") != NULL);
    CHECK(mgw_router_add(rt, "GET /pets/{id}", &second, &err) == MGW_EINVAL);
    add_ok(rt, "ANY /x/{a+}", &first);
    CHECK(mgw_router_add(rt, "ANY /x/{b+}", &second, &err) == MGW_EINVAL);
    add_ok(rt, "GET /", &first);
    CHECK(mgw_router_add(rt, "GET /", &second, &err) == MGW_EINVAL);
    add_ok(rt, "$default", &first);
    err = NULL;
    CHECK(mgw_router_add(rt, "$default", &second, &err) == MGW_EINVAL);
    CHECK(err != NULL);
    /* A refused route leaves the one already there in place. */
    CHECK_STR(match_key(rt, "GET", "/pets/1", &m), "GET /pets/{id}");
    CHECK(m.data == &first);
    CHECK_STR(match_key(rt, "GET", "/x/1/2", &m), "ANY /x/{a+}");
    CHECK(m.data == &first);
    CHECK(match_key(rt, "GET", "/nothing", &m) != NULL && m.data == &first);
    /* Same path, other method, or a greedy next to a {param}: no conflict. */
    add_ok(rt, "POST /pets/{id}", &second);
    add_ok(rt, "GET /pets/{id+}", &second);
    add_ok(rt, "GET /pets", &second);

    /* Malformed keys. */
    static const char *bad[] = {
        "",             /* empty */
        "GET",          /* no path */
        "GET pets",     /* path without '/' */
        "GET  /pets",   /* two spaces */
        "FETCH /pets",  /* unknown method */
        "get /pets",    /* methods are upper case */
        "default",      /* $default misspelt */
        "GET //pets",   /* empty segment */
        "GET /a//b",    /* empty segment */
        "GET /{}",      /* empty variable */
        "GET /{id",     /* unclosed variable */
        "GET /{id}x",   /* variable mixed with text */
        "GET /a/{id}x", /* same, deeper */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err = NULL;
        int rc = mgw_router_add(rt, bad[i], NULL, &err);
        if (rc != MGW_EINVAL || err == NULL) printf("#   key \"%s\" was accepted\n", bad[i]);
        CHECK(rc == MGW_EINVAL);
        CHECK(err != NULL);
    }
    mgw_pool_destroy(pool);
}

/* The literal children of a node are kept sorted, which find_static's binary search needs. */
static void test_static_children_sorted(void)
{
    mgw_pool_t *pool = mgw_pool_create(0);
    mgw_router_t *rt = mgw_router_create(pool);
    mgw_route_match_t m;
    static const char *keys[] = {"GET /pets", "GET /pet",   "GET /a", "GET /zoo", "GET /p",
                                 "GET /pe",   "GET /pets2", "GET /b", "GET /m",   "GET /Z"};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        add_key(rt, keys[i]);
    CHECK(rt->root.nstatic == (int)(sizeof(keys) / sizeof(keys[0])));
    for (int i = 1; i < rt->root.nstatic; i++) {
        const node_t *a = rt->root.statics[i - 1], *b = rt->root.statics[i];
        CHECK(seg_cmp(a->seg, a->seg_len, b->seg, b->seg_len) < 0);
    }
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        CHECK_STR(match_key(rt, "GET", keys[i] + 4, &m), keys[i]);
    /* Prefixes of a literal are not that literal. */
    CHECK(match_key(rt, "GET", "/pet2", &m) == NULL);
    CHECK(match_key(rt, "GET", "/zo", &m) == NULL);
    CHECK(match_key(rt, "GET", "/zooo", &m) == NULL);
    mgw_pool_destroy(pool);
}

/* Number of segments in a normalized path ("/" has none). */
static unsigned segments(const char *path)
{
    unsigned n = 0;
    if (strcmp(path, "/") == 0) return 0;
    for (const char *p = path; *p; p++)
        if (*p == '/') n++;
    return n;
}

#define NSVC 1000

/*
 * 2,000 routes: every one is reached with its own data, and the nodes a match visits stay
 * within a small constant times the depth of the path, the same as with a single route.
 */
static void test_many_routes(void)
{
    static int get_data[NSVC], post_data[NSVC];
    mgw_pool_t *pool = mgw_pool_create(0);
    mgw_router_t *rt = mgw_router_create(pool);
    mgw_route_match_t m;
    char key[64], path[64];
    for (int i = 0; i < NSVC; i++) {
        /* Added in a scrambled order so that sorting is exercised. */
        int k = (i * 617) % NSVC;
        snprintf(key, sizeof key, "GET /svc%d/items/{id}", k);
        add_ok(rt, key, &get_data[k]);
        snprintf(key, sizeof key, "POST /svc%d/items", k);
        add_ok(rt, key, &post_data[k]);
    }

    int wrong = 0, too_many_visits = 0;
    unsigned max_visits = 0;
    for (int i = 0; i < NSVC; i++) {
        snprintf(path, sizeof path, "/svc%d/items/%d", i, i * 7);
        if (mgw_router_match(rt, MGW_M_GET, (mgw_str_t){path, strlen(path)}, &m) != 0 ||
            m.data != &get_data[i] || m.nparams != 1 || m.params[0].name.n != 2 ||
            memcmp(m.params[0].name.p, "id", 2) != 0 ||
            m.params[0].value.n != strlen(strrchr(path, '/') + 1) ||
            memcmp(m.params[0].value.p, strrchr(path, '/') + 1, m.params[0].value.n) != 0) {
            if (wrong++ < 5) printf("#   GET %s matched the wrong route\n", path);
        }
        if (m.visits > 3 * segments(path) + 2) too_many_visits++;
        if (m.visits > max_visits) max_visits = m.visits;

        snprintf(path, sizeof path, "/svc%d/items", i);
        if (mgw_router_match(rt, MGW_M_POST, (mgw_str_t){path, strlen(path)}, &m) != 0 ||
            m.data != &post_data[i] || m.nparams != 0) {
            if (wrong++ < 5) printf("#   POST %s matched the wrong route\n", path);
        }
        if (m.visits > 3 * segments(path) + 2) too_many_visits++;
        if (m.visits > max_visits) max_visits = m.visits;

        /* Misses are as cheap as hits. */
        if (mgw_router_match(rt, MGW_M_GET, (mgw_str_t){path, strlen(path)}, &m) != MGW_ENOTFOUND) {
            if (wrong++ < 5) printf("#   GET %s matched\n", path);
        }
        if (m.visits > 3 * segments(path) + 2) too_many_visits++;
    }
    CHECK(wrong == 0);
    CHECK(too_many_visits == 0);
    if (too_many_visits) printf("#   most visits for one match: %u\n", max_visits);

    /* Not on the list: a service that does not exist, an extra segment. */
    CHECK(mgw_router_match(rt, MGW_M_GET, MGW_STR("/svc1000/items/1"), &m) == MGW_ENOTFOUND);
    CHECK(m.visits <= 3 * 3 + 2);
    CHECK(mgw_router_match(rt, MGW_M_GET, MGW_STR("/svc5/items/1/x"), &m) == MGW_ENOTFOUND);
    CHECK(m.visits <= 3 * 4 + 2);

    /* The same path visits exactly as many nodes in a router with a single route. */
    mgw_pool_t *pool1 = mgw_pool_create(0);
    mgw_router_t *one = mgw_router_create(pool1);
    add_ok(one, "GET /svc500/items/{id}", &get_data[500]);
    mgw_route_match_t m1;
    CHECK(mgw_router_match(one, MGW_M_GET, MGW_STR("/svc500/items/9"), &m1) == 0);
    CHECK(mgw_router_match(rt, MGW_M_GET, MGW_STR("/svc500/items/9"), &m) == 0);
    CHECK(m.data == m1.data);
    CHECK(m.visits == m1.visits);
    mgw_pool_destroy(pool1);
    mgw_pool_destroy(pool);
}

int main(void)
{
    RUN(test_method_index);
    RUN(test_priority);
    RUN(test_method_vs_any);
    RUN(test_unknown_method);
    RUN(test_backtracking);
    RUN(test_params);
    RUN(test_greedy_needs_segment);
    RUN(test_root);
    RUN(test_add_errors);
    RUN(test_static_children_sorted);
    RUN(test_many_routes);
    return DONE();
}
