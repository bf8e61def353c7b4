/*
 * WebSocket APIs, the connection's side. A request to a websocket API arrives as an
 * HTTP/1 upgrade request (the request core hands it here once the API and stage are
 * known); it runs the phases with the $connect route (WAF, authorizer, throttle,
 * integration) and its response decides: a 2xx becomes the 101 and this handler takes
 * the connection over (http/server.c mgw_http_upgrade); anything else is answered as
 * HTTP and no connection exists. Every message then becomes a request of the request
 * core (route chosen by the API's selection expression, throttled, integrated, logged),
 * one at a time per connection, and the end of the connection, whatever ends it, runs
 * $disconnect exactly once (a request that outlives the client connection).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/utf8.h"
#include "base/crypto.h"
#include "base/log.h"
#include "http/serialize.h"
#include "http/server.h"
#include "http/writer.h"
#include "net/worker.h"
#include "ws/ws_int.h"

static const mgw_proto_ops_t ws_handler;
static const mgw_writer_ops_t connect_writer, event_writer;

static uint64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- a connection's lifetime ---- */

/* Frees ws once nothing refers to it: the client connection is freed and no event runs. */
static void free_if_done(ws_conn_t *ws)
{
    if (ws->c || ws->busy || ws->disc || ws->disc_pending) return;
    if (ws->registered) mgw__ws_unregister(ws);
    if (ws->keep_values) mgw__ws_conn_end(ws);
    mgw_ws_dec_free(&ws->dec);
    mgw__wgen_release(ws->wgen);
    mgw_pool_destroy(ws->tls_pool);
    free(ws->user_agent);
    free(ws->api_key);
    free(ws);
}

static char *dup_header(const mgw_req_t *r, const char *name)
{
    mgw_str_t v = mgw__req_header(r, name);
    return v.p ? mgw_strndup(v.p, v.n) : NULL;
}

/* The state of the connection the upgrade request r asks for (not connected yet). */
static ws_conn_t *ws_new(mgw_req_t *r)
{
    const mgw_ws_conf_t *conf = r->api->ws;
    ws_conn_t *ws = mgw_calloc(1, sizeof(*ws));
    ws->w = r->from.w;
    mgw__ws_new_id(ws->w, ws->id);
    snprintf(ws->peer, sizeof(ws->peer), "%s", r->from.peer);
    ws->user_agent = dup_header(r, "user-agent");
    if (ws->user_agent)
        ws->ua_hdr = (mgw_hdr_t){MGW_STR("user-agent"), {ws->user_agent, strlen(ws->user_agent)}};
    ws->api_key = dup_header(r, "x-api-key");
    ws->listen_idx = r->from.listen_idx;
    ws->tls = r->from.tls;
    ws->api = r->api;
    ws->stage = r->stage;
    ws->wgen = r->wgen;
    ws->wgen->nreqs++; /* the connection's events run on it */
    ws->connected_at_ms = r->start_ms;
    mgw_ws_dec_opts_t opts = {conf->max_frame, conf->max_message, 0};
    mgw_ws_dec_init(&ws->dec, &opts);
    return ws;
}

/* The loop time from which ms counts, to the next deadline of ws (0: none). */
static uint64_t next_deadline(const ws_conn_t *ws)
{
    const mgw_ws_conf_t *conf = ws->api->ws;
    uint64_t due = 0;
#define EARLIER(t)                                                                                 \
    do {                                                                                           \
        uint64_t t_ = (t);                                                                         \
        if (due == 0 || t_ < due) due = t_;                                                        \
    } while (0)
    if (conf->max_duration_ms) EARLIER(ws->start_loop + conf->max_duration_ms);
    if (conf->idle_timeout_ms) EARLIER(ws->active_loop + conf->idle_timeout_ms);
    if (ws->ping_due) EARLIER(ws->ping_due);
#undef EARLIER
    return due;
}

static void arm(ws_conn_t *ws)
{
    uint64_t due = next_deadline(ws), now = uv_now(&ws->w->loop);
    if (due == 0)
        mgw_deadline_clear(&ws->c->timer);
    else
        mgw__conn_arm_timer(ws->c, due > now ? due - now : 1);
}

/* ---- sending ---- */

static int can_send(const ws_conn_t *ws)
{
    return ws->c && !ws->gone && !ws->closing && !ws->c->done;
}

/* Writes one frame (header, then payload: copied when it cannot go out at once). A small
 * frame goes out as one buffer (a write, not a writev of two pieces). */
