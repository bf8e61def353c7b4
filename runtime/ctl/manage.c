/*
 * The management API (see manage.h): the request handler of the management listener,
 * its bearer token, and the main thread's worker generation its requests run on.
 */
#include "ctl/manage.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "base/crypto.h"
#include "base/log.h"
#include "base/prom.h"
#include "base/stat.h"
#include "base/rcache.h"
#include "conf/token.h"
#include "ctl/reload.h"
#include "gw/metrics.h"
#include "gw/req_int.h"
#include "net/conn.h"
#include "net/mailbox.h"
#include "net/worker.h"
#include "ws/ws.h"

/* An Authorization value: "Bearer " and a token, with room for extra white space. */
#define AUTH_MAX (MGW_MANAGE_TOKEN_MAX + 64)

static uv_tcp_t server;
static int serving;
static mgw_worker_t *mw;       /* the main thread's worker */
static mgw_req_t *waiting;     /* the POST /reload that waits for the reload's outcome */
static mgw_mailbox_t *replies; /* where @connections outcomes come back to the main loop */

/* ---- the main thread's worker generation ---- */

/* No access log (no stage records management requests) and no policies to unload. */
static void wgen_close(mgw_wgen_t *wg)
{
    mgw_gen_unref(wg->gen);
    free(wg);
}

void mgw__manage_set_gen(mgw_gen_t *gen)
{
    if (mw == NULL) return;
    mgw_wgen_t *wg = mgw_calloc(1, sizeof(*wg));
    wg->w = mw;
    wg->gen = gen;
    wg->close = wgen_close;
    mgw_gen_ref(gen);
    mgw_wgen_t *old = mw->wgen;
    mw->wgen = wg;
    mw->gen = gen;
    if (old) mgw__wgen_retire(old);
}

/* ---- the handler ---- */

static void waiting_gone(void *r)
{
    if (waiting == r) waiting = NULL;
}

static void reload_done(void *ud, int ok, const char *text)
{
    (void)ud;
    mgw_req_t *r = waiting;
    waiting = NULL;
    if (r) mgw__resp_text(r, ok ? 200 : 422, "text/plain", text, NULL, 0);
}

/* 1 when r's target is path, with or without a query. */
static int is(const mgw_req_t *r, const char *path)
{
    size_t n = strlen(path);
    mgw_str_t t = r->target;
    return t.n >= n && memcmp(t.p, path, n) == 0 && (t.n == n || t.p[n] == '?');
}

static int method_is(const mgw_req_t *r, const char *m)
{
    return r->method.n == strlen(m) && memcmp(r->method.p, m, r->method.n) == 0;
}

enum { AUTH_OK, AUTH_MISSING, AUTH_INVALID };

/*
 * Whether the request carries the token of the running generation's token file as
 * "Authorization: Bearer TOKEN". The file is read now, so that replacing it rotates
 * the token without a reload; when it cannot be read no request is let in. The
 * digests of the two tokens are compared in constant time, so neither the time taken
 * nor an early mismatch tells a caller how much of a guess was right, or the token's
 * length.
 */
