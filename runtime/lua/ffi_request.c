/*
 * The request object as Lua policies see it (lua/moongate/request.lua): fields, headers,
 * query, path parameters, stage variables, $context values and the body, read lazily
 * when a script asks, and the header changes a hook may make before the integration.
 * FFI boundary per STYLE.md rule 9: strings are returned as pointer + length into
 * request memory that lives until the request ends; lists are count-then-fill; strings
 * from Lua are copied into the request's arena before C keeps them.
 */
#include <string.h>
#include <strings.h>

#include "auth/jwt.h"
#include "lua/lua_int.h"
#include "ws/ws.h"

static int give(mgw_str_t s, mgw_str_t *out)
{
    if (s.p == NULL) return -1;
    *out = s;
    return 0;
}

static int give_c(const char *s, mgw_str_t *out)
{
    return s ? give((mgw_str_t){s, strlen(s)}, out) : -1;
}

/* One field of the request (MGW_FIELD_*, lua_int.h): 0 and *out, or -1 when it has no value. */
int mgw_ffi_req_field(mgw_req_t *r, int field, mgw_str_t *out)
{
    switch (field) {
    case MGW_FIELD_METHOD:
        return give(r->method, out);
    case MGW_FIELD_PATH:
        return give(r->path, out);
    case MGW_FIELD_RAW_PATH:
        return give(r->raw_path, out);
    case MGW_FIELD_ROUTE_PATH:
        return give(r->route_path, out);
    case MGW_FIELD_QUERY:
        return give(r->query.p ? r->query : MGW_STR(""), out);
    case MGW_FIELD_ROUTE_KEY:
        return give_c(r->route ? r->route->key : NULL, out);
    case MGW_FIELD_REQUEST_ID:
        return give_c(mgw__req_id(r), out);
    case MGW_FIELD_SOURCE_IP:
        return give_c(r->from.peer, out);
    case MGW_FIELD_STAGE:
        return give_c(r->stage ? r->stage->name : NULL, out);
    case MGW_FIELD_API_ID:
        return give_c(r->api ? r->api->id : NULL, out);
    case MGW_FIELD_HOST:
        return give(r->host.n ? r->host : MGW_NULL_STR, out);
    case MGW_FIELD_PROTOCOL:
        return give_c(r->minor == 0 ? "HTTP/1.0" : "HTTP/1.1", out);
    case MGW_FIELD_CONNECTION_ID: /* a WebSocket event's; no value for HTTP requests */
        return give_c(mgw_ws_event_connection(r), out);
    case MGW_FIELD_MESSAGE_TYPE: /* a WebSocket message's: "TEXT" or "BINARY" */
        return give_c(mgw_ws_event_message_type(r), out);
    case MGW_FIELD_API_TYPE: /* "http" | "rest" | "websocket" */
        return give_c(r->api ? mgw__api_type(r->api)->name : NULL, out);
    }
    return -1;
}

/*
 * The request header name (n bytes, any case): 0 and *out, or -1 when absent. Repeated
 * headers are joined with "," as in Amazon API Gateway events.
 */
int mgw_ffi_req_header(mgw_req_t *r, const char *name, size_t n, mgw_str_t *out)
{
    int found = 0;
    mgw_buf_t joined = {0};
    for (int i = 0; i < r->nheaders; i++) {
        const mgw_hdr_t *h = &r->headers[i];
        if (h->name.n != n || strncasecmp(h->name.p, name, n) != 0) continue;
        if (found == 0) {
            *out = h->value;
        } else {
            if (found == 1) mgw_buf_add(&joined, out->p, out->n);
            mgw_buf_addc(&joined, ',');
            mgw_buf_add(&joined, h->value.p, h->value.n);
        }
        found++;
    }
    if (found > 1) {
        *out = (mgw_str_t){mgw_pool_strndup(r->pool, joined.p, joined.n), joined.n};
        mgw_buf_free(&joined);
    }
    return found ? 0 : -1;
}

/* The request headers in order (names lower case); returns their count. */
int mgw_ffi_req_headers(mgw_req_t *r, mgw_hdr_t *out, int max)
{
    for (int i = 0; i < r->nheaders && i < max; i++)
        out[i] = r->headers[i];
    return r->nheaders;
}

/* The route's path parameters; returns their count. */
int mgw_ffi_req_params(mgw_req_t *r, mgw_kv_t *out, int max)
{
    for (int i = 0; i < r->nparams && i < max; i++)
        out[i] = r->params[i];
    return r->nparams;
}

/* The stage variables; returns their count. */
int mgw_ffi_req_stage_variables(mgw_req_t *r, mgw_kv_t *out, int max)
{
    if (r->stage == NULL) return 0;
    for (int i = 0; i < r->stage->nvars && i < max; i++)
        out[i] = r->stage->vars[i];
    return r->stage->nvars;
}

