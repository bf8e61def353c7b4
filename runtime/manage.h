/*
 * The management listener (top-level `management`), served by the main thread:
 *   POST /reload   reloads the configuration; 200 with "FILE: reloaded (generation N)",
 *                  or 422 with every error found (the old generation keeps serving),
 *                  or 409 while another reload is under way
 *   GET /status    200 {"generation":N,"file":"..."}
 * and the client side of it that `moongate reload` uses.
 */
#ifndef MGW_MANAGE_H
#define MGW_MANAGE_H

#include <uv.h>

#include "gen.h"
#include "pool.h"

/* Serves the listening socket fd (bound to l) on loop. */
void mgw__manage_start(uv_loop_t *loop, int fd, const mgw_listen_t *l);
/* Closes the listener and every management connection. */
void mgw__manage_close(void);

/*
 * A blocking request to a management listener at address:port (the CLI). Returns the
 * HTTP status and appends the response body to body, or returns -1 and appends why the
 * request could not be made.
 */
int mgw_manage_request(const char *address, int port, const char *method, const char *path,
                       mgw_buf_t *body);

#endif
