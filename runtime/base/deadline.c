#include "base/deadline.h"

static void fire(uv_timer_t *t)
{
    mgw_deadline_t *d = (mgw_deadline_t *)t;
    d->fires = 0;
    if (d->due == 0) return; /* cleared since it was armed */
    uint64_t now = uv_now(t->loop);
    if (now < d->due) { /* moved later since it was armed */
        d->fires = d->due;
        uv_timer_start(t, fire, d->due - now, 0);
        return;
    }
    d->due = 0;
    d->cb(t);
}

void mgw_deadline_init(uv_loop_t *loop, mgw_deadline_t *d, void *owner)
{
    uv_timer_init(loop, &d->t);
    d->t.data = owner;
    d->cb = NULL;
    d->due = d->fires = 0;
}

void mgw_deadline_set(mgw_deadline_t *d, uv_timer_cb cb, uint64_t ms)
{
    uint64_t due = uv_now(d->t.loop) + ms;
    d->cb = cb;
    d->due = due;
    if (d->fires != 0 && d->fires <= due) return; /* fires in time: it will re-arm then */
    d->fires = due;
    uv_timer_start(&d->t, fire, ms, 0);
}
