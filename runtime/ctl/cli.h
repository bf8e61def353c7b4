/* The client side of the management listener that `moongate reload` and `moongate status` use. */
#ifndef MGW_CLI_H
#define MGW_CLI_H

#include "base/pool.h"

/*
 * A blocking request to a management listener at address:port (the CLI) with the
 * bearer token token. Returns the HTTP status and appends the response body to body,
 * or returns -1 and appends why the request could not be made.
 */
int mgw_manage_request(const char *address, int port, const char *token, const char *method,
                       const char *path, mgw_buf_t *body);

#endif
