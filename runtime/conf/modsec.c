/*
 * Managed rule sets on libmodsecurity (modsec.h).
 *
 * Threads. libmodsecurity's maintainers state that loading rules is not thread-safe
 * (the SecLang parser keeps global state: ModSecurity issues #2536 and #3138) and that
 * once loaded, one RulesSet may serve transactions in several threads at once (#2536,
 * #3215; the @pm automata are built at load time since the fix of #1573, PCRE2 match
 * data is per match). So a rule set is compiled once per generation, under
 * load_lock, and shared by every worker. The one piece of shared mutable state CRS
 * would use, the in-memory persistent collections (initcol in rule 901321, whose reads
 * are not locked against updates: #3054), is left out: CRS's IP reputation and DoS
 * rules need it, and a gateway has its own IP sets and throttles for those.
 *
 * Cost. A transaction is allocated by libmodsecurity per request (3.0 cannot reset and
 * reuse one: #2144); it is given the request id (no id generation), phase 1 and 2 run,
 * the response phases and the logging phase never do, and the response rule files are
 * not loaded. Clean requests produce no log message, so the message callback (which
 * formats text) runs only for requests that match.
 */
#include "conf/modsec.h"

#include <modsecurity/intervention.h>
#include <modsecurity/modsecurity.h>
#include <modsecurity/rules_set.h>
#include <modsecurity/transaction.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef MGW_CRS_SETUP
#define MGW_CRS_SETUP "/etc/modsecurity/crs/crs-setup.conf"
#endif
#ifndef MGW_CRS_RULES
#define MGW_CRS_RULES "/usr/share/modsecurity-crs/rules"
#endif

/* moongate's own rule ids, in ModSecurity's range for local rules. */
#define ID_XML 99001
#define ID_JSON 99002
#define ID_SCORE 99010
#define ID_CRS_BLOCK "949110"

struct mgw_modsec_s {
    RulesSet *rules;
    uint64_t inspection_size;
};

/* ---- the managed rule sets ---- */

typedef struct {
    const char *name;
    /* writes the set's rules (after the common settings, before the user's files and
     * the exclusions) */
    void (*rules)(const mgw_modsec_conf_t *c, mgw_buf_t *out);
} managed_t;

/*
 * The OWASP Core Rule Set as Debian's modsecurity-crs ships it: its crs-setup.conf, the
 * paranoia level and inbound threshold, and the REQUEST-* rule files. CRS's own blocking
 * rule (949110) stays: it is what denies at the threshold; its message carries the score.
 */
static void crs_rules(const mgw_modsec_conf_t *c, mgw_buf_t *out)
{
    mgw_buf_printf(out, "Include %s\n", MGW_CRS_SETUP);
    mgw_buf_printf(out,
                   "SecAction \"id:900000,phase:1,nolog,pass,t:none,"
                   "setvar:tx.paranoia_level=%d\"\n",
                   c->paranoia_level);
    mgw_buf_printf(out,
                   "SecAction \"id:900110,phase:1,nolog,pass,t:none,"
                   "setvar:tx.inbound_anomaly_score_threshold=%d\"\n",
                   c->anomaly_threshold);
    mgw_buf_printf(out, "Include %s/REQUEST-*.conf\n", MGW_CRS_RULES);
    mgw_buf_adds(out, "SecRuleRemoveById 901321\n");
}

static const managed_t managed[] = {
    {"owasp-crs", crs_rules},
};

const char *const mgw_modsec_names[] = {"owasp-crs", NULL};

static const managed_t *find_managed(const char *name)
{
    for (size_t i = 0; i < sizeof(managed) / sizeof(managed[0]); i++)
        if (name && strcmp(managed[i].name, name) == 0) return &managed[i];
    return NULL;
}

/* ---- configuration -> rules text ---- */

static int all_digits(const char *s, size_t n)
{
    if (n == 0 || n > 9) return 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9') return 0;
    return 1;
}

/* 1: an id or an id range ("942100", "942100-942199"); 0: a tag; -1: neither. */
static int exclusion_kind(const char *e)
{
    const char *dash = strchr(e, '-');
    size_t n = strlen(e);
    if (all_digits(e, n)) return 1;
    if (dash && all_digits(e, (size_t)(dash - e)) && all_digits(dash + 1, strlen(dash + 1))) {
        return atol(e) <= atol(dash + 1) ? 1 : -1;
    }
    if (n == 0 || n > 128) return -1;
    for (const char *p = e; *p; p++) {
        char ch = *p;
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '-' || ch == '_' || ch == '/' || ch == '.' || ch == ':'))
            return -1;
    }
    return 0;
}

