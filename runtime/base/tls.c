#include "base/tls.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <arpa/inet.h>
#include <pthread.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/castore.h"
#include "base/crypto.h"
#include "base/mem.h"

#define CIPHERS                                                                                    \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"     \
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
#define MAX_CHAIN_DEPTH 4
#define TICKET_KEY_LIFETIME 3600 /* seconds a ticket key encrypts; it decrypts twice as long */

/* A CA certificate of a truststore, for moongate_tls_truststore_ca_expiry_seconds. */
typedef struct {
    char *subject;
    char fingerprint[17];
    time_t not_after;
} ca_info_t;

typedef struct {
    SSL_CTX *ctx;
    char *host;
    char *certificate;
    char *truststore; /* mtls: the file, and its CA certificates */
    ca_info_t *cas;
    int ncas;
    int mtls;
    int check;
    void *data;
    time_t not_after;
    /* What a session ticket must have been made under to resume here: a digest of the
     * host, the mTLS mode and the truststore and CRL contents. */
    unsigned char tag[16];
} site_t;

struct mgw_tls_ctx_s {
    site_t def;
    site_t *sites;
    int nsites;
    int reject_unknown_sni;
};

struct mgw_tls_s {
    SSL *ssl;
    BIO *in, *out; /* memory BIOs: ciphertext from and to the network */
    mgw_tls_ctx_t *ctx;
    const site_t *site;       /* chosen by the SNI callback */
    const site_t *hello_site; /* named by the ClientHello, for the ticket check */
    mgw_tls_check_cb check_cb;
    void *check_ud;
    int done, failed, plain_http;
    /* why it failed (metrics); cert_refused: the verify callback refused the client's
     * certificate, for mtls_reason */
    mgw_tls_failure_t failure;
    mgw_mtls_reason_t mtls_reason;
    int cert_refused;
    char error[256];
};

static int ex_index = -1; /* SSL ex_data slot holding the mgw_tls_t */
static pthread_once_t once = PTHREAD_ONCE_INIT;

/* ---- session ticket keys: one process-wide ring shared by every worker ---- */

typedef struct {
    unsigned char name[16], aes[32], hmac[32];
    time_t created;
} ticket_key_t;

static pthread_mutex_t ticket_lock = PTHREAD_MUTEX_INITIALIZER; /* handshakes only */
static ticket_key_t ticket_keys[2];                             /* [0] current, [1] previous */

static void ticket_key_new(ticket_key_t *k)
{
    RAND_bytes(k->name, sizeof(k->name));
    RAND_bytes(k->aes, sizeof(k->aes));
    RAND_bytes(k->hmac, sizeof(k->hmac));
    k->created = time(NULL);
}

/* Rotates the current key every TICKET_KEY_LIFETIME; the previous one still decrypts. */
static void ticket_rotate(void)
{
    if (ticket_keys[0].created == 0) ticket_key_new(&ticket_keys[0]);
    if (time(NULL) - ticket_keys[0].created >= TICKET_KEY_LIFETIME) {
        ticket_keys[1] = ticket_keys[0];
        ticket_key_new(&ticket_keys[0]);
    }
}

static EVP_CIPHER *ticket_cipher; /* fetched once: a lookup by name per ticket is costly */

static int ticket_cb(SSL *s, unsigned char name[16], unsigned char *iv, EVP_CIPHER_CTX *cctx,
                     EVP_MAC_CTX *hctx, int enc)
{
    (void)s;
    OSSL_PARAM params[2];
    params[0] = OSSL_PARAM_construct_utf8_string("digest", "SHA256", 0);
    params[1] = OSSL_PARAM_construct_end();
    pthread_mutex_lock(&ticket_lock);
    ticket_rotate();
    ticket_key_t k;
    int found = 0;
    if (enc) {
        k = ticket_keys[0];
        memcpy(name, k.name, 16);
        found = 1;
    } else {
        for (int i = 0; i < 2; i++) {
            if (ticket_keys[i].created && memcmp(name, ticket_keys[i].name, 16) == 0) {
                k = ticket_keys[i];
                found = i + 1;
            }
        }
    }
    pthread_mutex_unlock(&ticket_lock);
    if (!found) return 0; /* unknown key: full handshake */
    if (enc && RAND_bytes(iv, EVP_MAX_IV_LENGTH) <= 0) return -1;
    if (!EVP_CipherInit_ex(cctx, ticket_cipher ? ticket_cipher : EVP_aes_256_cbc(), NULL, k.aes, iv,
                           enc))
        return -1;
    params[1] = OSSL_PARAM_construct_octet_string("key", k.hmac, sizeof(k.hmac));
    OSSL_PARAM p2[3] = {params[0], params[1], OSSL_PARAM_construct_end()};
    if (!EVP_MAC_CTX_set_params(hctx, p2)) return -1;
    /* 2: decrypted with the previous key, ask the client to take a fresh ticket */
    return found == 2 ? 2 : 1;
}

/* ---- which tickets may resume where ---- */

static const site_t *site_for(const mgw_tls_ctx_t *ctx, const char *name)
{
    for (int i = 0; name && i < ctx->nsites; i++)
        if (strcasecmp(ctx->sites[i].host, name) == 0) return &ctx->sites[i];
    return &ctx->def;
}

static void hash_file(EVP_MD_CTX *md, const char *file)
{
    FILE *f = file ? fopen(file, "rb") : NULL;
    char buf[4096];
    size_t n;
    while (f && (n = fread(buf, 1, sizeof(buf), f)) > 0)
        EVP_DigestUpdate(md, buf, n);
    if (f) fclose(f);
    EVP_DigestUpdate(md, "|", 1);
}

static void site_tag(site_t *s, const mgw_tls_site_t *in)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    EVP_DigestInit_ex(c, EVP_sha256(), NULL);
    EVP_DigestUpdate(c, in->host ? in->host : "", in->host ? strlen(in->host) : 0);
    EVP_DigestUpdate(c, &in->mtls, sizeof(in->mtls));
    if (in->mtls != MGW_MTLS_OFF) {
        hash_file(c, in->truststore);
        hash_file(c, in->crl);
    }
    EVP_DigestFinal_ex(c, md, &len);
    EVP_MD_CTX_free(c);
    memcpy(s->tag, md, sizeof(s->tag));
}

