/*
 * JWT authorizers in a generation (conf/jwtconf.c through mgw_config_load): the fields,
 * the algorithms accepted (the listed ones that a key source can verify), the identity
 * source, the JWK Set and secret read at load, each route's authorizer and scopes; a JWK
 * Set file that does not parse or has no usable key is an error naming jwks_file, in
 * check mode too.
 */
#include "conf/jwtconf.c"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/err.h"
#include "conf/config.h"
#include "unit.h"

static char dir[256];

static void write_file(const char *name, const char *text, char *path, size_t size)
{
    snprintf(path, size, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (f == NULL) return;
    fputs(text, f);
    fclose(f);
}

static const char KEY_A[] =
    "{\"keys\": [{\"kty\": \"EC\", \"crv\": \"P-256\", \"x\": "
    "\"OXMjz1FNyhVidtVWj1nLkS68o8jqP51S_TOdHGSCkww\", \"y\": "
    "\"_k_jB7BTh5YHpU4gozuahNR99DBEUZB9nAirk7lgyoQ\", \"kid\": \"a\", \"use\": \"sig\"}]}";

static const char GOOD_CONF[] =
    "return { workers = 2, apis = { pets = {\n"
    "  stages = { ['$default'] = {} },\n"
    "  authorizers = {\n"
    "    file = { type = 'jwt', issuer = 'https://idp.test', audience = { 'pets', 'cats' },\n"
    "             jwks_file = 'jwks.json', secret_file = 'hs.key', algorithms = { 'ES256', 'HS256' "
    "},\n"
    "             identity_source = '$request.querystring.token', ttl = 0, leeway = 30,\n"
    "             usage_identifier_claim = 'sub' },\n"
    "    oidc = { type = 'jwt', issuer = 'https://idp.test/realm', audience = { 'pets' },\n"
    "             identity_source = '$request.header.X-Token' },\n"
    "    lua = { type = 'lua', policy = 'allow.lua', ttl = 0 },\n"
    "  },\n"
    "  routes = {\n"
    "    ['GET /a'] = { authorizer = 'file', scopes = { 'r', 'w' }, integration = { type = 'mock' "
    "} },\n"
    "    ['GET /b'] = { authorizer = 'oidc', integration = { type = 'mock' } },\n"
    "    ['GET /c'] = { authorizer = 'lua', integration = { type = 'mock' } },\n"
    "  },\n"
    "} } }\n";

static void test_good(void)
{
    char path[512], p2[512];
    write_file("jwks.json", KEY_A, p2, sizeof p2);
    write_file("hs.key", "0123456789abcdef0123456789abcdef", p2, sizeof p2);
    write_file("allow.lua", "return { authorize = function() return { isAuthorized = true } end }",
               p2, sizeof p2);
    write_file("good.lua", GOOD_CONF, path, sizeof path);
    for (int check_only = 1; check_only >= 0; check_only--) {
        mgw_gen_t *g = NULL;
        mgw_buf_t errors = {0};
        CHECK(mgw_config_load(path, dir, check_only, &g, &errors) == 0);
        if (errors.n) printf("# %s\n", errors.p);
        mgw_buf_free(&errors);
        if (g == NULL) return;
        mgw_api_t *api = &g->apis[0];
        CHECK(api->njwts == 2);
        const mgw_jwt_conf_t *f = mgw_api_find_jwt(api, "file"), *o = mgw_api_find_jwt(api, "oidc");
        CHECK(f && o && mgw_api_find_jwt(api, "lua") == NULL);
        if (f && o) {
            CHECK_STR(f->where, "apis.pets.authorizers.file");
            CHECK_STR(f->issuer, "https://idp.test");
            CHECK(f->naudiences == 2);
            CHECK_STR(f->audiences[1], "cats");
            CHECK(f->file_keys && mgw_jwks_count(f->file_keys) == 1);
            CHECK(f->secret_len == 32 && memcmp(f->secret, "0123", 4) == 0);
            CHECK(f->algorithms == (1u << MGW_JWA_ES256 | 1u << MGW_JWA_HS256));
            CHECK(f->id_query == 1);
            CHECK_STR(f->id_name, "token");
            CHECK(f->ttl_ms == 0 && f->leeway_s == 30);
            CHECK_STR(f->usage_claim, "sub");
            CHECK(!f->discovery && f->jwks_uri == NULL);
            /* discovery: no key source given; every algorithm but HS* (no secret) */
            CHECK(o->discovery == 1);
            CHECK(o->id_query == 0);
            CHECK_STR(o->id_name, "x-token");
            CHECK(o->ttl_ms == 300000);
            CHECK(!(o->algorithms & (1u << MGW_JWA_HS256)) && !(o->algorithms & 1u));
            CHECK(o->algorithms & (1u << MGW_JWA_EDDSA) && o->algorithms & (1u << MGW_JWA_PS512));
            const mgw_route_t *a = mgw_api_find_route(api, "GET /a", 6);
            const mgw_route_t *b = mgw_api_find_route(api, "GET /b", 6);
            const mgw_route_t *c = mgw_api_find_route(api, "GET /c", 6);
            CHECK(a && a->authorizer_type == MGW_AUTHZ_JWT && a->jwt == f && a->nscopes == 2);
            if (a && a->nscopes == 2) CHECK_STR(a->scopes[1], "w");
            CHECK(b && b->jwt == o && b->nscopes == 0);
            CHECK(c && c->authorizer_type == MGW_AUTHZ_LUA && c->jwt == NULL && c->authorizer > 0);
        }
        mgw_gen_unref(g);
    }
}

/* The error lines of loading a configuration whose jwks_file holds text. */
static void jwks_error(const char *text, const char *want)
{
    char path[512], p2[512], line[2048];
    write_file("bad.json", text, p2, sizeof p2);
    write_file(
        "bad.lua",
        "return { apis = { pets = {\n"
        "  stages = { ['$default'] = {} },\n"
        "  authorizers = { j = { type = 'jwt', issuer = 'i', audience = { 'a' },\n"
        "                        jwks_file = 'bad.json' } },\n"
        "  routes = { ['GET /a'] = { authorizer = 'j', integration = { type = 'mock' } } },\n"
        "} } }\n",
        path, sizeof path);
    snprintf(line, sizeof line, "%s: apis.pets.authorizers.j.jwks_file: \"%s\" %s", path, p2, want);
    for (int check_only = 1; check_only >= 0; check_only--) {
        mgw_gen_t *g = NULL;
        mgw_buf_t errors = {0};
        CHECK(mgw_config_load(path, dir, check_only, &g, &errors) == MGW_ECONFIG);
        CHECK(g == NULL);
        if (errors.p == NULL || strncmp(errors.p, line, strlen(line)) != 0)
            printf("#   got: %s#   want: %s...\n", errors.p ? errors.p : "(none)\n", line);
        CHECK(errors.p && strncmp(errors.p, line, strlen(line)) == 0);
        mgw_buf_free(&errors);
    }
}

static void test_bad_jwks_file(void)
{
    jwks_error("{\"keys\": [", "is not a valid JWK Set: ");
    jwks_error("{\"keys\": [{\"kty\": \"oct\", \"k\": \"c2VjcmV0\"}]}",
               "has no public signing key moongate can use (1 skipped)");
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

int main(void)
{
    snprintf(dir, sizeof dir, "%s/mgw-jwtconf-XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (mkdtemp(dir) == NULL) return perror("mkdtemp"), 1;
    RUN(test_good);
    RUN(test_bad_jwks_file);
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return DONE();
}
