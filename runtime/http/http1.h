/*
 * HTTP/1.x parsing (llhttp lives only in http1.c). One parser per client connection for
 * requests and one per upstream connection for responses; the owner gets callbacks.
 */
#ifndef MGW_HTTP1_H
#define MGW_HTTP1_H

#include <stddef.h>
#include <stdint.h>

typedef struct mgw_http1_s mgw_http1_t;

typedef struct {
    const char *method; /* requests: static string, e.g. "GET" */
    int major, minor;
    int status;     /* responses */
    int keepalive;  /* the peer allows another message on this connection */
    int has_length; /* a Content-Length was given */
    uint64_t content_length;
    int chunked;
    int expect_continue; /* requests: "Expect: 100-continue" (parsed by the owner) */
} mgw_http1_head_t;

typedef struct {
    int (*on_message_begin)(void *ud);
    int (*on_url)(void *ud, const char *p, size_t n);
    int (*on_header_field)(void *ud, const char *p, size_t n);
    int (*on_header_value)(void *ud, const char *p, size_t n);
    /* Returns 0, 1 to skip the body (response to HEAD), or -1 to fail the parse. */
    int (*on_headers_complete)(void *ud, const mgw_http1_head_t *head);
    int (*on_body)(void *ud, const char *p, size_t n);
    /* Returns 0, or MGW_HTTP1_PAUSE to stop after this message. */
    int (*on_message_complete)(void *ud);
} mgw_http1_cbs_t;

enum { MGW_HTTP1_OK = 0, MGW_HTTP1_PAUSE = 1, MGW_HTTP1_ERROR = -1 };

/* A parser for requests (is_request) or responses, calling cbs with ud. */
mgw_http1_t *mgw_http1_create(int is_request, const mgw_http1_cbs_t *cbs, void *ud);
void mgw_http1_destroy(mgw_http1_t *p);

/*
 * Feeds n bytes. Returns MGW_HTTP1_OK (all consumed), MGW_HTTP1_PAUSE (a callback paused;
 * *consumed bytes were used, the rest must be fed again after mgw_http1_resume), or
 * MGW_HTTP1_ERROR (see mgw_http1_error).
 */
int mgw_http1_execute(mgw_http1_t *p, const char *data, size_t n, size_t *consumed);
void mgw_http1_resume(mgw_http1_t *p);
/* Signals EOF (ends a close-delimited response body). Returns OK or ERROR. */
int mgw_http1_finish(mgw_http1_t *p);
/* Why the last execute failed (a static string). */
const char *mgw_http1_error(const mgw_http1_t *p);
/* A token character's lower-case form, 0 for any byte that is not one (RFC 9110 5.6.2). */
extern const unsigned char mgw_http1_tchar[256];
/* 1 when p (n bytes, n > 0) is an HTTP token (a method or a header name). */
int mgw_http1_is_token(const char *p, size_t n);
/* 1 when p (n bytes) may be a header value: no CR, LF or NUL. */
int mgw_http1_is_value(const char *p, size_t n);

#endif
