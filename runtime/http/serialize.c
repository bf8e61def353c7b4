/* The HTTP/1.1 response serializer (see serialize.h). */
#include "http/serialize.h"

#include <string.h>

/* The reason phrases of the statuses moongate answers with itself (gateway responses, the
 * management API) and the common ones; a switch, which compiles to a jump table. */
const char *mgw_http1_reason(int status)
{
    switch (status) {
    case 100:
        return "Continue";
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 301:
        return "Moved Permanently";
    case 302:
        return "Found";
    case 304:
        return "Not Modified";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 410:
        return "Gone";
    case 413:
        return "Payload Too Large";
    case 415:
        return "Unsupported Media Type";
    case 421:
        return "Misdirected Request";
    case 422:
        return "Unprocessable Content";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    }
    return "Unknown";
}

int mgw_http1_bodyless(int status)
{
    return status < 200 || status == 204 || status == 304;
}

/* The longest reason phrase written (the table's are shorter). */
#define REASON_MAX 64

size_t mgw_http1_head_size(const mgw_http1_resp_t *h)
{
    /* status line, "date: " line, content-length or transfer-encoding, connection, end */
    size_t n = sizeof("HTTP/1.1 200 \r\n") + REASON_MAX + sizeof("date: \r\n") + strlen(h->date) +
               sizeof("content-length: 18446744073709551615\r\n") +
               sizeof("transfer-encoding: chunked\r\n") + sizeof("connection: keep-alive\r\n") + 2;
    for (int i = 0; i < h->nhdrs; i++)
        n += h->hdrs[i].name.n + h->hdrs[i].value.n + 4;
    for (int i = 0; i < h->nmore; i++)
        n += h->more[i].name.n + h->more[i].value.n + 4;
    return n;
}

static void add_headers(mgw_sbuf_t *b, const mgw_hdr_t *h, int n)
{
    for (int i = 0; i < n; i++) {
        mgw_sbuf_add(b, h[i].name.p, h[i].name.n);
        mgw_sbuf_add(b, ": ", 2);
        mgw_sbuf_add(b, h[i].value.p, h[i].value.n);
        mgw_sbuf_add(b, "\r\n", 2);
    }
}

void mgw_http1_head(mgw_sbuf_t *b, const mgw_http1_resp_t *h)
{
    int s = h->status;
    const char *why = mgw_http1_reason(s);
    size_t wn = strlen(why);
    char code[4] = {(char)('0' + s / 100 % 10), (char)('0' + s / 10 % 10), (char)('0' + s % 10),
                    ' '};
    mgw_sbuf_add(b, "HTTP/1.1 ", 9);
    mgw_sbuf_add(b, code, 4);
    mgw_sbuf_add(b, why, wn > REASON_MAX ? REASON_MAX : wn);
    mgw_sbuf_add(b, "\r\n", 2);
    add_headers(b, h->hdrs, h->nhdrs);
    mgw_sbuf_add(b, "date: ", 6);
    mgw_sbuf_adds(b, h->date);
    mgw_sbuf_add(b, "\r\n", 2);
    add_headers(b, h->more, h->nmore);
    if (h->content_length >= 0) {
        mgw_sbuf_add(b, "content-length: ", 16);
        mgw_sbuf_u64(b, (uint64_t)h->content_length);
        mgw_sbuf_add(b, "\r\n", 2);
    } else if (h->chunked) {
        mgw_sbuf_adds(b, "transfer-encoding: chunked\r\n");
    }
    if (h->close)
        mgw_sbuf_adds(b, "connection: close\r\n");
    else if (h->keep_alive)
        mgw_sbuf_adds(b, "connection: keep-alive\r\n");
    mgw_sbuf_add(b, "\r\n", 2);
}

int mgw_http1_chunk_line(char out[18], size_t n)
{
    static const char hex[] = "0123456789abcdef";
    int k = 0;
    for (int shift = 60; shift >= 0; shift -= 4)
        if ((n >> shift) || k || shift == 0) out[k++] = hex[(n >> shift) & 15];
    out[k++] = '\r';
    out[k++] = '\n';
    return k;
}
