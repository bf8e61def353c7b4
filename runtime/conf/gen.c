#include "conf/gen.h"

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

const mgw_apikey_t *mgw_gen_find_key(const mgw_gen_t *g, const uint8_t digest[32])
{
    int lo = 0, hi = g->nkeys - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        int c = memcmp(g->keys[mid].digest, digest, 32);
        if (c == 0) return &g->keys[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return NULL;
}

const mgw_member_t *mgw_key_member(const mgw_apikey_t *k, const mgw_api_t *api,
                                   const mgw_stage_t *stage)
{
    int si = (int)(stage - api->stages);
    for (int i = 0; i < k->nmembers; i++)
        if (k->members[i].api == api && k->members[i].plan->stages[si]) return &k->members[i];
    return NULL;
}
