/*
 * WebSocket route selection expressions (AWS "route selection expression"), compiled
 * once per generation and evaluated on every message:
 *   $request.body.action            a JSON path into the message
 *   $request.body.a.b               nested objects
 *   ${request.body.a}/${request.body.b}   a template: literals and paths
 * Evaluation parses the message as JSON (strictly, RFC 8259, nesting bounded): a message
 * that is not JSON, or not an object, selects nothing (the caller uses $default). A path
 * that is missing gives "" (as AWS); a string value gives its unescaped text, a number,
 * true, false or null their JSON text; an object or array gives "" too. With duplicate
 * member names the first value a path reaches wins; a \u escape that is a lone surrogate
 * makes the message invalid (not JSON).
 * Pure: no I/O; evaluation allocates nothing beyond the caller's output buffer.
 */
#ifndef MGW_RSEL_H
#define MGW_RSEL_H

#include <stddef.h>

#include "base/pool.h"

typedef struct mgw_rsel_s mgw_rsel_t;

/* Compiles src into pool memory. Returns NULL and sets *err (a static string) when src is
 * not an expression of the forms above. */
mgw_rsel_t *mgw_rsel_compile(mgw_pool_t *pool, const char *src, const char **err);

/*
 * Evaluates e on the message msg (n bytes). Returns the length of the route key written
 * into out (at most cap bytes; a longer key is cut to cap, and matches no route), or -1
 * when msg is not a JSON object.
 */
int mgw_rsel_eval(const mgw_rsel_t *e, const char *msg, size_t n, char *out, size_t cap);

#endif
