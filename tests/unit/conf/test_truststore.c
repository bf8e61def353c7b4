/*
 * Truststore versions (README "TLS and mutual TLS"): each distinct content of the file is
 * recorded once as vN.pem, rollback steps back through what the file served, a pin in
 * the configuration or from a rollback is served instead of the file, and a state
 * directory from before the history keeps working.
 */
#include "conf/truststore.c"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"

static char state[256], file[300], dir[600];

static void put(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
}

/* The content of path, or "" (static buffer). */
static const char *get(const char *path)
{
    static char buf[256];
    buf[0] = '\0';
    FILE *f = fopen(path, "r");
    if (f) {
        size_t n = fread(buf, 1, sizeof(buf) - 1, f);
        buf[n] = '\0';
        fclose(f);
    }
    return buf;
}

static const char *version_file(int v)
{
    static char path[700];
    snprintf(path, sizeof(path), "%s/v%d.pem", dir, v);
    return path;
}

static void setup(void)
{
    snprintf(state, sizeof(state), "/tmp/mgw-truststore-XXXXXX");
    if (mkdtemp(state) == NULL) abort();
    snprintf(file, sizeof(file), "%s/trust.pem", state);
    snprintf(dir, sizeof(dir), "%s/truststores/api.test", state);
}

static void teardown(void)
{
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", state);
    if (system(cmd) != 0) printf("# cannot remove %s\n", state);
}

/* Writes text to the file and resolves it (what a reload does); returns the version. */
static int load(const char *text)
{
    char out[1024], err[512];
    int version = -1;
    put(file, text);
    if (mgw_truststore_resolve(state, "api.test", file, 0, out, sizeof(out), &version, err,
                               sizeof(err)) != 0) {
        printf("# resolve: %s\n", err);
        return -1;
    }
    return version;
}

static int rollback(void)
{
    char err[512];
    int to = 0;
    if (mgw_truststore_rollback(state, "api.test", file, &to, err, sizeof(err)) != 0) return -1;
    return to;
}

static void test_each_content_once(void)
{
    setup();
    CHECK(load("A") == 1);
    CHECK(load("B") == 2);
    CHECK(load("A") == 1);
    CHECK(load("B") == 2);
    CHECK(load("B") == 2); /* a reload without a change */
    CHECK(load("C") == 3);
    CHECK_STR(get(version_file(1)), "A");
    CHECK_STR(get(version_file(2)), "B");
    CHECK_STR(get(version_file(3)), "C");
    CHECK(access(version_file(4), F_OK) != 0);
    teardown();
}

static void test_rollback_steps_back_through_history(void)
{
    setup();
    CHECK(load("A") == 1);
    CHECK(rollback() == -1); /* nothing before the first */
    CHECK(load("B") == 2);
    CHECK(load("A") == 1);
    /* A -> B -> A: the version before the one served now is B */
    CHECK(rollback() == 2);
    char out[1024], err[512];
    int version = 0;
    CHECK(mgw_truststore_resolve(state, "api.test", file, 0, out, sizeof(out), &version, err,
                                 sizeof(err)) == 0);
    CHECK(version == 2);
    CHECK_STR(out, version_file(2));
    CHECK(rollback() == 1);
    CHECK(rollback() == -1);
    /* unpin: the file again */
    CHECK(mgw_truststore_unpin(state, "api.test", err, sizeof(err)) == 0);
    CHECK(load("A") == 1);
    teardown();
}

static void test_configured_pin(void)
{
    setup();
    CHECK(load("A") == 1);
    CHECK(load("B") == 2);
    char out[1024], err[512];
    int version = 0;
    CHECK(mgw_truststore_resolve(state, "api.test", file, 1, out, sizeof(out), &version, err,
                                 sizeof(err)) == 0);
    CHECK(version == 1);
    CHECK_STR(out, version_file(1));
    CHECK(mgw_truststore_resolve(state, "api.test", file, 3, out, sizeof(out), &version, err,
                                 sizeof(err)) == -1);
    CHECK_STR(err, "truststore version 3 does not exist (versions 1 to 2)");
    teardown();
}

/* A state directory written before the history (versions 1..3 served in turn, maybe a
 * pin file holding only a version) rolls back as it did. */
static void test_state_without_history(void)
{
    setup();
    CHECK(mkdirs(dir) == 0);
    put(version_file(1), "A");
    put(version_file(2), "B");
    put(version_file(3), "A");
    CHECK(load("A") == 1);  /* the first version with this content */
    CHECK(rollback() == 3); /* history 1, 2, 3, 1: before the last 1 came 3 */
    char path[700], err[512];
    snprintf(path, sizeof(path), "%s/pinned", dir);
    put(path, "2\n"); /* an old pin: only the version */
    CHECK(rollback() == 1);
    CHECK(mgw_truststore_unpin(state, "api.test", err, sizeof(err)) == 0);
    CHECK(access(version_file(4), F_OK) != 0);
    teardown();
}

int main(void)
{
    RUN(test_each_content_once);
    RUN(test_rollback_steps_back_through_history);
    RUN(test_configured_pin);
    RUN(test_state_without_history);
    return DONE();
}
