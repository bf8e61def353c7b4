/* The management client of the CLI (see cli.h), on the runtime's HTTP client. */
#include "ctl/cli.h"

#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "auth/jwt.h"
#include "conf/config.h"
#include "conf/jwtconf.h"
#include "http/client.h"

/* A reload loads every policy: generous, but never forever. */
#define MANAGE_TIMEOUT_MS 120000

typedef struct {
    mgw_hc_req_t q;
    mgw_buf_t *body;
    int status;
    mgw_hc_err_t error; /* MGW_HC_OK, or why no response came */
    int uv_error;
} call_t;

static int on_head(mgw_hc_req_t *q, const mgw_http1_head_t *head, mgw_hdr_t *hdrs, int nhdrs)
{
    (void)hdrs;
    (void)nhdrs;
    ((call_t *)q->data)->status = head->status;
    return 0;
}

static int on_body(mgw_hc_req_t *q, const char *p, size_t n, mgw_rbuf_t *ref)
{
    (void)ref;
    mgw_buf_add(((call_t *)q->data)->body, p, n);
    return 0;
}

static void on_end(mgw_hc_req_t *q)
{
    (void)q;
}

static void on_error(mgw_hc_req_t *q, mgw_hc_err_t kind, const char *detail)
{
    (void)detail;
    call_t *call = q->data;
    call->error = kind;
    call->uv_error = q->uv_error;
}

static const mgw_hc_cbs_t cli_cbs = {
    .on_head = on_head, .on_body = on_body, .on_end = on_end, .on_error = on_error};

/*
 * The address as a numeric host, resolved here (the CLI may block) so that a name that
 * does not resolve is reported in getaddrinfo's words. Returns 0, or -1 with why in body.
 */
static int numeric_host(const char *address, int port, char *out, size_t n, mgw_buf_t *body)
{
    char service[16];
    snprintf(service, sizeof(service), "%d", port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(address, service, &hints, &res);
    if (rc == 0)
        rc = getnameinfo(res->ai_addr, res->ai_addrlen, out, (socklen_t)n, NULL, 0, NI_NUMERICHOST);
    if (res) freeaddrinfo(res);
    if (rc != 0) {
        mgw_buf_printf(body, "cannot resolve %s: %s\n", address, gai_strerror(rc));
        return -1;
    }
    return 0;
}

int mgw_manage_request(const char *address, int port, const char *token, const char *method,
                       const char *path, mgw_buf_t *body)
{
    char host[NI_MAXHOST];
    if (numeric_host(address, port, host, sizeof(host), body) != 0) return -1;
    uv_loop_t loop;
    uv_loop_init(&loop);
    mgw_hc_pool_t *hp = mgw_hc_pool_new(&loop);
    mgw_hc_pool_close_idle(hp, 1); /* one request: its connection closes when it ends */
    mgw_pool_t *pool = mgw_pool_create(0);
    call_t call = {.body = body, .status = -1};
    char *authority = mgw_pool_printf(pool, "%s:%d", address, port);
    mgw_url_t url = {.host = {host, strlen(host)},
                     .port = port,
                     .path = {path, strlen(path)},
                     .authority = {authority, strlen(authority)}};
    char *bearer = mgw_pool_printf(pool, "Bearer %s", token);
    mgw_hdr_t auth = {MGW_STR("authorization"), {bearer, strlen(bearer)}};
    mgw_hc_build(&call.q, pool, (mgw_str_t){method, strlen(method)}, &url, &auth, 1, MGW_NULL_STR);
    call.q.timeout_ms = MANAGE_TIMEOUT_MS;
    call.q.cbs = &cli_cbs;
    call.q.data = &call;
    size_t before = body->n;
    mgw_hc_err_t kind;
    if (mgw_hc_start(hp, &call.q, &kind, NULL) != 0) {
        call.error = kind;
        call.uv_error = call.q.uv_error;
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    mgw_hc_pool_free(hp);
    uv_loop_close(&loop);
    mgw_pool_destroy(pool);
    if (call.error == MGW_HC_OK) return call.status;
    body->n = before; /* a body cut short is no answer */
    if (call.error == MGW_HC_ECONNECT)
        mgw_buf_printf(body, "cannot connect to the management listener %s:%d: %s\n", address, port,
                       strerror(-call.uv_error));
    else
        mgw_buf_printf(body, "no valid answer from the management listener %s:%d\n", address, port);
    return -1;
}

int mgw_cli_jwt_check(const char *file, const char *prefix, const char *api_id, const char *name,
                      const char *token)
{
    mgw_buf_t errors = {0};
    mgw_gen_t *gen = NULL;
    if (mgw_config_load(file, prefix, 1, &gen, &errors) != 0) {
        fputs(errors.p ? errors.p : "configuration error\n", stderr);
        mgw_buf_free(&errors);
        return 1;
    }
    mgw_buf_free(&errors);
    int rc = 1;
    mgw_api_t *api = mgw_gen_find_api(gen, api_id, strlen(api_id));
    const mgw_jwt_conf_t *c = api ? mgw_api_find_jwt(api, name) : NULL;
    if (api == NULL) {
        fprintf(stderr, "moongate: %s has no API \"%s\"\n", file, api_id);
    } else if (c == NULL) {
        fprintf(stderr, "moongate: apis.%s has no JWT authorizer \"%s\"\n", api_id, name);
    } else {
        uv_loop_t loop;
        uv_loop_init(&loop);
        printf("apis.%s.authorizers.%s (issuer %s)\n", api_id, name, c->issuer);
        rc = mgw_jwt_check_cli(&loop, c, token, stdout);
        uv_run(&loop, UV_RUN_DEFAULT);
        uv_loop_close(&loop);
    }
    mgw_gen_unref(gen);
    return rc;
}
