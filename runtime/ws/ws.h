/*
 * WebSocket APIs (apis[id].protocol = "websocket"): the connection handler that takes a
 * connection over from HTTP/1 once its upgrade request passed $connect (ws/server.c),
 * the events it turns frames into (requests of the request core: $connect, each
 * message, $disconnect) and the @connections operations on a connection by id, from any
 * thread (ws/connections.c).
 */
#ifndef MGW_WS_H
#define MGW_WS_H

#include <stddef.h>
#include <stdint.h>

#include "base/mem.h"
#include "gw/req_int.h"
#include "net/mailbox.h"

/* Registers the protocol with the request core and the mailbox kinds (main.c, at
 * startup, before any worker runs). */
void mgw_ws_register(void);

/* A connection id: 16 base64url characters (12 bytes: the process's random node part,
 * the worker, a counter), unique across workers, restarts and nodes. */
#define MGW_WS_ID_LEN 16

/* ---- @connections ---- */

enum { MGW_WS_CALL_POST, MGW_WS_CALL_GET, MGW_WS_CALL_DELETE };

/* Bytes of a message @connections may push (as AWS: 128 KB). */
#define MGW_WS_POST_MAX (128 * 1024)

/*
 * One @connections operation. The caller fills in op, id, data (POST), reply_to and
 * done; mgw_ws_call runs it on the worker that owns the connection and done runs on the
 * caller's loop with status set: 200 (POST), 200 with info (GET), 204 (DELETE), 410 (no
 * such connection, or it is closing), 413 (data over MGW_WS_POST_MAX), 429 (the
 * client's send queue is full: the connection is closed with 1008); with `cluster`, a
 * connection of another node answers from that node through Redis (ws/remote.c), or
 * 503 when it cannot be reached now (README "Running a cluster").
 * done frees the call (and data, which mgw_ws_call takes over from the caller).
 */
typedef struct mgw_ws_call_s {
    int op; /* MGW_WS_CALL_* */
    char id[MGW_WS_ID_LEN + 1];
    char *data; /* POST: malloc'd message; freed with the call by done's caller (see below) */
    size_t n;
    int binary;              /* POST: a binary message (else text; text must be UTF-8: else 400) */
    int status;              /* the outcome */
    mgw_buf_t info;          /* GET: {"connectedAt":...,"identity":{...},"lastActiveAt":...} */
    mgw_mailbox_t *reply_to; /* the caller's loop's mailbox; NULL: the caller is the
                              * owning worker's own thread (then done runs before
                              * mgw_ws_call returns), or, from the main thread of a
                              * cluster node, a call of another node (ws/remote.c:
                              * done runs on the main loop through mgw_cluster_post) */
    void (*done)(struct mgw_ws_call_s *call);
    void *ud; /* the caller's */
} mgw_ws_call_t;

/*
 * Runs call on the connection's worker; from is the calling worker (NULL: the main
 * thread, whose reply_to must be set). When the connection is the caller's own worker's,
 * done runs before this returns. Every call ends in exactly one done.
 */
void mgw_ws_call(mgw_worker_t *from, mgw_ws_call_t *call);
/* The connection id of an @connections path t (".../@connections/ID", with or without a
 * query), in r's arena, or NULL. */
const char *mgw_ws_connections_path(mgw_req_t *r, mgw_str_t t);
/*
 * Serves r, an @connections request for id (POST, GET, DELETE): runs the call and
 * answers r with AWS's status when its outcome comes back through reply_to, the mailbox
 * of the caller's loop; from is the calling worker (NULL: the main thread).
 */
void mgw_ws_connections_serve(mgw_req_t *r, const char *id, mgw_worker_t *from,
                              mgw_mailbox_t *reply_to);
/* Frees call and what it holds (data, info): what done does when it is finished. */
void mgw_ws_call_free(mgw_ws_call_t *call);

/* The worker's generation changed (a reload, ctl/reload.c, on the worker): its open
 * connections move to it, or close (1001) when their API or stage is gone. */
void mgw_ws_generation_changed(mgw_worker_t *w);

/* ---- metrics (README "Metrics"; ws/stats.c) ---- */

/* Main thread, before any worker sees g (start-up and each reload, after mgw_stat_init):
 * finds the series of g's websocket APIs (connections, messages by route, disconnects by
 * cause) and keeps them in each API's websocket settings. */
void mgw_ws_gen_prepare(mgw_gen_t *g);

/* Where an @connections call came from (moongate_websocket_connections_api_total's via). */
enum { MGW_WS_VIA_MANAGEMENT, MGW_WS_VIA_ENDPOINT, MGW_WS_VIA_LUA };

/* Any thread: counts an @connections call of op (MGW_WS_CALL_*; -1: another method)
 * answered with status. */
void mgw_ws_count_call(int via, int op, int status);

/* ---- what policies see of a WebSocket event request ---- */

/* The connection id of the WebSocket event r (NULL when r is not one). */
const char *mgw_ws_event_connection(const mgw_req_t *r);
/* "TEXT" or "BINARY" for a WebSocket message event (NULL for other requests and events). */
const char *mgw_ws_event_message_type(const mgw_req_t *r);

/*
 * The Lua layer keeps values per connection (what $connect's integration or authorizer
 * set): conn_end is told the id when a connection whose event called
 * mgw_ws_keep_values ends (after its $disconnect), on the connection's worker.
 */
void mgw_ws_set_conn_end(void (*conn_end)(mgw_worker_t *w, const char *id));
void mgw_ws_keep_values(mgw_req_t *r);

#endif
