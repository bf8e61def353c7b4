-- W6's Lua handler (the "echo" route): answers the message as it came. moongate runs it
-- as the route's lua integration (handle(event, conf, req); route_response = true sends
-- the returned body back on the connection as a text message); nginx-w6.conf calls the
-- same function from its frame loop. run.sh copies ws/ to <prefix>/policies/bench/.
local M = {}

function M.handle(event)
  return event.body
end

return M
