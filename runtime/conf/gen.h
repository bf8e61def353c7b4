/*
 * A configuration generation: everything compiled from one configuration file (APIs,
 * stages, routers, templates, open log files), immutable once built and
 * reference-counted, so that requests keep the generation they started with.
 */
#ifndef MGW_GEN_H
#define MGW_GEN_H

#include <stdatomic.h>
#include <stdint.h>
#include <sys/socket.h>

#include "conf/apitype.h"
#include "conf/gwresp.h"
#include "conf/path.h"
#include "base/quota.h"
#include "base/throttle.h"
#include "base/tls.h"
#include "base/pool.h"
#include "conf/router.h"
#include "conf/rsel.h"
#include "conf/template.h"

typedef struct mgw_api_s mgw_api_t;
typedef struct mgw_validation_s mgw_validation_t; /* conf/valconf.h */

/* Integration types (mgw_integration_t.type): each is an entry in the request core's
 * integration table (gw/gw.h), filled in by the layer that implements it. */
enum {
    MGW_INTEG_HTTP,
    MGW_INTEG_MOCK,
    MGW_INTEG_LUA,
    MGW_INTEG_CONNECTIONS, /* a WebSocket API's "$connections" route: the @connections call */
    MGW_INTEG__COUNT
};

/* Authorizer types (mgw_route_t.authorizer_type), entries of gw/gw.h's authorizer table. */
enum { MGW_AUTHZ_NONE, MGW_AUTHZ_LUA, MGW_AUTHZ_JWT, MGW_AUTHZ__COUNT };

/* API protocols (mgw_api_t.protocol), each with its table of differences (conf/apitype.h):
 * a protocol whose table says the core runs no phases sends its requests to the handler
 * its layer registers with the request core (gw/gw.h, mgw_gw_set_protocol). */
enum { MGW_PROTO_HTTP, MGW_PROTO_WEBSOCKET, MGW_PROTO_REST, MGW_PROTO__COUNT };

/* What a listener serves (mgw_listen_t.kind): each kind's requests go to the request
 * handler registered for it (gw/gw.h). */
enum { MGW_LISTEN_API, MGW_LISTEN_MANAGEMENT, MGW_LISTEN__COUNT };

/*
 * Lua policy uses (WAF ACLs, authorizers, route selectors, Lua integrations, log
 * policies) are numbered from 1 in mgw_gen_t.lua_spec; 0 means none. The Lua side
 * (lua/moongate/runtime.lua) holds everything else about them.
 */

/* A web ACL rule's custom block response (AWS CustomResponse): status, headers (the
 * content type among them) and body, answered instead of the WAF_FILTERED response. */
typedef struct mgw_wafresp_s {
    int status;
    mgw_hdr_t *hdrs;
    int nhdrs;
    mgw_str_t body;
} mgw_wafresp_t;

typedef struct {
    int type;
    /* http */
    const char *uri;
    int uri_static;      /* no {param} or ${stageVariables.x}: url and host are parsed once */
    mgw_url_t url;       /* borrows from uri */
    const char *host;    /* url.host, NUL-terminated */
    const char *method;  /* NULL: the request's method */
    uint64_t timeout_ms; /* http; lua: the handler's deadline */
    int handler;         /* lua: the use number of the handler */
    /* mock */
    int status;
    mgw_kv_t *headers;
    int nheaders;
    mgw_str_t body;
} mgw_integration_t;

/*
 * A JWT authorizer (apis[id].authorizers[name] with type = "jwt", conf/jwtconf.c), which
 * the auth layer runs (runtime/auth/): the token's place, the rules of its claims, and
 * its keys: a JWK Set read from jwks_file at load, fetched from jwks_uri or found by OIDC
 * discovery (at run time, by the auth layer), and/or an HMAC secret for HS* tokens.
 */
