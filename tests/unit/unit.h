/*
 * A minimal unit-test harness: CHECK records a failure with file and line and goes on;
 * RUN runs one test function and prints "ok"/"not ok"; DONE prints the summary line
 * "N passed, N failed" that tests/run.sh adds up, and returns the exit status.
 */
#ifndef MGW_UNIT_H
#define MGW_UNIT_H

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int unit_failures_in_test, unit_passed, unit_failed;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            printf("#   %s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond);                    \
            unit_failures_in_test++;                                                               \
        }                                                                                          \
    } while (0)

#define CHECK_STR(got, want)                                                                       \
    do {                                                                                           \
        const char *g_ = (got), *w_ = (want);                                                      \
        if (g_ == NULL || strcmp(g_, w_) != 0) {                                                   \
            printf("#   %s:%d: got \"%s\", want \"%s\"\n", __FILE__, __LINE__, g_ ? g_ : "(null)", \
                   w_);                                                                            \
            unit_failures_in_test++;                                                               \
        }                                                                                          \
    } while (0)

#define RUN(fn)                                                                                    \
    do {                                                                                           \
        unit_failures_in_test = 0;                                                                 \
        fn();                                                                                      \
        if (unit_failures_in_test) {                                                               \
            unit_failed++;                                                                         \
            printf("not ok - %s\n", #fn);                                                          \
        } else {                                                                                   \
            unit_passed++;                                                                         \
            printf("ok - %s\n", #fn);                                                              \
        }                                                                                          \
    } while (0)

#define DONE() (printf("%d passed, %d failed\n", unit_passed, unit_failed), unit_failed ? 1 : 0)

/*
 * Makes a new temporary directory (named after tag) into dir and runs the certificate
 * script script (a path from the repository root: tests/unit/tls_certs.sh or
 * tests/e2e/tls_certs.sh) into it. Tests run from the repository root or from
 * build/tests/LAYER/, so the script is also looked for three levels above the binary.
 * Returns 0, or -1 after printing why.
 */
static inline int unit_make_certs(char *dir, size_t n, const char *tag, const char *script)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, n, "%s/mgw-%s-XXXXXX", tmp && *tmp ? tmp : "/tmp", tag);
    if (!mkdtemp(dir)) return perror("mkdtemp"), -1;
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s", script);
    if (access(path, R_OK) != 0) {
        char exe[PATH_MAX];
        ssize_t got = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
        if (got > 0) {
            exe[got] = '\0';
            char *slash = strrchr(exe, '/');
            if (slash) *slash = '\0';
            snprintf(path, sizeof(path), "%.3000s/../../../%s", exe, script);
        }
    }
    char cmd[2 * PATH_MAX + 64];
    snprintf(cmd, sizeof(cmd), "sh '%s' '%s'", path, dir);
    if (system(cmd) != 0) {
        printf("# %s failed; see %s/gen.log\n", cmd, dir);
        return -1;
    }
    return 0;
}

#endif
