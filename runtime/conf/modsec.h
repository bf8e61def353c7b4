/*
 * Managed rule sets of web ACLs (README "Managed rules"): a web ACL rule with
 * `managed = "owasp-crs"` is the OWASP Core Rule Set evaluated by libmodsecurity. This
 * file pair is the only place that calls libmodsecurity. A rule set is compiled once per
 * configuration generation and shared by every worker thread (libmodsecurity evaluates
 * a loaded rule set from several threads; loading is serialized here, see modsec.c);
 * each request that reaches the rule gets one ModSecurity transaction, which lives as
 * long as the request's pool.
 *
 * New managed rule sets are entries of the table in modsec.c (a name and the function
 * that writes its rules text), not new branches elsewhere.
 */
#ifndef MGW_MODSEC_H
#define MGW_MODSEC_H

#include <stdint.h>

#include "base/mem.h"
#include "base/pool.h"

typedef struct mgw_modsec_s mgw_modsec_t;

/* What a managed rule's configuration says (apis[id].stages[name].waf.rules[i]). */
typedef struct {
    const char *managed; /* the rule set's name: "owasp-crs" */
    int paranoia_level;  /* 1..4 */
    int anomaly_threshold;
    uint64_t inspection_size; /* body bytes the rules see, from the start */
    /* rule ids ("942100"), id ranges ("942100-942199") or tags ("attack-sqli") */
    const char **exclusions;
    int nexclusions;
    const char **rules_files; /* extra SecRule files, absolute paths */
    int nrules_files;
} mgw_modsec_conf_t;

/* The managed rule set names, NULL-terminated (for error messages and the schema). */
extern const char *const mgw_modsec_names[];

/*
 * Writes the ModSecurity configuration text of c: what comes before the user's rule
 * files into out, what comes after them (exclusions, the score rule) into tail (heap
 * buffers the caller frees). Returns 0, or -1 with the reason in err (an unknown rule
 * set, a paranoia level out of range, an exclusion that is neither an id, a range nor a
 * tag).
 */
int mgw_modsec_rules_text(const mgw_modsec_conf_t *c, mgw_buf_t *out, mgw_buf_t *tail, char *err,
                          size_t errlen);

/*
 * Compiles c into a rule set. Returns it, or NULL with ModSecurity's parse message (with
 * its file and line) in err. The set is freed by mgw_modsec_free once no request uses it
 * (the generation's pool cleanup).
 */
mgw_modsec_t *mgw_modsec_compile(const mgw_modsec_conf_t *c, char *err, size_t errlen);
void mgw_modsec_free(mgw_modsec_t *m);

/* The request body bytes the set inspects (its inspection_size). */
uint64_t mgw_modsec_inspection_size(const mgw_modsec_t *m);

/* One request as the rule set sees it; every string borrowed for the call. */
typedef struct {
    const char *id; /* the request id, NUL-terminated (ModSecurity's unique_id) */
    const char *client_ip;
    int client_port;
    mgw_str_t method, target; /* the request line's method and target (path?query) */
    int http_minor;           /* HTTP/1.x */
    const mgw_hdr_t *headers;
    int nheaders;
    const char *body; /* NULL: the request has no body */
    size_t body_len;
} mgw_modsec_req_t;

#define MGW_MODSEC_MAX_MATCHES 16

/* What an evaluation found. Strings live in the request pool. */
typedef struct {
    int blocked; /* the rule set decided to block (an anomaly score at the threshold, or a
                  * deny of a rule of its own) */
    int status;  /* the status its deny asked for (informational: moongate answers 403) */
    int score;   /* the inbound anomaly score, -1 when the set reported none */
    int nmatches;
    const char *ids[MGW_MODSEC_MAX_MATCHES];      /* matched rule ids, in order */
    const char *messages[MGW_MODSEC_MAX_MATCHES]; /* their msg texts */
    int dropped;                                  /* matches past MGW_MODSEC_MAX_MATCHES */
} mgw_modsec_result_t;

/*
 * Evaluates the request against m: the request line and headers (phase 1), then the
 * body phase (phase 2; with the first inspection_size bytes of the body when there is
 * one). The transaction is cleaned up when pool is destroyed. Returns 0 with *res
 * filled, or -1 with *err (a static or pool string) when libmodsecurity failed.
 */
int mgw_modsec_eval(const mgw_modsec_t *m, mgw_pool_t *pool, const mgw_modsec_req_t *in,
                    mgw_modsec_result_t *res, const char **err);

/*
 * libinjection as libmodsecurity carries it (its @detectSQLi and @detectXSS operators),
 * for the sqli_match and xss_match rule statements (conf/wafstmt.c). mgw_modsec_detect_ok
 * says whether this libmodsecurity exports them (Debian's 3.0.9 does); the other two
 * return 1 when s (n bytes) is an injection, 0 when not.
 */
int mgw_modsec_detect_ok(void);
int mgw_modsec_is_sqli(const char *s, size_t n);
int mgw_modsec_is_xss(const char *s, size_t n);

/*
 * Reads one ModSecurity log message (msg) into res: its rule id and msg text, or the
 * anomaly score that moongate's score rule and CRS's blocking rule report. Exposed for
 * the unit tests.
 */
void mgw__modsec_parse_message(const char *msg, mgw_pool_t *pool, mgw_modsec_result_t *res);

#endif
