/*
 * What ws/server.c (the connection handler and its events) and ws/connections.c (ids,
 * the worker's registry, @connections) share. Nothing outside runtime/ws includes this.
 */
#ifndef MGW_WS_INT_H
#define MGW_WS_INT_H

#include "base/stat.h"
#include "cluster/cluster.h"
#include "net/conn.h"
#include "ws/frame.h"
#include "ws/ws.h"

typedef struct ws_conn_s ws_conn_t;

/* Why a connection ended: moongate_websocket_disconnects_total's cause (stats.c has the
 * names). The first that happens is the one counted, as for the close code. */
enum {
    WS_CAUSE_CLIENT_CLOSE,    /* the client's close frame */
    WS_CAUSE_CONNECTION_LOST, /* no close frame: reset, end of stream, a failed write */
    WS_CAUSE_IDLE_TIMEOUT,
    WS_CAUSE_MAX_DURATION,
    WS_CAUSE_PONG_TIMEOUT,
    WS_CAUSE_DELETED,     /* DELETE @connections, moongate.connections.close */
    WS_CAUSE_PROTOCOL,    /* a frame or message the decoder refused (1002, 1007) */
    WS_CAUSE_TOO_BIG,     /* a frame or message over the limits (1009) */
    WS_CAUSE_SEND_QUEUE,  /* the client did not read (1008) */
    WS_CAUSE_SHUTDOWN,    /* the gateway stops */
    WS_CAUSE_API_REMOVED, /* a reload removed the connection's API or stage */
    WS_CAUSE__COUNT
};

/* Directions of moongate_websocket_messages_total. */
enum { WS_DIR_IN, WS_DIR_OUT };

/*
 * The series of one stage of a websocket API in one generation (stats.c), made on the
 * main thread before the generation serves: api->ws->stats[stage index].
 */
struct mgw_ws_stats_s {
    mgw_stat_t open;                    /* moongate_websocket_connections */
    mgw_stat_t causes[WS_CAUSE__COUNT]; /* moongate_websocket_disconnects_total */
    mgw_stat_t push;                    /* messages out by @connections (route "@connections") */
    mgw_stat_t *msg; /* messages: [2 * (route idx + 1) + WS_DIR_*], 0: no route */
};

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
    int cause;                        /* WS_CAUSE_*, with close_code */
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

/* Characters of a node's tag: the first of each of its connection ids (its 6 node bytes). */
#define MGW_WS_TAG_LEN 8
/* This node's tag. */
void mgw__ws_node_tag(char out[MGW_WS_TAG_LEN + 1]);
/* Sends call, whose outcome is known, back to its caller's loop, where done runs. */
void mgw__ws_reply(mgw_ws_call_t *call);

/* ---- remote.c (a cluster's other nodes) ---- */

/* Runs call, for a connection of another node, on that node through Redis; done runs on
 * the caller's loop (synchronously for the answers known at once: 413, Redis down). */
void mgw__ws_remote_call(mgw_worker_t *from, mgw_ws_call_t *call);
/* The cluster part of @connections (mgw_ws_register registers it). */
extern const mgw_cluster_part_t mgw__ws_cluster_part;

/* ---- stats.c ---- */

/* Counts a call for a connection of another node (dir WS_DIR_OUT, on the caller's node)
 * or of another node for one of this node's (WS_DIR_IN), answered with status. */
void mgw__ws_count_remote(int dir, int op, int status);

/* The series of r's API and stage (a WebSocket event's, or a connection's), or NULL when
 * its generation has none (nothing is counted). */
static inline const struct mgw_ws_stats_s *mgw__ws_stats(const mgw_api_t *api,
                                                         const mgw_stage_t *stage)
{
    return api->ws->stats ? &api->ws->stats[stage - api->stages] : NULL;
}

/* Counts a message of route rt (NULL: none matched) in direction dir (WS_DIR_*). */
static inline void mgw__ws_count_message(const mgw_api_t *api, const mgw_stage_t *stage,
                                         const mgw_route_t *rt, int dir)
{
    const struct mgw_ws_stats_s *st = mgw__ws_stats(api, stage);
    if (st) mgw_stat_add(st->msg[2 * (rt ? rt->idx + 1 : 0) + dir], 1);
}

/* ---- server.c ---- */

/* Makes ws/server.c the request core's handler of websocket APIs. */
void mgw__ws_server_register(void);
/* The integration of a WebSocket API's "$connections" route (endpoint.c). */
extern const mgw_integ_ops_t mgw__ws_connections_integration;

/* Sends a message (MGW_WS_OP_TEXT or _BINARY); returns 0, or -1 when the connection is
 * closing or gone, or -2 when the client's send queue is full (the connection is then
 * closed with 1008). */
int mgw__ws_send(ws_conn_t *ws, int opcode, const void *p, size_t n);
/* Closes the connection with code and reason (our close frame, then the socket); cause
 * (WS_CAUSE_*) is what moongate_websocket_disconnects_total counts. */
void mgw__ws_close(ws_conn_t *ws, int code, const char *reason, int cause);
/* The connection's {"connectedAt":..,"identity":{..},"lastActiveAt":..} into out. */
void mgw__ws_info(const ws_conn_t *ws, mgw_buf_t *out);

#endif
