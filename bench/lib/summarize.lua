-- Turns bench/results/run/raw.jsonl (one line per wrk run, per wsload echo run in W6,
-- per gateway in W7) into the table on stdout and bench/results/latest.json.
--   luajit summarize.lua META.json RAW.jsonl OUT.json
-- Ratios are computed round by round (moongate's run and the other gateway's run of
-- the same round, seconds apart), then their median is reported.
local cjson = require "cjson"

local meta_path, raw_path, out_path = arg[1], arg[2], arg[3]

local function slurp(p)
    local f = assert(io.open(p, "rb"))
    local s = f:read("*a")
    f:close()
    return s
end

local meta = cjson.decode(slurp(meta_path))
local runs, w7 = {}, {}
for line in slurp(raw_path):gmatch("[^\n]+") do
    local r = cjson.decode(line)
    if r.w7 then w7[#w7 + 1] = r else runs[#runs + 1] = r end
end

local WORKLOADS = {
    { id = "W1", title = "W1 plain proxy: GET /bench through one route, keep-alive both sides" },
    { id = "W2", title = "W2 policy: API key + token bucket + JSON access log (8 variables), then proxy" },
    -- W2obs: the cost of observability, moongate against itself (conf/moongate-w2obs.lua).
    { id = "W2obs", subjects = { "moongate-obs" }, against = { "moongate" },
      goals = { ["moongate-obs/moongate"] = 0.97 }, base_label = "moongate (W2)",
      title = "W2obs W2 with observability: trace propagation, OTLP export of a sample, /metrics"
        .. " scraped every second (moongate-obs) against W2 (moongate)" },
    -- W10: the cost of cluster-wide throttling, moongate against itself (conf/moongate-w10.lua).
    { id = "W10", subjects = { "moongate-cl" }, against = { "moongate" },
      goals = { ["moongate-cl/moongate"] = 0.9 }, base_label = "moongate (W2)",
      title = "W10 W2 with cluster throttling: the stage's bucket shared by 3 nodes through Redis"
        .. " (moongate-cl) against W2 (moongate)" },
    { id = "W3", title = "W3 TLS keep-alive: W2 over TLS 1.3 (ECDSA P-256)" },
    { id = "W4", title = "W4 TLS handshakes: W2 with a new TLS 1.3 connection per request" },
    { id = "W5", title = "W5 WAF rule set: six Lua rules (conf/waf/bench_waf.lua) a clean request passes, then proxy" },
    { id = "W5b", title = "W5b no-op Lua hooks: a WAF rule, an authorizer (no cache), a log policy"
        .. " (conf/noop/bench_noop.lua) + W2's JSON access log, then proxy" },
    { id = "CACHE", title = "CACHE response cache: W1's GET /bench answered from the gateway's cache"
        .. " (moongate stage cache, nginx proxy_cache, HAProxy cache; one entry, every request a hit)" },
    { id = "W6", unit = "msg/s", goal = 1.5, title = "W6 WebSocket messages: a JSON text message routed by"
        .. " its action to a Lua handler (conf/ws/ws_echo.lua) whose answer goes back on the connection" },
    -- W8: moongate's JWT authorizer with its verified-token cache off (moongate) and on
    -- (moongate-cache, the same process), each against HAProxy's jwt_verify.
    { id = "W8rs", subjects = { "moongate", "moongate-cache" },
      goals = { ["moongate/haproxy"] = 1.0, ["moongate-cache/haproxy"] = 3.0 },
      title = "W8 JWT authorizer, RS256 (2048-bit key): a bearer token verified per request"
        .. " (signature, iss, aud, exp), answered without a backend" },
    { id = "W8es", subjects = { "moongate", "moongate-cache" },
      goals = { ["moongate/haproxy"] = 1.0, ["moongate-cache/haproxy"] = 3.0 },
      title = "W8 JWT authorizer, ES256 (P-256): a bearer token verified per request"
        .. " (signature, iss, aud, exp), answered without a backend" },
    -- W9: the OWASP Core Rule Set on libmodsecurity, moongate's managed rule against nginx's
    -- ModSecurity connector (conf/moongate-w9.lua, conf/nginx-w9.conf).
    { id = "W9clean", goals = { ["moongate/nginx-modsec"] = 1.5 },
      title = "W9 managed rules, clean traffic: OWASP CRS 3.3 at paranoia level 1 (libmodsecurity),"
        .. " a request it passes, then proxy" },
    { id = "W9attack", goals = { ["moongate/nginx-modsec"] = 1.5 },
      title = "W9 managed rules, attack traffic: SQLi, XSS, path traversal, a scanner User-Agent and a"
        .. " SQLi JSON body in turn (lib/w9_attacks.lua), each blocked with 403" },
}
local GATEWAYS = { "moongate", "moongate-cache", "moongate-obs", "moongate-cl", "nginx-lua", "nginx-modsec", "haproxy", "upstream", "upstream-1core" }
local LABELS = { ["upstream"] = "upstream (direct)", ["upstream-1core"] = "upstream (wrk, 1 core)",
    ["moongate-cache"] = "moongate, cache on", ["moongate-obs"] = "moongate, observed",
    ["moongate-cl"] = "moongate, cluster" }
local OTHERS = { "nginx-lua", "nginx-modsec", "haproxy" }

local function median(t)
    local s = {}
    for i, v in ipairs(t) do s[i] = v end
    if #s == 0 then return nil end
    table.sort(s)
    local m = math.floor((#s + 1) / 2)
    if #s % 2 == 1 then return s[m] end
    return (s[m] + s[m + 1]) / 2
end

local function round(x, n)
    if x == nil then return nil end
    local p = 10 ^ (n or 0)
    return math.floor(x * p + 0.5) / p
end

local function notes_for(w, g)
    for _, n in ipairs(meta.notes or {}) do
        if n.workload == w and n.gateway == g then return n.note end
    end
end

-- runs[w][g] = list ordered by round
local by = {}
for _, r in ipairs(runs) do
    local c = r.wall_s > 0 and r.cpu_gw_s / r.wall_s or 0
    r.wrk.rps_per_core = c > 0 and r.wrk.rps / c or 0
    by[r.workload] = by[r.workload] or {}
    by[r.workload][r.gateway] = by[r.workload][r.gateway] or {}
    table.insert(by[r.workload][r.gateway], r)
end

local function errors_of(r)
    local k = r.wrk
    return (k.err_connect or 0) + (k.err_read or 0) + (k.err_write or 0) + (k.err_timeout or 0)
end

-- A run is disturbed when other processes used more than noise_max_pct of a core
-- during it (run.sh has already measured it again while its retry budget lasted).
local NOISE_MAX = meta.settings.noise_max_pct or 15
local function clean(r)
    return (r.other_cpu_pct or 0) <= NOISE_MAX
end

-- Medians come from the undisturbed runs when there are at least two of them (or
-- the only run is undisturbed), else from every run.
local function use_clean(n_clean, n)
    return n_clean >= 2 or (n == 1 and n_clean == 1)
end

local function gateway_stats(list)
    local rps, p50, p99, cpu, per_core = {}, {}, {}, {}, {}
    local errors, non2xx, requests, lines = 0, 0, 0, 0
    local have_lines = false
    local n_clean = 0
    for _, r in ipairs(list) do
        if clean(r) then n_clean = n_clean + 1 end
    end
    local only_clean = use_clean(n_clean, #list)
    for _, r in ipairs(list) do
        local k = r.wrk
        if clean(r) or not only_clean then
            rps[#rps + 1] = k.rps
            p50[#p50 + 1] = k.p50_us
            p99[#p99 + 1] = k.p99_us
            local c = r.cpu_gw_s / r.wall_s
            cpu[#cpu + 1] = c * 100
            if c > 0 then per_core[#per_core + 1] = k.rps / c end
        end
        errors = errors + errors_of(r)
        non2xx = non2xx + (k.non2xx or 0)
        requests = requests + (k.requests or 0)
        if r.log_lines ~= nil and r.log_lines ~= cjson.null then
            have_lines = true
            lines = lines + r.log_lines
        end
    end
    return {
        runs = #list,
        clean_runs = n_clean,
        medians_of = only_clean and "undisturbed runs" or "all runs",
        median_rps = round(median(rps), 0),
        p50_us = median(p50),
        p99_us = median(p99),
        errors = errors,
        non2xx = non2xx,
        requests = requests,
        cpu_pct = round(median(cpu), 1),
        rps_per_cpu_core = round(median(per_core), 0),
        access_log_lines = have_lines and lines or nil,
        rounds = (function()
            local t = {}
            for _, r in ipairs(list) do
                t[#t + 1] = { round = r.round, rps = r.wrk.rps, p50_us = r.wrk.p50_us, p99_us = r.wrk.p99_us,
                    errors = errors_of(r), non2xx = r.wrk.non2xx, cpu_pct = round(r.cpu_gw_s / r.wall_s * 100, 1),
                    upstream_cpu_pct = round(r.cpu_up_s / r.wall_s * 100, 1),
                    wrk_cpu_pct = round(r.cpu_wrk_s / r.wall_s * 100, 1),
                    cpu0_busy_pct = round(r.cpu0_busy_s / r.wall_s * 100, 1),
                    cpu1_busy_pct = round(r.cpu1_busy_s / r.wall_s * 100, 1),
                    other_cpu_pct = r.other_cpu_pct, disturbed = not clean(r), log_lines = r.log_lines }
            end
            return t
        end)(),
    }
end

-- ratio of a over b, round by round, then the median
-- Ratio of a over b round by round, then the median: over the rounds where neither run
-- was disturbed when there are at least two such rounds, else over every round.
local function ratio(la, lb, field)
    local idx = {}
    for _, r in ipairs(lb or {}) do idx[r.round] = r end
    local per, flags, kept = {}, {}, {}
    for _, r in ipairs(la or {}) do
        local o = idx[r.round]
        if o and o.wrk[field] and o.wrk[field] > 0 then
            local v = round(r.wrk[field] / o.wrk[field], 3)
            per[#per + 1] = v
            flags[#flags + 1] = clean(r) and clean(o)
        end
    end
    if #per == 0 then return nil end
    local n_clean = 0
    for _, f in ipairs(flags) do if f then n_clean = n_clean + 1 end end
    local only_clean = use_clean(n_clean, #per)
    for i, v in ipairs(per) do
        if flags[i] or not only_clean then kept[#kept + 1] = v end
    end
    local disturbed = {}
    for i, f in ipairs(flags) do disturbed[i] = not f end
    return { median = round(median(kept), 3), rounds = per, disturbed = disturbed,
             clean_rounds = n_clean, median_of = only_clean and "undisturbed rounds" or "all rounds" }
end

local out = {
    date = meta.started, command = meta.command, elapsed_s = meta.elapsed_s,
    machine = meta.machine, versions = meta.versions, settings = meta.settings,
    workloads = {}, notes = meta.notes,
}

local function ms(us)
    if us == nil then return "-" end
    return string.format("%.2f", us / 1000)
end

local function thousands(n)
    if n == nil then return "-" end
    local s = tostring(math.floor(n + 0.5))
    local r = s:reverse():gsub("(%d%d%d)", "%1,"):reverse()
    return (r:gsub("^,", ""))
end

local P = print
local m = meta.machine
local s = meta.settings
P(string.format("moongate bench  %s  (%s, %ds)", meta.started, meta.command, meta.elapsed_s))
P(string.format("machine: %d x %s, kernel %s, %d MB; moongate %s (%s), nginx %s + lua-nginx-module %s, HAProxy %s, wrk %s",
    m.cores, m.cpu, m.kernel, m.memory_mb, meta.versions.moongate, meta.versions.moongate_commit,
    meta.versions.nginx, meta.versions.lua_nginx_module, meta.versions.haproxy, meta.versions.wrk))
P(string.format("load: wrk -t1 -c%d, %d rounds x %ss after a %ss warm-up per gateway (W5, W5b, W6, W8: %d rounds; TLS: %d rounds x %ss), "
    .. "gateways alternate A B C A B C; pin=%s%s",
    s.connections, s.rounds, s.duration_s, s.warmup_s, s.w5_rounds or s.rounds, s.tls_rounds,
    s.tls_duration_s or s.duration_s, s.pin,
    s.pin == "split" and " (gateway on CPU 1; wrk + upstream on CPU 0)" or ""))
if by.W6 or #w7 > 0 then
    local parts = {}
    if by.W6 then
        parts[#parts + 1] = string.format("W6 wsload echo, %d connections, a %d-byte message",
            s.w6_connections or 0, s.w6_message_bytes or 0)
    end
    if #w7 > 0 then
        parts[#parts + 1] = string.format("W7 %d idle connections per gateway", s.w7_connections or 0)
    end
    P("WebSockets (moongate and nginx-lua; HAProxy has no WebSocket server in Lua): " .. table.concat(parts, "; "))
end
P("every gateway runs one worker / one thread; req/s and latency are medians over rounds;"
    .. " 'cpu' is the gateway's CPU use, 'req/s/core' its rate per CPU-second")

local headline = {}
for _, wl in ipairs(WORKLOADS) do
    local w = wl.id
    local runs_w = by[w]
    local wnote_mg = notes_for(w, "moongate")
    if runs_w or wnote_mg then
        local ow = { title = wl.title, gateways = {}, ratios = {} }
        out.workloads[w] = ow
        P("")
        P(wl.title)
        local unit = wl.unit or "req/s"
        P(string.format("  %-22s %10s %8s %8s %7s %7s %6s %11s  %s", "gateway", unit, "p50 ms", "p99 ms",
            "errors", unit == "req/s" and "non2xx" or "wrong", "cpu%", unit .. "/core", "note"))
        for _, g in ipairs(GATEWAYS) do
            local list = runs_w and runs_w[g]
            local note = notes_for(w, g)
            local label = LABELS[g] or (g == "moongate" and wl.subjects and (wl.base_label or "moongate, cache off")) or g
            if list then
                local st = gateway_stats(list)
                st.note = note
                ow.gateways[g] = st
                P(string.format("  %-22s %10s %8s %8s %7d %7d %6.0f %11s  %s", label, thousands(st.median_rps),
                    ms(st.p50_us), ms(st.p99_us), st.errors, st.non2xx, st.cpu_pct,
                    thousands(st.rps_per_cpu_core), note or ""))
            elseif note then
                ow.gateways[g] = { note = note }
                P(string.format("  %-22s %10s %8s %8s %7s %7s %6s %11s  %s", label, "-", "-", "-", "-", "-", "-", "-", note))
            end
        end
        local ll = {}
        for _, g in ipairs({ "moongate", "nginx-lua", "haproxy" }) do
            local st = ow.gateways[g]
            if st and st.access_log_lines and st.requests and st.requests > 0 then
                st.access_log_lines_per_request = round(st.access_log_lines / st.requests, 3)
                ll[#ll + 1] = string.format("%s %.3f", g, st.access_log_lines_per_request)
            end
        end
        if #ll > 0 then P("  access-log lines per request: " .. table.concat(ll, ", ")) end
        local mg = runs_w and runs_w.moongate
        for _, subject in ipairs(wl.subjects or { "moongate" }) do
          local sub = runs_w and runs_w[subject]
          for _, o in ipairs(wl.against or OTHERS) do
            local rr = ratio(sub, runs_w and runs_w[o], "rps")
            if rr then
                local rp = ratio(sub, runs_w[o], "p99_us")
                local rc = ratio(sub, runs_w[o], "rps_per_core")
                local key = subject .. "/" .. o
                local goal = wl.goals and wl.goals[key] or (wl.goal and o == "nginx-lua" and wl.goal)
                ow.ratios[key] = { rps = rr, p99 = rp, rps_per_core = rc, partial = wnote_mg }
                local per = {}
                for i, v in ipairs(rr.rounds) do
                    per[i] = string.format("%.2f%s", v, rr.disturbed[i] and "*" or "")
                end
                P(string.format("  %-28s %4.2f   (rounds: %s; p99 ratio %.2f; %s/core ratio %.2f)%s%s",
                    key .. " " .. unit, rr.median, table.concat(per, " "), rp and rp.median or 0 / 0,
                    unit, rc and rc.median or 0 / 0, wnote_mg and ("  [" .. wnote_mg .. "]") or "",
                    goal and string.format("  goal >= %.2f: %s", goal, rr.median >= goal and "met" or "not met") or ""))
                if goal and wl.goals then
                    ow.goals = ow.goals or {}
                    ow.goals[key] = { ratio = goal, met = rr.median >= goal }
                elseif goal then
                    ow.goal = { ratio = goal, met = rr.median >= goal }
                end
                if rr.clean_rounds < #rr.rounds then
                    P(string.format("  %-28s      medians of %s (%d of %d undisturbed; * = disturbed)", "",
                        rr.median_of, rr.clean_rounds, #rr.rounds))
                end
                if o == "nginx-lua" and subject == "moongate" then headline[w] = { value = rr.median, partial = wnote_mg, noisy = rr.median_of == "all rounds" and rr.clean_rounds < #rr.rounds } end
            end
          end
        end
        local rc = ratio(mg, runs_w and runs_w.upstream, "rps")
        if rc then
            ow.ratios["moongate/upstream"] = { rps = rc }
            ow.ceiling = { upstream_rps = ow.gateways.upstream.median_rps, moongate_fraction = rc.median }
            P(string.format("  %-28s %4.2f   (upstream's direct rate = ceiling: %s req/s)", "moongate/upstream",
                rc.median, thousands(ow.gateways.upstream.median_rps)))
        end
        -- wrk and the upstream sharing CPU 0, as they do in the gateway runs: no gateway
        -- in this placement can pass this rate, whatever its own cost.
        local one = runs_w and runs_w["upstream-1core"]
        if one then
            ow.ceiling = ow.ceiling or {}
            ow.ceiling.same_core_rps = ow.gateways["upstream-1core"].median_rps
            ow.ceiling.same_core_fraction = {}
            local fr = {}
            for _, g in ipairs({ "moongate", "nginx-lua", "haproxy" }) do
                local r = ratio(runs_w[g], one, "rps")
                if r then
                    ow.ceiling.same_core_fraction[g] = r.median
                    fr[#fr + 1] = string.format("%s %.2f", g, r.median)
                end
            end
            P(string.format("  %-28s %s   (wrk + upstream on one core, as here: %s req/s bounds any gateway)",
                "fraction of that ceiling", table.concat(fr, ", "), thousands(ow.ceiling.same_core_rps)))
        end
    end
end

-- W7: memory per idle WebSocket (one line per gateway from run.sh's w7_run).
if #w7 > 0 or notes_for("W7", "moongate") then
    local GOAL = 2048
    local ow = { title = "W7 idle WebSockets: memory per open idle connection", goal_user_bytes = GOAL, gateways = {} }
    out.workloads.W7 = ow
    P("")
    P(string.format("%s (%d connections, %d source addresses; user = the gateway's VmRSS above its baseline;"
        .. " kernel apart: TCP buffers from /proc/net/sockstat, slab from /proc/meminfo, both ends of each"
        .. " loopback connection, machine-wide)", ow.title, s.w7_connections or 0, s.w7_sources or 0))
    P(string.format("  %-22s %7s %7s %9s %9s %11s %11s %11s  %s", "gateway", "open", "errors", "RSS0 MB",
        "RSS MB", "user B/conn", "kbuf B/conn", "slab B/conn", "note"))
    for _, g in ipairs({ "moongate", "nginx-lua", "haproxy" }) do
        local r
        for _, x in ipairs(w7) do if x.gateway == g then r = x.w7 end end
        local note = notes_for("W7", g) or notes_for("W7", "all")
        if r and r.open > 0 then
            local st = {
                connections = r.connections, open = r.open, errors = r.errors, processes = r.processes,
                sources = r.sources, open_s = r.open_s, rss_before_kb = r.rss_before_kb,
                rss_open_kb = r.rss_open_kb, rss_closed_kb = r.rss_closed_kb,
                user_bytes_per_conn = round((r.rss_open_kb - r.rss_before_kb) * 1024 / r.open, 0),
                kernel_tcp_buffer_bytes_per_conn = round((r.tcp_mem_pages_open - r.tcp_mem_pages_before)
                    * r.page_size / r.open, 0),
                kernel_slab_bytes_per_conn_both_ends = round((r.slab_open_kb - r.slab_before_kb) * 1024 / r.open, 0),
                tcp_sockets_added = r.tcp_inuse_open - r.tcp_inuse_before,
                note = note,
            }
            if g == "moongate" then st.goal_met = st.user_bytes_per_conn <= GOAL end
            ow.gateways[g] = st
            P(string.format("  %-22s %7d %7d %9.1f %9.1f %11s %11s %11s  %s", g, r.open, r.errors,
                r.rss_before_kb / 1024, r.rss_open_kb / 1024, thousands(st.user_bytes_per_conn),
                thousands(st.kernel_tcp_buffer_bytes_per_conn), thousands(st.kernel_slab_bytes_per_conn_both_ends),
                (note or "") .. (g == "moongate" and string.format("%sgoal <= %d B: %s", note and "; " or "", GOAL,
                    st.goal_met and "met" or "not met") or "")))
        elseif note then
            ow.gateways[g] = { note = note }
            P(string.format("  %-22s %7s %7s %9s %9s %11s %11s %11s  %s", g, "-", "-", "-", "-", "-", "-", "-", note))
        end
    end
    local a, b = ow.gateways.moongate, ow.gateways["nginx-lua"]
    if a and b and a.user_bytes_per_conn and b.user_bytes_per_conn and a.user_bytes_per_conn > 0 then
        ow.ratio_nginx_over_moongate = round(b.user_bytes_per_conn / a.user_bytes_per_conn, 2)
        P(string.format("  %-28s %4.2f   (user-space bytes per idle connection)", "nginx-lua/moongate",
            ow.ratio_nginx_over_moongate))
    end
end

-- Reload under load
if by.RELOAD or notes_for("RELOAD", "moongate") then
    local orl = { title = "RELOAD: W2 with " .. s.reloads .. " reloads during " .. s.reload_duration_s .. " s", gateways = {} }
    out.reload = orl
    P("")
    P(orl.title .. " (failed = connect/read/write/timeout errors + non-2xx; must be 0)")
    P(string.format("  %-22s %10s %10s %8s %8s  %s", "gateway", "requests", "req/s", "p99 ms", "failed", "note"))
    for _, g in ipairs({ "moongate", "nginx-lua", "haproxy" }) do
        local list = by.RELOAD and by.RELOAD[g]
        local note = notes_for("RELOAD", g)
        if list then
            local r = list[1]
            local failed = errors_of(r) + (r.wrk.non2xx or 0)
            orl.gateways[g] = { requests = r.wrk.requests, rps = round(r.wrk.rps, 0), p99_us = r.wrk.p99_us,
                failed = failed, errors = errors_of(r), non2xx = r.wrk.non2xx, note = note,
                reload_method = g == "nginx-lua" and "nginx -s reload" or g == "haproxy" and "SIGUSR2 to the master (-W)"
                    or "SIGHUP (moongate reload exists)" }
            P(string.format("  %-22s %10d %10s %8s %8d  %s", g, r.wrk.requests, thousands(r.wrk.rps),
                ms(r.wrk.p99_us), failed, note or ""))
        elseif note then
            orl.gateways[g] = { note = note }
            P(string.format("  %-22s %10s %10s %8s %8s  %s", g, "-", "-", "-", "-", note))
        end
    end
end

-- Noise: CPU used by processes outside the bench during measured runs.
do
    local n, noisy, worst = 0, 0, 0
    for _, r in ipairs(runs) do
      if r.workload ~= "RELOAD" then
        n = n + 1
        local o = r.other_cpu_pct or 0
        if o > (s.noise_max_pct or 15) then noisy = noisy + 1 end
        if o > worst then worst = o end
      end
    end
    out.noise = { runs = n, noisy_runs = noisy, worst_other_cpu_pct = worst, threshold_pct = s.noise_max_pct }
    P("")
    P(string.format("noise: %d of %d measured runs had other processes above %s%% of a core (worst %.0f%%)%s",
        noisy, n, tostring(s.noise_max_pct), worst, noisy > 0 and "; see other_cpu_pct in latest.json" or ""))
end

-- The last line: W2's ratio when moongate ran the whole W2, else W1's.
local last
if headline.W2 and not headline.W2.partial then
    last = string.format("W2 moongate/nginx-lua: %.2f", headline.W2.value)
elseif headline.W1 then
    if headline.W2 then
        P("")
        P(string.format("(W2 moongate/nginx-lua %.2f is not the headline: moongate's W2 row is %s)",
            headline.W2.value, headline.W2.partial))
    end
    last = string.format("W1 moongate/nginx-lua: %.2f", headline.W1.value)
end
out.last_line = last
local hw = headline.W2 and not headline.W2.partial and headline.W2 or headline.W1
if hw and hw.noisy then
    P("")
    P("warning: fewer than two undisturbed rounds behind the ratio below: other processes"
        .. " competed for the CPUs; run again on a quiet machine")
end

local f = assert(io.open(out_path, "wb"))
f:write(cjson.encode(out), "\n")
f:close()
P("")
P("results: " .. out_path)
if last then P(last) end
