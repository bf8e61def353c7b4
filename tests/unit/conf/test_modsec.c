/*
 * Managed rule sets (conf/modsec.c): configuration -> ModSecurity rules text (the rule
 * set, paranoia level, threshold, exclusions by id, range and tag), what it refuses,
 * reading rule ids, messages and the anomaly score out of ModSecurity's log messages,
 * and one compiled CRS set evaluating a clean request, an attack and a count of matches.
 */
#include "conf/modsec.c"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "unit.h"

static const mgw_modsec_conf_t base = {
    .managed = "owasp-crs", .paranoia_level = 1, .anomaly_threshold = 5, .inspection_size = 8192};

static int has(const mgw_buf_t *b, const char *s)
{
    return b->n && memmem(b->p, b->n, s, strlen(s)) != NULL;
}

static void test_rules_text(void)
{
    const char *excl[] = {"942100", "941100-941199", "attack-sqli"};
    mgw_modsec_conf_t c = base;
    c.paranoia_level = 3;
    c.anomaly_threshold = 12;
    c.inspection_size = 16384;
    c.exclusions = excl;
    c.nexclusions = 3;
    mgw_buf_t head = {0}, tail = {0};
    char err[256];
    CHECK(mgw_modsec_rules_text(&c, &head, &tail, err, sizeof err) == 0);
    CHECK(has(&head, "SecRuleEngine On\n"));
    CHECK(has(&head, "SecResponseBodyAccess Off\n"));
    CHECK(has(&head, "SecRequestBodyLimit 16384\n"));
    CHECK(has(&head, "Include " MGW_CRS_SETUP "\n"));
    CHECK(has(&head, "setvar:tx.paranoia_level=3\""));
    CHECK(has(&head, "setvar:tx.inbound_anomaly_score_threshold=12\""));
    CHECK(has(&head, "Include " MGW_CRS_RULES "/REQUEST-*.conf\n"));
    CHECK(!has(&head, "RESPONSE-"));
    CHECK(has(&head, "SecRuleRemoveById 901321\n"));
    CHECK(has(&tail, "SecRuleRemoveById 942100\n"));
    CHECK(has(&tail, "SecRuleRemoveById 941100-941199\n"));
    CHECK(has(&tail, "SecRuleRemoveByTag \"attack-sqli\"\n"));
    CHECK(has(&tail, "id:99010,phase:2,pass,log,"));
    CHECK(!has(&tail, "noauditlog")); /* it would silence the score message */
    mgw_buf_free(&head);
    mgw_buf_free(&tail);
}

static const char *refused(mgw_modsec_conf_t c)
{
    static char err[256];
    mgw_buf_t head = {0}, tail = {0};
    err[0] = '\0';
    int rc = mgw_modsec_rules_text(&c, &head, &tail, err, sizeof err);
    mgw_buf_free(&head);
    mgw_buf_free(&tail);
    return rc == 0 ? NULL : err;
}

static void test_rules_text_refuses(void)
{
    mgw_modsec_conf_t c = base;
    c.managed = "owasp-crs-9";
    CHECK_STR(refused(c), "unknown managed rule set \"owasp-crs-9\"");
    c = base;
    c.paranoia_level = 5;
    CHECK_STR(refused(c), "paranoia_level 5 is out of range (1 to 4)");
    c.paranoia_level = 0;
    CHECK(refused(c) != NULL);
    c = base;
    c.anomaly_threshold = 0;
    CHECK(refused(c) != NULL);
    const char *bad[] = {"942200-942100"}, *quote[] = {"attack\"sqli"}, *empty[] = {""};
    c = base;
    c.exclusions = bad;
    c.nexclusions = 1;
    CHECK_STR(refused(c), "exclusion \"942200-942100\" is neither a rule id, an id range "
                          "(942100-942199) nor a tag");
    c.exclusions = quote;
    CHECK(refused(c) != NULL);
    c.exclusions = empty;
    CHECK(refused(c) != NULL);
}

