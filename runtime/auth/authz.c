/*
 * The JWT authorizer (README "JWT authorizers"), the request core's MGW_AUTHZ_JWT entry:
 * the token from the identity source (raw or "Bearer TOKEN"), the verified-token cache,
 * the parse, the algorithm allow-list, the key (an HMAC secret for HS*, else the JWK
 * Set: jwks_file's, or the remote source's, waiting for a fetch when the keys are not
 * there yet or lack the token's kid), the signature, the claims and the route's scopes.
 * A refusal is a gateway response with the precise reason in WWW-Authenticate (RFC 6750),
 * $context.authorizer.error and $context.error.message; a success leaves the token's
 * claims for $context.authorizer.claims.NAME, Lua and the usage-plan key.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth/auth_int.h"
#include "base/utf8.h"
#include "cluster/ask.h"

/* What the authorizer keeps for one request (r->authz), in r's arena. */
typedef struct {
    const mgw_jwt_conf_t *c;
    mgw_str_t text;           /* the token */
    mgw_jwt_t parsed;         /* its parse when the cache is off */
    const mgw_jwt_t *t;       /* the token being checked */
    mgw_tok_t *entry;         /* with the cache: the entry (the request holds a reference) */
    const mgw_jwt_t *checked; /* the token once its signature and claims passed */
    const mgw_jwt_t *tok;     /* the verified token once allowed (its scopes too) */
    mgw_jwt_err_t err;        /* why r was refused */
    int status;               /* 200, 401 or 403 once decided */
    uint64_t start_ms, latency_ms;
    mgw_keywait_t wait; /* waiting for a fetch of keys */
    int waited;         /* it did: no second wait */
    char *shared_key;   /* shared_cache: the token's key in Redis, once asked (r's arena) */
} jreq_t;

static int is_hs(mgw_jwa_t a)
{
    return a == MGW_JWA_HS256 || a == MGW_JWA_HS384 || a == MGW_JWA_HS512;
}

static mgw_str_t trim(mgw_str_t v)
{
    while (v.n && (v.p[0] == ' ' || v.p[0] == '\t'))
        v.p++, v.n--;
    while (v.n && (v.p[v.n - 1] == ' ' || v.p[v.n - 1] == '\t'))
        v.n--;
    return v;
}

/* The query parameter name's value (percent-decoded into r's arena when it needs it). */
static mgw_str_t query_param(mgw_req_t *r, const char *name, size_t nn)
{
    const char *p = r->query.p, *end = p ? p + r->query.n : NULL;
    while (p && p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *e = amp ? amp : end;
        if ((size_t)(e - p) > nn && memcmp(p, name, nn) == 0 && p[nn] == '=') {
            mgw_str_t v = {p + nn + 1, (size_t)(e - p) - nn - 1};
            if (memchr(v.p, '%', v.n) == NULL && memchr(v.p, '+', v.n) == NULL) return v;
            char *d = mgw_pool_alloc(r->pool, v.n + 1);
            size_t k = 0;
            for (size_t i = 0; i < v.n; i++) {
                int hi, lo;
                if (v.p[i] == '%' && i + 2 < v.n && (hi = mgw_hex_digit(v.p[i + 1])) >= 0 &&
                    (lo = mgw_hex_digit(v.p[i + 2])) >= 0) {
                    d[k++] = (char)(hi << 4 | lo);
                    i += 2;
                } else {
                    d[k++] = v.p[i] == '+' ? ' ' : v.p[i];
                }
            }
            return (mgw_str_t){d, k};
        }
        p = e + 1;
    }
    return MGW_NULL_STR;
}

