/*
 * Workers: N threads, each with its own libuv loop and its own SO_REUSEPORT listening
 * sockets, so that no lock is taken on the request path. The main thread owns signals
 * and reaches a worker only through the worker's mailbox (net/mailbox.h).
 *
 * What the layers above net keep per worker (the HTTP client's pools, the Lua state,
 * the worker's generation) is set up and torn down by their worker ops, registered at
 * startup in a fixed order, lowest layer first (main.c). The steps that start something
 * run the tables in that order; the steps that stop or free run them in reverse, so
 * that a layer is gone before the layers it uses.
 */
#ifndef MGW_WORKER_H
#define MGW_WORKER_H

#include <uv.h>

#include "conf/gen.h"
#include "net/mailbox.h"

typedef struct mgw_worker_s mgw_worker_t;

/*
 * One layer's part in the life of the server (main thread) and of each worker (the
 * worker's thread). Any hook may be NULL. In the order they happen:
 */
typedef struct {
    const char *name;
    /* Main thread, before the workers exist: sets up what the layer serves on the main
     * loop, main_w->loop. main_w is the main thread's worker (id 0, no thread, no
     * mailbox, no listeners of its own): a layer that serves connections on the main
     * loop (the management listener) accepts them as main_w's client connections.
     * Returns 0, or an MGW_E* code (logged) that fails the start; the layers started
     * before it are then stopped and freed. */
    int (*server_start)(mgw_worker_t *main_w, mgw_gen_t *gen);
    /* Worker thread, before its loop runs; w->gen is the generation it starts with. */
    void (*worker_start)(mgw_worker_t *w);
    /* Worker thread, shutdown has begun: the listeners are closed and connections are
     * about to be asked to finish; let go of what keeps the loop alive needlessly. */
    void (*worker_stop)(mgw_worker_t *w);
    /* Worker thread, the loop has run dry (every connection is gone): release what
     * requests used. The loop runs once more afterwards, for handles closed here. */
    void (*worker_end)(mgw_worker_t *w);
    /* Worker thread, the loop has stopped for good: free memory (no handle may be
     * touched any more). */
    void (*worker_free)(mgw_worker_t *w);
    /* Main thread, SIGTERM or SIGINT: the workers were told to shut down; close the
     * main loop's handles. */
    void (*server_stop)(void);
    /* Main thread, after every worker thread has ended. */
    void (*server_free)(void);
} mgw_worker_ops_t;

/* Adds ops (static storage) after the tables registered before it; at startup, before
 * mgw_server_run. At most 8. */
void mgw_worker_ops_register(const mgw_worker_ops_t *ops);

/*
 * Serves gen until SIGTERM or SIGINT, then shuts down gracefully. Takes over the caller's
 * reference to gen. Returns 0 after a clean shutdown, or MGW_EIO when a listener cannot
 * be opened (the reason is logged), or the code a server_start hook failed with.
 */
int mgw_server_run(mgw_gen_t *gen);

/* Opens a SO_REUSEPORT listening socket for l; returns the fd or -errno. */
int mgw__open_listener(const mgw_listen_t *l);
/* The current Date header value ("Sun, 06 Nov 1994 08:49:37 GMT") on w, cached per second. */
const char *mgw__date(mgw_worker_t *w);

/* The number of workers of the running server (main thread, from server_start on). */
int mgw_worker_count(void);

/* The client connections open on the worker threads (main thread, while the server
 * runs; the management listener's are not counted). */
uint64_t mgw_worker_open_connections(void);

/*
 * Sends msg to the mailbox of worker i (0 <= i < mgw_worker_count()); any thread, while
 * the server runs. Returns like mgw_mailbox_send: MGW_ECLOSED once the worker has begun
 * to shut down, and msg stays the caller's.
 */
int mgw_worker_send(int i, mgw_msg_t *msg);

#endif
