/*
 * JSON Schema draft 4 (runtime/base/jschema.c, jschema_check.c): the input is a schema
 * and a document, split at the first "\n--\n". Properties: a schema compiles, or is
 * refused with a reason that names its place ("at /..." or "not JSON: ..."); a compiled
 * schema decides every document the same way whether the walk words its failures or
 * not, twice in a row; a failure is worded as a bracketed list, a success not at all.
 * Hostile schemas (reference cycles through allOf, exponential fan-out) must end within
 * the step budget and the depth limit, which the fuzzer's timeout checks. Another
 * document ($ref "urn:other#...") is the schema's own text again, loaded once.
 */
#include "base/jschema.h"

#include "fuzz.h"

typedef struct {
    const char *text;
    size_t n;
    int loads;
} other_t;

static const char *load_other(void *ud, const char *uri, size_t *n)
{
    other_t *o = ud;
    if (strcmp(uri, "urn:other") != 0) return NULL;
    FUZZ_CHECK(++o->loads == 1);
    *n = o->n;
    return o->text;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *a, *b;
    size_t an, bn;
    fuzz_split(data, size, "\n--\n", &a, &an, &b, &bn);
    mgw_pool_t *pool = mgw_pool_create(0);
    char err[512];
    err[0] = '\0';
    other_t other = {(const char *)a, an, 0};
    mgw_jschema_t *s =
        mgw_jschema_compile_docs(pool, (const char *)a, an, load_other, &other, err, sizeof(err));
    if (s == NULL) {
        FUZZ_CHECK(strncmp(err, "at /", 4) == 0 || strncmp(err, "not JSON: ", 10) == 0);
        mgw_pool_destroy(pool);
        return 0;
    }
    FUZZ_CHECK(err[0] == '\0');
    mgw_json_t *doc;
    if (mgw_json_parse(pool, (const char *)b, bn, &doc, NULL, 0) == 0) {
        const char *why = NULL;
        int loud = mgw_jschema_validate(s, doc, pool, &why);
        int quiet = mgw_jschema_validate(s, doc, NULL, NULL);
        FUZZ_CHECK(loud == quiet);
        FUZZ_CHECK(mgw_jschema_validate(s, doc, NULL, NULL) == quiet);
        if (loud) {
            FUZZ_CHECK(why == NULL);
        } else {
            size_t n = why ? strlen(why) : 0;
            FUZZ_CHECK(n >= 2 && why[0] == '[' && why[n - 1] == ']');
        }
    }
    mgw_pool_destroy(pool);
    return 0;
}
