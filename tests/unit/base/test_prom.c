/* The Prometheus text exposition writer: escaping, family headers, samples, histograms. */
#include "base/prom.c"
#include "unit.h"

static void test_escape(void)
{
    mgw_buf_t b = {0};
    const char v[] = "a\\b\"c\nd";
    mgw_prom_escape(&b, v, sizeof(v) - 1);
    CHECK_STR(b.p, "a\\\\b\\\"c\\nd");
    b.n = 0;
    mgw_prom_escape(&b, "plain GET /x", 12);
    CHECK_STR(b.p, "plain GET /x");
    b.n = 0;
    mgw_prom_escape(&b, "\"\"", 2); /* only specials */
    CHECK_STR(b.p, "\\\"\\\"");
    mgw_buf_free(&b);
}

static void test_labels_and_samples(void)
{
    mgw_buf_t lb = {0}, b = {0};
    mgw_prom_label(&lb, "api", "shop");
    mgw_prom_label(&lb, "route", "GET /q\"x\\");
    CHECK_STR(lb.p, "api=\"shop\",route=\"GET /q\\\"x\\\\\"");
    mgw_prom_u64(&b, "m_total", lb.p, lb.n, 18446744073709551615ULL);
    mgw_prom_u64(&b, "g", "", 0, 0);
    mgw_prom_nano(&b, "s", "", 0, 1250000000);
    mgw_prom_nano(&b, "s", "", 0, 7);
    mgw_prom_i64(&b, "i", "", 0, -86400);
    mgw_prom_i64(&b, "i", "", 0, 42);
    CHECK_STR(b.p, "m_total{api=\"shop\",route=\"GET /q\\\"x\\\\\"} 18446744073709551615\n"
                   "g 0\n"
                   "s 1.250000000\n"
                   "s 0.000000007\n"
                   "i -86400\n"
                   "i 42\n");
    mgw_buf_free(&lb);
    mgw_buf_free(&b);
}

static void test_family(void)
{
    mgw_buf_t b = {0};
    mgw_prom_family(&b, "x_total", "counter", "Lines \\ and\nbreaks \"kept\".");
    CHECK_STR(b.p, "# HELP x_total Lines \\\\ and\\nbreaks \"kept\".\n# TYPE x_total counter\n");
    mgw_buf_free(&b);
}

static void test_histogram(void)
{
    static const char *const le[] = {"0.1", "1"};
    const uint64_t counts[] = {2, 0, 3}; /* two <= 0.1, none in (0.1, 1], three above */
    mgw_buf_t b = {0};
    mgw_prom_histogram(&b, "d_seconds", "api=\"a\"", 7, le, 2, counts, 4500000000ULL);
    CHECK_STR(b.p, "d_seconds_bucket{api=\"a\",le=\"0.1\"} 2\n"
                   "d_seconds_bucket{api=\"a\",le=\"1\"} 2\n"
                   "d_seconds_bucket{api=\"a\",le=\"+Inf\"} 5\n"
                   "d_seconds_sum{api=\"a\"} 4.500000000\n"
                   "d_seconds_count{api=\"a\"} 5\n");
    b.n = 0;
    const uint64_t none[] = {0, 0, 0};
    mgw_prom_histogram(&b, "h", "", 0, le, 2, none, 0);
    CHECK_STR(b.p, "h_bucket{le=\"0.1\"} 0\n"
                   "h_bucket{le=\"1\"} 0\n"
                   "h_bucket{le=\"+Inf\"} 0\n"
                   "h_sum 0.000000000\n"
                   "h_count 0\n");
    mgw_buf_free(&b);
}

int main(void)
{
    RUN(test_escape);
    RUN(test_labels_and_samples);
    RUN(test_family);
    RUN(test_histogram);
    return DONE();
}
