-- WAF rule: matches when the client address is in a set of CIDR blocks (IPv4 and
-- IPv6). With action = "block" it is a deny list, with action = "allow" (and the
-- web ACL's default_action = "block") an allow list.
--
--   waf = { default_action = "allow", rules = {
--     { priority = 1, policy = "policies/waf/ip_set.lua", action = "block",
--       config = { cidrs = { "203.0.113.0/24", "2001:db8::/32" } } } } }
--
-- Addresses are compared as four 32-bit words; an IPv4 address is the IPv6
-- address ::ffff:a.b.c.d, so "10.0.0.0/8" and "::ffff:10.0.0.0/104" are the same
-- block. The parsers walk bytes (no patterns), so the hot path stays compiled.
local bit = require "bit"
local band, bor, lshift, rshift, bnot = bit.band, bit.bor, bit.lshift, bit.rshift, bit.bnot
local byte, sub, find = string.byte, string.sub, string.find
local type, tostring, ipairs = type, tostring, ipairs

local M = {}

M.schema = {
  type = "record",
  fields = {
    cidrs = {
      type = "list", required = true, non_empty = true,
      description = 'CIDR blocks or single addresses ("10.0.0.0/8", "2001:db8::/32", "192.0.2.7")',
      elements = { type = "string", description = "a CIDR block or an address" },
    },
    header = {
      type = "string",
      description = "take the address from this request header (its first comma-separated value, "
        .. "e.g. x-forwarded-for) instead of the connection's peer",
    },
  },
}

-- Dotted-quad s[i..j] -> 32-bit word, or nil.
local function ipv4_word(s, i, j)
  local word, octet, digits, dots = 0, 0, 0, 0
  for k = i, j do
    local c = byte(s, k)
    if c >= 48 and c <= 57 then
      octet = octet * 10 + (c - 48)
      digits = digits + 1
      if digits > 3 or octet > 255 then
        return nil
      end
    elseif c == 46 and digits > 0 and dots < 3 then
      word = bor(lshift(word, 8), octet)
      octet, digits, dots = 0, 0, dots + 1
    else
      return nil
    end
  end
  if dots ~= 3 or digits == 0 then
    return nil
  end
  return bor(lshift(word, 8), octet)
end

local function hex(c)
  if c >= 48 and c <= 57 then
    return c - 48
  elseif c >= 97 and c <= 102 then
    return c - 87
  elseif c >= 65 and c <= 70 then
    return c - 55
  end
  return nil
end

-- IPv6 s[i..j] -> 8 groups of 16 bits in g (a table), or false.
local function ipv6_groups(s, i, j, g)
  local n, gap = 0, -1 -- groups written; where "::" was (-1: none)
  local k = i
  if j - i >= 1 and byte(s, i) == 58 and byte(s, i + 1) == 58 then
    gap, k = 0, i + 2
  elseif byte(s, i) == 58 then
    return false
  end
  while k <= j do
    -- a group: up to 4 hex digits, or a dotted IPv4 tail
    local v, digits, e = 0, 0, k
    while e <= j do
      local h = hex(byte(s, e))
      if h == nil then
        break
      end
      v = v * 16 + h
      digits = digits + 1
      e = e + 1
    end
    if e <= j and byte(s, e) == 46 then
      local w = ipv4_word(s, k, j)
      if not w or n > 6 then
        return false
      end
      g[n + 1], g[n + 2] = rshift(w, 16), band(w, 0xffff)
      n = n + 2
      k = j + 1
      break
    end
    if digits == 0 or digits > 4 or n == 8 then
      return false
    end
    n = n + 1
    g[n] = v
    if e > j then
      k = e
      break
    end
    if byte(s, e) ~= 58 then
      return false
    end
    if e < j and byte(s, e + 1) == 58 then
      if gap >= 0 then
        return false
      end
      gap, k = n, e + 2
    elseif e == j then
      return false -- a trailing single ":"
    else
      k = e + 1
    end
  end
  if gap < 0 then
    return n == 8
  end
  if n > 7 then
    return false
  end
  -- move the groups after "::" to the end and zero the gap
  local shift = 8 - n
  for x = n, gap + 1, -1 do
    g[x + shift] = g[x]
  end
  for x = gap + 1, gap + shift do
    g[x] = 0
  end
  return true
end

-- An address -> w1, w2, w3, w4 (32-bit words), or nil. IPv4 maps to ::ffff:a.b.c.d.
-- A zone ("fe80::1%eth0") and surrounding brackets are ignored.
function M.parse_ip(s)
  if type(s) ~= "string" then
    return nil
  end
  local i, j = 1, #s
  while i <= j and byte(s, i) == 32 do
    i = i + 1
  end
  while j >= i and byte(s, j) == 32 do
    j = j - 1
  end
  if i <= j and byte(s, i) == 91 and byte(s, j) == 93 then
    i, j = i + 1, j - 1
  end
  local pct = find(s, "%", i, true)
  if pct and pct <= j then
    j = pct - 1
  end
  if j < i then
    return nil
  end
  local w = ipv4_word(s, i, j)
  if w then
    return 0, 0, 0xffff, w
  end
  local g = {}
  if not ipv6_groups(s, i, j, g) then
    return nil
  end
  return bor(lshift(g[1], 16), g[2]), bor(lshift(g[3], 16), g[4]), bor(lshift(g[5], 16), g[6]),
    bor(lshift(g[7], 16), g[8])
end

local function mask(bits)
  if bits <= 0 then
    return 0
  elseif bits >= 32 then
    return -1
  end
  return bnot(rshift(-1, bits))
end

-- "10.0.0.0/8" -> { words (masked), masks }, or nil and why.
function M.parse_cidr(s)
  local slash = find(s, "/", 1, true)
  local addr, bits = s, nil
  if slash then
    addr = sub(s, 1, slash - 1)
    bits = tonumber(sub(s, slash + 1))
    if not bits or bits ~= math.floor(bits) or bits < 0 then
      return nil, "invalid prefix length in " .. s
    end
  end
  local w1, w2, w3, w4 = M.parse_ip(addr)
  if not w1 then
    return nil, "invalid address in " .. s
  end
  local v4 = not find(addr, ":", 1, true)
  local max = v4 and 32 or 128
  bits = bits or max
  if bits > max then
    return nil, "prefix length above " .. max .. " in " .. s
  end
  if v4 then
    bits = bits + 96
  end
  local m = { mask(bits), mask(bits - 32), mask(bits - 64), mask(bits - 96) }
  local w = { w1, w2, w3, w4 }
  for k = 1, 4 do
    w[k] = band(w[k], m[k])
  end
  return { words = w, masks = m }
end

-- True when address w1..w4 lies in block c.
function M.contains(c, w1, w2, w3, w4)
  local w, m = c.words, c.masks
  return band(w1, m[1]) == w[1] and band(w2, m[2]) == w[2] and band(w3, m[3]) == w[3]
    and band(w4, m[4]) == w[4]
end

-- True when the address s lies in one of blocks.
function M.matches(blocks, s)
  local w1, w2, w3, w4 = M.parse_ip(s)
  if not w1 then
    return false
  end
  for k = 1, #blocks do
    if M.contains(blocks[k], w1, w2, w3, w4) then
      return true
    end
  end
  return false
end

-- Parses the blocks once per configuration generation.
function M.prepare(conf)
  local blocks = {}
  for k, s in ipairs(conf.cidrs) do
    local c, err = M.parse_cidr(s)
    if not c then
      error("cidrs[" .. k .. "]: " .. err, 0)
    end
    blocks[k] = c
  end
  return { blocks = blocks, header = conf.header }
end

-- The address the rule looks at.
local function client_address(req, header)
  if header then
    local v = req:header(header)
    if v == nil then
      return nil
    end
    local comma = find(v, ",", 1, true)
    return comma and sub(v, 1, comma - 1) or v
  end
  return req.source_ip
end

function M.inspect(req, conf)
  local addr = client_address(req, conf.header)
  return addr ~= nil and M.matches(conf.blocks, addr)
end

return M
