/*
 * The server-side TLS engine, driven in-process by a real OpenSSL client over memory
 * buffers: handshakes (TLS 1.3 and 1.2, ALPN, SNI site selection, unknown names), mutual
 * TLS (valid, expired, not yet valid, unknown CA, revoked through CRLs, weak, too deep),
 * the client certificate's identity, plain HTTP and garbage, session tickets and their
 * rotation, expiry reporting and configuration errors. The PKI is generated at test time
 * by tls_certs.sh (openssl CLI) into a temporary directory.
 */
#include "base/tls.c"

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "unit.h"

/* strstr that reports what it got when the text is missing */
#define CHECK_HAS(got, want)                                                                       \
    do {                                                                                           \
        const char *g2_ = (got), *w2_ = (want);                                                    \
        if (g2_ == NULL || strstr(g2_, w2_) == NULL) {                                             \
            printf("#   %s:%d: \"%s\" does not contain \"%s\"\n", __FILE__, __LINE__,              \
                   g2_ ? g2_ : "(null)", w2_);                                                     \
            unit_failures_in_test++;                                                               \
        }                                                                                          \
    } while (0)

/* A context the rest of the test needs: fails the test and returns without it. */
#define NEED(ctx)                                                                                  \
    do {                                                                                           \
        if ((ctx) == NULL) {                                                                       \
            CHECK((ctx) != NULL);                                                                  \
            return;                                                                                \
        }                                                                                          \
    } while (0)

static char dir[PATH_MAX];

/* DIR/name, in one of a ring of buffers so that a few can be used at once. */
static const char *P(const char *name)
{
    static char ring[16][PATH_MAX + 64];
    static int next;
    char *p = ring[next++ % 16];
    snprintf(p, PATH_MAX + 64, "%s/%s", dir, name);
    return p;
}

/* ---- a client connection pumped against an mgw_tls_t ---- */

typedef struct {
    const char *sni;
    const char *alpn; /* wire format ("\x08http/1.1"); NULL: none */
    const char *cert; /* chain file in DIR, with key */
    const char *key;
    int max_version; /* 0: the library's */
    SSL_SESSION *session;
} client_opts_t;

typedef struct {
    SSL_CTX *cctx;
    SSL *c;
    BIO *cin, *cout; /* the client's network: from and to the server */
    mgw_tls_t *t;
    int alert;          /* last alert the client received, -1: none */
    char ca_names[512]; /* the CAs the server's CertificateRequest named, "; "-separated */
    int client_failed, client_closed, server_failed, server_closed;
    mgw_buf_t client_got, server_got; /* plaintext each side received */
} conn_t;

static const unsigned char HTTP11[] = "\x08http/1.1";

static void info_cb(const SSL *s, int where, int ret)
{
    conn_t *k = SSL_get_app_data(s);
    if (where & SSL_CB_READ_ALERT) k->alert = ret & 0xff;
}

/* Called when the server asks for a certificate: records which CAs it named. */
static int cert_cb(SSL *s, void *arg)
{
    conn_t *k = arg;
    const STACK_OF(X509_NAME) *names = SSL_get_client_CA_list(s);
    k->ca_names[0] = '\0';
    for (int i = 0; names && i < sk_X509_NAME_num(names); i++) {
        char cn[128] = "";
        X509_NAME_get_text_by_NID(sk_X509_NAME_value(names, i), NID_commonName, cn, sizeof(cn));
        size_t used = strlen(k->ca_names);
        snprintf(k->ca_names + used, sizeof(k->ca_names) - used, "%s%s", i ? "; " : "", cn);
    }
    return 1;
}

static void conn_open(conn_t *k, mgw_tls_ctx_t *ctx, const client_opts_t *o)
{
    memset(k, 0, sizeof(*k));
    k->alert = -1;
    k->cctx = SSL_CTX_new(TLS_client_method());
    /* Level 0 lets the client offer TLS 1.1 and use a weak key: the server must refuse. */
    SSL_CTX_set_security_level(k->cctx, 0);
    SSL_CTX_set_min_proto_version(k->cctx, TLS1_VERSION);
    if (o->max_version) SSL_CTX_set_max_proto_version(k->cctx, o->max_version);
    k->c = SSL_new(k->cctx);
    SSL_set_app_data(k->c, k);
    SSL_set_info_callback(k->c, info_cb);
    SSL_set_cert_cb(k->c, cert_cb, k);
    k->cin = BIO_new(BIO_s_mem());
    k->cout = BIO_new(BIO_s_mem());
    BIO_set_mem_eof_return(k->cin, -1);
    BIO_set_mem_eof_return(k->cout, -1);
    SSL_set_bio(k->c, k->cin, k->cout);
    SSL_set_connect_state(k->c);
    if (o->sni) SSL_set_tlsext_host_name(k->c, o->sni);
    if (o->alpn) SSL_set_alpn_protos(k->c, (const unsigned char *)o->alpn, strlen(o->alpn));
    if (o->cert) {
        if (SSL_use_certificate_chain_file(k->c, P(o->cert)) != 1 ||
            SSL_use_PrivateKey_file(k->c, P(o->key), SSL_FILETYPE_PEM) != 1) {
            printf("#   client cannot load %s / %s\n", o->cert, o->key);
            ERR_print_errors_fp(stdout);
        }
    }
    if (o->session) SSL_set_session(k->c, o->session);
    k->t = mgw_tls_new(ctx);
}

/* Moves bytes both ways until neither side has anything more to say. */
static void pump(conn_t *k)
{
    static char buf[65536];
    for (int round = 0; round < 100; round++) {
        int moved = 0, n;
        if (!k->client_failed && !k->client_closed) {
            if (!SSL_is_init_finished(k->c)) {
                int rc = SSL_do_handshake(k->c);
                int e = rc == 1 ? SSL_ERROR_NONE : SSL_get_error(k->c, rc);
                if (e != SSL_ERROR_NONE && e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
                    k->client_failed = 1;
            }
            /* After the handshake: application data, tickets and alerts. */
            while (SSL_is_init_finished(k->c) && !k->client_failed) {
                n = SSL_read(k->c, buf, sizeof(buf));
                if (n > 0) {
                    mgw_buf_add(&k->client_got, buf, (size_t)n);
                    continue;
                }
                int e = SSL_get_error(k->c, n);
                if (e == SSL_ERROR_ZERO_RETURN)
                    k->client_closed = 1;
                else if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
                    k->client_failed = 1;
                break;
            }
        }
        while ((n = BIO_read(k->cout, buf, sizeof(buf))) > 0) {
            mgw_tls_feed(k->t, buf, (size_t)n);
            moved = 1;
        }
        for (;;) {
            ssize_t r = mgw_tls_read(k->t, buf, sizeof(buf));
            if (r > 0) {
                mgw_buf_add(&k->server_got, buf, (size_t)r);
                continue;
            }
            if (r == MGW_TLS_ERROR) k->server_failed = 1;
            if (r == MGW_TLS_CLOSED) k->server_closed = 1;
            break;
        }
        size_t m;
        while ((m = mgw_tls_pending(k->t, buf, sizeof(buf))) > 0) {
            BIO_write(k->cin, buf, (int)m);
            moved = 1;
        }
        if (!moved) break;
    }
}

static int conn_ok(const conn_t *k)
{
    return SSL_is_init_finished(k->c) && mgw_tls_handshake_done(k->t) && !k->client_failed &&
           !k->server_failed;
}

/* Opens, handshakes and returns whether both sides finished without an error. */
static int conn_connect(conn_t *k, mgw_tls_ctx_t *ctx, const client_opts_t *o)
{
    conn_open(k, ctx, o);
    pump(k);
    return conn_ok(k);
}

static void conn_close(conn_t *k)
{
    mgw_tls_free(k->t);
    SSL_free(k->c);
    SSL_CTX_free(k->cctx);
    mgw_buf_free(&k->client_got);
    mgw_buf_free(&k->server_got);
}

/* The common name of the certificate the server presented. */
static const char *server_cn(const conn_t *k)
{
    static char cn[128];
    cn[0] = '\0';
    X509 *x = SSL_get0_peer_certificate(k->c);
    if (x) X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn, sizeof(cn));
    return cn;
}

