/*
 * The WebSocket frame codec: RFC 6455 section 5.7's examples byte for byte, every protocol
 * error with the close code it must give, fragments with control frames between them,
 * bytes fed one at a time, UTF-8 across fragment boundaries (Autobahn 6.x cases), the
 * frame and message size limits at the limit and one byte over, and the encoders.
 */
#include "base/utf8.h"
#include "ws/frame.c"

#include <stdio.h>
#include <string.h>

#include "unit.h"

#define MAXEV 16

/* What a decoder gave, with copies of the data (the decoder's pointers do not last). */
typedef struct {
    int n;
    int type[MAXEV], opcode[MAXEV], code[MAXEV];
    const char *reason[MAXEV];
    size_t len[MAXEV];
    uint8_t *data[MAXEV];
} evlog_t;

static void evlog_free(evlog_t *l)
{
    for (int i = 0; i < l->n; i++)
        free(l->data[i]);
    memset(l, 0, sizeof(*l));
}

/* Feeds in pieces of step bytes (0: all at once) until the input is used or an error. */
static void feed(mgw_ws_dec_t *d, const void *in, size_t n, size_t step, evlog_t *l)
{
    const uint8_t *p = in;
    size_t off = 0;
    while (off < n) {
        size_t chunk = step && n - off > step ? step : n - off, used = 0;
        mgw_ws_event_t ev;
        int r = mgw_ws_dec_feed(d, p + off, chunk, &used, &ev);
        CHECK(r == ev.type && used <= chunk);
        off += used;
        if (r == MGW_WS_EV_NONE) {
            CHECK(used == chunk);
            continue;
        }
        if (l->n < MAXEV) {
            int i = l->n++;
            l->type[i] = r, l->opcode[i] = ev.opcode, l->code[i] = ev.code;
            l->reason[i] = ev.reason, l->len[i] = ev.n;
            l->data[i] = malloc(ev.n + 1);
            if (ev.n) memcpy(l->data[i], ev.data, ev.n);
            l->data[i][ev.n] = 0;
        }
        if (r == MGW_WS_EV_ERROR) return;
    }
}

/* Decodes the whole input on a new decoder, at once and one byte at a time, and checks
 * that both give the same events; the first is left in l. */
static void decode2(const mgw_ws_dec_opts_t *o, const void *in, size_t n, evlog_t *l)
{
    mgw_ws_dec_t d1, d2;
    evlog_t l2 = {0};
    mgw_ws_dec_init(&d1, o);
    mgw_ws_dec_init(&d2, o);
    feed(&d1, in, n, 0, l);
    feed(&d2, in, n, 1, &l2);
    CHECK(l->n == l2.n);
    for (int i = 0; i < l->n && i < l2.n; i++) {
        CHECK(l->type[i] == l2.type[i] && l->code[i] == l2.code[i] && l->len[i] == l2.len[i]);
        CHECK(memcmp(l->data[i], l2.data[i], l->len[i]) == 0);
    }
    evlog_free(&l2);
    mgw_ws_dec_free(&d1);
    mgw_ws_dec_free(&d2);
}

static const mgw_ws_dec_opts_t client_opts = {.client = 1};
static const uint8_t key[4] = {0x37, 0xfa, 0x21, 0x3d};

/* Builds a masked (client) frame into out; returns its length. */
static size_t cframe(uint8_t *out, int b0, const void *pl, size_t n)
{
    size_t h = mgw_ws_encode_header(out, b0 & 0x0F, b0 & 0x80, n, key);
    out[0] = (uint8_t)b0; /* RSV bits too, for the tests that set them */
    memcpy(out + h, pl, n);
    mgw_ws_mask(out + h, n, key, 0);
    return h + n;
}

/* Expects exactly one error with code and reason from decoding in (server side). */
static void expect_error(const mgw_ws_dec_opts_t *o, const void *in, size_t n, int code,
                         const char *reason)
{
    evlog_t l = {0};
    decode2(o, in, n, &l);
    CHECK(l.n >= 1);
    if (l.n >= 1) {
        CHECK(l.type[l.n - 1] == MGW_WS_EV_ERROR);
        CHECK(l.code[l.n - 1] == code);
        CHECK_STR(l.reason[l.n - 1], reason);
    }
    evlog_free(&l);
}

