/*
 * JSON Schema draft 4, validating (jschema.h): the document and the compiled nodes
 * (jschema_int.h) are walked together. A loud walk words every failure as fge's
 * json-schema-validator (the one behind AWS API Gateway) does; a quiet walk (inside
 * allOf, anyOf, oneOf and not) stops at the first failure and words nothing. A step
 * budget and a depth limit bound the walk whatever the schema.
 */
#include <math.h>
#include <regex.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/jschema_int.h"

typedef struct {
    mgw_buf_t *out; /* NULL: a quiet walk */
    int nmsg, nmore;
    long steps;
    int exhausted;
} vs_t;

static unsigned type_of(const mgw_json_t *v)
{
    switch (v->type) {
    case MGW_JSON_NULL:
        return T_NULL;
    case MGW_JSON_TRUE:
    case MGW_JSON_FALSE:
        return T_BOOL;
    case MGW_JSON_NUMBER:
        /* as Jackson reads it: 1.0 and 1e2 are decimal numbers, not integers */
        return strpbrk(v->str, ".eE") ? T_NUM : T_INT;
    case MGW_JSON_STRING:
        return T_STR;
    case MGW_JSON_ARRAY:
        return T_ARR;
    default:
        return T_OBJ;
    }
}

static const char *type_name(unsigned t)
{
    switch (t) {
    case T_NULL:
        return "null";
    case T_BOOL:
        return "boolean";
    case T_INT:
        return "integer";
    case T_NUM:
        return "number";
    case T_STR:
        return "string";
    case T_ARR:
        return "array";
    default:
        return "object";
    }
}

static void put_text(mgw_buf_t *b, const char *s, size_t n);

/* v as compact JSON (strings escaped), at most about max bytes of it. */
static void put_json(mgw_buf_t *b, const mgw_json_t *v, size_t max)
{
    size_t start = b->n;
    switch (v->type) {
    case MGW_JSON_NULL:
        mgw_buf_adds(b, "null");
        break;
    case MGW_JSON_TRUE:
        mgw_buf_adds(b, "true");
        break;
    case MGW_JSON_FALSE:
        mgw_buf_adds(b, "false");
        break;
    case MGW_JSON_NUMBER:
        mgw_buf_add(b, v->str, v->len);
        break;
    case MGW_JSON_STRING:
        mgw_buf_addc(b, '"');
        if (v->len > max) {
            put_text(b, v->str, v->len);
        } else {
            mgw_buf_add_json(b, v->str, v->len);
        }
        mgw_buf_addc(b, '"');
        break;
    default:
        mgw_buf_addc(b, v->type == MGW_JSON_ARRAY ? '[' : '{');
        for (int i = 0; i < v->n; i++) {
            if (b->n - start > max) {
                mgw_buf_adds(b, "...");
                break;
            }
            if (i) mgw_buf_addc(b, ',');
            if (v->type == MGW_JSON_OBJECT) {
                mgw_buf_addc(b, '"');
                mgw_buf_add_json(b, v->keys[i], v->key_lens[i]);
                mgw_buf_adds(b, "\":");
            }
            put_json(b, v->items[i], max);
        }
        mgw_buf_addc(b, v->type == MGW_JSON_ARRAY ? ']' : '}');
    }
}

/* Starts a message: NULL when the walk is quiet or the list is full (then only counted). */
static mgw_buf_t *msg(vs_t *st)
{
    if (st->out == NULL) return NULL;
    if (st->nmsg >= MGW_JSCHEMA_MAX_MESSAGES) {
        st->nmore++;
        return NULL;
    }
    if (st->nmsg++) mgw_buf_adds(st->out, ", ");
    return st->out;
}

/* A string for a message: its raw text, shortened (as fge prints it, unescaped). */
static void put_text(mgw_buf_t *b, const char *s, size_t n)
{
    size_t k = n > 64 ? 64 : n;
    while (k < n && k > 0 && ((unsigned char)s[k] & 0xC0) == 0x80)
        k--; /* not in the middle of a character */
    mgw_buf_add_json(b, s, k);
    if (k < n) mgw_buf_adds(b, "...");
}

static size_t utf8_length(const char *s, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (((unsigned char)s[i] & 0xC0) != 0x80) k++;
    return k;
}

static int json_equal(const mgw_json_t *a, const mgw_json_t *b, int depth);

