/*
 * The configuration loader: the input is a configuration file, loaded as `moongate
 * check` loads one (runtime/conf/config.c and lua/moongate/config.lua: evaluated in the
 * sandbox under the instruction budget, validated, compiled into a generation; in check
 * mode nothing is written and no log file is opened). The configuration itself runs in
 * the sandbox (string, table and math only), but a policy it names runs with the whole
 * Lua library when it is loaded: relative paths resolve against a scratch directory that
 * holds only policies/ (the stock policies), certs/ (the PEM seeds) and an empty logs/, so that the
 * fuzzer cannot stumble on another Lua file of the tree and run it.
 * Properties: a load either gives a generation or says why not, one error per line, each
 * naming the file; a generation's routers answer a lookup.
 */
#include <limits.h>
#include <unistd.h>

#include "conf/config.h"
#include "base/err.h"
#include "fuzz.h"
#include "conf/gen.h"
#include "base/log.h"

static char file[PATH_MAX], prefix[PATH_MAX];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    mgw_log_level = getenv("MGW_FUZZ_LOG") ? MGW_LOG_DEBUG : -1;
    snprintf(prefix, sizeof(prefix), "%s", fuzz_scratch_dir("config"));
    snprintf(file, sizeof(file), "%s/gateway.lua", prefix);
    char link[PATH_MAX + 16];
    snprintf(link, sizeof(link), "%s/policies", prefix);
    FUZZ_CHECK(symlink(MGW_LUA_DIR "/../policies", link) == 0);
    snprintf(link, sizeof(link), "%s/logs", prefix); /* access-log directories must exist */
    FUZZ_CHECK(mkdir(link, 0700) == 0);
    snprintf(link, sizeof(link), "%s/certs", prefix);
    FUZZ_CHECK(symlink(MGW_LUA_DIR "/../tests/fuzz/corpus/pem", link) == 0);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    FILE *f = fopen(file, "wb");
    FUZZ_CHECK(f != NULL);
    FUZZ_CHECK(fwrite(data, 1, size, f) == size);
    FUZZ_CHECK(fclose(f) == 0);
    mgw_gen_t *gen = NULL;
    mgw_buf_t errors = {0};
    int rc = mgw_config_load(file, prefix, 1, &gen, &errors);
    if (getenv("MGW_FUZZ_SHOW")) fprintf(stderr, "rc %d\n%.*s", rc, (int)errors.n, errors.p);
    if (rc == 0) {
        FUZZ_CHECK(gen != NULL);
        for (int i = 0; i < gen->napis; i++) {
            mgw_route_match_t m;
            (void)mgw_router_match(gen->apis[i].router, MGW_M_GET, MGW_STR("/a/b"), &m);
        }
        mgw_gen_unref(gen);
    } else {
        FUZZ_CHECK(rc == MGW_ECONFIG);
        FUZZ_CHECK(errors.n > 0 && errors.p[errors.n - 1] == '\n');
        FUZZ_CHECK(memmem(errors.p, errors.n, "gateway.lua", 11) != NULL);
    }
    mgw_buf_free(&errors);
    return 0;
}
