#include "truststore.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mem.h"

/* Reads a whole (small) file; returns its bytes (caller frees) or NULL. */
static char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 8192, len = 0;
    char *p = mgw_malloc(cap);
    size_t r;
    while ((r = fread(p + len, 1, cap - len, f)) > 0) {
        len += r;
        if (len == cap) p = mgw_realloc(p, cap *= 2);
    }
    fclose(f);
    *n = len;
    return p;
}

/* Writes bytes to path atomically (temporary file, then rename). */
static int write_atomic(const char *path, const char *p, size_t n)
{
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    if (!f) return -1;
    int ok = fwrite(p, 1, n, f) == n;
    ok = fflush(f) == 0 && fsync(fileno(f)) == 0 && ok;
    fclose(f);
    return ok && rename(tmp, path) == 0 ? 0 : -1;
}

static void versions_dir(const char *state_dir, const char *host, char *out, size_t n)
{
    snprintf(out, n, "%s/truststores/%s", state_dir, host);
}

/* Creates dir and its parents. */
static int mkdirs(const char *dir)
{
    char buf[4096];
    snprintf(buf, sizeof(buf), "%s", dir);
    for (char *s = buf + 1; *s; s++) {
        if (*s != '/') continue;
        *s = '\0';
        if (mkdir(buf, 0700) != 0 && errno != EEXIST) return -1;
        *s = '/';
    }
    return mkdir(buf, 0700) != 0 && errno != EEXIST ? -1 : 0;
}

/* The number of the newest version (0: none). */
static int newest(const char *dir)
{
    int n = 0;
    char path[4200];
    for (;;) {
        snprintf(path, sizeof(path), "%s/v%d.pem", dir, n + 1);
        if (access(path, R_OK) != 0) return n;
        n++;
    }
}

static int read_pin(const char *dir)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/pinned", dir);
    FILE *f = fopen(path, "r");
    int v = 0;
    if (f) {
        if (fscanf(f, "%d", &v) != 1) v = 0;
        fclose(f);
    }
    return v;
}

int mgw_truststore_resolve(const char *state_dir, const char *host, const char *file, int pin,
                           char *out, size_t outlen, int *version, char *err, size_t errlen)
{
    char dir[4096], path[4200];
    versions_dir(state_dir, host, dir, sizeof(dir));
    if (mkdirs(dir) != 0) {
        snprintf(err, errlen, "cannot create \"%s\": %s", dir, strerror(errno));
        return -1;
    }
    size_t n = 0, m = 0;
    char *cur = slurp(file, &n);
    if (cur == NULL) {
        snprintf(err, errlen, "cannot read \"%s\": %s", file, strerror(errno));
        return -1;
    }
    int last = newest(dir);
    char *prev = NULL;
    if (last) {
        snprintf(path, sizeof(path), "%s/v%d.pem", dir, last);
        prev = slurp(path, &m);
    }
    if (last == 0 || prev == NULL || m != n || memcmp(prev, cur, n) != 0) {
        snprintf(path, sizeof(path), "%s/v%d.pem", dir, last + 1);
        if (write_atomic(path, cur, n) != 0) {
            snprintf(err, errlen, "cannot write \"%s\": %s", path, strerror(errno));
            free(cur);
            free(prev);
            return -1;
        }
        last++;
    }
    free(cur);
    free(prev);
    if (pin <= 0) pin = read_pin(dir);
    if (pin > 0) {
        snprintf(path, sizeof(path), "%s/v%d.pem", dir, pin);
        if (pin > last || access(path, R_OK) != 0) {
            snprintf(err, errlen, "truststore version %d does not exist (versions 1 to %d)", pin,
                     last);
            return -1;
        }
        snprintf(out, outlen, "%s", path);
        *version = pin;
        return 0;
    }
    snprintf(out, outlen, "%s", file);
    *version = last;
    return 0;
}

int mgw_truststore_rollback(const char *state_dir, const char *host, const char *file, int *to,
                            char *err, size_t errlen)
{
    char dir[4096], path[4200];
    int served = 0;
    /* records the file's content first, so "the version served now" is right */
    if (mgw_truststore_resolve(state_dir, host, file, 0, path, sizeof(path), &served, err,
                               errlen) != 0)
        return -1;
    if (served <= 1) {
        snprintf(err, errlen, "no version before %d to roll back to", served);
        return -1;
    }
    versions_dir(state_dir, host, dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/pinned", dir);
    char num[32];
    int len = snprintf(num, sizeof(num), "%d\n", served - 1);
    if (write_atomic(path, num, (size_t)len) != 0) {
        snprintf(err, errlen, "cannot write \"%s\": %s", path, strerror(errno));
        return -1;
    }
    *to = served - 1;
    return 0;
}

int mgw_truststore_unpin(const char *state_dir, const char *host, char *err, size_t errlen)
{
    char dir[4096], path[4200];
    versions_dir(state_dir, host, dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/pinned", dir);
    if (unlink(path) != 0 && errno != ENOENT) {
        snprintf(err, errlen, "cannot remove \"%s\": %s", path, strerror(errno));
        return -1;
    }
    return 0;
}
