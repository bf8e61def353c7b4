#include "ws/frame.h"

#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/mem.h"
#include "base/utf8.h"

/* Decoder states. */
enum { ST_HEADER, ST_PAYLOAD, ST_CLOSED, ST_ERROR };

/* Heap message buffers up to this size are kept for the next message; larger ones go. */
#define KEEP_HEAP 4096

void mgw_ws_dec_init(mgw_ws_dec_t *d, const mgw_ws_dec_opts_t *opts)
{
    memset(d, 0, offsetof(mgw_ws_dec_t, hdr));
    d->max_frame = opts && opts->max_frame ? opts->max_frame : MGW_WS_MAX_FRAME_DEFAULT;
    d->max_message = opts && opts->max_message ? opts->max_message : MGW_WS_MAX_MESSAGE_DEFAULT;
    d->client = opts && opts->client;
    d->state = ST_HEADER;
    d->hdr_need = 2;
}

void mgw_ws_dec_set_limits(mgw_ws_dec_t *d, size_t max_frame, size_t max_message)
{
    d->max_frame = max_frame ? max_frame : MGW_WS_MAX_FRAME_DEFAULT;
    d->max_message = max_message ? max_message : MGW_WS_MAX_MESSAGE_DEFAULT;
    /* a message in progress already over the new limit: nothing more of it fits */
    if (d->max_message < d->msg_n) d->max_message = d->msg_n;
}

void mgw_ws_dec_free(mgw_ws_dec_t *d)
{
    free(d->heap);
    d->heap = NULL;
    d->cap = 0;
}

void mgw_ws_dec_trim(mgw_ws_dec_t *d)
{
    if (d->msg_op == 0 && d->heap) {
        mgw_ws_dec_free(d);
        d->msg_n = 0;
        d->msg_done = 0;
    }
}

static uint8_t *msg_buf(mgw_ws_dec_t *d)
{
    return d->heap ? d->heap : d->small;
}

/* Room for need bytes of message; need <= max_message, which bounds the growth. */
static void msg_reserve(mgw_ws_dec_t *d, size_t need)
{
    size_t cap = d->heap ? d->cap : sizeof(d->small);
    if (need <= cap) return;
    size_t ncap = cap * 2 > need ? cap * 2 : need;
    if (ncap > d->max_message) ncap = need > d->max_message ? need : d->max_message;
    uint8_t *p = mgw_malloc(ncap);
    memcpy(p, msg_buf(d), d->msg_n);
    free(d->heap);
    d->heap = p;
    d->cap = ncap;
}

int mgw_ws_close_code_valid(int code)
{
    return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
           (code >= 3000 && code <= 4999);
}

void mgw_ws_mask(uint8_t *p, size_t n, const uint8_t mask[4], size_t off)
{
    size_t i = 0;
    if (n >= 16) {
        uint8_t m8[8];
        for (int j = 0; j < 8; j++)
            m8[j] = mask[(off + (size_t)j) & 3];
        uint64_t m;
        memcpy(&m, m8, 8);
        for (; i + 8 <= n; i += 8) {
            uint64_t v;
            memcpy(&v, p + i, 8);
            v ^= m;
            memcpy(p + i, &v, 8);
        }
    }
    for (; i < n; i++)
        p[i] ^= mask[(off + i) & 3];
}

static int fail(mgw_ws_dec_t *d, int code, const char *reason)
{
    d->state = ST_ERROR;
    d->err_code = (uint16_t)code;
    d->err_reason = reason;
    return MGW_WS_EV_ERROR;
}

/* The first header byte: FIN, RSV1-3 and the opcode, checked against the message state. */
static int check_byte0(mgw_ws_dec_t *d, uint8_t b)
{
    int op = b & 0x0F;
    d->fin = (b & 0x80) != 0;
    d->opcode = (uint8_t)op;
    if (b & 0x70) return fail(d, 1002, "reserved bits set without a negotiated extension");
    if ((op > MGW_WS_OP_BINARY && op < MGW_WS_OP_CLOSE) || op > MGW_WS_OP_PONG)
        return fail(d, 1002, "unknown opcode");
    if (op >= MGW_WS_OP_CLOSE) {
        if (!d->fin) return fail(d, 1002, "fragmented control frame");
    } else if (op == MGW_WS_OP_CONT) {
        if (d->msg_op == 0)
            return fail(d, 1002, "continuation frame without a message to continue");
    } else {
        if (d->msg_op != 0) return fail(d, 1002, "new message before the fragmented one ended");
        d->msg_op = (uint8_t)op;
        d->u8_need = 0, d->u8_lo = 0x80, d->u8_hi = 0xBF;
    }
    return 0;
}

