/*
 * JSON Schema draft 4 (base/jschema.c, jschema_check.c): the official JSON-Schema-Test-Suite's
 * draft4 cases, as Debian's json-schema-test-suite installs them (`make deps`), every one
 * of them run; the cases the validator does not pass are listed below with the reason,
 * and a listed case that passes fails the test too, so that the list stays true. Then
 * what the suite does not cover: the messages as AWS words them, compile errors that
 * name their place, the ECMA 262 regex translation, loops of references and the step
 * budget.
 */
#include "base/jschema.c"

#include <dirent.h>
#include <stdio.h>
#include <string.h>

#include "unit.h"

static mgw_pool_t *pool;

/* ---- the suite ---- */

static const char *const suite_dirs[] = {
    "/usr/share/json-schema-test-suite/tests/draft4",
    "/usr/share/json-schema-test-suite/draft4",
    "/usr/share/doc/json-schema-test-suite/tests/draft4",
};

/*
 * The cases the validator does not pass, by file, group and case description ("*": the
 * whole group), with the reason. optional/ holds what draft 4 leaves to implementations.
 */
static const struct {
    const char *file, *group, *test, *why; /* test "(invalid)": the cases expected invalid */
} known[] = {
    {"definitions.json", "*", "*",
     "refers to the draft 4 meta-schema (http://json-schema.org/draft-04/schema#), another "
     "document"},
    {"ref.json", "remote ref, containing refs itself", "*",
     "refers to the draft 4 meta-schema, another document"},
    {"optional/format.json", "validation of host names",
     "a host name containing illegal characters",
     "AWS's validator (Guava's InternetDomainName) takes _ inside a label"},
    {"optional/format.json", "validation of URIs", "an invalid protocol-relative URI Reference",
     "AWS's validator (java.net.URI) takes URI references: relative ones pass"},
    {"optional/format.json", "validation of URIs", "an invalid relative URI Reference",
     "AWS's validator (java.net.URI) takes URI references: relative ones pass"},
    {"optional/format.json", "validation of URIs", "an invalid URI though valid URI reference",
     "AWS's validator (java.net.URI) takes URI references: relative ones pass"},
    {"optional/ecmascript-regex.json", "*", "*",
     "regexes run as POSIX extended regexes on bytes (see jschema.h)"},
};

static int known_index(const char *file, const char *group, const char *test, int want)
{
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
        size_t fl = strlen(known[i].file);
        int fm = known[i].file[fl - 1] == '*' ? strncmp(file, known[i].file, fl - 1) == 0
                                              : strcmp(file, known[i].file) == 0;
        if (fm && (strcmp(known[i].group, "*") == 0 || strcmp(known[i].group, group) == 0) &&
            (strcmp(known[i].test, "*") == 0 || strcmp(known[i].test, test) == 0 ||
             (strcmp(known[i].test, "(invalid)") == 0 && !want)))
            return (int)i;
    }
    return -1;
}

static char *read_file(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) return NULL;
    mgw_buf_t b = {0};
    char chunk[8192];
    size_t got;
    while ((got = fread(chunk, 1, sizeof(chunk), f)) > 0)
        mgw_buf_add(&b, chunk, got);
    fclose(f);
    char *s = mgw_pool_strndup(pool, b.p ? b.p : "", b.n);
    *n = b.n;
    mgw_buf_free(&b);
    return s;
}

static int suite_cases, suite_passed, suite_known, known_used[sizeof(known) / sizeof(known[0])];

/* The suite's remote documents (refRemote.json): http://localhost:1234/X is remotes/X,
 * two directories above the draft4 directory. */
static const char *suite_remote(void *ud, const char *uri, size_t *n)
{
    static const char prefix[] = "http://localhost:1234/";
    if (strncmp(uri, prefix, sizeof(prefix) - 1) != 0 || strstr(uri, "..")) return NULL;
    char path[1024];
    snprintf(path, sizeof(path), "%s/../../remotes/%s", (const char *)ud, uri + sizeof(prefix) - 1);
    return read_file(path, n);
}

/* Runs one file of the suite (name relative to the draft4 directory); 0 when every case
 * passes or is listed. */
