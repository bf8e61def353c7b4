/*
 * Workers: N threads, each with its own libuv loop and its own SO_REUSEPORT listening
 * sockets, so that no lock is taken on the request path. The main thread owns signals.
 */
#ifndef MGW_WORKER_H
#define MGW_WORKER_H

#include "conf/gen.h"

/*
 * Serves gen until SIGTERM or SIGINT, then shuts down gracefully. Takes over the caller's
 * reference to gen. Returns 0 after a clean shutdown, or MGW_EIO when a listener cannot
 * be opened (the reason is logged).
 */
int mgw_server_run(mgw_gen_t *gen);

#endif
