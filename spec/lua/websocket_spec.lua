-- WebSocket APIs on the Lua side: the event a Lua integration gets for each kind of
-- WebSocket event (the shape of AWS's Lambda WebSocket event), the kit's builders and
-- its fake moongate.connections, the $connect handler's context, and the argument
-- checks of moongate.connections.
local testing = require "moongate.testing"
local hooks = require "moongate.hooks"
local request = require "moongate.request"
local connections = require "moongate.connections"

-- A Lua integration that answers with the event it got (as JSON) and keeps it.
local seen
local echo = {
  handle = function(event, conf, req)
    seen = event
    return { statusCode = 200, body = "ok" }
  end,
}

local function handler(fn)
  return { handle = fn }
end

describe("WebSocket events", function()
  after_each(function()
    testing.reset()
    seen = nil
  end)

  describe("connect", function()
    it("has the headers, the query and the AWS requestContext", function()
      local req = testing.websocket.connect{
        headers = { ["User-Agent"] = "wscat", Authorization = "t1", host = "chat.example.com" },
        query = { room = "7" }, stage = "prod", api_id = "chat", source_ip = "10.0.0.9",
        request_id = "rid1", time = 1700000001000, connected_at = 1700000001000,
      }
      assert.equal(200, testing.handle(echo, nil, req).status)
      local e = seen
      assert.same({ authorization = "t1", ["user-agent"] = "wscat", host = "chat.example.com" }, e.headers)
      assert.same({ authorization = { "t1" }, ["user-agent"] = { "wscat" }, host = { "chat.example.com" } },
        e.multiValueHeaders)
      assert.same({ room = "7" }, e.queryStringParameters)
      assert.same({ room = { "7" } }, e.multiValueQueryStringParameters)
      assert.is_false(e.isBase64Encoded)
      assert.is_nil(e.body)
      assert.is_nil(e.version) -- not the HTTP API's payload 2.0
      local rc = e.requestContext
      assert.same({
        routeKey = "$connect", eventType = "CONNECT", connectionId = testing.websocket.CONNECTION_ID,
        connectedAt = 1700000001000, messageDirection = "IN", requestId = "rid1",
        extendedRequestId = "rid1", requestTime = "14/Nov/2023:22:13:21 +0000",
        requestTimeEpoch = 1700000001000, stage = "prod", apiId = "chat",
        domainName = "chat.example.com", identity = { sourceIp = "10.0.0.9", userAgent = "wscat" },
      }, rc)
    end)

    it("shows the $connect authorizer's result", function()
      local req = testing.websocket.connect{ headers = { authorization = "t1" } }
      local authz = { authorize = function(r, conf, auth)
        return { isAuthorized = true, principalId = "alice", context = { tier = "gold" } }
      end }
      assert.equal(200, testing.authorize(authz, nil, req).status)
      testing.handle(echo, nil, req)
      assert.same({ principalId = "alice", tier = "gold" }, seen.requestContext.authorizer)
    end)

    it("takes the handler's context for later events", function()
      local h = handler(function() return { statusCode = 200, context = { room = "7", n = 2, ok = true } } end)
      local d = testing.handle(h, nil, testing.websocket.connect{})
      assert.equal(200, d.status)
      assert.same({ room = "7", n = 2, ok = true }, d.connection_context)
      -- a plain result works too
      h = handler(function() return { context = { room = "8" } } end)
      assert.same({ room = "8" }, testing.handle(h, nil, testing.websocket.connect{}).connection_context)
    end)

    it("takes context from a handler run on an event table", function()
      local h = handler(function() return { statusCode = 200, context = { room = "9" } } end)
      local event = testing.event(testing.websocket.connect{})
      assert.same({ room = "9" }, testing.handle(h, nil, event).connection_context)
      h = handler(function() return { statusCode = 200, context = { bad = {} } } end)
      assert.equal(500, testing.handle(h, nil, event).status)
    end)

    it("refuses a malformed context", function()
      local h = handler(function() return { statusCode = 200, context = { t = { 1 } } } end)
      local d = testing.handle(h, nil, testing.websocket.connect{})
      assert.equal(500, d.status)
      assert.matches("malformed handler result: context.t must be a string, number or boolean, got a table",
        d.error, 1, true)
      h = handler(function() return { statusCode = 200, context = "x" } end)
      assert.matches("context must be a table", testing.handle(h, nil, testing.websocket.connect{}).error, 1, true)
    end)

    it("ignores context outside $connect", function()
      local h = handler(function() return { statusCode = 200, context = { room = "7" } } end)
      assert.is_nil(testing.handle(h, nil, testing.websocket.message{ body = "x" }).connection_context)
      assert.is_nil(testing.handle(h, nil, testing.request{}).connection_context)
    end)
  end)

  describe("message", function()
    it("has the body, the message id and no headers", function()
      local req = testing.websocket.message{ body = '{"action":"send","text":"hi"}', route_key = "send",
        connection_id = "AAAAAAAAAAAAAAAA", message_id = "m1", user_agent = "wscat", time = 1700000002000,
        connected_at = 1700000001000 }
      testing.handle(echo, nil, req)
      local e = seen
      assert.equal('{"action":"send","text":"hi"}', e.body)
      assert.is_false(e.isBase64Encoded)
      assert.is_nil(e.headers)
      assert.is_nil(e.queryStringParameters)
      local rc = e.requestContext
      assert.equal("send", rc.routeKey)
      assert.equal("MESSAGE", rc.eventType)
      assert.equal("m1", rc.messageId)
      assert.equal("AAAAAAAAAAAAAAAA", rc.connectionId)
      assert.equal(1700000001000, rc.connectedAt)
      assert.equal(1700000002000, rc.requestTimeEpoch)
      assert.equal("IN", rc.messageDirection)
      assert.same({ sourceIp = "127.0.0.1", userAgent = "wscat" }, rc.identity)
      assert.is_nil(rc.disconnectStatusCode)
    end)

    it("carries a binary message base64-encoded", function()
      testing.handle(echo, nil, testing.websocket.message{ body = "\0\1\255" })
      assert.is_true(seen.isBase64Encoded)
      assert.equal("AAH/", seen.body)
      assert.equal("\0\1\255", hooks.base64_decode(seen.body))
    end)

    it("carries a binary message base64-encoded even when its bytes are text", function()
      testing.handle(echo, nil, testing.websocket.message{ body = "hi", binary = true })
      assert.is_true(seen.isBase64Encoded)
      assert.equal("aGk=", seen.body)
      testing.handle(echo, nil, testing.websocket.message{ body = "hi" })
      assert.is_false(seen.isBase64Encoded)
      assert.equal("hi", seen.body)
    end)

    it("an empty message is an empty body", function()
      testing.handle(echo, nil, testing.websocket.message{})
      assert.equal("", seen.body)
      assert.is_false(seen.isBase64Encoded)
    end)

    it("shows what the $connect kept: authorizer and connectionContext", function()
      local req = testing.websocket.message{ body = "hi",
        authorizer = { principalId = "alice", tier = "gold" }, connection_context = { room = "7" } }
      testing.handle(echo, nil, req)
      assert.same({ principalId = "alice", tier = "gold" }, seen.requestContext.authorizer)
      assert.same({ room = "7" }, seen.requestContext.connectionContext)
    end)

    it("the handler's result is the response as for HTTP", function()
      local h = handler(function(e) return { statusCode = 200, body = "echo: " .. e.body } end)
      local d = testing.handle(h, nil, testing.websocket.message{ body = "hi" })
      assert.same({ status = 200, body = "echo: hi" }, { status = d.status, body = d.body })
      h = handler(function(e) return { got = e.body } end)
      assert.equal('{"got":"hi"}', testing.handle(h, nil, testing.websocket.message{ body = "hi" }).body)
    end)

    it("refuses a body that is not a string", function()
      assert.has_error(function() testing.websocket.message{ body = 1 } end, "message body must be a string")
    end)
  end)

  describe("disconnect", function()
    it("has the close code and reason", function()
      testing.handle(echo, nil, testing.websocket.disconnect{ status_code = 1001, reason = "going away" })
      local rc = seen.requestContext
      assert.equal("DISCONNECT", rc.eventType)
      assert.equal("$disconnect", rc.routeKey)
      assert.equal(1001, rc.disconnectStatusCode)
      assert.equal("going away", rc.disconnectReason)
      assert.is_nil(seen.body)
      assert.is_nil(seen.headers)
    end)

    it("defaults to 1000 and an empty reason", function()
      testing.handle(echo, nil, testing.websocket.disconnect{})
      assert.equal(1000, seen.requestContext.disconnectStatusCode)
      assert.equal("", seen.requestContext.disconnectReason)
    end)
  end)

  it("the $context variables of an event", function()
    local req = testing.websocket.disconnect{ status_code = 1006, connection_id = "BBBBBBBBBBBBBBBB" }
    assert.equal("DISCONNECT", req:context("eventType"))
    assert.equal("BBBBBBBBBBBBBBBB", req:context("connectionId"))
    assert.equal("1006", req:context("disconnectStatusCode"))
    assert.equal("BBBBBBBBBBBBBBBB", req.connection_id)
  end)

  it("HTTP requests keep the payload 2.0 event", function()
    local e = testing.event(testing.request{ path = "/x" })
    assert.equal("2.0", e.version)
    assert.is_nil(e.requestContext.eventType)
    assert.is_nil(testing.request{}.connection_id)
  end)
end)

describe("moongate.connections", function()
  after_each(function()
    testing.reset()
  end)

  it("runs the README's chat handler", function()
    local chat = {
      handle = function(event)
        local rc = event.requestContext
        if rc.eventType == "CONNECT" then
          local q = event.queryStringParameters or {}
          return { statusCode = 200, context = { room = q.room or "lobby" } }
        elseif rc.eventType == "MESSAGE" then
          local room = rc.connectionContext.room
          local rooms = package.loaded["chat_rooms"] or {}
          package.loaded["chat_rooms"] = rooms
          rooms[room] = rooms[room] or {}
          rooms[room][rc.connectionId] = true
          for id in pairs(rooms[room]) do
            if not connections.send(id, event.body) then rooms[room][id] = nil end
          end
          return { statusCode = 200, body = "sent" }
        end
        return { statusCode = 200 }
      end,
    }
    local A, B = "AAAAAAAAAAAAAAAA", "BBBBBBBBBBBBBBBB"
    local d = testing.handle(chat, nil, testing.websocket.connect{ query = { room = "7" } })
    assert.same({ room = "7" }, d.connection_context)
    local fake = testing.mock_connections{ [A] = true }
    testing.handle(chat, nil, testing.websocket.message{ connection_id = A, body = "one",
      connection_context = d.connection_context })
    testing.handle(chat, nil, testing.websocket.message{ connection_id = B, body = "two",
      connection_context = d.connection_context })
    -- B is not open in the fake: its send is gone and it leaves the room
    table.sort(fake.sent, function(x, y) return x.id .. x.data < y.id .. y.data end)
    assert.same({ { id = A, data = "one", binary = false }, { id = A, data = "two", binary = false },
      { id = B, data = "two", binary = false } }, fake.sent)
    assert.is_nil(package.loaded["chat_rooms"]["7"][B])
    package.loaded["chat_rooms"] = nil
  end)

  describe("in the kit (testing.mock_connections)", function()
    local A, B = "AAAAAAAAAAAAAAAA", "BBBBBBBBBBBBBBBB"

    it("records sends and closes", function()
      local fake = testing.mock_connections{ [A] = true, [B] = { connectedAt = 5, lastActiveAt = 6,
        identity = { sourceIp = "10.0.0.1", userAgent = "ua" } } }
      local broadcast = handler(function(e)
        for _, id in ipairs({ A, B, "CCCCCCCCCCCCCCCC" }) do
          local ok, err, status = connections.send(id, e.body)
          if not ok then
            assert.equal("gone", err)
            assert.equal(410, status)
          end
        end
        connections.send(A, "\1\2", { binary = true })
        assert.is_true(connections.close(B))
        assert.same({ nil, "gone", 410 }, { connections.close(B) })
        return { statusCode = 200 }
      end)
      assert.equal(200, testing.handle(broadcast, nil, testing.websocket.message{ body = "hi" }).status)
      assert.same({
        { id = A, data = "hi", binary = false }, { id = B, data = "hi", binary = false },
        { id = "CCCCCCCCCCCCCCCC", data = "hi", binary = false }, { id = A, data = "\1\2", binary = true },
      }, fake.sent)
      assert.same({ B, B }, fake.closed)
      assert.is_nil(fake.connections[B])
    end)

    it("answers info", function()
      testing.mock_connections{ [A] = true, [B] = { connectedAt = 5, lastActiveAt = 6,
        identity = { sourceIp = "10.0.0.1", userAgent = "ua" } } }
      assert.same({ connectedAt = 5, lastActiveAt = 6, identity = { sourceIp = "10.0.0.1", userAgent = "ua" } },
        connections.info(B))
      assert.equal("127.0.0.1", connections.info(A).identity.sourceIp)
      assert.same({ nil, "gone", 410 }, { connections.info("CCCCCCCCCCCCCCCC") })
    end)

    it("takes a function that answers each call", function()
      local calls = {}
      testing.mock_connections(function(call)
        calls[#calls + 1] = call.op .. " " .. call.id
        return nil, "throttled", 429
      end)
      assert.same({ nil, "throttled", 429 }, { connections.send(A, "x") })
      assert.same({ "send " .. A }, calls)
    end)

    it("refuses a fake that is neither", function()
      assert.has_error(function() testing.mock_connections(1) end,
        "mock_connections takes a table of open connections or a function")
    end)
  end)

  describe("checks its arguments", function()
    before_each(function()
      testing.mock_connections{}
    end)

    it("send", function()
      assert.has_error(function() connections.send(nil, "x") end,
        "send: connection id must be a string, got nil")
      assert.has_error(function() connections.send("AAAAAAAAAAAAAAAA", 1) end,
        "send: data must be a string, got number")
      assert.has_error(function() connections.send("AAAAAAAAAAAAAAAA", "x", true) end,
        "send: options must be a table")
      assert.has_error(function() connections.send("AAAAAAAAAAAAAAAA", "x", { binary = 1 }) end,
        "send: binary must be a boolean")
    end)

    it("info and close", function()
      assert.has_error(function() connections.info(7) end, "info: connection id must be a string, got number")
      assert.has_error(function() connections.close({}) end, "close: connection id must be a string, got table")
    end)
  end)

  it("is refused outside hooks without the kit's fake", function()
    assert.has_error(function() connections.send("AAAAAAAAAAAAAAAA", "x") end,
      "moongate.connections works inside the gateway's hooks; in specs use testing.mock_connections")
  end)

  it("is refused in a log policy (a hook that may not wait)", function()
    -- the runtime's state of a log hook: it runs in a runner thread, but may not wait in it
    request.current_state = { co = nil }
    local ok, err = coroutine.wrap(function() return pcall(connections.info, "AAAAAAAAAAAAAAAA") end)()
    request.current_state = nil
    assert.is_false(ok)
    assert.matches("moongate.connections can only be used from the hook itself (not from a coroutine "
      .. "the policy created, nor from a log policy)", err, 1, true)
  end)

  it("maps statuses to reasons", function()
    assert.equal("gone", connections.REASONS[410])
    assert.equal("too large", connections.REASONS[413])
    assert.equal("throttled", connections.REASONS[429])
  end)

  it("keeps values per connection until it ends", function()
    local id = "KKKKKKKKKKKKKKKK"
    local before = connections.kept_count()
    connections.keep(nil, id, "authorizer", { principalId = "alice" })
    connections.keep(nil, id, "context", { room = "7" })
    assert.same({ authorizer = { principalId = "alice" }, context = { room = "7" } }, connections.kept(id))
    assert.equal(before + 1, connections.kept_count())
    -- an event of the connection without the kit's own values reads the worker's
    local req = request.new({ connection_id = id, context = { eventType = "MESSAGE" }, body = "x" })
    local e = hooks.event(req)
    assert.same({ principalId = "alice" }, e.requestContext.authorizer)
    assert.same({ room = "7" }, e.requestContext.connectionContext)
    require("moongate.runtime").conn_end(id)
    assert.is_nil(connections.kept(id))
    assert.equal(before, connections.kept_count())
  end)
end)
