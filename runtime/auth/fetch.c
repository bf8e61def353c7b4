/*
 * One fetch of a JWK Set over the runtime's HTTP client (http/client.h): OIDC discovery
 * first when there is no jwks_uri (GET ISSUER/.well-known/openid-configuration, whose
 * jwks_uri names the set), then GET the set. Each GET has MGW_JWKS_TIMEOUT_MS for the
 * whole exchange and a body of at most MGW_JWKS_MAX_BODY bytes; only a 200 counts. The
 * set's Cache-Control max-age says how long it is good (clamped). The outcome always
 * reaches the caller on a later turn of the loop, so that a caller never sees it inside
 * the call that started the fetch.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth_int.h"
#include "base/json.h"
#include "base/stat.h"

/* GET /metrics: one count per fetch (discovery and the set together) by its outcome, a
 * fixed list: success, http_error (not 200), parse_error (not a JWK Set, or a discovery
 * document without one), timeout, connect_error, tls_error, too_large, error (a bad URL,
 * https without a CA, not HTTP). The source is the configuration's jwks_uri, or its
 * issuer when the set's URL comes from discovery. A cold path: the series is looked up
 * at each fetch. */
static mgw_stat_family_t fetches = {.name = "moongate_jwks_fetches_total",
                                    .type = "counter",
                                    .help = "JWK Set fetches of JWT authorizers by outcome.",
                                    .labels = {"source", "outcome"}};

struct mgw_jwks_fetch_s {
    mgw_hc_req_t q;
    mgw_pool_t *pool; /* the current GET's memory */
    uv_loop_t *loop;
    mgw_hc_pool_t *hc;
    mgw_jwks_target_t t; /* strings: malloc'd copies */
    char *doc;           /* the discovery document's URL, or NULL */
    char *uri;           /* the set's URL (given or discovered), NULL until known */
    int discovering;     /* the current GET is the discovery document's */
    int next;            /* the step that ended asks for the set's GET */
    int status, too_large, max_age;
    mgw_buf_t body;
    uv_timer_t later; /* the next step, always on a later turn of the loop */
    mgw_jwks_t *set;
    char err[600];
    int failed;
    const char *outcome; /* how it failed (the fetches family's outcome label) */
    mgw_jwks_fetch_cb done;
    void *ud;
};

int mgw__jwks_max_age(mgw_str_t v)
{
    int age = MGW_JWKS_MAX_AGE_MAX;
    for (size_t i = 0; i + 8 <= v.n; i++) {
        if (strncasecmp(v.p + i, "max-age=", 8) != 0) continue;
        if (i > 0 && v.p[i - 1] != ' ' && v.p[i - 1] != ',' && v.p[i - 1] != '\t') continue;
        long long n = 0;
        size_t j = i + 8;
        if (j < v.n && v.p[j] == '"') j++;
        if (j >= v.n || !isdigit((unsigned char)v.p[j])) break;
        for (; j < v.n && isdigit((unsigned char)v.p[j]) && n < 1000000000; j++)
            n = n * 10 + (v.p[j] - '0');
        age = (int)n;
        break;
    }
    if (age < MGW_JWKS_MAX_AGE_MIN) age = MGW_JWKS_MAX_AGE_MIN;
    if (age > MGW_JWKS_MAX_AGE_MAX) age = MGW_JWKS_MAX_AGE_MAX;
    return age;
}

static void later_closed(uv_handle_t *h)
{
    mgw_jwks_fetch_t *f = h->data;
    free((char *)f->t.jwks_uri);
    free((char *)f->t.issuer);
    free((char *)f->t.tls_id);
    free(f->doc);
    free(f->uri);
    free(f);
}

static void get(mgw_jwks_fetch_t *f, const char *url);

/* The next step, on a later turn than the client's callback that ended the last one:
 * the set's GET after discovery, or the outcome to the caller. */