static const char *client_alpn(const conn_t *k)
{
    static char proto[64];
    const unsigned char *p;
    unsigned int n;
    SSL_get0_alpn_selected(k->c, &p, &n);
    snprintf(proto, sizeof(proto), "%.*s", (int)n, p ? (const char *)p : "");
    return proto;
}

/* Handshake as a client with certificate NAME.chain.pem (NULL: none); 1 on success. */
static int try_cert(mgw_tls_ctx_t *ctx, const char *name, conn_t *k)
{
    char chain[64], key[64];
    client_opts_t o = {.sni = "api.test", .alpn = (const char *)HTTP11};
    if (name) {
        snprintf(chain, sizeof(chain), "%s.chain.pem", name);
        snprintf(key, sizeof(key), "%s.key", name);
        o.cert = chain;
        o.key = key;
    }
    return conn_connect(k, ctx, &o);
}

/* ---- contexts ---- */

static int def_data, api_data, other_data; /* the sites' data pointers */

/* The test sites: the default one (default.pem) and api.test / other.test (api.pem,
 * other.pem), each with its data pointer; host NULL makes a site the default one. */
static mgw_tls_site_t site(const char *host, const char *name)
{
    char cert[64], key[64];
    snprintf(cert, sizeof(cert), "%s.pem", name);
    snprintf(key, sizeof(key), "%s.key", name);
    int *data = strcmp(name, "api") == 0     ? &api_data
                : strcmp(name, "other") == 0 ? &other_data
                                             : &def_data;
    return (mgw_tls_site_t){.host = host, .certificate = P(cert), .key = P(key), .data = data};
}

/* s with mutual TLS against truststore (and crl, when not NULL). */
static mgw_tls_site_t with_mtls(mgw_tls_site_t s, int mode, const char *truststore, const char *crl)
{
    s.mtls = mode;
    s.truststore = P(truststore);
    s.crl = crl ? P(crl) : NULL;
    return s;
}

/* A context of def plus the sites of hosts (up to two; NULL ends the list). */
static mgw_tls_ctx_t *ctx_of(mgw_tls_site_t def, int reject_unknown_sni, const mgw_tls_site_t *a,
                             const mgw_tls_site_t *b)
{
    char err[512] = "";
    mgw_tls_ctx_t *ctx = mgw_tls_ctx_new(&def, reject_unknown_sni, err, sizeof(err));
    if (!ctx) {
        printf("#   %s\n", err);
        return NULL;
    }
    if ((a && mgw_tls_ctx_add(ctx, a, err, sizeof(err)) != 0) ||
        (b && mgw_tls_ctx_add(ctx, b, err, sizeof(err)) != 0)) {
        printf("#   %s\n", err);
        mgw_tls_ctx_free(ctx);
        return NULL;
    }
    return ctx;
}

/* default.test by default, api.test and other.test by SNI; no client certificates. */
static mgw_tls_ctx_t *ctx_sites(int reject_unknown_sni)
{
    mgw_tls_site_t api = site("api.test", "api"), other = site("other.test", "other");
    return ctx_of(site(NULL, "default"), reject_unknown_sni, &api, &other);
}

/* api.test as the default site, with mutual TLS. */
static mgw_tls_ctx_t *ctx_mtls(int mode, const char *truststore, const char *crl)
{
    return ctx_of(with_mtls(site(NULL, "api"), mode, truststore, crl), 0, NULL, NULL);
}

/* ---- handshakes ---- */

static void test_handshake_tls13_alpn(void)
{
    mgw_tls_ctx_t *ctx = ctx_sites(0);
    NEED(ctx);
    conn_t k;
    client_opts_t o = {.sni = "api.test", .alpn = (const char *)HTTP11};
    CHECK(conn_connect(&k, ctx, &o));
    CHECK_STR(mgw_tls_version(k.t), "TLSv1.3");
    CHECK(SSL_version(k.c) == TLS1_3_VERSION);
    CHECK_STR(client_alpn(&k), "http/1.1");
    CHECK_STR(mgw_tls_sni(k.t), "api.test");
    CHECK(mgw_tls_site_data(k.t) == &api_data);
    CHECK_STR(server_cn(&k), "api.test");
    CHECK(mgw_tls_resumed(k.t) == 0);
    CHECK(mgw_tls_plain_http(k.t) == 0);
    conn_close(&k);
    mgw_tls_ctx_free(ctx);
}

static void test_tls12_accepted_tls11_refused(void)
{
    mgw_tls_ctx_t *ctx = ctx_sites(0);
    NEED(ctx);
    conn_t k;
    client_opts_t o = {
        .sni = "api.test", .alpn = (const char *)HTTP11, .max_version = TLS1_2_VERSION};
    CHECK(conn_connect(&k, ctx, &o));
    CHECK_STR(mgw_tls_version(k.t), "TLSv1.2");
    CHECK_STR(client_alpn(&k), "http/1.1");
    conn_close(&k);

    o.max_version = TLS1_1_VERSION;
    CHECK(!conn_connect(&k, ctx, &o));
    CHECK(k.server_failed);
    CHECK(k.alert == SSL_AD_PROTOCOL_VERSION);
    CHECK(mgw_tls_handshake_done(k.t) == 0);
    CHECK_HAS(mgw_tls_error(k.t), "unsupported protocol");
    CHECK(mgw_tls_failure(k.t) == MGW_TLSF_PROTOCOL_VERSION);
    CHECK(mgw_tls_plain_http(k.t) == 0);
    conn_close(&k);
    mgw_tls_ctx_free(ctx);
}

static void test_alpn(void)
{
    mgw_tls_ctx_t *ctx = ctx_sites(0);
    NEED(ctx);
    conn_t k;
    client_opts_t o = {.sni = "api.test", .alpn = "\x02h2\x08http/1.1"};
    CHECK(conn_connect(&k, ctx, &o));
    CHECK_STR(client_alpn(&k), "http/1.1");
    conn_close(&k);

    o.alpn = NULL; /* no ALPN at all (e.g. openssl s_client): plain HTTP/1.1 */
    CHECK(conn_connect(&k, ctx, &o));
    CHECK_STR(client_alpn(&k), "");
    conn_close(&k);

    o.alpn = "\x02h2"; /* only protocols we do not serve: no_application_protocol */
    CHECK(!conn_connect(&k, ctx, &o));
    CHECK(k.alert == SSL_AD_NO_APPLICATION_PROTOCOL);
    conn_close(&k);
    mgw_tls_ctx_free(ctx);
}

static void test_application_data(void)
{
    mgw_tls_ctx_t *ctx = ctx_sites(0);
    NEED(ctx);
    conn_t k;
    client_opts_t o = {.sni = "api.test", .alpn = (const char *)HTTP11};
    CHECK(conn_connect(&k, ctx, &o));

    CHECK(mgw_tls_write(k.t, "hello from moongate", 19) == MGW_TLS_OK);
    pump(&k);
    CHECK(k.client_got.n == 19 && memcmp(k.client_got.p, "hello from moongate", 19) == 0);

    CHECK(SSL_write(k.c, "GET / HTTP/1.1\r\n\r\n", 18) == 18);
    pump(&k);
    CHECK(k.server_got.n == 18 && memcmp(k.server_got.p, "GET / HTTP/1.1\r\n\r\n", 18) == 0);

    /* More than one record (16 KiB) each way arrives whole and in order. */
    enum { BIG = 100000 };
    static char big[BIG];
    for (int i = 0; i < BIG; i++)
        big[i] = (char)('a' + i % 23);
    k.client_got.n = 0;
    CHECK(mgw_tls_write(k.t, big, BIG) == MGW_TLS_OK);
    pump(&k);
    CHECK(k.client_got.n == BIG && memcmp(k.client_got.p, big, BIG) == 0);
    k.server_got.n = 0;
    size_t off = 0;
    while (off < BIG) {
        int w = SSL_write(k.c, big + off, BIG - (int)off);
        if (w <= 0) break;
        off += (size_t)w;
    }
    pump(&k);
    CHECK(k.server_got.n == BIG && memcmp(k.server_got.p, big, BIG) == 0);
    conn_close(&k);

    /* Nothing can be written before the handshake. */
    mgw_tls_t *t = mgw_tls_new(ctx);
    CHECK(mgw_tls_write(t, "x", 1) == MGW_TLS_ERROR);
    mgw_tls_free(t);
    mgw_tls_ctx_free(ctx);
}

