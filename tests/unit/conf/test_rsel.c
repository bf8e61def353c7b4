/* Route selection expressions (runtime/conf/rsel.c): the three forms, and the strict
 * JSON scanner that evaluates them. */
#include "unit.h"

#include "conf/rsel.c" /* the Makefile leaves rsel.o out of this test's link */

static mgw_pool_t *pool;

/* Evaluates src on msg; returns the key (NUL-terminated, static) or NULL for -1. */
static const char *eval_cap(const char *src, const char *msg, size_t cap)
{
    static char out[512];
    const char *err = NULL;
    mgw_rsel_t *e = mgw_rsel_compile(pool, src, &err);
    if (e == NULL) {
        printf("#   compile \"%s\": %s\n", src, err);
        return "(compile error)";
    }
    int n = mgw_rsel_eval(e, msg, strlen(msg), out, cap);
    if (n < 0) return NULL;
    if ((size_t)n > cap) return "(over cap)";
    out[n] = '\0';
    return out;
}

static const char *eval(const char *src, const char *msg)
{
    return eval_cap(src, msg, 256);
}

static const char *compile_error(const char *src)
{
    const char *err = NULL;
    return mgw_rsel_compile(pool, src, &err) ? NULL : err;
}

static void test_forms(void)
{
    CHECK_STR(eval("$request.body.action", "{\"action\":\"send\"}"), "send");
    CHECK_STR(eval("$request.body.a.b", "{\"a\":{\"b\":\"x\"},\"c\":1}"), "x");
    CHECK_STR(eval("${request.body.a}/${request.body.b}", "{\"b\":\"2\",\"a\":\"1\"}"), "1/2");
    CHECK_STR(eval("${request.body.action}", "{\"action\":\"go\"}"), "go");
    CHECK_STR(eval("v1:${request.body.a.b}:end", "{\"a\":{\"b\":\"k\"}}"), "v1:k:end");
    CHECK_STR(eval("${request.body.a}${request.body.a}", "{\"a\":\"z\"}"), "zz");
    CHECK_STR(eval("$request.body.x-y_z9", "{\"x-y_z9\":\"ok\"}"), "ok");
}

static void test_values(void)
{
    /* a missing path gives "", as do objects and arrays */
    CHECK_STR(eval("$request.body.action", "{\"other\":\"x\"}"), "");
    CHECK_STR(eval("$request.body.a.b", "{\"a\":\"str\"}"), "");
    CHECK_STR(eval("$request.body.a.b", "{\"a\":{\"c\":1}}"), "");
    CHECK_STR(eval("$request.body.a", "{\"a\":{\"b\":1}}"), "");
    CHECK_STR(eval("$request.body.a", "{\"a\":[1,2]}"), "");
    CHECK_STR(eval("${request.body.a}/${request.body.b}", "{\"a\":\"1\"}"), "1/");
    /* numbers, true, false and null as their JSON text */
    CHECK_STR(eval("$request.body.n", "{\"n\":-12.5e+3}"), "-12.5e+3");
    CHECK_STR(eval("$request.body.n", "{\"n\":0}"), "0");
    CHECK_STR(eval("$request.body.t", "{\"t\":true}"), "true");
    CHECK_STR(eval("$request.body.f", "{\"f\": false }"), "false");
    CHECK_STR(eval("$request.body.z", "{\"z\":null}"), "null");
    CHECK_STR(eval("$request.body.e", "{\"e\":\"\"}"), "");
    /* arrays are scanned but not indexed: a name inside one is not a path */
    CHECK_STR(eval("$request.body.a.b", "{\"a\":[{\"b\":\"no\"}]}"), "");
    CHECK_STR(eval("$request.body.b", "{\"a\":[{\"b\":\"no\"}],\"b\":\"yes\"}"), "yes");
    CHECK_STR(eval("$request.body.b", "{\"a\":{\"b\":\"no\"},\"b\":\"yes\"}"), "yes");
    /* duplicate names: the first wins */
    CHECK_STR(eval("$request.body.a", "{\"a\":\"first\",\"a\":\"second\"}"), "first");
    CHECK_STR(eval("$request.body.a.b", "{\"a\":{\"c\":1},\"a\":{\"b\":\"2nd\"}}"), "2nd");
    CHECK_STR(eval("$request.body.a.b", "{\"a\":{\"b\":\"1st\"},\"a\":{\"b\":\"2nd\"}}"), "1st");
}

