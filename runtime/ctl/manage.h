/*
 * The management listener (top-level `management`), served on the main thread by the
 * HTTP/1 server side like any listener: its connections are client connections of the
 * main thread's worker (whose loop is the main loop), and their requests go to this
 * file's handler, the request handler of MGW_LISTEN_MANAGEMENT (gw/gw.h):
 *   POST /reload   reloads the configuration; 200 with "FILE: reloaded (generation N)",
 *                  or 422 with every error found (the old generation keeps serving),
 *                  or 409 while another reload is under way
 *   GET /status    200 {"status":"running","generation":N,"file":"..."}
 *   GET /metrics   200, the metrics in the Prometheus text format 0.0.4 (README "Metrics")
 * One request per connection. Its gateway responses (400 for a malformed request, 401,
 * 404) are the gateway's, through mgw__req_fail; no stage's access log records them.
 *
 * Every request must carry "Authorization: Bearer TOKEN" with the token of the file
 * management.token_file (default state_dir/management.token, generated when missing);
 * any other request is answered 401 before its path is looked at. The file is read on
 * every request, so replacing it rotates the token at once, and a file that cannot be
 * read refuses every request rather than serving without authentication. The client
 * side (`moongate reload`, `moongate status`) is ctl/cli.c.
 */
#ifndef MGW_MANAGE_H
#define MGW_MANAGE_H

#include "conf/gen.h"

/* What `moongate --version` and moongate_build_info say. */
#define MGW_VERSION "0.1.0"

typedef struct mgw_worker_s mgw_worker_t;

/* Serves the listening socket fd (bound to gen->management) on the main thread's worker
 * w, for gen (a reference is taken), and registers the handler of management requests.
 * Called before any worker thread starts. */
void mgw__manage_start(mgw_worker_t *w, int fd, mgw_gen_t *gen);
/* A reload swapped in gen: new management requests run on it. */
void mgw__manage_set_gen(mgw_gen_t *gen);
/* Closes the listener and every management connection (shutdown). */
void mgw__manage_close(void);
/* Once the main loop has ended: lets go of the generation. */
void mgw__manage_free(void);

#endif
