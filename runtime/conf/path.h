/*
 * Request paths and URIs: one normalization used by routing and by what the backend
 * receives, integration URI templates, and URL parsing.
 */
#ifndef MGW_PATH_H
#define MGW_PATH_H

#include "base/mem.h"
#include "base/pool.h"

typedef struct {
    mgw_str_t name, value;
} mgw_kv_t;

/*
 * Normalizes the path part of a request target (no query string) into pool memory:
 * percent-encoded unreserved characters are decoded, other escapes kept with upper-case
 * hex, repeated slashes merged, "." and ".." segments resolved (never above the root),
 * a trailing slash dropped. Returns 0, or MGW_EPARSE for a path that does not start with
 * '/', a broken escape or %00.
 */
int mgw_path_normalize(mgw_pool_t *pool, const char *p, size_t n, mgw_str_t *out);

/*
 * Expands an integration URI template: "${stageVariables.x}" from vars, "{name}" and
 * "{name+}" from params. An unknown name expands to "". Result is NUL-terminated pool
 * memory.
 */
mgw_str_t mgw_uri_expand(mgw_pool_t *pool, const char *tpl, const mgw_kv_t *vars, int nvars,
                         const mgw_kv_t *params, int nparams);

typedef struct {
    int tls;             /* 1 for https */
    mgw_str_t host;      /* without brackets for IPv6 */
    int port;            /* explicit or the scheme's default */
    mgw_str_t path;      /* what follows the authority: path and query, "/" when empty;
                            "?q" when the URL has a query but no path */
    mgw_str_t authority; /* host[:port] as written, for the Host header */
} mgw_url_t;

/* Parses an absolute http(s) URL. Returns 0 or MGW_EPARSE. Pointers borrow from s. */
int mgw_url_parse(const char *s, size_t n, mgw_url_t *url);

/* Case-insensitive comparison of a with the NUL-terminated lower-case b. */
int mgw_str_ieq(mgw_str_t a, const char *b);
/* 1 when the comma-separated header list v (tokens, optional white space) has token
 * (case-insensitive), as Connection, Upgrade and Sec-WebSocket-Protocol values do. */
int mgw_list_has(mgw_str_t v, mgw_str_t token);

#endif
