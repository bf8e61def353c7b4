/*
 * The moongate command line: serving (no command), check, reload, status, client-cert
 * show, truststore rollback|unpin, version; and the start-up that connects the layers
 * (the entries http/ and lua/ fill into the request core's tables, gw/gw.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/jwt.h"
#include "cluster/ask.h"
#include "cluster/cluster.h"
#include "cluster/exact.h"
#include "cluster/quota.h"
#include "cluster/throttle.h"
#include "cluster/wafrate.h"
#include "base/err.h"
#include "base/log.h"
#include "conf/config.h"
#include "conf/token.h"
#include "conf/truststore.h"
#include "ctl/cli.h"
#include "ctl/manage.h"
#include "ctl/reload.h"
#include "gw/req_int.h"
#include "http/otlp.h"
#include "http/proxy.h"
#include "http/server.h"
#include "http/writer.h"
#include "lua/lua_int.h"
#include "net/conn.h"
#include "net/worker.h"
#include "ws/ws.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: moongate [-c FILE] [-p DIR]        run the gateway\n"
               "       moongate check [-c FILE] [-p DIR]  validate a configuration\n"
               "       moongate reload [-c FILE] [-p DIR] reload the running gateway\n"
               "       moongate status [-c FILE] [-p DIR] print the running gateway's status\n"
               "       moongate client-cert show API STAGE print the certificate a stage\n"
               "                                          presents to https backends\n"
               "       moongate truststore rollback DOMAIN serve the previous truststore\n"
               "       moongate truststore unpin DOMAIN   serve the configured truststore again\n"
               "       moongate jwt check TOKEN --api A --authorizer N\n"
               "                                          check a token step by step with the\n"
               "                                          JWT authorizer N of API A\n"
               "       moongate version                   print the version\n"
               "  -c FILE  configuration file (default conf/gateway.lua)\n"
               "  -p DIR   prefix for relative paths in the configuration (default .)\n");
}

/*
 * A request to the management listener of FILE (prefix: the -p the gateway runs with,
 * which locates a relative state_dir or token_file), with the token of its token file.
 * Prints what it answered to stdout when it answered 200, else to stderr, and returns
 * the exit status: 0 only for a 200.
 */
static int manage_running(const char *file, const char *prefix, const char *method,
                          const char *path)
{
    mgw_manage_addr_t m;
    mgw_buf_t out = {0};
    char tok[MGW_MANAGE_TOKEN_MAX + 1], err[1200];
    int status = -1;
    if (mgw_config_management(file, prefix, &m, &out) != 0) {
        fputs(out.p ? out.p : "no management listener\n", stderr);
    } else if (mgw_manage_token_read(m.token_file, tok, sizeof(tok), err, sizeof(err)) < 0) {
        fprintf(stderr, "%s: management.token_file: %s%s\n", file, err,
                m.token_generated ? " (the gateway creates it under its state_dir when it "
                                    "starts: give the -p DIR it runs with)"
                                  : "");
    } else {
        status = mgw_manage_request(m.address, m.port, tok, method, path, &out);
        if (status == 401)
            fprintf(stderr, "%s: the management listener %s:%d refused the token of \"%s\"\n", file,
                    m.address, m.port, m.token_file);
        else
            fputs(out.p ? out.p : "", status == 200 ? stdout : stderr);
    }
    mgw_buf_free(&out);
    return status == 200 ? 0 : 1;
}

/*
 * `moongate reload`: asks the gateway that serves FILE's management listener to reload.
 * Prints what it answered (the errors when it rejected the configuration) and exits 0
 * only when the new generation serves.
 */
static int reload_running(const char *file, const char *prefix)
{
    return manage_running(file, prefix, "POST", "/reload");
}

/*
 * Prints the PEM certificate a stage presents to https backends, generating it first
 * when the stage asks for a generated one that does not exist yet, so that a backend can
 * be told to trust it before the gateway first starts.
 */
static int show_client_cert(mgw_gen_t *gen, const char *api_id, const char *stage_name)
{
    int rc = 1;
    mgw_api_t *api = mgw_gen_find_api(gen, api_id, strlen(api_id));
    mgw_stage_t *st = api ? mgw_api_find_stage(api, stage_name, strlen(stage_name)) : NULL;
    char err[512];
    if (st == NULL) {
        fprintf(stderr, "moongate: no stage \"%s\" in API \"%s\"\n", stage_name, api_id);
    } else if (st->client_cert_file == NULL) {
        fprintf(stderr, "moongate: apis.%s.stages.%s has no client_certificate\n", api_id,
                stage_name);
    } else if (st->client_cert_generate && mgw_config_client_cert(st, err, sizeof(err)) != 0) {
        fprintf(stderr, "moongate: %s\n", err);
    } else {
        FILE *f = fopen(st->client_cert_file, "r");
        char buf[4096];
        size_t n;
        if (f == NULL) {
            fprintf(stderr, "moongate: cannot read \"%s\"\n", st->client_cert_file);
        } else {
            while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
                fwrite(buf, 1, n, stdout);
            fclose(f);
            rc = 0;
        }
    }
    mgw_gen_unref(gen);
    return rc;
}