/*
 * Runs first, before OpenSSL processes any extension (tickets are decrypted before the
 * SNI callback): notes which site the client names, for ticket_dec_cb.
 */
static int client_hello_cb(SSL *ssl, int *alert, void *arg)
{
    (void)alert;
    mgw_tls_t *t = SSL_get_ex_data(ssl, ex_index);
    const unsigned char *p;
    size_t n;
    char name[256] = "";
    /* server_name: list length (2), type (1, 0 = host_name), name length (2), name */
    if (SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_server_name, &p, &n) && n > 5 && p[2] == 0) {
        size_t len = (size_t)p[3] << 8 | p[4];
        if (len + 5 <= n && len < sizeof(name)) {
            memcpy(name, p + 5, len);
            name[len] = '\0';
        }
    }
    if (t) t->hello_site = site_for(arg, name[0] ? name : NULL);
    return SSL_CLIENT_HELLO_SUCCESS;
}

/* A new ticket records the site it was made for. */
static int ticket_gen_cb(SSL *ssl, void *arg)
{
    mgw_tls_t *t = SSL_get_ex_data(ssl, ex_index);
    const site_t *site = t && t->site ? t->site : arg ? &((mgw_tls_ctx_t *)arg)->def : NULL;
    if (site == NULL) return 1;
    return SSL_SESSION_set1_ticket_appdata(SSL_get0_session(ssl), site->tag, sizeof(site->tag));
}

/*
 * A ticket resumes only on the site it was made for, under the same truststore and CRLs:
 * a ticket from a plain site must not skip a mutual-TLS site's check, and one made before
 * a reload that revoked its certificate must not outlive the revocation. Tickets are
 * decrypted before the SNI callback runs: client_hello_cb found the site.
 */
static SSL_TICKET_RETURN ticket_dec_cb(SSL *ssl, SSL_SESSION *ss, const unsigned char *keyname,
                                       size_t keyname_len, SSL_TICKET_STATUS status, void *arg)
{
    (void)keyname;
    (void)keyname_len;
    if (status != SSL_TICKET_SUCCESS && status != SSL_TICKET_SUCCESS_RENEW)
        return SSL_TICKET_RETURN_IGNORE_RENEW;
    mgw_tls_t *t = SSL_get_ex_data(ssl, ex_index);
    const site_t *site = t && t->hello_site ? t->hello_site : &((mgw_tls_ctx_t *)arg)->def;
    void *data = NULL;
    size_t len = 0;
    if (!SSL_SESSION_get0_ticket_appdata(ss, &data, &len) || len != sizeof(site->tag) ||
        memcmp(data, site->tag, sizeof(site->tag)) != 0)
        return SSL_TICKET_RETURN_IGNORE_RENEW;
    /* TLS 1.3 clients use a ticket once (RFC 8446, C.4): without a fresh one after each
     * resumption, every other connection of a browser or wrk would be a full handshake. */
    if (status == SSL_TICKET_SUCCESS && SSL_version(ssl) != TLS1_3_VERSION)
        return SSL_TICKET_RETURN_USE;
    return SSL_TICKET_RETURN_USE_RENEW;
}

/* ---- verification ---- */

/* The common verification failures: the words of API Gateway's execution logs, and the
 * reason GET /metrics counts. */
static const struct {
    int err;
    mgw_mtls_reason_t reason;
    const char *words;
} verify_errors[] = {
    {X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT, MGW_MTLSR_UNTRUSTED,
     "Could not find issuer for certificate"},
    {X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY, MGW_MTLSR_UNTRUSTED,
     "Could not find issuer for certificate"},
    {X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN, MGW_MTLSR_UNTRUSTED,
     "Could not find issuer for certificate"},
    {X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT, MGW_MTLSR_UNTRUSTED,
     "Could not find issuer for certificate"},
    {X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE, MGW_MTLSR_UNTRUSTED,
     "Could not find issuer for certificate"},
    {X509_V_ERR_CERT_HAS_EXPIRED, MGW_MTLSR_EXPIRED, "Certificate has expired"},
    {X509_V_ERR_CERT_NOT_YET_VALID, MGW_MTLSR_NOT_YET_VALID, "Certificate is not yet valid"},
    {X509_V_ERR_CERT_REVOKED, MGW_MTLSR_REVOKED, "Certificate has been revoked"},
    {X509_V_ERR_CERT_CHAIN_TOO_LONG, MGW_MTLSR_CHAIN_TOO_LONG,
     "Certificate chain is longer than 4"},
    {X509_V_ERR_CERT_SIGNATURE_FAILURE, MGW_MTLSR_BAD_SIGNATURE,
     "Certificate signature is invalid"},
    {X509_V_ERR_CA_KEY_TOO_SMALL, MGW_MTLSR_WEAK, "Certificate key is too weak"},
    {X509_V_ERR_EE_KEY_TOO_SMALL, MGW_MTLSR_WEAK, "Certificate key is too weak"},
    {X509_V_ERR_CA_MD_TOO_WEAK, MGW_MTLSR_WEAK, "Certificate signature algorithm is too weak"},
    {X509_V_ERR_CRL_HAS_EXPIRED, MGW_MTLSR_CRL_EXPIRED, "CRL has expired"},
};

static int verify_error_at(int err)
{
    for (size_t i = 0; i < sizeof(verify_errors) / sizeof(verify_errors[0]); i++)
        if (verify_errors[i].err == err) return (int)i;
    return -1;
}

static const char *verify_reason(int err)
{
    int i = verify_error_at(err);
    return i >= 0 ? verify_errors[i].words : X509_verify_cert_error_string(err);
}

mgw_mtls_reason_t mgw_mtls_reason_of(int verify_error)
{
    int i = verify_error_at(verify_error);
    return i >= 0 ? verify_errors[i].reason : MGW_MTLSR_OTHER;
}

