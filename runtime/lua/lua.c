/*
 * The worker's LuaJIT state: created when the worker thread starts, holding the
 * policies of every generation the worker still runs requests on, and entered only
 * through lua/moongate/runtime.lua (load_gen, unload_gen, call, yielded, check_cert):
 * hooks run in runner threads that C resumes (below). Of the runtime's files only this one and
 * conf/config.c (which evaluates the configuration file in a state of its own) use the classic Lua
 * C API; Lua reaches back into C through the mgw_ffi_* exports.
 */
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "conf/config.h"
#include "base/err.h"
#include "base/log.h"
#include "base/stat.h"
#include "lua/lua_int.h"

enum { FN_LOAD_GEN, FN_UNLOAD_GEN, FN_CALL, FN_YIELDED, FN_CHECK_CERT, FN_CONN_END, FN__COUNT };
static const char *const fn_names[FN__COUNT] = {"load_gen", "unload_gen", "call",
                                                "yielded",  "check_cert", "conn_end"};

/* Request slots (lua_int.h): blocks of SLOT_BLOCK that never move, up to SLOT_BLOCKS. */
enum { SLOT_BLOCK = 1024, SLOT_BLOCKS = 1024 };

/*
 * A runner is a Lua thread that C resumes with runtime.call: the hook runs in it
 * directly, with no coroutine of its own, and a wait (an HTTP call, the request body)
 * is a yield back to C, which keeps the runner with the request until its event comes.
 * A runner that finished goes back to the idle list and runs the next hook.
 */
typedef struct {
    lua_State *co;
    int ref; /* registry reference: keeps the thread alive */
} runner_t;

/* A WebSocket connection that ended while a hook ran (mgw__lua_conn_end). */
typedef struct ended_s {
    struct ended_s *next;
    char id[];
} ended_t;

enum { IDLE_RUNNERS = 64 };

struct mgw_lua_s {
    lua_State *L;
    int fn[FN__COUNT]; /* registry references to the runtime module's functions */
    int wait_ref;      /* runtime.WAIT: what a runner yields when its hook waits */
    runner_t idle[IDLE_RUNNERS];
    int nidle;
    mgw_lslot_t *blocks[SLOT_BLOCKS];
    uint32_t nslots;         /* slots handed out so far (free or taken) */
    uint32_t free;           /* the first free slot's number + 1; 0: none */
    int running;             /* hooks being resumed now (a hook's C call may run a loop's work) */
    ended_t *ended;          /* connections that ended meanwhile, told once none runs */
    uv_timer_t memory_timer; /* mgw_lua_watch's, when watching */
    mgw_stat_t memory;       /* moongate_lua_memory_bytes{worker} */
    int watching;
};

static mgw_stat_family_t memory_family = {
    .name = "moongate_lua_memory_bytes",
    .type = "gauge",
    .help = "Memory held by each worker's LuaJIT state (policies, their data, the per-request "
            "objects), sampled every second.",
    .labels = {"worker"},
};

/* The state's memory into its worker's gauge: lua_gc's count reads a counter the
 * allocator keeps, it collects nothing. */
static void memory_sample(mgw_lua_t *ml)
{
    int64_t kb = lua_gc(ml->L, LUA_GCCOUNT, 0), b = lua_gc(ml->L, LUA_GCCOUNTB, 0);
    mgw_stat_set(ml->memory, kb * 1024 + b);
}

static void memory_cb(uv_timer_t *t)
{
    memory_sample(t->data);
}

void mgw_lua_watch(mgw_lua_t *ml, mgw_worker_t *w)
{
    if (ml == NULL || ml->watching) return;
    char id[16];
    snprintf(id, sizeof(id), "%d", w->id);
    const char *v[] = {id};
    ml->memory = mgw_stat_series(&memory_family, v);
    memory_sample(ml);
    uv_timer_init(&w->loop, &ml->memory_timer);
    ml->memory_timer.data = ml;
    uv_timer_start(&ml->memory_timer, memory_cb, 1000, 1000);
    uv_unref((uv_handle_t *)&ml->memory_timer);
    ml->watching = 1;
}

void mgw_lua_unwatch(mgw_lua_t *ml)
{
    if (ml == NULL || !ml->watching) return;
    ml->watching = 0;
    uv_close((uv_handle_t *)&ml->memory_timer, NULL);
}

