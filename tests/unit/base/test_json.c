/*
 * The strict JSON parser (base/json.c): values, escapes and numbers as RFC 8259 has
 * them, and everything it must refuse: trailing bytes, duplicate member names, nesting
 * deeper than 32, invalid UTF-8 (overlong forms, surrogates, truncated sequences), lone
 * surrogate escapes, and numbers outside the grammar.
 */
#include "base/json.c"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "unit.h"

static mgw_pool_t *pool;
static char err[128];

static const mgw_json_t *parse(const char *s)
{
    mgw_json_t *v = NULL;
    return mgw_json_parse(pool, s, strlen(s), &v, err, sizeof(err)) == 0 ? v : NULL;
}

/* 1 when s (n bytes, may hold NULs) is refused. */
static int refused_n(const char *s, size_t n)
{
    mgw_json_t *v = (mgw_json_t *)1;
    int r = mgw_json_parse(pool, s, n, &v, err, sizeof(err));
    return r == -1 && v == NULL && err[0] != '\0';
}

static int refused(const char *s)
{
    return refused_n(s, strlen(s));
}

static void test_values(void)
{
    const mgw_json_t *v =
        parse(" {\"a\": [1, -2.5e1, true, false, null, \"x\"], \"b\": {}, \"c\": []}\r\n");
    CHECK(v && v->type == MGW_JSON_OBJECT && v->n == 3);
    if (!v) return;
    CHECK(v->key_lens[0] == 1 && strcmp(v->keys[0], "a") == 0);
    const mgw_json_t *a = mgw_json_get(v, "a");
    CHECK(a && a->type == MGW_JSON_ARRAY && a->n == 6);
    if (a && a->n == 6) {
        CHECK(a->items[0]->type == MGW_JSON_NUMBER && a->items[0]->num == 1);
        CHECK(a->items[1]->num == -25 && strcmp(a->items[1]->str, "-2.5e1") == 0 &&
              a->items[1]->len == 6);
        CHECK(a->items[2]->type == MGW_JSON_TRUE && a->items[3]->type == MGW_JSON_FALSE);
        CHECK(a->items[4]->type == MGW_JSON_NULL);
        CHECK(a->items[5]->type == MGW_JSON_STRING && strcmp(a->items[5]->str, "x") == 0);
    }
    const mgw_json_t *b = mgw_json_get(v, "b"), *c = mgw_json_get(v, "c");
    CHECK(b && b->type == MGW_JSON_OBJECT && b->n == 0);
    CHECK(c && c->type == MGW_JSON_ARRAY && c->n == 0);
    CHECK(mgw_json_get(v, "d") == NULL && mgw_json_get(v, "") == NULL);
    CHECK(mgw_json_get(a, "a") == NULL && mgw_json_get(NULL, "a") == NULL);

    /* Scalars at the top level (RFC 8259 allows any value). */
    CHECK(parse("7") && parse("7")->num == 7);
    CHECK(parse("\"s\"") && parse("\"s\"")->len == 1);
    CHECK(parse("null") && parse("true") && parse("false"));
}

static void test_numbers(void)
{
    static const struct {
        const char *text;
        double num;
    } good[] = {
        {"0", 0},
        {"-0", 0},
        {"12", 12},
        {"1.5", 1.5},
        {"-1.25", -1.25},
        {"1e3", 1000},
        {"1E+3", 1000},
        {"25e-1", 2.5},
        {"0.5e1", 5},
        {"1700000000", 1700000000.0},
        {"9007199254740993", 9007199254740992.0},
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        const mgw_json_t *v = parse(good[i].text);
        CHECK(v && v->type == MGW_JSON_NUMBER && v->num == good[i].num);
        CHECK(v && v->len == strlen(good[i].text) && strcmp(v->str, good[i].text) == 0);
    }
    const mgw_json_t *big = parse("1e400");
    CHECK(big && isinf(big->num));
    static const char *const bad[] = {"01",  "-",        "-01",       "1.",   ".5",  "1e",
                                      "1e+", "+1",       "0x1",       "1.e5", "--1", "1..2",
                                      "NaN", "Infinity", "-Infinity", "1 2",  "00",  "1e5.5"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (!refused(bad[i])) printf("#   accepted %s\n", bad[i]);
        CHECK(refused(bad[i]));
    }
}

