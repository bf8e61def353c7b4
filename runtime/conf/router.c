#include "conf/router.h"

#include <string.h>

#include "base/err.h"

typedef struct {
    void *data;
    const char *key;
    int nnames;
    const char **names; /* parameter names in path order */
} route_t;

typedef struct node_s node_t;
struct node_s {
    const char *seg; /* literal segment of this node (NULL for the param child) */
    size_t seg_len;
    node_t **statics; /* literal children sorted by segment */
    int nstatic, cap;
    node_t *param;
    route_t *exact[MGW_M_COUNT];  /* routes ending at this node */
    route_t *greedy[MGW_M_COUNT]; /* {name+} routes whose greedy segment starts below */
};

struct mgw_router_s {
    mgw_pool_t *pool;
    node_t root;
    route_t *fallback; /* $default */
};

int mgw_method_index(const char *m, size_t n)
{
    static const char *names[] = {"GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"};
    for (int i = 0; i < MGW_M_ANY; i++)
        if (strlen(names[i]) == n && memcmp(names[i], m, n) == 0) return i;
    return MGW_M_ANY;
}

mgw_router_t *mgw_router_create(mgw_pool_t *pool)
{
    mgw_router_t *rt = mgw_pool_calloc(pool, sizeof(*rt));
    rt->pool = pool;
    return rt;
}

static int seg_cmp(const char *a, size_t an, const char *b, size_t bn)
{
    int c = memcmp(a, b, an < bn ? an : bn);
    if (c) return c;
    return an < bn ? -1 : an > bn;
}

