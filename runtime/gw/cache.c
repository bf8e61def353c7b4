/*
 * Response caching (README "Response caching"): the cache phase, which answers a request
 * from its stage's store (base/rcache.h) or lets it go on to the integration with an
 * entry to fill, and the capture of the response the client gets on a miss, whichever
 * integration makes it (proxy, non-proxy http, lua, mock): request.c's response functions
 * hand the head, the body bytes and the end to it while r->cache_status is set.
 *
 * Concurrent misses on one key all go to the integration; the last response to end
 * replaces the others' entries (no request waits for another's response).
 */
#include <string.h>
#include <strings.h>

#include "base/crypto.h"
#include "base/rcache.h"
#include "gw/req_int.h"

/* Responses with these statuses are stored (AWS caches successful responses; users
 * complain that it also caches a backend's 429 and 5xx: moongate does not). */
static int cacheable_status(int status)
{
    return status == 200;
}

/* Appends "n:" and the n bytes of s: no value can run into the next one. */
static void key_add(mgw_buf_t *k, const char *s, size_t n)
{
    mgw_buf_printf(k, "%zu:", n);
    if (n) mgw_buf_add(k, s, n);
}

/* The values of the query parameter name, in order, each one's length first; "-" when
 * the query string has none of them (an empty value is another key). */
static void key_query(mgw_buf_t *k, const mgw_req_t *r, mgw_str_t name)
{
    const char *p = r->query.p, *end = p ? p + r->query.n : NULL;
    mgw_str_t v;
    int found = 0;
    while (mgw__query_next(&p, end, name, &v)) {
        found = 1;
        key_add(k, v.p, v.n);
    }
    if (!found) mgw_buf_addc(k, '-');
}

static void key_header(mgw_buf_t *k, const mgw_req_t *r, mgw_str_t name)
{
    int found = 0;
    for (int i = 0; i < r->nheaders; i++) {
        if (r->headers[i].name.n != name.n || memcmp(r->headers[i].name.p, name.p, name.n) != 0)
            continue;
        found = 1;
        key_add(k, r->headers[i].value.p, r->headers[i].value.n);
    }
    if (!found) mgw_buf_addc(k, '-');
}

/*
 * The cache key of r: the method, the route (its resource path), every path parameter's
 * value (AWS leaves them out unless named, so /pets/1 and /pets/2 share an entry: users'
 * first complaint) and the route's cache key parameters. The stage is the store's.
 */
static mgw_str_t make_key(mgw_req_t *r, const mgw_route_cache_t *rc)
{
    mgw_buf_t k = {0};
    key_add(&k, r->method.p, r->method.n);
    key_add(&k, r->route->key, r->route->key_len);
    for (int i = 0; i < r->nparams; i++)
        key_add(&k, r->params[i].value.p, r->params[i].value.n);
    for (int i = 0; i < rc->nparams; i++) {
        mgw_buf_addc(&k, rc->params[i].kind == MGW_CKEY_HEADER ? 'h' : 'q');
        if (rc->params[i].kind == MGW_CKEY_HEADER)
            key_header(&k, r, rc->params[i].name);
        else
            key_query(&k, r, rc->params[i].name);
    }
    mgw_str_t out = {mgw_pool_strndup(r->pool, k.p, k.n), k.n};
    mgw_buf_free(&k);
    return out;
}

/* 1 when the request's Cache-Control asks for a fresh response: a max-age=0 directive. */
static int wants_refresh(const mgw_req_t *r)
{
    for (int i = 0; i < r->nheaders; i++) {
        if (!mgw_str_ieq(r->headers[i].name, "cache-control")) continue;
        mgw_str_t v = r->headers[i].value;
        for (size_t j = 0; j + 9 <= v.n; j++) {
            if (strncasecmp(v.p + j, "max-age=0", 9) != 0) continue;
            if (j && v.p[j - 1] != ' ' && v.p[j - 1] != ',' && v.p[j - 1] != '\t') continue;
            if (j + 9 == v.n || v.p[j + 9] == ',' || v.p[j + 9] == ' ' || v.p[j + 9] == ';')
                return 1;
        }
    }
    return 0;
}

/*
 * Whether the caller may invalidate an entry (AWS: the execute-api:InvalidateCache
 * permission): its API key is one of the stage's invalidate_keys, or its authorizer's
 * context says invalidateCache = true.
 */
static int may_invalidate(mgw_req_t *r, const mgw_stage_cache_t *sc)
{
    mgw_str_t key = mgw__req_caller_key(r);
    if (key.p && key.n && sc->ninvalidate_keys) {
        uint8_t d[32];
        mgw_sha256(key.p, key.n, d);
        for (int i = 0; i < sc->ninvalidate_keys; i++)
            if (mgw_equal_ct(d, sc->invalidate_keys[i], 32)) return 1;
    }
    mgw_str_t v;
    if (r->route->authorizer_type != MGW_AUTHZ_NONE &&
        mgw__req_lookup(r, MGW_VAR_AUTHORIZER_KEY, MGW_STR("invalidateCache"), &v))
        return v.n == 4 && memcmp(v.p, "true", 4) == 0;
    return 0;
}

static void release_entry(void *e)
{
    mgw_rentry_release(e);
}

