/*
 * W3C Trace Context (https://www.w3.org/TR/trace-context/, Level 1) for requests: the
 * caller's traceparent and tracestate are checked and continued, or a new trace starts;
 * the headers calls made for the request carry on; and the request's spans are encoded
 * as OTLP/HTTP JSON for the exporter (http/otlp.c). README "Tracing".
 */
#include <stdio.h>
#include <string.h>

#include "base/utf8.h"
#include "gw/req_int.h"

static const char hexdig[] = "0123456789abcdef";

void mgw__hex(const uint8_t *p, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hexdig[p[i] >> 4];
        out[2 * i + 1] = hexdig[p[i] & 15];
    }
}

/* Lower-case hex only (the specification's HEXDIGLC): 0-15, or -1. */
static int hexval(char c)
{
    return c >= 'A' && c <= 'F' ? -1 : mgw_hex_digit((unsigned char)c);
}

/* n bytes from 2n hex digits at s; 0 when all are valid and not all zero, else -1. */
static int unhex(const char *s, size_t n, uint8_t *out)
{
    uint8_t any = 0;
    for (size_t i = 0; i < n; i++) {
        int h = hexval(s[2 * i]), l = hexval(s[2 * i + 1]);
        if (h < 0 || l < 0) return -1;
        out[i] = (uint8_t)(h << 4 | l);
        any |= out[i];
    }
    return any ? 0 : -1;
}

/*
 * version "-" trace-id "-" parent-id "-" trace-flags: 2, 32, 16 and 2 lower-case hex
 * digits. Version ff is invalid; version 00 is exactly 55 characters; a later version may
 * be longer, and then a "-" follows the flags (what comes after is that version's and is
 * ignored). An all-zero trace-id or parent-id is invalid.
 */
int mgw__traceparent_parse(const char *p, size_t n, uint8_t trace_id[16], uint8_t parent_id[8],
                           uint8_t *flags)
{
    uint8_t version, f;
    if (n < 55) return -1;
    int vh = hexval(p[0]), vl = hexval(p[1]);
    if (vh < 0 || vl < 0) return -1;
    version = (uint8_t)(vh << 4 | vl);
    if (version == 0xff) return -1;
    if (version == 0 && n != 55) return -1;
    if (n > 55 && p[55] != '-') return -1;
    if (p[2] != '-' || p[35] != '-' || p[52] != '-') return -1;
    if (unhex(p + 3, 16, trace_id) != 0 || unhex(p + 36, 8, parent_id) != 0) return -1;
    int fh = hexval(p[53]), fl = hexval(p[54]);
    if (fh < 0 || fl < 0) return -1;
    f = (uint8_t)(fh << 4 | fl);
    *flags = f;
    return 0;
}

/* tracestate keys: simple-key = lcalpha 0*255( lcalpha / DIGIT / "_" / "-"/ "*" / "/" ),
 * multi-tenant-key = tenant-id "@" system-id, tenant-id = ( lcalpha / DIGIT ) 0*240( ... ),
 * system-id = lcalpha 0*13( ... ). */
static int key_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '*' ||
           c == '/';
}

static int key_ok(const char *p, size_t n)
{
    const char *at = memchr(p, '@', n);
    if (at == NULL) {
        if (n < 1 || n > 256 || !(p[0] >= 'a' && p[0] <= 'z')) return 0;
        for (size_t i = 1; i < n; i++)
            if (!key_char(p[i])) return 0;
        return 1;
    }
    size_t tn = (size_t)(at - p), sn = n - tn - 1;
    if (tn < 1 || tn > 241 || sn < 1 || sn > 14) return 0;
    if (!((p[0] >= 'a' && p[0] <= 'z') || (p[0] >= '0' && p[0] <= '9'))) return 0;
    for (size_t i = 1; i < tn; i++)
        if (!key_char(p[i])) return 0;
    if (!(at[1] >= 'a' && at[1] <= 'z')) return 0;
    for (size_t i = 1; i < sn; i++)
        if (!key_char(at[1 + i])) return 0;
    return 1;
}

/* value = 0*255(chr) nblk-chr; chr = %x20 / nblk-chr; nblk-chr = %x21-2B / %x2D-3C / %x3E-7E */
static int value_ok(const char *p, size_t n)
{
    if (n < 1 || n > 256 || p[n - 1] == ' ') return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c < 0x20 || c > 0x7e || c == ',' || c == '=') return 0;
    }
    return 1;
}

