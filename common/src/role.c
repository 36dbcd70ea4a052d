#include "spk/role.h"

#include <string.h>

static const char *const g_role_names[SPK_ROLE_COUNT] = {"none",
#define XX(n, s) s,
                                                         SPK_ROLE_MAP(XX)
#undef XX
};

spk_role_t spk_role_parse(const char *s)
{
    for (int i = 1; s != NULL && i < SPK_ROLE_COUNT; i++) {
        if (strcmp(s, g_role_names[i]) == 0) {
            return (spk_role_t)i;
        }
    }
    return SPK_ROLE_NONE;
}

const char *spk_role_name(spk_role_t r)
{
    if ((int)r <= 0 || r >= SPK_ROLE_COUNT) {
        return "none";
    }
    return g_role_names[r];
}
