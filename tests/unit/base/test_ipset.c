/* IP sets (base/ipset.h): CIDR parsing, merging and lookups at the edges. */
#include "base/ipset.c"

#include <stdio.h>

#include "unit.h"

static mgw_ipset_t *set_of(const char *const *cidrs)
{
    char err[256];
    mgw_ipset_t *s = mgw_ipset_new();
    for (int i = 0; cidrs[i]; i++)
        CHECK(mgw_ipset_add(s, cidrs[i], strlen(cidrs[i]), err, sizeof(err)) == 0);
    mgw_ipset_seal(s);
    return s;
}

static int has(const mgw_ipset_t *s, const char *a)
{
    return mgw_ipset_contains(s, a, strlen(a));
}

static void test_v4_blocks(void)
{
    const char *c[] = {"10.0.0.0/8", "192.168.1.7", "172.16.0.0/12", NULL};
    mgw_ipset_t *s = set_of(c);
    CHECK(has(s, "10.0.0.0") == 1);
    CHECK(has(s, "10.255.255.255") == 1);
    CHECK(has(s, "11.0.0.0") == 0);
    CHECK(has(s, "9.255.255.255") == 0);
    CHECK(has(s, "192.168.1.7") == 1);
    CHECK(has(s, "192.168.1.8") == 0);
    CHECK(has(s, "172.31.255.255") == 1);
    CHECK(has(s, "172.32.0.0") == 0);
    CHECK(has(s, "not an address") == -1);
    CHECK(has(s, "") == -1);
    /* an IPv4-mapped IPv6 client is looked up as IPv4 */
    CHECK(has(s, "::ffff:10.1.2.3") == 1);
    CHECK(has(s, "::ffff:11.1.2.3") == 0);
    /* IPv6 clients never match IPv4 blocks */
    CHECK(has(s, "::1") == 0);
    mgw_ipset_free(s);
}

