/* Request metrics (see metrics.h): the series registry, the per-worker counter blocks,
 * counting a request, and the scrape. */
#include "gw/metrics.h"

#include <stdlib.h>
#include <string.h>

#include "base/prom.h"
#include "gw/req_int.h"

/*
 * A worker's counters add with a plain load and store: only the worker writes them, and
 * the main thread reads them with relaxed loads while they change, so each value it
 * reads is one the counter had (x86-64 loads and stores of aligned 64-bit words are
 * atomic). __atomic_fetch_add would be a locked instruction, which the request path does
 * not need.
 */
#define ADD(p, v)                                                                                  \
    __atomic_store_n((p), __atomic_load_n((p), __ATOMIC_RELAXED) + (v), __ATOMIC_RELAXED)
#define GET(p) __atomic_load_n((p), __ATOMIC_RELAXED)

/* Latency histogram buckets, in nanoseconds, and as the le labels say them. */
#define NB 11 /* bucket() adds up one compare per bound */
static const uint64_t bounds_ns[NB] = {5000000,    10000000,   25000000,   50000000,
                                       100000000,  250000000,  500000000,  1000000000,
                                       2500000000, 5000000000, 10000000000};
static const char *const bounds_le[NB] = {"0.005", "0.01", "0.025", "0.05", "0.1", "0.25",
                                          "0.5",   "1",    "2.5",   "5",    "10"};

/* Throttle levels as moongate_throttled_total's level label says them: the throttle
 * phase's policy names (gw/request.c mgw__req_limits, conf stage route limits), and the
 * usage plan's quota. */
static const char *const levels[] = {"account", "stage-shared", "stage", "route",
                                     "plan",    "plan-route",   "quota"};
#define NLEVELS ((int)(sizeof(levels) / sizeof(levels[0])))

/* A route's counters in one worker. */
typedef struct {
    uint64_t status[5]; /* 1xx .. 5xx */
    uint64_t lat[NB + 1], lat_sum_ns;
    uint64_t integ[NB + 1], integ_sum_ns;
} mroute_t;

/* A stage's counters in one worker. */
typedef struct {
    uint64_t gwresp[MGW_GW__COUNT];
    uint64_t throttled[NLEVELS];
} mstage_t;

/* Blocks are a whole number of cache lines, so two workers never write the same line. */
#define LINE 64
#define STRIDE(t) ((sizeof(t) + LINE - 1) / LINE * LINE)
#define ROUTE_STRIDE STRIDE(mroute_t)
#define STAGE_STRIDE STRIDE(mstage_t)

enum { KIND_ROUTE = 'r', KIND_STAGE = 's' };

/* A label set and its per-worker blocks (worker i's at blocks + i * stride). */
typedef struct series_s {
    struct series_s *next; /* hash chain */
    char *key;             /* kind, api, NUL, stage, NUL, route, NUL */
    size_t key_len;
    const char *api, *stage, *route; /* into key */
    char *blocks;
} series_t;

/* The registry: main thread only. */
static struct {
    series_t **tab;
    size_t size, n;
    int nworkers;
} reg;

/* The series of an API's stages and routes in one generation. */
typedef struct {
    char **stage_blk;  /* by stage index: worker 0's block */
    char **route_blk;  /* by stage index * (nroutes + 1) + 1 + route idx; 0: no route */
    mgw_stat_t *quota; /* by plan index * 2: requests counted, then refused (base/stat.h) */
} api_metrics_t;

struct mgw_gen_metrics_s {
    api_metrics_t *apis;           /* by API index */
    char *none_route, *none_stage; /* requests that reached no API and stage */
    series_t **routes;             /* every route series of the generation, for the scrape */
    int nroutes;
    series_t **stages;
    int nstages;
};

static const char NONE[] = "(none)";

/* The families of base/stat.h counted here: usage-plan quotas (counted by the throttle
 * phase, gw/request.c) and authorizers (counted by auth/ and lua/, whose series this file
 * makes, so that both kinds of authorizer share one family). */
