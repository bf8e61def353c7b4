#include "conf/template.h"

#include <string.h>

typedef struct {
    int var;        /* -1 for a literal */
    mgw_str_t text; /* the literal, or the stage variable name */
} segment_t;

struct mgw_template_s {
    int json;
    int nsegs;
    segment_t *segs;
    unsigned char uses[MGW_VAR__COUNT];
};

static const struct {
    const char *name;
    size_t len;
} vars[] = {
#define XX(id, name) {name, sizeof(name) - 1},
    MGW_CONTEXT_VARS(XX)
#undef XX
};

static int name_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.';
}

/* Length of the variable name starting at s, without a trailing dot. */
static size_t name_len(const char *s)
{
    size_t n = 0;
    while (name_char(s[n]))
        n++;
    while (n && s[n - 1] == '.')
        n--;
    return n;
}

static void add_seg(mgw_pool_t *pool, mgw_template_t *t, int *cap, int var, const char *p, size_t n)
{
    if (var < 0 && n == 0) return;
    if (t->nsegs == *cap) {
        *cap = *cap ? *cap * 2 : 8;
        segment_t *s = mgw_pool_alloc(pool, sizeof(*s) * (size_t)*cap);
        if (t->nsegs) memcpy(s, t->segs, sizeof(*s) * (size_t)t->nsegs);
        t->segs = s;
    }
    t->segs[t->nsegs++] = (segment_t){var, {p, n}};
    if (var >= 0) t->uses[var] = 1;
}

/* $context variables whose last part is a name chosen by the configuration. */
static const struct {
    const char *prefix;
    size_t len;
    int var;
} prefixed[] = {
    {"authorizer.", sizeof("authorizer.") - 1, MGW_VAR_AUTHORIZER_KEY},
    {"custom.", sizeof("custom.") - 1, MGW_VAR_CUSTOM},
};

int mgw_template_var(const char *name, size_t n, mgw_str_t *arg)
{
    *arg = (mgw_str_t){NULL, 0};
    for (int i = 0; i < (int)(sizeof(vars) / sizeof(vars[0])); i++)
        if (vars[i].len == n && memcmp(vars[i].name, name, n) == 0) return i;
    for (int i = 0; i < (int)(sizeof(prefixed) / sizeof(prefixed[0])); i++) {
        size_t len = prefixed[i].len;
        if (n > len && memcmp(name, prefixed[i].prefix, len) == 0) {
            *arg = (mgw_str_t){name + len, n - len};
            return prefixed[i].var;
        }
    }
    return -1;
}

mgw_template_t *mgw_template_compile(mgw_pool_t *pool, const char *src, const char **err)
{
    static const char ctx[] = "$context.", sv[] = "$stageVariables.";
    mgw_template_t *t = mgw_pool_calloc(pool, sizeof(*t));
    src = mgw_pool_strdup(pool, src);
    const char *s = src;
    while (*s == ' ' || *s == '\t' || *s == '\n')
        s++;
    t->json = *s == '{';
    int cap = 0;
    const char *lit = src;
    for (s = src; *s;) {
        if (*s != '$') {
            s++;
            continue;
        }
        if (strncmp(s, ctx, sizeof(ctx) - 1) == 0) {
            const char *name = s + sizeof(ctx) - 1;
            size_t n = name_len(name);
            mgw_str_t arg;
            int var = mgw_template_var(name, n, &arg);
            if (var < 0) {
                *err = mgw_pool_printf(pool, "unknown variable $context.%.*s", (int)n, name);
                return NULL;
            }
            add_seg(pool, t, &cap, -1, lit, (size_t)(s - lit));
            add_seg(pool, t, &cap, var, arg.p, arg.n);
            s = lit = name + n;
        } else if (strncmp(s, sv, sizeof(sv) - 1) == 0) {
            const char *name = s + sizeof(sv) - 1;
            size_t n = name_len(name);
            if (n == 0) {
                *err = "empty $stageVariables name";
                return NULL;
            }
            add_seg(pool, t, &cap, -1, lit, (size_t)(s - lit));
            add_seg(pool, t, &cap, MGW_VAR_STAGE_VARIABLE, name, n);
            s = lit = name + n;
        } else {
            s++;
        }
    }
    add_seg(pool, t, &cap, -1, lit, (size_t)(s - lit));
    return t;
}

void mgw_template_render(const mgw_template_t *t, mgw_var_lookup_cb lookup, void *ud,
                         mgw_buf_t *out)
{
    for (int i = 0; i < t->nsegs; i++) {
        const segment_t *seg = &t->segs[i];
        if (seg->var < 0) {
            mgw_buf_add(out, seg->text.p, seg->text.n);
            continue;
        }
        mgw_str_t v;
        if (!lookup(ud, seg->var, seg->text, &v)) {
            mgw_buf_addc(out, '-');
        } else if (seg->var == MGW_VAR_ERROR_MESSAGE_STRING) {
            /* The quoted form is a JSON string literal whatever the template is. */
            mgw_buf_addc(out, '"');
            mgw_buf_add_json_utf8(out, v.p, v.n);
            mgw_buf_addc(out, '"');
        } else if (t->json) {
            mgw_buf_add_json_utf8(out, v.p, v.n);
        } else {
            mgw_buf_add(out, v.p, v.n);
        }
    }
}

int mgw_template_uses(const mgw_template_t *t, int var)
{
    return t->uses[var];
}