static int json_equal(const mgw_json_t *a, const mgw_json_t *b, int depth)
{
    if (a->type != b->type) {
        return 0;
    }
    switch (a->type) {
    case MGW_JSON_NUMBER:
        return a->num == b->num;
    case MGW_JSON_STRING:
        return a->len == b->len && memcmp(a->str, b->str, a->len) == 0;
    case MGW_JSON_ARRAY:
        if (a->n != b->n || depth > MGW_JSON_MAX_DEPTH) return 0;
        for (int i = 0; i < a->n; i++)
            if (!json_equal(a->items[i], b->items[i], depth + 1)) return 0;
        return 1;
    case MGW_JSON_OBJECT:
        if (a->n != b->n || depth > MGW_JSON_MAX_DEPTH) return 0;
        for (int i = 0; i < a->n; i++) {
            int found = 0;
            for (int j = 0; j < b->n && !found; j++)
                if (a->key_lens[i] == b->key_lens[j] &&
                    memcmp(a->keys[i], b->keys[j], a->key_lens[i]) == 0)
                    found = json_equal(a->items[i], b->items[j], depth + 1) ? 1 : -1;
            if (found != 1) return 0;
        }
        return 1;
    default:
        return 1;
    }
}

/* A hash that equal values share (object members in any order; 1 and 1.0 alike). */
static uint64_t json_hash(const mgw_json_t *v, int depth)
{
    uint64_t h = 1469598103934665603ull ^ (uint64_t)v->type;
    switch (v->type) {
    case MGW_JSON_NUMBER: {
        double d = v->num == 0 ? 0 : v->num; /* -0 == 0 */
        uint64_t bits;
        memcpy(&bits, &d, 8);
        return h ^ (bits * 1099511628211ull);
    }
    case MGW_JSON_STRING:
        for (size_t i = 0; i < v->len; i++)
            h = (h ^ (uint8_t)v->str[i]) * 1099511628211ull;
        return h;
    case MGW_JSON_ARRAY:
        for (int i = 0; i < v->n && depth < MGW_JSON_MAX_DEPTH; i++)
            h = (h ^ json_hash(v->items[i], depth + 1)) * 1099511628211ull;
        return h;
    case MGW_JSON_OBJECT: {
        uint64_t sum = 0;
        for (int i = 0; i < v->n && depth < MGW_JSON_MAX_DEPTH; i++) {
            uint64_t k = 1469598103934665603ull;
            for (size_t j = 0; j < v->key_lens[i]; j++)
                k = (k ^ (uint8_t)v->keys[i][j]) * 1099511628211ull;
            sum += (k ^ json_hash(v->items[i], depth + 1)) * 0x9E3779B97F4A7C15ull;
        }
        return h ^ sum;
    }
    default:
        return h;
    }
}

typedef struct {
    uint64_t h;
    const mgw_json_t *v;
} hv_t;

static int hv_cmp(const void *a, const void *b)
{
    uint64_t x = ((const hv_t *)a)->h, y = ((const hv_t *)b)->h;
    return x < y ? -1 : x > y;
}

/* 1 when the items of arr are pairwise unequal: sorted by hash, equal hashes compared. */
static int items_unique(const mgw_json_t *arr)
{
    if (arr->n < 2) return 1;
    hv_t *hv = mgw_malloc(sizeof(*hv) * (size_t)arr->n);
    for (int i = 0; i < arr->n; i++)
        hv[i] = (hv_t){json_hash(arr->items[i], 0), arr->items[i]};
    qsort(hv, (size_t)arr->n, sizeof(*hv), hv_cmp);
    int ok = 1;
    for (int i = 0; i < arr->n && ok; i++)
        for (int j = i + 1; j < arr->n && hv[j].h == hv[i].h && ok; j++)
            if (json_equal(hv[i].v, hv[j].v, 0)) ok = 0;
    free(hv);
    return ok;
}

static int check(vs_t *st, const node_t *n, const mgw_json_t *v, int depth);

/* n applied quietly (combinators): 1 valid, 0 not. */
static int quiet(vs_t *st, const node_t *n, const mgw_json_t *v, int depth)
{
    mgw_buf_t *out = st->out;
    st->out = NULL;
    int ok = check(st, n, v, depth);
    st->out = out;
    return ok;
}

static int regex_match(const regex_t *re, const char *s, size_t n)
{
    regmatch_t m = {.rm_so = 0, .rm_eo = (regoff_t)n};
    return regexec(re, s, 1, &m, REG_STARTEND) == 0;
}

