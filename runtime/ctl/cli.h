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

/*
 * `moongate jwt check TOKEN --api A --authorizer N -c FILE [-p DIR]`: loads FILE (as
 * `moongate check` does) and checks TOKEN with the JWT authorizer N of API A step by step
 * (auth/jwt.h mgw_jwt_check_cli), printing to stdout; a remote JWK Set is fetched on the
 * CLI's own loop. Returns the exit status: 0 when the token passes, 1 when it fails or
 * the configuration has no such authorizer (said on stderr).
 */
int mgw_cli_jwt_check(const char *file, const char *prefix, const char *api, const char *name,
                      const char *token);

#endif
