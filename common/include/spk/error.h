/* spreekkamer error codes: one list for every module.
 *
 * Actions return 0 or a negative SPK_E* code. The same list generates spk_strerror() and
 * spk_err_wire(), the stable snake_case code carried in protocol error messages
 * (docs/protocol.md lists them). Append new codes at the end; never renumber. */
#ifndef SPK_ERROR_H
#define SPK_ERROR_H

#include <stdbool.h>

/* XX(NAME, value, wire code, message) */
#define SPK_ERRNO_MAP(XX)                                                                          \
    XX(EINVAL, -1, "invalid_argument", "invalid argument")                                         \
    XX(ENOMEM, -2, "internal", "out of memory")                                                    \
    XX(EIO, -3, "internal", "input/output or storage error")                                       \
    XX(ENOTFOUND, -4, "not_found", "not found")                                                    \
    XX(EEXIST, -5, "already_exists", "already exists")                                             \
    XX(ERANGE, -6, "out_of_range", "value out of range")                                           \
    XX(ETRUNC, -7, "truncated", "input truncated")                                                 \
    XX(EDECODE, -8, "malformed", "malformed encoding")                                             \
    XX(ECRYPTO, -9, "internal", "cryptographic operation failed")                                  \
    XX(EVERIFY, -10, "verification_failed", "verification failed")                                 \
    XX(EBADJSON, -11, "bad_json", "message is not valid JSON")                                     \
    XX(EBADMSG, -12, "bad_message", "missing or mistyped field")                                   \
    XX(EUNKNOWNTYPE, -13, "unknown_type", "unknown message type")                                  \
    XX(ETOOBIG, -14, "too_large", "message exceeds the size limit")                                \
    XX(ERATE, -15, "rate_limited", "too many messages; slow down")                                 \
    XX(EUNAUTH, -16, "unauthenticated", "authenticate first")                                      \
    XX(EFORBIDDEN, -17, "forbidden", "not allowed for this role or relationship")                  \
    XX(ETOKENEXPIRED, -18, "token_expired", "token has expired")                                   \
    XX(ETOKENNOTYET, -19, "token_not_yet_valid", "token is not yet valid")                         \
    XX(ETOKENINVALID, -20, "token_invalid", "token is malformed or its signature is wrong")        \
    XX(ETOKENISSUER, -21, "token_unknown_issuer", "token issuer or key is not trusted")            \
    XX(EINVITEUSED, -22, "invite_used", "invite has already been used")                            \
    XX(EINVITEEXPIRED, -23, "invite_expired", "invite has expired")                                \
    XX(EINVITEINVALID, -24, "invite_invalid", "invite is unknown")                                 \
    XX(ECONSULTENDED, -25, "consult_ended", "consult has ended")                                   \
    XX(ESTATE, -26, "bad_state", "not possible in the current state")                              \
    XX(ETOOMANY, -27, "too_many_connections", "server is at its connection limit")                 \
    XX(ESHUTDOWN, -28, "shutting_down", "server is shutting down")                                 \
    XX(EALREADY, -29, "already_authenticated", "connection is already authenticated")              \
    XX(ECONSENT, -30, "consent_required", "patient consent has not been recorded")                 \
    XX(ETIMEOUT, -31, "timeout", "timed out")                                                      \
    XX(EBACKPRESSURE, -32, "send_queue_full", "client does not read fast enough")                  \
    XX(ETOKENREVOKED, -33, "token_revoked", "token has been revoked or replayed")                  \
    XX(ECONFIG, -34, "config_error", "configuration error")                                        \
    XX(EMLSGROUP, -35, "mls_wrong_group", "MLS message is for another group")                      \
    XX(EMLSEPOCH, -36, "mls_wrong_epoch", "MLS message is for another epoch")                      \
    XX(EMLSREPLAY, -37, "mls_replay", "MLS message key was already used")                          \
    XX(EMLSSIG, -38, "mls_bad_signature", "MLS signature does not verify")                         \
    XX(EMLSMEMBERTAG, -39, "mls_bad_membership_tag", "MLS membership tag does not verify")         \
    XX(EMLSCONFIRM, -40, "mls_bad_confirmation_tag", "MLS confirmation tag does not verify")       \
    XX(EINVITEREVOKED, -41, "invite_revoked", "invite has been withdrawn")                         \
    XX(EREPLAY, -42, "replay", "already received (replay) or older than the replay window")        \
    XX(EMLSSENDER, -43, "mls_bad_sender", "MLS sender is not a member of the group")               \
    XX(EMLSSTALE, -44, "mls_stale_epoch", "MLS message is for an epoch that is already committed") \
    XX(EMLSKEYPACKAGE, -45, "mls_bad_key_package", "MLS KeyPackage is invalid")                    \
    XX(EMLSPROPOSAL, -46, "mls_bad_proposal", "MLS proposal or proposal list is invalid")          \
    XX(EMLSMEMBERS, -47, "mls_membership",                                                         \
       "the MLS message does not match who may be in the conversation")                            \
    XX(EIDEMPOTENCY, -48, "idempotency_key_reused",                                                \
       "this Idempotency-Key was used for a different request")                                    \
    XX(EE2EE, -49, "e2ee_required", "this consult requires end-to-end encrypted media")            \
    XX(EUNAVAILABLE, -50, "unavailable", "temporarily unavailable; try again")

typedef enum {
    SPK_OK = 0,
#define SPK_ERR_ENUM_(name, val, wire, msg) SPK_##name = (val),
    SPK_ERRNO_MAP(SPK_ERR_ENUM_)
#undef SPK_ERR_ENUM_
} spk_err_t;

/* Number of codes in the list (they run from -1 to -SPK_ERR_COUNT). */
#define SPK_ERR_ONE_(name, val, wire, msg) +1
enum { SPK_ERR_COUNT = 0 SPK_ERRNO_MAP(SPK_ERR_ONE_) };
#undef SPK_ERR_ONE_

/* Human-readable message for an error code; never NULL. */
const char *spk_strerror(int err);
/* Stable wire code ("bad_json", ...) for protocol errors; never NULL. */
const char *spk_err_wire(int err);
/* Symbolic name without prefix ("EBADJSON"); never NULL. */
const char *spk_err_name(int err);

#endif
