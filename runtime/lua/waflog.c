/*
 * WAF logs (README "WAF logs"): one JSON object per request in AWS WAF's log format
 * ("Log fields for web ACL traffic"), written after the response from what the web ACL
 * left in the request's Lua state (hooks.c, ffi_runtime.c, ffi_waf.c). The request core
 * (gw/request.c) samples the request, calls this through its hooks table and appends
 * the line with the access-log writer. Every request-controlled string goes through
 * mgw_buf_add_json_utf8, so that quotes, control bytes and invalid UTF-8 still make one
 * valid line.
 */
#include <string.h>

#include "base/geodb.h"
#include "gw/gw.h"
#include "lua/lua_int.h"

/* A JSON string of n bytes at s (request-controlled or not: always escaped). */
static void jstr(mgw_buf_t *b, const char *s, size_t n)
{
    mgw_buf_addc(b, '"');
    mgw_buf_add_json_utf8(b, s, n);
    mgw_buf_addc(b, '"');
}

static void jcstr(mgw_buf_t *b, const char *s)
{
    jstr(b, s, strlen(s));
}

/* The web ACL's managed rule named name, or that ran as rule set idx (name NULL). */
static const mgw_waflog_managed_t *managed(const mgw_waflog_t *wl, const char *name, int idx)
{
    for (int i = 0; i < wl->nmanaged; i++) {
        const mgw_waflog_managed_t *m = &wl->managed[i];
        if (name ? m->name && strcmp(m->name, name) == 0 : m->idx == idx) return m;
    }
    return NULL;
}

/* Whether the filters keep a request whose actions are acts (MGW_WAFLOG_*): the first
 * filter whose conditions it meets decides, else the default behavior. */
static int kept(const mgw_waflog_t *wl, unsigned acts)
{
    for (int i = 0; i < wl->nfilters; i++) {
        const mgw_waflog_filter_t *f = &wl->filters[i];
        if (f->all ? (acts & f->actions) == f->actions : (acts & f->actions) != 0) return f->keep;
    }
    return wl->keep;
}

/* The count rules that matched (l->waf_counted: names joined by ","; rule names have no
 * commas), as nonTerminatingMatchingRules. */
static void counted(mgw_buf_t *b, const char *list)
{
    mgw_buf_addc(b, '[');
    for (const char *p = list; p && *p;) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (p != list) mgw_buf_addc(b, ',');
        mgw_buf_adds(b, "{\"ruleId\":");
        jstr(b, p, n);
        mgw_buf_adds(b, ",\"action\":\"COUNT\",\"ruleMatchDetails\":[]}");
        p = e ? e + 1 : p + n;
    }
    mgw_buf_addc(b, ']');
}

/* One entry of ruleGroupList per managed rule set that ran: the rule that decided a
 * block (the last one reported: CRS's 949110 or a deny of the user's rules) and the
 * others that matched. */
static void rule_groups(mgw_buf_t *b, const mgw_waflog_t *wl, const mgw_lreq_t *l)
{
    mgw_buf_addc(b, '[');
    int n = 0;
    for (const mgw_wafm_run_t *run = l->wafm_runs; run; run = run->next) {
        const mgw_waflog_managed_t *m = managed(wl, NULL, run->idx);
        const mgw_modsec_result_t *res = run->res;
        if (m == NULL) continue;
        if (n++) mgw_buf_addc(b, ',');
        int last = res->blocked && res->nmatches > 0 ? res->nmatches - 1 : -1;
        mgw_buf_adds(b, "{\"ruleGroupId\":");
        jcstr(b, m->group);
        mgw_buf_adds(b, ",\"ruleName\":");
        jcstr(b, m->name);
        mgw_buf_adds(b, ",\"terminatingRule\":");
        if (last >= 0) {
            mgw_buf_adds(b, "{\"ruleId\":");
            jcstr(b, res->ids[last]);
            mgw_buf_adds(b, m->count ? ",\"action\":\"COUNT\"}" : ",\"action\":\"BLOCK\"}");
        } else {
            mgw_buf_adds(b, "null");
        }
        mgw_buf_adds(b, ",\"nonTerminatingMatchingRules\":[");
        for (int i = 0, k = 0; i < res->nmatches; i++) {
            if (i == last) continue;
            if (k++) mgw_buf_addc(b, ',');
            mgw_buf_adds(b, "{\"ruleId\":");
            jcstr(b, res->ids[i]);
            mgw_buf_adds(b, ",\"action\":\"COUNT\"}");
        }
        mgw_buf_printf(b, "],\"excludedRules\":null,\"anomalyScore\":%d}",
                       res->score > 0 ? res->score : 0);
    }
    mgw_buf_addc(b, ']');
}

