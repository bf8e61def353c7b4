/*
 * Mailboxes (see mailbox.h): a FIFO list under a mutex, and a uv_async_t that wakes the
 * loop. Senders append and signal; the async callback takes the whole list at once and
 * runs it outside the lock, so a kind's run may send again (to this mailbox or another)
 * without deadlock. libuv coalesces signals: a message appended while the callback runs
 * is taken by the next callback, which that send's own signal guarantees.
 */
#include "net/mailbox.h"

#include <stdlib.h>

#include "base/err.h"
#include "base/mem.h"

struct mgw_mailbox_s {
    uv_async_t async;
    void *owner;
    uv_mutex_t lock; /* guards head, tail and closed against senders */
    mgw_msg_t *head, *tail;
    int closed; /* written only by the loop's thread, under lock */
};

/* Filled in at startup, read-only once threads send. */
static const mgw_msg_kind_t *kinds[MGW_MSG__COUNT];

void mgw_mailbox_kind(int type, const mgw_msg_kind_t *kind)
{
    if (type < 0 || type >= MGW_MSG__COUNT) abort();
    kinds[type] = kind;
}

static void drop_all(mgw_msg_t *m)
{
    while (m) {
        mgw_msg_t *next = m->next;
        m->next = NULL;
        kinds[m->type]->drop(m);
        m = next;
    }
}

static void async_cb(uv_async_t *a)
{
    mgw_mailbox_t *mb = a->data;
    uv_mutex_lock(&mb->lock);
    mgw_msg_t *m = mb->head;
    mb->head = mb->tail = NULL;
    uv_mutex_unlock(&mb->lock);
    while (m) {
        if (mb->closed) { /* a message of this batch closed the mailbox */
            drop_all(m);
            return;
        }
        mgw_msg_t *next = m->next;
        m->next = NULL;
        kinds[m->type]->run(mb->owner, m);
        m = next;
    }
}

mgw_mailbox_t *mgw_mailbox_create(uv_loop_t *loop, void *owner)
{
    mgw_mailbox_t *mb = mgw_calloc(1, sizeof(*mb));
    mb->owner = owner;
    uv_mutex_init(&mb->lock);
    uv_async_init(loop, &mb->async, async_cb);
    mb->async.data = mb;
    return mb;
}

int mgw_mailbox_send(mgw_mailbox_t *mb, mgw_msg_t *msg)
{
    if (msg->type < 0 || msg->type >= MGW_MSG__COUNT || kinds[msg->type] == NULL) return MGW_EINVAL;
    msg->next = NULL;
    uv_mutex_lock(&mb->lock);
    if (mb->closed) {
        uv_mutex_unlock(&mb->lock);
        return MGW_ECLOSED;
    }
    if (mb->tail)
        mb->tail->next = msg;
    else
        mb->head = msg;
    mb->tail = msg;
    /* Under the lock, so that close cannot close the handle in between. */
    uv_async_send(&mb->async);
    uv_mutex_unlock(&mb->lock);
    return 0;
}

void mgw_mailbox_close(mgw_mailbox_t *mb)
{
    if (mb->closed) return;
    uv_mutex_lock(&mb->lock);
    mb->closed = 1;
    mgw_msg_t *m = mb->head;
    mb->head = mb->tail = NULL;
    uv_mutex_unlock(&mb->lock);
    uv_close((uv_handle_t *)&mb->async, NULL);
    drop_all(m);
}

void mgw_mailbox_free(mgw_mailbox_t *mb)
{
    if (mb == NULL) return;
    uv_mutex_destroy(&mb->lock);
    free(mb);
}
