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

/*
 * The transformations: AWS's name and the function of wafxform.c that does it. One list
 * for C and Lua: tools/gen_constants.c exports the names as constants.WAF_TRANSFORMS,
 * which the configuration checks against.
 */
#define MGW_WAFXFORMS(XX)                                                                          \
    XX(NONE, t_none)                                                                               \
    XX(COMPRESS_WHITE_SPACE, t_compress_ws)                                                        \
    XX(HTML_ENTITY_DECODE, t_html_entity)                                                          \
    XX(LOWERCASE, t_lowercase)                                                                     \
    XX(CMD_LINE, t_cmd_line)                                                                       \
    XX(URL_DECODE, t_url_decode)                                                                   \
    XX(URL_DECODE_UNI, t_url_decode_uni)                                                           \
    XX(BASE64_DECODE, t_b64)                                                                       \
    XX(BASE64_DECODE_EXT, t_b64_ext)                                                               \
    XX(HEX_DECODE, t_hex)                                                                          \
    XX(MD5, t_md5)                                                                                 \
    XX(REPLACE_COMMENTS, t_replace_comments)                                                       \
    XX(ESCAPE_SEQ_DECODE, t_escape_seq)                                                            \
    XX(SQL_HEX_DECODE, t_sql_hex)                                                                  \
    XX(CSS_DECODE, t_css)                                                                          \
    XX(JS_DECODE, t_js)                                                                            \
    XX(NORMALIZE_PATH, t_norm)                                                                     \
    XX(NORMALIZE_PATH_WIN, t_norm_win)                                                             \
    XX(REMOVE_NULLS, t_remove_nulls)                                                               \
    XX(REPLACE_NULLS, t_replace_nulls)                                                             \
    XX(UTF8_TO_UNICODE, t_utf8_unicode)

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