static int check_number(vs_t *st, const node_t *n, const mgw_json_t *v)
{
    mgw_buf_t *b;
    int ok = 1;
    if (n->has_min && (v->num < n->min || (n->excl_min && v->num == n->min))) {
        ok = 0;
        if ((b = msg(st))) {
            if (v->num < n->min)
                mgw_buf_printf(
                    b,
                    "numeric instance is lower than the required minimum (minimum: %s, found: %s)",
                    n->min_text, v->str);
            else
                mgw_buf_printf(
                    b, "numeric instance is not strictly greater than the required minimum %s",
                    n->min_text);
        }
    }
    if (n->has_max && (v->num > n->max || (n->excl_max && v->num == n->max))) {
        ok = 0;
        if ((b = msg(st))) {
            if (v->num > n->max)
                mgw_buf_printf(b,
                               "numeric instance is greater than the required maximum (maximum: "
                               "%s, found: %s)",
                               n->max_text, v->str);
            else
                mgw_buf_printf(
                    b, "numeric instance is not strictly lower than the required maximum %s",
                    n->max_text);
        }
    }
    if (n->has_mult) {
        double q = v->num / n->mult;
        if (!isfinite(q) || fabs(q - nearbyint(q)) > 1e-9 * (fabs(q) > 1 ? fabs(q) : 1)) {
            ok = 0;
            if ((b = msg(st)))
                mgw_buf_printf(b, "remainder of division is not zero (%s / %s)", v->str,
                               n->mult_text);
        }
    }
    return ok;
}

static int check_string(vs_t *st, const node_t *n, const mgw_json_t *v)
{
    mgw_buf_t *b;
    int ok = 1;
    if (n->min_len >= 0 || n->max_len >= 0) {
        int64_t len = (int64_t)utf8_length(v->str, v->len);
        if (n->min_len >= 0 && len < n->min_len) {
            ok = 0;
            if ((b = msg(st))) {
                mgw_buf_adds(b, "string \"");
                put_text(b, v->str, v->len);
                mgw_buf_printf(b, "\" is too short (length: %lld, required minimum: %lld)",
                               (long long)len, (long long)n->min_len);
            }
        }
        if (n->max_len >= 0 && len > n->max_len) {
            ok = 0;
            if ((b = msg(st))) {
                mgw_buf_adds(b, "string \"");
                put_text(b, v->str, v->len);
                mgw_buf_printf(b, "\" is too long (length: %lld, maximum allowed: %lld)",
                               (long long)len, (long long)n->max_len);
            }
        }
    }
    if (n->pattern && !regex_match(n->pattern, v->str, v->len)) {
        ok = 0;
        if ((b = msg(st))) {
            mgw_buf_adds(b, "ECMA 262 regex \"");
            put_text(b, n->pattern_src, strlen(n->pattern_src));
            mgw_buf_adds(b, "\" does not match input string \"");
            put_text(b, v->str, v->len);
            mgw_buf_addc(b, '"');
        }
    }
    if (n->format && !n->format->valid(v->str, v->len)) {
        ok = 0;
        if ((b = msg(st))) {
            mgw_buf_adds(b, "string \"");
            put_text(b, v->str, v->len);
            mgw_buf_addc(b, '"');
            mgw_buf_adds(b, n->format->message);
        }
    }
    return ok;
}

static int check_array(vs_t *st, const node_t *n, const mgw_json_t *v, int depth)
{
    mgw_buf_t *b;
    int ok = 1;
    if (n->min_items >= 0 && v->n < n->min_items) {
        ok = 0;
        if ((b = msg(st)))
            mgw_buf_printf(
                b,
                "array is too short: must have at least %lld elements but instance has %d elements",
                (long long)n->min_items, v->n);
    }
    if (n->max_items >= 0 && v->n > n->max_items) {
        ok = 0;
        if ((b = msg(st)))
            mgw_buf_printf(
                b,
                "array is too long: must have at most %lld elements but instance has %d elements",
                (long long)n->max_items, v->n);
    }
    if (!ok && !st->out) return 0;
    if (n->unique && !items_unique(v)) {
        ok = 0;
        if ((b = msg(st))) mgw_buf_adds(b, "array must not contain duplicate elements");
    }
    if (n->items_is_list && n->addl_items_false && v->n > n->nitems_list) {
        ok = 0;
        if ((b = msg(st)))
            mgw_buf_printf(b,
                           "schema only allows %d elements in array but instance has %d elements",
                           n->nitems_list, v->n);
    }
    for (int i = 0; i < v->n && (ok || st->out); i++) {
        const node_t *s = n->items;
        if (n->items_is_list) s = i < n->nitems_list ? n->items_list[i] : n->addl_items;
        if (s && !check(st, s, v->items[i], depth + 1)) ok = 0;
    }
    return ok;
}