static void write_frame(ws_conn_t *ws, int opcode, const void *p, size_t n)
{
    uint8_t h[MGW_WS_MAX_HEADER + 1024];
    size_t hl = mgw_ws_encode_header(h, opcode, 1, n, NULL);
    if (n <= sizeof(h) - hl) {
        if (n) memcpy(h + hl, p, n);
        uv_buf_t b = uv_buf_init((char *)h, (unsigned)(hl + n));
        mgw__conn_write(ws->c, &b, 1, NULL);
        return;
    }
    uv_buf_t b[2] = {uv_buf_init((char *)h, (unsigned)hl), uv_buf_init((char *)p, (unsigned)n)};
    mgw__conn_write(ws->c, b, 2, NULL);
}

int mgw__ws_send(ws_conn_t *ws, int opcode, const void *p, size_t n)
{
    if (!can_send(ws)) return -1;
    size_t pending = ws->c->stream.wq.pending;
    if (pending && pending + n > ws->api->ws->send_queue_max) {
        /* a client that does not read: it is cut off rather than buffered without end (a
         * message goes out when nothing waits, larger than the queue or not: the kernel
         * takes what it can, and a client that reads gets it) */
        mgw_log_info("websocket %s from %s: send queue full, closing", ws->id, ws->peer);
        mgw__ws_close(ws, MGW_WS_CLOSE_POLICY, "Send queue full", WS_CAUSE_SEND_QUEUE);
        return -2;
    }
    write_frame(ws, opcode, p, n);
    ws->active_loop = uv_now(&ws->w->loop);
    ws->last_active_ms = wall_ms();
    return 0;
}

/* Remembers why the connection ends, unless an earlier reason was recorded. */
static void set_close(ws_conn_t *ws, int code, const char *reason, size_t n, int cause)
{
    if (ws->close_code) return;
    ws->close_code = code;
    ws->cause = cause;
    if (n >= sizeof(ws->close_reason)) n = sizeof(ws->close_reason) - 1;
    memcpy(ws->close_reason, reason, n);
    ws->close_reason[n] = '\0';
}

/* Sends our close frame (code 0: an empty one) and closes once it is written. */
static void send_close(ws_conn_t *ws, int code, const char *reason)
{
    uint8_t buf[2 + MGW_WS_MAX_CONTROL];
    long k = mgw_ws_encode_close(buf + 2, sizeof(buf) - 2, code, reason, strlen(reason), NULL);
    if (k > 0) {
        uv_buf_t b = uv_buf_init((char *)buf + 2, (unsigned)k);
        mgw__conn_write(ws->c, &b, 1, NULL);
    }
    ws->closing = 1;
    mgw__conn_close_after_write(ws->c);
}

void mgw__ws_close(ws_conn_t *ws, int code, const char *reason, int cause)
{
    if (!can_send(ws)) return;
    set_close(ws, code, reason, strlen(reason), cause);
    send_close(ws, code, reason);
}

/* ISO 8601 with milliseconds, as AWS's GetConnection says times. */
static void add_time(mgw_buf_t *out, uint64_t ms)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    char s[40];
    size_t n = strftime(s, sizeof(s), "%Y-%m-%dT%H:%M:%S", &tm);
    mgw_buf_add(out, s, n);
    mgw_buf_printf(out, ".%03uZ", (unsigned)(ms % 1000));
}

void mgw__ws_info(const ws_conn_t *ws, mgw_buf_t *out)
{
    mgw_buf_adds(out, "{\"connectedAt\":\"");
    add_time(out, ws->connected_at_ms);
    mgw_buf_adds(out, "\",\"identity\":{\"sourceIp\":\"");
    mgw_buf_add_json(out, ws->peer, strlen(ws->peer));
    mgw_buf_adds(out, "\",\"userAgent\":\"");
    const char *ua = ws->user_agent ? ws->user_agent : "";
    mgw_buf_add_json(out, ua, strlen(ua));
    mgw_buf_adds(out, "\"},\"lastActiveAt\":\"");
    add_time(out, ws->last_active_ms ? ws->last_active_ms : ws->connected_at_ms);
    mgw_buf_adds(out, "\"}");
}

/* ---- events: requests of the request core ---- */

