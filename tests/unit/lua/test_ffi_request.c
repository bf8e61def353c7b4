/*
 * The request object's C side (what req:header(), req:set_header(), req:context() and
 * req:body() see): repeated headers joined with ",", header changes only before the
 * integration and only with valid names and values, $context lookups by name.
 */
#include "lua/ffi_request.c"

#include <stdio.h>
#include <string.h>

#include "unit.h"

static mgw_req_t *new_req(void)
{
    mgw_pool_t *pool = mgw_pool_create(0);
    mgw_req_t *r = mgw_pool_calloc(pool, sizeof(*r));
    r->pool = pool;
    r->from.peer = "192.0.2.1";
    r->error_type = MGW_GW_NONE;
    static const char *names[] = {"host", "x-a", "accept", "x-a"};
    static const char *values[] = {"api.test", "1", "*/*", "2"};
    r->cap_headers = 4;
    r->nheaders = 4;
    r->headers = mgw_pool_alloc(pool, sizeof(mgw_hdr_t) * 4);
    for (int i = 0; i < 4; i++)
        r->headers[i] = (mgw_hdr_t){{names[i], strlen(names[i])}, {values[i], strlen(values[i])}};
    r->method = MGW_STR("GET");
    r->phase = MGW_PHASE_WAF;
    return r;
}

static const char *s(mgw_str_t v)
{
    static char buf[256];
    snprintf(buf, sizeof buf, "%.*s", (int)v.n, v.p ? v.p : "");
    return buf;
}

static void test_header_lookup(void)
{
    mgw_req_t *r = new_req();
    mgw_str_t v;
    CHECK(mgw_ffi_req_header(r, "HOST", 4, &v) == 0);
    CHECK_STR(s(v), "api.test");
    CHECK(mgw_ffi_req_header(r, "x-a", 3, &v) == 0);
    CHECK_STR(s(v), "1,2");
    CHECK(mgw_ffi_req_header(r, "x-b", 3, &v) == -1);
    mgw_pool_destroy(r->pool);
}

static void test_set_header(void)
{
    mgw_req_t *r = new_req();
    const char *err = NULL;
    mgw_str_t v;
    /* replaces every value; names are stored lower case */
    CHECK(mgw_ffi_req_set_header(r, "X-A", 3, "new", 3, &err) == 0);
    CHECK(mgw_ffi_req_header(r, "x-a", 3, &v) == 0);
    CHECK_STR(s(v), "new");
    CHECK(r->nheaders == 3);
    CHECK_STR(s(r->headers[2].name), "x-a");
    /* adds beyond the initial capacity */
    CHECK(mgw_ffi_req_set_header(r, "X-B", 3, "b", 1, &err) == 0);
    CHECK(mgw_ffi_req_set_header(r, "X-C", 3, "c", 1, &err) == 0);
    CHECK(r->nheaders == 5);
    CHECK(mgw_ffi_req_header(r, "x-c", 3, &v) == 0 && v.n == 1);
    /* removes */
    CHECK(mgw_ffi_req_set_header(r, "accept", 6, NULL, 0, &err) == 0);
    CHECK(mgw_ffi_req_header(r, "accept", 6, &v) == -1);
    CHECK(r->nheaders == 4);
    mgw_pool_destroy(r->pool);
}

static void test_set_header_refusals(void)
{
    mgw_req_t *r = new_req();
    const char *err = NULL;
    CHECK(mgw_ffi_req_set_header(r, "bad name", 8, "v", 1, &err) == -1);
    CHECK_STR(err, "header name must be an HTTP token");
    CHECK(mgw_ffi_req_set_header(r, "x-a", 3, "a\r\nb: c", 7, &err) == -1);
    CHECK_STR(err, "header value must not contain CR, LF or NUL");
    CHECK(mgw_ffi_req_set_header(r, "", 0, "v", 1, &err) == -1);
    r->phase = MGW_PHASE_INTEGRATION;
    CHECK(mgw_ffi_req_set_header(r, "x-a", 3, "v", 1, &err) == -1);
    CHECK_STR(err, "request headers can only be changed before the integration");
    CHECK(r->nheaders == 4);
    mgw_pool_destroy(r->pool);
}

static void test_fields_and_context(void)
{
    mgw_req_t *r = new_req();
    mgw_str_t v;
    CHECK(mgw_ffi_req_field(r, MGW_FIELD_METHOD, &v) == 0);
    CHECK_STR(s(v), "GET");
    CHECK(mgw_ffi_req_field(r, MGW_FIELD_SOURCE_IP, &v) == 0);
    CHECK_STR(s(v), "192.0.2.1");
    CHECK(mgw_ffi_req_field(r, MGW_FIELD_ROUTE_KEY, &v) == -1); /* not routed yet */
    CHECK(mgw_ffi_req_field(r, MGW_FIELD_QUERY, &v) == 0 && v.n == 0);
    CHECK(mgw_ffi_req_context(r, "httpMethod", 10, &v) == 0);
    CHECK_STR(s(v), "GET");
    CHECK(mgw_ffi_req_context(r, "identity.sourceIp", 17, &v) == 0);
    CHECK_STR(s(v), "192.0.2.1");
    CHECK(mgw_ffi_req_context(r, "error.message", 13, &v) == -1);
    CHECK(mgw_ffi_req_context(r, "nope", 4, &v) == -2);
    mgw_pool_destroy(r->pool);
}

static void test_body_availability(void)
{
    mgw_req_t *r = new_req();
    mgw_str_t v;
    const char *err = NULL;
    /* no body at all: complete and empty */
    CHECK(mgw_ffi_req_body(r, &v, &err) == 0 && v.n == 0);
    /* a body that has fully arrived */
    r->has_length = 1;
    r->content_length = 5;
    r->body_done = 1;
    mgw_buf_add(&r->kept_body, "hello", 5);
    CHECK(mgw_ffi_req_body(r, &v, &err) == 0);
    CHECK_STR(s(v), "hello");
    /* after the response started it is gone */
    r->resp_started = 1;
    CHECK(mgw_ffi_req_body(r, &v, &err) == -1);
    CHECK(err != NULL);
    mgw_buf_free(&r->kept_body); /* the request's own cleanup is request.c's */
    mgw_pool_destroy(r->pool);
}

int main(void)
{
    RUN(test_header_lookup);
    RUN(test_set_header);
    RUN(test_set_header_refusals);
    RUN(test_fields_and_context);
    RUN(test_body_availability);
    return DONE();
}
