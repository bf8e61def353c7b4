/*
 * The WebSocket families (runtime/ws/stats.c): the series a generation's websocket APIs
 * get before they serve (every stage's connections gauge and causes, the message routes
 * in and out, "(none)" and "@connections", not the connection's own events), found
 * again by a later generation with the same names (counts go on across a reload), and
 * @connections calls by method, status and origin.
 */
#include "ws/stats.c"

#include "unit.h"

/* A websocket API "chat" with stages, and routes $connect, $disconnect, $default, echo. */
static mgw_route_t routes[4] = {
    {.key = "$connect", .idx = 0},
    {.key = "$disconnect", .idx = 1},
    {.key = "$default", .idx = 2},
    {.key = "echo", .idx = 3},
};
static mgw_route_t *route_list[4] = {&routes[0], &routes[1], &routes[2], &routes[3]};

static void make_gen(mgw_gen_t *g, mgw_api_t *api, mgw_ws_conf_t *conf, mgw_stage_t *stages,
                     const char *api_id)
{
    memset(g, 0, sizeof(*g));
    memset(api, 0, sizeof(*api));
    memset(conf, 0, sizeof(*conf));
    g->pool = mgw_pool_create(0);
    conf->connect_route = &routes[0];
    conf->disconnect_route = &routes[1];
    conf->default_route = &routes[2];
    stages[0].name = "prod";
    stages[1].name = "beta";
    api->id = api_id;
    api->protocol = MGW_PROTO_WEBSOCKET;
    api->ws = conf;
    api->stages = stages;
    api->nstages = 2;
    api->routes = route_list;
    api->nroutes = 4;
    g->apis = api;
    g->napis = 1;
}

static int rendered(const mgw_buf_t *b, const char *line)
{
    return b->n && strstr(b->p, line) != NULL;
}

static void test_prepare(void)
{
    mgw_stat_init(2);
    mgw_gen_t g;
    mgw_api_t api;
    mgw_ws_conf_t conf;
    mgw_stage_t stages[2] = {0};
    make_gen(&g, &api, &conf, stages, "chat");
    mgw_ws_gen_prepare(&g);
    CHECK(conf.stats != NULL);
    const struct mgw_ws_stats_s *prod = mgw__ws_stats(&api, &stages[0]);
    const struct mgw_ws_stats_s *beta = mgw__ws_stats(&api, &stages[1]);
    CHECK(prod->open != 0 && beta->open != 0 && prod->open != beta->open);
    for (int c = 0; c < WS_CAUSE__COUNT; c++) {
        CHECK(prod->causes[c] != 0);
        for (int d = 0; d < c; d++)
            CHECK(prod->causes[c] != prod->causes[d]);
    }
    /* the connection's own events are not message routes: no series */
    CHECK(prod->msg[2 * 1 + WS_DIR_IN] == 0 && prod->msg[2 * 2 + WS_DIR_OUT] == 0);
    CHECK(prod->msg[2 * 3 + WS_DIR_IN] != 0 && prod->msg[2 * 4 + WS_DIR_OUT] != 0);
    CHECK(prod->msg[WS_DIR_IN] != 0 && prod->msg[WS_DIR_OUT] != prod->msg[WS_DIR_IN]);

    /* counting: a message on echo in and out, one no route took, a push, a disconnect */
    mgw__ws_count_message(&api, &stages[0], &routes[3], WS_DIR_IN);
    mgw__ws_count_message(&api, &stages[0], &routes[3], WS_DIR_OUT);
    mgw__ws_count_message(&api, &stages[0], NULL, WS_DIR_IN);
    mgw_stat_add(prod->push, 1);
    mgw_stat_add(prod->open, 1);
    mgw_stat_add(prod->causes[WS_CAUSE_IDLE_TIMEOUT], 1);
    mgw_buf_t b = {0};
    mgw_stat_render(&b);
    CHECK(rendered(&b, "# TYPE moongate_websocket_connections gauge\n"
                       "moongate_websocket_connections{api=\"chat\",stage=\"prod\"} 1\n"
                       "moongate_websocket_connections{api=\"chat\",stage=\"beta\"} 0\n"));
    CHECK(rendered(&b,
                   "moongate_websocket_messages_total{api=\"chat\",stage=\"prod\",route=\"echo\","
                   "direction=\"in\"} 1\n"));
    CHECK(rendered(&b,
                   "moongate_websocket_messages_total{api=\"chat\",stage=\"prod\",route=\"echo\","
                   "direction=\"out\"} 1\n"));
    CHECK(rendered(&b,
                   "moongate_websocket_messages_total{api=\"chat\",stage=\"prod\",route=\"(none)\","
                   "direction=\"in\"} 1\n"));
    CHECK(rendered(
        &b, "moongate_websocket_messages_total{api=\"chat\",stage=\"prod\",route=\"@connections\","
            "direction=\"out\"} 1\n"));
    CHECK(rendered(&b, "moongate_websocket_disconnects_total{api=\"chat\",stage=\"prod\","
                       "cause=\"idle_timeout\"} 1\n"));
    CHECK(rendered(&b, "cause=\"api_removed\"} 0\n"));
    CHECK(!rendered(&b, "route=\"$connect\""));
    CHECK(!rendered(&b, "route=\"$disconnect\""));

    /* prepared once: a second call changes nothing */
    struct mgw_ws_stats_s *before = conf.stats;
    mgw_ws_gen_prepare(&g);
    CHECK(conf.stats == before);

    /* the next generation with the same names finds the same series (counts go on) */
    mgw_gen_t g2;
    mgw_api_t api2;
    mgw_ws_conf_t conf2;
    mgw_stage_t stages2[2] = {0};
    make_gen(&g2, &api2, &conf2, stages2, "chat");
    mgw_ws_gen_prepare(&g2);
    const struct mgw_ws_stats_s *prod2 = mgw__ws_stats(&api2, &stages2[0]);
    CHECK(prod2->open == prod->open);
    CHECK(prod2->msg[2 * 4 + WS_DIR_IN] == prod->msg[2 * 4 + WS_DIR_IN]);
    CHECK(mgw_stat_value(prod2->msg[2 * 4 + WS_DIR_IN]) == 1);

    /* an API that is not a websocket API gets nothing */
    mgw_api_t http = {.id = "plain", .stages = stages, .nstages = 2};
    mgw_gen_t g3 = {.pool = g2.pool, .apis = &http, .napis = 1};
    mgw_ws_gen_prepare(&g3);
    CHECK(http.ws == NULL);

    mgw_buf_free(&b);
    mgw_pool_destroy(g.pool);
    mgw_pool_destroy(g2.pool);
    mgw_stat_free();
}

