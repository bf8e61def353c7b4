#include "base/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>

int mgw_log_level = MGW_LOG_INFO;
static _Thread_local int worker_id;

void mgw_log_set_worker(int id)
{
    worker_id = id;
}

void mgw_log(int level, const char *fmt, ...)
{
    static const char *names[] = {"error", "warn", "info", "debug"};
    if (level > mgw_log_level) return;
    char line[2048], ts[32];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(ts, sizeof(ts), "%Y/%m/%d %H:%M:%S", &tm);
    int n = worker_id
                ? snprintf(line, sizeof(line), "%s [%s] worker %d: ", ts, names[level], worker_id)
                : snprintf(line, sizeof(line), "%s [%s] main: ", ts, names[level]);
    va_list ap;
    va_start(ap, fmt);
    if (n < (int)sizeof(line)) n += vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
    va_end(ap);
    if (n >= (int)sizeof(line) - 1) n = (int)sizeof(line) - 2;
    line[n++] = '\n';
    /* One fwrite per line: stdio locks the stream, so lines of threads never interleave. */
    fwrite(line, 1, (size_t)n, stderr);
}
