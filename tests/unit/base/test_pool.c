/*
 * The arena every request and generation lives in, and the growable buffer output is
 * built in: alignment, that allocations do not overlap, cleanups in reverse order exactly
 * once, and the buffer's text and JSON escaping.
 */
#include "base/pool.c"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "unit.h"

static int aligned(const void *p)
{
    return ((uintptr_t)p & 15) == 0;
}

/*
 * Fills every allocation with its own byte, then checks all of them: an allocation that
 * overlaps another, or lies outside its block, shows up as a wrong byte (or under valgrind).
 */
static void test_alloc_aligned_and_separate(void)
{
    enum { N = 600 };
    static unsigned char *ptrs[N];
    static size_t sizes[N];
    mgw_pool_t *pool = mgw_pool_create(0);
    int misaligned = 0;
    for (int i = 0; i < N; i++) {
        /* Mostly small, odd sizes; every 100th one larger than a quarter block. */
        sizes[i] = i % 100 == 99 ? 5000 + (size_t)i : (size_t)(i % 37) + 1;
        ptrs[i] = mgw_pool_alloc(pool, sizes[i]);
        if (!aligned(ptrs[i])) misaligned++;
        memset(ptrs[i], i & 0xff, sizes[i]);
    }
    CHECK(misaligned == 0);
    int corrupt = 0;
    for (int i = 0; i < N; i++)
        for (size_t j = 0; j < sizes[i]; j++)
            if (ptrs[i][j] != (unsigned char)(i & 0xff)) corrupt++;
    CHECK(corrupt == 0);

    /* A single allocation much larger than a block. */
    unsigned char *big = mgw_pool_alloc(pool, 1 << 20);
    CHECK(aligned(big));
    memset(big, 0xab, 1 << 20);
    CHECK(big[0] == 0xab && big[(1 << 20) - 1] == 0xab);
    /* Small allocations still work after it, and are aligned. */
    void *after = mgw_pool_alloc(pool, 3);
    CHECK(aligned(after));
    /* Zero bytes is still a distinct, aligned pointer. */
    void *z1 = mgw_pool_alloc(pool, 0), *z2 = mgw_pool_alloc(pool, 0);
    CHECK(z1 != NULL && z2 != NULL && z1 != z2);
    CHECK(aligned(z1) && aligned(z2));
    mgw_pool_destroy(pool);
}

static void test_block_sizes(void)
{
    /* Tiny and odd block sizes: every allocation still fits and is aligned. */
    size_t block_sizes[] = {1, 17, 100, 4096, 65536};
    for (size_t k = 0; k < sizeof(block_sizes) / sizeof(block_sizes[0]); k++) {
        mgw_pool_t *pool = mgw_pool_create(block_sizes[k]);
        int bad = 0;
        for (size_t n = 1; n < 300; n += 7) {
            unsigned char *p = mgw_pool_alloc(pool, n);
            if (!aligned(p)) bad++;
            memset(p, 0x5a, n);
        }
        CHECK(bad == 0);
        mgw_pool_destroy(pool);
    }
}

static void test_calloc(void)
{
    mgw_pool_t *pool = mgw_pool_create(256);
    /* Each zeroed region is dirtied once checked: a later calloc overlapping it would show. */
    int nonzero = 0;
    for (size_t n = 1; n < 200; n += 13) {
        unsigned char *p = mgw_pool_calloc(pool, n);
        CHECK(aligned(p));
        for (size_t i = 0; i < n; i++)
            if (p[i]) nonzero++;
        memset(p, 0xff, n); /* the next calloc must not see these bytes */
    }
    CHECK(nonzero == 0);
    mgw_pool_destroy(pool);
}

static void test_strings(void)
{
    mgw_pool_t *pool = mgw_pool_create(64);
    const char *src = "hello world";
    char *a = mgw_pool_strndup(pool, src, 5);
    CHECK_STR(a, "hello");
    CHECK(a != src);
    CHECK_STR(mgw_pool_strndup(pool, src, 0), "");
    /* strndup copies n bytes even when they contain a NUL. */
    char *nul = mgw_pool_strndup(pool, "a\0b", 3);
    CHECK(nul[0] == 'a' && nul[1] == '\0' && nul[2] == 'b' && nul[3] == '\0');
    char *d = mgw_pool_strdup(pool, src);
    CHECK_STR(d, "hello world");
    CHECK(d != src);
    CHECK_STR(mgw_pool_printf(pool, "%d-%s-%c", 42, "x", 'y'), "42-x-y");
    CHECK_STR(mgw_pool_printf(pool, "%s", ""), "");

    /* A string much longer than a block. */
    char long_src[5001];
    memset(long_src, 'q', 5000);
    long_src[5000] = '\0';
    char *l = mgw_pool_printf(pool, "<%s>", long_src);
    CHECK(strlen(l) == 5002 && l[0] == '<' && l[5001] == '>' && l[2500] == 'q');
    CHECK(strcmp(mgw_pool_strdup(pool, long_src), long_src) == 0);
    /* Earlier strings are untouched by later allocations. */
    CHECK_STR(a, "hello");
    CHECK_STR(d, "hello world");
    mgw_pool_destroy(pool);
}

