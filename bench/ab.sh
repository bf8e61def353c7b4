#!/usr/bin/env bash
# bench/ab.sh OLD NEW: two moongate binaries on the same workloads, alternating
# (old, new, old, new, ...) in the same minutes, same pinning as make bench (gateway on
# CPU 1, wrk and the upstream on CPU 0). Use it to tell a change's effect from the
# machine's drift between two make bench runs. See bench/README.md, "Comparing two builds".
#
#   bash bench/ab.sh /tmp/old/build/moongate build/moongate
#   WORKLOADS="W2 W3" ROUNDS=6 DURATION=5 bash bench/ab.sh OLD NEW
set -euo pipefail

BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
[ $# -eq 2 ] || { echo "usage: bench/ab.sh OLD_BINARY NEW_BINARY" >&2; exit 2; }
OLD=$(realpath "$1") NEW=$(realpath "$2")
[ -x "$OLD" ] && [ -x "$NEW" ] || { echo "bench/ab.sh: both binaries must exist" >&2; exit 2; }
ROUNDS=${ROUNDS:-4} DURATION=${DURATION:-5} WARMUP=${WARMUP:-2} CONNS=${CONNS:-64}
WORKLOADS=${WORKLOADS:-"W1 W2 W3 W5"}
RUN=$BENCH/results/ab
KEY="bench-key-0123456789abcdef"
W5_PATH="/bench?q=running+shoes&page=2&sort=price"
W5_UA="Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"

for p in 18080 18081 18091; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
        echo "bench/ab.sh: port $p is in use (a bench running?)" >&2; exit 1
    fi
done
# shellcheck source=lib/prepare.sh
. "$BENCH/lib/prepare.sh"
prepare_run "$BENCH" "$RUN"

UP="" GW=""
cleanup() { [ -z "$GW" ] || kill "$GW" 2>/dev/null || true; [ -z "$UP" ] || kill "$UP" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT
taskset -c 0 nginx -p "$RUN/" -c "$RUN/upstream.nginx.conf" -e logs/upstream.error.log &
UP=$!
sleep 0.5

# one BIN CONF URL SECONDS wrk-args...: prints "rps p99_ms cpu_pct"
one() {
    local bin=$1 conf=$2 url=$3 secs=$4 i t0 t1 s0 s1
    shift 4
    taskset -c 1 "$bin" -p "$RUN" -c "$conf" >>"$RUN/logs/moongate.out" 2>&1 &
    GW=$!
    for i in $(seq 1 100); do
        curl -sk -o /dev/null -m 1 "$@" "$url" && break
        sleep 0.1
    done
    [ "$WARMUP" = 0 ] || taskset -c 0 wrk -t1 -c"$CONNS" -d"${WARMUP}s" "$@" "$url" >/dev/null
    t0=$(awk '{print $14 + $15}' "/proc/$GW/stat"); s0=$(date +%s.%N)
    taskset -c 0 wrk -t1 -c"$CONNS" -d"${secs}s" --timeout 2s --latency "$@" "$url" >"$RUN/wrk.txt"
    s1=$(date +%s.%N); t1=$(awk '{print $14 + $15}' "/proc/$GW/stat")
    kill "$GW"; wait "$GW" 2>/dev/null || true; GW=""
    awk -v t0="$t0" -v t1="$t1" -v s0="$s0" -v s1="$s1" -v tck="$(getconf CLK_TCK)" '
        /Requests\/sec/ { rps = $2 }
        $1 == "99%" { p = $2; if (p ~ /us$/) p = p / 1000; else if (p ~ /ms$/) p = p + 0; else p = p * 1000 }
        END { printf "%.0f %.2f %.0f\n", rps, p, (t1 - t0) / tck / (s1 - s0) * 100 }' "$RUN/wrk.txt"
}

printf '%-4s %-5s %10s %10s %8s %8s %8s %8s\n' "" round "old req/s" "new req/s" "old p99" "new p99" "old cpu" "new cpu"
for w in $WORKLOADS; do
    url=http://127.0.0.1:18081/bench args=(-H "x-api-key: $KEY") conf=$BENCH/conf/moongate-${w,,}.lua
    case $w in
        W3) url=https://127.0.0.1:18091/bench ;;
        W4) url=https://127.0.0.1:18091/bench conf=$BENCH/conf/moongate-w3.lua args+=(-H "Connection: close") ;;
        W5) url=http://127.0.0.1:18081$W5_PATH args=(-H "User-Agent: $W5_UA") ;;
        W5b) args=() ;;
    esac
    so=0 sn=0
    for ((r = 1; r <= ROUNDS; r++)); do
        read -r ro po co < <(one "$OLD" "$conf" "$url" "$DURATION" "${args[@]}")
        read -r rn pn cn < <(one "$NEW" "$conf" "$url" "$DURATION" "${args[@]}")
        printf '%-4s %-5s %10s %10s %8s %8s %7s%% %7s%%\n' "$w" "$r" "$ro" "$rn" "$po" "$pn" "$co" "$cn"
        so=$((so + ro)) sn=$((sn + rn))
    done
    awk -v w="$w" -v a="$so" -v b="$sn" 'BEGIN { printf "%s new/old req/s %.3f\n", w, b / a }'
done