static void test_zero_and_full_prefixes(void)
{
    const char *c4[] = {"0.0.0.0/0", NULL};
    mgw_ipset_t *s = set_of(c4);
    CHECK(has(s, "0.0.0.0") == 1);
    CHECK(has(s, "255.255.255.255") == 1);
    CHECK(has(s, "2001:db8::1") == 0);
    mgw_ipset_free(s);
    const char *c6[] = {"::/0", "1.2.3.4/32", NULL};
    s = set_of(c6);
    CHECK(has(s, "::") == 1);
    CHECK(has(s, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff") == 1);
    CHECK(has(s, "1.2.3.4") == 1);
    CHECK(has(s, "1.2.3.5") == 0);
    mgw_ipset_free(s);
    const char *c128[] = {"2001:db8::1/128", NULL};
    s = set_of(c128);
    CHECK(has(s, "2001:db8::1") == 1);
    CHECK(has(s, "2001:db8::2") == 0);
    CHECK(has(s, "2001:db8::") == 0);
    mgw_ipset_free(s);
}

static void test_overlapping_and_adjacent(void)
{
    const char *c[] = {"10.0.0.0/16",   "10.0.128.0/17",   "10.1.0.0/16",   "10.0.5.0/24",
                       "2001:db8::/32", "2001:db8:1::/48", "2001:db9::/32", NULL};
    mgw_ipset_t *s = set_of(c);
    /* 10.0/16 swallows 10.0.128/17 and 10.0.5/24, and is adjacent to 10.1/16 */
    CHECK(mgw_ipset_ranges(s) == 2);
    CHECK(has(s, "10.0.200.1") == 1);
    CHECK(has(s, "10.1.255.255") == 1);
    CHECK(has(s, "10.2.0.0") == 0);
    CHECK(has(s, "2001:db8:ffff::1") == 1);
    CHECK(has(s, "2001:db9:1::1") == 1);
    CHECK(has(s, "2001:dba::") == 0);
    mgw_ipset_free(s);
}

static void test_errors(void)
{
    char err[256];
    mgw_ipset_t *s = mgw_ipset_new();
    CHECK(mgw_ipset_add(s, "10.0.0.1/8", 10, err, sizeof(err)) == -1);
    CHECK(strstr(err, "bits set after its /8 prefix") != NULL);
    CHECK(mgw_ipset_add(s, "10.0.0.0/33", 11, err, sizeof(err)) == -1);
    CHECK(strstr(err, "0 to 32") != NULL);
    CHECK(mgw_ipset_add(s, "2001:db8::/129", 14, err, sizeof(err)) == -1);
    CHECK(mgw_ipset_add(s, "300.1.1.1", 9, err, sizeof(err)) == -1);
    CHECK(strstr(err, "is not an IPv4 or IPv6 address") != NULL);
    CHECK(mgw_ipset_add(s, "10.0.0.0/", 9, err, sizeof(err)) == -1);
    CHECK(mgw_ipset_add(s, "::ffff:10.0.0.0/104", 19, err, sizeof(err)) == 0);
    mgw_ipset_seal(s);
    CHECK(has(s, "10.0.0.9") == 1);
    mgw_ipset_free(s);
}

static void test_file(void)
{
    char path[] = "/tmp/mgw-ipset-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    FILE *f = fdopen(fd, "w");
    fputs("# blocked\n10.0.0.0/8\n\n  192.0.2.1   # one host\n2001:db8::/32\r\n", f);
    fclose(f);
    char err[512];
    mgw_ipset_t *s = mgw_ipset_new();
    CHECK(mgw_ipset_add_file(s, path, err, sizeof(err)) == 0);
    mgw_ipset_seal(s);
    CHECK(has(s, "192.0.2.1") == 1);
    CHECK(has(s, "2001:db8::5") == 1);
    CHECK(has(s, "192.0.2.2") == 0);
    mgw_ipset_free(s);
    f = fopen(path, "w");
    fputs("10.0.0.0/8\n10.0.0.300\n", f);
    fclose(f);
    s = mgw_ipset_new();
    CHECK(mgw_ipset_add_file(s, path, err, sizeof(err)) == -1);
    CHECK(strstr(err, ":2: \"10.0.0.300\" is not an IPv4 or IPv6 address") != NULL);
    mgw_ipset_free(s);
    unlink(path);
    s = mgw_ipset_new();
    CHECK(mgw_ipset_add_file(s, "/nonexistent/x", err, sizeof(err)) == -1);
    CHECK(strstr(err, "cannot read") != NULL);
    mgw_ipset_free(s);
}

/* 10,000 random /24s against a linear scan of the same blocks. */
static void test_many_against_linear(void)
{
    enum { N = 10000 };
    static unsigned nets[N];
    char err[128], a[32];
    mgw_ipset_t *s = mgw_ipset_new();
    unsigned x = 12345;
    for (int i = 0; i < N; i++) {
        x = x * 1103515245u + 12345u;
        nets[i] = x & 0xffffff00u;
        snprintf(a, sizeof(a), "%u.%u.%u.0/24", nets[i] >> 24, (nets[i] >> 16) & 255,
                 (nets[i] >> 8) & 255);
        CHECK(mgw_ipset_add(s, a, strlen(a), err, sizeof(err)) == 0);
    }
    mgw_ipset_seal(s);
    int bad = 0;
    for (int k = 0; k < 20000; k++) {
        x = x * 1103515245u + 12345u;
        unsigned ip = k % 2 ? x : nets[x % N] | (x >> 24);
        int want = 0;
        for (int i = 0; i < N && !want; i++)
            want = (ip & 0xffffff00u) == nets[i];
        snprintf(a, sizeof(a), "%u.%u.%u.%u", ip >> 24, (ip >> 16) & 255, (ip >> 8) & 255,
                 ip & 255);
        if (has(s, a) != want) bad++;
    }
    CHECK(bad == 0);
    mgw_ipset_free(s);
}

int main(void)
{
    RUN(test_v4_blocks);
    RUN(test_zero_and_full_prefixes);
    RUN(test_overlapping_and_adjacent);
    RUN(test_errors);
    RUN(test_file);
    RUN(test_many_against_linear);
    return DONE();
}