/* RFC 6455 5.7: each example decodes to what it says, and the encoders give its bytes. */
static void test_rfc_examples(void)
{
    static const uint8_t hello[] = {0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f};
    static const uint8_t hello_masked[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d,
                                           0x7f, 0x9f, 0x4d, 0x51, 0x58};
    static const uint8_t frag[] = {0x01, 0x03, 0x48, 0x65, 0x6c, 0x80, 0x02, 0x6c, 0x6f};
    static const uint8_t ping[] = {0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f};
    static const uint8_t pong_masked[] = {0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d,
                                          0x7f, 0x9f, 0x4d, 0x51, 0x58};
    evlog_t l = {0};

    decode2(&client_opts, hello, sizeof(hello), &l);
    CHECK(l.n == 1 && l.type[0] == MGW_WS_EV_MESSAGE && l.opcode[0] == MGW_WS_OP_TEXT);
    CHECK(l.len[0] == 5 && memcmp(l.data[0], "Hello", 5) == 0);
    evlog_free(&l);

    decode2(NULL, hello_masked, sizeof(hello_masked), &l);
    CHECK(l.n == 1 && l.type[0] == MGW_WS_EV_MESSAGE && l.len[0] == 5);
    CHECK_STR((char *)l.data[0], "Hello");
    evlog_free(&l);

    decode2(&client_opts, frag, sizeof(frag), &l);
    CHECK(l.n == 1 && l.type[0] == MGW_WS_EV_MESSAGE && l.opcode[0] == MGW_WS_OP_TEXT);
    CHECK_STR((char *)l.data[0], "Hello");
    evlog_free(&l);

    decode2(&client_opts, ping, sizeof(ping), &l);
    CHECK(l.n == 1 && l.type[0] == MGW_WS_EV_PING);
    CHECK_STR((char *)l.data[0], "Hello");
    evlog_free(&l);

    decode2(NULL, pong_masked, sizeof(pong_masked), &l);
    CHECK(l.n == 1 && l.type[0] == MGW_WS_EV_PONG);
    CHECK_STR((char *)l.data[0], "Hello");
    evlog_free(&l);

    /* the encoders write the same bytes */
    uint8_t out[64];
    CHECK(mgw_ws_encode(out, sizeof(out), MGW_WS_OP_TEXT, 1, "Hello", 5, NULL) == 7);
    CHECK(memcmp(out, hello, 7) == 0);
    CHECK(mgw_ws_encode(out, sizeof(out), MGW_WS_OP_TEXT, 1, "Hello", 5, key) == 11);
    CHECK(memcmp(out, hello_masked, 11) == 0);
    CHECK(mgw_ws_encode(out, sizeof(out), MGW_WS_OP_TEXT, 0, "Hel", 3, NULL) == 5);
    CHECK(mgw_ws_encode(out + 5, sizeof(out) - 5, MGW_WS_OP_CONT, 1, "lo", 2, NULL) == 4);
    CHECK(memcmp(out, frag, 9) == 0);
    CHECK(mgw_ws_encode(out, sizeof(out), MGW_WS_OP_PING, 1, "Hello", 5, NULL) == 7);
    CHECK(memcmp(out, ping, 7) == 0);
    CHECK(mgw_ws_encode(out, sizeof(out), MGW_WS_OP_PONG, 1, "Hello", 5, key) == 11);
    CHECK(memcmp(out, pong_masked, 11) == 0);
}