static void test_close_notify(void)
{
    mgw_tls_ctx_t *ctx = ctx_sites(0);
    NEED(ctx);
    conn_t k;
    client_opts_t o = {.sni = "api.test", .alpn = (const char *)HTTP11};
    CHECK(conn_connect(&k, ctx, &o));
    mgw_tls_shutdown(k.t); /* the server closes: the client reads end of stream */
    pump(&k);
    CHECK(k.client_closed);
    conn_close(&k);

    CHECK(conn_connect(&k, ctx, &o));
    CHECK(SSL_shutdown(k.c) == 0); /* the client closes: the server reads CLOSED */
    pump(&k);
    CHECK(k.server_closed);
    CHECK(!k.server_failed);
    conn_close(&k);
    mgw_tls_ctx_free(ctx);
}

/* ---- SNI ---- */

static void test_sni_selects_site(void)
{
    mgw_tls_ctx_t *ctx = ctx_sites(0);
    NEED(ctx);
    struct {
        const char *sni, *cn;
        void *data;
    } cases[] = {
        {"api.test", "api.test", &api_data},         {"other.test", "other.test", &other_data},
        {"API.Test", "api.test", &api_data},         /* host names are case-insensitive */
        {"unknown.test", "default.test", &def_data}, /* unknown name: the default site */
        {NULL, "default.test", &def_data},           /* no SNI: the default site */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        conn_t k;
        client_opts_t o = {.sni = cases[i].sni, .alpn = (const char *)HTTP11};
        int ok = conn_connect(&k, ctx, &o);
        CHECK(ok);
        CHECK_STR(server_cn(&k), cases[i].cn);
        CHECK(mgw_tls_site_data(k.t) == cases[i].data);
        if (cases[i].sni)
            CHECK_STR(mgw_tls_sni(k.t), cases[i].sni);
        else
            CHECK(mgw_tls_sni(k.t) == NULL);
        if (!ok || mgw_tls_site_data(k.t) != cases[i].data)
            printf("#   case SNI %s\n", cases[i].sni ? cases[i].sni : "(none)");
        conn_close(&k);
    }
    mgw_tls_ctx_free(ctx);
}

static void test_sni_reject_unknown(void)
{
    mgw_tls_ctx_t *ctx = ctx_sites(1);
    NEED(ctx);
    conn_t k;
    client_opts_t o = {.sni = "unknown.test", .alpn = (const char *)HTTP11};
    CHECK(!conn_connect(&k, ctx, &o));
    CHECK(k.server_failed);
    CHECK(k.alert == SSL_AD_UNRECOGNIZED_NAME);
    CHECK_HAS(mgw_tls_error(k.t), "unknown server name \"unknown.test\"");
    CHECK(mgw_tls_failure(k.t) == MGW_TLSF_UNKNOWN_SNI);
    conn_close(&k);

    o.sni = "other.test"; /* known names still work */
    CHECK(conn_connect(&k, ctx, &o));
    CHECK(mgw_tls_site_data(k.t) == &other_data);
    conn_close(&k);

    o.sni = NULL; /* a client that sends no SNI gets the default certificate */
    CHECK(conn_connect(&k, ctx, &o));
    CHECK_STR(server_cn(&k), "default.test");
    conn_close(&k);
    mgw_tls_ctx_free(ctx);
}

/* ---- mutual TLS ---- */

/* A date in the format of $context.identity.clientCert.validity: "May 28 12:30:02 2019 GMT". */
static int gmt_date(const char *s)
{
    /* A: upper case, a: lower case, D: digit or space, 0: digit, anything else literal */
    static const char shape[] = "Aaa D0 00:00:00 0000 GMT";
    if (s == NULL || strlen(s) != sizeof(shape) - 1) return 0;
    for (size_t i = 0; shape[i]; i++) {
        char c = s[i], want = shape[i];
        int ok = want == 'A'   ? (c >= 'A' && c <= 'Z')
                 : want == 'a' ? (c >= 'a' && c <= 'z')
                 : want == 'D' ? (c == ' ' || (c >= '0' && c <= '9'))
                 : want == '0' ? (c >= '0' && c <= '9')
                               : c == want;
        if (!ok) return 0;
    }
    return 1;
}

/* What `openssl x509 -noout -OPTION` prints for DIR/file, after the "name=" prefix. */
static const char *openssl_x509(const char *file, const char *option)
{
    static char line[512];
    char cmd[PATH_MAX + 128];
    snprintf(cmd, sizeof(cmd), "openssl x509 -in '%s' -noout -%s", P(file), option);
    line[0] = '\0';
    FILE *f = popen(cmd, "r");
    if (!f) return line;
    if (!fgets(line, sizeof(line), f)) line[0] = '\0';
    pclose(f);
    line[strcspn(line, "\n")] = '\0';
    char *eq = strchr(line, '=');
    return eq ? eq + 1 : line;
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    static char text[16384];
    size_t n = fread(text, 1, sizeof(text) - 1, f);
    fclose(f);
    text[n] = '\0';
    return text;
}

/* Copies DIR/from over DIR/to, as an operator replacing a file before a reload. */
static int copy_file(const char *from, const char *to)
{
    char *text = slurp(P(from));
    FILE *f = text ? fopen(P(to), "wb") : NULL;
    if (!f) return -1;
    size_t n = strlen(text);
    int rc = fwrite(text, 1, n, f) == n ? 0 : -1;
    return fclose(f) == 0 ? rc : -1;
}

static void test_mtls_valid_chain_and_identity(void)
{
    mgw_tls_ctx_t *ctx = ctx_mtls(MGW_MTLS_REQUIRE, "trust.pem", NULL);
    NEED(ctx);
    conn_t k;
    CHECK(try_cert(ctx, "client", &k));
    CHECK_STR(mgw_tls_version(k.t), "TLSv1.3");
    mgw_pool_t *pool = mgw_pool_create(0);
    mgw_client_cert_t cc = {0};
    CHECK(mgw_tls_client_cert(k.t, pool, &cc) == 0);
    CHECK_STR(cc.subject_dn, "CN=client,O=Moongate Test");
    CHECK_STR(cc.issuer_dn, "CN=Moongate Test Intermediate,O=Moongate Test");
    CHECK_STR(cc.serial, "a1:b2:c3");
    CHECK(gmt_date(cc.not_before));
    CHECK(gmt_date(cc.not_after));
    if (!gmt_date(cc.not_before) || !gmt_date(cc.not_after))
        printf("#   dates \"%s\" \"%s\"\n", cc.not_before ? cc.not_before : "(null)",
               cc.not_after ? cc.not_after : "(null)");
    CHECK_STR(cc.not_before, openssl_x509("client.pem", "startdate"));
    CHECK_STR(cc.not_after, openssl_x509("client.pem", "enddate"));
    CHECK(cc.pem && strncmp(cc.pem, "-----BEGIN CERTIFICATE-----\n", 28) == 0);
    CHECK_STR(cc.pem, slurp(P("client.pem")));
    mgw_pool_destroy(pool);
    conn_close(&k);

    /* The leaf alone is enough: the truststore holds the intermediate. */
    client_opts_t o = {
        .sni = "api.test", .alpn = (const char *)HTTP11, .cert = "client.pem", .key = "client.key"};
    CHECK(conn_connect(&k, ctx, &o));
    conn_close(&k);

    /* TLS 1.2 as well. */
    o.max_version = TLS1_2_VERSION;
    CHECK(conn_connect(&k, ctx, &o));
    CHECK_STR(mgw_tls_version(k.t), "TLSv1.2");
    conn_close(&k);
    mgw_tls_ctx_free(ctx);
}

