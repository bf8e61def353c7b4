/*
 * TEMPORARY: stub definitions of the ws.h functions the Lua layer calls, so that the
 * h-wslua branch links before ws/server.c and ws/connections.c exist. The lead drops
 * this file at merge; nothing else depends on what the stubs do.
 */
#include <stdlib.h>

#include "ws/ws.h"

void mgw_ws_call(mgw_worker_t *from, mgw_ws_call_t *call)
{
    (void)from;
    call->status = 410; /* no connection exists without the connection handler */
    call->done(call);
}

void mgw_ws_call_free(mgw_ws_call_t *call)
{
    free(call->data);
    mgw_buf_free(&call->info);
    free(call);
}

const char *mgw_ws_event_connection(const mgw_req_t *r)
{
    (void)r;
    return NULL;
}

void mgw_ws_set_conn_end(void (*conn_end)(mgw_worker_t *w, const char *id))
{
    (void)conn_end;
}

void mgw_ws_keep_values(mgw_req_t *r)
{
    (void)r;
}