/* RFC 6455 5.7: 256 bytes with a 16-bit length, 64 KiB with a 64-bit one. */
static void test_rfc_lengths(void)
{
    static uint8_t buf[65536 + 16], body[65536];
    for (size_t i = 0; i < sizeof(body); i++)
        body[i] = (uint8_t)(i * 7);
    mgw_ws_dec_opts_t big = {.client = 1, .max_frame = 65536, .max_message = 65536};
    evlog_t l = {0};

    CHECK(mgw_ws_encode(buf, sizeof(buf), MGW_WS_OP_BINARY, 1, body, 256, NULL) == 260);
    CHECK(buf[0] == 0x82 && buf[1] == 0x7E && buf[2] == 0x01 && buf[3] == 0x00);
    decode2(&client_opts, buf, 260, &l);
    CHECK(l.n == 1 && l.opcode[0] == MGW_WS_OP_BINARY && l.len[0] == 256);
    CHECK(memcmp(l.data[0], body, 256) == 0);
    evlog_free(&l);

    CHECK(mgw_ws_encode(buf, sizeof(buf), MGW_WS_OP_BINARY, 1, body, 65536, NULL) == 65546);
    static const uint8_t h64[] = {0x82, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0};
    CHECK(memcmp(buf, h64, 10) == 0);
    decode2(&big, buf, 65546, &l);
    CHECK(l.n == 1 && l.len[0] == 65536 && memcmp(l.data[0], body, 65536) == 0);
    evlog_free(&l);

    /* non-minimal length encodings are accepted: "Hi" with 16- and 64-bit lengths */
    static const uint8_t long16[] = {0x81, 0x7E, 0, 2, 'H', 'i'};
    static const uint8_t long64[] = {0x81, 0x7F, 0, 0, 0, 0, 0, 0, 0, 2, 'H', 'i'};
    decode2(&client_opts, long16, sizeof(long16), &l);
    CHECK(l.n == 1 && l.type[0] == MGW_WS_EV_MESSAGE && l.len[0] == 2);
    evlog_free(&l);
    decode2(&client_opts, long64, sizeof(long64), &l);
    CHECK(l.n == 1 && l.type[0] == MGW_WS_EV_MESSAGE && l.len[0] == 2);
    evlog_free(&l);

    CHECK(mgw_ws_header_len(125, 0) == 2 && mgw_ws_header_len(126, 0) == 4);
    CHECK(mgw_ws_header_len(65535, 1) == 8 && mgw_ws_header_len(65536, 1) == 14);
}

static void test_protocol_errors(void)
{
    uint8_t b[64];
    size_t n;

    n = cframe(b, 0x81 | 0x40, "x", 1);
    expect_error(NULL, b, n, 1002, "reserved bits set without a negotiated extension");
    n = cframe(b, 0x81 | 0x10, "x", 1);
    expect_error(NULL, b, n, 1002, "reserved bits set without a negotiated extension");
    for (int op = 3; op <= 0xF; op++) {
        if (op >= 8 && op <= 0xA) continue;
        n = cframe(b, 0x80 | op, "", 0);
        expect_error(NULL, b, n, 1002, "unknown opcode");
    }
    n = cframe(b, 0x09, "x", 1); /* ping without FIN */
    expect_error(NULL, b, n, 1002, "fragmented control frame");
    static const uint8_t ping126[] = {0x89, 0xFE, 0, 126};
    expect_error(NULL, ping126, sizeof(ping126), 1002, "control frame payload over 125 bytes");
    static const uint8_t unmasked[] = {0x81, 0x01, 'x'};
    expect_error(NULL, unmasked, sizeof(unmasked), 1002, "unmasked frame from a client");
    n = cframe(b, 0x81, "x", 1);
    expect_error(&client_opts, b, n, 1002, "masked frame from a server");
    n = cframe(b, 0x80, "x", 1);
    expect_error(NULL, b, n, 1002, "continuation frame without a message to continue");
    n = cframe(b, 0x01, "a", 1);
    n += cframe(b + n, 0x82, "b", 1);
    expect_error(NULL, b, n, 1002, "new message before the fragmented one ended");
    static const uint8_t top[] = {0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4};
    expect_error(NULL, top, sizeof(top), 1002, "64-bit payload length with the top bit set");
    /* a complete message, then a continuation: the message is over */
    n = cframe(b, 0x81, "a", 1);
    n += cframe(b + n, 0x80, "b", 1);
    expect_error(NULL, b, n, 1002, "continuation frame without a message to continue");
    /* nothing may follow a close frame */
    n = cframe(b, 0x88, "", 0);
    n += cframe(b + n, 0x89, "", 0);
    evlog_t l = {0};
    decode2(NULL, b, n, &l);
    CHECK(l.n == 2 && l.type[0] == MGW_WS_EV_CLOSE && l.code[0] == 1005);
    CHECK(l.type[1] == MGW_WS_EV_ERROR && l.code[1] == 1002);
    CHECK_STR(l.reason[1], "data after a close frame");
    evlog_free(&l);

    /* the decoder stays failed */
    mgw_ws_dec_t d;
    mgw_ws_event_t ev;
    size_t used;
    mgw_ws_dec_init(&d, NULL);
    CHECK(mgw_ws_dec_feed(&d, unmasked, sizeof(unmasked), &used, &ev) == MGW_WS_EV_ERROR);
    n = cframe(b, 0x81, "ok", 2);
    CHECK(mgw_ws_dec_feed(&d, b, n, &used, &ev) == MGW_WS_EV_ERROR && ev.code == 1002);
    CHECK(used == 0);
    CHECK(mgw_ws_dec_feed(&d, b, 0, &used, &ev) == MGW_WS_EV_ERROR);
    mgw_ws_dec_free(&d);
}