static void test_mtls_require_without_certificate(void)
{
    mgw_tls_ctx_t *ctx = ctx_mtls(MGW_MTLS_REQUIRE, "trust.pem", NULL);
    NEED(ctx);
    conn_t k;
    CHECK(!try_cert(ctx, NULL, &k));
    CHECK(k.server_failed);
    CHECK(k.alert == SSL_AD_CERTIFICATE_REQUIRED);
    CHECK(mgw_tls_handshake_done(k.t) == 0);
    mgw_pool_t *pool = mgw_pool_create(0);
    mgw_client_cert_t cc = {0};
    CHECK(mgw_tls_client_cert(k.t, pool, &cc) == -1);
    mgw_pool_destroy(pool);
    conn_close(&k);
    mgw_tls_ctx_free(ctx);
}

/* A client certificate that fails the handshake with reason in the error. */
static void rejected(mgw_tls_ctx_t *ctx, const char *name, const char *reason)
{
    conn_t k;
    int ok = try_cert(ctx, name, &k);
    CHECK(!ok);
    CHECK(k.server_failed);
    CHECK(mgw_tls_handshake_done(k.t) == 0);
    CHECK_HAS(mgw_tls_error(k.t), "Access denied. Reason: ");
    CHECK_HAS(mgw_tls_error(k.t), reason);
    CHECK(mgw_tls_failure(k.t) == MGW_TLSF_CLIENT_CERTIFICATE);
    if (ok || !k.server_failed) printf("#   certificate %s was accepted\n", name);
    conn_close(&k);
}

static void accepted(mgw_tls_ctx_t *ctx, const char *name, const char *subject_dn)
{
    conn_t k;
    int ok = try_cert(ctx, name, &k);
    CHECK(ok);
    if (!ok) printf("#   certificate %s: %s\n", name, mgw_tls_error(k.t));
    mgw_pool_t *pool = mgw_pool_create(0);
    mgw_client_cert_t cc = {0};
    CHECK(mgw_tls_client_cert(k.t, pool, &cc) == 0);
    CHECK_STR(cc.subject_dn, subject_dn);
    mgw_pool_destroy(pool);
    conn_close(&k);
}

static void test_mtls_rejections(void)
{
    mgw_tls_ctx_t *ctx = ctx_mtls(MGW_MTLS_REQUIRE, "trust.pem", NULL);
    NEED(ctx);
    rejected(ctx, "expired", "Certificate has expired");
    rejected(ctx, "future", "Certificate is not yet valid");
    rejected(ctx, "rogue", "Could not find issuer for certificate");
    conn_t k;
    client_opts_t o = {.sni = "api.test",
                       .alpn = (const char *)HTTP11,
                       .cert = "rogue.pem",
                       .key = "rogue.key"}; /* the leaf alone, without its root */
    CHECK(!conn_connect(&k, ctx, &o));
    CHECK_HAS(mgw_tls_error(k.t), "Access denied. Reason: Could not find issuer for certificate");
    conn_close(&k);
    rejected(ctx, "weak_rsa", "too weak");
    rejected(ctx, "sha1", "too weak");
    /* P-224 can only sign in TLS 1.2 (TLS 1.3 has no signature scheme for it) */
    client_opts_t w = {.sni = "api.test",
                       .alpn = (const char *)HTTP11,
                       .cert = "weak_ec.chain.pem",
                       .key = "weak_ec.key",
                       .max_version = TLS1_2_VERSION};
    CHECK(!conn_connect(&k, ctx, &w));
    CHECK_HAS(mgw_tls_error(k.t), "Access denied. Reason: Certificate key is too weak");
    conn_close(&k);
    /* The subject of the offending certificate is named. */
    try_cert(ctx, "expired", &k);
    CHECK_HAS(mgw_tls_error(k.t), "CN=expired");
    conn_close(&k);
    mgw_tls_ctx_free(ctx);
}

static void test_mtls_crl(void)
{
    /* inter's CRL only (none from the root): the revoked client fails, the good one passes. */
    mgw_tls_ctx_t *ctx = ctx_mtls(MGW_MTLS_REQUIRE, "trust.pem", "inter.crl.pem");
    NEED(ctx);
    rejected(ctx, "revoked", "Certificate has been revoked");
    accepted(ctx, "client", "CN=client,O=Moongate Test");
    rejected(ctx, "expired", "Certificate has expired");
    mgw_tls_ctx_free(ctx);

    /* The root's CRL revokes inter2: a client under inter2 fails although inter2 itself
     * has no CRL; clients under inter are judged by inter's CRL. */
    ctx = ctx_mtls(MGW_MTLS_REQUIRE, "trust2.pem", "crl_all.pem");
    NEED(ctx);
    rejected(ctx, "client2", "Certificate has been revoked");
    rejected(ctx, "revoked", "Certificate has been revoked");
    accepted(ctx, "client", "CN=client,O=Moongate Test");
    mgw_tls_ctx_free(ctx);

    /* Without the CRLs the same truststore accepts client2. */
    ctx = ctx_mtls(MGW_MTLS_REQUIRE, "trust2.pem", NULL);
    NEED(ctx);
    accepted(ctx, "client2", "CN=client2,O=Moongate Test");
    mgw_tls_ctx_free(ctx);
}

/* A client certificate from the deep PKI (root -> d1 -> ... -> d4), sent alone. */
static int try_deep(mgw_tls_ctx_t *ctx, const char *name, conn_t *k)
{
    char cert[64], key[64];
    snprintf(cert, sizeof(cert), "%s.pem", name);
    snprintf(key, sizeof(key), "%s.key", name);
    client_opts_t o = {.sni = "api.test", .alpn = (const char *)HTTP11, .cert = cert, .key = key};
    return conn_connect(k, ctx, &o);
}

/*
 * API Gateway's quota "Certificates can have a maximum chain length of four" counts the CA
 * certificates: a root and up to three intermediates above the client's certificate (as
 * reproduced in javierinthecloud.com/understanding-the-api-gateway-mtls-chain-depth-limit:
 * "the leaf client certificate itself is not counted"). So a PKI that works on AWS works
 * here, and five CAs never do.
 */
static void test_mtls_chain_depth(void)
{
    mgw_tls_ctx_t *ctx = ctx_mtls(MGW_MTLS_REQUIRE, "deeptrust.pem", NULL);
    NEED(ctx);
    conn_t k;
    CHECK(try_deep(ctx, "deep2", &k)); /* deep2, d2, d1, root */
    if (!conn_ok(&k)) printf("#   deep2: %s\n", mgw_tls_error(k.t));
    mgw_pool_t *pool = mgw_pool_create(0);
    mgw_client_cert_t cc = {0};
    CHECK(mgw_tls_client_cert(k.t, pool, &cc) == 0);
    CHECK_STR(cc.serial, "16"); /* serial 22: one byte */
    CHECK_STR(cc.issuer_dn, "CN=Deep 2,O=Moongate Test");
    mgw_pool_destroy(pool);
    conn_close(&k);

    CHECK(try_deep(ctx, "deep3", &k)); /* deep3, d3, d2, d1, root: four CAs */
    if (!conn_ok(&k)) printf("#   deep3: %s\n", mgw_tls_error(k.t));
    conn_close(&k);

    CHECK(!try_deep(ctx, "deep4", &k)); /* deep4, d4, d3, d2, d1, root: five CAs */
    CHECK_HAS(mgw_tls_error(k.t), "Access denied. Reason: Certificate chain is longer than 4");
    conn_close(&k);
    mgw_tls_ctx_free(ctx);
}

