/*
 * Remote key sources: a JWK Set fetched from jwks_uri, or from the URL OIDC discovery
 * names, shared by every worker (and by the generations that fetch the same URL with the
 * same CA, so that a reload keeps the keys).
 *
 * The set a worker verifies with is the worker's own reference (its slot): a request
 * compares the slot's version with the source's atomic version and takes no lock unless
 * the source has a new set since (README "JWT authorizers": the hot path takes no lock).
 *
 * Fetches are single-flight across workers: the source's lock guards whether one is in
 * flight, when the last one started, and which workers have requests waiting for it. The
 * worker that starts a fetch runs it on its loop with its HTTP client; when it ends, the
 * new set (or the last good one, on a failure) is published, the fetching worker wakes
 * its own waiting requests and tells each other waiting worker through its mailbox
 * (MGW_MSG_JWKS), whose loop wakes its own. A fetch starts when a generation is
 * installed (the first), when the set's max-age is over (in the background, requests go
 * on with the set they have), and when a token names a kid the set lacks: at most once
 * per MGW_JWKS_REFETCH_MS (MGW_JWKS_RETRY_MS while the source has no set at all).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth_int.h"
#include "base/log.h"
#include "http/proxy.h"
#include "net/mailbox.h"
#include "net/worker.h"

/* What one worker keeps of a source; only that worker's thread touches it. */
typedef struct {
    unsigned version;      /* the source's version when set was taken */
    mgw_jwks_t *set;       /* the worker's reference, or NULL */
    mgw_keywait_t waiters; /* list head: requests of this worker waiting for a fetch */
} keyslot_t;

struct mgw_keysrc_s {
    mgw_keysrc_t *next; /* the registry's list */
    int refs;           /* under the registry's lock */
    char *id;           /* what makes two sources the same: the URL or issuer, and the CA */
    char *where;        /* the config path of the authorizer that made it (logs) */
    char *jwks_uri;     /* NULL: discovery from issuer */
    char *issuer;
    mgw_tls_ctx_t *tls; /* verifies https servers (backend_ca, or the system store) */
    char *tls_id;
    int nslots;
    keyslot_t *slots;
    /* under lock */
    uv_mutex_t lock;
    mgw_jwks_t *set;     /* the last good set, or NULL */
    int fetching;        /* a fetch is in flight */
    int fetches;         /* fetches started */
    uint64_t last_start; /* loop ms when the last one started */
    int kid_fetches;     /* ...of them for an unknown kid */
    uint64_t last_kid;   /* loop ms when the last of those started */
    char *waiting;       /* by worker id: 1 when the worker has requests waiting */
    int failing;         /* the last fetch failed (logged once per streak) */
    /* read without the lock */
    atomic_uint version;       /* moves on with every new set */
    atomic_ullong fresh_until; /* loop ms: the set's max-age ends then */
    atomic_int busy;           /* fetching, as a hint for the lock-free path */
};

/* The sources alive, by id (main thread adds; any thread may drop the last reference). */
static uv_mutex_t reg_lock;
static uv_once_t reg_once = UV_ONCE_INIT;
static mgw_keysrc_t *registry;

static void reg_init(void)
{
    uv_mutex_init(&reg_lock);
}

static void list_init(mgw_keywait_t *head)
{
    head->next = head->prev = head;
}

mgw_keysrc_t *mgw__keysrc_get(const mgw_jwt_conf_t *conf, int nslots)
{
    char *id = mgw_malloc(strlen(conf->jwks_uri ? conf->jwks_uri : conf->issuer) +
                          (conf->backend_ca ? strlen(conf->backend_ca) : 1) + 16);
    sprintf(id, "%s %s|%s", conf->jwks_uri ? "uri" : "discovery",
            conf->jwks_uri ? conf->jwks_uri : conf->issuer,
            conf->backend_ca ? conf->backend_ca : "-");
    uv_once(&reg_once, reg_init);
    uv_mutex_lock(&reg_lock);
    mgw_keysrc_t *src = registry;
    while (src && (strcmp(src->id, id) != 0 || src->nslots != nslots))
        src = src->next;
    if (src) {
        src->refs++;
        uv_mutex_unlock(&reg_lock);
        free(id);
        return src;
    }
    src = mgw_calloc(1, sizeof(*src));
    src->refs = 1;
    src->id = id;
    src->where = mgw_strdup(conf->where);
    src->jwks_uri = conf->jwks_uri ? mgw_strdup(conf->jwks_uri) : NULL;
    src->issuer = mgw_strdup(conf->issuer);
    char err[512];
    src->tls = mgw_tls_client_ctx_new(conf->backend_ca, NULL, NULL, err, sizeof(err));
    if (src->tls == NULL)
        mgw_log_error("%s.backend_ca: %s (https key sources cannot be verified)", conf->where, err);
    src->tls_id = mgw_malloc(strlen(id) + 8);
    sprintf(src->tls_id, "jwks|%s", conf->backend_ca ? conf->backend_ca : "-");
    src->nslots = nslots;
    src->slots = mgw_calloc((size_t)nslots, sizeof(keyslot_t));
    for (int i = 0; i < nslots; i++)
        list_init(&src->slots[i].waiters);
    src->waiting = mgw_calloc((size_t)nslots, 1);
    uv_mutex_init(&src->lock);
    atomic_init(&src->version, 1); /* slots start at 0: the first look takes the set */
    atomic_init(&src->fresh_until, 0);
    atomic_init(&src->busy, 0);
    src->next = registry;
    registry = src;
    uv_mutex_unlock(&reg_lock);
    return src;
}

