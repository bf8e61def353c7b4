#!/usr/bin/env bash
# Runs every test suite and ends with one line: "N passed, N failed".
#   unit  C unit tests (build/tests/LAYER/test_*)
#   spec  busted specs of the Lua modules and policies (spec/), no gateway running
#   e2e   end-to-end busted specs that start build/moongate (tests/e2e/)
#   layers  the layering test (tests/layers/check.sh): one test per runtime layer, which
#         fails when a file of the layer calls or includes a layer above it
#   fuzz  each libFuzzer target (build/fuzz/fuzz_*) on its seeds and crashers, then a few
#         seconds of fuzzing: one test per target (tests/fuzz/run.sh)
# SUITES picks a subset ("unit e2e" for the sanitizer build). BUILD picks the build dir.
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
SUITES=${SUITES:-"unit layers spec e2e fuzz"}
export MOONGATE_BIN=${MOONGATE_BIN:-$PWD/$BUILD/moongate}
export MOONGATE_UPSTREAM_BIN=${MOONGATE_UPSTREAM_BIN:-$PWD/$BUILD/test-upstream}
passed=0
failed=0
out=$(mktemp)
trap 'rm -f "$out"' EXIT

# Adds the ok / not ok lines of TAP output in $out; a runner that failed without
# reporting a failing test still counts as one failure.
count_tap() {
    local rc=$1 p f
    p=$(grep -cE '^ok [0-9]+' "$out")
    f=$(grep -cE '^not ok [0-9]+' "$out")
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
    passed=$((passed + p)); failed=$((failed + f))
}

for suite in $SUITES; do
    echo "== $suite"
    case $suite in
    unit)
        for t in "$BUILD"/tests/*/test_*; do
            [ -x "$t" ] || continue
            "$t" >"$out" 2>&1
            rc=$?
            grep -vE '^ok - ' "$out"
            line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$out" | tail -1)
            p=$(echo "$line" | awk '{print $1}'); f=$(echo "$line" | awk '{print $3}')
            p=${p:-0}; f=${f:-0}
            if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; echo "$t exited $rc"; fi
            echo "$(basename "$t"): $p passed, $f failed"
            passed=$((passed + p)); failed=$((failed + f))
        done
        ;;
    spec)
        busted --lua=luajit -o TAP >"$out" 2>&1
        rc=$?
        grep -vE '^ok [0-9]+' "$out"
        count_tap $rc
        ;;
    e2e)
        busted --lua=luajit --run=e2e -o TAP >"$out" 2>&1
        rc=$?
        grep -vE '^ok [0-9]+' "$out"
        count_tap $rc
        ;;
    layers)
        BUILD=$BUILD bash tests/layers/check.sh >"$out" 2>&1
        rc=$?
        grep -vE '^ok [0-9]+' "$out" | grep -vE '^[0-9]+ passed, [0-9]+ failed$'
        count_tap $rc
        ;;
    fuzz)
        BUILD=$BUILD bash tests/fuzz/run.sh quick >"$out" 2>&1
        rc=$?
        grep -vE '^[0-9]+ passed, [0-9]+ failed$' "$out"
        line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$out" | tail -1)
        p=$(echo "$line" | awk '{print $1}'); f=$(echo "$line" | awk '{print $3}')
        p=${p:-0}; f=${f:-0}
        if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
        passed=$((passed + p)); failed=$((failed + f))
        ;;
    esac
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
