/*
 * WebSocket APIs in a loaded configuration (runtime/conf/wsconf.c): api->ws with the
 * settings and their defaults, the compiled route selection expression, $connect and
 * $disconnect always present (a mock 200 when the file has none), route_response, no
 * WebSocket route in the HTTP router, and mgw_api_find_route for every API.
 */
#include "conf/wsconf.c"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf/config.h"
#include "unit.h"

static char dir[256];

static mgw_gen_t *load(const char *text)
{
    char path[512];
    snprintf(path, sizeof path, "%s/ws.lua", dir);
    FILE *f = fopen(path, "w");
    if (f == NULL) return NULL;
    fputs(text, f);
    fclose(f);
    mgw_gen_t *g = NULL;
    mgw_buf_t errors = {0};
    if (mgw_config_load(path, dir, 1, &g, &errors) != 0) printf("#   errors: %s", errors.p);
    mgw_buf_free(&errors);
    return g;
}

static const char *CONF =
    "return {\n"
    "  listen = { { port = 18080, api = 'chat' } },\n"
    "  apis = {\n"
    "    chat = {\n"
    "      protocol = 'websocket',\n"
    "      route_selection_expression = '${request.body.action}/${request.body.kind}',\n"
    "      websocket = { max_frame_size = 4096, idle_timeout = 0, ping_interval = 0.5,\n"
    "                    connections_endpoint = true },\n"
    "      stages = { prod = { throttle = { rate = 10, burst = 5 } } },\n"
    "      routes = {\n"
    "        ['$connect'] = { integration = { type = 'mock', status = 201 }, api_key_required = "
    "true },\n"
    "        ['send/text'] = { integration = { type = 'mock' }, route_response = true },\n"
    "        ['GET /x'] = { integration = { type = 'mock' } },\n"
    "      },\n"
    "    },\n"
    "    pets = {\n"
    "      stages = { prod = {} },\n"
    "      routes = {\n"
    "        ['GET /pets'] = { integration = { type = 'mock' } },\n"
    "        ['$default'] = { integration = { type = 'mock' } },\n"
    "      },\n"
    "    },\n"
    "  },\n"
    "}\n";

static void test_websocket_api(void)
{
    mgw_gen_t *g = load(CONF);
    CHECK(g != NULL);
    if (g == NULL) return;
    mgw_api_t *chat = mgw_gen_find_api(g, "chat", 4), *pets = mgw_gen_find_api(g, "pets", 4);
    CHECK(chat && pets);
    if (!chat || !pets) goto done;
    CHECK(chat->protocol == MGW_PROTO_WEBSOCKET && pets->protocol == MGW_PROTO_HTTP);
    CHECK(pets->ws == NULL);
    mgw_ws_conf_t *ws = chat->ws;
    CHECK(ws != NULL);
    if (ws == NULL) goto done;
    CHECK(ws->max_frame == 4096 && ws->max_message == 131072);
    CHECK(ws->idle_timeout_ms == 0 && ws->max_duration_ms == 7200000);
    CHECK(ws->ping_interval_ms == 500 && ws->pong_timeout_ms == 30000);
    CHECK(ws->send_queue_max == 1048576);
    /* the routes: three configured, $connections (connections_endpoint) and $disconnect
     * synthesized */
    CHECK(chat->nroutes == 5);
    const mgw_route_t *cx = mgw_api_find_route(chat, "$connections", 12);
    CHECK(cx && cx == ws->connections_route && cx->integration.type == MGW_INTEG_CONNECTIONS);
    CHECK(cx && cx->api_key_required && cx->authorizer_type == MGW_AUTHZ_NONE);
    const mgw_route_t *c = mgw_api_find_route(chat, "$connect", 8);
    const mgw_route_t *d = mgw_api_find_route(chat, "$disconnect", 11);
    CHECK(c && c == ws->connect_route && c->integration.status == 201 && c->api_key_required);
    CHECK(d && d == ws->disconnect_route && d->integration.type == MGW_INTEG_MOCK);
    CHECK(d && d->integration.status == 200 && d->idx == 4 && chat->routes[4] == d);
    CHECK(ws->default_route == NULL);
    const mgw_route_t *s = mgw_api_find_route(chat, "send/text", 9);
    CHECK(s && s->route_response && !c->route_response);
    CHECK(mgw_api_find_route(chat, "send/tex", 8) == NULL);
    CHECK(mgw_api_find_route(chat, "send/textx", 10) == NULL);
    CHECK(mgw_api_find_route(chat, "GET /x", 6) != NULL);
    /* every route has its stage bucket, the synthesized ones too */
    CHECK(chat->stages[0].route_limits && chat->stages[0].route_limits[4].bucket);
    /* websocket routes are not in the HTTP router */
    mgw_route_match_t m;
    CHECK(mgw_router_match(chat->router, mgw_method_index("GET", 3), MGW_STR("/x"), &m) != 0);
    /* the expression selects */
    char out[64];
    const char *msg = "{\"kind\":\"text\",\"action\":\"send\"}";
    int n = mgw_rsel_eval(ws->selection, msg, strlen(msg), out, sizeof out);
    CHECK(n == 9 && memcmp(out, "send/text", 9) == 0);
    /* HTTP APIs are indexed too */
    CHECK(mgw_api_find_route(pets, "GET /pets", 9) != NULL);
    CHECK(mgw_api_find_route(pets, "$default", 8) != NULL);
    CHECK(mgw_api_find_route(pets, "$connect", 8) == NULL);
    CHECK(mgw_api_find_route(pets, "", 0) == NULL);
done:
    mgw_gen_unref(g);
}

/* $connect and $disconnect from the file are kept, not duplicated. */
static void test_configured_connect_disconnect(void)
{
    mgw_gen_t *g =
        load("return { apis = { chat = { protocol = 'websocket',\n"
             "  route_selection_expression = '$request.body.a.b',\n"
             "  stages = { prod = {} },\n"
             "  routes = { ['$connect'] = { integration = { type = 'mock' } },\n"
             "             ['$disconnect'] = { integration = { type = 'mock', status = 204 } },\n"
             "             ['$default'] = { integration = { type = 'mock' } } } } } }\n");
    CHECK(g != NULL);
    if (g == NULL) return;
    mgw_api_t *a = &g->apis[0];
    CHECK(a->nroutes == 3);
    CHECK(a->ws && a->ws->disconnect_route && a->ws->disconnect_route->integration.status == 204);
    CHECK(a->ws && a->ws->default_route == mgw_api_find_route(a, "$default", 8));
    mgw_gen_unref(g);
}

int main(void)
{
    snprintf(dir, sizeof dir, "%s/mgw-wsconf-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (mkdtemp(dir) == NULL) return perror("mkdtemp"), 1;
    RUN(test_websocket_api);
    RUN(test_configured_connect_disconnect);
    char path[512];
    snprintf(path, sizeof path, "%s/ws.lua", dir);
    unlink(path);
    rmdir(dir);
    return DONE();
}
