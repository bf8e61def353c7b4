/* Heap allocation that aborts in one place on failure, so call sites never test for NULL. */
#ifndef MGW_MEM_H
#define MGW_MEM_H

#include <stddef.h>

void *mgw_malloc(size_t n);
void *mgw_calloc(size_t n, size_t size);
void *mgw_realloc(void *p, size_t n);
char *mgw_strdup(const char *s);
char *mgw_strndup(const char *s, size_t n);

/* A borrowed string: pointer and length, not NUL-terminated unless said so. */
typedef struct {
    const char *p;
    size_t n;
} mgw_str_t;

#define MGW_STR(lit) ((mgw_str_t){(lit), sizeof(lit) - 1})
#define MGW_NULL_STR ((mgw_str_t){NULL, 0})

/* A header (or any name and value): two borrowed strings. */
typedef struct {
    mgw_str_t name, value;
} mgw_hdr_t;

#endif
