/* Rule statements (conf/wafstmt.h): compile errors with their path, and evaluation of
 * fields, constraints and nesting on requests built here. */
#include "conf/wafstmt.c"

#include "unit.h"

static mgw_pool_t *gp;

static mgw_wafstmt_t *compile1(mgw_wafstmt_node_conf_t *nodes, int n, char *err, size_t errlen)
{
    mgw_wafstmt_conf_t c = {.nodes = nodes, .nnodes = n};
    return mgw_wafstmt_compile(&c, gp, err, errlen);
}

static int eval(const mgw_wafstmt_t *s, const char *target, const mgw_hdr_t *h, int nh,
                const char *body)
{
    mgw_pool_t *p = mgw_pool_create(0);
    mgw_wafstmt_req_t in = {.client_ip = "127.0.0.1",
                            .method = MGW_STR("GET"),
                            .target = {target, strlen(target)},
                            .headers = h,
                            .nheaders = nh,
                            .body = body,
                            .body_len = body ? strlen(body) : 0};
    int rc = mgw_wafstmt_eval(s, &in, p);
    mgw_pool_destroy(p);
    return rc;
}

static void test_contains_word(void)
{
    char err[256];
    mgw_wafstmt_node_conf_t n = {.op = "byte_match",
                                 .where = "w",
                                 .field = "query_string",
                                 .search = MGW_STR("union"),
                                 .constraint = "CONTAINS_WORD"};
    mgw_wafstmt_t *s = compile1(&n, 1, err, sizeof(err));
    CHECK(s != NULL);
    CHECK(eval(s, "/?q=union", NULL, 0, NULL) == 1);
    CHECK(eval(s, "/?q=1+union+select", NULL, 0, NULL) == 1);
    CHECK(eval(s, "/?q=reunion", NULL, 0, NULL) == 0);
    CHECK(eval(s, "/?q=unions", NULL, 0, NULL) == 0);
    CHECK(eval(s, "/?q=reunion+union_x+union", NULL, 0, NULL) == 1);
    CHECK(eval(s, "/", NULL, 0, NULL) == 0);
}

static void test_body_oversize(void)
{
    char err[256];
    const char *modes[] = {"CONTINUE", "MATCH", "NO_MATCH"};
    int want_late[] = {0, 1, 0}, want_early[] = {1, 1, 0};
    for (int i = 0; i < 3; i++) {
        mgw_wafstmt_node_conf_t n = {.op = "byte_match",
                                     .where = "w",
                                     .field = "body",
                                     .oversize = modes[i],
                                     .size_limit = 8,
                                     .search = MGW_STR("evil"),
                                     .constraint = "CONTAINS"};
        mgw_wafstmt_t *s = compile1(&n, 1, err, sizeof(err));
        CHECK(s != NULL && mgw_wafstmt_needs_body(s));
        CHECK(eval(s, "/", NULL, 0, "0123456789evil") == want_late[i]);
        CHECK(eval(s, "/", NULL, 0, "evil5678901") == want_early[i]);
        CHECK(eval(s, "/", NULL, 0, "evil") == 1);
        CHECK(eval(s, "/", NULL, 0, NULL) == 0);
    }
}

static void test_forwarded_positions(void)
{
    char err[256];
    const char *addrs[] = {"10.0.0.0/8"};
    mgw_wafstmt_node_conf_t n = {.op = "ip_set",
                                 .where = "w",
                                 .values = addrs,
                                 .nvalues = 1,
                                 .header = "x-ff",
                                 .fallback = "NO_MATCH",
                                 .position = "ANY"};
    mgw_wafstmt_t *s = compile1(&n, 1, err, sizeof(err));
    CHECK(s != NULL);
    mgw_hdr_t h[1] = {{MGW_STR("X-FF"), MGW_STR(" 1.1.1.1 ,bad, 10.9.9.9 ")}};
    CHECK(eval(s, "/", h, 1, NULL) == 1);
    h[0].value = MGW_STR("1.1.1.1, bad");
    CHECK(eval(s, "/", h, 1, NULL) == 0);
    h[0].value = MGW_STR("bad, , junk");
    CHECK(eval(s, "/", h, 1, NULL) == 0);
    CHECK(eval(s, "/", NULL, 0, NULL) == 0);
}

/* The labels a geo_match statement adds, joined with commas. */
static char geo_labels[256];

static void collect_label(void *ud, const char *s, size_t n)
{
    (void)ud;
    size_t len = strlen(geo_labels);
    snprintf(geo_labels + len, sizeof(geo_labels) - len, "%s%.*s", len ? "," : "", (int)n, s);
}

static int eval_geo(const mgw_wafstmt_t *s, const char *client, const char *xff)
{
    mgw_pool_t *p = mgw_pool_create(0);
    mgw_hdr_t h = {MGW_STR("x-forwarded-for"), {xff, xff ? strlen(xff) : 0}};
    mgw_wafstmt_req_t in = {.client_ip = client,
                            .method = MGW_STR("GET"),
                            .target = MGW_STR("/"),
                            .headers = &h,
                            .nheaders = xff ? 1 : 0,
                            .add_label = collect_label};
    geo_labels[0] = '\0';
    int rc = mgw_wafstmt_eval(s, &in, p);
    mgw_pool_destroy(p);
    return rc;
}

/* geo_match on the client address and on a forwarded header: the match, the label added
 * whether it matches or not, no label without a country, the fallback. */
