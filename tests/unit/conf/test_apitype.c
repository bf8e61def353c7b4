/*
 * API types (runtime/conf/apitype.c): the REST table's differences from the HTTP one
 * (no stage / no route answer, id headers, gateway-response defaults, API-key source,
 * epoch unit), and a loaded configuration with an HTTP and a REST API side by side: each
 * API gets its type, the REST API's routes are in its router, it has no $default stage,
 * and api_key_source reaches the API.
 */
#include "conf/apitype.c"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf/config.h"
#include "unit.h"

static char dir[256];

static mgw_gen_t *load(const char *text)
{
    char path[512];
    snprintf(path, sizeof path, "%s/rest.lua", dir);
    FILE *f = fopen(path, "w");
    if (f == NULL) return NULL;
    fputs(text, f);
    fclose(f);
    mgw_gen_t *g = NULL;
    mgw_buf_t errors = {0};
    if (mgw_config_load(path, dir, 1, &g, &errors) != 0) printf("#   errors: %s", errors.p);
    mgw_buf_free(&errors);
    return g;
}

static void test_tables(void)
{
    const mgw_apitype_t *http = mgw_apitype_by_name("http"), *rest = mgw_apitype_by_name("rest");
    const mgw_apitype_t *ws = mgw_apitype_by_name("websocket");
    CHECK(http && rest && ws && mgw_apitype_by_name("grpc") == NULL);
    if (!http || !rest || !ws) return;
    CHECK(mgw_apitype_of(MGW_PROTO_REST) == rest && mgw_apitype_of(MGW_PROTO_HTTP) == http);
    CHECK(http->phases && rest->phases && !ws->phases);
    CHECK(http->no_stage == MGW_GW_RESOURCE_NOT_FOUND &&
          http->no_route == MGW_GW_RESOURCE_NOT_FOUND);
    CHECK(rest->no_stage == MGW_GW_MISSING_AUTHENTICATION_TOKEN);
    CHECK(rest->no_route == MGW_GW_MISSING_AUTHENTICATION_TOKEN);
    CHECK_STR(http->request_id_header, "apigw-requestid");
    CHECK(http->extended_id_header == NULL && !http->uuid_request_id && !http->epoch_ms);
    CHECK_STR(rest->request_id_header, "x-amzn-RequestId");
    CHECK_STR(rest->extended_id_header, "x-amz-apigw-id");
    CHECK(rest->uuid_request_id && rest->epoch_ms && rest->stage_in_path);
    CHECK(mgw_apitype_own_header(rest, "X-AMZN-REQUESTID", 16));
    CHECK(mgw_apitype_own_header(rest, "x-amz-apigw-id", 14));
    CHECK(!mgw_apitype_own_header(rest, "apigw-requestid", 15));
    CHECK(mgw_apitype_own_header(http, "apigw-requestid", 15));
    CHECK(mgw_apitype_key_source(rest, NULL) == MGW_KEYSRC_HEADER);
    CHECK(mgw_apitype_key_source(http, NULL) == MGW_KEYSRC_ANY);
    CHECK(mgw_apitype_key_source(http, "AUTHORIZER") == MGW_KEYSRC_AUTHORIZER);
    CHECK(mgw_apitype_key_source(rest, "HEADER") == MGW_KEYSRC_HEADER);
}

