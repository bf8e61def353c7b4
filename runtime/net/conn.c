/*
 * Client connections: a stream and a protocol handler (conn.h). Here: accepting, the
 * worker's list, the timers, the TLS handshake's outcome and the connection's lifetime.
 * What the bytes mean is the handler's (the HTTP/1 server is http/server.c).
 */
#include "net/conn.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/stat.h"

static const mgw_proto_ops_t *accept_handler;
static mgw_tls_check_cb cert_check;

void mgw_conn_set_accept_handler(const mgw_proto_ops_t *ops)
{
    accept_handler = ops;
}

void mgw_conn_set_cert_check(mgw_tls_check_cb check)
{
    cert_check = check;
}

static mgw_conn_t *of_stream(mgw_stream_t *s)
{
    return s->data;
}

void mgw__conn_set_handler(mgw_conn_t *c, const mgw_proto_ops_t *ops, void *data)
{
    c->proto = ops;
    c->proto_data = data;
}

int mgw__conn_write(mgw_conn_t *c, const uv_buf_t *bufs, int nbufs, mgw_rbuf_t *ref)
{
    return mgw_stream_write(&c->stream, bufs, nbufs, ref);
}

/* ---- TLS handshakes, for GET /metrics ---- */

static mgw_stat_family_t handshakes = {
    .name = "moongate_tls_handshakes_total",
    .type = "counter",
    .help = "TLS handshakes on the API listeners, by port and outcome: success, or why the "
            "handshake failed (a fixed list, README \"Metrics\").",
    .labels = {"port", "outcome"},
};
static mgw_stat_family_t sessions = {
    .name = "moongate_tls_sessions_total",
    .type = "counter",
    .help = "Successful TLS handshakes on the API listeners, by port, protocol version and "
            "whether a session ticket resumed them.",
    .labels = {"port", "version", "resumed"},
};
static mgw_stat_family_t mtls_refusals = {
    .name = "moongate_mtls_refusals_total",
    .type = "counter",
    .help = "Client certificates mutual TLS refused (the handshake failed), by port, domain "
            "and reason.",
    .labels = {"port", "domain", "reason"},
};

/*
 * Counts how c's handshake ended, once: outcome, and when mutual TLS refused the client,
 * the domain and the reason (t: the engine, or NULL when the connection decided). A
 * handshake costs far more than the lock-free look-up of its series, so nothing is kept.
 */
static void count_handshake(mgw_conn_t *c, mgw_tls_t *t, const char *outcome)
{
    if (c->hs_counted) return;
    c->hs_counted = 1;
    char port[16];
    snprintf(port, sizeof(port), "%d", c->w->gen->listen[c->listen_idx].port);
    const char *hv[] = {port, outcome};
    mgw_stat_inc(&handshakes, hv);
    if (t && mgw_tls_failure(t) == MGW_TLSF_CLIENT_CERTIFICATE) {
        const char *host = mgw_tls_site_host(t);
        const char *mv[] = {port, host ? host : "(default)",
                            mgw_mtls_reason_name(mgw_tls_mtls_reason(t))};
        mgw_stat_inc(&mtls_refusals, mv);
    } else if (t && mgw_tls_handshake_done(t)) {
        const char *sv[] = {port, mgw_tls_version(t), mgw_tls_resumed(t) ? "true" : "false"};
        mgw_stat_inc(&sessions, sv);
    }
}

/* ---- lifetime ---- */

static void handle_closed(mgw_conn_t *c)
{
    if (--c->handles > 0) return;
    c->proto->free(c);
    mgw_pool_destroy(c->tls_pool);
    free(c);
}

static void timer_closed(uv_handle_t *h)
{
    handle_closed(h->data);
}

void mgw__conn_close(mgw_conn_t *c)
{
    if (c->closing) return;
    c->closing = 1;
    c->done = 1;
    c->proto->on_close(c);
    /* unlink */
    if (c->prev)
        c->prev->next = c->next;
    else
        c->w->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    __atomic_store_n(&c->w->nconns, c->w->nconns - 1, __ATOMIC_RELAXED);
    uv_close((uv_handle_t *)&c->timer.t, timer_closed);
    mgw_stream_close(&c->stream);
}

void mgw__conn_close_after_write(mgw_conn_t *c)
{
    if (c->closing || c->done) return;
    c->done = 1;
    mgw_deadline_clear(&c->timer);
    /* stops reading, queues the close_notify of TLS and shuts down once the client took
     * what is queued (stream_shutdown → mgw__conn_close) */
    mgw_stream_shutdown(&c->stream);
    if (!c->closing) mgw__conn_arm_output_timer(c); /* the shutdown waits for the client */
}

void mgw__conn_shutdown(mgw_conn_t *c)
{
    c->proto->on_shutdown(c);
}

/* ---- timers ---- */

static void timeout_cb(uv_timer_t *t)
{
    mgw_conn_t *c = t->data;
    if (c->proto->on_timeout(c)) return;
    if (c->stream.handshaking) {
        mgw_log_info("TLS from %s: handshake timed out", c->peer);
        count_handshake(c, NULL, mgw_tls_failure_name(MGW_TLSF_TIMEOUT));
    }
    mgw__conn_close(c);
}

void mgw__conn_arm_timer(mgw_conn_t *c, uint64_t ms)
{
    mgw_deadline_set(&c->timer, timeout_cb, ms);
}

