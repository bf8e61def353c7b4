/*
 * Remote key sources (auth/keys.c, with auth/fetch.c and the HTTP client) against a small
 * HTTP server on the test's loop that serves a JWK Set and counts its requests: the
 * first fetch once, the set reaching every worker's slot through the version, requests
 * that wait for a fetch in flight joining it (single flight) and woken when it ends, a
 * waiter that goes away before, the limit of one unknown-kid fetch per 30 s, the 5 s
 * limit without keys, a failed refresh keeping the last good set, sources shared by
 * equal configurations, OIDC discovery, and each fetch counted once by its outcome.
 */
#include "auth/keys.c"

#include "base/stat.h"
#include "unit.h"

/* A JWK Set of one EC P-256 key (kid "a"), and of that key and an Ed25519 key ("b"). */
#define KEY_A                                                                                      \
    "{\"kty\": \"EC\", \"crv\": \"P-256\", \"x\": "                                                \
    "\"OXMjz1FNyhVidtVWj1nLkS68o8jqP51S_TOdHGSCkww\", "                                            \
    "\"y\": \"_k_jB7BTh5YHpU4gozuahNR99DBEUZB9nAirk7lgyoQ\", \"kid\": \"a\", \"use\": \"sig\"}"
#define KEY_B                                                                                      \
    "{\"x\": \"cRcFGQXjzi8XXX-KFj_PQQMxx3Seq5vVopDvfhPwgWY\", \"kty\": \"OKP\", \"crv\": "         \
    "\"Ed25519\", \"kid\": \"b\", \"use\": \"sig\"}"
static const char ONE[] = "{\"keys\": [" KEY_A "]}";
static const char TWO[] = "{\"keys\": [" KEY_A ", " KEY_B "]}";

/* ---- the server ---- */

static mgw_worker_t w1, w2;
static uv_tcp_t server;
static int port, hits, status = 200;
static const char *body = ONE;
static char paths[8][128];

typedef struct {
    uv_tcp_t tcp;
    char buf[4096];
    size_t n;
    uv_write_t wr;
    char out[4096];
} client_t;

static void client_closed(uv_handle_t *h)
{
    free(h->data);
}

static void written(uv_write_t *wr, int st)
{
    (void)st;
    client_t *c = wr->data;
    uv_close((uv_handle_t *)&c->tcp, client_closed);
}

static void alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    (void)hint;
    client_t *c = h->data;
    *b = uv_buf_init(c->buf + c->n, (unsigned)(sizeof(c->buf) - c->n - 1));
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
    (void)b;
    client_t *c = s->data;
    if (nread < 0) {
        uv_close((uv_handle_t *)s, client_closed);
        return;
    }
    c->n += (size_t)nread;
    c->buf[c->n] = '\0';
    if (strstr(c->buf, "\r\n\r\n") == NULL) return;
    uv_read_stop(s);
    char path[128] = "";
    sscanf(c->buf, "GET %127s", path);
    if (hits < 8) snprintf(paths[hits], sizeof(paths[hits]), "%s", path);
    hits++;
    const char *b2 = body;
    char doc[256];
    if (strstr(path, "openid-configuration")) {
        snprintf(doc, sizeof(doc), "{\"issuer\":\"x\",\"jwks_uri\":\"http://127.0.0.1:%d/keys\"}",
                 port);
        b2 = doc;
    }
    int n = snprintf(c->out, sizeof(c->out),
                     "HTTP/1.1 %d X\r\ncontent-length: %zu\r\ncache-control: max-age=600\r\n"
                     "connection: close\r\n\r\n%s",
                     status, strlen(b2), b2);
    uv_buf_t out = uv_buf_init(c->out, (unsigned)n);
    c->wr.data = c;
    uv_write(&c->wr, s, &out, 1, written);
}

