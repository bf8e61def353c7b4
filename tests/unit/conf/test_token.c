/*
 * The management token file: what a token file may hold (one line of visible ASCII,
 * trailing white space dropped) and the generated token (32 random bytes as hex, mode
 * 0600, its directories created, an existing file never replaced).
 */
#include "conf/token.c"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "unit.h"

static char dir[] = "/tmp/mgw-test-manage-XXXXXX";

static const char *write_file(const char *name, const char *text, size_t n)
{
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    fwrite(text, 1, n, f);
    fclose(f);
    return path;
}

/* The token read from a file holding text, or NULL; err gets why. */
static const char *token_of(const char *text, char *err, size_t errlen)
{
    static char tok[MGW_MANAGE_TOKEN_MAX + 1];
    const char *path = write_file("t", text, strlen(text));
    int n = mgw_manage_token_read(path, tok, sizeof tok, err, errlen);
    return n < 0 ? NULL : tok;
}

static void test_token_read(void)
{
    char err[1200];
    CHECK_STR(token_of("s3cret\n", err, sizeof err), "s3cret");
    CHECK_STR(token_of("s3cret\r\n \t\n\n", err, sizeof err), "s3cret");
    CHECK_STR(token_of("a-b_c.d~e+f/g=", err, sizeof err), "a-b_c.d~e+f/g=");

    CHECK(token_of("", err, sizeof err) == NULL);
    CHECK(strstr(err, "is empty: it must hold the token") != NULL);
    CHECK(token_of("\n\n", err, sizeof err) == NULL);
    CHECK(strstr(err, "is empty") != NULL);
    CHECK(token_of("two words\n", err, sizeof err) == NULL);
    CHECK(strstr(err, "one line of visible ASCII characters") != NULL);
    CHECK(token_of("line1\nline2\n", err, sizeof err) == NULL);
    CHECK(strstr(err, "one line of visible ASCII characters") != NULL);

    char longest[MGW_MANAGE_TOKEN_MAX + 2];
    memset(longest, 'x', MGW_MANAGE_TOKEN_MAX);
    longest[MGW_MANAGE_TOKEN_MAX] = '\0';
    const char *tok = token_of(longest, err, sizeof err);
    CHECK(tok != NULL && strlen(tok) == MGW_MANAGE_TOKEN_MAX);
    longest[MGW_MANAGE_TOKEN_MAX] = 'x';
    longest[MGW_MANAGE_TOKEN_MAX + 1] = '\0';
    CHECK(token_of(longest, err, sizeof err) == NULL);
    CHECK(strstr(err, "the token is longer than 1024 characters") != NULL);
    char huge[8192];
    memset(huge, 'x', sizeof huge - 1);
    huge[sizeof huge - 1] = '\0';
    CHECK(token_of(huge, err, sizeof err) == NULL);
    CHECK(strstr(err, "longer than") != NULL);

    char tokbuf[MGW_MANAGE_TOKEN_MAX + 1], path[600];
    snprintf(path, sizeof path, "%s/missing", dir);
    CHECK(mgw_manage_token_read(path, tokbuf, sizeof tokbuf, err, sizeof err) == -1);
    CHECK(strstr(err, "cannot read") != NULL && strstr(err, "No such file") != NULL);
    CHECK(mgw_manage_token_read(dir, tokbuf, sizeof tokbuf, err, sizeof err) == -1);
    CHECK(strstr(err, "cannot read") != NULL);
}

static void test_token_generate(void)
{
    char path[600], err[1200], tok[MGW_MANAGE_TOKEN_MAX + 1], again[MGW_MANAGE_TOKEN_MAX + 1];
    snprintf(path, sizeof path, "%s/state/sub/management.token", dir);
    CHECK(mgw_manage_token_generate(path, err, sizeof err) == 0);
    struct stat st;
    CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);
    CHECK(mgw_manage_token_read(path, tok, sizeof tok, err, sizeof err) == 64);
    CHECK(strspn(tok, "0123456789abcdef") == 64);
    /* it exists now: kept as it is */
    CHECK(mgw_manage_token_generate(path, err, sizeof err) == 0);
    CHECK(mgw_manage_token_read(path, again, sizeof again, err, sizeof err) == 64);
    CHECK_STR(again, tok);
    /* another file gets another token */
    snprintf(path, sizeof path, "%s/state/other.token", dir);
    CHECK(mgw_manage_token_generate(path, err, sizeof err) == 0);
    CHECK(mgw_manage_token_read(path, again, sizeof again, err, sizeof err) == 64);
    CHECK(strcmp(again, tok) != 0);
    /* a token file an operator wrote is never replaced */
    const char *mine = write_file("mine.token", "operator-token\n", 15);
    CHECK(mgw_manage_token_generate(mine, err, sizeof err) == 0);
    CHECK(mgw_manage_token_read(mine, again, sizeof again, err, sizeof err) == 14);
    CHECK_STR(again, "operator-token");
    /* a state_dir that cannot be created: a regular file is in the way */
    snprintf(path, sizeof path, "%s/mine.token/state/management.token", dir);
    CHECK(mgw_manage_token_generate(path, err, sizeof err) == -1);
    CHECK(strstr(err, "cannot create") != NULL && strstr(err, "Not a directory") != NULL);
}

int main(void)
{
    if (mkdtemp(dir) == NULL) return 1;
    mgw_log_level = MGW_LOG_WARN; /* not "generated the management token ..." */
    RUN(test_token_read);
    RUN(test_token_generate);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) printf("# could not remove %s\n", dir);
    return DONE();
}
