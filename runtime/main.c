/* The moongate command line: run, check, version. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "err.h"
#include "log.h"
#include "manage.h"
#include "worker.h"

#define MGW_VERSION "0.1.0"

static void usage(FILE *f)
{
    fprintf(f, "usage: moongate [-c FILE] [-p DIR]        run the gateway\n"
               "       moongate check [-c FILE] [-p DIR]  validate a configuration\n"
               "       moongate reload [-c FILE]          reload the running gateway (its management\n"
               "                                          listener, from FILE): prints the outcome\n"
               "       moongate version                   print the version\n"
               "  -c FILE  configuration file (default conf/gateway.lua)\n"
               "  -p DIR   prefix for relative paths in the configuration (default .)\n");
}

/*
 * `moongate reload`: asks the gateway that serves FILE's management listener to reload.
 * Prints what it answered (the errors when it rejected the configuration) and exits 0
 * only when the new generation serves.
 */
static int reload_running(const char *file, mgw_buf_t *out)
{
    char address[256];
    int port = 0;
    if (mgw_config_management(file, address, sizeof(address), &port, out) != 0) {
        fputs(out->p ? out->p : "no management listener\n", stderr);
        mgw_buf_free(out);
        return 1;
    }
    int status = mgw_manage_request(address, port, "POST", "/reload", out);
    fputs(out->p ? out->p : "", status == 200 ? stdout : stderr);
    mgw_buf_free(out);
    return status == 200 ? 0 : 1;
}

int main(int argc, char **argv)
{
    const char *file = "conf/gateway.lua", *prefix = ".";
    int check = 0, reload = 0;
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
    }
    for (; i < argc; i++) {
        if (strcmp(argv[i], "-c") == 0 && i + 1 < argc) {
            file = argv[++i];
        } else if (strcmp(argv[i], "-p") == 0 && i + 1 < argc) {
            prefix = argv[++i];
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
    if (reload) return reload_running(file, &errors);
    mgw_gen_t *gen = NULL;
    if (mgw_config_load(file, prefix, check, &gen, &errors) != 0) {
        fputs(errors.p ? errors.p : "configuration error\n", stderr);
        mgw_buf_free(&errors);
        return 1;
    }
    mgw_buf_free(&errors);
    if (check) {
        printf("%s: OK\n", file);
        mgw_gen_unref(gen);
        return 0;
    }
    return mgw_server_run(gen) == 0 ? 0 : 1;
}
