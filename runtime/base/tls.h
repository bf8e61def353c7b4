/*
 * TLS for client connections (OpenSSL lives here and in crypto.c): server contexts with
 * SNI, ALPN and session tickets, mutual TLS with truststores and CRLs, the client
 * certificate's identity, and a per-connection engine over memory buffers so that the
 * event loop never blocks: ciphertext goes in with mgw_tls_feed(), plaintext comes out of
 * mgw_tls_read(), plaintext to send goes in with mgw_tls_write(), ciphertext to send comes
 * out of mgw_tls_pending().
 */
#ifndef MGW_TLS_H
#define MGW_TLS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/pool.h"

typedef struct mgw_tls_ctx_s mgw_tls_ctx_t;
typedef struct mgw_tls_s mgw_tls_t;

enum { MGW_MTLS_OFF, MGW_MTLS_REQUIRE, MGW_MTLS_REQUEST };

/* A certificate served for a host name (or the default one, host NULL). */
typedef struct {
    const char *host;        /* lower case; NULL for the listener's default certificate */
    const char *certificate; /* PEM: the certificate, then its chain */
    const char *key;         /* PEM private key */
    int mtls;                /* MGW_MTLS_* */
    const char *truststore;  /* PEM bundle of CA certificates (mtls) */
    const char *crl;         /* PEM file of one or more CRLs, or NULL */
    int check;               /* ask the engine's check callback about client certificates */
    void *data;              /* the owner's (a domain), returned by mgw_tls_site_data */
} mgw_tls_site_t;

/* A client certificate, in the formats of API Gateway's $context.identity.clientCert. */
typedef struct {
    const char *pem;
    const char *subject_dn; /* RFC 2253: "CN=client,O=Example" */
    const char *issuer_dn;
    const char *serial;     /* "a1:b2:..." */
    const char *not_before; /* "May 28 12:30:02 2019 GMT" */
    const char *not_after;
} mgw_client_cert_t;

/*
 * A context set: the default site plus one per host name. reject_unknown_sni: a client
 * naming a host with no site gets a handshake alert instead of the default certificate.
 * Returns NULL and writes the reason to err on failure.
 */
mgw_tls_ctx_t *mgw_tls_ctx_new(const mgw_tls_site_t *default_site, int reject_unknown_sni,
                               char *err, size_t errlen);
/* Adds a site for site->host. Returns 0, or -1 with the reason in err. */
int mgw_tls_ctx_add(mgw_tls_ctx_t *ctx, const mgw_tls_site_t *site, char *err, size_t errlen);
void mgw_tls_ctx_free(mgw_tls_ctx_t *ctx);
/* Days until the earliest expiry among the context's certificates (negative: expired),
 * and which file it is. */
int mgw_tls_ctx_expiry(const mgw_tls_ctx_t *ctx, const char **file);
/* Calls fn for each certificate ctx serves: the default one (host NULL) then each SNI
 * site's, with its file and its notAfter time (0 when unknown). */
void mgw_tls_ctx_each_cert(const mgw_tls_ctx_t *ctx,
                           void (*fn)(void *ud, const char *host, const char *file,
                                      int64_t not_after),
                           void *ud);

/*
 * A client context for backends: verifies their certificates against ca_file (NULL: the
 * system store), and presents certificate/key when given (backend mutual TLS).
 */
mgw_tls_ctx_t *mgw_tls_client_ctx_new(const char *ca_file, const char *certificate, const char *key,
                                      char *err, size_t errlen);

/*
 * Writes a new self-signed client certificate (EC P-256, valid 365 days, CN = cn) to
 * cert_file and key_file. Returns 0, or -1 with the reason in err.
 */
int mgw_tls_generate_cert(const char *cn, const char *cert_file, const char *key_file, char *err,
                          size_t errlen);

/* A client-side engine for host (SNI and hostname check unless it is an IP literal).
 * *session (may be NULL) is a saved session to resume; see mgw_tls_save_session. */
