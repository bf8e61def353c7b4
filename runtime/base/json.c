/* Strict JSON parser (see json.h). Stub: the implementation follows. */
#include <stdio.h>
#include <string.h>

#include "base/json.h"

int mgw_json_parse(mgw_pool_t *pool, const char *p, size_t n, mgw_json_t **out, char *err,
                   size_t errlen)
{
    (void)pool, (void)p, (void)n;
    *out = NULL;
    if (errlen) snprintf(err, errlen, "not implemented");
    return -1;
}

const mgw_json_t *mgw_json_get(const mgw_json_t *obj, const char *key)
{
    if (obj == NULL || obj->type != MGW_JSON_OBJECT) return NULL;
    for (int i = 0; i < obj->n; i++)
        if (strcmp(obj->keys[i], key) == 0) return obj->items[i];
    return NULL;
}
