return {
  workers = 1,
  state_dir = '/tmp/mgw-fuzz-seed/state',
  listen = { { address = '127.0.0.1', port = 1, api = 'pets' } },
  limits = { max_body_size = 4096, max_header_size = 4096 },
  api_keys = { k1 = { value = 'fuzz-key-0123456789abcdef' } },
  domains = { ['api.example.com'] = { mappings = { [''] = 'pets/prod', v1 = 'pets',
                                                   other = 'other' } } },
  apis = {
    pets = {
      stages = {
        ['$default'] = {
          variables = { backend = 'http://127.0.0.1:1' },
          access_log = { path = '/dev/null', format = '{"id":"$context.requestId","ip":"$context.identity.sourceIp","ua":"$context.identity.userAgent","time":"$context.requestTime","method":"$context.httpMethod","path":"$context.path","route":"$context.routeKey","proto":"$context.protocol","status":"$context.status","len":"$context.responseLength","key":"$context.identity.apiKey","keyId":"$context.identity.apiKeyId","domain":"$context.domainName","prefix":"$context.domainPrefix","err":"$context.error.message","type":"$context.error.responseType","ierr":"$context.integrationErrorMessage","rl":"$context.throttle.remaining","sv":"$stageVariables.backend","who":"$context.authorizer.principalId"}' },
        },
        prod = {
          variables = { backend = 'http://127.0.0.1:1/prod' },
          throttle = { rate = 1000000, burst = 1000000 },
          route_settings = { ['GET /pets/{id}'] = { throttle = { rate = 1000000, burst = 1000000 } } },
          access_log = { path = '/dev/null', format = '$context.requestId $context.path $context.identity.userAgent $context.error.messageString $context.waf.rule' },
          waf = { default_action = 'allow', rules = {
            { priority = 1, policy = 'policies/waf/ip_set.lua', action = 'block',
              config = { cidrs = { '198.51.100.0/24', '2001:db8::/32' }, header = 'x-forwarded-for' } } } },
        },
      },
      authorizers = {
        keys = { type = 'lua', policy = 'policies/authorizers/api_key_header.lua',
                 identity_sources = { '$request.header.x-api-key' },
                 config = { keys = { ['fuzz-key-0123456789abcdef'] = 'fuzzer' } } },
      },
      routes = {
        ['GET /pets'] = { integration = { type = 'mock', status = 200,
          headers = { ['content-type'] = 'application/json' }, body = '[{"id":1}]' } },
        ['GET /pets/{id}'] = { integration = { type = 'mock', body = '{"id":1}' } },
        ['POST /pets'] = { integration = { type = 'mock', status = 201 } },
        ['HEAD /pets'] = { integration = { type = 'mock', body = 'x' } },
        ['ANY /echo/{proxy+}'] = { integration = { type = 'http',
          uri = '${stageVariables.backend}/{proxy}' } },
        ['GET /keyed'] = { api_key_required = true, integration = { type = 'mock' } },
        ['ANY /auth/{x}'] = { authorizer = 'keys', integration = { type = 'mock' } },
        ['ANY /lua/{proxy+}'] = { integration = { type = 'lua',
          handler = 'policies/examples/echo.lua' } },
        ['$default'] = { integration = { type = 'mock', status = 404, body = 'none' } },
      },
      usage_plans = { gold = { keys = { 'k1' }, throttle = { rate = 1000000, burst = 1000000 },
        quota = { limit = 1000000000000, period = 'day' } } },
      gateway_responses = {
        DEFAULT_4XX = { headers = { ['x-trace'] = '$request.header.x-trace',
            ['access-control-allow-origin'] = '*' },
          body = '{"message":$context.error.messageString,"path":"$context.path"}' },
        THROTTLED = { status = 429 },
      },
    },
    other = {
      stages = { ['$default'] = {} },
      routes = { ['$default'] = { integration = { type = 'mock', body = 'other' } } },
    },
  },
}
