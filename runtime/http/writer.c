/*
 * The response writer of HTTP/1 client connections (see writer.h). Framing follows the
 * request: a body of unknown length is chunked for an HTTP/1.1 client and delimited by
 * closing the connection for an HTTP/1.0 one; a status without a body gets neither a
 * length nor a body, and a closing connection (its request, shutdown) says so.
 */
#include "http/writer.h"

#include "gw/gw.h"
#include "gw/req_int.h"
#include "http/otlp.h"
#include "http/proxy.h"
#include "http/serialize.h"
#include "http/server.h"
#include "net/conn.h"
#include "net/worker.h"

/*
 * Builds the response head in the request arena and holds it back: it goes out in one
 * write with the first body bytes or the end of the response (flush sends it alone), so
 * a small response costs one system call.
 */
static void head(mgw_req_t *r, int status, const mgw_hdr_t *hdrs, int nhdrs, const mgw_hdr_t *more,
                 int nmore, int64_t content_length)
{
    mgw_conn_t *c = r->c;
    int bodyless = mgw_http1_bodyless(status);
    if (content_length < 0 && !bodyless) {
        if (r->minor >= 1 || !r->head_done)
            r->resp_chunked = 1;
        else
            r->resp_close = 1;
    }
    if (c->w->shutting_down) r->keepalive = 0;
    mgw_http1_resp_t h = {
        .status = status,
        .hdrs = hdrs,
        .nhdrs = nhdrs,
        .more = more,
        .nmore = nmore,
        .date = mgw__date(c->w),
        .content_length = bodyless ? -1 : content_length,
        .chunked = r->resp_chunked,
        .close = !r->keepalive || r->resp_close,
        .keep_alive = r->minor == 0,
    };
    mgw_sbuf_t b = {mgw_pool_alloc(r->pool, mgw_http1_head_size(&h)), 0};
    mgw_http1_head(&b, &h);
    r->head_out = (mgw_str_t){b.p, b.n};
    r->head_pending = 1;
    if (bodyless) r->head_method = 1; /* nothing may follow the head */
}

/* Writes bufs (slices of ref need no copy), after the held-back head if any. */
static void send_out(mgw_req_t *r, const uv_buf_t *bufs, int n, mgw_rbuf_t *ref)
{
    uv_buf_t all[6];
    int k = 0;
    if (r->head_pending) {
        all[k++] = uv_buf_init((char *)r->head_out.p, (unsigned)r->head_out.n);
        r->head_pending = 0;
    }
    for (int i = 0; i < n && k < 6; i++)
        all[k++] = bufs[i];
    if (k) mgw__conn_write(r->c, all, k, ref);
}

static void flush(mgw_req_t *r)
{
    if (r->head_pending) send_out(r, NULL, 0, NULL);
}

static void body(mgw_req_t *r, const char *p, size_t n, mgw_rbuf_t *ref)
{
    if (r->resp_chunked) {
        /* chunk framing is copied, the payload is not */
        char line[18];
        int ln = mgw_http1_chunk_line(line, n);
        uv_buf_t bufs[3] = {uv_buf_init(line, (unsigned)ln), uv_buf_init((char *)p, (unsigned)n),
                            uv_buf_init(MGW_HTTP1_CHUNK_END, 2)};
        send_out(r, bufs, 3, ref);
        return;
    }
    uv_buf_t b = uv_buf_init((char *)p, (unsigned)n);
    send_out(r, &b, 1, ref);
}

static void end(mgw_req_t *r)
{
    if (r->resp_chunked && !r->head_method) {
        uv_buf_t b = uv_buf_init(MGW_HTTP1_LAST_CHUNK, sizeof(MGW_HTTP1_LAST_CHUNK) - 1);
        send_out(r, &b, 1, NULL);
    } else {
        flush(r);
    }
    mgw__conn_response_done(r->c);
}

/* "100 Continue" for an HTTP/1.1 client that waits for it before sending the body. */
static void want_body(mgw_req_t *r)
{
    mgw_str_t expect = mgw__req_header(r, "expect");
    if (expect.p && mgw_str_ieq(expect, "100-continue") && r->minor >= 1) {
        static const char line[] = "HTTP/1.1 100 Continue\r\n\r\n";
        uv_buf_t b = uv_buf_init((char *)line, sizeof(line) - 1);
        mgw__conn_write(r->c, &b, 1, NULL);
    }
}

static void abort_response(mgw_req_t *r)
{
    mgw__conn_close(r->c);
}

const mgw_writer_ops_t mgw_http1_writer = {
    .head = head,
    .body = body,
    .flush = flush,
    .end = end,
    .want_body = want_body,
    .abort = abort_response,
};

void mgw_http_register(void)
{
    mgw_gw_set_writer(&mgw_http1_writer);
    mgw_gw_set_integration(MGW_INTEG_HTTP, &mgw__proxy_integration);
    mgw__otlp_register();
}
