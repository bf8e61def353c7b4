/*
 * $context templates (access-log formats, gateway-response bodies), compiled once into a
 * list of literal and variable segments so that rendering never parses.
 */
#ifndef MGW_TEMPLATE_H
#define MGW_TEMPLATE_H

#include "base/mem.h"
#include "base/pool.h"

/* Every $context variable: XX(ID, "name after $context."). */
#define MGW_CONTEXT_VARS(XX)                                                                       \
    XX(REQUEST_ID, "requestId")                                                                    \
    XX(EXTENDED_REQUEST_ID, "extendedRequestId")                                                   \
    XX(TRACE_ID, "traceId")                                                                        \
    XX(SPAN_ID, "spanId")                                                                          \
    XX(API_ID, "apiId")                                                                            \
    XX(STAGE, "stage")                                                                             \
    XX(ROUTE_KEY, "routeKey")                                                                      \
    XX(HTTP_METHOD, "httpMethod")                                                                  \
    XX(PATH, "path")                                                                               \
    XX(PROTOCOL, "protocol")                                                                       \
    XX(STATUS, "status")                                                                           \
    XX(RESPONSE_LENGTH, "responseLength")                                                          \
    XX(REQUEST_TIME, "requestTime")                                                                \
    XX(REQUEST_TIME_EPOCH, "requestTimeEpoch")                                                     \
    XX(RESPONSE_LATENCY, "responseLatency")                                                        \
    XX(INTEGRATION_LATENCY, "integrationLatency")                                                  \
    XX(INTEGRATION_LATENCY2, "integration.latency")                                                \
    XX(INTEGRATION_STATUS, "integrationStatus")                                                    \
    XX(INTEGRATION_STATUS2, "integration.status")                                                  \
    XX(INTEGRATION_STATUS3, "integration.integrationStatus")                                       \
    XX(INTEGRATION_ERROR, "integrationErrorMessage")                                               \
    XX(INTEGRATION_ERROR2, "integration.error")                                                    \
    XX(SOURCE_IP, "identity.sourceIp")                                                             \
    XX(API_KEY, "identity.apiKey")                                                                 \
    XX(CLIENT_CERT_PEM, "identity.clientCert.clientCertPem")                                       \
    XX(CLIENT_CERT_SUBJECT, "identity.clientCert.subjectDN")                                       \
    XX(CLIENT_CERT_ISSUER, "identity.clientCert.issuerDN")                                         \
    XX(CLIENT_CERT_SERIAL, "identity.clientCert.serialNumber")                                     \
    XX(CLIENT_CERT_NOT_BEFORE, "identity.clientCert.validity.notBefore")                           \
    XX(CLIENT_CERT_NOT_AFTER, "identity.clientCert.validity.notAfter")                             \
    XX(THROTTLE_POLICY, "throttle.policy")                                                         \
    XX(THROTTLE_LIMIT, "throttle.limit")                                                           \
    XX(THROTTLE_REMAINING, "throttle.remaining")                                                   \
    XX(THROTTLE_RESET, "throttle.reset")                                                           \
    XX(API_KEY_ID, "identity.apiKeyId")                                                            \
    XX(USER_AGENT, "identity.userAgent")                                                           \
    XX(DOMAIN_NAME, "domainName")                                                                  \
    XX(DOMAIN_PREFIX, "domainPrefix")                                                              \
    XX(ERROR_MESSAGE, "error.message")                                                             \
    XX(ERROR_MESSAGE_STRING, "error.messageString")                                                \
    XX(ERROR_RESPONSE_TYPE, "error.responseType")                                                  \
    XX(ERROR_VALIDATION, "error.validationErrorString")                                            \
    XX(AUTHORIZER_PRINCIPAL, "authorizer.principalId")                                             \
    XX(AUTHORIZER_ERROR, "authorizer.error")                                                       \
    XX(AUTHORIZER_STATUS, "authorizer.status")                                                     \
    XX(AUTHORIZER_LATENCY, "authorizer.latency")                                                   \
    XX(WAF_STATUS, "waf.status")                                                                   \
    XX(WAF_LATENCY, "waf.latency")                                                                 \
    XX(WAF_ERROR, "waf.error")                                                                     \
    XX(WAF_RULE, "waf.rule")                                                                       \
    XX(WAF_COUNTED, "waf.counted")                                                                 \
    XX(WAF_MANAGED_RULE_IDS, "waf.managed.ruleIds")                                                \
    XX(WAF_MANAGED_MESSAGES, "waf.managed.messages")                                               \
    XX(WAF_MANAGED_SCORE, "waf.managed.score")                                                     \
    XX(WAF_RATE_BASED, "waf.rateBased")                                                            \
    XX(WAF_LABELS, "waf.labels")                                                                   \
    XX(WAF_RESPONSE_CODE, "wafResponseCode")                                                       \
    XX(CONNECTION_ID, "connectionId")                                                              \
    XX(CONNECTED_AT, "connectedAt")                                                                \
    XX(EVENT_TYPE, "eventType")                                                                    \
    XX(MESSAGE_ID, "messageId")                                                                    \
    XX(DISCONNECT_STATUS, "disconnectStatusCode")                                                  \
    XX(DISCONNECT_REASON, "disconnectReason")                                                      \
    XX(RESOURCE_PATH, "resourcePath")                                                              \
    XX(RESOURCE_ID, "resourceId")                                                                  \
    XX(WEBACL_ARN, "webaclArn")                                                                    \
    XX(AUTHORIZER_INTEGRATION_LATENCY, "authorizer.integrationLatency")                            \
    XX(AUTHORIZER_INTEGRATION_STATUS, "authorizer.integrationStatus")                              \
    XX(CACHE_STATUS, "cache.status")

enum {
#define XX(id, _) MGW_VAR_##id,
    MGW_CONTEXT_VARS(XX)
#undef XX
        MGW_VAR_STAGE_VARIABLE, /* $stageVariables.NAME; the name is the argument */
    MGW_VAR_AUTHORIZER_KEY,     /* $context.authorizer.KEY: a Lua authorizer's context value */
    MGW_VAR_CUSTOM,             /* $context.custom.NAME: a value set by a log policy */
    MGW_VAR__COUNT
};

/*
 * Looks a variable up for rendering: returns 1 and sets *out when it has a value, 0 when
 * it has none (rendered "-"). arg is the name of a stage variable, authorizer context key
 * or custom value.
 */
typedef int (*mgw_var_lookup_cb)(void *ud, int var, mgw_str_t arg, mgw_str_t *out);

typedef struct mgw_template_s mgw_template_t;

/*
 * Compiles src into pool memory. Returns NULL and sets *err (pool memory) for an unknown
 * variable. A template whose first non-blank character is '{' is JSON: values are
 * JSON-escaped.
 */
mgw_template_t *mgw_template_compile(mgw_pool_t *pool, const char *src, const char **err);

/* Appends the rendered template to out. */
void mgw_template_render(const mgw_template_t *t, mgw_var_lookup_cb lookup, void *ud,
                         mgw_buf_t *out);

/*
 * The variable named name (n bytes, what follows "$context."), or -1 when there is none.
 * For authorizer.KEY and custom.NAME, *arg is set to KEY / NAME (borrowed from name).
 */
int mgw_template_var(const char *name, size_t n, mgw_str_t *arg);

/* Returns 1 when t uses var (lets callers skip work nobody reads). */
int mgw_template_uses(const mgw_template_t *t, int var);

#endif
