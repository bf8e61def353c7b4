#!/usr/bin/env bash
# make bench: moongate beside nginx + lua-nginx-module and HAProxy, on this machine,
# in one run, on loopback. See bench/README.md.
#
#   QUICK=1 bash bench/run.sh       # < 1 minute
#   bash bench/run.sh               # full run, < 10 minutes
#
# Knobs (environment): ROUNDS, DURATION (whole s per run), WARMUP (s per gateway), W5_ROUNDS,
# TLS_ROUNDS, TLS_WARMUP, TLS_DURATION, RELOAD_DURATION, CONNS, PIN (split | none), WORKLOADS
# ("W1 W5 W5b W2 W2obs W10 W3 W4 RELOAD W6 W7 W8 CACHE W9"), NOISE_MAX, MAX_ATTEMPTS, RETRY_BUDGET, QUIET_WAIT,
# OBS_RATIO, W6_CONNS, W6_MESSAGE, W7_CONNS, W7_SOURCES, W7_PER_PROCESS, W7_SETTLE, MOONGATE_BIN, BUILD.
set -euo pipefail

BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$BENCH")
BUILD=${BUILD:-build}
case "$BUILD" in /*) ;; *) BUILD="$ROOT/$BUILD" ;; esac
MOONGATE=${MOONGATE_BIN:-$BUILD/moongate}
RESULTS=$BENCH/results
RUN=$RESULTS/run
RAW=$RUN/raw.jsonl

QUICK=${QUICK:-}
[ "$QUICK" = 0 ] && QUICK=
if [ -n "$QUICK" ]; then
    ROUNDS=${ROUNDS:-2} DURATION=${DURATION:-1} WARMUP=${WARMUP:-1} W5_ROUNDS=${W5_ROUNDS:-2}
    TLS_ROUNDS=${TLS_ROUNDS:-1} TLS_WARMUP=${TLS_WARMUP:-0} TLS_DURATION=${TLS_DURATION:-1}
    RELOAD_DURATION=${RELOAD_DURATION:-2} RETRY_BUDGET=${RETRY_BUDGET:-2} QUIET_WAIT=${QUIET_WAIT:-0}
else
    # W5, W5b and W6 get 4 rounds (W5_ROUNDS) and the idle wait 20 s so that a full run
    # stays near 10 minutes (11 with W6 and W7).
    ROUNDS=${ROUNDS:-6} DURATION=${DURATION:-5} WARMUP=${WARMUP:-3} W5_ROUNDS=${W5_ROUNDS:-4}
    TLS_ROUNDS=${TLS_ROUNDS:-3} TLS_WARMUP=${TLS_WARMUP:-2} TLS_DURATION=${TLS_DURATION:-$DURATION}
    RELOAD_DURATION=${RELOAD_DURATION:-11}
    RETRY_BUDGET=${RETRY_BUDGET:-75} QUIET_WAIT=${QUIET_WAIT:-20}
fi
CONNS=${CONNS:-64}
OBS_RATIO=${OBS_RATIO:-0.01}   # W2obs: the share of requests whose spans are exported
NOISE_MAX=${NOISE_MAX:-15}
MAX_ATTEMPTS=${MAX_ATTEMPTS:-3}   # per measured run, while RETRY_BUDGET (s of re-runs) lasts
RETRY_SPENT=0
PIN=${PIN:-split}
WORKLOADS=${WORKLOADS:-"W1 W5 W5b W2 W2obs W10 W3 W4 RELOAD W6 W7 W8 CACHE W9"}
WSLOAD=$BUILD/bench/wsload
# W6: wsload echo connections (each sends a message, waits for the answer, sends the next)
# and the message; every answer must be the message itself (wsload --expect).
W6_CONNS=${W6_CONNS:-$CONNS}
W6_MESSAGE=${W6_MESSAGE:-'{"action":"echo","data":"0123456789abcdef0123456789abcdef"}'}
# W7: idle connections held open on each gateway, spread over W7_SOURCES source addresses
# (127.0.0.1..) and over wsload processes of at most W7_PER_PROCESS connections each (a
# process's open files are capped by the hard limit, ulimit -Hn); W7_SETTLE seconds
# between the last connection opening and the memory reading.
if [ -n "$QUICK" ]; then W7_CONNS=${W7_CONNS:-5000} W7_SETTLE=${W7_SETTLE:-1}; fi
W7_CONNS=${W7_CONNS:-20000} W7_SETTLE=${W7_SETTLE:-3}
W7_SOURCES=${W7_SOURCES:-8} W7_PER_PROCESS=${W7_PER_PROCESS:-10000}
RELOADS=10
KEY="bench-key-0123456789abcdef"
# W5's request: a browser's User-Agent and a query string that every rule reads and
# none matches; W5_BAD are requests some rule must block (403) on every gateway.
W5_PATH="/bench?q=running+shoes&page=2&sort=price"
W5_UA="Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
W5_BAD=("/bench?q=1%27%20union%20select%20password%20from%20users" "/bench?q=%3Cscript%3Ealert(1)%3C/script%3E")
# W5b's request is W1's; these headers make its no-op WAF rule and its no-op
# authorizer refuse a request (403) on every gateway, which proves they run.
W5B_BAD=("x-bench-block: 1" "x-bench-deny: 1")

# Ports (loopback only).
P_UP=18080 P_MG=18081 P_NG=18082 P_HA=18083 P_MG_OBS=18084 P_MG_MGMT=18185 P_MG_CL=18086 P_MG_CL2=18087 P_MG_CL3=18088 P_REDIS=18189 P_MG_TLS=18091 P_NG_TLS=18092 P_HA_TLS=18093

# CPU placement. split: every gateway on CPU 1, wrk and the upstream on CPU 0 (for
# the upstream's direct rate, wrk moves to CPU 1 so that client and server each have
# a core). none: no pinning.
if [ "$PIN" = split ]; then
    GW_CPU=(taskset -c 1) UP_CPU=(taskset -c 0) WRK_CPU=(taskset -c 0) WRK_CPU_DIRECT=(taskset -c 1)
else
    GW_CPU=() UP_CPU=() WRK_CPU=() WRK_CPU_DIRECT=()
fi

log() { printf 'bench: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# ---------------------------------------------------------------- processes --
declare -A PID=()      # name -> pid of the process we started (nginx: the master)
NOTES=()               # "workload|gateway|note" lines for the summary

stop() {   # stop NAME...
    local name
    for name in "$@"; do
        [ -n "${PID[$name]:-}" ] || continue
        kill -TERM "${PID[$name]}" 2>/dev/null || true
    done
    for name in "$@"; do
        [ -n "${PID[$name]:-}" ] || continue
        local i=0
        while kill -0 "${PID[$name]}" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
        kill -KILL "${PID[$name]}" 2>/dev/null || true
        wait "${PID[$name]}" 2>/dev/null || true
        unset "PID[$name]"
    done
}
cleanup() { stop "${!PID[@]}"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() {   # wait_port PORT NAME: up to 10 s
    local i=0
    while ! port_busy "$1"; do
        kill -0 "${PID[$2]}" 2>/dev/null || die "$2 exited while starting (see $RUN/logs/)"
        [ $i -lt 100 ] || die "$2 did not listen on $1 within 10 s (see $RUN/logs/)"
        sleep 0.1; i=$((i + 1))
    done
}

start_upstream() {
    "${UP_CPU[@]}" nginx -p "$RUN/" -c "$RUN/upstream.nginx.conf" -e logs/upstream.error.log \
        >>"$RUN/logs/upstream.out" 2>&1 &
    PID[upstream]=$!
    wait_port $P_UP upstream
}

MG_PARTIAL=""
start_gateways() {   # start_gateways W1|W2|W5|W5b|CACHE
    local w=${1,,} mgconf
    mgconf=$BENCH/conf/moongate-$w.lua
    if [ "$1" = W2 ]; then
        MG_PARTIAL=""
        if ! "$MOONGATE" check -p "$RUN" -c "$mgconf" >/dev/null 2>&1; then
            MG_PARTIAL="partial: api key/throttle not yet available"
        fi
    fi
    [ -z "$MG_PARTIAL" ] || mgconf=$BENCH/conf/moongate-w2-partial.lua
    "${GW_CPU[@]}" "$MOONGATE" -p "$RUN" -c "$mgconf" >>"$RUN/logs/moongate.out" 2>&1 &
    PID[moongate]=$!
    "${GW_CPU[@]}" nginx -p "$RUN/" -c "$RUN/nginx-$w.conf" -e logs/nginx-gw.error.log \
        >>"$RUN/logs/nginx-gw.out" 2>&1 &
    PID[nginx-lua]=$!
    # Master-worker mode (-W) so that the reload workload can send SIGUSR2.
    BENCH_RUN=$RUN BENCH_CONF=$BENCH/conf "${GW_CPU[@]}" haproxy -W -db -f "$BENCH/conf/haproxy-$w.cfg" \
        >>"$RUN/logs/haproxy-$w.access.log" 2>>"$RUN/logs/haproxy.err" &
    PID[haproxy]=$!
    wait_port $P_MG moongate; wait_port $P_NG nginx-lua; wait_port $P_HA haproxy

    # Every gateway must answer 200 with the key (and, in W2, 403 without it) before
    # anything is measured.
    local g port code
    for g in moongate nginx-lua haproxy; do
        port=$(gw_port "$g")
        code=$(curl -s -o /dev/null -m 5 -w '%{http_code}' -H "x-api-key: $KEY" "http://127.0.0.1:$port/bench" || true)
        [ "$code" = 200 ] || die "$g: GET /bench answered $code, expected 200"
        if [ "$1" = W2 ]; then
            code=$(curl -s -o /dev/null -m 5 -w '%{http_code}' "http://127.0.0.1:$port/bench" || true)
            if [ "$code" != 403 ] && [ "$g" = moongate ] && [ -z "$MG_PARTIAL" ]; then
                # The configuration validates but this binary does not enforce it yet.
                MG_PARTIAL="partial: api key/throttle not yet available"
                stop moongate
                "${GW_CPU[@]}" "$MOONGATE" -p "$RUN" -c "$BENCH/conf/moongate-w2-partial.lua" \
                    >>"$RUN/logs/moongate.out" 2>&1 &
                PID[moongate]=$!
                wait_port $P_MG moongate
            elif [ "$code" != 403 ] && [ "$g" != moongate ]; then
                die "$g: GET /bench without a key answered $code, expected 403"
            fi
        fi
        if [ "$1" = W5 ]; then
            code=$(curl -s -o /dev/null -m 5 -w '%{http_code}' -A "$W5_UA" "http://127.0.0.1:$port$W5_PATH" || true)
            [ "$code" = 200 ] || die "$g: GET $W5_PATH answered $code, expected 200"
            local bad
            for bad in "${W5_BAD[@]}"; do
                code=$(curl -s -o /dev/null -m 5 -w '%{http_code}' -A "$W5_UA" "http://127.0.0.1:$port$bad" || true)
                [ "$code" = 403 ] || die "$g: the web ACL let GET $bad through ($code, expected 403)"
            done
            code=$(curl -s -o /dev/null -m 5 -w '%{http_code}' -A "sqlmap/1.7" "http://127.0.0.1:$port/bench" || true)
            [ "$code" = 403 ] || die "$g: the web ACL let User-Agent sqlmap through ($code, expected 403)"
        fi
        if [ "$1" = W5b ]; then
            local hdr
            for hdr in "${W5B_BAD[@]}"; do
                code=$(curl -s -o /dev/null -m 5 -w '%{http_code}' -H "$hdr" "http://127.0.0.1:$port/bench" || true)
                [ "$code" = 403 ] || die "$g: GET /bench with '$hdr' answered $code, expected 403 (is the hook running?)"
            done
        fi
    done
    if [ "$1" = W2 ] && [ -n "$MG_PARTIAL" ]; then
        NOTES+=("W2|moongate|$MG_PARTIAL")
        log "W2 moongate: $MG_PARTIAL (runs conf/moongate-w2-partial.lua: access log only)"
    fi
}

# For W3/W4: restarts moongate with conf/moongate-w3.lua (W2 plus a TLS listener) when
# that configuration validates and answers over TLS; sets MG_TLS=1 then.
MG_TLS=0
moongate_tls() {
    MG_TLS=0
    [ -z "$MG_PARTIAL" ] || return 0
    if ! "$MOONGATE" check -p "$RUN" -c "$BENCH/conf/moongate-w3.lua" >"$RUN/logs/moongate-w3-check.txt" 2>&1; then
        log "moongate: conf/moongate-w3.lua does not validate (no TLS listeners yet?): see $RUN/logs/moongate-w3-check.txt"
        return 0
    fi
    stop moongate
    "${GW_CPU[@]}" "$MOONGATE" -p "$RUN" -c "$BENCH/conf/moongate-w3.lua" >>"$RUN/logs/moongate.out" 2>&1 &
    PID[moongate]=$!
    wait_port $P_MG moongate; wait_port $P_MG_TLS moongate
    local code
    code=$(curl -sk -o /dev/null -m 5 -w '%{http_code}' -H "x-api-key: $KEY" "https://127.0.0.1:$P_MG_TLS/bench" || true)
    [ "$code" = 200 ] || die "moongate: GET https://127.0.0.1:$P_MG_TLS/bench answered $code, expected 200"
    MG_TLS=1
}

gw_port() {
    case $1 in
        moongate) echo $P_MG ;; moongate-obs) echo $P_MG_OBS ;; moongate-cl) echo $P_MG_CL ;; nginx-lua | nginx-modsec) echo $P_NG ;; haproxy) echo $P_HA ;; upstream) echo $P_UP ;;
    esac
}

# -------------------------------------------------------------- measurement --
CLK_TCK=$(getconf CLK_TCK)

tree_ticks() {   # utime+stime of a process and its children (nginx/haproxy workers)
    local pid=$1 total=0 p t
    for p in $pid $(ps -o pid= --ppid "$pid" 2>/dev/null); do
        t=$(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0)
        total=$((total + t))
    done
    echo $total
}

cpu_busy() {   # busy jiffies (user nice system irq softirq) of cpu0, cpu1: "b0 b1"
    awk '/^cpu[01] / { printf "%d ", $2 + $3 + $4 + $7 + $8 }' /proc/stat
}

children_cpu() {   # KIDS = user+system seconds of every child this shell has waited for
    times >"$RUN/times"   # not in a $( ) subshell: that would report the subshell's
    KIDS=$(awk 'function sec(x, a) { split(x, a, "m"); sub("s", "", a[2]); return a[1] * 60 + a[2] }
         NR == 2 { printf "%.3f", sec($1) + sec($2) }' "$RUN/times")
}

log_file() {   # log_file WORKLOAD GATEWAY: the access log (W2's, or W5b's own)
    local c=w2
    [ "$1" = W5b ] && c=w5b
    case $2 in
        moongate) echo "$RUN/logs/moongate-$c.access.log" ;;
        moongate-obs) echo "$RUN/logs/moongate-w2obs.access.log" ;;
        moongate-cl) echo "$RUN/logs/moongate-w10.access.log" ;;
        nginx-lua) echo "$RUN/logs/nginx-$c.access.log" ;;
        haproxy) echo "$RUN/logs/haproxy-$c.access.log" ;;
    esac
}

# measure_once WORKLOAD ROUND GATEWAY URL SECONDS [wrk args...]: one wrk run; sets
# LINE (the raw JSON line) and FOREIGN (CPU used by processes other than wrk, the
# gateway and the upstream during the run, in % of one core).
measure_once() {
    local w=$1 r=$2 g=$3 url=$4 secs=$5
    shift 5
    local wrkcpu=("${WRK_CPU[@]}") gpid
    [ "$g" = upstream ] && wrkcpu=("${WRK_CPU_DIRECT[@]}")
    # upstream-1core: wrk straight to the upstream, both on CPU 0 as in the gateway runs.
    # wrk and the upstream do the same work per request with or without a gateway in
    # between, so this rate bounds every gateway's rate in this placement.
    # moongate-cache (W8): the same moongate process, its route with the token cache on.
    case $g in
        upstream-1core) gpid=${PID[upstream]} ;;
        moongate-cache) gpid=${PID[moongate]} ;;
        *) gpid=${PID[$g]} ;;
    esac
    local t0 t1 u0 u1 c0 c1 k0 k1 s0 s1 json
    t0=$(tree_ticks "$gpid"); u0=$(tree_ticks "${PID[upstream]}"); children_cpu; k0=$KIDS
    c0=$(cpu_busy); s0=$(date +%s.%N)
    if [ "$w" = W6 ]; then   # wsload instead of wrk; the upstream idles (no proxying)
        timeout $((secs + 20)) "${wrkcpu[@]}" "$WSLOAD" --mode echo -c "$W6_CONNS" -w 0 -d "$secs" \
            --message "$W6_MESSAGE" --expect "$W6_MESSAGE" "$url" >"$RUN/wrk.out" 2>&1 || true
    else
        timeout $((secs + 20)) "${wrkcpu[@]}" wrk -t1 -c"$CONNS" -d"${secs}s" --timeout 2s \
            -s "$BENCH/lib/report.lua" "$@" "$url" >"$RUN/wrk.out" 2>&1 || true
    fi
    s1=$(date +%s.%N); c1=$(cpu_busy)
    children_cpu; k1=$KIDS; u1=$(tree_ticks "${PID[upstream]}"); t1=$(tree_ticks "$gpid")
    json=$(sed -n 's/^BENCH //p' "$RUN/wrk.out")
    [ "$w" != W6 ] || [ -z "$json" ] || json=$(wsload_as_wrk "$json")
    if [ -z "$json" ]; then
        log "$w round $r $g: wrk gave no result: $(tr '\n' ' ' <"$RUN/wrk.out" | cut -c1-300)"
        json='{"requests":0,"rps":0,"p50_us":0,"p90_us":0,"p99_us":0,"p999_us":0,"max_us":0,"err_connect":0,"err_read":0,"err_write":0,"err_timeout":0,"non2xx":0,"failed_run":true}'
    fi
    local lines=null f
    if [[ "$w" != W1 && "$w" != W5 && "$w" != W6 && "$w" != W8* && "$w" != CACHE && "$w" != W9* && "$g" != upstream ]]; then   # W1, W5, W6, W8, CACHE, W9 keep no log
        f=$(log_file "$w" "$g")
        sleep 0.15   # moongate and nginx flush their log buffers every 100 ms
        lines=$(wc -l <"$f")
        : >"$f"      # all three open their logs with O_APPEND: truncation is safe
    fi
    local cpu
    cpu=$(awk -v s0="$s0" -v s1="$s1" -v t0="$t0" -v t1="$t1" -v u0="$u0" -v u1="$u1" \
              -v k0="$k0" -v k1="$k1" -v h="$CLK_TCK" -v c0="$c0" -v c1="$c1" 'BEGIN {
        split(c0, a, " "); split(c1, b, " ")
        wall = s1 - s0; gw = (t1 - t0) / h; up = (u1 - u0) / h; wrk = k1 - k0
        if (gw < 0) gw = 0
        busy0 = (b[1] - a[1]) / h; busy1 = (b[2] - a[2]) / h
        other = busy0 + busy1 - wrk - (gw == up ? gw : gw + up)
        if (other < 0) other = 0
        printf "%.3f %.2f %.2f %.2f %.2f %.2f %.1f", wall, gw, up, wrk, busy0, busy1, other / wall * 100 }')
    local wall gw up wk b0 b1
    read -r wall gw up wk b0 b1 FOREIGN <<<"$cpu"
    LINE=$(printf '{"workload":"%s","round":"%s","gateway":"%s","wall_s":%s,"cpu_gw_s":%s,"cpu_up_s":%s,"cpu_wrk_s":%s,"cpu0_busy_s":%s,"cpu1_busy_s":%s,"other_cpu_pct":%s,"log_lines":%s,"wrk":%s}' \
        "$w" "$r" "$g" "$wall" "$gw" "$up" "$wk" "$b0" "$b1" "$FOREIGN" "$lines" "$json")
}

# wsload_as_wrk JSON: wsload's echo result in the shape of report.lua's (messages as
# requests, messages/s as rps; handshake failures as connect errors; protocol errors,
# unexpected closes and messages lost with their connection as read errors; answers that
# were not the message as non2xx), with wsload's own line kept under "wsload".
wsload_as_wrk() {
    luajit -e '
        local cjson = require "cjson"
        local b = cjson.decode(io.read("*a"))
        io.write(cjson.encode({ requests = b.messages, duration_s = b.duration_s, rps = b.rate,
            p50_us = b.p50_us, p90_us = b.p90_us, p99_us = b.p99_us, p999_us = b.p999_us,
            max_us = b.max_us, mean_us = b.mean_us, err_connect = b.err_connect + b.err_handshake,
            err_read = b.err_read + b.err_protocol + b.closes + b.lost, err_write = b.err_write,
            err_timeout = 0, non2xx = b.mismatch, connections = b.connections, open = b.open,
            wsload = b }))' <<<"$1"
}

# measure WORKLOAD ROUND GATEWAY URL SECONDS [wrk args...]: one measured run, appended
# to raw.jsonl. A run during which other processes (a compiler, a test suite) used
# more than NOISE_MAX % of a core is measured again (up to MAX_ATTEMPTS runs) while the
# retry budget (RETRY_BUDGET seconds of re-runs in all) lasts; the raw line keeps
# other_cpu_pct either way.
measure() {
    local attempt=1
    while :; do
        measure_once "$@"
        [ "$2" = warmup ] && return 0
        [ "$1" = RELOAD ] && break   # reloaded workers' CPU is not counted: no noise check
        awk -v f="$FOREIGN" -v m="$NOISE_MAX" 'BEGIN { exit !(f > m) }' || break
        [ $attempt -lt "$MAX_ATTEMPTS" ] && [ $((RETRY_SPENT + $5)) -le "$RETRY_BUDGET" ] || break
        RETRY_SPENT=$((RETRY_SPENT + $5))
        log "$1 round $2 $3: other processes used ${FOREIGN}% of a core during the run: measuring again"
        attempt=$((attempt + 1))
    done
    printf '%s\n' "$LINE" >>"$RAW"
    local unit=req/s
    [ "$1" != W6 ] || unit=msg/s
    printf '  %-7s round %-2s %-10s %9.0f %s  p50 %6s us  p99 %6s us  (other procs %s%%)\n' "$1" "$2" "$3" \
        "$(sed -n 's/.*"rps":\([0-9.]*\).*/\1/p' <<<"$LINE")" "$unit" \
        "$(sed -n 's/.*"p50_us":\([0-9]*\).*/\1/p' <<<"$LINE")" \
        "$(sed -n 's/.*"p99_us":\([0-9]*\).*/\1/p' <<<"$LINE")" "$FOREIGN" >&2
}

