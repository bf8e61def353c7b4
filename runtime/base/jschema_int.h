/*
 * What base/jschema.c compiles and base/jschema_check.c walks: a schema object of the
 * document as a node with its keywords decoded. Internal to those two files.
 */
#ifndef MGW_JSCHEMA_INT_H
#define MGW_JSCHEMA_INT_H

#include <regex.h>
#include <stdint.h>

#include "base/jschema.h"

/* Instance types, as bits (an integer is also a number). */
enum { T_NULL = 1, T_BOOL = 2, T_INT = 4, T_NUM = 8, T_STR = 16, T_ARR = 32, T_OBJ = 64 };

typedef struct mgw_jnode_s node_t;

/* A `format` that is checked (jschema_format.c): the test, and what follows the quoted
 * string in the message ("string \"x\" is not a valid email address"). */
typedef struct {
    const char *name;
    int (*valid)(const char *s, size_t n);
    const char *message;
} mgw_jformat_t;

/* The checked format of that name, or NULL (an annotation: ignored). */
const mgw_jformat_t *mgw__jformat_find(const char *name, size_t n);

typedef struct {
    const char *name;
    size_t len;
    node_t *s;
} prop_t;

typedef struct {
    regex_t *re;
    const char *src;
    node_t *s;
} pprop_t;

typedef struct {
    const char *name;
    size_t len;
    node_t *s;               /* a schema dependency, or NULL */
    const mgw_json_t *names; /* a property dependency: an array of names */
} dep_t;

struct mgw_jnode_s {
    node_t *ref; /* $ref: the node it names; the other keywords are ignored */
    unsigned types;
    const mgw_json_t *type_src; /* for the message */
    int has_min, has_max, excl_min, excl_max, has_mult;
    double min, max, mult;
    const char *min_text, *max_text, *mult_text;
    int64_t min_len, max_len, min_items, max_items, min_props, max_props; /* -1: none */
    regex_t *pattern;
    const char *pattern_src;
    const mgw_jformat_t *format;
    node_t *items;       /* one schema for every item, or NULL */
    node_t **items_list; /* a schema per position (items is an array) */
    int nitems_list, items_is_list;
    int addl_items_false;
    node_t *addl_items;
    int unique;
    const mgw_json_t *required;
    prop_t *props;
    int nprops;
    pprop_t *pprops;
    int npprops;
    int addl_props_false;
    node_t *addl_props;
    dep_t *deps;
    int ndeps;
    const mgw_json_t *enumv;
    node_t **all, **any, **one;
    int nall, nany, none;
    node_t *not_;
};

struct mgw_jschema_s {
    node_t *root;
};

#endif