static int run_file(const char *dir, const char *name)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    size_t n;
    char *text = read_file(path, &n);
    mgw_json_t *doc;
    char err[256];
    if (text == NULL || mgw_json_parse(pool, text, n, &doc, err, sizeof(err)) != 0) {
        printf("#   %s: cannot read: %s\n", path, text ? err : "missing");
        return -1;
    }
    int bad = 0;
    for (int g = 0; g < doc->n; g++) {
        const mgw_json_t *grp = doc->items[g];
        const mgw_json_t *gd = mgw_json_get(grp, "description"),
                         *tests = mgw_json_get(grp, "tests");
        mgw_buf_t sch = {0};
        mgw_json_write(&sch, mgw_json_get(grp, "schema")); /* as text, as models are */
        char cerr[256];
        mgw_jschema_t *s = mgw_jschema_compile_docs(pool, sch.p, sch.n, suite_remote, (void *)dir,
                                                    cerr, sizeof(cerr));
        mgw_buf_free(&sch);
        for (int t = 0; t < tests->n; t++) {
            const mgw_json_t *tc = tests->items[t];
            const char *td = mgw_json_get(tc, "description")->str;
            int want = mgw_json_get(tc, "valid")->type == MGW_JSON_TRUE;
            const char *why = NULL;
            int got = s ? mgw_jschema_validate(s, mgw_json_get(tc, "data"), pool, &why) : -1;
            /* a failure must say why; a success says nothing */
            int ok = got == want && (got == 1 ? why == NULL : why != NULL && why[0] == '[');
            int k = known_index(name, gd->str, td, want);
            suite_cases++;
            if (k >= 0) {
                suite_known++;
                if (ok) {
                    printf("#   %s: \"%s\" / \"%s\" passes: take it off the known list\n", name,
                           gd->str, td);
                    bad = 1;
                }
                known_used[k] = 1;
                continue;
            }
            if (ok) {
                suite_passed++;
                continue;
            }
            bad = 1;
            printf("#   %s: \"%s\" / \"%s\": want %s, got %s%s%s\n", name, gd->str, td,
                   want ? "valid" : "invalid",
                   got < 0 ? "compile error: "
                   : got   ? "valid"
                           : "invalid ",
                   got < 0 ? cerr : "", got == 0 && why ? why : "");
        }
    }
    return bad ? -1 : 0;
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The .json files of dir/sub, sorted, as names relative to dir. */
static int list_files(const char *dir, const char *sub, char **out, int max)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s%s%s", dir, *sub ? "/" : "", sub);
    DIR *d = opendir(path);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL && n < max) {
        size_t l = strlen(e->d_name);
        if (e->d_name[0] == '.') continue;
        char *rel = mgw_pool_printf(pool, "%s%s%s", sub, *sub ? "/" : "", e->d_name);
        if (l > 5 && strcmp(e->d_name + l - 5, ".json") == 0)
            out[n++] = rel;
        else if (e->d_type == DT_DIR)
            n += list_files(dir, rel, out + n, max - n);
    }
    if (d) closedir(d);
    qsort(out, (size_t)n, sizeof(*out), cmp_name);
    return n;
}

static void run_suite(void)
{
    const char *dir = NULL;
    for (size_t i = 0; i < sizeof(suite_dirs) / sizeof(suite_dirs[0]) && !dir; i++) {
        DIR *d = opendir(suite_dirs[i]);
        if (d) {
            closedir(d);
            dir = suite_dirs[i];
        }
    }
    if (dir == NULL) {
        printf("not ok - draft4 suite: not installed (Debian json-schema-test-suite: make deps)\n");
        unit_failed++;
        return;
    }
    char *files[256];
    int n = list_files(dir, "", files, 256);
    for (int i = 0; i < n; i++) {
        int rc = run_file(dir, files[i]);
        printf("%s - draft4 %s\n", rc == 0 ? "ok" : "not ok", files[i]);
        rc == 0 ? unit_passed++ : unit_failed++;
    }
    printf(
        "# draft4: %d files, %d cases: %d passed, %d known not to pass (listed with the reason)\n",
        n, suite_cases, suite_passed, suite_known);
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
        if (!known_used[i]) {
            printf("not ok - draft4 suite: the known case %s / %s / %s matches nothing\n",
                   known[i].file, known[i].group, known[i].test);
            unit_failed++;
        }
    if (n == 0 || suite_passed < 300) {
        printf("not ok - draft4 suite: too few cases ran\n");
        unit_failed++;
    }
}

/* ---- what the suite does not cover ---- */