static void src_ref(mgw_keysrc_t *src)
{
    uv_mutex_lock(&reg_lock);
    src->refs++;
    uv_mutex_unlock(&reg_lock);
}

void mgw__keysrc_unref(mgw_keysrc_t *src)
{
    if (src == NULL) return;
    uv_mutex_lock(&reg_lock);
    int last = --src->refs == 0;
    if (last)
        for (mgw_keysrc_t **p = &registry; *p; p = &(*p)->next)
            if (*p == src) {
                *p = src->next;
                break;
            }
    uv_mutex_unlock(&reg_lock);
    if (!last) return;
    /* No generation uses it, no fetch or message is in flight: no worker touches it. */
    for (int i = 0; i < src->nslots; i++)
        if (src->slots[i].set) mgw_jwks_unref(src->slots[i].set);
    if (src->set) mgw_jwks_unref(src->set);
    if (src->tls) mgw_tls_ctx_free(src->tls);
    uv_mutex_destroy(&src->lock);
    free(src->slots);
    free(src->waiting);
    free(src->id);
    free(src->where);
    free(src->jwks_uri);
    free(src->issuer);
    free(src->tls_id);
    free(src);
}

int mgw__keysrc_fetches(const mgw_keysrc_t *src)
{
    return src->fetches;
}

/* ---- waking the requests that wait ---- */

static void unlink_wait(mgw_keywait_t *wt)
{
    wt->prev->next = wt->next;
    wt->next->prev = wt->prev;
    wt->next = wt->prev = wt;
    wt->src = NULL;
}

void mgw__keys_unwait(void *p)
{
    mgw_keywait_t *wt = p;
    if (wt->src) unlink_wait(wt);
}

/* The fetch of src ended: w's waiting requests go on (each wake may answer its request). */
static void wake_worker(mgw_keysrc_t *src, mgw_worker_t *w)
{
    mgw_keywait_t *head = &src->slots[w->id].waiters;
    while (head->next != head) {
        mgw_keywait_t *wt = head->next;
        unlink_wait(wt);
        wt->wake(wt->r);
    }
}

static void jwks_msg_run(void *owner, mgw_msg_t *msg)
{
    mgw_keysrc_t *src = msg->data;
    free(msg);
    wake_worker(src, owner);
    mgw__keysrc_unref(src);
}

static void jwks_msg_drop(mgw_msg_t *msg)
{
    mgw__keysrc_unref(msg->data);
    free(msg);
}

const mgw_msg_kind_t mgw__jwks_msg_kind = {"jwks", jwks_msg_run, jwks_msg_drop};

/* ---- fetching ---- */

typedef struct {
    mgw_keysrc_t *src;
    mgw_worker_t *w;
} fetch_ctx_t;

static void fetched(void *ud, mgw_jwks_t *set, int max_age_s, const char *uri, const char *err)
{
    fetch_ctx_t *fc = ud;
    mgw_keysrc_t *src = fc->src;
    mgw_worker_t *w = fc->w;
    free(fc);
    uint64_t now = uv_now(&w->loop);
    uv_mutex_lock(&src->lock);
    mgw_jwks_t *old = NULL;
    int was_failing = src->failing;
    if (set) {
        old = src->set;
        src->set = set;
        src->failing = 0;
        atomic_store(&src->fresh_until, now + (uint64_t)max_age_s * 1000);
        atomic_fetch_add_explicit(&src->version, 1, memory_order_release);
    } else {
        src->failing = 1;
        /* the next try after the usual interval (requests that need keys may try sooner) */
        atomic_store(&src->fresh_until, now + MGW_JWKS_REFETCH_MS);
    }
    int had_set = src->set != NULL;
    src->fetching = 0;
    atomic_store(&src->busy, 0);
    int nslots = src->nslots;
    char *waiting = mgw_malloc((size_t)nslots);
    memcpy(waiting, src->waiting, (size_t)nslots);
    memset(src->waiting, 0, (size_t)nslots);
    uv_mutex_unlock(&src->lock);
    if (old) mgw_jwks_unref(old);

    if (set && was_failing)
        mgw_log_info("%s: fetched the JWK Set from %s (%d keys)", src->where, uri ? uri : "?",
                     mgw_jwks_count(set));
    else if (!set && !was_failing)
        mgw_log_error("%s: the JWK Set could not be fetched: %s%s", src->where, err,
                      had_set ? " (the last good set is kept)" : "");

    for (int id = 0; id < nslots; id++) {
        if (!waiting[id] || id == w->id) continue;
        mgw_msg_t *m = mgw_calloc(1, sizeof(*m));
        m->type = MGW_MSG_JWKS;
        m->data = src;
        src_ref(src);
        if (id < 1 || mgw_worker_send(id - 1, m) != 0) { /* shutting down: they end anyway */
            mgw__keysrc_unref(src);
            free(m);
        }
    }
    if (waiting[w->id]) wake_worker(src, w);
    free(waiting);
    mgw__keysrc_unref(src); /* the fetch's reference */
}

