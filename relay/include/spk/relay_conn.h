/* One relay link connection above its socket, either side: TLS (spk/relay_tls.h) carrying the
 * link's frames (spk/relay_link.h). I/O-free: the caller moves the ciphertext (uv sockets in
 * relay/src/nodes/node_link.c for spreekd and server/spreek_relay.c for a node). */
#ifndef SPK_RELAY_CONN_H
#define SPK_RELAY_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "spk/relay_link.h"
#include "spk/relay_tls.h"

typedef struct spk_link_conn_s spk_link_conn_t;

/* A new connection. role and secret as spk_link_init() (the nonce is drawn here); a node
 * passes its HELLO, sent as soon as TLS is up; a controller passes NULL. SPK_EINVAL, SPK_ENOMEM,
 * SPK_ECRYPTO. */
int spk_link_conn_new(spk_relay_tls_ctx_t *tls, spk_link_role_t role, const void *secret,
                      size_t secret_len, const spk_link_msg_t *hello, spk_link_conn_t **out);
/* Frees it and wipes the keys. */
void spk_link_conn_free(spk_link_conn_t *c);

/* Called for each message decoded; false stops the feed (the callee dropped the connection; it
 * must not free it from inside). */
typedef bool (*spk_link_conn_cb)(const spk_link_msg_t *m, void *user);

/* Ciphertext read from the socket: drives TLS, sends the node's HELLO when TLS is up, and calls
 * cb for each message it carries. Then send what spk_link_conn_pending() holds. Returns 0, or the
 * error that broke the connection, final, with *why in words for the log: SPK_EVERIFY (TLS or
 * link authentication failed: another secret), SPK_EIO (the peer closed), another code for a
 * protocol error. */
int spk_link_conn_feed(spk_link_conn_t *c, const uint8_t *in, size_t n, spk_link_conn_cb cb,
                       void *user, const char **why);

/* Encodes one message into TLS (spk_link_encode() rules); the ciphertext is pending. */
int spk_link_conn_send(spk_link_conn_t *c, const spk_link_msg_t *m);

/* Ciphertext to write to the socket: up to cap bytes into out; 0 = nothing. */
size_t spk_link_conn_pending(spk_link_conn_t *c, uint8_t *out, size_t cap);

/* Whether the link handshake is done (commands and events may flow). */
bool spk_link_conn_open(const spk_link_conn_t *c);

#endif