/* The second header byte: MASK and the 7-bit length, which say how long the header is. */
static int check_byte1(mgw_ws_dec_t *d, uint8_t b)
{
    int len7 = b & 0x7F;
    d->masked = (b & 0x80) != 0;
    if (!d->client && !d->masked) return fail(d, 1002, "unmasked frame from a client");
    if (d->client && d->masked) return fail(d, 1002, "masked frame from a server");
    if (d->opcode >= MGW_WS_OP_CLOSE && len7 > MGW_WS_MAX_CONTROL)
        return fail(d, 1002, "control frame payload over 125 bytes");
    d->hdr_need = (uint8_t)(2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0) + (d->masked ? 4 : 0));
    return 0;
}

/* The whole header is in: the payload length (any encoding of it, RFC 6455 5.2 does not
 * require the shortest), the masking key, and the size limits. */
static int header_done(mgw_ws_dec_t *d)
{
    const uint8_t *h = d->hdr;
    uint64_t len = h[1] & 0x7F;
    size_t k = 2;
    if (len == 126) {
        len = (uint64_t)h[2] << 8 | h[3];
        k = 4;
    } else if (len == 127) {
        len = 0;
        for (int i = 0; i < 8; i++)
            len = len << 8 | h[2 + i];
        k = 10;
        if (len >> 63) return fail(d, 1002, "64-bit payload length with the top bit set");
    }
    if (d->masked) memcpy(d->mask, h + k, 4);
    d->mask_i = 0;
    if (d->opcode < MGW_WS_OP_CLOSE) {
        if (len > d->max_frame) return fail(d, 1009, "frame larger than the maximum frame size");
        if (len > d->max_message - d->msg_n)
            return fail(d, 1009, "message larger than the maximum message size");
    } else {
        d->ctl_n = 0;
    }
    d->remain = len;
    return 0;
}

/* A close frame's payload: nothing, or a valid status code and a UTF-8 reason. */
static int close_frame(mgw_ws_dec_t *d, mgw_ws_event_t *ev)
{
    d->state = ST_CLOSED;
    ev->code = MGW_WS_CLOSE_NO_STATUS;
    if (d->ctl_n == 0) return MGW_WS_EV_CLOSE;
    if (d->ctl_n == 1) return fail(d, 1002, "close frame payload of one byte");
    ev->code = d->ctl[0] << 8 | d->ctl[1];
    if (!mgw_ws_close_code_valid(ev->code)) return fail(d, 1002, "invalid close code");
    ev->data = d->ctl + 2;
    ev->n = d->ctl_n - 2u;
    if (!mgw_utf8_valid(ev->data, ev->n)) return fail(d, 1007, "close reason is not UTF-8");
    return MGW_WS_EV_CLOSE;
}

/* The current frame's payload is complete: what it gives the caller, if anything. */
static int frame_done(mgw_ws_dec_t *d, mgw_ws_event_t *ev)
{
    d->state = ST_HEADER;
    d->hdr_n = 0;
    d->hdr_need = 2;
    switch (d->opcode) {
    case MGW_WS_OP_PING:
    case MGW_WS_OP_PONG:
        ev->data = d->ctl;
        ev->n = d->ctl_n;
        return d->opcode == MGW_WS_OP_PING ? MGW_WS_EV_PING : MGW_WS_EV_PONG;
    case MGW_WS_OP_CLOSE:
        return close_frame(d, ev);
    }
    if (!d->fin) return MGW_WS_EV_NONE;
    if (d->msg_op == MGW_WS_OP_TEXT && d->u8_need)
        return fail(d, 1007, "text message ends inside a UTF-8 sequence");
    ev->opcode = d->msg_op;
    ev->data = msg_buf(d);
    ev->n = d->msg_n;
    d->msg_op = 0;
    d->msg_done = 1;
    return MGW_WS_EV_MESSAGE;
}

/* Takes k payload bytes of the current frame from p. */
static int payload(mgw_ws_dec_t *d, const uint8_t *p, size_t k)
{
    uint8_t *dst;
    if (d->opcode >= MGW_WS_OP_CLOSE) {
        dst = d->ctl + d->ctl_n;
        d->ctl_n = (uint8_t)(d->ctl_n + k);
    } else {
        msg_reserve(d, d->msg_n + k);
        dst = msg_buf(d) + d->msg_n;
        d->msg_n += k;
    }
    memcpy(dst, p, k);
    if (d->masked) {
        mgw_ws_mask(dst, k, d->mask, d->mask_i);
        d->mask_i = (uint8_t)((d->mask_i + k) & 3);
    }
    /* Text is checked as it arrives, so that invalid UTF-8 fails at once (Autobahn 6.4). */
    if (d->opcode < MGW_WS_OP_CLOSE && d->msg_op == MGW_WS_OP_TEXT) {
        uint8_t st[3] = {d->u8_need, d->u8_lo, d->u8_hi};
        if (mgw_utf8_run(st, dst, k) != 0) return fail(d, 1007, "invalid UTF-8 in a text message");
        d->u8_need = st[0], d->u8_lo = st[1], d->u8_hi = st[2];
    }
    return 0;
}

