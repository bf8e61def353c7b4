/* Labelled per-thread counters: series found again by their label values, cells summed
 * over threads (workers and a thread that is neither), the exposition, the null series. */
#include <pthread.h>

#include "base/stat.c"
#include "unit.h"

static mgw_stat_family_t conns = {.name = "t_connections_total",
                                  .type = "counter",
                                  .help = "Connections.",
                                  .labels = {"origin", "outcome"}};
static mgw_stat_family_t open_g = {
    .name = "t_open", .type = "gauge", .help = "Open.", .labels = {NULL}};

static void *worker(void *arg)
{
    mgw_stat_thread((int)(intptr_t)arg);
    const char *v[] = {"http://a:1", "ok"};
    mgw_stat_t s = mgw_stat_series(&conns, v);
    for (int i = 0; i < 100000; i++)
        mgw_stat_add(s, 1);
    return NULL;
}

static void *other(void *arg)
{
    (void)arg; /* not a counting thread: adds atomically to the shared cell */
    const char *v[] = {"http://a:1", "ok"};
    for (int i = 0; i < 1000; i++)
        mgw_stat_inc(&conns, v);
    return NULL;
}

static void test_threads_sum(void)
{
    mgw_stat_init(3);
    pthread_t t[3];
    pthread_create(&t[0], NULL, worker, (void *)1);
    pthread_create(&t[1], NULL, worker, (void *)2);
    pthread_create(&t[2], NULL, other, NULL);
    for (int i = 0; i < 3; i++)
        pthread_join(t[i], NULL);
    const char *v[] = {"http://a:1", "ok"};
    mgw_stat_t s = mgw_stat_series(&conns, v);
    CHECK(s == 1);
    CHECK(mgw_stat_value(s) == 201000);
    const char *w[] = {"http://a:1", "refused"};
    CHECK(mgw_stat_series(&conns, w) == 2);
    mgw_stat_t g = mgw_stat_series(&open_g, NULL);
    mgw_stat_add(g, 3);
    mgw_stat_add(g, -1);
    CHECK(mgw_stat_value(g) == 2);
    mgw_buf_t b = {0};
    mgw_stat_render(&b);
    CHECK_STR(b.p, "# HELP t_connections_total Connections.\n"
                   "# TYPE t_connections_total counter\n"
                   "t_connections_total{origin=\"http://a:1\",outcome=\"ok\"} 201000\n"
                   "t_connections_total{origin=\"http://a:1\",outcome=\"refused\"} 0\n"
                   "# HELP t_open Open.\n"
                   "# TYPE t_open gauge\n"
                   "t_open 2\n");
    mgw_buf_free(&b);
    mgw_stat_free();
}

/* Before mgw_stat_init (a unit test of another layer) and past the limit: the null
 * series, which counts nothing and is never rendered. */
static void test_null_and_full(void)
{
    const char *v[] = {"x", "y"};
    CHECK(mgw_stat_series(&conns, v) == 0);
    mgw_stat_add(0, 5);
    mgw_stat_init(1);
    char name[16];
    const char *vals[] = {name, "z"};
    mgw_stat_t last = 0;
    for (int i = 0; i < MGW_STAT_MAX + 5; i++) {
        snprintf(name, sizeof(name), "o%d", i);
        mgw_stat_t s = mgw_stat_series(&conns, vals);
        if (s) last = s;
        mgw_stat_add(s, 1);
    }
    CHECK(last == MGW_STAT_MAX - 1); /* handles 1 .. MAX - 1 */
    snprintf(name, sizeof(name), "o%d", 5);
    CHECK(mgw_stat_value(mgw_stat_series(&conns, vals)) == 1);
    CHECK(mgw_stat_value(0) == 0);
    mgw_stat_free();
}

/* A label value longer than the lookup's stack buffer. */
static void test_long_value(void)
{
    mgw_stat_init(1);
    char big[2000];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = 0;
    const char *v[] = {big, "ok"};
    mgw_stat_t s = mgw_stat_series(&conns, v);
    mgw_stat_add(s, 7);
    CHECK(s != 0 && mgw_stat_series(&conns, v) == s && mgw_stat_value(s) == 7);
    mgw_stat_free();
}

int main(void)
{
    RUN(test_threads_sum);
    RUN(test_null_and_full);
    RUN(test_long_value);
    return DONE();
}
