/* AWS WAF text transformations (base/wafxform.h), each on the cases AWS and ModSecurity
 * document, and chains that undo common evasions. */
#include "base/wafxform.c"

#include "base/pool.h"
#include "unit.h"

static mgw_pool_t *pool;

static const char *xf(const char *name, const char *in, size_t n)
{
    const mgw_wafxform_t *t = mgw_wafxform_find(name);
    if (t == NULL) return "(no such transformation)";
    mgw_str_t out;
    t->fn(pool, (const unsigned char *)in, n, &out);
    CHECK(out.p[out.n] == 0);
    return out.p;
}

#define X(name, in) xf(name, in, sizeof(in) - 1)

static void test_table(void)
{
    int n = 0;
    for (const mgw_wafxform_t *t = mgw_wafxforms; t->name; t++)
        n++;
    CHECK(n == 21);
    CHECK(mgw_wafxform_find("URL_DECODE") != NULL);
    CHECK(mgw_wafxform_find("url_decode") == NULL);
}

static void test_simple(void)
{
    CHECK_STR(X("NONE", "AbC"), "AbC");
    CHECK_STR(X("LOWERCASE", "SeLeCT"), "select");
    CHECK_STR(X("COMPRESS_WHITE_SPACE", "a \t\n  b\r\fc"), "a b c");
    CHECK_STR(X("REMOVE_NULLS", "a\0b\0"), "ab");
    CHECK_STR(X("REPLACE_NULLS", "a\0b"), "a b");
    CHECK_STR(X("CMD_LINE", "C^m\"d.E'x\\e  /c , ping;x"), "cmd.exe/c ping x");
}

static void test_decoders(void)
{
    CHECK_STR(X("URL_DECODE", "%3Cscript%3e+x%zz%4"), "<script> x%zz%4");
    CHECK_STR(X("URL_DECODE_UNI", "%u003Cs%uff1e%41"), "<s>A");
    CHECK_STR(X("HTML_ENTITY_DECODE", "&lt;a&#x3e;&#60&quot;&AMP;&bogus;"), "<a><\"&&bogus;");
    CHECK_STR(X("BASE64_DECODE", "SGVsbG8="), "Hello");
    CHECK_STR(X("BASE64_DECODE", "SGVs!bG8="), "Hel");
    CHECK_STR(X("BASE64_DECODE_EXT", "SGVs.bG8="), "Hello");
    CHECK_STR(X("HEX_DECODE", "414243"), "ABC");
    CHECK_STR(X("HEX_DECODE", "41424"), "41424");
    CHECK_STR(X("SQL_HEX_DECODE", "x=0x61646d696e,1"), "x=admin,1");
    CHECK_STR(X("ESCAPE_SEQ_DECODE", "a\\n\\x41\\101\\q"), "a\nAA\\q");
    CHECK_STR(X("JS_DECODE", "\\u003cscript\\x3e\\'"), "<script>'");
    CHECK_STR(X("CSS_DECODE", "\\6a avascript\\:x"), "javascript:x");
    CHECK_STR(X("REPLACE_COMMENTS", "UNION/**/SELECT/*x"), "UNION SELECT ");
    CHECK_STR(X("UTF8_TO_UNICODE", "a\xc3\xa9\xe2\x82\xac"), "a%u00e9%u20ac");
}

static void test_paths(void)
{
    CHECK_STR(X("NORMALIZE_PATH", "/a//b/./c/../d"), "/a/b/d");
    CHECK_STR(X("NORMALIZE_PATH", "/../../etc/passwd"), "/etc/passwd");
    CHECK_STR(X("NORMALIZE_PATH", "a/b/.."), "a/");
    CHECK_STR(X("NORMALIZE_PATH_WIN", "\\a\\..\\b\\.\\c"), "/b/c");
}

static void test_md5(void)
{
    const char *d = X("MD5", "abc");
    static const unsigned char want[16] = {0x90, 0x01, 0x50, 0x98, 0x3c, 0xd2, 0x4f, 0xb0,
                                           0xd6, 0x96, 0x3f, 0x7d, 0x28, 0xe1, 0x7f, 0x72};
    CHECK(memcmp(d, want, 16) == 0);
}

/* Chains as statements run them: double URL encoding, entities, comment-split SQL. */
static void test_chains(void)
{
    CHECK_STR(xf("URL_DECODE", X("URL_DECODE", "%253Cscript%253E"), 12), "<script>");
    const char *h = X("HTML_ENTITY_DECODE", "&#x3C;SCRIPT&#x3E;");
    CHECK_STR(xf("LOWERCASE", h, strlen(h)), "<script>");
    const char *s = X("REPLACE_COMMENTS", "1 UN/**/ION SEL/**/ECT");
    CHECK_STR(s, "1 UN ION SEL ECT");
}

int main(void)
{
    pool = mgw_pool_create(4096);
    RUN(test_table);
    RUN(test_simple);
    RUN(test_decoders);
    RUN(test_paths);
    RUN(test_md5);
    RUN(test_chains);
    mgw_pool_destroy(pool);
    return DONE();
}
