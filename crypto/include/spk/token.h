/* Identity tokens: compact JWS (RFC 7515) signed with Ed25519, "alg":"EdDSA" (RFC 8037).
 *
 * Header: {"alg":"EdDSA","typ":"JWT","kid":"<key id>"}
 * Claims: iss, sub, name, role, practice, acts_for (optional), consult (optional: binds a
 *         patient session token to one consult), aud (optional; required by a policy with an
 *         audience), exp, nbf, iat, jti.
 *
 * Verification trusts only (iss, kid) pairs in a keyring, so a region's identity provider can
 * issue tokens; in the embedded default spreekd is its own issuer. The core is I/O-free. */
#ifndef SPK_TOKEN_H
#define SPK_TOKEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "spk/role.h"

#define SPK_TOKEN_MAX_LEN 4096 /* longer tokens are refused with SPK_ETOKENINVALID */
#define SPK_TOKEN_STR 128      /* every string claim must fit (incl. NUL), else invalid */

typedef struct {
    char iss[SPK_TOKEN_STR];
    char kid[SPK_TOKEN_STR]; /* from the header */
    char sub[SPK_TOKEN_STR];
    char name[SPK_TOKEN_STR];
    spk_role_t role;
    char practice[SPK_TOKEN_STR];
    char acts_for[SPK_TOKEN_STR]; /* "" when absent; assistant acts for a named gp */
    char consult[SPK_TOKEN_STR];  /* "" when absent */
    char aud[SPK_TOKEN_STR];      /* "" when absent; the expected one when "aud" is an array */
    char jti[SPK_TOKEN_STR];
    int64_t exp, nbf, iat; /* seconds since the epoch */
} spk_token_claims_t;

/* Ed25519 signing key: 32-byte seed + public key. Caller-owned; wipe with spk_signer_wipe. */
typedef struct {
    uint8_t seed[32];
    uint8_t pub[32];
    char kid[SPK_TOKEN_STR];
    char iss[SPK_TOKEN_STR];
} spk_signer_t;

typedef struct spk_keyring spk_keyring_t;

/* Generates a fresh key; kid is derived from the public key (base64url of SHA-256, 16 chars).
 * iss (and every iss/kid in signers and keyrings) must be 1..SPK_TOKEN_STR-1 bytes without
 * whitespace or control characters, else SPK_EINVAL. */
int spk_signer_generate(spk_signer_t *s, const char *iss);
/* The key id of a public key: the first 16 characters of base64url(SHA-256(pub)). 0 or
 * SPK_ECRYPTO. */
int spk_token_kid(const uint8_t pub[32], char kid[SPK_TOKEN_STR]);
/* Builds a signer from a seed (derives pub and kid). */
int spk_signer_from_seed(spk_signer_t *s, const uint8_t seed[32], const char *iss);
void spk_signer_wipe(spk_signer_t *s);

/* Key file: one line "<iss> <kid> <base64url seed>\n", written with mode 0600.
 * save: writes "<path>.XXXXXX" in the same directory, fsyncs and renames it over path.
 *       SPK_EINVAL (bad signer), SPK_ERANGE (path too long), SPK_EIO.
 * load: SPK_ENOTFOUND (no such file), SPK_EIO (read error), SPK_ECONFIG (not a regular file,
 *       any group/other permission bit set, or malformed line). The kid is taken from the
 *       file, not re-derived, so a key id assigned elsewhere is kept. */
int spk_signer_save(const spk_signer_t *s, const char *path);
int spk_signer_load(spk_signer_t *s, const char *path);

/* Keyring of trusted issuer public keys. */
int spk_keyring_new(spk_keyring_t **out);
void spk_keyring_free(spk_keyring_t *kr);
/* Adds a trusted key; SPK_EEXIST if (iss, kid) is present already; SPK_ERANGE if full (64). */
int spk_keyring_add(spk_keyring_t *kr, const char *iss, const char *kid, const uint8_t pub[32]);
/* Adds "<iss> <kid> <base64url public key>" (config form; blanks separate fields, a trailing
 * newline is allowed). SPK_ECONFIG when malformed or the key is not 32 bytes. */
int spk_keyring_add_str(spk_keyring_t *kr, const char *line);

/* Signs claims (iss taken from the signer, kid into the header). out gets a NUL-terminated
 * compact JWS. Returns length or a negative SPK_E* (SPK_ERANGE when cap is too small or the
 * token would exceed SPK_TOKEN_MAX_LEN; SPK_EINVAL for an unknown role, an empty sub or jti, or
 * a string that does not fit, contains control characters or is not UTF-8). Empty optional
 * strings (name, practice, acts_for, consult) are left out of the payload. */
long spk_token_sign(const spk_signer_t *s, const spk_token_claims_t *c, char *out, size_t cap);

/* The store's name for a session token the server's own issuer gave out (a token with a
 * `consult` claim: a patient's session, a console link's GP session): "session " and 32 hex
 * characters of SHA-256 over iss, sub, consult and jti. The server records it when it issues the
 * token and refuses such a token it has no record of, so a copy of the issuer key alone makes
 * no session. 0 or SPK_ECRYPTO. */
#define SPK_TOKEN_SESSION_NAME_LEN 41 /* with the NUL */
int spk_token_session_name(const spk_token_claims_t *c, char out[SPK_TOKEN_SESSION_NAME_LEN]);

/* Verifies a compact JWS against the keyring at time `now` with `leeway_s` of clock skew.
 * Returns 0 and fills *out, or: SPK_ETOKENINVALID (malformed, oversized, wrong alg, bad
 * signature, missing/mistyped claim, unknown role), SPK_ETOKENISSUER (iss/kid not trusted),
 * SPK_ETOKENEXPIRED (now >= exp + leeway), SPK_ETOKENNOTYET (now < nbf - leeway).
 * `why` (optional) receives a one-line reason. *out is zeroed on failure, except when a trusted
 * issuer's signature verified and only the time (or, for spk_token_verify_policy, the policy)
 * failed: then *out holds the signed claims, so the caller can say whose token was refused.
 * Checks run in this order: size, structure, header, issuer/kid, signature, claims, time; the
 * payload is read before the signature only for "iss" to select the key. The header must have
 * alg "EdDSA", a kid, optionally typ "JWT", and no "crit". Claim strings must not be empty
 * (iss, sub, jti, role) or contain control characters; exp/nbf/iat must be JSON integers;
 * duplicate keys are refused; unknown claims are ignored. SPK_EINVAL for NULL kr/tok/out or a
 * negative leeway. Claim strings must also be accepted text (spk/text.h). */
int spk_token_verify(const spk_keyring_t *kr, const char *tok, size_t len, int64_t now,
                     int64_t leeway_s, spk_token_claims_t *out, char *why, size_t why_len);

/* What a deployment requires of a token beyond a trusted signature. */
typedef struct {
    const char *audience;   /* NULL or "": any; else "aud" must be (or contain) it */
    int64_t max_lifetime_s; /* 0: any; else exp - max(iat, nbf) must not exceed it */
} spk_token_policy_t;

/* spk_token_verify plus the policy (NULL: none); a token that fails it is SPK_ETOKENINVALID
 * ("claim aud ...", "token lifetime exceeds the maximum"). Checked after the claims and the
 * time. */
int spk_token_verify_policy(const spk_keyring_t *kr, const char *tok, size_t len, int64_t now,
                            int64_t leeway_s, const spk_token_policy_t *pol,
                            spk_token_claims_t *out, char *why, size_t why_len);

#endif
