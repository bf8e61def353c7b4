#include "base/mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void oom(size_t n)
{
    fprintf(stderr, "moongate: out of memory allocating %zu bytes\n", n);
    abort();
}

void *mgw_malloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (p == NULL) oom(n);
    return p;
}

void *mgw_calloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (p == NULL) oom(n * size);
    return p;
}

void *mgw_realloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (q == NULL) oom(n);
    return q;
}

char *mgw_strndup(const char *s, size_t n)
{
    char *d = mgw_malloc(n + 1);
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

char *mgw_strdup(const char *s)
{
    return mgw_strndup(s, strlen(s));
}
