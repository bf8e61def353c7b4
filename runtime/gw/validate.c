/*
 * Request validation, as API Gateway's request validators do it, run at the start of the
 * integration phase: after the authorizer, the API key and throttling, before the
 * integration (a phase of its own would renumber the phases that Lua and tests know). A route's
 * validator checks that its required parameters (headers, path and query string
 * parameters) are there and not blank, answering 400 BAD_REQUEST_PARAMETERS with AWS's
 * message, and that the body is JSON valid against the model of its content type (else
 * the "$default" model, else nothing is checked), answering 400 BAD_REQUEST_BODY with the
 * reasons in $context.error.validationErrorString.
 *
 * To check the body, the phase reads all of it first (bounded by max_body_size, as any
 * body is), then hands exactly those bytes to the integration as a body known in advance
 * (r->body_mem): a proxied request reaches the backend unchanged.
 */
#include <string.h>

#include "base/jschema.h"
#include "base/log.h"
#include "base/utf8.h"
#include "conf/valconf.h"
#include "gw/req_int.h"

/* ---- parameters ---- */

static int blank(mgw_str_t v)
{
    for (size_t i = 0; i < v.n; i++)
        if (v.p[i] != ' ' && v.p[i] != '\t') return 0;
    return 1;
}

/* s (n bytes) percent-decoded as a query string component ('+' is a space) equals want. */
static int query_name_is(const char *s, size_t n, mgw_str_t want)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++, k++) {
        int c = (unsigned char)s[i], hi, lo;
        if (c == '%' && i + 2 < n && (hi = mgw_hex_digit(s[i + 1])) >= 0 &&
            (lo = mgw_hex_digit(s[i + 2])) >= 0) {
            c = hi << 4 | lo;
            i += 2;
        } else if (c == '+') {
            c = ' ';
        }
        if (k >= want.n || (unsigned char)want.p[k] != c) return 0;
    }
    return k == want.n;
}

int mgw__query_next(const char **p, const char *end, mgw_str_t name, mgw_str_t *value)
{
    while (*p && *p < end) {
        const char *s = *p, *amp = memchr(s, '&', (size_t)(end - s)), *e = amp ? amp : end;
        const char *eq = memchr(s, '=', (size_t)(e - s)), *ne = eq ? eq : e;
        *p = amp ? amp + 1 : end;
        if (query_name_is(s, (size_t)(ne - s), name)) {
            *value = eq ? (mgw_str_t){eq + 1, (size_t)(e - eq - 1)} : (mgw_str_t){e, 0};
            return 1;
        }
    }
    return 0;
}

/* 1 when the query string has the parameter name with a value that is not blank. */
static int has_query_param(const mgw_req_t *r, mgw_str_t name)
{
    const char *p = r->query.p, *end = p ? p + r->query.n : NULL;
    mgw_str_t v;
    while (mgw__query_next(&p, end, name, &v))
        if (!blank(v)) return 1;
    return 0;
}

static int has_param(const mgw_req_t *r, const mgw_vparam_t *vp)
{
    switch (vp->kind) {
    case MGW_VPARAM_HEADER:
        for (int i = 0; i < r->nheaders; i++)
            if (mgw_str_ieq(r->headers[i].name, vp->name.p) && !blank(r->headers[i].value))
                return 1;
        return 0;
    case MGW_VPARAM_PATH:
        for (int i = 0; i < r->nparams; i++)
            if (r->params[i].name.n == vp->name.n &&
                memcmp(r->params[i].name.p, vp->name.p, vp->name.n) == 0)
                return r->params[i].value.n > 0;
        return 0;
    default:
        return has_query_param(r, vp->name);
    }
}

/* 0, or -1 after answering 400 BAD_REQUEST_PARAMETERS naming every missing parameter. */
static int check_params(mgw_req_t *r, const mgw_validation_t *v)
{
    mgw_buf_t msg = {0};
    int missing = 0;
    for (int i = 0; i < v->nrequired; i++) {
        const mgw_vparam_t *vp = &v->required[i];
        if (has_param(r, vp)) continue;
        mgw_buf_adds(&msg, missing++ ? ", " : "Missing required request parameters: [");
        mgw_buf_add(&msg, vp->name.p, vp->name.n);
    }
    if (!missing) return 0;
    mgw_buf_addc(&msg, ']');
    const char *m = mgw_pool_strndup(r->pool, msg.p, msg.n);
    mgw_buf_free(&msg);
    mgw__req_fail(r, MGW_GW_BAD_REQUEST_PARAMETERS, m);
    return -1;
}

/* ---- the body ---- */

