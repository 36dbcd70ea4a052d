#include "spk/error.h"

const char *spk_strerror(int err)
{
    switch (err) {
    case 0:
        return "success";
#define XX(name, val, wire, msg)                                                                   \
    case val:                                                                                      \
        return msg;
        SPK_ERRNO_MAP(XX)
#undef XX
    }
    return "unknown error";
}

const char *spk_err_wire(int err)
{
    switch (err) {
    case 0:
        return "ok";
#define XX(name, val, wire, msg)                                                                   \
    case val:                                                                                      \
        return wire;
        SPK_ERRNO_MAP(XX)
#undef XX
    }
    return "internal";
}

const char *spk_err_name(int err)
{
    switch (err) {
    case 0:
        return "OK";
#define XX(name, val, wire, msg)                                                                   \
    case val:                                                                                      \
        return #name;
        SPK_ERRNO_MAP(XX)
#undef XX
    }
    return "EUNKNOWN";
}
