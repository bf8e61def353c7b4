/*
 * The response writer: how the request core reaches its client. The core (phases,
 * integrations, gateway responses) says what the response is; a writer, chosen by the
 * protocol the request arrived with, says it on the wire. HTTP/1's is in http/writer.c;
 * nothing in gw/ writes a protocol's bytes.
 *
 * Integrations and policies do not call the writer themselves: they call mgw__resp_head,
 * mgw__resp_body, mgw__resp_flush and mgw__resp_end (gw/req_int.h), which keep the
 * request's account ($context.status, responseLength) and add the gateway's own headers.
 */
#ifndef MGW_WRITER_H
#define MGW_WRITER_H

#include <stddef.h>
#include <stdint.h>

#include "base/mem.h"
#include "base/rbuf.h"

typedef struct mgw_req_s mgw_req_t;

typedef struct mgw_writer_ops_s {
    /*
     * Starts the response: status, the response's own headers (hdrs), then the gateway's
     * (more: request id, throttling), both lists left as they are. content_length < 0
     * means a body of unknown length, streamed. The writer may hold the head back until
     * body bytes or the end go with it (one write for a small response); it sets
     * r->head_method when status allows no body.
     */
    void (*head)(mgw_req_t *r, int status, const mgw_hdr_t *hdrs, int nhdrs, const mgw_hdr_t *more,
                 int nmore, int64_t content_length);
    /* n > 0 body bytes; slices of ref go out without a copy (ref is held until written),
     * anything else is copied if it cannot be written at once. */
    void (*body)(mgw_req_t *r, const char *p, size_t n, mgw_rbuf_t *ref);
    /* Sends a held-back head now (the body is not there yet). */
    void (*flush)(mgw_req_t *r);
    /* Ends the response. The connection goes on to its next request or closes, and may
     * free r before this returns. */
    void (*end)(mgw_req_t *r);
    /* The request's body is about to be read: a client that waits for a go-ahead before
     * sending it gets one (HTTP/1.1 "100 Continue"). */
    void (*want_body)(mgw_req_t *r);
    /* The response cannot be finished (it started; the integration failed, or the client
     * is too slow): the client sees it cut short. The connection is closed and r freed. */
    void (*abort)(mgw_req_t *r);
    /* $context values only the protocol knows (connectionId, eventType, ...): 1 when it
     * has one. May be NULL (none). */
    int (*lookup)(mgw_req_t *r, int var, mgw_str_t arg, mgw_str_t *out);
} mgw_writer_ops_t;

#endif
