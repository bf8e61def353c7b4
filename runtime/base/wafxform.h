/*
 * The text transformations of AWS WAF rule statements (README "Rule statements":
 * TextTransformations). Each is a pure function over bytes: it reads n bytes at in and
 * writes its result into memory from pool (out->p, NUL-terminated, out->n bytes). None
 * fails: input a transformation cannot decode is kept as it is, as ModSecurity's t:
 * functions of the same name do where AWS does not say. A transformation is an entry
 * of mgw_wafxforms, found by its AWS name.
 */
#ifndef MGW_WAFXFORM_H
#define MGW_WAFXFORM_H

#include <stddef.h>

#include "base/mem.h"
#include "base/pool.h"

typedef void (*mgw_wafxform_fn)(mgw_pool_t *pool, const unsigned char *in, size_t n,
                                mgw_str_t *out);

typedef struct {
    const char *name; /* AWS's name: "URL_DECODE" */
    mgw_wafxform_fn fn;
} mgw_wafxform_t;

/* The transformations, ending with {NULL, NULL}. */
extern const mgw_wafxform_t mgw_wafxforms[];

/* The transformation called name, or NULL. */
const mgw_wafxform_t *mgw_wafxform_find(const char *name);

#endif
