-- CACHE: W1's route answered from the stage's response cache (one entry, TTL 1 h): the
-- first request fills it, every other one is a hit that never reaches the upstream.
return {
  workers = 1,
  listen = { { address = "127.0.0.1", port = 18081, api = "bench" } },
  apis = {
    bench = {
      stages = { ["$default"] = { cache = { size_mb = 64, ttl = 3600 } } },
      routes = {
        ["GET /bench"] = { integration = { type = "http", uri = "http://127.0.0.1:18080/bench" } },
      },
    },
  },
}
