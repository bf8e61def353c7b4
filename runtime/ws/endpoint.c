/*
 * AWS's @connections API over HTTP: POST (push a message), GET (the connection's info),
 * DELETE (close), answered with AWS's status codes and error types once the connection's
 * worker has run the call (connections.c). Served on the management listener (ctl/) and,
 * with websocket.connections_endpoint, on the API's own endpoint, where the API's
 * "$connections" route runs the phases and this file's integration makes the call.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw/req_int.h"
#include "ws/ws_int.h"

static int method_is(const mgw_req_t *r, const char *m)
{
    return r->method.n == strlen(m) && memcmp(r->method.p, m, r->method.n) == 0;
}

/* An @connections request waiting for its outcome; it and the request may end in either
 * order (the client may go away first). */
typedef struct {
    mgw_req_t *r;        /* NULL once the request has ended */
    mgw_ws_call_t *call; /* NULL once the call is done */
    mgw_worker_t *from;  /* the calling worker, NULL: the main thread */
    int via;             /* MGW_WS_VIA_*, for the metrics */
    mgw_buf_t body;      /* POST: the message as it arrives */
    int too_large;
} conn_op_t;

static void op_release(conn_op_t *op)
{
    if (op->r || op->call) return;
    mgw_buf_free(&op->body);
    free(op);
}

static void op_request_gone(void *data)
{
    conn_op_t *op = data;
    op->r = NULL;
    op_release(op);
}

/* Answers an @connections request as AWS does: an empty 200, JSON info, 204, or an
 * error named in x-amzn-ErrorType. */
static void conn_answer(mgw_req_t *r, int status, const mgw_buf_t *info)
{
    static const struct {
        int status;
        const char *type, *message;
    } errors[] = {
        {400, "BadRequestException", "Bad Request"},
        {410, "GoneException", "Gone"},
        {413, "PayloadTooLargeException", "Request Too Long"},
        {429, "LimitExceededException", "Too Many Requests"},
        {503, "ServiceUnavailableException", "Service Unavailable"},
    };
    if (status == 200 && info && info->n) {
        mgw__resp_text(r, 200, "application/json", info->p, NULL, 0);
        return;
    }
    if (status == 200 || status == 204) {
        mgw__resp_text(r, status, "application/json", "", NULL, 0);
        return;
    }
    for (size_t i = 0; i < sizeof(errors) / sizeof(errors[0]); i++) {
        if (errors[i].status != status) continue;
        mgw_hdr_t h = {MGW_STR("x-amzn-errortype"), {errors[i].type, strlen(errors[i].type)}};
        char body[64];
        snprintf(body, sizeof(body), "{\"message\":\"%s\"}", errors[i].message);
        mgw__resp_text(r, status, "application/json", body, &h, 1);
        return;
    }
    mgw__resp_text(r, 500, "application/json", "{\"message\":\"Internal Server Error\"}", NULL, 0);
}

static void conn_done(mgw_ws_call_t *call)
{
    conn_op_t *op = call->ud;
    mgw_ws_count_call(op->via, call->op, call->status);
    /* answering may end the request (op_request_gone): op->call keeps op until here */
    if (op->r) conn_answer(op->r, call->status, &call->info);
    op->call = NULL;
    mgw_ws_call_free(call);
    op_release(op);
}

static void conn_start(conn_op_t *op)
{
    mgw_ws_call_t *call = op->call;
    if (call->op == MGW_WS_CALL_POST) {
        if (op->too_large) {
            call->status = 413;
            conn_done(call);
            return;
        }
        call->data = op->body.p; /* the call takes the message over */
        call->n = op->body.n;
        op->body = (mgw_buf_t){0};
    }
    mgw_ws_call(op->from, call);
}

static conn_op_t *op_of(const mgw_req_t *r)
{
    return r->proto_data;
}

static void post_body(mgw_req_t *r, const char *p, size_t n, mgw_rbuf_t *ref)
{
    (void)ref;
    conn_op_t *op = op_of(r);
    if (op->body.n + n > MGW_WS_POST_MAX)
        op->too_large = 1;
    else
        mgw_buf_add(&op->body, p, n);
}

static void post_body_done(mgw_req_t *r)
{
    conn_start(op_of(r));
}

/* Takes the message of a POST (the request core hands the body to the "integration"). */
static const mgw_integ_ops_t post_message = {
    .name = "@connections",
    .body = post_body,
    .body_done = post_body_done,
};

const char *mgw_ws_connections_path(mgw_req_t *r, mgw_str_t t)
{
    static const char seg[] = "/@connections/";
    const char *q = memchr(t.p, '?', t.n);
    size_t n = q ? (size_t)(q - t.p) : t.n;
    for (size_t i = 0; i + sizeof(seg) - 1 <= n; i++) {
        if (memcmp(t.p + i, seg, sizeof(seg) - 1) != 0) continue;
        const char *id = t.p + i + sizeof(seg) - 1;
        size_t idn = n - (i + sizeof(seg) - 1);
        if (memchr(id, '/', idn)) return NULL;
        return mgw_pool_strndup(r->pool, id, idn);
    }
    return NULL;
}

void mgw_ws_connections_serve(mgw_req_t *r, const char *id, mgw_worker_t *from,
                              mgw_mailbox_t *reply_to)
{
    int op = method_is(r, "POST")     ? MGW_WS_CALL_POST
             : method_is(r, "GET")    ? MGW_WS_CALL_GET
             : method_is(r, "DELETE") ? MGW_WS_CALL_DELETE
                                      : -1;
    int via = from ? MGW_WS_VIA_ENDPOINT : MGW_WS_VIA_MANAGEMENT;
    if (op < 0) {
        mgw_ws_count_call(via, op, 405);
        mgw_hdr_t allow = {MGW_STR("allow"), MGW_STR("POST, GET, DELETE")};
        mgw__resp_text(r, 405, "text/plain", "use POST, GET or DELETE /@connections/ID\n", &allow,
                       1);
        return;
    }
    if (op == MGW_WS_CALL_POST && r->has_length && r->content_length > MGW_WS_POST_MAX) {
        mgw_ws_count_call(via, op, 413);
        conn_answer(r, 413, NULL);
        return;
    }
    conn_op_t *op_ = mgw_calloc(1, sizeof(*op_));
    mgw_ws_call_t *call = mgw_calloc(1, sizeof(*call));
    call->op = op;
    snprintf(call->id, sizeof(call->id), "%s", strlen(id) <= MGW_WS_ID_LEN ? id : "");
    call->reply_to = reply_to;
    op_->from = from;
    op_->via = via;
    call->done = conn_done;
    call->ud = op_;
    op_->r = r;
    op_->call = call;
    r->proto_data = op_;
    mgw_pool_cleanup_add(r->pool, op_request_gone, op_);
    if (op != MGW_WS_CALL_POST || r->body_done || (!r->has_length && !r->chunked) ||
        (r->has_length && r->content_length == 0)) {
        conn_start(op_);
        return;
    }
    r->integ = &post_message; /* the body comes to post_body, then post_body_done */
    mgw__req_send_continue(r);
}

/* The "$connections" route's integration: the call of an @connections request that its
 * route's phases (WAF, authorizer or API key, throttling) let through. */
static int connections_start(mgw_req_t *r)
{
    const char *id = mgw_ws_connections_path(r, r->route_path);
    mgw_ws_connections_serve(r, id ? id : "", r->from.w, r->from.w->mailbox);
    return MGW_PHASE_WAIT; /* answered now or later; r may be gone */
}

const mgw_integ_ops_t mgw__ws_connections_integration = {
    .name = "@connections",
    .start = connections_start,
};