static void test_escapes(void)
{
    CHECK_STR(eval("$request.body.a", "{\"a\":\"q\\\"b\\\\s\\/n\\nt\\tr\\rb\\bf\\f\"}"),
              "q\"b\\s/n\nt\tr\rb\bf\f");
    CHECK_STR(eval("$request.body.a", "{\"a\":\"\\u0041\\u00e9\\u20AC\"}"),
              "A\xc3\xa9\xe2\x82\xac");
    CHECK_STR(eval("$request.body.a", "{\"a\":\"\\ud83d\\ude00\"}"), "\xf0\x9f\x98\x80");
    /* escaped member names match */
    CHECK_STR(eval("$request.body.action", "{\"\\u0061ction\":\"esc\"}"), "esc");
    CHECK_STR(eval("$request.body.a", "{\"a\":\"caf\xc3\xa9\"}"), "caf\xc3\xa9");
    /* lone surrogates and bad escapes are not JSON */
    CHECK(eval("$request.body.a", "{\"a\":\"\\ud83d\"}") == NULL);
    CHECK(eval("$request.body.a", "{\"a\":\"\\ude00\"}") == NULL);
    CHECK(eval("$request.body.a", "{\"a\":\"\\ud83d\\u0041\"}") == NULL);
    CHECK(eval("$request.body.a", "{\"a\":\"\\x\"}") == NULL);
    CHECK(eval("$request.body.a", "{\"a\":\"\\u12g4\"}") == NULL);
    CHECK(eval("$request.body.a", "{\"a\":\"tab\there\"}") == NULL);
}

static void test_not_json(void)
{
    static const char *const bad[] = {"",
                                      "   ",
                                      "send",
                                      "[1,2]",
                                      "\"str\"",
                                      "12",
                                      "null",
                                      "{",
                                      "{\"a\"",
                                      "{\"a\":",
                                      "{\"a\":1",
                                      "{\"a\":1,}",
                                      "{,}",
                                      "{\"a\" 1}",
                                      "{a:1}",
                                      "{\"a\":1}}",
                                      "{\"a\":1} x",
                                      "{\"a\":01}",
                                      "{\"a\":1.}",
                                      "{\"a\":.5}",
                                      "{\"a\":1e}",
                                      "{\"a\":-}",
                                      "{\"a\":+1}",
                                      "{\"a\":tru}",
                                      "{\"a\":nul}",
                                      "{\"a\":[1,]}",
                                      "{\"a\":[1 2]}",
                                      "{\"a\":'x'}",
                                      "{\"a\":\"x}",
                                      "{\"a\":\"x\\",
                                      "{\"a\":\"\\u12\"}",
                                      "{\"a\":NaN}",
                                      "{\"a\":1}{}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *got = eval("$request.body.a", bad[i]);
        if (got != NULL) printf("#   accepted %s\n", bad[i]);
        CHECK(got == NULL);
    }
    /* whitespace around and inside is fine; the empty object too */
    CHECK_STR(eval("$request.body.a", " \t\r\n{ \"a\" : \"w\" , \"b\" : [ ] , \"c\" : { } }\n"),
              "w");
    CHECK_STR(eval("$request.body.a", "{}"), "");
    /* a NUL byte in the message is not JSON */
    char out[16];
    const char *err;
    mgw_rsel_t *e = mgw_rsel_compile(pool, "$request.body.a", &err);
    CHECK(mgw_rsel_eval(e, "{\"a\":1}\0", 8, out, sizeof(out)) == -1);
    CHECK(mgw_rsel_eval(e, "{\"a\":\"x\0y\"}", 11, out, sizeof(out)) == -1);
}

static void test_nesting(void)
{
    char msg[512];
    /* 64 levels of containers are allowed, 65 are not */
    for (int depth = 63; depth <= 66; depth++) {
        size_t n = 0;
        for (int i = 0; i < depth; i++)
            msg[n++] = i % 2 ? '[' : '{', n += i % 2 ? 0 : (size_t)sprintf(msg + n, "\"a\":");
        msg[n++] = '1';
        for (int i = depth - 1; i >= 0; i--)
            msg[n++] = i % 2 ? ']' : '}';
        msg[n] = '\0';
        const char *got = eval("$request.body.a", msg);
        if (depth <= 64)
            CHECK_STR(got, "");
        else
            CHECK(got == NULL);
    }
    /* a deep path */
    CHECK_STR(
        eval("$request.body.a.b.c.d.e.f", "{\"a\":{\"b\":{\"c\":{\"d\":{\"e\":{\"f\":7}}}}}}"),
        "7");
}

