/*
 * The mutual-TLS revocation hook: a domain's Lua policy (mtls.revocation) decides once
 * per handshake whether a verified client certificate may connect. Verdicts are cached
 * per worker by certificate fingerprint for the domain's TTL, so a policy that looks a
 * certificate up somewhere is asked once per certificate and TTL, not once per
 * connection. Errors deny (fail closed) and are not cached.
 */
#include <stdio.h>
#include <string.h>

#include "base/log.h"
#include "lua/lua_int.h"

#define CACHE_SLOTS 1024 /* direct-mapped: a collision only costs a re-check */

typedef struct {
    char fingerprint[65];
    int gen_id, use;
    int allow;
    uint64_t expires_ms;
    char reason[120];
} verdict_t;

/* One cache per worker thread: the worker's Lua state answers on that thread only. */
static _Thread_local verdict_t cache[CACHE_SLOTS];

static verdict_t *slot(const char *fingerprint)
{
    unsigned h = 2166136261u;
    for (const char *s = fingerprint; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return &cache[h % CACHE_SLOTS];
}

int mgw__revocation_check(void *ud, void *site_data, const mgw_client_cert_t *cert,
                          const char *fingerprint, char *reason, size_t n)
{
    mgw_conn_t *c = ud;
    const mgw_domain_t *d = site_data;
    if (d == NULL || d->revocation_use == 0) return 0;
    /* the stream holds the generation the domain belongs to during the handshake */
    const mgw_gen_t *g = c->stream.gen ? c->stream.gen : c->w->gen;
    uint64_t now = uv_now(&c->w->loop);
    verdict_t *v = slot(fingerprint);
    if (v->expires_ms > now && v->gen_id == g->id && v->use == d->revocation_use &&
        strcmp(v->fingerprint, fingerprint) == 0) {
        snprintf(reason, n, "%s", v->reason);
        return v->allow ? 0 : -1;
    }
    int code =
        mgw_lua_check_cert(c->w->lua, g->id, d->revocation_use, cert, fingerprint, reason, n);
    if (code == MGW_CERT_ERROR) {
        mgw_log_error("%s: mtls.revocation: %s (the certificate of %s is refused)", d->host, reason,
                      cert->subject_dn);
        snprintf(reason, n, "the revocation check failed");
        return -1;
    }
    if (d->revocation_ttl_ms) {
        snprintf(v->fingerprint, sizeof(v->fingerprint), "%s", fingerprint);
        v->gen_id = g->id;
        v->use = d->revocation_use;
        v->allow = code == MGW_CERT_ALLOW;
        v->expires_ms = now + d->revocation_ttl_ms;
        snprintf(v->reason, sizeof(v->reason), "%s", reason);
    }
    return code == MGW_CERT_ALLOW ? 0 : -1;
}
