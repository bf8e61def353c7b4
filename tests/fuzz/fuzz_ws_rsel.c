/*
 * Route selection expressions (runtime/conf/rsel.c). The input's first byte picks an
 * expression from a list, or (high bit set) says that the expression is the input up to
 * its first newline, so that the compiler is fuzzed too; the rest is the message.
 * Properties: the result is -1 or a length within the cap; a smaller cap gives a prefix
 * of the same key; whitespace around the message changes nothing; the message inside an
 * array is not an object (-1); a key is the same when evaluated twice.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "conf/rsel.h"

static const char *const exprs[] = {
    "$request.body.action",
    "$request.body.a.b",
    "${request.body.a}/${request.body.b}",
    "x${request.body.a.b.c}y${request.body.a}z",
    "$request.body.a",
    "${request.body.action}:${request.body.data.type}",
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    const char *err = NULL;
    mgw_rsel_t *e;
    const uint8_t *msg = data + 1;
    size_t n = size - 1;
    mgw_pool_t *p = mgw_pool_create(4096);
    if (data[0] & 0x80) {
        const uint8_t *nl = memchr(msg, '\n', n);
        size_t len = nl ? (size_t)(nl - msg) : n;
        char *src = mgw_pool_strndup(p, (const char *)msg, len);
        e = mgw_rsel_compile(p, src, &err);
        FUZZ_CHECK((e == NULL) == (err != NULL));
        if (e == NULL || nl == NULL) {
            mgw_pool_destroy(p);
            return 0;
        }
        msg = nl + 1;
        n -= len + 1;
    } else {
        e = mgw_rsel_compile(p, exprs[data[0] % (sizeof(exprs) / sizeof(exprs[0]))], &err);
        FUZZ_CHECK(e != NULL);
    }
    /* the message in its own allocation, so that ASan sees any read beyond it */
    char *m = malloc(n ? n : 1);
    if (n) memcpy(m, msg, n);
    char out[300], out2[300];
    int r = mgw_rsel_eval(e, m, n, out, sizeof(out));
    FUZZ_CHECK(r >= -1 && r <= (int)sizeof(out));
    int r2 = mgw_rsel_eval(e, m, n, out2, sizeof(out2));
    FUZZ_CHECK(r2 == r && (r <= 0 || memcmp(out, out2, (size_t)r) == 0));
    if (r >= 0) {
        for (size_t cap = 0; cap < 8; cap++) {
            int c = mgw_rsel_eval(e, m, n, out2, cap);
            FUZZ_CHECK(c == (r < (int)cap ? r : (int)cap));
            FUZZ_CHECK(c <= 0 || memcmp(out, out2, (size_t)c) == 0);
        }
    }
    char *w = malloc(n + 4);
    w[0] = ' ';
    w[1] = '\n';
    if (n) memcpy(w + 2, m, n);
    w[n + 2] = '\t';
    w[n + 3] = '\r';
    int rw = mgw_rsel_eval(e, w, n + 4, out2, sizeof(out2));
    FUZZ_CHECK(rw == r && (r <= 0 || memcmp(out, out2, (size_t)r) == 0));
    w[1] = '[';
    w[n + 2] = ']';
    FUZZ_CHECK(mgw_rsel_eval(e, w, n + 4, out2, sizeof(out2)) == -1);
    free(w);
    free(m);
    mgw_pool_destroy(p);
    return 0;
}