static void test_truncated(void)
{
    static const char full[] =
        "{\"action\":\"send\",\"n\":[1,{\"x\":\"\\u00e9\\ud83d\\ude00\"}],\"t\":true}";
    const char *err;
    mgw_rsel_t *e = mgw_rsel_compile(pool, "$request.body.action", &err);
    char out[64];
    for (size_t n = 0; n < sizeof(full) - 1; n++)
        CHECK(mgw_rsel_eval(e, full, n, out, sizeof(out)) == -1);
    CHECK(mgw_rsel_eval(e, full, sizeof(full) - 1, out, sizeof(out)) == 4);
}

static void test_cap(void)
{
    CHECK_STR(eval_cap("$request.body.a", "{\"a\":\"abcdef\"}", 3), "abc");
    CHECK_STR(eval_cap("$request.body.a", "{\"a\":12345}", 2), "12");
    CHECK_STR(eval_cap("${request.body.a}/${request.body.b}", "{\"a\":\"xy\",\"b\":\"z\"}", 3),
              "xy/");
    CHECK_STR(eval_cap("$request.body.a", "{\"a\":\"\\u20ac\"}", 2), "\xe2\x82");
    CHECK_STR(eval_cap("$request.body.a", "{\"a\":\"x\"}", 0), "");
}

static void test_compile_errors(void)
{
    CHECK(compile_error("") != NULL);
    CHECK(compile_error("action") != NULL);
    CHECK(compile_error("$request.body") != NULL);
    CHECK(compile_error("$request.body.") != NULL);
    CHECK(compile_error("$request.body.a..b") != NULL);
    CHECK(compile_error("$request.body.a.") != NULL);
    CHECK(compile_error("$request.body.a b") != NULL);
    CHECK(compile_error("$request.header.a") != NULL);
    CHECK(compile_error("$request.body.a/x") != NULL);
    CHECK(compile_error("${request.body.a") != NULL);
    CHECK(compile_error("${request.header.a}") != NULL);
    CHECK(compile_error("${request.body.}") != NULL);
    CHECK(compile_error("x/${request.body.a}/$y") != NULL);
    CHECK(compile_error("x{y}${request.body.a}") != NULL);
    CHECK(compile_error("${request.body.a}\n") != NULL);
    CHECK(compile_error("literal only") != NULL);
    char long_src[1100];
    memset(long_src, 'a', sizeof(long_src) - 1);
    memcpy(long_src, "$request.body.", 14);
    long_src[sizeof(long_src) - 1] = '\0';
    CHECK(compile_error(long_src) != NULL);
    CHECK_STR(compile_error("${request.body.a"), "unterminated ${request.body.NAME} (no \"}\")");
    CHECK(compile_error("$request.body.a") == NULL);
    CHECK(compile_error("${request.body.a.b}-${request.body.c}") == NULL);
}

/* The word-at-a-time scan of string text stops exactly where a byte-by-byte scan does:
 * a quote, a backslash or a control character at every position of 1..40 bytes of text,
 * and text that runs to the end. */
static void test_plain_run(void)
{
    static const char stops[] = {'"', '\\', 0x00, 0x1f, 0x01};
    char buf[48];
    for (size_t n = 1; n <= 40; n++) {
        for (size_t at = 0; at <= n; at++) {
            for (size_t k = 0; k < sizeof(stops); k++) {
                for (size_t i = 0; i < n; i++)
                    buf[i] = (char)(i % 3 == 0 ? 0x7f : i % 3 == 1 ? ' ' : (char)0xc3);
                if (at < n) buf[at] = stops[k];
                const char *q = plain_run(buf, buf + n);
                CHECK(q == buf + at);
                if (q != buf + at)
                    printf("#   n %zu at %zu stop 0x%02x\n", n, at, (unsigned char)stops[k]);
            }
        }
    }
}

int main(void)
{
    pool = mgw_pool_create(4096);
    RUN(test_forms);
    RUN(test_values);
    RUN(test_escapes);
    RUN(test_not_json);
    RUN(test_nesting);
    RUN(test_truncated);
    RUN(test_cap);
    RUN(test_compile_errors);
    RUN(test_plain_run);
    mgw_pool_destroy(pool);
    return DONE();
}
