-- W1 plain proxy: one route, proxied to the static upstream; keep-alive both sides.
return {
  workers = 1,
  listen = { { address = "127.0.0.1", port = 18081, api = "bench" } },
  apis = {
    bench = {
      stages = { ["$default"] = {} },
      routes = {
        ["GET /bench"] = { integration = { type = "http", uri = "http://127.0.0.1:18080/bench" } },
      },
    },
  },
}