static int authorize(const mgw_req_t *r)
{
    const mgw_gen_t *g = mgw__reload_current();
    char tok[MGW_MANAGE_TOKEN_MAX + 1], err[1200];
    int n = -1;
    if (g->management_token_file == NULL)
        snprintf(err, sizeof(err), "no token file");
    else
        n = mgw_manage_token_read(g->management_token_file, tok, sizeof(tok), err, sizeof(err));
    if (n < 0)
        mgw_log_error("%s: management.token_file: %s: every management request is refused", g->file,
                      err);
    int nauth = 0;
    mgw_str_t auth = MGW_NULL_STR;
    for (int i = 0; i < r->nheaders; i++) {
        if (mgw_str_ieq(r->headers[i].name, "authorization")) {
            nauth++;
            auth = r->headers[i].value;
        }
    }
    if (nauth == 0) return AUTH_MISSING;
    if (n < 0 || nauth > 1 || auth.n > AUTH_MAX) return AUTH_INVALID;
    const char *p = auth.p, *end = auth.p + auth.n;
    if (end - p < 7 || strncasecmp(p, "Bearer", 6) != 0 || (p[6] != ' ' && p[6] != '\t'))
        return AUTH_INVALID;
    for (p += 6; p < end && (*p == ' ' || *p == '\t'); p++) {
    }
    while (end > p && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    uint8_t want[32], got[32];
    mgw_sha256(tok, (size_t)n, want);
    mgw_sha256(p, (size_t)(end - p), got);
    return mgw_equal_ct(want, got, sizeof(want)) ? AUTH_OK : AUTH_INVALID;
}

/*
 * DELETE /cache/API/STAGE (API Gateway's FlushStageCache): empties the stage's response
 * cache, shared by every worker; answers 200 {"api":..,"stage":..,"flushed":N} (the
 * entries removed), 404 when the API or stage is unknown or the stage has no cache, 405
 * for another method. GET answers the cache's size without changing it.
 */
static void serve_cache(mgw_req_t *r)
{
    mgw_str_t t = r->target;
    const char *q = memchr(t.p, '?', t.n);
    if (q) t.n = (size_t)(q - t.p);
    const char *a = t.p + 7, *end = t.p + t.n; /* after "/cache/" */
    const char *slash = memchr(a, '/', (size_t)(end - a));
    const mgw_gen_t *g = mgw__reload_current();
    mgw_api_t *api = slash ? mgw_gen_find_api(g, a, (size_t)(slash - a)) : NULL;
    mgw_stage_t *st = api ? mgw_api_find_stage(api, slash + 1, (size_t)(end - slash - 1)) : NULL;
    if (st == NULL || st->cache == NULL || st->cache->store == NULL) {
        mgw__req_fail(r, MGW_GW_RESOURCE_NOT_FOUND,
                      "Not Found: no stage with a cache at /cache/API/STAGE");
        return;
    }
    int del = method_is(r, "DELETE");
    if (!del && !method_is(r, "GET")) {
        mgw_hdr_t allow = {MGW_STR("allow"), MGW_STR("GET, DELETE")};
        mgw__resp_text(r, 405, "text/plain", "use DELETE /cache/API/STAGE to flush\n", &allow, 1);
        return;
    }
    uint64_t flushed = del ? mgw_rcache_flush(st->cache->store) : 0, entries, bytes;
    mgw_rcache_stats(st->cache->store, &entries, &bytes);
    if (del)
        mgw_log_info("management: flushed %llu entries of the cache of apis.%s.stages.%s",
                     (unsigned long long)flushed, api->id, st->name);
    mgw_buf_t body = {0};
    mgw_buf_adds(&body, "{\"api\":\"");
    mgw_buf_add_json(&body, api->id, strlen(api->id));
    mgw_buf_adds(&body, "\",\"stage\":\"");
    mgw_buf_add_json(&body, st->name, strlen(st->name));
    if (del)
        mgw_buf_printf(&body, "\",\"flushed\":%llu", (unsigned long long)flushed);
    else
        mgw_buf_adds(&body, "\"");
    mgw_buf_printf(&body, ",\"entries\":%llu,\"bytes\":%llu}\n", (unsigned long long)entries,
                   (unsigned long long)bytes);
    mgw__resp_text(r, 200, "application/json", body.p, NULL, 0);
    mgw_buf_free(&body);
}

/* The resident set size of the process, from /proc/self/statm; 0 when unknown. */
static uint64_t resident_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long long size, resident = 0;
    if (f == NULL) return 0;
    if (fscanf(f, "%llu %llu", &size, &resident) != 2) resident = 0;
    fclose(f);
    return (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE);
}

/* One certificate of a TLS listener, for moongate_tls_certificate_expiry_seconds. */
typedef struct {
    mgw_buf_t *b;
    int port;
    time_t now;
} cert_walk_t;

static void cert_line(void *ud, const char *host, const char *file, int64_t not_after)
{
    cert_walk_t *cw = ud;
    if (not_after == 0) return;
    char port[16];
    snprintf(port, sizeof(port), "%d", cw->port);
    mgw_buf_t lb = {0};
    mgw_prom_label(&lb, "domain", host ? host : "(default)");
    mgw_prom_label(&lb, "certificate", file ? file : "");
    mgw_prom_label(&lb, "port", port);
    mgw_prom_i64(cw->b, "moongate_tls_certificate_expiry_seconds", lb.p, lb.n,
                 not_after - (int64_t)cw->now);
    mgw_buf_free(&lb);
}