# alternate WORKLOAD ROUNDS WARMUP "gateway url"... -- [wrk args]: a warm-up run per
# gateway (none for the upstream), then rounds of A B C A B C ...
alternate() {
    local w=$1 rounds=$2 warm=$3
    shift 3
    local specs=()
    while [ $# -gt 0 ] && [ "$1" != -- ]; do specs+=("$1"); shift; done
    [ $# -gt 0 ] && shift
    local s r
    for s in "${specs[@]}"; do
        [ "$warm" = 0 ] || [[ "${s% *}" = upstream* ]] || measure "$w" warmup ${s% *} ${s#* } "$warm" "$@"
    done
    for ((r = 1; r <= rounds; r++)); do
        for s in "${specs[@]}"; do measure "$w" "$r" ${s% *} ${s#* } "$DURATION" "$@"; done
    done
}

# ----------------------------------------------------------- W9 managed rules --
# W9: the OWASP Core Rule Set (paranoia level 1) on moongate (a managed web ACL rule) and
# on nginx + libnginx-mod-http-modsecurity, the same clean request and the same attack
# requests (lib/w9_attacks.lua) through each. Both must answer 200 to the clean request
# and 403 to every attack before anything is measured.
W9_CLEAN="/bench?q=running+shoes&page=2&sort=price"
W9_HDRS=(-H "Host: bench.example.test" -H "User-Agent: $W5_UA" -H "Accept: */*")
start_w9() {
    "${GW_CPU[@]}" "$MOONGATE" -p "$RUN" -c "$BENCH/conf/moongate-w9.lua" >>"$RUN/logs/moongate.out" 2>&1 &
    PID[moongate]=$!
    "${GW_CPU[@]}" nginx -p "$RUN/" -c "$RUN/nginx-w9.conf" -e logs/nginx-gw.error.log \
        >>"$RUN/logs/nginx-gw.out" 2>&1 &
    PID[nginx-modsec]=$!
    wait_port $P_MG moongate; wait_port $P_NG nginx-modsec
    local g port code
    for g in moongate nginx-modsec; do
        port=$(gw_port "$g")
        code=$(curl -s -o /dev/null -m 5 -w '%{http_code}' "${W9_HDRS[@]}" "http://127.0.0.1:$port$W9_CLEAN" || true)
        [ "$code" = 200 ] || die "$g: GET $W9_CLEAN answered $code, expected 200"
        for bad in "/bench?q=1%27%20OR%201%3D1--" "/bench?q=%3Cscript%3Ealert(1)%3C/script%3E" "/bench?file=../../etc/passwd"; do
            code=$(curl -s -o /dev/null -m 5 -w '%{http_code}' "${W9_HDRS[@]}" "http://127.0.0.1:$port$bad" || true)
            [ "$code" = 403 ] || die "$g: the rule set let GET $bad through ($code, expected 403)"
        done
        code=$(curl -s -o /dev/null -m 5 -w '%{http_code}' -H "Host: bench.example.test" -A "sqlmap/1.7.2#stable" "http://127.0.0.1:$port/bench" || true)
        [ "$code" = 403 ] || die "$g: the rule set let User-Agent sqlmap through ($code, expected 403)"
        code=$(curl -s -o /dev/null -m 5 -w '%{http_code}' "${W9_HDRS[@]}" -H "Content-Type: application/json" \
            --data '{"q":"1 UNION SELECT password FROM users"}' "http://127.0.0.1:$port/bench" || true)
        [ "$code" = 403 ] || die "$g: the rule set let a JSON body with UNION SELECT through ($code, expected 403)"
    done
}

# ------------------------------------------------------------------ reloads --
moongate_has_reload() {
    local out
    out=$("$MOONGATE" reload -c /dev/null 2>&1 || true)
    [[ "$out" != *"unknown argument"* ]]
}

reload_gateway() {   # reload_gateway GATEWAY
    case $1 in
        nginx-lua) nginx -p "$RUN/" -c "$RUN/nginx-w2.conf" -e logs/nginx-gw.error.log -s reload \
                       >>"$RUN/logs/nginx-gw.out" 2>&1 ;;
        haproxy) kill -USR2 "${PID[haproxy]}" ;;
        # SIGHUP is one of moongate's reload triggers (with `moongate reload`, which
        # needs a management listener); it is sent only when `moongate reload` exists.
        moongate) kill -HUP "${PID[moongate]}" ;;
    esac
}

# W2 for RELOAD_DURATION seconds with RELOADS reloads spread over the run.
reload_run() {
    local g=$1 port gap i
    port=$(gw_port "$g")
    gap=$(awk -v d="$RELOAD_DURATION" -v n=$RELOADS 'BEGIN{printf "%.3f", d / (n + 1)}')
    (
        for ((i = 1; i <= RELOADS; i++)); do sleep "$gap"; reload_gateway "$g" || true; done
    ) &
    local reloader=$!
    measure RELOAD 1 "$g" "http://127.0.0.1:$port/bench" "$RELOAD_DURATION" -H "x-api-key: $KEY"
    wait $reloader || true
}

# --------------------------------------------------------------- WebSockets --
# W6 and W7 run on moongate (conf/moongate-w6.lua) and nginx-lua (conf/nginx-w6.conf);
# HAProxy has no WebSocket server to script in Lua, so it sits them out.
ws_url() {
    case $1 in moongate) echo "ws://127.0.0.1:$P_MG/" ;; nginx-lua) echo "ws://127.0.0.1:$P_NG/" ;; esac
}