static char order[16];
static int norder;

static void record(void *data)
{
    if (norder < (int)sizeof order - 1) order[norder++] = *(const char *)data;
}

static mgw_pool_t *late_pool;

/* A cleanup that registers another one while the pool is being destroyed. */
static void register_late(void *data)
{
    record(data);
    mgw_pool_cleanup_add(late_pool, record, "L");
}

static void test_cleanups(void)
{
    memset(order, 0, sizeof order);
    norder = 0;
    mgw_pool_t *pool = mgw_pool_create(0);
    mgw_pool_cleanup_add(pool, record, "1");
    mgw_pool_cleanup_add(pool, record, "2");
    mgw_pool_cleanup_add(pool, record, "3");
    CHECK(norder == 0); /* nothing runs before destroy */
    mgw_pool_destroy(pool);
    CHECK_STR(order, "321");

    /* Many cleanups, interleaved with allocations that open new blocks. */
    memset(order, 0, sizeof order);
    norder = 0;
    pool = mgw_pool_create(64);
    static const char digits[] = "abcdefghij";
    for (int i = 0; i < 10; i++) {
        mgw_pool_cleanup_add(pool, record, (void *)&digits[i]);
        mgw_pool_alloc(pool, 40);
    }
    mgw_pool_destroy(pool);
    CHECK_STR(order, "jihgfedcba");

    /* One registered during destroy runs too, once. */
    memset(order, 0, sizeof order);
    norder = 0;
    late_pool = mgw_pool_create(0);
    mgw_pool_cleanup_add(late_pool, record, "A");
    mgw_pool_cleanup_add(late_pool, register_late, "B");
    mgw_pool_cleanup_add(late_pool, record, "C");
    mgw_pool_destroy(late_pool);
    late_pool = NULL;
    CHECK_STR(order, "CBLA");

    /* Destroying NULL is a no-op. */
    mgw_pool_destroy(NULL);
}

static void test_used(void)
{
    mgw_pool_t *pool = mgw_pool_create(0);
    size_t u0 = mgw_pool_used(pool);
    mgw_pool_alloc(pool, 10);
    size_t u1 = mgw_pool_used(pool);
    CHECK(u1 >= u0 + 10);
    mgw_pool_strdup(pool, "abc");
    size_t u2 = mgw_pool_used(pool);
    CHECK(u2 >= u1 + 4);
    mgw_pool_alloc(pool, 100000);
    size_t u3 = mgw_pool_used(pool);
    CHECK(u3 >= u2 + 100000);
    mgw_pool_cleanup_add(pool, record, "x");
    CHECK(mgw_pool_used(pool) > u3);
    norder = 0;
    mgw_pool_destroy(pool);
}

/*
 * A destroyed pool may come back from mgw_pool_create (the per-thread cache): it must come
 * back empty, its old cleanups must not run again, and its memory must hold new data
 * whole, also after a life with extra and large blocks.
 */
static void test_recycled_pool_is_fresh(void)
{
    for (int life = 0; life < 3; life++) {
        mgw_pool_t *pool = mgw_pool_create(1024);
        CHECK(mgw_pool_used(pool) == 0);
        enum { N = 40 };
        unsigned char *p[N];
        for (int i = 0; i < N; i++) {
            p[i] = mgw_pool_alloc(pool, 100);
            memset(p[i], life * 50 + i, 100);
        }
        mgw_pool_alloc(pool, 5000); /* a block of its own */
        int bad = 0;
        for (int i = 0; i < N; i++)
            for (int j = 0; j < 100; j++)
                bad += p[i][j] != (unsigned char)(life * 50 + i);
        CHECK(bad == 0);
        norder = 0;
        mgw_pool_cleanup_add(pool, record, life == 0 ? "a" : "b");
        mgw_pool_destroy(pool);
        CHECK(norder == 1); /* this life's cleanup ran, once */
        CHECK(order[0] == (life == 0 ? 'a' : 'b'));
    }
}

