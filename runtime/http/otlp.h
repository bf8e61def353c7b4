/*
 * Span export over OTLP/HTTP JSON (otlp.c, README "Tracing"): the request core's span
 * sink (gw/gw.h) queues the spans of each exported request in its worker, and the worker
 * POSTs them in batches to the configured collector through the HTTP client.
 */
#ifndef MGW_HTTP_OTLP_H
#define MGW_HTTP_OTLP_H

#include "net/worker.h"

/* The exporter's part in a worker's life (net/worker.h): at the end of the worker's loop
 * the queue is sent (within one tracing.otlp.timeout_ms), then freed. main.c registers
 * it right after the HTTP client's pools, which it uses. */
extern const mgw_worker_ops_t mgw__otlp_worker_ops;

/* Installs the span sink in the request core (mgw_http_register calls it). */
void mgw__otlp_register(void);

#endif
