/*
 * Streams: a connected socket behind one ops table, with two implementations, plain TCP
 * (stream_tcp.c) and TLS over the engine of base/tls.c (stream_tls.c). The owner reads
 * plaintext through callbacks and writes plaintext with mgw_stream_write(); everything
 * that differs between the two (encryption, the handshake, close_notify, where unread
 * bytes wait while the owner pauses) stays inside the implementation, so that nothing
 * above asks whether a stream is TLS. (Redis `ConnectionType`, HAProxy `xprt_ops`.)
 *
 * Writes go through a write queue: what the kernel takes at once is written directly, the
 * rest in one uv_write; pending bytes are counted so that a producer can stop reading its
 * source above MGW_WQ_HIGH and start again when on_drained says they fell below MGW_WQ_LOW.
 */
#ifndef MGW_STREAM_H
#define MGW_STREAM_H

#include <stddef.h>
#include <uv.h>

#include "base/rbuf.h"
#include "base/tls.h"

typedef struct mgw_stream_s mgw_stream_t;
typedef struct mgw_gen_s mgw_gen_t; /* conf/gen.h */

/* Bytes written but not yet acknowledged on a socket, with hooks for when a queued write
 * completes (progress, may be NULL) and when they drain below MGW_WQ_LOW (may be NULL). */
typedef struct mgw_wq_s {
    size_t pending;
    void (*progress)(struct mgw_wq_s *q);
    void (*drained)(struct mgw_wq_s *q);
} mgw_wq_t;

/* Above this many pending bytes a producer stops reading its source. */
#define MGW_WQ_HIGH (1024 * 1024)
#define MGW_WQ_LOW (256 * 1024)

/* What a stream does; the owner calls these through the mgw_stream_* functions below. */
typedef struct mgw_stream_ops_s {
    /* Reads (again, after read_stop): bytes reach on_read unless the stream is paused.
     * Returns 0 or a libuv error. */
    int (*read_start)(mgw_stream_t *s);
    /* Stops reading from the socket until read_start (backpressure). */
    void (*read_stop)(mgw_stream_t *s);
    /* Writes plaintext, in order after earlier writes. Pieces inside ref's data may be
     * sent from it as they are (ref is held until then); the rest is copied when it
     * cannot be written at once. Returns 0 or a libuv error. */
    int (*write)(mgw_stream_t *s, const uv_buf_t *bufs, int n, mgw_rbuf_t *ref);
    /* The owner takes no bytes until resume: the n bytes at p in rb that it did not take
     * (n may be 0) wait in the stream, with what arrives meanwhile, and come first. */
    void (*pause)(mgw_stream_t *s, mgw_rbuf_t *rb, const char *p, size_t n);
    /* Hands back what waited (on_read, which may pause again) and reads on. */
    void (*resume)(mgw_stream_t *s);
    /* Ends the stream after the queued writes: stops reading, ends the session (TLS
     * close_notify) and shuts the socket's sending side; on_shutdown follows once the
     * peer has taken everything (or it failed). */
    void (*shutdown)(mgw_stream_t *s);
    /* Closes the socket now (idempotent); on_close follows. */
    void (*close)(mgw_stream_t *s);
    /* A TLS client stream keeps the session of its handshake in *slot (replacing the one
     * there) for a later connection to the same server to resume; others do nothing. */
    void (*save_session)(mgw_stream_t *s, void **slot);
} mgw_stream_ops_t;

/* What the stream tells its owner; each gets the stream (s->data is the owner's). */
typedef struct mgw_stream_cbs_s {
    /* n plaintext bytes at p inside rb; rb lives on while the owner holds a reference. */
    void (*on_read)(mgw_stream_t *s, mgw_rbuf_t *rb, const char *p, size_t n);
    /* The peer sends no more: end of stream, a socket error or a TLS close_notify
     * (s->err says which). */
    void (*on_eof)(mgw_stream_t *s);
    /* TLS: the handshake is over; t is the engine (its outcome: SNI site, client
     * certificate). May be NULL. */
    void (*on_handshake)(mgw_stream_t *s, mgw_tls_t *t);
    /* TLS: the handshake or a record failed (t: the engine, mgw_tls_error says why in
     * words and mgw_tls_failure in a label). The alert is queued already; plain_http: the
     * peer spoke plain HTTP, and writes now go out unencrypted so that the owner can
     * answer in kind. The owner ends the stream. May be NULL (TCP). */
    void (*on_refused)(mgw_stream_t *s, mgw_tls_t *t, int plain_http);
    /* A queued write completed (may be NULL). */
    void (*on_progress)(mgw_stream_t *s);
    /* The pending writes fell below MGW_WQ_LOW (may be NULL). */
    void (*on_drained)(mgw_stream_t *s);
    /* The shutdown finished or failed: the owner closes the stream. */
    void (*on_shutdown)(mgw_stream_t *s);
    /* The socket is closed and the stream's buffers freed: the owner may free s. */
    void (*on_close)(mgw_stream_t *s);
} mgw_stream_cbs_t;

