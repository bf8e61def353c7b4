/*
 * Shared by the libFuzzer targets (tests/fuzz/fuzz_*.c): a check that stops the fuzzer
 * with a message when a property of the code under test does not hold (libFuzzer keeps
 * the input that broke it), and small input helpers.
 */
#ifndef MGW_FUZZ_H
#define MGW_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ftw.h>
#include <sys/stat.h>

#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: FUZZ_CHECK(%s) failed\n", __FILE__, __LINE__, #cond);          \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* Where a target keeps its scratch files: memory-backed when the machine has /dev/shm
 * (the quota compaction syncs its file on every run). */
static inline const char *fuzz_tmpdir(void)
{
    if (getenv("TMPDIR")) return getenv("TMPDIR");
    FILE *f = fopen("/dev/shm/.", "r");
    if (f) fclose(f);
    return f ? "/dev/shm" : "/tmp";
}

static char fuzz_scratch[4096];

static inline int fuzz_rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static inline void fuzz_scratch_remove(void)
{
    if (fuzz_scratch[0]) nftw(fuzz_scratch, fuzz_rm_cb, 8, FTW_DEPTH | FTW_PHYS);
}

/* A new scratch directory named after the target, removed when the fuzzer exits. */
static inline const char *fuzz_scratch_dir(const char *name)
{
    snprintf(fuzz_scratch, sizeof(fuzz_scratch), "%s/mgw-fuzz-%s-XXXXXX", fuzz_tmpdir(), name);
    FUZZ_CHECK(mkdtemp(fuzz_scratch) != NULL);
    atexit(fuzz_scratch_remove);
    return fuzz_scratch;
}

/* The input as a NUL-terminated heap string (embedded NULs end it early). */
static inline char *fuzz_cstr(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

/* Splits the input at the first occurrence of sep: the head and the rest (both borrowed). */
static inline void fuzz_split(const uint8_t *data, size_t size, const char *sep, const uint8_t **a,
                              size_t *an, const uint8_t **b, size_t *bn)
{
    size_t k = strlen(sep);
    const uint8_t *m = size >= k ? memmem(data, size, sep, k) : NULL;
    *a = data;
    if (m == NULL) {
        *an = size;
        *b = data + size;
        *bn = 0;
        return;
    }
    *an = (size_t)(m - data);
    *b = m + k;
    *bn = size - *an - k;
}

#endif
