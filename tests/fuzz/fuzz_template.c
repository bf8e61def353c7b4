/*
 * $context templates (access-log formats, gateway-response bodies): compile the input's
 * text up to the first blank line, render it with a lookup that answers every variable
 * with the bytes after that line (or with no value, for every third variable), and check that a
 * value rendered into a JSON template is a valid JSON string body.
 */
#include <stdint.h>
#include <string.h>

#include "fuzz.h"
#include "base/pool.h"
#include "conf/template.h"

typedef struct {
    const char *p;
    size_t n;
    int calls;
} value_t;

static int lookup(void *ud, int var, mgw_str_t arg, mgw_str_t *out)
{
    value_t *v = ud;
    FUZZ_CHECK(var >= 0 && var < MGW_VAR__COUNT);
    if (var == MGW_VAR_STAGE_VARIABLE || var == MGW_VAR_AUTHORIZER_KEY || var == MGW_VAR_CUSTOM)
        FUZZ_CHECK(arg.p != NULL && arg.n > 0);
    if (v->calls++ % 3 == 2) return 0;
    *out = (mgw_str_t){v->p, v->n};
    return 1;
}

/* 1 when p (n bytes) may stand between the quotes of a JSON string. */
static int json_string_body(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c < 0x20 || c == '"') return 0;
        if (c != '\\') continue;
        if (++i == n) return 0;
        switch (p[i]) {
        case '"':
        case '\\':
        case '/':
        case 'b':
        case 'f':
        case 'n':
        case 'r':
        case 't':
            break;
        case 'u':
            if (n - i < 5) return 0;
            for (int k = 1; k <= 4; k++)
                if (p[i + k] == '\0' || !strchr("0123456789abcdefABCDEF", p[i + k])) return 0;
            i += 4;
            break;
        default:
            return 0;
        }
    }
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *src, *val;
    size_t srcn, valn;
    fuzz_split(data, size, "\n\n", &src, &srcn, &val, &valn);
    const uint8_t *nul = memchr(src, '\0', srcn);
    if (nul) srcn = (size_t)(nul - src); /* templates are C strings */

    mgw_pool_t *pool = mgw_pool_create(0);
    char *s = mgw_pool_strndup(pool, (const char *)src, srcn);
    const char *err = NULL;
    mgw_template_t *t = mgw_template_compile(pool, s, &err);
    value_t v = {(const char *)val, valn, 0};
    mgw_buf_t out = {0};
    if (t == NULL) {
        FUZZ_CHECK(err != NULL);
    } else {
        mgw_template_render(t, lookup, &v, &out);
        for (int i = 0; i < MGW_VAR__COUNT; i++)
            (void)mgw_template_uses(t, i);
    }
    /* the value in a JSON template: a valid JSON string body, whatever its bytes */
    mgw_template_t *j = mgw_template_compile(pool, "{\"v\":\"$context.path\"}", &err);
    FUZZ_CHECK(j != NULL);
    mgw_buf_t js = {0};
    v.calls = 0;
    mgw_template_render(j, lookup, &v, &js);
    FUZZ_CHECK(js.n >= 8 && memcmp(js.p, "{\"v\":\"", 6) == 0 &&
               memcmp(js.p + js.n - 2, "\"}", 2) == 0);
    FUZZ_CHECK(json_string_body(js.p + 6, js.n - 8));
    /* the variable lookup by name on the raw bytes */
    mgw_str_t arg;
    (void)mgw_template_var((const char *)src, srcn, &arg);
    mgw_buf_free(&js);
    mgw_buf_free(&out);
    mgw_pool_destroy(pool);
    return 0;
}
