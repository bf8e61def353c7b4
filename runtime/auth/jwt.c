/*
 * The auth layer's entries (jwt.h): its registration with the request core and the
 * mailboxes, and the run-time state each JWT authorizer of a generation gets before the
 * generation serves: its remote key source (shared across generations) and its
 * per-worker token caches.
 */
#include <stdlib.h>

#include "auth/auth_int.h"
#include "gw/gw.h"

extern const mgw_authz_ops_t mgw__jwt_authorizer; /* authz.c */

void mgw_jwt_register(void)
{
    mgw_gw_set_authorizer(MGW_AUTHZ_JWT, &mgw__jwt_authorizer);
    mgw_mailbox_kind(MGW_MSG_JWKS, &mgw__jwks_msg_kind);
}

static void rt_free_cb(void *p)
{
    struct mgw_jwt_rt_s *rt = p;
    for (int i = 0; i < rt->nslots; i++)
        mgw__tcache_free(rt->caches[i]);
    free(rt->caches);
    mgw__keysrc_unref(rt->src);
    free(rt);
}

void mgw_jwt_gen_prepare(mgw_gen_t *g)
{
    for (int a = 0; a < g->napis; a++) {
        mgw_api_t *api = &g->apis[a];
        for (int i = 0; i < api->njwts; i++) {
            mgw_jwt_conf_t *c = &api->jwts[i];
            if (c->rt) continue;
            struct mgw_jwt_rt_s *rt = mgw_calloc(1, sizeof(*rt));
            rt->nslots = g->workers + 1; /* worker ids: 0 (the main thread), 1..workers */
            rt->caches = mgw_calloc((size_t)rt->nslots, sizeof(mgw_tcache_t *));
            if (c->jwks_uri || c->discovery) rt->src = mgw__keysrc_get(c, rt->nslots);
            mgw_metrics_authorizer(&rt->stat, api->id, c->name, c->ttl_ms > 0);
            c->rt = rt;
            mgw_pool_cleanup_add(g->pool, rt_free_cb, rt);
        }
    }
}

void mgw_jwt_gen_installed(mgw_worker_t *w, mgw_gen_t *g)
{
    for (int a = 0; a < g->napis; a++)
        for (int i = 0; i < g->apis[a].njwts; i++) {
            const mgw_jwt_conf_t *c = &g->apis[a].jwts[i];
            if (c->rt && c->rt->src) mgw__keys_first(c->rt->src, w);
        }
}
