/*
 * The management token file (management.token_file): read on every management request
 * (ctl/manage.c) and by the CLI, made by the configuration when missing (conf/config.c).
 */
#ifndef MGW_TOKEN_H
#define MGW_TOKEN_H

#include <stddef.h>

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

#endif
