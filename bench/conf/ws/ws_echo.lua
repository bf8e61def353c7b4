-- W6's Lua handler (the "echo" route): answers the message as it came. moongate runs it
-- as the route's lua integration (handle(event, conf, req); route_response = true sends
-- the response's body back on the connection as a text message); nginx-w6.conf calls the
-- same function from its frame loop and sends the body it returns. The answer is a
-- response table: a plain value would be JSON-encoded first (as a Lambda's), which would
-- turn the message into a JSON string.
local M = {}

function M.handle(event)
  return { statusCode = 200, body = event.body }
end

return M
