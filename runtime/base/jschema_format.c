/*
 * JSON Schema draft 4 `format` (jschema_int.h): the formats AWS API Gateway's validator
 * (com.github.fge json-schema-validator) checks for draft 4, with its messages and, as
 * near as its Java libraries allow, its judgement:
 *   date-time  Joda "yyyy-MM-dd'T'HH:mm:ss[.fraction]offset": 1 to 12 fraction digits,
 *              offset Z or +hh:mm / +hhmm, a real calendar day, T and Z in either case;
 *   email      javax.mail InternetAddress (strict): local@domain, the domain may be one
 *              label (foo@bar), the local part dot-atoms or a quoted string;
 *   hostname   Guava InternetDomainName: at most 253 bytes, labels of 1 to 63 letters,
 *              digits, - and _ (non-ASCII letters pass), no - or _ at either end of a label,
 *              the last label not starting with a digit;
 *   ipv4, ipv6 an address as inet_pton reads it (no leading zeros in IPv4 octets);
 *   uri        java.net.URI: any URI reference (relative ones too) whose characters are
 *              legal, with a valid scheme when it has one.
 * Other formats (regex, and those draft 4 does not define) are annotations: ignored.
 */
#include <arpa/inet.h>
#include <string.h>

#include "base/jschema_int.h"
#include "base/utf8.h"

static int digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return 0;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 1;
}

static int days_in_month(int y, int m)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : days[m - 1];
}

static int is_date_time(const char *s, size_t n)
{
    int y, mo, d, h, mi, sec, oh, om;
    if (n < 20 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't') || s[13] != ':' ||
        s[16] != ':')
        return 0;
    if (!digits(s, 4, &y) || !digits(s + 5, 2, &mo) || !digits(s + 8, 2, &d) ||
        !digits(s + 11, 2, &h) || !digits(s + 14, 2, &mi) || !digits(s + 17, 2, &sec))
        return 0;
    if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || sec > 59)
        return 0;
    size_t i = 19;
    if (s[i] == '.') {
        size_t f = ++i;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == f || i - f > 12) return 0;
    }
    if (i < n && (s[i] == 'Z' || s[i] == 'z')) return i + 1 == n;
    if (i >= n || (s[i] != '+' && s[i] != '-')) return 0;
    i++;
    size_t rest = n - i;
    if (rest == 5 && s[i + 2] == ':')
        return digits(s + i, 2, &oh) && digits(s + i + 3, 2, &om) && oh <= 23 && om <= 59;
    return rest == 4 && digits(s + i, 2, &oh) && digits(s + i + 2, 2, &om) && oh <= 23 && om <= 59;
}

/* RFC 5322 atext */
static int is_atext(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-/=?^_`{|}~", c)) || c >= 0x80;
}

/* dot-atoms: atext runs separated by single dots */
static int is_dot_atoms(const char *s, size_t n)
{
    if (n == 0 || s[0] == '.' || s[n - 1] == '.') return 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] == '.' ? s[i + 1] == '.' : !is_atext((unsigned char)s[i])) return 0;
    return 1;
}

static int is_email(const char *s, size_t n)
{
    const char *at = NULL;
    for (size_t i = n; i > 0; i--)
        if (s[i - 1] == '@') {
            at = s + i - 1;
            break;
        }
    if (at == NULL) return 0;
    size_t ln = (size_t)(at - s), dn = n - ln - 1;
    const char *dom = at + 1;
    int local_ok;
    if (ln >= 2 && s[0] == '"' && s[ln - 1] == '"') {
        local_ok = 1;
        for (size_t i = 1; i + 1 < ln && local_ok; i++)
            if (s[i] == '\\')
                i++;
            else if (s[i] == '"' || (unsigned char)s[i] < 0x20)
                local_ok = 0;
    } else {
        local_ok = is_dot_atoms(s, ln);
    }
    if (!local_ok) return 0;
    if (dn >= 2 && dom[0] == '[' && dom[dn - 1] == ']') {
        for (size_t i = 1; i + 1 < dn; i++)
            if (dom[i] == '[' || dom[i] == ']' || dom[i] == '\\' || (unsigned char)dom[i] < 0x21)
                return 0;
        return 1;
    }
    return is_dot_atoms(dom, dn);
}

static int is_hostname(const char *s, size_t n)
{
    if (n && s[n - 1] == '.') n--; /* a fully qualified name */
    if (n == 0 || n > 253) return 0;
    size_t start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && s[i] != '.') {
            unsigned char c = (unsigned char)s[i];
            if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '_' || c >= 0x80))
                return 0;
            continue;
        }
        size_t len = i - start;
        if (len == 0 || len > 63 || s[start] == '-' || s[start] == '_' || s[i - 1] == '-' ||
            s[i - 1] == '_')
            return 0;
        if (i == n && s[start] >= '0' && s[start] <= '9') return 0; /* the last label */
        start = i + 1;
    }
    return 1;
}

static int is_addr(int af, const char *s, size_t n)
{
    char buf[64];
    unsigned char out[16];
    if (n == 0 || n >= sizeof(buf) || memchr(s, '\0', n)) return 0;
    memcpy(buf, s, n);
    buf[n] = '\0';
    return inet_pton(af, buf, out) == 1;
}

static int is_ipv4(const char *s, size_t n)
{
    return is_addr(AF_INET, s, n);
}

static int is_ipv6(const char *s, size_t n)
{
    return is_addr(AF_INET6, s, n);
}

static int is_uri(const char *s, size_t n)
{
    /* the scheme, when a ':' comes before any '/', '?' or '#' */
    size_t k = strcspn(s, ":/?#");
    if (k < n && s[k] == ':') {
        if (k == 0 || !((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z'))) return 0;
        for (size_t i = 1; i < k; i++) {
            unsigned char c = (unsigned char)s[i];
            if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '+' || c == '-' || c == '.'))
                return 0;
        }
        if (k + 1 == n) return 0; /* a scheme and nothing else */
    }
    int hashes = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '%') {
            if (i + 2 >= n || mgw_hex_digit((uint8_t)s[i + 1]) < 0 ||
                mgw_hex_digit((uint8_t)s[i + 2]) < 0)
                return 0;
            i += 2;
        } else if (c == '#') {
            if (++hashes > 1) return 0;
        } else if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                     strchr("-._~:/?[]@!$&'()*+,;=", c) || c >= 0x80) ||
                   c == '\0') {
            return 0;
        }
    }
    return 1;
}

static const mgw_jformat_t formats[] = {
    {"date-time", is_date_time,
     " is invalid against requested date format(s) [yyyy-MM-dd'T'HH:mm:ssZ, "
     "yyyy-MM-dd'T'HH:mm:ss.[0-9]{1,12}Z]"},
    {"email", is_email, " is not a valid email address"},
    {"hostname", is_hostname, " is not a valid hostname"},
    {"ipv4", is_ipv4, " is not a valid IPv4 address"},
    {"ipv6", is_ipv6, " is not a valid IPv6 address"},
    {"uri", is_uri, " is not a valid URI"},
};

const mgw_jformat_t *mgw__jformat_find(const char *name, size_t n)
{
    for (size_t i = 0; i < sizeof(formats) / sizeof(formats[0]); i++)
        if (strlen(formats[i].name) == n && memcmp(formats[i].name, name, n) == 0)
            return &formats[i];
    return NULL;
}