/*
 * A stream. The owner embeds it (no allocation of its own of the stream's) and may read
 * tcp (the peer's address), wq.pending, paused, handshaking and gen; the other fields
 * are the implementations'.
 */
struct mgw_stream_s {
    uv_tcp_t tcp; /* tcp.data is the stream */
    const mgw_stream_ops_t *ops;
    const mgw_stream_cbs_t *cbs;
    void *data; /* the owner's */
    mgw_wq_t wq;
    mgw_rbuf_t *rbuf; /* the buffer the socket is read into */
    /* bytes the owner left or that arrived while it paused, in held_buf */
    mgw_rbuf_t *held_buf;
    const char *held;
    size_t held_len;
    int err; /* why reading ended (on_eof): UV_EOF (end of stream, close_notify) or a
              * libuv error */
    /* TLS (stream_tls.c) */
    mgw_tls_t *tls;
    mgw_rbuf_t *plain; /* the buffer being decrypted into */
    mgw_gen_t *gen;    /* what the TLS context lives in (SNI sites): held while handshaking */
    /* reading in arrival order (stream.c): the implementation's read callback, the
     * loop's reader the socket is in (NULL: libuv reads it) */
    uv_read_cb read_cb;
    struct mgw_reader_s *reader;
    /* stopped: read_stop; done: no more reading (shut down or closing); missed: the
     * socket may hold bytes no event will announce (reading stopped meanwhile) */
    unsigned reading : 1, stopped : 1, paused : 1, eof : 1, done : 1, closing : 1, handshaking : 1,
        missed : 1;
};

/* What makes a stream TLS: a server engine on ctx, or with host a client engine. */
typedef struct {
    mgw_tls_ctx_t *ctx;     /* NULL: a plain TCP stream */
    mgw_gen_t *gen;         /* ctx's generation, held until the handshake ends (may be NULL) */
    mgw_tls_check_cb check; /* asked about client certificates (may be NULL) */
    void *check_ud;
    /* A client stream (a connection the runtime opens): the server's certificate must name
     * host, which also goes out as SNI unless it is an IP literal; session (may be NULL)
     * is one to resume (mgw_stream_save_session). The ClientHello goes out with the first
     * read_start, once the socket is connected. */
    const char *host;
    void *session;
} mgw_stream_tls_opts_t;

/*
 * Initializes s on loop (a TCP handle, not yet connected): TLS when tls->ctx is set,
 * else plain TCP. cbs get s; data goes to s->data. Close it with mgw_stream_close even
 * when nothing was accepted into it.
 */
void mgw_stream_init(mgw_stream_t *s, uv_loop_t *loop, const mgw_stream_cbs_t *cbs, void *data,
                     const mgw_stream_tls_opts_t *tls);
/* Accepts a connection of server into s (TCP_NODELAY on). Returns 0 or a libuv error. */
int mgw_stream_accept(mgw_stream_t *s, uv_stream_t *server);
/* Connects s (initialized, nothing accepted) to addr with req; cb follows, and finds s at
 * req->handle->data. Returns 0 or a libuv error (cb does not run then). */
int mgw_stream_connect(mgw_stream_t *s, uv_connect_t *req, const struct sockaddr *addr,
                       uv_connect_cb cb);

static inline int mgw_stream_read_start(mgw_stream_t *s)
{
    return s->ops->read_start(s);
}
static inline void mgw_stream_read_stop(mgw_stream_t *s)
{
    s->ops->read_stop(s);
}
static inline int mgw_stream_write(mgw_stream_t *s, const uv_buf_t *bufs, int n, mgw_rbuf_t *ref)
{
    return s->ops->write(s, bufs, n, ref);
}
static inline void mgw_stream_pause(mgw_stream_t *s, mgw_rbuf_t *rb, const char *p, size_t n)
{
    s->ops->pause(s, rb, p, n);
}
static inline void mgw_stream_resume(mgw_stream_t *s)
{
    s->ops->resume(s);
}
static inline void mgw_stream_shutdown(mgw_stream_t *s)
{
    s->ops->shutdown(s);
}
static inline void mgw_stream_close(mgw_stream_t *s)
{
    s->ops->close(s);
}
static inline void mgw_stream_save_session(mgw_stream_t *s, void **slot)
{
    s->ops->save_session(s, slot);
}

#endif