/* A new event request of type on ws (c: its client connection, NULL for $disconnect). */
static mgw_req_t *event_request(ws_conn_t *ws, mgw_conn_t *c, int type, const mgw_route_t *rt)
{
    mgw_req_from_t from = {
        .w = ws->w,
        .listen_idx = ws->listen_idx,
        .peer = ws->peer,
        .tls_host = ws->tls_host,
        .client_cert = ws->client_cert,
        .tls = ws->tls,
        .wgen = ws->wgen,
    };
    mgw_req_t *r = mgw__req_new(c, &from);
    ws_event_t *ev = mgw_pool_calloc(r->pool, sizeof(*ev));
    ev->ws = ws;
    ev->type = type;
    r->proto_data = ev;
    r->wr = &event_writer;
    r->api = ws->api;
    r->stage = ws->stage;
    r->route = rt;
    r->route_set = 1;
    r->method = MGW_STR("POST"); /* what http integrations send */
    r->keepalive = 1;
    if (ws->user_agent) {
        r->headers = mgw_pool_alloc(r->pool, sizeof(mgw_hdr_t));
        r->headers[0] = ws->ua_hdr;
        r->nheaders = r->cap_headers = 1;
    }
    if (ws->api_key) r->api_key = (mgw_str_t){ws->api_key, strlen(ws->api_key)};
    return r;
}

/* Runs $disconnect for a connection whose $connect succeeded (once: the caller sees to it). */
static void run_disconnect(ws_conn_t *ws)
{
    mgw_req_t *r = event_request(ws, NULL, WS_EV_DISCONNECT, ws->api->ws->disconnect_route);
    r->phase = MGW_PHASE_INTEGRATION; /* no WAF, authorizer or throttle: it must run */
    r->body_mem = MGW_STR("");
    r->has_length = 1;
    r->body_done = 1;
    ws->disc = r;
    mgw__req_continue(r);
}

/* $disconnect starts on the loop's next turn, never inside what closed the connection
 * (a policy's moongate.connections.close runs in a Lua hook, which cannot run another). */
typedef struct {
    uv_timer_t t;
    ws_conn_t *ws;
} later_t;

static void later_closed(uv_handle_t *h)
{
    free(h->data);
}

static void later_cb(uv_timer_t *t)
{
    later_t *l = t->data;
    ws_conn_t *ws = l->ws;
    uv_close((uv_handle_t *)&l->t, later_closed);
    ws->disc_pending = 0;
    run_disconnect(ws);
}

static void start_disconnect(ws_conn_t *ws)
{
    if (!ws->close_code)
        set_close(ws, MGW_WS_CLOSE_ABNORMAL, "Connection lost", 15, WS_CAUSE_CONNECTION_LOST);
    const struct mgw_ws_stats_s *st = mgw__ws_stats(ws->api, ws->stage);
    if (st) {
        mgw_stat_add(st->open, -1);
        mgw_stat_add(st->causes[ws->cause], 1);
    }
    later_t *l = mgw_calloc(1, sizeof(*l));
    l->ws = ws;
    uv_timer_init(&ws->w->loop, &l->t);
    l->t.data = l;
    ws->disc_pending = 1; /* keeps ws until it runs */
    uv_timer_start(&l->t, later_cb, 0, 0);
}

/* The route of a message: the selection expression's key, else $default, else NULL. */
static const mgw_route_t *select_route(const ws_conn_t *ws, int opcode, const char *p, size_t n)
{
    const mgw_ws_conf_t *conf = ws->api->ws;
    if (opcode == MGW_WS_OP_TEXT && conf->selection) {
        char key[256];
        int k = mgw_rsel_eval(conf->selection, p, n, key, sizeof(key));
        if (k >= 0 && (size_t)k < sizeof(key)) {
            const mgw_route_t *rt = mgw_api_find_route(ws->api, key, (size_t)k);
            /* a message cannot ask for the connection's own events */
            if (rt && rt != conf->connect_route && rt != conf->disconnect_route &&
                rt != conf->connections_route)
                return rt;
        }
    }
    return conf->default_route;
}

static void on_message(ws_conn_t *ws, const mgw_ws_event_t *e)
{
    ws->nmsg++;
    ws->active_loop = uv_now(&ws->w->loop);
    const mgw_route_t *rt = select_route(ws, e->opcode, (const char *)e->data, e->n);
    mgw_req_t *r = event_request(ws, ws->c, WS_EV_MESSAGE, rt);
    ws_event_t *ev = r->proto_data;
    ev->seq = ws->nmsg;
    ev->binary = e->opcode == MGW_WS_OP_BINARY;
    ws->last_active_ms = r->start_ms;
    /* the decoder's buffer is reused by the next frame: the request keeps a copy */
    char *body = mgw_pool_alloc(r->pool, e->n + 1);
    if (e->n) memcpy(body, e->data, e->n);
    body[e->n] = '\0';
    r->body_mem = (mgw_str_t){body, e->n};
    r->has_length = 1;
    r->content_length = r->body_received = e->n;
    r->body_done = 1;
    ws->busy = r;
    mgw__ws_count_message(r->api, r->stage, rt, WS_DIR_IN);
    if (rt == NULL) {
        r->error_reason = "No route matches the message and the API has no $default route";
        mgw__req_fail(r, MGW_GW_ACCESS_DENIED, NULL);
        return;
    }
    r->phase = MGW_PHASE_ROUTE; /* the route is chosen: authorize (none), throttle, integrate */
    mgw__req_continue(r);
}

