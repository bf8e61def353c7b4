#!/usr/bin/env bash
# Runs the libFuzzer targets built in $BUILD/fuzz (make fuzz-build).
#   run.sh quick  every target on its seed corpus and crashers (tests/fuzz/corpus/NAME,
#                 tests/fuzz/crashers/NAME), then FUZZ_QUICK_S seconds (default 3) of
#                 fuzzing; prints "ok - fuzz_NAME" / "not ok - fuzz_NAME" and ends with
#                 "N passed, N failed" (what `make test` counts)
#   run.sh long   every target for FUZZ_S seconds (default 60), growing the working
#                 corpus $BUILD/fuzz/corpus/NAME; prints each target's execution count
# tests/fuzz/NAME.dict, when there is one, is the target's dictionary.
# FUZZ_TARGETS="http path" picks targets. Crashes are written to $BUILD/fuzz/artifacts/NAME/.
set -u
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
mode=${1:-quick}
targets=${FUZZ_TARGETS:-$(for b in "$BUILD"/fuzz/fuzz_*; do [ -x "$b" ] && basename "$b" | sed 's/^fuzz_//'; done)}
passed=0
failed=0
log=$(mktemp)
work=$(mktemp -d)
trap 'rm -rf "$log" "$work"' EXIT

for t in $targets; do
    bin=$BUILD/fuzz/fuzz_$t
    art=$BUILD/fuzz/artifacts/$t/
    mkdir -p "$art" tests/fuzz/corpus/"$t" tests/fuzz/crashers/"$t"
    if [ "$mode" = long ]; then
        corpus=$BUILD/fuzz/corpus/$t
        mkdir -p "$corpus"
        secs=${FUZZ_S:-60}
    else
        corpus=$work/$t
        mkdir -p "$corpus"
        secs=${FUZZ_QUICK_S:-3}
    fi
    dict=()
    [ -f tests/fuzz/"$t".dict ] && dict=(-dict=tests/fuzz/"$t".dict)
    "$bin" "${dict[@]}" -max_total_time="$secs" -timeout=25 -print_final_stats=1 -artifact_prefix="$art" \
        "$corpus" tests/fuzz/corpus/"$t" tests/fuzz/crashers/"$t" >"$log" 2>&1
    rc=$?
    runs=$(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}')
    if [ "$rc" -eq 0 ]; then
        passed=$((passed + 1))
        echo "ok - fuzz_$t (${runs:-?} executions in ${secs}s)"
    else
        failed=$((failed + 1))
        grep -E 'ERROR|FUZZ_CHECK|SUMMARY|Test unit written|^    #[0-9]+ ' "$log" | head -30
        echo "not ok - fuzz_$t (exit $rc; see $art)"
    fi
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