static void send_timeout_cb(uv_timer_t *t)
{
    mgw_conn_t *c = t->data;
    mgw_log_info("client %s took none of the response for %g s (timeouts.send)", c->peer,
                 (double)c->w->gen->send_timeout_ms / 1000);
    mgw__conn_close(c);
}

/* timeouts.send is nginx's send_timeout: a slow download is not cut off as an idle
 * connection, a client that takes nothing is. */
void mgw__conn_arm_output_timer(mgw_conn_t *c)
{
    if (c->stream.wq.pending)
        mgw_deadline_set(&c->timer, send_timeout_cb, c->w->gen->send_timeout_ms);
    else if (!c->done)
        mgw__conn_arm_timer(c, c->w->gen->idle_timeout_ms);
}

/* ---- reading ---- */

void mgw__conn_block_read(mgw_conn_t *c)
{
    mgw_stream_read_stop(&c->stream);
}

void mgw__conn_unblock_read(mgw_conn_t *c)
{
    mgw_stream_read_start(&c->stream);
}

/* ---- the stream's callbacks ---- */

static void on_read(mgw_stream_t *s, mgw_rbuf_t *rb, const char *p, size_t n)
{
    mgw_conn_t *c = of_stream(s);
    c->proto->on_data(c, rb, p, n);
}

static void on_eof(mgw_stream_t *s)
{
    mgw_conn_t *c = of_stream(s);
    c->eof = 1;
    if (c->stream.handshaking)
        count_handshake(c, NULL, mgw_tls_failure_name(MGW_TLSF_CLIENT_CLOSED));
    c->proto->on_eof(c);
}

/* The handshake is over: keep what requests need to know of it. */
static void on_handshake(mgw_stream_t *s, mgw_tls_t *t)
{
    mgw_conn_t *c = of_stream(s);
    c->tls = 1;
    count_handshake(c, t, "success");
    c->tls_pool = mgw_pool_create(4096);
    const mgw_domain_t *d = mgw_tls_site_data(t);
    if (d) c->tls_host = mgw_pool_strdup(c->tls_pool, d->host);
    mgw_client_cert_t cert;
    if (mgw_tls_client_cert(t, c->tls_pool, &cert) == 0) {
        c->client_cert = mgw_pool_alloc(c->tls_pool, sizeof(cert));
        *c->client_cert = cert;
    }
}

/* A handshake or record failed: one error-log line, an answer if one makes sense, close. */
static void on_refused(mgw_stream_t *s, mgw_tls_t *t, int plain_http)
{
    mgw_conn_t *c = of_stream(s);
    mgw_log_info("TLS from %s: %s", c->peer, mgw_tls_error(t));
    /* a record that fails after the handshake is not a handshake's outcome */
    if (s->handshaking) count_handshake(c, t, mgw_tls_failure_name(mgw_tls_failure(t)));
    c->proto->on_tls_refused(c, plain_http);
    mgw__conn_close_after_write(c);
}

static void on_progress(mgw_stream_t *s)
{
    mgw_conn_t *c = of_stream(s);
    if (c->closing) return;
    c->proto->on_progress(c);
}

static void on_drained(mgw_stream_t *s)
{
    mgw_conn_t *c = of_stream(s);
    c->proto->on_drained(c);
}

static void on_shutdown(mgw_stream_t *s)
{
    mgw__conn_close(of_stream(s));
}

static void on_close(mgw_stream_t *s)
{
    handle_closed(of_stream(s));
}

static const mgw_stream_cbs_t stream_cbs = {
    .on_read = on_read,
    .on_eof = on_eof,
    .on_handshake = on_handshake,
    .on_refused = on_refused,
    .on_progress = on_progress,
    .on_drained = on_drained,
    .on_shutdown = on_shutdown,
    .on_close = on_close,
};

/* ---- accept ---- */

void mgw__conn_accept(mgw_worker_t *w, uv_stream_t *server, int listen_idx)
{
    mgw_conn_t *c = mgw_calloc(1, sizeof(*c));
    c->w = w;
    c->listen_idx = listen_idx;
    c->proto = accept_handler;
    /* A TLS listener's stream: the SNI sites live in the generation, which the stream
     * keeps until the handshake is over. */
    mgw_stream_tls_opts_t tls = {
        .ctx = w->gen->listen[listen_idx].tls,
        .gen = w->gen,
        .check = cert_check,
        .check_ud = c,
    };
    mgw_stream_init(&c->stream, &w->loop, &stream_cbs, c, &tls);
    mgw_deadline_init(&w->loop, &c->timer, c);
    c->handles = 2;
    c->next = w->conns;
    if (w->conns) w->conns->prev = c;
    w->conns = c;
    __atomic_store_n(&w->nconns, w->nconns + 1, __ATOMIC_RELAXED);
    if (mgw_stream_accept(&c->stream, server) != 0) {
        mgw__conn_close(c);
        return;
    }
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    strcpy(c->peer, "-");
    if (uv_tcp_getpeername(&c->stream.tcp, (struct sockaddr *)&ss, &len) == 0) {
        if (ss.ss_family == AF_INET)
            uv_ip4_name((struct sockaddr_in *)&ss, c->peer, sizeof(c->peer));
        else
            uv_ip6_name((struct sockaddr_in6 *)&ss, c->peer, sizeof(c->peer));
    }
    c->proto->accept(c);
    mgw__conn_arm_timer(c, w->gen->header_timeout_ms); /* also bounds the TLS handshake */
    mgw_stream_read_start(&c->stream);
}
