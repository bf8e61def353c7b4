/*
 * Request metrics: requests counted into their worker's block and summed by the scrape,
 * histograms from the bucket counts, gateway response types and throttle levels, and a
 * second generation that keeps a route's series (a reload) or drops it from the scrape.
 */
#include "gw/metrics.c"

#include <stdio.h>
#include <sys/stat.h>

#include "conf/config.h"
#include "unit.h"

static char dir[] = "/tmp/mgw-test-metrics-XXXXXX";

/* The generation of api a with routes, and more of a's fields (plans...), prepared. */
static mgw_gen_t *load_with(const char *routes, const char *more)
{
    char path[512];
    snprintf(path, sizeof path, "%s/gateway.lua", dir);
    FILE *f = fopen(path, "w");
    fprintf(f,
            "return { workers = 2,\n"
            "  listen = { { port = 18101, api = 'a' } },\n"
            "  api_keys = { carol = { value = 'carol-0123456789-key-ca20' } },\n"
            "  apis = { a = { stages = { ['$default'] = {} }, routes = { %s }, %s } } }\n",
            routes, more);
    fclose(f);
    mgw_buf_t errors = {0};
    mgw_gen_t *g = NULL;
    if (mgw_config_load(path, dir, 0, &g, &errors) != 0) printf("#   %s", errors.p);
    mgw_buf_free(&errors);
    if (g) mgw_metrics_gen_prepare(g);
    return g;
}

static mgw_gen_t *load(const char *routes)
{
    return load_with(routes, "");
}

static mgw_worker_t workers[3]; /* ids 0 (the main thread), 1, 2 */

/* Counts a request of worker wid on route key (NULL: none) that took ms milliseconds. */
static void count(mgw_gen_t *g, int wid, const char *key, int status, uint64_t ms,
                  mgw_gwresp_type_t type, const char *level)
{
    mgw_req_t r;
    memset(&r, 0, sizeof r);
    r.gen = g;
    r.from.w = &workers[wid];
    r.api = &g->apis[0];
    r.stage = &g->apis[0].stages[0];
    r.route = key ? mgw_api_find_route(r.api, key, strlen(key)) : NULL;
    r.status = status;
    r.error_type = type;
    r.rl_name = level;
    r.start_ns = uv_hrtime() - ms * 1000000;
    if (r.route) {
        r.integ_start_ns = 1000;
        r.integ_end_ns = 1000 + ms * 1000000 / 2;
    }
    mgw__metrics_request(&r);
}

static char *render(mgw_gen_t *g)
{
    mgw_buf_t b = {0};
    mgw_metrics_render(g, &b);
    return b.p;
}

static int has(const char *text, const char *line)
{
    char want[512];
    snprintf(want, sizeof want, "\n%s\n", line);
    return strstr(text, want) != NULL;
}