/* ---- reading ---- */

static void ws_data(mgw_conn_t *c, mgw_rbuf_t *rb, const char *p, size_t n)
{
    ws_conn_t *ws = c->proto_data;
    while (n > 0 && !c->done) {
        if (ws->busy) {
            /* one message at a time: the rest waits in the stream until it is answered */
            mgw_stream_pause(&c->stream, rb, p, n);
            return;
        }
        size_t used = 0;
        mgw_ws_event_t e;
        int t = mgw_ws_dec_feed(&ws->dec, p, n, &used, &e);
        p += used;
        n -= used;
        switch (t) {
        case MGW_WS_EV_MESSAGE:
            if (!ws->closing) on_message(ws, &e);
            break;
        case MGW_WS_EV_PING:
            if (can_send(ws)) write_frame(ws, MGW_WS_OP_PONG, e.data, e.n);
            break;
        case MGW_WS_EV_PONG:
            if (ws->pinged) {
                ws->pinged = 0;
                ws->ping_due = uv_now(&ws->w->loop) + ws->api->ws->ping_interval_ms;
            }
            break;
        case MGW_WS_EV_CLOSE:
            /* the client's close: answered with its code (none: an empty close) */
            set_close(ws, e.code, (const char *)e.data, e.n, WS_CAUSE_CLIENT_CLOSE);
            if (can_send(ws)) {
                ws->closing = 1;
                send_close(ws, e.code == MGW_WS_CLOSE_NO_STATUS ? 0 : e.code, "");
            } else if (!c->done) {
                mgw__conn_close_after_write(c);
            }
            return;
        case MGW_WS_EV_ERROR:
            mgw_log_info("websocket %s from %s: %s (close %d)", ws->id, ws->peer, e.reason, e.code);
            mgw__ws_close(ws, e.code, e.reason,
                          e.code == MGW_WS_CLOSE_TOO_BIG ? WS_CAUSE_TOO_BIG : WS_CAUSE_PROTOCOL);
            return;
        default:
            break;
        }
    }
    if (!ws->busy) mgw_ws_dec_trim(&ws->dec);
}

/* ---- the handler ---- */

/* The connection is ours (the upgrade is over): the deadlines start. */
static void ws_accept(mgw_conn_t *c)
{
    ws_conn_t *ws = c->proto_data;
    if (!c->done) arm(ws);
}

static void ws_eof(mgw_conn_t *c)
{
    ws_conn_t *ws = c->proto_data;
    set_close(ws, MGW_WS_CLOSE_ABNORMAL, "Connection lost", 15, WS_CAUSE_CONNECTION_LOST);
    mgw__conn_close(c);
}

static void ws_tls_refused(mgw_conn_t *c, int plain_http)
{
    (void)c;
    (void)plain_http;
}

/* Idle timeout, maximum duration and pings: one deadline, the earliest; rearmed here. */
static int ws_timeout(mgw_conn_t *c)
{
    ws_conn_t *ws = c->proto_data;
    if (ws->closing || c->done) return 0;
    const mgw_ws_conf_t *conf = ws->api->ws;
    uint64_t now = uv_now(&ws->w->loop);
    if (conf->max_duration_ms && now >= ws->start_loop + conf->max_duration_ms) {
        mgw__ws_close(ws, MGW_WS_CLOSE_GOING_AWAY, "Maximum connection duration reached",
                      WS_CAUSE_MAX_DURATION);
        return 1;
    }
    if (conf->idle_timeout_ms && now >= ws->active_loop + conf->idle_timeout_ms) {
        mgw__ws_close(ws, MGW_WS_CLOSE_GOING_AWAY, "Idle timeout", WS_CAUSE_IDLE_TIMEOUT);
        return 1;
    }
    if (ws->ping_due && now >= ws->ping_due) {
        if (ws->pinged) {
            mgw__ws_close(ws, MGW_WS_CLOSE_GOING_AWAY, "Pong timeout", WS_CAUSE_PONG_TIMEOUT);
            return 1;
        }
        write_frame(ws, MGW_WS_OP_PING, NULL, 0);
        ws->pinged = 1;
        ws->ping_due = now + conf->pong_timeout_ms;
    }
    arm(ws);
    return 1;
}