static mgw_stat_family_t quota_family = {
    .name = "moongate_quota_requests_total",
    .type = "counter",
    .help = "Requests checked against a usage plan's quota: counted (taken from an API key's "
            "quota) or exceeded (refused with 429).",
    .labels = {"api", "plan", "result"}};
static mgw_stat_family_t authz_results = {
    .name = "moongate_authorizer_results_total",
    .type = "counter",
    .help = "Authorizer decisions by outcome (allow, deny, unauthorized, error), from the "
            "cache or not.",
    .labels = {"api", "authorizer", "outcome"}};
static mgw_stat_family_t authz_cache = {
    .name = "moongate_authorizer_cache_total",
    .type = "counter",
    .help = "Authorizer cache lookups (authorizers with a ttl): hit or miss.",
    .labels = {"api", "authorizer", "result"}};

static uint64_t hash(const char *p, size_t n)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)p[i]) * 1099511628211ULL;
    return h;
}

static void grow(void)
{
    size_t size = reg.size ? reg.size * 2 : 256;
    series_t **tab = mgw_calloc(size, sizeof(*tab));
    for (size_t i = 0; i < reg.size; i++)
        for (series_t *s = reg.tab[i], *next; s; s = next) {
            next = s->next;
            size_t k = hash(s->key, s->key_len) & (size - 1);
            s->next = tab[k];
            tab[k] = s;
        }
    free(reg.tab);
    reg.tab = tab;
    reg.size = size;
}

/* The registry's series of kind for (api, stage, route), made the first time. */
static series_t *series_get(int kind, const char *api, const char *stage, const char *route)
{
    size_t na = strlen(api), ns = strlen(stage), nr = strlen(route);
    size_t n = 1 + na + 1 + ns + 1 + nr + 1;
    char *key = mgw_malloc(n);
    key[0] = (char)kind;
    memcpy(key + 1, api, na + 1);
    memcpy(key + 2 + na, stage, ns + 1);
    memcpy(key + 3 + na + ns, route, nr + 1);
    if (reg.n >= reg.size) grow();
    size_t k = hash(key, n) & (reg.size - 1);
    for (series_t *s = reg.tab[k]; s; s = s->next) {
        if (s->key_len == n && memcmp(s->key, key, n) == 0) {
            free(key);
            return s;
        }
    }
    series_t *s = mgw_calloc(1, sizeof(*s));
    s->key = key;
    s->key_len = n;
    s->api = key + 1;
    s->stage = key + 2 + na;
    s->route = key + 3 + na + ns;
    size_t bytes = (kind == KIND_ROUTE ? ROUTE_STRIDE : STAGE_STRIDE) * (size_t)reg.nworkers;
    s->blocks = aligned_alloc(LINE, bytes);
    if (s->blocks == NULL) abort();
    memset(s->blocks, 0, bytes);
    s->next = reg.tab[k];
    reg.tab[k] = s;
    reg.n++;
    return s;
}