static mgw_jschema_t *schema(const char *json)
{
    char err[256];
    mgw_jschema_t *s = mgw_jschema_compile(pool, json, strlen(json), err, sizeof(err));
    if (s == NULL) printf("#   compile %s: %s\n", json, err);
    return s;
}

static const char *compile_error(const char *json)
{
    static char err[256];
    return mgw_jschema_compile(pool, json, strlen(json), err, sizeof(err)) ? NULL : err;
}

/* The reasons v (JSON text) is invalid for, or "valid". */
static const char *why(const mgw_jschema_t *s, const char *json)
{
    mgw_json_t *v;
    char err[128];
    if (s == NULL || mgw_json_parse(pool, json, strlen(json), &v, err, sizeof(err)) != 0)
        return "(bad test)";
    const char *w = NULL;
    return mgw_jschema_validate(s, v, pool, &w) ? "valid" : w;
}

static void test_messages(void)
{
    const mgw_jschema_t *pet =
        schema("{\"type\":\"object\",\"required\":[\"name\",\"age\"],"
               "\"properties\":{\"name\":{\"type\":\"string\",\"minLength\":2,"
               "\"maxLength\":5,\"pattern\":\"^[a-z]+$\"},"
               "\"age\":{\"type\":\"integer\",\"minimum\":0,\"maximum\":30},"
               "\"tag\":{\"enum\":[\"a\",\"b\"]}},\"additionalProperties\":false}");
    CHECK_STR(why(pet, "{\"name\":\"rex\",\"age\":3}"), "valid");
    CHECK_STR(why(pet, "{}"), "[object has missing required properties ([\"age\",\"name\"])]");
    CHECK_STR(why(pet, "[]"), "[instance type (array) does not match any allowed primitive type "
                              "(allowed: [\"object\"])]");
    CHECK_STR(why(pet, "{\"name\":\"r\",\"age\":3}"),
              "[string \"r\" is too short (length: 1, required minimum: 2)]");
    CHECK_STR(why(pet, "{\"name\":\"rexrex\",\"age\":3}"),
              "[string \"rexrex\" is too long (length: 6, maximum allowed: 5)]");
    CHECK_STR(why(pet, "{\"name\":\"R1\",\"age\":3}"),
              "[ECMA 262 regex \"^[a-z]+$\" does not match input string \"R1\"]");
    CHECK_STR(why(pet, "{\"name\":\"rex\",\"age\":-1}"),
              "[numeric instance is lower than the required minimum (minimum: 0, found: -1)]");
    CHECK_STR(why(pet, "{\"name\":\"rex\",\"age\":31}"),
              "[numeric instance is greater than the required maximum (maximum: 30, found: 31)]");
    CHECK_STR(why(pet, "{\"name\":\"rex\",\"age\":3.0}"),
              "[instance type (number) does not match any allowed primitive type (allowed: "
              "[\"integer\"])]");
    CHECK_STR(why(pet, "{\"name\":\"rex\",\"age\":3,\"tag\":\"c\"}"),
              "[instance value (\"c\") not found in enum (possible values: [\"a\",\"b\"])]");
    CHECK_STR(
        why(pet, "{\"name\":\"rex\",\"age\":3,\"x\":1,\"y\":2}"),
        "[object instance has properties which are not allowed by the schema: [\"x\",\"y\"]]");
    /* every failure of the document, in one list */
    CHECK_STR(why(pet, "{\"name\":5}"),
              "[object has missing required properties ([\"age\"]), instance type "
              "(integer) does not match any allowed primitive type (allowed: "
              "[\"string\"])]");
    const mgw_jschema_t *arr =
        schema("{\"type\":\"array\",\"minItems\":1,\"maxItems\":2,\"uniqueItems\":true,"
               "\"items\":{\"type\":[\"string\",\"null\"]}}");
    CHECK_STR(why(arr, "[]"),
              "[array is too short: must have at least 1 elements but instance has 0 elements]");
    CHECK_STR(why(arr, "[\"a\",\"b\",\"c\"]"),
              "[array is too long: must have at most 2 elements but instance has 3 elements]");
    CHECK_STR(why(arr, "[\"a\",\"a\"]"), "[array must not contain duplicate elements]");
    CHECK_STR(why(arr, "[1]"),
              "[instance type (integer) does not match any allowed primitive type (allowed: "
              "[\"string\",\"null\"])]");
    const mgw_jschema_t *comb = schema("{\"anyOf\":[{\"type\":\"string\"},{\"minimum\":2}],"
                                       "\"not\":{\"enum\":[7]},\"multipleOf\":0.5}");
    CHECK_STR(why(comb, "1"), "[instance failed to match at least one required schema among 2]");
    CHECK_STR(why(comb, "7"), "[instance matched a schema which it should not have]");
    CHECK_STR(why(comb, "2.25"), "[remainder of division is not zero (2.25 / 0.5)]");
    CHECK_STR(why(comb, "2.5"), "valid");
    const mgw_jschema_t *dep =
        schema("{\"dependencies\":{\"card\":[\"zip\",\"cvv\"]},\"minProperties\":2}");
    CHECK_STR(
        why(dep, "{\"card\":1}"),
        "[object has too few properties (found 1 but schema requires at least 2), property "
        "\"card\" of "
        "object has missing property dependencies (schema requires [\"cvv\",\"zip\"]; missing: "
        "[\"cvv\",\"zip\"])]");
    /* strings in messages are shortened, at a character boundary */
    const mgw_jschema_t *num = schema("{\"type\":\"number\"}");
    CHECK_STR(
        why(num, "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\""),
        "[instance type (string) does not match any allowed primitive type (allowed: "
        "[\"number\"])]");
    const mgw_jschema_t *en = schema("{\"enum\":[1]}");
    CHECK_STR(
        why(en, "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\xc3\xa9\""),
        "[instance value (\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...\") "
        "not found in "
        "enum (possible values: [1])]");
    /* at most MGW_JSCHEMA_MAX_MESSAGES reasons, then a count */
    const mgw_jschema_t *many = schema("{\"items\":{\"type\":\"string\"}}");
    const char *w = why(many, "[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18]");
    CHECK(w && strstr(w, ", and 2 more]") != NULL);
}