/* One CA of a mutual-TLS truststore, for moongate_tls_truststore_ca_expiry_seconds. */
static void ca_line(void *ud, const char *host, const char *truststore, const char *subject,
                    const char *fingerprint, int64_t not_after)
{
    cert_walk_t *cw = ud;
    if (not_after == 0) return;
    char port[16];
    snprintf(port, sizeof(port), "%d", cw->port);
    mgw_buf_t lb = {0};
    mgw_prom_label(&lb, "domain", host ? host : "(default)");
    mgw_prom_label(&lb, "truststore", truststore);
    mgw_prom_label(&lb, "ca", subject);
    mgw_prom_label(&lb, "fingerprint", fingerprint);
    mgw_prom_label(&lb, "port", port);
    mgw_prom_i64(cw->b, "moongate_tls_truststore_ca_expiry_seconds", lb.p, lb.n,
                 not_after - (int64_t)cw->now);
    mgw_buf_free(&lb);
}

/* The process families of GET /metrics (the request families are gw/metrics.c's). */
static void render_process(mgw_buf_t *b)
{
    const mgw_gen_t *g = mgw__reload_current();
    mgw_prom_family(b, "moongate_build_info", "gauge",
                    "Always 1; the version label says which moongate runs.");
    mgw_prom_u64(b, "moongate_build_info", "version=\"" MGW_VERSION "\"",
                 strlen("version=\"" MGW_VERSION "\""), 1);
    mgw_prom_family(b, "moongate_reloads_total", "counter",
                    "Configuration reloads since start-up, by outcome (success: the new "
                    "generation serves; failure: it was rejected and the old one kept serving).");
    mgw_prom_u64(b, "moongate_reloads_total", "outcome=\"success\"", 17, mgw__reload_count(1));
    mgw_prom_u64(b, "moongate_reloads_total", "outcome=\"failure\"", 17, mgw__reload_count(0));
    mgw_prom_family(b, "moongate_config_generation", "gauge",
                    "The configuration generation new requests run on (1 at start-up, one more "
                    "per accepted reload).");
    mgw_prom_u64(b, "moongate_config_generation", "", 0, (uint64_t)g->id);
    mgw_prom_family(b, "moongate_tls_certificate_expiry_seconds", "gauge",
                    "Seconds until the notAfter time of each certificate a TLS listener serves "
                    "(negative once expired), by domain (SNI), certificate file and port.");
    cert_walk_t cw = {b, 0, time(NULL)};
    for (int i = 0; i < g->nlisten; i++) {
        if (g->listen[i].tls == NULL) continue;
        cw.port = g->listen[i].port;
        mgw_tls_ctx_each_cert(g->listen[i].tls, cert_line, &cw);
    }
    mgw_prom_family(b, "moongate_tls_truststore_ca_expiry_seconds", "gauge",
                    "Seconds until the notAfter time of each CA certificate in the truststore "
                    "of each mutual-TLS domain (negative once expired), by domain, truststore "
                    "file, CA (subject CN), SHA-256 fingerprint prefix and port.");
    for (int i = 0; i < g->nlisten; i++) {
        if (g->listen[i].tls == NULL) continue;
        cw.port = g->listen[i].port;
        mgw_tls_ctx_each_ca(g->listen[i].tls, ca_line, &cw);
    }
    mgw_prom_family(b, "moongate_workers", "gauge", "Worker threads.");
    mgw_prom_u64(b, "moongate_workers", "", 0, (uint64_t)mgw_worker_count());
    mgw_prom_family(b, "moongate_open_connections", "gauge",
                    "Client connections open on the API listeners (every worker).");
    mgw_prom_u64(b, "moongate_open_connections", "", 0, mgw_worker_open_connections());
    mgw_prom_family(b, "moongate_process_resident_memory_bytes", "gauge",
                    "Resident memory of the process.");
    mgw_prom_u64(b, "moongate_process_resident_memory_bytes", "", 0, resident_bytes());
}

/*
 * GET /metrics: every family in one buffer, the request families summed over the workers
 * (gw/metrics.h), the other layers' families (base/stat.h), then the process's.
 */
static void serve_metrics(mgw_req_t *r)
{
    mgw_buf_t body = {0};
    mgw_buf_reserve(&body, 65536);
    mgw_metrics_render(mgw__reload_current(), &body);
    mgw_stat_render(&body);
    render_process(&body);
    mgw_hdr_t h = {MGW_STR("content-type"), MGW_STR(MGW_PROM_CONTENT_TYPE)};
    mgw__resp_head(r, 200, &h, 1, (int64_t)body.n);
    mgw__resp_body(r, body.p, body.n, NULL);
    mgw__resp_end(r);
    mgw_buf_free(&body);
}

