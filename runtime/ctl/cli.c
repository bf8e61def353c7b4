/* The management client of the CLI (see cli.h). */
#include "ctl/cli.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "http/http1.h"

/* ---- the client (moongate reload, moongate status) ---- */

int mgw_manage_request(const char *address, int port, const char *token, const char *method,
                       const char *path, mgw_buf_t *body)
{
    char service[16];
    snprintf(service, sizeof(service), "%d", port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(address, service, &hints, &res);
    if (rc != 0) {
        mgw_buf_printf(body, "cannot resolve %s: %s\n", address, gai_strerror(rc));
        return -1;
    }
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    /* A reload loads every policy: generous, but never forever. */
    struct timeval tv = {.tv_sec = 120};
    if (fd >= 0) setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (fd < 0 || connect(fd, res->ai_addr, res->ai_addrlen) != 0) {
        mgw_buf_printf(body, "cannot connect to the management listener %s:%d: %m\n", address,
                       port);
        if (fd >= 0) close(fd);
        freeaddrinfo(res);
        return -1;
    }
    freeaddrinfo(res);
    mgw_buf_t req = {0};
    mgw_buf_printf(&req,
                   "%s %s HTTP/1.1\r\nhost: %s:%d\r\nauthorization: Bearer %s\r\n"
                   "content-length: 0\r\nconnection: close\r\n\r\n",
                   method, path, address, port, token);
    mgw_buf_t in = {0};
    int status = -1;
    if (write(fd, req.p, req.n) == (ssize_t)req.n) {
        char chunk[4096];
        ssize_t got;
        while ((got = read(fd, chunk, sizeof(chunk))) > 0)
            mgw_buf_add(&in, chunk, (size_t)got);
    }
    close(fd);
    mgw_buf_free(&req);
    const char *sep = in.n ? memmem(in.p, in.n, "\r\n\r\n", 4) : NULL;
    if (sep && sscanf(in.p, "HTTP/1.%*d %d", &status) == 1) {
        mgw_buf_add(body, sep + 4, in.n - (size_t)(sep + 4 - in.p));
    } else {
        mgw_buf_printf(body, "no valid answer from the management listener %s:%d\n", address, port);
        status = -1;
    }
    mgw_buf_free(&in);
    return status;
}
