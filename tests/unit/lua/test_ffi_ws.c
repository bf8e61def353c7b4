/*
 * moongate.connections' C side (runtime/lua/ffi_ws.c): what a hook's @connections call
 * is refused for before anything is sent, and what happens to a call's reply: kept for
 * the request that made it, or freed when that request ended meanwhile (its Lua slot's
 * serial moved on).
 */
#include "lua/ffi_ws.c"

#include <stdio.h>
#include <string.h>

#include "unit.h"

static mgw_req_t *new_req(mgw_lslot_t *slot)
{
    mgw_pool_t *pool = mgw_pool_create(0);
    mgw_req_t *r = mgw_pool_calloc(pool, sizeof(*r));
    r->pool = pool;
    mgw_lreq_t *l = mgw__lreq(r);
    *slot = (mgw_lslot_t){r, 5, 0};
    l->slot = slot;
    return r;
}

static void end_req(mgw_req_t *r)
{
    r->lua->slot = NULL; /* no worker Lua state to give the slot back to */
    mgw_pool_destroy(r->pool);
}

static mgw_ws_call_t *new_call(mgw_lslot_t *slot, uint32_t serial)
{
    mgw_ws_call_t *call = mgw_calloc(1, sizeof(*call));
    call->op = MGW_WS_CALL_POST;
    call->data = mgw_malloc(2);
    memcpy(call->data, "hi", 2);
    call->n = 2;
    call->done = call_done;
    ticket_t *t = mgw_malloc(sizeof(*t));
    *t = (ticket_t){slot, serial};
    call->ud = t;
    return call;
}

static void test_refusals(void)
{
    mgw_lslot_t slot;
    mgw_req_t *r = new_req(&slot);
    const char *err = NULL;
    int status = -1;
    mgw_str_t info;
    /* a malformed id: no connection can have it */
    CHECK(mgw_ffi_ws_send(r, "short", 5, "x", 1, 0, &err) == -2);
    CHECK_STR(err, "invalid connection id");
    CHECK(mgw_ffi_ws_info(r, "AAAAAAAAAAAAAAA=", 16, &err) == -2);
    CHECK(mgw_ffi_ws_close(r, NULL, 0, &err) == -2);
    /* over 128 KB: 413 at once, nothing copied or sent */
    static char big[MGW_WS_POST_MAX + 1];
    CHECK(mgw_ffi_ws_send(r, "AAAAAAAAAAAAAAAA", 16, big, sizeof(big), 1, &err) == 0);
    CHECK(mgw_ffi_ws_result(r, &status, &info) == 0);
    CHECK(status == 413);
    CHECK(r->lua->ws == NULL);
    /* one call at a time */
    mgw_ws_call_t *pending = new_call(&slot, slot.serial);
    r->lua->ws = pending;
    CHECK(mgw_ffi_ws_info(r, "AAAAAAAAAAAAAAAA", 16, &err) == -1);
    CHECK_STR(err, "a @connections call is already in flight for this request");
    call_done(pending); /* its reply: kept (the hook does not wait, nothing resumes) */
    CHECK(r->lua->ws == NULL);
    /* outside a hook (no Lua slot) */
    r->lua->slot = NULL;
    CHECK(mgw_ffi_ws_send(r, "AAAAAAAAAAAAAAAA", 16, "x", 1, 0, &err) == -1);
    CHECK_STR(err, "moongate.connections works only inside hooks");
    end_req(r);
}

static void test_reply_kept(void)
{
    mgw_lslot_t slot;
    mgw_req_t *r = new_req(&slot);
    mgw_ws_call_t *call = new_call(&slot, slot.serial);
    call->op = MGW_WS_CALL_GET;
    call->status = 200;
    mgw_buf_adds(&call->info, "{\"connectedAt\":1}");
    r->lua->ws = call;
    call_done(call);
    int status = 0;
    mgw_str_t info;
    mgw_ffi_ws_result(r, &status, &info);
    CHECK(status == 200);
    CHECK(info.n == 17 && memcmp(info.p, "{\"connectedAt\":1}", 17) == 0);
    CHECK(r->lua->ws == NULL);
    end_req(r);
}

static void test_late_reply_freed(void)
{
    /* the request ended and its slot went to another request: the reply is only freed */
    mgw_lslot_t slot;
    mgw_req_t *r = new_req(&slot);
    mgw_ws_call_t *call = new_call(&slot, slot.serial);
    r->lua->ws = call;
    slot.serial++;
    call->status = 200;
    call_done(call);
    CHECK(r->lua->ws == call); /* untouched: it is another request's now */
    CHECK(r->lua->ws_status == 0);
    /* a slot given back (no request in it) */
    slot.r = NULL;
    call_done(new_call(&slot, slot.serial));
    r->lua->ws = NULL;
    end_req(r);
}

int main(void)
{
    RUN(test_refusals);
    RUN(test_reply_kept);
    RUN(test_late_reply_freed);
    return DONE();
}
