#include "gen.h"

#include <string.h>
#include <unistd.h>

void mgw_gen_ref(mgw_gen_t *g)
{
    atomic_fetch_add_explicit(&g->refs, 1, memory_order_relaxed);
}

void mgw_gen_unref(mgw_gen_t *g)
{
    if (g == NULL) return;
    if (atomic_fetch_sub_explicit(&g->refs, 1, memory_order_acq_rel) != 1) return;
    for (int i = 0; i < g->nlogs; i++)
        if (g->logs[i].fd >= 0) close(g->logs[i].fd);
    mgw_pool_destroy(g->pool);
}

mgw_api_t *mgw_gen_find_api(const mgw_gen_t *g, const char *id, size_t n)
{
    for (int i = 0; i < g->napis; i++)
        if (strlen(g->apis[i].id) == n && memcmp(g->apis[i].id, id, n) == 0) return &g->apis[i];
    return NULL;
}

mgw_stage_t *mgw_api_find_stage(const mgw_api_t *api, const char *name, size_t n)
{
    for (int i = 0; i < api->nstages; i++)
        if (strlen(api->stages[i].name) == n && memcmp(api->stages[i].name, name, n) == 0)
            return &api->stages[i];
    return NULL;
}

const mgw_domain_t *mgw_gen_find_domain(const mgw_gen_t *g, const char *host, size_t n)
{
    for (int i = 0; i < g->ndomains; i++)
        if (strlen(g->domains[i].host) == n && memcmp(g->domains[i].host, host, n) == 0)
            return &g->domains[i];
    return NULL;
}
