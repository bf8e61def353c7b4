/*
 * JSON Schema draft 4 (draft-zyp-json-schema-04, draft-fge-json-schema-validation-00) on
 * base/json.c: a schema is compiled once (a configuration generation compiles its models)
 * and then validates any number of documents, from any thread, without allocating except
 * for the messages of a failure. What it does not do:
 *   - $ref reaches the schema's own document (a JSON pointer, or an `id` inside it) and
 *     the documents the caller's loader gives (mgw_jschema_compile_docs); nothing is
 *     fetched;
 *   - `format` checks date-time, email, hostname, ipv4, ipv6 and uri (jschema_format.c);
 *     other formats are annotations;
 *   - `pattern` and `patternProperties` are ECMA 262 regexes translated to POSIX extended
 *     regexes: \d \w \s, non-capturing groups and lazy quantifiers are taken,
 *     lookaround and back references are refused when compiling; `.` and classes match
 *     bytes, not code points.
 * The messages of a failure are worded as the validator behind AWS API Gateway's
 * request validation words them (com.github.fge json-schema-validator), e.g.
 * `object has missing required properties (["name"])`.
 */
#ifndef MGW_JSCHEMA_H
#define MGW_JSCHEMA_H

#include <stddef.h>

#include "base/json.h"
#include "base/pool.h"

typedef struct mgw_jschema_s mgw_jschema_t;

/* At most this many messages are reported for one document (the rest are counted). */
#define MGW_JSCHEMA_MAX_MESSAGES 16
/* A validation that takes more steps than this (schema keywords applied to values) fails
 * with "validation too complex": it bounds the time a hostile schema and document take. */
#define MGW_JSCHEMA_MAX_STEPS 10000000L

/*
 * Compiles the schema in the n bytes of JSON text at json. The schema and everything it
 * needs (its parsed document, compiled regexes, released by a cleanup) live in pool.
 * Returns the schema, or NULL with the reason in err (errlen bytes), which names the
 * place in the schema as a JSON pointer: `at /properties/age/minimum: must be a number`.
 */
mgw_jschema_t *mgw_jschema_compile(mgw_pool_t *pool, const char *json, size_t n, char *err,
                                   size_t errlen);

/*
 * Where a $ref to another document finds it: the JSON text of the document named by uri
 * (absolute, without its fragment), n bytes, which must stay valid while compiling; or
 * NULL when there is no such document.
 */
typedef const char *(*mgw_jschema_load_fn)(void *ud, const char *uri, size_t *n);

/* mgw_jschema_compile, with $refs to other documents loaded by load (NULL: none). Each
 * document is loaded and parsed once per compile; its ids count as the schema's own. */
mgw_jschema_t *mgw_jschema_compile_docs(mgw_pool_t *pool, const char *json, size_t n,
                                        mgw_jschema_load_fn load, void *ud, char *err,
                                        size_t errlen);

/*
 * Validates v against s. Returns 1 when v is valid; 0 when it is not, and then, when why
 * is not NULL, *why is the list of reasons in pool, as "[reason, reason]" (AWS's
 * $context.error.validationErrorString). s is only read: threads may share it.
 */
int mgw_jschema_validate(const mgw_jschema_t *s, const mgw_json_t *v, mgw_pool_t *pool,
                         const char **why);

#endif
