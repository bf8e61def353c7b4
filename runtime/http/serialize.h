/*
 * The HTTP/1.1 response serializer: status lines, header blocks and chunked framing,
 * written into memory the caller reserved (no allocation, no printf). The one table of
 * reason phrases is here. http/writer.c uses it for client connections.
 */
#ifndef MGW_SERIALIZE_H
#define MGW_SERIALIZE_H

#include <stddef.h>
#include <stdint.h>

#include "base/mem.h"
#include "base/pool.h"

/* The reason phrase of status ("Unknown" for one the table lacks). */
const char *mgw_http1_reason(int status);
/* 1 when a response with status has no body (1xx, 204, 304: RFC 9112 6.3). */
int mgw_http1_bodyless(int status);

/* A response head to serialize. */
typedef struct {
    int status;
    const mgw_hdr_t *hdrs, *more; /* written in this order, as they are */
    int nhdrs, nmore;
    const char *date;       /* the Date value, written after hdrs */
    int64_t content_length; /* written when >= 0 */
    int chunked;            /* "transfer-encoding: chunked" (when content_length < 0) */
    int close;              /* "connection: close" */
    int keep_alive;         /* "connection: keep-alive" (an HTTP/1.0 client's keep-alive) */
} mgw_http1_resp_t;

/* The most bytes mgw_http1_head writes for h. */
size_t mgw_http1_head_size(const mgw_http1_resp_t *h);
/* Writes h's status line and header block, blank line included, at b. */
void mgw_http1_head(mgw_sbuf_t *b, const mgw_http1_resp_t *h);

/* The line that starts a chunk of n bytes (hex size, CRLF); returns its length (<= 18). */
int mgw_http1_chunk_line(char out[18], size_t n);
/* What ends a chunk, and what ends a chunked body. */
#define MGW_HTTP1_CHUNK_END "\r\n"
#define MGW_HTTP1_LAST_CHUNK "0\r\n\r\n"

#endif
