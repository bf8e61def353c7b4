/*
 * Log destinations in the configuration (README "Log destinations"): what
 * lua/moongate/config/logsink.lua shapes for an access log or a WAF log (a file, a
 * standard stream, a syslog server), opened or resolved once per generation into one of
 * the generation's log targets (gen->logs), which runtime/gw/accesslog.c writes.
 */
#ifndef MGW_LOGSINK_H
#define MGW_LOGSINK_H

#include "conf/gen.h"

struct lua_State;

/*
 * Reads the shaped destination at t["sink"] of the table on top of L and returns the index
 * of its target in g->logs (an equal destination shares one), or -1 after reporting an
 * error through err(ctx, config path, reason). check_only: nothing is opened.
 */
int mgw__logsink_open(struct lua_State *L, mgw_gen_t *g, int check_only,
                      void (*err)(void *ctx, const char *where, const char *reason), void *ctx);

#endif
