/*
 * The HTTP client against the test upstream ($(BUILD)/test-upstream, tests/e2e/upstream.c)
 * on loopback: GET over http, a second request on the pooled connection (the upstream
 * numbers the connections it accepted, and the pool counts reuses), a GET sent again when
 * the pooled connection turns out closed (and a POST that is not), a streamed chunked
 * request body, a response read with pauses (backpressure) and a pause held too long,
 * https verified against the test root (reused, and its session resumed by the next
 * connection), https refused for a server whose
 * certificate names another host and for a self-signed one, a timeout, a refused
 * connection, a bad header. The PKI comes from tests/e2e/tls_certs.sh (openssl CLI), in
 * a temporary directory; the upstreams are child processes, stopped at the end.
 */
#include "http/client.c"

#include <arpa/inet.h>
#include <limits.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "unit.h"

#define CHECK_HAS(got, want)                                                                       \
    do {                                                                                           \
        const char *g2_ = (got), *w2_ = (want);                                                    \
        if (g2_ == NULL || strstr(g2_, w2_) == NULL) {                                             \
            printf("#   %s:%d: \"%s\" does not contain \"%s\"\n", __FILE__, __LINE__,              \
                   g2_ ? g2_ : "(null)", w2_);                                                     \
            unit_failures_in_test++;                                                               \
        }                                                                                          \
    } while (0)

static char dir[PATH_MAX];
static char root_pem[PATH_MAX + 16];

/* ---- the upstreams ---- */

typedef struct {
    pid_t pid;
    int port;
} server_t;

/* plain http; https with localhost's certificate; with api.test's; self-signed */
static server_t plain, tls_ok, tls_name, tls_self;

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t n = sizeof(sa);
    int port = -1;
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
        getsockname(fd, (struct sockaddr *)&sa, &n) == 0)
        port = ntohs(sa.sin_port);
    close(fd);
    return port;
}

static int port_open(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
    close(fd);
    return ok;
}

/* $MOONGATE_UPSTREAM_BIN, or test-upstream two directories above this binary. */
static void upstream_bin(char *out, size_t n)
{
    const char *env = getenv("MOONGATE_UPSTREAM_BIN");
    if (env && *env) {
        snprintf(out, n, "%s", env);
        return;
    }
    char exe[PATH_MAX];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    exe[len > 0 ? len : 0] = '\0';
    char *slash = strrchr(exe, '/');
    if (slash) *slash = '\0';
    snprintf(out, n, "%.3000s/../../test-upstream", exe);
}

