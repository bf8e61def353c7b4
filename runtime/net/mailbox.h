/*
 * Mailboxes: how any thread reaches a loop it does not run. A mailbox belongs to one
 * libuv loop (a worker's); any thread sends it messages, and the loop's thread runs
 * them in the order they were sent, from one uv_async_t callback. The queue's lock is
 * taken only by senders and by that callback, never on the request path.
 *
 * A message is an mgw_msg_t with a type; what a type does is an entry in the message
 * kind table, filled in at startup by the layer that owns the type (reload.c registers
 * MGW_MSG_RELOAD). A new kind of message is a new type here and one registration, not a
 * new async handle.
 */
#ifndef MGW_MAILBOX_H
#define MGW_MAILBOX_H

#include <uv.h>

typedef struct mgw_mailbox_s mgw_mailbox_t;

/* The message types, one entry each in the kind table. */
enum {
    MGW_MSG_SHUTDOWN, /* stop accepting, finish what runs, end the loop (worker.c) */
    MGW_MSG_RELOAD,   /* swap in a new generation, data: the mgw_gen_t (ctl/reload.c) */
    MGW_MSG_WS_CALL,  /* an @connections operation, data: the mgw_ws_call_t (ws/) */
    MGW_MSG_WS_REPLY, /* its outcome, back on the caller's loop (ws/) */
    MGW_MSG_JWKS,     /* a fetch of JWT keys ended, data: the key source (auth/) */
    MGW_MSG_CLUSTER,  /* a function to run on the main loop (cluster/cluster.h) */
    MGW_MSG_ASK,      /* a request's call to Redis answered, back on its worker (cluster/ask.h) */
    MGW_MSG__COUNT
};

typedef struct mgw_msg_s {
    struct mgw_msg_s *next; /* the mailbox's while queued */
    int type;               /* MGW_MSG_* */
    void *data;
} mgw_msg_t;

/*
 * What a type of message does. run is called on the mailbox's loop with the owner given
 * to mgw_mailbox_create; drop is called instead for a message that was queued but is
 * not run because the mailbox closed first. Either one takes the message over: it frees
 * what msg and msg->data hold (the sender allocated them).
 */
typedef struct {
    const char *name;
    void (*run)(void *owner, mgw_msg_t *msg);
    void (*drop)(mgw_msg_t *msg);
} mgw_msg_kind_t;

/*
 * Makes kind (static storage, both functions set) what messages of type do. Called at
 * startup, before any thread sends, by the layer that owns the type.
 */
void mgw_mailbox_kind(int type, const mgw_msg_kind_t *kind);

/*
 * A new, open mailbox on loop (initialized on the thread that runs loop, or before
 * that thread starts). owner is what the kinds' run functions receive. The async
 * handle it adds keeps loop alive until mgw_mailbox_close.
 */
mgw_mailbox_t *mgw_mailbox_create(uv_loop_t *loop, void *owner);

/*
 * Queues msg for the mailbox's loop; any thread. Returns 0, and the mailbox owns msg
 * until its kind runs or drops it; or MGW_ECLOSED when the mailbox is closed, or
 * MGW_EINVAL when msg's type has no kind, and msg stays the caller's.
 */
int mgw_mailbox_send(mgw_mailbox_t *mb, mgw_msg_t *msg);

/*
 * Closes mb, on its loop's thread (a kind's run may close the mailbox that runs it):
 * later sends are refused, and the messages still queued, including the rest of a batch
 * being run, are dropped. The async handle is closed; the mailbox's memory stays until
 * mgw_mailbox_free, so that late senders are refused rather than write to freed memory.
 */
void mgw_mailbox_close(mgw_mailbox_t *mb);

/*
 * Frees a closed mailbox, once its loop has run the handle's close and no thread can
 * send to it any more (its senders have been joined or stopped).
 */
void mgw_mailbox_free(mgw_mailbox_t *mb);

#endif
