/*
 * Mailboxes: messages sent from several threads at once all arrive on the receiving loop,
 * each exactly once and in the order its sender sent them; a kind's run may send again;
 * a closed mailbox refuses messages (they stay the sender's), and what was queued when it
 * closed, or what followed the message that closed it in the same batch, is dropped, not
 * run, and released (the ASan build checks that nothing leaks).
 */
#include "net/mailbox.c"

#include <stdatomic.h>
#include <stdint.h>

#include "base/err.h"
#include "unit.h"

#define SENDERS 4
#define PER_SENDER 10000

typedef struct {
    mgw_msg_t msg; /* first: run and drop get &m->msg */
    int sender, seq;
} test_msg_t;

static struct {
    mgw_mailbox_t *mb;
    uv_timer_t guard;
    int next[SENDERS]; /* the seq each sender's next message must have */
    int received, out_of_order, bad_sender, dropped, runs;
    int close_after; /* run closes the mailbox when received reaches it (0: never) */
    int resend;      /* run sends this many more messages, one from each run */
} T;
static atomic_int refused; /* sends the sender threads saw refused */

static void test_run(void *owner, mgw_msg_t *msg)
{
    test_msg_t *m = (test_msg_t *)msg;
    T.runs++;
    if (owner != &T) T.bad_sender++;
    if (m->sender < 0 || m->sender >= SENDERS) {
        T.bad_sender++;
    } else {
        if (m->seq != T.next[m->sender]) T.out_of_order++;
        T.next[m->sender] = m->seq + 1;
    }
    free(m);
    T.received++;
    if (T.resend > 0) {
        T.resend--;
        test_msg_t *again = mgw_calloc(1, sizeof(*again));
        again->msg.type = MGW_MSG_RELOAD;
        again->seq = T.next[0];
        if (mgw_mailbox_send(T.mb, &again->msg) != 0) free(again);
    }
    if (T.close_after && T.received == T.close_after) {
        mgw_mailbox_close(T.mb);
        uv_close((uv_handle_t *)&T.guard, NULL);
    }
}

static void test_drop(mgw_msg_t *msg)
{
    T.dropped++;
    free(msg);
}

static const mgw_msg_kind_t test_kind = {"test", test_run, test_drop};

static void reset(uv_loop_t *loop)
{
    memset(&T, 0, sizeof(T));
    mgw_mailbox_kind(MGW_MSG_RELOAD, &test_kind);
    T.mb = mgw_mailbox_create(loop, &T);
}

static int send_one(int sender, int seq)
{
    test_msg_t *m = mgw_calloc(1, sizeof(*m));
    m->msg.type = MGW_MSG_RELOAD;
    m->sender = sender;
    m->seq = seq;
    int rc = mgw_mailbox_send(T.mb, &m->msg);
    if (rc != 0) free(m);
    return rc;
}

static void sender_main(void *arg)
{
    int id = (int)(intptr_t)arg;
    for (int i = 0; i < PER_SENDER; i++)
        if (send_one(id, i) != 0) atomic_fetch_add(&refused, 1);
}

/* A lost message would keep the loop running for ever: give up after 30 s. */
static void guard_cb(uv_timer_t *t)
{
    printf("#   timed out with %d of %d messages received\n", T.received, T.close_after);
    mgw_mailbox_close(T.mb);
    uv_close((uv_handle_t *)t, NULL);
}

static void test_senders_on_several_threads(void)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    reset(&loop);
    T.close_after = SENDERS * PER_SENDER;
    uv_timer_init(&loop, &T.guard);
    uv_timer_start(&T.guard, guard_cb, 30000, 0);
    uv_thread_t threads[SENDERS];
    for (int i = 0; i < SENDERS; i++)
        uv_thread_create(&threads[i], sender_main, (void *)(intptr_t)i);
    uv_run(&loop, UV_RUN_DEFAULT);
    for (int i = 0; i < SENDERS; i++)
        uv_thread_join(&threads[i]);
    CHECK(T.received == SENDERS * PER_SENDER);
    CHECK(T.out_of_order == 0);
    CHECK(T.bad_sender == 0);
    for (int i = 0; i < SENDERS; i++)
        CHECK(T.next[i] == PER_SENDER); /* all of them, and none twice */
    CHECK(T.dropped == 0 && atomic_load(&refused) == 0);
    CHECK(uv_loop_close(&loop) == 0);
    mgw_mailbox_free(T.mb);
}