/*
 * moongate truststore rollback|unpin DOMAIN: pins the version served before the one
 * served now (or removes the pin), then asks the running gateway to reload so it
 * takes effect at once.
 */
static int truststore_command(mgw_gen_t *gen, const char *file, const char *prefix,
                              const char *action, const char *domain)
{
    const mgw_domain_t *d = mgw_gen_find_domain(gen, domain, strlen(domain));
    char err[512];
    int to = 0, rc = 1;
    const char *state = gen->state_dir ? gen->state_dir : "state";
    if (d == NULL || !d->mtls) {
        fprintf(stderr, "moongate: domain \"%s\" has no mtls truststore\n", domain);
    } else if (d->truststore_pin) {
        fprintf(stderr,
                "moongate: domains[\"%s\"].mtls.version pins version %d in %s: change "
                "it there\n",
                domain, d->truststore_pin, file);
    } else if (strcmp(action, "rollback") == 0 &&
               mgw_truststore_rollback(state, domain, d->truststore_file, &to, err, sizeof(err)) !=
                   0) {
        fprintf(stderr, "moongate: %s\n", err);
    } else if (strcmp(action, "unpin") == 0 &&
               mgw_truststore_unpin(state, domain, err, sizeof(err)) != 0) {
        fprintf(stderr, "moongate: %s\n", err);
    } else {
        if (to)
            printf("%s: truststore rolled back to version %d\n", domain, to);
        else
            printf("%s: truststore unpinned, serving %s\n", domain, d->truststore_file);
        rc = 0;
    }
    mgw_gen_unref(gen);
    if (rc != 0) return rc;
    if (reload_running(file, prefix) != 0)
        printf("(no running gateway reloaded: the change applies when it starts or reloads)\n");
    return 0;
}

/*
 * What the layers above net keep per worker, as worker ops (net/worker.h). The HTTP
 * client's idle connections go at shutdown and its origin table when the loop has
 * stopped; the Lua state is created before the worker's first generation loads its
 * policies into it and destroyed after the last one is unloaded.
 */
static void upstream_stop(mgw_worker_t *w)
{
    mgw__upstream_close_idle(w);
}

static const mgw_worker_ops_t upstream_worker_ops = {
    .name = "upstream",
    .worker_stop = upstream_stop,
    .worker_free = mgw__upstream_free,
};

static void lua_start(mgw_worker_t *w)
{
    w->lua = mgw_lua_create(w);
    mgw_lua_watch(w->lua, w); /* moongate_lua_memory_bytes */
}

static void lua_end(mgw_worker_t *w)
{
    mgw_lua_unwatch(w->lua);
}

static void lua_free(mgw_worker_t *w)
{
    mgw_lua_destroy(w->lua);
    w->lua = NULL;
}

static const mgw_worker_ops_t lua_worker_ops = {
    .name = "lua",
    .worker_start = lua_start,
    .worker_end = lua_end,
    .worker_free = lua_free,
};

/* Serves gen with every layer in place, lowest first (net/worker.h has the order's rules). */
static int serve(mgw_gen_t *gen)
{
    mgw_worker_ops_register(&upstream_worker_ops);         /* http */
    mgw_worker_ops_register(&mgw__otlp_worker_ops);        /* http: span export, on the pools */
    mgw_worker_ops_register(&mgw__cluster_worker_ops);     /* cluster: the link to Redis */
    mgw_worker_ops_register(&lua_worker_ops);              /* lua */
    mgw_worker_ops_register(&mgw__reload_worker_ops);      /* ctl: generations, management */
    mgw_cluster_part_register(&mgw_cluster_throttle_part); /* cluster: throttle buckets */
    mgw_cluster_part_register(&mgw_cluster_quota_part);    /* cluster: usage-plan quotas */
    mgw_cluster_part_register(&mgw_cluster_waf_rate_part); /* cluster: rate-based rules */
    mgw_cluster_part_register(&mgw_cluster_ask_part);      /* cluster: requests asking Redis */
    mgw_cluster_part_register(&mgw_cluster_exact_part);    /* cluster: exact throttle limits */
    mgw_cluster_ask_register();
    mgw_cluster_exact_register();
    /* The request core's tables (gw/gw.h): the HTTP/1 response writer and the http
     * integration; the Lua policy hooks (request bodies among them), the lua integration
     * and the lua authorizer. */
    mgw_http_register();
    mgw_jwt_register(); /* the jwt authorizer */
    mgw_ws_register();  /* websocket APIs, @connections */
    mgw_lua_register();
    /* Client connections start with the HTTP/1 server; the Lua revocation hook checks
     * client certificates. */
    mgw_conn_set_accept_handler(&mgw_http_server_handler); /* http */
    mgw_conn_set_cert_check(mgw__revocation_check);        /* lua */
    return mgw_server_run(gen);
}

