/*
 * Span export over OTLP/HTTP JSON (README "Tracing"), per worker and off the request
 * path: a request whose trace is exported leaves its spans, already encoded, in the
 * worker's bounded queue of batches (gw/trace.c encodes them); the worker POSTs a batch
 * to the collector through the one HTTP client when it is full or when flush_interval_ms
 * has passed, one export at a time. A full queue drops spans, a failed or slow export
 * drops its batch (timeout_ms bounds it): both are counted and logged at most once a
 * minute. At shutdown, what is queued goes out once the worker's connections are done,
 * within one timeout_ms and what is left of timeouts.shutdown.
 */
#include "http/otlp.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "http/client.h"
#include "http/proxy.h"

typedef struct batch_s {
    struct batch_s *next;
    mgw_buf_t b; /* the request body, without its closing brackets */
    size_t head; /* bytes of the envelope before the first span */
    int n;       /* spans in it */
} batch_t;

/* One export in flight: its own memory, freed when the client is done with it. */
typedef struct {
    mgw_hc_req_t q;
    mgw_pool_t *pool;
    mgw_otlp_t *o;
    int n; /* spans it carries */
    int status;
} export_t;

struct mgw_otlp_s {
    mgw_worker_t *w;
    mgw_gen_t *gen; /* whose tracing configuration the queue is sent with (a reference) */
    batch_t *head, *tail;
    int queued; /* spans in the batches */
    uv_timer_t timer;
    int inflight; /* an export is in flight */
    int closing;  /* the worker's loop is ending: no timer, a deadline */
    uint64_t deadline;
    uint64_t dropped, failed;          /* spans dropped since the last warning */
    uint64_t drop_logged, fail_logged; /* when the last warnings were (loop ms) */
};

#define WARN_EVERY_MS 60000

static void start_export(mgw_otlp_t *o);

static void timer_cb(uv_timer_t *t)
{
    start_export(t->data);
}

static mgw_otlp_t *state(mgw_worker_t *w, const mgw_tracing_t *tc)
{
    mgw_otlp_t *o = w->otlp;
    if (o) return o;
    o = w->otlp = mgw_calloc(1, sizeof(*o));
    o->w = w;
    uv_timer_init(&w->loop, &o->timer);
    o->timer.data = o;
    uv_timer_start(&o->timer, timer_cb, tc->flush_ms, tc->flush_ms);
    uv_unref((uv_handle_t *)&o->timer); /* the worker's listeners keep the loop */
    return o;
}

/* A new batch at the tail, its envelope open (the resource is the generation's). */
static batch_t *new_batch(mgw_otlp_t *o, const mgw_tracing_t *tc)
{
    batch_t *bt = mgw_calloc(1, sizeof(*bt));
    mgw_buf_adds(&bt->b, "{\"resourceSpans\":[{\"resource\":{\"attributes\":["
                         "{\"key\":\"service.name\",\"value\":{\"stringValue\":\"");
    mgw_buf_add_json(&bt->b, tc->service_name, strlen(tc->service_name));
    mgw_buf_adds(&bt->b, "\"}},{\"key\":\"telemetry.sdk.name\",\"value\":{\"stringValue\":"
                         "\"moongate\"}}]},\"scopeSpans\":[{\"scope\":{\"name\":\"moongate\"},"
                         "\"spans\":[");
    bt->head = bt->b.n;
    if (o->tail)
        o->tail->next = bt;
    else
        o->head = bt;
    o->tail = bt;
    return bt;
}

static void warn_dropped(mgw_otlp_t *o, const char *why, uint64_t *count, uint64_t *logged)
{
    uint64_t now = uv_now(&o->w->loop);
    if (*logged && now - *logged < WARN_EVERY_MS) return;
    mgw_log_warn("tracing: %llu span(s) dropped: %s", (unsigned long long)*count, why);
    *count = 0;
    *logged = now;
}

