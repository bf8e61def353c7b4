/*
 * CA stores shared by the backend TLS contexts that name the same bundle. Loading the
 * system bundle parses every certificate in it (about 140 on Debian), and each
 * generation makes a client context per stage with a client certificate, one for the
 * generation, one per JWT key source and per moongate.http CA file: without sharing,
 * every reload parsed the bundle again and kept one more copy of it per context.
 *
 * A store is kept while its file is unchanged (same inode, size and modification time);
 * a changed file gets a new store, and contexts made before keep the old one until they
 * go. Only context creation comes here, never a request: the lock is not on a hot path.
 */
#include "base/castore.h"

#include <openssl/x509.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/mem.h"

#define MAX_STORES 16

typedef struct {
    char *path; /* "" for the system store */
    struct stat st;
    X509_STORE *store;
} entry_t;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static entry_t entries[MAX_STORES];
static int next_victim;

static int same_file(const struct stat *a, const struct stat *b)
{
    return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
           a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

/* The file the system store is read from: $SSL_CERT_FILE, else OpenSSL's default. */
static const char *system_file(void)
{
    const char *env = getenv(X509_get_default_cert_file_env());
    return env && *env ? env : X509_get_default_cert_file();
}

static X509_STORE *load(const char *ca_file)
{
    X509_STORE *s = X509_STORE_new();
    if (s == NULL) return NULL;
    int ok = ca_file ? X509_STORE_load_file(s, ca_file) : X509_STORE_set_default_paths(s);
    if (ok != 1) {
        X509_STORE_free(s);
        return NULL;
    }
    return s;
}

X509_STORE *mgw_ca_store(const char *ca_file)
{
    const char *key = ca_file ? ca_file : "";
    struct stat st;
    if (stat(ca_file ? ca_file : system_file(), &st) != 0) return load(ca_file); /* not kept */

    pthread_mutex_lock(&lock);
    entry_t *e = NULL;
    for (int i = 0; i < MAX_STORES && e == NULL; i++)
        if (entries[i].path && strcmp(entries[i].path, key) == 0) e = &entries[i];
    if (e && same_file(&e->st, &st)) {
        X509_STORE_up_ref(e->store);
        pthread_mutex_unlock(&lock);
        return e->store;
    }
    X509_STORE *s = load(ca_file);
    if (s) {
        if (e == NULL) {
            e = &entries[next_victim];
            next_victim = (next_victim + 1) % MAX_STORES;
        }
        free(e->path);
        X509_STORE_free(e->store);
        e->path = mgw_strdup(key);
        e->st = st;
        e->store = s;
        X509_STORE_up_ref(s);
    }
    pthread_mutex_unlock(&lock);
    return s;
}

void mgw_ca_store_clear(void)
{
    pthread_mutex_lock(&lock);
    for (int i = 0; i < MAX_STORES; i++) {
        free(entries[i].path);
        X509_STORE_free(entries[i].store);
        entries[i] = (entry_t){0};
    }
    next_victim = 0;
    pthread_mutex_unlock(&lock);
}
