/*
 * moongate.connections (lua/moongate/connections.lua): the @connections operations of
 * ws/ws.h from Lua hooks (send a message to a WebSocket connection, read what is known
 * of it, close it) and the values Lua keeps per connection. The connection may live on
 * any worker: on the hook's own worker the call is complete when mgw_ffi_ws_start
 * returns; otherwise the hook yields and the reply, which comes back through this
 * worker's mailbox, resumes it. A reply that arrives after the request ended (its Lua
 * slot's serial moved on) is freed and resumes nothing. FFI boundary per STYLE.md rule 9.
 */
#include <stdlib.h>
#include <string.h>

#include "lua/lua_int.h"
#include "ws/ws.h"

/* Who a call's reply is for: the request in a slot, while the slot keeps its serial. */
typedef struct {
    mgw_lslot_t *slot;
    uint32_t serial;
} ticket_t;

/* 1 when id (n bytes) has the shape of a connection id: MGW_WS_ID_LEN base64url characters. */
static int valid_id(const char *id, size_t n)
{
    if (id == NULL || n != MGW_WS_ID_LEN) return 0;
    for (size_t i = 0; i < n; i++) {
        char c = id[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_'))
            return 0;
    }
    return 1;
}

/* The call's done (ws.h), on the hook's worker: keeps the outcome in the request and
 * resumes the hook when it waits; the call is freed either way. */
static void call_done(mgw_ws_call_t *call)
{
    ticket_t *t = call->ud;
    mgw_ws_count_call(MGW_WS_VIA_LUA, call->op, call->status);
    mgw_req_t *r = t->slot->serial == t->serial ? t->slot->r : NULL;
    free(t);
    call->ud = NULL;
    mgw_lreq_t *l = r ? r->lua : NULL;
    if (l == NULL || l->ws != call) { /* the request ended meanwhile */
        mgw_ws_call_free(call);
        return;
    }
    l->ws = NULL;
    l->ws_status = call->status;
    l->ws_info = call->info.n ? (mgw_str_t){mgw_pool_strndup(r->pool, call->info.p, call->info.n),
                                            call->info.n}
                              : MGW_STR("");
    mgw_ws_call_free(call);
    if (l->waiting == MGW_WAIT_WS) mgw__hooks_wakeup(r);
}

/*
 * Starts @connections operation op on connection id (idn bytes) for r's running hook.
 * Returns 0 when the outcome is there already (read it with mgw_ffi_ws_result), 1 when
 * the hook must wait for it (it is resumed when the reply comes), -2 with *err when the
 * id cannot be a connection's, or -1 with *err for misuse (not in a hook, a call already
 * in flight).
 */
static int start(mgw_req_t *r, int op, const char *id, size_t idn, const char *data, size_t n,
                 int binary, const char **err)
{
    mgw_lreq_t *l = mgw__lreq(r);
    if (l->slot == NULL) return *err = "moongate.connections works only inside hooks", -1;
    if (l->ws) return *err = "a @connections call is already in flight for this request", -1;
    if (!valid_id(id, idn)) return *err = "invalid connection id", -2;
    l->ws_info = MGW_STR("");
    if (op == MGW_WS_CALL_POST && n > MGW_WS_POST_MAX) {
        l->ws_status = 413; /* refused before the message is copied */
        mgw_ws_count_call(MGW_WS_VIA_LUA, op, 413);
        return 0;
    }
    mgw_ws_call_t *call = mgw_calloc(1, sizeof(*call));
    call->op = op;
    memcpy(call->id, id, MGW_WS_ID_LEN);
    call->id[MGW_WS_ID_LEN] = '\0';
    if (op == MGW_WS_CALL_POST) {
        call->data = mgw_malloc(n ? n : 1);
        if (n) memcpy(call->data, data, n);
        call->n = n;
        call->binary = binary != 0;
    }
    call->reply_to = r->from.w->mailbox;
    call->done = call_done;
    ticket_t *t = mgw_malloc(sizeof(*t));
    *t = (ticket_t){l->slot, l->slot->serial};
    call->ud = t;
    l->ws = call;
    l->ws_status = 0;
    mgw_ws_call(r->from.w, call);
    if (l->ws == NULL) return 0; /* the connection is this worker's: done has run */
    l->waiting = MGW_WAIT_WS;
    return 1;
}

/* Sends data (n bytes, copied) to connection id: a text message (UTF-8), or a binary one
 * when binary is set. Returns as start does. */
int mgw_ffi_ws_send(mgw_req_t *r, const char *id, size_t idn, const char *data, size_t n,
                    int binary, const char **err)
{
    return start(r, MGW_WS_CALL_POST, id, idn, data, n, binary, err);
}

/* Asks what is known of connection id (the outcome's info). Returns as start does. */
int mgw_ffi_ws_info(mgw_req_t *r, const char *id, size_t idn, const char **err)
{
    return start(r, MGW_WS_CALL_GET, id, idn, NULL, 0, 0, err);
}

/* Closes connection id (its $disconnect runs). Returns as start does. */
int mgw_ffi_ws_close(mgw_req_t *r, const char *id, size_t idn, const char **err)
{
    return start(r, MGW_WS_CALL_DELETE, id, idn, NULL, 0, 0, err);
}

/* The outcome of r's last @connections call: its HTTP-like status (200, 204, 410, 413,
 * 429...; 0 when none finished) and, for GET, the connection's information as JSON. */
int mgw_ffi_ws_result(mgw_req_t *r, int *status, mgw_str_t *info)
{
    const mgw_lreq_t *l = r->lua;
    *status = l ? l->ws_status : 0;
    *info = l ? l->ws_info : MGW_STR("");
    return 0;
}

/* r (a WebSocket event) stored values for its connection in the Lua state: conn_end will
 * be told when the connection ends. */
int mgw_ffi_ws_keep(mgw_req_t *r)
{
    mgw_ws_keep_values(r);
    return 0;
}

static void conn_end(mgw_worker_t *w, const char *id)
{
    if (w && w->lua) mgw__lua_conn_end(w->lua, id);
}

void mgw__lws_register(void)
{
    mgw_ws_set_conn_end(conn_end);
}