/* A serial over 64 bytes is reported whole (it was printed from an uninitialized buffer;
 * found by tests/fuzz/fuzz_pem). */
static void test_mtls_long_serial(void)
{
    mgw_tls_ctx_t *ctx = ctx_mtls(MGW_MTLS_REQUIRE, "trust.pem", NULL);
    NEED(ctx);
    conn_t k;
    CHECK(try_cert(ctx, "longserial", &k));
    if (!conn_ok(&k)) printf("#   longserial: %s\n", mgw_tls_error(k.t));
    mgw_pool_t *pool = mgw_pool_create(0);
    mgw_client_cert_t cc = {0};
    CHECK(mgw_tls_client_cert(k.t, pool, &cc) == 0);
    char want[70 * 3];
    size_t n = 0;
    for (int i = 0; i < 70; i++)
        n += (size_t)snprintf(want + n, sizeof(want) - n, i ? ":ab" : "ab");
    CHECK_STR(cc.serial, want);
    mgw_pool_destroy(pool);
    conn_close(&k);
    mgw_tls_ctx_free(ctx);
}

static void test_mtls_request_mode(void)
{
    mgw_tls_ctx_t *ctx = ctx_mtls(MGW_MTLS_REQUEST, "trust.pem", NULL);
    NEED(ctx);
    conn_t k;
    CHECK(try_cert(ctx, NULL, &k)); /* no certificate: the authorizer decides */
    mgw_pool_t *pool = mgw_pool_create(0);
    mgw_client_cert_t cc = {0};
    CHECK(mgw_tls_client_cert(k.t, pool, &cc) == -1);
    conn_close(&k);
    CHECK(try_cert(ctx, "client", &k)); /* a certificate is still verified and reported */
    CHECK(mgw_tls_client_cert(k.t, pool, &cc) == 0);
    CHECK_STR(cc.serial, "a1:b2:c3");
    conn_close(&k);
    mgw_pool_destroy(pool);
    mgw_tls_ctx_free(ctx);
}

/* mTLS belongs to the site the SNI selects, in both directions. */
static void test_mtls_per_site(void)
{
    /* default: no mTLS; api.test: mTLS required */
    mgw_tls_site_t api =
        with_mtls(site("api.test", "api"), MGW_MTLS_REQUIRE, "trust.pem", "inter.crl.pem");
    mgw_tls_ctx_t *ctx = ctx_of(site(NULL, "default"), 0, &api, NULL);
    NEED(ctx);
    conn_t k;
    CHECK(!try_cert(ctx, NULL, &k));
    conn_close(&k);
    accepted(ctx, "client", "CN=client,O=Moongate Test");
    rejected(ctx, "revoked", "Certificate has been revoked");
    rejected(ctx, "rogue", "Could not find issuer for certificate");
    client_opts_t o = {.sni = "default.test", .alpn = (const char *)HTTP11};
    CHECK(conn_connect(&k, ctx, &o));
    conn_close(&k);
    mgw_tls_ctx_free(ctx);

    /* default: mTLS required; other.test: none */
    mgw_tls_site_t other = site("other.test", "other");
    ctx =
        ctx_of(with_mtls(site(NULL, "api"), MGW_MTLS_REQUIRE, "trust.pem", NULL), 0, &other, NULL);
    NEED(ctx);
    o.sni = "other.test";
    CHECK(conn_connect(&k, ctx, &o));
    CHECK(mgw_tls_site_data(k.t) == &other_data);
    conn_close(&k);
    o.sni = "unknown.test";
    CHECK(!conn_connect(&k, ctx, &o));
    conn_close(&k);
    mgw_tls_ctx_free(ctx);
}

/*
 * The CertificateRequest names the CAs of the selected site's truststore, so that a client
 * holding several certificates (a browser, curl with an engine) can pick the right one.
 */
static void test_mtls_ca_names(void)
{
    mgw_tls_site_t api = with_mtls(site("api.test", "api"), MGW_MTLS_REQUIRE, "trust.pem", NULL);
    mgw_tls_ctx_t *ctx = ctx_of(
        with_mtls(site(NULL, "default"), MGW_MTLS_REQUIRE, "rogue_root.pem", NULL), 0, &api, NULL);
    NEED(ctx);
    conn_t k;
    client_opts_t o = {.sni = "default.test",
                       .alpn = (const char *)HTTP11,
                       .cert = "rogue.pem",
                       .key = "rogue.key"};
    CHECK(conn_connect(&k, ctx, &o));
    CHECK_STR(k.ca_names, "Rogue Root");
    conn_close(&k);
    CHECK(try_cert(ctx, "client", &k));
    CHECK_STR(k.ca_names, "Moongate Test Intermediate; Moongate Test Root");
    conn_close(&k);
    mgw_tls_ctx_free(ctx);
}

/* ---- why handshakes fail, for GET /metrics ---- */

/* The client certificate name fails with the mutual-TLS reason want. */
static void refused_for(mgw_tls_ctx_t *ctx, const char *name, mgw_mtls_reason_t want)
{
    conn_t k;
    CHECK(!try_cert(ctx, name, &k));
    CHECK(mgw_tls_failure(k.t) == MGW_TLSF_CLIENT_CERTIFICATE);
    if (mgw_tls_mtls_reason(k.t) != want)
        printf("#   %s: reason %s, want %s\n", name ? name : "(none)",
               mgw_mtls_reason_name(mgw_tls_mtls_reason(k.t)), mgw_mtls_reason_name(want));
    CHECK(mgw_tls_mtls_reason(k.t) == want);
    conn_close(&k);
}

static void test_mtls_refusal_reasons(void)
{
    mgw_tls_ctx_t *ctx = ctx_mtls(MGW_MTLS_REQUIRE, "trust.pem", "inter.crl.pem");
    NEED(ctx);
    refused_for(ctx, NULL, MGW_MTLSR_NO_CERTIFICATE);
    refused_for(ctx, "rogue", MGW_MTLSR_UNTRUSTED);
    refused_for(ctx, "expired", MGW_MTLSR_EXPIRED);
    refused_for(ctx, "future", MGW_MTLSR_NOT_YET_VALID);
    refused_for(ctx, "revoked", MGW_MTLSR_REVOKED);
    refused_for(ctx, "weak_rsa", MGW_MTLSR_WEAK);
    refused_for(ctx, "sha1", MGW_MTLSR_WEAK);
    conn_t k;
    CHECK(try_cert(ctx, "client", &k)); /* a success has no failure */
    CHECK(mgw_tls_failure(k.t) == MGW_TLSF_OTHER);
    CHECK(mgw_tls_site_host(k.t) == NULL); /* the default site */
    conn_close(&k);
    mgw_tls_ctx_free(ctx);
}

