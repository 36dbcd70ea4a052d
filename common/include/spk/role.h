/* Roles of the people who use spreekkamer (docs/roles.md has the role x action matrix). */
#ifndef SPK_ROLE_H
#define SPK_ROLE_H

#include <stdbool.h>

#define SPK_ROLE_MAP(XX)                                                                           \
    XX(PATIENT, "patient")                                                                         \
    XX(GP, "gp")                                                                                   \
    XX(ASSISTANT, "assistant")                                                                     \
    XX(REMOTE_GP, "remote_gp")                                                                     \
    XX(SPECIALIST, "specialist")                                                                   \
    XX(PARTNER, "partner")                                                                         \
    XX(ADMIN, "admin")                                                                             \
    XX(SERVICE, "service")

typedef enum {
    SPK_ROLE_NONE = 0,
#define SPK_ROLE_ENUM_(n, s) SPK_ROLE_##n,
    SPK_ROLE_MAP(SPK_ROLE_ENUM_)
#undef SPK_ROLE_ENUM_
        SPK_ROLE_COUNT
} spk_role_t;

/* "gp" -> SPK_ROLE_GP; SPK_ROLE_NONE when unknown. */
spk_role_t spk_role_parse(const char *s);
/* SPK_ROLE_GP -> "gp"; "none" for SPK_ROLE_NONE or out of range. */
const char *spk_role_name(spk_role_t r);

#endif