/* The SSL library's reasons behind the failures a server engine sees; the rest are
 * MGW_TLSF_OTHER, and alerts the client sent (SSL_AD_REASON_OFFSET + the alert) that are
 * not here are MGW_TLSF_CLIENT_ALERT. */
static const struct {
    int reason;
    mgw_tls_failure_t failure;
} ssl_reasons[] = {
    {SSL_R_HTTP_REQUEST, MGW_TLSF_PLAIN_HTTP},
    {SSL_R_HTTPS_PROXY_REQUEST, MGW_TLSF_PLAIN_HTTP},
    {SSL_R_WRONG_VERSION_NUMBER, MGW_TLSF_NOT_TLS},
    {SSL_R_UNKNOWN_PROTOCOL, MGW_TLSF_NOT_TLS},
    {SSL_R_PACKET_LENGTH_TOO_LONG, MGW_TLSF_NOT_TLS},
    {SSL_R_RECORD_LENGTH_MISMATCH, MGW_TLSF_BAD_RECORD},
    {SSL_R_LENGTH_MISMATCH, MGW_TLSF_BAD_RECORD},
    {SSL_R_LENGTH_TOO_SHORT, MGW_TLSF_BAD_RECORD},
    {SSL_R_BAD_PACKET_LENGTH, MGW_TLSF_BAD_RECORD},
    {SSL_R_BAD_LENGTH, MGW_TLSF_BAD_RECORD},
    {SSL_R_BAD_RECORD_TYPE, MGW_TLSF_BAD_RECORD},
    {SSL_R_UNEXPECTED_MESSAGE, MGW_TLSF_BAD_RECORD},
    {SSL_R_UNEXPECTED_RECORD, MGW_TLSF_BAD_RECORD},
    {SSL_R_DECRYPTION_FAILED_OR_BAD_RECORD_MAC, MGW_TLSF_BAD_RECORD},
    {SSL_R_ENCRYPTED_LENGTH_TOO_LONG, MGW_TLSF_BAD_RECORD},
    {SSL_R_DATA_LENGTH_TOO_LONG, MGW_TLSF_BAD_RECORD},
    {SSL_R_EXCESSIVE_MESSAGE_SIZE, MGW_TLSF_BAD_RECORD},
    {SSL_R_UNSUPPORTED_PROTOCOL, MGW_TLSF_PROTOCOL_VERSION},
    {SSL_R_VERSION_TOO_LOW, MGW_TLSF_PROTOCOL_VERSION},
    {SSL_R_VERSION_TOO_HIGH, MGW_TLSF_PROTOCOL_VERSION},
    {SSL_R_TLSV1_ALERT_PROTOCOL_VERSION, MGW_TLSF_PROTOCOL_VERSION},
    {SSL_R_NO_SHARED_CIPHER, MGW_TLSF_NO_SHARED_CIPHER},
    {SSL_R_NO_SHARED_GROUPS, MGW_TLSF_NO_SHARED_CIPHER},
    {SSL_R_NO_SUITABLE_SIGNATURE_ALGORITHM, MGW_TLSF_NO_SHARED_CIPHER},
    {SSL_R_NO_SHARED_SIGNATURE_ALGORITHMS, MGW_TLSF_NO_SHARED_CIPHER},
    {SSL_R_TLSV1_ALERT_INSUFFICIENT_SECURITY, MGW_TLSF_NO_SHARED_CIPHER},
    {SSL_R_NO_APPLICATION_PROTOCOL, MGW_TLSF_NO_ALPN},
    {SSL_R_TLSV1_ALERT_NO_APPLICATION_PROTOCOL, MGW_TLSF_NO_ALPN},
    {SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE, MGW_TLSF_CLIENT_CERTIFICATE},
    {SSL_R_CERTIFICATE_VERIFY_FAILED, MGW_TLSF_CLIENT_CERTIFICATE},
    {SSL_R_SSLV3_ALERT_BAD_CERTIFICATE, MGW_TLSF_CERTIFICATE_REJECTED},
    {SSL_R_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE, MGW_TLSF_CERTIFICATE_REJECTED},
    {SSL_R_SSLV3_ALERT_CERTIFICATE_REVOKED, MGW_TLSF_CERTIFICATE_REJECTED},
    {SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED, MGW_TLSF_CERTIFICATE_REJECTED},
    {SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN, MGW_TLSF_CERTIFICATE_REJECTED},
    {SSL_R_TLSV1_ALERT_UNKNOWN_CA, MGW_TLSF_CERTIFICATE_REJECTED},
    {SSL_R_TLSV1_ALERT_DECRYPT_ERROR, MGW_TLSF_CERTIFICATE_REJECTED},
};

mgw_tls_failure_t mgw_tls_failure_of(int ssl_reason)
{
    for (size_t i = 0; i < sizeof(ssl_reasons) / sizeof(ssl_reasons[0]); i++)
        if (ssl_reasons[i].reason == ssl_reason) return ssl_reasons[i].failure;
    if (ssl_reason >= SSL_AD_REASON_OFFSET && ssl_reason < SSL_AD_REASON_OFFSET + 256)
        return MGW_TLSF_CLIENT_ALERT;
    return MGW_TLSF_OTHER;
}

static const char *const failure_names[] = {
#define XX(_, name) name,
    MGW_TLS_FAILURE_MAP(XX)
#undef XX
};

static const char *const mtls_reason_names[] = {
#define XX(_, name) name,
    MGW_MTLS_REASON_MAP(XX)
#undef XX
};

const char *mgw_tls_failure_name(mgw_tls_failure_t f)
{
    return (unsigned)f < MGW_TLSF_COUNT ? failure_names[f] : "other";
}

const char *mgw_mtls_reason_name(mgw_mtls_reason_t r)
{
    return (unsigned)r < MGW_MTLSR_COUNT ? mtls_reason_names[r] : "other";
}

