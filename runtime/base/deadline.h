/*
 * A connection's deadline: moved on every request, rarely reached. Setting or clearing
 * it writes a field or two; the libuv timer underneath is re-armed only when the new deadline
 * is earlier than the moment it will fire. A timer that fires before the deadline re-arms
 * itself for the time left. A keep-alive connection thus touches libuv's timer heap about
 * once per timeout period instead of several times per request (the lazy timers of
 * nginx's event loop follow the same idea).
 */
#ifndef MGW_DEADLINE_H
#define MGW_DEADLINE_H

#include <stdint.h>
#include <uv.h>

typedef struct {
    uv_timer_t t;   /* first member; t.data is the owner, as with a plain timer */
    uv_timer_cb cb; /* runs once the deadline is reached, with &t */
    uint64_t due;   /* loop time (ms) of the deadline; 0: none */
    uint64_t fires; /* loop time the libuv timer fires at; 0: not armed */
} mgw_deadline_t;

/* Initializes d on loop; owner goes to d->t.data. Close it with uv_close(&d->t). */
void mgw_deadline_init(uv_loop_t *loop, mgw_deadline_t *d, void *owner);
/* cb runs ms from now (the loop's time), unless moved or cleared before. */
void mgw_deadline_set(mgw_deadline_t *d, uv_timer_cb cb, uint64_t ms);
/* No deadline: the callback will not run. */
static inline void mgw_deadline_clear(mgw_deadline_t *d)
{
    d->due = 0;
}

#endif