/* Answers r from entry e (a reference r now holds until its pool goes). */
static void serve_hit(mgw_req_t *r, const mgw_rentry_t *e)
{
    mgw_pool_cleanup_add(r->pool, release_entry, (void *)e);
    r->cache_status = "HIT";
    uint64_t now = mgw__now_ms(r);
    r->cache_age_s = now > e->stored_ms ? (now - e->stored_ms) / 1000 : 0;
    mgw__resp_head(r, e->status, e->hdrs, e->nhdrs, (int64_t)e->body_len);
    mgw__resp_body(r, e->body, e->body_len, NULL);
    mgw__resp_end(r); /* r may be gone */
}

int mgw__cache_phase(mgw_req_t *r)
{
    const mgw_stage_cache_t *sc = r->stage->cache;
    const mgw_route_cache_t *rc = &sc->routes[r->route->idx];
    if (sc->store == NULL || rc->mode == MGW_CACHE_OFF || r->head_method) return MGW_PHASE_NEXT;
    if (rc->mode == MGW_CACHE_GET && !(r->method.n == 3 && memcmp(r->method.p, "GET", 3) == 0))
        return MGW_PHASE_NEXT;
    /* Request validation first: a request it refuses never gets a cached answer. */
    if (r->route->validation && !r->validated) {
        int rc2 = mgw__validate(r);
        if (rc2 != MGW_PHASE_NEXT) return rc2;
    }
    r->cache_key = make_key(r, rc);
    r->cache_status = "MISS";
    if (wants_refresh(r)) {
        if (!sc->require_authorization || may_invalidate(r, sc)) {
            /* the entry goes; the integration answers, and its response replaces it */
            mgw_rcache_remove(sc->store, r->cache_key.p, r->cache_key.n);
            r->cache_status = "REFRESH";
            r->cache_fill = 1;
            return MGW_PHASE_NEXT;
        }
        if (sc->unauthorized == MGW_CACHE_FAIL_WITH_403) {
            r->cache_status = NULL;
            r->error_reason = "The caller may not invalidate the cache (Cache-Control: max-age=0)";
            mgw__req_fail(r, MGW_GW_ACCESS_DENIED, NULL);
            return MGW_PHASE_STOP;
        }
        r->cache_warn = sc->unauthorized == MGW_CACHE_SUCCEED_WITH_RESPONSE_HEADER;
    }
    const mgw_rentry_t *e =
        mgw_rcache_lookup(sc->store, r->cache_key.p, r->cache_key.n, mgw__now_ms(r), rc->ttl_ms);
    if (e) {
        serve_hit(r, e);
        return MGW_PHASE_STOP;
    }
    r->cache_fill = 1;
    return MGW_PHASE_NEXT;
}

/* ---- the response (request.c calls these while r->cache_status is set) ---- */

static void drop_fill(void *data)
{
    mgw_req_t *r = data;
    if (r->cache_entry) mgw_rentry_release(r->cache_entry);
    r->cache_entry = NULL;
}

/* 1 when v contains word (ASCII, any case). */
static int has_word(mgw_str_t v, const char *word)
{
    size_t n = strlen(word);
    for (size_t j = 0; j + n <= v.n; j++)
        if (strncasecmp(v.p + j, word, n) == 0) return 1;
    return 0;
}

/* A response that must not be shared: it sets a cookie, or its backend says no-store or
 * private (AWS caches those anyway; a shared cache must not, RFC 9111 section 3). */
static int private_response(const mgw_hdr_t *hdrs, int n)
{
    for (int i = 0; i < n; i++) {
        if (mgw_str_ieq(hdrs[i].name, "set-cookie")) return 1;
        if (mgw_str_ieq(hdrs[i].name, "cache-control") &&
            (has_word(hdrs[i].value, "no-store") || has_word(hdrs[i].value, "private")))
            return 1;
    }
    return 0;
}

int mgw__cache_head(mgw_req_t *r, int status, const mgw_hdr_t *hdrs, int nhdrs, mgw_hdr_t *more,
                    int k)
{
    int hit = r->cache_status[0] == 'H';
    more[k++] = (mgw_hdr_t){MGW_STR("x-cache"),
                            hit ? MGW_STR("Hit from moongate") : MGW_STR("Miss from moongate")};
    if (hit) {
        mgw_sbuf_t b = {r->cache_age, 0};
        mgw_sbuf_u64(&b, r->cache_age_s);
        more[k++] = (mgw_hdr_t){MGW_STR("age"), {b.p, b.n}};
    }
    if (r->cache_warn)
        more[k++] = (mgw_hdr_t){
            MGW_STR("warning"),
            MGW_STR(
                "199 moongate \"Cache-Control ignored: the caller may not invalidate the cache\"")};
    if (!r->cache_fill || !cacheable_status(status) || private_response(hdrs, nhdrs)) return k;
    r->cache_entry =
        mgw_rentry_new(r->stage->cache->store, r->cache_key.p, r->cache_key.n, status, hdrs, nhdrs);
    if (r->cache_entry) mgw_pool_cleanup_add(r->pool, drop_fill, r);
    return k;
}

void mgw__cache_body(mgw_req_t *r, const char *p, size_t n)
{
    if (r->cache_entry && mgw_rentry_append(r->cache_entry, p, n) != 0) {
        mgw_rentry_release(r->cache_entry); /* past the size limit: given up */
        r->cache_entry = NULL;
    }
}

void mgw__cache_end(mgw_req_t *r)
{
    mgw_rentry_t *e = r->cache_entry;
    if (e == NULL) return;
    r->cache_entry = NULL;
    mgw_rcache_insert(r->stage->cache->store, e, mgw__now_ms(r));
}
