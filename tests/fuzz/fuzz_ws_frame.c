/*
 * The WebSocket frame decoder (runtime/ws/frame.c): the input's first byte picks the side
 * (server or client) and the limits, the second the sizes of the pieces the rest is fed
 * in. Properties: the events do not depend on how the bytes are cut; every event keeps the
 * decoder's promises (messages within the limits, text and close reasons valid UTF-8,
 * close codes valid, errors 1002/1007/1009 with a reason, and an error stays an error); a
 * message encoded again in fragments decodes to the same bytes.
 */
#include <stdint.h>
#include <string.h>

#include "fuzz.h"
#include "base/err.h"
#include "base/utf8.h"
#include "ws/frame.h"

typedef struct {
    uint64_t hash;
    int count, last;
} trace_t;

static void trace_add(trace_t *t, const mgw_ws_event_t *ev)
{
    uint64_t h = t->hash ^ (uint64_t)(ev->type * 131 + ev->opcode * 7 + ev->code);
    h *= 1099511628211ull;
    for (size_t i = 0; i < ev->n; i++)
        h = (h ^ ev->data[i]) * 1099511628211ull;
    t->hash = h ^ ev->n;
    t->count++;
    t->last = ev->type;
}

/* A message encoded again as fragments of step bytes, as the decoder's peer would send
 * it, decodes to the same message. */
static void reencode(const mgw_ws_dec_opts_t *o, const mgw_ws_event_t *m, size_t step)
{
    static uint8_t buf[1 << 19];
    static const uint8_t key[4] = {0xa1, 0x02, 0xf3, 0x74};
    size_t maxf = o->max_frame ? o->max_frame : MGW_WS_MAX_FRAME_DEFAULT;
    if (step > maxf) step = maxf;
    if ((m->n + step - 1) / step * (step + MGW_WS_MAX_HEADER) + 16 > sizeof(buf)) return;
    size_t n = 0, off = 0;
    do {
        size_t k = m->n - off < step ? m->n - off : step;
        long r = mgw_ws_encode(buf + n, sizeof(buf) - n, off == 0 ? m->opcode : MGW_WS_OP_CONT,
                               off + k == m->n, m->data + off, k, o->client ? NULL : key);
        FUZZ_CHECK(r > 0);
        n += (size_t)r;
        off += k;
    } while (off < m->n);
    mgw_ws_dec_t d;
    mgw_ws_dec_init(&d, o);
    mgw_ws_event_t ev;
    size_t used;
    FUZZ_CHECK(mgw_ws_dec_feed(&d, buf, n, &used, &ev) == MGW_WS_EV_MESSAGE);
    FUZZ_CHECK(used == n && ev.opcode == m->opcode && ev.n == m->n);
    FUZZ_CHECK(m->n == 0 || memcmp(ev.data, m->data, m->n) == 0);
    mgw_ws_dec_free(&d);
}

static void check_event(const mgw_ws_dec_opts_t *o, const mgw_ws_event_t *ev)
{
    switch (ev->type) {
    case MGW_WS_EV_MESSAGE:
        FUZZ_CHECK(ev->opcode == MGW_WS_OP_TEXT || ev->opcode == MGW_WS_OP_BINARY);
        FUZZ_CHECK(ev->n <= (o->max_message ? o->max_message : MGW_WS_MAX_MESSAGE_DEFAULT));
        FUZZ_CHECK(ev->n == 0 || ev->data != NULL);
        if (ev->opcode == MGW_WS_OP_TEXT) FUZZ_CHECK(mgw_utf8_valid(ev->data, ev->n));
        break;
    case MGW_WS_EV_PING:
    case MGW_WS_EV_PONG:
        FUZZ_CHECK(ev->n <= MGW_WS_MAX_CONTROL);
        break;
    case MGW_WS_EV_CLOSE:
        FUZZ_CHECK(ev->code == MGW_WS_CLOSE_NO_STATUS || mgw_ws_close_code_valid(ev->code));
        FUZZ_CHECK(ev->n <= MGW_WS_MAX_CONTROL - 2);
        FUZZ_CHECK(mgw_utf8_valid(ev->data, ev->n));
        break;
    case MGW_WS_EV_ERROR:
        FUZZ_CHECK(ev->code == 1002 || ev->code == 1007 || ev->code == 1009);
        FUZZ_CHECK(ev->reason != NULL && ev->reason[0] != '\0');
        break;
    default:
        FUZZ_CHECK(0);
    }
}

