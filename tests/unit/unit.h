/*
 * A minimal unit-test harness: CHECK records a failure with file and line and goes on;
 * RUN runs one test function and prints "ok"/"not ok"; DONE prints the summary line
 * "N passed, N failed" that tests/run.sh adds up, and returns the exit status.
 */
#ifndef MGW_UNIT_H
#define MGW_UNIT_H

#include <stdio.h>
#include <string.h>

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

#endif
