/*
 * What ws/server.c (the connection handler and its events) and ws/connections.c (ids,
 * the worker's registry, @connections) share. Nothing outside runtime/ws includes this.
 */
#ifndef MGW_WS_INT_H
#define MGW_WS_INT_H

#include "net/conn.h"
#include "ws/frame.h"
#include "ws/ws.h"

typedef struct ws_conn_s ws_conn_t;

/* Event types ($context.eventType). */
enum { WS_EV_CONNECT, WS_EV_MESSAGE, WS_EV_DISCONNECT };

/* A WebSocket event under way: the request's r->proto_data. */
typedef struct {
    ws_conn_t *ws;
    int type;      /* WS_EV_* */
    uint64_t seq;  /* MESSAGE: the message's number on its connection */
    mgw_buf_t out; /* what goes back to the client (route_response) */
    unsigned accept : 1, error : 1;
    unsigned binary : 1; /* MESSAGE: a binary message (else text) */
} ws_event_t;

/*
 * A WebSocket connection, from its upgrade request to the end of its $disconnect: it
 * outlives the client connection (c) while $disconnect runs.
 */
struct ws_conn_s {
    mgw_conn_t *c; /* NULL once the client connection is gone */
    mgw_worker_t *w;
    mgw_ws_dec_t dec;
    char id[MGW_WS_ID_LEN + 1];
    char peer[64];
    char *user_agent, *api_key; /* of the upgrade request (malloc'd), or NULL */
    mgw_hdr_t ua_hdr;           /* user-agent, for the events' identity */
    mgw_pool_t *tls_pool;       /* taken over from c: tls_host, client_cert */
    const char *tls_host;
    const mgw_client_cert_t *client_cert;
    int tls, listen_idx;
    mgw_wgen_t *wgen; /* the generation events run on (one request held) */
    mgw_api_t *api;   /* in wgen's generation */
    mgw_stage_t *stage;
    uint64_t connected_at_ms;         /* wall clock */
    uint64_t last_active_ms;          /* wall clock: the last message either way */
    uint64_t start_loop, active_loop; /* loop times: connected, the last message */
    uint64_t ping_due;                /* loop time of the next ping, or of the pong's deadline */
    uint64_t nmsg;                    /* messages received */
    mgw_req_t *busy;                  /* the message event under way, or NULL */
    mgw_req_t *disc;                  /* the $disconnect event under way, or NULL */
    int close_code;                   /* $disconnect's disconnectStatusCode */
    char close_reason[128];
    ws_conn_t *hnext;       /* the worker's registry (connections.c) */
    ws_conn_t *next, *prev; /* the worker's list */
    /* connected: $connect succeeded; closing: our close frame went out; gone: the client
     * connection ended ($disconnect started); pinged: a ping waits for its pong */
    unsigned connected : 1, closing : 1, gone : 1, pinged : 1, keep_values : 1, registered : 1,
        disc_pending : 1; /* disc_pending: $disconnect starts next turn */
};

/* ---- connections.c ---- */

/* A new connection id for worker w. */
void mgw__ws_new_id(mgw_worker_t *w, char out[MGW_WS_ID_LEN + 1]);
/* The registry of worker w: add, remove, find. */
void mgw__ws_register(ws_conn_t *ws);
void mgw__ws_unregister(ws_conn_t *ws);
ws_conn_t *mgw__ws_find(mgw_worker_t *w, const char *id);
/* Every connection of w (for reloads), first to last; next is safe against removal. */
ws_conn_t *mgw__ws_first(mgw_worker_t *w);
/* The conn_end callback of the Lua layer, or NULL. */
void mgw__ws_conn_end(ws_conn_t *ws);

/* ---- server.c ---- */

/* Makes ws/server.c the request core's handler of websocket APIs. */
void mgw__ws_server_register(void);
/* The integration of a WebSocket API's "$connections" route (endpoint.c). */
extern const mgw_integ_ops_t mgw__ws_connections_integration;

/* Sends a message (MGW_WS_OP_TEXT or _BINARY); returns 0, or -1 when the connection is
 * closing or gone, or -2 when the client's send queue is full (the connection is then
 * closed with 1008). */
int mgw__ws_send(ws_conn_t *ws, int opcode, const void *p, size_t n);
/* Closes the connection with code and reason (our close frame, then the socket). */
void mgw__ws_close(ws_conn_t *ws, int code, const char *reason);
/* The connection's {"connectedAt":..,"identity":{..},"lastActiveAt":..} into out. */
void mgw__ws_info(const ws_conn_t *ws, mgw_buf_t *out);

#endif
