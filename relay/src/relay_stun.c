/* STUN on the relay worker's receive fast path: see relay_stun.h. */
#include "relay_stun.h"

#include <string.h>

#include <stun/usages/ice.h>

void spk_relay_stun_init(StunAgent *agent)
{
    static const uint16_t known[] = {
        STUN_ATTRIBUTE_USERNAME,        STUN_ATTRIBUTE_MESSAGE_INTEGRITY,
        STUN_ATTRIBUTE_FINGERPRINT,     STUN_ATTRIBUTE_PRIORITY,
        STUN_ATTRIBUTE_USE_CANDIDATE,   STUN_ATTRIBUTE_ICE_CONTROLLED,
        STUN_ATTRIBUTE_ICE_CONTROLLING, 0};
    stun_agent_init(agent, known, STUN_COMPATIBILITY_RFC5389,
                    STUN_AGENT_USAGE_SHORT_TERM_CREDENTIALS | STUN_AGENT_USAGE_USE_FINGERPRINT);
}

/* The key of a Binding request: USERNAME is "<local ufrag>:<remote ufrag>" (RFC 8445 7.2.2);
 * the first part is checked, as libnice checks it. */
static bool validater(StunAgent *agent, StunMessage *msg, uint8_t *username, uint16_t ulen,
                      uint8_t **password, size_t *plen, void *user)
{
    (void)agent;
    (void)msg;
    const spk_relay_stun_local_t *local = user;
    size_t n = strlen(local->ufrag);
    if (n == 0 || ulen <= n || memcmp(username, local->ufrag, n) != 0 || username[n] != ':') {
        return false;
    }
    *password = (uint8_t *)(uintptr_t)local->pwd;
    *plen = strlen(local->pwd);
    return true;
}

spk_relay_stun_verdict_t spk_relay_stun_input(StunAgent *agent, const spk_relay_stun_local_t *local,
                                              uint8_t *buf, size_t len,
                                              const struct sockaddr_storage *from,
                                              socklen_t from_len, uint8_t *out, size_t out_cap,
                                              size_t *out_len)
{
    *out_len = 0;
    if (len >= 20 && buf[0] == 0x00 && buf[1] == 0x11 &&
        stun_message_validate_buffer_length(buf, len, true) == (int)len) {
        /* A Binding indication: a keepalive (RFC 8445 11), without credentials, to which libnice
         * does nothing either. */
        return SPK_RELAY_STUN_CONSUMED;
    }
    StunMessage req;
    if (stun_agent_validate(agent, &req, buf, len, validater, (void *)(uintptr_t)local) !=
            STUN_VALIDATION_SUCCESS ||
        stun_message_get_method(&req) != STUN_BINDING) {
        return SPK_RELAY_STUN_LIBNICE; /* a response, other credentials, another method, ... */
    }
    if (stun_message_get_class(&req) != STUN_REQUEST) {
        return SPK_RELAY_STUN_LIBNICE;
    }
    StunMessage resp;
    size_t olen = out_cap;
    bool control = local->controlling;
    /* Tie-breaker 0: a role conflict (RFC 8445 7.3.1.1) is never answered here but left to
     * libnice, which knows the agent's tie-breaker; so is anything else the reply refuses. */
    if (stun_usage_ice_conncheck_create_reply(agent, &req, &resp, out, &olen, from, from_len,
                                              &control, 0, STUN_USAGE_ICE_COMPATIBILITY_RFC5245) !=
            STUN_USAGE_ICE_RETURN_SUCCESS ||
        control != local->controlling || olen == 0 || olen > out_cap) {
        return SPK_RELAY_STUN_LIBNICE;
    }
    *out_len = olen;
    return SPK_RELAY_STUN_ANSWER;
}
