#!/usr/bin/env bash
# The layering test (README "Layout"): a runtime file calls only functions of its own
# layer and of the layers below it. Reads the symbols of the built objects
# ($BUILD/runtime/LAYER/*.o): every undefined mgw_* symbol an object uses is looked up
# in the objects that define it, and a definition in a higher layer is a violation.
# Includes are checked the same way: a runtime file includes only headers of its own
# layer and below. Prints TAP, one test per layer.
set -u
BUILD=${BUILD:-build}
LAYERS=(base conf gw net http cluster auth ws lua ctl)
cd "$(dirname "$0")/../.." || exit 2

rank() {
    local i
    for i in "${!LAYERS[@]}"; do [ "${LAYERS[$i]}" = "$1" ] && { echo "$i"; return; }; done
    echo 99
}

declare -A def_layer def_file
for o in "$BUILD"/runtime/*/*.o; do
    layer=$(basename "$(dirname "$o")")
    while read -r sym; do
        def_layer[$sym]=$layer
        def_file[$sym]=${o#"$BUILD"/runtime/}
    done < <(nm --defined-only -g "$o" | awk '$3 ~ /^mgw/ {print $3}')
done

n=0; failed=0
for layer in "${LAYERS[@]}"; do
    [ -d "runtime/$layer" ] || continue
    n=$((n + 1))
    r=$(rank "$layer")
    bad=""
    for o in "$BUILD/runtime/$layer"/*.o; do
        [ -e "$o" ] || continue
        while read -r sym; do
            d=${def_layer[$sym]:-}
            [ -n "$d" ] || continue
            if [ "$(rank "$d")" -gt "$r" ]; then
                bad+="    ${o#"$BUILD"/runtime/} calls $sym (${def_file[$sym]})"$'\n'
            fi
        done < <(nm -u "$o" | awk '$2 ~ /^mgw/ {print $2}')
    done
    for f in runtime/"$layer"/*.[ch]; do
        while read -r inc; do
            il=${inc%%/*}
            if [ "$(rank "$il")" -gt "$r" ] && [ "$(rank "$il")" -ne 99 ]; then
                bad+="    ${f#runtime/} includes $inc"$'\n'
            fi
        done < <(sed -n 's/^#include "\([a-z]*\/[^"]*\)".*/\1/p' "$f")
    done
    if [ -z "$bad" ]; then
        echo "ok $n - layer $layer calls and includes only layers below it"
    else
        failed=$((failed + 1))
        echo "not ok $n - layer $layer reaches a layer above it:"
        printf '%s' "$bad" | sort -u | sed 's/^/#/'
    fi
done
echo "$((n - failed)) passed, $failed failed"
[ "$failed" -eq 0 ]
