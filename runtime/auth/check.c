/*
 * `moongate jwt check TOKEN --api A --authorizer N` (jwt.h mgw_jwt_check_cli): the
 * authorizer's checks one by one, each printed with its verdict, so that an operator
 * sees why a token fails (or passes): the header, the algorithm, the key (fetched from
 * jwks_uri or by discovery on the CLI's loop), the signature, every claim with its value
 * (iss, aud, exp, nbf, iat checked, the others shown), and the scopes of every route of
 * the API that uses the authorizer. The same base/jose.h functions decide as in the
 * gateway.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "auth/auth_int.h"

typedef struct {
    int done;
    mgw_jwks_t *set;
    char uri[1024];
    char err[700];
} cli_fetch_t;

static void cli_fetched(void *ud, mgw_jwks_t *set, int max_age_s, const char *uri, const char *err)
{
    (void)max_age_s;
    cli_fetch_t *f = ud;
    f->done = 1;
    f->set = set;
    snprintf(f->uri, sizeof(f->uri), "%s", uri ? uri : "");
    snprintf(f->err, sizeof(f->err), "%s", err ? err : "");
}

/* The remote JWK Set of c, fetched on loop (NULL with why in f->err). */
static mgw_jwks_t *fetch_set(uv_loop_t *loop, const mgw_jwt_conf_t *c, cli_fetch_t *f)
{
    char err[512];
    mgw_tls_ctx_t *tls = mgw_tls_client_ctx_new(c->backend_ca, NULL, NULL, err, sizeof(err));
    if (tls == NULL) {
        snprintf(f->err, sizeof(f->err), "backend_ca: %s", err);
        return NULL;
    }
    mgw_hc_pool_t *hc = mgw_hc_pool_new(loop);
    mgw_jwks_target_t t = {
        .jwks_uri = c->jwks_uri, .issuer = c->issuer, .tls = tls, .tls_id = "cli"};
    mgw__jwks_fetch(loop, hc, &t, cli_fetched, f);
    while (!f->done)
        uv_run(loop, UV_RUN_ONCE);
    mgw_hc_pool_close_idle(hc, 1);
    uv_run(loop, UV_RUN_DEFAULT);
    mgw_hc_pool_free(hc);
    mgw_tls_ctx_free(tls);
    return f->set;
}

static void step(FILE *out, const char *what, const char *value, mgw_jwt_err_t err)
{
    if (err == MGW_JWT_OK)
        fprintf(out, "%-10s %s: ok\n", what, value);
    else
        fprintf(out, "%-10s %s: FAIL: %s\n", what, value, mgw_jwt_describe(err));
}

/* A time claim's verdict alone (the token with only that claim). */
static mgw_jwt_err_t time_claim(const mgw_jwt_t *t, int which, int64_t leeway, int64_t now)
{
    mgw_jwt_t one = *t;
    one.has_exp = which == 0 && t->has_exp;
    one.has_nbf = which == 1 && t->has_nbf;
    one.has_iat = which == 2 && t->has_iat;
    return mgw_jwt_check_time(&one, leeway, now);
}

static void claims(FILE *out, mgw_pool_t *pool, const mgw_jwt_conf_t *c, const mgw_jwt_t *t,
                   int *failed)
{
    int64_t now = (int64_t)time(NULL);
    const mgw_json_t *cl = t->claims;
    for (int i = 0; i < cl->n; i++) {
        const char *name = cl->keys[i];
        mgw_str_t v = mgw_jwt_claim_text(pool, cl->items[i]);
        char what[300], value[1200];
        snprintf(what, sizeof(what), "claim %s", name);
        snprintf(value, sizeof(value), "%.*s", (int)(v.n > 1000 ? 1000 : v.n), v.p);
        mgw_jwt_err_t err = MGW_JWT_OK;
        int checked = 1;
        if (strcmp(name, "iss") == 0) {
            err = cl->items[i]->type == MGW_JSON_STRING && strcmp(cl->items[i]->str, c->issuer) == 0
                      ? MGW_JWT_OK
                      : MGW_JWT_EISS;
        } else if (strcmp(name, "aud") == 0 ||
                   (strcmp(name, "client_id") == 0 && mgw_json_get(cl, "aud") == NULL)) {
            /* the audience rule alone: an issuer that matches, no time claims */
            mgw_jwt_t one = *t;
            one.has_exp = one.has_nbf = one.has_iat = 0;
            const mgw_json_t *iss = mgw_json_get(cl, "iss");
            mgw_jwt_rules_t rules = {iss && iss->type == MGW_JSON_STRING ? iss->str : c->issuer,
                                     c->audiences, c->naudiences, c->leeway_s};
            err = mgw_jwt_check_claims(&one, &rules, now);
            if (err == MGW_JWT_EISS) err = MGW_JWT_OK; /* said at iss */
        } else if (strcmp(name, "exp") == 0 || strcmp(name, "nbf") == 0 ||
                   strcmp(name, "iat") == 0) {
            int which = name[0] == 'e' ? 0 : name[0] == 'n' ? 1 : 2;
            int64_t at = which == 0 ? t->exp : which == 1 ? t->nbf : t->iat;
            snprintf(value + strlen(value), sizeof(value) - strlen(value), " (%s%lld s%s)",
                     at >= now ? "in " : "", (long long)(at >= now ? at - now : now - at),
                     at >= now ? "" : " ago");
            err = time_claim(t, which, c->leeway_s, now);
        } else {
            checked = 0;
        }
        if (checked) {
            step(out, what, value, err);
            *failed |= err != MGW_JWT_OK;
        } else {
            fprintf(out, "%-10s %s\n", what, value);
        }
    }
    if (mgw_json_get(cl, "iss") == NULL) {
        step(out, "claim iss", "(absent)", MGW_JWT_EISS);
        *failed = 1;
    }
    if (mgw_json_get(cl, "aud") == NULL && mgw_json_get(cl, "client_id") == NULL) {
        step(out, "claim aud", "(absent, and no client_id)", MGW_JWT_EAUD);
        *failed = 1;
    }
}

