/*
 * WebSocket connections by id: ids unique across workers, restarts and nodes, each
 * worker's registry of its connections (touched only by that worker's thread), and the
 * @connections operations (push, info, delete), which reach the owning worker through
 * its mailbox and come back to the caller's loop through the caller's.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/utf8.h"
#include "base/crypto.h"
#include "base/log.h"
#include "net/worker.h"
#include "ws/ws_int.h"

/* ---- ids: 6 bytes of the process (random at start), the worker, a 5-byte counter ---- */

static uint8_t node[6];
static pthread_once_t node_once = PTHREAD_ONCE_INIT;

static void node_init(void)
{
    if (mgw_random_bytes(node, sizeof(node)) != 0) {
        uint64_t t = uv_hrtime() ^ (uint64_t)getpid() << 32;
        memcpy(node, &t, sizeof(node));
    }
}

/* The worker's registry: a hash table of its connections and a list of them. */
typedef struct {
    ws_conn_t **tab;
    size_t cap, n;
    ws_conn_t *first;
    uint64_t counter;
} registry_t;

static _Thread_local registry_t reg;

void mgw__ws_new_id(mgw_worker_t *w, char out[MGW_WS_ID_LEN + 1])
{
    pthread_once(&node_once, node_init);
    uint8_t b[12];
    memcpy(b, node, 6);
    b[6] = (uint8_t)w->id;
    uint64_t n = ++reg.counter;
    for (int i = 0; i < 5; i++)
        b[7 + i] = (uint8_t)(n >> (8 * (4 - i)));
    mgw_base64(b, sizeof(b), out, 1);
}

