#!/usr/bin/env bash
# Smoke test of the WebSocket load generator (bench/README.md, "WebSocket load generator"):
# starts `wsload --serve` (an echo server that pings every second), runs echo for 2 s with
# 50 connections (every reply must be the message sent: --expect) and idle for 2 s with
# 500 connections over 4 source addresses, and fails unless messages flowed, pings were
# answered and no error happened.
# Usage: bash bench/wsload_check.sh  (BUILD=build; builds build/bench/wsload when missing)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
WSLOAD=$BUILD/bench/wsload
[ -x "$WSLOAD" ] || make --no-print-directory -j1 BUILD="$BUILD" bench-wsload >/dev/null

tmp=$(mktemp -d)
srv_pid=
cleanup() {
    [ -n "$srv_pid" ] && kill "$srv_pid" 2>/dev/null && wait "$srv_pid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT

"$WSLOAD" --serve 0 --ping 1 >"$tmp/serve.out" 2>&1 &
srv_pid=$!
port=
for _ in $(seq 50); do
    port=$(sed -n 's/^SERVE listening 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$tmp/serve.out")
    [ -n "$port" ] && break
    sleep 0.1
done
[ -n "$port" ] || { echo "FAIL: wsload --serve did not start"; cat "$tmp/serve.out"; exit 1; }
url="ws://127.0.0.1:$port/"

# field NAME JSON: the number NAME in a BENCH/SERVE line.
field() { sed -n "s/.*\"$1\":\([0-9.]*\).*/\1/p" <<<"$2"; }
fail=0
check() { # check LABEL CONDITION-DESCRIPTION TEST...
    local label=$1 what=$2
    shift 2
    if "$@"; then echo "  ok   $label: $what"; else echo "  FAIL $label: $what"; fail=1; fi
}

msg='{"action":"echo","data":"hello"}'
echo_line=$("$WSLOAD" --mode echo -c 50 -w 0.5 -d 2 --message "$msg" --expect "$msg" "$url" | grep '^BENCH ')
echo "echo: $echo_line"
check echo "messages > 0" test "$(field messages "$echo_line")" -gt 0
check echo "errors = 0, every reply the message sent" test "$(field errors "$echo_line")" -eq 0 -a "$(field mismatch "$echo_line")" -eq 0
check echo "all 50 open" test "$(field open "$echo_line")" -eq 50

idle_out=$("$WSLOAD" --mode idle -c 500 -d 2 --sources 4 "$url")
idle_line=$(grep '^BENCH ' <<<"$idle_out")
echo "idle: $(grep '^WSLOAD ' <<<"$idle_out")"
echo "idle: $idle_line"
check idle "all 500 open" test "$(field open "$idle_line")" -eq 500
check idle "pings answered > 0" test "$(field pings "$idle_line")" -gt 0
check idle "errors = 0, none lost" test "$(field errors "$idle_line")" -eq 0 -a "$(field lost "$idle_line")" -eq 0

kill -TERM "$srv_pid"
wait "$srv_pid" || true
srv_pid=
serve_line=$(grep '^SERVE {' "$tmp/serve.out")
echo "serve: $serve_line"
check serve "every connection closed with a close frame" test "$(field closes "$serve_line")" -eq 550
check serve "pongs received > 0, errors = 0" test "$(field pongs "$serve_line")" -gt 0 -a "$(field errors "$serve_line")" -eq 0

[ "$fail" = 0 ] && echo "wsload_check: PASS" || { echo "wsload_check: FAIL"; exit 1; }