static void test_geo_match(void)
{
    char dir[] = "/tmp/mgw-wafstmt-XXXXXX", p4[64], p6[64], err[512];
    CHECK(mkdtemp(dir) != NULL);
    snprintf(p4, sizeof(p4), "%s/v4", dir);
    snprintf(p6, sizeof(p6), "%s/v6", dir);
    FILE *f = fopen(p4, "w");
    fputs("2130706432,2147483647,JP\n3325256704,3325256959,US\n3405803776,3405804031,DE\n", f);
    fclose(f);
    f = fopen(p6, "w");
    fputs("2001:db8::,2001:db8:0:ffff:ffff:ffff:ffff:ffff,US\n", f);
    fclose(f);
    mgw_geodb_info_t info;
    mgw_geodb_t *db = mgw_geodb_get(p4, p6, &info, err, sizeof(err));
    CHECK(db != NULL);
    const char *codes[] = {"US", "FR"};
    mgw_wafstmt_node_conf_t n = {
        .op = "geo_match", .where = "w", .values = codes, .nvalues = 2, .geodb = db};
    mgw_wafstmt_t *s = compile1(&n, 1, err, sizeof(err));
    CHECK(s != NULL);
    CHECK(eval_geo(s, "198.51.100.1", NULL) == 1);
    CHECK_STR(geo_labels, "awswaf:clientip:geo:country:US");
    CHECK(eval_geo(s, "127.0.0.1", "198.51.100.1") == 0); /* the header is not asked for */
    CHECK_STR(geo_labels, "awswaf:clientip:geo:country:JP");
    CHECK(eval_geo(s, "2001:db8::5", NULL) == 1);
    CHECK(eval_geo(s, "10.0.0.1", NULL) == 0);
    CHECK_STR(geo_labels, "");
    CHECK(eval_geo(s, NULL, NULL) == 0);

    const char *fallbacks[] = {"NO_MATCH", "MATCH"};
    for (int fb = 0; fb < 2; fb++) {
        n.header = "x-forwarded-for";
        n.fallback = fallbacks[fb];
        s = compile1(&n, 1, err, sizeof(err));
        CHECK(s != NULL);
        CHECK(eval_geo(s, "127.0.0.1", " 198.51.100.1 , 203.0.113.1") == 1);
        CHECK_STR(geo_labels, "awswaf:forwardedip:geo:country:US");
        CHECK(eval_geo(s, "198.51.100.1", "203.0.113.1, 198.51.100.1") == 0);
        CHECK_STR(geo_labels, "awswaf:forwardedip:geo:country:DE");
        CHECK(eval_geo(s, "198.51.100.1", "192.0.2.1") == 0); /* an address without a country */
        CHECK_STR(geo_labels, "");
        CHECK(eval_geo(s, "198.51.100.1", NULL) == fb);
        CHECK(eval_geo(s, "198.51.100.1", "unknown, 198.51.100.1") == fb);
        CHECK(eval_geo(s, "198.51.100.1", "") == fb);
        CHECK_STR(geo_labels, "");
    }

    n.geodb = NULL;
    CHECK(compile1(&n, 1, err, sizeof(err)) == NULL);
    CHECK_STR(err, "w: no country database was loaded (waf_geo)");
    n.geodb = db;
    const char *bad[] = {"US", "us"};
    n.values = bad;
    CHECK(compile1(&n, 1, err, sizeof(err)) == NULL);
    CHECK_STR(err, "w.country_codes[2]: \"us\" is not a country code");
    mgw_geodb_release(db);
    unlink(p4);
    unlink(p6);
    rmdir(dir);
}

static void test_nesting_and_errors(void)
{
    char err[256];
    int k1[] = {1, 2}, k2[] = {3};
    mgw_wafstmt_node_conf_t n[4] = {
        {.op = "and_statement", .where = "s.and", .kids = k1, .nkids = 2},
        {.op = "byte_match",
         .where = "s.and[1]",
         .field = "method",
         .search = MGW_STR("GET"),
         .constraint = "EXACTLY"},
        {.op = "not_statement", .where = "s.and[2]", .kids = k2, .nkids = 1},
        {.op = "regex_match",
         .where = "s.and[2].not",
         .field = "uri_path",
         .values = (const char *[]){"^/ok"},
         .nvalues = 1},
    };
    mgw_wafstmt_t *s = compile1(n, 4, err, sizeof(err));
    CHECK(s != NULL);
    CHECK(eval(s, "/bad", NULL, 0, NULL) == 1);
    CHECK(eval(s, "/ok/x", NULL, 0, NULL) == 0);
    n[3].values = (const char *[]){"(x"};
    CHECK(compile1(n, 4, err, sizeof(err)) == NULL);
    CHECK_STR(err,
              "s.and[2].not.regex_string: PCRE2 error at offset 2: missing closing parenthesis");
    n[3].values = (const char *[]){"x"};
    n[1].transforms = (const char *[]){"NOPE"};
    n[1].ntransforms = 1;
    CHECK(compile1(n, 4, err, sizeof(err)) == NULL);
    CHECK_STR(err, "s.and[1].text_transformations[1]: unknown transformation \"NOPE\"");
    n[1].ntransforms = 0;
    k1[1] = 0; /* a cycle */
    CHECK(compile1(n, 4, err, sizeof(err)) == NULL);
    CHECK_STR(err, "s.and: bad statement tree");
}

int main(void)
{
    gp = mgw_pool_create(0);
    RUN(test_contains_word);
    RUN(test_body_oversize);
    RUN(test_forwarded_positions);
    RUN(test_geo_match);
    RUN(test_nesting_and_errors);
    mgw_pool_destroy(gp);
    return DONE();
}
