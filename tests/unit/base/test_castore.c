/* base/castore.c: CA stores shared per bundle file, renewed when the file changes. */
#include <fcntl.h>
#include <openssl/x509_vfy.h>
#include <sys/stat.h>
#include <time.h>

#include "base/castore.c"
#include "base/tls.h"
#include "unit.h"

static char dir[] = "/tmp/mgw-castore-XXXXXX";
static char ca[256], key[256];

static int objects(X509_STORE *s)
{
    return sk_X509_OBJECT_num(X509_STORE_get0_objects(s));
}

/* A new self-signed certificate in ca, with a modification time of t seconds. */
static void write_ca(const char *cn, time_t t)
{
    char err[256];
    CHECK(mgw_tls_generate_cert(cn, ca, key, err, sizeof(err)) == 0);
    struct timespec ts[2] = {{t, 0}, {t, 0}};
    CHECK(utimensat(AT_FDCWD, ca, ts, 0) == 0);
}

static void test_same_file_same_store(void)
{
    write_ca("ca-one", 1000000);
    X509_STORE *a = mgw_ca_store(ca), *b = mgw_ca_store(ca);
    CHECK(a != NULL);
    CHECK(a == b);
    CHECK(objects(a) == 1);
    X509_STORE_free(a);
    X509_STORE_free(b);
}

static void test_changed_file_new_store(void)
{
    write_ca("ca-one", 1000000);
    X509_STORE *a = mgw_ca_store(ca);
    write_ca("ca-two", 2000000);
    X509_STORE *b = mgw_ca_store(ca);
    CHECK(a != NULL && b != NULL);
    CHECK(a != b);
    /* the old store still works for whoever holds it */
    CHECK(objects(a) == 1);
    CHECK(objects(b) == 1);
    X509_NAME *na = X509_get_subject_name(
                  X509_OBJECT_get0_X509(sk_X509_OBJECT_value(X509_STORE_get0_objects(a), 0))),
              *nb = X509_get_subject_name(
                  X509_OBJECT_get0_X509(sk_X509_OBJECT_value(X509_STORE_get0_objects(b), 0)));
    CHECK(X509_NAME_cmp(na, nb) != 0);
    X509_STORE_free(a);
    X509_STORE_free(b);
}

static void test_bad_files(void)
{
    char missing[300], junk[300];
    snprintf(missing, sizeof(missing), "%s/missing.pem", dir);
    CHECK(mgw_ca_store(missing) == NULL);
    snprintf(junk, sizeof(junk), "%s/junk.pem", dir);
    FILE *f = fopen(junk, "w");
    fputs("not a certificate\n", f);
    fclose(f);
    CHECK(mgw_ca_store(junk) == NULL);
    CHECK(mgw_ca_store(junk) == NULL); /* a failure is not kept */
    /* a client context names the file it could not load */
    char err[512] = "";
    CHECK(mgw_tls_client_ctx_new(junk, NULL, NULL, err, sizeof(err)) == NULL);
    CHECK(strstr(err, "cannot load CA bundle") != NULL);
    CHECK(strstr(err, "junk.pem") != NULL);
}

static void test_system_store_shared(void)
{
    X509_STORE *a = mgw_ca_store(NULL), *b = mgw_ca_store(NULL);
    CHECK(a != NULL);
    struct stat st;
    if (stat(X509_get_default_cert_file(), &st) == 0) CHECK(a == b); /* kept: its file exists */
    X509_STORE_free(a);
    X509_STORE_free(b);
}

static void test_many_files(void)
{
    /* more bundles than the cache keeps: each still loads, none is mixed up */
    X509_STORE *kept[20];
    char paths[20][300];
    for (int i = 0; i < 20; i++) {
        snprintf(paths[i], sizeof(paths[i]), "%s/ca%d.pem", dir, i);
        char cn[16], err[256];
        snprintf(cn, sizeof(cn), "ca-%d", i);
        CHECK(mgw_tls_generate_cert(cn, paths[i], key, err, sizeof(err)) == 0);
        kept[i] = mgw_ca_store(paths[i]);
        CHECK(kept[i] != NULL);
    }
    for (int i = 0; i < 20; i++) {
        X509_STORE *again = mgw_ca_store(paths[i]);
        CHECK(again != NULL && objects(again) == 1);
        X509_STORE_free(again);
        X509_STORE_free(kept[i]);
    }
    mgw_ca_store_clear();
}

int main(void)
{
    if (mkdtemp(dir) == NULL) return 1;
    snprintf(ca, sizeof(ca), "%s/ca.pem", dir);
    snprintf(key, sizeof(key), "%s/ca.key", dir);
    RUN(test_same_file_same_store);
    RUN(test_changed_file_new_store);
    RUN(test_bad_files);
    RUN(test_system_store_shared);
    RUN(test_many_files);
    mgw_ca_store_clear();
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0) return 1;
    return DONE();
}
