/*
 * The HTTP/1 response serializer: the status line with its reason phrase, the response's
 * headers then the Date and the gateway's, in the order given, the framing headers, and
 * chunk lines; bodyless statuses; and that a head never outgrows its computed size.
 */
#include "http/serialize.c"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"

static const char date[] = "Sun, 06 Nov 1994 08:49:37 GMT";

/* Serializes h into a buffer of exactly mgw_http1_head_size bytes (plus a canary). */
static char *head(const mgw_http1_resp_t *h, size_t *used)
{
    size_t cap = mgw_http1_head_size(h);
    char *p = malloc(cap + 1);
    p[cap] = '#';
    mgw_sbuf_t b = {p, 0};
    mgw_http1_head(&b, h);
    CHECK(b.n <= cap);
    CHECK(p[cap] == '#');
    p[b.n < cap ? b.n : cap] = '\0';
    if (used) *used = b.n;
    return p;
}

static void test_reasons(void)
{
    CHECK_STR(mgw_http1_reason(200), "OK");
    CHECK_STR(mgw_http1_reason(401), "Unauthorized");
    CHECK_STR(mgw_http1_reason(409), "Conflict");
    CHECK_STR(mgw_http1_reason(422), "Unprocessable Content");
    CHECK_STR(mgw_http1_reason(431), "Request Header Fields Too Large");
    CHECK_STR(mgw_http1_reason(299), "Unknown");
    CHECK(mgw_http1_bodyless(100) && mgw_http1_bodyless(204) && mgw_http1_bodyless(304));
    CHECK(!mgw_http1_bodyless(200) && !mgw_http1_bodyless(205) && !mgw_http1_bodyless(404));
}

static void test_head_with_length(void)
{
    mgw_hdr_t hdrs[] = {{MGW_STR("content-type"), MGW_STR("application/json")},
                        {MGW_STR("X-Upper"), MGW_STR("kept as given")}};
    mgw_hdr_t more[] = {{MGW_STR("apigw-requestid"), MGW_STR("abc")},
                        {MGW_STR("retry-after"), MGW_STR("3")}};
    mgw_http1_resp_t h = {.status = 429,
                          .hdrs = hdrs,
                          .nhdrs = 2,
                          .more = more,
                          .nmore = 2,
                          .date = date,
                          .content_length = 17};
    char *s = head(&h, NULL);
    CHECK_STR(s, "HTTP/1.1 429 Too Many Requests\r\n"
                 "content-type: application/json\r\nX-Upper: kept as given\r\n"
                 "date: Sun, 06 Nov 1994 08:49:37 GMT\r\n"
                 "apigw-requestid: abc\r\nretry-after: 3\r\n"
                 "content-length: 17\r\n\r\n");
    free(s);
}

static void test_framing(void)
{
    mgw_http1_resp_t h = {.status = 200, .date = date, .content_length = -1, .chunked = 1};
    char *s = head(&h, NULL);
    CHECK_STR(s, "HTTP/1.1 200 OK\r\ndate: Sun, 06 Nov 1994 08:49:37 GMT\r\n"
                 "transfer-encoding: chunked\r\n\r\n");
    free(s);
    /* a length wins over chunked; close wins over keep-alive */
    h = (mgw_http1_resp_t){.status = 200,
                           .date = date,
                           .content_length = 0,
                           .chunked = 1,
                           .close = 1,
                           .keep_alive = 1};
    s = head(&h, NULL);
    CHECK_STR(s, "HTTP/1.1 200 OK\r\ndate: Sun, 06 Nov 1994 08:49:37 GMT\r\ncontent-length: 0\r\n"
                 "connection: close\r\n\r\n");
    free(s);
    h = (mgw_http1_resp_t){.status = 304, .date = date, .content_length = -1, .keep_alive = 1};
    s = head(&h, NULL);
    CHECK_STR(s, "HTTP/1.1 304 Not Modified\r\ndate: Sun, 06 Nov 1994 08:49:37 GMT\r\n"
                 "connection: keep-alive\r\n\r\n");
    free(s);
    /* an unknown status, the largest length: still within the computed size */
    h = (mgw_http1_resp_t){
        .status = 999, .date = date, .content_length = INT64_MAX, .close = 1, .keep_alive = 1};
    size_t n;
    s = head(&h, &n);
    CHECK(strncmp(s, "HTTP/1.1 999 Unknown\r\n", 22) == 0);
    CHECK(strstr(s, "content-length: 9223372036854775807\r\n") != NULL);
    free(s);
}

static void test_chunk_lines(void)
{
    char line[18];
    int n = mgw_http1_chunk_line(line, 1);
    CHECK(n == 3 && memcmp(line, "1\r\n", 3) == 0);
    n = mgw_http1_chunk_line(line, 0x1f40);
    CHECK(n == 6 && memcmp(line, "1f40\r\n", 6) == 0);
    n = mgw_http1_chunk_line(line, 65536);
    CHECK(n == 7 && memcmp(line, "10000\r\n", 7) == 0);
    n = mgw_http1_chunk_line(line, SIZE_MAX);
    CHECK(n == 18 && memcmp(line, "ffffffffffffffff\r\n", 18) == 0);
    CHECK(strcmp(MGW_HTTP1_LAST_CHUNK, "0\r\n\r\n") == 0);
}

int main(void)
{
    RUN(test_reasons);
    RUN(test_head_with_length);
    RUN(test_framing);
    RUN(test_chunk_lines);
    return DONE();
}