static void step_cb(uv_timer_t *t)
{
    mgw_jwks_fetch_t *f = t->data;
    if (f->pool) mgw_pool_destroy(f->pool);
    f->pool = NULL;
    mgw_buf_free(&f->body);
    if (f->next && !f->failed) {
        f->next = 0;
        get(f, f->uri);
        return;
    }
    const char *outcome = f->set ? "success" : f->outcome ? f->outcome : "error";
    const char *v[] = {f->t.jwks_uri ? f->t.jwks_uri : f->t.issuer, outcome};
    mgw_stat_inc(&fetches, v);
    f->done(f->ud, f->set, f->max_age, f->uri, f->set ? NULL : f->err);
    uv_close((uv_handle_t *)&f->later, later_closed);
}

static void later(mgw_jwks_fetch_t *f)
{
    uv_timer_start(&f->later, step_cb, 0, 0);
}

static void fail(mgw_jwks_fetch_t *f, const char *fmt, const char *a, const char *b)
{
    snprintf(f->err, sizeof(f->err), fmt, a, b);
    f->failed = 1;
    later(f);
}

static const mgw_hc_cbs_t fetch_cbs;

/* GETs url (a NUL-terminated http(s) URL); its end comes through the callbacks. */
static void get(mgw_jwks_fetch_t *f, const char *url)
{
    mgw_url_t u;
    if (mgw_url_parse(url, strlen(url), &u) != 0) {
        fail(f, "\"%s\" is not an http(s) URL%s", url, "");
        return;
    }
    if (u.tls && f->t.tls == NULL) {
        fail(f, "no TLS context to verify %s%s", url, " (see backend_ca)");
        return;
    }
    f->pool = mgw_pool_create(4096);
    memset(&f->q, 0, sizeof(f->q));
    f->status = f->too_large = 0;
    static const mgw_hdr_t accept = {MGW_STR("accept"), MGW_STR("application/json")};
    const char *bad = mgw_hc_build(&f->q, f->pool, MGW_STR("GET"), &u, &accept, 1, MGW_NULL_STR);
    if (bad) {
        fail(f, "cannot request %s: %s", url, bad);
        return;
    }
    if (u.tls) {
        f->q.tls = f->t.tls;
        f->q.tls_id = f->t.tls_id;
    }
    f->q.timeout_ms = f->q.total_ms = MGW_JWKS_TIMEOUT_MS;
    f->q.replayable = 1;
    f->q.cbs = &fetch_cbs;
    f->q.data = f;
    mgw_hc_err_t kind;
    const char *detail = NULL;
    if (mgw_hc_start(f->hc, &f->q, &kind, &detail) != 0) {
        f->outcome = kind == MGW_HC_ETLS ? "tls_error" : "connect_error";
        fail(f, "%s: %s", url, detail ? detail : "the connection failed");
    }
}

static int on_head(mgw_hc_req_t *q, const mgw_http1_head_t *head, mgw_hdr_t *hdrs, int nhdrs)
{
    mgw_jwks_fetch_t *f = q->data;
    f->status = head->status;
    f->max_age = MGW_JWKS_MAX_AGE_MAX;
    for (int i = 0; i < nhdrs; i++)
        if (mgw_str_ieq(hdrs[i].name, "cache-control"))
            f->max_age = mgw__jwks_max_age(hdrs[i].value);
    return 0;
}

static int on_body(mgw_hc_req_t *q, const char *p, size_t n, mgw_rbuf_t *ref)
{
    (void)ref;
    mgw_jwks_fetch_t *f = q->data;
    if (f->body.n + n > MGW_JWKS_MAX_BODY) {
        f->too_large = 1;
        return -1;
    }
    mgw_buf_add(&f->body, p, n);
    return 0;
}

/* The discovery document arrived: its jwks_uri is the set's URL. */
static void discovered(mgw_jwks_fetch_t *f)
{
    mgw_json_t *doc = NULL;
    char why[300];
    if (mgw_json_parse(f->pool, f->body.p ? f->body.p : "", f->body.n, &doc, why, sizeof(why)) !=
            0 ||
        doc->type != MGW_JSON_OBJECT) {
        f->outcome = "parse_error";
        fail(f, "%s is not a JSON object%s", f->doc, "");
        return;
    }
    const mgw_json_t *u = mgw_json_get(doc, "jwks_uri");
    mgw_url_t url;
    if (u == NULL || u->type != MGW_JSON_STRING || mgw_url_parse(u->str, u->len, &url) != 0) {
        f->outcome = "parse_error";
        fail(f, "%s has no jwks_uri that is an http(s) URL%s", f->doc, "");
        return;
    }
    f->uri = mgw_strndup(u->str, u->len);
    f->discovering = 0;
    f->next = 1;
    later(f);
}

