-- moongate.config.logsink: where a log's lines go (a stage's access log, a web ACL's
-- WAF log): a file (`path`), standard output or error (`stream`), or a syslog server
-- (`syslog`, RFC 5424 messages over UDP, TCP or a unix socket). The fields are shared
-- by both logs; runtime/conf/config.c open_log reads what shape() returns and
-- runtime/gw/accesslog.c writes to it.
local ipairs, tonumber = ipairs, tonumber
local format, match, find = string.format, string.match, string.find
local lang = require "moongate.config.lang"
local values = require "moongate.config.values"
local join, fail, quote, show = lang.join, lang.fail, lang.quote, lang.show

local M = {}

-- RFC 5424 6.2.1: facility codes by name, severity codes by name.
local FACILITIES = {
  "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "authpriv",
  "ftp", "ntp", "audit", "alert", "clock", "local0", "local1", "local2", "local3", "local4",
  "local5", "local6", "local7",
}
local SEVERITIES = { "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug" }
local KEYS = { "path", "stream", "syslog" }

local function index_of(list, v)
  for i = 1, #list do
    if list[i] == v then
      return i - 1
    end
  end
end

-- "udp://host:port", "tcp://host:port" (host a name, an IPv4 address or [IPv6]; the
-- port 514 when left out) or "unix:/path": transport, host, port, path or nil, error.
local function parse_server(v)
  local path = match(v, "^unix:(/.*)$")
  if path then
    return "unix", nil, nil, path
  end
  local proto, rest = match(v, "^(%a+)://(.+)$")
  if proto ~= "udp" and proto ~= "tcp" then
    return nil, 'must be "udp://HOST:PORT", "tcp://HOST:PORT" or "unix:/PATH", got ' .. show(v)
  end
  local host, port = match(rest, "^%[([%x:%.]+)%]:?(%d*)$")
  if host == nil then
    host, port = match(rest, "^([%w%.%-]+):?(%d*)$")
  end
  if host == nil then
    return nil, format("%s: %s is not a host name or address (IPv6 in brackets: [::1]:514)", quote(v), quote(rest))
  end
  port = port == "" and 514 or tonumber(port)
  if port < 1 or port > 65535 then
    return nil, format("%s: the port must be 1 to 65535", quote(v))
  end
  return proto, host, port
end

-- RFC 5424 6.2.4-6.2.5: HOSTNAME and APP-NAME are printable US-ASCII without spaces.
local function header_field_error(max)
  return function(v)
    if #v > max or not find(v, "^[!-~]+$") then
      return format("must be 1 to %d printable ASCII characters without spaces, got %s", max, show(v))
    end
  end
end

M.fields = {
  path = {
    type = "string", non_empty = true, check = values.log_path_error,
    description = "log file; relative paths are resolved against the prefix; its directory must exist",
  },
  stream = {
    type = "string", one_of = { "stdout", "stderr" },
    description = "write the lines to the gateway's standard output or standard error",
  },
  syslog = {
    type = "record", description = "send each line as an RFC 5424 message to a syslog server",
    fields = {
      server = {
        type = "string", required = true,
        check = function(v)
          local transport, err = parse_server(v)
          return transport == nil and err or nil
        end,
        description = '"udp://HOST:PORT", "tcp://HOST:PORT" (octet-counted frames) or "unix:/PATH" (a datagram socket such as /dev/log)',
      },
      facility = {
        type = "string", one_of = FACILITIES, default = "local7", description = "the messages' facility",
      },
      severity = {
        type = "string", one_of = SEVERITIES, default = "info", description = "the messages' severity",
      },
      app_name = {
        type = "string", default = "moongate", check = header_field_error(48),
        description = "APP-NAME of the messages",
      },
      hostname = {
        type = "string", check = header_field_error(255),
        description = "HOSTNAME of the messages (default: the machine's host name)",
      },
    },
  },
}

-- A log has exactly one destination.
function M.check(v, path, ctx)
  local have = {}
  for _, k in ipairs(KEYS) do
    if v[k] ~= nil then
      have[#have + 1] = k
    end
  end
  if #have == 0 then
    fail(ctx, join(path, "path"), "is required (or stream or syslog)")
  elseif #have > 1 then
    fail(ctx, join(path, have[2]), format("a log has exactly one of path, stream or syslog; this one has %s and %s",
      have[1], have[2]))
  end
end

-- What runtime/conf/config.c open_log reads: kind, the destination, and where errors
-- found when opening it are reported. msg_id is the syslog MSGID ("access", "waf").
function M.shape(v, prefix, path, msg_id)
  if v.stream then
    return { kind = "stream", stream = v.stream, where = join(path, "stream") }
  elseif v.syslog then
    local s = v.syslog
    local transport, host, port, upath = parse_server(s.server)
    return {
      kind = "syslog", transport = transport, host = host, port = port, path = upath,
      server = s.server, where = join(join(path, "syslog"), "server"),
      pri = index_of(FACILITIES, s.facility) * 8 + index_of(SEVERITIES, s.severity),
      app_name = s.app_name, hostname = s.hostname, msg_id = msg_id,
    }
  end
  return { kind = "file", path = values.resolve(prefix, v.path), where = join(path, "path") }
end

return M
