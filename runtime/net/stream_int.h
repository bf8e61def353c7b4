/*
 * What the two stream implementations (stream_tcp.c, stream_tls.c) share: stream.c holds
 * the parts they have in common (reading into shared buffers, the bytes held while the
 * owner pauses, end of stream, shutdown and close).
 */
#ifndef MGW_STREAM_INT_H
#define MGW_STREAM_INT_H

#include "net/stream.h"

/* Sets s up on loop with ops and the owner's cbs and data. */
void mgw__stream_setup(mgw_stream_t *s, uv_loop_t *loop, const mgw_stream_ops_t *ops,
                       const mgw_stream_cbs_t *cbs, void *data);
void mgw__stream_tcp_init(mgw_stream_t *s, uv_loop_t *loop, const mgw_stream_cbs_t *cbs,
                          void *data);
void mgw__stream_tls_init(mgw_stream_t *s, uv_loop_t *loop, const mgw_stream_cbs_t *cbs, void *data,
                          const mgw_stream_tls_opts_t *o);

/* Starts reading the socket with cb unless the stream is reading, stopped, paused, ended
 * or at EOF. Returns 0 or a libuv error. */
int mgw__stream_read(mgw_stream_t *s, uv_read_cb cb);
/* Stops reading the socket (the stream's state says when to start again). */
void mgw__stream_unread(mgw_stream_t *s);
/* The read_stop op of both. */
void mgw__stream_read_stop(mgw_stream_t *s);
/* Keeps n bytes at p in rb for the owner (after what is kept already). */
void mgw__stream_hold(mgw_stream_t *s, mgw_rbuf_t *rb, const char *p, size_t n);
/* Pauses (the common part of the pause op). */
void mgw__stream_pause(mgw_stream_t *s, mgw_rbuf_t *rb, const char *p, size_t n);
/* Ends a pause and hands the held bytes to the owner; returns 1 when the stream still
 * delivers afterwards (not paused again, not ended). */
int mgw__stream_unpause(mgw_stream_t *s);
/* The socket reported EOF or an error (err: UV_EOF or a libuv error): no more reading,
 * the owner hears of it. */
void mgw__stream_eof(mgw_stream_t *s, int err);
/* The save_session op of streams without sessions. */
void mgw__stream_no_session(mgw_stream_t *s, void **slot);
/* Shuts the socket's sending side once the writes are done; on_shutdown follows. */
void mgw__stream_shutdown(mgw_stream_t *s);
/* Closes the socket (idempotent); closed_cb frees what the implementation has and calls
 * mgw__stream_closed. */
void mgw__stream_close(mgw_stream_t *s, uv_close_cb closed_cb);
/* Frees the common buffers and tells the owner. */
void mgw__stream_closed(mgw_stream_t *s);

/*
 * The write queue underneath both: writes bufs to stream in order after earlier writes;
 * what the kernel takes at once is written directly; the rest goes out in one uv_write,
 * where slices of ref are sent as they are (ref is held until the write completes) and
 * every other piece is copied. Returns 0 or a libuv error.
 */
int mgw__write(uv_stream_t *stream, mgw_wq_t *q, const uv_buf_t *bufs, int nbufs, mgw_rbuf_t *ref);
/* Writes the ciphertext TLS engine t has produced to stream. */
void mgw__tls_flush(mgw_tls_t *t, uv_stream_t *stream, mgw_wq_t *q);
/* Encrypts bufs with t (one record when they fit one) and sends the result. */
int mgw__tls_send(mgw_tls_t *t, uv_stream_t *stream, mgw_wq_t *q, const uv_buf_t *bufs, int nbufs);

/* The plain TCP write op (also the TLS stream's after a plain-HTTP refusal). */
int mgw__stream_tcp_write(mgw_stream_t *s, const uv_buf_t *bufs, int n, mgw_rbuf_t *ref);

#endif
