/* The Prometheus text exposition writer (see prom.h). */
#include "base/prom.h"

#include <string.h>

void mgw_prom_escape(mgw_buf_t *b, const char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        size_t run = i;
        while (run < n && s[run] != '\\' && s[run] != '"' && s[run] != '\n')
            run++;
        if (run > i) mgw_buf_add(b, s + i, run - i);
        if (run == n) break;
        mgw_buf_add(b, s[run] == '\\' ? "\\\\" : s[run] == '"' ? "\\\"" : "\\n", 2);
        i = run + 1;
    }
}

/* HELP text escapes \ and line feeds only (a quote stays as it is). */
static void help_escape(mgw_buf_t *b, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\')
            mgw_buf_add(b, "\\\\", 2);
        else if (*s == '\n')
            mgw_buf_add(b, "\\n", 2);
        else
            mgw_buf_addc(b, *s);
    }
}

void mgw_prom_family(mgw_buf_t *b, const char *name, const char *type, const char *help)
{
    mgw_buf_adds(b, "# HELP ");
    mgw_buf_adds(b, name);
    mgw_buf_addc(b, ' ');
    help_escape(b, help);
    mgw_buf_adds(b, "\n# TYPE ");
    mgw_buf_adds(b, name);
    mgw_buf_addc(b, ' ');
    mgw_buf_adds(b, type);
    mgw_buf_addc(b, '\n');
}

void mgw_prom_label(mgw_buf_t *b, const char *name, const char *value)
{
    if (b->n) mgw_buf_addc(b, ',');
    mgw_buf_adds(b, name);
    mgw_buf_add(b, "=\"", 2);
    mgw_prom_escape(b, value, strlen(value));
    mgw_buf_addc(b, '"');
}

/* Appends n bytes to b, which has room for them (reserved by the caller). */
static inline void put(mgw_buf_t *b, const void *p, size_t n)
{
    if (n) memcpy(b->p + b->n, p, n); /* p may be NULL when n is 0 */
    b->n += n;
}

/* Decimal digits of v at the end of t[24]; returns where they start. */
static char *digits(char t[24], uint64_t v)
{
    return mgw_u64_digits(t + 24, v);
}

/*
 * One sample line: name, suffix, {labels, extra} (no braces when both are empty), the
 * value (v, or v / 10^9 when nano) and a line feed. Room for the whole line is reserved
 * once: a scrape writes tens of thousands of lines. negative: a minus sign before v.
 */
static void line(mgw_buf_t *b, const char *name, const char *suffix, const char *labels, size_t nl,
                 const char *extra, uint64_t v, int nano, int negative)
{
    size_t nn = strlen(name), ns = suffix ? strlen(suffix) : 0, ne = extra ? strlen(extra) : 0;
    mgw_buf_reserve(b, nn + ns + nl + ne + 4 + 32);
    put(b, name, nn);
    put(b, suffix, ns);
    if (nl || ne) {
        put(b, "{", 1);
        put(b, labels, nl);
        if (nl && ne) put(b, ",", 1);
        put(b, extra, ne);
        put(b, "}", 1);
    }
    char t[24], *p = digits(t, nano ? v / 1000000000u : v);
    put(b, negative ? " -" : " ", negative ? 2 : 1);
    put(b, p, (size_t)(t + 24 - p));
    if (nano) {
        char f[10];
        uint64_t frac = v % 1000000000u;
        f[0] = '.';
        for (int i = 9; i >= 1; i--) {
            f[i] = (char)('0' + frac % 10);
            frac /= 10;
        }
        put(b, f, 10);
    }
    put(b, "\n", 1);
    b->p[b->n] = '\0';
}

void mgw_prom_u64(mgw_buf_t *b, const char *name, const char *labels, size_t nl, uint64_t v)
{
    line(b, name, NULL, labels, nl, NULL, v, 0, 0);
}

void mgw_prom_i64(mgw_buf_t *b, const char *name, const char *labels, size_t nl, int64_t v)
{
    line(b, name, NULL, labels, nl, NULL, v < 0 ? 0 - (uint64_t)v : (uint64_t)v, 0, v < 0);
}

void mgw_prom_nano(mgw_buf_t *b, const char *name, const char *labels, size_t nl, uint64_t v)
{
    line(b, name, NULL, labels, nl, NULL, v, 1, 0);
}

void mgw_prom_histogram(mgw_buf_t *b, const char *name, const char *labels, size_t nl,
                        const char *const *le, int nb, const uint64_t *counts, uint64_t sum_nano)
{
    uint64_t cum = 0;
    char lev[48];
    for (int i = 0; i <= nb; i++) {
        cum += counts[i];
        const char *v = i < nb ? le[i] : "+Inf";
        size_t n = strlen(v);
        if (n > sizeof(lev) - 6) n = sizeof(lev) - 6;
        memcpy(lev, "le=\"", 4);
        memcpy(lev + 4, v, n);
        memcpy(lev + 4 + n, "\"", 2);
        line(b, name, "_bucket", labels, nl, lev, cum, 0, 0);
    }
    line(b, name, "_sum", labels, nl, NULL, sum_nano, 1, 0);
    line(b, name, "_count", labels, nl, NULL, cum, 0, 0);
}