mgw_lua_t *mgw_lua_create(mgw_worker_t *w)
{
    lua_State *L = luaL_newstate();
    if (L == NULL) {
        mgw_log_error("cannot create a Lua state");
        return NULL;
    }
    luaL_openlibs(L);
    const char *dir = mgw_config_lua_dir();
    lua_getglobal(L, "package");
    lua_getfield(L, -1, "path");
    lua_pushfstring(L, "%s/?.lua;%s/?/init.lua;%s", dir, dir, lua_tostring(L, -1));
    lua_setfield(L, -3, "path");
    lua_pop(L, 2);

    lua_getglobal(L, "require");
    lua_pushliteral(L, "moongate.runtime");
    if (lua_pcall(L, 1, 1, 0) != 0) {
        mgw_log_error("cannot load lua/moongate/runtime.lua: %s", lua_tostring(L, -1));
        lua_close(L);
        return NULL;
    }
    mgw_lua_t *ml = mgw_calloc(1, sizeof(*ml));
    ml->L = L;
    for (int i = 0; i < FN__COUNT; i++) {
        lua_getfield(L, -1, fn_names[i]);
        ml->fn[i] = luaL_ref(L, LUA_REGISTRYINDEX);
    }
    lua_getfield(L, -1, "WAIT");
    ml->wait_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_getfield(L, -1, "init");
    lua_pushinteger(L, w ? w->id : 0);
    if (lua_pcall(L, 1, 0, 0) != 0) {
        mgw_log_error("moongate.runtime init: %s", lua_tostring(L, -1));
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    return ml;
}

void mgw_lua_destroy(mgw_lua_t *ml)
{
    if (ml == NULL) return;
    while (ml->ended) {
        ended_t *e = ml->ended;
        ml->ended = e->next;
        free(e);
    }
    lua_close(ml->L);
    for (uint32_t b = 0; b < SLOT_BLOCKS && ml->blocks[b]; b++)
        free(ml->blocks[b]);
    free(ml);
}

int mgw_lua_load_gen(mgw_lua_t *ml, const mgw_gen_t *g)
{
    if (ml == NULL || g->lua_spec == NULL) return 0;
    lua_State *L = ml->L;
    lua_rawgeti(L, LUA_REGISTRYINDEX, ml->fn[FN_LOAD_GEN]);
    lua_pushinteger(L, g->id);
    lua_pushlstring(L, g->lua_spec, g->lua_spec_len);
    if (lua_pcall(L, 2, 1, 0) != 0) {
        mgw_log_error("%s: loading the policies: %s", g->file, lua_tostring(L, -1));
        lua_pop(L, 1);
        return MGW_ECONFIG;
    }
    /* nil, or the text of every policy that failed to load (their uses answer 500) */
    int rc = 0;
    if (lua_type(L, -1) == LUA_TSTRING) {
        mgw_log_error("%s: %s", g->file, lua_tostring(L, -1));
        rc = MGW_ECONFIG;
    }
    lua_pop(L, 1);
    return rc;
}

void mgw_lua_unload_gen(mgw_lua_t *ml, const mgw_gen_t *g)
{
    if (ml == NULL || g->lua_spec == NULL) return;
    lua_State *L = ml->L;
    lua_rawgeti(L, LUA_REGISTRYINDEX, ml->fn[FN_UNLOAD_GEN]);
    lua_pushinteger(L, g->id);
    if (lua_pcall(L, 1, 0, 0) != 0) {
        mgw_log_error("unloading generation %d: %s", g->id, lua_tostring(L, -1));
        lua_pop(L, 1);
    }
}

static mgw_lslot_t *slot_at(mgw_lua_t *ml, uint32_t i)
{
    return &ml->blocks[i / SLOT_BLOCK][i % SLOT_BLOCK];
}

/* r's slot, taken on its first hook; NULL when every slot is taken. */
static mgw_lslot_t *slot_of(mgw_lua_t *ml, mgw_req_t *r, mgw_lreq_t *l)
{
    if (l->slot) return l->slot;
    uint32_t i;
    if (ml->free) {
        i = ml->free - 1;
        ml->free = slot_at(ml, i)->next;
    } else {
        uint32_t b = ml->nslots / SLOT_BLOCK;
        if (b >= SLOT_BLOCKS) return NULL;
        if (ml->blocks[b] == NULL) ml->blocks[b] = mgw_calloc(SLOT_BLOCK, sizeof(mgw_lslot_t));
        i = ml->nslots++;
    }
    mgw_lslot_t *s = slot_at(ml, i);
    s->r = r;
    s->next = 0;
    l->slot_no = i;
    return l->slot = s;
}

static void runner_drop(mgw_lua_t *ml, runner_t run)
{
    luaL_unref(ml->L, LUA_REGISTRYINDEX, run.ref);
}

void mgw_lua_release(mgw_req_t *r)
{
    mgw_lua_t *ml = r->from.w->lua;
    mgw_lreq_t *l = r->lua;
    mgw_lslot_t *s = l->slot;
    if (l->runner) {
        /* it ended while its hook waited: the suspended hook is dropped */
        runner_drop(ml, (runner_t){l->runner, l->runner_ref});
        l->runner = NULL;
    }
    l->slot = NULL;
    s->r = NULL;
    s->serial++;
    s->next = ml->free;
    ml->free = l->slot_no + 1;
}

/* Reads what runtime.call returned on co and puts the runner back (or drops it). */
static int finished(mgw_lua_t *ml, runner_t run, int *aux)
{
    lua_State *co = run.co;
    int code = (int)lua_tointeger(co, -2);
    if (aux) *aux = (int)lua_tointeger(co, -1);
    lua_settop(co, 0);
    if (ml->nidle < IDLE_RUNNERS)
        ml->idle[ml->nidle++] = run;
    else
        runner_drop(ml, run);
    return code;
}

static void conn_end(mgw_lua_t *ml, const char *id)
{
    lua_State *L = ml->L;
    lua_rawgeti(L, LUA_REGISTRYINDEX, ml->fn[FN_CONN_END]);
    lua_pushstring(L, id);
    if (lua_pcall(L, 1, 0, 0) != 0) {
        mgw_log_error("moongate.runtime conn_end: %s", lua_tostring(L, -1));
        lua_pop(L, 1);
    }
}

/*
 * The values Lua kept for WebSocket connection id go (ws/ calls this through
 * mgw_ws_set_conn_end). The Lua state is not entered while a hook runs in it (a hook's
 * C call that ran a connection's end): the id is told once the hook has yielded or
 * returned.
 */
void mgw__lua_conn_end(mgw_lua_t *ml, const char *id)
{
    if (ml == NULL) return;
    if (ml->running) {
        size_t n = strlen(id) + 1;
        ended_t *e = mgw_malloc(sizeof(*e) + n);
        memcpy(e->id, id, n);
        e->next = ml->ended;
        ml->ended = e;
        return;
    }
    conn_end(ml, id);
}

static void tell_ended(mgw_lua_t *ml)
{
    while (ml->ended) {
        ended_t *e = ml->ended;
        ml->ended = e->next;
        conn_end(ml, e->id);
        free(e);
    }
}

static int resume_runner(mgw_req_t *r, mgw_lua_t *ml, runner_t run, int nargs, int *aux);

/* Resumes run with nargs on its stack and turns what it did into a code. */
static int run_hook(mgw_req_t *r, mgw_lua_t *ml, runner_t run, int nargs, int *aux)
{
    ml->running++;
    int code = resume_runner(r, ml, run, nargs, aux);
    if (--ml->running == 0 && ml->ended) tell_ended(ml);
    return code;
}

static int resume_runner(mgw_req_t *r, mgw_lua_t *ml, runner_t run, int nargs, int *aux)
{
    lua_State *co = run.co;
    int rc = lua_resume(co, nargs);
    if (rc == 0) return finished(ml, run, aux);
    mgw_lreq_t *l = r->lua;
    if (rc == LUA_YIELD) {
        int n = lua_gettop(co); /* what it yielded */
        lua_rawgeti(co, LUA_REGISTRYINDEX, ml->wait_ref);
        int waits = n == 1 && lua_rawequal(co, 1, -1);
        lua_settop(co, 0);
        if (waits) {
            l->runner = co;
            l->runner_ref = run.ref;
            return MGW_LUA_WAIT;
        }
        /* the policy yielded by itself: the hook is dropped and reported */
        runner_drop(ml, run);
        lua_State *L = ml->L;
        lua_rawgeti(L, LUA_REGISTRYINDEX, ml->fn[FN_YIELDED]);
        lua_pushnumber(L, (lua_Number)(uintptr_t)l->slot);
        if (lua_pcall(L, 1, 0, 0) != 0) lua_pop(L, 1);
        return MGW_LUA_ERROR;
    }
    /* The runtime catches every policy error; this is a bug in the runtime itself. */
    mgw_log_error("request %s: moongate.runtime: %s", r->id, lua_tostring(co, -1));
    runner_drop(ml, run);
    return MGW_LUA_ERROR;
}

int mgw_lua_call(mgw_req_t *r, int hook, int use, int *aux)
{
    mgw_lreq_t *l = mgw__lreq(r);
    l->hook_start_ms = mgw__now_ms(r); /* latencies, and the deadline of its HTTP calls */
    mgw_lua_t *ml = r->from.w->lua;
    if (ml == NULL) return MGW_LUA_ERROR;
    mgw_lslot_t *s = slot_of(ml, r, l);
    if (s == NULL) {
        mgw_log_error("request %s: more than %d requests in Lua hooks at once", r->id,
                      SLOT_BLOCK * SLOT_BLOCKS);
        return MGW_LUA_ERROR;
    }
    runner_t run;
    if (ml->nidle > 0) {
        run = ml->idle[--ml->nidle];
    } else {
        run.co = lua_newthread(ml->L);
        run.ref = luaL_ref(ml->L, LUA_REGISTRYINDEX);
    }
    lua_State *co = run.co;
    lua_rawgeti(co, LUA_REGISTRYINDEX, ml->fn[FN_CALL]);
    /* The address as a number: the JIT compiles a number-to-pointer cast, not a
     * lightuserdata one (user-space addresses fit a double exactly). */
    lua_pushnumber(co, (lua_Number)(uintptr_t)s);
    lua_pushinteger(co, hook);
    lua_pushinteger(co, use);
    lua_pushinteger(co, r->gen->id);
    lua_pushthread(co); /* the runner: a wait checks that it runs in it */
    return run_hook(r, ml, run, 5, aux);
}

int mgw_lua_resume(mgw_req_t *r, int *aux)
{
    mgw_lua_t *ml = r->from.w->lua;
    mgw_lreq_t *l = r->lua;
    if (ml == NULL || l == NULL || l->runner == NULL) return MGW_LUA_ERROR;
    runner_t run = {l->runner, l->runner_ref};
    l->runner = NULL;
    return run_hook(r, ml, run, 0, aux);
}

int mgw_lua_check_cert(mgw_lua_t *ml, int gen_id, int use, const mgw_client_cert_t *cert,
                       const char *fingerprint, char *reason, size_t n)
{
    if (ml == NULL) {
        snprintf(reason, n, "no Lua state");
        return MGW_CERT_ERROR;
    }
    lua_State *L = ml->L;
    lua_rawgeti(L, LUA_REGISTRYINDEX, ml->fn[FN_CHECK_CERT]);
    lua_pushinteger(L, use);
    lua_pushinteger(L, gen_id);
    /* the shape of requestContext.authentication.clientCert, plus the fingerprint */
    lua_createtable(L, 0, 7);
    lua_pushstring(L, cert->pem);
    lua_setfield(L, -2, "clientCertPem");
    lua_pushstring(L, cert->subject_dn);
    lua_setfield(L, -2, "subjectDN");
    lua_pushstring(L, cert->issuer_dn);
    lua_setfield(L, -2, "issuerDN");
    lua_pushstring(L, cert->serial);
    lua_setfield(L, -2, "serialNumber");
    lua_pushstring(L, fingerprint);
    lua_setfield(L, -2, "fingerprint");
    lua_createtable(L, 0, 2);
    lua_pushstring(L, cert->not_before);
    lua_setfield(L, -2, "notBefore");
    lua_pushstring(L, cert->not_after);
    lua_setfield(L, -2, "notAfter");
    lua_setfield(L, -2, "validity");
    if (lua_pcall(L, 3, 2, 0) != 0) {
        snprintf(reason, n, "moongate.runtime.check_cert: %s", lua_tostring(L, -1));
        lua_pop(L, 1);
        return MGW_CERT_ERROR;
    }
    int code = (int)lua_tointeger(L, -2);
    snprintf(reason, n, "%s", lua_tostring(L, -1) ? lua_tostring(L, -1) : "");
    lua_pop(L, 2);
    return code;
}
