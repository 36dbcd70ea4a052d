/* Short-lived TURN credentials in coturn's shared-secret scheme ("TURN REST API",
 * draft-uberti-behave-turn-rest-00; coturn `use-auth-secret` + `static-auth-secret`).
 *
 *   username = "<expiry unix seconds>:<user id>"
 *   password = base64(HMAC-SHA1(secret, username))   (standard base64 with padding)
 *
 * coturn recomputes the password from its copy of the secret and refuses the username once the
 * expiry has passed, so spreekd never stores TURN credentials and never talks to coturn. */
#ifndef SPK_TURN_H
#define SPK_TURN_H

#include <stddef.h>
#include <stdint.h>

/* Capacity that always holds the password (28 base64 characters + NUL). */
#define SPK_TURN_PASSWORD_CAP 29

/* Fills `username` and `password` for `user_id`, valid until now + ttl. `secret` is the shared
 * secret (non-empty), `user_id` a non-empty string without control characters, `ttl` > 0.
 * Returns 0, SPK_EINVAL for bad arguments, SPK_ERANGE when a buffer is too small (then both
 * outputs are empty strings), SPK_ECRYPTO if OpenSSL fails. */
int spk_turn_credentials(const char *secret, const char *user_id, int64_t now, int64_t ttl,
                         char *username, size_t ucap, char *password, size_t pcap);

#endif