/* The token of r: the identity source's value, without a "Bearer " prefix. */
static mgw_str_t token_of(mgw_req_t *r, const mgw_jwt_conf_t *c)
{
    mgw_str_t v = MGW_NULL_STR;
    if (c->id_query) {
        v = query_param(r, c->id_name, c->id_name_len);
    } else {
        for (int i = 0; i < r->nheaders; i++)
            if (r->headers[i].name.n == c->id_name_len &&
                memcmp(r->headers[i].name.p, c->id_name, c->id_name_len) == 0) {
                v = r->headers[i].value;
                break;
            }
    }
    v = trim(v);
    if (v.n >= 6 && strncasecmp(v.p, "bearer", 6) == 0 && (v.n == 6 || v.p[6] == ' ')) {
        v.p += 6;
        v.n -= 6;
        v = trim(v);
    }
    return v;
}

/* WWW-Authenticate (RFC 6750 section 3) of a refusal for err, in r's arena. */
static mgw_str_t challenge(mgw_req_t *r, mgw_jwt_err_t err)
{
    if (err == MGW_JWT_ENOTOKEN) return MGW_STR("Bearer");
    const char *why = mgw_jwt_describe(err);
    size_t cap = 96 + strlen(why);
    for (int i = 0; err == MGW_JWT_ESCOPE && i < r->route->nscopes; i++)
        cap += 2 * strlen(r->route->scopes[i]) + 1;
    mgw_sbuf_t b = {mgw_pool_alloc(r->pool, cap), 0};
    mgw_sbuf_adds(&b, err == MGW_JWT_ESCOPE ? "Bearer error=\"insufficient_scope\""
                                            : "Bearer error=\"invalid_token\"");
    mgw_sbuf_adds(&b, ", error_description=\"");
    mgw_sbuf_adds(&b, why);
    mgw_sbuf_adds(&b, "\"");
    if (err == MGW_JWT_ESCOPE) {
        mgw_sbuf_adds(&b, ", scope=\"");
        for (int i = 0; i < r->route->nscopes; i++) {
            if (i) mgw_sbuf_add(&b, " ", 1);
            for (const char *s = r->route->scopes[i]; *s; s++) {
                if (*s == '"' || *s == '\\') mgw_sbuf_add(&b, "\\", 1);
                mgw_sbuf_add(&b, s, 1);
            }
        }
        mgw_sbuf_add(&b, "\"", 1);
    }
    return (mgw_str_t){b.p, b.n};
}

/* Counts the decision (MGW_AUTHZ_OUT_*) in moongate_authorizer_results_total. */
static void count(const jreq_t *j, int outcome)
{
    if (j->c->rt) mgw_stat_add(j->c->rt->stat.outcome[outcome], 1);
}

/* Refuses r for err: 401 UNAUTHORIZED, or 403 ACCESS_DENIED for a missing scope. A
 * refusal for want of keys (the JWK Set could not be fetched) is counted as an error:
 * the client's token may be good. */
static int refuse(mgw_req_t *r, jreq_t *j, mgw_jwt_err_t err)
{
    count(j, err == MGW_JWT_ESCOPE   ? MGW_AUTHZ_OUT_DENY
             : err == MGW_JWT_EFETCH ? MGW_AUTHZ_OUT_ERROR
                                     : MGW_AUTHZ_OUT_UNAUTHORIZED);
    j->err = err;
    j->status = err == MGW_JWT_ESCOPE ? 403 : 401;
    j->latency_ms = mgw__now_ms(r) - j->start_ms;
    r->error_reason = mgw_jwt_describe(err);
    mgw_hdr_t h = {MGW_STR("www-authenticate"), challenge(r, err)};
    mgw__req_fail_with(r, err == MGW_JWT_ESCOPE ? MGW_GW_ACCESS_DENIED : MGW_GW_UNAUTHORIZED, NULL,
                       &h, 1);
    return MGW_PHASE_STOP;
}