#define MAX_MEMBERS 32

int mgw__tracestate_check(mgw_pool_t *pool, mgw_str_t in, mgw_str_t *out)
{
    mgw_str_t m[MAX_MEMBERS];
    size_t keylen[MAX_MEMBERS];
    int n = 0;
    const char *s = in.p, *end = in.p + in.n;
    while (s <= end) {
        const char *c = memchr(s, ',', (size_t)(end - s));
        const char *e = c ? c : end;
        const char *a = s, *b = e;
        while (a < b && (*a == ' ' || *a == '\t'))
            a++;
        while (b > a && (b[-1] == ' ' || b[-1] == '\t'))
            b--;
        if (a < b) { /* empty list members are allowed, and dropped */
            if (n == MAX_MEMBERS) return -1;
            const char *eq = memchr(a, '=', (size_t)(b - a));
            if (eq == NULL || !key_ok(a, (size_t)(eq - a)) ||
                !value_ok(eq + 1, (size_t)(b - eq - 1)))
                return -1;
            for (int i = 0; i < n; i++)
                if (keylen[i] == (size_t)(eq - a) && memcmp(m[i].p, a, keylen[i]) == 0) return -1;
            m[n] = (mgw_str_t){a, (size_t)(b - a)};
            keylen[n++] = (size_t)(eq - a);
        }
        if (c == NULL) break;
        s = c + 1;
    }
    /* At most 512 characters go on: members over 128 characters go first, then the last. */
    size_t total = 0;
    for (int i = 0; i < n; i++)
        total += m[i].n + (i ? 1 : 0);
    for (int i = 0; total > 512 && i < n; i++)
        if (m[i].n > 128) {
            total -= m[i].n + 1;
            m[i].n = 0;
        }
    for (int i = n - 1; total > 512 && i >= 0; i--)
        if (m[i].n) {
            total -= m[i].n + 1;
            m[i].n = 0;
        }
    char *o = mgw_pool_alloc(pool, total + 1);
    size_t k = 0;
    for (int i = 0; i < n; i++) {
        if (m[i].n == 0) continue;
        if (k) o[k++] = ',';
        memcpy(o + k, m[i].p, m[i].n);
        k += m[i].n;
    }
    *out = (mgw_str_t){o, k};
    return 0;
}

static void random_id(mgw_worker_t *w, uint8_t *out, size_t n)
{
    do {
        for (size_t i = 0; i < n; i += 8) {
            uint64_t v = mgw__rng(w);
            memcpy(out + i, &v, n - i < 8 ? n - i : 8);
        }
    } while (out[0] == 0 && memcmp(out, out + 1, n - 1) == 0); /* never all zero */
}

/* The caller's trace context: one valid traceparent header (several are not valid), and
 * then its tracestate headers, combined. */
static int continue_trace(mgw_req_t *r, mgw_trace_t *t)
{
    const mgw_hdr_t *tp = NULL;
    int ntp = 0, nts = 0;
    size_t tslen = 0;
    for (int i = 0; i < r->nheaders; i++) {
        mgw_str_t name = r->headers[i].name;
        if (name.n == 11 && mgw_str_ieq(name, "traceparent")) {
            tp = &r->headers[i];
            ntp++;
        } else if (name.n == 10 && mgw_str_ieq(name, "tracestate")) {
            nts++;
            tslen += r->headers[i].value.n + 1;
        }
    }
    uint8_t flags;
    if (ntp != 1 ||
        mgw__traceparent_parse(tp->value.p, tp->value.n, t->trace_id, t->parent_id, &flags) != 0)
        return 0;
    t->remote = 1;
    t->sampled = flags & 1;
    if (nts == 0) return 1;
    mgw_str_t ts = MGW_NULL_STR;
    if (nts == 1) {
        ts = mgw__req_header(r, "tracestate");
    } else {
        char *p = mgw_pool_alloc(r->pool, tslen);
        size_t k = 0;
        for (int i = 0; i < r->nheaders; i++) {
            mgw_str_t name = r->headers[i].name, v = r->headers[i].value;
            if (name.n != 10 || !mgw_str_ieq(name, "tracestate")) continue;
            if (k) p[k++] = ',';
            memcpy(p + k, v.p, v.n);
            k += v.n;
        }
        ts = (mgw_str_t){p, k};
    }
    if (mgw__tracestate_check(r->pool, ts, &t->tracestate) != 0) t->tracestate = MGW_STR("");
    return 1;
}

