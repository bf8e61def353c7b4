/*
 * An API's JWT authorizers as the gateway keeps them (jwtconf.h): read from the shaped
 * configuration, their files read at load. The Lua validator (moongate.config) has
 * checked every field already; what only C can check (a JWK Set that does not parse, an
 * algorithm name the JOSE code does not know) is reported here with the field's path.
 */
#include "conf/jwtconf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/crypto.h"
#include "base/jose.h"
#include "base/tls.h"
#include "conf/lfield.h"

/* A JWK Set file is at most as large as a fetched one may be. */
#define JWKS_FILE_MAX 150000
/* An HMAC secret: at least 32 bytes (the validator says so too), at most this. */
#define SECRET_MAX 65536

/* The strings of the list t[key] (pool memory); *n their count. */
static const char **str_list(lua_State *L, mgw_pool_t *pool, const char *key, int *n)
{
    *n = 0;
    lua_getfield(L, -1, key);
    int len = lua_type(L, -1) == LUA_TTABLE ? (int)lua_objlen(L, -1) : 0;
    const char **out = mgw_pool_calloc(pool, sizeof(char *) * (size_t)(len + 1));
    for (int i = 0; i < len; i++) {
        lua_rawgeti(L, -1, i + 1);
        if (lua_type(L, -1) == LUA_TSTRING) {
            size_t sn;
            const char *s = lua_tolstring(L, -1, &sn);
            out[(*n)++] = mgw_pool_strndup(pool, s, sn);
        }
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    return out;
}

/* Reads a whole file of at most max bytes into pool memory (NUL-terminated). Returns
 * NULL with the reason in err. */
static char *read_file(mgw_pool_t *pool, const char *path, size_t max, size_t *len, char *err,
                       size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        snprintf(err, errlen, "cannot read \"%s\": %s", path, strerror(errno));
        return NULL;
    }
    char *buf = mgw_pool_alloc(pool, max + 2);
    size_t n = fread(buf, 1, max + 1, f);
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        snprintf(err, errlen, "cannot read \"%s\"", path);
        return NULL;
    }
    if (n > max) {
        snprintf(err, errlen, "\"%s\" is larger than %zu bytes", path, max);
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

static void jwks_unref_cb(void *set)
{
    mgw_jwks_unref(set);
}

/* jwks_file: parsed now; a set without one usable signing key is an error too. Its text
 * goes into *digest_in. */
static void read_jwks_file(mgw_pool_t *pool, mgw_jwt_conf_t *j, mgw_buf_t *digest_in,
                           mgw_conf_error_cb errf, void *ud)
{
    char where[512], err[512];
    snprintf(where, sizeof(where), "%s.jwks_file", j->where);
    size_t n;
    const char *text = read_file(pool, j->jwks_file, JWKS_FILE_MAX, &n, err, sizeof(err));
    if (text == NULL) {
        errf(ud, where, err);
        return;
    }
    mgw_buf_add(digest_in, text, n + 1);
    int skipped = 0;
    char why[400];
    mgw_jwks_t *set = mgw_jwks_parse(text, n, &skipped, why, sizeof(why));
    if (set == NULL) {
        snprintf(err, sizeof(err), "\"%s\" is not a valid JWK Set: %s", j->jwks_file, why);
        errf(ud, where, err);
        return;
    }
    mgw_pool_cleanup_add(pool, jwks_unref_cb, set);
    if (mgw_jwks_count(set) == 0) {
        snprintf(err, sizeof(err), "\"%s\" has no public signing key moongate can use (%d skipped)",
                 j->jwks_file, skipped);
        errf(ud, where, err);
        return;
    }
    j->file_keys = set;
}

static void read_secret(mgw_pool_t *pool, mgw_jwt_conf_t *j, const char *file,
                        mgw_conf_error_cb errf, void *ud)
{
    char where[512], err[512];
    snprintf(where, sizeof(where), "%s.secret_file", j->where);
    size_t n;
    const char *text = read_file(pool, file, SECRET_MAX, &n, err, sizeof(err));
    if (text == NULL) {
        errf(ud, where, err);
    } else if (n < 32) {
        snprintf(err, sizeof(err), "the secret must be at least 32 bytes, got %zu", n);
        errf(ud, where, err);
    } else {
        j->secret = (const uint8_t *)text;
        j->secret_len = n;
    }
}

static void read_one(lua_State *L, mgw_pool_t *pool, mgw_api_t *api, mgw_jwt_conf_t *j,
                     mgw_conf_error_cb errf, void *ud)
{
    j->api = api;
    j->name = mgw__lfield_str(L, pool, "name");
    j->where = mgw__lfield_str(L, pool, "where");
    if (j->name == NULL) j->name = "";
    if (j->where == NULL)
        j->where = mgw_pool_printf(pool, "apis.%s.authorizers.%s", api->id, j->name);
    j->issuer = mgw__lfield_str(L, pool, "issuer");
    if (j->issuer == NULL) j->issuer = "";
    j->audiences = str_list(L, pool, "audience", &j->naudiences);
    j->jwks_uri = mgw__lfield_str(L, pool, "jwks_uri");
    j->jwks_file = mgw__lfield_str(L, pool, "jwks_file");
    j->backend_ca = mgw__lfield_str(L, pool, "backend_ca");
    const char *secret_file = mgw__lfield_str(L, pool, "secret_file");
    lua_getfield(L, -1, "discovery");
    int discovery = lua_type(L, -1) != LUA_TBOOLEAN || lua_toboolean(L, -1);
    lua_pop(L, 1);
    /* Discovery only when no key source is given. */
    j->discovery = discovery && !j->jwks_uri && !j->jwks_file && !secret_file;
    j->leeway_s = (int64_t)mgw__lfield_num(L, "leeway", 0);
    j->ttl_ms = (uint64_t)(mgw__lfield_num(L, "ttl", 300) * 1000);
    j->usage_claim = mgw__lfield_str(L, pool, "usage_identifier_claim");
    lua_getfield(L, -1, "shared_cache");
    j->shared_cache = lua_toboolean(L, -1);
    lua_pop(L, 1);

    const char *src = mgw__lfield_str(L, pool, "identity_source");
    static const char hdr[] = "$request.header.", query[] = "$request.querystring.";
    if (src && strncmp(src, query, sizeof(query) - 1) == 0) {
        j->id_query = 1;
        j->id_name = src + sizeof(query) - 1;
    } else if (src && strncmp(src, hdr, sizeof(hdr) - 1) == 0) {
        char *name = mgw_pool_strdup(pool, src + sizeof(hdr) - 1);
        for (char *s = name; *s; s++)
            if (*s >= 'A' && *s <= 'Z') *s = (char)(*s + 32);
        j->id_name = name;
    } else {
        j->id_name = "authorization";
    }
    j->id_name_len = strlen(j->id_name);

    /* The algorithms: the listed ones, else every one; HS* only with a secret, the
     * others only with a JWK Set. */
    int nalg;
    const char **algs = str_list(L, pool, "algorithms", &nalg);
    uint32_t listed = 0;
    for (int i = 0; i < nalg; i++) {
        mgw_jwa_t a = mgw_jwa_parse(algs[i], strlen(algs[i]));
        if (a == MGW_JWA_NONE) {
            char where[512], err[300];
            snprintf(where, sizeof(where), "%s.algorithms[%d]", j->where, i + 1);
            snprintf(err, sizeof(err), "unknown JWS algorithm \"%s\"", algs[i]);
            errf(ud, where, err);
            continue;
        }
        listed |= 1u << a;
    }
    if (nalg == 0)
        for (int a = MGW_JWA_NONE + 1; a < MGW_JWA__COUNT; a++)
            listed |= 1u << a;
    uint32_t hs = 1u << MGW_JWA_HS256 | 1u << MGW_JWA_HS384 | 1u << MGW_JWA_HS512;
    int jwks = j->jwks_uri || j->jwks_file || j->discovery;
    j->algorithms = listed & ((secret_file ? hs : 0) | (jwks ? ~hs : 0));
    j->algorithms &= ~(1u << MGW_JWA_NONE);

    /* the digest of what a verified token depends on, NUL between the parts; the key
     * files' contents are added when they are read */
    mgw_buf_t d = {0};
    char nums[64];
    const char *parts[] = {api->id, j->name, j->issuer, j->jwks_uri ? j->jwks_uri : "", j->id_name};
    for (size_t i = 0; i < sizeof(parts) / sizeof(*parts); i++)
        mgw_buf_add(&d, parts[i], strlen(parts[i]) + 1);
    for (int i = 0; i < j->naudiences; i++)
        mgw_buf_add(&d, j->audiences[i], strlen(j->audiences[i]) + 1);
    int nn = snprintf(nums, sizeof(nums), "%d|%u|%lld|%d", j->id_query, (unsigned)j->algorithms,
                      (long long)j->leeway_s, j->discovery);
    mgw_buf_add(&d, nums, (size_t)nn + 1);

    if (j->backend_ca && (j->jwks_uri || j->discovery)) {
        /* the CA bundle loads as the key sources will load it (auth/keys.c) */
        char where[512], err[512];
        mgw_tls_ctx_t *tls = mgw_tls_client_ctx_new(j->backend_ca, NULL, NULL, err, sizeof(err));
        snprintf(where, sizeof(where), "%s.backend_ca", j->where);
        if (tls == NULL) errf(ud, where, err);
        mgw_tls_ctx_free(tls);
    }
    if (j->jwks_file) read_jwks_file(pool, j, &d, errf, ud);
    if (secret_file) read_secret(pool, j, secret_file, errf, ud);
    if (j->secret) mgw_buf_add(&d, j->secret, j->secret_len);
    mgw_sha256(d.p, d.n, j->digest);
    mgw_buf_free(&d);
}

void mgw__jwt_read(lua_State *L, mgw_pool_t *pool, mgw_api_t *api, mgw_conf_error_cb err, void *ud)
{
    lua_getfield(L, -1, "jwt_authorizers");
    int n = lua_type(L, -1) == LUA_TTABLE ? (int)lua_objlen(L, -1) : 0;
    api->njwts = n;
    api->jwts = mgw_pool_calloc(pool, sizeof(mgw_jwt_conf_t) * (size_t)(n ? n : 1));
    for (int i = 0; i < n; i++) {
        lua_rawgeti(L, -1, i + 1);
        read_one(L, pool, api, &api->jwts[i], err, ud);
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
}

void mgw__jwt_route(lua_State *L, mgw_pool_t *pool, const mgw_api_t *api, mgw_route_t *r)
{
    int idx = (int)mgw__lfield_num(L, "jwt", 0);
    if (idx < 1 || idx > api->njwts) return;
    r->jwt = &api->jwts[idx - 1];
    r->authorizer_type = MGW_AUTHZ_JWT;
    r->scopes = str_list(L, pool, "scopes", &r->nscopes);
}

const mgw_jwt_conf_t *mgw_api_find_jwt(const mgw_api_t *api, const char *name)
{
    for (int i = 0; i < api->njwts; i++)
        if (strcmp(api->jwts[i].name, name) == 0) return &api->jwts[i];
    return NULL;
}
