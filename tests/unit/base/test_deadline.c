/*
 * Connection deadlines on a real libuv loop: a deadline moved later runs at the later
 * time, one moved earlier at the earlier time, a cleared one never, and each runs once.
 */
#include "base/deadline.c"

#include <stdio.h>

#include "unit.h"

/* A loop with one deadline, and what its callback saw. */
typedef struct {
    uv_loop_t loop;
    mgw_deadline_t d;
    int runs;
    uint64_t t0, at; /* loop time at the start; of the last run, from t0 */
} fixture_t;

static void on_deadline(uv_timer_t *t)
{
    fixture_t *f = t->data;
    f->runs++;
    f->at = uv_now(t->loop) - f->t0;
}

static void setup(fixture_t *f)
{
    *f = (fixture_t){0};
    uv_loop_init(&f->loop);
    mgw_deadline_init(&f->loop, &f->d, f);
    f->t0 = uv_now(&f->loop);
}

/* Runs the loop until the deadline's callback has run or nothing is left to run. */
static void run_until_fired(fixture_t *f)
{
    while (f->runs == 0 && uv_run(&f->loop, UV_RUN_ONCE))
        ;
}

/* A helper timer that moves or clears a deadline part-way through. */
typedef struct {
    uv_timer_t t;
    mgw_deadline_t *d;
    uint64_t move_to; /* 0: clear */
} mover_t;

static void on_move(uv_timer_t *t)
{
    mover_t *m = (mover_t *)t;
    if (m->move_to)
        mgw_deadline_set(m->d, on_deadline, m->move_to);
    else
        mgw_deadline_clear(m->d);
}

static void close_one(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h)) uv_close(h, NULL);
}

static void teardown(fixture_t *f)
{
    uv_walk(&f->loop, close_one, NULL);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    CHECK(uv_loop_close(&f->loop) == 0);
}

static void test_moved_later_runs_later(void)
{
    fixture_t f;
    setup(&f);
    mgw_deadline_set(&f.d, on_deadline, 20);
    mgw_deadline_set(&f.d, on_deadline, 80); /* later: the timer stays at 20 and re-arms */
    CHECK(f.d.fires == f.t0 + 20);
    run_until_fired(&f);
    CHECK(f.runs == 1);
    CHECK(f.at >= 80);
    if (f.at < 80) printf("#   ran at %llu ms, deadline 80 ms\n", (unsigned long long)f.at);
    uv_run(&f.loop, UV_RUN_NOWAIT);
    CHECK(f.runs == 1); /* once */
    CHECK(!uv_is_active((uv_handle_t *)&f.d.t));
    teardown(&f);
}

static void test_moved_earlier_runs_earlier(void)
{
    fixture_t f;
    setup(&f);
    mgw_deadline_set(&f.d, on_deadline, 5000);
    mgw_deadline_set(&f.d, on_deadline, 30);
    run_until_fired(&f);
    CHECK(f.runs == 1);
    CHECK(f.at >= 30 && f.at < 5000);
    teardown(&f);
}

static void test_cleared_never_runs(void)
{
    fixture_t f;
    setup(&f);
    mgw_deadline_set(&f.d, on_deadline, 20);
    mover_t m = {.d = &f.d, .move_to = 0};
    uv_timer_init(&f.loop, &m.t);
    uv_timer_start(&m.t, on_move, 5, 0); /* clears it after 5 ms */
    uv_run(&f.loop, UV_RUN_DEFAULT);     /* returns once no timer is left */
    CHECK(f.runs == 0);
    /* and a cleared deadline can be set again */
    mgw_deadline_set(&f.d, on_deadline, 10);
    uv_run(&f.loop, UV_RUN_DEFAULT);
    CHECK(f.runs == 1);
    teardown(&f);
}

static void test_moved_while_armed_by_another_callback(void)
{
    fixture_t f;
    setup(&f);
    mgw_deadline_set(&f.d, on_deadline, 20);
    mover_t m = {.d = &f.d, .move_to = 60}; /* at 10 ms: due at 70 ms */
    uv_timer_init(&f.loop, &m.t);
    uv_timer_start(&m.t, on_move, 10, 0);
    uv_run(&f.loop, UV_RUN_DEFAULT);
    CHECK(f.runs == 1);
    CHECK(f.at >= 70);
    teardown(&f);
}

int main(void)
{
    RUN(test_moved_later_runs_later);
    RUN(test_moved_earlier_runs_earlier);
    RUN(test_cleared_never_runs);
    RUN(test_moved_while_armed_by_another_callback);
    return DONE();
}