/* The 12 bytes of id into b; 0, or -1 when id is not 16 base64url characters. */
static int decode(const char *id, uint8_t b[12])
{
    static const char alpha[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    if (strlen(id) != MGW_WS_ID_LEN) return -1;
    for (int g = 0; g < 4; g++) {
        uint32_t v = 0;
        for (int i = 0; i < 4; i++) {
            const char *at = strchr(alpha, id[4 * g + i]);
            if (at == NULL || *at == '\0') return -1;
            v = v << 6 | (uint32_t)(at - alpha);
        }
        b[3 * g] = (uint8_t)(v >> 16);
        b[3 * g + 1] = (uint8_t)(v >> 8);
        b[3 * g + 2] = (uint8_t)v;
    }
    return 0;
}

/* The index of the worker that owns id (0 .. count-1), or -1 for an id of another process. */
static int owner_of(const char *id)
{
    uint8_t b[12];
    if (decode(id, b) != 0) return -1;
    pthread_once(&node_once, node_init);
    if (memcmp(b, node, 6) != 0) return -1;
    int worker = b[6] - 1;
    return worker >= 0 && worker < mgw_worker_count() ? worker : -1;
}

/* 1 when id has the shape of a connection id and names another node than this one. */
static int of_other_node(const char *id)
{
    uint8_t b[12];
    if (decode(id, b) != 0) return 0;
    pthread_once(&node_once, node_init);
    return memcmp(b, node, 6) != 0;
}

void mgw__ws_node_tag(char out[MGW_WS_TAG_LEN + 1])
{
    pthread_once(&node_once, node_init);
    char id[MGW_WS_ID_LEN + 1];
    uint8_t b[12] = {0};
    memcpy(b, node, 6);
    mgw_base64(b, sizeof(b), id, 1);
    memcpy(out, id, MGW_WS_TAG_LEN); /* 6 bytes are the first 8 characters */
    out[MGW_WS_TAG_LEN] = '\0';
}

/* ---- the registry ---- */

static size_t hash(const char *id)
{
    uint64_t h = 1469598103934665603ULL;
    for (int i = 0; i < MGW_WS_ID_LEN; i++)
        h = (h ^ (uint8_t)id[i]) * 1099511628211ULL;
    return (size_t)h;
}

static void grow(void)
{
    size_t cap = reg.cap ? reg.cap * 2 : 256;
    ws_conn_t **tab = mgw_calloc(cap, sizeof(*tab));
    for (size_t i = 0; i < reg.cap; i++) {
        for (ws_conn_t *ws = reg.tab[i], *next; ws; ws = next) {
            next = ws->hnext;
            size_t k = hash(ws->id) & (cap - 1);
            ws->hnext = tab[k];
            tab[k] = ws;
        }
    }
    free(reg.tab);
    reg.tab = tab;
    reg.cap = cap;
}

void mgw__ws_register(ws_conn_t *ws)
{
    if (reg.n + 1 > reg.cap / 4 * 3) grow(); /* load factor <= 3/4 */
    size_t k = hash(ws->id) & (reg.cap - 1);
    ws->hnext = reg.tab[k];
    reg.tab[k] = ws;
    reg.n++;
    ws->next = reg.first;
    ws->prev = NULL;
    if (reg.first) reg.first->prev = ws;
    reg.first = ws;
    ws->registered = 1;
}

void mgw__ws_unregister(ws_conn_t *ws)
{
    if (!ws->registered) return;
    ws->registered = 0;
    ws_conn_t **p = &reg.tab[hash(ws->id) & (reg.cap - 1)];
    while (*p && *p != ws)
        p = &(*p)->hnext;
    if (*p) *p = ws->hnext;
    reg.n--;
    if (ws->prev)
        ws->prev->next = ws->next;
    else
        reg.first = ws->next;
    if (ws->next) ws->next->prev = ws->prev;
    if (reg.n == 0) {
        /* an idle worker keeps no table */
        free(reg.tab);
        reg.tab = NULL;
        reg.cap = 0;
    }
}

ws_conn_t *mgw__ws_find(mgw_worker_t *w, const char *id)
{
    (void)w; /* the registry is the calling worker thread's */
    if (reg.cap == 0) return NULL;
    for (ws_conn_t *ws = reg.tab[hash(id) & (reg.cap - 1)]; ws; ws = ws->hnext)
        if (memcmp(ws->id, id, MGW_WS_ID_LEN) == 0) return ws;
    return NULL;
}

ws_conn_t *mgw__ws_first(mgw_worker_t *w)
{
    (void)w;
    return reg.first;
}

/* ---- the Lua layer's per-connection values ---- */

static void (*conn_end_cb)(mgw_worker_t *w, const char *id);

void mgw_ws_set_conn_end(void (*conn_end)(mgw_worker_t *w, const char *id))
{
    conn_end_cb = conn_end;
}

void mgw__ws_conn_end(ws_conn_t *ws)
{
    if (conn_end_cb) conn_end_cb(ws->w, ws->id);
}

/* ---- @connections ---- */

void mgw_ws_call_free(mgw_ws_call_t *call)
{
    free(call->data);
    mgw_buf_free(&call->info);
    free(call);
}

/* Runs call on the worker that owns its connection (this thread). */
static void run(mgw_worker_t *w, mgw_ws_call_t *call)
{
    ws_conn_t *ws = mgw__ws_find(w, call->id);
    if (ws == NULL || !ws->connected || ws->gone || ws->closing) {
        call->status = 410;
        return;
    }
    switch (call->op) {
    case MGW_WS_CALL_POST: {
        if (call->n > MGW_WS_POST_MAX) {
            call->status = 413;
            break;
        }
        if (!call->binary && !mgw_utf8_valid(call->data, call->n)) {
            call->status = 400;
            break;
        }
        int rc =
            mgw__ws_send(ws, call->binary ? MGW_WS_OP_BINARY : MGW_WS_OP_TEXT, call->data, call->n);
        call->status = rc == 0 ? 200 : rc == -2 ? 429 : 410;
        if (rc == 0) {
            const struct mgw_ws_stats_s *st = mgw__ws_stats(ws->api, ws->stage);
            if (st) mgw_stat_add(st->push, 1);
        }
        break;
    }
    case MGW_WS_CALL_GET:
        call->info.n = 0;
        mgw__ws_info(ws, &call->info);
        call->status = 200;
        break;
    case MGW_WS_CALL_DELETE:
        mgw__ws_close(ws, MGW_WS_CLOSE_NORMAL, "", WS_CAUSE_DELETED);
        call->status = 204;
        break;
    default:
        call->status = 400;
        break;
    }
}

static void done_posted(void *ud)
{
    mgw_ws_call_t *call = ud;
    call->done(call);
}

/* Sends call back to its caller's loop, where done runs: through the caller's mailbox,
 * or for a call of another node (reply_to NULL, made on the main thread by remote.c)
 * through the cluster's post to the main loop. */
void mgw__ws_reply(mgw_ws_call_t *call)
{
    if (call->reply_to == NULL) {
        if (mgw_cluster_post(done_posted, call) != 0) mgw_ws_call_free(call); /* shutting down */
        return;
    }
    mgw_msg_t *m = mgw_calloc(1, sizeof(*m));
    m->type = MGW_MSG_WS_REPLY;
    m->data = call;
    if (mgw_mailbox_send(call->reply_to, m) != 0) {
        free(m); /* the caller's loop is gone: nobody waits */
        mgw_ws_call_free(call);
    }
}

/* MGW_MSG_WS_CALL, on the owning worker. */
static void call_run(void *owner, mgw_msg_t *msg)
{
    mgw_ws_call_t *call = msg->data;
    free(msg);
    run(owner, call);
    mgw__ws_reply(call);
}

/* The owning worker shut down before the call ran: the connection is gone. */
static void call_drop(mgw_msg_t *msg)
{
    mgw_ws_call_t *call = msg->data;
    free(msg);
    call->status = 410;
    mgw__ws_reply(call);
}

/* MGW_MSG_WS_REPLY, on the caller's loop. */
static void reply_run(void *owner, mgw_msg_t *msg)
{
    (void)owner;
    mgw_ws_call_t *call = msg->data;
    free(msg);
    call->done(call);
}

static void reply_drop(mgw_msg_t *msg)
{
    mgw_ws_call_free(msg->data);
    free(msg);
}

static const mgw_msg_kind_t call_kind = {"ws-call", call_run, call_drop};
static const mgw_msg_kind_t reply_kind = {"ws-reply", reply_run, reply_drop};

void mgw_ws_call(mgw_worker_t *from, mgw_ws_call_t *call)
{
    int owner = owner_of(call->id);
    if (owner < 0 && call->reply_to && mgw_cluster_enabled() && of_other_node(call->id)) {
        mgw__ws_remote_call(from, call); /* remote.c: through Redis to its node */
        return;
    }
    if (owner >= 0 && call->op == MGW_WS_CALL_POST && call->n > MGW_WS_POST_MAX) {
        call->status = 413;
        call->done(call);
        return;
    }
    if (owner < 0) {
        call->status = 410;
        call->done(call);
        return;
    }
    if (from && from->id - 1 == owner) {
        run(from, call);
        call->done(call);
        return;
    }
    mgw_msg_t *m = mgw_calloc(1, sizeof(*m));
    m->type = MGW_MSG_WS_CALL;
    m->data = call;
    if ((call->reply_to == NULL && (from || !mgw_cluster_enabled())) ||
        mgw_worker_send(owner, m) != 0) {
        free(m);
        call->status = 410;
        call->done(call);
    }
}

void mgw_ws_register(void)
{
    mgw_mailbox_kind(MGW_MSG_WS_CALL, &call_kind);
    mgw_mailbox_kind(MGW_MSG_WS_REPLY, &reply_kind);
    mgw_cluster_part_register(&mgw__ws_cluster_part); /* runs only with `cluster` */
    mgw__ws_server_register();
}