static void ws_progress(mgw_conn_t *c)
{
    (void)c;
}

static void ws_drained(mgw_conn_t *c)
{
    (void)c;
}

static void ws_shutdown(mgw_conn_t *c)
{
    ws_conn_t *ws = c->proto_data;
    if (can_send(ws))
        mgw__ws_close(ws, MGW_WS_CLOSE_GOING_AWAY, "Going away", WS_CAUSE_SHUTDOWN);
    else if (!c->done)
        mgw__conn_close(c);
}

/* The client connection ends, whatever ended it: the message under way stops and
 * $disconnect runs. */
static void ws_close(mgw_conn_t *c)
{
    ws_conn_t *ws = c->proto_data;
    if (ws->gone) return;
    ws->gone = 1;
    if (ws->registered) mgw__ws_unregister(ws); /* @connections: 410 from now on */
    mgw_req_t *r = ws->busy;
    if (r) {
        ws_event_t *ev = r->proto_data;
        ws->busy = NULL;
        mgw__req_abort(r);
        if (!r->resp_done && r->status == 0) r->status = 499;
        mgw_buf_free(&ev->out);
        mgw__req_free(r);
    }
    if (ws->connected) start_disconnect(ws);
}

static void ws_free(mgw_conn_t *c)
{
    ws_conn_t *ws = c->proto_data;
    c->proto_data = NULL;
    ws->c = NULL;
    free_if_done(ws);
}

static const mgw_proto_ops_t ws_handler = {
    .name = "websocket",
    .accept = ws_accept,
    .on_data = ws_data,
    .on_eof = ws_eof,
    .on_tls_refused = ws_tls_refused,
    .on_timeout = ws_timeout,
    .on_progress = ws_progress,
    .on_drained = ws_drained,
    .on_shutdown = ws_shutdown,
    .on_close = ws_close,
    .free = ws_free,
};

/* ---- $context values of events ---- */

static const char *const event_names[] = {"CONNECT", "MESSAGE", "DISCONNECT"};

static int ws_lookup(mgw_req_t *r, int var, mgw_str_t arg, mgw_str_t *out)
{
    (void)arg;
    ws_event_t *ev = r->proto_data;
    ws_conn_t *ws = ev->ws;
    switch (var) {
    case MGW_VAR_CONNECTION_ID:
        *out = (mgw_str_t){ws->id, MGW_WS_ID_LEN};
        return 1;
    case MGW_VAR_CONNECTED_AT:
        return mgw__req_u64(r, ws->connected_at_ms, out);
    case MGW_VAR_EVENT_TYPE:
        *out = (mgw_str_t){event_names[ev->type], strlen(event_names[ev->type])};
        return 1;
    case MGW_VAR_MESSAGE_ID: {
        if (ev->type != WS_EV_MESSAGE) return 0;
        /* the connection id and the message's number: unique, and free until asked for */
        char *s = mgw_pool_printf(r->pool, "%s.%llu", ws->id, (unsigned long long)ev->seq);
        *out = (mgw_str_t){s, strlen(s)};
        return 1;
    }
    case MGW_VAR_DISCONNECT_STATUS:
        return ev->type == WS_EV_DISCONNECT ? mgw__req_u64(r, (uint64_t)ws->close_code, out) : 0;
    case MGW_VAR_DISCONNECT_REASON:
        if (ev->type != WS_EV_DISCONNECT) return 0;
        *out = (mgw_str_t){ws->close_reason, strlen(ws->close_reason)};
        return 1;
    default:
        return 0;
    }
}

const char *mgw_ws_event_connection(const mgw_req_t *r)
{
    if (r->wr != &connect_writer && r->wr != &event_writer) return NULL;
    return ((const ws_event_t *)r->proto_data)->ws->id;
}

const char *mgw_ws_event_message_type(const mgw_req_t *r)
{
    if (r->wr != &event_writer) return NULL;
    const ws_event_t *ev = r->proto_data;
    if (ev->type != WS_EV_MESSAGE) return NULL;
    return ev->binary ? "BINARY" : "TEXT";
}

void mgw_ws_keep_values(mgw_req_t *r)
{
    if (mgw_ws_event_connection(r)) ((ws_event_t *)r->proto_data)->ws->keep_values = 1;
}

/* ---- the writer of message and $disconnect events ---- */

