-- moongate.config.schema: the gateway configuration, declared in the schema language
-- of moongate.config.lang. Every field has a description; single values are checked by
-- moongate.config.values, what spans several fields by moongate.config.checks (the
-- `post` functions), the Lua policies a configuration names by moongate.config.policies.
-- The module is the root node (moongate.config.schema, the table that specs walk).
local type, lower = type, string.lower
local lang = require "moongate.config.lang"
local values = require "moongate.config.values"
local checks = require "moongate.config.checks"
local policies = require "moongate.config.policies"
local validation = require "moongate.config.validation"
local mapping_conf = require "moongate.config.mapping"
local cache_conf = require "moongate.config.cache"
local waf_conf = require "moongate.config.waf"
local logsink = require "moongate.config.logsink"
local constants = require "moongate.constants"
local policy_lib = require "moongate.policy"
local show = lang.show
local METHODS, API_ID, VARIABLE_NAME, HEADER_TOKEN = values.METHODS, values.API_ID,
  values.VARIABLE_NAME, values.HEADER_TOKEN
local header_value_error, uri_error = values.header_value_error, values.uri_error
local route_selection_expression_error = values.route_selection_expression_error
local api_key_value_error, hex64_error = values.api_key_value_error, values.hex64_error
local address_error, file_error, template_error = values.address_error, values.file_error,
  values.template_error
local lua_pattern_error, identity_source_error = values.lua_pattern_error, values.identity_source_error
local log_path_error, stage_name_error, host_error = values.log_path_error, values.stage_name_error,
  values.host_error
local base_path_error, strip_slashes, workers_value = values.base_path_error, values.strip_slashes,
  values.workers_value
local policy_use = policies.use
local check_throttle = checks.throttle

-- The gateway response types (runtime/conf/gwresp.h), sorted by name.
local GATEWAY_RESPONSE_TYPES = constants.GATEWAY_RESPONSE_TYPES

local function headers_map(description)
  return {
    type = "map", default = {}, description = description,
    keys = {
      type = "string", pattern = HEADER_TOKEN, description = "header name (an HTTP token)",
      pattern_message = "invalid header name: must be an HTTP token",
      normalize = lower, duplicate = "header",
    },
    values = { type = "string", check = header_value_error, description = "header value" },
  }
end

local http_integration = {
  type = "record", description = "HTTP integration: a proxy, or with proxy = false a mapped one",
  post = mapping_conf.check, -- h-mapping
  fields = {
    type = { type = "string", one_of = { "http" }, description = 'integration type "http"' },
    uri = {
      type = "string", required = true, check = uri_error,
      description = "http:// or https:// URL template with {param}, {param+} and ${stageVariables.NAME}",
    },
    method = { type = "string", one_of = METHODS, description = "method sent to the backend (default: the request's)" },
    timeout_ms = {
      type = "integer", between = { 50, 29000 }, default = 29000,
      description = "backend timeout in milliseconds (connect + response head, and between body reads)",
    },
  },
}
for name, field in pairs(mapping_conf.fields) do -- h-mapping: proxy = false
  http_integration.fields[name] = field
end
http_integration.fields.cache_key_parameters = cache_conf.key_parameters_field

local mock_integration = {
  type = "record", description = "mock integration: a fixed response",
  fields = {
    type = { type = "string", one_of = { "mock" }, description = 'integration type "mock"' },
    status = { type = "integer", between = { 100, 599 }, default = 200, description = "response status" },
    headers = headers_map("response headers"),
    body = { type = "string", default = "", description = "response body" },
  },
}

local throttle_settings = {
  type = "record", description = "a token bucket: rate requests/second refilled continuously, burst capacity",
  fields = {
    rate = {
      type = "number", above = 0, at_most = 1e6, required = true,
      description = "steady requests per second (fractions allowed, at most 1,000,000)",
    },
    burst = {
      type = "integer", between = { 0, 1e9 }, required = true,
      description = "bucket capacity: requests allowed at once after an idle period",
    },
    exact = {
      type = "boolean", default = false,
      description = "in a cluster, every request asks Redis (precise for small limits, a round trip"
        .. " per request) instead of spending a local share of tokens leased from it",
    },
  },
}
throttle_settings.post = check_throttle

