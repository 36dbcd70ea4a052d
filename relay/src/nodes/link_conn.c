/* spk/relay_conn.h: TLS below, link frames above, for both ends of a relay link. */
#include "spk/relay_conn.h"

#include <stdlib.h>
#include <string.h>

#include "spk/error.h"
#include "spk/rand.h"

#define IN_CAP (2 * SPK_LINK_WIRE_MAX)

struct spk_link_conn_s {
    spk_link_t link;
    spk_relay_tls_t *tls;
    bool hello_due;
    spk_link_msg_t hello;
    uint8_t in[IN_CAP]; /* plaintext not yet decoded: at most one partial frame */
    size_t in_len;
};

int spk_link_conn_new(spk_relay_tls_ctx_t *tls, spk_link_role_t role, const void *secret,
                      size_t secret_len, const spk_link_msg_t *hello, spk_link_conn_t **out)
{
    if (tls == NULL || out == NULL || (role == SPK_LINK_NODE) != (hello != NULL)) {
        return SPK_EINVAL;
    }
    spk_link_conn_t *c = calloc(1, sizeof(*c));
    uint8_t nonce[SPK_LINK_NONCE_LEN];
    if (c == NULL) {
        return SPK_ENOMEM;
    }
    int rc = spk_random_bytes(nonce, sizeof(nonce)) == 0 ? 0 : SPK_ECRYPTO;
    if (rc == 0) {
        rc = spk_link_init(&c->link, role, secret, secret_len, nonce);
    }
    if (rc == 0) {
        rc = spk_relay_tls_new(tls, &c->tls);
    }
    if (rc != 0) {
        spk_link_conn_free(c);
        return rc;
    }
    if (hello != NULL) {
        c->hello = *hello;
        c->hello.type = SPK_LINK_HELLO;
        c->hello_due = true;
    }
    *out = c;
    return 0;
}

void spk_link_conn_free(spk_link_conn_t *c)
{
    if (c != NULL) {
        spk_relay_tls_free(c->tls);
        spk_link_wipe(&c->link);
        free(c);
    }
}

int spk_link_conn_send(spk_link_conn_t *c, const spk_link_msg_t *m)
{
    uint8_t frame[SPK_LINK_WIRE_MAX];
    int len = spk_link_encode(&c->link, m, frame, sizeof(frame));
    return len < 0 ? len : spk_relay_tls_write(c->tls, frame, (size_t)len);
}

/* Decodes the whole frames in c->in (*stopped when cb said so); 0 or the decode error. */
static int decode_all(spk_link_conn_t *c, spk_link_conn_cb cb, void *user, bool *stopped)
{
    static spk_link_msg_t msg; /* one thread drives all connections */
    size_t off = 0;
    int rc = 0;
    while (!*stopped) {
        size_t used = 0;
        rc = spk_link_decode(&c->link, c->in + off, c->in_len - off, &used, &msg);
        if (rc <= 0) {
            break;
        }
        off += used;
        *stopped = !cb(&msg, user);
    }
    memmove(c->in, c->in + off, c->in_len - off);
    c->in_len -= off;
    return rc < 0 ? rc : 0;
}

int spk_link_conn_feed(spk_link_conn_t *c, const uint8_t *in, size_t n, spk_link_conn_cb cb,
                       void *user, const char **why)
{
    *why = NULL;
    int rc = spk_relay_tls_feed(c->tls, in, n);
    if (rc != 0) {
        *why = rc == SPK_EVERIFY ? "TLS handshake refused (another secret?)" : "TLS error";
        return rc;
    }
    if (c->hello_due && spk_relay_tls_ready(c->tls)) {
        c->hello_due = false;
        rc = spk_link_conn_send(c, &c->hello);
        if (rc != 0) {
            *why = "cannot send HELLO";
            return rc;
        }
    }
    bool stopped = false;
    while (!stopped) {
        int got = spk_relay_tls_read(c->tls, c->in + c->in_len, IN_CAP - c->in_len);
        if (got < 0) {
            *why = got == SPK_EIO ? "closed by the peer" : "TLS error";
            return got;
        }
        if (got == 0) {
            return 0;
        }
        c->in_len += (size_t)got;
        rc = decode_all(c, cb, user, &stopped);
        if (rc != 0) {
            *why = rc == SPK_EVERIFY ? "authentication failed" : "protocol error";
            return rc;
        }
    }
    return 0;
}

size_t spk_link_conn_pending(spk_link_conn_t *c, uint8_t *out, size_t cap)
{
    return spk_relay_tls_pending(c->tls, out, cap);
}

bool spk_link_conn_open(const spk_link_conn_t *c)
{
    return c->link.state == SPK_LINK_ST_OPEN;
}