/*
 * The model for the request's content type: its media type (before any parameter, case
 * folded; application/json when the request has none, as AWS assumes), else "$default".
 */
static const mgw_vmodel_t *model_for(const mgw_req_t *r, const mgw_validation_t *v)
{
    mgw_str_t ct = mgw__req_header(r, "content-type");
    if (ct.p == NULL) ct = MGW_STR("application/json");
    size_t n = 0;
    while (n < ct.n && ct.p[n] != ';')
        n++;
    while (n && (ct.p[n - 1] == ' ' || ct.p[n - 1] == '\t'))
        n--;
    const char *s = ct.p;
    while (n && (*s == ' ' || *s == '\t'))
        s++, n--;
    const mgw_vmodel_t *dflt = NULL;
    for (int i = 0; i < v->nmodels; i++) {
        const mgw_vmodel_t *m = &v->models[i];
        if (m->content_type.n == 8 && memcmp(m->content_type.p, "$default", 8) == 0)
            dflt = m;
        else if (m->content_type.n == n && mgw_str_ieq((mgw_str_t){s, n}, m->content_type.p))
            return m;
    }
    return dflt;
}

/*
 * Validates the whole body (n bytes at p; an empty body is the empty object, as AWS takes
 * it) against the model: 0, or -1 after answering 400 BAD_REQUEST_BODY.
 */
static int check_body(mgw_req_t *r, const mgw_vmodel_t *m, const char *p, size_t n)
{
    if (m->model == NULL) return 0; /* not compiled: the configuration said why */
    mgw_json_t *doc;
    char err[160];
    const char *why = NULL;
    if (n == 0) {
        p = "{}";
        n = 2;
    }
    if (mgw_json_parse(r->pool, p, n, &doc, err, sizeof(err)) != 0)
        why = mgw_pool_printf(r->pool, "[instance is not valid JSON: %s]", err);
    else if (mgw_jschema_validate(m->model, doc, r->pool, &why))
        return 0;
    r->validation_error = why;
    mgw__req_fail(r, MGW_GW_BAD_REQUEST_BODY, NULL);
    return -1;
}

static void free_body_cb(void *data)
{
    mgw_buf_free(data);
}

/* The body is all there: it becomes the body known in advance, then it is checked. */
static int body_complete(mgw_req_t *r)
{
    mgw_buf_t *b = r->vbody;
    r->vbody = NULL;
    r->body_mem = b->n ? (mgw_str_t){b->p, b->n} : MGW_STR("");
    const mgw_vmodel_t *m = model_for(r, r->route->validation);
    return check_body(r, m, r->body_mem.p, r->body_mem.n);
}

void mgw__validate_body(mgw_req_t *r, const char *p, size_t n)
{
    mgw_buf_add(r->vbody, p, n); /* max_body_size bounds it (http/server.c) */
}

void mgw__validate_body_done(mgw_req_t *r)
{
    if (body_complete(r) == 0) mgw__req_continue(r); /* the integration phase again */
}

int mgw__validate(mgw_req_t *r)
{
    const mgw_validation_t *v = r->route->validation;
    r->validated = 1;
    if (v->params && check_params(r, v) != 0) return MGW_PHASE_STOP;
    if (!v->body) return MGW_PHASE_NEXT;
    const mgw_vmodel_t *m = model_for(r, v);
    if (m == NULL) return MGW_PHASE_NEXT; /* no model for this content type: not checked */
    if (r->body_mem.p)
        return check_body(r, m, r->body_mem.p, r->body_mem.n) ? MGW_PHASE_STOP : MGW_PHASE_NEXT;
    mgw_buf_t *b = mgw_pool_calloc(r->pool, sizeof(*b));
    mgw_pool_cleanup_add(r->pool, free_body_cb, b);
    if (r->has_length) mgw_buf_reserve(b, (size_t)r->content_length);
    mgw__req_take_kept_body(r, b);
    if (b->n < r->body_received) {
        /* bytes arrived while a phase waited and nothing kept them: the body is lost */
        r->error_reason = "the request body arrived before the validator could read it";
        mgw_log_error("request %s: %s", r->id, r->error_reason);
        mgw__req_fail(r, MGW_GW_API_CONFIGURATION_ERROR, NULL);
        return MGW_PHASE_STOP;
    }
    r->vbody = b;
    if (r->body_done || (!r->has_length && !r->chunked) ||
        (r->has_length && r->content_length == 0))
        return body_complete(r) ? MGW_PHASE_STOP : MGW_PHASE_NEXT;
    mgw__req_send_continue(r); /* a client waiting for "100 Continue" sends the body now */
    return MGW_PHASE_WAIT;
}
