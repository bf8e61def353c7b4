/*
 * Hot reload: a new generation is built by the main thread next to the running one
 * and handed to every worker, which swaps it in at request boundaries. A worker keeps
 * each generation it has used in a worker generation (gw/wgen.h): the generation, its
 * access-log writer, its policies loaded into the worker's Lua state, and the number of
 * the worker's requests that still run on it. A request takes its worker's current
 * generation when it starts and keeps it to its end; a generation that is no longer
 * current is unloaded when its last request ends.
 *
 * Triggers: SIGHUP, POST /reload on the management listener (what `moongate reload`
 * sends), and with `watch = true` a change of the configuration file or of a policy.
 */
#ifndef MGW_RELOAD_H
#define MGW_RELOAD_H

#include <uv.h>

#include "base/pool.h"
#include "conf/gen.h"
#include "gw/wgen.h"
#include "net/worker.h"

/*
 * Reload's part in the server's and the workers' lives (net/worker.h), registered after
 * the Lua state's: on the main thread the management listener, served by the main
 * thread's worker (a listener that cannot be opened fails the start), SIGHUP and the
 * file watcher; on each worker its generation, and the MGW_MSG_RELOAD messages that swap
 * in a new one.
 */
extern const mgw_worker_ops_t mgw__reload_worker_ops;

/* ---- worker side (worker thread) ---- */

/* Makes gen (one reference taken) the worker's generation; w->lua is already there. */
void mgw__reload_worker_start(mgw_worker_t *w, mgw_gen_t *gen);
/* At shutdown, once the loop has run dry: retires the current generation. */
void mgw__reload_worker_stop(mgw_worker_t *w);

/* ---- main thread ---- */

/* The generation new requests get (the main thread's view). */
const mgw_gen_t *mgw__reload_current(void);

/* The reloads since start-up that were accepted (1) or rejected (0): a configuration
 * that did not load or could not replace the running one. */
uint64_t mgw__reload_count(int accepted);

/*
 * Called with the outcome of a reload: ok, and a text for the operator (what was
 * reloaded, or every error found, one per line).
 */
typedef void (*mgw_reload_cb)(void *ud, int ok, const char *text);

/*
 * Starts a reload of the configuration file the server runs. cb is called once, when
 * every worker has swapped in the new generation or when the new generation was
 * rejected (the old one keeps serving). Returns 0, or MGW_EINVAL when a reload is
 * already under way or shutdown has begun (cb is not called).
 */
int mgw__reload_start(const char *why, mgw_reload_cb cb, void *ud);

#endif