json_num() { sed -n "s/.*\"$1\":\([0-9.]*\).*/\1/p" <<<"$2"; }   # json_num NAME JSON

# ws_check GATEWAY: before anything is measured, the gateway must answer W6's message with
# the message itself, and a message whose action has no route with something else (AWS's
# Forbidden error message): it routes by action rather than echoing every frame.
ws_check() {
    local g=$1 url out n bad='{"action":"nope","data":"x"}'
    url=$(ws_url "$g")
    out=$("$WSLOAD" --mode echo -c 1 -w 0 -d 0.3 --message "$W6_MESSAGE" --expect "$W6_MESSAGE" "$url" 2>&1 || true)
    n=$(json_num messages "$out")
    [ "${n:-0}" -gt 0 ] && [ "$(json_num errors "$out")" = 0 ] ||
        die "$g: W6's message over $url was not answered with itself: $(tr '\n' ' ' <<<"$out" | cut -c1-400)"
    out=$("$WSLOAD" --mode echo -c 1 -w 0 -d 0.3 --message "$bad" --expect "$bad" "$url" 2>&1 || true)
    n=$(json_num messages "$out")
    [ "${n:-0}" -gt 0 ] && [ "$(json_num mismatch "$out")" -ge "$n" ] ||
        die "$g: a message with an unknown action was echoed or not answered: $(tr '\n' ' ' <<<"$out" | cut -c1-400)"
}

