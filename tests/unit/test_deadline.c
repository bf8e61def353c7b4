/*
 * Connection deadlines on a real libuv loop: a deadline moved later runs at the later
 * time, one moved earlier at the earlier time, a cleared one never, and each runs once.
 */
#include "../../runtime/deadline.c"

#include <stdio.h>

#include "unit.h"

typedef struct {
    int runs;
    uint64_t at; /* loop time of the last run */
    mgw_deadline_t *d;
} probe_t;

static uint64_t t0;

static void on_deadline(uv_timer_t *t)
{
    probe_t *p = t->data;
    p->runs++;
    p->at = uv_now(t->loop) - t0;
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

static void close_all(uv_loop_t *loop)
{
    uv_walk(loop, (uv_walk_cb)uv_close, NULL);
    uv_run(loop, UV_RUN_DEFAULT);
    uv_loop_close(loop);
}

static void test_moved_later_runs_later(void)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    mgw_deadline_t d;
    probe_t p = {0};
    mgw_deadline_init(&loop, &d, &p);
    t0 = uv_now(&loop);
    mgw_deadline_set(&d, on_deadline, 20);
    mgw_deadline_set(&d, on_deadline, 80); /* later: the timer stays at 20 and re-arms */
    CHECK(d.fires == t0 + 20);
    while (p.runs == 0 && uv_run(&loop, UV_RUN_ONCE))
        ;
    CHECK(p.runs == 1);
    CHECK(p.at >= 80);
    if (p.at < 80) printf("#   ran at %llu ms, deadline 80 ms\n", (unsigned long long)p.at);
    uv_run(&loop, UV_RUN_NOWAIT);
    CHECK(p.runs == 1); /* once */
    CHECK(!uv_is_active((uv_handle_t *)&d.t));
    close_all(&loop);
}

static void test_moved_earlier_runs_earlier(void)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    mgw_deadline_t d;
    probe_t p = {0};
    mgw_deadline_init(&loop, &d, &p);
    t0 = uv_now(&loop);
    mgw_deadline_set(&d, on_deadline, 5000);
    mgw_deadline_set(&d, on_deadline, 30);
    while (p.runs == 0 && uv_run(&loop, UV_RUN_ONCE))
        ;
    CHECK(p.runs == 1);
    CHECK(p.at >= 30 && p.at < 5000);
    close_all(&loop);
}

static void test_cleared_never_runs(void)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    mgw_deadline_t d;
    probe_t p = {0};
    mgw_deadline_init(&loop, &d, &p);
    t0 = uv_now(&loop);
    mgw_deadline_set(&d, on_deadline, 20);
    mover_t m = {.d = &d, .move_to = 0};
    uv_timer_init(&loop, &m.t);
    uv_timer_start(&m.t, on_move, 5, 0); /* clears it after 5 ms */
    uv_run(&loop, UV_RUN_DEFAULT);       /* returns once no timer is left */
    CHECK(p.runs == 0);
    /* and a cleared deadline can be set again */
    mgw_deadline_set(&d, on_deadline, 10);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(p.runs == 1);
    close_all(&loop);
}

static void test_moved_while_armed_by_another_callback(void)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    mgw_deadline_t d;
    probe_t p = {0};
    mgw_deadline_init(&loop, &d, &p);
    t0 = uv_now(&loop);
    mgw_deadline_set(&d, on_deadline, 20);
    mover_t m = {.d = &d, .move_to = 60}; /* at 10 ms: due at 70 ms */
    uv_timer_init(&loop, &m.t);
    uv_timer_start(&m.t, on_move, 10, 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(p.runs == 1);
    CHECK(p.at >= 70);
    close_all(&loop);
}

int main(void)
{
    RUN(test_moved_later_runs_later);
    RUN(test_moved_earlier_runs_earlier);
    RUN(test_cleared_never_runs);
    RUN(test_moved_while_armed_by_another_callback);
    return DONE();
}
