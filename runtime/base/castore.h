/*
 * CA stores for backend TLS contexts, loaded once per bundle file and shared while the
 * file is unchanged (base/castore.c).
 */
#ifndef MGW_CASTORE_H
#define MGW_CASTORE_H

#include <openssl/x509_vfy.h>

/*
 * A store with the certificates of ca_file (NULL: the system store, OpenSSL's default
 * paths), or NULL when it cannot be loaded. The caller owns one reference (hand it to
 * SSL_CTX_set_cert_store, or X509_STORE_free it).
 */
X509_STORE *mgw_ca_store(const char *ca_file);

/* Drops the kept stores (at exit, and for tests); stores in use stay alive. */
void mgw_ca_store_clear(void);

#endif