static void test_close_frames(void)
{
    uint8_t b[200], pl[130];
    evlog_t l = {0};
    size_t n = cframe(b, 0x88, "", 0);
    decode2(NULL, b, n, &l);
    CHECK(l.n == 1 && l.type[0] == MGW_WS_EV_CLOSE && l.code[0] == 1005 && l.len[0] == 0);
    evlog_free(&l);

    n = cframe(b, 0x88,
               "\x03\xe8"
               "bye",
               5);
    decode2(NULL, b, n, &l);
    CHECK(l.n == 1 && l.type[0] == MGW_WS_EV_CLOSE && l.code[0] == 1000);
    CHECK(l.len[0] == 3 && memcmp(l.data[0], "bye", 3) == 0);
    evlog_free(&l);

    n = cframe(b, 0x88, "\x03", 1);
    expect_error(NULL, b, n, 1002, "close frame payload of one byte");

    static const int bad[] = {0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        pl[0] = (uint8_t)(bad[i] >> 8), pl[1] = (uint8_t)bad[i];
        n = cframe(b, 0x88, pl, 2);
        expect_error(NULL, b, n, 1002, "invalid close code");
        CHECK(!mgw_ws_close_code_valid(bad[i]));
    }
    static const int good[] = {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010,
                               1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        pl[0] = (uint8_t)(good[i] >> 8), pl[1] = (uint8_t)good[i];
        n = cframe(b, 0x88, pl, 2);
        decode2(NULL, b, n, &l);
        CHECK(l.n == 1 && l.type[0] == MGW_WS_EV_CLOSE && l.code[0] == good[i]);
        evlog_free(&l);
    }
    n = cframe(b, 0x88, "\x03\xe8\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80", 16);
    expect_error(NULL, b, n, 1007, "close reason is not UTF-8");

    /* a 125-byte close payload is the largest */
    memset(pl, 'r', sizeof(pl));
    pl[0] = 0x03, pl[1] = 0xe8;
    n = cframe(b, 0x88, pl, 125);
    decode2(NULL, b, n, &l);
    CHECK(l.n == 1 && l.type[0] == MGW_WS_EV_CLOSE && l.len[0] == 123);
    evlog_free(&l);
}

