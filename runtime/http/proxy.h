/*
 * HTTP proxy integrations (proxy.c), on the HTTP client (client.h). The functions that
 * request.c and conn.c call (mgw__proxy_*) are declared in gw/req_int.h; this header
 * holds what the layers above need: the worker's client pool.
 */
#ifndef MGW_HTTP_PROXY_H
#define MGW_HTTP_PROXY_H

#include "http/client.h"

/* The worker's HTTP client pool (proxy integrations and moongate.http share it), made
 * on first use; worker.c closes it through mgw__upstream_close_idle / _free. */
mgw_hc_pool_t *mgw__http_pool(mgw_worker_t *w);

#endif
