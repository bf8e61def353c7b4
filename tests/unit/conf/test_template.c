/*
 * $context templates as an access-log line or a gateway-response body shows them: values
 * come from a fake lookup, missing ones render "-", JSON templates escape values, and
 * compile errors name the variable.
 */
#include "conf/template.c"

#include <stdio.h>
#include <string.h>

#include "unit.h"

/* The fake request: one optional value per variable, and the stage variables by name. */
typedef struct {
    const char *values[MGW_VAR__COUNT];
    const char *stage_names[4], *stage_values[4];
    int calls;
    char last_arg[64];
} fake_t;

static int lookup(void *ud, int var, mgw_str_t arg, mgw_str_t *out)
{
    fake_t *f = ud;
    f->calls++;
    if (var == MGW_VAR_STAGE_VARIABLE) {
        snprintf(f->last_arg, sizeof f->last_arg, "%.*s", (int)arg.n, arg.p);
        for (int i = 0; i < 4 && f->stage_names[i]; i++) {
            if (strlen(f->stage_names[i]) == arg.n &&
                memcmp(f->stage_names[i], arg.p, arg.n) == 0) {
                *out = (mgw_str_t){f->stage_values[i], strlen(f->stage_values[i])};
                return 1;
            }
        }
        return 0;
    }
    if (var < 0 || var >= MGW_VAR__COUNT || f->values[var] == NULL) return 0;
    *out = (mgw_str_t){f->values[var], strlen(f->values[var])};
    return 1;
}

/* Compiles src and renders it against f; returns the text (static buffer) or "COMPILE: err". */
static const char *render(const char *src, fake_t *f)
{
    static char text[1024];
    mgw_pool_t *pool = mgw_pool_create(0);
    const char *err = NULL;
    mgw_template_t *t = mgw_template_compile(pool, src, &err);
    if (t == NULL) {
        snprintf(text, sizeof text, "COMPILE: %s", err ? err : "(no error)");
    } else {
        mgw_buf_t b = {0};
        mgw_template_render(t, lookup, f, &b);
        snprintf(text, sizeof text, "%.*s", (int)b.n, b.p ? b.p : "");
        mgw_buf_free(&b);
    }
    mgw_pool_destroy(pool);
    return text;
}

static fake_t request(void)
{
    fake_t f = {0};
    f.values[MGW_VAR_REQUEST_ID] = "req-1";
    f.values[MGW_VAR_HTTP_METHOD] = "GET";
    f.values[MGW_VAR_PATH] = "/pets/1";
    f.values[MGW_VAR_STATUS] = "200";
    f.values[MGW_VAR_REQUEST_TIME] = "09/Apr/2015:12:34:56 +0000";
    f.values[MGW_VAR_REQUEST_TIME_EPOCH] = "1428582896000";
    f.values[MGW_VAR_SOURCE_IP] = "192.0.2.1";
    f.values[MGW_VAR_INTEGRATION_STATUS2] = "201";
    f.stage_names[0] = "env";
    f.stage_values[0] = "prod";
    return f;
}

static void test_literal(void)
{
    fake_t f = request();
    CHECK_STR(render("hello world", &f), "hello world");
    CHECK(f.calls == 0);
    CHECK_STR(render("", &f), "");
    /* A '$' that starts no variable is literal text. */
    CHECK_STR(render("cost: $5 $ $context $other.x", &f), "cost: $5 $ $context $other.x");
    CHECK(f.calls == 0);
}

static void test_variables(void)
{
    fake_t f = request();
    CHECK_STR(render("$context.requestId", &f), "req-1");
    CHECK_STR(render("$context.httpMethod $context.path $context.status", &f), "GET /pets/1 200");
    CHECK_STR(render("[$context.requestTime] ip=$context.identity.sourceIp;", &f),
              "[09/Apr/2015:12:34:56 +0000] ip=192.0.2.1;");
    /* The longest name wins: requestTimeEpoch is not requestTime followed by "Epoch". */
    CHECK_STR(render("$context.requestTimeEpoch", &f), "1428582896000");
    CHECK_STR(render("$context.integration.status", &f), "201");
    CHECK_STR(render("$context.status$context.status", &f), "200200");
}

