/*
 * The request core without a protocol: requests answered through a recording writer
 * (no connection, no HTTP bytes), the gateway's headers added after the response's own,
 * gateway responses, and the tables the layers above fill in: an integration type, an
 * authorizer type, the handler of a listener kind; a retired worker generation closed by
 * its last request.
 */
#include "gw/request.c"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "conf/config.h"
#include "unit.h"

static char dir[] = "/tmp/mgw-test-request-XXXXXX";

/* ---- a writer that records what it is told ---- */

static struct {
    int heads, bodies, ends, aborts, want_bodies;
    int status;
    int64_t content_length;
    char hdrs[1024], more[1024]; /* "name=value;" each */
    mgw_buf_t body;
} rec;

static void list(char *out, size_t cap, const mgw_hdr_t *h, int n)
{
    size_t at = 0;
    out[0] = '\0';
    for (int i = 0; i < n && at < cap; i++)
        at += (size_t)snprintf(out + at, cap - at, "%.*s=%.*s;", (int)h[i].name.n, h[i].name.p,
                               (int)h[i].value.n, h[i].value.p);
}

static void rec_head(mgw_req_t *r, int status, const mgw_hdr_t *hdrs, int nhdrs,
                     const mgw_hdr_t *more, int nmore, int64_t content_length)
{
    (void)r;
    rec.heads++;
    rec.status = status;
    rec.content_length = content_length;
    list(rec.hdrs, sizeof rec.hdrs, hdrs, nhdrs);
    list(rec.more, sizeof rec.more, more, nmore);
}

static void rec_body(mgw_req_t *r, const char *p, size_t n, mgw_rbuf_t *ref)
{
    (void)r, (void)ref;
    rec.bodies++;
    mgw_buf_add(&rec.body, p, n);
}

static void rec_end(mgw_req_t *r)
{
    (void)r;
    rec.ends++;
}

static void rec_flush(mgw_req_t *r)
{
    (void)r;
}

static void rec_want_body(mgw_req_t *r)
{
    (void)r;
    rec.want_bodies++;
}

static void rec_abort(mgw_req_t *r)
{
    (void)r;
    rec.aborts++;
}

static const mgw_writer_ops_t recorder = {rec_head,      rec_body,  rec_flush, rec_end,
                                          rec_want_body, rec_abort, NULL};

static const char *body_text(void)
{
    mgw_buf_addc(&rec.body, '\0');
    rec.body.n--;
    return rec.body.p;
}

/* ---- a worker, a connection (what the core knows of it) and requests on it ---- */

static mgw_worker_t w;
static mgw_req_from_t from;
static int closed_wgens;

static void wgen_close(mgw_wgen_t *wg)
{
    closed_wgens++;
    mgw_gen_unref(wg->gen);
    free(wg);
}

static mgw_gen_t *load(void)
{
    char path[512];
    snprintf(path, sizeof path, "%s/gateway.lua", dir);
    FILE *f = fopen(path, "w");
    fputs("return { workers = 1,\n"
          "  listen = { { port = 18001, api = 'a' }, { port = 18003, api = 'rest' } },\n"
          "  management = { port = 18002, token_file = 'tok' },\n"
          "  apis = { a = { stages = { ['$default'] = {} }, routes = {\n"
          "    ['GET /mock'] = { integration = { type = 'mock', body = 'hello' } },\n"
          "    ['GET /ext'] = { integration = { type = 'http', uri = 'http://127.0.0.1:1/' } },\n"
          "    ['GET /auth'] = { integration = { type = 'mock' } },\n"
          "  } },\n"
          "  rest = { protocol = 'rest', stages = { prod = {} }, routes = {\n"
          "    ['GET /pets/{id}'] = { integration = { type = 'mock', body = 'pet' } },\n"
          "  } } } }\n",
          f);
    fclose(f);
    snprintf(path, sizeof path, "%s/tok", dir);
    f = fopen(path, "w");
    fputs("token\n", f);
    fclose(f);
    chmod(path, 0600);
    snprintf(path, sizeof path, "%s/gateway.lua", dir);
    mgw_buf_t errors = {0};
    mgw_gen_t *g = NULL;
    if (mgw_config_load(path, dir, 0, &g, &errors) != 0) printf("#   %s", errors.p);
    mgw_buf_free(&errors);
    return g;
}

