/* Country databases (base/geodb.h): Tor-format files in a temporary directory, their
 * lookups at the edges of ranges, "??", comments, every kind of bad line, and the
 * registry that shares a database while its files are unchanged. */
#include "base/geodb.c"

#include <stdio.h>

#include "unit.h"

static char dir[] = "/tmp/mgw-geodb-XXXXXX";
static char p4[256], p6[256], bad[256];

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    fputs(text, f);
    fclose(f);
}

static const char V4[] = "# a comment, then ranges\n"
                         "\n"
                         "0,255,ZZ\n"
                         "16777216,16777471,AU\r\n"
                         "  16777472,16778239,CN  \n"
                         "16778240,16779263,??\n"
                         "# in the middle\n"
                         "134744064,134744319,US\n"  /* 8.8.8.0/24 */
                         "4294967040,4294967295,DE"; /* the last /24, no newline at the end */

static const char V6[] = "# IPv6\n"
                         "::,::ff,ZZ\n"
                         "2001:2::,2001:2:0:ffff:ffff:ffff:ffff:ffff,JP\n"
                         "2001:3::,2001:3:0:ffff:ffff:ffff:ffff:ffff,??\n"
                         "2a00:1450::,2a00:1450:ffff:ffff:ffff:ffff:ffff:ffff,IE\n"
                         "ffff::,ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff,FR\n";

static int code(const mgw_geodb_t *db, const char *addr)
{
    return mgw_geodb_lookup(db, addr, strlen(addr));
}

static mgw_geodb_t *get(const char *a, const char *b, mgw_geodb_info_t *info, char *err)
{
    return mgw_geodb_get(a, b, info, err, 512);
}

