/* The error log's formats (base/log.h): text lines, JSON lines with the message escaped,
 * and the level filter. */
#include "unit.h"

#include "base/log.h"

/* What one mgw_log call wrote to standard error. */
static const char *logged(int level, const char *msg)
{
    static char out[4096];
    fflush(stderr);
    FILE *tmp = tmpfile();
    int saved = dup(STDERR_FILENO);
    dup2(fileno(tmp), STDERR_FILENO);
    mgw_log(level, "%s", msg);
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    rewind(tmp);
    size_t n = fread(out, 1, sizeof(out) - 1, tmp);
    out[n] = '\0';
    fclose(tmp);
    return out;
}

static void test_text(void)
{
    mgw_log_configure(MGW_LOG_INFO, 0);
    const char *line = logged(MGW_LOG_WARN, "disk \"full\"");
    CHECK(strstr(line, " [warn] main: disk \"full\"\n") != NULL);
    CHECK(line[4] == '/' && line[10] == ' '); /* 2026/12/05 01:00:00 */
}

static void test_json(void)
{
    mgw_log_configure(MGW_LOG_INFO, 1);
    const char *line = logged(MGW_LOG_ERROR, "a \"quoted\" \\ path\nnext\tline\x01");
    CHECK(strncmp(line, "{\"time\":\"", 9) == 0);
    CHECK(line[19] == 'T' && line[32] == 'Z'); /* 2026-12-05T01:00:00.123Z */
    CHECK_STR(strstr(line, "\",\"level\""),
              "\",\"level\":\"error\",\"worker\":0,\"message\":\"a \\\"quoted\\\" \\\\ "
              "path\\u000anext\\u0009line\\u0001\"}\n");
}

static void test_json_long_message_stays_json(void)
{
    char msg[3000];
    memset(msg, '"', sizeof(msg) - 1);
    msg[sizeof(msg) - 1] = '\0';
    mgw_log_configure(MGW_LOG_INFO, 1);
    const char *line = logged(MGW_LOG_ERROR, msg);
    size_t n = strlen(line);
    CHECK(n < 2048);
    CHECK(n > 3 && strcmp(line + n - 3, "\"}\n") == 0);
    CHECK(line[n - 4] == '"' && line[n - 5] == '\\'); /* no escape cut in half */
}

static void test_level(void)
{
    mgw_log_configure(MGW_LOG_WARN, 0);
    CHECK_STR(logged(MGW_LOG_INFO, "not written"), "");
    CHECK(strstr(logged(MGW_LOG_WARN, "written"), "written") != NULL);
    CHECK(mgw_log_level_named("debug") == MGW_LOG_DEBUG);
    CHECK(mgw_log_level_named("error") == MGW_LOG_ERROR);
}

int main(void)
{
    RUN(test_text);
    RUN(test_json);
    RUN(test_json_long_message_stays_json);
    RUN(test_level);
    return DONE();
}