static void start(mgw_gen_t *g)
{
    uv_loop_init(&w.loop);
    w.gen = g;
    w.wgen = mgw_calloc(1, sizeof(*w.wgen));
    w.wgen->w = &w;
    w.wgen->gen = g;
    w.wgen->close = wgen_close;
    from.w = &w;
    from.peer = "192.0.2.1";
    mgw_gw_set_writer(&recorder);
}

static mgw_req_t *request(const char *method, const char *target)
{
    memset(&rec, 0, sizeof rec);
    mgw_req_t *r = mgw__req_new(NULL, &from);
    r->method = (mgw_str_t){method, strlen(method)};
    r->target = (mgw_str_t){target, strlen(target)};
    *mgw__req_push_header(r) = (mgw_hdr_t){MGW_STR("host"), MGW_STR("api.test")};
    r->head_done = 1;
    r->minor = 1;
    r->keepalive = 1;
    return r;
}

static const char *context(mgw_req_t *r, const char *name)
{
    static char buf[256];
    mgw_str_t arg, v;
    int var = mgw_template_var(name, strlen(name), &arg);
    if (var < 0 || !mgw__req_lookup(r, var, arg, &v)) return "(none)";
    snprintf(buf, sizeof buf, "%.*s", (int)v.n, v.p);
    return buf;
}

/* ---- the tests ---- */

static void test_mock_through_the_writer(void)
{
    mgw_req_t *r = request("GET", "/mock");
    mgw__req_dispatch(r);
    CHECK(rec.heads == 1 && rec.status == 200 && rec.content_length == 5);
    CHECK_STR(rec.hdrs, "content-type=application/json;");
    char want[64];
    snprintf(want, sizeof want, "apigw-requestid=%s;", r->id);
    CHECK_STR(rec.more, want); /* the gateway's headers come after the response's */
    CHECK_STR(body_text(), "hello");
    CHECK(rec.ends == 1 && rec.aborts == 0);
    CHECK(r->resp_started && r->resp_done);
    CHECK_STR(context(r, "status"), "200");
    CHECK_STR(context(r, "responseLength"), "5");
    mgw__req_free(r);
    mgw_buf_free(&rec.body);
}

static void test_gateway_response(void)
{
    mgw_req_t *r = request("GET", "/nope");
    r->retry_after_s = 7;
    mgw__req_dispatch(r);
    CHECK(rec.heads == 1 && rec.status == 404);
    CHECK_STR(rec.hdrs, "content-type=application/json;x-amzn-errortype=NotFoundException;");
    CHECK(strstr(rec.more, "retry-after=7;") != NULL);
    CHECK_STR(body_text(), "{\"message\":\"Not Found\"}");
    CHECK_STR(context(r, "error.responseType"), "RESOURCE_NOT_FOUND");
    mgw__req_free(r);
    mgw_buf_free(&rec.body);

    /* a HEAD response: the head only */
    r = request("HEAD", "/nope");
    mgw__req_dispatch(r);
    CHECK(rec.heads == 1 && rec.bodies == 0 && rec.ends == 1);
    CHECK(rec.content_length == 23);
    mgw__req_free(r);
}

/* An integration type registered in the table: the core starts it and stops it. */
static int ext_started, ext_aborted;
static int ext_start(mgw_req_t *r)
{
    (void)r;
    ext_started++;
    return MGW_PHASE_WAIT;
}
static void ext_abort(mgw_req_t *r)
{
    (void)r;
    ext_aborted++;
}
static const mgw_integ_ops_t test_integ = {.name = "test", .start = ext_start, .abort = ext_abort};

static void test_integration_table(void)
{
    mgw_gw_set_integration(MGW_INTEG_HTTP, NULL);
    mgw_req_t *r = request("GET", "/ext");
    mgw__req_dispatch(r);
    CHECK(rec.status == 500); /* a type nobody implements: a configuration error */
    CHECK_STR(context(r, "integrationErrorMessage"),
              "the route's integration type is not available");
    mgw__req_free(r);
    mgw_buf_free(&rec.body);

    mgw_gw_set_integration(MGW_INTEG_HTTP, &test_integ);
    r = request("GET", "/ext");
    mgw__req_dispatch(r);
    CHECK(ext_started == 1 && rec.heads == 0); /* the integration answers later */
    CHECK(rec.want_bodies == 1);               /* the body is about to be read */
    r->body_done = 1;
    mgw__req_send_continue(r);
    CHECK(rec.want_bodies == 1); /* not once it has arrived */
    mgw__req_fail(r, MGW_GW_INTEGRATION_TIMEOUT, NULL);
    CHECK(ext_aborted == 1 && rec.status == 504);
    /* too late for another gateway response: the writer cuts the response short */
    mgw__req_fail(r, MGW_GW_INTEGRATION_FAILURE, NULL);
    CHECK(rec.aborts == 1 && rec.heads == 1);
    mgw__req_free(r);
    mgw_buf_free(&rec.body);
    mgw_gw_set_integration(MGW_INTEG_HTTP, NULL);
}

