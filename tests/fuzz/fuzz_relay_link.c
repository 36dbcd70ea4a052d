/* libFuzzer target for the relay link core (spk/relay_link.h), the parser of what a relay node
 * and a controller send each other.
 *
 * The first byte picks the receiver: 0 a controller waiting for HELLO, 1 a node waiting for
 * AUTH (both fed the rest as raw bytes, in pieces as a stream would deliver them), 2 a node and
 * 3 a controller after the handshake. For 2 and 3 the rest is a list of (2-byte length, type,
 * body) that the harness frames and tags with the sender's key, so the body decoders are
 * reached. Properties checked, each aborting on failure:
 *  - decode never consumes more than it was given, and after an error the link stays broken;
 *  - a body that decodes, encoded again by the sender, gives exactly the same frame
 *    (one encoding per message). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/hmac.h>

#include "spk/error.h"
#include "spk/relay_link.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SECRET "fuzzing-the-relay-link-secret"

static void links(spk_link_t *ctl, spk_link_t *node)
{
    uint8_t nc[SPK_LINK_NONCE_LEN], nn[SPK_LINK_NONCE_LEN];
    memset(nc, 0xc1, sizeof(nc));
    memset(nn, 0x2e, sizeof(nn));
    spk_link_init(ctl, SPK_LINK_CONTROLLER, SECRET, strlen(SECRET), nc);
    spk_link_init(node, SPK_LINK_NODE, SECRET, strlen(SECRET), nn);
}

/* Moves one message from one side to the other; aborts unless it arrives. */
static void move(spk_link_t *from, spk_link_t *to, spk_link_type_t type)
{
    static uint8_t buf[SPK_LINK_WIRE_MAX];
    spk_link_msg_t m = {.type = type};
    static spk_link_msg_t got;
    size_t used;
    int n = spk_link_encode(from, &m, buf, sizeof(buf));
    if (n <= 0 || spk_link_decode(to, buf, (size_t)n, &used, &got) != 1) {
        abort();
    }
}

/* Raw bytes into a link, delivered in pieces of up to 7 bytes. */
static void stream(spk_link_t *l, const uint8_t *data, size_t size, spk_link_t *reply_from)
{
    static uint8_t in[2 * SPK_LINK_WIRE_MAX];
    static spk_link_msg_t m;
    size_t have = 0;
    for (size_t off = 0; off < size;) {
        size_t piece = size - off < 7 ? size - off : 7;
        if (have + piece > sizeof(in)) {
            return;
        }
        memcpy(in + have, data + off, piece);
        have += piece;
        off += piece;
        for (;;) {
            size_t used = SIZE_MAX;
            int rc = spk_link_decode(l, in, have, &used, &m);
            if (rc < 0) {
                if (l->state != SPK_LINK_ST_BROKEN) {
                    abort();
                }
                return;
            }
            if (used > have) {
                abort();
            }
            if (rc == 0) {
                break;
            }
            memmove(in, in + used, have - used);
            have -= used;
            if (m.type == SPK_LINK_HELLO && reply_from == l) {
                static uint8_t out[SPK_LINK_WIRE_MAX];
                spk_link_msg_t a = {.type = SPK_LINK_AUTH};
                (void)spk_link_encode(l, &a, out, sizeof(out));
            }
        }
    }
}

static size_t tagged(const spk_link_t *from, uint8_t type, const uint8_t *body, size_t blen,
                     uint8_t *out)
{
    size_t flen = 1 + blen + SPK_LINK_TAG_LEN;
    out[0] = (uint8_t)(flen >> 24);
    out[1] = (uint8_t)(flen >> 16);
    out[2] = (uint8_t)(flen >> 8);
    out[3] = (uint8_t)flen;
    out[4] = type;
    memcpy(out + 5, body, blen);
    static uint8_t mac_in[8 + SPK_LINK_WIRE_MAX];
    for (int i = 0; i < 8; i++) {
        mac_in[i] = (uint8_t)(from->seq_tx >> (56 - 8 * i));
    }
    memcpy(mac_in + 8, out, 5 + blen);
    uint8_t md[32];
    unsigned int mdlen = 0;
    HMAC(EVP_sha256(), from->key_tx, 32, mac_in, 8 + 5 + blen, md, &mdlen);
    memcpy(out + 5 + blen, md, SPK_LINK_TAG_LEN);
    return 5 + blen + SPK_LINK_TAG_LEN;
}

static void open_frames(bool to_node, const uint8_t *data, size_t size)
{
    static spk_link_t ctl, node;
    links(&ctl, &node);
    move(&node, &ctl, SPK_LINK_HELLO);
    move(&ctl, &node, SPK_LINK_AUTH);
    move(&node, &ctl, SPK_LINK_AUTH_OK);
    spk_link_t *from = to_node ? &ctl : &node;
    spk_link_t *to = to_node ? &node : &ctl;
    static uint8_t frame[SPK_LINK_WIRE_MAX], again[SPK_LINK_WIRE_MAX];
    static spk_link_msg_t m;
    size_t off = 0;
    while (size - off >= 3) {
        size_t len = ((size_t)data[off] << 8) | data[off + 1];
        uint8_t type = data[off + 2];
        off += 3;
        if (len > size - off || len > SPK_LINK_FRAME_MAX - 1 - SPK_LINK_TAG_LEN) {
            return;
        }
        size_t n = tagged(from, type, data + off, len, frame);
        off += len;
        size_t used = 0;
        int rc = spk_link_decode(to, frame, n, &used, &m);
        if (rc != 1) {
            if (rc == 0 || to->state != SPK_LINK_ST_BROKEN) {
                abort();
            }
            return;
        }
        int n2 = spk_link_encode(from, &m, again, sizeof(again));
        if (n2 < 0 || (size_t)n2 != n || memcmp(frame, again, n) != 0) {
            abort();
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) {
        return 0;
    }
    static spk_link_t ctl, node;
    uint8_t mode = data[0] & 3;
    data++;
    size--;
    links(&ctl, &node);
    switch (mode) {
    case 0:
        stream(&ctl, data, size, &ctl);
        break;
    case 1: {
        static uint8_t out[SPK_LINK_WIRE_MAX];
        spk_link_msg_t h = {.type = SPK_LINK_HELLO};
        (void)spk_link_encode(&node, &h, out, sizeof(out));
        stream(&node, data, size, NULL);
        break;
    }
    default:
        open_frames(mode == 2, data, size);
        break;
    }
    return 0;
}
