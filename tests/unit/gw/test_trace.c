/*
 * W3C Trace Context (gw/trace.c): traceparent vectors valid and invalid (Level 1's
 * rules: lower-case hex, version 00 exactly 55 characters, later versions longer only
 * after a "-", ff and all-zero ids invalid), tracestate members (keys, values, 32
 * members, duplicates, the 512-character cut), the trace a request starts or continues,
 * the headers sent on, and the OTLP/HTTP JSON spans of a request, parsed back.
 */
#include "gw/trace.c"

#include "base/json.h"
#include "unit.h"

static int tp(const char *s)
{
    uint8_t t[16], p[8], f;
    return mgw__traceparent_parse(s, strlen(s), t, p, &f);
}

#define TID "4bf92f3577b34da6a3ce929d0e0e4736"
#define PID "00f067aa0ba902b7"

static void test_traceparent(void)
{
    uint8_t t[16], p[8], f = 0;
    const char *ok = "00-" TID "-" PID "-01";
    CHECK(mgw__traceparent_parse(ok, strlen(ok), t, p, &f) == 0);
    CHECK(t[0] == 0x4b && t[15] == 0x36 && p[0] == 0x00 && p[7] == 0xb7 && f == 1);
    CHECK(tp("00-" TID "-" PID "-00") == 0);
    CHECK(tp("00-" TID "-" PID "-ff") == 0); /* unknown flags: parsed, not passed on */
    CHECK(tp("01-" TID "-" PID "-01") == 0);
    CHECK(tp("cc-" TID "-" PID "-01-what-the-future-will-be-like") == 0);
    CHECK(tp("cc-" TID "-" PID "-01") == 0);
    /* invalid */
    CHECK(tp("") == -1);
    CHECK(tp("00-" TID "-" PID "-0") == -1);
    CHECK(tp("00-" TID "-" PID "-01-") == -1); /* version 00 is exactly 55 */
    CHECK(tp("00-" TID "-" PID "-01x") == -1);
    CHECK(tp("cc-" TID "-" PID "-01x") == -1); /* later versions: "-" after the flags */
    CHECK(tp("ff-" TID "-" PID "-01") == -1);  /* version ff */
    CHECK(tp("0g-" TID "-" PID "-01") == -1);
    CHECK(tp("00-4BF92F3577B34DA6A3CE929D0E0E4736-" PID "-01") == -1); /* upper case */
    CHECK(tp("00-" TID "-00F067AA0BA902B7-01") == -1);
    CHECK(tp("00-" TID "-" PID "-0A") == -1);
    CHECK(tp("00-00000000000000000000000000000000-" PID "-01") == -1);
    CHECK(tp("00-" TID "-0000000000000000-01") == -1);
    CHECK(tp("00_" TID "-" PID "-01") == -1);
    CHECK(tp("00-" TID "_" PID "-01") == -1);
    CHECK(tp("00-" TID "-" PID "_01") == -1);
    CHECK(tp("00-4bf92f3577b34da6a3ce929d0e0e473-" PID "-011") == -1);
    CHECK(tp(" 00-" TID "-" PID "-01") == -1);
}

static int ts(mgw_pool_t *pool, const char *in, const char **out)
{
    mgw_str_t o;
    int rc = mgw__tracestate_check(pool, (mgw_str_t){in, strlen(in)}, &o);
    *out = rc == 0 ? mgw_pool_strndup(pool, o.p, o.n) : NULL;
    return rc;
}

static void test_tracestate(void)
{
    mgw_pool_t *pool = mgw_pool_create(4096);
    const char *o;
    CHECK(ts(pool, "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE", &o) == 0);
    CHECK_STR(o, "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE");
    CHECK(ts(pool, " a=1 ,\t, b@vendor=x y ", &o) == 0); /* OWS and empty members */
    CHECK_STR(o, "a=1,b@vendor=x y");
    CHECK(ts(pool, "", &o) == 0);
    CHECK_STR(o, "");
    CHECK(ts(pool, "1tenant@sys=v", &o) == 0);
    CHECK(ts(pool, "a*/_-=v", &o) == 0);
    CHECK(ts(pool, "A=1", &o) == -1);      /* upper-case key */
    CHECK(ts(pool, "1a=1", &o) == -1);     /* a simple key starts with a letter */
    CHECK(ts(pool, "a@1sys=1", &o) == -1); /* a system id too */
    CHECK(ts(pool, "a@systemidtoolong=1", &o) == -1);
    CHECK(ts(pool, "a=1,a=2", &o) == -1);
    CHECK(ts(pool, "a", &o) == -1);
    CHECK(ts(pool, "a=", &o) == -1);
    CHECK(ts(pool, "a=x=y", &o) == -1);
    CHECK(ts(pool, "a=x ", &o) == 0); /* trailing white space is OWS */
    CHECK_STR(o, "a=x");
    CHECK(ts(pool, "a=\x7f", &o) == -1);
    char many[400];
    size_t k = 0;
    for (int i = 0; i < 32; i++)
        k += (size_t)snprintf(many + k, sizeof many - k, "%sk%d=v", i ? "," : "", i);
    CHECK(ts(pool, many, &o) == 0);
    CHECK_STR(o, many);
    snprintf(many + k, sizeof many - k, ",k32=v");
    CHECK(ts(pool, many, &o) == -1); /* 33 members */
    /* over 512: the member over 128 characters goes first, then the last ones */
    char big[1200];
    k = 0;
    for (int i = 0; i < 4; i++)
        k += (size_t)snprintf(big + k, sizeof big - k, "k%d=%0100d,", i, 0);
    k += (size_t)snprintf(big + k, sizeof big - k, "huge=%0200d", 0);
    CHECK(ts(pool, big, &o) == 0);
    CHECK(o && strstr(o, "huge=") == NULL && strlen(o) == 4 * 103 + 3 && strstr(o, "k3=") != NULL);
    k = 0;
    for (int i = 0; i < 6; i++)
        k += (size_t)snprintf(big + k, sizeof big - k, "%sk%d=%0100d", i ? "," : "", i, 0);
    CHECK(ts(pool, big, &o) == 0);
    CHECK(o && strlen(o) == 4 * 103 + 3 && strstr(o, "k3=") && !strstr(o, "k4="));
    mgw_pool_destroy(pool);
}

