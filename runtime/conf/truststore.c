#include "conf/truststore.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/mem.h"

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

/* The version (1..last) whose content is p (n bytes), or 0. */
static int find_version(const char *dir, int last, const char *p, size_t n)
{
    char path[4200];
    for (int v = 1; v <= last; v++) {
        size_t m = 0;
        snprintf(path, sizeof(path), "%s/v%d.pem", dir, v);
        char *q = slurp(path, &m);
        int same = q && m == n && memcmp(p, q, n) == 0;
        free(q);
        if (same) return v;
    }
    return 0;
}

/*
 * The history: the versions the file has served, oldest first, one per line, a new
 * line only when the file's version changes. A rollback steps back through it, so that
 * after A -> B -> A (versions 1, 2, 1) it serves B again.
 */
typedef struct {
    int *v;
    int n;
} history_t;

static history_t read_history(const char *dir, int last)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/history", dir);
    history_t h = {NULL, 0};
    int cap = 0, x;
    FILE *f = fopen(path, "r");
    if (f == NULL) return h;
    while (fscanf(f, "%d", &x) == 1) {
        if (x < 1 || x > last) continue; /* a version removed by hand */
        if (h.n == cap) h.v = mgw_realloc(h.v, sizeof(int) * (size_t)(cap = cap ? cap * 2 : 16));
        h.v[h.n++] = x;
    }
    fclose(f);
    return h;
}

static int append_history(const char *dir, int version)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/history", dir);
    FILE *f = fopen(path, "a");
    if (f == NULL) return -1;
    int ok = fprintf(f, "%d\n", version) > 0;
    ok = fflush(f) == 0 && fsync(fileno(f)) == 0 && ok;
    fclose(f);
    return ok ? 0 : -1;
}

/* The rollback pin: the version, and its position in the history (0: not known). */
static int read_pin(const char *dir, int *pos)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/pinned", dir);
    FILE *f = fopen(path, "r");
    int v = 0, p = 0;
    if (f) {
        if (fscanf(f, "%d", &v) != 1) v = 0;
        if (fscanf(f, "%d", &p) != 1) p = 0;
        fclose(f);
    }
    if (pos) *pos = p;
    return v;
}

/*
 * Records the file's content (once per distinct content) and its place in the history.
 * Returns the file's version, its newest version number in *last, or -1 with err.
 */
static int record(const char *dir, const char *file, int *last, char *err, size_t errlen)
{
    char path[4200];
    if (mkdirs(dir) != 0) {
        snprintf(err, errlen, "cannot create \"%s\": %s", dir, strerror(errno));
        return -1;
    }
    size_t n = 0;
    char *cur = slurp(file, &n);
    if (cur == NULL) {
        snprintf(err, errlen, "cannot read \"%s\": %s", file, strerror(errno));
        return -1;
    }
    *last = newest(dir);
    snprintf(path, sizeof(path), "%s/history", dir);
    if (*last > 0 && access(path, F_OK) != 0) {
        /* A state directory from before the history: it served every version in turn. */
        for (int i = 1; i <= *last; i++) {
            if (append_history(dir, i) != 0) goto fail_history;
        }
    }
    int v = find_version(dir, *last, cur, n);
    if (v == 0) {
        v = *last + 1;
        snprintf(path, sizeof(path), "%s/v%d.pem", dir, v);
        if (write_atomic(path, cur, n) != 0) {
            snprintf(err, errlen, "cannot write \"%s\": %s", path, strerror(errno));
            free(cur);
            return -1;
        }
        *last = v;
    }
    free(cur);
    cur = NULL;
    history_t h = read_history(dir, *last);
    int changed = h.n == 0 || h.v[h.n - 1] != v;
    free(h.v);
    if (changed && append_history(dir, v) != 0) goto fail_history;
    return v;

fail_history:
    free(cur);
    snprintf(err, errlen, "cannot write \"%s/history\": %s", dir, strerror(errno));
    return -1;
}

int mgw_truststore_resolve(const char *state_dir, const char *host, const char *file, int pin,
                           char *out, size_t outlen, int *version, char *err, size_t errlen)
{
    char dir[4096], path[4200];
    versions_dir(state_dir, host, dir, sizeof(dir));
    int last;
    int v = record(dir, file, &last, err, errlen);
    if (v < 0) return -1;
    if (pin <= 0) pin = read_pin(dir, NULL);
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
    *version = v;
    return 0;
}

int mgw_truststore_rollback(const char *state_dir, const char *host, const char *file, int *to,
                            char *err, size_t errlen)
{
    char dir[4096], path[4200];
    versions_dir(state_dir, host, dir, sizeof(dir));
    /* records the file's content first, so that the history ends with what it serves */
    int last;
    int served = record(dir, file, &last, err, errlen);
    if (served < 0) return -1;
    history_t h = read_history(dir, last);
    /* Where in the history the gateway is now: a previous rollback's position, else the
     * end (the file). */
    int pos = 0;
    int pinned = read_pin(dir, &pos);
    if (pinned > 0 && pos >= 1 && pos <= h.n && h.v[pos - 1] == pinned) {
        served = pinned;
    } else if (pinned > 0) {
        served = pinned; /* a pin without a known position: its latest place */
        for (pos = h.n; pos > 1 && h.v[pos - 1] != pinned; pos--)
            ;
    } else {
        pos = h.n;
    }
    if (pos <= 1) {
        free(h.v);
        snprintf(err, errlen, "no version before %d to roll back to", served);
        return -1;
    }
    *to = h.v[pos - 2];
    free(h.v);
    snprintf(path, sizeof(path), "%s/pinned", dir);
    char num[64];
    int len = snprintf(num, sizeof(num), "%d\n%d\n", *to, pos - 1);
    if (write_atomic(path, num, (size_t)len) != 0) {
        snprintf(err, errlen, "cannot write \"%s\": %s", path, strerror(errno));
        return -1;
    }
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