/* A fragmented message with a ping, a pong and another ping between its fragments. */
static void test_fragments_with_control(void)
{
    uint8_t b[256];
    size_t n = 0;
    n += cframe(b + n, 0x02, "one ", 4);
    n += cframe(b + n, 0x89, "p1", 2);
    n += cframe(b + n, 0x00, "two ", 4);
    n += cframe(b + n, 0x8A, "", 0);
    n += cframe(b + n, 0x89, "p2", 2);
    n += cframe(b + n, 0x00, "", 0);
    n += cframe(b + n, 0x80, "three", 5);
    n += cframe(b + n, 0x81, "next", 4);
    n += cframe(b + n, 0x88, "\x03\xe9", 2);
    evlog_t l = {0};
    decode2(NULL, b, n, &l);
    CHECK(l.n == 6);
    CHECK(l.type[0] == MGW_WS_EV_PING && l.len[0] == 2 && memcmp(l.data[0], "p1", 2) == 0);
    CHECK(l.type[1] == MGW_WS_EV_PONG && l.len[1] == 0);
    CHECK(l.type[2] == MGW_WS_EV_PING && memcmp(l.data[2], "p2", 2) == 0);
    CHECK(l.type[3] == MGW_WS_EV_MESSAGE && l.opcode[3] == MGW_WS_OP_BINARY);
    CHECK_STR((char *)l.data[3], "one two three");
    CHECK(l.type[4] == MGW_WS_EV_MESSAGE && l.opcode[4] == MGW_WS_OP_TEXT);
    CHECK_STR((char *)l.data[4], "next");
    CHECK(l.type[5] == MGW_WS_EV_CLOSE && l.code[5] == 1001);
    evlog_free(&l);

    /* every split point of the same stream in two pieces gives the same events */
    int same = 1;
    for (size_t cut = 1; cut < n; cut++) {
        mgw_ws_dec_t d;
        evlog_t a = {0};
        mgw_ws_dec_init(&d, NULL);
        feed(&d, b, cut, 0, &a);
        feed(&d, b + cut, n - cut, 0, &a);
        if (a.n != 6 || a.type[3] != MGW_WS_EV_MESSAGE ||
            strcmp((char *)a.data[3], "one two three"))
            same = 0;
        evlog_free(&a);
        mgw_ws_dec_free(&d);
    }
    CHECK(same);
}

/* Text whose UTF-8 sequences are split between fragments, and between feeds. */
static void test_utf8_across_fragments(void)
{
    /* "κόσμε" split inside its characters: ce | ba e1 | bd b9 cf 83 ce | bc ce b5 */
    uint8_t b[128];
    size_t n = 0;
    n += cframe(b + n, 0x01, "\xce", 1);
    n += cframe(b + n, 0x00, "\xba\xe1", 2);
    n += cframe(b + n, 0x89, "", 0);
    n += cframe(b + n, 0x00, "\xbd\xb9\xcf\x83\xce", 5);
    n += cframe(b + n, 0x80, "\xbc\xce\xb5", 3);
    evlog_t l = {0};
    decode2(NULL, b, n, &l);
    CHECK(l.n == 2 && l.type[0] == MGW_WS_EV_PING && l.type[1] == MGW_WS_EV_MESSAGE);
    CHECK_STR((char *)l.data[1], "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5");
    evlog_free(&l);

    /* a message that ends inside a character */
    n = cframe(b, 0x01, "\xce\xba", 2);
    n += cframe(b + n, 0x80, "\xe1\xbd", 2);
    expect_error(NULL, b, n, 1007, "text message ends inside a UTF-8 sequence");

    /* a surrogate made of two fragments */
    n = cframe(b, 0x01, "ok\xed", 3);
    n += cframe(b + n, 0x80, "\xa0\x80", 2);
    expect_error(NULL, b, n, 1007, "invalid UTF-8 in a text message");

    /* binary messages are not UTF-8 checked */
    n = cframe(b, 0x82, "\xff\xfe\xed\xa0\x80", 5);
    decode2(NULL, b, n, &l);
    CHECK(l.n == 1 && l.type[0] == MGW_WS_EV_MESSAGE && l.len[0] == 5);
    evlog_free(&l);
}

/* Invalid UTF-8 fails as soon as it arrives, before the frame is complete (Autobahn 6.4). */
static void test_utf8_fail_fast(void)
{
    uint8_t b[64];
    size_t n = cframe(b, 0x81,
                      "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xf4\x90\x80\x80"
                      "edited",
                      21);
    mgw_ws_dec_t d;
    mgw_ws_event_t ev;
    size_t used;
    mgw_ws_dec_init(&d, NULL);
    /* header (6 bytes) and the text up to the F4 90: the 90 is the first bad byte */
    CHECK(mgw_ws_dec_feed(&d, b, 6 + 12, &used, &ev) == MGW_WS_EV_NONE && used == 18);
    CHECK(mgw_ws_dec_feed(&d, b + 18, 1, &used, &ev) == MGW_WS_EV_ERROR);
    CHECK(ev.code == 1007);
    (void)n;
    mgw_ws_dec_free(&d);
}