/* labels: [{"name": "..."}], the labels the web ACL's rules added, in order. */
static void labels(mgw_buf_t *b, mgw_req_t *r)
{
    int n;
    const char *const *v = mgw__waf_labels(r, &n);
    mgw_buf_addc(b, '[');
    for (int i = 0; i < n; i++) {
        mgw_buf_adds(b, i ? ",{\"name\":" : "{\"name\":");
        jcstr(b, v[i]);
        mgw_buf_addc(b, '}');
    }
    mgw_buf_addc(b, ']');
}

/* rateBasedRuleList: the rate-based rules whose limit the request's key passed (or that
 * matched by their forwarded-IP fallback), with the key as AWS WAF logs it: limitValue
 * for IP and FORWARDEDIP, customValues for CUSTOMKEYS. */
static void rate_based(mgw_buf_t *b, mgw_req_t *r)
{
    int n;
    const mgw_waf_rate_match_t *m = mgw__waf_rate_matches(r, &n);
    mgw_buf_addc(b, '[');
    for (int i = 0; i < n; i++) {
        if (i) mgw_buf_addc(b, ',');
        mgw_buf_adds(b, "{\"rateBasedRuleId\":");
        jcstr(b, m[i].rule);
        mgw_buf_adds(b, ",\"rateBasedRuleName\":");
        jcstr(b, m[i].rule);
        mgw_buf_printf(
            b, ",\"limitKey\":\"%s\",\"maxRateAllowed\":%llu,\"evaluationWindowSec\":\"%d\"",
            m[i].limit_key, (unsigned long long)m[i].limit, m[i].window_s);
        if (strcmp(m[i].limit_key, "CUSTOMKEYS") == 0) {
            mgw_buf_adds(b, ",\"customValues\":[");
            for (int k = 0; k < m[i].nvalues; k++) {
                const mgw_waf_rate_value_t *v = &m[i].values[k];
                mgw_buf_adds(b, k ? ",{\"key\":" : "{\"key\":");
                jcstr(b, v->key);
                if (v->name) {
                    mgw_buf_adds(b, ",\"name\":");
                    jcstr(b, v->name);
                }
                mgw_buf_adds(b, ",\"value\":");
                jstr(b, v->value.p ? v->value.p : "", v->value.n);
                mgw_buf_addc(b, '}');
            }
            mgw_buf_addc(b, ']');
        } else if (m[i].nvalues > 0) {
            mgw_buf_adds(b, ",\"limitValue\":");
            jstr(b, m[i].values[0].value.p ? m[i].values[0].value.p : "", m[i].values[0].value.n);
        }
        mgw_buf_addc(b, '}');
    }
    mgw_buf_addc(b, ']');
}

/* Whether the terminating rule is a rate-based rule (it matched, so it is in the list). */
static int rate_rule(mgw_req_t *r, const char *rule)
{
    int n;
    const mgw_waf_rate_match_t *m = mgw__waf_rate_matches(r, &n);
    for (int i = 0; i < n; i++)
        if (strcmp(m[i].rule, rule) == 0) return 1;
    return 0;
}

static int redacted(const mgw_waflog_t *wl, mgw_str_t name)
{
    for (int i = 0; i < wl->nredact_headers; i++) {
        const char *h = wl->redact_headers[i];
        if (strlen(h) == name.n && strncasecmp(h, name.p, name.n) == 0) return 1;
    }
    return 0;
}

