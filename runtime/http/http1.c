#include "http/http1.h"

#include <llhttp.h>
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"

struct mgw_http1_s {
    llhttp_t parser;
    llhttp_settings_t settings;
    const mgw_http1_cbs_t *cbs;
    void *ud;
    const char *reason; /* why a callback of ours failed the parse, or NULL */
};

#define SELF(p) ((mgw_http1_t *)(p))

static int cb_begin(llhttp_t *p)
{
    SELF(p)->reason = NULL;
    return SELF(p)->cbs->on_message_begin ? SELF(p)->cbs->on_message_begin(SELF(p)->ud) : 0;
}

static int cb_url(llhttp_t *p, const char *at, size_t n)
{
    return SELF(p)->cbs->on_url ? SELF(p)->cbs->on_url(SELF(p)->ud, at, n) : 0;
}

static int cb_field(llhttp_t *p, const char *at, size_t n)
{
    return SELF(p)->cbs->on_header_field(SELF(p)->ud, at, n);
}

static int cb_value(llhttp_t *p, const char *at, size_t n)
{
    return SELF(p)->cbs->on_header_value(SELF(p)->ud, at, n);
}

static int cb_headers_complete(llhttp_t *p)
{
    /* llhttp calls this before its last verdict on the head (llhttp__after_headers_complete):
     * a request whose Transfer-Encoding does not end in chunked has no knowable length
     * (RFC 9112 6.3) and is refused only after this callback returned. The owner
     * dispatches the request here, so the verdict is given first: a refused head must not
     * reach a backend, not even over a pooled connection that would send it at once. */
    if (p->type == HTTP_REQUEST && (p->flags & F_TRANSFER_ENCODING) && !(p->flags & F_CHUNKED)) {
        SELF(p)->reason = "Invalid Transfer-Encoding";
        return -1;
    }
    mgw_http1_head_t h = {0};
    if (p->type == HTTP_REQUEST) h.method = llhttp_method_name((llhttp_method_t)p->method);
    h.major = p->http_major;
    h.minor = p->http_minor;
    h.status = p->status_code;
    h.keepalive = llhttp_should_keep_alive(p);
    h.chunked = (p->flags & F_CHUNKED) != 0;
    h.has_length = (p->flags & F_CONTENT_LENGTH) != 0;
    h.content_length = h.has_length ? p->content_length : 0;
    int r = SELF(p)->cbs->on_headers_complete(SELF(p)->ud, &h);
    if (r < 0) return -1;
    /* An upgrade request is served as a plain request; llhttp must not stop after it. */
    if (p->type == HTTP_REQUEST) p->upgrade = 0;
    return r;
}

static int cb_body(llhttp_t *p, const char *at, size_t n)
{
    return SELF(p)->cbs->on_body(SELF(p)->ud, at, n);
}

static int cb_complete(llhttp_t *p)
{
    int r = SELF(p)->cbs->on_message_complete(SELF(p)->ud);
    return r == MGW_HTTP1_PAUSE ? HPE_PAUSED : r;
}

mgw_http1_t *mgw_http1_create(int is_request, const mgw_http1_cbs_t *cbs, void *ud)
{
    mgw_http1_t *h = mgw_calloc(1, sizeof(*h));
    llhttp_settings_init(&h->settings);
    h->settings.on_message_begin = cb_begin;
    h->settings.on_url = cb_url;
    h->settings.on_header_field = cb_field;
    h->settings.on_header_value = cb_value;
    h->settings.on_headers_complete = cb_headers_complete;
    h->settings.on_body = cb_body;
    h->settings.on_message_complete = cb_complete;
    llhttp_init(&h->parser, is_request ? HTTP_REQUEST : HTTP_RESPONSE, &h->settings);
    h->cbs = cbs;
    h->ud = ud;
    return h;
}

void mgw_http1_destroy(mgw_http1_t *p)
{
    free(p);
}

int mgw_http1_execute(mgw_http1_t *p, const char *data, size_t n, size_t *consumed)
{
    llhttp_errno_t e = llhttp_execute(&p->parser, data, n);
    if (e == HPE_OK) {
        *consumed = n;
        return MGW_HTTP1_OK;
    }
    if (e == HPE_PAUSED) {
        *consumed = (size_t)(llhttp_get_error_pos(&p->parser) - data);
        return MGW_HTTP1_PAUSE;
    }
    *consumed = 0;
    return MGW_HTTP1_ERROR;
}

void mgw_http1_resume(mgw_http1_t *p)
{
    llhttp_resume(&p->parser);
}

int mgw_http1_finish(mgw_http1_t *p)
{
    return llhttp_finish(&p->parser) == HPE_OK ? MGW_HTTP1_OK : MGW_HTTP1_ERROR;
}

const char *mgw_http1_error(const mgw_http1_t *p)
{
    if (p->reason) return p->reason;
    const char *r = llhttp_get_error_reason(&p->parser);
    return r ? r : llhttp_errno_name(llhttp_get_errno(&p->parser));
}

/* tchar (RFC 9110 5.6.2): ALPHA DIGIT ! # $ % & ' * + - . ^ _ ` | ~, mapped to lower case;
 * 16 bytes a row, 0x80-0xff are none */
/* clang-format off */
const unsigned char mgw_http1_tchar[256] = {
       0,    0,    0,    0,    0,    0,    0,    0,    0,    0,    0,    0,    0,    0,    0,    0,
       0,    0,    0,    0,    0,    0,    0,    0,    0,    0,    0,    0,    0,    0,    0,    0,
       0,  '!',    0,  '#',  '$',  '%',  '&', '\'',    0,    0,  '*',  '+',    0,  '-',  '.',    0,
     '0',  '1',  '2',  '3',  '4',  '5',  '6',  '7',  '8',  '9',    0,    0,    0,    0,    0,    0,
       0,  'a',  'b',  'c',  'd',  'e',  'f',  'g',  'h',  'i',  'j',  'k',  'l',  'm',  'n',  'o',
     'p',  'q',  'r',  's',  't',  'u',  'v',  'w',  'x',  'y',  'z',    0,    0,    0,  '^',  '_',
     '`',  'a',  'b',  'c',  'd',  'e',  'f',  'g',  'h',  'i',  'j',  'k',  'l',  'm',  'n',  'o',
     'p',  'q',  'r',  's',  't',  'u',  'v',  'w',  'x',  'y',  'z',    0,  '|',    0,  '~',    0,
};
/* clang-format on */

int mgw_http1_is_token(const char *p, size_t n)
{
    if (n == 0) return 0;
    for (size_t i = 0; i < n; i++)
        if (!mgw_http1_tchar[(unsigned char)p[i]]) return 0;
    return 1;
}

int mgw_http1_is_value(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] == '\r' || p[i] == '\n' || p[i] == '\0') return 0;
    return 1;
}