int mgw_modsec_rules_text(const mgw_modsec_conf_t *c, mgw_buf_t *out, mgw_buf_t *tail, char *err,
                          size_t errlen)
{
    const managed_t *m = find_managed(c->managed);
    if (m == NULL) {
        snprintf(err, errlen, "unknown managed rule set \"%s\"", c->managed ? c->managed : "");
        return -1;
    }
    if (c->paranoia_level < 1 || c->paranoia_level > 4) {
        snprintf(err, errlen, "paranoia_level %d is out of range (1 to 4)", c->paranoia_level);
        return -1;
    }
    if (c->anomaly_threshold < 1) {
        snprintf(err, errlen, "anomaly_threshold must be at least 1");
        return -1;
    }
    for (int i = 0; i < c->nexclusions; i++)
        if (exclusion_kind(c->exclusions[i]) < 0) {
            snprintf(err, errlen,
                     "exclusion \"%s\" is neither a rule id, an id range (942100-942199) nor a tag",
                     c->exclusions[i]);
            return -1;
        }
    uint64_t limit = c->inspection_size ? c->inspection_size : 1;
    /* Only the request phases run. The body moongate feeds is cut at inspection_size
     * already; the limits only keep ModSecurity from refusing it. */
    mgw_buf_adds(out, "SecRuleEngine On\n"
                      "SecRequestBodyAccess On\n"
                      "SecResponseBodyAccess Off\n"
                      "SecAuditEngine Off\n"
                      "SecRequestBodyLimitAction ProcessPartial\n"
                      "SecArgumentSeparator &\n"
                      "SecCookieFormat 0\n");
    mgw_buf_printf(out, "SecRequestBodyLimit %llu\nSecRequestBodyNoFilesLimit %llu\n",
                   (unsigned long long)limit, (unsigned long long)limit);
    /* The body processors of ModSecurity's recommended configuration, so that the rules
     * see the arguments of XML and JSON bodies. */
    mgw_buf_printf(
        out,
        "SecRule REQUEST_HEADERS:Content-Type \"@rx ^(?:application(?:/soap\\+|/)|text/)xml\" "
        "\"id:%d,phase:1,t:none,t:lowercase,pass,nolog,ctl:requestBodyProcessor=XML\"\n",
        ID_XML);
    mgw_buf_printf(
        out,
        "SecRule REQUEST_HEADERS:Content-Type \"@rx ^application/json\" "
        "\"id:%d,phase:1,t:none,t:lowercase,pass,nolog,ctl:requestBodyProcessor=JSON\"\n",
        ID_JSON);
    m->rules(c, out);
    /* the user's rule files are loaded here, between out and tail (mgw_modsec_compile) */
    for (int i = 0; i < c->nexclusions; i++) {
        if (exclusion_kind(c->exclusions[i]) == 1)
            mgw_buf_printf(tail, "SecRuleRemoveById %s\n", c->exclusions[i]);
        else
            mgw_buf_printf(tail, "SecRuleRemoveByTag \"%s\"\n", c->exclusions[i]);
    }
    /* The anomaly score of a request that was not blocked (a blocked one's is in CRS's
     * blocking message): logged only when there is one, so clean requests log nothing.
     * (noauditlog would silence it: libmodsecurity then skips the log callback too.) */
    mgw_buf_printf(tail,
                   "SecRule TX:ANOMALY_SCORE \"@gt 0\" \"id:%d,phase:2,pass,log,"
                   "msg:'Anomaly Score: %%{tx.anomaly_score}'\"\n",
                   ID_SCORE);
    return 0;
}

/* ---- compiling ---- */

static pthread_mutex_t load_lock = PTHREAD_MUTEX_INITIALIZER;
static ModSecurity *msc; /* the process's engine, made with the first rule set */

static void log_cb(void *data, const void *msg);