static void test_responses(void)
{
    const mgw_apitype_t *http = mgw_apitype_by_name("http"), *rest = mgw_apitype_by_name("rest");
    mgw_gwresp_info_t i;
    const mgw_gwresp_override_t *o;
    mgw_apitype_response(rest, MGW_GW_INTEGRATION_FAILURE, &i, &o);
    CHECK(i.status == 504);
    CHECK_STR(i.message, "Internal server error");
    CHECK_STR(i.name, "INTEGRATION_FAILURE");
    mgw_apitype_response(http, MGW_GW_INTEGRATION_FAILURE, &i, &o);
    CHECK(i.status == 502);
    CHECK_STR(i.message, "Bad Gateway");
    CHECK(o->key == NULL && !o->null_message);
    mgw_apitype_response(rest, MGW_GW_AUTHORIZER_FAILURE, &i, &o);
    CHECK(i.status == 500 && o->null_message);
    CHECK_STR(i.error_type, "AuthorizerConfigurationException");
    mgw_apitype_response(rest, MGW_GW_ACCESS_DENIED, &i, &o);
    CHECK(i.status == 403);
    CHECK_STR(o->key, "Message");
    mgw_apitype_response(rest, MGW_GW_MISSING_AUTHENTICATION_TOKEN, &i, &o);
    CHECK(i.status == 403);
    CHECK_STR(i.message, "Missing Authentication Token");
    CHECK_STR(i.error_type, "MissingAuthenticationTokenException");
    mgw_apitype_response(rest, MGW_GW_DEFAULT_5XX, &i, NULL);
    CHECK_STR(i.message, "Internal server error");
    /* the types both share keep the common defaults */
    mgw_apitype_response(rest, MGW_GW_THROTTLED, &i, NULL);
    CHECK(i.status == 429);
    CHECK_STR(i.message, "Too Many Requests");
    mgw_apitype_response(NULL, MGW_GW_API_CONFIGURATION_ERROR, &i, NULL);
    CHECK_STR(i.message, "Internal Server Error");
}

static void test_side_by_side(void)
{
    mgw_gen_t *g =
        load("return { apis = {\n"
             "  web = { stages = { ['$default'] = {} },\n"
             "          routes = { ['GET /pets'] = { integration = { type = 'mock' } } } },\n"
             "  pets = { protocol = 'rest', stages = { prod = {}, dev = {} },\n"
             "           routes = { ['GET /pets/{id}'] = { integration = { type = 'mock' } },\n"
             "                      ['ANY /{proxy+}'] = { integration = { type = 'mock' } } } },\n"
             "  keyed = { protocol = 'rest', api_key_source = 'AUTHORIZER', stages = { v1 = {} },\n"
             "            routes = { ['GET /x'] = { integration = { type = 'mock' } } } },\n"
             "} }\n");
    CHECK(g != NULL);
    if (g == NULL) return;
    mgw_api_t *web = mgw_gen_find_api(g, "web", 3), *pets = mgw_gen_find_api(g, "pets", 4);
    mgw_api_t *keyed = mgw_gen_find_api(g, "keyed", 5);
    CHECK(web && pets && keyed);
    if (!web || !pets || !keyed) goto done;
    CHECK(web->protocol == MGW_PROTO_HTTP && mgw__api_type(web) == mgw_apitype_by_name("http"));
    CHECK(pets->protocol == MGW_PROTO_REST && mgw__api_type(pets) == mgw_apitype_by_name("rest"));
    CHECK(web->default_stage != NULL && pets->default_stage == NULL);
    CHECK(web->api_key_source == MGW_KEYSRC_ANY);
    CHECK(pets->api_key_source == MGW_KEYSRC_HEADER);
    CHECK(keyed->api_key_source == MGW_KEYSRC_AUTHORIZER);
    mgw_route_match_t m;
    CHECK(mgw_router_match(pets->router, mgw_method_index("GET", 3), MGW_STR("/pets/7"), &m) == 0);
    CHECK(m.data == mgw_api_find_route(pets, "GET /pets/{id}", 14));
    CHECK(mgw_router_match(pets->router, mgw_method_index("PUT", 3), MGW_STR("/a/b"), &m) == 0);
done:
    mgw_gen_unref(g);
}

/* An API built without a type (unit tests, older callers) is an HTTP API. */
static void test_untyped_api(void)
{
    mgw_api_t a = {.protocol = MGW_PROTO_HTTP};
    CHECK(mgw__api_type(&a) == mgw_apitype_by_name("http"));
    CHECK(mgw__api_type(NULL) == mgw_apitype_by_name("http"));
    a.protocol = MGW_PROTO_WEBSOCKET;
    CHECK(mgw__api_type(&a) == mgw_apitype_by_name("websocket"));
}

int main(void)
{
    snprintf(dir, sizeof dir, "%s/mgw-apitype-XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (mkdtemp(dir) == NULL) return perror("mkdtemp"), 1;
    RUN(test_tables);
    RUN(test_responses);
    RUN(test_side_by_side);
    RUN(test_untyped_api);
    char path[512];
    snprintf(path, sizeof path, "%s/rest.lua", dir);
    unlink(path);
    rmdir(dir);
    return DONE();
}
