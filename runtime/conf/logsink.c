#include "conf/logsink.h"

#include <errno.h>
#include <fcntl.h>
#include <lua.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include "conf/lfield.h"

typedef void (*err_fn)(void *ctx, const char *where, const char *reason);

/* The target already in g->logs under key, or a new one (fd -1, kind FILE). */
static int add_target(mgw_gen_t *g, const char *key, int *is_new)
{
    for (int i = 0; i < g->nlogs; i++)
        if (strcmp(g->logs[i].path, key) == 0) return *is_new = 0, i;
    mgw_logfile_t *logs = mgw_pool_calloc(g->pool, sizeof(*logs) * (size_t)(g->nlogs + 1));
    if (g->nlogs) memcpy(logs, g->logs, sizeof(*logs) * (size_t)g->nlogs);
    logs[g->nlogs].path = mgw_pool_strdup(g->pool, key);
    logs[g->nlogs].fd = -1;
    g->logs = logs;
    *is_new = 1;
    return g->nlogs++;
}

/* The syslog server's address (a name is resolved now, once per generation). */
static const char *resolve_server(lua_State *L, mgw_gen_t *g, mgw_logfile_t *t, char *why, size_t n)
{
    const char *transport = mgw__lfield_str(L, g->pool, "transport");
    if (strcmp(transport, "unix") == 0) {
        struct sockaddr_un *un = (struct sockaddr_un *)&t->addr;
        const char *path = mgw__lfield_str(L, g->pool, "path");
        if (strlen(path) >= sizeof(un->sun_path)) return "the socket path is too long";
        un->sun_family = AF_UNIX;
        strcpy(un->sun_path, path);
        t->addrlen = sizeof(*un);
        t->kind = MGW_LOGSINK_UNIX;
        return NULL;
    }
    int tcp = strcmp(transport, "tcp") == 0;
    char port[16];
    snprintf(port, sizeof(port), "%d", (int)mgw__lfield_num(L, "port", 514));
    struct addrinfo hints = {.ai_socktype = tcp ? SOCK_STREAM : SOCK_DGRAM}, *ai = NULL;
    int rc = getaddrinfo(mgw__lfield_str(L, g->pool, "host"), port, &hints, &ai);
    if (rc != 0) {
        snprintf(why, n, "cannot resolve \"%s\": %s", mgw__lfield_str(L, g->pool, "host"),
                 gai_strerror(rc));
        return why;
    }
    memcpy(&t->addr, ai->ai_addr, ai->ai_addrlen);
    t->addrlen = ai->ai_addrlen;
    t->kind = tcp ? MGW_LOGSINK_TCP : MGW_LOGSINK_UDP;
    freeaddrinfo(ai);
    return NULL;
}

/* A syslog destination: its key says everything its messages depend on. */
static int open_syslog(lua_State *L, mgw_gen_t *g, const char *where, err_fn err, void *ctx)
{
    char host[256];
    const char *hostname = mgw__lfield_str(L, g->pool, "hostname");
    if (hostname == NULL) {
        if (gethostname(host, sizeof(host)) != 0 || host[0] == '\0') strcpy(host, "-");
        host[sizeof(host) - 1] = '\0';
        hostname = host;
    }
    int pri = (int)mgw__lfield_num(L, "pri", 190);
    const char *app = mgw__lfield_str(L, g->pool, "app_name");
    const char *msgid = mgw__lfield_str(L, g->pool, "msg_id");
    char key[1024];
    snprintf(key, sizeof(key), "<syslog %s %d %s %s %s>", mgw__lfield_str(L, g->pool, "server"),
             pri, hostname, app ? app : "moongate", msgid ? msgid : "-");
    int is_new, id = add_target(g, key, &is_new);
    if (!is_new) return id;
    mgw_logfile_t *t = &g->logs[id];
    char why[512];
    const char *bad = resolve_server(L, g, t, why, sizeof(why));
    if (bad) {
        err(ctx, where, bad);
        return -1;
    }
    t->head = mgw_pool_printf(g->pool, "<%d>1 ", pri);
    t->tail = mgw_pool_printf(g->pool, " %s %s %d %s - ", hostname, app ? app : "moongate",
                              (int)getpid(), msgid ? msgid : "-");
    return id;
}

int mgw__logsink_open(lua_State *L, mgw_gen_t *g, int check_only, err_fn err, void *ctx)
{
    lua_getfield(L, -1, "sink");
    if (!lua_istable(L, -1)) {
        lua_pop(L, 1);
        return -1;
    }
    const char *kind = mgw__lfield_str(L, g->pool, "kind");
    const char *where = mgw__lfield_str(L, g->pool, "where");
    int id = -1, is_new;
    char why[512];
    if (kind && strcmp(kind, "syslog") == 0) {
        id = open_syslog(L, g, where, err, ctx);
    } else if (kind && strcmp(kind, "stream") == 0) {
        const char *stream = mgw__lfield_str(L, g->pool, "stream");
        int out = strcmp(stream, "stdout") == 0;
        id = add_target(g, out ? "<stdout>" : "<stderr>", &is_new);
        g->logs[id].kind = MGW_LOGSINK_STREAM;
        /* a descriptor of its own: the generation closes it when it is freed */
        if (is_new && !check_only)
            g->logs[id].fd = fcntl(out ? STDOUT_FILENO : STDERR_FILENO, F_DUPFD_CLOEXEC, 3);
    } else {
        const char *path = mgw__lfield_str(L, g->pool, "path");
        id = add_target(g, path ? path : "", &is_new);
        if (is_new && !check_only) {
            int fd = open(g->logs[id].path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
            if (fd < 0) {
                snprintf(why, sizeof(why), "cannot open \"%s\": %s", g->logs[id].path,
                         strerror(errno));
                err(ctx, where, why);
            }
            g->logs[id].fd = fd;
        }
    }
    lua_pop(L, 1);
    return id;
}