# ws_gateways: WS_GWS = the gateways W6/W7 run: nginx-lua, and moongate when its
# configuration validates (WebSocket APIs are issue 14).
ws_gateways() {
    WS_GWS=(nginx-lua)
    if "$MOONGATE" check -p "$RUN" -c "$BENCH/conf/moongate-w6.lua" >"$RUN/logs/moongate-w6-check.txt" 2>&1; then
        WS_GWS=(moongate nginx-lua)
    else
        log "moongate: conf/moongate-w6.lua does not validate (no WebSocket APIs yet?): see $RUN/logs/moongate-w6-check.txt"
    fi
    local w
    for w in W6 W7; do
        has $w || continue
        [ "${#WS_GWS[@]}" = 2 ] || NOTES+=("$w|moongate|no WebSocket APIs yet (issue 14)")
        NOTES+=("$w|haproxy|not run: HAProxy has no WebSocket server in Lua")
    done
}

start_ws() {   # start_ws GATEWAY...: W6's configuration, then ws_check
    local g
    for g in "$@"; do
        case $g in
            moongate)
                "${GW_CPU[@]}" "$MOONGATE" -p "$RUN" -c "$BENCH/conf/moongate-w6.lua" >>"$RUN/logs/moongate.out" 2>&1 &
                PID[moongate]=$!
                wait_port $P_MG moongate ;;
            nginx-lua)
                "${GW_CPU[@]}" nginx -p "$RUN/" -c "$RUN/nginx-w6.conf" -e logs/nginx-gw.error.log \
                    >>"$RUN/logs/nginx-gw.out" 2>&1 &
                PID[nginx-lua]=$!
                wait_port $P_NG nginx-lua ;;
        esac
        ws_check "$g"
    done
}