local function route_settings(description)
  return {
    type = "map", default = {}, description = description,
    -- the key's form depends on the API's protocol: checked with the API (checks.api)
    keys = { type = "string", description = "a route key of the API" },
    values = {
      type = "record", description = "settings of one route",
      fields = { throttle = throttle_settings, cache = cache_conf.route_settings_field },
    },
  }
end

local api_key = {
  type = "record", description = "an API key", post = checks.api_key,
  fields = {
    value = { type = "string", check = api_key_value_error, description = "the key (20 to 128 characters)" },
    sha256 = { type = "string", check = hex64_error, normalize = lower,
      description = "hex SHA-256 digest of the key, instead of value" },
    description = { type = "string", description = "free text" },
  },
}

local usage_plan = {
  type = "record", description = "a usage plan: throttle and quota per API key",
  fields = {
    throttle = throttle_settings,
    quota = {
      type = "record", description = "requests allowed per period and key",
      fields = {
        limit = { type = "integer", between = { 1, 2 ^ 40 }, required = true, description = "requests per period" },
        period = { type = "string", one_of = { "day", "week", "month" }, required = true,
          description = "day (from 00:00 UTC), week (from Monday 00:00 UTC) or month (from the 1st, 00:00 UTC)" },
        offset = { type = "integer", between = { 0, 2 ^ 40 }, default = 0,
          description = "requests subtracted from the limit in the first period" },
      },
    },
    keys = {
      type = "list", required = true, non_empty = true, description = "ids of the API keys in the plan",
      elements = { type = "string", non_empty = true, description = "an API key id" },
    },
    stages = {
      type = "list", description = "stages the plan covers (default: every stage of the API)",
      elements = { type = "string", non_empty = true, description = "a stage name" },
    },
    route_settings = route_settings("per-route throttle for each key of the plan"),
  },
}

---------------------------------------------------------------------------
-- Lua policies (loaded and their `config` checked by moongate.config.policies)
---------------------------------------------------------------------------

local function policy_field(description)
  return {
    type = "string", non_empty = true, required = true,
    description = description .. " (a Lua file; relative paths are resolved against the prefix)",
  }
end

local policy_config = {
  type = "custom", description = "the policy's configuration, validated by its schema",
  validate = function(v)
    if type(v) ~= "table" then
      return nil, "must be a table, got " .. show(v)
    end
    return v
  end,
}

local lua_authorizer = {
  type = "record", description = "a Lua authorizer (REQUEST or TOKEN, as Lambda authorizers)",
  post = checks.authorizer,
  fields = {
    type = { type = "string", one_of = { "lua" }, description = 'authorizer type "lua"' },
    policy = policy_field("the policy whose authorize(req, conf, auth) decides"),
    config = policy_config,
    kind = {
      type = "string", one_of = { "REQUEST", "TOKEN" }, default = "REQUEST",
      description = "REQUEST: the hook sees the whole request; TOKEN: one token (auth.token)",
    },
    identity_sources = {
      type = "list", description = "values that must be present (else 401) and key the cache",
      elements = { type = "string", check = identity_source_error, description = "an identity source" },
    },
    ttl = {
      type = "integer", between = { 0, 3600 }, default = 300,
      description = "seconds a decision is cached per identity (0: no cache)",
    },
    shared_cache = {
      type = "boolean", default = false,
      description = "with cluster: cached decisions are shared with the other nodes through Redis",
    },
    token_pattern = {
      type = "string", check = lua_pattern_error,
      description = "TOKEN: a Lua pattern the token must match (else 401 without running the policy)",
    },
    payload_format_version = {
      type = "string", one_of = { "1.0", "2.0" },
      description = 'REQUEST: the event\'s shape (AWS Lambda payload format): "1.0" or "2.0"'
        .. ' (default "1.0" on REST APIs, which allow only "1.0"; "2.0" on HTTP APIs)',
    },
  },
}