/* An authorizer type registered in the table. */
static int authz_calls;
static int deny(mgw_req_t *r)
{
    authz_calls++;
    mgw__req_fail(r, MGW_GW_UNAUTHORIZED, NULL);
    return MGW_PHASE_STOP;
}
static const mgw_authz_ops_t denier = {.name = "test", .authorize = deny};

static void test_authorizer_table(void)
{
    mgw_route_match_t m;
    CHECK(mgw_router_match(w.gen->apis[0].router, mgw_method_index("GET", 3), MGW_STR("/auth"),
                           &m) == 0);
    mgw_route_t *rt = m.data;
    rt->authorizer_type = MGW_AUTHZ_LUA;
    mgw_req_t *r = request("GET", "/auth");
    mgw__req_dispatch(r);
    CHECK(rec.status == 500); /* nobody registered the type */
    CHECK_STR(context(r, "error.responseType"), "AUTHORIZER_CONFIGURATION_ERROR");
    mgw__req_free(r);
    mgw_buf_free(&rec.body);

    mgw_gw_set_authorizer(MGW_AUTHZ_LUA, &denier);
    r = request("GET", "/auth");
    mgw__req_dispatch(r);
    CHECK(authz_calls == 1 && rec.status == 401);
    mgw__req_free(r);
    mgw_buf_free(&rec.body);
    mgw_gw_set_authorizer(MGW_AUTHZ_LUA, NULL);
    rt->authorizer_type = MGW_AUTHZ_NONE;
}

/* The handler of a listener kind gets the requests of its listeners. */
static mgw_req_t *handled;
static void handler(mgw_req_t *r)
{
    handled = r;
    mgw_hdr_t h = {MGW_STR("www-authenticate"), MGW_STR("Bearer")};
    mgw__req_fail_with(r, MGW_GW_UNAUTHORIZED, NULL, &h, 1);
}

static void test_listener_kinds(void)
{
    from.listen_idx = w.gen->nlisten; /* the management listener comes after the others */
    CHECK(w.gen->management == &w.gen->listen[w.gen->nlisten]);
    mgw_req_t *r = request("GET", "/mock");
    CHECK(mgw__req_listen(r)->kind == MGW_LISTEN_MANAGEMENT);
    mgw__req_dispatch(r);
    CHECK(rec.status == 404); /* no handler for the kind */
    mgw__req_free(r);
    mgw_buf_free(&rec.body);

    mgw_gw_set_handler(MGW_LISTEN_MANAGEMENT, handler);
    r = request("GET", "/mock");
    mgw__req_dispatch(r);
    CHECK(handled == r && rec.status == 401);
    CHECK_STR(rec.hdrs, "content-type=application/json;x-amzn-errortype=UnauthorizedException;"
                        "www-authenticate=Bearer;");
    mgw__req_free(r);
    mgw_buf_free(&rec.body);
    mgw_gw_set_handler(MGW_LISTEN_MANAGEMENT, NULL);
    from.listen_idx = 0;
}

static int uuid_shaped(const char *s)
{
    if (strlen(s) != 36) return 0;
    for (int i = 0; i < 36; i++)
        if ((i == 8 || i == 13 || i == 18 || i == 23) ? s[i] != '-'
                                                      : !isxdigit((unsigned char)s[i]))
            return 0;
    return s[14] == '4';
}

/* A REST API (listener 1): the stage from the path, 403 Missing Authentication Token,
 * x-amzn-RequestId (a UUID, the client's when it is one) and x-amz-apigw-id. */
