/* Error codes: one X-macro table gives the codes, their names and their messages. */
#ifndef MGW_ERR_H
#define MGW_ERR_H

#define MGW_ERRNO_MAP(XX)                                                                          \
    XX(NOMEM, "out of memory")                                                                     \
    XX(INVAL, "invalid argument")                                                                  \
    XX(NOTFOUND, "not found")                                                                      \
    XX(TOOBIG, "limit exceeded")                                                                   \
    XX(PARSE, "malformed input")                                                                   \
    XX(IO, "input/output error")                                                                   \
    XX(CONFIG, "configuration error")                                                              \
    XX(TIMEDOUT, "timed out")                                                                      \
    XX(CLOSED, "connection closed")

enum {
    MGW_OK = 0,
#define XX(code, _) MGW_E##code,
    MGW__EFIRST = -100,
    MGW_ERRNO_MAP(XX)
#undef XX
};

/* Returns the message for an MGW_E* code (never NULL). */
const char *mgw_strerror(int err);
/* Returns the symbolic name ("MGW_ENOTFOUND") for an MGW_E* code (never NULL). */
const char *mgw_err_name(int err);

#endif