static void test_counts_summed_over_workers(void)
{
    mgw_gen_t *g = load("['GET /a'] = { integration = { type = 'mock' } },"
                        "['GET /b'] = { integration = { type = 'mock' } }");
    CHECK(g != NULL);
    if (!g) return;
    count(g, 1, "GET /a", 200, 1, MGW_GW_NONE, NULL);
    count(g, 2, "GET /a", 200, 30, MGW_GW_NONE, NULL);
    count(g, 2, "GET /a", 502, 3000, MGW_GW_INTEGRATION_FAILURE, NULL);
    count(g, 1, NULL, 404, 0, MGW_GW_RESOURCE_NOT_FOUND, NULL);
    count(g, 1, "GET /b", 429, 0, MGW_GW_THROTTLED, "route");
    count(g, 2, "GET /b", 429, 0, MGW_GW_QUOTA_EXCEEDED, NULL);
    count(g, 0, "GET /b", 200, 0, MGW_GW_NONE, NULL); /* the main thread: not counted */
    count(g, 1, "GET /b", 0, 0, MGW_GW_NONE, NULL);   /* no response status: not counted */
    char *t = render(g);
    const char *L = "api=\"a\",stage=\"$default\",route=\"GET /a\"";
    char line[512];
#define HAS_LINE(fmt, ...) (snprintf(line, sizeof line, fmt, __VA_ARGS__), has(t, line))
    CHECK(HAS_LINE("moongate_requests_total{%s,status_class=\"2xx\"} 2", L));
    CHECK(HAS_LINE("moongate_requests_total{%s,status_class=\"5xx\"} 1", L));
    CHECK(HAS_LINE("moongate_requests_total{%s,status_class=\"4xx\"} 0", L));
    CHECK(!HAS_LINE("moongate_requests_total{%s,status_class=\"1xx\"} 0", L));
    /* 1 ms <= 0.005; 30 ms in (0.025, 0.05]; 3 s in (2.5, 5] */
    CHECK(HAS_LINE("moongate_request_duration_seconds_bucket{%s,le=\"0.005\"} 1", L));
    CHECK(HAS_LINE("moongate_request_duration_seconds_bucket{%s,le=\"0.025\"} 1", L));
    CHECK(HAS_LINE("moongate_request_duration_seconds_bucket{%s,le=\"0.05\"} 2", L));
    CHECK(HAS_LINE("moongate_request_duration_seconds_bucket{%s,le=\"2.5\"} 2", L));
    CHECK(HAS_LINE("moongate_request_duration_seconds_bucket{%s,le=\"5\"} 3", L));
    CHECK(HAS_LINE("moongate_request_duration_seconds_bucket{%s,le=\"+Inf\"} 3", L));
    CHECK(HAS_LINE("moongate_request_duration_seconds_count{%s} 3", L));
    CHECK(HAS_LINE("moongate_integration_duration_seconds_count{%s} 3", L));
    CHECK(HAS_LINE("moongate_integration_duration_seconds_bucket{%s,le=\"0.025\"} 2", L));
    CHECK(has(t, "moongate_requests_total{api=\"a\",stage=\"$default\",route=\"(none)\","
                 "status_class=\"4xx\"} 1"));
    CHECK(has(t, "moongate_requests_total{api=\"a\",stage=\"$default\",route=\"GET /b\","
                 "status_class=\"4xx\"} 2"));
    CHECK(has(t, "moongate_requests_total{api=\"a\",stage=\"$default\",route=\"GET /b\","
                 "status_class=\"2xx\"} 0"));
    CHECK(has(t, "moongate_gateway_responses_total{api=\"a\",stage=\"$default\","
                 "type=\"INTEGRATION_FAILURE\"} 1"));
    CHECK(has(t, "moongate_gateway_responses_total{api=\"a\",stage=\"$default\","
                 "type=\"RESOURCE_NOT_FOUND\"} 1"));
    CHECK(has(t, "moongate_throttled_total{api=\"a\",stage=\"$default\",level=\"route\"} 1"));
    CHECK(has(t, "moongate_throttled_total{api=\"a\",stage=\"$default\",level=\"quota\"} 1"));
    /* one HELP and TYPE per family */
    CHECK(strstr(t, "# TYPE moongate_request_duration_seconds histogram\n") != NULL);
    char *second = strstr(t, "# TYPE moongate_requests_total counter");
    CHECK(second && strstr(second + 1, "# TYPE moongate_requests_total counter") == NULL);
    free(t);

    /* A reload that keeps GET /a and drops GET /b: the same series for GET /a */
    mgw_gen_t *g2 = load("['GET /a'] = { integration = { type = 'mock' } }");
    count(g2, 1, "GET /a", 200, 1, MGW_GW_NONE, NULL);
    t = render(g2);
    CHECK(HAS_LINE("moongate_requests_total{%s,status_class=\"2xx\"} 3", L));
    CHECK(strstr(t, "GET /b") == NULL);
    free(t);
    /* the old generation's requests still count (into the same series) */
    count(g, 2, "GET /a", 200, 1, MGW_GW_NONE, NULL);
    t = render(g2);
    CHECK(HAS_LINE("moongate_requests_total{%s,status_class=\"2xx\"} 4", L));
    free(t);
    /* GET /b comes back where it stopped */
    mgw_gen_t *g3 = load("['GET /a'] = { integration = { type = 'mock' } },"
                         "['GET /b'] = { integration = { type = 'mock' } }");
    t = render(g3);
    CHECK(has(t, "moongate_requests_total{api=\"a\",stage=\"$default\",route=\"GET /b\","
                 "status_class=\"4xx\"} 2"));
    free(t);
#undef HAS_LINE
    mgw_gen_unref(g);
    mgw_gen_unref(g2);
    mgw_gen_unref(g3);
}

