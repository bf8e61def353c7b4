/*
 * API types ("http", "rest", "websocket"): everything in which the request core treats
 * the APIs of one protocol differently from another's, as one table per type, so that
 * the core reads a field instead of switching on the protocol: which gateway response
 * a request without a stage or route gets, the response headers that carry the request
 * ids, whether requestId and extendedRequestId differ, the API-key source by default,
 * the unit of requestTimeEpoch and the gateway responses' defaults where the type's
 * differ from the common ones (conf/gwresp.h).
 */
#ifndef MGW_APITYPE_H
#define MGW_APITYPE_H

#include <stddef.h>

#include "conf/gwresp.h"

/* Where the API key of a request comes from (mgw_api_t.api_key_source). */
enum {
    MGW_KEYSRC_ANY,       /* an authorizer's usageIdentifierKey, else x-api-key */
    MGW_KEYSRC_HEADER,    /* x-api-key only */
    MGW_KEYSRC_AUTHORIZER /* the authorizer's usageIdentifierKey only */
};

/* One type's default for a gateway response type where it differs from gwresp.h's: a
 * zero / NULL field keeps the common one. */
typedef struct {
    int status;
    const char *message;    /* also $context.error.message */
    const char *error_type; /* x-amzn-ErrorType */
    const char *key;        /* the default body's key ("message") */
    int null_message;       /* the default body says {"message":null} */
} mgw_gwresp_override_t;

typedef struct mgw_apitype_s {
    const char *name; /* as configured: protocol = "rest" */
    int protocol;     /* MGW_PROTO_* (conf/gen.h) */
    /* the request core runs its phases for the API's requests (else the protocol's
     * handler does, gw.h mgw_gw_set_protocol) */
    int phases;
    /* the first path segment of the default endpoint always names the stage: the API
     * has no "$default" stage */
    int stage_in_path;
    mgw_gwresp_type_t no_stage; /* a request whose path names no stage of the API */
    mgw_gwresp_type_t no_route; /* a request no route matches (path or method) */
    /* requestId is a UUID of its own (a client's x-amzn-RequestId UUID when it sends
     * one); extendedRequestId stays the gateway's id. Else both are the gateway's id. */
    int uuid_request_id;
    const char *request_id_header;          /* carries requestId on every response */
    const char *extended_id_header;         /* carries extendedRequestId, or NULL */
    const char *error_type_header;          /* the gateway responses' x-amzn-ErrorType */
    int key_source;                         /* MGW_KEYSRC_*: api_key_source when not configured */
    int epoch_ms;                           /* requestTimeEpoch in milliseconds (else seconds) */
    const mgw_gwresp_override_t *responses; /* by type, or NULL: the common defaults */
} mgw_apitype_t;

/* The type named name ("http", "rest", "websocket"), or NULL. */
const mgw_apitype_t *mgw_apitype_by_name(const char *name);
/* The type of protocol (MGW_PROTO_*). */
const mgw_apitype_t *mgw_apitype_of(int protocol);
/* The API-key source configured (api_key_source: "HEADER" | "AUTHORIZER"), else t's default. */
int mgw_apitype_key_source(const mgw_apitype_t *t, const char *configured);
/* The default of gateway response type for APIs of type t (t NULL: the common ones). */
void mgw_apitype_response(const mgw_apitype_t *t, mgw_gwresp_type_t type, mgw_gwresp_info_t *out,
                          const mgw_gwresp_override_t **extra);
/* 1 when name (n bytes, any case) is a response header the gateway sets for APIs of
 * type t (a backend's or handler's copy is dropped). */
int mgw_apitype_own_header(const mgw_apitype_t *t, const char *name, size_t n);

#endif