typedef struct mgw_jwt_conf_s {
    const char *name;
    const char *where; /* its config path (apis.pets.authorizers.NAME), for logs */
    const mgw_api_t *api;
    const char *issuer;
    const char **audiences;
    int naudiences;
    const char *jwks_uri;         /* a JWK Set URL, or NULL */
    int discovery;                /* no JWK Set given: its URL comes from OIDC discovery */
    const char *jwks_file;        /* resolved, or NULL */
    struct mgw_jwks_s *file_keys; /* jwks_file's keys (a reference the generation holds) */
    const uint8_t *secret;        /* secret_file's bytes (HS* tokens), or NULL */
    size_t secret_len;
    const char *backend_ca; /* https key sources: the CA bundle; NULL: the system store */
    int id_query;           /* the token is in the query string (else in a header) */
    const char *id_name;    /* that header (lower case) or query parameter */
    size_t id_name_len;
    int64_t leeway_s;    /* clock skew allowed on exp, nbf and iat */
    uint32_t algorithms; /* 1 << mgw_jwa_t for each algorithm accepted */
    uint64_t ttl_ms;     /* verified tokens are cached this long (0: no cache) */
    int shared_cache;    /* ...and shared through the cluster's Redis */
    /* what a verified token depends on (API, name, issuer, audiences, key sources and
     * their keys, algorithms, leeway, identity source): the shared cache's namespace */
    uint8_t digest[32];
    const char *usage_claim; /* usage_identifier_claim, or NULL */
    struct mgw_jwt_rt_s *rt; /* the auth layer's state, made before the generation
                              * serves (auth/jwt.h mgw_jwt_gen_prepare) */
} mgw_jwt_conf_t;

typedef struct {
    const char *key;
    size_t key_len;
    int idx;                   /* position in the API's routes, for per-route tables */
    int route_response;        /* websocket: the integration's answer goes back to the client */
    int api_key_required;      /* callers must present an API key */
    int authorizer_type;       /* MGW_AUTHZ_* */
    int authorizer;            /* use number of the route's Lua authorizer, or 0 */
    const mgw_jwt_conf_t *jwt; /* the route's JWT authorizer, or NULL */
    const char **scopes;       /* scopes the route requires (a JWT authorizer checks them) */
    int nscopes;
    mgw_integration_t integration;
    const mgw_validation_t *validation; /* request validation (conf/valconf.h), or NULL */
} mgw_route_t;

/*
 * A stage's response cache (apis[id].stages[name].cache, conf/cacheconf.c), which the
 * cache phase uses (gw/cache.c): the store shared by every worker (base/rcache.h), and
 * per route the methods cached, the TTL and the request parameters in the key.
 */
enum { MGW_CACHE_OFF, MGW_CACHE_GET, MGW_CACHE_ALL }; /* mgw_route_cache_t.mode */
enum { MGW_CKEY_QUERY, MGW_CKEY_HEADER };             /* mgw_cache_param_t.kind */
enum {                                                /* mgw_stage_cache_t.unauthorized */
       MGW_CACHE_FAIL_WITH_403,
       MGW_CACHE_SUCCEED_WITH_RESPONSE_HEADER,
       MGW_CACHE_SUCCEED_WITHOUT_RESPONSE_HEADER
};

typedef struct {
    int kind;       /* MGW_CKEY_* */
    mgw_str_t name; /* a query parameter's name, or a header's (lower case) */
} mgw_cache_param_t;

typedef struct {
    int mode;        /* MGW_CACHE_*: GET requests only (the default), every method, none */
    uint64_t ttl_ms; /* > 0 unless mode is OFF */
    mgw_cache_param_t *params;
    int nparams;
} mgw_route_cache_t;

typedef struct {
    struct mgw_rcache_s *store;     /* a reference the generation holds */
    mgw_route_cache_t *routes;      /* by route idx */
    int require_authorization;      /* max-age=0 refreshes only for callers allowed to */
    int unauthorized;               /* MGW_CACHE_FAIL_WITH_403 ... */
    uint8_t (*invalidate_keys)[32]; /* SHA-256 of the invalidate_keys' values */
    int ninvalidate_keys;
} mgw_stage_cache_t;