static void test_failure_of_reason(void)
{
    /* the engine's failures, by what OpenSSL said */
    CHECK(mgw_tls_failure_of(SSL_R_NO_SHARED_CIPHER) == MGW_TLSF_NO_SHARED_CIPHER);
    CHECK(mgw_tls_failure_of(SSL_R_UNSUPPORTED_PROTOCOL) == MGW_TLSF_PROTOCOL_VERSION);
    CHECK(mgw_tls_failure_of(SSL_R_WRONG_VERSION_NUMBER) == MGW_TLSF_NOT_TLS);
    CHECK(mgw_tls_failure_of(SSL_R_HTTP_REQUEST) == MGW_TLSF_PLAIN_HTTP);
    CHECK(mgw_tls_failure_of(SSL_R_NO_APPLICATION_PROTOCOL) == MGW_TLSF_NO_ALPN);
    CHECK(mgw_tls_failure_of(SSL_R_UNEXPECTED_RECORD) == MGW_TLSF_BAD_RECORD);
    CHECK(mgw_tls_failure_of(SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE) ==
          MGW_TLSF_CLIENT_CERTIFICATE);
    /* alerts the client sent: refusing our certificate, or something else */
    CHECK(mgw_tls_failure_of(SSL_R_TLSV1_ALERT_UNKNOWN_CA) == MGW_TLSF_CERTIFICATE_REJECTED);
    CHECK(mgw_tls_failure_of(SSL_R_SSLV3_ALERT_BAD_CERTIFICATE) == MGW_TLSF_CERTIFICATE_REJECTED);
    CHECK(mgw_tls_failure_of(SSL_AD_REASON_OFFSET + SSL_AD_HANDSHAKE_FAILURE) ==
          MGW_TLSF_CLIENT_ALERT);
    CHECK(mgw_tls_failure_of(SSL_AD_REASON_OFFSET + SSL_AD_PROTOCOL_VERSION) ==
          MGW_TLSF_PROTOCOL_VERSION);
    CHECK(mgw_tls_failure_of(0) == MGW_TLSF_OTHER);
    CHECK(mgw_tls_failure_of(SSL_R_BAD_SIGNATURE) == MGW_TLSF_OTHER);
    /* verification errors */
    CHECK(mgw_mtls_reason_of(X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY) == MGW_MTLSR_UNTRUSTED);
    CHECK(mgw_mtls_reason_of(X509_V_ERR_CERT_HAS_EXPIRED) == MGW_MTLSR_EXPIRED);
    CHECK(mgw_mtls_reason_of(X509_V_ERR_CERT_REVOKED) == MGW_MTLSR_REVOKED);
    CHECK(mgw_mtls_reason_of(X509_V_ERR_CERT_CHAIN_TOO_LONG) == MGW_MTLSR_CHAIN_TOO_LONG);
    CHECK(mgw_mtls_reason_of(X509_V_ERR_CRL_HAS_EXPIRED) == MGW_MTLSR_CRL_EXPIRED);
    CHECK(mgw_mtls_reason_of(X509_V_ERR_INVALID_PURPOSE) == MGW_MTLSR_OTHER);
    /* the label values: distinct, lower case and underscores, "other" out of range */
    CHECK_STR(mgw_tls_failure_name(MGW_TLSF_CLIENT_CLOSED), "client_closed");
    CHECK_STR(mgw_tls_failure_name(MGW_TLSF_COUNT), "other");
    CHECK_STR(mgw_mtls_reason_name(MGW_MTLSR_NO_CERTIFICATE), "no_certificate");
    CHECK_STR(mgw_mtls_reason_name(MGW_MTLSR_COUNT), "other");
    for (int i = 0; i < MGW_TLSF_COUNT; i++) {
        const char *a = mgw_tls_failure_name(i);
        CHECK(strspn(a, "abcdefghijklmnopqrstuvwxyz_") == strlen(a));
        for (int j = 0; j < i; j++)
            CHECK(strcmp(a, mgw_tls_failure_name(j)) != 0);
    }
    for (int i = 0; i < MGW_MTLSR_COUNT; i++) {
        const char *a = mgw_mtls_reason_name(i);
        CHECK(strspn(a, "abcdefghijklmnopqrstuvwxyz_") == strlen(a));
        for (int j = 0; j < i; j++)
            CHECK(strcmp(a, mgw_mtls_reason_name(j)) != 0);
    }
}

/* What mgw_tls_ctx_each_ca reports. */
typedef struct {
    int n;
    char subject[4][128], fingerprint[4][32], truststore[4][512];
    int64_t not_after[4];
    int default_site;
} cas_t;

static void ca_seen(void *ud, const char *host, const char *truststore, const char *subject,
                    const char *fingerprint, int64_t not_after)
{
    cas_t *c = ud;
    if (c->n == 4) return;
    c->default_site += host == NULL;
    snprintf(c->subject[c->n], sizeof(c->subject[0]), "%s", subject);
    snprintf(c->fingerprint[c->n], sizeof(c->fingerprint[0]), "%s", fingerprint);
    snprintf(c->truststore[c->n], sizeof(c->truststore[0]), "%s", truststore);
    c->not_after[c->n++] = not_after;
}

static void test_truststore_cas(void)
{
    mgw_tls_ctx_t *ctx = ctx_mtls(MGW_MTLS_REQUIRE, "trust.pem", NULL);
    NEED(ctx);
    cas_t c = {0};
    mgw_tls_ctx_each_ca(ctx, ca_seen, &c);
    CHECK(c.n == 2); /* trust.pem: the intermediate, then the root */
    CHECK(c.default_site == 2);
    CHECK_STR(c.subject[0], "Moongate Test Intermediate");
    CHECK_STR(c.subject[1], "Moongate Test Root");
    CHECK_STR(c.truststore[0], P("trust.pem"));
    /* the fingerprint prefix and notAfter agree with openssl x509 */
    const char *names[] = {"inter.pem", "root.pem"};
    for (int i = 0; i < 2 && i < c.n; i++) {
        char want[17] = "";
        const char *fp = openssl_x509(names[i], "fingerprint -sha256");
        for (int o = 0; *fp && o < 16; fp++)
            if (*fp != ':') want[o++] = (char)(*fp >= 'A' && *fp <= 'F' ? *fp + 32 : *fp);
        CHECK_STR(c.fingerprint[i], want);
        struct tm tm = {0};
        CHECK(strptime(openssl_x509(names[i], "enddate"), "%b %d %H:%M:%S %Y GMT", &tm) != NULL);
        CHECK(c.not_after[i] == (int64_t)timegm(&tm));
    }
    mgw_tls_ctx_free(ctx);
    /* a context without mutual TLS has none */
    ctx = ctx_sites(0);
    NEED(ctx);
    c.n = 0;
    mgw_tls_ctx_each_ca(ctx, ca_seen, &c);
    CHECK(c.n == 0);
    mgw_tls_ctx_free(ctx);
}

/* ---- bad input ---- */

static void test_plain_http(void)
{
    mgw_tls_ctx_t *ctx = ctx_sites(0);
    NEED(ctx);
    mgw_tls_t *t = mgw_tls_new(ctx);
    const char req[] = "GET / HTTP/1.1\r\nHost: api.test\r\n\r\n";
    mgw_tls_feed(t, req, sizeof(req) - 1);
    char buf[4096];
    CHECK(mgw_tls_read(t, buf, sizeof(buf)) == MGW_TLS_ERROR);
    CHECK(mgw_tls_plain_http(t) == 1);
    CHECK_HAS(mgw_tls_error(t), "plain HTTP");
    CHECK(mgw_tls_failure(t) == MGW_TLSF_PLAIN_HTTP);
    CHECK(mgw_tls_read(t, buf, sizeof(buf)) == MGW_TLS_ERROR); /* and stays failed */
    CHECK(mgw_tls_write(t, "x", 1) == MGW_TLS_ERROR);
    mgw_tls_free(t);
    mgw_tls_ctx_free(ctx);
}

