#include "conf/path.h"

#include <string.h>
#include <strings.h>

#include "base/err.h"

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static int unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

int mgw_path_normalize(mgw_pool_t *pool, const char *p, size_t n, mgw_str_t *out)
{
    static const char hex[] = "0123456789ABCDEF";
    if (n == 0 || p[0] != '/') return MGW_EPARSE;
    /* Decoding never lengthens the path, so n + 1 bytes always suffice. */
    char *dst = mgw_pool_alloc(pool, n + 2);
    size_t len = 0;
    size_t i = 0;
    while (i < n) {
        while (i < n && p[i] == '/')
            i++;
        if (i >= n) break;
        size_t seg_start = len;
        dst[len++] = '/';
        while (i < n && p[i] != '/') {
            unsigned char c = (unsigned char)p[i];
            if (c == '%') {
                if (i + 2 >= n) return MGW_EPARSE;
                int h = hexval(p[i + 1]), l = hexval(p[i + 2]);
                if (h < 0 || l < 0) return MGW_EPARSE;
                unsigned char v = (unsigned char)(h << 4 | l);
                if (v == 0) return MGW_EPARSE;
                if (unreserved(v)) {
                    dst[len++] = (char)v;
                } else {
                    dst[len++] = '%';
                    dst[len++] = hex[v >> 4];
                    dst[len++] = hex[v & 15];
                }
                i += 3;
            } else {
                dst[len++] = (char)c;
                i++;
            }
        }
        size_t seg_len = len - seg_start - 1;
        const char *seg = dst + seg_start + 1;
        if (seg_len == 1 && seg[0] == '.') {
            len = seg_start;
        } else if (seg_len == 2 && seg[0] == '.' && seg[1] == '.') {
            len = seg_start;
            while (len > 0 && dst[len - 1] != '/')
                len--;
            if (len > 0) len--; /* drop the previous segment and its slash */
        }
    }
    if (len == 0) dst[len++] = '/';
    dst[len] = '\0';
    out->p = dst;
    out->n = len;
    return 0;
}

static const mgw_kv_t *kv_find(const mgw_kv_t *kv, int n, const char *name, size_t len)
{
    for (int i = 0; i < n; i++)
        if (kv[i].name.n == len && memcmp(kv[i].name.p, name, len) == 0) return &kv[i];
    return NULL;
}

mgw_str_t mgw_uri_expand(mgw_pool_t *pool, const char *tpl, const mgw_kv_t *vars, int nvars,
                         const mgw_kv_t *params, int nparams)
{
    static const char sv[] = "${stageVariables.";
    mgw_buf_t b = {0};
    const char *s = tpl;
    while (*s) {
        if (strncmp(s, sv, sizeof(sv) - 1) == 0 && strchr(s, '}')) {
            const char *name = s + sizeof(sv) - 1, *end = strchr(name, '}');
            const mgw_kv_t *kv = kv_find(vars, nvars, name, (size_t)(end - name));
            if (kv) mgw_buf_add(&b, kv->value.p, kv->value.n);
            s = end + 1;
        } else if (*s == '{' && strchr(s, '}')) {
            const char *name = s + 1, *end = strchr(name, '}');
            size_t len = (size_t)(end - name);
            if (len && name[len - 1] == '+') len--;
            const mgw_kv_t *kv = kv_find(params, nparams, name, len);
            if (kv) mgw_buf_add(&b, kv->value.p, kv->value.n);
            s = end + 1;
        } else {
            mgw_buf_addc(&b, *s++);
        }
    }
    mgw_str_t r = {mgw_pool_strndup(pool, b.p ? b.p : "", b.n), b.n};
    mgw_buf_free(&b);
    return r;
}

int mgw_url_parse(const char *s, size_t n, mgw_url_t *url)
{
    memset(url, 0, sizeof(*url));
    size_t i;
    if (n >= 7 && strncmp(s, "http://", 7) == 0) {
        i = 7;
        url->port = 80;
    } else if (n >= 8 && strncmp(s, "https://", 8) == 0) {
        i = 8;
        url->tls = 1;
        url->port = 443;
    } else {
        return MGW_EPARSE;
    }
    size_t auth = i;
    while (i < n && s[i] != '/' && s[i] != '?')
        i++;
    url->authority = (mgw_str_t){s + auth, i - auth};
    const char *h = s + auth, *hend = s + i;
    const char *colon = NULL;
    if (h < hend && *h == '[') {
        const char *rb = memchr(h, ']', (size_t)(hend - h));
        if (!rb) return MGW_EPARSE;
        url->host = (mgw_str_t){h + 1, (size_t)(rb - h - 1)};
        if (rb + 1 < hend) {
            if (rb[1] != ':') return MGW_EPARSE;
            colon = rb + 1;
        }
    } else {
        colon = memchr(h, ':', (size_t)(hend - h));
        url->host = (mgw_str_t){h, (size_t)((colon ? colon : hend) - h)};
    }
    if (url->host.n == 0) return MGW_EPARSE;
    if (colon) {
        int port = 0;
        const char *c = colon + 1;
        if (c == hend) return MGW_EPARSE;
        for (; c < hend; c++) {
            if (*c < '0' || *c > '9') return MGW_EPARSE;
            port = port * 10 + (*c - '0');
            if (port > 65535) return MGW_EPARSE;
        }
        if (port == 0) return MGW_EPARSE;
        url->port = port;
    }
    url->path = i < n ? (mgw_str_t){s + i, n - i} : MGW_STR("/");
    return 0;
}

int mgw_list_has(mgw_str_t v, mgw_str_t token)
{
    if (v.p == NULL) return 0; /* (NULL + 0 is undefined behaviour) */
    const char *s = v.p, *end = v.p + v.n;
    while (s < end) {
        while (s < end && (*s == ' ' || *s == ',' || *s == '\t'))
            s++;
        const char *t = s;
        while (t < end && *t != ',' && *t != ' ' && *t != '\t')
            t++;
        if (t > s && (size_t)(t - s) == token.n && strncasecmp(s, token.p, token.n) == 0) return 1;
        s = t;
    }
    return 0;
}

int mgw_str_ieq(mgw_str_t a, const char *b)
{
    size_t i = 0;
    for (; i < a.n; i++) {
        if (b[i] == '\0') return 0;
        char c = a.p[i];
        if (c >= 'A' && c <= 'Z') c = (char)(c + 32);
        if (b[i] != c) return 0;
    }
    return b[i] == '\0';
}