static void test_compile_errors(void)
{
    CHECK_STR(compile_error("{\"type\":\"text\"}"),
              "at /type: unknown type (array, boolean, integer, null, number, object, string)");
    CHECK_STR(compile_error("{\"properties\":{\"a/b\":{\"minimum\":\"1\"}}}"),
              "at /properties/a~1b/minimum: must be a number");
    CHECK_STR(compile_error("{\"required\":[]}"),
              "at /required: must be a non-empty array of strings");
    CHECK_STR(compile_error("{\"required\":[\"a\",\"a\"]}"),
              "at /required: must not repeat a name");
    CHECK_STR(compile_error("{\"items\":[{},3]}"), "at /items/1: must be a schema (an object)");
    CHECK_STR(compile_error("{\"minLength\":-1}"), "at /minLength: must be a non-negative integer");
    CHECK_STR(compile_error("{\"multipleOf\":0}"), "at /multipleOf: must be greater than 0");
    CHECK_STR(compile_error("{\"exclusiveMaximum\":true}"), "at /exclusiveMaximum: needs maximum");
    CHECK_STR(compile_error("{\"enum\":[]}"), "at /enum: must be a non-empty array");
    CHECK_STR(compile_error("{\"$ref\":\"#/definitions/nope\"}"),
              "at /$ref: \"#/definitions/nope\" names nothing in this schema");
    CHECK_STR(compile_error("{\"$ref\":\"http://example.com/x.json\"}"),
              "at /$ref: \"http://example.com/x.json\" names nothing in this schema");
    CHECK_STR(compile_error("{\"$ref\":\"#\"}"),
              "at /$ref: the references loop without reaching a schema");
    CHECK_STR(compile_error("{\"definitions\":{\"a\":{\"$ref\":\"#/definitions/b\"},"
                            "\"b\":{\"$ref\":\"#/definitions/a\"}},\"$ref\":\"#/definitions/a\"}"),
              "at /$ref/$ref: the references loop without reaching a schema");
    CHECK_STR(compile_error("{\"pattern\":\"(?=a)\"}"),
              "at /pattern: regex \"(?=a)\": lookaround and named groups are not supported");
    CHECK_STR(compile_error("{\"pattern\":\"(a\"}"), "at /pattern: regex \"(a\": missing )");
    CHECK_STR(compile_error("{\"pattern\":\"[b-a]\"}"),
              "at /pattern: regex \"[b-a]\": range out of order in a character class");
    CHECK_STR(compile_error("{\"type\":"), "not JSON: unexpected end at byte 8");
    CHECK_STR(compile_error("[]"), "at /: must be a schema (an object)");
}