/* Autobahn 6.x: representative valid and invalid texts, as one frame and one byte per
 * fragment. */
static void test_autobahn_utf8(void)
{
    static const struct {
        const char *s;
        size_t n;
        int ok;
    } cases[] = {
#define C(lit, ok) {lit, sizeof(lit) - 1, ok}
        C("Hello-\xc2\xb5@\xc3\x9f\xc3\xb6\xc3\xa4\xc3\xbc\xc3\xa0\xc3\xa1-UTF-8!!", 1), /* 6.2 */
        C("\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5", 1),                            /* 6.5.1 */
        C("\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80"
          "edited",
          0),         /* 6.3.1 */
        C("\x00", 1), /* 6.7.1 */
        C("\xc2\x80", 1),
        C("\xe0\xa0\x80", 1),
        C("\xf0\x90\x80\x80", 1), /* 6.7.2-4 */
        C("\x7f", 1),
        C("\xdf\xbf", 1),
        C("\xef\xbf\xbf", 1),     /* 6.9.1-3 */
        C("\xf4\x8f\xbf\xbf", 1), /* 6.9.4 */
        C("\xf4\x90\x80\x80", 0), /* 6.10.3 */
        C("\xf7\xbf\xbf\xbf", 0),
        C("\xf8\x88\x80\x80\x80", 0), /* 6.8 */
        C("\xfc\x84\x80\x80\x80\x80", 0),
        C("\xed\x9f\xbf", 1),
        C("\xee\x80\x80", 1),
        C("\xef\xbf\xbd", 1), /* 6.11.1-3 */
        C("\x80", 0),
        C("\xbf", 0),
        C("\x80\xbf\x80", 0), /* 6.12 */
        C("\xc0 ", 0),
        C("\xe0\x80", 0),
        C("\xdf", 0),
        C("\xef\xbf", 0), /* 6.13-14 */
        C("\xfe", 0),
        C("\xff", 0),
        C("\xfe\xfe\xff\xff", 0), /* 6.17 */
        C("\xc0\xaf", 0),
        C("\xe0\x80\xaf", 0),
        C("\xf0\x80\x80\xaf", 0), /* 6.18 */
        C("\xc1\xbf", 0),
        C("\xe0\x9f\xbf", 0),
        C("\xf0\x8f\xbf\xbf", 0), /* 6.19 */
        C("\xc0\x80", 0),
        C("\xe0\x80\x80", 0), /* 6.20 */
        C("\xed\xa0\x80", 0),
        C("\xed\xad\xbf", 0),
        C("\xed\xbf\xbf", 0), /* 6.20 */
        C("\xed\xa0\x80\xed\xb0\x80", 0),
        C("\xed\xaf\xbf\xed\xbf\xbf", 0), /* 6.21 */
        C("\xef\xbf\xbe", 1),
        C("\xef\xb7\x90", 1),
        C("\xf4\x8f\xbf\xbe", 1), /* 6.22-23 */
#undef C
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        CHECK(mgw_utf8_valid(cases[i].s, cases[i].n) == cases[i].ok);
        if (mgw_utf8_valid(cases[i].s, cases[i].n) != cases[i].ok) printf("#   case %zu\n", i);
        uint8_t b[256];
        size_t n = cframe(b, 0x81, cases[i].s, cases[i].n), k = 0;
        /* 6.x.x also send each text one byte per fragment */
        uint8_t f[1024];
        for (size_t j = 0; j < cases[i].n; j++)
            k += cframe(f + k, (j == 0 ? 0x01 : 0x00) | (j + 1 == cases[i].n ? 0x80 : 0),
                        cases[i].s + j, 1);
        for (int twice = 0; twice < 2; twice++) {
            evlog_t l = {0};
            decode2(NULL, twice ? f : b, twice ? k : n, &l);
            CHECK(l.n == 1);
            if (cases[i].ok) {
                CHECK(l.type[0] == MGW_WS_EV_MESSAGE && l.len[0] == cases[i].n);
            } else {
                CHECK(l.type[0] == MGW_WS_EV_ERROR && l.code[0] == 1007);
            }
            evlog_free(&l);
        }
    }
}

