/*
 * Loading configuration files written into a temporary directory: a valid file becomes a
 * generation whose APIs, stages, routes, listeners, domains, limits, timeouts and log
 * files are what the file says; an invalid one yields one line per error, each naming
 * the file, the config path and the reason, and no generation.
 */
#include "conf/config.c"

#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "unit.h"

static char dir[256];

/* Writes text to dir/name with every "@DIR@" replaced by dir; path receives the file. */
static void write_conf(const char *name, const char *text, char *path, size_t size)
{
    snprintf(path, size, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (f == NULL) {
        printf("#   cannot write %s\n", path);
        return;
    }
    for (const char *s = text; *s;) {
        if (strncmp(s, "@DIR@", 5) == 0) {
            fputs(dir, f);
            s += 5;
        } else {
            fputc(*s++, f);
        }
    }
    fclose(f);
}

/* Replaces "@DIR@" and "@FILE@" in want, for comparing error lines. */
static const char *expand(const char *want, const char *file)
{
    static char out[2048];
    size_t n = 0;
    for (const char *s = want; *s && n < sizeof out - 300;) {
        if (strncmp(s, "@DIR@", 5) == 0) {
            n += (size_t)snprintf(out + n, sizeof out - n, "%s", dir);
            s += 5;
        } else if (strncmp(s, "@FILE@", 6) == 0) {
            n += (size_t)snprintf(out + n, sizeof out - n, "%s", file);
            s += 6;
        } else {
            out[n++] = *s++;
        }
    }
    out[n] = '\0';
    return out;
}

/* 1 when errors holds want (after expand) as one whole line. */
static int has_line(const mgw_buf_t *errors, const char *want, const char *file)
{
    const char *line = expand(want, file);
    size_t n = strlen(line);
    const char *text = errors->p ? errors->p : "";
    for (const char *s = text; *s;) {
        const char *end = strchr(s, '\n');
        size_t len = end ? (size_t)(end - s) : strlen(s);
        if (len == n && memcmp(s, line, n) == 0) return 1;
        s += len + (end ? 1 : 0);
    }
    printf("#   missing error line: %s\n#   errors were:\n%s", line, text);
    return 0;
}

static int count_lines(const mgw_buf_t *errors)
{
    int n = 0;
    for (size_t i = 0; i < errors->n; i++)
        if (errors->p[i] == '\n') n++;
    return n;
}

/* Loads path expecting failure; leaves the error text in errors. */
static int load_fails(const char *path, int check_only, mgw_buf_t *errors)
{
    mgw_gen_t *g = NULL;
    int rc = mgw_config_load(path, dir, check_only, &g, errors);
    CHECK(rc == MGW_ECONFIG);
    CHECK(g == NULL);
    if (g) mgw_gen_unref(g);
    /* Every line names the file. */
    const char *text = errors->p ? errors->p : "";
    CHECK(errors->n > 0);
    CHECK(errors->n == 0 || text[errors->n - 1] == '\n');
    for (const char *s = text; *s;) {
        const char *end = strchr(s, '\n');
        size_t len = end ? (size_t)(end - s) : strlen(s);
        CHECK(memmem(s, len, path, strlen(path)) != NULL);
        s += len + (end ? 1 : 0);
    }
    return rc == MGW_ECONFIG;
}

static const char *GOOD =
    "return {\n"
    "  workers = 'auto',\n"
    "  listen = { { address = '127.0.0.1', port = 18080, api = 'pets' } },\n"
    "  timeouts = { header = 5, idle = 1.5 },\n"
    "  apis = {\n"
    "    pets = {\n"
    "      stages = {\n"
    "        ['$default'] = { variables = { backend = 'http://127.0.0.1:9' } },\n"
    "        prod = {\n"
    "          variables = { backend = 'http://10.0.0.1:8081', n = 7 },\n"
    "          access_log = { path = '@DIR@/access.log',\n"
    "                         format = '$context.requestId $context.status' },\n"
    "        },\n"
    "      },\n"
    "      routes = {\n"
    "        ['GET /pets'] = { integration = { type = 'mock', status = 201,\n"
    "          headers = { ['Content-Type'] = 'application/json' }, body = '[]' } },\n"
    "        ['GET /pets/{id}'] = { integration = { type = 'http',\n"
    "          uri = '${stageVariables.backend}/animals/{id}', timeout_ms = 5000 } },\n"
    "        ['ANY /echo/{proxy+}'] = { integration = { type = 'http',\n"
    "          uri = 'http://127.0.0.1:9/{proxy}', method = 'POST' } },\n"
    "        ['$default'] = { integration = { type = 'mock', status = 404 } },\n"
    "      },\n"
    "    },\n"
    "  },\n"
    "}\n";

static int str_is(mgw_str_t s, const char *want)
{
    return s.p != NULL && s.n == strlen(want) && memcmp(s.p, want, s.n) == 0;
}

/* The route that method + path reaches in api, or NULL. */
static const mgw_route_t *route(const mgw_api_t *api, int method, const char *path,
                                mgw_route_match_t *m)
{
    if (mgw_router_match(api->router, method, (mgw_str_t){path, strlen(path)}, m) != 0) return NULL;
    return m->data;
}

static int lookup(void *ud, int var, mgw_str_t arg, mgw_str_t *out)
{
    (void)ud;
    (void)arg;
    if (var == MGW_VAR_REQUEST_ID)
        *out = MGW_STR("r1");
    else if (var == MGW_VAR_STATUS)
        *out = MGW_STR("200");
    else if (var == MGW_VAR_STAGE)
        *out = MGW_STR("one");
    else if (var == MGW_VAR_ERROR_MESSAGE_STRING)
        *out = MGW_STR("Too Many Requests");
    else
        return 0;
    return 1;
}

static const char *render(const mgw_template_t *t)
{
    static char text[256];
    mgw_buf_t b = {0};
    mgw_template_render(t, lookup, NULL, &b);
    snprintf(text, sizeof text, "%s", b.p ? b.p : "");
    mgw_buf_free(&b);
    return text;
}

static void check_good(const mgw_gen_t *g, int check_only)
{
    CHECK(g->workers > 0); /* "auto": one per core */
    CHECK(g->nlisten == 1);
    CHECK_STR(g->listen[0].address, "127.0.0.1");
    CHECK(g->listen[0].port == 18080);
    CHECK(g->listen[0].api == &g->apis[0]);
    CHECK(g->max_body_size == 10485760);
    CHECK(g->max_header_size == 10240);
    CHECK(g->header_timeout_ms == 5000);
    CHECK(g->idle_timeout_ms == 1500);
    CHECK(g->body_timeout_ms == 30000);
    CHECK(g->shutdown_timeout_ms == 10000);
    CHECK(g->send_timeout_ms == 60000);
    CHECK(g->ndomains == 0);

    CHECK(g->napis == 1);
    if (g->napis != 1) return;
    mgw_api_t *api = &g->apis[0];
    CHECK_STR(api->id, "pets");
    CHECK(mgw_gen_find_api(g, "pets", 4) == api);
    CHECK(mgw_gen_find_api(g, "pet", 3) == NULL);
    CHECK(api->default_endpoint == 1);

    CHECK(api->nstages == 2);
    CHECK(api->default_stage != NULL);
    if (api->default_stage) CHECK_STR(api->default_stage->name, "$default");
    CHECK(mgw_api_find_stage(api, "$default", 8) == api->default_stage);
    mgw_stage_t *prod = mgw_api_find_stage(api, "prod", 4);
    CHECK(prod != NULL);
    if (prod) {
        CHECK(prod->api == api);
        CHECK(prod->nvars == 2);
        CHECK(prod->nvars == 2 && str_is(prod->vars[0].name, "backend") &&
              str_is(prod->vars[0].value, "http://10.0.0.1:8081"));
        /* Numbers become strings. */
        CHECK(prod->nvars == 2 && str_is(prod->vars[1].name, "n") &&
              str_is(prod->vars[1].value, "7"));
        CHECK(prod->log_format != NULL);
        if (prod->log_format) CHECK_STR(render(prod->log_format), "r1 200");
        CHECK(prod->log_id == 0);
    }
    CHECK(api->default_stage == NULL || api->default_stage->log_format == NULL);
    CHECK(g->nlogs == 1);
    if (g->nlogs == 1) {
        CHECK_STR(g->logs[0].path, expand("@DIR@/access.log", ""));
        if (check_only)
            CHECK(g->logs[0].fd == -1);
        else
            CHECK(g->logs[0].fd >= 0);
    }

    mgw_route_match_t m;
    const mgw_route_t *r = route(api, MGW_M_GET, "/pets", &m);
    CHECK(r != NULL);
    if (r) {
        CHECK_STR(r->key, "GET /pets");
        CHECK(r->integration.type == MGW_INTEG_MOCK);
        CHECK(r->integration.status == 201);
        CHECK(str_is(r->integration.body, "[]"));
        CHECK(r->integration.nheaders == 1);
        /* Header names are lower-cased. */
        CHECK(r->integration.nheaders == 1 &&
              str_is(r->integration.headers[0].name, "content-type") &&
              str_is(r->integration.headers[0].value, "application/json"));
    }
    r = route(api, MGW_M_GET, "/pets/42", &m);
    CHECK(r != NULL);
    if (r) {
        CHECK_STR(r->key, "GET /pets/{id}");
        CHECK(r->integration.type == MGW_INTEG_HTTP);
        CHECK_STR(r->integration.uri, "${stageVariables.backend}/animals/{id}");
        CHECK(r->integration.method == NULL);
        CHECK(r->integration.timeout_ms == 5000);
        CHECK(m.nparams == 1 && str_is(m.params[0].value, "42"));
    }
    r = route(api, MGW_M_DELETE, "/echo/a/b", &m);
    CHECK(r != NULL);
    if (r) {
        CHECK_STR(r->key, "ANY /echo/{proxy+}");
        CHECK_STR(r->integration.method, "POST");
        CHECK(r->integration.timeout_ms == 29000); /* the default */
        CHECK(m.nparams == 1 && str_is(m.params[0].name, "proxy") &&
              str_is(m.params[0].value, "a/b"));
    }
    r = route(api, MGW_M_GET, "/nothing/here", &m);
    CHECK(r != NULL);
    if (r) {
        CHECK_STR(r->key, "$default");
        CHECK(r->integration.status == 404);
    }
    /* Gateway responses not configured keep their defaults. */
    CHECK(api->responses[MGW_GW_DEFAULT_4XX].configured == 0);
}

static void test_good_check_only(void)
{
    char path[512];
    write_conf("good.lua", GOOD, path, sizeof path);
    mgw_gen_t *g = NULL;
    mgw_buf_t errors = {0};
    int rc = mgw_config_load(path, dir, 1, &g, &errors);
    CHECK(rc == 0);
    CHECK(errors.n == 0);
    if (errors.n) printf("#   errors: %s", errors.p);
    CHECK(g != NULL);
    if (g) {
        CHECK_STR(g->file, path);
        CHECK(atomic_load(&g->refs) == 1);
        check_good(g, 1);
        mgw_gen_unref(g);
    }
    /* check_only opens no log file. */
    char log[512];
    snprintf(log, sizeof log, "%s/access.log", dir);
    CHECK(access(log, F_OK) != 0);
    mgw_buf_free(&errors);
}

static void test_good_opens_logs(void)
{
    char path[512], log[512];
    write_conf("good.lua", GOOD, path, sizeof path);
    mgw_gen_t *g = NULL;
    mgw_buf_t errors = {0};
    CHECK(mgw_config_load(path, dir, 0, &g, &errors) == 0);
    CHECK(errors.n == 0);
    if (errors.n) printf("#   errors: %s", errors.p);
    CHECK(g != NULL);
    if (g == NULL) return;
    check_good(g, 0);
    snprintf(log, sizeof log, "%s/access.log", dir);
    CHECK(access(log, F_OK) == 0);
    int fd = g->nlogs ? g->logs[0].fd : -1;
    /* The file stays open while a reference is held... */
    mgw_gen_ref(g);
    mgw_gen_unref(g);
    CHECK(fd >= 0 && fcntl(fd, F_GETFD) != -1);
    /* ...and the last reference closes it. */
    mgw_gen_unref(g);
    CHECK(fcntl(fd, F_GETFD) == -1);
    unlink(log);
    mgw_buf_free(&errors);
}

static const char *MORE =
    "return {\n"
    "  workers = 3,\n"
    "  listen = { { port = 18081 }, { address = '::1', port = 18082, api = 'b' } },\n"
    "  limits = { max_body_size = 1024, max_header_size = 2048 },\n"
    "  timeouts = { header = 1, idle = 2, body = 3, shutdown = 0.25, send = 4.5 },\n"
    "  domains = { ['API.Example.com'] = { mappings = { [''] = 'a', v1 = 'b/live' } } },\n"
    "  apis = {\n"
    "    a = {\n"
    "      stages = {\n"
    "        one = { access_log = { path = 'logs/shared.log', format = '$context.stage' } },\n"
    "        two = { access_log = { path = 'logs/shared.log',\n"
    "                               format = '{\"s\":\"$context.stage\"}' } },\n"
    "      },\n"
    "      routes = { ['GET /'] = { integration = { type = 'mock' } } },\n"
    "      gateway_responses = {\n"
    "        THROTTLED = { status = 503, headers = { ['Retry-After'] = '1' },\n"
    "                      body = '{\"msg\":$context.error.messageString}' },\n"
    "      },\n"
    "    },\n"
    "    b = {\n"
    "      default_endpoint = false,\n"
    "      stages = { live = {} },\n"
    "      routes = { ['$default'] = { integration = { type = 'mock', body = 'b' } } },\n"
    "    },\n"
    "  },\n"
    "}\n";

/* Explicit workers, limits and timeouts, two APIs, a domain, relative and shared logs. */
static void test_more(void)
{
    char path[512], logs[512];
    snprintf(logs, sizeof logs, "%s/logs", dir);
    mkdir(logs, 0755);
    write_conf("more.lua", MORE, path, sizeof path);
    mgw_gen_t *g = NULL;
    mgw_buf_t errors = {0};
    CHECK(mgw_config_load(path, dir, 0, &g, &errors) == 0);
    if (errors.n) printf("#   errors: %s", errors.p);
    CHECK(g != NULL);
    if (g == NULL) return;
    CHECK(g->workers == 3);
    CHECK(g->max_body_size == 1024);
    CHECK(g->max_header_size == 2048);
    CHECK(g->header_timeout_ms == 1000);
    CHECK(g->idle_timeout_ms == 2000);
    CHECK(g->body_timeout_ms == 3000);
    CHECK(g->shutdown_timeout_ms == 250);
    CHECK(g->send_timeout_ms == 4500);

    CHECK(g->napis == 2);
    mgw_api_t *a = mgw_gen_find_api(g, "a", 1), *b = mgw_gen_find_api(g, "b", 1);
    CHECK(a != NULL && b != NULL);
    if (a == NULL || b == NULL) goto done;
    CHECK(a->default_endpoint == 1);
    CHECK(b->default_endpoint == 0);
    CHECK(a->default_stage == NULL);

    CHECK(g->nlisten == 2);
    CHECK_STR(g->listen[0].address, "127.0.0.1");
    CHECK(g->listen[0].port == 18081);
    CHECK(g->listen[0].api == NULL);
    CHECK_STR(g->listen[1].address, "::1");
    CHECK(g->listen[1].api == b);

    /* The host is lower-cased; mappings come longest base first. */
    const mgw_domain_t *d = mgw_gen_find_domain(g, "api.example.com", 15);
    CHECK(d != NULL);
    if (d) {
        CHECK(d->nmaps == 2);
        CHECK_STR(d->maps[0].base, "v1");
        CHECK(d->maps[0].base_len == 2);
        CHECK(d->maps[0].api == b);
        CHECK(d->maps[0].stage == mgw_api_find_stage(b, "live", 4) && d->maps[0].stage);
        CHECK_STR(d->maps[1].base, "");
        CHECK(d->maps[1].api == a);
        CHECK(d->maps[1].stage == NULL);
    }
    CHECK(mgw_gen_find_domain(g, "API.Example.com", 15) == NULL);

    /* Both stages write to the one file, resolved against the prefix. */
    CHECK(g->nlogs == 1);
    if (g->nlogs == 1) CHECK_STR(g->logs[0].path, expand("@DIR@/logs/shared.log", ""));
    mgw_stage_t *one = mgw_api_find_stage(a, "one", 3), *two = mgw_api_find_stage(a, "two", 3);
    CHECK(one && two && one->log_id == 0 && two->log_id == 0);
    if (one && one->log_format) CHECK_STR(render(one->log_format), "one");
    if (two && two->log_format) CHECK_STR(render(two->log_format), "{\"s\":\"one\"}");

    mgw_gwresp_conf_t *t = &a->responses[MGW_GW_THROTTLED];
    CHECK(t->configured == 1);
    CHECK(t->status == 503);
    CHECK(t->nheaders == 1 && str_is(t->headers[0].name, "retry-after") &&
          str_is(t->headers[0].value, "1"));
    CHECK(t->body != NULL);
    if (t->body) CHECK_STR(render(t->body), "{\"msg\":\"Too Many Requests\"}");
    CHECK(a->responses[MGW_GW_DEFAULT_4XX].configured == 0);

    mgw_route_match_t m;
    const mgw_route_t *r = route(b, MGW_M_PATCH, "/x", &m);
    CHECK(r != NULL && str_is(r->integration.body, "b"));
    r = route(a, MGW_M_GET, "/", &m);
    CHECK(r != NULL && r->integration.status == 200);
done:
    mgw_gen_unref(g);
    mgw_buf_free(&errors);
}

/* One error per case, as the whole line it must be. */
static void test_single_errors(void)
{
    static const struct {
        const char *name, *conf, *line;
    } cases[] = {
        {"unknown_key.lua",
         "return { workerz = 2, apis = { pets = { stages = { prod = {} },\n"
         "  routes = { ['GET /x'] = { integration = { type = 'mock' } } } } } }\n",
         "@FILE@: workerz: unknown key (did you mean \"workers\"?)"},
        {"unknown_nested_key.lua",
         "return { apis = { pets = { stages = { prod = {} },\n"
         "  routes = { ['GET /x'] = { integration = { type = 'http', uri = 'http://h',\n"
         "                                          timout_ms = 100 } } } } } }\n",
         "@FILE@: apis.pets.routes[\"GET /x\"].integration.timout_ms: unknown key "
         "(did you mean \"timeout_ms\"?)"},
        {"route_key.lua",
         "return { apis = { pets = { stages = { prod = {} },\n"
         "  routes = { ['GET pets'] = { integration = { type = 'mock' } } } } } }\n",
         "@FILE@: apis.pets.routes[\"GET pets\"]: path \"pets\" must start with \"/\""},
        {"greedy.lua",
         "return { apis = { pets = { stages = { prod = {} },\n"
         "  routes = { ['GET /{p+}/x'] = { integration = { type = 'mock' } } } } } }\n",
         "@FILE@: apis.pets.routes[\"GET /{p+}/x\"]: greedy variable {p+} must be the last "
         "segment"},
        {"uri.lua",
         "return { apis = { pets = { stages = { prod = {} },\n"
         "  routes = { ['GET /x'] = { integration = { type = 'http', uri = 'ftp://h/x' } } } } } "
         "}\n",
         "@FILE@: apis.pets.routes[\"GET /x\"].integration.uri: must be an http(s) URL, got "
         "\"ftp://h/x\""},
        {"format.lua",
         "return { apis = { pets = {\n"
         "  stages = { prod = { access_log = { path = '@DIR@/a.log', format = 'x $context.nope' } "
         "} },\n"
         "  routes = { ['GET /x'] = { integration = { type = 'mock' } } } } } }\n",
         "@FILE@: apis.pets.stages.prod.access_log.format: unknown variable $context.nope"},
        {"format_default.lua",
         "return { apis = { pets = {\n"
         "  stages = { ['$default'] = { access_log = { path = '@DIR@/a.log',\n"
         "                                             format = '$context.nope' } } },\n"
         "  routes = { ['GET /x'] = { integration = { type = 'mock' } } } } } }\n",
         "@FILE@: apis.pets.stages[\"$default\"].access_log.format: unknown variable "
         "$context.nope"},
        {"logdir.lua",
         "return { apis = { pets = {\n"
         "  stages = { prod = { access_log = { path = '@DIR@/nope/a.log', format = 'x' } } },\n"
         "  routes = { ['GET /x'] = { integration = { type = 'mock' } } } } } }\n",
         "@FILE@: apis.pets.stages.prod.access_log.path: directory \"@DIR@/nope\" does not "
         "exist"},
        {"not_table.lua", "return 'pets'\n", "@FILE@: must return a table, got string"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char path[512];
        write_conf(cases[i].name, cases[i].conf, path, sizeof path);
        for (int check_only = 1; check_only >= 0; check_only--) {
            mgw_buf_t errors = {0};
            if (load_fails(path, check_only, &errors)) {
                CHECK(has_line(&errors, cases[i].line, path));
                if (count_lines(&errors) != 1) printf("#   %s: %s", cases[i].name, errors.p);
                CHECK(count_lines(&errors) == 1);
            }
            mgw_buf_free(&errors);
        }
    }
}

static void test_unreadable_files(void)
{
    char path[512];
    mgw_buf_t errors = {0};
    snprintf(path, sizeof path, "%s/missing.lua", dir);
    if (load_fails(path, 1, &errors)) {
        CHECK(count_lines(&errors) == 1);
        CHECK(strstr(errors.p, "No such file or directory") != NULL);
    }
    mgw_buf_free(&errors);

    write_conf("syntax.lua", "return { workers = }\n", path, sizeof path);
    if (load_fails(path, 1, &errors)) {
        CHECK(count_lines(&errors) == 1);
        CHECK(has_line(&errors, "@FILE@:1: unexpected symbol near '}'", path));
    }
    mgw_buf_free(&errors);

    write_conf("raises.lua", "error('boom')\n", path, sizeof path);
    if (load_fails(path, 1, &errors)) CHECK(has_line(&errors, "@FILE@:1: boom", path));
    mgw_buf_free(&errors);

    /* The sandbox has no io or os. */
    write_conf("sandbox.lua", "os.exit(3)\n", path, sizeof path);
    if (load_fails(path, 1, &errors))
        CHECK(
            has_line(&errors, "@FILE@:1: os is not available in the configuration sandbox", path));
    mgw_buf_free(&errors);
}

/* The Lua checks report every error at once, sorted. */
static void test_several_lua_errors(void)
{
    char path[512];
    write_conf("several.lua",
               "return {\n"
               "  workerz = 2,\n"
               "  apis = { pets = {\n"
               "    stages = { prod = { access_log = { path = '@DIR@/nope/a.log', format = 'x' } "
               "} },\n"
               "    routes = {\n"
               "      ['GET pets'] = { integration = { type = 'mock' } },\n"
               "      ['GET /{p+}/x'] = { integration = { type = 'mock' } },\n"
               "      ['GET /x'] = { integration = { type = 'http', uri = 'ftp://h/x' } },\n"
               "    },\n"
               "  } },\n"
               "}\n",
               path, sizeof path);
    mgw_buf_t errors = {0};
    if (load_fails(path, 1, &errors)) {
        CHECK(count_lines(&errors) == 5);
        CHECK(has_line(&errors, "@FILE@: workerz: unknown key (did you mean \"workers\"?)", path));
        CHECK(has_line(&errors,
                       "@FILE@: apis.pets.routes[\"GET pets\"]: path \"pets\" must start with "
                       "\"/\"",
                       path));
        CHECK(has_line(&errors,
                       "@FILE@: apis.pets.routes[\"GET /{p+}/x\"]: greedy variable {p+} must be "
                       "the last segment",
                       path));
        CHECK(has_line(&errors,
                       "@FILE@: apis.pets.routes[\"GET /x\"].integration.uri: must be an "
                       "http(s) URL, got \"ftp://h/x\"",
                       path));
        CHECK(has_line(&errors,
                       "@FILE@: apis.pets.stages.prod.access_log.path: directory "
                       "\"@DIR@/nope\" does not exist",
                       path));
    }
    mgw_buf_free(&errors);
}

/* The C side (template compilation) also reports every error, not just the first. */
static void test_several_c_errors(void)
{
    char path[512];
    write_conf("several_c.lua",
               "return { apis = { pets = {\n"
               "  stages = {\n"
               "    prod = { access_log = { path = '@DIR@/p.log', format = '$context.nope' } },\n"
               "    test = { access_log = { path = '@DIR@/t.log', format = '$context.status "
               "$context.bad' } },\n"
               "  },\n"
               "  routes = { ['GET /x'] = { integration = { type = 'mock' } } },\n"
               "  gateway_responses = { DEFAULT_4XX = { body = '{\"m\":$context.worse}' } },\n"
               "} } }\n",
               path, sizeof path);
    for (int check_only = 1; check_only >= 0; check_only--) {
        mgw_buf_t errors = {0};
        if (load_fails(path, check_only, &errors)) {
            CHECK(count_lines(&errors) == 3);
            CHECK(has_line(&errors,
                           "@FILE@: apis.pets.stages.prod.access_log.format: unknown variable "
                           "$context.nope",
                           path));
            CHECK(has_line(&errors,
                           "@FILE@: apis.pets.stages.test.access_log.format: unknown variable "
                           "$context.bad",
                           path));
            CHECK(has_line(&errors,
                           "@FILE@: apis.pets.gateway_responses.DEFAULT_4XX.body: unknown "
                           "variable $context.worse",
                           path));
        }
        mgw_buf_free(&errors);
    }
}

/*
 * A log path that passes the Lua checks (its directory exists) but cannot be opened: the
 * error names the access_log.path setting, the one to fix. check_only does not open it.
 */
static void test_log_open_error(void)
{
    char path[512], sub[512];
    snprintf(sub, sizeof sub, "%s/adir", dir);
    mkdir(sub, 0755);
    write_conf("open.lua",
               "return { apis = { pets = {\n"
               "  stages = { prod = { access_log = { path = '@DIR@/adir', format = 'x' } } },\n"
               "  routes = { ['GET /x'] = { integration = { type = 'mock' } } } } } }\n",
               path, sizeof path);
    mgw_gen_t *g = NULL;
    mgw_buf_t errors = {0};
    CHECK(mgw_config_load(path, dir, 1, &g, &errors) == 0);
    CHECK(errors.n == 0);
    mgw_gen_unref(g);
    mgw_buf_free(&errors);

    if (load_fails(path, 0, &errors)) {
        CHECK(count_lines(&errors) == 1);
        CHECK(has_line(&errors,
                       "@FILE@: apis.pets.stages.prod.access_log.path: cannot open "
                       "\"@DIR@/adir\": Is a directory",
                       path));
    }
    mgw_buf_free(&errors);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

int main(void)
{
    snprintf(dir, sizeof dir, "%s/mgw-config-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    RUN(test_good_check_only);
    RUN(test_good_opens_logs);
    RUN(test_more);
    RUN(test_single_errors);
    RUN(test_unreadable_files);
    RUN(test_several_lua_errors);
    RUN(test_several_c_errors);
    RUN(test_log_open_error);
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return DONE();
}