static void test_calls(void)
{
    mgw_stat_init(2);
    memset(call_series, 0, sizeof(call_series)); /* handles of the registry freed above */
    mgw_ws_count_call(MGW_WS_VIA_MANAGEMENT, MGW_WS_CALL_POST, 200);
    mgw_ws_count_call(MGW_WS_VIA_MANAGEMENT, MGW_WS_CALL_POST, 200);
    mgw_ws_count_call(MGW_WS_VIA_LUA, MGW_WS_CALL_DELETE, 204);
    mgw_ws_count_call(MGW_WS_VIA_ENDPOINT, -1, 405);
    mgw_ws_count_call(MGW_WS_VIA_ENDPOINT, MGW_WS_CALL_GET, 299); /* not an answer: 500 */
    mgw_ws_count_call(7, MGW_WS_CALL_GET, 200);                   /* no such origin */
    /* found once, kept */
    CHECK(call_series[MGW_WS_VIA_MANAGEMENT][MGW_WS_CALL_POST][1] != 0); /* [1]: 200 */
    CHECK(mgw_stat_value(call_series[MGW_WS_VIA_MANAGEMENT][MGW_WS_CALL_POST][1]) == 2);
    mgw_buf_t b = {0};
    mgw_stat_render(&b);
    CHECK(rendered(&b, "# TYPE moongate_websocket_connections_api_total counter\n"
                       "moongate_websocket_connections_api_total{method=\"POST\",status=\"200\","
                       "via=\"management\"} 2\n"
                       "moongate_websocket_connections_api_total{method=\"DELETE\",status=\"204\","
                       "via=\"lua\"} 1\n"
                       "moongate_websocket_connections_api_total{method=\"other\",status=\"405\","
                       "via=\"endpoint\"} 1\n"
                       "moongate_websocket_connections_api_total{method=\"GET\",status=\"500\","
                       "via=\"endpoint\"} 1\n"));
    CHECK(!rendered(&b, "status=\"299\""));
    mgw_buf_free(&b);
    mgw_stat_free();
}

/* Calls between cluster nodes: out on the caller, in on the owner; 503 is an answer. */
static void test_remote(void)
{
    mgw_stat_init(2);
    memset(remote_series, 0, sizeof(remote_series));
    memset(call_series, 0, sizeof(call_series));
    mgw__ws_count_remote(WS_DIR_OUT, MGW_WS_CALL_POST, 200);
    mgw__ws_count_remote(WS_DIR_OUT, MGW_WS_CALL_POST, 503);
    mgw__ws_count_remote(WS_DIR_IN, MGW_WS_CALL_GET, 410);
    mgw__ws_count_remote(WS_DIR_IN, MGW_WS_CALL_DELETE, 299); /* not an answer: 500 */
    mgw__ws_count_remote(5, MGW_WS_CALL_GET, 200);            /* no such direction */
    mgw_ws_count_call(MGW_WS_VIA_LUA, MGW_WS_CALL_POST, 503);
    mgw_buf_t b = {0};
    mgw_stat_render(&b);
    CHECK(rendered(&b,
                   "# TYPE moongate_websocket_connections_remote_total counter\n"
                   "moongate_websocket_connections_remote_total{method=\"POST\",status=\"200\","
                   "direction=\"out\"} 1\n"
                   "moongate_websocket_connections_remote_total{method=\"POST\",status=\"503\","
                   "direction=\"out\"} 1\n"
                   "moongate_websocket_connections_remote_total{method=\"GET\",status=\"410\","
                   "direction=\"in\"} 1\n"
                   "moongate_websocket_connections_remote_total{method=\"DELETE\",status=\"500\","
                   "direction=\"in\"} 1\n"));
    CHECK(rendered(&b, "moongate_websocket_connections_api_total{method=\"POST\",status=\"503\","
                       "via=\"lua\"} 1\n"));
    mgw_buf_free(&b);
    mgw_stat_free();
}

int main(void)
{
    RUN(test_prepare);
    RUN(test_calls);
    RUN(test_remote);
    return DONE();
}