static void test_strings(void)
{
    const mgw_json_t *v =
        parse("\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\\u0041\\u00e9\\u20AC\\ud83d\\ude00\"");
    CHECK(v && v->type == MGW_JSON_STRING);
    if (v) {
        const char want[] = "a\"b\\c/d\b\f\n\r\tA\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80";
        CHECK(v->len == sizeof(want) - 1 && memcmp(v->str, want, v->len) == 0 &&
              v->str[v->len] == 0);
    }
    /* An escaped NUL stays in the string; len counts it. */
    v = parse("\"a\\u0000b\"");
    CHECK(v && v->len == 3 && v->str[1] == '\0' && v->str[2] == 'b');
    /* Raw UTF-8 of every length passes unchanged. */
    v = parse("\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xf4\x8f\xbf\xbf\"");
    CHECK(v && v->len == 13);
    /* Member names are unescaped too. */
    v = parse("{\"\\u006b\": 1}");
    CHECK(v && mgw_json_get(v, "k") != NULL);

    static const char *const bad[] = {
        "\"abc",     /* unterminated */
        "\"abc\\\"", /* the quote is escaped */
        "\"a\tb\"",  /* a raw control character */
        "\"a\nb\"",
        "\"\\x\"",   /* unknown escape */
        "\"\\u12\"", /* short \u */
        "\"\\u12g4\"",
        "\"\\ud800\"", /* a lone high surrogate */
        "\"\\ud800x\"",
        "\"\\ud800\\u0041\"", /* high surrogate, then not a low one */
        "\"\\udc00\"",        /* a lone low surrogate */
        "\"\\ude00\\ud83d\"", /* a pair in the wrong order */
        "'single'",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (!refused(bad[i])) printf("#   accepted %s\n", bad[i]);
        CHECK(refused(bad[i]));
    }
}

static void test_bad_utf8(void)
{
    static const char *const bad[] = {
        "\"\xc0\x80\"",     /* overlong NUL */
        "\"\xc1\xbf\"",     /* overlong 2-byte */
        "\"\xe0\x80\xaf\"", /* overlong 3-byte '/' */
        "\"\xe0\x9f\xbf\"",
        "\"\xf0\x80\x80\xaf\"", /* overlong 4-byte */
        "\"\xf0\x8f\xbf\xbf\"",
        "\"\xed\xa0\x80\"",     /* the surrogate U+D800 encoded */
        "\"\xed\xbf\xbf\"",     /* U+DFFF */
        "\"\xf4\x90\x80\x80\"", /* above U+10FFFF */
        "\"\xf5\x80\x80\x80\"",
        "\"\xff\"",
        "\"\x80\"", /* a lone continuation byte */
        "\"\xc3\"", /* truncated before the quote */
        "\"\xe2\x82\"",
        "\"\xc3\x28\"",   /* a continuation that is not one */
        "\xc3\xa9",       /* non-ASCII outside a string */
        "\xef\xbb\xbf{}", /* a byte order mark */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (!refused(bad[i])) printf("#   accepted case %zu\n", i);
        CHECK(refused(bad[i]));
    }
    /* The edges that are valid. */
    CHECK(parse("\"\xed\x9f\xbf\xee\x80\x80\xf0\x90\x80\x80\xc2\x80\xdf\xbf\""));
    /* A NUL byte in the input is a control character, and it does not end the input. */
    CHECK(refused_n("\"a\0b\"", 5));
    CHECK(refused_n("{}\0", 3));
}

static void test_structure(void)
{
    static const char *const bad[] = {
        "",           " ",         "{",        "}",           "[",     "[1,]",  "[,1]",
        "{\"a\":1,}", "{\"a\" 1}", "{\"a\":}", "{1:2}",       "{a:1}", "[1 2]", "{\"a\":1 \"b\":2}",
        "tru",        "nul",       "falsey",   "True",        "{} {}", "[] x",  "{}}",
        "[1]]",       "\"a\"b",    "/**/{}",   "{\"a\":1}//",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (!refused(bad[i])) printf("#   accepted '%s'\n", bad[i]);
        CHECK(refused(bad[i]));
    }
    /* The reason says where. */
    CHECK(refused("{\"a\":1} x"));
    CHECK(strstr(err, "trailing") != NULL && strstr(err, "byte 8") != NULL);
    /* Whitespace is exactly space, tab, CR and LF. */
    CHECK(parse(" \t\r\n[ \t\r\n1 \t\r\n] \t\r\n"));
    CHECK(refused("\f[]") && refused("[]\v"));
    /* errlen 0: no reason, still refused. */
    mgw_json_t *v;
    CHECK(mgw_json_parse(pool, "[", 1, &v, NULL, 0) == -1 && v == NULL);
}

static void test_duplicates(void)
{
    CHECK(refused("{\"a\":1,\"a\":2}"));
    CHECK(strstr(err, "duplicate") != NULL);
    CHECK(refused("{\"a\":1,\"b\":{\"c\":1,\"c\":1}}"));
    /* The same name after unescaping. */
    CHECK(refused("{\"ab\":1,\"a\\u0062\":2}"));
    /* Equal names in different objects, and prefixes, are fine. */
    CHECK(parse("{\"a\":{\"a\":1},\"b\":[{\"a\":1},{\"a\":2}],\"ab\":1,\"abc\":2}"));

    /* A large object goes through the hash table: a duplicate anywhere is found. */
    static char big[40000];
    for (int dup = 0; dup < 2; dup++) {
        size_t n = 0;
        n += (size_t)snprintf(big + n, sizeof(big) - n, "{");
        for (int i = 0; i < 1000; i++)
            n += (size_t)snprintf(big + n, sizeof(big) - n, "%s\"k%d\":%d", i ? "," : "", i, i);
        if (dup) n += (size_t)snprintf(big + n, sizeof(big) - n, ",\"k517\":0");
        snprintf(big + n, sizeof(big) - n, "}");
        const mgw_json_t *v = parse(big);
        if (dup) {
            CHECK(v == NULL && strstr(err, "duplicate") != NULL);
        } else {
            CHECK(v && v->n == 1000);
            const mgw_json_t *k = mgw_json_get(v, "k999");
            CHECK(k && k->num == 999);
        }
    }
}

