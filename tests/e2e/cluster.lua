-- The e2e kit for clusters (README "Running a cluster"): a real redis-server on a free
-- port in a temporary directory, and several moongate nodes that share it. Used by the
-- cluster_*_spec.lua files:
--
--   local cl = require "cluster"
--   local redis = cl.start_redis()                 -- redis.port, redis:cli(...), redis:stop()
--   local nodes = cl.start_nodes(3, redis, function(i) return { apis = ... } end)
--   ... nodes[1]:url("/x") ...
--   cl.stop_nodes(nodes); redis:stop()
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
package.path = here .. "?.lua;" .. package.path
local h = require "helpers"
local prom = require "prom"

local cl = {}

-- Starts redis-server on a free port (or opts.port: a restart on the same port) with
-- nothing saved to disk unless opts.persist (then an append-only file in opts.dir, which
-- a restart with the same dir reads back). opts.password: requirepass.
-- Returns the process with .port, .dir, :cli(args...) (redis-cli's output) and :ping().
function cl.start_redis(opts)
    opts = opts or {}
    local port = opts.port or h.free_port()
    local dir = opts.dir or h.tmpdir()
    local argv = { "redis-server", "--port", tostring(port), "--bind", "127.0.0.1",
        "--dir", dir, "--save", "", "--appendonly", opts.persist and "yes" or "no",
        "--appendfsync", "always", "--daemonize", "no", "--protected-mode", "no" }
    if opts.password then
        argv[#argv + 1] = "--requirepass"
        argv[#argv + 1] = opts.password
    end
    local p = h.spawn(argv, dir, "redis")
    p.port, p.dir, p.password = port, dir, opts.password
    function p.cli(_, ...)
        local args = { "redis-cli", "-p", tostring(port), "--no-auth-warning" }
        if p.password then
            args[#args + 1] = "-a"
            args[#args + 1] = p.password
        end
        for _, a in ipairs({ ... }) do args[#args + 1] = tostring(a) end
        local quoted = {}
        for i, a in ipairs(args) do quoted[i] = h.sh_quote(a) end
        return h.run(table.concat(quoted, " ") .. " 2>&1")
    end
    function p.ping()
        return p:cli("PING"):match("PONG") ~= nil
    end
    local ok = h.wait_for(function() return p.exited() == nil and p.ping() end, h.start_timeout)
    if not ok then
        p:stop(2)
        error("redis-server did not start: " .. p.stdout() .. p.stderr(), 2)
    end
    return p
end

-- The `cluster` section for a node named id using redis (extra: more fields, merged).
function cl.section(redis, id, extra)
    local c = { node_id = id, redis = { address = "127.0.0.1", port = redis.port } }
    for k, v in pairs(extra or {}) do c[k] = v end
    return c
end

cl.TOKEN = "cluster-e2e-token-0123456789abcdef"

-- Starts n nodes sharing redis: conf_for(i) returns node i's configuration (its
-- `cluster` section is added when it has none: node_id "node<i>"; its management
-- listener when it has none, on a free port with the token cl.TOKEN). opts[i]: node i's
-- helpers.start_gateway options. Returns the list of gateway processes
-- (helpers.start_gateway's), node i with .node_id, .mport and .token.
function cl.start_nodes(n, redis, conf_for, opts)
    local nodes = {}
    for i = 1, n do
        local conf = conf_for(i)
        conf.cluster = conf.cluster or cl.section(redis, "node" .. i)
        local o = opts and opts[i] or {}
        o.dir = o.dir or h.tmpdir()
        if conf.management == nil then
            h.write_file(o.dir .. "/token", cl.TOKEN .. "\n")
            os.execute("chmod 600 " .. h.sh_quote(o.dir .. "/token"))
            conf.management = { address = "127.0.0.1", port = h.free_port(), token_file = o.dir .. "/token" }
        end
        local ok, gw = pcall(h.start_gateway, conf, o)
        if not ok then
            cl.stop_nodes(nodes)
            error(gw, 2)
        end
        gw.node_id = conf.cluster.node_id
        gw.mport = conf.management.port
        gw.token = conf.management.token_file == o.dir .. "/token" and cl.TOKEN or nil
        nodes[i] = gw
    end
    return nodes
end

-- The value of the sample name{labels} in node's GET /metrics (nil: not there).
function cl.metric(node, name, labels)
    local samples = prom.parse(prom.scrape(h, node.mport, node.token))
    return samples[prom.key(name, labels)]
end

-- How many times node's error log says Redis is reachable (state "reachable") or
-- unreachable ("unreachable").
function cl.told(node, state)
    local n = 0
    for _ in node.stderr():gmatch("cluster: Redis at [^\n]* is " .. state .. " ") do n = n + 1 end
    return n
end

-- Waits until every node's error log has said Redis is reachable at least times times
-- (default 1; bounded); returns true.
function cl.wait_up(nodes, timeout, times)
    return h.wait_for(function()
        for _, n in ipairs(nodes) do
            if cl.told(n, "reachable") < (times or 1) then return false end
        end
        return true
    end, timeout or 10)
end

-- Waits until every node's error log says Redis is unreachable (bounded); returns true.
function cl.wait_down(nodes, timeout)
    return h.wait_for(function()
        for _, n in ipairs(nodes) do
            if cl.told(n, "unreachable") < 1 then return false end
        end
        return true
    end, timeout or 5)
end

-- Ends a test whose body ran in pcall (ok, err): prints the nodes' cluster log lines when
-- it failed, stops the nodes, then redis (when given), then fails with the body's error
-- first, else when a node did not exit 0.
function cl.finish(nodes, redis, ok, err)
    if not ok then -- what the nodes said about the cluster, to tell why
        for i, n in ipairs(nodes) do
            for l in n.stderr():gmatch("[^\n]*cluster[^\n]*") do print("node " .. i .. ": " .. l) end
        end
    end
    local ok_stop, err_stop = pcall(cl.stop_nodes, nodes)
    if redis then pcall(function() redis:stop() end) end
    assert(ok, err)
    assert(ok_stop, err_stop)
end

-- Stops every node (h.stop_all's check: a node that did not exit 0 fails the caller).
function cl.stop_nodes(nodes)
    local err
    for _, n in ipairs(nodes) do
        local ok, e = pcall(h.stop_all, n)
        if not ok then err = err or e end
    end
    if err then error(err, 2) end
end

return cl