/* The span sink (gw.h): r's spans join the tail batch, or are dropped when the queue is full. */
static void span_sink(mgw_req_t *r)
{
    const mgw_tracing_t *tc = r->gen->tracing;
    mgw_otlp_t *o = state(r->from.w, tc);
    if (o->gen != r->gen) {
        /* a reload: the queue goes out with this generation's settings from now on */
        mgw_gen_ref(r->gen);
        mgw_gen_unref(o->gen);
        o->gen = r->gen;
        uv_timer_start(&o->timer, timer_cb, tc->flush_ms, tc->flush_ms);
    }
    batch_t *bt = o->tail;
    if (bt == NULL || bt->n >= tc->batch_size) bt = new_batch(o, tc);
    size_t mark = bt->b.n;
    int n = mgw__trace_encode(r, &bt->b, bt->n > 0);
    if (o->queued + n > tc->max_queue) {
        bt->b.n = mark;
        o->dropped += (uint64_t)n;
        warn_dropped(o, "the export queue is full (tracing.otlp.max_queue)", &o->dropped,
                     &o->drop_logged);
        return;
    }
    bt->n += n;
    o->queued += n;
    if (bt->n >= tc->batch_size && !o->inflight) start_export(o);
}

static void batch_free(batch_t *bt)
{
    mgw_buf_free(&bt->b);
    free(bt);
}

/* Takes the head batch off the queue (NULL when none has spans). */
static batch_t *take(mgw_otlp_t *o)
{
    batch_t *bt = o->head;
    if (bt == NULL || bt->n == 0) return NULL;
    o->head = bt->next;
    if (o->head == NULL) o->tail = NULL;
    o->queued -= bt->n;
    return bt;
}

static void export_done(export_t *x, const char *error)
{
    mgw_otlp_t *o = x->o;
    if (error) {
        o->failed += (uint64_t)x->n;
        const char *url = o->gen && o->gen->tracing ? o->gen->tracing->otlp_url : "";
        char why[600];
        snprintf(why, sizeof(why), "export to %s failed: %s", url, error);
        warn_dropped(o, why, &o->failed, &o->fail_logged);
    }
    mgw_pool_destroy(x->pool);
    free(x);
    o->inflight = 0;
    /* More full batches (or, at the end, any) go on at once, after this callback. */
    if (o->closing) {
        start_export(o);
    } else if (o->head && o->head->n >= o->gen->tracing->batch_size) {
        uv_timer_start(&o->timer, timer_cb, 0, o->gen->tracing->flush_ms);
    }
}

static int ex_head(mgw_hc_req_t *q, const mgw_http1_head_t *hd, mgw_hdr_t *hdrs, int nhdrs)
{
    (void)hdrs;
    (void)nhdrs;
    ((export_t *)q->data)->status = hd->status;
    return 0;
}

static int ex_body(mgw_hc_req_t *q, const char *p, size_t n, mgw_rbuf_t *ref)
{
    (void)q;
    (void)p;
    (void)n;
    (void)ref;
    return 0;
}

static void ex_end(mgw_hc_req_t *q)
{
    export_t *x = q->data;
    if (x->status >= 200 && x->status < 300) {
        export_done(x, NULL);
    } else {
        char why[64];
        snprintf(why, sizeof(why), "the collector answered %d", x->status);
        export_done(x, why);
    }
}

static void ex_error(mgw_hc_req_t *q, mgw_hc_err_t kind, const char *detail)
{
    export_t *x = q->data;
    export_done(x, kind == MGW_HC_ETIMEOUT ? "timed out (tracing.otlp.timeout_ms)"
                   : detail && *detail     ? detail
                                           : "connection failed");
}

static const mgw_hc_cbs_t export_cbs = {
    .on_head = ex_head,
    .on_body = ex_body,
    .on_end = ex_end,
    .on_error = ex_error,
};