static void test_buf(void)
{
    mgw_buf_t b = {0};
    mgw_buf_add(&b, "abc", 3);
    CHECK(b.n == 3);
    CHECK_STR(b.p, "abc");
    mgw_buf_adds(&b, "-def");
    mgw_buf_addc(&b, '!');
    CHECK(b.n == 8);
    CHECK_STR(b.p, "abc-def!");
    mgw_buf_printf(&b, " %d%s", 12, "x");
    CHECK_STR(b.p, "abc-def! 12x");
    CHECK(b.n == strlen(b.p));
    /* Adding nothing keeps the text and its terminator. */
    mgw_buf_add(&b, "", 0);
    CHECK_STR(b.p, "abc-def! 12x");
    CHECK(b.cap > b.n);

    /* Growth past the first capacity keeps what was there. */
    for (int i = 0; i < 1000; i++)
        mgw_buf_addc(&b, (char)('a' + i % 26));
    CHECK(b.n == 12 + 1000);
    CHECK(b.cap > b.n);
    CHECK(memcmp(b.p, "abc-def! 12xabc", 15) == 0);
    CHECK(b.p[b.n - 1] == 'a' + 999 % 26);
    CHECK(b.p[b.n] == '\0');
    char big[3000];
    memset(big, 'z', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    size_t before = b.n;
    mgw_buf_printf(&b, "[%s]", big);
    CHECK(b.n == before + 3001);
    CHECK(b.p[before] == '[' && b.p[b.n - 1] == ']' && b.p[b.n] == '\0');
    mgw_buf_free(&b);
    CHECK(b.p == NULL && b.n == 0 && b.cap == 0);

    /* A freed buffer is empty and usable again; printf can be the first call. */
    mgw_buf_printf(&b, "%s", "");
    CHECK(b.p != NULL && b.n == 0 && b.p[0] == '\0');
    mgw_buf_printf(&b, "%05d", 42);
    CHECK_STR(b.p, "00042");
    mgw_buf_free(&b);
}

static void test_buf_json(void)
{
    mgw_buf_t b = {0};
    const char in[] = "a\"b\\c/\n\r\t\x01\x1f\x7f caf\xc3\xa9";
    mgw_buf_add_json(&b, in, sizeof in - 1);
    CHECK_STR(b.p, "a\\\"b\\\\c/\\n\\r\\t\\u0001\\u001f\\u007f caf\xc3\xa9");
    CHECK(b.n == strlen(b.p));
    mgw_buf_free(&b);

    /* n bytes, embedded NUL included. */
    mgw_buf_add_json(&b, "x\0y", 3);
    CHECK(b.n == 8 && memcmp(b.p, "x\\u0000y", 8) == 0);
    mgw_buf_free(&b);

    /* Appends after what is there; empty input adds nothing. */
    mgw_buf_adds(&b, "\"");
    mgw_buf_add_json(&b, "", 0);
    mgw_buf_add_json(&b, "q\"", 2);
    mgw_buf_adds(&b, "\"");
    CHECK_STR(b.p, "\"q\\\"\"");
    mgw_buf_free(&b);

    /* Long input that needs several growths, every byte escaped. */
    char quotes[600];
    memset(quotes, '"', sizeof quotes);
    mgw_buf_add_json(&b, quotes, sizeof quotes);
    CHECK(b.n == 2 * sizeof quotes);
    int bad = 0;
    for (size_t i = 0; i < b.n; i += 2)
        if (b.p[i] != '\\' || b.p[i + 1] != '"') bad++;
    CHECK(bad == 0);
    CHECK(b.p[b.n] == '\0');
    mgw_buf_free(&b);
}

/* Request-controlled text: invalid UTF-8 becomes \ufffd, byte by byte; valid text is
 * escaped exactly as mgw_buf_add_json does. */
static void test_buf_json_utf8(void)
{
    mgw_buf_t b = {0};
    const char ok[] = "a\"b\n caf\xc3\xa9 \xf0\x9f\x98\x80";
    mgw_buf_add_json_utf8(&b, ok, sizeof ok - 1);
    CHECK_STR(b.p, "a\\\"b\\n caf\xc3\xa9 \xf0\x9f\x98\x80");
    mgw_buf_free(&b);

    /* a lone continuation byte, a truncated sequence, 0xFF, an overlong form, a
     * surrogate, a sequence cut at the end */
    const char bad[] = "x\x80y\xc3 \xff\"\xc0\xaf\xed\xa0\x80z\xe2\x82";
    mgw_buf_add_json_utf8(&b, bad, sizeof bad - 1);
    CHECK_STR(b.p,
              "x\\ufffdy\\ufffd \\ufffd\\\"\\ufffd\\ufffd\\ufffd\\ufffd\\ufffdz\\ufffd\\ufffd");
    CHECK(b.n == strlen(b.p));
    mgw_buf_free(&b);
}

int main(void)
{
    RUN(test_alloc_aligned_and_separate);
    RUN(test_block_sizes);
    RUN(test_calloc);
    RUN(test_strings);
    RUN(test_cleanups);
    RUN(test_used);
    RUN(test_recycled_pool_is_fresh);
    RUN(test_buf);
    RUN(test_buf_json);
    RUN(test_buf_json_utf8);
    return DONE();
}