mgw_tls_t *mgw_tls_client_new(mgw_tls_ctx_t *ctx, const char *host, void *session);
/* The session of a completed client handshake for later resumption (replaces *slot). */
void mgw_tls_save_session(mgw_tls_t *t, void **slot);
void mgw_tls_session_free(void *session);

/*
 * Asked once per handshake about a client certificate that passed verification, on a
 * site with `check`: returns 0 to accept it, or -1 with a reason to fail the handshake.
 */
typedef int (*mgw_tls_check_cb)(void *ud, void *site_data, const mgw_client_cert_t *cert,
                                const char *fingerprint, char *reason, size_t n);

/* A server-side connection engine. */
mgw_tls_t *mgw_tls_new(mgw_tls_ctx_t *ctx);
/* Sets the certificate check of the engine (see mgw_tls_check_cb). */
void mgw_tls_set_check(mgw_tls_t *t, mgw_tls_check_cb cb, void *ud);
void mgw_tls_free(mgw_tls_t *t);

/* Results of the engine calls; byte counts are positive, so these are not. */
enum { MGW_TLS_OK = 0, MGW_TLS_ERROR = -1, MGW_TLS_WANT = -2, MGW_TLS_CLOSED = -3 };

/* Hands n bytes of ciphertext to the engine. */
void mgw_tls_feed(mgw_tls_t *t, const char *p, size_t n);
/*
 * Advances the handshake and decrypts: returns the number of plaintext bytes written to
 * out (> 0), or MGW_TLS_WANT (needs more input), MGW_TLS_CLOSED (close_notify) or
 * MGW_TLS_ERROR (see mgw_tls_error). Call until it stops returning bytes.
 */
ssize_t mgw_tls_read(mgw_tls_t *t, char *out, size_t cap);
/* Encrypts n bytes of plaintext. Returns 0 or MGW_TLS_ERROR. */
int mgw_tls_write(mgw_tls_t *t, const void *p, size_t n);
/* Ciphertext waiting to be sent: copies up to cap bytes, returns how many. */
size_t mgw_tls_pending(mgw_tls_t *t, char *out, size_t cap);
/* Starts a clean shutdown (close_notify goes to the pending ciphertext). */
void mgw_tls_shutdown(mgw_tls_t *t);

int mgw_tls_handshake_done(const mgw_tls_t *t);
/* Why the engine failed, in words (for the error log). */
const char *mgw_tls_error(const mgw_tls_t *t);
/* The first bytes were plaintext HTTP, not a TLS record. */
int mgw_tls_plain_http(const mgw_tls_t *t);
/* The site the client's SNI selected (its data), or NULL for the default site. */
void *mgw_tls_site_data(const mgw_tls_t *t);
/* "TLSv1.3" etc., and the SNI the client sent (or NULL). */
const char *mgw_tls_version(const mgw_tls_t *t);
const char *mgw_tls_sni(const mgw_tls_t *t);
/* The session was resumed (ticket). */
int mgw_tls_resumed(const mgw_tls_t *t);

/*
 * Why a server handshake failed, as GET /metrics counts it (README "Metrics"): a fixed
 * list of label values. The engine decides all but the last two, which are the
 * connection's (net/conn.c): the client closed, or took longer than timeouts.header.
 */
#define MGW_TLS_FAILURE_MAP(XX)                                                                    \
    XX(OTHER, "other")                                                                             \
    XX(PLAIN_HTTP, "plain_http")                 /* an HTTP request, not a ClientHello */          \
    XX(NOT_TLS, "not_tls")                       /* bytes that are no TLS record */                \
    XX(BAD_RECORD, "bad_record")                 /* a TLS record out of place or malformed */      \
    XX(PROTOCOL_VERSION, "protocol_version")     /* no version in common (TLS 1.1 and older) */    \
    XX(NO_SHARED_CIPHER, "no_shared_cipher")     /* no cipher suite, group or signature scheme */  \
    XX(NO_ALPN, "no_alpn")                       /* ALPN without http/1.1 */                       \
    XX(UNKNOWN_SNI, "unknown_sni")               /* unknown_sni = "reject" refused the name */     \
    XX(CLIENT_CERTIFICATE, "client_certificate") /* mutual TLS refused the client */               \
    XX(CERTIFICATE_REJECTED, "certificate_rejected") /* the client refused ours (its alert) */     \
    XX(CLIENT_ALERT, "client_alert")                 /* the client sent another fatal alert */     \
    XX(CLIENT_CLOSED, "client_closed")                                                             \
    XX(TIMEOUT, "timeout")

