-- W9 managed rules: the OWASP Core Rule Set (Debian's modsecurity-crs, paranoia level 1,
-- inbound anomaly threshold 5) through libmodsecurity in the stage's web ACL, then the
-- W1 proxy. nginx-w9.conf runs the same rule set through libnginx-mod-http-modsecurity.
return {
  workers = 1,
  listen = { { address = "127.0.0.1", port = 18081, api = "bench" } },
  apis = {
    bench = {
      stages = {
        ["$default"] = {
          waf = {
            default_action = "allow",
            rules = { { priority = 1, managed = "owasp-crs", paranoia_level = 1, anomaly_threshold = 5,
                        action = "block" } },
          },
        },
      },
      routes = {
        ["GET /bench"] = { integration = { type = "http", uri = "http://127.0.0.1:18080/bench" } },
      },
    },
  },
}
