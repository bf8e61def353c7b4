#include "conf/apitype.h"

#include <string.h>
#include <strings.h>

#include "conf/gen.h"

/*
 * REST APIs' gateway responses where API Gateway's REST defaults differ from the common
 * ones (the HTTP API defaults of gwresp.h): statuses from AWS's "Gateway response types"
 * table (INTEGRATION_FAILURE 504), messages as REST APIs answer ("Internal server error",
 * lower-case s; a failing Lambda authorizer's {"message":null} and an explicit deny's
 * capital "Message" are observed, not documented). README "REST APIs".
 */
static const mgw_gwresp_override_t rest_responses[MGW_GW__COUNT] = {
    [MGW_GW_ACCESS_DENIED] = {.message = "User is not authorized to access this resource",
                              .key = "Message"},
    [MGW_GW_API_CONFIGURATION_ERROR] = {.message = "Internal server error"},
    [MGW_GW_AUTHORIZER_CONFIGURATION_ERROR] = {.message = "Internal server error",
                                               .null_message = 1},
    [MGW_GW_AUTHORIZER_FAILURE] = {.message = "Internal server error",
                                   .error_type = "AuthorizerConfigurationException",
                                   .null_message = 1},
    [MGW_GW_INTEGRATION_FAILURE] = {.status = 504,
                                    .message = "Internal server error",
                                    .error_type = "InternalServerErrorException"},
    [MGW_GW_DEFAULT_5XX] = {.message = "Internal server error"},
};

static const mgw_apitype_t types[] = {
    {
        .name = "http",
        .protocol = MGW_PROTO_HTTP,
        .phases = 1,
        .no_stage = MGW_GW_RESOURCE_NOT_FOUND,
        .no_route = MGW_GW_RESOURCE_NOT_FOUND,
        .request_id_header = "apigw-requestid",
        .error_type_header = "x-amzn-errortype",
        .key_source = MGW_KEYSRC_ANY,
    },
    {
        .name = "rest",
        .protocol = MGW_PROTO_REST,
        .phases = 1,
        .stage_in_path = 1,
        .no_stage = MGW_GW_MISSING_AUTHENTICATION_TOKEN,
        .no_route = MGW_GW_MISSING_AUTHENTICATION_TOKEN,
        .uuid_request_id = 1,
        .request_id_header = "x-amzn-RequestId",
        .extended_id_header = "x-amz-apigw-id",
        .error_type_header = "x-amzn-ErrorType",
        .key_source = MGW_KEYSRC_HEADER,
        .epoch_ms = 1,
        .responses = rest_responses,
    },
    {
        .name = "websocket",
        .protocol = MGW_PROTO_WEBSOCKET,
        .no_stage = MGW_GW_RESOURCE_NOT_FOUND,
        .no_route = MGW_GW_RESOURCE_NOT_FOUND,
        .request_id_header = "apigw-requestid",
        .error_type_header = "x-amzn-errortype",
        .key_source = MGW_KEYSRC_ANY,
    },
};

#define NTYPES ((int)(sizeof(types) / sizeof(types[0])))

const mgw_apitype_t *mgw_apitype_by_name(const char *name)
{
    for (int i = 0; name && i < NTYPES; i++)
        if (strcasecmp(types[i].name, name) == 0) return &types[i];
    return NULL;
}

const mgw_apitype_t *mgw_apitype_of(int protocol)
{
    for (int i = 0; i < NTYPES; i++)
        if (types[i].protocol == protocol) return &types[i];
    return &types[0];
}

int mgw_apitype_key_source(const mgw_apitype_t *t, const char *configured)
{
    if (configured && strcasecmp(configured, "HEADER") == 0) return MGW_KEYSRC_HEADER;
    if (configured && strcasecmp(configured, "AUTHORIZER") == 0) return MGW_KEYSRC_AUTHORIZER;
    return t->key_source;
}

void mgw_apitype_response(const mgw_apitype_t *t, mgw_gwresp_type_t type, mgw_gwresp_info_t *out,
                          const mgw_gwresp_override_t **extra)
{
    static const mgw_gwresp_override_t none;
    *out = *mgw_gwresp_info(type);
    const mgw_gwresp_override_t *o = t && t->responses ? &t->responses[type] : &none;
    if (o->status) out->status = o->status;
    if (o->message) out->message = o->message;
    if (o->error_type) out->error_type = o->error_type;
    if (extra) *extra = o;
}

int mgw_apitype_own_header(const mgw_apitype_t *t, const char *name, size_t n)
{
    const char *own[] = {t->request_id_header, t->extended_id_header};
    for (int i = 0; i < 2; i++)
        if (own[i] && strlen(own[i]) == n && strncasecmp(own[i], name, n) == 0) return 1;
    return 0;
}
