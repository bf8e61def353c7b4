#!/usr/bin/env bash
# How long GET /metrics takes on a gateway with APIS APIs x ROUTES routes (default 100 x
# 20, README "Metrics": under 50 ms), every route having served a request so that every
# series is exported. Starts build/moongate on free ports (workers = WORKERS, default 2)
# with http integrations to build/test-upstream (so that the integration-latency
# histograms are exported too), sends one request per route (Host: aN.bench picks API aN), then times SCRAPES scrapes
# with curl and prints the size of the exposition and min / median / max times.
# A measurement to report, not a test: nothing here passes or fails on a timing.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
APIS=${APIS:-100}
ROUTES=${ROUTES:-20}
WORKERS=${WORKERS:-2}
SCRAPES=${SCRAPES:-20}
DIR=$(mktemp -d /tmp/mgw-metrics-bench-XXXXXX)
GW=; UP=
trap 'kill $GW $UP 2>/dev/null || true; wait $GW $UP 2>/dev/null || true; rm -rf "$DIR"' EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PORT=$(free_port)
MPORT=$(free_port)
UPORT=$(free_port)
"$BUILD/test-upstream" "$UPORT" > /dev/null 2>&1 &
UP=$!
echo bench-token > "$DIR/token"
chmod 600 "$DIR/token"
{
    echo "return { workers = $WORKERS,"
    echo "  listen = { { address = '127.0.0.1', port = $PORT } },"
    echo "  management = { address = '127.0.0.1', port = $MPORT, token_file = '$DIR/token' },"
    echo "  apis = {"
    for a in $(seq 1 "$APIS"); do
        printf "    a%d = { stages = { ['\$default'] = {} }, routes = {" "$a"
        for r in $(seq 1 "$ROUTES"); do
            printf " ['GET /r%d'] = { integration = { type = 'http', uri = 'http://127.0.0.1:$UPORT/' } }," "$r"
        done
        echo " } },"
    done
    echo "  } }"
} > "$DIR/gateway.lua"
"$BUILD/moongate" -c "$DIR/gateway.lua" -p "$DIR" 2> "$DIR/stderr" &
GW=$!
for _ in $(seq 1 100); do
    curl -fsS -o /dev/null -H "Authorization: Bearer bench-token" "http://127.0.0.1:$MPORT/status" 2>/dev/null && break
    sleep 0.1
done
# One request per route, over a few keep-alive connections.
python3 - "$PORT" "$APIS" "$ROUTES" <<'PY'
import http.client, sys
port, apis, routes = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
bad = 0
for a in range(1, apis + 1):
    c = http.client.HTTPConnection("127.0.0.1", port)
    for r in range(1, routes + 1):
        c.request("GET", "/r%d" % r, headers={"Host": "a%d.bench" % a})
        resp = c.getresponse()
        resp.read()
        bad += resp.status != 200
    c.close()
if bad:
    sys.exit("%d requests were not answered 200" % bad)
PY
# CPU time of the gateway (user + system, clock ticks), before and after the scrapes:
# the scrape's cost whatever else the machine runs.
cpu() { awk '{ print $14 + $15 }' "/proc/$GW/stat"; }
ticks=$(getconf CLK_TCK)
cpu0=$(cpu)
times=()
for _ in $(seq 1 "$SCRAPES"); do
    t=$(curl -fsS -o "$DIR/scrape.txt" -w '%{time_total}' -H "Authorization: Bearer bench-token" \
        "http://127.0.0.1:$MPORT/metrics")
    times+=("$t")
done
cpu1=$(cpu)
lines=$(wc -l < "$DIR/scrape.txt")
bytes=$(wc -c < "$DIR/scrape.txt")
series=$(grep -c '^moongate_requests_total{.*status_class="2xx"}' "$DIR/scrape.txt" || true)
printf '%s\n' "${times[@]}" | sort -n | awk -v n="$SCRAPES" -v l="$lines" -v b="$bytes" \
    -v s="$series" -v c="$(( cpu1 - cpu0 ))" -v hz="$ticks" -v a="$APIS" -v r="$ROUTES" -v w="$WORKERS" '
    { t[NR] = $1 * 1000 }
    END { printf "metrics scrape, %d APIs x %d routes, %d workers: %d route series, %d lines, %d bytes\n", a, r, w, s, l, b;
          printf "  %d scrapes: min %.1f ms, median %.1f ms, max %.1f ms\n", n, t[1], t[int((n + 1) / 2)], t[n];
          printf "  gateway CPU time: %.1f ms per scrape (user + system)\n", c * 1000 / hz / n }'
