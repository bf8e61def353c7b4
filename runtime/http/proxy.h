/*
 * HTTP proxy integrations (proxy.c), on the HTTP client (client.h): a request is sent to
 * its backend over a pooled connection and the response streamed back through the
 * request's writer. The http integration type is the MGW_INTEG_HTTP entry of the request
 * core's integration table (mgw_http_register); the client connection's side reaches it
 * through that entry's ops (gw/gw.h).
 */
#ifndef MGW_HTTP_PROXY_H
#define MGW_HTTP_PROXY_H

#include "gw/req_int.h"
#include "http/client.h"

/* The integration type (start: MGW_PHASE_WAIT while the backend answers). */
extern const mgw_integ_ops_t mgw__proxy_integration;

/* Starts proxying r (r->px is set while it runs); fails r on a configuration error. */
void mgw__proxy_start(mgw_req_t *r);
/* Request body bytes for the backend (kept until its connection is ready). */
void mgw__proxy_body(mgw_req_t *r, const char *p, size_t n, mgw_rbuf_t *ref);
void mgw__proxy_body_done(mgw_req_t *r);
/* The client went away: drop the backend request. */
void mgw__proxy_abort(mgw_req_t *r);
/* The client's pending writes drained: read from the backend again. */
void mgw__proxy_client_drained(mgw_req_t *r);
/* The client took some of the response: the backend waiting on it waits on (timeouts.send). */
void mgw__proxy_client_progress(mgw_req_t *r);

/* The worker's HTTP client pool (proxy integrations and moongate.http share it), made
 * on first use; main.c's worker ops close it through mgw__upstream_close_idle / _free. */
mgw_hc_pool_t *mgw__http_pool(mgw_worker_t *w);
/* Closes the worker's idle backend connections (shutdown). */
void mgw__upstream_close_idle(mgw_worker_t *w);
/* Frees the worker's client pool once its loop has stopped. */
void mgw__upstream_free(mgw_worker_t *w);

#endif
