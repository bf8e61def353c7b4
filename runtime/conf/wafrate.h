/*
 * Rate-based web ACL rules in the configuration (README "Rate-based rules"): what
 * lua/moongate/config/waf_rate.lua shapes for each rule (its limit, window and key), read
 * once per generation, with the counters the rule uses (base/ratewin.h), found by a name
 * that says what its counts depend on, so that a reload that keeps the rule keeps them.
 * The request side (the key of a request, counting, the match) is runtime/lua/ffi_waf.c's.
 */
#ifndef MGW_WAFRATE_H
#define MGW_WAFRATE_H

#include <stdint.h>

#include "conf/gen.h"

struct lua_State;
struct mgw_ratewin_s;

/* AWS WAF's limit on custom keys. */
#define MGW_WAFRATE_MAX_KEYS 5

/*
 * The kinds of key parts: XX(ID, config name, AWS WAF log name). runtime/lua/ffi_waf.c has
 * a table indexed by them that reads each from a request; a new kind is a line here, an
 * entry there and one in waf_rate.lua's KEY_KINDS.
 */
#define MGW_RKEY_KINDS(XX)                                                                         \
    XX(IP, "ip", "IP")                                                                             \
    XX(FORWARDED_IP, "forwarded_ip", "FORWARDED_IP")                                               \
    XX(HEADER, "header", "HEADER")                                                                 \
    XX(COOKIE, "cookie", "COOKIE")                                                                 \
    XX(QUERY_ARGUMENT, "query_argument", "QUERY_ARGUMENT")                                         \
    XX(QUERY_STRING, "query_string", "QUERY_STRING")                                               \
    XX(HTTP_METHOD, "http_method", "HTTP_METHOD")                                                  \
    XX(URI_PATH, "uri_path", "URI_PATH")                                                           \
    XX(LABEL_NAMESPACE, "label_namespace", "LABEL_NAMESPACE")

enum {
#define XX(id, name, aws) MGW_RKEY_##id,
    MGW_RKEY_KINDS(XX)
#undef XX
        MGW_RKEY__COUNT
};

/* One part of a rule's key. */
typedef struct {
    int kind;       /* MGW_RKEY_* */
    mgw_str_t name; /* the header (lower case), cookie, query argument or label namespace
                       (ending in ':'); NULL p for others */
} mgw_rkey_t;

/* A rate-based rule, in its generation's pool. */
typedef struct mgw_wafrate_s {
    const char *name;      /* the rule's name */
    const char *where;     /* its config path */
    uint64_t limit;        /* requests per window a key may make */
    int window_s;          /* the evaluation window: 60, 120, 300 or 600 */
    const char *limit_key; /* AWS's name of the aggregate key type: "IP", "FORWARDEDIP",
                              "CONSTANT" or "CUSTOMKEYS" */
    mgw_rkey_t keys[MGW_WAFRATE_MAX_KEYS]; /* "IP" is one part (ip), "CONSTANT" none */
    int nkeys;
    mgw_str_t forwarded_header; /* lower case; NULL p when no part is forwarded_ip */
    int fallback_match;         /* a forwarded header without a valid address: the rule matches */
    int scope_down;             /* 1 + the index of the rule statement (g->waf_statements) a request
                                   must match to be counted; 0: none */
    struct mgw_ratewin_s *counters; /* NULL when the generation is only checked */
} mgw_wafrate_t;

/* The AWS WAF log name of key kind k (MGW_RKEY_*). */
const char *mgw_wafrate_kind_aws(int k);

/*
 * Reads the rate-based rules of the shaped configuration on top of L's stack (its
 * waf_rate list) into g->waf_rate. With check_only no counters are made. error(ud, where,
 * reason) reports what cannot be built, naming the config path.
 */
void mgw__wafrate_read(struct lua_State *L, mgw_gen_t *g, int check_only,
                       void (*error)(void *ud, const char *where, const char *reason), void *ud);

#endif
