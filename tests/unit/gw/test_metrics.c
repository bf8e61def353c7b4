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

static mgw_gen_t *load(const char *routes)
{
    char path[512];
    snprintf(path, sizeof path, "%s/gateway.lua", dir);
    FILE *f = fopen(path, "w");
    fprintf(f,
            "return { workers = 2,\n"
            "  listen = { { port = 18101, api = 'a' } },\n"
            "  apis = { a = { stages = { ['$default'] = {} }, routes = { %s } } } }\n",
            routes);
    fclose(f);
    mgw_buf_t errors = {0};
    mgw_gen_t *g = NULL;
    if (mgw_config_load(path, dir, 0, &g, &errors) != 0) printf("#   %s", errors.p);
    mgw_buf_free(&errors);
    if (g) mgw_metrics_gen_prepare(g);
    return g;
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
    mgw_metrics_free();
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) return 1;
    return DONE();
}