rss_kb() {   # VmRSS (kB) of a process and its children (nginx's worker)
    local total=0 p v
    for p in $1 $(ps -o pid= --ppid "$1" 2>/dev/null); do
        v=$(awk '/^VmRSS:/ {print $2}' "/proc/$p/status" 2>/dev/null || true)
        total=$((total + ${v:-0}))
    done
    echo $total
}
tcp_stat() {   # "inuse mem": TCP sockets in use and their buffer pages (/proc/net/sockstat)
    awk '$1 == "TCP:" { for (i = 2; i < NF; i++) { if ($i == "inuse") u = $(i + 1); if ($i == "mem") m = $(i + 1) }
                        print u, m }' /proc/net/sockstat
}
slab_kb() { awk '/^Slab:/ {print $2}' /proc/meminfo; }

# w7_run GATEWAY: reads the gateway's RSS, opens W7_N idle WebSockets to it from wsload
# processes of at most W7_PER_PROCESS connections (over W7_SOURCES source addresses),
# waits until all are open, W7_SETTLE seconds and until the RSS stops moving, reads the
# RSS again, closes them (SIGTERM: close frames) and appends one raw line. The kernel's
# share is read apart: TCP buffer pages from /proc/net/sockstat and the slab
# (/proc/meminfo, machine-wide; both ends of each loopback connection are counted).
w7_run() {
    local g=$1 url gpid left per i=0 k t r0 r1 r2 u0 m0 u1 m1 s0 s1 prev cur
    url=$(ws_url "$g"); gpid=${PID[$g]}
    sleep 1
    r0=$(rss_kb "$gpid"); read -r u0 m0 < <(tcp_stat); s0=$(slab_kb)
    left=$W7_N
    while [ "$left" -gt 0 ]; do
        per=$((left < W7_PER_PROCESS ? left : W7_PER_PROCESS))
        "${WRK_CPU[@]}" "$WSLOAD" --mode idle -c "$per" -d 0 --sources "$W7_SOURCES" --timeout 60 "$url" \
            >"$RUN/w7-$g-$i.out" 2>&1 &
        PID[wsload-$i]=$!
        left=$((left - per)); i=$((i + 1))
    done
    t=0
    while :; do
        local opened=0
        for ((k = 0; k < i; k++)); do
            if grep -qs '^WSLOAD open' "$RUN/w7-$g-$k.out"; then
                opened=$((opened + 1))
            elif ! kill -0 "${PID[wsload-$k]}" 2>/dev/null; then
                die "W7 $g: wsload exited before opening its connections: $(tr '\n' ' ' <"$RUN/w7-$g-$k.out" | cut -c1-300)"
            fi
        done
        [ $opened -lt $i ] || break
        [ $t -lt 1800 ] || die "W7 $g: connections still opening after 180 s (see $RUN/w7-$g-*.out)"
        sleep 0.1; t=$((t + 1))
    done
    sleep "$W7_SETTLE"
    prev=-1000 t=0
    while :; do   # until two readings 0.5 s apart are within 64 kB (at most 10 s)
        cur=$(rss_kb "$gpid")
        [ $((cur - prev)) -gt 64 ] || [ $((prev - cur)) -gt 64 ] || break
        [ $t -lt 20 ] || break
        prev=$cur; sleep 0.5; t=$((t + 1))
    done
    r1=$cur; read -r u1 m1 < <(tcp_stat); s1=$(slab_kb)
    local names=()
    for ((k = 0; k < i; k++)); do names+=("wsload-$k"); done
    stop "${names[@]}"
    sleep 1
    r2=$(rss_kb "$gpid")
    local open=0 errors=0 open_s=0 line
    for ((k = 0; k < i; k++)); do
        line=$(sed -n 's/^BENCH //p' "$RUN/w7-$g-$k.out")
        [ -n "$line" ] || { log "W7 $g: wsload $k gave no result (see $RUN/w7-$g-$k.out)"; continue; }
        open=$((open + $(json_num open "$line")))
        errors=$((errors + $(json_num errors "$line")))
        open_s=$(awk -v a="$open_s" -v b="$(json_num open_s "$line")" 'BEGIN { print (b + 0 > a + 0) ? b + 0 : a }')
    done
    [ "$open" -gt 0 ] || die "W7 $g: no connection was open (see $RUN/w7-$g-*.out)"
    printf '{"workload":"W7","round":"1","gateway":"%s","w7":{"connections":%d,"open":%d,"errors":%d,"processes":%d,"sources":%d,"open_s":%s,"settle_s":%s,"rss_before_kb":%d,"rss_open_kb":%d,"rss_closed_kb":%d,"tcp_inuse_before":%d,"tcp_inuse_open":%d,"tcp_mem_pages_before":%d,"tcp_mem_pages_open":%d,"slab_before_kb":%d,"slab_open_kb":%d,"page_size":%d}}\n' \
        "$g" "$W7_N" "$open" "$errors" "$i" "$W7_SOURCES" "$open_s" "$W7_SETTLE" "$r0" "$r1" "$r2" \
        "$u0" "$u1" "$m0" "$m1" "$s0" "$s1" "$(getconf PAGESIZE)" >>"$RAW"
    log "$(printf '  W7      %-10s %d of %d open, RSS %d -> %d kB: %.0f bytes per connection (user space)' \
        "$g" "$open" "$W7_N" "$r0" "$r1" "$(awk -v a="$r0" -v b="$r1" -v n="$open" 'BEGIN { print (b - a) * 1024 / n }')")"
}

