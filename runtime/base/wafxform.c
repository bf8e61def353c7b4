/*
 * AWS WAF text transformations (wafxform.h). Every function writes at most what it is
 * told below into a buffer from the pool, so a transformation never grows its input by
 * more than a known factor (UTF8_TO_UNICODE: 3, MD5: 16 bytes, the others: none).
 */
#include "base/wafxform.h"

#include <openssl/evp.h>
#include <string.h>
#include <strings.h>

static unsigned char *out_buf(mgw_pool_t *pool, size_t n)
{
    return mgw_pool_alloc(pool, n + 1);
}

static void done(mgw_str_t *out, unsigned char *b, size_t n)
{
    b[n] = 0;
    out->p = (const char *)b;
    out->n = n;
}

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static int is_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v' || c == 0xa0;
}

static void t_none(mgw_pool_t *pool, const unsigned char *in, size_t n, mgw_str_t *out)
{
    unsigned char *b = out_buf(pool, n);
    if (n) memcpy(b, in, n);
    done(out, b, n);
}

/* Runs of white space (space, \t \n \r \f \v, NBSP) become one space. */
static void t_compress_ws(mgw_pool_t *pool, const unsigned char *in, size_t n, mgw_str_t *out)
{
    unsigned char *b = out_buf(pool, n);
    size_t o = 0;
    int sp = 0;
    for (size_t i = 0; i < n; i++) {
        if (is_space(in[i])) {
            if (!sp) b[o++] = ' ';
            sp = 1;
        } else {
            b[o++] = in[i];
            sp = 0;
        }
    }
    done(out, b, o);
}

static void t_lowercase(mgw_pool_t *pool, const unsigned char *in, size_t n, mgw_str_t *out)
{
    unsigned char *b = out_buf(pool, n);
    for (size_t i = 0; i < n; i++)
        b[i] = (in[i] >= 'A' && in[i] <= 'Z') ? (unsigned char)(in[i] + 32) : in[i];
    done(out, b, n);
}

/* &#DDD; &#xHH; (the code point's low byte, as ModSecurity) and &quot; &amp; &lt; &gt;
 * &nbsp; &apos;; the semicolon is optional. */
static void t_html_entity(mgw_pool_t *pool, const unsigned char *in, size_t n, mgw_str_t *out)
{
    static const struct {
        const char *name;
        unsigned char c;
    } named[] = {{"quot", '"'}, {"amp", '&'},   {"lt", '<'},
                 {"gt", '>'},   {"nbsp", 0xa0}, {"apos", '\''}};
    unsigned char *b = out_buf(pool, n);
    size_t o = 0, i = 0;
    while (i < n) {
        if (in[i] != '&' || i + 1 >= n) {
            b[o++] = in[i++];
            continue;
        }
        size_t j = i + 1;
        if (in[j] == '#') {
            j++;
            int hex = j < n && (in[j] == 'x' || in[j] == 'X');
            if (hex) j++;
            size_t start = j;
            unsigned long v = 0;
            while (j < n && j - start < 8) {
                int d = hex ? hexval(in[j]) : (in[j] >= '0' && in[j] <= '9' ? in[j] - '0' : -1);
                if (d < 0) break;
                v = v * (hex ? 16 : 10) + (unsigned long)d;
                j++;
            }
            if (j == start) {
                b[o++] = in[i++];
                continue;
            }
            b[o++] = (unsigned char)(v & 0xff);
            if (j < n && in[j] == ';') j++;
            i = j;
            continue;
        }
        int found = 0;
        for (size_t k = 0; k < sizeof(named) / sizeof(named[0]); k++) {
            size_t l = strlen(named[k].name);
            if (n - j >= l && strncasecmp((const char *)in + j, named[k].name, l) == 0) {
                b[o++] = named[k].c;
                j += l;
                if (j < n && in[j] == ';') j++;
                i = j;
                found = 1;
                break;
            }
        }
        if (!found) b[o++] = in[i++];
    }
    done(out, b, o);
}