int mgw_ws_dec_feed(mgw_ws_dec_t *d, const void *data, size_t n, size_t *used, mgw_ws_event_t *ev)
{
    const uint8_t *p = data, *end = p + n;
    int r = MGW_WS_EV_NONE;
    memset(ev, 0, sizeof(*ev));
    if (d->msg_done) {
        /* the message handed out last time is no longer the caller's */
        d->msg_done = 0;
        d->msg_n = 0;
        if (d->cap > KEEP_HEAP) mgw_ws_dec_free(d);
    }
    if (d->state == ST_CLOSED && n > 0) fail(d, 1002, "data after a close frame");
    if (d->state == ST_ERROR) {
        r = MGW_WS_EV_ERROR;
        goto out;
    }
    while (r == MGW_WS_EV_NONE) {
        if (d->state == ST_HEADER) {
            if (p == end) break;
            uint8_t b = *p++;
            d->hdr[d->hdr_n++] = b;
            if (d->hdr_n == 1)
                r = check_byte0(d, b);
            else if (d->hdr_n == 2)
                r = check_byte1(d, b);
            if (r || d->hdr_n < d->hdr_need) continue;
            if ((r = header_done(d)) != 0) continue;
            d->state = ST_PAYLOAD;
        }
        if (d->state != ST_PAYLOAD) break;
        size_t k = d->remain < (uint64_t)(end - p) ? (size_t)d->remain : (size_t)(end - p);
        if (k && (r = payload(d, p, k)) != 0) continue;
        p += k;
        d->remain -= k;
        if (d->remain == 0)
            r = frame_done(d, ev);
        else
            break;
    }
out:
    if (r == MGW_WS_EV_ERROR) {
        memset(ev, 0, sizeof(*ev));
        ev->code = d->err_code;
        ev->reason = d->err_reason;
    }
    ev->type = r;
    *used = (size_t)(p - (const uint8_t *)data);
    return r;
}

/* ---- encoders ---- */

size_t mgw_ws_header_len(uint64_t n, int masked)
{
    return (n < 126 ? 2u : n <= 0xFFFF ? 4u : 10u) + (masked ? 4u : 0u);
}

size_t mgw_ws_encode_header(uint8_t *out, int opcode, int fin, uint64_t n, const uint8_t *mask)
{
    size_t k = 2;
    out[0] = (uint8_t)((fin ? 0x80 : 0) | (opcode & 0x0F));
    if (n < 126) {
        out[1] = (uint8_t)n;
    } else if (n <= 0xFFFF) {
        out[1] = 126;
        out[2] = (uint8_t)(n >> 8), out[3] = (uint8_t)n;
        k = 4;
    } else {
        out[1] = 127;
        for (int i = 0; i < 8; i++)
            out[2 + i] = (uint8_t)(n >> (56 - 8 * i));
        k = 10;
    }
    if (mask) {
        out[1] |= 0x80;
        memcpy(out + k, mask, 4);
        k += 4;
    }
    return k;
}

static int opcode_known(int op)
{
    return (op >= MGW_WS_OP_CONT && op <= MGW_WS_OP_BINARY) ||
           (op >= MGW_WS_OP_CLOSE && op <= MGW_WS_OP_PONG);
}

long mgw_ws_encode(void *out, size_t cap, int opcode, int fin, const void *payload, size_t n,
                   const uint8_t *mask)
{
    if (!opcode_known(opcode)) return MGW_EINVAL;
    if (opcode >= MGW_WS_OP_CLOSE && (!fin || n > MGW_WS_MAX_CONTROL)) return MGW_EINVAL;
    size_t h = mgw_ws_header_len(n, mask != NULL);
    if (cap < h || cap - h < n) return MGW_ETOOBIG;
    uint8_t *o = out;
    mgw_ws_encode_header(o, opcode, fin, n, mask);
    if (n) memcpy(o + h, payload, n);
    if (mask) mgw_ws_mask(o + h, n, mask, 0);
    return (long)(h + n);
}

long mgw_ws_encode_close(void *out, size_t cap, int code, const char *reason, size_t n,
                         const uint8_t *mask)
{
    uint8_t pl[MGW_WS_MAX_CONTROL];
    size_t k = 0;
    if (code) {
        if (!mgw_ws_close_code_valid(code)) return MGW_EINVAL;
        pl[0] = (uint8_t)(code >> 8), pl[1] = (uint8_t)code;
        if (n > MGW_WS_MAX_CONTROL - 2) {
            /* cut before a continuation byte never splits a character */
            n = MGW_WS_MAX_CONTROL - 2;
            while (n > 0 && ((uint8_t)reason[n] & 0xC0) == 0x80)
                n--;
        }
        if (n) memcpy(pl + 2, reason, n);
        k = 2 + n;
    }
    return mgw_ws_encode(out, cap, MGW_WS_OP_CLOSE, 1, pl, k, mask);
}
