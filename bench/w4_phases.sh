#!/bin/bash
# Where W4's time goes: one TLS 1.3 handshake per request, CONNS (64) wrk connections,
# each gateway in turn (moongate, nginx-lua), with 1.5 s of loopback packets captured in
# the middle of a 7 s run. From the packets' timestamps, per connection (means, ms):
#   SYN->CH        the client: its TCP connect done, until it sends its ClientHello
#   CH->flight     the gateway: accepting the connection and answering the ClientHello
#   flight->Fin    the client: checking the gateway's flight, sending its Finished
#   Fin->req       the client: until it writes the request (where wrk's latency starts)
#   req->resp      the gateway: the request through the upstream, the answer sent
#   resp->alert    the client: until it reads the answer and closes (where it ends)
# wrk's latency is req->resp plus resp->alert: the gateway's part and the client's own
# queue. Not part of `make bench`; bench/README.md, *W4's latency*, cites it.
# Needs what `make bench` installs (make bench-deps) and tcpdump (apt-get install tcpdump).
#   bash bench/w4_phases.sh             # CONNS=64
set -eu
BENCH=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$BENCH")
BIN=${MOONGATE_BIN:-$ROOT/build/moongate}
CONNS=${CONNS:-64}
KEY="bench-key-0123456789abcdef"
command -v tcpdump >/dev/null || { echo "w4_phases.sh: needs tcpdump (apt-get install tcpdump)" >&2; exit 2; }
dir=$(mktemp -d)
RUN=$dir/run
# shellcheck source=lib/prepare.sh
. "$BENCH/lib/prepare.sh"
prepare_run "$BENCH" "$RUN"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$dir"
}
trap cleanup EXIT

# phases FILE PORT: the means above, from tcpdump -r's text (-n -tt)
phases() {
    awk -v P="$2" '
    function port(s,  a) { n = split(s, a, "."); sub(":", "", a[n]); return a[n] + 0 }
    / IP / {
        t = $1; src = port($3); dst = port($5); len = 0
        if (match($0, /length [0-9]+/)) len = substr($0, RSTART + 7, RLENGTH - 7) + 0
        c = (dst == P) ? src : dst
        if (dst == P && $0 ~ /Flags \[S\]/) { syn[c] = t; nc[c] = 0; ns[c] = 0; next }
        if (!(c in syn) || len == 0) next
        if (dst == P) cl[c, ++nc[c]] = t; else sv[c, ++ns[c]] = t
        # client data: ClientHello, Finished, request, close_notify; gateway data: its
        # flight, the session ticket, the answer (then its own close_notify)
        if (dst == P && nc[c] == 4 && ns[c] >= 3) {
            d[1] += cl[c, 1] - syn[c]; d[2] += sv[c, 1] - cl[c, 1]; d[3] += cl[c, 2] - sv[c, 1]
            d[4] += cl[c, 3] - cl[c, 2]; d[5] += sv[c, 3] - cl[c, 3]; d[6] += cl[c, 4] - sv[c, 3]
            done++; delete syn[c]
        }
    }
    END {
        if (!done) { print "  no complete connection captured"; exit }
        split("SYN->CH CH->flight flight->Fin Fin->req req->resp resp->alert", name, " ")
        line = sprintf("  %d connections, means (ms):", done)
        for (i = 1; i <= 6; i++) line = line sprintf(" %s %.2f", name[i], d[i] * 1000 / done)
        printf "%s\n  gateway %.2f, client %.2f\n", line, (d[2] + d[5]) * 1000 / done, (d[1] + d[3] + d[4] + d[6]) * 1000 / done
    }' "$1"
}

taskset -c 0 nginx -p "$RUN/" -c "$RUN/upstream.nginx.conf" -e logs/upstream.error.log >"$dir/up.out" 2>&1 &
pids+=($!)
for gw in moongate nginx-lua; do
    if [ $gw = moongate ]; then
        port=18091
        taskset -c 1 "$BIN" -p "$RUN" -c "$BENCH/conf/moongate-w3.lua" >"$dir/gw.out" 2>&1 &
    else
        port=18092
        taskset -c 1 nginx -p "$RUN/" -c "$RUN/nginx-w2.conf" -e logs/nginx-gw.error.log >"$dir/gw.out" 2>&1 &
    fi
    gpid=$!
    sleep 1
    wrk=(taskset -c 0 wrk -t1 -c"$CONNS" -H "x-api-key: $KEY" -H "Connection: close")
    "${wrk[@]}" -d2 "https://127.0.0.1:$port/bench" >/dev/null
    "${wrk[@]}" -d7 --latency "https://127.0.0.1:$port/bench" >"$dir/wrk.out" 2>&1 &
    wpid=$!
    sleep 3
    timeout 1.5 taskset -c 0 tcpdump -i lo -n -s 68 -B 131072 -w "$dir/cap.pcap" "tcp port $port" 2>/dev/null || true
    wait $wpid
    kill $gpid; wait $gpid 2>/dev/null || true
    [ $gw = nginx-lua ] && { pkill -f "$RUN/nginx-w2.conf" || true; }
    sleep 0.5
    echo "$gw: wrk $(awk '/Requests\/sec/ { r = $2 } / 50%/ { p50 = $2 } / 99%/ { p99 = $2 } END { print r " req/s, p50 " p50 ", p99 " p99 }' "$dir/wrk.out")"
    tcpdump -r "$dir/cap.pcap" -n -tt 2>/dev/null >"$dir/cap.txt"
    phases "$dir/cap.txt" $port
done
