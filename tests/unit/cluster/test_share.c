/*
 * The share arithmetic of cluster-wide throttles (cluster/throttle.h): the demand a node
 * estimates from the takes it saw, and the tokens it returns or asks for so that its
 * share covers two ticks of that demand plus a standby, never more than the burst.
 */
#include "cluster/throttle.h"

#include "unit.h"

static void test_demand_follows_the_load(void)
{
    /* 24 takes in 100 ms are 240/s; from nothing, half of it after one tick */
    double d = mgw__thr_demand(0, 24, 100);
    CHECK(d == 120);
    d = mgw__thr_demand(d, 24, 100);
    CHECK(d == 180);
    for (int i = 0; i < 20; i++)
        d = mgw__thr_demand(d, 24, 100);
    CHECK(d > 239.9 && d < 240.1);
    /* the load stops: the estimate halves every tick, then is 0 */
    for (int i = 0; i < 20; i++)
        d = mgw__thr_demand(d, 0, 100);
    CHECK(d == 0);
    /* a longer tick (the loop was late) counts the takes over its real length */
    CHECK(mgw__thr_demand(0, 50, 500) == 50);
    CHECK(mgw__thr_demand(0, 5, 0) == 2500); /* no division by zero */
}

static void test_plan_asks_for_two_ticks_and_one(void)
{
    int64_t ret, want;
    /* 240/s, 100 ms ticks: 48 + 1 */
    mgw__thr_plan(240, 100, 1000, 1, 0, &ret, &want);
    CHECK(ret == 0 && want == 49);
    mgw__thr_plan(240, 100, 1000, 1, 30, &ret, &want);
    CHECK(ret == 0 && want == 19);
    mgw__thr_plan(240, 100, 1000, 1, 49, &ret, &want);
    CHECK(ret == 0 && want == 0);
    /* more than needed: the rest goes back */
    mgw__thr_plan(240, 100, 1000, 1, 60, &ret, &want);
    CHECK(ret == 11 && want == 0);
    /* idle: one token kept */
    mgw__thr_plan(0, 100, 1000, 1, 0, &ret, &want);
    CHECK(ret == 0 && want == 1);
    mgw__thr_plan(0, 100, 1000, 1, 7, &ret, &want);
    CHECK(ret == 6 && want == 0);
    /* a standby of 8: idle, 8 tokens kept; busy, two ticks and 8 */
    mgw__thr_plan(0, 100, 1000, 8, 0, &ret, &want);
    CHECK(ret == 0 && want == 8);
    mgw__thr_plan(240, 100, 1000, 8, 0, &ret, &want);
    CHECK(ret == 0 && want == 56);
    mgw__thr_plan(240, 100, 50, 8, 0, &ret, &want);
    CHECK(ret == 0 && want == 50);
    /* a fraction of a token rounds up */
    mgw__thr_plan(3, 100, 1000, 1, 0, &ret, &want);
    CHECK(want == 2);
}

static void test_plan_never_beyond_burst(void)
{
    int64_t ret, want;
    mgw__thr_plan(100000, 100, 50, 1, 0, &ret, &want);
    CHECK(ret == 0 && want == 50);
    mgw__thr_plan(100000, 100, 50, 1, 80, &ret, &want);
    CHECK(ret == 30 && want == 0);
    /* a bucket with no burst admits nothing: nothing to hold */
    mgw__thr_plan(100, 100, 0, 1, 0, &ret, &want);
    CHECK(ret == 0 && want == 0);
    mgw__thr_plan(100, 100, 0, 1, 2, &ret, &want);
    CHECK(ret == 2 && want == 0);
}

int main(void)
{
    RUN(test_demand_follows_the_load);
    RUN(test_plan_asks_for_two_ticks_and_one);
    RUN(test_plan_never_beyond_burst);
    return DONE();
}
