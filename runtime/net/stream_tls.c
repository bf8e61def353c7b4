/*
 * The TLS stream: the engine of base/tls.c over memory buffers, between the socket and
 * the owner. Ciphertext read from the socket is fed to the engine and the plaintext it
 * yields goes to the owner; plaintext the owner writes is encrypted and the ciphertext
 * goes out through the write queue. The only TLS read loop and the only flush of the
 * runtime are here: for client connections (server engines) and for the connections the
 * HTTP client opens (client engines).
 */
#include <string.h>

#include "conf/gen.h"
#include "net/stream_int.h"

/* ---- writing ---- */

/* Sends the ciphertext a TLS engine produced (handshake messages, records, alerts). */
void mgw__tls_flush(mgw_tls_t *t, uv_stream_t *stream, mgw_wq_t *q)
{
    char buf[16384 + 1024];
    size_t n;
    while ((n = mgw_tls_pending(t, buf, sizeof(buf))) > 0) {
        uv_buf_t b = uv_buf_init(buf, (unsigned)n);
        mgw__write(stream, q, &b, 1, NULL);
    }
}

int mgw__tls_send(mgw_tls_t *t, uv_stream_t *stream, mgw_wq_t *q, const uv_buf_t *bufs, int nbufs)
{
    /* Pieces that fit one TLS record (head, chunk framing, body) are encrypted as one: a
     * record per piece would cost a header, a MAC and a cipher call each. */
    size_t total = 0;
    for (int i = 0; i < nbufs; i++)
        total += bufs[i].len;
    if (nbufs > 1 && total <= 16384) {
        char one[16384];
        size_t off = 0;
        for (int i = 0; i < nbufs; i++) {
            memcpy(one + off, bufs[i].base, bufs[i].len);
            off += bufs[i].len;
        }
        if (mgw_tls_write(t, one, off) != MGW_TLS_OK) return UV_EPROTO;
    } else {
        for (int i = 0; i < nbufs; i++)
            if (mgw_tls_write(t, bufs[i].base, bufs[i].len) != MGW_TLS_OK) return UV_EPROTO;
    }
    mgw__tls_flush(t, stream, q);
    return 0;
}

static void flush(mgw_stream_t *s)
{
    mgw__tls_flush(s->tls, (uv_stream_t *)&s->tcp, &s->wq);
}

/* The bytes are encrypted, so slices of ref are never sent as they are. */
static int tls_write(mgw_stream_t *s, const uv_buf_t *bufs, int n, mgw_rbuf_t *ref)
{
    (void)ref;
    return mgw__tls_send(s->tls, (uv_stream_t *)&s->tcp, &s->wq, bufs, n);
}

/* ---- reading ---- */

static const mgw_stream_ops_t plain_ops;

/* The handshake is over: the owner takes what it needs of it, then the generation the
 * SNI sites live in is let go. */
static void established(mgw_stream_t *s)
{
    s->handshaking = 0;
    if (s->cbs->on_handshake) s->cbs->on_handshake(s, s->tls);
    mgw_gen_unref(s->gen);
    s->gen = NULL;
}

/* A handshake or record failed: the alert goes out, or, when the peer spoke plain HTTP,
 * nothing does and the owner's writes go out unencrypted from now on (its answer). */
static void refused(mgw_stream_t *s)
{
    int plain_http = mgw_tls_plain_http(s->tls);
    if (plain_http)
        s->ops = &plain_ops;
    else
        flush(s);
    if (s->cbs->on_refused) s->cbs->on_refused(s, s->tls, plain_http);
}

/* Decrypts what arrived (n may be 0: drain what the engine holds) and hands it on. */
static void tls_read(mgw_stream_t *s, const char *p, size_t n)
{
    if (n) mgw_tls_feed(s->tls, p, n);
    while (!s->done && !s->paused) {
        if (s->plain == NULL || s->plain->refs > 1) {
            mgw__rbuf_unref(s->plain);
            s->plain = mgw__rbuf_new();
        }
        ssize_t got = mgw_tls_read(s->tls, s->plain->data, s->plain->cap);
        if (s->handshaking && mgw_tls_handshake_done(s->tls)) established(s);
        if (got > 0) {
            mgw_rbuf_t *rb = s->plain;
            mgw__rbuf_ref(rb);
            s->cbs->on_read(s, rb, rb->data, (size_t)got);
            mgw__rbuf_unref(rb);
            continue;
        }
        if (got == MGW_TLS_WANT) break;
        if (got == MGW_TLS_CLOSED) {
            mgw__stream_eof(s, UV_EOF);
            return;
        }
        refused(s);
        return;
    }
    if (s->plain && s->plain->refs == 1) {
        mgw__rbuf_unref(s->plain); /* an idle connection holds no plaintext buffer */
        s->plain = NULL;
    }
    if (!s->closing) flush(s);
}

