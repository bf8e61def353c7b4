/*
 * The WebSocket frame codec (RFC 6455 section 5): a streaming decoder that turns bytes,
 * fed in pieces of any size, into whole messages and control frames, and encoders that
 * write frames into caller memory. Pure: no I/O, no event loop, no allocation except the
 * decoder's message buffer, which grows only as a message needs it.
 *
 * Every protocol error the decoder finds ends the decoding with the close code the
 * endpoint must send (1002, 1007 or 1009) and a short reason; the caller sends the close
 * frame and closes the connection.
 */
#ifndef MGW_WS_FRAME_H
#define MGW_WS_FRAME_H

#include <stddef.h>
#include <stdint.h>

/* Opcodes (RFC 6455 5.2). */
enum {
    MGW_WS_OP_CONT = 0x0,
    MGW_WS_OP_TEXT = 0x1,
    MGW_WS_OP_BINARY = 0x2,
    MGW_WS_OP_CLOSE = 0x8,
    MGW_WS_OP_PING = 0x9,
    MGW_WS_OP_PONG = 0xA,
};

/* Close status codes (RFC 6455 7.4.1) the gateway sends or reports. */
enum {
    MGW_WS_CLOSE_NORMAL = 1000,
    MGW_WS_CLOSE_GOING_AWAY = 1001,
    MGW_WS_CLOSE_PROTOCOL = 1002,
    MGW_WS_CLOSE_UNSUPPORTED = 1003,
    MGW_WS_CLOSE_NO_STATUS = 1005, /* reported for a close frame without a code; never sent */
    MGW_WS_CLOSE_ABNORMAL = 1006,  /* reported when the connection ended without a close */
    MGW_WS_CLOSE_INVALID_DATA = 1007,
    MGW_WS_CLOSE_POLICY = 1008,
    MGW_WS_CLOSE_TOO_BIG = 1009,
    MGW_WS_CLOSE_INTERNAL = 1011,
};

#define MGW_WS_MAX_FRAME_DEFAULT (32 * 1024)
#define MGW_WS_MAX_MESSAGE_DEFAULT (128 * 1024)
#define MGW_WS_MAX_CONTROL 125 /* payload bytes of a control frame */
#define MGW_WS_MAX_HEADER 14   /* bytes of the longest frame header (64-bit length, mask) */
/* Messages up to this many bytes are reassembled inside the decoder, without the heap. */
#define MGW_WS_DEC_INLINE 128

/* What mgw_ws_dec_feed found. */
enum {
    MGW_WS_EV_NONE = 0, /* every byte was used; nothing complete yet */
    MGW_WS_EV_MESSAGE,  /* a whole text or binary message (fragments joined) */
    MGW_WS_EV_PING,
    MGW_WS_EV_PONG,
    MGW_WS_EV_CLOSE, /* the peer's close frame; no frame may follow it */
    MGW_WS_EV_ERROR, /* a protocol error: send a close with code and reason, then close */
};

typedef struct {
    int type;   /* MGW_WS_EV_* */
    int opcode; /* MESSAGE: MGW_WS_OP_TEXT or MGW_WS_OP_BINARY */
    /* MESSAGE: the message (text is valid UTF-8); PING/PONG: the payload; CLOSE: the
     * reason (valid UTF-8, may be empty). Owned by the decoder, valid until its next call. */
    const uint8_t *data;
    size_t n;
    /* CLOSE: the peer's status code, MGW_WS_CLOSE_NO_STATUS when it gave none;
     * ERROR: the code to send (1002, 1007 or 1009). */
    int code;
    const char *reason; /* ERROR: why, a static string */
} mgw_ws_event_t;

typedef struct {
    size_t max_frame;   /* largest data frame payload; 0 = MGW_WS_MAX_FRAME_DEFAULT */
    size_t max_message; /* largest message (fragments together); 0 = ..._MESSAGE_DEFAULT */
    /* 1 to decode what a server sends (a client's side: frames must be unmasked);
     * 0 for the server's side, where every frame must be masked. */
    int client;
} mgw_ws_dec_opts_t;

/*
 * A decoder. The struct is public only so that a connection embeds it and costs no extra
 * allocation; its fields are private to frame.c.
 */