/* ECMA 262 regexes as POSIX extended ones. */
static const char *ere(const char *src)
{
    mgw_buf_t o = {0};
    const char *why = ecma_to_ere(src, strlen(src), &o);
    mgw_buf_addc(&o, '\0');
    const char *out = why ? why : mgw_pool_strdup(pool, o.p);
    mgw_buf_free(&o);
    return out;
}

static void test_regex(void)
{
    CHECK_STR(ere("^\\d{3}-\\w+\\s$"), "^[0-9]{3}-[A-Za-z0-9_]+[[:space:]]$");
    CHECK_STR(ere("\\D\\W\\S"), "[^0-9][^A-Za-z0-9_][^[:space:]]");
    CHECK_STR(ere("(?:ab)+?c*?"), "(ab)+c*");
    CHECK_STR(ere("[\\d.-]"), "[0-9.-]");
    CHECK_STR(ere("[]a]"), "an empty character class is not supported");
    CHECK_STR(ere("[a\\]\\-^]"), "[]a^-]");
    CHECK_STR(ere("\\.\\/\\$"), "\\./\\$");
    CHECK_STR(ere("(a)\\1"), "unsupported escape (back references, \\u and the like)");
    CHECK_STR(ere("[^\\s]"), "[^[:space:]]");
    CHECK_STR(ere("[\\S]"), "negated class escapes inside [] are not supported");
    /* what glibc would expand beyond reason, or ECMA 262 refuses */
    CHECK_STR(ere("a++"), "a quantifier has nothing to repeat");
    CHECK_STR(ere("*a"), "a quantifier has nothing to repeat");
    CHECK_STR(ere("(|+)"), "a quantifier has nothing to repeat");
    CHECK_STR(ere("a{2}{3}"), "a quantifier has nothing to repeat");
    CHECK_STR(ere("a{1001}"), "a repetition count above 1000");
    CHECK_STR(ere("((a{100}){100}){100}"),
              "the regex is too large once its repetitions are expanded");
    CHECK_STR(ere("(a{10}){10}x{2,5}?"), "(a{10}){10}x{2,5}");
    CHECK_STR(ere("{x}a{"), "\\{x\\}a\\{");
    CHECK_STR(ere("a)"), "unmatched )");
    const mgw_jschema_t *s = schema("{\"patternProperties\":{\"^x-\\\\d+$\":{\"type\":\"string\"}},"
                                    "\"additionalProperties\":false}");
    CHECK_STR(why(s, "{\"x-12\":\"a\"}"), "valid");
    CHECK_STR(why(s, "{\"x-1a\":\"a\"}"),
              "[object instance has properties which are not allowed by the schema: [\"x-1a\"]]");
    CHECK_STR(why(s, "{\"x-1\":2}"), "[instance type (integer) does not match any allowed "
                                     "primitive type (allowed: [\"string\"])]");
}