static void test_rest_api(void)
{
    from.listen_idx = 1;
    mgw_req_t *r = request("GET", "/prod/pets/7");
    mgw__req_dispatch(r);
    CHECK(rec.status == 200);
    const char *rid = mgw__req_id(r);
    CHECK(uuid_shaped(rid));
    CHECK(strcmp(rid, r->id) != 0);
    char want[128];
    snprintf(want, sizeof want, "x-amzn-RequestId=%s;x-amz-apigw-id=%s;", rid, r->id);
    CHECK_STR(rec.more, want);
    CHECK_STR(context(r, "requestId"), rid);
    CHECK_STR(context(r, "extendedRequestId"), r->id);
    CHECK_STR(context(r, "resourcePath"), "/pets/{id}");
    CHECK(strlen(context(r, "resourceId")) == 10);
    CHECK(strlen(context(r, "requestTimeEpoch")) == 13); /* milliseconds */
    mgw__req_free(r);
    mgw_buf_free(&rec.body);

    const char *paths[] = {"/", "/dev/pets/7", "/prod", "/prod/pets", "/prod/pets/7/x"};
    for (int i = 0; i < 5; i++) {
        r = request("GET", paths[i]);
        mgw__req_dispatch(r);
        CHECK(rec.status == 403);
        CHECK_STR(rec.hdrs, "content-type=application/json;"
                            "x-amzn-ErrorType=MissingAuthenticationTokenException;");
        CHECK_STR(body_text(), "{\"message\":\"Missing Authentication Token\"}");
        CHECK_STR(context(r, "error.responseType"), "MISSING_AUTHENTICATION_TOKEN");
        mgw__req_free(r);
        mgw_buf_free(&rec.body);
    }
    r = request("DELETE", "/prod/pets/7"); /* a method the resource does not have */
    mgw__req_dispatch(r);
    CHECK(rec.status == 403);
    mgw__req_free(r);
    mgw_buf_free(&rec.body);

    /* a client's UUID is its requestId; anything else is not */
    const char *id = "0F8FAD5B-D9CB-469F-A165-70867728950E";
    r = request("GET", "/prod/pets/7");
    *mgw__req_push_header(r) = (mgw_hdr_t){MGW_STR("x-amzn-requestid"), {id, strlen(id)}};
    mgw__req_dispatch(r);
    CHECK_STR(mgw__req_id(r), id);
    CHECK_STR(context(r, "extendedRequestId"), r->id);
    mgw__req_free(r);
    mgw_buf_free(&rec.body);
    r = request("GET", "/prod/pets/7");
    *mgw__req_push_header(r) = (mgw_hdr_t){MGW_STR("x-amzn-requestid"), MGW_STR("my-id")};
    mgw__req_dispatch(r);
    CHECK(uuid_shaped(mgw__req_id(r)));
    mgw__req_free(r);
    mgw_buf_free(&rec.body);
    from.listen_idx = 0;
}

static void test_phase_order(void)
{
    /* written once: the enum and the table come from MGW_PHASES */
    CHECK(MGW_PHASE_WAF == 0 && MGW_PHASE_ROUTE == 1 && MGW_PHASE_AUTHORIZE == 2 &&
          MGW_PHASE_THROTTLE == 3 && MGW_PHASE_CACHE == 4 && MGW_PHASE_INTEGRATION == 5 &&
          MGW_PHASE__COUNT == 6);
    CHECK(phases[MGW_PHASE_WAF] == phase_waf && phases[MGW_PHASE_CACHE] == phase_cache &&
          phases[MGW_PHASE_INTEGRATION] == phase_integration);
}

static void test_worker_generation(void)
{
    mgw_wgen_t *wg = w.wgen;
    mgw_req_t *r = request("GET", "/mock");
    CHECK(wg->nreqs == 1 && r->wgen == wg);
    mgw__wgen_retire(wg);
    CHECK(closed_wgens == 0); /* its request still runs */
    mgw__req_free(r);
    CHECK(closed_wgens == 1);
    w.wgen = NULL;
}

int main(void)
{
    if (mkdtemp(dir) == NULL) return 1;
    mgw_log_level = MGW_LOG_WARN;
    mgw_gen_t *g = load();
    if (g == NULL) return 1;
    start(g);
    RUN(test_mock_through_the_writer);
    RUN(test_gateway_response);
    RUN(test_integration_table);
    RUN(test_authorizer_table);
    RUN(test_listener_kinds);
    RUN(test_rest_api);
    RUN(test_phase_order);
    RUN(test_worker_generation);
    CHECK(uv_loop_close(&w.loop) == 0);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) printf("# could not remove %s\n", dir);
    return DONE();
}