/* The request handler of the management listener, called once r's head has arrived. */
static void serve(mgw_req_t *r)
{
    r->keepalive = 0; /* one request per connection */
    const char *id;
    int auth = authorize(r);
    if (auth != AUTH_OK) {
        /* RFC 6750 section 3: a challenge, with error="invalid_token" when a token
         * (or anything else) was sent and refused. */
        mgw_hdr_t h = {
            MGW_STR("www-authenticate"),
            auth == AUTH_MISSING
                ? MGW_STR("Bearer realm=\"moongate management\"")
                : MGW_STR("Bearer realm=\"moongate management\", error=\"invalid_token\"")};
        mgw__req_fail_with(r, MGW_GW_UNAUTHORIZED, NULL, &h, 1);
    } else if (is(r, "/reload")) {
        if (!method_is(r, "POST")) {
            mgw_hdr_t allow = {MGW_STR("allow"), MGW_STR("POST")};
            mgw__resp_text(r, 405, "text/plain", "use POST /reload\n", &allow, 1);
            return;
        }
        /* One reload at a time: one waits for it already, or a signal or a watched file
         * started it (mgw__reload_start refuses). */
        if (waiting == NULL) {
            waiting = r;
            mgw_pool_cleanup_add(r->pool, waiting_gone, r);
            /* the outcome may come at once (a configuration that does not load) */
            if (mgw__reload_start("management request", reload_done, NULL) == 0) return;
            waiting = NULL;
        }
        mgw__resp_text(r, 409, "text/plain", "a reload is already under way; try again\n", NULL, 0);
    } else if (is(r, "/status") && method_is(r, "GET")) {
        const mgw_gen_t *g = mgw__reload_current();
        mgw_buf_t body = {0};
        mgw_buf_printf(&body, "{\"status\":\"running\",\"generation\":%d,\"file\":\"", g->id);
        mgw_buf_add_json(&body, g->file, strlen(g->file));
        mgw_buf_adds(&body, "\"}\n");
        mgw__resp_text(r, 200, "application/json", body.p, NULL, 0);
        mgw_buf_free(&body);
    } else if (is(r, "/metrics") && method_is(r, "GET")) {
        serve_metrics(r);
    } else if (r->target.n > 7 && memcmp(r->target.p, "/cache/", 7) == 0) {
        serve_cache(r);
    } else if ((id = mgw_ws_connections_path(r, r->target)) != NULL) {
        mgw_ws_connections_serve(r, id, NULL, replies);
    } else {
        mgw__req_fail(r, MGW_GW_RESOURCE_NOT_FOUND,
                      "Not Found: POST /reload, GET /status, GET /metrics, "
                      "POST|GET|DELETE /@connections/ID, "
                      "GET|DELETE /cache/API/STAGE");
    }
}

/* ---- the listener ---- */

static void on_connection(uv_stream_t *srv, int status)
{
    if (status < 0) return;
    mgw__conn_accept(mw, srv, mw->gen->nlisten); /* the management listener's index */
}

void mgw__manage_start(mgw_worker_t *w, int fd, mgw_gen_t *gen)
{
    mw = w;
    mgw__manage_set_gen(gen);
    replies = mgw_mailbox_create(&w->loop, w);
    mgw_gw_set_handler(MGW_LISTEN_MANAGEMENT, serve);
    const mgw_listen_t *l = gen->management;
    uv_tcp_init(&w->loop, &server);
    if (uv_tcp_open(&server, fd) != 0 ||
        uv_listen((uv_stream_t *)&server, 64, on_connection) != 0) {
        mgw_log_error("management: cannot listen on %s:%d", l->address, l->port);
        uv_close((uv_handle_t *)&server, NULL);
        return;
    }
    serving = 1;
    mgw_log_info("management listener on %s:%d", l->address, l->port);
}

void mgw__manage_close(void)
{
    if (serving) uv_close((uv_handle_t *)&server, NULL);
    serving = 0;
    if (replies) mgw_mailbox_close(replies);
    if (mw == NULL) return;
    mw->shutting_down = 1;
    for (mgw_conn_t *c = mw->conns, *next; c; c = next) {
        next = c->next;
        mgw__conn_close(c);
    }
}

void mgw__manage_free(void)
{
    if (replies) mgw_mailbox_free(replies);
    replies = NULL;
    if (mw == NULL) return;
    if (mw->wgen) mgw__wgen_retire(mw->wgen);
    mw->wgen = NULL;
    mw = NULL;
}
