#include "conf/gwresp.h"

#include <string.h>

static const mgw_gwresp_info_t table[] = {
#define XX(t, s, m, e) {#t, m, e, s},
    MGW_GWRESP_TYPES(XX)
#undef XX
};

const mgw_gwresp_info_t *mgw_gwresp_info(mgw_gwresp_type_t type)
{
    return &table[type];
}

mgw_gwresp_type_t mgw_gwresp_by_name(const char *name)
{
    for (int i = 0; i < MGW_GW__COUNT; i++)
        if (strcmp(table[i].name, name) == 0) return (mgw_gwresp_type_t)i;
    return MGW_GW_NONE;
}

mgw_gwresp_type_t mgw_gwresp_fallback(mgw_gwresp_type_t type)
{
    return table[type].status >= 500 ? MGW_GW_DEFAULT_5XX : MGW_GW_DEFAULT_4XX;
}