/* Adds text (NUL-terminated) or the rules of file to rules; NULL or ModSecurity's message. */
static int add_rules(RulesSet *rules, const char *text, const char *file, char *err, size_t errlen)
{
    const char *perr = NULL;
    int rc = text ? msc_rules_add(rules, text, &perr) : msc_rules_add_file(rules, file, &perr);
    if (rc < 0) {
        /* ModSecurity's message names the file and line ("Rules error. File: x. Line: 3.
         * Column: 9. ..."); trailing blanks are dropped */
        snprintf(err, errlen, "ModSecurity: %s", perr ? perr : "the rules failed to load");
        size_t n = strlen(err);
        while (n && (err[n - 1] == '\n' || err[n - 1] == ' '))
            err[--n] = '\0';
    }
    free((void *)perr);
    return rc < 0 ? -1 : 0;
}

mgw_modsec_t *mgw_modsec_compile(const mgw_modsec_conf_t *c, char *err, size_t errlen)
{
    mgw_buf_t head = {0}, tail = {0};
    if (mgw_modsec_rules_text(c, &head, &tail, err, errlen) != 0) {
        mgw_buf_free(&head);
        mgw_buf_free(&tail);
        return NULL;
    }
    mgw_buf_addc(&head, '\0');
    mgw_buf_addc(&tail, '\0');
    pthread_mutex_lock(&load_lock);
    if (msc == NULL) {
        msc = msc_init();
        msc_set_connector_info(msc, "moongate");
        msc_set_log_cb(msc, log_cb);
    }
    RulesSet *rules = msc_create_rules_set();
    int rc = add_rules(rules, head.p, NULL, err, errlen);
    for (int i = 0; rc == 0 && i < c->nrules_files; i++)
        rc = add_rules(rules, NULL, c->rules_files[i], err, errlen);
    if (rc == 0) rc = add_rules(rules, tail.p, NULL, err, errlen);
    pthread_mutex_unlock(&load_lock);
    mgw_buf_free(&head);
    mgw_buf_free(&tail);
    if (rc != 0) {
        msc_rules_cleanup(rules);
        return NULL;
    }
    mgw_modsec_t *m = mgw_calloc(1, sizeof(*m));
    m->rules = rules;
    m->inspection_size = c->inspection_size;
    return m;
}

void mgw_modsec_free(mgw_modsec_t *m)
{
    if (m == NULL) return;
    msc_rules_cleanup(m->rules);
    free(m);
}

uint64_t mgw_modsec_inspection_size(const mgw_modsec_t *m)
{
    return m->inspection_size;
}

/* ---- reading results ---- */

/* The value of field name ([name "value"]) in msg, or NULL; *n its length. */
static const char *field(const char *msg, const char *name, size_t *n)
{
    char key[24];
    snprintf(key, sizeof(key), "[%s \"", name);
    const char *p = strstr(msg, key);
    if (p == NULL) return NULL;
    p += strlen(key);
    const char *e = strstr(p, "\"]");
    if (e == NULL) return NULL;
    *n = (size_t)(e - p);
    return p;
}

static int number_after(const char *s, size_t n, const char *label)
{
    size_t ln = strlen(label);
    for (size_t i = 0; i + ln <= n; i++)
        if (memcmp(s + i, label, ln) == 0) return atoi(s + i + ln);
    return -1;
}

/* A message for a log line in the access log: no quotes, backslashes or control bytes. */
static char *clean_dup(mgw_pool_t *pool, const char *s, size_t n)
{
    char *d = mgw_pool_strndup(pool, s, n);
    for (char *p = d; *p; p++)
        if (*p == '"' || *p == '\\' || (unsigned char)*p < 0x20) *p = '\'';
    return d;
}

void mgw__modsec_parse_message(const char *msg, mgw_pool_t *pool, mgw_modsec_result_t *res)
{
    size_t idn = 0, mn = 0;
    const char *id = field(msg, "id", &idn);
    if (id == NULL || idn == 0) return;
    const char *text = field(msg, "msg", &mn);
    if (idn == 5 && memcmp(id, "99010", 5) == 0) { /* ID_SCORE */
        if (text) res->score = number_after(text, mn, "Anomaly Score: ");
        return;
    }
    if (idn == 6 && memcmp(id, ID_CRS_BLOCK, 6) == 0 && text)
        res->score = number_after(text, mn, "(Total Score: ");
    if (res->nmatches == MGW_MODSEC_MAX_MATCHES) {
        res->dropped++;
        return;
    }
    res->ids[res->nmatches] = clean_dup(pool, id, idn);
    res->messages[res->nmatches] = text ? clean_dup(pool, text, mn) : "";
    res->nmatches++;
}