typedef struct {
    uint8_t *heap; /* message buffer when a message outgrows small[] */
    size_t cap;    /* bytes at heap (0 while small[] is used) */
    size_t msg_n;  /* bytes of the message in progress */
    size_t max_frame, max_message;
    uint64_t remain; /* payload bytes of the current frame still to come */
    const char *err_reason;
    uint16_t err_code;
    uint8_t state; /* private states in frame.c */
    uint8_t hdr_n, hdr_need;
    uint8_t opcode, fin; /* of the current frame */
    uint8_t msg_op;      /* opcode of the message in progress, 0 when none */
    uint8_t client, masked, mask_i;
    uint8_t msg_done;              /* a message was handed out: drop it at the next feed */
    uint8_t u8_need, u8_lo, u8_hi; /* UTF-8 validation of a text message, across frames */
    uint8_t ctl_n;
    uint8_t mask[4];
    uint8_t hdr[MGW_WS_MAX_HEADER];
    uint8_t ctl[MGW_WS_MAX_CONTROL];
    uint8_t small[MGW_WS_DEC_INLINE];
} mgw_ws_dec_t;

/* Starts a decoder with opts (NULL: server side, default limits). */
void mgw_ws_dec_init(mgw_ws_dec_t *d, const mgw_ws_dec_opts_t *opts);
/* Changes the limits of a decoder in use (a reload): they apply from the next frame. */
void mgw_ws_dec_set_limits(mgw_ws_dec_t *d, size_t max_frame, size_t max_message);
/* Releases the decoder's heap buffer; the decoder must be initialized again to be used. */
void mgw_ws_dec_free(mgw_ws_dec_t *d);
/* Releases the heap buffer when no message is in progress (an idle connection). */
void mgw_ws_dec_trim(mgw_ws_dec_t *d);

/*
 * Feeds n bytes. Stops at the first complete message or control frame, or after the last
 * byte: *used says how many bytes it took, and the caller feeds the rest again (after it
 * has handled *ev, whose data the next call may overwrite). Returns ev->type. After
 * MGW_WS_EV_ERROR every call returns the same error; after MGW_WS_EV_CLOSE any further
 * byte is an error (1002).
 */
int mgw_ws_dec_feed(mgw_ws_dec_t *d, const void *data, size_t n, size_t *used, mgw_ws_event_t *ev);

/* 1 when code may be sent in a close frame (1000-1003, 1007-1014, 3000-4999). */
int mgw_ws_close_code_valid(int code);

/*
 * Encoders. mask is NULL for a server's frames (unmasked), or the 4-byte masking key of a
 * client's frame (the caller picks it, from a strong random source outside tests).
 */

/* Bytes of a frame header for a payload of n bytes: 2, 4 or 10, plus 4 when masked. */
size_t mgw_ws_header_len(uint64_t n, int masked);
/* Writes a frame header into out (MGW_WS_MAX_HEADER bytes of room); returns its length.
 * The caller sends the payload after it (masked, if mask is given). */
size_t mgw_ws_encode_header(uint8_t *out, int opcode, int fin, uint64_t n, const uint8_t *mask);
/*
 * Writes a whole frame (header and payload, masked when mask is given) into out, cap
 * bytes. Returns the frame's length, MGW_ETOOBIG when it does not fit, or MGW_EINVAL for
 * an unknown opcode or a control frame that is fragmented or over 125 bytes.
 */
long mgw_ws_encode(void *out, size_t cap, int opcode, int fin, const void *payload, size_t n,
                   const uint8_t *mask);
/*
 * Writes a close frame: code (0 for none: an empty payload) and reason (n bytes of UTF-8,
 * cut to fit 125 bytes at a character boundary). Returns as mgw_ws_encode, and
 * MGW_EINVAL for a code mgw_ws_close_code_valid refuses.
 */
long mgw_ws_encode_close(void *out, size_t cap, int code, const char *reason, size_t n,
                         const uint8_t *mask);
/* Masks (or unmasks) n bytes in place; off is the payload offset of the first byte. */
void mgw_ws_mask(uint8_t *p, size_t n, const uint8_t mask[4], size_t off);

#endif
