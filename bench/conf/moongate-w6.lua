-- W6 WebSocket messages: a JSON text message {"action":"echo","data":"..."} routed by
-- its action ($request.body.action) to a Lua handler (ws/ws_echo.lua, the same code
-- nginx-w6.conf runs) whose response body goes back on the connection (route_response = true).
-- W7 (idle connections) holds its connections open on the same API: the idle timeout
-- is left at its default (10 minutes) and the gateway sends no pings.
-- run.sh copies ws/ to <prefix>/policies/bench/.
return {
  workers = 1,
  listen = { { address = "127.0.0.1", port = 18081, api = "bench" } },
  apis = {
    bench = {
      protocol = "websocket",
      route_selection_expression = "$request.body.action",
      stages = { ["$default"] = {} },
      routes = {
        echo = {
          integration = { type = "lua", handler = "policies/bench/ws_echo.lua" },
          route_response = true,
        },
      },
    },
  },
}
