/*
 * AWS WAF text transformations (base/wafxform.h) and their chains: the input's first
 * three bytes pick up to three transformations (a byte per step, modulo the table's
 * size; a byte of 8 times the size or more ends the chain), the rest is the value. Every step runs
 * on the previous step's output, as a statement runs them. Properties: every output is
 * NUL-terminated; no transformation grows its input except MD5 (16 bytes) and
 * UTF8_TO_UNICODE (at most 3 times); LOWERCASE, COMPRESS_WHITE_SPACE, REMOVE_NULLS and
 * REPLACE_NULLS give the same result run twice; the decoders (URL, HTML, base64, hex,
 * escapes) never lengthen.
 */
#include <stdint.h>
#include <string.h>

#include "base/pool.h"
#include "base/wafxform.h"
#include "fuzz.h"

static size_t count(void)
{
    size_t n = 0;
    while (mgw_wafxforms[n].name)
        n++;
    return n;
}

static int idempotent(const char *name)
{
    return strcmp(name, "LOWERCASE") == 0 || strcmp(name, "COMPRESS_WHITE_SPACE") == 0 ||
           strcmp(name, "REMOVE_NULLS") == 0 || strcmp(name, "REPLACE_NULLS") == 0 ||
           strcmp(name, "NONE") == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3) return 0;
    size_t nx = count();
    mgw_pool_t *pool = mgw_pool_create(0);
    mgw_str_t v = {(const char *)data + 3, size - 3};
    for (int step = 0; step < 3; step++) {
        size_t pick = data[step];
        if (pick >= nx * 8) break; /* the chain ends */
        const mgw_wafxform_t *t = &mgw_wafxforms[pick % nx];
        mgw_str_t out;
        t->fn(pool, (const unsigned char *)v.p, v.n, &out);
        FUZZ_CHECK(out.p != NULL && out.p[out.n] == '\0');
        if (strcmp(t->name, "MD5") == 0)
            FUZZ_CHECK(out.n == 16);
        else if (strcmp(t->name, "UTF8_TO_UNICODE") == 0)
            FUZZ_CHECK(out.n <= 3 * v.n);
        else
            FUZZ_CHECK(out.n <= v.n);
        if (idempotent(t->name)) {
            mgw_str_t again;
            t->fn(pool, (const unsigned char *)out.p, out.n, &again);
            FUZZ_CHECK(again.n == out.n && memcmp(again.p, out.p, out.n) == 0);
        }
        v = out;
    }
    mgw_pool_destroy(pool);
    return 0;
}