static void on_conn(uv_stream_t *srv, int st)
{
    (void)st;
    client_t *c = mgw_calloc(1, sizeof(*c));
    uv_tcp_init(srv->loop, &c->tcp);
    c->tcp.data = c;
    uv_accept(srv, (uv_stream_t *)&c->tcp);
    uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb);
}

static void server_start(void)
{
    struct sockaddr_in sa;
    uv_ip4_addr("127.0.0.1", 0, &sa);
    uv_tcp_init(&w1.loop, &server);
    uv_tcp_bind(&server, (const struct sockaddr *)&sa, 0);
    uv_listen((uv_stream_t *)&server, 16, on_conn);
    int len = sizeof(sa);
    uv_tcp_getsockname(&server, (struct sockaddr *)&sa, &len);
    port = ntohs(sa.sin_port);
}

/* ---- helpers ---- */

static int woken;
static mgw_req_t *woken_r[8];

static void wake(mgw_req_t *r)
{
    if (woken < 8) woken_r[woken] = r;
    woken++;
}

static int is_fetching(mgw_keysrc_t *src)
{
    uv_mutex_lock(&src->lock);
    int f = src->fetching;
    uv_mutex_unlock(&src->lock);
    return f;
}

/* Runs w1's loop until src's fetch has ended (bounded). */
static void run_fetch(mgw_keysrc_t *src)
{
    for (int i = 0; i < 1000 && is_fetching(src); i++)
        uv_run(&w1.loop, UV_RUN_ONCE);
    CHECK(!is_fetching(src));
}

static mgw_jwt_conf_t conf_for(const char *path, char *buf, size_t n)
{
    snprintf(buf, n, "http://127.0.0.1:%d%s", port, path);
    mgw_jwt_conf_t c = {
        .name = "j", .where = "apis.t.authorizers.j", .issuer = "x", .jwks_uri = buf};
    return c;
}

/* ---- tests ---- */

static mgw_keysrc_t *src; /* /keys */

static void test_first_fetch(void)
{
    char url[128];
    mgw_jwt_conf_t c = conf_for("/keys", url, sizeof(url));
    src = mgw__keysrc_get(&c, 3);
    /* an equal configuration (a reload) shares the source */
    mgw_keysrc_t *again = mgw__keysrc_get(&c, 3);
    CHECK(again == src);
    mgw__keysrc_unref(again);
    CHECK(mgw__keys_current(src, &w1) == NULL);
    mgw__keys_first(src, &w1);
    mgw__keys_first(src, &w2); /* another worker installs the generation: no second fetch */
    CHECK(mgw__keysrc_fetches(src) == 1);
    run_fetch(src);
    CHECK(hits == 1);
    mgw_jwks_t *s1 = mgw__keys_current(src, &w1);
    CHECK(s1 != NULL && mgw_jwks_count(s1) == 1);
    /* the other worker's slot takes the same set when it looks */
    CHECK(mgw__keys_current(src, &w2) == s1);
    CHECK(src->slots[2].version == atomic_load(&src->version));
    /* nothing new: the slot is used as is */
    CHECK(mgw__keys_current(src, &w1) == s1);
    mgw__keys_first(src, &w1);
    CHECK(mgw__keysrc_fetches(src) == 1);
}

static void test_waiters_join_one_fetch(void)
{
    body = TWO;
    mgw_keywait_t a = {.r = (mgw_req_t *)&a, .wake = wake},
                  b = {.r = (mgw_req_t *)&b, .wake = wake};
    woken = 0;
    CHECK(mgw__keys_refresh(src, &w1, &a) == 1); /* an unknown kid: a fetch starts */
    CHECK(mgw__keys_refresh(src, &w1, &b) == 1); /* another: it joins */
    CHECK(mgw__keysrc_fetches(src) == 2);
    CHECK(a.src == src && b.src == src);
    run_fetch(src);
    /* woken on a later turn of the loop than the fetch's end, in order */
    for (int i = 0; i < 10 && woken < 2; i++)
        uv_run(&w1.loop, UV_RUN_NOWAIT);
    CHECK(woken == 2);
    CHECK(woken_r[0] == (mgw_req_t *)&a && woken_r[1] == (mgw_req_t *)&b);
    CHECK(a.src == NULL && b.src == NULL);
    CHECK(hits == 2);
    CHECK(mgw_jwks_count(mgw__keys_current(src, &w1)) == 2);
    CHECK(mgw_jwks_count(mgw__keys_current(src, &w2)) == 2);
}