static void ev_head(mgw_req_t *r, int status, const mgw_hdr_t *hdrs, int nhdrs,
                    const mgw_hdr_t *more, int nmore, int64_t content_length)
{
    (void)status, (void)hdrs, (void)nhdrs, (void)more, (void)nmore, (void)content_length;
    ws_event_t *ev = r->proto_data;
    ev->error = r->error_type != MGW_GW_NONE;
}

static void ev_body(mgw_req_t *r, const char *p, size_t n, mgw_rbuf_t *ref)
{
    (void)ref;
    ws_event_t *ev = r->proto_data;
    if (ev->type == WS_EV_MESSAGE && !ev->error && r->route && r->route->route_response) {
        if (ev->out.n + n > ev->ws->api->ws->max_message) return; /* see ev_end */
        mgw_buf_add(&ev->out, p, n);
    }
}

static void ev_flush(mgw_req_t *r)
{
    (void)r;
}

static void ev_want_body(mgw_req_t *r)
{
    (void)r;
}

/* The error message AWS sends for a message it could not handle; returns as mgw__ws_send. */
static int send_error(ws_conn_t *ws, mgw_req_t *r)
{
    const char *m = r->error_message ? r->error_message : mgw_gwresp_info(r->error_type)->message;
    mgw_buf_t b = {0};
    mgw_buf_adds(&b, "{\"message\":\"");
    mgw_buf_add_json(&b, m, strlen(m));
    mgw_buf_printf(&b, "\",\"connectionId\":\"%s\",\"requestId\":\"%s\"}", ws->id, r->id);
    int rc = mgw__ws_send(ws, MGW_WS_OP_TEXT, b.p, b.n);
    mgw_buf_free(&b);
    return rc;
}

/* The event is over: its answer goes out, its line is logged, the next message is read. */
static void event_done(mgw_req_t *r)
{
    ws_event_t *ev = r->proto_data;
    ws_conn_t *ws = ev->ws;
    if (ev->type == WS_EV_MESSAGE) {
        int rc = -1;
        if (ev->error)
            rc = send_error(ws, r);
        else if (ev->out.n)
            rc = mgw__ws_send(
                ws, mgw_utf8_valid(ev->out.p, ev->out.n) ? MGW_WS_OP_TEXT : MGW_WS_OP_BINARY,
                ev->out.p, ev->out.n);
        if (rc == 0) mgw__ws_count_message(r->api, r->stage, r->route, WS_DIR_OUT);
        ws->busy = NULL;
    } else {
        ws->disc = NULL;
    }
    mgw_buf_free(&ev->out);
    int was_message = ev->type == WS_EV_MESSAGE;
    mgw__req_free(r);
    if (was_message && ws->c && !ws->c->done && ws->c->stream.paused) {
        /* what arrived meanwhile: a resume inside ws_data's loop is not needed (it goes on) */
        mgw_stream_resume(&ws->c->stream);
        return;
    }
    free_if_done(ws);
}

static void ev_end(mgw_req_t *r)
{
    event_done(r);
}

static void ev_abort(mgw_req_t *r)
{
    ws_event_t *ev = r->proto_data;
    ev->out.n = 0; /* cut short: nothing of it goes out */
    event_done(r);
}

static const mgw_writer_ops_t event_writer = {
    .head = ev_head,
    .body = ev_body,
    .flush = ev_flush,
    .end = ev_end,
    .want_body = ev_want_body,
    .abort = ev_abort,
    .lookup = ws_lookup,
};

/* ---- the upgrade: $connect ---- */

/* 1 when the list v has the token t (a C string). */
static int has_token(mgw_str_t v, const char *t)
{
    return mgw_list_has(v, (mgw_str_t){t, strlen(t)});
}

/* Why r is not a WebSocket opening handshake (RFC 6455 4.2.1), or NULL. */
static const char *upgrade_invalid(const mgw_req_t *r)
{
    if (r->method.n != 3 || memcmp(r->method.p, "GET", 3) != 0)
        return "A WebSocket API is reached with a GET upgrade request";
    if (r->minor < 1) return "A WebSocket upgrade needs HTTP/1.1";
    if (!has_token(mgw__req_header(r, "upgrade"), "websocket")) return "Missing Upgrade: websocket";
    if (!has_token(mgw__req_header(r, "connection"), "upgrade"))
        return "Missing Connection: Upgrade";
    mgw_str_t v = mgw__req_header(r, "sec-websocket-version");
    if (v.n != 2 || memcmp(v.p, "13", 2) != 0) return "Unsupported Sec-WebSocket-Version";
    mgw_str_t k = mgw__req_header(r, "sec-websocket-key");
    /* 16 bytes in base64: 22 characters and "==" */
    if (k.n != 24 || k.p[22] != '=' || k.p[23] != '=') return "Invalid Sec-WebSocket-Key";
    for (size_t i = 0; i < 22; i++) {
        char ch = k.p[i];
        if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
              ch == '+' || ch == '/'))
            return "Invalid Sec-WebSocket-Key";
    }
    return NULL;
}