/* The token passed: the route's scopes, then r goes on with its claims. */
static int allow(mgw_req_t *r, jreq_t *j, const mgw_jwt_t *t)
{
    const mgw_route_t *rt = r->route;
    j->checked = t; /* its claims are logged even when a scope is missing */
    if (rt->nscopes &&
        mgw_jwt_check_scopes(t, (const char *const *)rt->scopes, rt->nscopes) != MGW_JWT_OK)
        return refuse(r, j, MGW_JWT_ESCOPE);
    count(j, MGW_AUTHZ_OUT_ALLOW);
    j->tok = t;
    j->status = 200;
    j->latency_ms = mgw__now_ms(r) - j->start_ms;
    if (j->c->usage_claim) {
        const mgw_json_t *v = mgw_json_get(t->claims, j->c->usage_claim);
        if (v) r->api_key = mgw_jwt_claim_text(r->pool, v);
    }
    return MGW_PHASE_NEXT;
}

static mgw_tcache_t *cache_of(const mgw_jwt_conf_t *c, mgw_worker_t *w)
{
    struct mgw_jwt_rt_s *rt = c->rt;
    if (c->ttl_ms == 0 || rt == NULL || w->id < 0 || w->id >= rt->nslots) return NULL;
    if (rt->caches[w->id] == NULL) rt->caches[w->id] = mgw__tcache_new();
    return rt->caches[w->id];
}

static void woke(mgw_req_t *r);

/*
 * The key for j->t: from its JWK Set, waiting for a fetch of the remote source when it
 * has no set yet or lacks the token's kid (once per request). NULL with *err, or NULL
 * with *waits set when r now waits.
 */
static const mgw_jwk_t *find_key(mgw_req_t *r, jreq_t *j, mgw_jwt_err_t *err, int *waits)
{
    const mgw_jwt_conf_t *c = j->c;
    mgw_keysrc_t *src = c->rt ? c->rt->src : NULL;
    if (src && r->from.w->id >= c->rt->nslots) src = NULL; /* never: workers are fixed */
    const mgw_jwks_t *set = src ? mgw__keys_current(src, r->from.w) : c->file_keys;
    *err = MGW_JWT_EFETCH;
    const mgw_jwk_t *k = set ? mgw_jwks_find(set, j->t, err) : NULL;
    if (k || src == NULL || j->waited || (set && *err != MGW_JWT_EKID)) return k;
    j->wait.r = r;
    j->wait.wake = woke;
    if (mgw__keys_refresh(src, r->from.w, &j->wait)) {
        mgw_pool_cleanup_add(r->pool, mgw__keys_unwait, &j->wait);
        *waits = 1;
    }
    return NULL;
}

/* ---- shared_cache: verified tokens in the cluster's Redis (README "Running a cluster") ---- */

/*
 * A token verified by one node is good on every node with the same authorizer: Redis
 * holds "<prefix>:jwt:<16 hex digits of the authorizer's digest>:<SHA-256 of the token>"
 * = the time (ms) until which it is good, with that expiry. A worker's miss asks Redis
 * (bounded by cluster.sync_interval_ms, cluster/ask.h) before it verifies the signature;
 * on a hit the token is parsed and its claims and times checked as on a local hit.
 */
typedef struct {
    mgw_ask_t ask;
    char key[MGW_CLUSTER_DIGEST_KEY]; /* a copy of jreq_t.shared_key: the main loop never reads r */
    uint64_t until_ms;                /* found: the token is good until then */
} shared_get_t;

static int shared_send(mgw_ask_t *a)
{
    shared_get_t *g = (shared_get_t *)a;
    return mgw_cluster_cmd(mgw_ask_replied, a, 2, (const char *[]){"GET", g->key}, NULL);
}

static void shared_keep(mgw_ask_t *a, const mgw_redis_reply_t *reply)
{
    shared_get_t *g = (shared_get_t *)a;
    if (reply->type == REDIS_REPLY_STRING && reply->len < 24) {
        char num[24];
        memcpy(num, reply->str, reply->len);
        num[reply->len] = 0;
        g->until_ms = strtoull(num, NULL, 10);
    }
}