typedef enum {
#define XX(code, _) MGW_TLSF_##code,
    MGW_TLS_FAILURE_MAP(XX)
#undef XX
        MGW_TLSF_COUNT
} mgw_tls_failure_t;

/* Why mutual TLS refused a client certificate (MGW_TLSF_CLIENT_CERTIFICATE). */
#define MGW_MTLS_REASON_MAP(XX)                                                                    \
    XX(OTHER, "other")                                                                             \
    XX(NO_CERTIFICATE, "no_certificate") /* mode = "require" and none was sent */                  \
    XX(UNTRUSTED, "untrusted")           /* no issuer in the truststore */                         \
    XX(EXPIRED, "expired")                                                                         \
    XX(NOT_YET_VALID, "not_yet_valid")                                                             \
    XX(REVOKED, "revoked")                   /* by a CRL */                                        \
    XX(REVOCATION_CHECK, "revocation_check") /* mtls.revocation refused it (or failed) */          \
    XX(CHAIN_TOO_LONG, "chain_too_long")                                                           \
    XX(WEAK, "weak") /* key size or signature algorithm */                                         \
    XX(BAD_SIGNATURE, "bad_signature")                                                             \
    XX(CRL_EXPIRED, "crl_expired")

typedef enum {
#define XX(code, _) MGW_MTLSR_##code,
    MGW_MTLS_REASON_MAP(XX)
#undef XX
        MGW_MTLSR_COUNT
} mgw_mtls_reason_t;

/* The label value of f or r ("other" out of range). */
const char *mgw_tls_failure_name(mgw_tls_failure_t f);
const char *mgw_mtls_reason_name(mgw_mtls_reason_t r);
/* The failure an OpenSSL reason code of the SSL library stands for (ERR_GET_REASON). */
mgw_tls_failure_t mgw_tls_failure_of(int ssl_reason);
/* The mutual-TLS reason an X509_V_ERR_* code stands for. */
mgw_mtls_reason_t mgw_mtls_reason_of(int verify_error);
/* Why the engine failed (after MGW_TLS_ERROR; MGW_TLSF_OTHER before). */
mgw_tls_failure_t mgw_tls_failure(const mgw_tls_t *t);
/* Why mutual TLS refused the client, when mgw_tls_failure says MGW_TLSF_CLIENT_CERTIFICATE. */
mgw_mtls_reason_t mgw_tls_mtls_reason(const mgw_tls_t *t);
/* The host name of the site the client's SNI selected, or NULL for the default site. */
const char *mgw_tls_site_host(const mgw_tls_t *t);

/*
 * Calls fn for each CA certificate of each mutual-TLS site's truststore: the default
 * site (host NULL) then each SNI site's, with the truststore file, the CA's subject CN
 * (its whole subject when it has no CN), the first 16 hex digits of its SHA-256
 * fingerprint and its notAfter time (Unix seconds; 0 when unknown).
 */
void mgw_tls_ctx_each_ca(const mgw_tls_ctx_t *ctx,
                         void (*fn)(void *ud, const char *host, const char *truststore,
                                    const char *subject, const char *fingerprint,
                                    int64_t not_after),
                         void *ud);

/* The verified client certificate in pool memory; returns 0, or -1 when there is none. */
int mgw_tls_client_cert(const mgw_tls_t *t, mgw_pool_t *pool, mgw_client_cert_t *out);

#endif
