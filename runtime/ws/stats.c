/*
 * The WebSocket families of GET /metrics (README "Metrics"), counted with base/stat.h:
 * open connections, messages in and out by route, disconnects by cause, and
 * @connections calls by method and status. Every series a message or a connection
 * counts in is found once per generation on the main thread (mgw_ws_gen_prepare) and
 * kept in the API's websocket settings, so counting is an array index and an add; the
 * @connections series are found the first time a combination is seen and kept.
 */
#include <stdio.h>
#include <string.h>

#include "ws/ws_int.h"

static mgw_stat_family_t connections = {
    .name = "moongate_websocket_connections",
    .type = "gauge",
    .help = "Open WebSocket connections (their $connect succeeded).",
    .labels = {"api", "stage"},
};

static mgw_stat_family_t messages = {
    .name = "moongate_websocket_messages_total",
    .type = "counter",
    .help = "WebSocket messages: in, from clients, by the route they were routed to; out, to "
            "clients, by the route whose response or error they carry (@connections: pushed).",
    .labels = {"api", "stage", "route", "direction"},
};

static mgw_stat_family_t disconnects = {
    .name = "moongate_websocket_disconnects_total",
    .type = "counter",
    .help = "WebSocket connections that ended, by what ended them.",
    .labels = {"api", "stage", "cause"},
};

static mgw_stat_family_t calls = {
    .name = "moongate_websocket_connections_api_total",
    .type = "counter",
    .help = "@connections calls (POST, GET, DELETE) by the status answered and where they came "
            "from: the management listener, the API's endpoint, moongate.connections.",
    .labels = {"method", "status", "via"},
};

static mgw_stat_family_t remote_calls = {
    .name = "moongate_websocket_connections_remote_total",
    .type = "counter",
    .help = "@connections calls between the nodes of a cluster, by the status answered: out, "
            "this node's calls for connections of other nodes; in, other nodes' calls served "
            "here.",
    .labels = {"method", "status", "direction"},
};

/* moongate_websocket_disconnects_total's cause, by WS_CAUSE_*. */
static const char *const cause_names[WS_CAUSE__COUNT] = {
    [WS_CAUSE_CLIENT_CLOSE] = "client_close",  [WS_CAUSE_CONNECTION_LOST] = "connection_lost",
    [WS_CAUSE_IDLE_TIMEOUT] = "idle_timeout",  [WS_CAUSE_MAX_DURATION] = "max_duration",
    [WS_CAUSE_PONG_TIMEOUT] = "pong_timeout",  [WS_CAUSE_DELETED] = "deleted",
    [WS_CAUSE_PROTOCOL] = "protocol_error",    [WS_CAUSE_TOO_BIG] = "message_too_big",
    [WS_CAUSE_SEND_QUEUE] = "send_queue_full", [WS_CAUSE_SHUTDOWN] = "shutdown",
    [WS_CAUSE_API_REMOVED] = "api_removed",
};

static const char NONE[] = "(none)"; /* the route of a message no route took */

static mgw_stat_t msg_series(const mgw_api_t *api, const char *stage, const char *route, int dir)
{
    const char *v[] = {api->id, stage, route, dir == WS_DIR_IN ? "in" : "out"};
    return mgw_stat_series(&messages, v);
}

/* The routes a message can take: not the connection's own events. */
static int message_route(const mgw_ws_conf_t *conf, const mgw_route_t *rt)
{
    return rt != conf->connect_route && rt != conf->disconnect_route &&
           rt != conf->connections_route;
}

void mgw_ws_gen_prepare(mgw_gen_t *g)
{
    for (int a = 0; a < g->napis; a++) {
        const mgw_api_t *api = &g->apis[a];
        mgw_ws_conf_t *conf = api->ws;
        if (conf == NULL || conf->stats) continue;
        struct mgw_ws_stats_s *stats =
            mgw_pool_calloc(g->pool, sizeof(*stats) * (size_t)(api->nstages ? api->nstages : 1));
        for (int s = 0; s < api->nstages; s++) {
            const char *stage = api->stages[s].name;
            struct mgw_ws_stats_s *st = &stats[s];
            const char *v[] = {api->id, stage, NULL};
            st->open = mgw_stat_series(&connections, v);
            for (int c = 0; c < WS_CAUSE__COUNT; c++) {
                v[2] = cause_names[c];
                st->causes[c] = mgw_stat_series(&disconnects, v);
            }
            st->push = msg_series(api, stage, "@connections", WS_DIR_OUT);
            st->msg = mgw_pool_calloc(g->pool, sizeof(mgw_stat_t) * 2 * (size_t)(api->nroutes + 1));
            st->msg[WS_DIR_IN] = msg_series(api, stage, NONE, WS_DIR_IN);
            st->msg[WS_DIR_OUT] = msg_series(api, stage, NONE, WS_DIR_OUT);
            for (int i = 0; i < api->nroutes; i++) {
                const mgw_route_t *rt = api->routes[i];
                if (!message_route(conf, rt)) continue;
                for (int d = WS_DIR_IN; d <= WS_DIR_OUT; d++)
                    st->msg[2 * (rt->idx + 1) + d] = msg_series(api, stage, rt->key, d);
            }
        }
        conf->stats = stats;
    }
}

/* ---- @connections calls ---- */

/* The statuses an @connections call answers (endpoint.c conn_answer); any other is
 * counted as the first, 500. */
static const int statuses[] = {500, 200, 204, 400, 405, 410, 413, 429, 503};
#define NSTATUS ((int)(sizeof(statuses) / sizeof(statuses[0])))
static const char *const methods[] = {"POST", "GET", "DELETE", "other"};
static const char *const vias[] = {"management", "endpoint", "lua"};

/* Counts a call of op answered with status in series[method][status] of family f,
 * whose third label is third. Each series is found the first time it is counted (any
 * thread: the registry gives every thread the same handle, so a race stores the same
 * value twice). */
static void count(mgw_stat_t series[4][NSTATUS], mgw_stat_family_t *f, int op, int status,
                  const char *third)
{
    int m = op >= MGW_WS_CALL_POST && op <= MGW_WS_CALL_DELETE ? op : 3;
    int s = 0; /* 500 */
    for (int i = 0; i < NSTATUS; i++)
        if (statuses[i] == status) s = i;
    mgw_stat_t *slot = &series[m][s];
    mgw_stat_t h = __atomic_load_n(slot, __ATOMIC_RELAXED);
    if (h == 0) {
        char st[8];
        snprintf(st, sizeof(st), "%d", statuses[s]);
        const char *v[] = {methods[m], st, third};
        h = mgw_stat_series(f, v);
        __atomic_store_n(slot, h, __ATOMIC_RELAXED);
    }
    mgw_stat_add(h, 1);
}

static mgw_stat_t call_series[3][4][NSTATUS];
static mgw_stat_t remote_series[2][4][NSTATUS];

void mgw_ws_count_call(int via, int op, int status)
{
    if (via >= 0 && via <= 2) count(call_series[via], &calls, op, status, vias[via]);
}

void mgw__ws_count_remote(int dir, int op, int status)
{
    if (dir == WS_DIR_IN || dir == WS_DIR_OUT)
        count(remote_series[dir], &remote_calls, op, status, dir == WS_DIR_IN ? "in" : "out");
}