static void test_size_limits(void)
{
    static uint8_t b[4 * 32800 + 64], body[32769];
    memset(body, 'a', sizeof(body));
    evlog_t l = {0};
    size_t n;

    /* default frame limit: 32768 bytes pass, 32769 do not */
    n = cframe(b, 0x82, body, 32768);
    decode2(NULL, b, n, &l);
    CHECK(l.n == 1 && l.type[0] == MGW_WS_EV_MESSAGE && l.len[0] == 32768);
    evlog_free(&l);
    n = cframe(b, 0x82, body, 32769);
    expect_error(NULL, b, n, 1009, "frame larger than the maximum frame size");

    /* default message limit: 4 frames of 32 KiB are 128 KiB; one byte more is over */
    n = 0;
    for (int i = 0; i < 4; i++)
        n += cframe(b + n, i == 0 ? 0x01 : i == 3 ? 0x80 : 0x00, body, 32768);
    decode2(NULL, b, n, &l);
    CHECK(l.n == 1 && l.type[0] == MGW_WS_EV_MESSAGE && l.len[0] == 131072);
    evlog_free(&l);
    n = 0;
    for (int i = 0; i < 4; i++)
        n += cframe(b + n, i == 0 ? 0x01 : 0x00, body, 32768);
    n += cframe(b + n, 0x80, body, 1);
    expect_error(NULL, b, n, 1009, "message larger than the maximum message size");

    /* configured limits; control frames are not data frames */
    mgw_ws_dec_opts_t o = {.max_frame = 10, .max_message = 15};
    n = cframe(b, 0x81, body, 10);
    decode2(&o, b, n, &l);
    CHECK(l.n == 1 && l.type[0] == MGW_WS_EV_MESSAGE);
    evlog_free(&l);
    n = cframe(b, 0x81, body, 11);
    expect_error(&o, b, n, 1009, "frame larger than the maximum frame size");
    n = cframe(b, 0x01, body, 10);
    n += cframe(b + n, 0x89, body, 100);
    n += cframe(b + n, 0x80, body, 5);
    decode2(&o, b, n, &l);
    CHECK(l.n == 2 && l.type[1] == MGW_WS_EV_MESSAGE && l.len[1] == 15);
    evlog_free(&l);
    n = cframe(b, 0x01, body, 10);
    n += cframe(b + n, 0x80, body, 6);
    expect_error(&o, b, n, 1009, "message larger than the maximum message size");

    /* the limit is checked from the header, before the payload arrives */
    mgw_ws_dec_t d;
    mgw_ws_event_t ev;
    size_t used;
    mgw_ws_dec_init(&d, NULL);
    static const uint8_t huge[] = {0x82, 0xFF, 0, 0, 0, 1, 0, 0, 0, 0, 1, 2, 3, 4};
    CHECK(mgw_ws_dec_feed(&d, huge, sizeof(huge), &used, &ev) == MGW_WS_EV_ERROR);
    CHECK(ev.code == 1009 && d.heap == NULL);
    mgw_ws_dec_free(&d);
}

/* Small messages stay inside the decoder; big ones grow a buffer that is let go after. */
static void test_memory(void)
{
    static uint8_t b[20000], body[9000];
    memset(body, 'z', sizeof(body));
    mgw_ws_dec_t d;
    evlog_t l = {0};
    mgw_ws_dec_init(&d, NULL);
    size_t n = cframe(b, 0x81, body, MGW_WS_DEC_INLINE);
    feed(&d, b, n, 0, &l);
    CHECK(l.n == 1 && d.heap == NULL);
    evlog_free(&l);

    n = cframe(b, 0x81, body, 2000);
    feed(&d, b, n, 7, &l);
    CHECK(l.n == 1 && l.len[0] == 2000 && d.heap != NULL && d.cap >= 2000 && d.cap <= 4096);
    evlog_free(&l);
    mgw_ws_dec_trim(&d);
    CHECK(d.heap == NULL);

    /* a heap buffer over 4 KiB is freed when the next bytes come */
    n = cframe(b, 0x82, body, 9000);
    n += cframe(b + n, 0x82, "x", 1);
    feed(&d, b, n, 0, &l);
    CHECK(l.n == 2 && l.len[0] == 9000 && l.len[1] == 1 && d.heap == NULL);
    evlog_free(&l);

    /* growth follows the bytes that came, not the length the header announced */
    n = cframe(b, 0x82, body, 9000);
    mgw_ws_event_t ev;
    size_t used;
    CHECK(mgw_ws_dec_feed(&d, b, 8 + 500, &used, &ev) == MGW_WS_EV_NONE);
    CHECK(d.cap < 9000);
    mgw_ws_dec_trim(&d); /* a message in progress keeps its buffer */
    CHECK(d.heap != NULL);
    mgw_ws_dec_free(&d);
}

