/*
 * The proxy's backend response path (runtime/http/client.c and runtime/http/proxy.c,
 * included here to park a backend connection in the worker's client pool and to see the
 * proxy take it): a client request to an HTTP integration is
 * sent through the real connection code (gateway.h); the integration takes the pooled
 * backend connection, whose other end is the fuzzer, writes the request head to it, and
 * the input is what the backend answers, after which the backend closes. The first input
 * byte picks the client's request: GET, HEAD, or POST with a body and
 * "Expect: 100-continue". The response head is parsed by llhttp into the proxy's header
 * table, filtered (hop-by-hop headers) and written to the client with the body; a broken
 * response becomes a 502.
 * Properties: the client receives HTTP responses that llhttp itself parses without error
 * (nothing the backend sends can break the framing of what the gateway forwards), and
 * both connections are closed once both peers have gone.
 */
#include "http/client.c"
#include "http/proxy.c"

#include <llhttp.h>

#include "gateway.h"

static const char config[] =
    "return {\n"
    "  workers = 1,\n"
    "  state_dir = '@DIR@/state',\n"
    "  listen = { { address = '127.0.0.1', port = 1, api = 'p' } },\n"
    "  apis = { p = {\n"
    "    stages = { ['$default'] = { access_log = { path = '/dev/null', format = "
    "'$context.status $context.integrationStatus $context.responseLength "
    "$context.integrationErrorMessage' } } },\n"
    "    routes = { ['ANY /p/{x+}'] = { integration = { type = 'http',\n"
    "      uri = 'http://127.0.0.1:9/backend/{x}', timeout_ms = 5000 } } },\n"
    "  } },\n"
    "}\n";

static const char *requests[] = {
    "GET /p/a?q=1 HTTP/1.1\r\nHost: gw\r\nUser-Agent: fuzz\r\n\r\n",
    "HEAD /p/a HTTP/1.1\r\nHost: gw\r\n\r\n",
    "POST /p/b HTTP/1.1\r\nHost: gw\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\nbody",
};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    gw_start("response", config);
    return 0;
}

/* A backend connection of origin 127.0.0.1:9 in the worker's pool, on a socketpair;
 * returns the fuzzer's end, and the connection in *out. */
static int park_backend(mgw_hc_conn_t **out)
{
    int sv[2];
    gw_pair(sv);
    mgw_hc_pool_t *p = mgw__http_pool(&gw);
    hc_origin_t *o = origin_get(p, "127.0.0.1", 9, NULL);
    mgw_hc_conn_t *uc = conn_new(p, o, NULL);
    FUZZ_CHECK(uv_tcp_open(&uc->stream.tcp, sv[0]) == 0);
    conn_release(uc);
    FUZZ_CHECK(o->idle == uc);
    *out = uc;
    return sv[1];
}

/* The proxy of c's request has taken the parked connection and sent its request. */
static int backend_taken(mgw_conn_t *c, mgw_hc_conn_t *uc)
{
    return c->req && c->req->px && c->req->px->q.conn == uc && uc->ready;
}

static int head_response;

static int on_headers(llhttp_t *p)
{
    (void)p;
    return head_response ? 1 : 0; /* a response to HEAD has no body */
}

/* 1 when llhttp parses what the client received without error (it may end early). */
static int parses(const char *p, size_t n, int head)
{
    llhttp_t parser;
    llhttp_settings_t s;
    llhttp_settings_init(&s);
    s.on_headers_complete = on_headers;
    head_response = head;
    llhttp_init(&parser, HTTP_RESPONSE, &s);
    llhttp_errno_t e = llhttp_execute(&parser, p, n);
    if (e != HPE_OK && getenv("MGW_FUZZ_SHOW"))
        fprintf(stderr, "client got unparsable bytes: %s\n", llhttp_get_error_reason(&parser));
    return e == HPE_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) return 0;
    int variant = data[0] % 3;
    data++;
    size--;
    mgw_hc_conn_t *uc;
    int bfd = park_backend(&uc), cfd;
    mgw_conn_t *c = gw_accept(&cfd);
    const char *req = requests[variant];
    FUZZ_CHECK(gw_send(cfd, (const uint8_t *)req, strlen(req)) == strlen(req));
    mgw_buf_t out = {0}, head = {0};
    for (int i = 0; i < 50 && !backend_taken(c, uc); i++)
        gw_tick();
    FUZZ_CHECK(backend_taken(c, uc));
    /* the backend answers... */
    size_t sent = gw_send(bfd, data, size);
    for (int i = 0, idle = 0; i < 400 && idle < 4; i++) {
        gw_tick();
        if (sent < size) sent += gw_send(bfd, data + sent, size - sent);
        idle = gw_drain(cfd, &out) || gw_drain(bfd, &head) || sent < size ? 0 : idle + 1;
    }
    /* ...and closes; then the client goes */
    shutdown(bfd, SHUT_WR);
    for (int i = 0, idle = 0; i < 400 && idle < 4; i++) {
        gw_tick();
        idle = gw_drain(cfd, &out) || gw_drain(bfd, &head) ? 0 : idle + 1;
    }
    shutdown(cfd, SHUT_WR);
    for (int i = 0; i < 400 && gw.conns; i++) {
        gw_tick();
        gw_drain(cfd, &out);
        gw_drain(bfd, &head);
    }
    if (getenv("MGW_FUZZ_SHOW"))
        fprintf(stderr, "--- backend got\n%.*s\n--- client got\n%.*s\n", (int)head.n, head.p,
                (int)out.n, out.p);
    FUZZ_CHECK(head.n > 0); /* the request head went to the backend */
    FUZZ_CHECK(out.n >= 9 && memcmp(out.p, "HTTP/1.1 ", 9) == 0);
    FUZZ_CHECK(parses(out.p, out.n, variant == 1));
    FUZZ_CHECK(gw_nconns() == 0);
    gw_reset();
    close(bfd);
    close(cfd);
    mgw_buf_free(&out);
    mgw_buf_free(&head);
    return 0;
}
