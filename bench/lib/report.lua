-- wrk script: only done() is defined, so wrk's request loop stays in C. Prints one
-- line "BENCH {json}" with the rate, latency percentiles (microseconds) and errors.
-- wrk's errors.status counts responses with status > 399 (reported as non2xx:
-- a gateway that answers 3xx here is misconfigured anyway).
done = function(summary, latency, requests)
    local e = summary.errors
    local secs = summary.duration / 1e6
    io.write(string.format(
        'BENCH {"requests":%d,"duration_s":%.3f,"rps":%.1f,"bytes":%d,' ..
        '"p50_us":%d,"p90_us":%d,"p99_us":%d,"p999_us":%d,"max_us":%d,"mean_us":%.1f,' ..
        '"err_connect":%d,"err_read":%d,"err_write":%d,"err_timeout":%d,"non2xx":%d}\n',
        summary.requests, secs, summary.requests / secs, summary.bytes,
        latency:percentile(50), latency:percentile(90), latency:percentile(99),
        latency:percentile(99.9), latency.max, latency.mean,
        e.connect, e.read, e.write, e.timeout, e.status))
end
