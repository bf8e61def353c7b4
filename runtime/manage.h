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

#include "gen.h"
#include "pool.h"

/* Serves the listening socket fd (bound to l) on loop. */
void mgw__manage_start(uv_loop_t *loop, int fd, const mgw_listen_t *l);
/* Closes the listener and every management connection. */
void mgw__manage_close(void);

/* The longest token a token file may hold. */
#define MGW_MANAGE_TOKEN_MAX 1024

/*
 * Reads the token of the token file path into tok (n bytes, n > MGW_MANAGE_TOKEN_MAX,
 * NUL-terminated): the file's text without its trailing white space (the newline an
 * editor adds), which must be 1 to MGW_MANAGE_TOKEN_MAX visible ASCII characters.
 * Returns the token's length, or -1 with why (naming path) in err.
 */
int mgw_manage_token_read(const char *path, char *tok, size_t n, char *err, size_t errlen);

/*
 * Makes sure the token file path exists: when it does not, creates it (and its missing
 * directories, mode 0700) with a new random token, 32 bytes from OpenSSL's CSPRNG as
 * 64 hex digits, mode 0600. Returns 0, or -1 with why in err.
 */
int mgw_manage_token_generate(const char *path, char *err, size_t errlen);

/*
 * A blocking request to a management listener at address:port (the CLI) with the
 * bearer token token. Returns the HTTP status and appends the response body to body,
 * or returns -1 and appends why the request could not be made.
 */
int mgw_manage_request(const char *address, int port, const char *token, const char *method,
                       const char *path, mgw_buf_t *body);

#endif
