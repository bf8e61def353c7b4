/*
 * The response writer of HTTP/1 client connections (gw/writer.h): serializes the
 * response (http/serialize.h) and writes it to the connection (net/conn.c), holding the
 * head back until body bytes or the end go with it.
 */
#ifndef MGW_HTTP_WRITER_H
#define MGW_HTTP_WRITER_H

#include "gw/writer.h"

extern const mgw_writer_ops_t mgw_http1_writer;

/* Fills in the request core's entries this layer implements: the writer of client
 * connections and the http integration type. Called once at start-up. */
void mgw_http_register(void);

#endif
