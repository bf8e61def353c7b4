/*
 * Reload, worker side and main-thread checks: a worker swaps generations at request
 * boundaries (a request keeps the generation it started with, which is released only
 * when its last request ends); a new generation that changes the listeners, the
 * management listener or the number of workers is refused with a clear reason.
 */
#include "ctl/reload.c"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "unit.h"

static char dir[] = "/tmp/mgw-test-reload-XXXXXX";

/* Loads a configuration: listener port, workers, management port (0: none). */
static mgw_gen_t *load(int port, int workers, int mport)
{
    char path[512], text[1024];
    snprintf(path, sizeof path, "%s/g%d-%d-%d.lua", dir, port, workers, mport);
    snprintf(text, sizeof text,
             "return { workers = %d, listen = { { port = %d } }, %s apis = { a = { stages = "
             "{ ['$default'] = {} }, routes = { ['$default'] = { integration = { type = 'mock' } } "
             "} } } }",
             workers, port, mport ? "management = { port = 9999 }," : "");
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
    mgw_buf_t errors = {0};
    mgw_gen_t *g = NULL;
    if (mgw_config_load(path, dir, 0, &g, &errors) != 0) printf("#   %s", errors.p);
    mgw_buf_free(&errors);
    return g;
}

static int refs(mgw_gen_t *g)
{
    return atomic_load(&g->refs);
}

static void test_incompatible(void)
{
    char buf[512];
    mgw_gen_t *a = load(18001, 2, 0), *b = load(18001, 2, 0), *c = load(18002, 2, 0),
              *d = load(18001, 3, 0), *e = load(18001, 2, 1);
    if (!a || !b || !c || !d || !e) {
        CHECK(0);
        return;
    }
    CHECK(incompatible(a, b, buf, sizeof buf) == NULL);
    const char *why = incompatible(a, c, buf, sizeof buf);
    CHECK(why && strstr(why, "listen[1]: changing the listeners needs a restart (127.0.0.1:18002, "
                             "running 127.0.0.1:18001)"));
    why = incompatible(a, d, buf, sizeof buf);
    CHECK(
        why &&
        strstr(why, "workers: changing the number of workers needs a restart (3 now, 2 running)"));
    why = incompatible(a, e, buf, sizeof buf);
    CHECK(why && strstr(why, "management: changing the management listener needs a restart"));
    mgw_gen_unref(a);
    mgw_gen_unref(b);
    mgw_gen_unref(c);
    mgw_gen_unref(d);
    mgw_gen_unref(e);
}

static void test_worker_swaps_at_request_boundaries(void)
{
    mgw_gen_t *g1 = load(18001, 1, 0), *g2 = load(18001, 1, 0);
    if (!g1 || !g2) {
        CHECK(0);
        return;
    }
    mgw_worker_t w;
    memset(&w, 0, sizeof w);
    w.id = 1;
    uv_loop_init(&w.loop);
    mgw_mailbox_kind(MGW_MSG_RELOAD, &reload_kind);
    mgw_mailbox_t *mb = mgw_mailbox_create(&w.loop, &w);
    uv_mutex_init(&R.lock);
    R.closed = 1; /* no main loop to acknowledge to */

    w.lua = mgw_lua_create(&w);
    mgw__reload_worker_start(&w, g1);
    CHECK(w.gen == g1 && w.wgen->gen == g1);
    CHECK(refs(g1) == 3); /* the test's, the worker generation's, its access log's */
    mgw_wgen_t *old = mgw__wgen_acquire(&w); /* a request in flight on g1 */
    CHECK(old->nreqs == 1);

    mgw_gen_ref(g2); /* what the main thread hands over */
    mgw_msg_t *m = mgw_calloc(1, sizeof(*m));
    m->type = MGW_MSG_RELOAD;
    m->data = g2;
    CHECK(mgw_mailbox_send(mb, m) == 0);
    uv_run(&w.loop, UV_RUN_NOWAIT); /* the worker's loop runs the message */
    mgw_mailbox_close(mb);
    CHECK(w.gen == g2);
    CHECK(w.wgen != old && w.wgen->gen == g2);
    CHECK(old->retired && refs(g1) == 3); /* kept for its request */
    mgw_wgen_t *fresh = mgw__wgen_acquire(&w);
    CHECK(fresh->gen == g2); /* a new request gets the new generation */

    mgw__wgen_release(old); /* the old request ends: g1 is let go */
    uv_run(&w.loop, UV_RUN_DEFAULT);
    CHECK(refs(g1) == 1);
    mgw__wgen_release(fresh);
    CHECK(refs(g2) == 3);

    mgw__reload_worker_stop(&w);
    uv_run(&w.loop, UV_RUN_DEFAULT);
    CHECK(refs(g2) == 1);
    mgw_lua_destroy(w.lua);
    CHECK(uv_loop_close(&w.loop) == 0);
    mgw_mailbox_free(mb);
    uv_mutex_destroy(&R.lock);
    R.closed = 0;
    mgw_gen_unref(g1);
    mgw_gen_unref(g2);
}

int main(void)
{
    if (mkdtemp(dir) == NULL) return 1;
    mgw_log_level = MGW_LOG_WARN; /* not "generated the management token ..." */
    RUN(test_incompatible);
    RUN(test_worker_swaps_at_request_boundaries);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) printf("# could not remove %s\n", dir);
    return DONE();
}