mgw_trace_t *mgw__trace(mgw_req_t *r)
{
    if (r->trace) return r->trace;
    mgw_trace_t *t = r->trace = mgw_pool_calloc(r->pool, sizeof(*t));
    mgw_worker_t *w = r->from.w;
    const mgw_tracing_t *conf = r->gen->tracing;
    int otlp = conf && conf->otlp_url;
    if (!continue_trace(r, t)) {
        random_id(w, t->trace_id, 16);
        /* A new trace is sampled by the ratio when spans are exported; when they are not,
         * the flag is left on so that backends that sample by their parent still do. */
        t->sampled = !otlp || conf->sample_all || mgw__rng(w) < conf->sample_below;
    }
    random_id(w, t->span_id, 8);
    random_id(w, t->integ_id, 8);
    t->exported = otlp && t->sampled;
    return t;
}

int mgw__trace_headers(mgw_req_t *r, const uint8_t parent[8], mgw_hdr_t out[3])
{
    mgw_trace_t *t = mgw__trace(r);
    char *tp = mgw_pool_alloc(r->pool, 55);
    memcpy(tp, "00-", 3);
    mgw__hex(t->trace_id, 16, tp + 3);
    tp[35] = '-';
    mgw__hex(parent, 8, tp + 36);
    memcpy(tp + 52, t->sampled ? "-01" : "-00", 3);
    int n = 0;
    out[n++] = (mgw_hdr_t){MGW_STR("traceparent"), {tp, 55}};
    if (t->tracestate.n) out[n++] = (mgw_hdr_t){MGW_STR("tracestate"), t->tracestate};
    const mgw_tracing_t *conf = r->gen->tracing;
    if (conf && conf->request_id_header) {
        const char *id = mgw__req_id(r);
        out[n++] =
            (mgw_hdr_t){{conf->request_id_header, conf->request_id_header_len}, {id, strlen(id)}};
    }
    return n;
}

int mgw__trace_own_header(const mgw_req_t *r, mgw_str_t name)
{
    const mgw_tracing_t *conf = r->gen->tracing;
    return (name.n == 11 && mgw_str_ieq(name, "traceparent")) ||
           (name.n == 10 && mgw_str_ieq(name, "tracestate")) ||
           (conf && conf->request_id_header && name.n == conf->request_id_header_len &&
            mgw_str_ieq(name, conf->request_id_header));
}

/* ---- OTLP/HTTP JSON (opentelemetry-proto, trace/v1: Span) ---- */

enum { KIND_INTERNAL = 1, KIND_SERVER = 2, KIND_CLIENT = 3 };

/* v in decimal (no printf: spans are encoded on the worker, per request). */
static void add_u64(mgw_buf_t *b, unsigned long long v)
{
    char t[24], *p = mgw_u64_digits(t + sizeof(t), v);
    mgw_buf_add(b, p, (size_t)(t + sizeof(t) - p));
}

/* Literal text: its length is known at compile time. */
#define ADD_LIT(b, lit) mgw_buf_add((b), (lit), sizeof(lit) - 1)

/*
 * An attribute: prefix is the whole literal ',{"key":"KEY","value":{"TYPE":"' (its
 * comma left out for the first attribute), so that each attribute costs one copy before
 * its value. ATTR_STR escapes the value; ATTR_RAW is for values that need no escaping
 * (ids, addresses, tokens, configuration names); ATTR_INT for integers.
 */
#define ATTR_PREFIX(key, type) ",{\"key\":\"" key "\",\"value\":{\"" type "\":\""
#define ATTR_STR(b, first, key, v, n)                                                              \
    attr((b), (first), ATTR_PREFIX(key, "stringValue"),                                            \
         sizeof(ATTR_PREFIX(key, "stringValue")) - 1, (v), (n), 1)
#define ATTR_RAW(b, first, key, v, n)                                                              \
    attr((b), (first), ATTR_PREFIX(key, "stringValue"),                                            \
         sizeof(ATTR_PREFIX(key, "stringValue")) - 1, (v), (n), 0)
#define ATTR_INT(b, first, key, v)                                                                 \
    attr_int((b), (first), ATTR_PREFIX(key, "intValue"), sizeof(ATTR_PREFIX(key, "intValue")) - 1, \
             (v))

