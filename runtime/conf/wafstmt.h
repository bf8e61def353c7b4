/*
 * AWS WAF rule statements (README "Rule statements"): a web ACL rule's `statement`,
 * compiled once per configuration generation into a tree of nodes and evaluated per
 * request in C (lua/ffi_waf.c calls mgw_wafstmt_eval from the rule's inspect). A node is
 * a statement kind, an entry of the ops table in wafstmt.c; the field a statement
 * inspects is an entry of its fields table; text transformations are base/wafxform.h's.
 */
#ifndef MGW_WAFSTMT_H
#define MGW_WAFSTMT_H

#include <stddef.h>
#include <stdint.h>

#include "base/mem.h"
#include "base/pool.h"

typedef struct mgw_wafstmt_s mgw_wafstmt_t;

/* One statement as the configuration gives it (config.c reads it from the shaped
 * configuration; every string borrowed from the generation's pool). */
typedef struct {
    const char *op;    /* "byte_match", "ip_set", ..., "and_statement", "or_statement", ... */
    const char *where; /* its config path, for errors */
    /* the field to match */
    const char *field;       /* "uri_path", "single_header", ... (NULL: none) */
    const char *field_name;  /* single_header, single_query_argument */
    const char *match_scope; /* headers, cookies: "ALL", "KEY" or "VALUE" */
    const char *oversize;    /* body: "CONTINUE", "MATCH" or "NO_MATCH" */
    uint64_t size_limit;     /* body: the bytes inspected */
    const char **transforms; /* in order */
    int ntransforms;
    /* byte_match, size_constraint */
    mgw_str_t search;
    const char *constraint; /* positional constraint or comparison operator */
    uint64_t size;
    /* regex_match, regex_pattern_set, ip_set: inline values and/or a file; geo_match:
     * the country codes */
    const char **values;
    int nvalues;
    const char *file;
    /* ip_set, geo_match: the forwarded header (NULL: the client address) */
    const char *header, *fallback, *position;
    /* geo_match: the generation's country database */
    const struct mgw_geodb_s *geodb;
    /* label_match */
    const char *scope, *key;
    /* and/or/not: the children, indices into the node array */
    int *kids;
    int nkids;
} mgw_wafstmt_node_conf_t;

/* A rule's statement: nodes[0] is the root; labels are the rule's (added on a match). */
typedef struct {
    const mgw_wafstmt_node_conf_t *nodes;
    int nnodes;
    const char **labels;
    int nlabels;
} mgw_wafstmt_conf_t;

/*
 * Compiles c with memory from pool (the generation's; what is not pool memory, PCRE2
 * codes and IP sets, is freed by pool cleanups). Returns the statement, or NULL with
 * "where: reason" in err.
 */
mgw_wafstmt_t *mgw_wafstmt_compile(const mgw_wafstmt_conf_t *c, mgw_pool_t *pool, char *err,
                                   size_t errlen);

/* One request as statements see it; every string borrowed for the call. */
typedef struct {
    const char *client_ip;
    mgw_str_t method, target; /* target: path?query as received */
    const mgw_hdr_t *headers;
    int nheaders;
    const char *body; /* the whole body (NULL: none, or the statement needs none) */
    size_t body_len;
    const char *const *labels; /* the labels earlier rules added */
    int nlabels;
    /* adds a label to the request (geo_match adds the country's when it is evaluated,
     * whether it matches or not, as AWS does); rules evaluated later see it */
    void (*add_label)(void *ud, const char *s, size_t n);
    void *ud;
} mgw_wafstmt_req_t;

/* Whether the statement inspects the request body (the caller then waits for it). */
int mgw_wafstmt_needs_body(const mgw_wafstmt_t *s);

/* 1 when the request matches s, 0 when not. Transformed values come from pool. */
int mgw_wafstmt_eval(const mgw_wafstmt_t *s, const mgw_wafstmt_req_t *in, mgw_pool_t *pool);

/* The rule's labels (added to the request when it matches). */
const char *const *mgw_wafstmt_labels(const mgw_wafstmt_t *s, int *n);

#endif
