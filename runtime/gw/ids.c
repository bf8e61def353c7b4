/*
 * Request ids and what the API's type decides about them: the gateway's own id
 * (mgw__make_id: $context.extendedRequestId, and requestId on HTTP and WebSocket APIs), a
 * REST API's UUID requestId (mgw__req_id), and the id of a route's resource
 * ($context.resourceId).
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "base/crypto.h"
#include "gw/req_int.h"

static uint64_t rng_next(uint64_t s[2])
{
    uint64_t x = s[0], y = s[1];
    s[0] = y;
    x ^= x << 23;
    s[1] = x ^ y ^ (x >> 17) ^ (y >> 26);
    return s[1] + y;
}

uint64_t mgw__rng(mgw_worker_t *w)
{
    return rng_next(w->rng);
}

/* 12 random bytes as 16 base64 characters, the shape of API Gateway's request ids. */
void mgw__make_id(mgw_worker_t *w, char out[24])
{
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    uint64_t a = rng_next(w->rng), b = rng_next(w->rng);
    unsigned char bytes[12];
    memcpy(bytes, &a, 8);
    memcpy(bytes + 8, &b, 4);
    for (int i = 0; i < 4; i++) {
        unsigned v =
            (unsigned)bytes[3 * i] << 16 | (unsigned)bytes[3 * i + 1] << 8 | bytes[3 * i + 2];
        out[4 * i] = b64[v >> 18 & 63];
        out[4 * i + 1] = b64[v >> 12 & 63];
        out[4 * i + 2] = b64[v >> 6 & 63];
        out[4 * i + 3] = b64[v & 63];
    }
    out[16] = '\0';
}

const mgw_apitype_t *mgw__req_type(const mgw_req_t *r)
{
    const mgw_api_t *api = r->api ? r->api : mgw__req_listen(r)->api;
    return mgw__api_type(api);
}

static int is_uuid(mgw_str_t s)
{
    if (s.n != 36) return 0;
    for (size_t i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s.p[i] != '-') return 0;
        } else if (!isxdigit((unsigned char)s.p[i])) {
            return 0;
        }
    }
    return 1;
}

/*
 * Where the API's type gives requestId a UUID of its own (REST): the client's
 * x-amzn-RequestId when it is a UUID (as API Gateway takes it), else a random (version 4)
 * one. extendedRequestId stays r->id, never the client's.
 */
const char *mgw__req_id(mgw_req_t *r)
{
    if (!mgw__req_type(r)->uuid_request_id) return r->id;
    if (r->uuid[0]) return r->uuid;
    mgw_str_t h = mgw__req_header(r, "x-amzn-requestid");
    if (is_uuid(h)) {
        memcpy(r->uuid, h.p, 36);
        r->uuid[36] = '\0';
        return r->uuid;
    }
    static const char hex[] = "0123456789abcdef";
    uint64_t v[2] = {rng_next(r->from.w->rng), rng_next(r->from.w->rng)};
    unsigned char b[16];
    memcpy(b, v, 16);
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* version 4 */
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
    char *o = r->uuid;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10) *o++ = '-';
        *o++ = hex[b[i] >> 4];
        *o++ = hex[b[i] & 15];
    }
    *o = '\0';
    return r->uuid;
}

int mgw__req_resource_id(mgw_req_t *r, mgw_str_t *out)
{
    if (r->route == NULL || r->api == NULL) return 0;
    const char *path = strchr(r->route->key, ' ');
    char *src = mgw_pool_printf(r->pool, "%s %s", r->api->id, path ? path + 1 : r->route->key);
    uint8_t d[32];
    mgw_sha256(src, strlen(src), d);
    static const char alnum[] = "abcdefghijklmnopqrstuvwxyz0123456789";
    char *id = mgw_pool_alloc(r->pool, 11);
    for (int i = 0; i < 10; i++)
        id[i] = alnum[d[i] % 36];
    id[10] = '\0';
    *out = (mgw_str_t){id, 10};
    return 1;
}
