-- moongate.vtl: the Velocity (VTL 1.7) subset of API Gateway mapping templates, compiled
-- to Lua once per configuration generation and run under the instruction budget.
--
--   compile(text, name)     -> template, or nil and "line L, column C: why"
--   render(template, input) -> the text, and the overrides the template set
--                              ($context.responseOverride / requestOverride); raises a
--                              string on a runtime error ("line L, column C: why")
--
-- input: { body = string, params = { path = {}, querystring = {}, header = {} } (name ->
-- value), context = function(name) -> value | nil, is_context = function(name) -> bool,
-- stage_variables = { name -> value } }. The kit (moongate.testing) and the gateway
-- (moongate.mapping) both build it.
--
-- Whitespace follows Velocity 1.7 (what API Gateway runs): a #set eats the spaces before
-- it when they start a line's text and its line end; the ")" closing #if, #elseif and
-- #foreach, and #else and #end eat the spaces and line end right after them; "##" eats
-- its line end. Nothing else is eaten (indentation before #if, #foreach and #end stays).
local jsonpath = require "moongate.jsonpath"
local policy = require "moongate.policy"

local type, tostring, tonumber, pairs, ipairs, select, error, pcall, setmetatable, getmetatable, load =
  type, tostring, tonumber, pairs, ipairs, select, error, pcall, setmetatable, getmetatable, loadstring
local byte, sub, find, format, rep, match, gsub, lower, upper, char =
  string.byte, string.sub, string.find, string.format, string.rep, string.match, string.gsub,
  string.lower, string.upper, string.char
local concat, sort = table.concat, table.sort
local floor, huge, fmod = math.floor, math.huge, math.fmod
local NULL, List, Map = jsonpath.null, jsonpath.List, jsonpath.Map
local is_list, is_map, put = jsonpath.is_list, jsonpath.is_map, jsonpath.put
local tick = policy.tick

local M = {}

-- Limits that keep compiled templates loadable and rendering bounded.
M.MAX_TEMPLATE = 262144   -- bytes of template text
M.MAX_DEPTH = 40          -- nested #if / #foreach
M.MAX_EXPR = 48           -- nesting of one expression
M.MAX_OUTPUT = 10485760   -- bytes a render (or one string it builds) may reach

---------------------------------------------------------------------------
-- Parsing
---------------------------------------------------------------------------

local function perr(pos, msg)
  error({ pos = pos, msg = msg }, 0)
end

local function line_col(s, pos)
  local line, last = 1, 0
  local i = 1
  while true do
    local j = find(s, "\n", i, true)
    if not j or j >= pos then
      break
    end
    line, last, i = line + 1, j, j + 1
  end
  return line, pos - last
end
M.line_col = line_col

local UNSUPPORTED = { macro = true, include = true, parse = true, evaluate = true, define = true }

-- The parser state: s (the text), lim (the last index of the part being read).
local parse_block, parse_expr, parse_ref

local function skip_ws(p, i)
  return (find(p.s, "[^ \t\r\n]", i)) or p.lim + 1
end

local function depth_list(t)
  local d = 0
  for _, e in ipairs(t) do
    if type(e) == "table" and e.d and e.d > d then
      d = e.d
    end
  end
  return d + 1
end

local function depth_of(a, b)
  return depth_list({ a, b })
end

local function node(pos, t, fields)
  fields.t, fields.pos = t, pos
  return fields
end

local function checked(e, pos)
  if e.d > M.MAX_EXPR then
    perr(pos, "expression nested too deeply")
  end
  return e
end

-- A string literal at i ("..." interpolated, '...' not); returns the node and the index
-- after it. Velocity 1.7 keeps backslashes as they are; a doubled quote is one quote.
local function parse_string(p, i)
  local s, q = p.s, sub(p.s, i, i)
  local j = i + 1
  local stop = q == '"' and '["\\]' or "'"
  while true do
    local k = find(s, stop, j)
    if not k or k > p.lim then
      perr(i, "unterminated string literal")
    end
    if sub(s, k, k) == "\\" then
      j = k + 2 -- \" and the other escapes stay in the text, as Velocity 1.7 keeps them
    elseif sub(s, k + 1, k + 1) == q and k + 1 <= p.lim then
      j = k + 2
    else
      j = k
      break
    end
  end
  local raw = sub(s, i + 1, j - 1)
  if q == '"' and find(raw, "[$#]") then
    -- an interpolated string: its contents are a template of their own
    -- a string's directives count toward the nesting of the directive it is in
    local sp = { s = p.s, lim = j - 1 }
    local body = parse_block(sp, i + 1, (p.depth or 0) + 1)
    return node(i, "interp", { body = body, d = 1 }), j + 1
  end
  return node(i, "str", { v = (gsub(raw, q .. q, q)), d = 1 }), j + 1
end

-- A number literal at i: -?digits[.digits][e...]; "1..3" is 1 then "..".
local function parse_number(p, i)
  local s = p.s
  local _, e = find(s, "^-?%d+", i)
  if not e then
    return nil
  end
  local j = e + 1
  if sub(s, j, j) == "." and sub(s, j + 1, j + 1) ~= "." then
    local _, e2 = find(s, "^%d*", j + 1)
    j = e2 + 1
    local _, e3 = find(s, "^[eE][+-]?%d+", j)
    if e3 then
      j = e3 + 1
    end
    return node(i, "num", { v = tonumber(sub(s, i, j - 1)), float = true, d = 1 }), j
  end
  return node(i, "num", { v = tonumber(sub(s, i, j - 1)), d = 1 }), j
end

local WORD_OPS = { ["and"] = "&&", ["or"] = "||", ["not"] = "!", eq = "==", ne = "!=", lt = "<", gt = ">",
  le = "<=", ge = ">=" }

-- The next operator token at i (after white space): its text and the index after it.
local function peek_op(p, i)
  i = skip_ws(p, i)
  if i > p.lim then
    return nil, i
  end
  local s = p.s
  local two = sub(s, i, i + 1)
  if two == "==" or two == "!=" or two == "<=" or two == ">=" or two == "&&" or two == "||" then
    return two, i + 2, i
  end
  local c = sub(s, i, i)
  if find(c, "^[<>+%-*/%%!]") then
    return c, i + 1, i
  end
  local w = match(s, "^%a+", i)
  if w and WORD_OPS[w] then
    return WORD_OPS[w], i + #w, i
  end
  return nil, i, i
end

local function parse_list_or_range(p, i)
  -- i: "["
  local j = skip_ws(p, i + 1)
  if sub(p.s, j, j) == "]" then
    return node(i, "list", { items = {}, d = 1 }), j + 1
  end
  local first
  first, j = parse_expr(p, j)
  j = skip_ws(p, j)
  if sub(p.s, j, j + 1) == ".." then
    local last
    last, j = parse_expr(p, j + 2)
    j = skip_ws(p, j)
    if sub(p.s, j, j) ~= "]" then
      perr(j, 'expected "]" to close the range')
    end
    return checked(node(i, "range", { a = first, b = last, d = depth_of(first, last) }), i), j + 1
  end
  local items = { first }
  while sub(p.s, j, j) == "," do
    local e
    e, j = parse_expr(p, j + 1)
    items[#items + 1] = e
    j = skip_ws(p, j)
  end
  if sub(p.s, j, j) ~= "]" or j > p.lim then
    perr(j, 'expected "," or "]" in the list')
  end
  return checked(node(i, "list", { items = items, d = depth_list(items) }), i), j + 1
end

local function parse_map(p, i)
  local j = skip_ws(p, i + 1)
  local items = {}
  if sub(p.s, j, j) == "}" then
    return node(i, "map", { items = items, d = 1 }), j + 1
  end
  while true do
    local k, v
    k, j = parse_expr(p, j)
    j = skip_ws(p, j)
    if sub(p.s, j, j) ~= ":" then
      perr(j, 'expected ":" in the map')
    end
    v, j = parse_expr(p, j + 1)
    items[#items + 1] = k
    items[#items + 1] = v
    j = skip_ws(p, j)
    local c = sub(p.s, j, j)
    if c == "}" and j <= p.lim then
      break
    elseif c ~= "," or j > p.lim then
      perr(j, 'expected "," or "}" in the map')
    end
    j = j + 1
  end
  return checked(node(i, "map", { items = items, d = depth_list(items) }), i), j + 1
end

local function parse_primary(p, i)
  i = skip_ws(p, i)
  if i > p.lim then
    perr(i, "expected a value")
  end
  local s = p.s
  local c = sub(s, i, i)
  if c == '"' or c == "'" then
    return parse_string(p, i)
  elseif c == "$" then
    local r, j = parse_ref(p, i, true)
    if not r then
      perr(i, "expected a reference after $")
    end
    return r, j
  elseif c == "[" then
    return parse_list_or_range(p, i)
  elseif c == "{" then
    return parse_map(p, i)
  elseif c == "(" then
    local e, j = parse_expr(p, i + 1)
    j = skip_ws(p, j)
    if sub(s, j, j) ~= ")" or j > p.lim then
      perr(j, 'expected ")"')
    end
    return checked(node(i, "paren", { e = e, d = e.d + 1 }), i), j + 1
  elseif find(c, "^[%d%-]") then
    local n, j = parse_number(p, i)
    if n then
      return n, j
    end
  else
    local w = match(s, "^%a+", i)
    if w == "true" or w == "false" then
      return node(i, "bool", { v = w == "true", d = 1 }), i + #w
    end
  end
  perr(i, format("unexpected %q", sub(s, i, i)))
end

local function parse_unary(p, i)
  local op, j = peek_op(p, i)
  if op == "!" then
    local e
    e, j = parse_unary(p, j)
    return checked(node(i, "not", { e = e, d = e.d + 1 }), i), j
  end
  return parse_primary(p, i)
end

local LEVELS = {
  { ["||"] = true },
  { ["&&"] = true },
  { ["=="] = true, ["!="] = true },
  { ["<"] = true, [">"] = true, ["<="] = true, [">="] = true },
  { ["+"] = true, ["-"] = true },
  { ["*"] = true, ["/"] = true, ["%"] = true },
}

local function parse_level(p, i, level)
  if level > #LEVELS then
    return parse_unary(p, i)
  end
  local left, j = parse_level(p, i, level + 1)
  while true do
    local op, k, at = peek_op(p, j)
    if not (op and LEVELS[level][op]) then
      return left, j
    end
    local right
    right, j = parse_level(p, k, level + 1)
    left = checked(node(at, "bin", { op = op, a = left, b = right, d = depth_of(left, right) }), at)
  end
end

function parse_expr(p, i)
  return parse_level(p, i, 1)
end

-- Method arguments after "(" at i, up to ")": the list and the index after ")".
local function parse_args(p, i)
  local args = {}
  local j = skip_ws(p, i)
  if sub(p.s, j, j) == ")" and j <= p.lim then
    return args, j + 1
  end
  while true do
    local e
    e, j = parse_expr(p, j)
    args[#args + 1] = e
    j = skip_ws(p, j)
    local c = sub(p.s, j, j)
    if c == ")" and j <= p.lim then
      return args, j + 1
    elseif c ~= "," or j > p.lim then
      perr(j, 'expected "," or ")" after a method argument')
    end
    j = j + 1
  end
end

-- A reference at i ("$"): $name, $!name, ${name}, $!{name}, then [index], .prop and
-- .method(args). Returns the node and the index after it, or nil when "$" starts no
-- reference (it is then text). strict: inside a directive (errors are errors).
function parse_ref(p, i, strict)
  local s, lim = p.s, p.lim
  local j = i + 1
  local quiet = false
  if sub(s, j, j) == "!" then
    quiet, j = true, j + 1
  end
  local braced = false
  if sub(s, j, j) == "{" then
    braced, j = true, j + 1
  end
  local name = match(s, "^[%a_][%w_%-]*", j)
  if not name or j + #name - 1 > lim then
    return nil
  end
  j = j + #name
  local parts = {}
  local d = 1
  while j <= lim do
    local c = sub(s, j, j)
    if c == "[" then
      local k = skip_ws(p, j + 1)
      local ch = sub(s, k, k)
      local ix, after
      if ch == '"' or ch == "'" then
        ix, after = parse_string(p, k)
      elseif ch == "$" then
        ix, after = parse_ref(p, k, true)
      elseif find(ch, "^[%d%-]") then
        ix, after = parse_number(p, k)
      else
        local w = match(s, "^%a+", k)
        if w == "true" or w == "false" then
          ix, after = node(k, "bool", { v = w == "true", d = 1 }), k + #w
        end
      end
      if not ix then
        if strict then
          perr(k, "expected an index in [ ]")
        end
        break
      end
      after = skip_ws(p, after)
      if sub(s, after, after) ~= "]" or after > lim then
        if strict then
          perr(after, 'expected "]"')
        end
        break
      end
      parts[#parts + 1] = { k = "idx", e = ix }
      d = depth_of({ d = d }, ix)
      j = after + 1
    elseif c == "." and find(s, "^%a", j + 1) and j + 1 <= lim then
      local id = match(s, "^[%a_][%w_%-]*", j + 1)
      local after = j + 1 + #id
      if sub(s, after, after) == "(" and after <= lim then
        local args
        args, after = parse_args(p, after + 1)
        parts[#parts + 1] = { k = "call", name = id, args = args }
        local all = { { d = d } }
        for _, a in ipairs(args) do
          all[#all + 1] = a
        end
        d = depth_list(all)
      else
        parts[#parts + 1] = { k = "prop", name = id }
        d = d + 1
      end
      j = after
    else
      break
    end
    if d > M.MAX_EXPR then
      perr(i, "reference nested too deeply")
    end
  end
  if braced then
    if sub(s, j, j) ~= "}" or j > lim then
      if strict then
        perr(j, 'expected "}" to close ${')
      end
      return nil
    end
    j = j + 1
  end
  return node(i, "ref", { name = name, parts = parts, quiet = quiet, src = sub(s, i, j - 1), d = d }), j
end

-- After a directive's ")" (or #else / #end): the spaces and line end Velocity 1.7 eats.
local function eat_line_end(p, j)
  local _, e = find(p.s, "^[ \t]*\r?\n", j)
  if not e then
    _, e = find(p.s, "^[ \t]*\r", j)
  end
  if e and e <= p.lim then
    return e + 1
  end
  return j
end

-- The "(" of a directive at j (after optional white space), or an error.
local function expect_lparen(p, j, what, start)
  local k = skip_ws(p, j)
  if sub(p.s, k, k) ~= "(" or k > p.lim then
    perr(start, what .. ' needs "(" after it')
  end
  return k + 1
end

local function expect_rparen(p, j, what, start)
  j = skip_ws(p, j)
  if sub(p.s, j, j) ~= ")" or j > p.lim then
    perr(j, 'expected ")" to close ' .. what)
  end
  return eat_line_end(p, j + 1)
end

-- Reads statements from i until the end of the part or a block directive that the caller
-- handles (#end, #else, #elseif). Returns the nodes, the index after, and the stopping
-- directive ({ kind, pos }) or nil at the end.
function parse_block(p, i, depth)
  local s, lim = p.s, p.lim
  p.depth = depth
  local nodes = {}
  local text, run = {}, 0 -- text pieces, and how many of them come before the current run
  local function flush()
    if #text > 0 then
      local t = concat(text)
      if t ~= "" then
        nodes[#nodes + 1] = node(i, "text", { s = t })
      end
      text = {}
    end
    run = 0
  end
  local function token()
    run = #text
  end
  while i <= lim do
    local c = byte(s, i)
    if c == 36 then -- $
      local r, j = parse_ref(p, i, false)
      if r then
        flush()
        nodes[#nodes + 1] = r
        i = j
      else
        text[#text + 1] = "$"
        i = i + 1
      end
    elseif c == 92 then -- backslashes before $ or #
      local _, e = find(s, "^\\+", i)
      if e > lim then
        e = lim
      end
      local k = e - i + 1
      local nc = sub(s, e + 1, e + 1)
      local r, j
      if nc == "$" and e + 1 <= lim then
        r, j = parse_ref(p, e + 1, false)
      end
      if r then
        flush()
        nodes[#nodes + 1] = node(i, "escref", { k = k, ref = r })
        i = j
      elseif nc == "#" and e + 1 <= lim and match(s, "^#{?(%a+)", e + 1) then
        -- \#if: the directive is text; \\#if: a backslash, then the directive
        text[#text + 1] = rep("\\", floor(k / 2))
        if k % 2 == 1 then
          local w = match(s, "^#{?%a+}?", e + 1)
          text[#text + 1] = w
          i = e + 1 + #w
        else
          i = e + 1
        end
      else
        text[#text + 1] = sub(s, i, e)
        i = e + 1
      end
    elseif c == 35 then -- #
      local c2 = sub(s, i + 1, i + 1)
      if c2 == "#" and i + 1 <= lim then
        local e = find(s, "\n", i + 2, true)
        i = (e and e <= lim) and e + 1 or lim + 1
        token()
      elseif c2 == "*" and i + 1 <= lim then
        local e = find(s, "*#", i + 2, true)
        if not e or e + 1 > lim then
          perr(i, "unterminated comment #*")
        end
        i = e + 2
        token()
      elseif sub(s, i, i + 2) == "#[[" and i + 2 <= lim then
        local e = find(s, "]]#", i + 3, true)
        if not e or e + 2 > lim then
          perr(i, "unterminated #[[ ]]# block")
        end
        text[#text + 1] = sub(s, i + 3, e - 1)
        i = e + 3
        token()
      else
        local word, j = match(s, "^{(%a[%w_]*)}()", i + 1)
        if not word then
          word, j = match(s, "^(%a[%w_]*)()", i + 1)
        end
        if word and j - 1 > lim then
          word = nil
        end
        if word == "set" then
          local _, lp0 = find(s, "^ *%(", j)
          if not lp0 or lp0 > lim then
            text[#text + 1] = sub(s, i, j - 1) -- "#set" without "(" is text, as in Velocity
            i = j
          else
            -- leading spaces of a run that only has spaces go (Velocity's SET_DIRECTIVE)
            local tail = concat(text, "", run + 1)
            if not find(tail, "[^ \t]") then
              for x = #text, run + 1, -1 do
                text[x] = nil
              end
            end
            flush()
            local _, lp = find(s, "^ *%(", j)
            local target
            local k2 = skip_ws(p, lp + 1)
            if sub(s, k2, k2) ~= "$" then
              perr(k2, "#set needs a reference to set: #set($name = value)")
            end
            target, k2 = parse_ref(p, k2, true)
            if not target or target.quiet then
              perr(lp + 1, "#set needs a reference to set: #set($name = value)")
            end
            if #target.parts > 0 and target.parts[#target.parts].k ~= "prop" then
              perr(target.pos, "#set can set a variable or a property ($a.b), not " .. target.src)
            end
            k2 = skip_ws(p, k2)
            if sub(s, k2, k2) ~= "=" or sub(s, k2, k2 + 1) == "==" then
              perr(k2, 'expected "=" in #set')
            end
            local value
            value, k2 = parse_expr(p, k2 + 1)
            i = expect_rparen(p, k2, "#set", i)
            nodes[#nodes + 1] = node(target.pos, "set", { target = target, e = value })
            run = 0
          end
        elseif word == "if" or word == "elseif" then
          if word == "elseif" then
            flush()
            return nodes, i, { kind = "elseif", pos = i, after = j }
          end
          flush()
          local start = i
          if depth >= M.MAX_DEPTH then
            perr(i, "#if and #foreach nested too deeply")
          end
          local branches = {}
          local k = expect_lparen(p, j, "#if", start)
          local cond
          cond, k = parse_expr(p, k)
          k = expect_rparen(p, k, "#if", start)
          local body, after, stop = parse_block(p, k, depth + 1)
          branches[1] = { cond = cond, body = body }
          local els
          while true do
            if not stop then
              perr(start, "#if without #end")
            end
            if stop.kind == "end" then
              break
            elseif stop.kind == "elseif" then
              if els then
                perr(stop.pos, "#elseif after #else")
              end
              local k3 = expect_lparen(p, stop.after, "#elseif", stop.pos)
              local c3
              c3, k3 = parse_expr(p, k3)
              k3 = expect_rparen(p, k3, "#elseif", stop.pos)
              body, after, stop = parse_block(p, k3, depth + 1)
              branches[#branches + 1] = { cond = c3, body = body }
            else -- else
              els, after, stop = parse_block(p, stop.after, depth + 1)
              if not stop then
                perr(start, "#if without #end")
              elseif stop.kind ~= "end" then
                perr(stop.pos, "#" .. stop.kind .. " after #else")
              end
            end
          end
          nodes[#nodes + 1] = node(start, "if", { branches = branches, els = els })
          i = stop.after
          token()
        elseif word == "else" or word == "end" then
          flush()
          return nodes, i, { kind = word, pos = i, after = eat_line_end(p, j) }
        elseif word == "foreach" then
          flush()
          local start = i
          if depth >= M.MAX_DEPTH then
            perr(i, "#if and #foreach nested too deeply")
          end
          local k = expect_lparen(p, j, "#foreach", start)
          k = skip_ws(p, k)
          local var = sub(s, k, k) == "$" and match(s, "^%$!?{?([%a_][%w_%-]*)}?", k)
          if not var then
            perr(k, "#foreach needs a loop variable: #foreach($item in $list)")
          end
          k = k + #match(s, "^%$!?{?[%a_][%w_%-]*}?", k)
          k = skip_ws(p, k)
          if not find(s, "^in[%s%$%[%(\"']", k) then
            perr(k, '#foreach needs "in": #foreach($item in $list)')
          end
          local e
          e, k = parse_expr(p, k + 2)
          k = expect_rparen(p, k, "#foreach", start)
          local body, _, stop = parse_block(p, k, depth + 1)
          if not stop then
            perr(start, "#foreach without #end")
          elseif stop.kind ~= "end" then
            perr(stop.pos, "#" .. stop.kind .. " without #if")
          end
          nodes[#nodes + 1] = node(start, "foreach", { var = var, e = e, body = body })
          i = stop.after
          token()
        elseif word == "break" or word == "stop" then
          flush()
          nodes[#nodes + 1] = node(i, word, {})
          i = j
          if sub(s, i, i + 1) == "()" then
            i = eat_line_end(p, i + 2)
          end
          token()
        elseif word and UNSUPPORTED[word] then
          perr(i, "#" .. word .. " is not supported")
        else
          text[#text + 1] = "#"
          i = i + 1
        end
      end
    else
      local e = find(s, "[$#\\]", i)
      if not e or e > lim + 1 then
        e = lim + 1
      end
      text[#text + 1] = sub(s, i, e - 1)
      i = e
    end
  end
  flush()
  return nodes, i, nil
end

---------------------------------------------------------------------------
-- Code generation
---------------------------------------------------------------------------

local function q(s)
  return format("%q", s)
end

local function num_lit(v)
  if v ~= v then
    return "(0/0)"
  elseif v == huge then
    return "(1/0)"
  elseif v == -huge then
    return "(-1/0)"
  end
  return format("%.17g", v)
end

local gen_block

local function at(g, pos)
  local l, c = line_col(g.s, pos)
  return format("%d", l * 65536 + c)
end

local function gen_expr(g, e)
  local t = e.t
  if t == "str" then
    return q(e.v)
  elseif t == "interp" then
    local k = #g.subs + 1
    g.subs[k] = false
    g.subs[k] = gen_block(g, e.body, false)
    return format("R.interp(S[%d], V)", k)
  elseif t == "num" then
    return e.float and format("R.float(%s)", num_lit(e.v)) or num_lit(e.v)
  elseif t == "bool" then
    return e.v and "true" or "false"
  elseif t == "list" then
    local parts = {}
    for k, it in ipairs(e.items) do
      parts[k] = gen_expr(g, it)
    end
    return format("R.listn(%d, {%s})", #parts, concat(parts, ", "))
  elseif t == "map" then
    local parts = {}
    for k, it in ipairs(e.items) do
      parts[k] = gen_expr(g, it)
    end
    return format("R.mapn(%d, {%s}, %s)", #parts, concat(parts, ", "), at(g, e.pos))
  elseif t == "range" then
    return format("R.range(%s, %s, %s)", gen_expr(g, e.a), gen_expr(g, e.b), at(g, e.pos))
  elseif t == "paren" then
    return "(" .. gen_expr(g, e.e) .. ")"
  elseif t == "not" then
    return format("(not R.truthy(%s))", gen_expr(g, e.e))
  elseif t == "bin" then
    local a, b = gen_expr(g, e.a), gen_expr(g, e.b)
    if e.op == "&&" then
      return format("(R.truthy(%s) and R.truthy(%s))", a, b)
    elseif e.op == "||" then
      return format("(R.truthy(%s) or R.truthy(%s))", a, b)
    end
    return format("R.op(%q, %s, %s, %s)", e.op, a, b, at(g, e.pos))
  elseif t == "ref" then
    local code = format("V[%s]", q(e.name))
    for _, part in ipairs(e.parts) do
      if part.k == "prop" then
        code = format("R.prop(%s, %s)", code, q(part.name))
      elseif part.k == "idx" then
        code = format("R.idx(%s, %s, %s)", code, gen_expr(g, part.e), at(g, e.pos))
      else
        local args = {}
        for k, a in ipairs(part.args) do
          args[k] = gen_expr(g, a)
        end
        code = format("R.call(%s, %s, %d, {%s}, %s)", code, q(part.name), #args, concat(args, ", "),
          at(g, e.pos))
      end
    end
    return code
  end
  error("vtl: no code for " .. tostring(t))
end

local function emit(out, line)
  out[#out + 1] = line
end

-- Statements of a block into out; loop: inside a #foreach of this function.
local function gen_stmts(g, nodes, out, loop)
  for _, n in ipairs(nodes) do
    local t = n.t
    if t == "text" then
      emit(out, format("n = n + 1 o[n] = E(%s)", q(n.s)))
    elseif t == "ref" then
      emit(out, format("n = n + 1 o[n] = E(R.show(%s, %s, %s))", gen_expr(g, n), q(n.src),
        n.quiet and "true" or "false"))
    elseif t == "escref" then
      emit(out, format("n = n + 1 o[n] = E(R.escaped(%s, %d, %s))", gen_expr(g, n.ref), n.k, q(n.ref.src)))
    elseif t == "set" then
      local target = n.target
      local value = gen_expr(g, n.e)
      if #target.parts == 0 then
        emit(out, format("R.setvar(V, %s, %s)", q(target.name), value))
      else
        local last = target.parts[#target.parts]
        local holder = { t = "ref", name = target.name, parts = {}, pos = target.pos }
        for k = 1, #target.parts - 1 do
          holder.parts[k] = target.parts[k]
        end
        emit(out, format("R.setprop(%s, %s, %s, %s)", gen_expr(g, holder), q(last.name), value, at(g, n.pos)))
      end
    elseif t == "if" then
      for k, b in ipairs(n.branches) do
        emit(out, format("%s R.truthy(%s) then", k == 1 and "if" or "elseif", gen_expr(g, b.cond)))
        gen_stmts(g, b.body, out, loop)
      end
      if n.els then
        emit(out, "else")
        gen_stmts(g, n.els, out, loop)
      end
      emit(out, "end")
    elseif t == "foreach" then
      emit(out, "do")
      emit(out, format("local L = R.loop(V, %s, %s)", q(n.var), gen_expr(g, n.e)))
      emit(out, "for i = 1, L.n do")
      emit(out, "T() R.step(V, L, i)")
      gen_stmts(g, n.body, out, true)
      emit(out, "end")
      emit(out, "R.done(V, L)")
      emit(out, "end")
    elseif t == "break" then
      emit(out, loop and "do break end" or "R.stop()")
    elseif t == "stop" then
      emit(out, "R.stop()")
    end
  end
end

function gen_block(g, nodes)
  local out = { "function(V, o) local n = 0" }
  gen_stmts(g, nodes, out, false)
  out[#out + 1] = "return n end"
  return concat(out, "\n")
end

---------------------------------------------------------------------------
-- Compiling
---------------------------------------------------------------------------

-- A Lua error of the compiler itself: a deep template overflows Lua's stack (said as
-- such); anything else is a bug, said as one (the fuzz target looks for these).
local function internal(err)
  err = tostring(err)
  if find(err, "stack overflow", 1, true) then
    return "line 1, column 1: the template is nested too deeply"
  end
  return "line 1, column 1: internal error: " .. err
end

-- Compiles template text. Returns { fn, source = the Lua code }, or nil and
-- "line L, column C: why". name is used in Lua tracebacks.
function M.compile(text, name)
  if type(text) ~= "string" then
    return nil, "line 1, column 1: a template must be a string"
  end
  if #text > M.MAX_TEMPLATE then
    return nil, format("line 1, column 1: the template is longer than %d bytes", M.MAX_TEMPLATE)
  end
  local p = { s = text, lim = #text, subs = {} }
  local ok, nodes, _, stop = pcall(parse_block, p, 1, 0)
  if ok and stop then
    ok, nodes = false, { pos = stop.pos, msg = "#" .. stop.kind .. " without #if" }
  end
  if not ok then
    if type(nodes) ~= "table" then
      return nil, internal(nodes)
    end
    local l, c = line_col(text, nodes.pos)
    return nil, format("line %d, column %d: %s", l, c, nodes.msg)
  end
  local g = { s = text, subs = {} }
  local ok2, main = pcall(gen_block, g, nodes)
  if not ok2 then
    return nil, internal(main)
  end
  local src = { "local R = ...", "local E, T, S = R.E, R.T, {}" }
  for k, sfn in ipairs(g.subs) do
    src[#src + 1] = format("S[%d] = %s", k, sfn)
  end
  src[#src + 1] = "return " .. main
  local code = concat(src, "\n")
  local chunk, lerr = load(code, "=" .. (name or "template"))
  if not chunk then
    return nil, "line 1, column 1: internal error: the compiled template does not load: " .. tostring(lerr)
  end
  return { fn = chunk(M.R), source = code, name = name }
end

---------------------------------------------------------------------------
-- The runtime the compiled code calls (R)
---------------------------------------------------------------------------

local R = {}
M.R = R
R.T = tick

-- Java-like floats: a number literal with a decimal point. Lua has one number type; a
-- float is kept as a table only where it matters (division, printing "1.0").
local Float = { __name = "float" }
function R.float(v)
  if v == floor(v) and v > -1e15 and v < 1e15 then
    return setmetatable({ v = v }, Float)
  end
  return v
end
local function num(v)
  if type(v) == "number" then
    return v
  elseif getmetatable(v) == Float then
    return v.v
  end
  return nil
end
R.num = num

local size = 0 -- bytes rendered so far in this render

local function where(pos)
  return format("line %d, column %d: ", floor(pos / 65536), pos % 65536)
end

local function runtime_error(pos, msg)
  error(where(pos) .. msg, 0)
end

local function charge(s)
  local n = #s
  if n > 4096 then
    for _ = 1, floor(n / 4096) do
      tick()
    end
  end
  if n > M.MAX_OUTPUT then
    error(format("a string of more than %d bytes", M.MAX_OUTPUT), 0)
  end
  return s
end

function R.E(s)
  size = size + #s
  if size > M.MAX_OUTPUT then
    error(format("the rendered text exceeds %d bytes", M.MAX_OUTPUT), 0)
  end
  return s
end

local STOP = setmetatable({}, { __tostring = function() return "#stop" end })
function R.stop()
  error(STOP, 0)
end

-- An object of the runtime ($input, $util, $context...): get(self, name) for properties,
-- methods[name](self, args, n, pos), str(self) for rendering.
local Obj = { __name = "object" }
M.Obj = Obj
local function obj(t)
  return setmetatable(t, Obj)
end

local tostr

local function list_str(l)
  local parts = {}
  for k = 1, l.n do
    tick()
    local v = l[k]
    parts[k] = (v == nil or v == NULL) and "null" or tostr(v) or "" -- an object without text
  end
  return charge("[" .. concat(parts, ", ") .. "]")
end

local function map_str(m)
  local parts = {}
  for k, key in ipairs(m.keys) do
    tick()
    local v = m.vals[key]
    parts[k] = key .. "=" .. ((v == nil or v == NULL) and "null" or tostr(v) or "")
  end
  return charge("{" .. concat(parts, ", ") .. "}")
end

-- A value as Velocity renders it (Java's toString), or nil for null.
function tostr(v)
  local t = type(v)
  if t == "string" then
    return v
  elseif t == "number" then
    return jsonpath.number_text(v)
  elseif t == "boolean" then
    return v and "true" or "false"
  elseif v == nil or v == NULL then
    return nil
  end
  local mt = getmetatable(v)
  if mt == Float then
    return jsonpath.number_text(v.v) .. (v.v == floor(v.v) and ".0" or "")
  elseif mt == List then
    return list_str(v)
  elseif mt == Map then
    return map_str(v)
  elseif mt == Obj then
    return v.str and v:str() or nil
  end
  return tostring(v)
end
R.tostr = tostr
M.tostring = tostr

function R.show(v, src, quiet)
  local s = tostr(v)
  if s == nil then
    return quiet and "" or src
  end
  return s
end

-- \$ref: a defined reference shows its text, an undefined one the backslashes too.
function R.escaped(v, k, src)
  if v == nil then
    return rep("\\", k) .. src
  end
  return rep("\\", floor(k / 2)) .. (k % 2 == 1 and src or tostr(v) or src)
end

function R.truthy(v)
  if v == nil or v == false or v == NULL then
    return false
  end
  return true
end

function R.interp(fn, V)
  local o = {}
  local before = size -- a string is not output: its own size is checked (charge)
  local n = fn(V, o)
  size = before
  return charge(concat(o, "", 1, n))
end

function R.listn(n, t)
  for k = 1, n do
    if t[k] == nil then
      t[k] = NULL
    end
  end
  return jsonpath.list(t, n)
end

function R.mapn(n, t, pos)
  local m = jsonpath.map()
  for k = 1, n, 2 do
    local key = tostr(t[k])
    if key == nil then
      runtime_error(pos, "a map key is null")
    end
    put(m, key, t[k + 1] == nil and NULL or t[k + 1])
  end
  return m
end

function R.range(a, b, pos)
  a, b = num(a), num(b)
  if not a or not b then
    return nil
  end
  a, b = floor(a), floor(b)
  local l = jsonpath.list({}, 0)
  local step = a <= b and 1 or -1
  local n = 0
  for v = a, b, step do
    tick()
    n = n + 1
    l[n] = v
  end
  l.n = n
  return l
end

local function out(v)
  if v == NULL then
    return nil
  end
  return v
end

-- Java's equals between two values of one kind; Velocity compares other pairs by their
-- toString.
local function equals(a, b)
  local na, nb = num(a), num(b)
  if na and nb then
    return na == nb
  end
  if a == nil or b == nil or a == NULL or b == NULL then
    return (a == nil or a == NULL) and (b == nil or b == NULL)
  end
  if type(a) == type(b) and type(a) ~= "table" then
    return a == b
  end
  return tostr(a) == tostr(b)
end
R.equals = equals

local function java_div(a, b, fa, fb, pos)
  if fa or fb then
    return R.float_result(a / b)
  end
  if b == 0 then
    return nil -- Velocity logs the division by zero and answers null
  end
  local r = a / b
  return r >= 0 and floor(r) or -floor(-r)
end

function R.float_result(v)
  if v == floor(v) and v > -1e15 and v < 1e15 then
    return setmetatable({ v = v }, Float)
  end
  return v
end

function R.op(op, a, b, pos)
  if op == "==" then
    return equals(a, b)
  elseif op == "!=" then
    return not equals(a, b)
  end
  local na, nb = num(a), num(b)
  if op == "+" and (na == nil or nb == nil) then
    -- a string on either side: concatenation (Velocity 1.7)
    if type(a) == "string" or type(b) == "string" then
      local sa, sb = tostr(a), tostr(b)
      if sa == nil or sb == nil then
        return nil
      end
      return charge(sa .. sb)
    end
    return nil
  end
  if na == nil or nb == nil then
    if op == "<" or op == ">" or op == "<=" or op == ">=" then
      return false -- Velocity logs the comparison of non-numbers and answers false
    end
    return nil
  end
  local fa, fb = type(a) == "table", type(b) == "table"
  local float = fa or fb or na ~= floor(na) or nb ~= floor(nb)
  if op == "<" then
    return na < nb
  elseif op == ">" then
    return na > nb
  elseif op == "<=" then
    return na <= nb
  elseif op == ">=" then
    return na >= nb
  elseif op == "+" then
    return float and R.float_result(na + nb) or na + nb
  elseif op == "-" then
    return float and R.float_result(na - nb) or na - nb
  elseif op == "*" then
    return float and R.float_result(na * nb) or na * nb
  elseif op == "/" then
    return java_div(na, nb, float, false, pos)
  elseif op == "%" then
    if nb == 0 then
      return nil
    end
    if float then
      return R.float_result(fmod(na, nb))
    end
    return fmod(na, nb)
  end
  return nil
end

function R.setvar(V, name, v)
  if v ~= nil then -- a null value leaves the variable as it was (Velocity 1.7)
    V[name] = v
  end
end

function R.setprop(holder, name, v, pos)
  if v == nil or holder == nil then
    return
  end
  local mt = getmetatable(holder)
  if mt == Map then
    put(holder, name, v)
  elseif mt == Obj and holder.set then
    holder:set(name, v, pos)
  end
end

function R.prop(v, name)
  if v == nil then
    return nil
  end
  local mt = getmetatable(v)
  if mt == Map then
    return out(v.vals[name])
  elseif mt == Obj then
    return v.get and v:get(name) or nil
  elseif name == "empty" then
    if mt == List then
      return v.n == 0
    elseif type(v) == "string" then
      return v == ""
    end
  end
  return nil
end

function R.idx(v, k, pos)
  if v == nil or k == nil then
    return nil
  end
  local mt = getmetatable(v)
  if mt == List then
    local i = num(k)
    if not i then
      return nil
    end
    if i < 0 or i >= v.n or i ~= floor(i) then
      runtime_error(pos, format("index %s is out of the list's range (size %d)", tostr(k), v.n))
    end
    return out(v[i + 1])
  elseif mt == Map then
    local key = tostr(k)
    return key and out(v.vals[key])
  elseif mt == Obj then
    local key = tostr(k)
    return key and v.get and v:get(key) or nil
  end
  return nil
end

-- UTF-8 aware string helpers (Java counts UTF-16 units; moongate counts characters).
local function is_ascii(s)
  return not find(s, "[\128-\255]")
end

local function chars(s)
  local t, n = {}, 0
  for ch in s:gmatch("[%z\1-\127\192-\255][\128-\191]*") do
    n = n + 1
    t[n] = ch
  end
  return t, n
end

local function slen(s)
  if is_ascii(s) then
    return #s
  end
  local _, n = gsub(s, "[^\128-\191]", "")
  return n
end

local function ssub(s, b, e) -- 0-based, e exclusive
  if is_ascii(s) then
    return sub(s, b + 1, e)
  end
  local t = chars(s)
  return concat(t, "", b + 1, e)
end

local function sindex(s, needle, from) -- 0-based char index of needle, or -1
  from = from or 0
  if from < 0 then
    from = 0
  end
  if is_ascii(s) then
    local k = find(s, needle, from + 1, true)
    return k and k - 1 or -1
  end
  local t, n = chars(s)
  local prefix = concat(t, "", 1, from)
  local k = find(s, needle, #prefix + 1, true)
  if not k then
    return -1
  end
  return slen(sub(s, 1, k - 1))
end

-- Regular expressions (Java's): PCRE2 through moongate.mapping's binding, unanchored.
local regex_cache = setmetatable({}, { __mode = "v" })
local function regex(pattern, pos)
  local r = regex_cache[pattern]
  if r == nil then
    local err
    r, err = require("moongate.mapping").pcre(pattern)
    if not r then
      runtime_error(pos, "invalid regular expression " .. format("%q", pattern) .. ": " .. err)
    end
    regex_cache[pattern] = r
  end
  return r
end

-- Java's replacement text: $n is group n, \x is x.
local function expand(repl, groups)
  return (gsub(repl, "\\(.)", "\0%1"):gsub("%$(%d)", function(d)
    return groups[tonumber(d) + 1] or ""
  end):gsub("%z(.)", "%1"))
end

local function replace_re(s, pattern, repl, pos, first_only)
  local r = regex(pattern, pos)
  local parts, from = {}, 1
  while from <= #s + 1 do
    tick()
    local groups = r.find(s, from)
    if not groups then
      break
    end
    local b, e = groups.b, groups.e -- 1-based start, inclusive end
    parts[#parts + 1] = sub(s, from, b - 1)
    parts[#parts + 1] = expand(repl, groups)
    if e < b then -- an empty match: keep one character and go on
      parts[#parts + 1] = sub(s, b, b)
      from = b + 1
    else
      from = e + 1
    end
    if first_only then
      break
    end
  end
  parts[#parts + 1] = sub(s, from)
  return charge(concat(parts))
end

local function split(s, pattern, pos)
  local l = jsonpath.list({}, 0)
  local n = 0
  local plain = not find(pattern, "[%^%$%.%[%]%(%)%*%+%?{}|\\]")
  local from = 1
  while from <= #s do
    tick()
    local b, e
    if plain then
      b, e = find(s, pattern, from, true)
    else
      local g = regex(pattern, pos).find(s, from)
      if g then
        b, e = g.b, g.e
      end
    end
    if not b then
      break
    end
    if e < b then -- empty match
      if b > #s then
        break
      end
      n = n + 1
      l[n] = sub(s, from, b)
      from = b + 1
    else
      if not (b == 1 and e >= 1 and from == 1 and b > e) then
        n = n + 1
        l[n] = sub(s, from, b - 1)
      end
      from = e + 1
    end
  end
  n = n + 1
  l[n] = sub(s, from)
  while n > 0 and l[n] == "" do -- Java drops trailing empty strings
    l[n] = nil
    n = n - 1
  end
  l.n = n
  return l
end

local function str_arg(v)
  if type(v) == "string" then
    return v
  end
  return nil
end

local function int_arg(v)
  local n = num(v)
  if n and n == floor(n) then
    return n
  end
  return nil
end

local STRING = {}
STRING.length = function(s) return slen(s) end
STRING.isEmpty = function(s) return s == "" end
STRING.toString = function(s) return s end
STRING.toLowerCase = function(s) return lower(s) end
STRING.toUpperCase = function(s) return upper(s) end
STRING.trim = function(s) return (gsub(gsub(s, "^[%z\1- ]+", ""), "[%z\1- ]+$", "")) end
STRING.contains = function(s, a)
  a = str_arg(a[1])
  return a and find(s, a, 1, true) ~= nil
end
STRING.startsWith = function(s, a)
  local p = str_arg(a[1])
  return p and sub(s, 1, #p) == p
end
STRING.endsWith = function(s, a)
  local p = str_arg(a[1])
  return p and (p == "" or sub(s, -#p) == p)
end
STRING.equals = function(s, a) return a[1] == s end
STRING.equalsIgnoreCase = function(s, a)
  return type(a[1]) == "string" and lower(a[1]) == lower(s)
end
STRING.concat = function(s, a)
  local b = str_arg(a[1])
  return b and charge(s .. b)
end
STRING.indexOf = function(s, a)
  local needle = str_arg(a[1])
  return needle and sindex(s, needle, int_arg(a[2]))
end
STRING.lastIndexOf = function(s, a)
  local needle = str_arg(a[1])
  if not needle then
    return nil
  end
  local last, k = -1, sindex(s, needle, 0)
  while k >= 0 do
    tick()
    last = k
    k = sindex(s, needle, k + 1)
  end
  return last
end
STRING.charAt = function(s, a, n, pos)
  local i = int_arg(a[1])
  if not i then
    return nil
  end
  if i < 0 or i >= slen(s) then
    runtime_error(pos, format("charAt(%d): index out of range (length %d)", i, slen(s)))
  end
  return ssub(s, i, i + 1)
end
STRING.substring = function(s, a, n, pos)
  local b, e = int_arg(a[1]), a[2] == nil and slen(s) or int_arg(a[2])
  if not b or not e then
    return nil
  end
  local len = slen(s)
  if b < 0 or e > len or b > e then
    runtime_error(pos, format("substring(%d, %d): index out of range (length %d)", b, e, len))
  end
  return ssub(s, b, e)
end
STRING.replace = function(s, a)
  local x, y = tostr(a[1]), tostr(a[2])
  if x == nil or y == nil then
    return nil
  end
  if x == "" then
    return s
  end
  local parts, from = {}, 1
  while true do
    tick()
    local b, e = find(s, x, from, true)
    if not b then
      break
    end
    parts[#parts + 1] = sub(s, from, b - 1)
    parts[#parts + 1] = y
    from = e + 1
  end
  parts[#parts + 1] = sub(s, from)
  return charge(concat(parts))
end
STRING.replaceAll = function(s, a, n, pos)
  local x, y = str_arg(a[1]), str_arg(a[2])
  return x and y and replace_re(s, x, y, pos, false)
end
STRING.replaceFirst = function(s, a, n, pos)
  local x, y = str_arg(a[1]), str_arg(a[2])
  return x and y and replace_re(s, x, y, pos, true)
end
STRING.matches = function(s, a, n, pos)
  local x = str_arg(a[1])
  if not x then
    return nil
  end
  local m, err = require("moongate.mapping").regex(x)
  if not m then
    runtime_error(pos, "invalid regular expression: " .. err)
  end
  return m(s)
end
STRING.split = function(s, a, n, pos)
  local x = str_arg(a[1])
  return x and split(s, x, pos)
end

local NUMBER = {
  toString = function(v) return tostr(v) end,
  intValue = function(v)
    local x = num(v)
    return x >= 0 and floor(x) or -floor(-x)
  end,
  doubleValue = function(v) return R.float_result(num(v)) end,
  equals = function(v, a) return num(a[1]) ~= nil and num(a[1]) == num(v) and type(a[1]) == type(v) end,
}
NUMBER.longValue = NUMBER.intValue

local BOOLEAN = {
  toString = function(v) return tostr(v) end,
  booleanValue = function(v) return v end,
  equals = function(v, a) return a[1] == v end,
}

local function list_index(l, v)
  for k = 1, l.n do
    tick()
    local x = l[k]
    if equals(x ~= NULL and x or nil, v) and (x == NULL) == (v == nil) then
      return k - 1
    end
  end
  return -1
end

local LIST = {
  size = function(l) return l.n end,
  isEmpty = function(l) return l.n == 0 end,
  toString = function(l) return tostr(l) end,
  get = function(l, a, n, pos) return R.idx(l, a[1], pos) end,
  contains = function(l, a) return list_index(l, a[1]) >= 0 end,
  indexOf = function(l, a) return list_index(l, a[1]) end,
  add = function(l, a, n, pos)
    if n == 2 then
      local i = int_arg(a[1])
      if not i or i < 0 or i > l.n then
        runtime_error(pos, "add: index out of range")
      end
      table.insert(l, i + 1, a[2] == nil and NULL or a[2])
      l.n = l.n + 1
      return nil
    end
    l.n = l.n + 1
    l[l.n] = a[1] == nil and NULL or a[1]
    return true
  end,
  addAll = function(l, a)
    local other = a[1]
    if not is_list(other) then
      return nil
    end
    for k = 1, other.n do
      tick()
      l.n = l.n + 1
      l[l.n] = other[k]
    end
    return true
  end,
  set = function(l, a, n, pos)
    local i = int_arg(a[1])
    if not i or i < 0 or i >= l.n then
      runtime_error(pos, "set: index out of range")
    end
    local old = l[i + 1]
    l[i + 1] = a[2] == nil and NULL or a[2]
    return out(old)
  end,
  remove = function(l, a, n, pos)
    local i = type(a[1]) == "number" and a[1] or list_index(l, a[1])
    if i < 0 or i >= l.n then
      if type(a[1]) == "number" then
        runtime_error(pos, "remove: index out of range")
      end
      return false
    end
    local old = table.remove(l, i + 1)
    l.n = l.n - 1
    return type(a[1]) == "number" and out(old) or true
  end,
  clear = function(l)
    for k = 1, l.n do
      l[k] = nil
    end
    l.n = 0
  end,
  subList = function(l, a, n, pos)
    local b, e = int_arg(a[1]), int_arg(a[2])
    if not b or not e then
      return nil
    end
    if b < 0 or e > l.n or b > e then
      runtime_error(pos, "subList: index out of range")
    end
    local r = jsonpath.list({}, 0)
    for k = b + 1, e do
      r.n = r.n + 1
      r[r.n] = l[k]
    end
    return r
  end,
  equals = function(l, a) return equals(l, a[1]) end,
}

local function keys_list(m)
  local l = jsonpath.list({}, 0)
  for k, key in ipairs(m.keys) do
    l[k] = key
  end
  l.n = #m.keys
  return l
end

local Entry = {}
local function entry(key, v)
  return obj({ key = key, value = v, get = function(self, name)
    if name == "key" then
      return self.key
    elseif name == "value" then
      return out(self.value)
    end
  end, str = function(self)
    return self.key .. "=" .. (tostr(out(self.value)) or "null")
  end, methods = Entry })
end
Entry.getKey = function(e) return e.key end
Entry.getValue = function(e) return out(e.value) end
Entry.toString = function(e) return e:str() end

local MAP = {
  size = function(m) return #m.keys end,
  isEmpty = function(m) return #m.keys == 0 end,
  toString = function(m) return tostr(m) end,
  get = function(m, a)
    local key = tostr(a[1])
    return key and out(m.vals[key])
  end,
  containsKey = function(m, a)
    local key = tostr(a[1])
    return key ~= nil and m.vals[key] ~= nil
  end,
  containsValue = function(m, a)
    for _, key in ipairs(m.keys) do
      tick()
      if equals(out(m.vals[key]), a[1]) then
        return true
      end
    end
    return false
  end,
  keySet = keys_list,
  values = function(m)
    local l = jsonpath.list({}, 0)
    for k, key in ipairs(m.keys) do
      l[k] = m.vals[key]
    end
    l.n = #m.keys
    return l
  end,
  entrySet = function(m)
    local l = jsonpath.list({}, 0)
    for k, key in ipairs(m.keys) do
      l[k] = entry(key, m.vals[key])
    end
    l.n = #m.keys
    return l
  end,
  put = function(m, a)
    local key = tostr(a[1])
    if key == nil then
      return nil
    end
    local old = m.vals[key]
    put(m, key, a[2] == nil and NULL or a[2])
    return out(old)
  end,
  putAll = function(m, a)
    local other = a[1]
    if not is_map(other) then
      return nil
    end
    for _, key in ipairs(other.keys) do
      tick()
      put(m, key, other.vals[key])
    end
    return nil
  end,
  remove = function(m, a)
    local key = tostr(a[1])
    if key == nil or m.vals[key] == nil then
      return nil
    end
    local old = m.vals[key]
    m.vals[key] = nil
    for k, x in ipairs(m.keys) do
      if x == key then
        table.remove(m.keys, k)
        break
      end
    end
    return out(old)
  end,
  equals = function(m, a) return equals(m, a[1]) end,
}

-- $x.name(args): Java's method of x's class, as Velocity finds it; an unknown method
-- answers null (the reference then renders as written).
function R.call(v, name, n, args, pos)
  if v == nil then
    return nil
  end
  local t = type(v)
  local mt = getmetatable(v)
  local f
  if t == "string" then
    f = STRING[name]
  elseif t == "number" or mt == Float then
    f = NUMBER[name]
  elseif t == "boolean" then
    f = BOOLEAN[name]
  elseif mt == List then
    f = LIST[name]
  elseif mt == Map then
    f = MAP[name]
  elseif mt == Obj then
    f = v.methods and v.methods[name]
  end
  if not f then
    return nil
  end
  for k = 1, n do
    if args[k] == NULL then
      args[k] = nil
    end
  end
  local r = f(v, args, n, pos)
  if r == NULL then
    return nil
  end
  return r
end

-- #foreach: the loop state ($foreach) and the values it walks.
local Loop = {}
local function loop_get(self, name)
  if name == "hasNext" then
    return self.i < self.n
  elseif name == "index" then
    return self.i - 1
  elseif name == "count" then
    return self.i
  elseif name == "first" then
    return self.i == 1
  elseif name == "last" then
    return self.i == self.n
  elseif name == "parent" then
    return self.parent
  end
  return nil
end
Loop.hasNext = function(self) return self.i < self.n end

function R.loop(V, var, v)
  local items
  local mt = getmetatable(v)
  if mt == List then
    items = v
  elseif mt == Map then
    items = MAP.values(v) -- Velocity walks a map's values
  elseif mt == Obj and v.items then
    items = v:items()
  else
    items = { n = 0 }
  end
  local L = obj({ items = items, n = items.n, i = 0, var = var, saved = V[var], parent = V.foreach,
    saved_count = V.velocityCount, get = loop_get, methods = Loop, str = function() return nil end })
  V.foreach = L
  return L
end

function R.step(V, L, i)
  L.i = i
  V[L.var] = out(L.items[i])
  V.velocityCount = i
end

function R.done(V, L)
  V[L.var] = L.saved
  V.foreach = L.parent
  V.velocityCount = L.saved_count
end

---------------------------------------------------------------------------
-- The variables: $input, $util, $context, $stageVariables
---------------------------------------------------------------------------

local function input_json(self, pos)
  local root = self.root
  if root == nil then
    local body = self.body
    if body == "" then
      root = jsonpath.map() -- an empty body is {} to API Gateway
    else
      local v, err = jsonpath.decode(body)
      if v == nil then
        runtime_error(pos, "the body is not JSON: " .. err)
      end
      root = v
    end
    self.root = root
  end
  return root
end

local function path_arg(a, pos, what)
  local path = tostr(a[1])
  if path == nil then
    return nil
  end
  local steps, err = jsonpath.compile(path)
  if not steps then
    runtime_error(pos, format("%s(%q): %s", what, path, err))
  end
  return steps
end

local Input = {}
Input.path = function(self, a, n, pos)
  local steps = path_arg(a, pos, "$input.path")
  if not steps then
    return nil
  end
  return out(jsonpath.query(input_json(self, pos), steps))
end
Input.json = function(self, a, n, pos)
  local steps = path_arg(a, pos, "$input.json")
  if not steps then
    return nil
  end
  local v = jsonpath.query(input_json(self, pos), steps)
  if v == nil then
    return '""' -- a path that finds nothing
  end
  return charge(jsonpath.encode(v))
end
Input.params = function(self, a, n)
  local p = self.params
  if n == 0 then
    local all = jsonpath.map()
    for _, kind in ipairs({ "path", "querystring", "header" }) do
      local m = jsonpath.map()
      local names = {}
      for k in pairs(p[kind] or {}) do
        names[#names + 1] = k
      end
      sort(names)
      for _, k in ipairs(names) do
        put(m, k, p[kind][k])
      end
      put(all, kind, m)
    end
    return all
  end
  local name = tostr(a[1])
  if name == nil then
    return nil
  end
  local v = (p.path or {})[name] or (p.querystring or {})[name] or (p.header or {})[lower(name)]
  return v or "" -- API Gateway answers an empty string for a missing parameter
end

local function input_get(self, name)
  if name == "body" then
    return self.body
  end
  return nil
end

-- $util (API Gateway's six functions).
local function js_escape(s)
  local parts = {}
  for ch in s:gmatch("[%z\1-\127\192-\255][\128-\191]*") do
    local c = byte(ch)
    local cp
    if c < 128 then
      cp = c
    elseif c >= 240 then
      cp = ((c % 8) * 262144) + ((byte(ch, 2) or 128) % 64) * 4096 + ((byte(ch, 3) or 128) % 64) * 64
        + (byte(ch, 4) or 128) % 64
    elseif c >= 224 then
      cp = ((c % 16) * 4096) + ((byte(ch, 2) or 128) % 64) * 64 + (byte(ch, 3) or 128) % 64
    elseif c >= 192 then
      cp = ((c % 32) * 64) + (byte(ch, 2) or 128) % 64
    else
      cp = c
    end
    local e
    if cp == 34 then
      e = '\\"'
    elseif cp == 39 then
      e = "\\'"
    elseif cp == 92 then
      e = "\\\\"
    elseif cp == 47 then
      e = "\\/"
    elseif cp == 8 then
      e = "\\b"
    elseif cp == 10 then
      e = "\\n"
    elseif cp == 9 then
      e = "\\t"
    elseif cp == 12 then
      e = "\\f"
    elseif cp == 13 then
      e = "\\r"
    elseif cp < 32 or cp > 126 then
      if cp > 0xFFFF then -- a UTF-16 surrogate pair, as Java holds it
        local v = cp - 0x10000
        e = format("\\u%04X\\u%04X", 0xD800 + floor(v / 1024), 0xDC00 + v % 1024)
      else
        e = format("\\u%04X", cp)
      end
    else
      e = ch
    end
    parts[#parts + 1] = e
  end
  return charge(concat(parts))
end
M.escape_javascript = js_escape

local function url_encode(s)
  return (gsub(gsub(s, "[^%w%.%-%*_ ]", function(c)
    return format("%%%02X", byte(c))
  end), " ", "+"))
end

local function url_decode(s, pos)
  s = gsub(s, "+", " ")
  if find(s, "%%%X") or find(s, "%%.%X") or find(s, "%%.?$") then
    runtime_error(pos, "$util.urlDecode: malformed %-escape")
  end
  return (gsub(s, "%%(%x%x)", function(h)
    return char(tonumber(h, 16))
  end))
end

local Util = {
  escapeJavaScript = function(_, a)
    local s = tostr(a[1])
    return s and js_escape(s)
  end,
  parseJson = function(_, a, n, pos)
    local s = tostr(a[1])
    if s == nil then
      return nil
    end
    local v, err = jsonpath.decode(s)
    if v == nil then
      runtime_error(pos, "$util.parseJson: " .. err)
    end
    return out(v)
  end,
  urlEncode = function(_, a)
    local s = tostr(a[1])
    return s and charge(url_encode(s))
  end,
  urlDecode = function(_, a, n, pos)
    local s = tostr(a[1])
    return s and url_decode(s, pos)
  end,
  base64Encode = function(_, a)
    local s = tostr(a[1])
    return s and charge(require("moongate.events").base64_encode(s))
  end,
  base64Decode = function(_, a, n, pos)
    local s = tostr(a[1])
    if s == nil then
      return nil
    end
    local v = require("moongate.events").base64_decode(s)
    if v == nil then
      runtime_error(pos, "$util.base64Decode: not base64")
    end
    return v
  end,
}

-- $context: the access log's variables by their dotted names; the override maps.
local function context_get(self, name)
  local full = self.prefix .. name
  local root = self.root
  if self.prefix == "" and (name == "responseOverride" or name == "requestOverride") then
    return root.overrides[name]
  end
  local known = root.is_context(full)
  local v = known and root.lookup(full) or nil
  if v ~= nil and v ~= "" then
    return v
  end
  if root.has_children(full) then
    return obj({ prefix = full .. ".", root = root, get = context_get, str = function() return nil end })
  end
  if known then
    return "" -- a variable this request has no value for
  end
  return nil
end

local function override_maps()
  local resp, req = jsonpath.map(), jsonpath.map()
  put(resp, "header", jsonpath.map())
  for _, k in ipairs({ "header", "querystring", "path" }) do
    put(req, k, jsonpath.map())
  end
  return { responseOverride = resp, requestOverride = req }
end

-- The variables of one render of input (see the top of this file).
function M.variables(input)
  local ctx = input.context
  local lookup = type(ctx) == "function" and ctx or function(name)
    local v = (ctx or {})[name]
    if v == nil and type(ctx) == "table" then
      -- a nested table: { identity = { sourceIp = ... } }
      v = ctx
      for part in name:gmatch("[^%.]+") do
        v = type(v) == "table" and v[part] or nil
      end
    end
    if type(v) == "table" then
      return nil
    end
    return v ~= nil and tostring(v) or nil
  end
  local request = require "moongate.request"
  local is_context = input.is_context or request.is_context_variable
  local names = input.context_names or request.CONTEXT_VARIABLES
  local has_children = function(full)
    if full == "authorizer" or full == "custom" or find(full, "^authorizer%.claims$") then
      return true
    end
    local prefix = full .. "."
    for _, n in ipairs(names) do
      if sub(n, 1, #prefix) == prefix then
        return true
      end
    end
    if type(ctx) == "table" then
      local v = ctx
      for part in full:gmatch("[^%.]+") do
        v = type(v) == "table" and v[part] or nil
      end
      return type(v) == "table"
    end
    return false
  end
  local overrides = override_maps()
  local croot = { lookup = lookup, is_context = is_context, has_children = has_children, overrides = overrides }
  local sv = jsonpath.map()
  local svnames = {}
  for k in pairs(input.stage_variables or {}) do
    svnames[#svnames + 1] = k
  end
  sort(svnames)
  for _, k in ipairs(svnames) do
    put(sv, k, input.stage_variables[k])
  end
  local V = {
    input = obj({ body = input.body or "", params = input.params or {}, get = input_get, methods = Input,
      str = function() return nil end }),
    util = obj({ methods = Util, str = function() return nil end }),
    context = obj({ prefix = "", root = croot, get = context_get, str = function() return nil end }),
    stageVariables = sv,
  }
  return V, overrides
end

-- What a template set in $context.responseOverride / requestOverride: { status,
-- header = { name -> value }, querystring = ..., path = ... } (values as strings; a
-- list is joined with ",").
local function override_values(m)
  local outv = {}
  for _, key in ipairs(m.keys) do
    local v = m.vals[key]
    if is_map(v) then
      local t = {}
      for _, k in ipairs(v.keys) do
        local x = v.vals[k]
        if is_list(x) then
          local parts = {}
          for i = 1, x.n do
            parts[i] = tostr(out(x[i])) or "null"
          end
          t[k] = concat(parts, ",")
        else
          t[k] = tostr(out(x))
        end
      end
      outv[key] = t
    else
      outv[key] = tostr(out(v))
    end
  end
  return outv
end

-- Renders a compiled template with input. Returns the text and { response = {...},
-- request = {...} } (the overrides), or raises a string.
function M.render(tpl, input)
  local V, overrides = M.variables(input)
  local o = {}
  size = 0
  local ok, n = pcall(tpl.fn, V, o)
  if not ok then
    if n ~= STOP then
      if type(n) ~= "string" then
        n = tostring(n)
      end
      if find(n, policy.BUDGET_EXCEEDED, 1, true) then
        n = policy.BUDGET_EXCEEDED -- where in moongate.vtl it ticked says nothing to a user
      end
      error(n, 0)
    end
    n = #o
  end
  local text = concat(o, "", 1, n)
  return text, { response = override_values(overrides.responseOverride),
    request = override_values(overrides.requestOverride) }
end

return M