/* Feeds data in pieces whose sizes come from seed (0: all at once), tracing the events. */
static void run(const mgw_ws_dec_opts_t *o, const uint8_t *data, size_t size, unsigned seed,
                trace_t *t, int do_reencode)
{
    mgw_ws_dec_t d;
    mgw_ws_dec_init(&d, o);
    size_t off = 0;
    unsigned x = seed | 1;
    while (off < size) {
        size_t chunk = size - off;
        if (seed) {
            x = x * 1103515245u + 12345u;
            size_t k = 1 + (x >> 16) % (seed % 97 + 1);
            if (k < chunk) chunk = k;
        }
        size_t used = 0;
        mgw_ws_event_t ev;
        int r = mgw_ws_dec_feed(&d, data + off, chunk, &used, &ev);
        FUZZ_CHECK(r == ev.type && used <= chunk);
        off += used;
        if (r == MGW_WS_EV_NONE) {
            FUZZ_CHECK(used == chunk);
            continue;
        }
        check_event(o, &ev);
        trace_add(t, &ev);
        if (r == MGW_WS_EV_MESSAGE && do_reencode) reencode(o, &ev, seed % 200 + 1);
        if (r == MGW_WS_EV_ERROR) {
            /* an error stays */
            FUZZ_CHECK(mgw_ws_dec_feed(&d, data, size, &used, &ev) == MGW_WS_EV_ERROR);
            FUZZ_CHECK(used == 0);
            break;
        }
    }
    mgw_ws_dec_trim(&d);
    mgw_ws_dec_free(&d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2) return 0;
    mgw_ws_dec_opts_t o = {.client = data[0] & 1};
    if (data[0] & 2) o.max_frame = 1 + (data[0] >> 2) * 4;
    if (data[0] & 0x80) o.max_message = 1 + (data[0] & 0x7c) * 8;
    unsigned seed = data[1];
    trace_t whole = {0}, pieces = {0}, bytes = {0};
    run(&o, data + 2, size - 2, 0, &whole, 1);
    run(&o, data + 2, size - 2, seed, &pieces, 0);
    run(&o, data + 2, size - 2, 1, &bytes, 0);
    FUZZ_CHECK(whole.count == pieces.count && whole.hash == pieces.hash);
    FUZZ_CHECK(whole.count == bytes.count && whole.hash == bytes.hash);

    /* the encoders on the input as a payload */
    static uint8_t out[70000];
    size_t n = size - 2 < 65600 ? size - 2 : 65600;
    long r = mgw_ws_encode(out, sizeof(out), MGW_WS_OP_BINARY, 1, data + 2, n, NULL);
    FUZZ_CHECK(r == (long)(mgw_ws_header_len(n, 0) + n));
    static const uint8_t key[4] = {1, 0x80, 0xff, 0x3c};
    r = mgw_ws_encode_close(out, sizeof(out), 1000 + (data[1] & 15), (const char *)data + 2, n,
                            (data[0] & 1) ? NULL : key);
    if (mgw_ws_close_code_valid(1000 + (data[1] & 15))) {
        FUZZ_CHECK(r >= 4 && r <= 2 + 4 + MGW_WS_MAX_CONTROL);
        /* a valid reason stays valid when it is cut */
        if (mgw_utf8_valid(data + 2, n)) {
            size_t h = (data[0] & 1) ? 2 : 6;
            if (!(data[0] & 1)) mgw_ws_mask(out + h, (size_t)r - h, key, 0);
            FUZZ_CHECK(mgw_utf8_valid(out + h + 2, (size_t)r - h - 2));
        }
    } else {
        FUZZ_CHECK(r == MGW_EINVAL);
    }
    return 0;
}