/* One throttle level of a route: its bucket and the policy name clients and logs see. */
typedef struct {
    mgw_bucket_t *bucket; /* NULL: no limit at this level */
    const char *policy;   /* "stage", "route", "plan-route", ... */
} mgw_limit_t;

/* WAF log actions, for filters (a request has its action's bit, and COUNT when a count
 * rule matched). */
enum { MGW_WAFLOG_ALLOW = 1, MGW_WAFLOG_BLOCK = 2, MGW_WAFLOG_COUNT = 4 };

/* One filter of a WAF log (AWS LoggingFilter): when the request's actions meet the
 * conditions (all of them, or any), the request is kept or dropped. */
typedef struct {
    int keep, all;
    unsigned actions; /* MGW_WAFLOG_* */
} mgw_waflog_filter_t;

/* A managed rule of the web ACL, as the WAF log's ruleGroupList names it. */
typedef struct {
    int idx; /* into mgw_gen_t.waf_managed */
    const char *name, *group;
    int count; /* the rule's action is count */
} mgw_waflog_managed_t;

/* A stage's WAF log (README "WAF logs"): written by the lua layer (lua/waflog.c) after
 * the response, through the stage's access-log writer. */
typedef struct {
    int log_id;                  /* index into mgw_gen_t.logs */
    int sample_all;              /* sample_rate 1: no random draw */
    uint64_t sample_below;       /* else logged when a random 64-bit value is below it */
    const char *webacl_id;       /* $context.webaclArn */
    const char *source_id;       /* httpSourceId: "API:STAGE" */
    const char **redact_headers; /* lower case */
    int nredact_headers;
    int redact_query, redact_uri, redact_method;
    int keep; /* the filters' default behavior */
    mgw_waflog_filter_t *filters;
    int nfilters;
    mgw_waflog_managed_t *managed;
    int nmanaged;
} mgw_waflog_t;

typedef struct {
    const char *name;
    mgw_api_t *api;
    mgw_kv_t *vars;
    int nvars;
    mgw_template_t *log_format;    /* NULL: no access log */
    int log_id;                    /* index into mgw_gen_t.logs */
    mgw_bucket_t *shared_throttle; /* shared_throttle: one bucket for every route, or NULL */
    /* By route idx, or NULL when no route is limited: the route's own bucket, with its
     * route_settings limit ("route") or else the stage's default throttle ("stage"). As
     * in API Gateway, a stage's throttle is a per-route default, not a shared limit. */
    mgw_limit_t *route_limits;
    int rate_limit_headers;      /* send RateLimit-Policy / RateLimit */
    int waf;                     /* use number of the stage's web ACL, or 0 */
    const mgw_waflog_t *waf_log; /* the web ACL's log, or NULL (no request pays for it) */
    mgw_stage_cache_t *cache;    /* the response cache, or NULL (no route pays for it) */
    int log_policy;              /* use number of the access log's Lua policy, or 0 */
    /* https backends: the client context (with the stage's client certificate, if any) */
    mgw_tls_ctx_t *backend_tls;
    const char *backend_tls_id; /* identifies it across generations (pool keys) */
    const char *client_cert_file, *client_key_file;
    int client_cert_generate;
} mgw_stage_t;

/* A usage plan of an API: its limits, applied per API key. */
typedef struct {
    const char *name;
    int has_quota, quota_period;
    uint64_t quota_limit, quota_offset;
    char *stages; /* by stage index: 1 when the plan covers the stage */
} mgw_plan_t;

/* An API key's membership in a plan, with the key's own buckets and quota counter. */
typedef struct {
    const mgw_api_t *api;
    const mgw_plan_t *plan;
    mgw_bucket_t *throttle;    /* the plan's limit for this key, or NULL */
    mgw_limit_t *route_limits; /* by route idx ("plan-route"), or NULL */
    mgw_quota_t *quota;        /* NULL without a quota */
} mgw_member_t;