int main(int argc, char **argv)
{
    const char *file = "conf/gateway.lua", *prefix = ".";
    int check = 0, reload = 0, status = 0;
    const char *cert_api = NULL, *cert_stage = NULL;
    const char *ts_action = NULL, *ts_domain = NULL;
    const char *jwt_token = NULL, *jwt_api = NULL, *jwt_name = NULL;
    int i = 1;
    if (i < argc && strcmp(argv[i], "version") == 0) {
        printf("moongate %s\n", MGW_VERSION);
        return 0;
    }
    if (i < argc && strcmp(argv[i], "check") == 0) {
        check = 1;
        i++;
    } else if (i < argc && strcmp(argv[i], "reload") == 0) {
        reload = 1;
        i++;
    } else if (i < argc && strcmp(argv[i], "status") == 0) {
        status = 1;
        i++;
    } else if (i < argc && strcmp(argv[i], "truststore") == 0) {
        if (i + 2 >= argc ||
            (strcmp(argv[i + 1], "rollback") != 0 && strcmp(argv[i + 1], "unpin") != 0)) {
            fprintf(stderr,
                    "usage: moongate truststore rollback|unpin DOMAIN [-c FILE] [-p DIR]\n");
            return 2;
        }
        ts_action = argv[i + 1];
        ts_domain = argv[i + 2];
        check = 1;
        i += 3;
    } else if (i < argc && strcmp(argv[i], "jwt") == 0) {
        if (i + 2 >= argc || strcmp(argv[i + 1], "check") != 0) {
            fprintf(stderr, "usage: moongate jwt check TOKEN --api A --authorizer N [-c FILE] "
                            "[-p DIR]\n");
            return 2;
        }
        jwt_token = argv[i + 2];
        i += 3;
    } else if (i < argc && strcmp(argv[i], "client-cert") == 0) {
        if (i + 3 >= argc || strcmp(argv[i + 1], "show") != 0) {
            fprintf(stderr, "usage: moongate client-cert show API STAGE [-c FILE] [-p DIR]\n");
            return 2;
        }
        cert_api = argv[i + 2];
        cert_stage = argv[i + 3];
        check = 1; /* load without serving */
        i += 4;
    }
    for (; i < argc; i++) {
        if (strcmp(argv[i], "-c") == 0 && i + 1 < argc) {
            file = argv[++i];
        } else if (strcmp(argv[i], "-p") == 0 && i + 1 < argc) {
            prefix = argv[++i];
        } else if (jwt_token && strcmp(argv[i], "--api") == 0 && i + 1 < argc) {
            jwt_api = argv[++i];
        } else if (jwt_token && strcmp(argv[i], "--authorizer") == 0 && i + 1 < argc) {
            jwt_name = argv[++i];
        } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "moongate: unknown argument \"%s\"\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }

    mgw_buf_t errors = {0};
    if (jwt_token) {
        if (jwt_api == NULL || jwt_name == NULL) {
            fprintf(stderr, "moongate: jwt check needs --api A and --authorizer N\n");
            return 2;
        }
        return mgw_cli_jwt_check(file, prefix, jwt_api, jwt_name, jwt_token);
    }
    if (reload) return reload_running(file, prefix);
    if (status) return manage_running(file, prefix, "GET", "/status");
    mgw_gen_t *gen = NULL;
    if (mgw_config_load(file, prefix, check, &gen, &errors) != 0) {
        fputs(errors.p ? errors.p : "configuration error\n", stderr);
        mgw_buf_free(&errors);
        return 1;
    }
    mgw_buf_free(&errors);
    if (cert_api) return show_client_cert(gen, cert_api, cert_stage);
    if (ts_action) return truststore_command(gen, file, prefix, ts_action, ts_domain);
    if (check) {
        printf("%s: OK\n", file);
        mgw_gen_unref(gen);
        return 0;
    }
    return serve(gen) == 0 ? 0 : 1;
}
