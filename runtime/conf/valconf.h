/*
 * Request validation in the configuration (conf/valconf.c): an API's models (JSON Schema
 * draft 4, compiled once per generation by base/jschema.c) and each route's validator,
 * required parameters and models by content type, which the validate phase
 * (gw/validate.c) applies.
 */
#ifndef MGW_VALCONF_H
#define MGW_VALCONF_H

#include "base/jschema.h"
#include "conf/gen.h"

struct lua_State;

/* Where a required request parameter is (method.request.KIND.NAME). */
enum { MGW_VPARAM_HEADER, MGW_VPARAM_PATH, MGW_VPARAM_QUERY };

typedef struct {
    int kind;       /* MGW_VPARAM_* */
    mgw_str_t name; /* a header's in lower case */
} mgw_vparam_t;

typedef struct {
    mgw_str_t content_type; /* a media type in lower case, or "$default" */
    const char *model_name;
    const mgw_jschema_t *model;
} mgw_vmodel_t;

/* A route's request validation (mgw_route_t.validation). */
struct mgw_validation_s {
    int params;             /* request_validator "params" or "all": required parameters */
    int body;               /* "body" or "all": the body against its content type's model */
    mgw_vparam_t *required; /* in the order AWS lists them: by full name (header, path, query) */
    int nrequired;
    mgw_vmodel_t *models; /* "$default", if any, last */
    int nmodels;
};

/*
 * Reads the validation of the API whose shaped table (moongate.config.shape) is on top
 * of L's stack: its models (compiled into pool) and its routes' validators (routes[i]
 * is the i-th of the table's routes). error(ud, where, reason) reports what cannot be
 * built, naming the config path.
 */
void mgw__valconf_read(struct lua_State *L, mgw_pool_t *pool, mgw_api_t *api,
                       void (*error)(void *ud, const char *where, const char *reason), void *ud);

/* moongate.native.jschema_error(json): why the JSON text is no draft 4 schema the gateway
 * can compile, or nil (the configuration validator asks it). */
int mgw__native_jschema_error(struct lua_State *L);

#endif