/* ModSecurity's t:cmdLine: \ " ' ^ deleted, white space before / or ( deleted, , and ;
 * become a space, runs of white space one space, lower case. */
static void t_cmd_line(mgw_pool_t *pool, const unsigned char *in, size_t n, mgw_str_t *out)
{
    unsigned char *b = out_buf(pool, n);
    size_t o = 0;
    int sp = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = in[i];
        switch (c) {
        case '"':
        case '\'':
        case '\\':
        case '^':
            break;
        case ' ':
        case ',':
        case ';':
        case '\t':
        case '\r':
        case '\n':
            if (!sp) {
                b[o++] = ' ';
                sp = 1;
            }
            break;
        case '/':
        case '(':
            if (sp) o--;
            sp = 0;
            b[o++] = c;
            break;
        default:
            b[o++] = (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c;
            sp = 0;
        }
    }
    done(out, b, o);
}

/* %HH and '+' (a space); a % without two hex digits stays. */
static void t_url_decode(mgw_pool_t *pool, const unsigned char *in, size_t n, mgw_str_t *out)
{
    unsigned char *b = out_buf(pool, n);
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (in[i] == '%' && i + 2 < n && hexval(in[i + 1]) >= 0 && hexval(in[i + 2]) >= 0) {
            b[o++] = (unsigned char)(hexval(in[i + 1]) * 16 + hexval(in[i + 2]));
            i += 2;
        } else {
            b[o++] = in[i] == '+' ? ' ' : in[i];
        }
    }
    done(out, b, o);
}

/* A UTF-16 code unit as one byte: full-width ASCII (U+FF01..U+FF5E) as ASCII, others their
 * low byte (ModSecurity's default unicode map does the same for the ASCII range). */
static unsigned char unit_byte(unsigned long u)
{
    if (u >= 0xff01 && u <= 0xff5e) return (unsigned char)(u - 0xfee0);
    return (unsigned char)(u & 0xff);
}

/* URL_DECODE plus %uHHHH (IIS). */
static void t_url_decode_uni(mgw_pool_t *pool, const unsigned char *in, size_t n, mgw_str_t *out)
{
    unsigned char *b = out_buf(pool, n);
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (in[i] == '%' && i + 5 < n && (in[i + 1] == 'u' || in[i + 1] == 'U') &&
            hexval(in[i + 2]) >= 0 && hexval(in[i + 3]) >= 0 && hexval(in[i + 4]) >= 0 &&
            hexval(in[i + 5]) >= 0) {
            unsigned long u = 0;
            for (int k = 2; k < 6; k++)
                u = u * 16 + (unsigned long)hexval(in[i + (size_t)k]);
            b[o++] = unit_byte(u);
            i += 5;
        } else if (in[i] == '%' && i + 2 < n && hexval(in[i + 1]) >= 0 && hexval(in[i + 2]) >= 0) {
            b[o++] = (unsigned char)(hexval(in[i + 1]) * 16 + hexval(in[i + 2]));
            i += 2;
        } else {
            b[o++] = in[i] == '+' ? ' ' : in[i];
        }
    }
    done(out, b, o);
}

static int b64val(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+' || c == '-') return 62;
    if (c == '/' || c == '_') return 63;
    return -1;
}

/* Base64 (standard or URL alphabet). ext: characters outside the alphabet are skipped
 * (BASE64_DECODE_EXT); else decoding stops at the first one ('=' included). */
static void b64(mgw_pool_t *pool, const unsigned char *in, size_t n, mgw_str_t *out, int ext)
{
    unsigned char *b = out_buf(pool, n);
    size_t o = 0;
    unsigned long acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64val(in[i]);
        if (v < 0) {
            if (ext) continue;
            break;
        }
        acc = (acc << 6) | (unsigned long)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            b[o++] = (unsigned char)((acc >> bits) & 0xff);
        }
    }
    done(out, b, o);
}