/* 1 when the object obj has a member named name (n bytes). */
static int has_member(const mgw_json_t *obj, const char *name, size_t n)
{
    for (int i = 0; i < obj->n; i++)
        if (obj->key_lens[i] == n && memcmp(obj->keys[i], name, n) == 0) return 1;
    return 0;
}

static int str_cmp(const void *a, const void *b)
{
    const mgw_json_t *x = *(const mgw_json_t *const *)a, *y = *(const mgw_json_t *const *)b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->str, y->str, n);
    return c ? c : (x->len > y->len) - (x->len < y->len);
}

/* The names of list that obj lacks, sorted, as a JSON array (fge's wording); 0 if none. */
static int missing_names(const mgw_json_t *obj, const mgw_json_t *list, mgw_buf_t *b)
{
    const mgw_json_t **miss = mgw_malloc(sizeof(*miss) * (size_t)list->n);
    int k = 0;
    for (int i = 0; i < list->n; i++)
        if (!has_member(obj, list->items[i]->str, list->items[i]->len)) miss[k++] = list->items[i];
    if (k && b) {
        qsort(miss, (size_t)k, sizeof(*miss), str_cmp);
        mgw_buf_addc(b, '[');
        for (int i = 0; i < k; i++) {
            if (i) mgw_buf_addc(b, ',');
            put_json(b, miss[i], 64);
        }
        mgw_buf_addc(b, ']');
    }
    free(miss);
    return k;
}

static int check_object(vs_t *st, const node_t *n, const mgw_json_t *v, int depth)
{
    mgw_buf_t *b;
    int ok = 1;
    if (n->min_props >= 0 && v->n < n->min_props) {
        ok = 0;
        if ((b = msg(st)))
            mgw_buf_printf(
                b, "object has too few properties (found %d but schema requires at least %lld)",
                v->n, (long long)n->min_props);
    }
    if (n->max_props >= 0 && v->n > n->max_props) {
        ok = 0;
        if ((b = msg(st)))
            mgw_buf_printf(
                b, "object has too many properties (found %d but schema requires at most %lld)",
                v->n, (long long)n->max_props);
    }
    if (n->required && missing_names(v, n->required, NULL)) {
        ok = 0;
        if ((b = msg(st))) {
            mgw_buf_adds(b, "object has missing required properties (");
            missing_names(v, n->required, b);
            mgw_buf_addc(b, ')');
        }
    }
    for (int d = 0; d < n->ndeps && (ok || st->out); d++) {
        const dep_t *dp = &n->deps[d];
        if (!has_member(v, dp->name, dp->len)) continue;
        if (dp->s) {
            if (!check(st, dp->s, v, depth + 1)) ok = 0;
        } else if (missing_names(v, dp->names, NULL)) {
            ok = 0;
            if ((b = msg(st))) {
                mgw_buf_adds(b, "property \"");
                put_text(b, dp->name, dp->len);
                mgw_buf_adds(b, "\" of object has missing property dependencies (schema requires ");
                mgw_json_t sorted = *dp->names;
                missing_names(&(mgw_json_t){.type = MGW_JSON_OBJECT}, &sorted, b);
                mgw_buf_adds(b, "; missing: ");
                missing_names(v, dp->names, b);
                mgw_buf_addc(b, ')');
            }
        }
    }
    mgw_buf_t extra = {0};
    int nextra = 0;
    for (int i = 0; i < v->n && (ok || st->out); i++) {
        const char *k = v->keys[i];
        size_t kn = v->key_lens[i];
        int matched = 0;
        for (int p = 0; p < n->nprops; p++)
            if (n->props[p].len == kn && memcmp(n->props[p].name, k, kn) == 0) {
                matched = 1;
                if (!check(st, n->props[p].s, v->items[i], depth + 1)) ok = 0;
            }
        for (int p = 0; p < n->npprops; p++)
            if (regex_match(n->pprops[p].re, k, kn)) {
                matched = 1;
                if (!check(st, n->pprops[p].s, v->items[i], depth + 1)) ok = 0;
            }
        if (matched) continue;
        if (n->addl_props_false) {
            ok = 0;
            if (st->out) {
                mgw_buf_addc(&extra, nextra++ ? ',' : '[');
                mgw_json_t name = {.type = MGW_JSON_STRING, .str = k, .len = kn};
                put_json(&extra, &name, 64);
            }
        } else if (n->addl_props && !check(st, n->addl_props, v->items[i], depth + 1)) {
            ok = 0;
        }
    }
    if (nextra && (b = msg(st))) {
        mgw_buf_adds(b, "object instance has properties which are not allowed by the schema: ");
        mgw_buf_add(b, extra.p, extra.n);
        mgw_buf_addc(b, ']');
    }
    mgw_buf_free(&extra);
    return ok;
}

