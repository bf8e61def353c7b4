# prepare_run BENCH RUN: a fresh run directory for bench/run.sh and bench/ab.sh: logs/,
# the configurations nginx reads (it resolves relative certificate paths against a
# configuration's directory, so they are copied next to the run's files), W5's rules,
# W5b's no-op hooks and W6's handler on every gateway's module path (bench.bench_waf,
# bench.bench_noop, bench.ws_echo, and moongate's policies/bench/*.lua), and a P-256
# certificate in tls/.
prepare_run() {
    local bench=$1 run=$2
    rm -rf "$run"
    mkdir -p "$run/logs" "$run/tls" "$run/policies/bench"
    cp "$bench/conf/upstream.nginx.conf" "$bench/conf/nginx-w1.conf" "$bench/conf/nginx-w2.conf" \
        "$bench/conf/nginx-w5.conf" "$bench/conf/nginx-w5b.conf" "$bench/conf/nginx-w6.conf" \
        "$bench/conf/nginx-cache.conf" "$bench/conf/nginx-w9.conf" "$run/"
    cp "$bench"/conf/waf/*.lua "$bench"/conf/noop/*.lua "$bench"/conf/ws/*.lua "$run/policies/bench/"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 -subj /CN=localhost \
        -keyout "$run/tls/bench.key" -out "$run/tls/bench.crt" >/dev/null 2>&1
    cat "$run/tls/bench.crt" "$run/tls/bench.key" >"$run/tls/bench.pem"
}