static void t_b64(mgw_pool_t *pool, const unsigned char *in, size_t n, mgw_str_t *out)
{
    b64(pool, in, n, out, 0);
}

static void t_b64_ext(mgw_pool_t *pool, const unsigned char *in, size_t n, mgw_str_t *out)
{
    b64(pool, in, n, out, 1);
}

/* Pairs of hex digits as bytes; input that is not an even number of hex digits stays. */
static void t_hex(mgw_pool_t *pool, const unsigned char *in, size_t n, mgw_str_t *out)
{
    int ok = n % 2 == 0;
    for (size_t i = 0; ok && i < n; i++)
        ok = hexval(in[i]) >= 0;
    if (!ok) {
        t_none(pool, in, n, out);
        return;
    }
    unsigned char *b = out_buf(pool, n / 2);
    for (size_t i = 0; i < n / 2; i++)
        b[i] = (unsigned char)(hexval(in[2 * i]) * 16 + hexval(in[2 * i + 1]));
    done(out, b, n / 2);
}

/* The 16 bytes of the MD5 digest (raw, as AWS and ModSecurity). */
static void t_md5(mgw_pool_t *pool, const unsigned char *in, size_t n, mgw_str_t *out)
{
    unsigned char *b = out_buf(pool, 16);
    unsigned int len = 16;
    EVP_Digest(in, n, b, &len, EVP_md5(), NULL);
    done(out, b, 16);
}

/* C comments (an unterminated one runs to the end) become one space, as ModSecurity's
 * t:replaceComments ("--" and "#" comments stay). */
static void t_replace_comments(mgw_pool_t *pool, const unsigned char *in, size_t n, mgw_str_t *out)
{
    unsigned char *b = out_buf(pool, n);
    size_t o = 0, i = 0;
    while (i < n) {
        if (in[i] == '/' && i + 1 < n && in[i + 1] == '*') {
            size_t j = i + 2;
            while (j + 1 < n && !(in[j] == '*' && in[j + 1] == '/'))
                j++;
            i = j + 1 < n ? j + 2 : n;
            b[o++] = ' ';
        } else {
            b[o++] = in[i++];
        }
    }
    done(out, b, o);
}

/* ANSI C escapes: \a \b \f \n \r \t \v \\ \? \' \" \xHH \OOO (one to three octal digits). */
static void t_escape_seq(mgw_pool_t *pool, const unsigned char *in, size_t n, mgw_str_t *out)
{
    unsigned char *b = out_buf(pool, n);
    size_t o = 0, i = 0;
    while (i < n) {
        if (in[i] != '\\' || i + 1 >= n) {
            b[o++] = in[i++];
            continue;
        }
        unsigned char c = in[i + 1];
        const char *simple = strchr("abfnrtv\\?'\"", c);
        if (c && simple) {
            static const unsigned char val[] = {7, 8, 12, 10, 13, 9, 11, '\\', '?', '\'', '"'};
            b[o++] = val[simple - "abfnrtv\\?'\""];
            i += 2;
        } else if ((c == 'x' || c == 'X') && i + 3 < n && hexval(in[i + 2]) >= 0 &&
                   hexval(in[i + 3]) >= 0) {
            b[o++] = (unsigned char)(hexval(in[i + 2]) * 16 + hexval(in[i + 3]));
            i += 4;
        } else if (c >= '0' && c <= '7') {
            unsigned v = 0;
            size_t j = i + 1;
            while (j < n && j < i + 4 && in[j] >= '0' && in[j] <= '7')
                v = v * 8 + (in[j++] - '0');
            b[o++] = (unsigned char)(v & 0xff);
            i = j;
        } else {
            b[o++] = in[i++];
        }
    }
    done(out, b, o);
}