/* RSA keys under 2048 bits, EC keys under 256 bits and SHA-1 (or weaker) signatures. */
static const char *weak_cert(X509 *cert)
{
    EVP_PKEY *pk = X509_get0_pubkey(cert);
    if (pk) {
        int bits = EVP_PKEY_get_bits(pk), id = EVP_PKEY_get_base_id(pk);
        if ((id == EVP_PKEY_RSA || id == EVP_PKEY_RSA_PSS || id == EVP_PKEY_DSA) && bits < 2048)
            return "Certificate key is too weak (RSA keys need 2048 bits)";
        if (id == EVP_PKEY_EC && bits < 256)
            return "Certificate key is too weak (EC keys need 256 bits)";
    }
    int md = 0, pk_nid = 0;
    if (X509_get_signature_info(cert, &md, &pk_nid, NULL, NULL) && X509_get_extension_flags(cert) &&
        (md == NID_sha1 || md == NID_md5 || md == NID_md4))
        return "Certificate signature algorithm is too weak (SHA-256 or better needed)";
    return NULL;
}

static int cert_info(X509 *c, mgw_pool_t *pool, mgw_client_cert_t *out);

/* The owner's revocation check for the client certificate (depth 0), once it verified. */
static int run_check(mgw_tls_t *t, X509 *cert, char *reason, size_t n)
{
    const site_t *site = t->site ? t->site : &t->ctx->def;
    if (!site->check || t->check_cb == NULL) return 0;
    unsigned char md[32];
    unsigned int len = sizeof(md);
    char fp[65];
    X509_digest(cert, EVP_sha256(), md, &len);
    mgw_hex(md, 32, fp);
    mgw_pool_t *pool = mgw_pool_create(4096);
    mgw_client_cert_t info;
    cert_info(cert, pool, &info);
    int rc = t->check_cb(t->check_ud, site->data, &info, fp, reason, n);
    mgw_pool_destroy(pool);
    return rc;
}

static int verify_cb(int ok, X509_STORE_CTX *xs)
{
    SSL *ssl = X509_STORE_CTX_get_ex_data(xs, SSL_get_ex_data_X509_STORE_CTX_idx());
    mgw_tls_t *t = ssl ? SSL_get_ex_data(ssl, ex_index) : NULL;
    int err = X509_STORE_CTX_get_error(xs);
    /* CRLs are checked for every chain element that has one: a missing CRL is fine. */
    if (!ok && err == X509_V_ERR_UNABLE_TO_GET_CRL) {
        X509_STORE_CTX_set_error(xs, X509_V_OK);
        return 1;
    }
    X509 *cert = X509_STORE_CTX_get_current_cert(xs);
    /* "A maximum chain length of four": at most four CA certificates above the client's. */
    if (ok && X509_STORE_CTX_get_error_depth(xs) > MAX_CHAIN_DEPTH) {
        X509_STORE_CTX_set_error(xs, X509_V_ERR_CERT_CHAIN_TOO_LONG);
        err = X509_V_ERR_CERT_CHAIN_TOO_LONG;
        ok = 0;
    }
    const char *weak = ok && cert ? weak_cert(cert) : NULL;
    if (weak) {
        X509_STORE_CTX_set_error(xs, X509_V_ERR_EE_KEY_TOO_SMALL);
        ok = 0;
    }
    char why[160];
    if (ok && t && cert && X509_STORE_CTX_get_error_depth(xs) == 0 &&
        run_check(t, cert, why, sizeof(why)) != 0) {
        X509_STORE_CTX_set_error(xs, X509_V_ERR_CERT_REVOKED);
        t->cert_refused = 1;
        t->mtls_reason = MGW_MTLSR_REVOCATION_CHECK;
        char subject[128] = "";
        X509_NAME_oneline(X509_get_subject_name(cert), subject, sizeof(subject));
        snprintf(t->error, sizeof(t->error),
                 "Access denied. Reason: Certificate has been revoked (%.80s) (%.100s)", why,
                 subject);
        return 0;
    }
    if (!ok && t && t->error[0] == '\0') {
        t->cert_refused = 1;
        t->mtls_reason = weak ? MGW_MTLSR_WEAK : mgw_mtls_reason_of(err);
        char subject[128] = "";
        if (cert) X509_NAME_oneline(X509_get_subject_name(cert), subject, sizeof(subject));
        /* the reason first: a long subject is what gets cut */
        snprintf(t->error, sizeof(t->error), "Access denied. Reason: %.80s (%.120s)",
                 weak ? weak : verify_reason(err), subject);
    }
    return ok;
}

/* ---- contexts ---- */

static void ssl_error(char *err, size_t errlen, const char *what, const char *file)
{
    unsigned long e = ERR_get_error();
    char reason[256] = "unknown error";
    if (e) ERR_error_string_n(e, reason, sizeof(reason));
    ERR_clear_error();
    snprintf(err, errlen, "%s \"%s\": %s", what, file ? file : "", reason);
}