static void shared_done(mgw_req_t *r, mgw_ask_t *a);

static const mgw_ask_ops_t shared_ops = {
    .send = shared_send, .keep = shared_keep, .done = shared_done};

/* Starts asking Redis for j's token; 1 when r now waits. */
static int shared_ask(mgw_req_t *r, jreq_t *j)
{
    shared_get_t *g = mgw_calloc(1, sizeof(*g));
    g->ask.ops = &shared_ops;
    mgw_cluster_digest_key(g->key, "jwt", j->c->digest, j->text.p, j->text.n);
    j->shared_key = mgw_pool_strdup(r->pool, g->key);
    return mgw_ask_start(r, &g->ask) == 0;
}

/* Writes j's verified token (good until until_ms) to Redis, not waiting. */
static void share(mgw_req_t *r, jreq_t *j, uint64_t until_ms)
{
    uint64_t now = r->start_ms; /* the wall clock, as until_ms */
    if (until_ms <= now) return;
    char val[24], px[24];
    snprintf(val, sizeof(val), "%llu", (unsigned long long)until_ms);
    snprintf(px, sizeof(px), "%llu", (unsigned long long)(until_ms - now));
    mgw_cluster_send(5, (const char *[]){"SET", j->shared_key, val, "PX", px}, NULL);
}

static int verify(mgw_req_t *r, jreq_t *j);

/* Redis's answer for r's token: a hit is checked as a local hit is (and cached locally),
 * a miss (or no answer in time) verifies the token here. */
static void shared_done(mgw_req_t *r, mgw_ask_t *a)
{
    shared_get_t *g = (shared_get_t *)a;
    jreq_t *j = r->authz;
    if (r->resp_started) return; /* answered meanwhile */
    const mgw_jwt_conf_t *c = j->c;
    int hit = a->outcome == MGW_ASK_ANSWERED && g->until_ms > r->start_ms;
    mgw_stat_add(hit ? c->rt->stat.hit : c->rt->stat.miss, 1);
    int rc;
    if (hit) {
        mgw_jwt_rules_t rules = {c->issuer, c->audiences, c->naudiences, c->leeway_s};
        mgw_jwt_err_t err = mgw_jwt_check_claims(j->t, &rules, (int64_t)(r->start_ms / 1000));
        if (err != MGW_JWT_OK) {
            refuse(r, j, err);
            return;
        }
        mgw_tcache_t *cache = cache_of(c, r->from.w);
        uint64_t until = r->start_ms + c->ttl_ms;
        j->entry->until_ms = g->until_ms < until ? g->until_ms : until;
        mgw__tok_ref(j->entry);
        mgw__tcache_put(cache, j->entry);
        rc = allow(r, j, j->t);
    } else {
        rc = verify(r, j);
    }
    if (rc == MGW_PHASE_NEXT) mgw__req_resume(r);
}

/* Checks the parsed token j->t: algorithm, key, signature, claims; caches it. */
static int verify(mgw_req_t *r, jreq_t *j)
{
    const mgw_jwt_conf_t *c = j->c;
    const mgw_jwt_t *t = j->t;
    mgw_jwt_err_t err;
    if (!(c->algorithms & (1u << t->alg))) return refuse(r, j, MGW_JWT_EALG);
    if (is_hs(t->alg)) {
        err = mgw_jwt_verify_hmac(t, c->secret, c->secret_len);
    } else {
        int waits = 0;
        const mgw_jwk_t *k = find_key(r, j, &err, &waits);
        if (waits) return MGW_PHASE_WAIT;
        if (k == NULL) return refuse(r, j, err);
        err = mgw_jwt_verify(t, k);
    }
    if (err != MGW_JWT_OK) return refuse(r, j, err);
    mgw_jwt_rules_t rules = {c->issuer, c->audiences, c->naudiences, c->leeway_s};
    int64_t now_s = (int64_t)(r->start_ms / 1000);
    err = mgw_jwt_check_claims(t, &rules, now_s);
    if (err != MGW_JWT_OK) return refuse(r, j, err);
    mgw_tcache_t *cache = j->entry ? cache_of(c, r->from.w) : NULL;
    if (cache) {
        /* good until its exp or the ttl, whichever comes first */
        uint64_t until = r->start_ms + c->ttl_ms;
        if (t->has_exp && t->exp >= 0 && (uint64_t)t->exp * 1000 < until)
            until = (uint64_t)t->exp * 1000;
        j->entry->until_ms = until;
        mgw__tok_ref(j->entry);
        mgw__tcache_put(cache, j->entry);
        if (j->shared_key) share(r, j, until);
    }
    return allow(r, j, t);
}