static void test_garbage(void)
{
    mgw_tls_ctx_t *ctx = ctx_sites(0);
    NEED(ctx);
    char buf[4096], noise[4096];
    uint32_t x = 2463534242u;
    for (size_t i = 0; i < sizeof(noise); i++) {
        x ^= x << 13, x ^= x >> 17, x ^= x << 5;
        noise[i] = (char)(x & 0xff);
    }
    noise[0] = 0x00; /* not a record type, not a letter */
    struct {
        const char *p;
        size_t n;
    } inputs[] = {
        {noise, sizeof(noise)},
        {"\x16\x03\x01\x00\x05hello", 10}, /* a handshake record of nonsense */
        {"\x17\x03\x03\x00\x10"
         "0123456789abcdef",
         21},                        /* application data before hello */
        {"\x16\x03\x01\xff\xff", 5}, /* an oversized record header... */
    };
    for (size_t i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++) {
        mgw_tls_t *t = mgw_tls_new(ctx);
        mgw_tls_feed(t, inputs[i].p, inputs[i].n);
        ssize_t r = mgw_tls_read(t, buf, sizeof(buf));
        if (i == 3) {
            /* ...is either refused at once or waits for its body; then garbage fails it */
            if (r == MGW_TLS_WANT) {
                mgw_tls_feed(t, noise, sizeof(noise));
                r = mgw_tls_read(t, buf, sizeof(buf));
            }
        }
        CHECK(r == MGW_TLS_ERROR);
        if (r != MGW_TLS_ERROR) printf("#   garbage input %zu: %zd\n", i, r);
        CHECK(mgw_tls_plain_http(t) == 0);
        CHECK(strcmp(mgw_tls_error(t), "") != 0);
        CHECK(mgw_tls_handshake_done(t) == 0);
        mgw_tls_pending(t, buf, sizeof(buf)); /* an alert, perhaps */
        mgw_tls_free(t);
    }

    /* A truncated ClientHello waits for the rest, and can be freed while waiting. */
    conn_t k;
    client_opts_t o = {.sni = "api.test", .alpn = (const char *)HTTP11};
    conn_open(&k, ctx, &o);
    SSL_do_handshake(k.c);
    int n = BIO_read(k.cout, buf, sizeof(buf));
    CHECK(n > 40);
    mgw_tls_feed(k.t, buf, 40);
    CHECK(mgw_tls_read(k.t, buf + 2048, 1024) == MGW_TLS_WANT);
    CHECK(mgw_tls_handshake_done(k.t) == 0);
    CHECK(mgw_tls_plain_http(k.t) == 0);
    conn_close(&k);
    mgw_tls_ctx_free(ctx);
}

/* ---- session resumption ---- */

/* Handshakes, then returns the client's session (with its ticket) or NULL. */
static SSL_SESSION *session_from(mgw_tls_ctx_t *ctx, client_opts_t o)
{
    conn_t k;
    SSL_SESSION *s = NULL;
    o.session = NULL;
    if (conn_connect(&k, ctx, &o)) {
        pump(&k); /* TLS 1.3 tickets arrive after the handshake */
        s = SSL_get1_session(k.c);
        /* OpenSSL marks the session of a client freed without close_notify unusable */
        SSL_shutdown(k.c);
        pump(&k);
        if (s && !SSL_SESSION_is_resumable(s)) {
            SSL_SESSION_free(s);
            s = NULL;
        }
    }
    conn_close(&k);
    return s;
}

static void test_resumption(void)
{
    mgw_tls_ctx_t *ctx = ctx_sites(0);
    NEED(ctx);
    int versions[] = {TLS1_3_VERSION, TLS1_2_VERSION};
    for (int i = 0; i < 2; i++) {
        client_opts_t o = {
            .sni = "api.test", .alpn = (const char *)HTTP11, .max_version = versions[i]};
        SSL_SESSION *s = session_from(ctx, o);
        CHECK(s != NULL);
        conn_t k;
        o.session = s;
        CHECK(conn_connect(&k, ctx, &o));
        CHECK(mgw_tls_resumed(k.t) == 1);
        CHECK(SSL_session_reused(k.c) == 1);
        CHECK(mgw_tls_site_data(k.t) == &api_data);
        CHECK_STR(client_alpn(&k), "http/1.1");
        conn_close(&k);
        SSL_SESSION_free(s);
    }
    mgw_tls_ctx_free(ctx);
}

/* A TLS 1.3 resumption hands the client a fresh ticket: clients use a ticket once, so a
 * chain of connections stays resumed (wrk, browsers). */
static void test_resumption_renews_ticket(void)
{
    mgw_tls_ctx_t *ctx = ctx_sites(0);
    NEED(ctx);
    client_opts_t o = {.sni = "api.test", .alpn = (const char *)HTTP11};
    SSL_SESSION *s = session_from(ctx, o);
    CHECK(s != NULL);
    for (int hop = 0; s && hop < 3; hop++) {
        conn_t k;
        o.session = s;
        CHECK(conn_connect(&k, ctx, &o));
        CHECK(mgw_tls_resumed(k.t) == 1);
        pump(&k);
        SSL_SESSION *next = SSL_get1_session(k.c);
        SSL_shutdown(k.c);
        pump(&k);
        conn_close(&k);
        int fresh = next && next != s && SSL_SESSION_is_resumable(next);
        if (!fresh) printf("#   resumption %d left the client without a fresh ticket\n", hop + 1);
        CHECK(fresh);
        SSL_SESSION_free(s);
        s = fresh ? next : NULL;
        if (!fresh && next) SSL_SESSION_free(next);
    }
    if (s) SSL_SESSION_free(s);
    mgw_tls_ctx_free(ctx);
}

/* A ticket key encrypts for TICKET_KEY_LIFETIME and decrypts for one more. */
static void test_ticket_key_rotation(void)
{
    mgw_tls_ctx_t *ctx = ctx_sites(0);
    NEED(ctx);
    client_opts_t o = {.sni = "api.test", .alpn = (const char *)HTTP11};
    SSL_SESSION *s = session_from(ctx, o);
    CHECK(s != NULL);
    conn_t k;

    ticket_keys[0].created -= TICKET_KEY_LIFETIME; /* the next handshake rotates */
    o.session = s;
    CHECK(conn_connect(&k, ctx, &o));
    CHECK(mgw_tls_resumed(k.t) == 1); /* the previous key still decrypts */
    conn_close(&k);

    ticket_keys[0].created -= TICKET_KEY_LIFETIME; /* rotates again: the old key is gone */
    CHECK(conn_connect(&k, ctx, &o));
    CHECK(mgw_tls_resumed(k.t) == 0); /* a full handshake instead */
    conn_close(&k);
    SSL_SESSION_free(s);
    mgw_tls_ctx_free(ctx);
}

static void test_resumption_keeps_client_cert(void)
{
    mgw_tls_ctx_t *ctx = ctx_mtls(MGW_MTLS_REQUIRE, "trust.pem", NULL);
    NEED(ctx);
    client_opts_t o = {.sni = "api.test",
                       .alpn = (const char *)HTTP11,
                       .cert = "client.chain.pem",
                       .key = "client.key"};
    SSL_SESSION *s = session_from(ctx, o);
    CHECK(s != NULL);
    conn_t k;
    o.session = s;
    CHECK(conn_connect(&k, ctx, &o));
    CHECK(mgw_tls_resumed(k.t) == 1);
    mgw_pool_t *pool = mgw_pool_create(0);
    mgw_client_cert_t cc = {0};
    CHECK(mgw_tls_client_cert(k.t, pool, &cc) == 0);
    CHECK_STR(cc.subject_dn, "CN=client,O=Moongate Test");
    mgw_pool_destroy(pool);
    conn_close(&k);
    SSL_SESSION_free(s);
    mgw_tls_ctx_free(ctx);
}

/*
 * A ticket from a site without mTLS must not open a site that requires a client
 * certificate: resuming it would skip the certificate altogether.
 */
static void test_ticket_does_not_bypass_mtls(void)
{
    mgw_tls_site_t api = with_mtls(site("api.test", "api"), MGW_MTLS_REQUIRE, "trust.pem", NULL);
    mgw_tls_site_t other = site("other.test", "other");
    mgw_tls_ctx_t *ctx = ctx_of(site(NULL, "default"), 0, &api, &other);
    NEED(ctx);
    int versions[] = {TLS1_3_VERSION, TLS1_2_VERSION};
    for (int i = 0; i < 2; i++) {
        client_opts_t o = {
            .sni = "other.test", .alpn = (const char *)HTTP11, .max_version = versions[i]};
        SSL_SESSION *s = session_from(ctx, o);
        CHECK(s != NULL);
        conn_t k;
        o.sni = "api.test";
        o.session = s;
        int ok = conn_connect(&k, ctx, &o);
        CHECK(!ok);
        if (ok)
            printf("#   %s: a ticket from other.test resumed=%d on api.test (mTLS required) "
                   "without a client certificate\n",
                   versions[i] == TLS1_3_VERSION ? "TLSv1.3" : "TLSv1.2", mgw_tls_resumed(k.t));
        conn_close(&k);
        SSL_SESSION_free(s);
    }
    mgw_tls_ctx_free(ctx);
}