static int alpn_cb(SSL *s, const unsigned char **out, unsigned char *outlen,
                   const unsigned char *in, unsigned int inlen, void *arg)
{
    (void)s;
    (void)arg;
    static const unsigned char http11[] = "\x08http/1.1";
    unsigned char *sel;
    if (SSL_select_next_proto(&sel, outlen, http11, sizeof(http11) - 1, in, inlen) !=
        OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_ALERT_FATAL; /* the client speaks no protocol we serve */
    *out = sel;
    return SSL_TLSEXT_ERR_OK;
}

static int sni_cb(SSL *ssl, int *alert, void *arg)
{
    mgw_tls_ctx_t *ctx = arg;
    mgw_tls_t *t = SSL_get_ex_data(ssl, ex_index);
    const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    if (name == NULL) return SSL_TLSEXT_ERR_NOACK; /* no SNI: the default certificate */
    for (int i = 0; i < ctx->nsites; i++) {
        if (strcasecmp(ctx->sites[i].host, name) == 0) {
            SSL_set_SSL_CTX(ssl, ctx->sites[i].ctx);
            /* SSL_set_SSL_CTX does not carry the verify mode over: apply the site's. */
            SSL_set_verify(ssl, SSL_CTX_get_verify_mode(ctx->sites[i].ctx), verify_cb);
            SSL_set_verify_depth(ssl, MAX_CHAIN_DEPTH);
            if (t) t->site = &ctx->sites[i];
            return SSL_TLSEXT_ERR_OK;
        }
    }
    if (ctx->reject_unknown_sni) {
        if (t) {
            snprintf(t->error, sizeof(t->error), "unknown server name \"%.100s\"", name);
            t->failure = MGW_TLSF_UNKNOWN_SNI;
        }
        *alert = SSL_AD_UNRECOGNIZED_NAME;
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    }
    return SSL_TLSEXT_ERR_OK;
}

/* Loads every CRL of a PEM file into store; returns how many, or -1. */
static int load_crls(X509_STORE *store, const char *file)
{
    BIO *b = BIO_new_file(file, "r");
    if (!b) return -1;
    STACK_OF(X509_INFO) *infos = PEM_X509_INFO_read_bio(b, NULL, NULL, NULL);
    BIO_free(b);
    if (!infos) return -1;
    int n = 0;
    for (int i = 0; i < sk_X509_INFO_num(infos); i++) {
        X509_INFO *inf = sk_X509_INFO_value(infos, i);
        if (inf->crl && X509_STORE_add_crl(store, inf->crl)) n++;
    }
    sk_X509_INFO_pop_free(infos, X509_INFO_free);
    return n;
}

static time_t x509_not_after(const X509 *c)
{
    struct tm tm;
    if (!c || !ASN1_TIME_to_tm(X509_get0_notAfter(c), &tm)) return 0;
    return timegm(&tm);
}

static time_t cert_not_after(SSL_CTX *ctx)
{
    return x509_not_after(SSL_CTX_get0_certificate(ctx));
}

/* Notes the CA certificates of a site's truststore (its file loaded already), for
 * mgw_tls_ctx_each_ca: read once here, so that a scrape opens no file. */
static void load_cas(site_t *s, const char *file)
{
    s->truststore = mgw_strdup(file);
    BIO *b = BIO_new_file(file, "r");
    X509 *x;
    while (b && (x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) {
        s->cas = mgw_realloc(s->cas, sizeof(ca_info_t) * (size_t)(s->ncas + 1));
        ca_info_t *ca = &s->cas[s->ncas++];
        char cn[256] = "";
        const X509_NAME *name = X509_get_subject_name(x);
        if (X509_NAME_get_text_by_NID((X509_NAME *)name, NID_commonName, cn, sizeof(cn)) <= 0)
            X509_NAME_oneline(name, cn, sizeof(cn));
        ca->subject = mgw_strdup(cn);
        unsigned char md[32];
        unsigned int len = sizeof(md);
        X509_digest(x, EVP_sha256(), md, &len);
        mgw_hex(md, 8, ca->fingerprint);
        ca->not_after = x509_not_after(x);
        X509_free(x);
    }
    BIO_free(b);
    ERR_clear_error(); /* the end of the file is an error in the queue */
}

static void init_once(void)
{
    ex_index = SSL_get_ex_new_index(0, "mgw_tls", NULL, NULL, NULL);
    ticket_cipher = EVP_CIPHER_fetch(NULL, "AES-256-CBC", NULL);
}

static int site_init(site_t *s, const mgw_tls_site_t *in, mgw_tls_ctx_t *owner, int is_default,
                     char *err, size_t errlen)
{
    pthread_once(&once, init_once);
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) return ssl_error(err, errlen, "cannot create a TLS context for", in->certificate), -1;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_cipher_list(ctx, CIPHERS);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                                 SSL_OP_NO_COMPRESSION);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF); /* tickets only: no shared cache */
    SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, ticket_cb);
    SSL_CTX_set_num_tickets(ctx, 1); /* TLS 1.3: one ticket resumes; OpenSSL sends two */
    SSL_CTX_set_alpn_select_cb(ctx, alpn_cb, NULL);
    /* One session context for all sites: tickets are checked against their site by
     * ticket_dec_cb (the SNI switch comes after OpenSSL compares session contexts). */
    static const unsigned char sid[] = "moongate";
    SSL_CTX_set_session_id_context(ctx, sid, sizeof(sid) - 1);
    if (SSL_CTX_use_certificate_chain_file(ctx, in->certificate) != 1) {
        ssl_error(err, errlen, "cannot load certificate", in->certificate);
        goto fail;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, in->key, SSL_FILETYPE_PEM) != 1) {
        ssl_error(err, errlen, "cannot load key", in->key);
        goto fail;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        ssl_error(err, errlen, "key does not match certificate", in->key);
        goto fail;
    }
    if (in->mtls != MGW_MTLS_OFF) {
        if (SSL_CTX_load_verify_locations(ctx, in->truststore, NULL) != 1) {
            ssl_error(err, errlen, "cannot load truststore", in->truststore);
            goto fail;
        }
        /* The CAs of the truststore are named in the CertificateRequest. */
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(in->truststore);
        if (names) SSL_CTX_set_client_CA_list(ctx, names);
        if (in->crl) {
            X509_STORE *store = SSL_CTX_get_cert_store(ctx);
            if (load_crls(store, in->crl) <= 0) {
                ssl_error(err, errlen, "no CRL could be read from", in->crl);
                goto fail;
            }
            X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL);
        }
        int mode = SSL_VERIFY_PEER;
        if (in->mtls == MGW_MTLS_REQUIRE) mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
        SSL_CTX_set_verify(ctx, mode, verify_cb);
        SSL_CTX_set_verify_depth(ctx, MAX_CHAIN_DEPTH);
        load_cas(s, in->truststore);
    }
    if (is_default) SSL_CTX_set_client_hello_cb(ctx, client_hello_cb, owner);
    if (is_default) SSL_CTX_set_tlsext_servername_callback(ctx, sni_cb);
    if (is_default) SSL_CTX_set_tlsext_servername_arg(ctx, owner);
    SSL_CTX_set_session_ticket_cb(ctx, ticket_gen_cb, ticket_dec_cb, owner);
    site_tag(s, in);
    s->ctx = ctx;
    s->host = in->host ? mgw_strdup(in->host) : NULL;
    s->certificate = mgw_strdup(in->certificate);
    s->mtls = in->mtls;
    s->check = in->check;
    s->data = in->data;
    s->not_after = cert_not_after(ctx);
    return 0;