static void test_refs_and_budget(void)
{
    /* a recursive schema: a tree of any depth the parser takes */
    const mgw_jschema_t *tree =
        schema("{\"definitions\":{\"node\":{\"type\":\"object\",\"required\":[\"v\"],"
               "\"properties\":{\"kids\":{\"type\":\"array\",\"items\":"
               "{\"$ref\":\"#/definitions/node\"}}}}},\"$ref\":\"#/definitions/node\"}");
    CHECK_STR(why(tree, "{\"v\":1,\"kids\":[{\"v\":2,\"kids\":[{\"v\":3}]}]}"), "valid");
    CHECK_STR(why(tree, "{\"v\":1,\"kids\":[{\"v\":2,\"kids\":[{}]}]}"),
              "[object has missing required properties ([\"v\"])]");
    /* a schema that applies itself to the same value without end stops at the depth limit */
    const mgw_jschema_t *self = schema("{\"anyOf\":[{\"$ref\":\"#\"}]}");
    CHECK_STR(why(self, "1"),
              "[instance failed to match at least one required schema among 1, schema "
              "recursion too deep]");
    /* exponential work is cut by the step budget */
    const mgw_jschema_t *exp =
        schema("{\"definitions\":{\"a\":{\"allOf\":[{\"$ref\":\"#/definitions/b\"},"
               "{\"$ref\":\"#/definitions/b\"},{\"$ref\":\"#/definitions/b\"}]},"
               "\"b\":{\"allOf\":[{\"$ref\":\"#/definitions/a\"},{\"$ref\":"
               "\"#/definitions/a\"}]}},\"$ref\":\"#/definitions/a\"}");
    const char *w = why(exp, "1");
    CHECK(w && strstr(w, "too") != NULL);
    /* ids: a location-independent identifier and a relative reference against an id */
    const mgw_jschema_t *ids =
        schema("{\"id\":\"http://x.test/root.json\",\"definitions\":{\"a\":{\"id\":\"#foo\","
               "\"type\":\"integer\"},\"b\":{\"id\":\"b.json\",\"type\":\"string\"}},"
               "\"properties\":{\"a\":{\"$ref\":\"#foo\"},\"b\":{\"$ref\":\"b.json\"}}}");
    CHECK_STR(why(ids, "{\"a\":1,\"b\":\"x\"}"), "valid");
    CHECK(strcmp(why(ids, "{\"a\":\"1\"}"), "valid") != 0);
    CHECK(strcmp(why(ids, "{\"b\":1}"), "valid") != 0);
    /* uniqueItems compares by value, members in any order */
    const mgw_jschema_t *u = schema("{\"uniqueItems\":true}");
    CHECK_STR(why(u, "[{\"a\":1,\"b\":[1,2]},{\"b\":[1,2.0],\"a\":1}]"),
              "[array must not contain duplicate elements]");
    CHECK_STR(why(u, "[{\"a\":1,\"b\":[1,2]},{\"b\":[2,1],\"a\":1}]"), "valid");
}

/* format: what AWS's validator checks, in its words */
static void test_formats(void)
{
    const mgw_jschema_t *f =
        schema("{\"properties\":{\"at\":{\"format\":\"date-time\"},"
               "\"mail\":{\"format\":\"email\"},\"host\":{\"format\":\"hostname\"},"
               "\"v4\":{\"format\":\"ipv4\"},\"v6\":{\"format\":\"ipv6\"},"
               "\"u\":{\"format\":\"uri\"},\"other\":{\"format\":\"phone\"}}}");
    CHECK_STR(why(f, "{\"at\":\"2024-02-29T23:59:59.123456789012+0530\","
                     "\"mail\":\"a.b@c\",\"host\":\"api.example.test.\","
                     "\"v4\":\"192.0.2.1\",\"v6\":\"2001:db8::7\",\"u\":\"../x?y#z\","
                     "\"other\":\"anything\"}"),
              "valid");
    CHECK_STR(why(f, "{\"at\":\"2023-02-29T10:00:00Z\"}"),
              "[string \"2023-02-29T10:00:00Z\" is invalid against requested date format(s) "
              "[yyyy-MM-dd'T'HH:mm:ssZ, yyyy-MM-dd'T'HH:mm:ss.[0-9]{1,12}Z]]");
    CHECK_STR(why(f, "{\"at\":\"2023-01-01T10:00:00\"}"),
              "[string \"2023-01-01T10:00:00\" is invalid against requested date format(s) "
              "[yyyy-MM-dd'T'HH:mm:ssZ, yyyy-MM-dd'T'HH:mm:ss.[0-9]{1,12}Z]]");
    /* 13 fraction digits, a lower-case t and z, an offset with a colon */
    CHECK(strcmp(why(f, "{\"at\":\"2023-01-01T10:00:00.1234567890123Z\"}"), "valid") != 0);
    CHECK_STR(why(f, "{\"at\":\"2023-01-01t10:00:00.5z\"}"), "valid");
    CHECK_STR(why(f, "{\"at\":\"2023-01-01T10:00:00-08:00\"}"), "valid");
    CHECK(strcmp(why(f, "{\"at\":\"2023-01-01T24:00:00Z\"}"), "valid") != 0);
    CHECK_STR(why(f, "{\"mail\":\"joe..x@example.com\"}"),
              "[string \"joe..x@example.com\" is not a valid email address]");
    CHECK_STR(why(f, "{\"mail\":\"\\\"joe smith\\\"@example.com\"}"), "valid");
    CHECK_STR(why(f, "{\"host\":\"-x.example\"}"),
              "[string \"-x.example\" is not a valid hostname]");
    CHECK_STR(why(f, "{\"host\":\"example.123\"}"),
              "[string \"example.123\" is not a valid hostname]");
    CHECK_STR(why(f, "{\"v4\":\"192.0.2.01\"}"),
              "[string \"192.0.2.01\" is not a valid IPv4 address]");
    CHECK_STR(why(f, "{\"v6\":\"1::2::3\"}"), "[string \"1::2::3\" is not a valid IPv6 address]");
    CHECK_STR(why(f, "{\"u\":\"http://x/%zz\"}"), "[string \"http://x/%zz\" is not a valid URI]");
    CHECK_STR(why(f, "{\"u\":\"1http://x\"}"), "[string \"1http://x\" is not a valid URI]");
    CHECK_STR(why(f, "{\"u\":\"a#b#c\"}"), "[string \"a#b#c\" is not a valid URI]");
    /* a format applies to strings only */
    CHECK_STR(why(f, "{\"v4\":7}"), "valid");
    CHECK_STR(compile_error("{\"format\":1}"), "at /format: must be a string");
}