static int check(vs_t *st, const node_t *n, const mgw_json_t *v, int depth)
{
    mgw_buf_t *b;
    while (n->ref)
        n = n->ref;
    if (++st->steps > MGW_JSCHEMA_MAX_STEPS || depth > 8 * MGW_JSON_MAX_DEPTH) {
        /* worded once, at the end (it may happen in a quiet walk) */
        if (!st->exhausted) st->exhausted = depth > 8 * MGW_JSON_MAX_DEPTH ? 1 : 2;
        return 0;
    }
    if (st->exhausted) return 0;
    unsigned t = type_of(v);
    int ok = 1;
    if (n->types && !(n->types & t)) {
        ok = 0;
        if ((b = msg(st))) {
            mgw_buf_printf(
                b, "instance type (%s) does not match any allowed primitive type (allowed: ",
                type_name(t));
            if (n->type_src->type == MGW_JSON_STRING) {
                mgw_buf_addc(b, '[');
                put_json(b, n->type_src, 64);
                mgw_buf_addc(b, ']');
            } else {
                put_json(b, n->type_src, 256);
            }
            mgw_buf_addc(b, ')');
        }
        if (!st->out) return 0;
    }
    if (n->enumv) {
        int found = 0;
        for (int i = 0; i < n->enumv->n && !found; i++)
            found = json_equal(v, n->enumv->items[i], 0);
        if (!found) {
            ok = 0;
            if ((b = msg(st))) {
                mgw_buf_adds(b, "instance value (");
                put_json(b, v, 64);
                mgw_buf_adds(b, ") not found in enum (possible values: ");
                put_json(b, n->enumv, 256);
                mgw_buf_addc(b, ')');
            }
            if (!st->out) return 0;
        }
    }
    if (t == T_INT || t == T_NUM)
        ok &= check_number(st, n, v);
    else if (t == T_STR)
        ok &= check_string(st, n, v);
    else if (t == T_ARR)
        ok &= check_array(st, n, v, depth);
    else if (t == T_OBJ)
        ok &= check_object(st, n, v, depth);
    if (!ok && !st->out) return 0;
    if (n->nall) {
        int matched = 0;
        for (int i = 0; i < n->nall; i++)
            matched += quiet(st, n->all[i], v, depth + 1);
        if (matched < n->nall) {
            ok = 0;
            if ((b = msg(st)))
                mgw_buf_printf(
                    b, "instance failed to match all required schemas (matched only %d out of %d)",
                    matched, n->nall);
        }
    }
    if (n->nany) {
        int matched = 0;
        for (int i = 0; i < n->nany && !matched; i++)
            matched = quiet(st, n->any[i], v, depth + 1);
        if (!matched) {
            ok = 0;
            if ((b = msg(st)))
                mgw_buf_printf(b, "instance failed to match at least one required schema among %d",
                               n->nany);
        }
    }
    if (n->none) {
        int matched = 0;
        for (int i = 0; i < n->none; i++)
            matched += quiet(st, n->one[i], v, depth + 1);
        if (matched != 1) {
            ok = 0;
            if ((b = msg(st)))
                mgw_buf_printf(b,
                               "instance failed to match exactly one schema (matched %d out of %d)",
                               matched, n->none);
        }
    }
    if (n->not_ && quiet(st, n->not_, v, depth + 1)) {
        ok = 0;
        if ((b = msg(st))) mgw_buf_adds(b, "instance matched a schema which it should not have");
    }
    if (st->exhausted) return 0;
    return ok;
}

int mgw_jschema_validate(const mgw_jschema_t *s, const mgw_json_t *v, mgw_pool_t *pool,
                         const char **why)
{
    mgw_buf_t out = {0};
    vs_t st = {.out = why ? &out : NULL};
    int ok = check(&st, s->root, v, 0);
    if (st.exhausted && st.out) {
        st.nmore = 0;
        st.nmsg = st.nmsg < MGW_JSCHEMA_MAX_MESSAGES ? st.nmsg : MGW_JSCHEMA_MAX_MESSAGES - 1;
        mgw_buf_adds(&out, st.nmsg ? ", " : "");
        mgw_buf_adds(&out,
                     st.exhausted == 1 ? "schema recursion too deep" : "validation too complex");
    }
    if (why) {
        *why = NULL;
        if (!ok) {
            if (st.nmore) mgw_buf_printf(&out, ", and %d more", st.nmore);
            *why = mgw_pool_printf(pool, "[%.*s]", (int)out.n, out.p ? out.p : "");
        }
        mgw_buf_free(&out);
    }
    return ok;
}