fail:
    SSL_CTX_free(ctx);
    return -1;
}

static void site_free(site_t *s)
{
    SSL_CTX_free(s->ctx);
    free(s->host);
    free(s->certificate);
    free(s->truststore);
    for (int i = 0; i < s->ncas; i++)
        free(s->cas[i].subject);
    free(s->cas);
}

mgw_tls_ctx_t *mgw_tls_ctx_new(const mgw_tls_site_t *def, int reject_unknown_sni, char *err,
                               size_t errlen)
{
    mgw_tls_ctx_t *ctx = mgw_calloc(1, sizeof(*ctx));
    ctx->reject_unknown_sni = reject_unknown_sni;
    if (site_init(&ctx->def, def, ctx, 1, err, errlen) != 0) {
        free(ctx);
        return NULL;
    }
    return ctx;
}

int mgw_tls_ctx_add(mgw_tls_ctx_t *ctx, const mgw_tls_site_t *site, char *err, size_t errlen)
{
    site_t s = {0};
    if (site_init(&s, site, ctx, 0, err, errlen) != 0) return -1;
    ctx->sites = mgw_realloc(ctx->sites, sizeof(site_t) * (size_t)(ctx->nsites + 1));
    ctx->sites[ctx->nsites++] = s;
    return 0;
}

void mgw_tls_ctx_free(mgw_tls_ctx_t *ctx)
{
    if (!ctx) return;
    site_free(&ctx->def);
    for (int i = 0; i < ctx->nsites; i++)
        site_free(&ctx->sites[i]);
    free(ctx->sites);
    free(ctx);
}

int mgw_tls_ctx_expiry(const mgw_tls_ctx_t *ctx, const char **file)
{
    time_t now = time(NULL), min = ctx->def.not_after;
    *file = ctx->def.certificate;
    for (int i = 0; i < ctx->nsites; i++) {
        if (ctx->sites[i].not_after && ctx->sites[i].not_after < min) {
            min = ctx->sites[i].not_after;
            *file = ctx->sites[i].certificate;
        }
    }
    double days = difftime(min, now) / 86400.0;
    return days < 0 ? (int)days - 1 : (int)days;
}

void mgw_tls_ctx_each_cert(const mgw_tls_ctx_t *ctx,
                           void (*fn)(void *ud, const char *host, const char *file,
                                      int64_t not_after),
                           void *ud)
{
    fn(ud, NULL, ctx->def.certificate, (int64_t)ctx->def.not_after);
    for (int i = 0; i < ctx->nsites; i++)
        fn(ud, ctx->sites[i].host, ctx->sites[i].certificate, (int64_t)ctx->sites[i].not_after);
}

static void each_ca(const site_t *s,
                    void (*fn)(void *, const char *, const char *, const char *, const char *,
                               int64_t),
                    void *ud)
{
    for (int i = 0; i < s->ncas; i++)
        fn(ud, s->host, s->truststore, s->cas[i].subject, s->cas[i].fingerprint,
           (int64_t)s->cas[i].not_after);
}

void mgw_tls_ctx_each_ca(const mgw_tls_ctx_t *ctx,
                         void (*fn)(void *ud, const char *host, const char *truststore,
                                    const char *subject, const char *fingerprint,
                                    int64_t not_after),
                         void *ud)
{
    each_ca(&ctx->def, fn, ud);
    for (int i = 0; i < ctx->nsites; i++)
        each_ca(&ctx->sites[i], fn, ud);
}

/* ---- backends ---- */

mgw_tls_ctx_t *mgw_tls_client_ctx_new(const char *ca_file, const char *certificate, const char *key,
                                      char *err, size_t errlen)
{
    pthread_once(&once, init_once);
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) return ssl_error(err, errlen, "cannot create a TLS client context", ""), NULL;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_cipher_list(ctx, CIPHERS);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    static const unsigned char alpn[] = "\x08http/1.1";
    SSL_CTX_set_alpn_protos(ctx, alpn, sizeof(alpn) - 1);
    X509_STORE *store = mgw_ca_store(ca_file); /* shared while the bundle is unchanged */
    if (store == NULL) {
        ssl_error(err, errlen, "cannot load CA bundle", ca_file ? ca_file : "(system store)");
        goto fail;
    }
    SSL_CTX_set_cert_store(ctx, store);
    if (certificate && SSL_CTX_use_certificate_chain_file(ctx, certificate) != 1) {
        ssl_error(err, errlen, "cannot load client certificate", certificate);
        goto fail;
    }
    if (key && (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
                SSL_CTX_check_private_key(ctx) != 1)) {
        ssl_error(err, errlen, "cannot load client key", key);
        goto fail;
    }
    mgw_tls_ctx_t *c = mgw_calloc(1, sizeof(*c));
    c->def.ctx = ctx;
    c->def.certificate = mgw_strdup(certificate ? certificate : "");
    c->def.not_after = certificate ? cert_not_after(ctx) : 0;
    return c;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}

int mgw_tls_generate_cert(const char *cn, const char *cert_file, const char *key_file, char *err,
                          size_t errlen)
{
    int rc = -1;
    EVP_PKEY *pkey = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    FILE *f = NULL;
    if (!pkey || !x) goto done;
    X509_set_version(x, 2);
    unsigned char serial[16];
    RAND_bytes(serial, sizeof(serial));
    serial[0] &= 0x7f;
    BIGNUM *bn = BN_bin2bn(serial, sizeof(serial), NULL);
    BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x));
    BN_free(bn);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 365L * 86400);
    X509_set_pubkey(x, pkey);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)"moongate", -1, -1,
                               0);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, name);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, NULL, NID_ext_key_usage, "clientAuth");
    if (ext) {
        X509_add_ext(x, ext, -1);
        X509_EXTENSION_free(ext);
    }
    if (!X509_sign(x, pkey, EVP_sha256())) goto done;
    /* the key is written first, readable by the owner only */
    f = fopen(key_file, "w");
    if (!f || fchmod(fileno(f), 0600) != 0 ||
        !PEM_write_PrivateKey(f, pkey, NULL, NULL, 0, NULL, NULL))
        goto done;
    fclose(f);
    f = fopen(cert_file, "w");
    if (!f || !PEM_write_X509(f, x)) goto done;
    rc = 0;