/* base/stat.h families made here: a plan's quota series (counted and exceeded) by plan
 * index, plans without a quota have none; an authorizer's series, with cache series only
 * when it has a cache, found again by their labels. */
static void test_quota_and_authorizer_series(void)
{
    mgw_gen_t *g = load_with("['GET /q'] = { api_key_required = true, integration = { type = "
                             "'mock' } }",
                             "usage_plans = { free = { keys = { 'carol' } }, gold = { keys = { "
                             "'carol' }, quota = { limit = 5, period = 'day' } } }");
    CHECK(g != NULL);
    if (!g) return;
    const api_metrics_t *am = &g->metrics->apis[0];
    int gold = strcmp(g->apis[0].plans[0].name, "gold") == 0 ? 0 : 1;
    CHECK(am->quota[2 * gold] != 0 && am->quota[2 * gold + 1] != 0);
    CHECK(am->quota[2 * (1 - gold)] == 0);
    mgw_member_t m = {.api = &g->apis[0], .plan = &g->apis[0].plans[gold]};
    mgw_req_t r;
    memset(&r, 0, sizeof r);
    r.gen = g;
    mgw__metrics_quota(&r, &m, 1);
    mgw__metrics_quota(&r, &m, 1);
    mgw__metrics_quota(&r, &m, 0);
    CHECK(mgw_stat_value(am->quota[2 * gold]) == 2);
    CHECK(mgw_stat_value(am->quota[2 * gold + 1]) == 1);
    mgw_buf_t b = {0};
    mgw_stat_render(&b);
    CHECK(b.p && strstr(b.p, "\nmoongate_quota_requests_total{api=\"a\",plan=\"gold\","
                             "result=\"counted\"} 2\n"));
    mgw_buf_free(&b);

    mgw_authz_stat_t s1, s2, s3;
    mgw_metrics_authorizer(&s1, "a", "z", 0);
    CHECK(s1.hit == 0 && s1.miss == 0);
    for (int i = 0; i < MGW_AUTHZ_OUT__COUNT; i++)
        CHECK(s1.outcome[i] != 0);
    CHECK(s1.outcome[MGW_AUTHZ_OUT_ALLOW] != s1.outcome[MGW_AUTHZ_OUT_DENY]);
    mgw_metrics_authorizer(&s2, "a", "z", 1); /* a reload that turned the cache on */
    CHECK(s2.outcome[MGW_AUTHZ_OUT_ERROR] == s1.outcome[MGW_AUTHZ_OUT_ERROR]);
    CHECK(s2.hit != 0 && s2.miss != 0 && s2.hit != s2.miss);
    mgw_metrics_authorizer(&s3, "b", "z", 1); /* another API's authorizer of that name */
    CHECK(s3.hit != s2.hit && s3.outcome[0] != s2.outcome[0]);
    mgw_gen_unref(g);
}

static void test_bucket(void)
{
    CHECK(bucket(0) == 0);
    CHECK(bucket(5000000) == 0); /* le is inclusive */
    CHECK(bucket(5000001) == 1);
    CHECK(bucket(10000000000ULL) == NB - 1);
    CHECK(bucket(10000000001ULL) == NB);
}

int main(void)
{
    if (!mkdtemp(dir)) return 1;
    for (int i = 0; i < 3; i++)
        workers[i].id = i;
    RUN(test_bucket);
    RUN(test_counts_summed_over_workers);
    mgw_stat_init(3);
    RUN(test_quota_and_authorizer_series);
    mgw_metrics_free();
    mgw_stat_free();
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) return 1;
    return DONE();
}