static void on_end(mgw_hc_req_t *q)
{
    mgw_jwks_fetch_t *f = q->data;
    const char *url = f->discovering ? f->doc : f->uri;
    char status[16];
    if (f->status != 200) {
        snprintf(status, sizeof(status), "%d", f->status);
        f->outcome = "http_error";
        fail(f, "%s answered %s (not 200)", url, status);
        return;
    }
    if (f->discovering) {
        discovered(f);
        return;
    }
    int skipped = 0;
    char why[400];
    f->set = mgw_jwks_parse(f->body.p ? f->body.p : "", f->body.n, &skipped, why, sizeof(why));
    if (f->set == NULL) {
        f->outcome = "parse_error";
        fail(f, "%s is not a valid JWK Set: %s", url, why);
        return;
    }
    later(f);
}

static void on_error(mgw_hc_req_t *q, mgw_hc_err_t kind, const char *detail)
{
    mgw_jwks_fetch_t *f = q->data;
    const char *what = f->discovering ? f->doc : f->uri;
    char d[300];
    switch (kind) {
    case MGW_HC_ETIMEOUT:
        f->outcome = "timeout";
        snprintf(d, sizeof(d), "no answer within %d ms", MGW_JWKS_TIMEOUT_MS);
        break;
    case MGW_HC_EPROTO:
        f->outcome = f->too_large ? "too_large" : "error";
        snprintf(d, sizeof(d), "%s",
                 f->too_large ? "larger than 150000 bytes" : "not a valid HTTP response");
        break;
    case MGW_HC_ECONNECT:
        f->outcome = "connect_error";
        snprintf(d, sizeof(d), "connect to %s:%d failed: %s", q->host, q->port, detail);
        break;
    case MGW_HC_ETLS:
        f->outcome = "tls_error";
        snprintf(d, sizeof(d), "TLS with %s:%d: %s", q->host, q->port, detail);
        break;
    default:
        snprintf(d, sizeof(d), "%s", detail ? detail : "failed");
        break;
    }
    fail(f, "%s: %s", what, d);
}

static const mgw_hc_cbs_t fetch_cbs = {
    .on_head = on_head, .on_body = on_body, .on_end = on_end, .on_error = on_error};

void mgw__jwks_fetch(uv_loop_t *loop, mgw_hc_pool_t *hc, const mgw_jwks_target_t *t,
                     mgw_jwks_fetch_cb done, void *ud)
{
    mgw_jwks_fetch_t *f = mgw_calloc(1, sizeof(*f));
    f->loop = loop;
    f->hc = hc;
    f->done = done;
    f->ud = ud;
    f->t.tls = t->tls;
    f->t.tls_id = mgw_strdup(t->tls_id ? t->tls_id : "-");
    f->t.jwks_uri = t->jwks_uri ? mgw_strdup(t->jwks_uri) : NULL;
    f->t.issuer = t->issuer ? mgw_strdup(t->issuer) : NULL;
    f->max_age = MGW_JWKS_MAX_AGE_MAX;
    uv_timer_init(loop, &f->later);
    f->later.data = f;
    if (f->t.jwks_uri) {
        f->uri = mgw_strdup(f->t.jwks_uri);
        get(f, f->uri);
        return;
    }
    /* OIDC discovery: ISSUER without its trailing slashes, then the well-known path */
    const char *iss = f->t.issuer ? f->t.issuer : "";
    size_t n = strlen(iss);
    while (n > 0 && iss[n - 1] == '/')
        n--;
    f->doc = mgw_malloc(n + 40);
    snprintf(f->doc, n + 40, "%.*s/.well-known/openid-configuration", (int)n, iss);
    f->discovering = 1;
    get(f, f->doc);
}