static void test_encoders(void)
{
    uint8_t out[300], big[200];
    memset(big, 'q', sizeof(big));
    CHECK(mgw_ws_encode(out, sizeof(out), MGW_WS_OP_PING, 1, big, 126, NULL) == MGW_EINVAL);
    CHECK(mgw_ws_encode(out, sizeof(out), MGW_WS_OP_PING, 0, big, 1, NULL) == MGW_EINVAL);
    CHECK(mgw_ws_encode(out, sizeof(out), 3, 1, big, 1, NULL) == MGW_EINVAL);
    CHECK(mgw_ws_encode(out, 6, MGW_WS_OP_TEXT, 1, big, 5, NULL) == MGW_ETOOBIG);
    CHECK(mgw_ws_encode(out, 7, MGW_WS_OP_TEXT, 1, big, 5, NULL) == 7);
    CHECK(mgw_ws_encode(out, 1, MGW_WS_OP_TEXT, 1, big, 0, NULL) == MGW_ETOOBIG);

    /* close frames */
    CHECK(mgw_ws_encode_close(out, sizeof(out), 0, NULL, 0, NULL) == 2);
    CHECK(out[0] == 0x88 && out[1] == 0);
    CHECK(mgw_ws_encode_close(out, sizeof(out), 1000, "bye", 3, NULL) == 7);
    CHECK(memcmp(out,
                 "\x88\x05\x03\xe8"
                 "bye",
                 7) == 0);
    CHECK(mgw_ws_encode_close(out, sizeof(out), 1005, "", 0, NULL) == MGW_EINVAL);
    CHECK(mgw_ws_encode_close(out, sizeof(out), 1009, (const char *)big, 200, NULL) == 127);
    /* a long reason is cut at a character boundary: "é" x 100 is 200 bytes -> 122 */
    char accents[200];
    for (int i = 0; i < 100; i++)
        accents[2 * i] = (char)0xc3, accents[2 * i + 1] = (char)0xa9;
    long k = mgw_ws_encode_close(out, sizeof(out), 1000, accents, 200, key);
    CHECK(k == 2 + 4 + 2 + 122);

    /* a masked close decodes on the server side */
    evlog_t l = {0};
    decode2(NULL, out, (size_t)k, &l);
    CHECK(l.n == 1 && l.type[0] == MGW_WS_EV_CLOSE && l.code[0] == 1000 && l.len[0] == 122);
    evlog_free(&l);

    /* mask in place is its own inverse at any offset */
    uint8_t m[100], orig[100];
    for (int i = 0; i < 100; i++)
        m[i] = orig[i] = (uint8_t)i;
    mgw_ws_mask(m, 100, key, 3);
    CHECK(m[0] == (0 ^ key[3]) && m[1] == (1 ^ key[0]));
    mgw_ws_mask(m, 37, key, 3);
    mgw_ws_mask(m + 37, 63, key, 3 + 37);
    CHECK(memcmp(m, orig, 100) == 0);
}

int main(void)
{
    RUN(test_rfc_examples);
    RUN(test_rfc_lengths);
    RUN(test_protocol_errors);
    RUN(test_close_frames);
    RUN(test_fragments_with_control);
    RUN(test_utf8_across_fragments);
    RUN(test_utf8_fail_fast);
    RUN(test_autobahn_utf8);
    RUN(test_size_limits);
    RUN(test_memory);
    RUN(test_encoders);
    return DONE();
}