/* ---- a request without a connection ---- */

static mgw_worker_t w;
static mgw_listen_t listen_;
static mgw_gen_t gen;
static mgw_tracing_t tracing;
static mgw_api_t api;
static mgw_stage_t stage;
static mgw_route_t route;

static mgw_req_t *req(const char *traceparent, const char *tracestate)
{
    mgw_pool_t *pool = mgw_pool_create(8192);
    mgw_req_t *r = mgw_pool_calloc(pool, sizeof(*r));
    r->pool = pool;
    r->from.w = &w;
    r->from.peer = "192.0.2.1";
    r->gen = &gen;
    r->method = MGW_STR("GET");
    r->raw_path = MGW_STR("/pets/\"7\"");
    r->host = MGW_STR("api.example.test:8080");
    r->minor = 1;
    r->status = 200;
    r->start_ns = uv_hrtime();
    r->start_ms = 1700000000000ULL;
    memcpy(r->id, "REQID", 6);
    r->headers = mgw_pool_calloc(pool, sizeof(mgw_hdr_t) * 4);
    r->cap_headers = 4;
    if (traceparent)
        *mgw__req_push_header(r) =
            (mgw_hdr_t){MGW_STR("Traceparent"), {traceparent, strlen(traceparent)}};
    if (tracestate)
        *mgw__req_push_header(r) =
            (mgw_hdr_t){MGW_STR("tracestate"), {tracestate, strlen(tracestate)}};
    return r;
}

static void test_context(void)
{
    /* continued: the caller's trace id and sampled flag, a new span id */
    mgw_req_t *r = req("00-" TID "-" PID "-00", "a=1");
    mgw_trace_t *t = mgw__trace(r);
    CHECK(mgw__trace(r) == t);
    CHECK(t->remote && !t->sampled && !t->exported);
    CHECK(t->trace_id[0] == 0x4b && t->parent_id[7] == 0xb7);
    CHECK(memcmp(t->span_id, t->parent_id, 8) != 0 && memcmp(t->span_id, t->integ_id, 8) != 0);
    mgw_hdr_t h[3];
    int n = mgw__trace_headers(r, t->integ_id, h);
    CHECK(n == 3);
    char want[56] = "00-" TID "-";
    mgw__hex(t->integ_id, 8, want + 36);
    memcpy(want + 52, "-00", 4);
    CHECK(h[0].value.n == 55 && memcmp(h[0].value.p, want, 55) == 0);
    CHECK(mgw_str_ieq(h[1].name, "tracestate") && h[1].value.n == 3);
    CHECK(mgw_str_ieq(h[2].name, "x-request-id") && h[2].value.n == 5);
    CHECK(mgw__trace_own_header(r, MGW_STR("TraceParent")));
    CHECK(mgw__trace_own_header(r, MGW_STR("X-Request-Id")));
    CHECK(!mgw__trace_own_header(r, MGW_STR("x-request")));
    mgw_pool_destroy(r->pool);

    /* new: sample_ratio 0 leaves it unsampled, 1 samples it */
    tracing.sample_all = 0;
    tracing.sample_below = 0;
    r = req("00-" TID "-" PID "-0", "a=1");
    t = mgw__trace(r);
    CHECK(!t->remote && !t->sampled && t->tracestate.n == 0 && t->trace_id[0] != 0x4b);
    n = mgw__trace_headers(r, t->span_id, h);
    CHECK(n == 2 && memcmp(h[0].value.p + 52, "-00", 3) == 0);
    mgw_pool_destroy(r->pool);
    /* ... except a caller's sampled trace (parent-based) */
    r = req("00-" TID "-" PID "-01", NULL);
    CHECK(mgw__trace(r)->exported);
    mgw_pool_destroy(r->pool);
    tracing.sample_all = 1;
    r = req(NULL, NULL);
    t = mgw__trace(r);
    CHECK(t->sampled && t->exported);
    mgw_pool_destroy(r->pool);
}

