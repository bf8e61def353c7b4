/*
 * A gateway worker inside the fuzzer: the real generation (loaded from a configuration
 * text by the configuration loader), the worker's Lua state and access-log writer, its
 * libuv loop, and client connections accepted by the real mgw__conn_accept. Only the
 * sockets differ: a connection's socket is one end of a socketpair (handed over as the
 * connection a listening handle accepted), and the fuzzer plays the client on the other
 * end, so every byte goes through the same read callbacks, parser and writes as on a
 * TCP connection. The loop is driven by hand (UV_RUN_NOWAIT) until nothing moves.
 */
#ifndef MGW_FUZZ_GATEWAY_H
#define MGW_FUZZ_GATEWAY_H

#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <lauxlib.h>

#include "conf/config.h"
#include "base/err.h"
#include "fuzz.h"
#include "base/log.h"
#include "ctl/reload.h"
#include "gw/req_int.h"
#include "http/proxy.h"
#include "http/server.h"
#include "http/writer.h"
#include "lua/lua_int.h"
#include "net/conn.h"

/* lua-cjson keeps its encode buffer (malloc) in a userdata, which lives in LuaJIT's own
 * mmap'ed memory that the leak checker does not scan: not a leak. (gw_start also stops
 * cjson from growing that buffer: a realloc'ed one has no stack to suppress it by.) */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
    return "leak:strbuf_init\n";
}

static mgw_worker_t gw;
static void gw_reset(void);
static uv_tcp_t gw_shell; /* a listening handle nobody connects to: what accept hands over */

static void gw_noop_connection(uv_stream_t *s, int status)
{
    (void)s;
    (void)status;
}

/* Writes text to dir/name and returns the path (static storage, one per call site). */
static void gw_write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    FUZZ_CHECK(f != NULL);
    fputs(text, f);
    FUZZ_CHECK(fclose(f) == 0);
}

/* At exit: the Lua state goes (what it holds lives in LuaJIT's own memory, where the leak
 * checker cannot see the references). */
static void gw_stop(void)
{
    gw_reset();
    mgw_lua_destroy(gw.lua);
    gw.lua = NULL;
}

/*
 * Loads the configuration text (with "@DIR@" replaced by a scratch directory, for the
 * state directory) as the server does and starts the worker on it.
 */
static void gw_start(const char *name, const char *config)
{
    mgw_log_level = getenv("MGW_FUZZ_LOG") ? MGW_LOG_DEBUG : -1; /* quiet: errors are expected */
    const char *dir = fuzz_scratch_dir(name);
    mgw_buf_t text = {0};
    for (const char *p = config; *p;) {
        const char *at = strstr(p, "@DIR@");
        size_t n = at ? (size_t)(at - p) : strlen(p);
        mgw_buf_add(&text, p, n);
        if (!at) break;
        mgw_buf_add(&text, dir, strlen(dir));
        p = at + 5;
    }
    mgw_buf_addc(&text, '\0');
    char file[4200];
    snprintf(file, sizeof(file), "%s/gateway.lua", dir);
    gw_write_file(file, text.p);
    mgw_buf_free(&text);

    mgw_gen_t *gen = NULL;
    mgw_buf_t errors = {0};
    if (mgw_config_load(file, MGW_LUA_DIR "/..", 0, &gen, &errors) != 0) {
        fprintf(stderr, "fuzz configuration rejected:\n%.*s", (int)errors.n, errors.p);
        abort();
    }
    mgw_buf_free(&errors);
    /* what main.c wires before the workers start: the request core's tables (the HTTP/1
     * writer, the integrations, the Lua hooks), the accept handler, the certificate check */
    mgw_http_register();
    mgw_lua_register();
    mgw_conn_set_accept_handler(&mgw_http_server_handler);
    mgw_conn_set_cert_check(mgw__revocation_check);
    FUZZ_CHECK(uv_loop_init(&gw.loop) == 0);
    gw.id = 1;
    gw.gen = gen;
    gw.rng[0] = 0x9e3779b97f4a7c15ull;
    gw.rng[1] = 0xbf58476d1ce4e5b9ull;
    gw.lua = mgw_lua_create(&gw); /* what main.c's Lua worker ops do */
    mgw__reload_worker_start(&gw, gen);
    /* lua.c's struct mgw_lua_s starts with the worker's lua_State */
    lua_State *L = *(lua_State **)gw.lua;
    FUZZ_CHECK(luaL_dostring(L, "for _, m in ipairs({ 'cjson', 'cjson.safe' }) do "
                                "require(m).encode_keep_buffer(false) end") == 0);
    mgw_gen_unref(gen); /* the worker holds its own reference */

    struct sockaddr_in sa;
    uv_ip4_addr("127.0.0.1", 0, &sa);
    FUZZ_CHECK(uv_tcp_init(&gw.loop, &gw_shell) == 0);
    FUZZ_CHECK(uv_tcp_bind(&gw_shell, (const struct sockaddr *)&sa, 0) == 0);
    FUZZ_CHECK(uv_listen((uv_stream_t *)&gw_shell, 1, gw_noop_connection) == 0);
    uv_unref((uv_handle_t *)&gw_shell);
    atexit(gw_stop);
}