typedef struct {
    const char *id;
    uint8_t digest[32]; /* SHA-256 of the key: the configuration may hold only this */
    mgw_member_t *members;
    int nmembers;
} mgw_apikey_t;

typedef struct {
    int configured;
    int status; /* 0: the type's default */
    mgw_kv_t *headers;
    int nheaders;
    mgw_template_t *body; /* NULL: the default body */
} mgw_gwresp_conf_t;

/*
 * A WebSocket API's settings (apis[id].websocket) and its routes by kind. $connect and
 * $disconnect always exist: the configuration's, or a mock that answers 200 when it has
 * none (so that every connection has one of each); default_route may be NULL.
 */
typedef struct {
    mgw_rsel_t *selection; /* route_selection_expression, compiled (conf/rsel.h) */
    const mgw_route_t *connect_route, *disconnect_route, *default_route;
    /* "$connections": @connections on the API's endpoint (connections_endpoint), or NULL */
    const mgw_route_t *connections_route;
    size_t max_frame, max_message; /* bytes (close 1009 above) */
    uint64_t idle_timeout_ms;      /* 0: none */
    uint64_t max_duration_ms;      /* 0: none */
    uint64_t ping_interval_ms;     /* the gateway pings this often (0: never) */
    uint64_t pong_timeout_ms;      /* and closes a connection whose pong does not come */
    size_t send_queue_max;         /* bytes queued to a client before close 1008 */
    struct mgw_ws_stats_s *stats;  /* by stage index: ws/'s metrics series, or NULL */
} mgw_ws_conf_t;

struct mgw_api_s {
    const char *id;
    int protocol;              /* MGW_PROTO_* */
    const mgw_apitype_t *type; /* the protocol's differences (conf/apitype.h) */
    int api_key_source;        /* MGW_KEYSRC_* */
    mgw_ws_conf_t *ws;         /* websocket APIs, else NULL */
    int default_endpoint;
    mgw_stage_t *stages;
    int nstages;
    mgw_stage_t *default_stage; /* the $default stage, or NULL */
    mgw_router_t *router;
    mgw_route_t **routes; /* by idx */
    int nroutes;
    mgw_route_t **by_key; /* the routes sorted by key (mgw_api_find_route) */
    int selector;         /* use number of the route_selection policy, or 0 */
    mgw_plan_t *plans;
    int nplans;
    mgw_jwt_conf_t *jwts; /* the API's JWT authorizers */
    int njwts;
    mgw_gwresp_conf_t responses[MGW_GW__COUNT];
};

/* The API's type (its protocol's table); APIs built without one are HTTP APIs. */
static inline const mgw_apitype_t *mgw__api_type(const mgw_api_t *api)
{
    return api && api->type ? api->type : mgw_apitype_of(api ? api->protocol : MGW_PROTO_HTTP);
}

typedef struct {
    const char *base; /* "" or one segment */
    size_t base_len;
    mgw_api_t *api;
    mgw_stage_t *stage; /* NULL: taken from the path */
} mgw_mapping_t;

typedef struct {
    const char *host;
    mgw_mapping_t *maps; /* longest base first */
    int nmaps;
    const char *certificate, *key; /* TLS, or NULL */
    int mtls;                      /* MGW_MTLS_*: only TLS connections whose SNI chose this
                                      domain (and so passed its checks) may use it */
    const char *truststore, *crl;
    const char *truststore_file; /* as configured (truststore may be a recorded version) */
    int truststore_pin;          /* mtls.version, or 0 */
    int truststore_version;      /* the version served */
    int revocation_use;          /* the Lua revocation check (policy use number), or 0 */
    uint64_t revocation_ttl_ms;  /* how long a verdict is cached per certificate */
    const char *forward_header;  /* send the client certificate to backends, or NULL */
} mgw_domain_t;

