#include "cluster/ask.h"

#include <stdlib.h>
#include <string.h>

#include "base/mem.h"
#include "gw/req_int.h"

static void unref(mgw_ask_t *a)
{
    if (atomic_fetch_sub_explicit(&a->refs, 1, memory_order_acq_rel) != 1) return;
    if (a->ops->free) a->ops->free(a);
    free(a);
}

/* ---- on the worker ---- */

static void answer_run(void *owner, mgw_msg_t *msg)
{
    (void)owner;
    mgw_ask_t *a = msg->data;
    /* done may end the request, whose pool's cleanup then lets go of a too */
    if (a->r) a->ops->done(a->r, a);
    unref(a);
}

static void answer_drop(mgw_msg_t *msg)
{
    unref(msg->data);
}

static const mgw_msg_kind_t answer_kind = {"cluster-ask", answer_run, answer_drop};

/* The request ended (its pool's cleanup): an answer that comes now finds nobody. */
static void unwait(void *data)
{
    mgw_ask_t *a = data;
    a->r = NULL;
    unref(a);
}

/* ---- on the main loop ---- */

static struct {
    mgw_ask_t *head, *tail; /* waiting for Redis, in order of sending: one bound for all */
    uv_timer_t bound;
    int started, armed;
} X;

static uint64_t now_ms(void)
{
    return uv_now(mgw_cluster_loop());
}

static void unlink_ask(mgw_ask_t *a)
{
    mgw_ask_t **p = &X.head, *prev = NULL;
    while (*p && *p != a)
        prev = *p, p = &(*p)->next;
    if (*p == NULL) return;
    *p = a->next;
    if (X.tail == a) X.tail = prev;
    a->next = NULL;
}

/* Sends a's answer to its worker, once. */
static void answer(mgw_ask_t *a, int outcome)
{
    a->answered = 1;
    a->outcome = outcome;
    a->msg = (mgw_msg_t){.type = MGW_MSG_ASK, .data = a};
    if (mgw_mailbox_send(a->reply_to, &a->msg) != 0) unref(a);
}

static void arm(void);

static void bound_cb(uv_timer_t *timer)
{
    (void)timer;
    X.armed = 0;
    uint64_t now = now_ms();
    while (X.head && X.head->deadline_ms <= now) {
        mgw_ask_t *a = X.head;
        unlink_ask(a);
        answer(a, MGW_ASK_LATE);
    }
    arm();
}

static void arm(void)
{
    if (X.armed || X.head == NULL) return;
    uint64_t now = now_ms();
    uv_timer_start(&X.bound, bound_cb, X.head->deadline_ms > now ? X.head->deadline_ms - now : 0,
                   0);
    X.armed = 1;
}

void mgw_ask_replied(const mgw_redis_reply_t *reply, void *ud)
{
    mgw_ask_t *a = ud;
    if (!a->answered) {
        unlink_ask(a);
        if (reply) a->ops->keep(a, reply);
        answer(a, reply ? MGW_ASK_ANSWERED : MGW_ASK_LATE);
    }
    unref(a); /* the call's */
}

static void send_main(void *ud)
{
    mgw_ask_t *a = ud;
    if (!X.started || a->ops->send(a) != 0) {
        unref(a); /* no call: its reference */
        answer(a, MGW_ASK_DOWN);
        return;
    }
    a->deadline_ms = now_ms() + mgw_cluster_conf()->sync_interval_ms;
    if (X.tail)
        X.tail->next = a;
    else
        X.head = a;
    X.tail = a;
    arm();
}

/* ---- the worker's side ---- */

int mgw_ask_start(mgw_req_t *r, mgw_ask_t *a)
{
    a->r = r;
    a->reply_to = r->from.w->mailbox;
    atomic_init(&a->refs, 3);
    if (!mgw_cluster_up() || mgw_cluster_post(send_main, a) != 0) {
        if (a->ops->free) a->ops->free(a);
        free(a);
        return -1;
    }
    /* the answer is handled on this thread, so after this */
    mgw_pool_cleanup_add(r->pool, unwait, a);
    return 0;
}

/* ---- commands nobody waits for ---- */

typedef struct {
    int argc;
    char **argv;
    size_t *lens;
} send_t;

static void send_free(send_t *s)
{
    for (int i = 0; i < s->argc; i++)
        free(s->argv[i]);
    free(s->argv);
    free(s->lens);
    free(s);
}

static void send_cmd_main(void *ud)
{
    send_t *s = ud;
    mgw_cluster_cmd(NULL, NULL, s->argc, (const char **)s->argv, s->lens);
    send_free(s);
}

void mgw_cluster_send(int argc, const char **argv, const size_t *lens)
{
    if (!mgw_cluster_up()) return;
    send_t *s = mgw_calloc(1, sizeof(*s));
    s->argc = argc;
    s->argv = mgw_calloc((size_t)argc, sizeof(*s->argv));
    s->lens = mgw_calloc((size_t)argc, sizeof(*s->lens));
    for (int i = 0; i < argc; i++) {
        s->lens[i] = lens ? lens[i] : strlen(argv[i]);
        s->argv[i] = mgw_malloc(s->lens[i] + 1);
        memcpy(s->argv[i], argv[i], s->lens[i]);
        s->argv[i][s->lens[i]] = 0;
    }
    if (mgw_cluster_post(send_cmd_main, s) != 0) send_free(s);
}

/* ---- the part ---- */

static int start(const mgw_gen_t *g)
{
    (void)g;
    uv_timer_init(mgw_cluster_loop(), &X.bound);
    X.started = 1;
    return 0;
}

static void stop(void)
{
    /* The workers have ended: nothing waits for these answers any more. */
    while (X.head) {
        mgw_ask_t *a = X.head;
        unlink_ask(a);
        answer(a, MGW_ASK_LATE);
    }
    if (X.started) uv_close((uv_handle_t *)&X.bound, NULL);
    X.started = X.armed = 0;
}

const mgw_cluster_part_t mgw_cluster_ask_part = {
    .name = "ask",
    .start = start,
    .stop = stop,
};

void mgw_cluster_ask_register(void)
{
    mgw_mailbox_kind(MGW_MSG_ASK, &answer_kind);
}