/* A socketpair: [0] for the gateway, [1] (non-blocking) for the fuzzer. */
static void gw_pair(int sv[2])
{
    FUZZ_CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
    FUZZ_CHECK(fcntl(sv[1], F_SETFL, O_NONBLOCK) == 0);
}

/* Accepts a new client connection on listener 0; returns the fuzzer's end. */
static mgw_conn_t *gw_accept(int *client_fd)
{
    int sv[2];
    gw_pair(sv);
    gw_shell.accepted_fd = sv[0];
    mgw__conn_accept(&gw, (uv_stream_t *)&gw_shell, 0);
    mgw_conn_t *c = gw.conns;
    FUZZ_CHECK(c != NULL && c->stream.tcp.io_watcher.fd == sv[0]);
    /* a socketpair has no address: the peer a TCP client would have */
    snprintf(c->peer, sizeof(c->peer), "192.0.2.10");
    *client_fd = sv[1];
    return c;
}

/* Reads and drops what is waiting on fd; returns the byte count (0: nothing). */
static size_t gw_drain(int fd, mgw_buf_t *keep)
{
    char buf[65536];
    size_t total = 0;
    for (;;) {
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n <= 0) break;
        if (keep && keep->n < 4096) mgw_buf_add(keep, buf, (size_t)n);
        total += (size_t)n;
    }
    return total;
}

/* Writes what the socket takes of p (n bytes); returns the count written. */
static size_t gw_send(int fd, const uint8_t *p, size_t n)
{
    size_t done = 0;
    while (done < n) {
        ssize_t w = write(fd, p + done, n - done);
        if (w <= 0) break;
        done += (size_t)w;
    }
    return done;
}

/* One loop iteration without blocking. */
static void gw_tick(void)
{
    uv_run(&gw.loop, UV_RUN_NOWAIT);
}

/* The number of open client connections. */
static int gw_nconns(void)
{
    int n = 0;
    for (mgw_conn_t *c = gw.conns; c; c = c->next)
        n++;
    return n;
}

/* Closes what is left of the client connections and the idle backend ones, and runs the
 * loop until their handles are closed. */
static void gw_reset(void)
{
    for (mgw_conn_t *c = gw.conns, *next; c; c = next) {
        next = c->next;
        mgw__conn_close(c);
    }
    mgw__upstream_close_idle(&gw);
    for (int i = 0; i < 64 && gw.conns; i++)
        gw_tick();
    FUZZ_CHECK(gw.conns == NULL);
    gw_tick(); /* close callbacks of backend connections */
}

#endif
