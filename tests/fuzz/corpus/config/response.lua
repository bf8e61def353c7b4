return {
  workers = 1,
  state_dir = '/tmp/mgw-fuzz-seed/state',
  listen = { { address = '127.0.0.1', port = 1, api = 'p' } },
  apis = { p = {
    stages = { ['$default'] = { access_log = { path = '/dev/null', format = '$context.status $context.integrationStatus $context.responseLength $context.integrationErrorMessage' } } },
    routes = { ['ANY /p/{x+}'] = { integration = { type = 'http',
      uri = 'http://127.0.0.1:9/backend/{x}', timeout_ms = 5000 } } },
  } },
}