static void test_parse_message(void)
{
    mgw_pool_t *pool = mgw_pool_create(4096);
    mgw_modsec_result_t res = {.score = -1};
    mgw__modsec_parse_message(
        "ModSecurity: Warning. detected SQLi using libinjection. [file \"/x/REQUEST-942.conf\"] "
        "[line \"46\"] [id \"942100\"] [rev \"\"] [msg \"SQL Injection Attack Detected via "
        "libinjection\"] [data \"Matched Data: s&1c found within ARGS:q: ' OR 1=1--\"] "
        "[severity \"2\"] [uri \"/x\"]",
        pool, &res);
    CHECK(res.nmatches == 1);
    CHECK_STR(res.ids[0], "942100");
    CHECK_STR(res.messages[0], "SQL Injection Attack Detected via libinjection");
    CHECK(res.score == -1);
    /* moongate's score rule: a score, not a match */
    mgw__modsec_parse_message("ModSecurity: Warning. [id \"99010\"] [rev \"\"] [msg \"Anomaly "
                              "Score: 3\"] [data \"\"]",
                              pool, &res);
    CHECK(res.nmatches == 1);
    CHECK(res.score == 3);
    /* CRS's blocking rule: a match, and the score */
    mgw__modsec_parse_message("[client 127.0.0.1] ModSecurity: Access denied with code 403 "
                              "(phase 2). [id \"949110\"] [rev \"\"] [msg \"Inbound Anomaly Score "
                              "Exceeded (Total Score: 8)\"]",
                              pool, &res);
    CHECK(res.nmatches == 2);
    CHECK_STR(res.ids[1], "949110");
    CHECK(res.score == 8);
    /* quotes and control bytes never reach the access log; a message without an id is
     * ignored */
    mgw__modsec_parse_message("[id \"10001\"] [msg \"evil \\ header\"]", pool, &res);
    CHECK_STR(res.messages[2], "evil ' header");
    mgw__modsec_parse_message("ModSecurity: no id here [msg \"x\"]", pool, &res);
    CHECK(res.nmatches == 3);
    /* past the limit: counted, not kept */
    for (int i = 0; i < MGW_MODSEC_MAX_MATCHES; i++)
        mgw__modsec_parse_message("[id \"1\"] [msg \"m\"]", pool, &res);
    CHECK(res.nmatches == MGW_MODSEC_MAX_MATCHES);
    CHECK(res.dropped == 3);
    mgw_pool_destroy(pool);
}

static int eval(const mgw_modsec_t *m, const char *target, const char *ua, const char *body,
                mgw_modsec_result_t *res)
{
    mgw_pool_t *pool = mgw_pool_create(4096);
    mgw_hdr_t hdrs[] = {
        {MGW_STR("Host"), MGW_STR("api.example.test")},
        {MGW_STR("User-Agent"), {ua, strlen(ua)}},
        {MGW_STR("Accept"), MGW_STR("*/*")},
        {MGW_STR("Content-Type"), MGW_STR("application/json")},
    };
    mgw_modsec_req_t in = {.id = "unit",
                           .client_ip = "127.0.0.1",
                           .method = body ? MGW_STR("POST") : MGW_STR("GET"),
                           .target = {target, strlen(target)},
                           .http_minor = 1,
                           .headers = hdrs,
                           .nheaders = body ? 4 : 3,
                           .body = body,
                           .body_len = body ? strlen(body) : 0};
    const char *err = NULL;
    int rc = mgw_modsec_eval(m, pool, &in, res, &err);
    /* the strings live in the pool: keep only numbers */
    for (int i = 0; i < res->nmatches; i++)
        res->ids[i] = res->messages[i] = NULL;
    mgw_pool_destroy(pool);
    return rc;
}

static void test_compile_and_eval(void)
{
    char err[2048];
    mgw_modsec_conf_t c = base;
    c.inspection_size = 64;
    mgw_modsec_t *m = mgw_modsec_compile(&c, err, sizeof err);
    CHECK(m != NULL);
    if (m == NULL) {
        printf("# %s\n", err);
        return;
    }
    mgw_modsec_result_t res;
    const char *ua = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
    CHECK(eval(m, "/search?q=running+shoes", ua, NULL, &res) == 0);
    CHECK(!res.blocked && res.nmatches == 0 && res.score == -1);
    CHECK(eval(m, "/search?q=%27%20OR%201%3D1--", ua, NULL, &res) == 0);
    CHECK(res.blocked && res.status == 403 && res.score >= 5);
    CHECK(eval(m, "/", "sqlmap/1.7", NULL, &res) == 0);
    CHECK(res.blocked);
    /* the body counts up to inspection_size (64 bytes) */
    CHECK(eval(m, "/", ua, "{\"q\":\"1 UNION SELECT password FROM users\"}", &res) == 0);
    CHECK(res.blocked);
    CHECK(
        eval(m, "/", ua,
             "{\"pad\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\","
             "\"q\":\"1 UNION SELECT pass FROM users\"}",
             &res) == 0);
    CHECK(!res.blocked);
    mgw_modsec_free(m);

    /* a rules file that does not parse: ModSecurity's message with file and line */
    char path[] = "/tmp/mgw-test-modsec-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    FILE *f = fdopen(fd, "w");
    fputs("SecRule ARGS \"@rx a\" \"id:10002,phase:2,pass\"\nSecRule ARGS @rx\n", f);
    fclose(f);
    const char *files[] = {path};
    c.rules_files = files;
    c.nrules_files = 1;
    CHECK(mgw_modsec_compile(&c, err, sizeof err) == NULL);
    CHECK(strncmp(err, "ModSecurity: ", 13) == 0);
    CHECK(strstr(err, path) != NULL);
    CHECK(strstr(err, "Line: 2") != NULL);
    unlink(path);
}

int main(void)
{
    RUN(test_rules_text);
    RUN(test_rules_text_refuses);
    RUN(test_parse_message);
    RUN(test_compile_and_eval);
    return DONE();
}