/*
 * The request body. Returns 0 with *out once the whole body has arrived; 1 when it is
 * still arriving (the hook then waits and asks again when resumed); -1 with *err when
 * the body cannot be read any more (it went to the backend, or the response started).
 */
int mgw_ffi_req_body(mgw_req_t *r, mgw_str_t *out, const char **err)
{
    if (r->body_mem.p) { /* known from the start (a WebSocket message) */
        *out = r->body_mem;
        return 0;
    }
    mgw_lreq_t *l = mgw__lreq(r);
    if (r->px || r->resp_started) {
        *err = "the request body is not available once the response has started";
        return -1;
    }
    if (mgw__hooks_body_complete(r)) {
        *out = r->kept_body.n ? (mgw_str_t){r->kept_body.p, r->kept_body.n} : MGW_STR("");
        return 0;
    }
    /* The client may wait for "100 Continue" before sending the body. */
    mgw__req_send_continue(r);
    l->waiting = MGW_WAIT_BODY;
    return 1;
}

/*
 * Sets request header name to value (vn bytes), replacing every header of that name;
 * value NULL removes them. The change is what later hooks and the backend see. Returns
 * 0, or -1 with *err (a bad name or value, or too late: the integration has started).
 */
int mgw_ffi_req_set_header(mgw_req_t *r, const char *name, size_t nn, const char *value, size_t vn,
                           const char **err)
{
    if (r->px || r->resp_started || r->phase >= MGW_PHASE_INTEGRATION) {
        *err = "request headers can only be changed before the integration";
        return -1;
    }
    if (nn == 0 || nn > 256) return *err = "header name must be 1 to 256 characters", -1;
    if (!mgw_http1_is_token(name, nn)) return *err = "header name must be an HTTP token", -1;
    if (value && !mgw_http1_is_value(value, vn))
        return *err = "header value must not contain CR, LF or NUL", -1;
    /* drop the old values */
    int k = 0;
    for (int i = 0; i < r->nheaders; i++) {
        const mgw_hdr_t *h = &r->headers[i];
        if (h->name.n == nn && strncasecmp(h->name.p, name, nn) == 0) continue;
        r->headers[k++] = *h;
    }
    r->nheaders = k;
    if (value == NULL) return 0;
    char *lname = mgw_pool_strndup(r->pool, name, nn);
    for (char *s = lname; *s; s++)
        if (*s >= 'A' && *s <= 'Z') *s = (char)(*s + 32);
    *mgw__req_push_header(r) = (mgw_hdr_t){{lname, nn}, {mgw_pool_strndup(r->pool, value, vn), vn}};
    return 0;
}

/*
 * The $context variable name (n bytes, without "$context."), as an access-log line
 * would show it: 0 and *out, -1 when it has no value, -2 when there is no such variable.
 */
int mgw_ffi_req_context(mgw_req_t *r, const char *name, size_t n, mgw_str_t *out)
{
    mgw_str_t arg;
    int var = mgw_template_var(name, n, &arg);
    if (var < 0) return -2;
    return mgw__req_lookup(r, var, arg, out) ? 0 : -1;
}

/* When the request started, in milliseconds since the epoch. */
int mgw_ffi_req_time(mgw_req_t *r, uint64_t *epoch_ms)
{
    *epoch_ms = r->start_ms;
    return 0;
}

/*
 * The claims of the token a JWT authorizer allowed r with (count-then-fill: each claim's
 * name and its value as text, mgw_jwt_claim_text), or -1 when no JWT authorizer allowed
 * r. The strings live until r ends.
 */
int mgw_ffi_req_jwt_claims(mgw_req_t *r, mgw_kv_t *out, int max)
{
    const mgw_jwt_t *t = mgw_jwt_req_token(r);
    if (t == NULL) return -1;
    const mgw_json_t *c = t->claims;
    for (int i = 0; i < c->n && i < max; i++)
        out[i] = (mgw_kv_t){{c->keys[i], c->key_lens[i]}, mgw_jwt_claim_text(r->pool, c->items[i])};
    return c->n;
}

/* That token's scopes (count-then-fill), or -1 when it has no scope or scp claim (or r
 * has no such token). */
int mgw_ffi_req_jwt_scopes(mgw_req_t *r, mgw_str_t *out, int max)
{
    const mgw_jwt_t *t = mgw_jwt_req_token(r);
    return t ? mgw_jwt_scopes(t, out, max) : -1;
}

/* The context a Lua authorizer allowed r with (count-then-fill), or -1 when no Lua
 * authorizer has allowed it. req.authorizer reads it when first asked: the authorizer
 * hook makes no Lua table for it. */
int mgw_ffi_req_authorizer(mgw_req_t *r, mgw_kv_t *out, int max)
{
    const mgw_lreq_t *l = r->lua;
    if (l == NULL || l->authz_status != 200) return -1;
    for (int i = 0; i < l->nauthz && i < max; i++)
        out[i] = l->authz[i];
    return l->nauthz;
}
