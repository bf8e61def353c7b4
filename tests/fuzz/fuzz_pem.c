/*
 * PEM and CRL loading (runtime/base/tls.c, included here to reach cert_info): the input is a
 * truststore, optionally followed by "\n=CRL=\n" and a CRL file, and by "\n=CERT=\n" and
 * a certificate chain. The files are loaded as a mutual-TLS domain's are (the server
 * certificate, its key, the truststore, the CRLs), the truststore also as a backend CA
 * bundle, and every certificate of the truststore goes through cert_info, which makes a
 * client certificate's $context.identity.clientCert values. Property: the serialNumber
 * value is the certificate's serial, in lower-case hex bytes joined by ':'.
 */
#include "base/tls.c"

#include <limits.h>
#include <unistd.h>

#include "fuzz.h"

static char dir[PATH_MAX], cert[PATH_MAX], key[PATH_MAX], trust[PATH_MAX], crl[PATH_MAX],
    chain[PATH_MAX];

static void put(const char *path, const uint8_t *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    FUZZ_CHECK(f != NULL);
    FUZZ_CHECK(fwrite(p, 1, n, f) == n);
    FUZZ_CHECK(fclose(f) == 0);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    snprintf(dir, sizeof(dir), "%s", fuzz_scratch_dir("pem"));
    snprintf(cert, sizeof(cert), "%s/server.pem", dir);
    snprintf(key, sizeof(key), "%s/server.key", dir);
    snprintf(trust, sizeof(trust), "%s/truststore.pem", dir);
    snprintf(crl, sizeof(crl), "%s/crl.pem", dir);
    snprintf(chain, sizeof(chain), "%s/chain.pem", dir);
    char err[256];
    FUZZ_CHECK(mgw_tls_generate_cert("fuzz.test", cert, key, err, sizeof(err)) == 0);
    return 0;
}

/* The serial as cert_info should write it, from OpenSSL's own hex form. */
static void check_serial(X509 *c, const char *got)
{
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(c), NULL);
    if (bn == NULL) return;
    char *hex = BN_bn2hex(bn);
    BN_free(bn);
    const char *h = hex[0] == '-' ? hex + 1 : hex;
    char want[1024];
    size_t n = 0;
    if (strcmp(h, "0") == 0) h = "00";
    for (size_t i = 0; h[i] && h[i + 1] && n + 4 < sizeof(want); i += 2) {
        if (n) want[n++] = ':';
        want[n++] = (char)(h[i] | 0x20);
        want[n++] = (char)(h[i + 1] | 0x20);
    }
    want[n] = '\0';
    OPENSSL_free(hex);
    if (n + 4 < sizeof(want)) FUZZ_CHECK(strcmp(got, want) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *ts, *rest, *cp, *chp;
    size_t tsn, restn, cpn, chn;
    fuzz_split(data, size, "\n=CERT=\n", &rest, &restn, &chp, &chn);
    int has_chain = restn < size;
    fuzz_split(rest, restn, "\n=CRL=\n", &ts, &tsn, &cp, &cpn);
    int has_crl = tsn < restn;

    /* every certificate of the truststore, as a verified client certificate would be */
    BIO *b = BIO_new_mem_buf(ts, (int)tsn);
    STACK_OF(X509_INFO) *infos = PEM_X509_INFO_read_bio(b, NULL, NULL, NULL);
    BIO_free(b);
    mgw_pool_t *pool = mgw_pool_create(0);
    for (int i = 0; infos && i < sk_X509_INFO_num(infos); i++) {
        X509_INFO *inf = sk_X509_INFO_value(infos, i);
        if (!inf->x509) continue;
        mgw_client_cert_t cc;
        FUZZ_CHECK(cert_info(inf->x509, pool, &cc) == 0);
        FUZZ_CHECK(cc.pem && cc.subject_dn && cc.issuer_dn && cc.serial);
        FUZZ_CHECK(cc.not_before && cc.not_after);
        check_serial(inf->x509, cc.serial);
    }
    sk_X509_INFO_pop_free(infos, X509_INFO_free);
    mgw_pool_destroy(pool);

    /* the files of a mutual-TLS domain */
    put(trust, ts, tsn);
    if (has_crl) put(crl, cp, cpn);
    if (has_chain) put(chain, chp, chn);
    mgw_tls_site_t site = {
        .host = "fuzz.test",
        .certificate = has_chain ? chain : cert,
        .key = key,
        .mtls = MGW_MTLS_REQUIRE,
        .truststore = trust,
        .crl = has_crl ? crl : NULL,
    };
    char err[512];
    mgw_tls_ctx_t *ctx = mgw_tls_ctx_new(&site, 0, err, sizeof(err));
    if (ctx) {
        const char *file;
        (void)mgw_tls_ctx_expiry(ctx, &file);
        mgw_tls_ctx_free(ctx);
    } else {
        FUZZ_CHECK(err[0] != '\0');
    }
    mgw_tls_ctx_t *client = mgw_tls_client_ctx_new(trust, NULL, NULL, err, sizeof(err));
    mgw_tls_ctx_free(client);
    ERR_clear_error();
    return 0;
}
