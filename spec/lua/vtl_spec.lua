-- moongate.vtl: API Gateway mapping templates (Velocity 1.7 subset). The AWS examples
-- come from the API Gateway developer guide (spec/lua/vtl/: "Photos example" and the
-- "$input / $util variables" reference); outputs are asserted byte for byte where the
-- page shows the real output, and as JSON plus the exact text Velocity 1.7's whitespace
-- rules give where the page pretty-prints it.
package.path = "lua/?.lua;" .. package.path
local vtl = require "moongate.vtl"
local testing = require "moongate.testing"
local cjson = require "cjson"

local DIR = "spec/lua/vtl/"
local function read(name)
  local f = assert(io.open(DIR .. name, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end

local function render(text, input)
  local tpl = assert(vtl.compile(text, "spec"))
  return vtl.render(tpl, input or {})
end

local function compile_error(text)
  local tpl, err = vtl.compile(text, "spec")
  assert.is_nil(tpl)
  return err
end

-- JSON decoding that keeps nothing but the values (for "same JSON" checks).
local function json(s)
  return cjson.decode(s)
end

describe("AWS mapping template examples", function()
  local photos = read("photos.json")

  it("Photos: the output mapping template gives the transformed data", function()
    local out = render(read("photos_output.vtl"), { body = photos })
    assert.same(json(read("photos_transformed.json")), json(out))
    -- Velocity 1.7: the #set line and each "#end" line end go; the tab line after "#end" stays
    assert.equal('{\n  "photos": [\n    {\n      "id": "12345678901",\n      "owner": "23456789@A12",\n'
      .. '      "title": "Sample photo 1",\n      "ispublic": 1,\n      "isfriend": 0,\n      "isfamily": 0\n'
      .. '    },\t\t\n    {\n      "id": "23456789012",\n      "owner": "34567890@B23",\n'
      .. '      "title": "Sample photo 2",\n      "ispublic": 1,\n      "isfriend": 0,\n      "isfamily": 0\n'
      .. '    }\t\t\n  ]\n}\n', out)
  end)

  it("Photos: the input mapping template gives back the original data", function()
    local out = render(read("photos_input.vtl"), { body = photos })
    assert.same(json(photos), json(out))
  end)

  it("$util.parseJson: the page's exact output", function()
    local out = render('#set ($errorMessageObj = $util.parseJson($input.path(\'$.errorMessage\')))\n{\n'
      .. '   "errorMessageObjKey2ArrVal" : $errorMessageObj.key2.arr[0]\n}\n',
      { body = [[{"errorMessage":"{\"key1\":\"var1\",\"key2\":{\"arr\":[1,2,3]}}"}]] })
    assert.equal('{\n   "errorMessageObjKey2ArrVal" : 1\n}\n', out)
  end)

  it("$input.params, .path().size() and .json: the things example", function()
    local tpl = '{\n    "id" : "$input.params(\'id\')",\n    "count" : "$input.path(\'$.things\').size()",\n'
      .. '    "things" : $util.escapeJavaScript($input.json(\'$.things\'))\n}'
    local out = render(tpl, { body = '{\n    "things" : {\n        "1" : {},\n        "2" : {},\n        "3" : {}\n    }\n}',
      params = { path = { id = "abc" } } })
    assert.equal('{\n    "id" : "abc",\n    "count" : "3",\n    "things" : {\\"1\\":{},\\"2\\":{},\\"3\\":{}}\n}', out)
    -- the page shows the JSON the client sees once the escaping is undone
    assert.same({ id = "abc", count = "3", things = { ["1"] = {}, ["2"] = {}, ["3"] = {} } },
      json((out:gsub('\\"', '"'))))
  end)

  it("passes every parameter through (the params example)", function()
    local tpl = read("all_params.vtl")
    local out = render(tpl, { params = { path = { petId = "7" }, querystring = { q = "a'b" },
      header = { ["x-a"] = "1", ["x-b"] = "2" } } })
    assert.same({ params = { path = { petId = "7" }, querystring = { q = "a\\'b" },
      header = { ["x-a"] = "1", ["x-b"] = "2" } } }, json((out:gsub("\\'", "\\\\'"))))
    assert.truthy(out:find('"q" : "a\\\'b"', 1, true))
  end)

  it("$input.json('$') and $input.params('name') (the JSON example)", function()
    local out = render('{\n    "name" : "$input.params(\'name\')",\n    "body" : $input.json(\'$\') \n}',
      { body = '{"a": [1, 2.5, "x"], "b": {"c": null}}', params = { querystring = { name = "rex" } } })
    assert.equal('{\n    "name" : "rex",\n    "body" : {"a":[1,2.5,"x"],"b":{"c":null}} \n}', out)
  end)

  it("the response status override example", function()
    local tpl = '#set($inputRoot = $input.path(\'$\'))\n$input.json("$")\n#if($inputRoot.toString().contains("error"))\n'
      .. '#set($context.responseOverride.status = 400)\n#end\n'
    local body = '{"errors":[{"key":"GetPetRequest.petId","message":"The value is out of range."}]}'
    local out, over = render(tpl, { body = body })
    assert.equal(body .. "\n", out)
    assert.equal("400", over.response.status)
    local _, none = render(tpl, { body = '{"id":1}' })
    assert.is_nil(none.response.status)
  end)

  it("the request header override example", function()
    local tpl = '#set($header1Override = "foo")\n#set($header3Value = "$input.params(\'header1\')$input.params(\'header2\')")\n'
      .. '$input.json("$")\n#set($context.requestOverride.header.header3 = $header3Value)\n'
      .. '#set($context.requestOverride.header.header1 = $header1Override)\n'
      .. '#set($context.requestOverride.header.multivalueheader=[$header1Override, $header3Value])\n'
    local _, over = render(tpl, { body = "{}", params = { header = { header1 = "header1Val", header2 = "header2Val" } } })
    assert.same({ header3 = "header1Valheader2Val", header1 = "foo", multivalueheader = "foo,header1Valheader2Val" },
      over.request.header)
  end)

  it("$context variables (example 1)", function()
    local out = render('{\n    "stage" : "$context.stage",\n    "source_ip" : "$context.identity.sourceIp",\n'
      .. '    "api_key" : "$context.identity.apiKey"\n}',
      { context = { stage = "prod", identity = { sourceIp = "192.0.2.1" } } })
    assert.equal('{\n    "stage" : "prod",\n    "source_ip" : "192.0.2.1",\n    "api_key" : ""\n}', out)
  end)
end)

describe("directives", function()
  it("#set, #if / #elseif / #else", function()
    local t = "#set($n = 5)#if($n < 3)small#elseif($n < 10)medium#else large#end"
    assert.equal("medium", render(t))
    assert.equal("yes", render("#if($a && !$b)no#elseif($c || not $d)yes#end", { }))
    assert.equal("ok", render('#if("a" == "a" and 2 != 3 and 2 >= 2 and 1 le 2)ok#end'))
    assert.equal("", render("#if($nope)x#end"))
    assert.equal("x", render("#if('')x#end")) -- only null and false are false in Velocity 1.7
  end)

  it("#foreach with $foreach.hasNext, index, count, $velocityCount and #break", function()
    assert.equal("0:1:1:a, 1:2:2:b, 2:3:3:c",
      render('#foreach($x in ["a", "b", "c"])$foreach.index:$foreach.count:$velocityCount:$x#if($foreach.hasNext), #end#end'))
    assert.equal("12", render("#foreach($i in [1..5])#if($i == 3)#break#end$i#end"))
    assert.equal("321", render("#foreach($i in [3..1])$i#end"))
    assert.equal("a1a2b1b2", render('#foreach($a in ["a","b"])#foreach($i in [1..2])$a$i#end#end'))
    -- a map walks its values; the loop variable is restored after the loop
    assert.equal("12|x", render('#set($x = "x")#foreach($x in {"a": 1, "b": 2})$x#end|$x'))
  end)

  it("#stop and #break outside a loop end the output", function()
    assert.equal("a", render("a#stop b"))
    assert.equal("a", render("a#break b"))
  end)

  it("comments", function()
    assert.equal("a\nb", render("a ## gone\n\nb#* and\nthis *#"):gsub(" \n", "\n"))
    assert.equal("keep #[[ $raw #if ]]#", "keep " .. render("#[[#[[ $raw #if ]]#]]#"):gsub("^", ""))
  end)

  it("refuses the directives it does not have", function()
    assert.equal("line 1, column 1: #macro is not supported", compile_error("#macro(x)#end"))
    assert.equal("line 2, column 1: #include is not supported", compile_error('\n#include("x")'))
  end)
end)

describe("references", function()
  it("renders an undefined reference as written, a quiet one as nothing", function()
    assert.equal("$nope ${nope}  . $nope.a.b($x) $input.path('$.zz')",
      render("$nope ${nope} $!nope$!{nope} . $nope.a.b($x) $input.path('$.zz')", { body = "{}" }))
    assert.equal("#hashtag $ 5$", render("#hashtag $ 5$"))
  end)

  it("escapes with a backslash", function()
    assert.equal("$v \\$nope \\1", render('#set($v = 1)\\$v \\$nope \\\\$v'))
    assert.equal("#if(x)", render("\\#if(x)"))
  end)

  it("literals: strings, numbers, booleans, lists, maps, ranges", function()
    assert.equal("a 1 b", render('#set($n = 1)#set($s = "a $n b")$s'))
    assert.equal("a $n b", render("#set($n = 1)#set($s = 'a $n b')$s"))
    assert.equal("[1, 2.5, true, x] {k=v, n=[1, 2]} [1, 2, 3]",
      render('#set($l = [1, 2.5, true, "x"])#set($m = {"k": "v", "n": [1..2]})#set($r = [1..3])$l $m $r'))
    assert.equal("7 3 3.5 1 -2 1.0", render("#set($a = 3 + 4)#set($b = 7 / 2)#set($c = 7.0 / 2)#set($d = 7 % 3)"
      .. "#set($e = 1 - 3)#set($f = 0.5 * 2)\n$a $b $c $d $e $f"))
  end)

  it("indexes, properties and map methods", function()
    local body = '{"pets": [{"name": "rex", "tags": ["a", "b"]}, {"name": "tom"}], "n": {"x": 1}}'
    assert.equal("rex b 2 tom [x] true 1",
      render("#set($r = $input.path('$'))$r.pets[0].name $r.pets[0].tags[1] $r.pets.size() $r['pets'][1].name "
        .. "$r.n.keySet() $r.n.containsKey('x') $r.n.get('x')", { body = body }))
    assert.equal("rex,tom", render("#foreach($p in $input.path('$.pets'))$p.name#if($foreach.hasNext),#end#end", { body = body }))
    assert.equal('["rex","tom"]', render("$input.json('$.pets[*].name')", { body = body }))
    assert.equal('["rex","tom"]', render("$input.json('$..name')", { body = body }))
    assert.equal('""', render("$input.json('$.nope')", { body = body }))
  end)

  it("Java string methods", function()
    local t = '#set($s = "  Hello, World  ")#set($t = $s.trim())'
      .. "$t.length()|$t.toLowerCase()|$t.toUpperCase()|$t.contains('World')|$t.replace('o', '0')|"
      .. "$t.startsWith('Hell')|$t.endsWith('d')|$t.substring(7)|$t.substring(0, 5)|$t.split(', ')|"
      .. "$t.isEmpty()|$t.equals('Hello, World')|$t.indexOf('o')|$t.replaceAll('[lo]+', '_')|$t.charAt(1)"
    assert.equal("12|hello, world|HELLO, WORLD|true|Hell0, W0rld|true|true|World|Hello|[Hello, World]|"
      .. "false|true|4|He_, W_r_d|e", render(t))
    assert.equal("it's", render([[#set($s = "it's")$util.escapeJavaScript($s).replaceAll("\\'","'")]]))
  end)

  it("$util functions", function()
    assert.equal([[a\'b\"c\\d\/e\n\u00E9\uD83D\uDE00]],
      render('$util.escapeJavaScript($input.path(\'$.s\'))', { body = [[{"s":"a'b\"c\\d/e\n\u00e9\ud83d\ude00"}]] }))
    assert.equal("a+b%26c%3D%C3%A9*", render("$util.urlEncode('a b&c=\195\169*')"))
    assert.equal("a b&c", render("$util.urlDecode('a+b%26c')"))
    assert.equal("aGVsbG8=|hello", render("$util.base64Encode('hello')|$util.base64Decode('aGVsbG8=')"))
    assert.equal("2", render("$util.parseJson('[1,2]').get(1)"))
  end)

  it("$input.params() and $input.params(name): path, then query string, then header", function()
    local p = { path = { id = "p" }, querystring = { id = "q", q = "1" }, header = { id = "h", ["x-h"] = "2" } }
    assert.equal("p 1 2 |", render("$input.params('id') $input.params('q') $input.params('X-H') $input.params('nope')|",
      { params = p }))
    assert.equal("{path={id=p}, querystring={id=q, q=1}, header={id=h, x-h=2}}", render("$input.params()", { params = p }))
    assert.equal("{id=q, q=1}", render("$input.params().querystring", { params = p }))
    assert.equal("2", render("$input.params().header.get('x-h')", { params = p }))
  end)

  it("$stageVariables", function()
    assert.equal("blue blue blue", render("$stageVariables.env $stageVariables['env'] ${stageVariables.env}",
      { stage_variables = { env = "blue" } }))
  end)
end)

describe("whitespace (Velocity 1.7)", function()
  it("a #set line leaves nothing, its indentation goes when the line starts a text run", function()
    assert.equal("a\nb\n", render("a\n#set($x = 1)\nb\n"))
    assert.equal("a\n  b\n", render("#set($x = 1)\n  #set($y = 2)\na\n  b\n"))
    -- after plain text on the line before, the indentation is text (Velocity's TEXT token)
    assert.equal("a\n  b", render("a\n  #set($x = 1)\nb"))
  end)

  it("#if, #foreach, #else and #end eat their line end, not their indentation", function()
    assert.equal("[\n  1\n  2\n]", render("[\n#foreach($i in [1..2])\n  $i\n#end\n]"))
    assert.equal("    yes\n  ", render("  #if(true)\n  yes\n  #else\n  no\n  #end\n"))
    assert.equal("a,b", render('#foreach($x in ["a","b"])$x#if($foreach.hasNext),#end#end'))
  end)

  it("## eats its line end, #* *# does not", function()
    assert.equal("a\nb", render("a\n## note\nb"))
    assert.equal("a\n\nb", render("a\n#* note *#\nb"))
  end)
end)

describe("compile errors", function()
  local cases = {
    { "a\n\n  x #end", "line 3, column 5: #end without #if" },
    { "#if($a)\nx", "line 1, column 1: #if without #end" },
    { "x\n#foreach($a in $b)", "line 2, column 1: #foreach without #end" },
    { "#else", "line 1, column 1: #else without #if" },
    { "#elseif($a)", "line 1, column 1: #elseif without #if" },
    { "#if($a)#else#elseif($b)#end", "line 1, column 13: #elseif after #else" },
    { "#if($a)#else#else#end", "line 1, column 13: #else after #else" },
    { "#foreach($a in $b)#else#end", "line 1, column 19: #else without #if" },
    { "#if $a", "line 1, column 1: #if needs \"(\" after it" },
    { "#if($a", 'line 1, column 7: expected ")" to close #if' },
    { "#set(a = 1)", "line 1, column 6: #set needs a reference to set: #set($name = value)" },
    { "#set($a 1)", 'line 1, column 9: expected "=" in #set' },
    { "#set($a = )", "line 1, column 11: unexpected \")\"" },
    { "#set($a = 'x)", "line 1, column 11: unterminated string literal" },
    { "#foreach($a $b)#end", '#foreach needs "in"' },
    { "#foreach(a in $b)#end", "#foreach needs a loop variable" },
    { "#* open", "line 1, column 1: unterminated comment #*" },
    { "#[[ open", "line 1, column 1: unterminated #[[ ]]# block" },
    { "$a.b(1", 'expected "," or ")" after a method argument' },
    { "#set($a = [1, 2)", 'expected "," or "]" in the list' },
    { "#set($a = {1 2})", 'expected ":" in the map' },
    { "#set($a = [1..)", 'unexpected ")"' },
    { "#set($a.b() = 1)", "#set can set a variable or a property" },
    { ("#if(true)"):rep(41) .. ("#end"):rep(41), "#if and #foreach nested too deeply" },
    { "#set($a = " .. ("("):rep(60) .. "1" .. (")"):rep(60) .. ")", "expression nested too deeply" },
  }
  for _, c in ipairs(cases) do
    it("says " .. c[2], function()
      local err = compile_error(c[1])
      assert.truthy(err:find(c[2], 1, true), err)
      assert.truthy(err:find("^line %d+, column %d+: "), err)
    end)
  end
end)

describe("runtime errors", function()
  it("a body that is not JSON", function()
    local tpl = assert(vtl.compile("x\n  $input.json('$.a')", "t"))
    local ok, err = pcall(vtl.render, tpl, { body = "{nope" })
    assert.is_false(ok)
    assert.equal("line 2, column 3: the body is not JSON: expected a member name at byte 2", err)
  end)

  it("an index out of range, a bad JSONPath, bad base64", function()
    local function fails(t, input)
      local ok, err = pcall(render, t, input)
      assert.is_false(ok)
      return err
    end
    assert.equal("line 1, column 17: substring(1, 9): index out of range (length 3)",
      fails("#set($s = 'abc')$s.substring(1, 9)"))
    assert.truthy(fails("$input.path('$.a[')", { body = "{}" }):find("expected an index", 1, true))
    assert.equal("line 1, column 1: $util.base64Decode: not base64", fails("$util.base64Decode('**')"))
  end)

  it("the instruction budget stops an endless template", function()
    local policy = require "moongate.policy"
    local tpl = assert(vtl.compile("#foreach($i in [1..100000000])x#end", "t"))
    local ok, err = policy.run(100000, vtl.render, tpl, {})
    assert.is_false(ok)
    assert.truthy(tostring(err):find("instruction budget exceeded", 1, true))
  end)

  it("bounds what a template builds", function()
    local tpl = assert(vtl.compile('#set($s = "xxxxxxxxxxxxxxxx")#foreach($i in [1..40])#set($s = "$s$s")#end', "t"))
    local ok, err = pcall(vtl.render, tpl, {})
    assert.is_false(ok)
    assert.truthy(err:find("10485760 bytes", 1, true), err)
  end)
end)

describe("testing.vtl", function()
  it("renders a template text or file with a request", function()
    local out = testing.vtl('{"name": "$input.path(\'$.pet.name\')", "ip": "$context.identity.sourceIp", '
      .. '"env": "$stageVariables.env", "q": "$input.params(\'q\')"}',
      testing.request{ method = "POST", path = "/pets?q=1", body = '{"pet": {"name": "rex"}}',
        source_ip = "10.0.0.9", stage_variables = { env = "blue" } })
    assert.same({ name = "rex", ip = "10.0.0.9", env = "blue", q = "1" }, json(out))
    local again = testing.vtl({ file = DIR .. "photos_output.vtl" }, { body = read("photos.json") })
    assert.same(json(read("photos_transformed.json")), json(again))
  end)

  it("raises a compile error and returns a runtime one", function()
    assert.has_error(function() testing.vtl("#end") end, "line 1, column 1: #end without #if")
    local out, err = testing.vtl("$input.json('$')", { body = "nope" })
    assert.is_nil(out)
    assert.truthy(err:find("the body is not JSON", 1, true))
  end)
end)

describe("testing.http_integration with templates", function()
  after_each(function() testing.reset() end)

  it("renders the request and response templates and answers 415 as the gateway does", function()
    local sent
    testing.mock_http(function(req)
      sent = req
      return { status = 200, headers = { ["content-type"] = "application/json" }, body = '{"id": 7, "ok": true}' }
    end)
    local integration = {
      type = "http", proxy = false, uri = "http://backend.test/pets", passthrough_behavior = "NEVER",
      request_parameters = { ["integration.request.header.x-name"] = "method.request.body.pet.name",
                             ["integration.request.querystring.tag"] = "method.request.multivaluequerystring.t" },
      request_templates = { ["application/json"] = '{"n": "$input.path(\'$.pet.name\')"}' },
      responses = { { status = 201, response_parameters = { ["method.response.header.x-id"] = "integration.response.body.id" },
        response_templates = { ["application/json"] = '#set($context.responseOverride.header.x-ok = "$input.path(\'$.ok\')")'
          .. 'id=$input.path(\'$.id\')', ["text/plain"] = "plain" } } },
    }
    local d = testing.http_integration(integration, testing.request{ method = "POST", path = "/pets?t=a&t=b",
      headers = { ["content-type"] = "application/json", accept = "application/json" }, body = '{"pet": {"name": "rex"}}' })
    assert.equal(201, d.status)
    assert.equal("id=7", d.body)
    assert.equal("7", d.headers["x-id"])
    assert.equal("true", d.headers["x-ok"])
    assert.equal("application/json", d.headers["content-type"])
    assert.equal('{"n": "rex"}', sent.body)
    assert.equal("http://backend.test/pets?tag=a&tag=b", sent.url)
    assert.equal("rex", sent.headers["x-name"])
    assert.equal("application/json", sent.headers["content-type"])
    local plain = testing.http_integration(integration, testing.request{ method = "POST", path = "/pets",
      headers = { ["content-type"] = "application/json", accept = "text/plain" }, body = "{}" })
    assert.equal("plain", plain.body)
    assert.equal("text/plain", plain.headers["content-type"])
    local refused = testing.http_integration(integration, testing.request{ method = "POST", path = "/pets",
      headers = { ["content-type"] = "text/plain" }, body = "x" })
    assert.equal(415, refused.status)
    assert.equal('{"message":"Unsupported Media Type"}', refused.body)
  end)
end)
