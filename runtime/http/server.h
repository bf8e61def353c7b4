/*
 * The HTTP/1 server side: the protocol handler client connections start with. main.c
 * makes it the accept handler (mgw_conn_set_accept_handler). It serves every listener,
 * the management listener too: the request core hands each request to the handler of
 * its listener's kind (gw/gw.h).
 */
#ifndef MGW_HTTP_SERVER_H
#define MGW_HTTP_SERVER_H

#include "net/conn.h"

extern const mgw_proto_ops_t mgw_http_server_handler;

/* Called by the HTTP/1 response writer (http/writer.c) when the response has been fully
 * queued: ends the request and moves on to the next one, or closes. */
void mgw__conn_response_done(mgw_conn_t *c);

/*
 * The request under way on r's connection was an upgrade that its handler accepted: r's
 * response (the 101, written by the caller) is complete. Once r has ended (its access-log
 * line written), ops takes the connection over with data as its state, and what the
 * client sent after the request's head goes to ops->on_data. Called instead of ending the
 * response (mgw__resp_end); r may be freed before this returns.
 */
void mgw_http_upgrade(mgw_req_t *r, const mgw_proto_ops_t *ops, void *data);

#endif