static void attr(mgw_buf_t *b, int *first, const char *prefix, size_t n, const char *v, size_t vn,
                 int escape)
{
    mgw_buf_add(b, prefix + *first, n - (size_t)*first);
    *first = 0;
    if (escape)
        mgw_buf_add_json_utf8(b, v, vn);
    else
        mgw_buf_add(b, v, vn);
    ADD_LIT(b, "\"}}");
}

static void attr_int(mgw_buf_t *b, int *first, const char *prefix, size_t n, unsigned long long v)
{
    mgw_buf_add(b, prefix + *first, n - (size_t)*first);
    *first = 0;
    add_u64(b, v);
    ADD_LIT(b, "\"}}");
}

/* The unix time in nanoseconds of ns, a uv_hrtime() reading taken while r ran. */
static unsigned long long unix_ns(const mgw_req_t *r, uint64_t ns)
{
    return (unsigned long long)r->start_ms * 1000000ULL + (ns - r->start_ns);
}

/* The span's fields up to its attributes, whose list it opens. */
static void span_open(mgw_buf_t *b, const mgw_req_t *r, const uint8_t id[8], const uint8_t *parent,
                      const char *name, size_t name_n, int kind, uint64_t start, uint64_t end)
{
    const mgw_trace_t *t = r->trace;
    char hex[32];
    ADD_LIT(b, "{\"traceId\":\"");
    mgw__hex(t->trace_id, 16, hex);
    mgw_buf_add(b, hex, 32);
    ADD_LIT(b, "\",\"spanId\":\"");
    mgw__hex(id, 8, hex);
    mgw_buf_add(b, hex, 16);
    if (parent) {
        ADD_LIT(b, "\",\"parentSpanId\":\"");
        mgw__hex(parent, 8, hex);
        mgw_buf_add(b, hex, 16);
    }
    if (t->tracestate.n) {
        ADD_LIT(b, "\",\"traceState\":\"");
        mgw_buf_add_json(b, t->tracestate.p, t->tracestate.n);
    }
    ADD_LIT(b, "\",\"name\":\"");
    mgw_buf_add_json_utf8(b, name, name_n);
    ADD_LIT(b, "\",\"kind\":");
    add_u64(b, (unsigned)kind);
    ADD_LIT(b, ",\"startTimeUnixNano\":\"");
    add_u64(b, unix_ns(r, start));
    ADD_LIT(b, "\",\"endTimeUnixNano\":\"");
    add_u64(b, unix_ns(r, end));
    ADD_LIT(b, "\",\"attributes\":[");
}

/* Closes the attribute list and the span, with an error status when error is set. */
static void span_close(mgw_buf_t *b, const char *error)
{
    if (error) {
        ADD_LIT(b, "],\"status\":{\"code\":2,\"message\":\"");
        mgw_buf_add_json_utf8(b, error, strlen(error));
        ADD_LIT(b, "\"}}");
    } else {
        ADD_LIT(b, "],\"status\":{}}");
    }
}

/* A phase's child span (INTERNAL), from when it began to when it ended (or to end). */
static void phase_span(mgw_buf_t *b, mgw_req_t *r, int phase, const char *name, uint64_t end)
{
    const mgw_trace_t *t = r->trace;
    uint8_t id[8];
    random_id(r->from.w, id, 8);
    uint64_t e = t->phase_ns[phase][1] ? t->phase_ns[phase][1] : end;
    mgw_buf_addc(b, ',');
    span_open(b, r, id, t->span_id, name, strlen(name), KIND_INTERNAL, t->phase_ns[phase][0], e);
    int first = 1;
    ATTR_RAW(b, &first, "moongate.phase", name, strlen(name));
    span_close(b, NULL);
}