/* Documents a loader gives: by uri, parsed once, with their own ids and references. */
static const char *test_loader(void *ud, const char *uri, size_t *n)
{
    (*(int *)ud)++;
    const char *text = NULL;
    if (strcmp(uri, "https://models.test/Pet") == 0)
        text = "{\"type\":\"object\",\"required\":[\"name\"],"
               "\"properties\":{\"owner\":{\"$ref\":\"Owner#/definitions/o\"}}}";
    else if (strcmp(uri, "https://models.test/Owner") == 0)
        text = "{\"definitions\":{\"o\":{\"type\":\"string\"}}}";
    else if (strcmp(uri, "https://models.test/Bad") == 0)
        text = "{nope";
    if (text) *n = strlen(text);
    return text;
}

static void test_loaded_documents(void)
{
    int loads = 0;
    char err[256];
    const char *pets = "{\"type\":\"array\",\"items\":{\"$ref\":\"https://models.test/Pet\"},"
                       "\"maxItems\":{\"$ref\":\"#/x\"},\"x\":3,"
                       "\"additionalItems\":{\"$ref\":\"https://models.test/Pet#\"}}";
    mgw_jschema_t *s =
        mgw_jschema_compile_docs(pool, pets, strlen(pets), test_loader, &loads, err, sizeof(err));
    CHECK(s == NULL); /* maxItems is not a schema position: "$ref" there is a number's place */
    loads = 0;
    pets = "{\"type\":\"array\",\"items\":{\"$ref\":\"https://models.test/Pet\"},"
           "\"additionalItems\":{\"$ref\":\"https://models.test/Pet#\"}}";
    s = mgw_jschema_compile_docs(pool, pets, strlen(pets), test_loader, &loads, err, sizeof(err));
    CHECK(s != NULL);
    CHECK(loads == 2); /* Pet once for both references, then Owner */
    CHECK_STR(why(s, "[{\"name\":\"rex\",\"owner\":\"ann\"}]"), "valid");
    CHECK_STR(why(s, "[{\"name\":\"rex\",\"owner\":5}]"),
              "[instance type (integer) does not match any allowed primitive type (allowed: "
              "[\"string\"])]");
    CHECK_STR(why(s, "[{}]"), "[object has missing required properties ([\"name\"])]");
    const char *bad = "{\"$ref\":\"https://models.test/Bad\"}";
    CHECK(mgw_jschema_compile_docs(pool, bad, strlen(bad), test_loader, &loads, err, sizeof(err)) ==
          NULL);
    CHECK_STR(err, "at /$ref: \"https://models.test/Bad\" names nothing in this schema");
    const char *none = "{\"$ref\":\"https://models.test/None\"}";
    CHECK(mgw_jschema_compile_docs(pool, none, strlen(none), test_loader, &loads, err,
                                   sizeof(err)) == NULL);
    /* without a loader another document is never reached */
    CHECK_STR(compile_error("{\"$ref\":\"https://models.test/Pet\"}"),
              "at /$ref: \"https://models.test/Pet\" names nothing in this schema");
}

int main(void)
{
    pool = mgw_pool_create(0);
    run_suite();
    RUN(test_messages);
    RUN(test_compile_errors);
    RUN(test_regex);
    RUN(test_refs_and_budget);
    RUN(test_formats);
    RUN(test_loaded_documents);
    mgw_pool_destroy(pool);
    return DONE();
}