/* A fetch r waited for ended: the key lookup again, with whatever keys there are now. */
static void woke(mgw_req_t *r)
{
    jreq_t *j = r->authz;
    j->waited = 1;
    if (r->resp_started) return; /* answered meanwhile (the body was too large...) */
    if (verify(r, j) == MGW_PHASE_NEXT) mgw__req_resume(r);
}

static int authorize(mgw_req_t *r)
{
    const mgw_jwt_conf_t *c = r->route->jwt;
    jreq_t *j = mgw_pool_calloc(r->pool, sizeof(*j));
    r->authz = j;
    j->c = c;
    j->start_ms = mgw__now_ms(r);
    j->wait.next = j->wait.prev = &j->wait;
    j->text = token_of(r, c);
    if (j->text.n == 0) return refuse(r, j, MGW_JWT_ENOTOKEN);
    /* before the cache copies it */
    if (j->text.n > MGW_JWT_MAX) return refuse(r, j, MGW_JWT_ETOOLARGE);
    mgw_tcache_t *cache = cache_of(c, r->from.w);
    mgw_jwt_err_t err;
    if (cache) {
        uint64_t h = mgw__tcache_hash(j->text.p, j->text.n);
        mgw_tok_t *e = mgw__tcache_get(cache, h, j->text.p, j->text.n, r->start_ms);
        /* a miss with shared_cache is counted once Redis answered */
        if (e || !c->shared_cache) mgw_stat_add(e ? c->rt->stat.hit : c->rt->stat.miss, 1);
        if (e) {
            /* verified before: what the clock and the route decide is checked again */
            mgw__tok_ref(e);
            mgw_pool_cleanup_add(r->pool, mgw__tok_unref, e);
            j->entry = e;
            err = mgw_jwt_check_time(&e->jwt, c->leeway_s, (int64_t)(r->start_ms / 1000));
            if (err != MGW_JWT_OK) return refuse(r, j, err);
            return allow(r, j, &e->jwt);
        }
        /* parsed straight into a new entry, which the cache takes once verified */
        j->entry = mgw__tok_new(j->text.p, j->text.n, h);
        mgw_pool_cleanup_add(r->pool, mgw__tok_unref, j->entry);
        err = mgw_jwt_parse(j->entry->pool, j->entry->text.p, j->entry->text.n, &j->entry->jwt);
        j->t = &j->entry->jwt;
        /* a token of an algorithm this authorizer refuses never reached Redis: no round
         * trip for it (verify refuses it first thing) */
        if (err == MGW_JWT_OK && c->shared_cache && (c->algorithms & (1u << j->t->alg))) {
            if (shared_ask(r, j)) return MGW_PHASE_WAIT;
            mgw_stat_add(c->rt->stat.miss, 1); /* Redis down: not asked */
        } else if (c->shared_cache) {
            mgw_stat_add(c->rt->stat.miss, 1);
        }
    } else {
        err = mgw_jwt_parse(r->pool, j->text.p, j->text.n, &j->parsed);
        j->t = &j->parsed;
    }
    if (err != MGW_JWT_OK) return refuse(r, j, err);
    return verify(r, j);
}

/* ---- what the layers above read ---- */

