/*
 * The HTTP/1 parser wrapper: a request head llhttp will refuse never reaches its owner's
 * on_headers_complete (where the request is dispatched), and the token table.
 */
#include "http/http1.c"

#include <stdio.h>
#include <string.h>

#include "unit.h"

typedef struct {
    int heads; /* on_headers_complete calls */
    int major, minor;
} seen_t;

static int ok_cb(void *ud)
{
    (void)ud;
    return 0;
}

static int ok_span(void *ud, const char *p, size_t n)
{
    (void)ud, (void)p, (void)n;
    return 0;
}

static int on_head(void *ud, const mgw_http1_head_t *h)
{
    seen_t *s = ud;
    s->heads++;
    s->major = h->major;
    s->minor = h->minor;
    return 0;
}

static const mgw_http1_cbs_t cbs = {
    .on_message_begin = ok_cb,
    .on_url = ok_span,
    .on_header_field = ok_span,
    .on_header_value = ok_span,
    .on_headers_complete = on_head,
    .on_body = ok_span,
    .on_message_complete = ok_cb,
};

/* Parses one request; returns the execute result and what the owner saw. */
static int parse_one(const char *req, seen_t *s)
{
    memset(s, 0, sizeof(*s));
    mgw_http1_t *p = mgw_http1_create(1, &cbs, s);
    size_t used;
    int rc = mgw_http1_execute(p, req, strlen(req), &used);
    mgw_http1_destroy(p);
    return rc;
}

/* Transfer-Encoding not ending in chunked: refused before the owner sees the head. */
static void test_unknown_coding_refused_before_head(void)
{
    static const char *refused[] = {
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        seen_t s;
        mgw_http1_t *p = mgw_http1_create(1, &cbs, &s);
        memset(&s, 0, sizeof(s));
        size_t used;
        CHECK(mgw_http1_execute(p, refused[i], strlen(refused[i]), &used) == MGW_HTTP1_ERROR);
        CHECK(s.heads == 0);
        /* "chunked, gzip" llhttp refuses in the header value already, with its reason */
        if (i < 2) CHECK_STR(mgw_http1_error(p), "Invalid Transfer-Encoding");
        mgw_http1_destroy(p);
    }
    seen_t s;
    CHECK(parse_one("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
                    &s) == MGW_HTTP1_OK);
    CHECK(s.heads == 1);
}

/* The versions llhttp passes on: the owner refuses those that are not HTTP/1.x. */
static void test_versions_reach_the_owner(void)
{
    seen_t s;
    CHECK(parse_one("GET /x\r\n\r\n", &s) == MGW_HTTP1_OK);
    CHECK(s.heads == 1 && s.major == 0 && s.minor == 9);
    CHECK(parse_one("GET /x HTTP/2.0\r\n\r\n", &s) == MGW_HTTP1_OK);
    CHECK(s.heads == 1 && s.major == 2);
}

/* The table is RFC 9110's tchar, upper case mapped to lower case. */
static void test_tchar(void)
{
    static const char tchar[] = "!#$%&'*+-.^_`|~0123456789"
                                "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    for (int c = 0; c < 256; c++) {
        int is = c != 0 && strchr(tchar, c) != NULL;
        int want = !is ? 0 : (c >= 'A' && c <= 'Z') ? c + 32 : c;
        if (mgw_http1_tchar[c] != want) {
            printf("#   byte 0x%02x: %d, want %d\n", c, mgw_http1_tchar[c], want);
            unit_failures_in_test++;
        }
    }
    CHECK(mgw_http1_is_token("X-Api-Key", 9));
    CHECK(!mgw_http1_is_token("Transfer Encoding", 17));
    CHECK(!mgw_http1_is_token("a:b", 3));
    CHECK(!mgw_http1_is_token("", 0));
}

int main(void)
{
    RUN(test_unknown_coding_refused_before_head);
    RUN(test_versions_reach_the_owner);
    RUN(test_tchar);
    return DONE();
}
