/* libFuzzer target for STUN on the relay's receive fast path (relay/src/relay_stun.h): what the
 * worker does with a STUN datagram from the selected remote address before libnice sees it.
 *
 * Input: one flags byte (bit 0: the relay is controlling; bit 1: the sender is an IPv6
 * address), then the datagram. The local credentials are fixed (ufrag "rlyU", password
 * "relaypassword0123456789"); the seeds (corpus/relay_stun) are Binding requests with them as
 * libnice's stun_usage_ice_conncheck_create() builds them (plain, USE-CANDIDATE, either role),
 * an indication, a response, other credentials. Properties checked, each aborting on failure:
 *  - an answer is a Binding success response of the request's transaction, a complete STUN
 *    message of at most the buffer's size, whose XOR-MAPPED-ADDRESS is the sender's address;
 *  - anything that is not a Binding request or indication (by its type field) is left to
 *    libnice, and only an indication is consumed without an answer. */
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include <stun/stunmessage.h>

#include "relay_stun.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 2048) {
        return 0;
    }
    static StunAgent agent;
    static bool init;
    if (!init) {
        spk_relay_stun_init(&agent);
        init = true;
    }
    uint8_t buf[2048];
    size_t len = size - 1;
    memcpy(buf, data + 1, len);
    uint8_t orig[20];
    memcpy(orig, data + 1, len < 20 ? len : 20);
    spk_relay_stun_local_t local = {
        .ufrag = "rlyU", .pwd = "relaypassword0123456789", .controlling = (data[0] & 1) != 0};
    struct sockaddr_storage from;
    memset(&from, 0, sizeof(from));
    socklen_t from_len;
    if (data[0] & 2) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&from;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons(50000);
        a->sin6_addr.s6_addr[15] = 1;
        from_len = sizeof(*a);
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&from;
        a->sin_family = AF_INET;
        a->sin_port = htons(50000);
        a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        from_len = sizeof(*a);
    }
    uint8_t out[512];
    size_t out_len = 0;
    spk_relay_stun_verdict_t v =
        spk_relay_stun_input(&agent, &local, buf, len, &from, from_len, out, sizeof(out), &out_len);
    uint16_t type = len >= 2 ? (uint16_t)(orig[0] << 8 | orig[1]) : 0xffff;
    if (v != SPK_RELAY_STUN_LIBNICE && type != 0x0001 && type != 0x0011) {
        abort(); /* only a Binding request or indication is handled here */
    }
    if (v == SPK_RELAY_STUN_CONSUMED && type != 0x0011) {
        abort(); /* only an indication is consumed without an answer */
    }
    if (v != SPK_RELAY_STUN_ANSWER) {
        if (out_len != 0) {
            abort();
        }
        return 0;
    }
    if (type != 0x0001 || out_len < 20 || out_len > sizeof(out) ||
        stun_message_validate_buffer_length(out, out_len, true) != (int)out_len || out[0] != 0x01 ||
        out[1] != 0x01 || memcmp(out + 4, orig + 4, 16) != 0) {
        abort();
    }
    StunMessage resp = {.buffer = out, .buffer_len = out_len};
    struct sockaddr_storage mapped;
    socklen_t mapped_len = sizeof(mapped);
    if (stun_message_find_xor_addr(&resp, STUN_ATTRIBUTE_XOR_MAPPED_ADDRESS, &mapped,
                                   &mapped_len) != STUN_MESSAGE_RETURN_SUCCESS ||
        mapped_len != from_len || memcmp(&mapped, &from, from_len) != 0) {
        abort();
    }
    return 0;
}