static void test_missing_value(void)
{
    fake_t f = request();
    CHECK_STR(render("$context.integrationLatency", &f), "-");
    CHECK_STR(render("a=$context.error.message b=$context.status", &f), "a=- b=200");
    /* In a JSON template too: the dash is the value, inside the template's quotes. */
    CHECK_STR(render("{\"e\":\"$context.error.responseType\"}", &f), "{\"e\":\"-\"}");
    CHECK_STR(render("$stageVariables.nope", &f), "-");
}

static void test_json_escaping(void)
{
    fake_t f = request();
    f.values[MGW_VAR_PATH] = "/a\"b\\c\nd\te\x01"
                             "f\x7f";
    f.values[MGW_VAR_USER_AGENT] = "caf\xc3\xa9";
    CHECK_STR(render("{\"path\":\"$context.path\"}", &f),
              "{\"path\":\"/a\\\"b\\\\c\\nd\\te\\u0001f\\u007f\"}");
    /* Leading blanks do not hide the '{'. */
    CHECK_STR(render("  \n{\"p\":\"$context.path\"}", &f),
              "  \n{\"p\":\"/a\\\"b\\\\c\\nd\\te\\u0001f\\u007f\"}");
    /* UTF-8 passes through unchanged. */
    CHECK_STR(render("{\"ua\":\"$context.identity.userAgent\"}", &f), "{\"ua\":\"caf\xc3\xa9\"}");
    /* A template that does not start with '{' copies values as they are. */
    CHECK_STR(render("path=$context.path", &f), "path=/a\"b\\c\nd\te\x01"
                                                "f\x7f");
    CHECK_STR(render("x {\"p\":\"$context.path\"}", &f), "x {\"p\":\"/a\"b\\c\nd\te\x01"
                                                         "f\x7f\"}");
    /* Stage variables are values like any other. */
    f.stage_values[0] = "a\"b";
    CHECK_STR(render("{\"env\":\"$stageVariables.env\"}", &f), "{\"env\":\"a\\\"b\"}");
    CHECK_STR(render("env=$stageVariables.env", &f), "env=a\"b");
}

/* $context.error.messageString is the quoted JSON string, in any template. */
static void test_message_string(void)
{
    fake_t f = request();
    f.values[MGW_VAR_ERROR_MESSAGE] = "say \"hi\"\n";
    f.values[MGW_VAR_ERROR_MESSAGE_STRING] = "say \"hi\"\n";
    CHECK_STR(render("{\"message\":$context.error.messageString}", &f),
              "{\"message\":\"say \\\"hi\\\"\\n\"}");
    CHECK_STR(render("msg=$context.error.messageString", &f), "msg=\"say \\\"hi\\\"\\n\"");
    CHECK_STR(render("msg=$context.error.message", &f), "msg=say \"hi\"\n");
    f.values[MGW_VAR_ERROR_MESSAGE_STRING] = "Not Found";
    CHECK_STR(render("{\"message\":$context.error.messageString}", &f),
              "{\"message\":\"Not Found\"}");
}

static void test_unknown_variable(void)
{
    fake_t f = request();
    CHECK_STR(render("$context.nope", &f), "COMPILE: unknown variable $context.nope");
    CHECK_STR(render("ok $context.status then $context.identity.nope.", &f),
              "COMPILE: unknown variable $context.identity.nope");
    /* Variable names are case-sensitive. */
    CHECK_STR(render("$context.RequestId", &f), "COMPILE: unknown variable $context.RequestId");
    CHECK_STR(render("$context.", &f), "COMPILE: unknown variable $context.");
    CHECK_STR(render("$stageVariables.", &f), "COMPILE: empty $stageVariables name");

    mgw_pool_t *pool = mgw_pool_create(0);
    const char *err = NULL;
    CHECK(mgw_template_compile(pool, "{\"a\":\"$context.nope\"}", &err) == NULL);
    CHECK_STR(err, "unknown variable $context.nope");
    mgw_pool_destroy(pool);
}