/* The subprotocol the $connect integration chose, if the client offered it. */
static mgw_str_t chosen_protocol(const mgw_req_t *r, const mgw_hdr_t *hdrs, int n)
{
    for (int i = 0; i < n; i++) {
        if (!mgw_str_ieq(hdrs[i].name, "sec-websocket-protocol")) continue;
        mgw_str_t v = hdrs[i].value;
        char *t = mgw_pool_strndup(r->pool, v.p, v.n);
        if (has_token(mgw__req_header(r, "sec-websocket-protocol"), t)) return v;
        mgw_log_info("request %s: the $connect integration chose the subprotocol %s, which the "
                     "client did not offer: none is sent",
                     r->id, t);
    }
    return MGW_NULL_STR;
}

static void cw_head(mgw_req_t *r, int status, const mgw_hdr_t *hdrs, int nhdrs,
                    const mgw_hdr_t *more, int nmore, int64_t content_length)
{
    ws_event_t *ev = r->proto_data;
    if (status < 200 || status > 299 || r->error_type != MGW_GW_NONE) {
        mgw_http1_writer.head(r, status, hdrs, nhdrs, more, nmore, content_length);
        return;
    }
    ev->accept = 1;
    static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    mgw_str_t key = mgw__req_header(r, "sec-websocket-key");
    char in[24 + sizeof(guid)];
    memcpy(in, key.p, 24);
    memcpy(in + 24, guid, sizeof(guid) - 1);
    uint8_t digest[20];
    mgw_sha1(in, 24 + sizeof(guid) - 1, digest);
    char *accept = mgw_pool_alloc(r->pool, 32);
    size_t an = mgw_base64(digest, 20, accept, 0);
    mgw_hdr_t h[4];
    int k = 0;
    h[k++] = (mgw_hdr_t){MGW_STR("upgrade"), MGW_STR("websocket")};
    h[k++] = (mgw_hdr_t){MGW_STR("connection"), MGW_STR("Upgrade")};
    h[k++] = (mgw_hdr_t){MGW_STR("sec-websocket-accept"), {accept, an}};
    mgw_str_t proto = chosen_protocol(r, hdrs, nhdrs);
    if (proto.p) h[k++] = (mgw_hdr_t){MGW_STR("sec-websocket-protocol"), proto};
    mgw_http1_resp_t hr = {
        .status = 101,
        .hdrs = h,
        .nhdrs = k,
        .more = more,
        .nmore = nmore,
        .date = mgw__date(r->from.w),
        .content_length = -1,
    };
    mgw_sbuf_t b = {mgw_pool_alloc(r->pool, mgw_http1_head_size(&hr)), 0};
    mgw_http1_head(&b, &hr);
    r->head_out = (mgw_str_t){b.p, b.n};
    r->head_method = 1; /* the integration's body, if any, is not sent */
}

static void cw_body(mgw_req_t *r, const char *p, size_t n, mgw_rbuf_t *ref)
{
    ws_event_t *ev = r->proto_data;
    if (!ev->accept) mgw_http1_writer.body(r, p, n, ref);
}

static void cw_flush(mgw_req_t *r)
{
    ws_event_t *ev = r->proto_data;
    if (!ev->accept) mgw_http1_writer.flush(r);
}

static void cw_end(mgw_req_t *r)
{
    ws_event_t *ev = r->proto_data;
    if (!ev->accept) {
        mgw_http1_writer.end(r); /* refused: ws goes with r (connect_gone) */
        return;
    }
    ws_conn_t *ws = ev->ws;
    mgw_conn_t *c = r->c;
    uv_buf_t b = uv_buf_init((char *)r->head_out.p, (unsigned)r->head_out.n);
    mgw__conn_write(c, &b, 1, NULL);
    ws->c = c;
    ws->connected = 1;
    const struct mgw_ws_stats_s *st = mgw__ws_stats(ws->api, ws->stage);
    if (st) mgw_stat_add(st->open, 1);
    /* the TLS handshake's outcome stays with the connection's events */
    ws->tls_pool = c->tls_pool;
    c->tls_pool = NULL;
    ws->tls_host = c->tls_host;
    ws->client_cert = c->client_cert;
    ws->start_loop = ws->active_loop = uv_now(&ws->w->loop);
    if (ws->api->ws->ping_interval_ms)
        ws->ping_due = ws->start_loop + ws->api->ws->ping_interval_ms;
    mgw__ws_register(ws);
    int closing = c->w->shutting_down;
    mgw_http_upgrade(r, &ws_handler, ws); /* r may be gone */
    if (closing) mgw__ws_close(ws, MGW_WS_CLOSE_GOING_AWAY, "Going away", WS_CAUSE_SHUTDOWN);
}