static const mgw_json_t *span_attr(const mgw_json_t *span, const char *key)
{
    const mgw_json_t *a = mgw_json_get(span, "attributes");
    for (int i = 0; a && i < a->n; i++) {
        const mgw_json_t *k = mgw_json_get(a->items[i], "key");
        if (k && strcmp(k->str, key) == 0) {
            const mgw_json_t *v = mgw_json_get(a->items[i], "value");
            const mgw_json_t *s = mgw_json_get(v, "stringValue");
            return s ? s : mgw_json_get(v, "intValue");
        }
    }
    return NULL;
}

static const char *field(const mgw_json_t *o, const char *key)
{
    const mgw_json_t *v = mgw_json_get(o, key);
    return v && v->type == MGW_JSON_STRING ? v->str : NULL;
}

static void test_encode(void)
{
    mgw_req_t *r = req("00-" TID "-" PID "-01", "a=1");
    r->api = &api;
    r->stage = &stage;
    r->route = &route;
    r->status = 503;
    mgw_trace_t *t = mgw__trace(r);
    t->phase_ns[MGW_PHASE_AUTHORIZE][0] = r->start_ns + 1000;
    t->phase_ns[MGW_PHASE_AUTHORIZE][1] = r->start_ns + 2000;
    mgw_buf_t b = {0};
    mgw_buf_adds(&b, "[");
    int n = mgw__trace_encode(r, &b, 0);
    mgw_buf_adds(&b, "]");
    CHECK(n == 2); /* the server span and the authorizer's (no WAF, no integration ran) */
    mgw_json_t *doc;
    char err[200];
    CHECK(mgw_json_parse(r->pool, b.p, b.n, &doc, err, sizeof err) == 0);
    if (doc == NULL || doc->n != 2) {
        printf("# %.*s\n", (int)b.n, b.p);
        CHECK(0);
        return;
    }
    const mgw_json_t *s = doc->items[0], *c = doc->items[1];
    CHECK_STR(field(s, "traceId"), TID);
    CHECK_STR(field(s, "parentSpanId"), PID);
    CHECK_STR(field(s, "traceState"), "a=1");
    CHECK_STR(field(s, "name"), "GET /pets/{id}");
    CHECK(mgw_json_get(s, "kind")->num == 2);
    char sid[17] = {0};
    mgw__hex(t->span_id, 8, sid);
    CHECK_STR(field(s, "spanId"), sid);
    CHECK_STR(field(s, "startTimeUnixNano"), "1700000000000000000");
    CHECK_STR(span_attr(s, "url.path")->str, "/pets/\"7\"");
    CHECK_STR(span_attr(s, "http.route")->str, "/pets/{id}");
    CHECK_STR(span_attr(s, "http.response.status_code")->str, "503");
    CHECK_STR(span_attr(s, "server.address")->str, "api.example.test");
    CHECK_STR(span_attr(s, "client.address")->str, "192.0.2.1");
    CHECK_STR(span_attr(s, "moongate.api_id")->str, "pets");
    CHECK_STR(span_attr(s, "moongate.stage")->str, "prod");
    CHECK(mgw_json_get(mgw_json_get(s, "status"), "code")->num == 2); /* a 5xx */
    CHECK_STR(field(c, "name"), "authorizer");
    CHECK_STR(field(c, "parentSpanId"), sid);
    CHECK(mgw_json_get(c, "kind")->num == 1);
    CHECK_STR(field(c, "startTimeUnixNano"), "1700000000000001000");
    CHECK_STR(field(c, "endTimeUnixNano"), "1700000000000002000");
    mgw_buf_free(&b);
    mgw_pool_destroy(r->pool);
}

int main(void)
{
    uv_loop_init(&w.loop);
    w.rng[0] = 0x1234567, w.rng[1] = 0x89abcdef;
    listen_.port = 8080;
    gen.listen = &listen_;
    gen.nlisten = 1;
    gen.tracing = &tracing;
    tracing.otlp_url = "http://127.0.0.1:4318/v1/traces";
    tracing.sample_all = 1;
    tracing.request_id_header = "x-request-id";
    tracing.request_id_header_len = 12;
    api.id = "pets";
    stage.name = "prod";
    route.key = "GET /pets/{id}";
    route.key_len = strlen(route.key);
    route.authorizer_type = MGW_AUTHZ_LUA;
    RUN(test_traceparent);
    RUN(test_tracestate);
    RUN(test_context);
    RUN(test_encode);
    CHECK(uv_loop_close(&w.loop) == 0);
    return DONE();
}