/* Starts test-upstream (with --tls cert key when cert is given); 0 once it listens. */
static int start_server(server_t *s, const char *cert, const char *key)
{
    char bin[PATH_MAX], certp[PATH_MAX + 16], keyp[PATH_MAX + 16], port[16];
    upstream_bin(bin, sizeof(bin));
    s->port = free_port();
    snprintf(port, sizeof(port), "%d", s->port);
    snprintf(certp, sizeof(certp), "%s/%s", dir, cert ? cert : "");
    snprintf(keyp, sizeof(keyp), "%s/%s", dir, key ? key : "");
    s->pid = fork();
    if (s->pid == 0) {
        if (cert)
            execl(bin, bin, "--tls", certp, keyp, port, (char *)NULL);
        else
            execl(bin, bin, port, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 250; i++) {
        if (port_open(s->port)) return 0;
        usleep(20000);
    }
    printf("# %s did not listen on %d\n", bin, s->port);
    return -1;
}

static void stop_server(server_t *s)
{
    if (s->pid <= 0) return;
    kill(s->pid, SIGTERM);
    waitpid(s->pid, NULL, 0);
    s->pid = 0;
}

/* ---- a request and what came back ---- */

typedef struct call_s {
    mgw_hc_req_t q;
    mgw_hc_pool_t *pool;
    int status, ended, failed, heads;
    mgw_hc_err_t kind;
    char detail[512];
    mgw_buf_t body;
    char upstream[64]; /* the x-upstream response header */
    /* backpressure: pause for pause_ms after every pause_every bytes */
    size_t pause_every, since_pause;
    uint64_t pause_ms, stall_ms;
    int pauses, read_while_paused;
    uv_timer_t resume;
    /* a second request started from on_end, on the connection just pooled */
    struct call_s *next;
} call_t;

static int t_head(mgw_hc_req_t *q, const mgw_http1_head_t *hd, mgw_hdr_t *hdrs, int n)
{
    call_t *k = q->data;
    k->status = hd->status;
    k->heads++;
    for (int i = 0; i < n; i++)
        if (mgw_str_ieq(hdrs[i].name, "x-upstream"))
            snprintf(k->upstream, sizeof(k->upstream), "%.*s", (int)hdrs[i].value.n,
                     hdrs[i].value.p);
    return 0;
}

static void resume_cb(uv_timer_t *t)
{
    call_t *k = t->data;
    mgw_hc_resume(&k->q);
}

static int t_body(mgw_hc_req_t *q, const char *p, size_t n, mgw_rbuf_t *ref)
{
    call_t *k = q->data;
    CHECK(ref != NULL && p >= ref->data && p + n <= ref->data + ref->cap);
    if (mgw_hc_paused(q)) k->read_while_paused++;
    mgw_buf_add(&k->body, p, n);
    k->since_pause += n;
    if (k->pause_every && k->since_pause >= k->pause_every) {
        k->since_pause = 0;
        k->pauses++;
        mgw_hc_pause(q, k->stall_ms ? k->stall_ms : 5000);
        if (k->pause_ms) uv_timer_start(&k->resume, resume_cb, k->pause_ms, 0);
    }
    return 0;
}

static int t_start(call_t *k);

static void t_end(mgw_hc_req_t *q)
{
    call_t *k = q->data;
    k->ended++;
    if (k->next) t_start((call_t *)k->next);
}

static void t_error(mgw_hc_req_t *q, mgw_hc_err_t kind, const char *detail)
{
    call_t *k = q->data;
    k->failed++;
    k->kind = kind;
    snprintf(k->detail, sizeof(k->detail), "%s", detail ? detail : "");
}

static const mgw_hc_cbs_t t_cbs = {
    .on_head = t_head, .on_body = t_body, .on_end = t_end, .on_error = t_error};

static int t_start(call_t *k)
{
    mgw_hc_err_t kind = MGW_HC_OK;
    const char *detail = NULL;
    int rc = mgw_hc_start(k->pool, &k->q, &kind, &detail);
    if (rc != 0) {
        k->failed++;
        k->kind = kind;
        snprintf(k->detail, sizeof(k->detail), "%s", detail ? detail : "");
    }
    return rc;
}

/* A test's world: a loop, a client pool on it, an arena for the requests. */
typedef struct {
    uv_loop_t loop;
    mgw_hc_pool_t *pool;
    mgw_pool_t *mem;
} world_t;

static void world_init(world_t *w)
{
    uv_loop_init(&w->loop);
    w->pool = mgw_hc_pool_new(&w->loop);
    w->mem = mgw_pool_create(0);
}

/* Closes the pool's connections, runs the loop dry and checks that nothing was left. */
static void world_done(world_t *w)
{
    mgw_hc_pool_close_idle(w->pool, 1);
    uv_run(&w->loop, UV_RUN_DEFAULT);
    mgw_hc_pool_free(w->pool);
    CHECK(uv_loop_close(&w->loop) == 0);
    mgw_pool_destroy(w->mem);
}

/* A GET (or method) of url with timeout_ms, ready to start (not started). */
static void call_init(world_t *w, call_t *k, const char *method, const char *url, uint64_t ms)
{
    memset(k, 0, sizeof(*k));
    k->pool = w->pool;
    mgw_url_t u;
    CHECK(mgw_url_parse(url, strlen(url), &u) == 0);
    mgw_str_t m = {method, strlen(method)};
    CHECK(mgw_hc_build(&k->q, w->mem, m, &u, NULL, 0, MGW_NULL_STR) == NULL);
    k->q.timeout_ms = ms;
    k->q.cbs = &t_cbs;
    k->q.data = k;
    uv_timer_init(&w->loop, &k->resume);
    k->resume.data = k;
}

static void call_free(call_t *k)
{
    uv_close((uv_handle_t *)&k->resume, NULL);
    mgw_buf_free(&k->body);
}

/* Runs the loop until *flag is set (or 10 s pass). */
static void run_until(world_t *w, const int *flag)
{
    uint64_t until = uv_now(&w->loop) + 10000;
    while (!*flag && uv_now(&w->loop) < until)
        uv_run(&w->loop, UV_RUN_ONCE);
}

static char *url_of(const server_t *s, const char *scheme, const char *host, const char *path)
{
    static char buf[4][256];
    static int i;
    char *b = buf[i++ % 4];
    snprintf(b, 256, "%s://%s:%d%s", scheme, host, s->port, path);
    return b;
}

/* The upstream's connection number in an echo body, or -1. */
static long echo_connection(const mgw_buf_t *b)
{
    const char *s = b->p ? strstr(b->p, "\"connection\":") : NULL;
    return s ? strtol(s + 13, NULL, 10) : -1;
}

/* ---- the tests ---- */

static void test_get_http(void)
{
    world_t w;
    world_init(&w);
    call_t k;
    call_init(&w, &k, "GET", url_of(&plain, "http", "127.0.0.1", "/hello?x=1"), 5000);
    CHECK(t_start(&k) == 0);
    run_until(&w, &k.ended);
    CHECK(k.ended == 1 && k.failed == 0 && k.heads == 1);
    CHECK(k.status == 200);
    CHECK_STR(k.upstream, "test-upstream");
    CHECK_HAS(k.body.p, "\"method\":\"GET\"");
    CHECK_HAS(k.body.p, "\"target\":\"/hello?x=1\"");
    CHECK(k.q.conn == NULL); /* detached before on_end */
    call_free(&k);
    world_done(&w);
}

static void test_pooled_reuse(void)
{
    world_t w;
    world_init(&w);
    call_t a, b;
    call_init(&w, &a, "GET", url_of(&plain, "http", "127.0.0.1", "/a"), 5000);
    call_init(&w, &b, "GET", url_of(&plain, "http", "127.0.0.1", "/b"), 5000);
    a.next = (struct call_s *)&b; /* b starts inside a's on_end */
    CHECK(t_start(&a) == 0);
    run_until(&w, &b.ended);
    CHECK(a.ended == 1 && b.ended == 1 && a.failed == 0 && b.failed == 0);
    CHECK_HAS(b.body.p, "\"target\":\"/b\"");
    /* one connection at the upstream, and the pool says so too */
    CHECK(echo_connection(&a.body) > 0);
    CHECK(echo_connection(&a.body) == echo_connection(&b.body));
    mgw_hc_stats_t st;
    mgw_hc_pool_stats(w.pool, &st);
    CHECK(st.opened == 1 && st.reused == 1);
    /* a third request later still finds it in the pool */
    call_t c;
    call_init(&w, &c, "GET", url_of(&plain, "http", "127.0.0.1", "/c"), 5000);
    CHECK(t_start(&c) == 0);
    run_until(&w, &c.ended);
    CHECK(echo_connection(&c.body) == echo_connection(&a.body));
    mgw_hc_pool_stats(w.pool, &st);
    CHECK(st.opened == 1 && st.reused == 2);
    call_free(&a);
    call_free(&b);
    call_free(&c);
    world_done(&w);
}

/* The server closes a pooled connection as it is reused (test-upstream's /drop-next): a
 * GET goes again on a new connection, a POST fails. */
static void test_retry_on_stale_pooled(void)
{
    world_t w;
    world_init(&w);
    call_t a, b, c, d;
    call_init(&w, &a, "GET", url_of(&plain, "http", "127.0.0.1", "/drop-next"), 5000);
    call_init(&w, &b, "GET", url_of(&plain, "http", "127.0.0.1", "/after"), 5000);
    a.next = (struct call_s *)&b;
    CHECK(t_start(&a) == 0);
    run_until(&w, &b.ended);
    CHECK(a.ended == 1 && b.ended == 1 && b.failed == 0);
    CHECK_HAS(b.body.p, "\"target\":\"/after\"");
    CHECK(echo_connection(&b.body) > echo_connection(&a.body));
    mgw_hc_stats_t st;
    mgw_hc_pool_stats(w.pool, &st);
    CHECK(st.opened == 2 && st.reused == 1);
    /* not replayable: the failure is the caller's to see */
    call_init(&w, &c, "GET", url_of(&plain, "http", "127.0.0.1", "/drop-next"), 5000);
    call_init(&w, &d, "POST", url_of(&plain, "http", "127.0.0.1", "/post"), 5000);
    CHECK(!d.q.replayable);
    c.next = (struct call_s *)&d;
    CHECK(t_start(&c) == 0);
    run_until(&w, &d.failed);
    CHECK(c.ended == 1 && d.failed == 1 && d.ended == 0);
    CHECK(d.kind == MGW_HC_ECLOSED);
    mgw_hc_pool_stats(w.pool, &st);
    CHECK(st.opened == 2 && st.reused == 3);
    call_free(&a);
    call_free(&b);
    call_free(&c);
    call_free(&d);
    world_done(&w);
}

static void test_streamed_chunked_body(void)
{
    world_t w;
    world_init(&w);
    call_t k;
    memset(&k, 0, sizeof(k));
    call_init(&w, &k, "POST", url_of(&plain, "http", "127.0.0.1", "/upload"), 5000);
    /* a head of our own: chunked, the body streamed after the start */
    const char *head = "POST /upload HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n";
    k.q.head = (mgw_str_t){head, strlen(head)};
    k.q.body_follows = 1;
    k.q.chunked = 1;
    k.q.replayable = 0;
    CHECK(t_start(&k) == 0);
    CHECK(mgw_hc_write(&k.q, "hello ", 6, NULL) == 0); /* before the connection is ready */
    for (int i = 0; i < 20 && !(k.q.conn && k.q.conn->ready); i++)
        uv_run(&w.loop, UV_RUN_ONCE);
    CHECK(mgw_hc_write(&k.q, "streamed ", 9, NULL) == 0);
    CHECK(mgw_hc_write(&k.q, "world", 5, NULL) == 0);
    mgw_hc_write_end(&k.q);
    run_until(&w, &k.ended);
    CHECK(k.ended == 1 && k.status == 200);
    CHECK_HAS(k.body.p, "\"body\":\"hello streamed world\"");
    CHECK_HAS(k.body.p, "\"transfer-encoding\":\"chunked\"");
    call_free(&k);
    world_done(&w);
}

static void test_backpressure(void)
{
    world_t w;
    world_init(&w);
    call_t k;
    call_init(&w, &k, "GET", url_of(&plain, "http", "127.0.0.1", "/big?bytes=1000000"), 5000);
    k.pause_every = 100000;
    k.pause_ms = 30;
    CHECK(t_start(&k) == 0);
    run_until(&w, &k.ended);
    CHECK(k.ended == 1 && k.failed == 0);
    CHECK(k.body.n == 1000000);
    CHECK(k.body.p && k.body.p[0] == 'x' && k.body.p[999999] == 'x');
    CHECK(k.pauses >= 3);
    /* the rest of what was being parsed when the pause came may still arrive (the stream
     * holds what comes after until the resume) */
    CHECK(k.read_while_paused <= k.pauses);
    call_free(&k);
    world_done(&w);
}

static void test_stalled(void)
{
    world_t w;
    world_init(&w);
    call_t k;
    call_init(&w, &k, "GET", url_of(&plain, "http", "127.0.0.1", "/big?bytes=3000000"), 5000);
    k.pause_every = 1; /* pause at the first bytes, never resume */
    k.stall_ms = 100;
    CHECK(t_start(&k) == 0);
    run_until(&w, &k.failed);
    CHECK(k.failed == 1 && k.ended == 0);
    CHECK(k.kind == MGW_HC_ESTALLED);
    call_free(&k);
    world_done(&w);
}

static void test_https_verified(void)
{
    world_t w;
    world_init(&w);
    char err[512] = "";
    mgw_tls_ctx_t *ctx = mgw_hc_pool_tls(w.pool, root_pem, err, sizeof(err));
    CHECK(ctx != NULL);
    CHECK(mgw_hc_pool_tls(w.pool, root_pem, err, sizeof(err)) == ctx); /* kept */
    call_t a, b;
    call_init(&w, &a, "GET", url_of(&tls_ok, "https", "localhost", "/secure"), 5000);
    call_init(&w, &b, "GET", url_of(&tls_ok, "https", "localhost", "/again"), 5000);
    a.q.tls = b.q.tls = ctx;
    a.q.tls_id = b.q.tls_id = root_pem;
    a.next = (struct call_s *)&b;
    CHECK(t_start(&a) == 0);
    run_until(&w, &b.ended);
    CHECK(a.failed == 0 && b.failed == 0);
    if (a.failed) printf("# %s\n", a.detail);
    CHECK(a.status == 200 && b.status == 200);
    CHECK_HAS(a.body.p, "\"target\":\"/secure\"");
    CHECK_HAS(a.body.p, "\"host\":\"localhost:");
    CHECK(echo_connection(&a.body) > 0 && echo_connection(&a.body) == echo_connection(&b.body));
    mgw_hc_stats_t st;
    mgw_hc_pool_stats(w.pool, &st);
    CHECK(st.opened == 1 && st.reused == 1 && st.resumed == 0);
    /* the pooled connection goes; the next one resumes its TLS session */
    mgw_hc_pool_close_idle(w.pool, 0);
    call_t c;
    call_init(&w, &c, "GET", url_of(&tls_ok, "https", "localhost", "/resumed"), 5000);
    c.q.tls = ctx;
    c.q.tls_id = root_pem;
    CHECK(t_start(&c) == 0);
    run_until(&w, &c.ended);
    CHECK(c.ended == 1 && c.status == 200);
    CHECK(echo_connection(&c.body) > echo_connection(&a.body));
    mgw_hc_pool_stats(w.pool, &st);
    CHECK(st.opened == 2 && st.resumed == 1);
    call_free(&a);
    call_free(&b);
    call_free(&c);
    world_done(&w);
}

/* https to srv as host: refused, with a TLS error that contains why. */
static void refused(const server_t *srv, const char *host, const char *why)
{
    world_t w;
    world_init(&w);
    char err[512] = "";
    call_t k;
    call_init(&w, &k, "GET", url_of(srv, "https", host, "/"), 5000);
    k.q.tls = mgw_hc_pool_tls(w.pool, root_pem, err, sizeof(err));
    k.q.tls_id = root_pem;
    CHECK(t_start(&k) == 0);
    run_until(&w, &k.failed);
    CHECK(k.failed == 1 && k.ended == 0 && k.status == 0);
    CHECK(k.kind == MGW_HC_ETLS);
    CHECK_HAS(k.detail, why);
    call_free(&k);
    world_done(&w);
}

static void test_https_wrong_name(void)
{
    refused(&tls_name, "localhost", "hostname mismatch"); /* the certificate says api.test */
}

static void test_https_self_signed(void)
{
    refused(&tls_self, "localhost", "signed certificate");
}

static void test_timeout(void)
{
    world_t w;
    world_init(&w);
    call_t k;
    call_init(&w, &k, "GET", url_of(&plain, "http", "127.0.0.1", "/slow?ms=3000"), 200);
    uint64_t t0 = uv_now(&w.loop);
    CHECK(t_start(&k) == 0);
    run_until(&w, &k.failed);
    CHECK(k.failed == 1 && k.ended == 0);
    CHECK(k.kind == MGW_HC_ETIMEOUT);
    CHECK(uv_now(&w.loop) - t0 < 2500);
    /* the timed-out connection is not pooled */
    CHECK(w.pool->origins && w.pool->origins->nidle == 0);
    call_free(&k);
    world_done(&w);
}

static void test_connect_refused(void)
{
    world_t w;
    world_init(&w);
    server_t none = {.port = free_port()};
    call_t k;
    call_init(&w, &k, "GET", url_of(&none, "http", "127.0.0.1", "/"), 5000);
    CHECK(t_start(&k) == 0);
    run_until(&w, &k.failed);
    CHECK(k.kind == MGW_HC_ECONNECT);
    CHECK_STR(k.detail, "connection refused");
    CHECK(k.q.uv_error == UV_ECONNREFUSED);
    call_free(&k);
    world_done(&w);
}

static void test_build_refuses_bad_headers(void)
{
    mgw_pool_t *mem = mgw_pool_create(0);
    mgw_url_t u;
    CHECK(mgw_url_parse("http://h:1/x", 12, &u) == 0);
    mgw_hc_req_t q;
    memset(&q, 0, sizeof(q));
    mgw_hdr_t bad = {MGW_STR("x-a"), MGW_STR("1\r\nx-b: 2")};
    CHECK_STR(mgw_hc_build(&q, mem, MGW_STR("GET"), &u, &bad, 1, MGW_NULL_STR),
              "header values must not contain CR, LF or NUL");
    CHECK_STR(mgw_hc_build(&q, mem, MGW_STR("G T"), &u, NULL, 0, MGW_NULL_STR), "invalid method");
    mgw_hdr_t ok[2] = {{MGW_STR("X-A"), MGW_STR("1")}, {MGW_STR("Connection"), MGW_STR("close")}};
    CHECK(mgw_hc_build(&q, mem, MGW_STR("POST"), &u, ok, 2, MGW_STR("hi")) == NULL);
    CHECK(q.port == 1 && strcmp(q.host, "h") == 0 && !q.replayable);
    const char *want = "POST /x HTTP/1.1\r\nhost: h:1\r\nX-A: 1\r\ncontent-length: 2\r\n\r\nhi";
    CHECK(q.head.n == strlen(want) && memcmp(q.head.p, want, q.head.n) == 0);
    mgw_pool_destroy(mem);
}

/* ---- the PKI ---- */

static int make_pki(void)
{
    if (unit_make_certs(dir, sizeof(dir), "client", "tests/e2e/tls_certs.sh") != 0) return -1;
    snprintf(root_pem, sizeof(root_pem), "%s/root.pem", dir);
    return 0;
}

static void cleanup(void)
{
    stop_server(&plain);
    stop_server(&tls_ok);
    stop_server(&tls_name);
    stop_server(&tls_self);
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (dir[0] && system(cmd) != 0) printf("# cannot remove %s\n", dir);
}

/* The reason label of a failed new connection (GET /metrics). */
static void test_connect_reason(void)
{
    CHECK_STR(connect_reason(MGW_HC_ECONNECT, UV_ECONNREFUSED), "refused");
    CHECK_STR(connect_reason(MGW_HC_ECONNECT, UV_ETIMEDOUT), "timeout");
    CHECK_STR(connect_reason(MGW_HC_ECONNECT, UV_EHOSTUNREACH), "unreachable");
    CHECK_STR(connect_reason(MGW_HC_ECONNECT, UV_EACCES), "other");
    CHECK_STR(connect_reason(MGW_HC_ERESOLVE, UV_EAI_NONAME), "dns");
    CHECK_STR(connect_reason(MGW_HC_ETLS, 0), "tls");
    CHECK_STR(connect_reason(MGW_HC_ETIMEOUT, 0), "timeout");
    CHECK_STR(connect_reason(MGW_HC_EREAD, UV_ECONNRESET), "reset");
    CHECK_STR(connect_reason(MGW_HC_EREAD, UV_EPIPE), "other");
    CHECK_STR(connect_reason(MGW_HC_ECLOSED, UV_EOF), "closed");
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    RUN(test_build_refuses_bad_headers);
    RUN(test_connect_reason);
    if (make_pki() != 0 || start_server(&plain, NULL, NULL) != 0 ||
        start_server(&tls_ok, "localhost.pem", "localhost.key") != 0 ||
        start_server(&tls_name, "api.pem", "api.key") != 0 ||
        start_server(&tls_self, "rogue_root.pem", "rogue_root.key") != 0) {
        printf("not ok - the test upstreams\n");
        unit_failed++;
        cleanup();
        return DONE();
    }
    RUN(test_get_http);
    RUN(test_pooled_reuse);
    RUN(test_retry_on_stale_pooled);
    RUN(test_streamed_chunked_body);
    RUN(test_backpressure);
    RUN(test_stalled);
    RUN(test_https_verified);
    RUN(test_https_wrong_name);
    RUN(test_https_self_signed);
    RUN(test_timeout);
    RUN(test_connect_refused);
    cleanup();
    mgw__rbuf_drain();
    return DONE();
}