void mgw_metrics_gen_prepare(mgw_gen_t *g)
{
    if (g->metrics) return;
    if (reg.nworkers == 0) reg.nworkers = g->workers > 0 ? g->workers : 1;
    mgw_pool_t *p = g->pool;
    struct mgw_gen_metrics_s *gm = mgw_pool_calloc(p, sizeof(*gm));
    int nr = 0, ns = 0;
    for (int a = 0; a < g->napis; a++) {
        ns += g->apis[a].nstages;
        nr += g->apis[a].nstages * g->apis[a].nroutes;
    }
    gm->apis = mgw_pool_calloc(p, sizeof(*gm->apis) * (size_t)(g->napis ? g->napis : 1));
    gm->routes = mgw_pool_calloc(p, sizeof(series_t *) * (size_t)(nr + ns + 1));
    gm->stages = mgw_pool_calloc(p, sizeof(series_t *) * (size_t)(ns + 1));
    series_t *none = series_get(KIND_ROUTE, NONE, NONE, NONE);
    gm->none_route = none->blocks;
    gm->routes[gm->nroutes++] = none;
    none = series_get(KIND_STAGE, NONE, NONE, "");
    gm->none_stage = none->blocks;
    gm->stages[gm->nstages++] = none;
    for (int a = 0; a < g->napis; a++) {
        const mgw_api_t *api = &g->apis[a];
        api_metrics_t *am = &gm->apis[a];
        int per = api->nroutes + 1;
        am->stage_blk = mgw_pool_calloc(p, sizeof(char *) * (size_t)(api->nstages + 1));
        am->route_blk = mgw_pool_calloc(p, sizeof(char *) * (size_t)(api->nstages * per + 1));
        for (int s = 0; s < api->nstages; s++) {
            const char *stage = api->stages[s].name;
            series_t *ss = series_get(KIND_STAGE, api->id, stage, "");
            am->stage_blk[s] = ss->blocks;
            gm->stages[gm->nstages++] = ss;
            series_t *rs = series_get(KIND_ROUTE, api->id, stage, NONE);
            am->route_blk[s * per] = rs->blocks;
            gm->routes[gm->nroutes++] = rs;
            for (int i = 0; i < api->nroutes; i++) {
                const mgw_route_t *rt = api->routes[i];
                rs = series_get(KIND_ROUTE, api->id, stage, rt->key);
                am->route_blk[s * per + 1 + rt->idx] = rs->blocks;
                gm->routes[gm->nroutes++] = rs;
            }
        }
        am->quota = mgw_pool_calloc(p, sizeof(mgw_stat_t) * 2 * (size_t)(api->nplans + 1));
        for (int i = 0; i < api->nplans; i++) {
            if (!api->plans[i].has_quota) continue;
            const char *counted[] = {api->id, api->plans[i].name, "counted"};
            const char *refused[] = {api->id, api->plans[i].name, "exceeded"};
            am->quota[2 * i] = mgw_stat_series(&quota_family, counted);
            am->quota[2 * i + 1] = mgw_stat_series(&quota_family, refused);
        }
    }
    g->metrics = gm;
}

void mgw__metrics_quota(const mgw_req_t *r, const mgw_member_t *m, int ok)
{
    const struct mgw_gen_metrics_s *gm = r->gen->metrics;
    if (gm == NULL) return;
    const api_metrics_t *am = &gm->apis[m->api - r->gen->apis];
    mgw_stat_add(am->quota[2 * (m->plan - m->api->plans) + !ok], 1);
}

void mgw_metrics_authorizer(mgw_authz_stat_t *s, const char *api, const char *name, int cached)
{
    static const char *const outcomes[MGW_AUTHZ_OUT__COUNT] = {"allow", "deny", "unauthorized",
                                                               "error"};
    for (int i = 0; i < MGW_AUTHZ_OUT__COUNT; i++) {
        const char *v[] = {api, name, outcomes[i]};
        s->outcome[i] = mgw_stat_series(&authz_results, v);
    }
    const char *hit[] = {api, name, "hit"}, *miss[] = {api, name, "miss"};
    s->hit = cached ? mgw_stat_series(&authz_cache, hit) : 0;
    s->miss = cached ? mgw_stat_series(&authz_cache, miss) : 0;
}

/* The index of the throttle level named name, or -1. */
static int level_of(const char *name)
{
    for (int i = 0; name && i < NLEVELS; i++)
        if (strcmp(levels[i], name) == 0) return i;
    return -1;
}

/* The bucket of an observation: how many bounds it is above, as eleven compares added
 * up (no branch to mispredict; a loop over bounds_ns cost ~110 instructions, this ~35). */
static inline int bucket(uint64_t ns)
{
#define B(k) (ns > bounds_ns[k])
    return B(0) + B(1) + B(2) + B(3) + B(4) + B(5) + B(6) + B(7) + B(8) + B(9) + B(10);
#undef B
}