static void test_unknown_kid_limit(void)
{
    mgw_keywait_t a = {.r = (mgw_req_t *)&a, .wake = wake};
    /* a second unknown kid within 30 s: no fetch, nothing waits */
    CHECK(mgw__keys_refresh(src, &w1, &a) == 0);
    CHECK(a.src == NULL);
    CHECK(mgw__keysrc_fetches(src) == 2);
    /* 30 s later it may fetch again */
    src->last_kid -= MGW_JWKS_REFETCH_MS;
    src->last_start -= MGW_JWKS_REFETCH_MS;
    CHECK(mgw__keys_refresh(src, &w1, &a) == 1);
    run_fetch(src);
    CHECK(hits == 3);
}

static void test_failed_refresh_keeps_the_set(void)
{
    mgw_jwks_t *before = mgw__keys_current(src, &w1);
    status = 500;
    /* the set's max-age is over: the next look starts a refresh in the background */
    atomic_store(&src->fresh_until, 0);
    src->last_start -= MGW_JWKS_REFETCH_MS;
    CHECK(mgw__keys_current(src, &w1) == before);
    CHECK(is_fetching(src));
    run_fetch(src);
    CHECK(hits == 4);
    CHECK(src->failing == 1);
    CHECK(mgw__keys_current(src, &w1) == before);
    CHECK(mgw_jwks_count(before) == 2);
    /* and the next try is not before the usual interval */
    CHECK(atomic_load(&src->fresh_until) > uv_now(&w1.loop));
    status = 200;
}

static void test_no_keys_retry_and_unwait(void)
{
    char url[128];
    mgw_jwt_conf_t c = conf_for("/other", url, sizeof(url));
    mgw_keysrc_t *s = mgw__keysrc_get(&c, 3);
    CHECK(s != src);
    status = 503;
    woken = 0;
    mgw_keywait_t a = {.r = (mgw_req_t *)&a, .wake = wake},
                  b = {.r = (mgw_req_t *)&b, .wake = wake};
    CHECK(mgw__keys_refresh(s, &w1, &a) == 1);
    CHECK(mgw__keys_refresh(s, &w1, &b) == 1);
    mgw__keys_unwait(&b); /* b's request ended */
    CHECK(b.src == NULL);
    run_fetch(s);
    for (int i = 0; i < 10 && woken < 1; i++)
        uv_run(&w1.loop, UV_RUN_NOWAIT);
    CHECK(woken == 1 && woken_r[0] == (mgw_req_t *)&a);
    CHECK(mgw__keys_current(s, &w1) == NULL);
    /* without keys, the next fetch waits MGW_JWKS_RETRY_MS */
    CHECK(mgw__keys_refresh(s, &w1, &a) == 0);
    s->last_start -= MGW_JWKS_RETRY_MS;
    status = 200;
    CHECK(mgw__keys_refresh(s, &w1, &a) == 1);
    run_fetch(s);
    CHECK(mgw__keys_current(s, &w1) != NULL);
    for (int i = 0; i < 10 && woken < 2; i++)
        uv_run(&w1.loop, UV_RUN_NOWAIT);
    mgw__keysrc_unref(s);
}