/* Starts a fetch on w (src->fetching was set under the lock). */
static void start_fetch(mgw_keysrc_t *src, mgw_worker_t *w)
{
    fetch_ctx_t *fc = mgw_malloc(sizeof(*fc));
    fc->src = src;
    fc->w = w;
    src_ref(src);
    mgw_jwks_target_t t = {
        .jwks_uri = src->jwks_uri, .issuer = src->issuer, .tls = src->tls, .tls_id = src->tls_id};
    /* The loop's clock may be old (a generation installed after loading its policies):
     * the fetch's timeout counts from now. */
    uv_update_time(&w->loop);
    mgw__jwks_fetch(&w->loop, mgw__http_pool(w), &t, fetched, fc);
}

/* Why a fetch would start (each has its own limit, may_start). */
enum { WHY_FIRST, WHY_MAX_AGE, WHY_KID, WHY_NO_KEYS };

/*
 * Under src->lock: whether a fetch may start at now for why, and if so marks it started.
 * The first fetch once; a max-age refresh at most every MGW_JWKS_REFETCH_MS (a failing
 * source is not asked more often); an unknown kid at most once per MGW_JWKS_REFETCH_MS
 * (a token with a made-up kid cannot make the gateway hammer the issuer); no keys at all
 * at most every MGW_JWKS_RETRY_MS.
 */
static int may_start(mgw_keysrc_t *src, uint64_t now, int why)
{
    if (src->fetching) return 0;
    switch (why) {
    case WHY_FIRST:
        if (src->fetches) return 0;
        break;
    case WHY_MAX_AGE:
        if (src->fetches && now - src->last_start < MGW_JWKS_REFETCH_MS) return 0;
        break;
    case WHY_KID:
        if (src->kid_fetches && now - src->last_kid < MGW_JWKS_REFETCH_MS) return 0;
        src->kid_fetches++;
        src->last_kid = now;
        break;
    default:
        if (src->fetches && now - src->last_start < MGW_JWKS_RETRY_MS) return 0;
        break;
    }
    src->fetching = 1;
    src->fetches++;
    src->last_start = now;
    atomic_store(&src->busy, 1);
    return 1;
}

int mgw__keys_refresh(mgw_keysrc_t *src, mgw_worker_t *w, mgw_keywait_t *wt)
{
    uint64_t now = uv_now(&w->loop);
    uv_mutex_lock(&src->lock);
    int in_flight = src->fetching;
    int why = wt == NULL ? WHY_MAX_AGE : src->set ? WHY_KID : WHY_NO_KEYS;
    int start = !in_flight && may_start(src, now, why);
    if ((in_flight || start) && wt) {
        src->waiting[w->id] = 1;
        keyslot_t *slot = &src->slots[w->id];
        wt->src = src;
        wt->prev = slot->waiters.prev;
        wt->next = &slot->waiters;
        slot->waiters.prev->next = wt;
        slot->waiters.prev = wt;
    }
    uv_mutex_unlock(&src->lock);
    if (start) start_fetch(src, w);
    return in_flight || start;
}

void mgw__keys_first(mgw_keysrc_t *src, mgw_worker_t *w)
{
    uv_mutex_lock(&src->lock);
    int start = may_start(src, uv_now(&w->loop), WHY_FIRST);
    uv_mutex_unlock(&src->lock);
    if (start) start_fetch(src, w);
}

mgw_jwks_t *mgw__keys_current(mgw_keysrc_t *src, mgw_worker_t *w)
{
    keyslot_t *slot = &src->slots[w->id];
    unsigned v = atomic_load_explicit(&src->version, memory_order_acquire);
    if (v != slot->version) {
        uv_mutex_lock(&src->lock);
        mgw_jwks_t *set = src->set;
        if (set) mgw_jwks_ref(set);
        v = atomic_load_explicit(&src->version, memory_order_relaxed);
        uv_mutex_unlock(&src->lock);
        if (slot->set) mgw_jwks_unref(slot->set);
        slot->set = set;
        slot->version = v;
    }
    /* The set's max-age is over: a refresh in the background (the set serves meanwhile). */
    if (slot->set && !atomic_load_explicit(&src->busy, memory_order_relaxed) &&
        uv_now(&w->loop) >= atomic_load_explicit(&src->fresh_until, memory_order_relaxed))
        mgw__keys_refresh(src, w, NULL);
    return slot->set;
}