void mgw__metrics_request(const mgw_req_t *r)
{
    const struct mgw_gen_metrics_s *gm = r->gen->metrics;
    int w = r->from.w->id - 1;
    unsigned cls = (unsigned)(r->status / 100) - 1;
    if (gm == NULL || w < 0 || w >= reg.nworkers || cls > 4) return;
    char *rb, *sb;
    if (r->api && r->stage) {
        const api_metrics_t *am = &gm->apis[r->api - r->gen->apis];
        int s = (int)(r->stage - r->api->stages);
        rb = am->route_blk[s * (r->api->nroutes + 1) + (r->route ? r->route->idx + 1 : 0)];
        sb = am->stage_blk[s];
    } else {
        rb = gm->none_route;
        sb = gm->none_stage;
    }
    mroute_t *m = (mroute_t *)(rb + (size_t)w * ROUTE_STRIDE);
    ADD(&m->status[cls], 1);
    uint64_t ns = uv_hrtime() - r->start_ns;
    ADD(&m->lat[bucket(ns)], 1);
    ADD(&m->lat_sum_ns, ns);
    if (r->integ_start_ns && r->integ_end_ns >= r->integ_start_ns) {
        ns = r->integ_end_ns - r->integ_start_ns;
        ADD(&m->integ[bucket(ns)], 1);
        ADD(&m->integ_sum_ns, ns);
    }
    if (r->error_type != MGW_GW_NONE) {
        mstage_t *st = (mstage_t *)(sb + (size_t)w * STAGE_STRIDE);
        ADD(&st->gwresp[r->error_type], 1);
        int lv = r->error_type == MGW_GW_THROTTLED        ? level_of(r->rl_name)
                 : r->error_type == MGW_GW_QUOTA_EXCEEDED ? NLEVELS - 1
                                                          : -1;
        if (lv >= 0) ADD(&st->throttled[lv], 1);
    }
}

/* ---- the scrape ---- */

/* A series' counters summed over the workers, and its labels' text. */
typedef struct {
    mroute_t sum;
    uint64_t total, integ_total;
    size_t lab, nlab; /* into the scrape's label buffer */
} rsum_t;

static void sum_route(const series_t *s, mroute_t *out)
{
    memset(out, 0, sizeof(*out));
    for (int w = 0; w < reg.nworkers; w++) {
        const uint64_t *v = (const uint64_t *)(s->blocks + (size_t)w * ROUTE_STRIDE);
        uint64_t *o = (uint64_t *)out;
        for (size_t i = 0; i < sizeof(mroute_t) / sizeof(uint64_t); i++)
            o[i] += GET(&v[i]);
    }
}

static void sum_stage(const series_t *s, mstage_t *out)
{
    memset(out, 0, sizeof(*out));
    for (int w = 0; w < reg.nworkers; w++) {
        const uint64_t *v = (const uint64_t *)(s->blocks + (size_t)w * STAGE_STRIDE);
        uint64_t *o = (uint64_t *)out;
        for (size_t i = 0; i < sizeof(mstage_t) / sizeof(uint64_t); i++)
            o[i] += GET(&v[i]);
    }
}

/* Writes the labels api, stage (and route) of s into lb, and where they are. */
static void labels_of(const series_t *s, int route, mgw_buf_t *lb, size_t *at, size_t *n)
{
    mgw_buf_t one = {0};
    mgw_prom_label(&one, "api", s->api);
    mgw_prom_label(&one, "stage", s->stage);
    if (route) mgw_prom_label(&one, "route", s->route);
    *at = lb->n;
    *n = one.n;
    mgw_buf_add(lb, one.p, one.n);
    mgw_buf_free(&one);
}

static const char *const classes[] = {"1xx", "2xx", "3xx", "4xx", "5xx"};