/* POSTs the head batch, unless an export is in flight or nothing waits. */
static void start_export(mgw_otlp_t *o)
{
    if (o->inflight || o->gen == NULL) return;
    const mgw_tracing_t *tc = o->gen->tracing;
    uint64_t timeout = tc->timeout_ms;
    if (o->closing) {
        uint64_t now = uv_now(&o->w->loop);
        if (now >= o->deadline) {
            int n = o->queued;
            if (n) {
                o->failed += (uint64_t)n;
                o->fail_logged = 0;
                warn_dropped(o, "shutdown: no time left to export them", &o->failed,
                             &o->fail_logged);
            }
            return;
        }
        if (o->deadline - now < timeout) timeout = o->deadline - now;
    }
    batch_t *bt = take(o);
    if (bt == NULL) {
        /* Nothing waits: a generation the worker no longer serves is let go (its log
         * files close with its last reference); the next span takes the current one. */
        if (!o->closing && o->gen != o->w->gen) {
            mgw_gen_unref(o->gen);
            o->gen = NULL;
        }
        return;
    }
    mgw_buf_adds(&bt->b, "]}]}]}");
    export_t *x = mgw_calloc(1, sizeof(*x));
    x->o = o;
    x->n = bt->n;
    x->pool = mgw_pool_create(4096);
    mgw_url_t url;
    const char *error = NULL;
    if (mgw_url_parse(tc->otlp_url, strlen(tc->otlp_url), &url) != 0) {
        error = "invalid endpoint";
    } else {
        int nh = tc->notlp_headers;
        mgw_hdr_t *h = mgw_pool_alloc(x->pool, sizeof(*h) * (size_t)(nh + 1));
        h[0] = (mgw_hdr_t){MGW_STR("content-type"), MGW_STR("application/json")};
        memcpy(h + 1, tc->otlp_headers, sizeof(*h) * (size_t)nh);
        error = mgw_hc_build(&x->q, x->pool, MGW_STR("POST"), &url, h, nh + 1,
                             (mgw_str_t){bt->b.p, bt->b.n});
    }
    batch_free(bt);
    mgw_hc_pool_t *pool = mgw__http_pool(o->w);
    if (error == NULL && url.tls) {
        char why[256];
        x->q.tls = mgw_hc_pool_tls(pool, NULL, why, sizeof(why));
        x->q.tls_id = "-";
        if (x->q.tls == NULL) error = mgw_pool_strdup(x->pool, why);
    }
    o->inflight = 1;
    if (error) {
        export_done(x, error);
        return;
    }
    x->q.timeout_ms = x->q.total_ms = timeout;
    x->q.cbs = &export_cbs;
    x->q.data = x;
    mgw_hc_err_t kind;
    const char *detail = NULL;
    if (mgw_hc_start(pool, &x->q, &kind, &detail) != 0)
        export_done(x, detail ? mgw_pool_strdup(x->pool, detail) : "connection failed");
}

/* The loop has run dry (every connection is gone): what is queued goes out now, within
 * one timeout_ms and what is left of the shutdown bound; the loop runs on while it does. */
static void worker_end(mgw_worker_t *w)
{
    mgw_otlp_t *o = w->otlp;
    if (o == NULL) return;
    uv_close((uv_handle_t *)&o->timer, NULL);
    o->closing = 1;
    if (o->gen) {
        /* one timeout_ms, and no later than the shutdown's own bound (timeouts.shutdown) */
        uint64_t left = o->gen->tracing->timeout_ms;
        if (uv_is_active((uv_handle_t *)&w->shutdown_timer)) {
            uint64_t due = uv_timer_get_due_in(&w->shutdown_timer);
            if (due < left) left = due;
        }
        o->deadline = uv_now(&w->loop) + left;
    }
    start_export(o);
}

static void worker_free(mgw_worker_t *w)
{
    mgw_otlp_t *o = w->otlp;
    if (o == NULL) return;
    for (batch_t *bt = o->head, *next; bt; bt = next) {
        next = bt->next;
        batch_free(bt);
    }
    mgw_gen_unref(o->gen);
    free(o);
    w->otlp = NULL;
}

const mgw_worker_ops_t mgw__otlp_worker_ops = {
    .name = "otlp",
    .worker_end = worker_end,
    .worker_free = worker_free,
};

void mgw__otlp_register(void)
{
    mgw_gw_set_span_sink(span_sink);
}
