/*
 * The HTTP/1 client: every outgoing HTTP request of the runtime goes through it (proxy
 * integrations in proxy.c, moongate.http in lua/ffi_http.c, the CLI's management calls in
 * ctl/cli.c).
 *
 * A pool (mgw_hc_pool_t, one per event loop: a worker's, or the CLI's) holds the origins
 * it has talked to, keyed by host, port and TLS identity, each with its idle keep-alive
 * connections (up to 64, for 30 s) and its last TLS session. A request (mgw_hc_req_t) is
 * memory the caller owns, as with libuv's requests: it fills in the origin, the serialized
 * request head and the callbacks, starts it with mgw_hc_start(), may stream a body with
 * mgw_hc_write() / mgw_hc_write_end(), and hears back through the callbacks: the response
 * head, body chunks (straight from the read buffer, with the buffer for zero-copy
 * forwarding), and then exactly one of on_end or on_error, after which the client no
 * longer touches the request. mgw_hc_abort() ends it early without a callback. The
 * consumer of the body can pause and resume reading (backpressure), with a bound on how
 * long it may stay paused.
 *
 * A connection is a net/ stream: plain TCP, or TLS with a client engine that verifies the
 * server against the request's client context (mgw_tls_client_ctx_new: a CA file or the
 * system store, and an optional client certificate), sends SNI and checks the host name
 * or IP address. Response heads are parsed by http1.c (llhttp).
 */
#ifndef MGW_HTTP_CLIENT_H
#define MGW_HTTP_CLIENT_H

#include "base/rbuf.h"
#include "base/tls.h"
#include "conf/path.h"
#include "gw/req_int.h"
#include "http/http1.h"
#include "net/stream.h"

typedef struct mgw_hc_pool_s mgw_hc_pool_t;
typedef struct mgw_hc_req_s mgw_hc_req_t;
typedef struct mgw_hc_conn_s mgw_hc_conn_t;

/* Why a request failed (on_error); the detail text says more. */
typedef enum {
    MGW_HC_OK = 0,
    MGW_HC_ERESOLVE, /* the host name did not resolve (detail: libuv's words) */
    MGW_HC_ECONNECT, /* the TCP connection failed (detail: libuv's words) */
    MGW_HC_ETLS,     /* the TLS handshake or a record failed (detail: OpenSSL's reason) */
    MGW_HC_ECLOSED,  /* the server closed the connection before the response ended */
    MGW_HC_EREAD,    /* reading failed, e.g. a reset (detail: libuv's words) */
    MGW_HC_EPROTO,   /* not a valid HTTP response, or a callback refused it (detail: why) */
    MGW_HC_ETIMEOUT, /* no response head, or no body bytes, within timeout_ms (or total_ms) */
    MGW_HC_ESTALLED, /* paused longer than mgw_hc_pause allowed */
} mgw_hc_err_t;

typedef struct {
    /*
     * The final response's head (interim 1xx responses are skipped). hdrs and their bytes
     * are q->pool memory, writable, kept until the pool goes. Returns 0, 1 when no body
     * follows whatever the head says (a response to HEAD), or -1 to refuse the response
     * (the request fails with MGW_HC_EPROTO).
     */
    int (*on_head)(mgw_hc_req_t *q, const mgw_http1_head_t *head, mgw_hdr_t *hdrs, int nhdrs);
    /* Body bytes, inside the read buffer ref (which a writer may hold for zero copy).
     * Returns 0, or -1 to refuse the response (MGW_HC_EPROTO). */
    int (*on_body)(mgw_hc_req_t *q, const char *p, size_t n, mgw_rbuf_t *ref);
    /* Optional: a batch of response bytes has been parsed and more may take a while
     * (a consumer that holds back writes sends them now). */
    void (*on_flush)(mgw_hc_req_t *q);
    /* The response is complete; its connection is back in the pool or closed. Last call. */
    void (*on_end)(mgw_hc_req_t *q);
    /* The request failed (kind, and detail: words valid during the call). Last call. */
    void (*on_error)(mgw_hc_req_t *q, mgw_hc_err_t kind, const char *detail);
    /* Optional: the request may take more body bytes (the connection became ready, or the
     * bytes written drained below MGW_WQ_LOW after mgw_hc_write returned 1). */
    void (*on_drain)(mgw_hc_req_t *q);
} mgw_hc_cbs_t;