/* Binary search among the literal children; *pos receives the insertion point. */
static node_t *find_static(const node_t *n, const char *seg, size_t len, int *pos)
{
    int lo = 0, hi = n->nstatic - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        int c = seg_cmp(n->statics[mid]->seg, n->statics[mid]->seg_len, seg, len);
        if (c == 0) return n->statics[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    if (pos) *pos = lo;
    return NULL;
}

static node_t *add_static(mgw_router_t *rt, node_t *n, const char *seg, size_t len)
{
    int pos = 0;
    node_t *c = find_static(n, seg, len, &pos);
    if (c) return c;
    if (n->nstatic == n->cap) {
        int cap = n->cap ? n->cap * 2 : 4;
        node_t **s = mgw_pool_alloc(rt->pool, (size_t)cap * sizeof(*s));
        if (n->nstatic) memcpy(s, n->statics, (size_t)n->nstatic * sizeof(*s));
        n->statics = s;
        n->cap = cap;
    }
    memmove(n->statics + pos + 1, n->statics + pos, (size_t)(n->nstatic - pos) * sizeof(node_t *));
    c = mgw_pool_calloc(rt->pool, sizeof(*c));
    c->seg = mgw_pool_strndup(rt->pool, seg, len);
    c->seg_len = len;
    n->statics[pos] = c;
    n->nstatic++;
    return c;
}

int mgw_router_add(mgw_router_t *rt, const char *key, void *data, const char **err)
{
    route_t *r = mgw_pool_calloc(rt->pool, sizeof(*r));
    r->data = data;
    r->key = mgw_pool_strdup(rt->pool, key);
    if (strcmp(key, "$default") == 0) {
        if (rt->fallback) return *err = "duplicate $default route", MGW_EINVAL;
        rt->fallback = r;
        return 0;
    }
    const char *sp = strchr(key, ' ');
    if (sp == NULL || sp[1] != '/') return *err = "route key must be \"METHOD /path\"", MGW_EINVAL;
    int m = mgw_method_index(key, (size_t)(sp - key));
    if (m == MGW_M_ANY && strncmp(key, "ANY ", 4) != 0)
        return *err = "unknown method in route key", MGW_EINVAL;

    const char *names[MGW_ROUTER_MAX_PARAMS];
    node_t *n = &rt->root;
    const char *p = sp + 1;
    int greedy = 0;
    while (*p == '/' && p[1] != '\0') {
        const char *seg = p + 1, *end = strchr(seg, '/');
        size_t len = end ? (size_t)(end - seg) : strlen(seg);
        if (len == 0) return *err = "empty path segment", MGW_EINVAL;
        if (seg[0] == '{') {
            if (seg[len - 1] != '}' || len < 3) return *err = "malformed path variable", MGW_EINVAL;
            if (r->nnames == MGW_ROUTER_MAX_PARAMS)
                return *err = "too many path variables", MGW_EINVAL;
            size_t nlen = len - 2;
            if (seg[len - 2] == '+') {
                if (end) return *err = "greedy variable must be the last segment", MGW_EINVAL;
                greedy = 1;
                nlen--;
            }
            names[r->nnames++] = mgw_pool_strndup(rt->pool, seg + 1, nlen);
            if (!greedy) {
                if (!n->param) n->param = mgw_pool_calloc(rt->pool, sizeof(node_t));
                n = n->param;
            }
        } else {
            n = add_static(rt, n, seg, len);
        }
        p = seg + len;
    }
    r->names = mgw_pool_alloc(rt->pool, sizeof(char *) * (size_t)(r->nnames ? r->nnames : 1));
    memcpy(r->names, names, sizeof(char *) * (size_t)r->nnames);
    route_t **slot = greedy ? &n->greedy[m] : &n->exact[m];
    if (*slot) return *err = "conflicts with another route of the same method and path", MGW_EINVAL;
    *slot = r;
    return 0;
}

static const route_t *pick(route_t *const *tab, int m)
{
    return tab[m] ? tab[m] : tab[MGW_M_ANY];
}

/*
 * Depth-first search: literal child, then {param} child, then a greedy route at this
 * node. The first full match found is the most specific one, because at each level the
 * more specific alternative is tried first and a dead end backtracks.
 */
static const route_t *walk(const node_t *n, int m, const char *p, const char *end, mgw_str_t *caps,
                           int ncaps, mgw_route_match_t *out)
{
    out->visits++;
    if (p >= end) {
        const route_t *r = pick(n->exact, m);
        if (r) out->nparams = ncaps;
        return r;
    }
    const char *seg = p + 1, *segend = memchr(seg, '/', (size_t)(end - seg));
    if (!segend) segend = end;
    size_t len = (size_t)(segend - seg);

    const node_t *c = find_static(n, seg, len, NULL);
    if (c) {
        const route_t *r = walk(c, m, segend, end, caps, ncaps, out);
        if (r) return r;
    }
    if (n->param && len > 0 && ncaps < MGW_ROUTER_MAX_PARAMS) {
        caps[ncaps] = (mgw_str_t){seg, len};
        const route_t *r = walk(n->param, m, segend, end, caps, ncaps + 1, out);
        if (r) return r;
    }
    const route_t *g = pick(n->greedy, m);
    if (g && ncaps < MGW_ROUTER_MAX_PARAMS) {
        caps[ncaps] = (mgw_str_t){seg, (size_t)(end - seg)};
        out->nparams = ncaps + 1;
        return g;
    }
    return NULL;
}

int mgw_router_match(const mgw_router_t *rt, int method, mgw_str_t path, mgw_route_match_t *m)
{
    mgw_str_t caps[MGW_ROUTER_MAX_PARAMS];
    m->visits = 0;
    m->nparams = 0;
    const char *end = path.p + path.n;
    if (path.n == 1) end = path.p; /* "/" has no segments */
    const route_t *r = walk(&rt->root, method, path.p, end, caps, 0, m);
    if (r == NULL) {
        r = rt->fallback;
        m->nparams = 0;
    }
    if (r == NULL) return MGW_ENOTFOUND;
    m->data = r->data;
    m->key = r->key;
    for (int i = 0; i < m->nparams && i < r->nnames; i++) {
        m->params[i].name = (mgw_str_t){r->names[i], strlen(r->names[i])};
        m->params[i].value = caps[i];
    }
    return 0;
}
