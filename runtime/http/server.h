/*
 * The HTTP/1 server side: the protocol handler client connections start with. main.c
 * makes it the accept handler (mgw_conn_set_accept_handler) and registers the Lua
 * hooks' share of request bodies (mgw_http_server_set_body_hooks).
 */
#ifndef MGW_HTTP_SERVER_H
#define MGW_HTTP_SERVER_H

#include "net/conn.h"

extern const mgw_proto_ops_t mgw_http_server_handler;

/* Where request body bytes go while the request's Lua hooks run (r->lua set and no
 * response yet), and the body's end, which may answer r: lua/hooks.c's, registered by
 * main.c at startup. */
typedef struct {
    void (*body)(mgw_req_t *r, const char *p, size_t n);
    void (*body_done)(mgw_req_t *r);
} mgw_http_body_hooks_t;

void mgw_http_server_set_body_hooks(const mgw_http_body_hooks_t *hooks);

/* Called by request.c when the response has been fully queued: ends the request and
 * moves on to the next one, or closes. */
void mgw__conn_response_done(mgw_conn_t *c);

#endif