static void cw_want_body(mgw_req_t *r)
{
    mgw_http1_writer.want_body(r);
}

static void cw_abort(mgw_req_t *r)
{
    mgw_http1_writer.abort(r);
}

static const mgw_writer_ops_t connect_writer = {
    .head = cw_head,
    .body = cw_body,
    .flush = cw_flush,
    .end = cw_end,
    .want_body = cw_want_body,
    .abort = cw_abort,
    .lookup = ws_lookup,
};

/* The upgrade request's end: a connection that was refused (or never answered) goes. */
static void connect_gone(void *data)
{
    ws_event_t *ev = data;
    if (!ev->accept) free_if_done(ev->ws);
}

/* The request core's handler of requests to websocket APIs (gw.h mgw_gw_set_protocol). */
static void ws_serve(mgw_req_t *r)
{
    if (r->api->ws->connections_route && mgw_ws_connections_path(r, r->route_path)) {
        /* @connections on the API's own endpoint: the "$connections" route's phases (WAF,
         * its authorizer or API key, throttling), then its integration runs the call */
        r->route = r->api->ws->connections_route;
        r->route_set = 1;
        r->phase = MGW_PHASE_WAF;
        mgw__req_continue(r);
        return;
    }
    const char *why = upgrade_invalid(r);
    if (why || r->c == NULL) {
        static const mgw_hdr_t version = {MGW_STR("sec-websocket-version"), MGW_STR("13")};
        r->error_reason = why ? why : "not a client connection";
        mgw__req_fail_with(r, MGW_GW_BAD_REQUEST, NULL, &version, 1);
        return;
    }
    ws_conn_t *ws = ws_new(r);
    ws_event_t *ev = mgw_pool_calloc(r->pool, sizeof(*ev));
    ev->ws = ws;
    ev->type = WS_EV_CONNECT;
    mgw_pool_cleanup_add(r->pool, connect_gone, ev);
    r->proto_data = ev;
    r->wr = &connect_writer;
    r->route = r->api->ws->connect_route;
    r->route_set = 1;
    r->phase = MGW_PHASE_WAF;
    mgw__req_continue(r);
}

/* ---- reloads ---- */

void mgw_ws_generation_changed(mgw_worker_t *w)
{
    for (ws_conn_t *ws = mgw__ws_first(w), *next; ws; ws = next) {
        next = ws->next;
        if (ws->wgen == w->wgen || ws->gone) continue;
        mgw_api_t *api = mgw_gen_find_api(w->gen, ws->api->id, strlen(ws->api->id));
        mgw_stage_t *st =
            api ? mgw_api_find_stage(api, ws->stage->name, strlen(ws->stage->name)) : NULL;
        if (api == NULL || api->protocol != MGW_PROTO_WEBSOCKET || st == NULL) {
            /* its API or stage is gone: $disconnect runs on the configuration it knew */
            mgw__ws_close(ws, MGW_WS_CLOSE_GOING_AWAY, "The API was removed", WS_CAUSE_API_REMOVED);
            continue;
        }
        mgw_wgen_t *old = ws->wgen;
        ws->wgen = mgw__wgen_acquire(w);
        ws->api = api;
        ws->stage = st;
        mgw__wgen_release(old);
        mgw_ws_dec_set_limits(&ws->dec, api->ws->max_frame, api->ws->max_message);
        /* pings start or stop as ping_interval now says (a ping under way still counts) */
        if (api->ws->ping_interval_ms == 0) {
            ws->ping_due = 0;
            ws->pinged = 0;
        } else if (ws->ping_due == 0 && ws->connected) {
            ws->ping_due = uv_now(&w->loop) + api->ws->ping_interval_ms;
        }
        if (ws->c && !ws->closing) arm(ws);
    }
}

void mgw__ws_server_register(void)
{
    mgw_gw_set_protocol(MGW_PROTO_WEBSOCKET, ws_serve);
    mgw_gw_set_integration(MGW_INTEG_CONNECTIONS, &mgw__ws_connections_integration);
}