done:
    if (rc != 0) snprintf(err, errlen, "cannot write a client certificate to \"%s\"", cert_file);
    if (f) fclose(f);
    X509_free(x);
    EVP_PKEY_free(pkey);
    ERR_clear_error();
    return rc;
}

mgw_tls_t *mgw_tls_client_new(mgw_tls_ctx_t *ctx, const char *host, void *session)
{
    mgw_tls_t *t = mgw_calloc(1, sizeof(*t));
    t->ctx = ctx;
    t->ssl = SSL_new(ctx->def.ctx);
    t->in = BIO_new(BIO_s_mem());
    t->out = BIO_new(BIO_s_mem());
    BIO_set_mem_eof_return(t->in, -1);
    SSL_set_bio(t->ssl, t->in, t->out);
    SSL_set_ex_data(t->ssl, ex_index, t);
    SSL_set_connect_state(t->ssl);
    unsigned char buf[16];
    int literal = inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
    if (!literal) SSL_set_tlsext_host_name(t->ssl, host);
    /* the certificate must name the host (DNS name or IP address) */
    if (literal)
        X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(t->ssl), host);
    else
        SSL_set1_host(t->ssl, host);
    if (session) SSL_set_session(t->ssl, session);
    return t;
}

void mgw_tls_save_session(mgw_tls_t *t, void **slot)
{
    SSL_SESSION *s = SSL_get1_session(t->ssl);
    if (s == NULL) return;
    if (*slot) SSL_SESSION_free(*slot);
    *slot = s;
}

void mgw_tls_session_free(void *session)
{
    if (session) SSL_SESSION_free(session);
}

/* ---- connections ---- */

mgw_tls_t *mgw_tls_new(mgw_tls_ctx_t *ctx)
{
    mgw_tls_t *t = mgw_calloc(1, sizeof(*t));
    t->ctx = ctx;
    t->ssl = SSL_new(ctx->def.ctx);
    t->in = BIO_new(BIO_s_mem());
    t->out = BIO_new(BIO_s_mem());
    BIO_set_mem_eof_return(t->in, -1); /* an empty input buffer means "want more" */
    SSL_set_bio(t->ssl, t->in, t->out);
    SSL_set_ex_data(t->ssl, ex_index, t);
    SSL_set_accept_state(t->ssl);
    if (ctx->def.mtls != MGW_MTLS_OFF)
        SSL_set_verify(t->ssl, SSL_CTX_get_verify_mode(ctx->def.ctx), verify_cb);
    return t;
}

void mgw_tls_set_check(mgw_tls_t *t, mgw_tls_check_cb cb, void *ud)
{
    t->check_cb = cb;
    t->check_ud = ud;
}

void mgw_tls_free(mgw_tls_t *t)
{
    if (!t) return;
    SSL_free(t->ssl); /* frees both BIOs */
    free(t);
}

void mgw_tls_feed(mgw_tls_t *t, const char *p, size_t n)
{
    /* A TLS record starts with a content type of 20..24; "GET ", "POST" etc. do not. */
    if (!t->done && BIO_pending(t->in) == 0 && SSL_in_before(t->ssl) && n >= 4 && p[0] >= 'A' &&
        p[0] <= 'Z')
        t->plain_http = 1;
    BIO_write(t->in, p, (int)n);
}

/*
 * OpenSSL keeps its errors in a queue per thread, and every connection of a worker shares
 * it. SSL_get_error() reads the queue: an error another connection left there (a refused
 * handshake leaves "certificate verify failed") would turn this connection's "want more
 * input" into a failure, and close a healthy connection with a stranger's reason. So
 * every SSL call whose result goes to SSL_get_error() is made here, on an empty queue.
 */
enum { IO_HANDSHAKE, IO_READ, IO_WRITE };

static int ssl_io(mgw_tls_t *t, int op, void *buf, int n, int *ssl_err)
{
    ERR_clear_error();
    int rc;
    if (op == IO_HANDSHAKE)
        rc = SSL_do_handshake(t->ssl);
    else if (op == IO_READ)
        rc = SSL_read(t->ssl, buf, n);
    else
        rc = SSL_write(t->ssl, buf, n);
    *ssl_err = rc > 0 ? SSL_ERROR_NONE : SSL_get_error(t->ssl, rc);
    return rc;
}

/* Records why the engine failed, and leaves the thread's error queue empty. */
static void set_failure(mgw_tls_t *t, int ssl_err)
{
    t->failed = 1;
    unsigned long e = ERR_peek_error();
    int reason = e && ERR_GET_LIB(e) == ERR_LIB_SSL ? ERR_GET_REASON(e) : 0;
    if (t->cert_refused) {
        t->failure = MGW_TLSF_CLIENT_CERTIFICATE;
    } else if (t->failure == MGW_TLSF_OTHER) {
        t->failure = t->plain_http ? MGW_TLSF_PLAIN_HTTP : mgw_tls_failure_of(reason);
        if (t->failure == MGW_TLSF_CLIENT_CERTIFICATE) {
            t->cert_refused = 1;
            t->mtls_reason = reason == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE
                                 ? MGW_MTLSR_NO_CERTIFICATE
                                 : MGW_MTLSR_OTHER;
        }
    }
    if (t->error[0]) {
        /* the verify or SNI callback said why */
    } else if (t->plain_http) {
        snprintf(t->error, sizeof(t->error), "plain HTTP request sent to a TLS port");
    } else if (e) {
        const char *reason = ERR_reason_error_string(e);
        long vr = SSL_get_verify_result(t->ssl);
        if (vr != X509_V_OK && !SSL_is_server(t->ssl))
            snprintf(t->error, sizeof(t->error), "TLS handshake failed: %s",
                     X509_verify_cert_error_string(vr));
        else
            snprintf(t->error, sizeof(t->error), "TLS handshake failed: %s",
                     reason ? reason : "unknown reason");
    } else {
        snprintf(t->error, sizeof(t->error), "TLS error %d", ssl_err);
    }
    ERR_clear_error();
}