typedef struct {
    int kind; /* MGW_LISTEN_* */
    const char *address;
    int port;
    mgw_api_t *api;          /* default endpoint served by this listener, or NULL */
    const char *certificate; /* TLS listener: default certificate and key, else NULL */
    const char *key;
    int reject_unknown_sni;
    mgw_tls_ctx_t *tls; /* built from the above and the domains */
} mgw_listen_t;

/* Log destinations (conf/logsink.h): a file, a standard stream, a syslog server. */
enum { MGW_LOGSINK_FILE, MGW_LOGSINK_STREAM, MGW_LOGSINK_UDP, MGW_LOGSINK_TCP, MGW_LOGSINK_UNIX };

typedef struct {
    const char *path; /* what makes it one: a file's path, "<stdout>", "<syslog ...>" */
    int fd;           /* a file's or stream's descriptor; -1 for syslog (sockets are per worker) */
    int kind;         /* MGW_LOGSINK_* */
    /* syslog: the server, and each RFC 5424 message's header around its TIMESTAMP */
    struct sockaddr_storage addr;
    socklen_t addrlen;
    const char *head; /* "<PRI>1 " */
    const char *tail; /* " HOSTNAME APP-NAME PROCID MSGID - " */
} mgw_logfile_t;

/* The configuration's `tracing` (README "Tracing"): W3C trace context to backends, and
 * when otlp_url is set, spans exported over OTLP/HTTP JSON. */
typedef struct mgw_tracing_s {
    const char *service_name;      /* resource service.name */
    const char *request_id_header; /* lower case; NULL: requestId is not sent */
    size_t request_id_header_len;
    /* OTLP export (http/otlp.c), off when otlp_url is NULL */
    const char *otlp_url;          /* the collector's endpoint, http:// or https:// */
    uint64_t sample_below;         /* a new trace is sampled when rng < this */
    int sample_all;                /* sample_ratio 1: no draw */
    int batch_size, max_queue;     /* spans per export; spans kept waiting per worker */
    uint64_t flush_ms, timeout_ms; /* export period; bound on one export */
    mgw_hdr_t *otlp_headers;       /* sent with every export */
    int notlp_headers;
} mgw_tracing_t;

/* The configuration's `cluster` (README "Running a cluster"): the Redis server the nodes
 * share limits, quotas and WebSocket connections through. Read at start-up; a reload that
 * changes it is logged and takes effect at the next start (cluster/cluster.h). */
typedef struct mgw_cluster_conf_s {
    const char *node_id;       /* unique in the cluster */
    const char *redis_address; /* IP address or host name */
    int redis_port;
    const char *redis_password; /* the first line of password_file, or NULL */
    int redis_database;
    uint64_t timeout_ms;       /* a command unanswered this long: Redis is down */
    uint64_t sync_interval_ms; /* local shares are settled with Redis this often */
    int expected_nodes;        /* the fallback divisor; 0: the nodes last seen alive */
    const char *key_prefix;    /* every key and channel starts with it and ':' */
} mgw_cluster_conf_t;