# Waits (up to QUIET_WAIT seconds) until the CPUs are idle for 2 s in a row: another
# engineer's compiler or test suite would otherwise share the gateway's core.
wait_quiet() {
    local deadline=$(($(date +%s) + QUIET_WAIT)) a b busy said=
    while :; do
        a=$(cpu_busy); sleep 2; b=$(cpu_busy)
        busy=$(awk -v a="$a" -v b="$b" -v h="$CLK_TCK" 'BEGIN { split(a, x, " "); split(b, y, " ");
            printf "%.0f", ((y[1] - x[1]) + (y[2] - x[2])) / h / 2 * 100 }')
        [ "$busy" -le 15 ] && return 0
        [ "$(date +%s)" -lt "$deadline" ] || { log "the machine is still busy (${busy}% of a core): measuring anyway"; return 0; }
        [ -n "$said" ] || log "other processes use ${busy}% of a core: waiting up to ${QUIET_WAIT}s for a quiet machine"
        said=1
    done
}

# ---------------------------------------------------------------------- JWT --
# W8: an RSA 2048 and an EC P-256 key (openssl), moongate's JWKS of their public keys (kids
# "rsa" and "ec"), HAProxy's public-key PEMs, and the tokens (python3-jwt through
# tests/e2e/jwt_mint.py), valid for a day: iss, aud, sub, iat, exp. W8_BAD is the RS256
# token with one byte of its signature changed.
W8_DIR=$RUN/jwt
W8_MINT=(/usr/bin/python3 "$ROOT/tests/e2e/jwt_mint.py")
W8_RS="" W8_ES="" W8_BAD=""
w8_prepare() {
    local d=$W8_DIR c
    mkdir -p "$d"
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$d/rsa.pem" 2>/dev/null
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$d/ec.pem" 2>/dev/null
    openssl pkey -in "$d/rsa.pem" -pubout -out "$d/rsa.pub.pem"
    openssl pkey -in "$d/ec.pem" -pubout -out "$d/ec.pub.pem"
    "${W8_MINT[@]}" jwks "$d/jwks.json" "rsa=$d/rsa.pem" "ec=$d/ec.pem"
    c='"defaults":false,"claims":{"iss":"https://idp.test/realm","aud":"bench","sub":"bench-user","iat_in":0,"exp_in":86400}'
    printf '{"rs":{"alg":"RS256","key":"%s","kid":"rsa",%s},"es":{"alg":"ES256","key":"%s","kid":"ec",%s},"bad":{"alg":"RS256","key":"%s","kid":"rsa","tamper":"flip",%s}}' \
        "$d/rsa.pem" "$c" "$d/ec.pem" "$c" "$d/rsa.pem" "$c" | "${W8_MINT[@]}" mint "$d" >"$d/tokens.json"
    w8_token() { /usr/bin/python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$d/tokens.json" "$1"; }
    W8_RS=$(w8_token rs) W8_ES=$(w8_token es) W8_BAD=$(w8_token bad)
}

# w8_check NAME URL: RS256 and ES256 tokens get 200; no token and the bad signature 401.
# Prints nothing and returns 0, or says what failed.
w8_check() {
    local g=$1 url=$2 code t
    for t in "$W8_RS" "$W8_ES"; do
        code=$(curl -s -o /dev/null -m 5 -w '%{http_code}' -H "Authorization: Bearer $t" "$url" || true)
        [ "$code" = 200 ] || { echo "$g: GET $url with a valid ${t:0:36}... answered $code, expected 200"; return 1; }
    done
    code=$(curl -s -o /dev/null -m 5 -w '%{http_code}' "$url" || true)
    [ "$code" = 401 ] || { echo "$g: GET $url without a token answered $code, expected 401"; return 1; }
    code=$(curl -s -o /dev/null -m 5 -w '%{http_code}' -H "Authorization: Bearer $W8_BAD" "$url" || true)
    [ "$code" = 401 ] || { echo "$g: GET $url with a bad signature answered $code, expected 401"; return 1; }
}

# start_w8: HAProxy with conf/haproxy-w8.cfg, and moongate with conf/moongate-w8.lua when it
# validates and verifies tokens (MG_JWT=1); otherwise moongate's W8 rows carry a note.
MG_JWT=0
start_w8() {
    local why=""
    MG_JWT=0
    BENCH_RUN=$RUN "${GW_CPU[@]}" haproxy -W -db -f "$BENCH/conf/haproxy-w8.cfg" \
        >>"$RUN/logs/haproxy-w8.out" 2>>"$RUN/logs/haproxy.err" &
    PID[haproxy]=$!
    wait_port $P_HA haproxy
    why=$(w8_check haproxy "http://127.0.0.1:$P_HA/bench") || die "$why"
    if "$MOONGATE" check -p "$RUN" -c "$BENCH/conf/moongate-w8.lua" >"$RUN/logs/moongate-w8-check.txt" 2>&1; then
        "${GW_CPU[@]}" "$MOONGATE" -p "$RUN" -c "$BENCH/conf/moongate-w8.lua" >>"$RUN/logs/moongate.out" 2>&1 &
        PID[moongate]=$!
        wait_port $P_MG moongate
        if why=$(w8_check moongate "http://127.0.0.1:$P_MG/bench") &&
           why=$(w8_check moongate "http://127.0.0.1:$P_MG/cached"); then
            MG_JWT=1
            return 0
        fi
        log "W8 moongate: $why"
        stop moongate
        why="JWT authorizers do not verify tokens yet (issue 15)"
    else
        log "moongate: conf/moongate-w8.lua does not validate (no JWT authorizers yet?): see $RUN/logs/moongate-w8-check.txt"
        why="no JWT authorizers yet (issue 15)"
    fi
    NOTES+=("W8rs|moongate|$why" "W8es|moongate|$why")
}

# --------------------------------------------------------------------- main --
bash "$BENCH/deps.sh"
[ -x "$MOONGATE" ] || die "$MOONGATE not found: run make all (make bench does)"
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
for p in $P_UP $P_MG $P_NG $P_HA $P_MG_TLS $P_NG_TLS $P_HA_TLS; do
    port_busy $p && die "port $p on 127.0.0.1 is in use (another bench running?)"
done

# shellcheck source=lib/prepare.sh
. "$BENCH/lib/prepare.sh"
prepare_run "$BENCH" "$RUN"
: >"$RAW"

[ "$QUIET_WAIT" = 0 ] || wait_quiet
STARTED=$(date -u +%Y-%m-%dT%H:%M:%SZ)
T_START=$(date +%s)
log "rounds=$ROUNDS duration=${DURATION}s warmup=${WARMUP}s conns=$CONNS threads=1 pin=$PIN workloads=\"$WORKLOADS\""
has() { [[ " $WORKLOADS " == *" $1 "* ]]; }

start_upstream

if has W1; then
    log "W1 plain proxy"
    start_gateways W1
    alternate W1 "$ROUNDS" "$WARMUP" "moongate http://127.0.0.1:$P_MG/bench" "nginx-lua http://127.0.0.1:$P_NG/bench" \
        "haproxy http://127.0.0.1:$P_HA/bench" "upstream http://127.0.0.1:$P_UP/bench" \
        "upstream-1core http://127.0.0.1:$P_UP/bench" --
    stop moongate nginx-lua haproxy
fi

if has CACHE; then
    log "CACHE: W1's route answered from each gateway's response cache (moongate's stage cache, nginx proxy_cache, HAProxy cache)"
    start_gateways CACHE
    for g in moongate nginx-lua haproxy; do   # the entry is there, and it is a hit
        port=$(gw_port "$g")
        hits=$(curl -s -o /dev/null -D - "http://127.0.0.1:$port/bench" | tr -d '\r' | grep -ciE '^(x-cache: hit|x-cache-status: hit|age:)' || true)
        [ "$g" = haproxy ] || [ "$hits" -ge 1 ] || die "$g: the second GET /bench was no cache hit"
    done
    alternate CACHE "$ROUNDS" "$WARMUP" "moongate http://127.0.0.1:$P_MG/bench" "nginx-lua http://127.0.0.1:$P_NG/bench" \
        "haproxy http://127.0.0.1:$P_HA/bench" --
    stop moongate nginx-lua haproxy
fi

if has W5; then
    log "W5 WAF rule set (six Lua rules, none matching)"
    start_gateways W5
    alternate W5 "$W5_ROUNDS" "$WARMUP" "moongate http://127.0.0.1:$P_MG$W5_PATH" \
        "nginx-lua http://127.0.0.1:$P_NG$W5_PATH" "haproxy http://127.0.0.1:$P_HA$W5_PATH" -- -H "User-Agent: $W5_UA"
    stop moongate nginx-lua haproxy
fi

if has W5b; then
    log "W5b no-op Lua hooks (a WAF rule, an authorizer without cache, a log policy) + W2's access log"
    start_gateways W5b
    alternate W5b "$W5_ROUNDS" "$WARMUP" "moongate http://127.0.0.1:$P_MG/bench" \
        "nginx-lua http://127.0.0.1:$P_NG/bench" "haproxy http://127.0.0.1:$P_HA/bench" --
    stop moongate nginx-lua haproxy
fi

# W2obs: W2 on moongate with and without observability (conf/moongate-w2obs.lua: trace
# propagation on every request, OTLP export of OBS_RATIO of them to the upstream, which
# answers 200 to any POST; the metrics scraped every second). Both processes run side by
# side; the rounds alternate between them.
if has W2obs; then
    log "W2obs: W2 with tracing (sample ratio $OBS_RATIO, OTLP export) and a /metrics scrape every second, against W2"
    sed "s/sample_ratio = 0.01/sample_ratio = $OBS_RATIO/" "$BENCH/conf/moongate-w2obs.lua" >"$RUN/moongate-w2obs.lua"
    "${GW_CPU[@]}" "$MOONGATE" -p "$RUN" -c "$BENCH/conf/moongate-w2.lua" >>"$RUN/logs/moongate.out" 2>&1 &
    PID[moongate]=$!
    "${GW_CPU[@]}" "$MOONGATE" -p "$RUN" -c "$RUN/moongate-w2obs.lua" >>"$RUN/logs/moongate-obs.out" 2>&1 &
    PID[moongate-obs]=$!
    wait_port $P_MG moongate; wait_port $P_MG_OBS moongate-obs; wait_port $P_MG_MGMT moongate-obs
    for g in moongate moongate-obs; do
        code=$(curl -s -o /dev/null -m 5 -w '%{http_code}' -H "x-api-key: $KEY" "http://127.0.0.1:$(gw_port $g)/bench" || true)
        [ "$code" = 200 ] || die "$g: GET /bench answered $code, expected 200"
    done
    OBS_TOKEN=$(cat "$RUN/state/management.token")
    metrics=$(curl -s -m 5 -H "Authorization: Bearer $OBS_TOKEN" "http://127.0.0.1:$P_MG_MGMT/metrics" || true)
    [[ "$metrics" == *'moongate_requests_total{api="bench"'* ]] || die "moongate-obs: GET /metrics did not count the request"
    ( while :; do curl -s -o /dev/null -m 5 -H "Authorization: Bearer $OBS_TOKEN" "http://127.0.0.1:$P_MG_MGMT/metrics"; sleep 1; done ) &
    PID[scraper]=$!
    alternate W2obs "$ROUNDS" "$WARMUP" "moongate http://127.0.0.1:$P_MG/bench" \
        "moongate-obs http://127.0.0.1:$P_MG_OBS/bench" -- -H "x-api-key: $KEY"
    stop scraper moongate moongate-obs
fi

# W10: W2 on moongate with and without cluster throttling (conf/moongate-w10.lua: the
# stage's bucket shared by three nodes through one redis-server; wrk loads node 1, the
# others idle). The cluster's node and the plain W2 run side by side; the rounds
# alternate between them.
if has W10; then
    if ! command -v redis-server >/dev/null; then
        log "W10: skipped, no redis-server (make deps)"
    else
        log "W10: W2 with the stage's throttle shared by 3 nodes through Redis, against W2"
        "${GW_CPU[@]}" redis-server --port $P_REDIS --bind 127.0.0.1 --save "" --appendonly no \
            --protected-mode no --dir "$RUN" >>"$RUN/logs/redis.out" 2>&1 &
        PID[redis]=$!
        wait_port $P_REDIS redis
        for n in 2 3; do
            sed -e "s/port = 18086/port = $((P_MG_CL + n - 1))/" -e "s/w10-1/w10-$n/" \
                -e "s/moongate-w10.access.log/moongate-w10-$n.access.log/" \
                "$BENCH/conf/moongate-w10.lua" >"$RUN/moongate-w10-$n.lua"
        done
        "${GW_CPU[@]}" "$MOONGATE" -p "$RUN" -c "$BENCH/conf/moongate-w2.lua" >>"$RUN/logs/moongate.out" 2>&1 &
        PID[moongate]=$!
        "${GW_CPU[@]}" "$MOONGATE" -p "$RUN" -c "$BENCH/conf/moongate-w10.lua" >>"$RUN/logs/moongate-cl.out" 2>&1 &
        PID[moongate-cl]=$!
        "${GW_CPU[@]}" "$MOONGATE" -p "$RUN" -c "$RUN/moongate-w10-2.lua" >>"$RUN/logs/moongate-cl2.out" 2>&1 &
        PID[moongate-cl2]=$!
        "${GW_CPU[@]}" "$MOONGATE" -p "$RUN" -c "$RUN/moongate-w10-3.lua" >>"$RUN/logs/moongate-cl3.out" 2>&1 &
        PID[moongate-cl3]=$!
        wait_port $P_MG moongate; wait_port $P_MG_CL moongate-cl
        wait_port $P_MG_CL2 moongate-cl2; wait_port $P_MG_CL3 moongate-cl3
        for g in moongate moongate-cl; do
            code=$(curl -s -o /dev/null -m 5 -w '%{http_code}' -H "x-api-key: $KEY" "http://127.0.0.1:$(gw_port $g)/bench" || true)
            [ "$code" = 200 ] || die "$g: GET /bench answered $code, expected 200"
        done
        i=0
        until grep -q "is reachable" "$RUN/logs/moongate-cl.out"; do
            [ $i -lt 50 ] || die "moongate-cl: Redis is not reachable (see $RUN/logs/moongate-cl.out)"
            sleep 0.1; i=$((i + 1))
        done
        alternate W10 "$ROUNDS" "$WARMUP" "moongate http://127.0.0.1:$P_MG/bench" \
            "moongate-cl http://127.0.0.1:$P_MG_CL/bench" -- -H "x-api-key: $KEY"
        stop moongate moongate-cl moongate-cl2 moongate-cl3 redis
    fi
fi

if has W2 || has W3 || has W4 || has RELOAD; then
    start_gateways W2
    if has W2; then
        log "W2 policy"
        alternate W2 "$ROUNDS" "$WARMUP" "moongate http://127.0.0.1:$P_MG/bench" "nginx-lua http://127.0.0.1:$P_NG/bench" \
            "haproxy http://127.0.0.1:$P_HA/bench" -- -H "x-api-key: $KEY"
    fi
    if has W3 || has W4; then
        moongate_tls
        TLS_SPECS=()
        if [ "$MG_TLS" = 1 ]; then
            TLS_SPECS+=("moongate https://127.0.0.1:$P_MG_TLS/bench")
        else
            NOTES+=("W3|moongate|no TLS yet (issue 4)" "W4|moongate|no TLS yet (issue 4)")
        fi
        TLS_SPECS+=("nginx-lua https://127.0.0.1:$P_NG_TLS/bench" "haproxy https://127.0.0.1:$P_HA_TLS/bench")
    fi
    if has W3; then
        log "W3 TLS keep-alive (W2 over TLS 1.3, ECDSA P-256)"
        DURATION=$TLS_DURATION alternate W3 "$TLS_ROUNDS" "$TLS_WARMUP" "${TLS_SPECS[@]}" -- -H "x-api-key: $KEY"
    fi
    if has W4; then
        log "W4 TLS handshakes (a new TLS 1.3 connection per request)"
        DURATION=$TLS_DURATION alternate W4 "$TLS_ROUNDS" "$TLS_WARMUP" "${TLS_SPECS[@]}" -- -H "x-api-key: $KEY" -H "Connection: close"
    fi
    if has RELOAD; then
        log "RELOAD: W2 with $RELOADS reloads during ${RELOAD_DURATION}s"
        if moongate_has_reload && [ -z "$MG_PARTIAL" ]; then
            reload_run moongate
        else
            NOTES+=("RELOAD|moongate|reload not yet available (issue 3)")
        fi
        reload_run nginx-lua
        reload_run haproxy
    fi
    stop moongate nginx-lua haproxy
fi

if has W6 || has W7; then
    [ -x "$WSLOAD" ] || die "$WSLOAD not found: run make bench-wsload (make bench does)"
    ws_gateways
fi
if has W6; then
    log "W6 WebSocket messages: JSON routed by action to a Lua handler that answers, $W6_CONNS connections"
    start_ws "${WS_GWS[@]}"
    W6_SPECS=()
    for g in "${WS_GWS[@]}"; do W6_SPECS+=("$g $(ws_url "$g")"); done
    alternate W6 "$W5_ROUNDS" "$WARMUP" "${W6_SPECS[@]}" --
    stop moongate nginx-lua
fi
if has W7; then
    # Each gateway holds W7_N connections and a few files of its own under the open-files
    # limit (the hard limit: run.sh raised the soft one to it).
    W7_N=$W7_CONNS
    if [ $((W7_N + 64)) -gt "$(ulimit -n)" ]; then
        W7_N=$(($(ulimit -n) - 64))
        log "W7: $W7_CONNS connections do not fit under the open-files limit ($(ulimit -n)): $W7_N"
        NOTES+=("W7|all|$W7_N connections, not $W7_CONNS: the open-files hard limit is $(ulimit -Hn)")
    fi
    log "W7 idle WebSockets: $W7_N per gateway over $W7_SOURCES source addresses"
    for g in "${WS_GWS[@]}"; do
        start_ws "$g"
        w7_run "$g"
        stop "$g"
    done
fi
if has W8; then
    log "W8 JWT authorizer: RS256 / ES256 tokens verified per request (moongate cache off and on, HAProxy jwt_verify)"
    w8_prepare
    start_w8
    for a in RS ES; do
        W8_SPECS=()
        [ "$MG_JWT" = 0 ] || W8_SPECS+=("moongate http://127.0.0.1:$P_MG/bench" "moongate-cache http://127.0.0.1:$P_MG/cached")
        W8_SPECS+=("haproxy http://127.0.0.1:$P_HA/bench")
        tok=W8_$a
        alternate "W8${a,,}" "$W5_ROUNDS" "$WARMUP" "${W8_SPECS[@]}" -- -H "Authorization: Bearer ${!tok}"
    done
    stop moongate haproxy
fi
if has W9; then
    log "W9 managed rules: OWASP CRS 3.3 (paranoia 1) on moongate and on nginx + ModSecurity, clean and attack traffic"
    start_w9
    alternate W9clean "$W5_ROUNDS" "$WARMUP" "moongate http://127.0.0.1:$P_MG$W9_CLEAN" \
        "nginx-modsec http://127.0.0.1:$P_NG$W9_CLEAN" -- "${W9_HDRS[@]}"
    BENCH_LIB=$BENCH/lib alternate W9attack "$W5_ROUNDS" "$WARMUP" "moongate http://127.0.0.1:$P_MG/bench" \
        "nginx-modsec http://127.0.0.1:$P_NG/bench" -- -s "$BENCH/lib/w9_attacks.lua"
    stop moongate nginx-modsec
fi
stop upstream

ELAPSED=$(($(date +%s) - T_START))
{
    printf '{"started":"%s","elapsed_s":%d,' "$STARTED" "$ELAPSED"
    printf '"command":"%s",' "$([ -n "$QUICK" ] && echo "make bench QUICK=1" || echo "make bench")"
    printf '"settings":{"rounds":%d,"w5_rounds":%d,"tls_rounds":%d,"duration_s":%s,"warmup_s":%s,"tls_warmup_s":%s,"tls_duration_s":%s,"connections":%d,"wrk_threads":1,"pin":"%s","reloads":%d,"reload_duration_s":%s,"noise_max_pct":%s,' \
        "$ROUNDS" "$W5_ROUNDS" "$TLS_ROUNDS" "$DURATION" "$WARMUP" "$TLS_WARMUP" "$TLS_DURATION" "$CONNS" "$PIN" "$RELOADS" "$RELOAD_DURATION" "$NOISE_MAX"
    printf '"w6_connections":%d,"w6_message_bytes":%d,"w7_connections":%d,"w7_sources":%d,"w7_per_process":%d,"w7_settle_s":%s},' \
        "$W6_CONNS" "${#W6_MESSAGE}" "${W7_N:-$W7_CONNS}" "$W7_SOURCES" "$W7_PER_PROCESS" "$W7_SETTLE"
    printf '"machine":{"cpu":"%s","cores":%d,"kernel":"%s","memory_mb":%d},' \
        "$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)" "$(nproc)" "$(uname -r)" \
        "$(awk '/MemTotal/ {print int($2 / 1024)}' /proc/meminfo)"
    printf '"versions":{"moongate":"%s","moongate_commit":"%s","nginx":"%s","lua_nginx_module":"%s","lua_resty_websocket":"%s","haproxy":"%s","wrk":"%s"},' \
        "$("$MOONGATE" version | awk '{print $2}')" \
        "${MOONGATE_COMMIT:-$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$ROOT" diff --quiet HEAD -- runtime lua 2>/dev/null || echo '+dirty')}" \
        "$(nginx -v 2>&1 | sed 's/.*nginx\///')" \
        "$(dpkg-query -W -f='${Version}' libnginx-mod-http-lua 2>/dev/null)" \
        "$(dpkg-query -W -f='${Version}' lua-nginx-websocket 2>/dev/null)" \
        "$(haproxy -v | head -1 | awk '{print $3}')" \
        "$(dpkg-query -W -f='${Version}' wrk 2>/dev/null)"
    printf '"notes":['
    sep=""
    for n in "${NOTES[@]}"; do
        IFS='|' read -r nw ng nt <<<"$n"
        printf '%s{"workload":"%s","gateway":"%s","note":"%s"}' "$sep" "$nw" "$ng" "$nt"
        sep=","
    done
    printf ']}\n'
} >"$RUN/meta.json"

luajit "$BENCH/lib/summarize.lua" "$RUN/meta.json" "$RAW" "$RESULTS/latest.json"
