#!/bin/bash
# What one rate-based WAF rule adds per request (docs-rate.md, README "Rate-based rules"):
# callgrind's instruction count of the gateway (workers = 1, a mock integration) per
# request, for a stage without a web ACL, with one no-op Lua rule, and with one rate-based
# rule (limit 2,000,000,000: never matches). Each: start under callgrind, 300 warm-up
# requests, zero the counts, N keep-alive requests (curl), dump. Not part of `make bench`.
#   bash bench/waf_rate_cost.sh            # N=2000
set -eu
BIN=${MOONGATE_BIN:-$(cd "$(dirname "$0")/.." && pwd)/build/moongate}
N=${N:-2000}
PORT=${PORT:-18181}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
echo 'return { inspect = function() return false end }' >"$dir/noop_rule.lua"
for kind in none noop rate; do
    case $kind in
    none) waf='' ;;
    noop) waf="waf = { rules = { { priority = 1, name = \"noop\", policy = \"$dir/noop_rule.lua\", action = \"block\" } } }," ;;
    rate) waf='waf = { rules = { { priority = 1, name = "rl", action = "block", rate_based = { limit = 2000000000 } } } },' ;;
    esac
    cat >"$dir/$kind.lua" <<CONF
return {
  workers = 1,
  listen = { { address = "127.0.0.1", port = $PORT, api = "bench" } },
  apis = { bench = {
    stages = { ["\$default"] = { $waf } },
    routes = { ["GET /bench"] = { integration = { type = "mock", status = 200 } } },
  } },
}
CONF
done
urls() { for _ in $(seq "$1"); do echo "url = \"http://127.0.0.1:$PORT/bench\""; echo 'output = "/dev/null"'; done; }
urls 300 >"$dir/warm.cfg"
urls "$N" >"$dir/load.cfg"
for kind in none noop rate; do
    valgrind --tool=callgrind --callgrind-out-file="$dir/cg.$kind.%p" "$BIN" -c "$dir/$kind.lua" >"$dir/$kind.out" 2>&1 &
    pid=$!
    for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$PORT/bench" && break; sleep 0.5; done
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
