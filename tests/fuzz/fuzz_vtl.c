/*
 * The mapping-template (Velocity) compiler, lua/moongate/vtl.lua: the input is a
 * template, optionally followed by a NUL byte and the body it renders with (a fixed JSON
 * body otherwise). It runs in a LuaJIT state of its own, with the interpreter only (JIT
 * off), so that a line hook sees every line run.
 * Properties: compile returns a template or an error "line L, column C: why" (never an
 * internal error, never Lua that does not load); a compiled template renders under a
 * small instruction budget to a string or fails with a string error that is one of the
 * documented kinds (a "line L, column C:" error, the budget, the size limit).
 * Coverage: libFuzzer sees only C edges, so the Lua lines run in lua/moongate/ (line
 * pairs, as edges) are counted into libFuzzer's extra counters: without them the fuzzer
 * would be blind to the compiler.
 */
#include <lauxlib.h>
#include <luajit.h>
#include <lualib.h>

#include "fuzz.h"

#define COV_SIZE (1 << 16)
__attribute__((used, section("__libfuzzer_extra_counters"))) static uint8_t lua_cov[COV_SIZE];

static lua_State *L;
static const char *cov_source; /* the last source pointer seen and whether it counts */
static int cov_counts;
static uint32_t cov_prev;

static void line_hook(lua_State *l, lua_Debug *ar)
{
    if (!lua_getinfo(l, "Sl", ar)) return;
    if (ar->source != cov_source) {
        cov_source = ar->source;
        cov_counts = ar->source != NULL && strstr(ar->source, "moongate/") != NULL;
    }
    if (!cov_counts) return;
    uint32_t cur =
        (uint32_t)((uintptr_t)ar->source * 2654435761u) ^ (uint32_t)ar->currentline * 40503u;
    lua_cov[(cur ^ cov_prev) % COV_SIZE]++;
    cov_prev = cur >> 1;
}

static const char harness[] =
    "local vtl = require 'moongate.vtl'\n"
    "local policy = require 'moongate.policy'\n"
    /* modules a template loads on first use, loaded here: their one-time allocations (cjson's
     * buffer) are not an input's leak */
    "require 'moongate.mapping'; require 'moongate.events'; require('cjson.safe').encode({ 1 })\n"
    "local BODY = "
    "'{\"photos\":{\"page\":1,\"photo\":[{\"id\":\"1\",\"t\":true,\"n\":null},{\"id\":\"2\"}]},'\n"
    "  .. "
    "'\"errorMessage\":\"{\\\\\"key2\\\\\":{\\\\\"arr\\\\\":[1,2]}}\",\"things\":{\"1\":{},\"2\":[]"
    "}}'\n"
    "local OK_ERRORS = { '^line %d+, column %d+: ', '^instruction budget exceeded$', '10485760 "
    "bytes$' }\n"
    "return function(s, body)\n"
    "  local ok, tpl, err = pcall(vtl.compile, s, 'fuzz')\n"
    "  if not ok then return 'compile raised: ' .. tostring(tpl) end\n"
    "  if tpl == nil then\n"
    "    if type(err) ~= 'string' or not err:find('^line %d+, column %d+: ') then\n"
    "      return 'compile error without a place: ' .. tostring(err)\n"
    "    end\n"
    "    if err:find('internal error', 1, true) then return err end\n"
    "    return nil\n"
    "  end\n"
    "  local input = { body = body or BODY, params = { path = { id = '7' }, querystring = { q = 'a "
    "b' },\n"
    "    header = { ['x-h'] = 'v' } }, context = { stage = 'prod', identity = { sourceIp = "
    "'10.0.0.1' } },\n"
    "    stage_variables = { env = 'blue' } }\n"
    "  local rok, out = policy.run(20000, vtl.render, tpl, input)\n"
    "  if type(out) ~= 'string' then return 'render gave a ' .. type(out) end\n"
    "  if not rok then\n"
    "    for _, p in ipairs(OK_ERRORS) do if out:find(p) then return nil end end\n"
    "    return 'render failed with an undocumented error: ' .. out\n"
    "  end\n"
    "  return nil\n"
    "end\n";

/* At exit the state goes, with what its modules allocated (LeakSanitizer does not scan
 * LuaJIT's heap, so memory only it points to would look leaked). */
static void close_state(void)
{
    if (L) lua_close(L);
    L = NULL;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    L = luaL_newstate();
    FUZZ_CHECK(L != NULL);
    luaL_openlibs(L);
    luaJIT_setmode(L, 0, LUAJIT_MODE_ENGINE | LUAJIT_MODE_OFF);
    FUZZ_CHECK(luaL_dostring(L, "package.path = '" MGW_LUA_DIR "/?.lua;' .. package.path") == 0);
    if (luaL_loadbuffer(L, harness, sizeof(harness) - 1, "=fuzz_vtl") != 0 ||
        lua_pcall(L, 0, 1, 0) != 0) {
        fprintf(stderr, "fuzz_vtl: %s\n", lua_tostring(L, -1));
        abort();
    }
    lua_setglobal(L, "fuzz_one");
    lua_sethook(L, line_hook, LUA_MASKLINE, 0);
    atexit(close_state);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nul = memchr(data, 0, size);
    const uint8_t *tpl = data, *body = nul ? nul + 1 : NULL;
    size_t tn = nul ? (size_t)(nul - data) : size, bn = nul ? size - tn - 1 : 0;
    lua_getglobal(L, "fuzz_one");
    lua_pushlstring(L, (const char *)tpl, tn);
    if (body)
        lua_pushlstring(L, (const char *)body, bn);
    else
        lua_pushnil(L);
    cov_prev = 0;
    if (lua_pcall(L, 2, 1, 0) != 0) {
        fprintf(stderr, "fuzz_vtl: the harness failed: %s\n", lua_tostring(L, -1));
        abort();
    }
    if (!lua_isnil(L, -1)) {
        fprintf(stderr, "fuzz_vtl: %s\n", lua_tostring(L, -1));
        FUZZ_CHECK(!"a property of the template compiler does not hold");
    }
    lua_pop(L, 1);
    /* a full cycle: PCRE2 code a template compiled (ffi.gc) is freed now, or LeakSanitizer,
     * which does not scan LuaJIT's own heap, would take it for a leak */
    lua_gc(L, LUA_GCCOLLECT, 0);
    return 0;
}
