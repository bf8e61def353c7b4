/*
 * Loading a configuration file: the Lua side (lua/moongate/config.lua) evaluates it in a
 * sandbox and validates it; this file turns the validated table into a generation.
 */
#ifndef MGW_CONFIG_H
#define MGW_CONFIG_H

#include "conf/gen.h"

/*
 * Loads and compiles file. prefix is the directory relative paths are resolved against.
 * With check_only, log files are not opened. Returns 0 and *out (one reference owned by
 * the caller), or MGW_ECONFIG with every error appended to errors, one per line, each
 * naming the file, the config path and the reason.
 */
int mgw_config_load(const char *file, const char *prefix, int check_only, mgw_gen_t **out,
                    mgw_buf_t *errors);

/* Where the command line finds the management listener of a configuration file. */
typedef struct {
    char address[256];
    int port;
    char token_file[1024]; /* management.token_file, resolved against the prefix */
    int token_generated;   /* token_file is the default, state_dir/management.token */
} mgw_manage_addr_t;

/*
 * Reads only the management listener of file (for `moongate reload` and `moongate
 * status`), with relative paths resolved against prefix: 0 with *out filled, or
 * MGW_ECONFIG with the reason appended to errors.
 */
int mgw_config_management(const char *file, const char *prefix, mgw_manage_addr_t *out,
                          mgw_buf_t *errors);

/*
 * Makes sure a stage with client_certificate.generate has its certificate: generates a
 * self-signed one when the files are missing. Returns 0, or -1 with the reason in err.
 */
int mgw_config_client_cert(const mgw_stage_t *st, char *err, size_t errlen);

/* Directory of the Lua modules (lua/), from MOONGATE_LUA_DIR or the build. */
const char *mgw_config_lua_dir(void);

#endif