/* 0xHH.. (an even number of hex digits after 0x) as bytes, as in MySQL's hex literals. */
static void t_sql_hex(mgw_pool_t *pool, const unsigned char *in, size_t n, mgw_str_t *out)
{
    unsigned char *b = out_buf(pool, n);
    size_t o = 0, i = 0;
    while (i < n) {
        if (in[i] == '0' && i + 3 < n && (in[i + 1] == 'x' || in[i + 1] == 'X') &&
            hexval(in[i + 2]) >= 0 && hexval(in[i + 3]) >= 0) {
            size_t j = i + 2;
            while (j + 1 < n && hexval(in[j]) >= 0 && hexval(in[j + 1]) >= 0) {
                b[o++] = (unsigned char)(hexval(in[j]) * 16 + hexval(in[j + 1]));
                j += 2;
            }
            i = j;
        } else {
            b[o++] = in[i++];
        }
    }
    done(out, b, o);
}

/* CSS 2.x escapes: \ and one to six hex digits (a following white space is eaten) as the
 * code point's byte (full-width ASCII as ASCII), \ and a newline removed, \ and another
 * character as that character. */
static void t_css(mgw_pool_t *pool, const unsigned char *in, size_t n, mgw_str_t *out)
{
    unsigned char *b = out_buf(pool, n);
    size_t o = 0, i = 0;
    while (i < n) {
        if (in[i] != '\\') {
            b[o++] = in[i++];
            continue;
        }
        if (i + 1 >= n) {
            i++; /* a lone backslash at the end is dropped, as ModSecurity */
            continue;
        }
        size_t j = i + 1;
        unsigned long v = 0;
        while (j < n && j < i + 7 && hexval(in[j]) >= 0)
            v = v * 16 + (unsigned long)hexval(in[j++]);
        if (j > i + 1) {
            b[o++] = unit_byte(v);
            if (j < n && is_space(in[j])) j++;
            i = j;
        } else if (in[i + 1] == '\n') {
            i += 2;
        } else {
            b[o++] = in[i + 1];
            i += 2;
        }
    }
    done(out, b, o);
}

/* JavaScript escapes: \uHHHH (full-width ASCII as ASCII, else the low byte), \xHH, \OOO
 * octal, \b \f \n \r \t \v, and \c as c. */
static void t_js(mgw_pool_t *pool, const unsigned char *in, size_t n, mgw_str_t *out)
{
    unsigned char *b = out_buf(pool, n);
    size_t o = 0, i = 0;
    while (i < n) {
        if (in[i] != '\\' || i + 1 >= n) {
            b[o++] = in[i++];
            continue;
        }
        unsigned char c = in[i + 1];
        if (c == 'u' && i + 5 < n && hexval(in[i + 2]) >= 0 && hexval(in[i + 3]) >= 0 &&
            hexval(in[i + 4]) >= 0 && hexval(in[i + 5]) >= 0) {
            unsigned long u = 0;
            for (int k = 2; k < 6; k++)
                u = u * 16 + (unsigned long)hexval(in[i + (size_t)k]);
            b[o++] = unit_byte(u);
            i += 6;
        } else if (c == 'x' && i + 3 < n && hexval(in[i + 2]) >= 0 && hexval(in[i + 3]) >= 0) {
            b[o++] = (unsigned char)(hexval(in[i + 2]) * 16 + hexval(in[i + 3]));
            i += 4;
        } else if (c >= '0' && c <= '7') {
            unsigned v = 0;
            size_t j = i + 1;
            while (j < n && j < i + 4 && in[j] >= '0' && in[j] <= '7')
                v = v * 8 + (in[j++] - '0');
            b[o++] = (unsigned char)(v & 0xff);
            i = j;
        } else {
            const char *e = strchr("bfnrtv", c);
            static const unsigned char val[] = {8, 12, 10, 13, 9, 11};
            b[o++] = c && e ? val[e - "bfnrtv"] : c;
            i += 2;
        }
    }
    done(out, b, o);
}

/* Removes repeated slashes and "." segments and resolves ".." against what precedes it
 * (a ".." with nothing before it is dropped); win: backslashes are slashes first. */
