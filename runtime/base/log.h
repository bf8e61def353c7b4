/* The error log: one line per event on standard error (text, or JSON objects), safe to
 * call from any thread. */
#ifndef MGW_LOG_H
#define MGW_LOG_H

enum { MGW_LOG_ERROR, MGW_LOG_WARN, MGW_LOG_INFO, MGW_LOG_DEBUG };

/* Messages above this level are dropped (default MGW_LOG_INFO). */
extern int mgw_log_level;

void mgw_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define mgw_log_error(...) mgw_log(MGW_LOG_ERROR, __VA_ARGS__)
#define mgw_log_warn(...) mgw_log(MGW_LOG_WARN, __VA_ARGS__)
#define mgw_log_info(...) mgw_log(MGW_LOG_INFO, __VA_ARGS__)

/* The level of a name ("error", "warn", "info", "debug"; anything else: info). */
int mgw_log_level_named(const char *name);
/* Sets the level and the format (json: one JSON object per line) for every thread. */
void mgw_log_configure(int level, int json);

/* The calling thread's worker number for log lines (0 = main thread). */
void mgw_log_set_worker(int id);

#endif