struct mgw_hc_req_s {
    /* ---- set by the caller, on zeroed memory (mgw_hc_build fills in pool, host, port,
     * head, head_only and replayable; the caller adds tls, tls_id, the timeouts and the
     * callbacks) ---- */
    mgw_pool_t *pool;    /* the response head's memory */
    const char *host;    /* NUL-terminated name or IP literal; also SNI and the name checked */
    int port;            /* the origin's port */
    mgw_tls_ctx_t *tls;  /* https: the client context; NULL for http */
    const char *tls_id;  /* https: names tls's identity; equal ids share pooled connections */
    mgw_str_t head;      /* the request head (and a fixed body after it), kept until the end */
    uint64_t timeout_ms; /* for the response head, then between body reads (0: 1 ms) */
    uint64_t total_ms;   /* 0, or a bound on the whole exchange */
    unsigned body_follows : 1; /* the body comes through mgw_hc_write / mgw_hc_write_end */
    unsigned chunked : 1;      /* ...and is sent in chunks (the head says so) */
    unsigned head_only : 1;    /* the response has no body (a HEAD request) */
    unsigned replayable : 1;   /* idempotent and without a streamed body: sent again, once,
                                * on a new connection when a pooled one turns out closed */
    const mgw_hc_cbs_t *cbs;
    void *data; /* the caller's */

    /* ---- the client's (read-only for the caller) ---- */
    mgw_hc_conn_t *conn; /* the connection serving it, NULL once it ended */
    int uv_error;        /* the libuv error behind a failure, when there is one (else 0) */
    mgw_buf_t early;     /* body bytes written before the connection was ready */
    char *rhead;         /* response head bytes (pool), and the headers pointing into them */
    size_t rhead_len, rhead_cap;
    mgw_hdr_t *rhdrs;
    int nrhdrs, hstate;
    uint64_t end_at; /* loop time that total_ms ends at, or 0 */
    unsigned body_done : 1, got_bytes : 1, retried : 1, interim : 1, got_head : 1, keepalive : 1;
};

/* A pool for loop. Never returns NULL. */
mgw_hc_pool_t *mgw_hc_pool_new(uv_loop_t *loop);
/* Closes the idle connections; with draining, connections that finish later close too
 * instead of going idle (shutdown). */
void mgw_hc_pool_close_idle(mgw_hc_pool_t *p, int draining);
/* Frees the pool once the loop has closed all its connections (p may be NULL). */
void mgw_hc_pool_free(mgw_hc_pool_t *p);
/*
 * The pool's client context that verifies servers against ca_file (NULL: the system
 * store), created on first use and kept with the pool. Returns NULL with the reason in
 * err when the file cannot be loaded.
 */
mgw_tls_ctx_t *mgw_hc_pool_tls(mgw_hc_pool_t *p, const char *ca_file, char *err, size_t errlen);
/* What a pool did so far. */
typedef struct {
    uint64_t opened;  /* connections opened */
    uint64_t reused;  /* requests served by a pooled connection */
    uint64_t resumed; /* TLS handshakes that resumed the origin's session */
} mgw_hc_stats_t;
void mgw_hc_pool_stats(const mgw_hc_pool_t *p, mgw_hc_stats_t *out);

/*
 * Fills in q for method and url (http or https; tls: the context for https) with the
 * given headers and a fixed body (NULL for none): host, port and the serialized head in
 * pool. host, content-length, connection and transfer-encoding headers are the client's
 * and are skipped. Returns NULL, or why the request cannot be sent (a bad method or header).
 */
const char *mgw_hc_build(mgw_hc_req_t *q, mgw_pool_t *pool, mgw_str_t method, const mgw_url_t *url,
                         const mgw_hdr_t *hdrs, int nhdrs, mgw_str_t body);

/*
 * Sends q on a pooled connection of its origin or a new one. Returns 0 (the callbacks
 * follow; none runs inside this call except on_drain), or -1 when it failed at once: no
 * callback runs, kind and detail are set (*kind may be NULL).
 */
int mgw_hc_start(mgw_hc_pool_t *p, mgw_hc_req_t *q, mgw_hc_err_t *kind, const char **detail);
/* Body bytes, after mgw_hc_start (ref: the read buffer they lie in, or NULL: they are
 * copied if need be; bytes that come before the connection is ready are kept and sent
 * then). Returns 1 when the writer should wait for on_drain before writing more, else 0. */
int mgw_hc_write(mgw_hc_req_t *q, const char *p, size_t n, mgw_rbuf_t *ref);
/* The body is complete. */
void mgw_hc_write_end(mgw_hc_req_t *q);
/* Stops reading the response; when it is not resumed within stall_ms, on_error says
 * MGW_HC_ESTALLED. While paused, calling it again restarts that clock. */
void mgw_hc_pause(mgw_hc_req_t *q, uint64_t stall_ms);
/* Reads the response again (and restarts the body timeout when it was paused). */
void mgw_hc_resume(mgw_hc_req_t *q);
int mgw_hc_paused(const mgw_hc_req_t *q);
/* Ends q now: its connection closes, no callback runs. Harmless after the end. */
void mgw_hc_abort(mgw_hc_req_t *q);

#endif
