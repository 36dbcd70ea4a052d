/* TLS for the relay link (docs/relay_link.md): TLS 1.3 with an external pre-shared key derived
 * from the link secret (RFC 8446 PSK with (EC)DHE: psk_dhe_ke, so a later leak of the secret
 * does not open recorded sessions), no certificates. OpenSSL over memory BIOs: the caller moves
 * the ciphertext (uv sockets on both sides); I/O-free itself.
 *
 * The PSK is HMAC-SHA256(secret, "spreek-relay tls psk"), identity "spreek-relay/1", cipher
 * TLS_AES_128_GCM_SHA256. A peer with another secret fails the handshake (the PSK binder does
 * not verify); the link's own handshake (spk/relay_link.h) then runs inside TLS. */
#ifndef SPK_RELAY_TLS_H
#define SPK_RELAY_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct spk_relay_tls_ctx_s spk_relay_tls_ctx_t;
typedef struct spk_relay_tls_s spk_relay_tls_t;

/* One context per process side (server: the relay node; client: spreekd). SPK_EINVAL for a
 * secret outside SPK_LINK_SECRET_MIN..MAX, SPK_ECRYPTO. */
int spk_relay_tls_ctx_new(bool server, const void *secret, size_t secret_len,
                          spk_relay_tls_ctx_t **out);
void spk_relay_tls_ctx_free(spk_relay_tls_ctx_t *ctx);

/* One connection; the client starts its handshake at once (its first flight is pending). */
int spk_relay_tls_new(spk_relay_tls_ctx_t *ctx, spk_relay_tls_t **out);
void spk_relay_tls_free(spk_relay_tls_t *t);

/* Ciphertext received from the socket. Then call spk_relay_tls_read() until it returns 0, and
 * send what spk_relay_tls_pending() gives. SPK_EVERIFY when the handshake failed (another
 * secret), SPK_EDECODE for anything else TLS refuses; both final. */
int spk_relay_tls_feed(spk_relay_tls_t *t, const uint8_t *in, size_t n);

/* Plaintext available: up to cap bytes into out; 0 = none now; <0 = the connection is broken
 * (SPK_EVERIFY: handshake refused; SPK_EDECODE; SPK_EIO: the peer closed TLS). */
int spk_relay_tls_read(spk_relay_tls_t *t, uint8_t *out, size_t cap);

/* Plaintext to send (after the handshake: before it SPK_ESTATE); the ciphertext is pending. */
int spk_relay_tls_write(spk_relay_tls_t *t, const uint8_t *in, size_t n);

/* Ciphertext to send: up to cap bytes into out; 0 = nothing. */
size_t spk_relay_tls_pending(spk_relay_tls_t *t, uint8_t *out, size_t cap);

/* Whether the handshake is done. */
bool spk_relay_tls_ready(const spk_relay_tls_t *t);

#endif
