/*
 * Route matching for HTTP APIs. Route keys ("GET /pets/{id}", "ANY /{proxy+}",
 * "$default") are compiled into a tree of path segments; a match walks the request's
 * segments, trying at each level a literal child, then the {param} child, then a
 * greedy {name+} route, so its cost is the depth of the path, not the number of routes.
 */
#ifndef MGW_ROUTER_H
#define MGW_ROUTER_H

#include "conf/path.h"
#include "base/pool.h"

enum {
    MGW_M_GET,
    MGW_M_POST,
    MGW_M_PUT,
    MGW_M_DELETE,
    MGW_M_PATCH,
    MGW_M_HEAD,
    MGW_M_OPTIONS,
    MGW_M_ANY, /* in a route key; as a request method: any other method */
    MGW_M_COUNT
};

#define MGW_ROUTER_MAX_PARAMS 16

typedef struct mgw_router_s mgw_router_t;

typedef struct {
    void *data;      /* what mgw_router_add() was given */
    const char *key; /* the route key, owned by the router */
    int nparams;
    mgw_kv_t params[MGW_ROUTER_MAX_PARAMS]; /* values borrow from the matched path */
    unsigned visits;                        /* tree nodes visited, for tests */
} mgw_route_match_t;

/* Returns the MGW_M_* index of a method name, MGW_M_ANY for any other method. */
int mgw_method_index(const char *m, size_t n);

/* A router whose memory lives in pool. */
mgw_router_t *mgw_router_create(mgw_pool_t *pool);

/*
 * Adds the route key with its data. Returns 0, or MGW_EINVAL with *err set to a static
 * reason (malformed key, greedy variable not last, same method and path shape already
 * present).
 */
int mgw_router_add(mgw_router_t *rt, const char *key, void *data, const char **err);

/*
 * Matches a normalized path (see mgw_path_normalize) for method (MGW_M_*). Returns 0
 * and fills m, or MGW_ENOTFOUND (no route and no $default).
 */
int mgw_router_match(const mgw_router_t *rt, int method, mgw_str_t path, mgw_route_match_t *m);

#endif
