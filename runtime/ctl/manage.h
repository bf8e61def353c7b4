/*
 * The management listener (top-level `management`), served by the main thread:
 *   POST /reload   reloads the configuration; 200 with "FILE: reloaded (generation N)",
 *                  or 422 with every error found (the old generation keeps serving),
 *                  or 409 while another reload is under way
 *   GET /status    200 {"generation":N,"file":"..."}
 * and the client side of it that `moongate reload` and `moongate status` use.
 *
 * Every request must carry "Authorization: Bearer TOKEN" with the token of the file
 * management.token_file (default state_dir/management.token, generated when missing);
 * any other request is answered 401 before its path is looked at. The file is read on
 * every request, so replacing it rotates the token at once, and a file that cannot be
 * read refuses every request rather than serving without authentication.
 */
#ifndef MGW_MANAGE_H
#define MGW_MANAGE_H

#include <uv.h>

#include "conf/gen.h"
#include "base/pool.h"

/* Serves the listening socket fd (bound to l) on loop. */
void mgw__manage_start(uv_loop_t *loop, int fd, const mgw_listen_t *l);
/* Closes the listener and every management connection. */
void mgw__manage_close(void);

#endif
