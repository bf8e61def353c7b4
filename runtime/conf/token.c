/* The management token file (see token.h). */
#include "conf/token.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "base/crypto.h"
#include "base/log.h"

/* An Authorization value: "Bearer " and a token, with room for extra white space. */
#define AUTH_MAX (MGW_MANAGE_TOKEN_MAX + 64)

/* ---- the token ---- */

int mgw_manage_token_read(const char *path, char *tok, size_t n, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "cannot read \"%s\": %s", path, strerror(errno));
        return -1;
    }
    char buf[AUTH_MAX];
    size_t len = 0;
    ssize_t got = 0;
    while (len < sizeof(buf) && (got = read(fd, buf + len, sizeof(buf) - len)) > 0)
        len += (size_t)got;
    int read_errno = got < 0 ? errno : 0;
    close(fd);
    if (read_errno) {
        snprintf(err, errlen, "cannot read \"%s\": %s", path, strerror(read_errno));
        return -1;
    }
    while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r' || buf[len - 1] == ' ' ||
                       buf[len - 1] == '\t'))
        len--;
    if (len == 0) {
        snprintf(err, errlen, "\"%s\" is empty: it must hold the token", path);
        return -1;
    }
    if (len > MGW_MANAGE_TOKEN_MAX || len >= n) {
        snprintf(err, errlen, "\"%s\": the token is longer than %d characters", path,
                 MGW_MANAGE_TOKEN_MAX);
        return -1;
    }
    /* A header value carries it: visible ASCII only, so one line without spaces. */
    for (size_t i = 0; i < len; i++) {
        if (buf[i] < 0x21 || buf[i] > 0x7e) {
            snprintf(err, errlen,
                     "\"%s\": the token must be one line of visible ASCII characters (no "
                     "spaces)",
                     path);
            return -1;
        }
    }
    memcpy(tok, buf, len);
    tok[len] = '\0';
    return (int)len;
}

int mgw_manage_token_generate(const char *path, char *err, size_t errlen)
{
    if (access(path, F_OK) == 0) return 0;
    char dir[1024];
    if (snprintf(dir, sizeof(dir), "%s", path) >= (int)sizeof(dir)) {
        snprintf(err, errlen, "path too long: \"%s\"", path);
        return -1;
    }
    for (char *s = dir + 1; *s; s++) {
        if (*s != '/') continue;
        *s = '\0';
        mkdir(dir, 0700);
        *s = '/';
    }
    uint8_t raw[32];
    if (mgw_random_bytes(raw, sizeof(raw)) != 0) {
        snprintf(err, errlen, "cannot generate \"%s\": no random bytes from OpenSSL", path);
        return -1;
    }
    char text[2 * sizeof(raw) + 1];
    mgw_hex(raw, sizeof(raw), text);
    text[sizeof(text) - 1] = '\n';
    /* Written to a file of our own and linked into place, so that nobody ever reads a
     * half-written token, and a token someone made meanwhile is not overwritten. */
    char tmp[1100];
    snprintf(tmp, sizeof(tmp), "%s.%ld.tmp", path, (long)getpid());
    unlink(tmp);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    int ok = fd >= 0 && fchmod(fd, 0600) == 0 && write(fd, text, sizeof(text)) == sizeof(text) &&
             fsync(fd) == 0;
    int e = errno;
    if (fd >= 0) close(fd);
    if (ok && link(tmp, path) != 0 && errno != EEXIST) {
        ok = 0;
        e = errno;
    }
    unlink(tmp);
    if (!ok) {
        snprintf(err, errlen, "cannot create \"%s\": %s", path, strerror(e));
        return -1;
    }
    mgw_log_info("generated the management token \"%s\"", path);
    return 0;
}