/* ---- evaluating ---- */

typedef struct {
    Transaction *t;
    mgw_pool_t *pool;
    mgw_modsec_result_t *res; /* while an evaluation runs */
} txn_t;

static void log_cb(void *data, const void *msg)
{
    txn_t *x = data;
    if (x == NULL || x->res == NULL || msg == NULL) return;
    mgw__modsec_parse_message(msg, x->pool, x->res);
}

static void txn_cleanup_cb(void *data)
{
    txn_t *x = data;
    if (x->t) msc_transaction_cleanup(x->t);
    x->t = NULL;
}

/* 1 when the transaction decided to disrupt (deny, drop, redirect). */
static int intervened(txn_t *x)
{
    ModSecurityIntervention it = {.status = 200};
    int d = msc_intervention(x->t, &it);
    if (d && it.disruptive) {
        x->res->blocked = 1;
        x->res->status = it.status;
        /* the disruptive rule's message comes only here (CRS's 949110, with the score) */
        if (it.log) mgw__modsec_parse_message(it.log, x->pool, x->res);
    }
    free(it.url);
    free(it.log);
    return x->res->blocked;
}

int mgw_modsec_eval(const mgw_modsec_t *m, mgw_pool_t *pool, const mgw_modsec_req_t *in,
                    mgw_modsec_result_t *res, const char **err)
{
    memset(res, 0, sizeof(*res));
    res->score = -1;
    txn_t *x = mgw_pool_calloc(pool, sizeof(*x));
    x->pool = pool;
    x->res = res;
    x->t = msc_new_transaction_with_id(msc, m->rules, (char *)in->id, x);
    if (x->t == NULL) {
        *err = "ModSecurity could not start a transaction";
        return -1;
    }
    mgw_pool_cleanup_add(pool, txn_cleanup_cb, x);
    char *method = mgw_pool_strndup(pool, in->method.p, in->method.n);
    char *target = mgw_pool_strndup(pool, in->target.p, in->target.n);
    int ok = msc_process_connection(x->t, in->client_ip ? in->client_ip : "0.0.0.0",
                                    in->client_port, "127.0.0.1", 0);
    ok = ok && msc_process_uri(x->t, target, method, in->http_minor == 0 ? "1.0" : "1.1");
    for (int i = 0; ok && i < in->nheaders; i++)
        ok = msc_add_n_request_header(
            x->t, (const unsigned char *)in->headers[i].name.p, in->headers[i].name.n,
            (const unsigned char *)in->headers[i].value.p, in->headers[i].value.n);
    ok = ok && msc_process_request_headers(x->t);
    if (ok && !intervened(x)) {
        if (in->body && in->body_len) {
            size_t n = in->body_len < m->inspection_size ? in->body_len : m->inspection_size;
            ok = msc_append_request_body(x->t, (const unsigned char *)in->body, n);
        }
        ok = ok && msc_process_request_body(x->t);
        if (ok) intervened(x);
    }
    x->res = NULL;
    if (!ok) {
        *err = "ModSecurity failed to process the request";
        return -1;
    }
    return 0;
}

/*
 * libinjection. libmodsecurity links it in and its shared object exports the C entry
 * points (nm -D libmodsecurity.so.3: libinjection_sqli, libinjection_xss), which costs a
 * function call per value; a transaction with a one-rule @detectSQLi set costs the
 * transaction's allocation and set-up. The references are weak, so a libmodsecurity
 * built without them links and the statements report that they are unavailable.
 */
extern int libinjection_sqli(const char *s, size_t slen, char fingerprint[]) __attribute__((weak));
extern int libinjection_xss(const char *s, size_t slen) __attribute__((weak));

int mgw_modsec_detect_ok(void)
{
    return libinjection_sqli != NULL && libinjection_xss != NULL;
}

int mgw_modsec_is_sqli(const char *s, size_t n)
{
    char fp[8];
    return libinjection_sqli(s, n, fp) != 0;
}

int mgw_modsec_is_xss(const char *s, size_t n)
{
    return libinjection_xss(s, n) != 0;
}
