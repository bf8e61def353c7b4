/*
 * Gateway response types (responses the gateway makes itself): their default status,
 * message and x-amzn-ErrorType, and how a type falls back to DEFAULT_4XX / DEFAULT_5XX.
 */
#ifndef MGW_GWRESP_H
#define MGW_GWRESP_H

/* XX(TYPE, status, "message", "x-amzn-ErrorType") */
#define MGW_GWRESP_TYPES(XX)                                                                       \
    XX(ACCESS_DENIED, 403, "Forbidden", "AccessDeniedException")                                   \
    XX(API_CONFIGURATION_ERROR, 500, "Internal Server Error", "InternalServerErrorException")      \
    XX(AUTHORIZER_CONFIGURATION_ERROR, 500, "Internal Server Error",                               \
       "AuthorizerConfigurationException")                                                         \
    XX(AUTHORIZER_FAILURE, 500, "Internal Server Error", "AuthorizerFailureException")             \
    XX(BAD_REQUEST, 400, "Bad Request", "BadRequestException")                                     \
    XX(BAD_REQUEST_BODY, 400, "Invalid request body", "BadRequestException")                       \
    XX(BAD_REQUEST_PARAMETERS, 400, "Invalid request parameters", "BadRequestException")           \
    XX(EXPIRED_TOKEN, 403, "Forbidden", "ExpiredTokenException")                                   \
    XX(INTEGRATION_FAILURE, 502, "Bad Gateway", "BadGatewayException")                             \
    XX(INTEGRATION_TIMEOUT, 504, "Endpoint request timed out", "GatewayTimeoutException")          \
    XX(INVALID_API_KEY, 403, "Forbidden", "ForbiddenException")                                    \
    XX(INVALID_SIGNATURE, 403, "Forbidden", "InvalidSignatureException")                           \
    XX(MISDIRECTED_REQUEST, 421, "Misdirected Request", "MisdirectedRequestException")             \
    XX(MISSING_AUTHENTICATION_TOKEN, 403, "Missing Authentication Token",                          \
       "MissingAuthenticationTokenException")                                                      \
    XX(QUOTA_EXCEEDED, 429, "Limit Exceeded", "LimitExceededException")                            \
    XX(REQUEST_HEADERS_TOO_LARGE, 431, "Request Header Fields Too Large",                          \
       "RequestHeaderFieldsTooLargeException")                                                     \
    XX(REQUEST_TIMEOUT, 408, "Request Timeout", "RequestTimeoutException")                         \
    XX(REQUEST_TOO_LARGE, 413, "Request Too Long", "RequestTooLargeException")                     \
    XX(RESOURCE_NOT_FOUND, 404, "Not Found", "NotFoundException")                                  \
    XX(THROTTLED, 429, "Too Many Requests", "TooManyRequestsException")                            \
    XX(UNAUTHORIZED, 401, "Unauthorized", "UnauthorizedException")                                 \
    XX(UNSUPPORTED_MEDIA_TYPE, 415, "Unsupported Media Type", "UnsupportedMediaTypeException")     \
    XX(WAF_FILTERED, 403, "Forbidden", "ForbiddenException")                                       \
    XX(DEFAULT_4XX, 400, "Bad Request", "BadRequestException")                                     \
    XX(DEFAULT_5XX, 500, "Internal Server Error", "InternalServerErrorException")

typedef enum {
#define XX(t, s, m, e) MGW_GW_##t,
    MGW_GWRESP_TYPES(XX)
#undef XX
        MGW_GW__COUNT,
    MGW_GW_NONE = -1
} mgw_gwresp_type_t;

typedef struct {
    const char *name, *message, *error_type;
    int status;
} mgw_gwresp_info_t;

/* The built-in defaults of a type. */
const mgw_gwresp_info_t *mgw_gwresp_info(mgw_gwresp_type_t type);
/* The type named name ("THROTTLED"), or MGW_GW_NONE. */
mgw_gwresp_type_t mgw_gwresp_by_name(const char *name);
/* DEFAULT_4XX or DEFAULT_5XX for a type, by its default status. */
mgw_gwresp_type_t mgw_gwresp_fallback(mgw_gwresp_type_t type);

#endif