typedef struct mgw_gen_s {
    mgw_pool_t *pool;
    atomic_int refs;
    int id; /* 1 for the first generation of the process, then 2, 3, ... */
    const char *file;
    const char *prefix; /* -p: relative paths are resolved against it */
    int workers;
    /* the listeners, then the management listener (if any) at listen[nlisten]: a
     * connection names its listener by index, whichever kind it is */
    mgw_listen_t *listen;
    int nlisten;
    mgw_domain_t *domains;
    int ndomains;
    mgw_api_t *apis;
    int napis;
    mgw_logfile_t *logs;
    int nlogs;
    int log_level, log_json; /* the error log's (base/log.h) */
    uint64_t max_body_size;
    size_t max_header_size;
    uint64_t header_timeout_ms, idle_timeout_ms, body_timeout_ms, shutdown_timeout_ms;
    uint64_t send_timeout_ms;   /* a client that takes none of a response for this long is closed */
    mgw_bucket_t *account;      /* gateway-wide limit, or NULL */
    int exact_limits;           /* some limit has exact = true (base/throttle.h) */
    const char *backend_ca;     /* CA bundle for https backends, NULL: the system store */
    mgw_tls_ctx_t *backend_tls; /* client context without a client certificate */
    mgw_apikey_t *keys;         /* sorted by digest */
    int nkeys;
    const char *state_dir;
    /* Lua policies: the text of lua/moongate/runtime.lua's generation spec (policy
     * sources and their uses), NULL when the configuration uses none */
    const char *lua_spec;
    size_t lua_spec_len;
    /* managed rule sets of web ACL rules (conf/modsec.h), indexed by the rules' `managed`
     * number in lua_spec: shared by every worker, freed with the generation */
    struct mgw_modsec_s **waf_managed;
    int nwaf_managed;
    /* rate-based rules of web ACLs (conf/wafrate.h), indexed by the rules' `rate` number
     * in lua_spec; their counters are shared by every worker and outlive a reload that
     * keeps the rule */
    struct mgw_wafrate_s *waf_rate;
    int nwaf_rate;
    /* rule statements of web ACL rules (conf/wafstmt.h), indexed by the rules'
     * `statement` number in lua_spec; and the custom block responses of rules and web
     * ACLs, indexed by their `response` number */
    struct mgw_wafstmt_s **waf_statements;
    int nwaf_statements;
    struct mgw_wafresp_s *waf_responses;
    int nwaf_responses;
    /* the country database (base/geodb.h) of geo_match statements and the WAF log's
     * country, loaded only when a statement needs it (else NULL); a reference the
     * generation holds, shared with other generations while the files are unchanged */
    struct mgw_geodb_s *geodb;
    mgw_listen_t *management; /* &listen[nlisten], the management listener, or NULL */
    /* the file whose token every management request must carry (manage.h) */
    const char *management_token_file;
    /* the request metrics' table of this generation's series (gw/metrics.h), made before
     * the generation serves; NULL when none was made (nothing is counted) */
    struct mgw_gen_metrics_s *metrics;
    int watch;                /* reload when a file of watch_files changes */
    const char **watch_files; /* the configuration file and every policy file */
    int nwatch;
    /* trace context propagation and span export (README "Tracing"), NULL when off */
    const struct mgw_tracing_s *tracing;
    /* the nodes this one shares state with (README "Running a cluster"), NULL: one node */
    const mgw_cluster_conf_t *cluster;
} mgw_gen_t;

void mgw_gen_ref(mgw_gen_t *g);
/* Drops a reference; the last one closes the log files and frees the generation. */
void mgw_gen_unref(mgw_gen_t *g);

/* The API whose id is id (n bytes), or NULL. */
mgw_api_t *mgw_gen_find_api(const mgw_gen_t *g, const char *id, size_t n);
/* The stage of api named name (n bytes), or NULL. */
mgw_stage_t *mgw_api_find_stage(const mgw_api_t *api, const char *name, size_t n);
/* The route of api whose key is key (n bytes, an exact match), or NULL. */
const mgw_route_t *mgw_api_find_route(const mgw_api_t *api, const char *key, size_t n);
/* The API key whose SHA-256 is digest, or NULL. */
const mgw_apikey_t *mgw_gen_find_key(const mgw_gen_t *g, const uint8_t digest[32]);
/* The key's membership in a plan of api covering stage, or NULL. */
const mgw_member_t *mgw_key_member(const mgw_apikey_t *k, const mgw_api_t *api,
                                   const mgw_stage_t *stage);

/* The configured domain for host (n bytes, lower case), or NULL. */
const mgw_domain_t *mgw_gen_find_domain(const mgw_gen_t *g, const char *host, size_t n);

#endif