static void render_routes(const struct mgw_gen_metrics_s *gm, mgw_buf_t *b)
{
    rsum_t *rs = mgw_calloc((size_t)gm->nroutes, sizeof(*rs));
    mgw_buf_t lb = {0}, one = {0};
    for (int i = 0; i < gm->nroutes; i++) {
        sum_route(gm->routes[i], &rs[i].sum);
        for (int c = 0; c < 5; c++)
            rs[i].total += rs[i].sum.status[c];
        for (int k = 0; k <= NB; k++)
            rs[i].integ_total += rs[i].sum.integ[k];
        if (rs[i].total) labels_of(gm->routes[i], 1, &lb, &rs[i].lab, &rs[i].nlab);
    }
    mgw_prom_family(b, "moongate_requests_total", "counter",
                    "Requests answered, by API, stage, route key and status class.");
    for (int i = 0; i < gm->nroutes; i++) {
        if (rs[i].total == 0) continue;
        for (int c = 0; c < 5; c++) {
            if (c == 0 && rs[i].sum.status[0] == 0) continue; /* 1xx: WebSocket upgrades */
            one.n = 0;
            mgw_buf_add(&one, lb.p + rs[i].lab, rs[i].nlab);
            mgw_prom_label(&one, "status_class", classes[c]);
            mgw_prom_u64(b, "moongate_requests_total", one.p, one.n, rs[i].sum.status[c]);
        }
    }
    mgw_prom_family(b, "moongate_request_duration_seconds", "histogram",
                    "Time from the request's arrival to the end of its response (API Gateway's "
                    "Latency).");
    for (int i = 0; i < gm->nroutes; i++)
        if (rs[i].total)
            mgw_prom_histogram(b, "moongate_request_duration_seconds", lb.p + rs[i].lab, rs[i].nlab,
                               bounds_le, NB, rs[i].sum.lat, rs[i].sum.lat_sum_ns);
    mgw_prom_family(b, "moongate_integration_duration_seconds", "histogram",
                    "Time the integration took, from its start to its response (API Gateway's "
                    "IntegrationLatency).");
    for (int i = 0; i < gm->nroutes; i++)
        if (rs[i].integ_total)
            mgw_prom_histogram(b, "moongate_integration_duration_seconds", lb.p + rs[i].lab,
                               rs[i].nlab, bounds_le, NB, rs[i].sum.integ, rs[i].sum.integ_sum_ns);
    mgw_buf_free(&one);
    mgw_buf_free(&lb);
    free(rs);
}

static void render_stages(const struct mgw_gen_metrics_s *gm, mgw_buf_t *b)
{
    mstage_t *ss = mgw_calloc((size_t)gm->nstages, sizeof(*ss));
    for (int i = 0; i < gm->nstages; i++)
        sum_stage(gm->stages[i], &ss[i]);
    mgw_buf_t one = {0};
    mgw_prom_family(b, "moongate_gateway_responses_total", "counter",
                    "Responses the gateway made itself, by API, stage and gateway response "
                    "type.");
    for (int i = 0; i < gm->nstages; i++)
        for (int t = 0; t < MGW_GW__COUNT; t++) {
            if (ss[i].gwresp[t] == 0) continue;
            one.n = 0;
            mgw_prom_label(&one, "api", gm->stages[i]->api);
            mgw_prom_label(&one, "stage", gm->stages[i]->stage);
            mgw_prom_label(&one, "type", mgw_gwresp_info((mgw_gwresp_type_t)t)->name);
            mgw_prom_u64(b, "moongate_gateway_responses_total", one.p, one.n, ss[i].gwresp[t]);
        }
    mgw_prom_family(b, "moongate_throttled_total", "counter",
                    "Requests refused with 429 by throttling or a usage plan's quota, by API, "
                    "stage and the level that refused them.");
    for (int i = 0; i < gm->nstages; i++)
        for (int l = 0; l < NLEVELS; l++) {
            if (ss[i].throttled[l] == 0) continue;
            one.n = 0;
            mgw_prom_label(&one, "api", gm->stages[i]->api);
            mgw_prom_label(&one, "stage", gm->stages[i]->stage);
            mgw_prom_label(&one, "level", levels[l]);
            mgw_prom_u64(b, "moongate_throttled_total", one.p, one.n, ss[i].throttled[l]);
        }
    mgw_buf_free(&one);
    free(ss);
}

void mgw_metrics_render(const mgw_gen_t *g, mgw_buf_t *b)
{
    if (g->metrics == NULL) return;
    render_routes(g->metrics, b);
    render_stages(g->metrics, b);
}

void mgw_metrics_free(void)
{
    for (size_t i = 0; i < reg.size; i++)
        for (series_t *s = reg.tab[i], *next; s; s = next) {
            next = s->next;
            free(s->blocks);
            free(s->key);
            free(s);
        }
    free(reg.tab);
    memset(&reg, 0, sizeof(reg));
}
