/*
 * Client connections: a stream (plain TCP or TLS, stream.h) plus a protocol handler (the
 * HTTP/1 server of http/server.c today; WebSocket next). The connection owns the stream,
 * the timers, the TLS handshake's outcome and its place in the worker's list; the handler
 * owns what the bytes mean. An upgrade swaps the handler and keeps everything else.
 *
 * The layers above reach a connection through this header; the connection reaches them
 * only through the handler's ops and the callbacks registered at startup
 * (mgw_conn_set_accept_handler, mgw_conn_set_cert_check).
 */
#ifndef MGW_CONN_H
#define MGW_CONN_H

#include "base/deadline.h"
#include "gw/req_int.h"
#include "net/stream.h"

/*
 * A protocol handler. Every entry gets the connection; c->proto_data is the handler's
 * state. All are required unless said otherwise.
 */
typedef struct mgw_proto_ops_s {
    const char *name;
    /* A new connection starts with this handler (the accept handler): set up
     * c->proto_data. A handler an upgrade hands the connection to gets it too, with
     * c->proto_data set already: it starts its timers. */
    void (*accept)(mgw_conn_t *c);
    /* n plaintext bytes at p inside rb (a reference holds rb beyond the call). A handler
     * that cannot take more pauses the stream: mgw_stream_pause(&c->stream, rb, rest, len). */
    void (*on_data)(mgw_conn_t *c, mgw_rbuf_t *rb, const char *p, size_t n);
    /* The client sends no more (c->eof is set). The handler closes, or lets what is under
     * way finish first. */
    void (*on_eof)(mgw_conn_t *c);
    /* The TLS handshake failed (logged already); plain_http: the client spoke plain HTTP,
     * and what the handler writes now goes out unencrypted. The connection closes after
     * the writes once this returns. */
    void (*on_tls_refused)(mgw_conn_t *c, int plain_http);
    /* The connection's deadline (mgw__conn_arm_timer) passed. Returns 1 when the handler
     * dealt with it, 0 to have the connection closed. */
    int (*on_timeout)(mgw_conn_t *c);
    /* A queued write to the client completed. */
    void (*on_progress)(mgw_conn_t *c);
    /* The client's pending writes fell below MGW_WQ_LOW. */
    void (*on_drained)(mgw_conn_t *c);
    /* The worker shuts down gracefully: close when idle, or after what is under way. */
    void (*on_shutdown)(mgw_conn_t *c);
    /* The connection closes now: drop what runs on it. */
    void (*on_close)(mgw_conn_t *c);
    /* The connection's handles are closed: free c->proto_data. */
    void (*free)(mgw_conn_t *c);
} mgw_proto_ops_t;

struct mgw_conn_s {
    mgw_stream_t stream;
    mgw_deadline_t timer; /* header, body, idle and send timeouts */
    mgw_worker_t *w;
    int listen_idx; /* the listener, as an index into every generation's listen[] */
    /* the protocol handler and its state */
    const mgw_proto_ops_t *proto;
    void *proto_data;
    mgw_rbuf_t *rbuf; /* the buffer the handler is parsing: slices of it go on by reference */
    mgw_req_t *req;   /* the request under way (HTTP/1), or NULL */
    /* an upgrade accepted (http/server.c mgw_http_upgrade): the handler that takes the
     * connection over once the request under way has ended */
    const mgw_proto_ops_t *upgrade;
    void *upgrade_data;
    mgw_conn_t *next, *prev;
    char peer[64];
    int handles;
    /* TLS: the handshake's outcome, kept for the connection's life */
    mgw_pool_t *tls_pool;           /* tls_host and client_cert */
    const char *tls_host;           /* the domain the SNI chose (its checks passed), or NULL */
    mgw_client_cert_t *client_cert; /* the verified client certificate, or NULL */
    /* done: no further request will be read (closing or closing after the writes);
     * tls: the handshake is over (x-forwarded-proto); hs_counted: its outcome is counted */
    unsigned closing : 1, done : 1, eof : 1, tls : 1, hs_counted : 1;
};

/*
 * The handler every accepted connection starts with, and the check of client
 * certificates on mutual-TLS sites (its ud is the connection). Set once at startup,
 * before any worker runs, by the layers that implement them (main.c wires them).
 */
void mgw_conn_set_accept_handler(const mgw_proto_ops_t *ops);
void mgw_conn_set_cert_check(mgw_tls_check_cb check);

/* Accepts a connection of listener server (index listen_idx) on worker w. */
void mgw__conn_accept(mgw_worker_t *w, uv_stream_t *server, int listen_idx);
/*
 * Hands c over to another handler (an upgrade): the stream, the timers and the TLS state
 * stay. The old handler's state is its own to free; data becomes c->proto_data. Bytes the
 * old handler read past its end go to the new one's on_data by the caller.
 */
void mgw__conn_set_handler(mgw_conn_t *c, const mgw_proto_ops_t *ops, void *data);
/* Writes bufs to the client (see mgw_stream_write). */
int mgw__conn_write(mgw_conn_t *c, const uv_buf_t *bufs, int nbufs, mgw_rbuf_t *ref);
/* Stops reading from the client (producer backpressure) / starts again. */
void mgw__conn_block_read(mgw_conn_t *c);
void mgw__conn_unblock_read(mgw_conn_t *c);
/* Closes a connection (idempotent); the handler drops what runs on it. */
void mgw__conn_close(mgw_conn_t *c);
/* Closes after everything queued has been written; nothing more is read. */
void mgw__conn_close_after_write(mgw_conn_t *c);
/* Graceful shutdown: the handler closes c when it is idle, or after what is under way. */
void mgw__conn_shutdown(mgw_conn_t *c);
/* The connection's deadline: on_timeout runs ms from now (moving an earlier one). */
void mgw__conn_arm_timer(mgw_conn_t *c, uint64_t ms);
/*
 * Nothing is under way (between two requests, or closing after the writes): while the
 * client still has part of a response to take, timeouts.send bounds each wait for it to
 * take more; the idle timeout starts once it has taken everything.
 */
void mgw__conn_arm_output_timer(mgw_conn_t *c);

#endif
