/* Worker generations (see wgen.h). Worker-local: no locks, no atomics. */
#include "gw/wgen.h"

#include "gw/req_int.h"

mgw_wgen_t *mgw__wgen_acquire(mgw_worker_t *w)
{
    w->wgen->nreqs++;
    return w->wgen;
}

void mgw__wgen_release(void *data)
{
    mgw_wgen_t *wg = data;
    if (--wg->nreqs == 0 && wg->retired) wg->close(wg);
}

void mgw__wgen_retire(mgw_wgen_t *wg)
{
    wg->retired = 1;
    if (wg->nreqs == 0) wg->close(wg);
}