/* A kind's run sends to the mailbox that runs it: no deadlock, and it arrives next. */
static void test_run_sends_again(void)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    reset(&loop);
    uv_timer_init(&loop, &T.guard);
    uv_timer_start(&T.guard, guard_cb, 30000, 0);
    T.resend = 5;
    T.close_after = 6;
    CHECK(send_one(0, 0) == 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(T.received == 6 && T.next[0] == 6 && T.out_of_order == 0);
    CHECK(T.dropped == 0);
    CHECK(uv_loop_close(&loop) == 0);
    mgw_mailbox_free(T.mb);
}

static void test_send_after_close_is_refused(void)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    reset(&loop);
    mgw_mailbox_close(T.mb);
    mgw_mailbox_close(T.mb); /* closing twice is harmless */
    test_msg_t m = {.msg = {.type = MGW_MSG_RELOAD}};
    CHECK(mgw_mailbox_send(T.mb, &m.msg) == MGW_ECLOSED);
    CHECK(m.msg.next == NULL); /* left alone: still the caller's */
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(T.runs == 0 && T.dropped == 0);
    CHECK(uv_loop_close(&loop) == 0);
    mgw_mailbox_free(T.mb);
}

static void test_type_without_kind_is_refused(void)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    reset(&loop);
    kinds[MGW_MSG_SHUTDOWN] = NULL;
    test_msg_t m = {.msg = {.type = MGW_MSG_SHUTDOWN}};
    CHECK(mgw_mailbox_send(T.mb, &m.msg) == MGW_EINVAL);
    m.msg.type = MGW_MSG__COUNT;
    CHECK(mgw_mailbox_send(T.mb, &m.msg) == MGW_EINVAL);
    m.msg.type = -1;
    CHECK(mgw_mailbox_send(T.mb, &m.msg) == MGW_EINVAL);
    mgw_mailbox_close(T.mb);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(T.runs == 0 && T.dropped == 0);
    CHECK(uv_loop_close(&loop) == 0);
    mgw_mailbox_free(T.mb);
}

/* Messages queued when the mailbox closes are dropped, never run. */
static void test_close_drops_what_is_queued(void)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    reset(&loop);
    for (int i = 0; i < 100; i++)
        CHECK(send_one(1, i) == 0);
    mgw_mailbox_close(T.mb); /* before the loop ran */
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(T.runs == 0);
    CHECK(T.dropped == 100);
    CHECK(uv_loop_close(&loop) == 0);
    mgw_mailbox_free(T.mb);
}

/* A message that closes the mailbox: the rest of its batch is dropped, not run. */
static void test_close_from_a_run_drops_the_rest(void)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    reset(&loop);
    uv_timer_init(&loop, &T.guard); /* closed by the run that closes the mailbox */
    T.close_after = 3;
    for (int i = 0; i < 10; i++)
        CHECK(send_one(2, i) == 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(T.runs == 3 && T.next[2] == 3);
    CHECK(T.dropped == 7);
    CHECK(send_one(2, 10) == MGW_ECLOSED);
    CHECK(uv_loop_close(&loop) == 0);
    mgw_mailbox_free(T.mb);
}

int main(void)
{
    RUN(test_senders_on_several_threads);
    RUN(test_run_sends_again);
    RUN(test_send_after_close_is_refused);
    RUN(test_type_without_kind_is_refused);
    RUN(test_close_drops_what_is_queued);
    RUN(test_close_from_a_run_drops_the_rest);
    return DONE();
}