static void test_depth(void)
{
    char s[200];
    for (int depth = 31; depth <= 34; depth++) {
        int n = 0;
        for (int i = 0; i < depth; i++)
            s[n++] = '[';
        for (int i = 0; i < depth; i++)
            s[n++] = ']';
        s[n] = '\0';
        if (depth <= MGW_JSON_MAX_DEPTH)
            CHECK(parse(s) != NULL);
        else
            CHECK(refused(s) && strstr(err, "deep") != NULL);
    }
    /* Objects count as levels too. */
    char o[400];
    int n = 0;
    for (int i = 0; i < 33; i++)
        n += snprintf(o + n, sizeof(o) - (size_t)n, "{\"a\":");
    n += snprintf(o + n, sizeof(o) - (size_t)n, "1");
    for (int i = 0; i < 33; i++)
        o[n++] = '}';
    o[n] = '\0';
    CHECK(refused(o));
    /* Deep input far beyond the limit is refused without recursing into it. */
    static char deep[100001];
    memset(deep, '[', sizeof(deep) - 1);
    CHECK(refused(deep));
}

/* Containers whose children outgrow the scratch stack on the C stack, nested inside
 * each other, keep every child in place. */
static void test_large_containers(void)
{
    static char s[60000];
    size_t n = 0;
    n += (size_t)snprintf(s + n, sizeof(s) - n, "[");
    for (int i = 0; i < 300; i++) {
        n += (size_t)snprintf(s + n, sizeof(s) - n, "%s[", i ? "," : "");
        for (int j = 0; j < (i % 7 == 0 ? 100 : 2); j++)
            n += (size_t)snprintf(s + n, sizeof(s) - n, "%s%d", j ? "," : "", i * 1000 + j);
        n += (size_t)snprintf(s + n, sizeof(s) - n, "]");
    }
    snprintf(s + n, sizeof(s) - n, "]");
    const mgw_json_t *v = parse(s);
    CHECK(v && v->n == 300);
    int wrong = 0;
    for (int i = 0; v && i < 300; i++) {
        const mgw_json_t *a = v->items[i];
        if (a->n != (i % 7 == 0 ? 100 : 2)) wrong++;
        for (int j = 0; j < a->n; j++)
            if (a->items[j]->num != i * 1000 + j) wrong++;
    }
    CHECK(wrong == 0);
}

/* A token's claims cost a few hundred bytes of pool, not a multiple of kilobytes. */
static void test_pool_use(void)
{
    mgw_pool_t *p = mgw_pool_create(0);
    const char *claims = "{\"iss\":\"https://idp.test/realm\",\"aud\":[\"pets\",\"other\"],"
                         "\"sub\":\"alice\",\"exp\":2000000000,\"nbf\":1600000000,"
                         "\"iat\":1600000000,\"scope\":\"pets:read pets:write\"}";
    mgw_json_t *v;
    size_t before = mgw_pool_used(p);
    CHECK(mgw_json_parse(p, claims, strlen(claims), &v, NULL, 0) == 0);
    size_t used = mgw_pool_used(p) - before;
    if (used > 2048) printf("#   %zu bytes for %zu bytes of JSON\n", used, strlen(claims));
    CHECK(used <= 2048);
    mgw_pool_destroy(p);
}

/* mgw_json_write: compact text, escapes, member order; parsing it again gives it back. */
static void test_write(void)
{
    const char *src = " { \"b\" : [1, -2.5e3, true, false, null, \"x\\\"y\\u00e9\\n\"], \"a\": {}, "
                      "\"c\": [ ] } ";
    const mgw_json_t *v = parse(src);
    CHECK(v != NULL);
    if (v == NULL) return;
    mgw_buf_t b = {0};
    mgw_json_write(&b, v);
    mgw_buf_addc(&b, '\0');
    CHECK_STR(b.p, "{\"b\":[1,-2.5e3,true,false,null,\"x\\\"y\xc3\xa9\\n\"],\"a\":{},\"c\":[]}");
    mgw_buf_t again = {0};
    const mgw_json_t *w = parse(b.p);
    CHECK(w != NULL);
    if (w) {
        mgw_json_write(&again, w);
        mgw_buf_addc(&again, '\0');
        CHECK_STR(again.p, b.p);
    }
    mgw_buf_free(&b);
    mgw_buf_free(&again);
}

int main(void)
{
    pool = mgw_pool_create(0);
    RUN(test_values);
    RUN(test_numbers);
    RUN(test_strings);
    RUN(test_bad_utf8);
    RUN(test_structure);
    RUN(test_duplicates);
    RUN(test_depth);
    RUN(test_large_containers);
    RUN(test_pool_use);
    RUN(test_write);
    mgw_pool_destroy(pool);
    return DONE();
}
