/*
 * Response caching in the configuration (conf/cacheconf.c): a stage's cache settings and
 * its routes' (mgw_stage_cache_t, conf/gen.h), and the store it uses, found by a name
 * that says what its keys depend on, so that a reload that changes none of it keeps the
 * entries (base/rcache.h).
 */
#ifndef MGW_CACHECONF_H
#define MGW_CACHECONF_H

#include "conf/gen.h"

struct lua_State;

/*
 * Reads the cache of the stage whose shaped table (moongate.config.shape) is on top of
 * L's stack into st->cache (left NULL without one) for g, whose API keys are built.
 * With check_only no store is made. error(ud, where, reason) reports what cannot be
 * built, naming the config path.
 */
void mgw__cacheconf_read(struct lua_State *L, mgw_gen_t *g, mgw_api_t *api, mgw_stage_t *st,
                         int check_only,
                         void (*error)(void *ud, const char *where, const char *reason), void *ud);

#endif
