-- W5's web ACL: six checks over plain strings, the same Lua for the three gateways
-- (moongate runs each as a WAF rule through rule.lua, nginx-lua and HAProxy call
-- them in order from check()). Plain Lua 5.1/5.3 (no bit library, no ngx.re), so
-- HAProxy's Lua runs it unchanged. run.sh copies this directory to
-- <run>/policies/bench/, which is on each gateway's module path.
local byte, find, lower, gsub, char, match = string.byte, string.find, string.lower, string.gsub,
  string.char, string.match
local tonumber = tonumber

local M = {}

-- "a.b.c.d" -> a number, or nil
local function ipv4(s)
  local a, b, c, d = match(s, "^(%d+)%.(%d+)%.(%d+)%.(%d+)$")
  if not a then
    return nil
  end
  return ((tonumber(a) * 256 + tonumber(b)) * 256 + tonumber(c)) * 256 + tonumber(d)
end

-- Deny list (documentation and shared address blocks), as first/last numbers.
local DENY = {}
for _, cidr in ipairs({ "192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "100.64.0.0/10" }) do
  local addr, bits = match(cidr, "^(.-)/(%d+)$")
  local size = 2 ^ (32 - tonumber(bits))
  local first = ipv4(addr)
  DENY[#DENY + 1] = { first, first + size - 1 }
end

local METHODS = { GET = true, HEAD = true, POST = true, PUT = true, PATCH = true, DELETE = true, OPTIONS = true }
local AGENTS = { "sqlmap", "nikto", "nmap", "masscan", "zgrab", "nuclei", "dirbuster", "wpscan" }
local SQLI = { "union%s+select", "select%s.-%sfrom%s", "or%s+1%s*=%s*1", "sleep%s*%(", "benchmark%s*%(", "';", "%-%-",
  "/%*" }
local XSS = { "<script", "javascript:", "onerror%s*=", "onload%s*=", "<iframe" }

-- The client address is in the deny list.
function M.ip_denied(addr)
  local n = addr and ipv4(addr)
  if not n then
    return false
  end
  for i = 1, #DENY do
    local b = DENY[i]
    if n >= b[1] and n <= b[2] then
      return true
    end
  end
  return false
end

-- The method is not one an API accepts.
function M.method_blocked(method)
  return not METHODS[method]
end

-- The User-Agent names a scanner.
function M.bad_agent(ua)
  if not ua then
    return false
  end
  ua = lower(ua)
  for i = 1, #AGENTS do
    if find(ua, AGENTS[i], 1, true) then
      return true
    end
  end
  return false
end

-- The path climbs out of its directory or carries a NUL.
function M.traversal(path)
  if find(path, "../", 1, true) or find(path, "..\\", 1, true) then
    return true
  end
  local p = lower(path)
  return find(p, "%2e%2e", 1, true) ~= nil or find(p, "%00", 1, true) ~= nil
end

local function hexchar(h)
  return char(tonumber(h, 16))
end

-- The query string, URL-decoded and lower-cased.
local function decoded(query)
  if not query or query == "" then
    return nil
  end
  return lower((gsub(gsub(query, "%+", " "), "%%(%x%x)", hexchar)))
end

local function any(s, patterns)
  if not s then
    return false
  end
  for i = 1, #patterns do
    if find(s, patterns[i]) then
      return true
    end
  end
  return false
end

-- SQL injection in the query string.
function M.sqli(query)
  return any(decoded(query), SQLI)
end

-- Script injection in the query string.
function M.xss(query)
  return any(decoded(query), XSS)
end

-- The checks in priority order; returns the name of the first that matches, or nil.
function M.check(addr, method, path, query, ua)
  if M.ip_denied(addr) then
    return "ip_denied"
  elseif M.method_blocked(method) then
    return "method_blocked"
  elseif M.bad_agent(ua) then
    return "bad_agent"
  elseif M.traversal(path) then
    return "traversal"
  elseif M.sqli(query) then
    return "sqli"
  elseif M.xss(query) then
    return "xss"
  end
  return nil
end

return M