static void test_lookups(void)
{
    mgw_geodb_info_t info;
    char err[512] = "";
    mgw_geodb_t *db = get(p4, p6, &info, err);
    CHECK(db != NULL);
    if (db == NULL) {
        printf("#   %s\n", err);
        return;
    }
    CHECK(info.n4 == 5); /* the "??" range is left out */
    CHECK(info.n6 == 4);
    CHECK(info.load_ms >= 0);
    CHECK(code(db, "0.0.0.0") == MGW_GEO_CODE('Z', 'Z'));
    CHECK(code(db, "0.0.0.255") == MGW_GEO_CODE('Z', 'Z'));
    CHECK(code(db, "0.0.1.0") == -1); /* between ranges */
    CHECK(code(db, "1.0.0.0") == MGW_GEO_CODE('A', 'U'));
    CHECK(code(db, "1.0.0.255") == MGW_GEO_CODE('A', 'U'));
    CHECK(code(db, "1.0.1.0") == MGW_GEO_CODE('C', 'N'));
    CHECK(code(db, "1.0.3.255") == MGW_GEO_CODE('C', 'N'));
    CHECK(code(db, "1.0.4.0") == -1); /* "??" */
    CHECK(code(db, "1.0.7.255") == -1);
    CHECK(code(db, "8.8.8.8") == MGW_GEO_CODE('U', 'S'));
    CHECK(code(db, "8.8.9.0") == -1);
    CHECK(code(db, "255.255.255.0") == MGW_GEO_CODE('D', 'E'));
    CHECK(code(db, "255.255.255.255") == MGW_GEO_CODE('D', 'E'));
    CHECK(code(db, "255.255.254.255") == -1);
    CHECK(code(db, "10.1.2.3") == -1);
    /* an IPv4-mapped IPv6 address is its IPv4 address */
    CHECK(code(db, "::ffff:8.8.8.8") == MGW_GEO_CODE('U', 'S'));
    CHECK(code(db, "::") == MGW_GEO_CODE('Z', 'Z'));
    CHECK(code(db, "::ff") == MGW_GEO_CODE('Z', 'Z'));
    CHECK(code(db, "::100") == -1);
    CHECK(code(db, "2001:2::1") == MGW_GEO_CODE('J', 'P'));
    CHECK(code(db, "2001:2:0:ffff:ffff:ffff:ffff:ffff") == MGW_GEO_CODE('J', 'P'));
    CHECK(code(db, "2001:2:1::") == -1);
    CHECK(code(db, "2001:3::5") == -1);
    CHECK(code(db, "2a00:1450:4001:81d::200e") == MGW_GEO_CODE('I', 'E'));
    CHECK(code(db, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff") == MGW_GEO_CODE('F', 'R'));
    CHECK(code(db, "fe80::1") == -1);
    CHECK(code(db, "not an address") == MGW_GEO_NOT_ADDRESS);
    CHECK(code(db, "") == MGW_GEO_NOT_ADDRESS);
    CHECK(code(db, "8.8.8.8 ") == MGW_GEO_NOT_ADDRESS);
    CHECK(code(db, "198.51.100.7:443") == MGW_GEO_NOT_ADDRESS);
    char text[3];
    mgw_geo_code_text(code(db, "8.8.8.8"), text);
    CHECK_STR(text, "US");
    mgw_geo_code_text(MGW_GEO_CODE('Z', 'Z'), text);
    CHECK_STR(text, "ZZ");
    mgw_geodb_release(db);
}

/* A database is shared while its files are unchanged, loaded again when one changes,
 * and freed by its last release. */
static void test_shared(void)
{
    mgw_geodb_info_t info;
    char err[512];
    mgw_geodb_t *a = get(p4, p6, &info, err);
    CHECK(a != NULL && info.load_ms >= 0);
    mgw_geodb_t *b = get(p4, p6, &info, err);
    CHECK(b == a);
    CHECK(info.load_ms == -1);
    CHECK(info.n4 == 5 && info.n6 == 4);
    CHECK(a->refs == 2);
    /* a changed file (size and mtime): a new database next to the old one */
    char c4[300];
    snprintf(c4, sizeof(c4), "%s/changed4", dir);
    write_file(c4, V4);
    mgw_geodb_t *c = get(c4, p6, &info, err);
    CHECK(c != NULL && c != a && info.load_ms >= 0);
    write_file(c4, "1,2,FR\n");
    mgw_geodb_t *d = get(c4, p6, &info, err);
    CHECK(d != NULL && d != c && info.load_ms >= 0 && info.n4 == 1);
    CHECK(code(c, "8.8.8.8") == MGW_GEO_CODE('U', 'S')); /* the old one still answers */
    CHECK(code(d, "8.8.8.8") == -1);
    CHECK(code(d, "0.0.0.2") == MGW_GEO_CODE('F', 'R'));
    mgw_geodb_release(c);
    mgw_geodb_release(d);
    mgw_geodb_release(b);
    CHECK(registry == a && a->refs == 1);
    mgw_geodb_release(a);
    CHECK(registry == NULL);
    mgw_geodb_release(NULL);
}

/* A file with no ranges (only comments, or /dev/null) is a database without them. */
static void test_empty(void)
{
    mgw_geodb_info_t info;
    char err[512];
    write_file(bad, "# nothing\n\n");
    mgw_geodb_t *db = get(bad, "/dev/null", &info, err);
    CHECK(db != NULL);
    if (db == NULL) return;
    CHECK(info.n4 == 0 && info.n6 == 0);
    CHECK(code(db, "8.8.8.8") == -1);
    CHECK(code(db, "2001:2::1") == -1);
    mgw_geodb_release(db);
}

/* The error for a file holding text (as the IPv4 file when v6 is 0, else the IPv6 one). */
static void expect_error(int v6, const char *text, const char *want)
{
    mgw_geodb_info_t info;
    char err[512] = "", full[600];
    write_file(bad, text);
    mgw_geodb_t *db = v6 ? get(p4, bad, &info, err) : get(bad, p6, &info, err);
    CHECK(db == NULL);
    if (db) mgw_geodb_release(db);
    CHECK(info.file == (v6 ? 6 : 4));
    CHECK(info.unreadable == 0);
    snprintf(full, sizeof(full), "%s:%s", bad, want);
    CHECK_STR(err, full);
}

static void test_bad_lines(void)
{
    expect_error(0, "# x\n1,2,US\nfoo\n",
                 "3: expected FIRST,LAST,CC (FIRST and LAST: integers 0 to 4294967295, CC: a "
                 "country code), got \"foo\"");
    expect_error(0, "1,2\n",
                 "1: expected FIRST,LAST,CC (FIRST and LAST: integers 0 to 4294967295, CC: a "
                 "country code), got \"1,2\"");
    expect_error(0, "1.0.0.0,1.0.0.255,AU\n",
                 "1: expected FIRST,LAST,CC (FIRST and LAST: integers 0 to 4294967295, CC: a "
                 "country code), got \"1.0.0.0,1.0.0.255,AU\"");
    expect_error(0, "1,4294967296,US\n",
                 "1: expected FIRST,LAST,CC (FIRST and LAST: integers 0 to 4294967295, CC: a "
                 "country code), got \"1,4294967296,US\"");
    expect_error(0, "1,99999999999999999999,US\n",
                 "1: expected FIRST,LAST,CC (FIRST and LAST: integers 0 to 4294967295, CC: a "
                 "country code), got \"1,99999999999999999999,US\"");
    expect_error(0, "1,2,us\n",
                 "1: \"us\" is not a country code (two letters A-Z, or ?? for unknown)");
    expect_error(0, "1,2,USA\n",
                 "1: \"USA\" is not a country code (two letters A-Z, or ?? for unknown)");
    expect_error(0, "1,2,\n", "1: \"\" is not a country code (two letters A-Z, or ?? for unknown)");
    expect_error(0, "1,2,A1\n",
                 "1: \"A1\" is not a country code (two letters A-Z, or ?? for unknown)");
    expect_error(0, "5,4,US\n", "1: the range ends before it starts, got \"5,4,US\"");
    expect_error(0, "1,5,US\n\n5,9,DE\n",
                 "3: the range starts at or before the end of the range on line 1 (ranges must be "
                 "in increasing order and must not overlap)");
    expect_error(0, "10,20,US\n1,5,DE\n",
                 "2: the range starts at or before the end of the range on line 1 (ranges must be "
                 "in increasing order and must not overlap)");
    /* a "??" range counts for the order too */
    expect_error(0, "1,5,??\n3,9,DE\n",
                 "2: the range starts at or before the end of the range on line 1 (ranges must be "
                 "in increasing order and must not overlap)");
    expect_error(1, "2001:2::,2001:2::ff\n",
                 "1: expected FIRST,LAST,CC (FIRST and LAST: IPv6 addresses, CC: a country "
                 "code), got \"2001:2::,2001:2::ff\"");
    expect_error(1, "2001:2::,2001:2::zz,JP\n", "1: \"2001:2::zz\" is not an IPv6 address");
    expect_error(1, "1.0.0.0,1.0.0.255,AU\n", "1: \"1.0.0.0\" is not an IPv6 address");
    expect_error(1, "::ffff:1.0.0.0,::ffff:1.0.0.255,AU\n",
                 "1: \"::ffff:1.0.0.0\" is not an IPv6 address");
    expect_error(1, "2001:2::,2001:2::ff,J\n",
                 "1: \"J\" is not a country code (two letters A-Z, or ?? for unknown)");
    expect_error(1, "2001:2::ff,2001:2::,JP\n",
                 "1: the range ends before it starts, got \"2001:2::ff,2001:2::,JP\"");
    expect_error(1, "2001:2::,2001:2::ff,JP\n2001:2::ff,2001:2::1ff,JP\n",
                 "2: the range starts at or before the end of the range on line 1 (ranges must be "
                 "in increasing order and must not overlap)");
}

static void test_unreadable(void)
{
    mgw_geodb_info_t info;
    char err[512], missing[300], want[600];
    snprintf(missing, sizeof(missing), "%s/missing", dir);
    CHECK(get(missing, p6, &info, err) == NULL);
    CHECK(info.file == 4 && info.unreadable == 1);
    snprintf(want, sizeof(want), "cannot read \"%s\": No such file or directory", missing);
    CHECK_STR(err, want);
    CHECK(get(p4, missing, &info, err) == NULL);
    CHECK(info.file == 6 && info.unreadable == 1);
    CHECK_STR(err, want);
    /* a directory stats fine but cannot be read */
    CHECK(get(dir, p6, &info, err) == NULL);
    CHECK(info.file == 4 && info.unreadable == 1);
    CHECK(registry == NULL);
}

int main(void)
{
    if (mkdtemp(dir) == NULL) return 1;
    snprintf(p4, sizeof(p4), "%s/geoip", dir);
    snprintf(p6, sizeof(p6), "%s/geoip6", dir);
    snprintf(bad, sizeof(bad), "%s/bad", dir);
    write_file(p4, V4);
    write_file(p6, V6);
    RUN(test_lookups);
    RUN(test_shared);
    RUN(test_empty);
    RUN(test_bad_lines);
    RUN(test_unreadable);
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0) return 1;
    return DONE();
}