static void normalize(mgw_pool_t *pool, const unsigned char *in, size_t n, mgw_str_t *out, int win)
{
    unsigned char *b = out_buf(pool, n);
    size_t o = 0, i = 0;
    while (i < n) {
        unsigned char c = in[i];
        if (win && c == '\\') c = '/';
        if (c != '/' && (i == 0 || o == 0 || b[o - 1] == '/')) {
            /* a segment starts: "." and ".." are looked at whole */
            size_t j = i;
            while (j < n && in[j] != '/' && !(win && in[j] == '\\'))
                j++;
            size_t len = j - i;
            int at_end = j >= n;
            if (len == 1 && in[i] == '.') {
                i = at_end ? j : j + 1;
                continue;
            }
            if (len == 2 && in[i] == '.' && in[i + 1] == '.') {
                /* drop the previous segment (keep a leading slash) */
                if (o > 1 && b[o - 1] == '/') o--;
                while (o > 0 && b[o - 1] != '/')
                    o--;
                i = at_end ? j : j + 1;
                continue;
            }
            memcpy(b + o, in + i, len);
            o += len;
            i = j;
            continue;
        }
        if (c == '/') {
            if (o == 0 || b[o - 1] != '/') b[o++] = '/';
            i++;
            continue;
        }
        b[o++] = c;
        i++;
    }
    done(out, b, o);
}

static void t_norm(mgw_pool_t *pool, const unsigned char *in, size_t n, mgw_str_t *out)
{
    normalize(pool, in, n, out, 0);
}

static void t_norm_win(mgw_pool_t *pool, const unsigned char *in, size_t n, mgw_str_t *out)
{
    normalize(pool, in, n, out, 1);
}

static void t_remove_nulls(mgw_pool_t *pool, const unsigned char *in, size_t n, mgw_str_t *out)
{
    unsigned char *b = out_buf(pool, n);
    size_t o = 0;
    for (size_t i = 0; i < n; i++)
        if (in[i]) b[o++] = in[i];
    done(out, b, o);
}

static void t_replace_nulls(mgw_pool_t *pool, const unsigned char *in, size_t n, mgw_str_t *out)
{
    unsigned char *b = out_buf(pool, n);
    for (size_t i = 0; i < n; i++)
        b[i] = in[i] ? in[i] : ' ';
    done(out, b, n);
}

/* Multi-byte UTF-8 sequences (2 to 4 bytes, well formed) as %uHHHH (the code point's
 * low 16 bits, as ModSecurity); other bytes as they are. */
static void t_utf8_unicode(mgw_pool_t *pool, const unsigned char *in, size_t n, mgw_str_t *out)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char *b = out_buf(pool, 3 * n);
    size_t o = 0, i = 0;
    while (i < n) {
        unsigned char c = in[i];
        size_t len = c >= 0xf0 && c < 0xf5 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 && c < 0xe0 ? 2 : 0;
        if (c >= 0xf5) len = 0;
        int ok = len > 0 && i + len <= n;
        for (size_t k = 1; ok && k < len; k++)
            ok = (in[i + k] & 0xc0) == 0x80;
        if (!ok) {
            b[o++] = in[i++];
            continue;
        }
        unsigned long u = len == 2 ? c & 0x1f : len == 3 ? c & 0x0f : c & 0x07;
        for (size_t k = 1; k < len; k++)
            u = (u << 6) | (in[i + k] & 0x3f);
        b[o++] = '%';
        b[o++] = 'u';
        for (int s = 12; s >= 0; s -= 4)
            b[o++] = (unsigned char)hex[(u >> s) & 0xf];
        i += len;
    }
    done(out, b, o);
}

#define XX(name, fn) {#name, fn},
const mgw_wafxform_t mgw_wafxforms[] = {MGW_WAFXFORMS(XX){NULL, NULL}};
#undef XX

const mgw_wafxform_t *mgw_wafxform_find(const char *name)
{
    for (const mgw_wafxform_t *t = mgw_wafxforms; name && t->name; t++)
        if (strcmp(t->name, name) == 0) return t;
    return NULL;
}
