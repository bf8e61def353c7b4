#include "base/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

int mgw_log_level = MGW_LOG_INFO;
static int log_json; /* written by the main thread at a reload, read by every thread */
static _Thread_local int worker_id;
static const char *const names[] = {"error", "warn", "info", "debug"};

void mgw_log_set_worker(int id)
{
    worker_id = id;
}

int mgw_log_level_named(const char *name)
{
    for (int i = 0; i < (int)(sizeof(names) / sizeof(names[0])); i++)
        if (strcmp(names[i], name) == 0) return i;
    return MGW_LOG_INFO;
}

void mgw_log_configure(int level, int json)
{
    __atomic_store_n(&mgw_log_level, level, __ATOMIC_RELAXED);
    __atomic_store_n(&log_json, json, __ATOMIC_RELAXED);
}

/* The message as a JSON string's contents (control characters escaped, invalid UTF-8
 * kept as it is: the line stays one line) into line[n..cap). */
static int add_json_text(char *line, int n, int cap, const char *s)
{
    for (; *s && n < cap - 10; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            line[n++] = '\\';
            line[n++] = (char)c;
        } else if (c < 0x20) {
            n += snprintf(line + n, (size_t)(cap - n), "\\u%04x", c);
        } else {
            line[n++] = (char)c;
        }
    }
    return n;
}

void mgw_log(int level, const char *fmt, ...)
{
    if (level > __atomic_load_n(&mgw_log_level, __ATOMIC_RELAXED)) return;
    char line[2048], msg[1536], ts[32];
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    struct tm tm;
    gmtime_r(&now.tv_sec, &tm);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    int n;
    if (__atomic_load_n(&log_json, __ATOMIC_RELAXED)) {
        strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
        n = snprintf(line, sizeof(line),
                     "{\"time\":\"%s.%03ldZ\",\"level\":\"%s\",\"worker\":%d,\"message\":\"", ts,
                     now.tv_nsec / 1000000, names[level], worker_id);
        n = add_json_text(line, n, (int)sizeof(line), msg);
        n += snprintf(line + n, sizeof(line) - (size_t)n, "\"}");
    } else {
        strftime(ts, sizeof(ts), "%Y/%m/%d %H:%M:%S", &tm);
        n = worker_id ? snprintf(line, sizeof(line), "%s [%s] worker %d: %s", ts, names[level],
                                 worker_id, msg)
                      : snprintf(line, sizeof(line), "%s [%s] main: %s", ts, names[level], msg);
    }
    if (n >= (int)sizeof(line) - 1) n = (int)sizeof(line) - 2;
    line[n++] = '\n';
    /* One fwrite per line: stdio locks the stream, so lines of threads never interleave. */
    fwrite(line, 1, (size_t)n, stderr);
}