static void test_discovery(void)
{
    mgw_jwt_conf_t c = {.name = "d", .where = "apis.t.authorizers.d", .discovery = 1};
    char issuer[128];
    snprintf(issuer, sizeof(issuer), "http://127.0.0.1:%d/realm/", port);
    c.issuer = issuer;
    mgw_keysrc_t *s = mgw__keysrc_get(&c, 3);
    int before = hits;
    mgw__keys_first(s, &w1);
    run_fetch(s);
    CHECK(hits == before + 2);
    CHECK_STR(paths[before], "/realm/.well-known/openid-configuration");
    CHECK_STR(paths[before + 1], "/keys");
    CHECK(mgw__keys_current(s, &w1) != NULL);
    mgw__keysrc_unref(s);
}

/* GET /metrics: one count per fetch, by the source as configured and the outcome. */
static int counted(const char *source, const char *outcome)
{
    char line[300];
    snprintf(line, sizeof(line), "moongate_jwks_fetches_total{source=\"%s\",outcome=\"%s\"} 1\n",
             source, outcome);
    mgw_buf_t b = {0};
    mgw_stat_render(&b);
    int found = b.p && strstr(b.p, line) != NULL;
    if (!found) printf("#   no line %s", line);
    mgw_buf_free(&b);
    return found;
}

/* Fetches path (or url) once with a new source; returns the source's URL in buf. */
static void fetch_once(const char *path, const char *url, char *buf, size_t n)
{
    mgw_jwt_conf_t c = conf_for(path ? path : "", buf, n);
    if (url) snprintf(buf, n, "%s", url);
    mgw_keysrc_t *s = mgw__keysrc_get(&c, 3);
    mgw__keys_first(s, &w1);
    run_fetch(s);
    mgw__keysrc_unref(s);
}

static void test_fetch_outcomes(void)
{
    char url[128], iss[128];
    fetch_once("/fine", NULL, url, sizeof(url));
    CHECK(counted(url, "success"));
    status = 404;
    fetch_once("/missing", NULL, url, sizeof(url));
    CHECK(counted(url, "http_error"));
    status = 200;
    body = "this is not a JWK Set";
    fetch_once("/junk", NULL, url, sizeof(url));
    CHECK(counted(url, "parse_error"));
    body = ONE;
    fetch_once(NULL, "http://127.0.0.1:1/keys", url, sizeof(url)); /* nobody listens */
    CHECK(counted(url, "connect_error"));
    /* discovery: counted under the issuer, once for both GETs */
    mgw_jwt_conf_t c = {.name = "d", .where = "apis.t.authorizers.d", .discovery = 1};
    snprintf(iss, sizeof(iss), "http://127.0.0.1:%d/other-realm", port);
    c.issuer = iss;
    mgw_keysrc_t *s = mgw__keysrc_get(&c, 3);
    mgw__keys_first(s, &w1);
    run_fetch(s);
    mgw__keysrc_unref(s);
    CHECK(counted(iss, "success"));
}

static void server_closed(uv_handle_t *h)
{
    (void)h;
}

int main(void)
{
    uv_loop_init(&w1.loop);
    uv_loop_init(&w2.loop);
    w1.id = 1;
    w2.id = 2;
    mgw_stat_init(3); /* the main thread counts in cell 0 */
    server_start();
    RUN(test_first_fetch);
    RUN(test_waiters_join_one_fetch);
    RUN(test_unknown_kid_limit);
    RUN(test_failed_refresh_keeps_the_set);
    RUN(test_no_keys_retry_and_unwait);
    RUN(test_discovery);
    RUN(test_fetch_outcomes);
    mgw__keysrc_unref(src);
    uv_close((uv_handle_t *)&server, server_closed);
    mgw_hc_pool_close_idle(w1.hc, 1);
    uv_run(&w1.loop, UV_RUN_DEFAULT);
    mgw_hc_pool_free(w1.hc);
    CHECK(uv_loop_close(&w1.loop) == 0);
    CHECK(uv_loop_close(&w2.loop) == 0);
    mgw_stat_free();
    return DONE();
}