static const jreq_t *jreq(const mgw_req_t *r)
{
    return r->route && r->route->authorizer_type == MGW_AUTHZ_JWT ? r->authz : NULL;
}

const mgw_jwt_t *mgw_jwt_req_token(const mgw_req_t *r)
{
    const jreq_t *j = jreq(r);
    return j ? j->tok : NULL;
}

mgw_str_t mgw_jwt_claim_text(mgw_pool_t *pool, const mgw_json_t *v)
{
    if (v->type == MGW_JSON_STRING) return (mgw_str_t){v->str, v->len};
    mgw_buf_t b = {0};
    mgw_json_write(&b, v);
    mgw_str_t out = {mgw_pool_strndup(pool, b.p ? b.p : "", b.n), b.n};
    mgw_buf_free(&b);
    return out;
}

/* Adds the space-separated words of s (n bytes) to out; returns the new count. */
static int words(const char *s, size_t n, mgw_str_t *out, int max, int k)
{
    size_t i = 0;
    while (i < n) {
        while (i < n && s[i] == ' ')
            i++;
        size_t st = i;
        while (i < n && s[i] != ' ')
            i++;
        if (i > st) {
            if (k < max) out[k] = (mgw_str_t){s + st, i - st};
            k++;
        }
    }
    return k;
}

int mgw_jwt_scopes(const mgw_jwt_t *t, mgw_str_t *out, int max)
{
    const mgw_json_t *v = mgw_json_get(t->claims, "scope");
    if (v && v->type == MGW_JSON_STRING) return words(v->str, v->len, out, max, 0);
    v = mgw_json_get(t->claims, "scp");
    if (v && v->type == MGW_JSON_STRING) return words(v->str, v->len, out, max, 0);
    if (v && v->type == MGW_JSON_ARRAY) {
        int k = 0;
        for (int i = 0; i < v->n; i++)
            if (v->items[i]->type == MGW_JSON_STRING) {
                if (k < max) out[k] = (mgw_str_t){v->items[i]->str, v->items[i]->len};
                k++;
            }
        return k;
    }
    return -1;
}

/* $context.authorizer.{error,status,latency,claims.NAME} of a request with a JWT
 * authorizer (gw/gw.h mgw_authz_ops_t.lookup). */
static int lookup(mgw_req_t *r, int var, mgw_str_t arg, mgw_str_t *out)
{
    const jreq_t *j = jreq(r);
    if (j == NULL) return 0;
    switch (var) {
    case MGW_VAR_AUTHORIZER_ERROR:
        if (j->err == MGW_JWT_OK) return 0;
        *out = (mgw_str_t){mgw_jwt_describe(j->err), strlen(mgw_jwt_describe(j->err))};
        return 1;
    case MGW_VAR_AUTHORIZER_STATUS:
        return j->status ? mgw__req_u64(r, (uint64_t)j->status, out) : 0;
    case MGW_VAR_AUTHORIZER_LATENCY:
        return j->status ? mgw__req_u64(r, j->latency_ms, out) : 0;
    case MGW_VAR_AUTHORIZER_KEY: {
        static const char pre[] = "claims.";
        if (j->checked == NULL || arg.n <= sizeof(pre) - 1 || memcmp(arg.p, pre, sizeof(pre) - 1))
            return 0;
        const mgw_json_t *claims = j->checked->claims;
        for (int i = 0; i < claims->n; i++)
            if (claims->key_lens[i] == arg.n - (sizeof(pre) - 1) &&
                memcmp(claims->keys[i], arg.p + sizeof(pre) - 1, claims->key_lens[i]) == 0) {
                *out = mgw_jwt_claim_text(r->pool, claims->items[i]);
                return 1;
            }
        return 0;
    }
    }
    return 0;
}

const mgw_authz_ops_t mgw__jwt_authorizer = {
    .name = "jwt", .authorize = authorize, .lookup = lookup};