static void read_cb(uv_stream_t *u, ssize_t nread, const uv_buf_t *buf)
{
    (void)buf;
    mgw_stream_t *s = u->data;
    if (nread == 0) return;
    if (nread < 0) {
        mgw__stream_eof(s, (int)nread);
        return;
    }
    tls_read(s, s->rbuf->data, (size_t)nread);
    if (s->rbuf && s->rbuf->refs == 1) {
        mgw__rbuf_unref(s->rbuf); /* the engine copied it: back to the spare buffers */
        s->rbuf = NULL;
    }
}

static int tls_read_start(mgw_stream_t *s)
{
    s->stopped = 0;
    /* a client's ClientHello waits in the engine until the socket is connected */
    if (s->handshaking) flush(s);
    return mgw__stream_read(s, read_cb);
}

/* A paused TLS stream stops reading: the records would pile up in the engine. What it
 * decrypted already stays there until resume. */
static void tls_pause(mgw_stream_t *s, mgw_rbuf_t *rb, const char *p, size_t n)
{
    mgw__stream_pause(s, rb, p, n);
    mgw__stream_unread(s);
}

static void tls_resume(mgw_stream_t *s)
{
    /* The engine may hold decrypted bytes: no socket read will bring them, so drain it. */
    if (s->paused && mgw__stream_unpause(s)) tls_read(s, NULL, 0);
    mgw__stream_read(s, read_cb);
}

/* ---- the end ---- */

static void tls_shutdown(mgw_stream_t *s)
{
    if (s->done) return;
    s->done = 1;
    mgw__stream_unread(s);
    mgw_tls_shutdown(s->tls); /* close_notify */
    flush(s);
    mgw__stream_shutdown(s);
}

static void tls_closed(uv_handle_t *h)
{
    mgw_stream_t *s = h->data;
    mgw_tls_free(s->tls);
    s->tls = NULL;
    mgw__rbuf_unref(s->plain);
    s->plain = NULL;
    mgw_gen_unref(s->gen);
    s->gen = NULL;
    mgw__stream_closed(s);
}

static void tls_close(mgw_stream_t *s)
{
    mgw__stream_close(s, tls_closed);
}

static void tls_save_session(mgw_stream_t *s, void **slot)
{
    mgw_tls_save_session(s->tls, slot);
}

static const mgw_stream_ops_t tls_ops = {
    .read_start = tls_read_start,
    .read_stop = mgw__stream_read_stop,
    .write = tls_write,
    .pause = tls_pause,
    .resume = tls_resume,
    .shutdown = tls_shutdown,
    .close = tls_close,
    .save_session = tls_save_session,
};

/* After a plain-HTTP refusal: the same, but writes are not encrypted. */
static const mgw_stream_ops_t plain_ops = {
    .read_start = tls_read_start,
    .read_stop = mgw__stream_read_stop,
    .write = mgw__stream_tcp_write,
    .pause = tls_pause,
    .resume = tls_resume,
    .shutdown = tls_shutdown,
    .close = tls_close,
    .save_session = mgw__stream_no_session,
};

void mgw__stream_tls_init(mgw_stream_t *s, uv_loop_t *loop, const mgw_stream_cbs_t *cbs, void *data,
                          const mgw_stream_tls_opts_t *o)
{
    mgw__stream_setup(s, loop, &tls_ops, cbs, data);
    s->handshaking = 1;
    if (o->host) {
        s->tls = mgw_tls_client_new(o->ctx, o->host, o->session);
        char none[1];
        mgw_tls_read(s->tls, none, 0); /* produces the ClientHello (sent by read_start) */
    } else {
        s->tls = mgw_tls_new(o->ctx);
        mgw_tls_set_check(s->tls, o->check, o->check_ud);
    }
    if (o->gen) {
        s->gen = o->gen;
        mgw_gen_ref(o->gen);
    }
}