/* Punctuation after a variable is literal text: a dot at the end of a sentence, a dash. */
static void test_trailing_punctuation(void)
{
    fake_t f = request();
    CHECK_STR(render("$context.status.", &f), "200.");
    CHECK_STR(render("status $context.status...", &f), "status 200...");
    CHECK_STR(render("$context.identity.sourceIp.", &f), "192.0.2.1.");
    CHECK_STR(render("($context.status)", &f), "(200)");
    CHECK_STR(render("$stageVariables.env.", &f), "prod.");
}

/*
 * A '-' is not part of any $context name, so "$context.status-" is the status followed by
 * a dash, as in "$context.httpMethod-$context.status".
 */
static void test_dash_after_variable(void)
{
    fake_t f = request();
    CHECK_STR(render("$context.httpMethod-$context.status", &f), "GET-200");
    CHECK_STR(render("$context.status-", &f), "200-");
}

static void test_stage_variable_arg(void)
{
    fake_t f = request();
    CHECK_STR(render("stage=$stageVariables.env!", &f), "stage=prod!");
    CHECK_STR(f.last_arg, "env");
    f.stage_names[1] = "backend_url";
    f.stage_values[1] = "http://h";
    CHECK_STR(render("$stageVariables.backend_url/x", &f), "http://h/x");
    CHECK_STR(f.last_arg, "backend_url");
    CHECK_STR(render("$stageVariables.missing", &f), "-");
    CHECK_STR(f.last_arg, "missing");
}

static void test_uses(void)
{
    mgw_pool_t *pool = mgw_pool_create(0);
    const char *err = NULL;
    mgw_template_t *t =
        mgw_template_compile(pool, "$context.status $context.integration.latency x", &err);
    CHECK(t != NULL);
    if (t) {
        CHECK(mgw_template_uses(t, MGW_VAR_STATUS) == 1);
        CHECK(mgw_template_uses(t, MGW_VAR_INTEGRATION_LATENCY2) == 1);
        CHECK(mgw_template_uses(t, MGW_VAR_INTEGRATION_LATENCY) == 0);
        CHECK(mgw_template_uses(t, MGW_VAR_REQUEST_ID) == 0);
        CHECK(mgw_template_uses(t, MGW_VAR_STAGE_VARIABLE) == 0);
    }
    mgw_template_t *s = mgw_template_compile(pool, "$stageVariables.a only", &err);
    CHECK(s != NULL);
    if (s) {
        CHECK(mgw_template_uses(s, MGW_VAR_STAGE_VARIABLE) == 1);
        CHECK(mgw_template_uses(s, MGW_VAR_STATUS) == 0);
    }
    mgw_template_t *l = mgw_template_compile(pool, "literal", &err);
    CHECK(l != NULL);
    if (l)
        for (int v = 0; v < MGW_VAR__COUNT; v++)
            CHECK(mgw_template_uses(l, v) == 0);
    mgw_pool_destroy(pool);
}

/* The template keeps its own copy of the source: the caller's buffer may go away. */
static void test_source_copied(void)
{
    fake_t f = request();
    char src[] = "id=$context.requestId end";
    mgw_pool_t *pool = mgw_pool_create(0);
    const char *err = NULL;
    mgw_template_t *t = mgw_template_compile(pool, src, &err);
    CHECK(t != NULL);
    memset(src, 'X', sizeof src - 1);
    if (t) {
        mgw_buf_t b = {0};
        mgw_template_render(t, lookup, &f, &b);
        CHECK_STR(b.p, "id=req-1 end");
        /* Rendering appends. */
        mgw_template_render(t, lookup, &f, &b);
        CHECK_STR(b.p, "id=req-1 endid=req-1 end");
        mgw_buf_free(&b);
    }
    mgw_pool_destroy(pool);
}

int main(void)
{
    RUN(test_literal);
    RUN(test_variables);
    RUN(test_missing_value);
    RUN(test_json_escaping);
    RUN(test_message_string);
    RUN(test_unknown_variable);
    RUN(test_trailing_punctuation);
    RUN(test_dash_after_variable);
    RUN(test_stage_variable_arg);
    RUN(test_uses);
    RUN(test_source_copied);
    return DONE();
}