/* The scopes of every route of c's API that uses c. */
static void scopes(FILE *out, const mgw_jwt_conf_t *c, const mgw_jwt_t *t)
{
    mgw_str_t granted[64];
    int n = mgw_jwt_scopes(t, granted, 64);
    fprintf(out, "%-10s ", "scopes");
    if (n < 0) fprintf(out, "(the token has no scope or scp claim)");
    for (int i = 0; i < n && i < 64; i++)
        fprintf(out, "%s%.*s", i ? " " : "", (int)granted[i].n, granted[i].p);
    fputc('\n', out);
    for (int i = 0; i < c->api->nroutes; i++) {
        const mgw_route_t *r = c->api->routes[i];
        if (r->jwt != c) continue;
        char what[300], need[600] = "";
        snprintf(what, sizeof(what), "route \"%s\"", r->key);
        if (r->nscopes == 0) {
            fprintf(out, "%-10s needs no scope: ok\n", what);
            continue;
        }
        for (int k = 0; k < r->nscopes; k++)
            snprintf(need + strlen(need), sizeof(need) - strlen(need), "%s%s", k ? " or " : "",
                     r->scopes[k]);
        char value[700];
        snprintf(value, sizeof(value), "needs %s", need);
        step(out, what, value, mgw_jwt_check_scopes(t, (const char *const *)r->scopes, r->nscopes));
    }
}

int mgw_jwt_check_cli(uv_loop_t *loop, const mgw_jwt_conf_t *c, const char *token, FILE *out)
{
    mgw_pool_t *pool = mgw_pool_create(8192);
    mgw_jwt_t t = {0};
    int failed = 0;
    const char *tok = token;
    if (strncasecmp(tok, "bearer ", 7) == 0) tok += 7;
    mgw_jwt_err_t err = mgw_jwt_parse(pool, tok, strlen(tok), &t);
    if (err != MGW_JWT_OK && err != MGW_JWT_EALG) {
        step(out, "token", "parse", err);
        goto done;
    }
    if (t.header) {
        mgw_str_t h = mgw_jwt_claim_text(pool, t.header);
        fprintf(out, "%-10s %.*s\n", "header", (int)h.n, h.p);
    }
    if (err == MGW_JWT_EALG || !(c->algorithms & (1u << t.alg))) {
        step(out, "algorithm", err == MGW_JWT_EALG ? "(unknown or none)" : mgw_jwa_name(t.alg),
             MGW_JWT_EALG);
        failed = 1;
        goto done;
    }
    step(out, "algorithm", mgw_jwa_name(t.alg), MGW_JWT_OK);
    char kid[300];
    snprintf(kid, sizeof(kid), "%s%.*s%s", t.has_kid ? "kid \"" : "no kid", (int)t.kid.n,
             t.kid.p ? t.kid.p : "", t.has_kid ? "\"" : "");
    if (t.alg == MGW_JWA_HS256 || t.alg == MGW_JWA_HS384 || t.alg == MGW_JWA_HS512) {
        fprintf(out, "%-10s the shared secret of secret_file (%zu bytes)\n", "key", c->secret_len);
        err = mgw_jwt_verify_hmac(&t, c->secret, c->secret_len);
    } else {
        cli_fetch_t f = {0};
        mgw_jwks_t *set = c->file_keys;
        const char *from = c->jwks_file;
        if (set == NULL) {
            set = fetch_set(loop, c, &f);
            from = f.uri;
            if (set == NULL) {
                fprintf(out, "%-10s %s\n", "keys", f.err);
                step(out, "key", kid, MGW_JWT_EFETCH);
                failed = 1;
                goto done;
            }
        }
        fprintf(out, "%-10s %d from %s\n", "keys", mgw_jwks_count(set), from ? from : "?");
        const mgw_jwk_t *k = mgw_jwks_find(set, &t, &err);
        step(out, "key", kid, k ? MGW_JWT_OK : err);
        if (k) err = mgw_jwt_verify(&t, k);
        if (set != c->file_keys) mgw_jwks_unref(set);
        if (k == NULL) {
            failed = 1;
            goto done;
        }
    }
    step(out, "signature", mgw_jwa_name(t.alg), err);
    failed |= err != MGW_JWT_OK;
    claims(out, pool, c, &t, &failed);
    scopes(out, c, &t);
done:
    fprintf(out, "%-10s %s\n", "result",
            failed ? "refused (401)" : "valid (routes that need a scope it lacks answer 403)");
    mgw_pool_destroy(pool);
    return failed ? 1 : 0;
}
