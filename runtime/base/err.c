#include "base/err.h"

const char *mgw_strerror(int err)
{
    switch (err) {
    case MGW_OK:
        return "ok";
#define XX(code, msg)                                                                              \
    case MGW_E##code:                                                                              \
        return msg;
        MGW_ERRNO_MAP(XX)
#undef XX
    }
    return "unknown error";
}

const char *mgw_err_name(int err)
{
    switch (err) {
    case MGW_OK:
        return "MGW_OK";
#define XX(code, _)                                                                                \
    case MGW_E##code:                                                                              \
        return "MGW_E" #code;
        MGW_ERRNO_MAP(XX)
#undef XX
    }
    return "MGW_EUNKNOWN";
}