static void http_request(mgw_buf_t *b, const mgw_waflog_t *wl, const mgw_req_t *r)
{
    mgw_buf_adds(b, "\"httpRequest\":{\"clientIp\":");
    jcstr(b, r->from.peer ? r->from.peer : "-");
    /* the client address's country when the generation has a country database (a
     * geo_match statement loaded it), else "-", AWS's value when it cannot tell */
    char cc[3] = "-";
    int code = r->gen->geodb && r->from.peer
                   ? mgw_geodb_lookup(r->gen->geodb, r->from.peer, strlen(r->from.peer))
                   : -1;
    if (code >= 0) mgw_geo_code_text(code, cc);
    mgw_buf_adds(b, ",\"country\":\"");
    mgw_buf_adds(b, cc);
    mgw_buf_adds(b, "\",\"headers\":[");
    for (int i = 0; i < r->nheaders; i++) {
        mgw_str_t name = r->headers[i].name, value = r->headers[i].value;
        if (i) mgw_buf_addc(b, ',');
        mgw_buf_adds(b, "{\"name\":");
        jstr(b, name.p, name.n);
        mgw_buf_adds(b, ",\"value\":");
        if (redacted(wl, name))
            mgw_buf_adds(b, "\"REDACTED\"");
        else
            jstr(b, value.p, value.n);
        mgw_buf_addc(b, '}');
    }
    mgw_buf_adds(b, "],\"uri\":");
    if (wl->redact_uri)
        mgw_buf_adds(b, "\"REDACTED\"");
    else
        jstr(b, r->raw_path.p ? r->raw_path.p : "", r->raw_path.n);
    mgw_buf_adds(b, ",\"args\":");
    if (wl->redact_query)
        mgw_buf_adds(b, "\"REDACTED\"");
    else
        jstr(b, r->query.p ? r->query.p : "", r->query.n);
    mgw_buf_adds(b, r->minor == 0 ? ",\"httpVersion\":\"HTTP/1.0\",\"httpMethod\":"
                                  : ",\"httpVersion\":\"HTTP/1.1\",\"httpMethod\":");
    if (wl->redact_method)
        mgw_buf_adds(b, "\"REDACTED\"");
    else
        jstr(b, r->method.p ? r->method.p : "", r->method.n);
    mgw_buf_adds(b, ",\"requestId\":");
    jcstr(b, r->id);
    mgw_buf_addc(b, '}');
}

int mgw__waflog_line(mgw_req_t *r, const mgw_stage_t *st, mgw_buf_t *b)
{
    const mgw_waflog_t *wl = st->waf_log;
    const mgw_lreq_t *l = r->lua;
    /* No line when the web ACL did not decide: the request ended before it (a client that
     * went away while a rule waited for the body) or a rule failed (a 500 with its
     * error-log line and $context.waf.error). */
    if (l == NULL || !l->waf_done || l->waf_error) return 0;
    int block = l->waf_blocked;
    if (!kept(wl, (block ? MGW_WAFLOG_BLOCK : MGW_WAFLOG_ALLOW) |
                      (l->waf_counted ? MGW_WAFLOG_COUNT : 0)))
        return 0;
    const char *rule = l->waf_rule;
    mgw_buf_printf(b, "{\"timestamp\":%llu,\"formatVersion\":1,\"webaclId\":",
                   (unsigned long long)r->start_ms);
    jcstr(b, wl->webacl_id);
    mgw_buf_adds(b, ",\"terminatingRuleId\":");
    jcstr(b, rule ? rule : "Default_Action");
    mgw_buf_adds(b, rule && managed(wl, rule, -1)
                        ? ",\"terminatingRuleType\":\"MANAGED_RULE_GROUP\""
                    : rule && rate_rule(r, rule) ? ",\"terminatingRuleType\":\"RATE_BASED\""
                                                 : ",\"terminatingRuleType\":\"REGULAR\"");
    mgw_buf_adds(b, block ? ",\"action\":\"BLOCK\"" : ",\"action\":\"ALLOW\"");
    mgw_buf_adds(b, ",\"terminatingRuleMatchDetails\":[],\"httpSourceName\":\"APIGW\","
                    "\"httpSourceId\":");
    jcstr(b, wl->source_id);
    mgw_buf_adds(b, ",\"ruleGroupList\":");
    rule_groups(b, wl, l);
    mgw_buf_adds(b, ",\"rateBasedRuleList\":");
    rate_based(b, r);
    mgw_buf_adds(b, ",\"nonTerminatingMatchingRules\":");
    counted(b, l->waf_counted);
    mgw_buf_adds(b, ",\"requestHeadersInserted\":null,\"responseCodeSent\":");
    if (block && r->status)
        mgw_buf_printf(b, "%d,", r->status);
    else
        mgw_buf_adds(b, "null,");
    http_request(b, wl, r);
    mgw_buf_adds(b, ",\"labels\":");
    labels(b, r);
    mgw_buf_add(b, "}\n", 2);
    return 1;
}
