#include "base/crypto.h"

#include "base/utf8.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <pthread.h>

static EVP_MD *sha256_md; /* fetched once, for the life of the process */
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

static void sha256_fetch(void)
{
    sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

/* The digest is fetched once: EVP_sha256() makes OpenSSL 3 look the algorithm up on every
 * call, and API keys are hashed per request. */
void mgw_sha256(const void *data, size_t n, uint8_t out[32])
{
    pthread_once(&sha256_once, sha256_fetch);
    unsigned int len = 32;
    EVP_Digest(data, n, out, &len, sha256_md ? sha256_md : EVP_sha256(), NULL);
}

void mgw_sha1(const void *data, size_t n, uint8_t out[20])
{
    unsigned int len = 20;
    EVP_Digest(data, n, out, &len, EVP_sha1(), NULL);
}

size_t mgw_base64(const void *data, size_t n, char *out, int url)
{
    size_t len = (size_t)EVP_EncodeBlock((unsigned char *)out, data, (int)n);
    if (!url) return len;
    while (len && out[len - 1] == '=')
        out[--len] = '\0';
    for (size_t i = 0; i < len; i++)
        out[i] = out[i] == '+' ? '-' : out[i] == '/' ? '_' : out[i];
    return len;
}

void mgw_hex(const void *data, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    const uint8_t *p = data;
    for (size_t i = 0; i < n; i++) {
        *out++ = digits[p[i] >> 4];
        *out++ = digits[p[i] & 15];
    }
    *out = '\0';
}

int mgw_hex32(const char *hex, uint8_t out[32])
{
    for (int i = 0; i < 32; i++) {
        int h = mgw_hex_digit(hex[2 * i]), l = h < 0 ? -1 : mgw_hex_digit(hex[2 * i + 1]);
        if (h < 0 || l < 0) return -1;
        out[i] = (uint8_t)(h << 4 | l);
    }
    return hex[64] == '\0' ? 0 : -1;
}

int mgw_random_bytes(void *out, size_t n)
{
    return RAND_bytes(out, (int)n) == 1 ? 0 : -1;
}

int mgw_equal_ct(const void *a, const void *b, size_t n)
{
    return CRYPTO_memcmp(a, b, n) == 0;
}
