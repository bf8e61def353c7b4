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

/* Decimal digits of v at the end of t[24]; returns where they start. */
static char *digits(char t[24], uint64_t v)
{
    char *p = t + 24;
    do {
        *--p = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    return p;
}

/* "name{labels" (the caller closes the braces) or "name" when there are no labels. */
static void start(mgw_buf_t *b, const char *name, const char *suffix, const char *labels, size_t nl)
{
    mgw_buf_adds(b, name);
    if (suffix) mgw_buf_adds(b, suffix);
    if (nl) {
        mgw_buf_addc(b, '{');
        mgw_buf_add(b, labels, nl);
    }
}

static void value_u64(mgw_buf_t *b, uint64_t v)
{
    char t[24], *p = digits(t, v);
    mgw_buf_addc(b, ' ');
    mgw_buf_add(b, p, (size_t)(t + 24 - p));
    mgw_buf_addc(b, '\n');
}

static void value_nano(mgw_buf_t *b, uint64_t v)
{
    char t[24], *p = digits(t, v / 1000000000u);
    mgw_buf_addc(b, ' ');
    mgw_buf_add(b, p, (size_t)(t + 24 - p));
    char f[10];
    uint64_t frac = v % 1000000000u;
    f[0] = '.';
    for (int i = 9; i >= 1; i--) {
        f[i] = (char)('0' + frac % 10);
        frac /= 10;
    }
    mgw_buf_add(b, f, 10);
    mgw_buf_addc(b, '\n');
}

void mgw_prom_u64(mgw_buf_t *b, const char *name, const char *labels, size_t nl, uint64_t v)
{
    start(b, name, NULL, labels, nl);
    if (nl) mgw_buf_addc(b, '}');
    value_u64(b, v);
}

void mgw_prom_nano(mgw_buf_t *b, const char *name, const char *labels, size_t nl, uint64_t v)
{
    start(b, name, NULL, labels, nl);
    if (nl) mgw_buf_addc(b, '}');
    value_nano(b, v);
}

void mgw_prom_histogram(mgw_buf_t *b, const char *name, const char *labels, size_t nl,
                        const char *const *le, int nb, const uint64_t *counts, uint64_t sum_nano)
{
    uint64_t cum = 0;
    for (int i = 0; i <= nb; i++) {
        cum += counts[i];
        start(b, name, "_bucket", labels, nl);
        mgw_buf_adds(b, nl ? ",le=\"" : "{le=\"");
        mgw_buf_adds(b, i < nb ? le[i] : "+Inf");
        mgw_buf_add(b, "\"}", 2);
        value_u64(b, cum);
    }
    start(b, name, "_sum", labels, nl);
    if (nl) mgw_buf_addc(b, '}');
    value_nano(b, sum_nano);
    start(b, name, "_count", labels, nl);
    if (nl) mgw_buf_addc(b, '}');
    value_u64(b, cum);
}
