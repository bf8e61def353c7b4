#!/bin/bash
# What one hook adds per request: callgrind's instruction count of the gateway
# (workers = 1, a mock integration) per request, for each of KINDS (default: all):
#   none   a stage without a web ACL or authorizer (the base)
#   noop   one no-op Lua WAF rule (README "Web application firewall")
#   rate   one rate-based WAF rule, limit 2,000,000,000: never matches ("Rate-based rules")
#   fields one Lua WAF rule that reads four request fields (W5's: source_ip, method,
#          path, query_string) and matches nothing
#   authz  one no-op Lua REQUEST authorizer without a cache (ttl = 0: it runs every time)
#   alog   W2's JSON access log (the base of log)
#   log    the same access log with a no-op log policy (returns nil: the line is written)
# Each: start under callgrind, 600 warm-up requests, zero the counts, N keep-alive
# requests (curl), dump. Not part of `make bench`; bench/README cites its figures.
#   bash bench/hook_cost.sh                    # N=2000
#   KINDS="none authz" N=4000 bash bench/hook_cost.sh
set -eu
BIN=${MOONGATE_BIN:-$(cd "$(dirname "$0")/.." && pwd)/build/moongate}
N=${N:-2000}
PORT=${PORT:-18181}
KINDS=${KINDS:-none noop fields rate authz alog log}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
echo 'return { inspect = function() return false end }' >"$dir/noop_rule.lua"
echo 'return { inspect = function(req) return not (req.source_ip and req.method and req.path and req.query_string) end }' >"$dir/fields_rule.lua"
echo 'return { log = function() return nil end }' >"$dir/noop_log.lua"
echo 'local ALLOW = { isAuthorized = true } return { authorize = function() return ALLOW end }' >"$dir/noop_authz.lua"
for kind in $KINDS; do
    stage='' route=''
    case $kind in
    none) ;;
    noop) stage="waf = { rules = { { priority = 1, name = \"noop\", policy = \"$dir/noop_rule.lua\", action = \"block\" } } }," ;;
    fields) stage="waf = { rules = { { priority = 1, name = \"fields\", policy = \"$dir/fields_rule.lua\", action = \"block\" } } }," ;;
    rate) stage='waf = { rules = { { priority = 1, name = "rl", action = "block", rate_based = { limit = 2000000000 } } } },' ;;
    authz) route='authorizer = "noop",' ;;
    alog | log)
        policy=''
        [ "$kind" = log ] && policy="policy = \"$dir/noop_log.lua\","
        stage="access_log = { path = \"$dir/access.log\", $policy format = '{\"requestId\":\"\$context.requestId\",\"ip\":\"\$context.identity.sourceIp\",\"requestTime\":\"\$context.requestTime\",\"httpMethod\":\"\$context.httpMethod\",\"routeKey\":\"\$context.routeKey\",\"status\":\"\$context.status\",\"responseLength\":\"\$context.responseLength\",\"responseLatency\":\"\$context.responseLatency\"}' }," ;;
    *) echo "hook_cost.sh: unknown kind $kind (none, noop, fields, rate, authz, alog, log)" >&2; exit 2 ;;
    esac
    cat >"$dir/$kind.lua" <<CONF
return {
  workers = 1,
  listen = { { address = "127.0.0.1", port = $PORT, api = "bench" } },
  apis = { bench = {
    stages = { ["\$default"] = { $stage } },
    authorizers = { noop = { type = "lua", kind = "REQUEST", policy = "$dir/noop_authz.lua", ttl = 0 } },
    routes = { ["GET /bench"] = { $route integration = { type = "mock", status = 200 } } },
  } },
}
CONF
done
urls() { for _ in $(seq "$1"); do echo "url = \"http://127.0.0.1:$PORT/bench\""; echo 'output = "/dev/null"'; done; }
urls 300 >"$dir/warm.cfg"
urls "$N" >"$dir/load.cfg"
for kind in $KINDS; do
    valgrind --tool=callgrind --callgrind-out-file="$dir/cg.$kind.%p" "$BIN" -c "$dir/$kind.lua" >"$dir/$kind.out" 2>&1 &
    pid=$!
    for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$PORT/bench" && break; sleep 0.5; done
    curl -s -K "$dir/warm.cfg"
    curl -s -K "$dir/warm.cfg"
    callgrind_control -z $pid >/dev/null 2>&1
    codes=$(curl -s -K "$dir/load.cfg" -w '%{http_code}\n' | sort | uniq -c | tr -s ' \n' ' ')
    callgrind_control -d $pid >/dev/null 2>&1
    sleep 1
    ir=$(grep -h '^summary:' "$dir/cg.$kind.$pid.1" | awk '{s += $2} END {print s}')
    echo "$kind: responses [$codes] instructions per request: $((ir / N))"
    kill $pid
    wait $pid 2>/dev/null || true
done