-- The JWS algorithms a JWT authorizer can verify (RFC 7518 names, RFC 8037's EdDSA);
-- runtime/base/jose.c parses the same names (mgw_jwa_parse), and the gateway refuses a
-- name it does not know when it builds the configuration.
local JWT_ALGORITHMS = { "HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "PS384",
  "PS512", "ES256", "ES384", "ES512", "EdDSA" }

local jwt_authorizer = {
  type = "record", post = checks.jwt_authorizer,
  description = "a JWT authorizer: the token's signature (a JWKS key or a shared secret), issuer,"
    .. " audience, times and the route's scopes, checked by the gateway itself",
  fields = {
    type = { type = "string", one_of = { "jwt" }, description = 'authorizer type "jwt"' },
    issuer = {
      type = "string", required = true, non_empty = true,
      description = "the token's iss must equal it; OIDC discovery reads ISSUER/.well-known/openid-configuration",
    },
    audience = {
      type = "list", required = true, non_empty = true, max_entries = 50,
      description = "the token's aud (a string or a list), or client_id without aud, must be one of these",
      elements = { type = "string", non_empty = true, description = "an audience" },
    },
    jwks_uri = {
      type = "string", check = values.url_error,
      description = "http:// or https:// URL of the JWK Set (https verified with backend_ca)",
    },
    jwks_file = {
      type = "string", check = file_error,
      description = "a local JWK Set file, read when the configuration loads",
    },
    secret_file = {
      type = "string", check = file_error,
      description = "file holding the raw HMAC secret (at least 32 bytes) for HS256/384/512 tokens",
    },
    backend_ca = {
      type = "string", check = file_error,
      description = "PEM bundle that https key sources are verified against (default: the system store)",
    },
    discovery = {
      type = "boolean", default = true,
      description = "without jwks_uri, jwks_file and secret_file: find the JWKS by OIDC discovery (false: never)",
    },
    identity_source = {
      type = "string", default = "$request.header.Authorization", check = values.jwt_identity_source_error,
      description = 'where the token is: $request.header.NAME or $request.querystring.NAME (raw, or "Bearer TOKEN")',
    },
    leeway = {
      type = "integer", between = { 0, 300 }, default = 0,
      description = "seconds of clock skew allowed on exp, nbf and iat",
    },
    algorithms = {
      type = "list", non_empty = true, description = "the algorithms accepted (default: every one the keys allow)",
      elements = { type = "string", one_of = JWT_ALGORITHMS, description = "a JWS algorithm" },
    },
    ttl = {
      type = "integer", between = { 0, 3600 }, default = 300,
      description = "seconds a verified token is remembered per worker (its exp earlier; 0: no cache)",
    },
    shared_cache = {
      type = "boolean", default = false,
      description = "with cluster: verified tokens are shared with the other nodes through Redis",
    },
    usage_identifier_claim = {
      type = "string", non_empty = true,
      description = "a claim whose value is the caller's API key for usage plans (as usageIdentifierKey)",
    },
  },
}

local authorizer = {
  type = "variant", tag = "type", variants = { lua = lua_authorizer, jwt = jwt_authorizer },
  description = "an authorizer",
}

local lua_integration = {
  type = "record", description = "Lua integration: a policy's handle(event, conf) answers",
  post = policy_use("integration", "handler"),
  fields = {
    type = { type = "string", one_of = { "lua" }, description = 'integration type "lua"' },
    handler = policy_field("the policy whose handle(event, conf) answers"),
    config = policy_config,
    timeout_ms = {
      type = "integer", between = { 50, 29000 }, default = 29000,
      description = "deadline of the handler's HTTP calls, in milliseconds",
    },
    payload_format_version = {
      type = "string", one_of = { "1.0", "2.0" },
      description = 'the event and response shape (AWS Lambda proxy payload format): "1.0" or "2.0"'
        .. ' (default "1.0" on REST APIs, which allow only "1.0"; "2.0" on HTTP APIs)',
    },
  },
}

local waf_rule = {
  type = "record", description = "a web ACL rule", post = policy_use("waf"),
  fields = {
    name = {
      type = "string", pattern = API_ID, pattern_message = "invalid rule name: must match [A-Za-z0-9_-]+",
      description = "the rule's name in $context.waf.rule (default: the policy file's name)",
    },
    priority = {
      type = "integer", between = { 0, 2 ^ 31 }, required = true,
      description = "evaluation order, lowest first; unique within the web ACL",
    },
    policy = policy_field("the policy whose inspect(req, conf) says whether the rule matches"),
    config = policy_config,
    action = {
      type = "string", one_of = { "allow", "block", "count" }, required = true,
      description = "on a match: allow and block end the evaluation, count records it and goes on",
    },
  },
}
-- a rule is a policy or a managed rule set (moongate.config.waf: the kinds and their fields)
waf_rule.fields.policy.required = nil
for k, f in next, waf_conf.fields do
  waf_rule.fields[k] = f
end

local waf = {
  type = "record", description = "the stage's web ACL", post = checks.waf,
  fields = {
    default_action = {
      type = "string", one_of = { "allow", "block" }, default = "allow",
      description = "what happens when no allow or block rule matches",
    },
    rules = { type = "list", default = {}, elements = waf_rule, description = "the rules" },
    log = waf_conf.log_field, -- moongate.config.waf
    default_response = waf_conf.response,
  },
}

-- Cache key parameters may sit on the integration too (where AWS keeps cacheKeyParameters).
mock_integration.fields.cache_key_parameters = cache_conf.key_parameters_field
lua_integration.fields.cache_key_parameters = cache_conf.key_parameters_field

local route_selection = {
  type = "record", description = "a route selector policy", post = policy_use("route_selection"),
  fields = {
    policy = policy_field("the policy whose select_route(req, conf) returns a route key"),
    config = policy_config,
  },
}

---------------------------------------------------------------------------
-- Management, routes, stages, APIs, listeners, domains, the whole configuration
---------------------------------------------------------------------------

local management = {
  type = "record", description = "the management listener (POST /reload)", post = checks.management,
  fields = {
    address = {
      type = "string", default = "127.0.0.1", check = address_error,
      description = "bind address (keep it on loopback or a private network)",
    },
    port = { type = "integer", between = { 1, 65535 }, required = true, description = "bind port" },
    token_file = {
      type = "string", non_empty = true,
      description = "file holding the bearer token every management request must send "
        .. "(default: state_dir/management.token, generated when missing)",
    },
  },
}

local cluster = {
  type = "record",
  description = "share throttles, quotas and WebSocket connections with other nodes through "
    .. "Redis (one node when absent; read at start-up)",
  fields = {
    node_id = {
      type = "string", pattern = "^[%w._-]+$", max_len = 64,
      pattern_message = "must be letters, digits, '.', '_' or '-'",
      description = "this node's name, unique in the cluster (default: the host name and "
        .. "the first listener's port)",
    },
    redis = {
      type = "record", required = true, description = "the Redis server every node uses",
      fields = {
        address = {
          type = "string", non_empty = true, default = "127.0.0.1",
          description = "Redis's IP address or host name",
        },
        port = { type = "integer", between = { 1, 65535 }, default = 6379, description = "Redis's port" },
        password_file = {
          type = "string", non_empty = true,
          description = "file whose first line is Redis's password (AUTH); none when absent",
        },
        tls = {
          type = "boolean", default = false,
          check = function(v)
            if v then
              return "not supported: this build's hiredis (0.14, Debian bookworm) has no TLS; "
                .. "keep Redis on a private network or behind a TLS tunnel (stunnel, spiped)"
            end
          end,
          description = "TLS to Redis (not supported by Debian bookworm's hiredis: must be false)",
        },
        database = {
          type = "integer", between = { 0, 15 }, default = 0, description = "the database (SELECT)",
        },
        timeout_ms = {
          type = "integer", between = { 10, 60000 }, default = 500,
          description = "a connect or command unanswered this long marks Redis down",
        },
      },
    },
    sync_interval_ms = {
      type = "integer", between = { 10, 10000 }, default = 100,
      description = "how often a node settles its local shares of throttles with Redis",
    },
    expected_nodes = {
      type = "integer", between = { 1, 1000 },
      description = "while Redis is down each node allows limit / expected_nodes (default: the "
        .. "number of nodes last seen alive)",
    },
    key_prefix = {
      type = "string", pattern = "^[%w._-]+$", max_len = 64, default = "moongate",
      pattern_message = "must be letters, digits, '.', '_' or '-'",
      description = "every Redis key and channel moongate uses starts with it and ':'",
    },
  },
}

local tracing = {
  type = "record", post = checks.tracing,
  description = "W3C trace context to backends and OpenTelemetry span export (off when absent)",
  fields = {
    service_name = {
      type = "string", non_empty = true, default = "moongate",
      description = "the service.name resource attribute of exported spans",
    },
    request_id_header = {
      type = "string", pattern = HEADER_TOKEN, normalize = lower,
      pattern_message = "invalid header name: must be an HTTP token",
      description = "send $context.requestId to backends and moongate.http calls in this header",
    },
    otlp = {
      type = "record", post = checks.otlp,
      description = "export one span per sampled request over OTLP/HTTP JSON (off when absent)",
      fields = {
        endpoint = {
          type = "string", required = true, check = values.url_error,
          description = "the collector's traces URL, e.g. http://127.0.0.1:4318/v1/traces",
        },
        sample_ratio = {
          type = "number", between = { 0, 1 }, default = 1,
          description = "share of new traces sampled (a traceparent's sampled flag decides for continued ones)",
        },
        batch_size = { type = "integer", between = { 1, 65536 }, default = 512, description = "most spans per export" },
        max_queue = {
          type = "integer", between = { 1, 1048576 }, default = 2048,
          description = "most spans waiting per worker; more are dropped (and counted)",
        },
        flush_interval_ms = {
          type = "integer", between = { 10, 3600000 }, default = 1000,
          description = "time between exports of a batch that is not full",
        },
        timeout_ms = {
          type = "integer", between = { 10, 600000 }, default = 2000,
          description = "bound on one export (connect, send, response)",
        },
        headers = headers_map("headers sent with every export (an API key, a tenant)"),
      },
    },
  },
}

local lua_settings = {
  type = "record", default = {}, description = "how Lua policies run",
  fields = {
    path = {
      type = "list", default = {}, description = "more directories `require` searches (after policies/)",
      elements = { type = "string", non_empty = true, description = "a directory" },
    },
    instruction_budget = {
      type = "integer", between = { 1000, 1e10 }, default = policy_lib.default_budget,
      description = "steps (loop iterations and function calls) one hook call may take",
    },
  },
}

local route = {
  type = "record", description = "a route",
  fields = {
    api_key_required = {
      type = "boolean", default = false,
      description = "true: callers must present an API key (x-api-key or an authorizer's usageIdentifierKey)",
    },
    integration = {
      type = "variant", tag = "type", required = true,
      variants = { http = http_integration, mock = mock_integration, lua = lua_integration },
      description = "what answers the route: an http proxy, a mock or a Lua handler",
    },
    authorizer = { type = "string", non_empty = true, description = "name of the API's authorizer that guards the route" },
    route_response = {
      type = "boolean",
      description = "websocket APIs: true sends the integration's response body back to the client as a message (default false)",
    },
    scopes = {
      type = "list", max_entries = 10, description = "scopes the route requires, given to the authorizer (auth.scopes)",
      elements = { type = "string", non_empty = true, description = "a scope" },
    },
    -- request validation (moongate.config.validation)
    request_parameters = validation.route_fields.request_parameters,
    request_validator = validation.route_fields.request_validator,
    request_models = validation.route_fields.request_models,
    cache_key_parameters = cache_conf.key_parameters_field,
  },
}

local gateway_response = {
  type = "record", description = "a customized gateway response",
  fields = {
    status = { type = "integer", between = { 100, 599 }, description = "replaces the type's default status" },
    headers = headers_map('extra response headers; "$request.header.NAME" copies a request header'),
    body = { type = "string", check = template_error, description = "body template with $context.* and $stageVariables.*" },
  },
}

local stage = {
  type = "record", description = "a stage of an API",
  fields = {
    variables = {
      type = "map", default = {}, max_entries = 100,
      description = "stage variables (at most 100), usable as ${stageVariables.NAME}",
      keys = {
        type = "string", pattern = VARIABLE_NAME, description = "variable name",
        pattern_message = "invalid variable name: must match [A-Za-z0-9_]+",
      },
      values = { type = "string", numbers = true, description = "variable value (numbers are converted)" },
    },
    throttle = {
      type = "record", fields = throttle_settings.fields, post = check_throttle,
      description = "the default limit of each route: every route without a route_settings throttle"
        .. " gets its own bucket with this rate and burst",
    },
    shared_throttle = {
      type = "record", fields = throttle_settings.fields, post = check_throttle,
      description = "one limit shared by every route of the stage (on top of each route's own)",
    },
    route_settings = route_settings("per-route settings of the stage (throttle replaces the stage's for that route)"),
    client_certificate = {
      type = "record", description = "certificate presented to https backends (backend mutual TLS)",
      post = checks.client_certificate,
      fields = {
        certificate = { type = "string", check = file_error, description = "PEM certificate (and chain)" },
        key = { type = "string", check = file_error, description = "PEM private key" },
        generate = { type = "boolean", default = false,
          description = "true: a self-signed certificate valid 365 days, kept in state_dir/client-certs" },
      },
    },
    rate_limit_headers = {
      type = "boolean", default = true,
      description = "send RateLimit-Policy / RateLimit headers on throttled routes",
    },
    cache = cache_conf.stage_field, -- response caching (moongate.config.cache)
    waf = waf,
    access_log = {
      type = "record", description = "access log: one line per request", post = checks.access_log,
      fields = {
        policy = {
          type = "string", non_empty = true,
          description = "a log policy whose log(ctx, conf) returns the line, or $context.custom values for format",
        },
        config = policy_config,
        path = logsink.fields.path,
        stream = logsink.fields.stream,
        syslog = logsink.fields.syslog,
        format = {
          type = "string", non_empty = true, max_len = 3072, check = template_error,
          description = "$context template of a line (at most 3072 bytes)",
        },
      },
    },
  },
}

local seconds = function(default, description)
  return { type = "number", at_least = 0, at_most = 604800, default = default, description = description }
end

local websocket = {
  type = "record", default = {}, post = checks.websocket,
  description = "WebSocket settings (websocket APIs only; every field optional)",
  fields = {
    max_frame_size = {
      type = "integer", between = { 125, 16777216 }, default = 32768,
      description = "largest frame payload in bytes; a larger frame closes the connection with 1009",
    },
    max_message_size = {
      type = "integer", between = { 125, 16777216 }, default = 131072,
      description = "largest message (all its frames) in bytes, at least max_frame_size; 1009 above",
    },
    idle_timeout = seconds(600, "seconds without a message either way before the connection is closed (0: none)"),
    max_duration = seconds(7200, "seconds a connection may last at most (0: no limit)"),
    ping_interval = seconds(0, "seconds between the gateway's pings (0: the gateway does not ping)"),
    pong_timeout = {
      type = "number", above = 0, at_most = 3600, default = 30,
      description = 'seconds to wait for the pong of a ping before closing with 1001 "pong timeout"',
    },
    send_queue_size = {
      type = "integer", between = { 1024, 1073741824 }, default = 1048576,
      description = "bytes that may wait to be sent to a slow client; more closes the connection with 1008",
    },
    connections_endpoint = {
      type = "boolean", default = false,
      description = "true: also serve /{stage}/@connections on the API's own endpoint (guarded by connections_authorizer, else an API key)",
    },
    connections_authorizer = {
      type = "string", non_empty = true,
      description = "an authorizer of the API that must allow each @connections call on the API's endpoint (instead of an API key)",
    },
    connections_scopes = {
      type = "list", max_entries = 10, description = "scopes the connections_authorizer requires (as a route's scopes)",
      elements = { type = "string", non_empty = true, description = "a scope" },
    },
  },
}

local api = {
  type = "record", description = "an API", post = checks.api,
  fields = {
    protocol = {
      type = "string", one_of = { "http", "rest", "websocket" },
      default = "http", description = 'API type: "http", "rest" (AWS REST API semantics) or "websocket"',
    },
    api_key_source = {
      type = "string", one_of = { "HEADER", "AUTHORIZER" },
      description = 'where API keys come from: "HEADER" (x-api-key) or "AUTHORIZER" (the authorizer\'s'
        .. ' usageIdentifierKey); default "HEADER" on REST APIs, both (the authorizer\'s first) on HTTP APIs',
    },
    route_selection_expression = {
      type = "string", check = route_selection_expression_error,
      description = "websocket APIs (required): $request.body.NAME, $request.body.A.B or a template such as"
        .. " ${request.body.a}/${request.body.b}; selects the route of each message",
    },
    websocket = websocket,
    default_endpoint = {
      type = "boolean", default = true,
      description = "false: reachable only through a custom domain",
    },
    stages = {
      type = "map", required = true, non_empty = true, description = "stages by name",
      keys = { type = "string", check = stage_name_error, description = 'stage name: "$default" or [A-Za-z0-9_-]{1,128}' },
      values = stage,
    },
    routes = {
      type = "map", required = true, non_empty = true, description = "routes by route key",
      -- the key's form depends on the protocol: checked with the API (checks.api)
      keys = {
        type = "string",
        description = 'route key: "METHOD /path" or "$default"; websocket APIs: "$connect", "$disconnect",'
          .. ' "$default" or 1..128 printable characters',
      },
      values = route,
    },
    authorizers = {
      type = "map", default = {}, description = "authorizers by name, for routes' `authorizer`",
      keys = { type = "string", pattern = API_ID, description = "authorizer name",
        pattern_message = "invalid authorizer name: must match [A-Za-z0-9_-]+" },
      values = authorizer,
    },
    route_selection = route_selection,
    models = validation.models_field, -- request validation (moongate.config.validation)
    usage_plans = {
      type = "map", default = {}, description = "usage plans by name",
      keys = { type = "string", pattern = API_ID, description = "plan name",
        pattern_message = "invalid plan name: must match [A-Za-z0-9_-]+" },
      values = usage_plan,
    },
    gateway_responses = {
      type = "map", default = {}, description = "customized gateway responses by type",
      keys = {
        type = "string", one_of = GATEWAY_RESPONSE_TYPES, description = "gateway response type",
        enum_message = "unknown gateway response type",
      },
      values = gateway_response,
    },
  },
}

local listener_tls = {
  type = "record", description = "TLS on this listener (TLS 1.2 and 1.3, ALPN http/1.1)",
  fields = {
    certificate = { type = "string", required = true, check = file_error,
      description = "PEM certificate (then its chain) served when no domain's certificate matches the SNI" },
    key = { type = "string", required = true, check = file_error, description = "PEM private key" },
    unknown_sni = { type = "string", one_of = { "default", "reject" }, default = "default",
      description = '"default": serve the listener certificate to unknown names; "reject": fail the handshake' },
  },
}
listener_tls.post = checks.listener_tls

local listener = {
  type = "record", description = "a listening socket",
  fields = {
    tls = listener_tls,
    address = {
      type = "string", default = "127.0.0.1", check = address_error,
      description = "bind address (IPv4 or IPv6 literal)",
    },
    port = { type = "integer", between = { 1, 65535 }, required = true, description = "bind port" },
    api = {
      type = "string", check = checks.listener_api_error,
      description = "API whose default endpoint this listener serves",
    },
  },
}

local domain = {
  type = "record", description = "a custom domain name", post = checks.domain,
  fields = {
    certificate = { type = "string", check = file_error,
      description = "PEM certificate (then its chain) served on TLS listeners when the SNI names this domain" },
    key = { type = "string", check = file_error, description = "PEM private key" },
    mtls = {
      type = "record", description = "mutual TLS: clients must present a certificate the truststore vouches for",
      fields = {
        truststore = { type = "string", required = true, check = file_error,
          description = "PEM bundle of the CA certificates that issue client certificates (chain depth <= 4)" },
        crl = { type = "string", check = file_error,
          description = "PEM file of CRLs, checked for every chain element that has one" },
        mode = { type = "string", one_of = { "require", "request" }, default = "require",
          description = '"require": no valid certificate, no handshake; "request": the certificate is optional' },
        revocation = {
          type = "record", post = policy_use("revocation"),
          description = "a Lua policy whose check(cert, conf) allows or denies each client certificate",
          fields = {
            policy = policy_field("revocation check policy"),
            config = policy_config,
            ttl = { type = "integer", between = { 0, 86400 }, default = 300,
              description = "seconds a verdict is cached per certificate fingerprint (0: every handshake)" },
          },
        },
        version = { type = "integer", between = { 1, 1e6 },
          description = "serve this recorded truststore version (state_dir/truststores/HOST/vN.pem)" },
        forward_header = { type = "string", pattern = HEADER_TOKEN, normalize = lower,
          pattern_message = "invalid header name: must be an HTTP token",
          description = "send the client certificate (URL-encoded PEM) to HTTP backends in this header" },
      },
    },
    mappings = {
      type = "map", required = true, non_empty = true,
      description = 'API mappings: base path ("" or one segment) to "api" or "api/stage"',
      keys = {
        type = "string", check = base_path_error, normalize = strip_slashes,
        description = 'base path: "" or one path segment', duplicate = "base path",
      },
      values = { type = "string", check = checks.mapping_target_error, description = '"api" or "api/stage"' },
    },
  },
}

local root = {
  type = "record", description = "the gateway configuration", post = checks.root,
  fields = {
    workers = {
      type = "custom", validate = workers_value, default = "auto",
      description = 'worker threads: "auto" (one per core) or 1..256',
    },
    listen = {
      type = "list", non_empty = true, elements = listener, post = checks.listeners,
      default = { { address = "127.0.0.1", port = 8080 } },
      description = "where to accept HTTP connections",
    },
    domains = {
      type = "map", default = {}, description = "custom domain names selected by the Host header",
      keys = {
        type = "string", check = host_error, normalize = lower,
        description = "host name (lower-cased)", duplicate = "host",
      },
      values = domain,
    },
    apis = {
      type = "map", required = true, non_empty = true, description = "the APIs by id",
      keys = {
        type = "string", pattern = API_ID, description = "API id",
        pattern_message = "invalid API id: must match [A-Za-z0-9_-]+",
      },
      values = api,
    },
    throttle = {
      type = "record", fields = throttle_settings.fields, post = check_throttle,
      description = "gateway-wide (account) limit shared by every API; none when absent",
    },
    api_keys = {
      type = "map", default = {}, description = "API keys by id",
      keys = { type = "string", pattern = API_ID, description = "key id",
        pattern_message = "invalid key id: must match [A-Za-z0-9_-]+" },
      values = api_key,
    },
    api_keys_file = {
      type = "string", non_empty = true,
      description = 'file of more API keys, one per line: "id value" or "id sha256:HEX"',
    },
    backend_ca = {
      type = "string", check = file_error,
      description = "PEM bundle that https backends' certificates are verified against (default: the system store)",
    },
    waf_geo = {
      type = "record", default = {},
      description = "the country database of geo_match statements, in Tor's geoip format; read only "
        .. "when a statement needs it",
      fields = {
        ipv4 = { type = "string", non_empty = true, default = "/usr/share/tor/geoip",
          description = "the IPv4 file (Debian's tor-geoipdb), relative to the prefix" },
        ipv6 = { type = "string", non_empty = true, default = "/usr/share/tor/geoip6",
          description = "the IPv6 file (Debian's tor-geoipdb), relative to the prefix" },
      },
    },
    state_dir = {
      type = "string", non_empty = true, default = "state",
      description = "directory for state that survives restarts (quota counters); created if missing",
    },
    limits = {
      type = "record", default = {}, description = "request size limits",
      fields = {
        max_body_size = {
          type = "integer", between = { 0, 2 ^ 40 }, default = 10485760,
          description = "largest request body in bytes (413 beyond)",
        },
        max_header_size = {
          type = "integer", between = { 1024, 65536 }, default = 10240,
          description = "largest request line + headers in bytes (431 beyond)",
        },
      },
    },
    management = management,
    tracing = tracing,
    cluster = cluster,
    watch = {
      type = "boolean", default = false,
      description = "reload when the configuration file or a policy file changes",
    },
    lua = lua_settings,
    error_log = {
      type = "record", default = {}, description = "the error log (standard error)",
      fields = {
        format = {
          type = "string", one_of = { "text", "json" }, default = "text",
          description = '"text" lines, or "json": one JSON object per line',
        },
        level = {
          type = "string", one_of = { "error", "warn", "info", "debug" }, default = "info",
          description = "the least severe level written",
        },
      },
    },
    timeouts = {
      type = "record", default = {}, description = "client-side timeouts in seconds",
      fields = {
        header = { type = "number", above = 0, at_most = 86400, default = 10, description = "time to receive a request head" },
        idle = { type = "number", above = 0, at_most = 86400, default = 60, description = "keep-alive idle time" },
        body = { type = "number", above = 0, at_most = 86400, default = 30, description = "time between two body reads" },
        shutdown = { type = "number", above = 0, at_most = 86400, default = 10, description = "graceful shutdown bound" },
        send = {
          type = "number", above = 0, at_most = 86400, default = 60,
          description = "time a client may take to accept more of a response",
        },
      },
    },
  },
}

return root
