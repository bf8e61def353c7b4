/*
 * The HTTP/1 request path: the input is what a client sends on a new connection (one or
 * more pipelined requests, bodies included). It reaches the gateway through the real
 * connection code (gateway.h): llhttp with the server's callbacks builds the request
 * object, and the request is resolved (Host, custom domain, stage), routed, run through
 * the WAF, authorizer, throttling and usage-plan checks of a small configuration, and
 * answered by a mock, a Lua integration, an HTTP integration whose backend refuses the
 * connection (a 502 after the backend request head was built), or a gateway response
 * whose template renders request values; the access log renders its format for every
 * request. Then the client half-closes and the connection must go away.
 * Properties: whatever the gateway writes starts with a status line, and a connection
 * whose client has gone is closed.
 */
#include "gateway.h"

static const char config[] =
    "return {\n"
    "  workers = 1,\n"
    "  state_dir = '@DIR@/state',\n"
    "  listen = { { address = '127.0.0.1', port = 1, api = 'pets' } },\n"
    "  limits = { max_body_size = 4096, max_header_size = 4096 },\n"
    "  api_keys = { k1 = { value = 'fuzz-key-0123456789abcdef' } },\n"
    "  domains = { ['api.example.com'] = { mappings = { [''] = 'pets/prod', v1 = 'pets',\n"
    "                                                   other = 'other' } } },\n"
    "  apis = {\n"
    "    pets = {\n"
    "      stages = {\n"
    "        ['$default'] = {\n"
    "          variables = { backend = 'http://127.0.0.1:1' },\n"
    "          access_log = { path = '/dev/null', format = '{\"id\":\"$context.requestId\","
    "\"ip\":\"$context.identity.sourceIp\",\"ua\":\"$context.identity.userAgent\","
    "\"time\":\"$context.requestTime\",\"method\":\"$context.httpMethod\",\"path\":"
    "\"$context.path\",\"route\":\"$context.routeKey\",\"proto\":\"$context.protocol\","
    "\"status\":\"$context.status\",\"len\":\"$context.responseLength\",\"key\":"
    "\"$context.identity.apiKey\",\"keyId\":\"$context.identity.apiKeyId\",\"domain\":"
    "\"$context.domainName\",\"prefix\":\"$context.domainPrefix\",\"err\":"
    "\"$context.error.message\",\"type\":\"$context.error.responseType\",\"ierr\":"
    "\"$context.integrationErrorMessage\",\"rl\":\"$context.throttle.remaining\",\"sv\":"
    "\"$stageVariables.backend\",\"who\":\"$context.authorizer.principalId\"}' },\n"
    "        },\n"
    "        prod = {\n"
    "          variables = { backend = 'http://127.0.0.1:1/prod' },\n"
    "          throttle = { rate = 1000000, burst = 1000000 },\n"
    "          route_settings = { ['GET /pets/{id}'] = { throttle = { rate = 1000000, burst = "
    "1000000 "
    "} } },\n"
    "          access_log = { path = '/dev/null', format = '$context.requestId $context.path "
    "$context.identity.userAgent $context.error.messageString $context.waf.rule' },\n"
    "          waf = { default_action = 'allow', rules = {\n"
    "            { priority = 1, policy = 'policies/waf/ip_set.lua', action = 'block',\n"
    "              config = { cidrs = { '198.51.100.0/24', '2001:db8::/32' }, header = "
    "'x-forwarded-for' } } } },\n"
    "        },\n"
    "      },\n"
    "      authorizers = {\n"
    "        keys = { type = 'lua', policy = 'policies/authorizers/api_key_header.lua',\n"
    "                 identity_sources = { '$request.header.x-api-key' },\n"
    "                 config = { keys = { ['fuzz-key-0123456789abcdef'] = 'fuzzer' } } },\n"
    "      },\n"
    "      routes = {\n"
    "        ['GET /pets'] = { integration = { type = 'mock', status = 200,\n"
    "          headers = { ['content-type'] = 'application/json' }, body = '[{\"id\":1}]' } },\n"
    "        ['GET /pets/{id}'] = { integration = { type = 'mock', body = '{\"id\":1}' } },\n"
    "        ['POST /pets'] = { integration = { type = 'mock', status = 201 } },\n"
    "        ['HEAD /pets'] = { integration = { type = 'mock', body = 'x' } },\n"
    "        ['ANY /echo/{proxy+}'] = { integration = { type = 'http',\n"
    "          uri = '${stageVariables.backend}/{proxy}' } },\n"
    "        ['GET /keyed'] = { api_key_required = true, integration = { type = 'mock' } },\n"
    "        ['ANY /auth/{x}'] = { authorizer = 'keys', integration = { type = 'mock' } },\n"
    "        ['ANY /lua/{proxy+}'] = { integration = { type = 'lua',\n"
    "          handler = 'policies/examples/echo.lua' } },\n"
    "        ['$default'] = { integration = { type = 'mock', status = 404, body = 'none' } },\n"
    "      },\n"
    "      usage_plans = { gold = { keys = { 'k1' }, throttle = { rate = 1000000, burst = 1000000 "
    "},\n"
    "        quota = { limit = 1000000000000, period = 'day' } } },\n"
    "      gateway_responses = {\n"
    "        DEFAULT_4XX = { headers = { ['x-trace'] = '$request.header.x-trace',\n"
    "            ['access-control-allow-origin'] = '*' },\n"
    "          body = '{\"message\":$context.error.messageString,\"path\":\"$context.path\"}' },\n"
    "        THROTTLED = { status = 429 },\n"
    "      },\n"
    "    },\n"
    "    other = {\n"
    "      stages = { ['$default'] = {} },\n"
    "      routes = { ['$default'] = { integration = { type = 'mock', body = 'other' } } },\n"
    "    },\n"
    "  },\n"
    "}\n";

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    gw_start("http", config);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fd;
    (void)gw_accept(&fd);
    size_t sent = gw_send(fd, data, size);
    mgw_buf_t out = {0};
    /* until the gateway has answered what it will answer */
    for (int i = 0, idle = 0; i < 400 && idle < 4; i++) {
        gw_tick();
        if (sent < size) sent += gw_send(fd, data + sent, size - sent);
        idle = gw_drain(fd, &out) || sent < size ? 0 : idle + 1;
    }
    /* the client leaves: the connection must close */
    shutdown(fd, SHUT_WR);
    for (int i = 0; i < 400 && gw.conns; i++) {
        gw_tick();
        gw_drain(fd, &out);
    }
    if (getenv("MGW_FUZZ_SHOW")) fprintf(stderr, "---\n%.*s\n", (int)out.n, out.p);
    if (out.n) FUZZ_CHECK(out.n >= 9 && memcmp(out.p, "HTTP/1.1 ", 9) == 0);
    FUZZ_CHECK(gw_nconns() == 0);
    gw_reset();
    close(fd);
    mgw_buf_free(&out);
    return 0;
}