ssize_t mgw_tls_read(mgw_tls_t *t, char *out, size_t cap)
{
    if (t->failed) return MGW_TLS_ERROR;
    int e;
    if (!t->done) {
        if (ssl_io(t, IO_HANDSHAKE, NULL, 0, &e) != 1) {
            if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return MGW_TLS_WANT;
            set_failure(t, e);
            return MGW_TLS_ERROR;
        }
        t->done = 1;
    }
    int n = ssl_io(t, IO_READ, out, (int)(cap > 0x7fffffff ? 0x7fffffff : cap), &e);
    if (n > 0) return n;
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return MGW_TLS_WANT;
    if (e == SSL_ERROR_ZERO_RETURN) return MGW_TLS_CLOSED;
    set_failure(t, e);
    return MGW_TLS_ERROR;
}

int mgw_tls_write(mgw_tls_t *t, const void *p, size_t n)
{
    if (t->failed || !t->done) return MGW_TLS_ERROR;
    while (n > 0) {
        int chunk = n > 16384 ? 16384 : (int)n, e;
        int w = ssl_io(t, IO_WRITE, (void *)p, chunk, &e);
        if (w <= 0) {
            set_failure(t, e);
            return MGW_TLS_ERROR;
        }
        p = (const char *)p + w;
        n -= (size_t)w;
    }
    return MGW_TLS_OK;
}

size_t mgw_tls_pending(mgw_tls_t *t, char *out, size_t cap)
{
    int n = BIO_read(t->out, out, (int)(cap > 0x7fffffff ? 0x7fffffff : cap));
    return n > 0 ? (size_t)n : 0;
}

void mgw_tls_shutdown(mgw_tls_t *t)
{
    if (!t->done || t->failed) return;
    SSL_shutdown(t->ssl);
    ERR_clear_error(); /* nobody asks why it failed: leave the queue empty for the others */
}

int mgw_tls_handshake_done(const mgw_tls_t *t)
{
    return t->done;
}

const char *mgw_tls_error(const mgw_tls_t *t)
{
    return t->error[0] ? t->error : "TLS error";
}

int mgw_tls_plain_http(const mgw_tls_t *t)
{
    return t->plain_http;
}

mgw_tls_failure_t mgw_tls_failure(const mgw_tls_t *t)
{
    return t->failed ? t->failure : MGW_TLSF_OTHER;
}

mgw_mtls_reason_t mgw_tls_mtls_reason(const mgw_tls_t *t)
{
    return t->mtls_reason;
}

const char *mgw_tls_site_host(const mgw_tls_t *t)
{
    return t->site ? t->site->host : NULL;
}

void *mgw_tls_site_data(const mgw_tls_t *t)
{
    return t->site ? t->site->data : t->ctx->def.data;
}

const char *mgw_tls_version(const mgw_tls_t *t)
{
    return SSL_get_version(t->ssl);
}

const char *mgw_tls_sni(const mgw_tls_t *t)
{
    return SSL_get_servername(t->ssl, TLSEXT_NAMETYPE_host_name);
}

int mgw_tls_resumed(const mgw_tls_t *t)
{
    return SSL_session_reused(t->ssl);
}

/* A memory BIO's contents as a pool string. */
static const char *bio_string(BIO *b, mgw_pool_t *pool)
{
    char *p;
    long n = BIO_get_mem_data(b, &p);
    const char *s = mgw_pool_strndup(pool, n > 0 ? p : "", n > 0 ? (size_t)n : 0);
    BIO_free(b);
    return s;
}

static const char *dn(const X509_NAME *name, mgw_pool_t *pool)
{
    BIO *b = BIO_new(BIO_s_mem());
    X509_NAME_print_ex(b, name, 0, XN_FLAG_RFC2253);
    return bio_string(b, pool);
}

static const char *asn1_time(const ASN1_TIME *tm, mgw_pool_t *pool)
{
    BIO *b = BIO_new(BIO_s_mem());
    ASN1_TIME_print(b, tm); /* "May 28 12:30:02 2019 GMT" */
    return bio_string(b, pool);
}

int mgw_tls_client_cert(const mgw_tls_t *t, mgw_pool_t *pool, mgw_client_cert_t *out)
{
    X509 *c = SSL_get0_peer_certificate(t->ssl);
    if (c == NULL || SSL_get_verify_result(t->ssl) != X509_V_OK) return -1;
    return cert_info(c, pool, out);
}

static int cert_info(X509 *c, mgw_pool_t *pool, mgw_client_cert_t *out)
{
    BIO *b = BIO_new(BIO_s_mem());
    PEM_write_bio_X509(b, c);
    out->pem = bio_string(b, pool);
    out->subject_dn = dn(X509_get_subject_name(c), pool);
    out->issuer_dn = dn(X509_get_issuer_name(c), pool);
    /* serial as lower-case hex bytes joined by ':', however long the CA made it */
    const ASN1_INTEGER *sn = X509_get0_serialNumber(c);
    BIGNUM *bn = ASN1_INTEGER_to_BN(sn, NULL);
    int len = bn ? BN_num_bytes(bn) : 0;
    unsigned char *bytes = mgw_pool_alloc(pool, (size_t)len + 1);
    if (bn) BN_bn2bin(bn, bytes);
    BN_free(bn);
    char *serial = mgw_pool_alloc(pool, (size_t)(len ? len * 3 : 3));
    if (len == 0) strcpy(serial, "00");
    for (int i = 0; i < len; i++)
        snprintf(serial + 3 * i, 4, i + 1 < len ? "%02x:" : "%02x", bytes[i]);
    out->serial = serial;
    out->not_before = asn1_time(X509_get0_notBefore(c), pool);
    out->not_after = asn1_time(X509_get0_notAfter(c), pool);
    return 0;
}
