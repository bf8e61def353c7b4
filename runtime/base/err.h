/*
 * Error codes: a function that can fail returns 0 or a negative MGW_E* code from this one
 * table, whose second column says what a code means; the function's comment says which
 * codes it returns and when. Allocation failure is not among them: mgw_malloc aborts in
 * one place (base/mem.h).
 */
#ifndef MGW_ERR_H
#define MGW_ERR_H

#define MGW_ERRNO_MAP(XX)                                                                          \
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

#endif
