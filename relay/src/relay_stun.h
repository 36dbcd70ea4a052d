/* STUN on the relay worker's receive fast path (relay_io.c): what a STUN message from the
 * selected pair's remote address is, and the answer to a consent check. No I/O; the message
 * parsing, MESSAGE-INTEGRITY and FINGERPRINT are libnice's STUN library (stun/stunagent.h,
 * stun/usages/ice.h), as libnice itself uses them to answer checks. */
#ifndef SPK_RELAY_STUN_H
#define SPK_RELAY_STUN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <stun/stunagent.h>

typedef enum {
    SPK_RELAY_STUN_LIBNICE = 0, /* only libnice can handle it: the fast path ends */
    SPK_RELAY_STUN_ANSWER,      /* a Binding request for us: send out[0, *out_len) back */
    SPK_RELAY_STUN_CONSUMED,    /* a Binding indication (keepalive): nothing to do */
} spk_relay_stun_verdict_t;

/* The endpoint's side of ICE, as libnice has it when the fast path starts. */
typedef struct {
    const char *ufrag; /* local */
    const char *pwd;   /* local */
    bool controlling;
} spk_relay_stun_local_t;

/* agent: RFC 5389 with short-term credentials and FINGERPRINT, knowing the attributes of an ICE
 * check (any other comprehension-required attribute leaves the message to libnice, which
 * answers 420). It keeps no state between messages. */
void spk_relay_stun_init(StunAgent *agent);

/* buf[0, len): a datagram whose first byte is 0..3 (RFC 7983). A well-formed Binding indication
 * is consumed. A Binding request that validates
 * (USERNAME "<local ufrag>:...", MESSAGE-INTEGRITY with the local password, FINGERPRINT) and
 * raises no role conflict is answered with a success response (XOR-MAPPED-ADDRESS from, then
 * MESSAGE-INTEGRITY and FINGERPRINT) built into out (out_cap bytes, 512 are enough). buf may
 * be modified. */
spk_relay_stun_verdict_t spk_relay_stun_input(StunAgent *agent, const spk_relay_stun_local_t *local,
                                              uint8_t *buf, size_t len,
                                              const struct sockaddr_storage *from,
                                              socklen_t from_len, uint8_t *out, size_t out_cap,
                                              size_t *out_len);

#endif