/*
 * A reload that adds a CRL (or changes the truststore) takes effect for sessions made
 * before it: the ticket of a certificate revoked since must not resume.
 */
static void test_ticket_does_not_outlive_revocation(void)
{
    /* live.crl.pem first holds inter's CRL from before the revocation, then the new one */
    CHECK(copy_file("inter.crl0.pem", "live.crl.pem") == 0);
    mgw_tls_ctx_t *before = ctx_mtls(MGW_MTLS_REQUIRE, "trust.pem", "live.crl.pem");
    CHECK(copy_file("inter.crl.pem", "live.crl.pem") == 0);
    mgw_tls_ctx_t *after = ctx_mtls(MGW_MTLS_REQUIRE, "trust.pem", "live.crl.pem");
    if (!before || !after) {
        CHECK(0);
        mgw_tls_ctx_free(before);
        mgw_tls_ctx_free(after);
        return;
    }
    client_opts_t o = {.sni = "api.test",
                       .alpn = (const char *)HTTP11,
                       .cert = "revoked.chain.pem",
                       .key = "revoked.key"};
    SSL_SESSION *s = session_from(before, o); /* not yet revoked: accepted */
    CHECK(s != NULL);
    conn_t k;
    o.session = s;
    int ok = conn_connect(&k, after, &o);
    CHECK(!ok);
    if (ok)
        printf("#   a revoked certificate resumed=%d its session\n", mgw_tls_resumed(k.t));
    else
        CHECK_HAS(mgw_tls_error(k.t), "Certificate has been revoked");
    conn_close(&k);
    SSL_SESSION_free(s);
    mgw_tls_ctx_free(before);
    mgw_tls_ctx_free(after);
}

/* ---- configuration ---- */

static void test_expiry(void)
{
    mgw_tls_ctx_t *ctx = ctx_sites(0); /* default 365 days, api.test 90, other.test 29 */
    NEED(ctx);
    const char *file = NULL;
    int days = mgw_tls_ctx_expiry(ctx, &file);
    CHECK(days >= 28 && days <= 29);
    CHECK_STR(file, P("other.pem"));
    mgw_tls_ctx_free(ctx);

    char err[512] = "";
    mgw_tls_site_t def = {.certificate = P("default.pem"), .key = P("default.key")};
    ctx = mgw_tls_ctx_new(&def, 0, err, sizeof(err));
    NEED(ctx);
    days = mgw_tls_ctx_expiry(ctx, &file);
    CHECK(days >= 364 && days <= 365);
    CHECK_STR(file, P("default.pem"));
    mgw_tls_ctx_free(ctx);

    /* Expired on 1 January 2021: negative. */
    mgw_tls_site_t old = {.certificate = P("expired.pem"), .key = P("expired.key")};
    ctx = mgw_tls_ctx_new(&old, 0, err, sizeof(err));
    NEED(ctx);
    days = mgw_tls_ctx_expiry(ctx, &file);
    time_t end = 1609459200; /* 2021-01-01T00:00:00Z */
    int want = (int)((end - time(NULL)) / 86400);
    CHECK(days < 0 && days >= want - 2 && days <= want);
    mgw_tls_ctx_free(ctx);
}

static void bad_site(mgw_tls_site_t s, const char *what, const char *file)
{
    char err[512] = "";
    mgw_tls_ctx_t *ctx = mgw_tls_ctx_new(&s, 0, err, sizeof(err));
    CHECK(ctx == NULL);
    mgw_tls_ctx_free(ctx);
    CHECK_HAS(err, what);
    CHECK_HAS(err, file);
}

static void test_bad_files(void)
{
    char cert[PATH_MAX + 64], key[PATH_MAX + 64], trust[PATH_MAX + 64]; /* P() recycles */
    snprintf(cert, sizeof(cert), "%s", P("api.pem"));
    snprintf(key, sizeof(key), "%s", P("api.key"));
    snprintf(trust, sizeof(trust), "%s", P("trust.pem"));
    bad_site((mgw_tls_site_t){.certificate = P("missing.pem"), .key = key}, "certificate",
             P("missing.pem"));
    bad_site((mgw_tls_site_t){.certificate = P("garbage.pem"), .key = key}, "certificate",
             P("garbage.pem"));
    bad_site((mgw_tls_site_t){.certificate = cert, .key = P("missing.key")}, "key",
             P("missing.key"));
    bad_site((mgw_tls_site_t){.certificate = cert, .key = P("other.key")}, "mismatch",
             P("other.key")); /* another certificate's key */
    bad_site((mgw_tls_site_t){.certificate = cert,
                              .key = key,
                              .mtls = MGW_MTLS_REQUIRE,
                              .truststore = P("missing-trust.pem")},
             "truststore", P("missing-trust.pem"));
    bad_site((mgw_tls_site_t){.certificate = cert,
                              .key = key,
                              .mtls = MGW_MTLS_REQUIRE,
                              .truststore = trust,
                              .crl = P("garbage.pem")},
             "CRL", P("garbage.pem"));
    bad_site((mgw_tls_site_t){.certificate = cert,
                              .key = key,
                              .mtls = MGW_MTLS_REQUIRE,
                              .truststore = trust,
                              .crl = P("missing-crl.pem")},
             "CRL", P("missing-crl.pem"));

    /* A site that fails to load leaves the context as it was. */
    mgw_tls_ctx_t *ctx = ctx_sites(0);
    NEED(ctx);
    char err[512] = "";
    mgw_tls_site_t broken = {.host = "broken.test", .certificate = P("missing.pem"), .key = key};
    CHECK(mgw_tls_ctx_add(ctx, &broken, err, sizeof(err)) == -1);
    CHECK_HAS(err, P("missing.pem"));
    conn_t k;
    client_opts_t o = {.sni = "broken.test", .alpn = (const char *)HTTP11};
    CHECK(conn_connect(&k, ctx, &o));
    CHECK_STR(server_cn(&k), "default.test");
    conn_close(&k);
    mgw_tls_ctx_free(ctx);
}

/* ---- the PKI ---- */

static int make_pki(void)
{
    if (unit_make_certs(dir, sizeof(dir), "tls", "tests/unit/tls_certs.sh") != 0) return -1;
    return 0;
}

static void remove_pki(void)
{
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0) printf("# cannot remove %s\n", dir);
}

int main(void)
{
    if (make_pki() != 0) {
        printf("not ok - make_pki\n");
        unit_failed++;
        return DONE();
    }
    RUN(test_handshake_tls13_alpn);
    RUN(test_tls12_accepted_tls11_refused);
    RUN(test_alpn);
    RUN(test_application_data);
    RUN(test_close_notify);
    RUN(test_sni_selects_site);
    RUN(test_sni_reject_unknown);
    RUN(test_mtls_valid_chain_and_identity);
    RUN(test_mtls_require_without_certificate);
    RUN(test_mtls_rejections);
    RUN(test_mtls_crl);
    RUN(test_mtls_chain_depth);
    RUN(test_mtls_long_serial);
    RUN(test_mtls_request_mode);
    RUN(test_mtls_per_site);
    RUN(test_mtls_ca_names);
    RUN(test_plain_http);
    RUN(test_garbage);
    RUN(test_resumption);
    RUN(test_resumption_renews_ticket);
    RUN(test_ticket_key_rotation);
    RUN(test_resumption_keeps_client_cert);
    RUN(test_ticket_does_not_bypass_mtls);
    RUN(test_ticket_does_not_outlive_revocation);
    RUN(test_expiry);
    RUN(test_bad_files);
    RUN(test_mtls_refusal_reasons);
    RUN(test_failure_of_reason);
    RUN(test_truststore_cas);
    if (getenv("MGW_KEEP_PKI"))
        printf("# PKI kept in %s\n", dir);
    else
        remove_pki();
    return DONE();
}
