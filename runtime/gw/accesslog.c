#include "gw/accesslog.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"
#include "base/pool.h"

#define FLUSH_BYTES 65536
#define FLUSH_MS 100

typedef struct {
    int fd;
    mgw_buf_t buf;
    int in_flight;
} logfile_t;

typedef struct {
    uv_fs_t req;
    logfile_t *f;
    mgw_accesslog_t *a;
    mgw_buf_t data;
} fswrite_t;

struct mgw_accesslog_s {
    uv_loop_t *loop;
    mgw_gen_t *gen; /* holds the log files open until the last write is done */
    uv_timer_t timer;
    logfile_t *files;
    int nfiles;
    int closing, writes;
};

static void flush(mgw_accesslog_t *a, logfile_t *f);

static void free_if_done(mgw_accesslog_t *a)
{
    if (a->closing == 2 && a->writes == 0) {
        for (int i = 0; i < a->nfiles; i++)
            mgw_buf_free(&a->files[i].buf);
        free(a->files);
        mgw_gen_unref(a->gen);
        free(a);
    }
}

static void write_cb(uv_fs_t *req)
{
    fswrite_t *w = (fswrite_t *)req;
    if (req->result < 0)
        mgw_log_error("access log write failed: %s", uv_strerror((int)req->result));
    w->f->in_flight = 0;
    mgw_accesslog_t *a = w->a;
    a->writes--;
    uv_fs_req_cleanup(req);
    mgw_buf_free(&w->data);
    free(w);
    if (!a->closing && a->files) {
        for (int i = 0; i < a->nfiles; i++)
            if (a->files[i].buf.n >= FLUSH_BYTES) flush(a, &a->files[i]);
    }
    free_if_done(a);
}

static void flush(mgw_accesslog_t *a, logfile_t *f)
{
    if (f->in_flight || f->buf.n == 0 || f->fd < 0) return;
    fswrite_t *w = mgw_calloc(1, sizeof(*w));
    w->f = f;
    w->a = a;
    w->data = f->buf; /* hand the buffer over; the file starts a new one */
    memset(&f->buf, 0, sizeof(f->buf));
    uv_buf_t b = uv_buf_init(w->data.p, (unsigned)w->data.n);
    f->in_flight = 1;
    a->writes++;
    int rc = uv_fs_write(a->loop, &w->req, f->fd, &b, 1, -1, write_cb);
    if (rc < 0) {
        mgw_log_error("access log write failed: %s", uv_strerror(rc));
        f->in_flight = 0;
        a->writes--;
        mgw_buf_free(&w->data);
        free(w);
    }
}

static void timer_cb(uv_timer_t *t)
{
    mgw_accesslog_t *a = t->data;
    for (int i = 0; i < a->nfiles; i++)
        flush(a, &a->files[i]);
}

mgw_accesslog_t *mgw_accesslog_create(uv_loop_t *loop, mgw_gen_t *gen)
{
    mgw_accesslog_t *a = mgw_calloc(1, sizeof(*a));
    a->loop = loop;
    a->gen = gen;
    mgw_gen_ref(gen);
    a->nfiles = gen->nlogs;
    a->files = mgw_calloc((size_t)(gen->nlogs ? gen->nlogs : 1), sizeof(logfile_t));
    for (int i = 0; i < gen->nlogs; i++)
        a->files[i].fd = gen->logs[i].fd;
    uv_timer_init(loop, &a->timer);
    a->timer.data = a;
    uv_timer_start(&a->timer, timer_cb, FLUSH_MS, FLUSH_MS);
    uv_unref((uv_handle_t *)&a->timer);
    return a;
}

void mgw_accesslog_append(mgw_accesslog_t *a, int log_id, const char *line, size_t n)
{
    logfile_t *f = &a->files[log_id];
    mgw_buf_add(&f->buf, line, n);
    if (f->buf.n >= FLUSH_BYTES) flush(a, f);
}

static void close_cb(uv_handle_t *h)
{
    mgw_accesslog_t *a = h->data;
    a->closing = 2;
    free_if_done(a);
}

void mgw_accesslog_close(mgw_accesslog_t *a)
{
    /* Whatever is still buffered is written now, in order after any write in flight:
     * O_APPEND keeps each write whole. */
    for (int i = 0; i < a->nfiles; i++) {
        logfile_t *f = &a->files[i];
        size_t off = 0;
        while (f->fd >= 0 && off < f->buf.n) {
            ssize_t w = write(f->fd, f->buf.p + off, f->buf.n - off);
            if (w <= 0) break;
            off += (size_t)w;
        }
        f->buf.n = 0;
    }
    a->closing = 1;
    uv_close((uv_handle_t *)&a->timer, close_cb);
}
