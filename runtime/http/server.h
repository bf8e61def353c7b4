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

#endif