int mgw__trace_encode(mgw_req_t *r, mgw_buf_t *b, int sep)
{
    mgw_trace_t *t = mgw__trace(r);
    uint64_t end = uv_hrtime();
    const mgw_route_t *rt = r->route;
    /* "GET /pets/{id}": the route key; without a route, the method alone (OTel HTTP spans) */
    mgw_str_t name = r->method;
    const char *route_path = NULL;
    if (rt) {
        const char *sp = strchr(rt->key, ' ');
        route_path = sp ? sp + 1 : NULL;
        if (route_path) {
            size_t pn = strlen(route_path);
            char *s = mgw_pool_alloc(r->pool, r->method.n + 1 + pn);
            memcpy(s, r->method.p, r->method.n);
            s[r->method.n] = ' ';
            memcpy(s + r->method.n + 1, route_path, pn);
            name = (mgw_str_t){s, r->method.n + 1 + pn};
        }
    }
    if (sep) mgw_buf_addc(b, ',');
    span_open(b, r, t->span_id, t->remote ? t->parent_id : NULL, name.p, name.n, KIND_SERVER,
              r->start_ns, end);
    int first = 1;
    ATTR_RAW(b, &first, "http.request.method", r->method.p, r->method.n);
    ATTR_STR(b, &first, "url.path", r->raw_path.p ? r->raw_path.p : "", r->raw_path.n);
    ATTR_RAW(b, &first, "url.scheme", r->from.tls ? "https" : "http", r->from.tls ? 5 : 4);
    if (route_path) ATTR_STR(b, &first, "http.route", route_path, strlen(route_path));
    ATTR_INT(b, &first, "http.response.status_code", (unsigned)r->status);
    if (r->host.n) {
        const char *colon = memchr(r->host.p, ':', r->host.n);
        ATTR_STR(b, &first, "server.address", r->host.p,
                 colon && r->host.p[0] != '[' ? (size_t)(colon - r->host.p) : r->host.n);
    }
    ATTR_INT(b, &first, "server.port", (unsigned)mgw__req_listen(r)->port);
    ATTR_RAW(b, &first, "client.address", r->from.peer, strlen(r->from.peer));
    mgw_str_t ua = mgw__req_header(r, "user-agent");
    if (ua.p) ATTR_STR(b, &first, "user_agent.original", ua.p, ua.n);
    ATTR_RAW(b, &first, "network.protocol.version", r->minor ? "1.1" : "1.0", 3);
    const char *rid = mgw__req_id(r);
    ATTR_RAW(b, &first, "moongate.request_id", rid, strlen(rid));
    if (r->api) ATTR_RAW(b, &first, "moongate.api_id", r->api->id, strlen(r->api->id));
    if (r->stage) ATTR_RAW(b, &first, "moongate.stage", r->stage->name, strlen(r->stage->name));
    if (rt) ATTR_STR(b, &first, "moongate.route_key", rt->key, rt->key_len);
    if (r->error_type != MGW_GW_NONE) {
        const char *type = mgw_gwresp_info(r->error_type)->name;
        ATTR_RAW(b, &first, "moongate.error.response_type", type, strlen(type));
    }
    /* A server span is an error for a 5xx only (OTel HTTP semantic conventions). */
    span_close(b, r->status >= 500 ? mgw_pool_printf(r->pool, "%d", r->status) : NULL);
    int n = 1;
    if (t->phase_ns[MGW_PHASE_WAF][0] && r->stage && r->stage->waf) {
        phase_span(b, r, MGW_PHASE_WAF, "waf", end);
        n++;
    }
    if (t->phase_ns[MGW_PHASE_AUTHORIZE][0] && rt && rt->authorizer_type != MGW_AUTHZ_NONE) {
        phase_span(b, r, MGW_PHASE_AUTHORIZE, "authorizer", end);
        n++;
    }
    if (r->integ && r->integ_start_ns) {
        /* CLIENT, named by its method as OTel names HTTP client spans; its id is the parent
         * the backend saw. */
        const char *type = r->integ->name;
        uint64_t e = r->integ_end_ns ? r->integ_end_ns : end;
        mgw_buf_addc(b, ',');
        mgw_str_t in;
        if (t->integ_url) {
            const char *m = r->route->integration.method;
            in = m ? (mgw_str_t){m, strlen(m)} : r->method;
        } else {
            char *s = mgw_pool_printf(r->pool, "integration %s", type);
            in = (mgw_str_t){s, strlen(s)};
        }
        span_open(b, r, t->integ_id, t->span_id, in.p, in.n,
                  t->integ_url ? KIND_CLIENT : KIND_INTERNAL, r->integ_start_ns, e);
        first = 1;
        ATTR_RAW(b, &first, "moongate.integration.type", type, strlen(type));
        if (t->integ_url) {
            ATTR_RAW(b, &first, "http.request.method", in.p, in.n);
            ATTR_STR(b, &first, "url.full", t->integ_url, strlen(t->integ_url));
        }
        if (r->integ_status)
            ATTR_INT(b, &first, "http.response.status_code", (unsigned)r->integ_status);
        span_close(b, r->integ_error           ? r->integ_error
                      : r->integ_status >= 500 ? mgw_pool_printf(r->pool, "%d", r->integ_status)
                                               : NULL);
        n++;
    }
    return n;
}
