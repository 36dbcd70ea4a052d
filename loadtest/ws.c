/* Minimal RFC 6455 client and framing on libuv, shared by spreekbench and spreekload. */
#define _GNU_SOURCE
#include "ws.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define RBUF_SIZE 65536

/* ---- handshake helpers ---- */

static uint32_t rol32(uint32_t x, int n)
{
    return (x << n) | (x >> (32 - n));
}

static void sha1_block(uint32_t h[5], const uint8_t *p)
{
    uint32_t w[80];
    for (int i = 0; i < 16; i++) {
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
               (uint32_t)p[4 * i + 2] << 8 | (uint32_t)p[4 * i + 3];
    }
    for (int i = 16; i < 80; i++) {
        w[i] = rol32(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    }
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
    for (int i = 0; i < 80; i++) {
        uint32_t f, k;
        if (i < 20) {
            f = (b & c) | (~b & d);
            k = 0x5A827999;
        } else if (i < 40) {
            f = b ^ c ^ d;
            k = 0x6ED9EBA1;
        } else if (i < 60) {
            f = (b & c) | (b & d) | (c & d);
            k = 0x8F1BBCDC;
        } else {
            f = b ^ c ^ d;
            k = 0xCA62C1D6;
        }
        uint32_t t = rol32(a, 5) + f + e + k + w[i];
        e = d;
        d = c;
        c = rol32(b, 30);
        b = a;
        a = t;
    }
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
    h[4] += e;
}

/* SHA-1 of a short input (the handshake key plus GUID). */
static void sha1(const uint8_t *data, size_t len, uint8_t out[20])
{
    uint32_t h[5] = {0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0};
    size_t full = len / 64 * 64;
    for (size_t i = 0; i < full; i += 64) {
        sha1_block(h, data + i);
    }
    uint8_t tail[128] = {0};
    size_t rest = len - full;
    memcpy(tail, data + full, rest);
    tail[rest] = 0x80;
    size_t tlen = rest + 9 <= 64 ? 64 : 128;
    uint64_t bits = (uint64_t)len * 8;
    for (int i = 0; i < 8; i++) {
        tail[tlen - 1 - i] = (uint8_t)(bits >> (8 * i));
    }
    for (size_t i = 0; i < tlen; i += 64) {
        sha1_block(h, tail + i);
    }
    for (int i = 0; i < 5; i++) {
        out[4 * i] = (uint8_t)(h[i] >> 24);
        out[4 * i + 1] = (uint8_t)(h[i] >> 16);
        out[4 * i + 2] = (uint8_t)(h[i] >> 8);
        out[4 * i + 3] = (uint8_t)h[i];
    }
}

void spk_ws_base64(const uint8_t *in, size_t len, char *out)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < len) {
            v |= (uint32_t)in[i + 1] << 8;
        }
        if (i + 2 < len) {
            v |= in[i + 2];
        }
        out[o++] = tab[(v >> 18) & 63];
        out[o++] = tab[(v >> 12) & 63];
        out[o++] = i + 1 < len ? tab[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < len ? tab[v & 63] : '=';
    }
    out[o] = '\0';
}

/* Sec-WebSocket-Accept for a key (RFC 6455 section 4.2.2); out holds at least 29 bytes. */
void spk_ws_accept(const char *key, size_t key_len, char *out)
{
    uint8_t buf[128];
    uint8_t digest[20];
    if (key_len > sizeof(buf) - sizeof(WS_GUID)) {
        key_len = sizeof(buf) - sizeof(WS_GUID);
    }
    memcpy(buf, key, key_len);
    memcpy(buf + key_len, WS_GUID, sizeof(WS_GUID) - 1);
    sha1(buf, key_len + sizeof(WS_GUID) - 1, digest);
    spk_ws_base64(digest, sizeof(digest), out);
}

uint64_t spk_ws_xorshift(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *s = x;
    return x;
}

/* ---- frames ---- */

int spk_ws_parse(uint8_t *p, size_t n, spk_ws_frame_t *f)
{
    if (n < 2) {
        return 0;
    }
    f->fin = (p[0] & 0x80) != 0;
    f->opcode = p[0] & 0x0f;
    bool masked = (p[1] & 0x80) != 0;
    uint64_t len = p[1] & 0x7f;
    size_t hdr = 2;
    if (len == 126) {
        if (n < 4) {
            return 0;
        }
        len = (uint64_t)p[2] << 8 | p[3];
        hdr = 4;
    } else if (len == 127) {
        if (n < 10) {
            return 0;
        }
        len = 0;
        for (int i = 0; i < 8; i++) {
            len = len << 8 | p[2 + i];
        }
        hdr = 10;
    }
    if (len > SPK_WS_MAX_FRAME || (p[0] & 0x70) != 0) {
        return -1;
    }
    const uint8_t *mask = p + hdr;
    hdr += masked ? 4 : 0;
    if (n < hdr || n - hdr < len) {
        return 0;
    }
    f->payload = p + hdr;
    f->len = (size_t)len;
    f->size = hdr + (size_t)len;
    if (masked) {
        for (size_t i = 0; i < f->len; i++) {
            f->payload[i] ^= mask[i & 3];
        }
    }
    return 1;
}

size_t spk_ws_frame(uint8_t *out, int opcode, const void *payload, size_t len, const uint8_t *mask)
{
    size_t h = 0;
    out[h++] = (uint8_t)(0x80 | opcode);
    uint8_t mbit = mask ? 0x80 : 0;
    if (len < 126) {
        out[h++] = (uint8_t)(mbit | len);
    } else if (len < 65536) {
        out[h++] = mbit | 126;
        out[h++] = (uint8_t)(len >> 8);
        out[h++] = (uint8_t)len;
    } else {
        out[h++] = mbit | 127;
        for (int i = 7; i >= 0; i--) {
            out[h++] = (uint8_t)((uint64_t)len >> (8 * i));
        }
    }
    const uint8_t *src = payload;
    if (mask) {
        memcpy(out + h, mask, 4);
        h += 4;
        for (size_t i = 0; i < len; i++) {
            out[h + i] = src[i] ^ mask[i & 3];
        }
    } else if (len) {
        memcpy(out + h, src, len);
    }
    return h + len;
}

/* ---- stream helpers ---- */

typedef struct {
    uv_write_t req;
    uv_buf_t buf;
    char data[];
} wreq_t;

static void write_done(uv_write_t *req, int status)
{
    free(req->data);
}

/* Writes now when the socket takes it, else queues a copy. */
int spk_ws_write(uv_stream_t *s, const void *p, size_t n)
{
    uv_buf_t b = uv_buf_init((char *)p, (unsigned int)n);
    int r = uv_try_write(s, &b, 1);
    if (r == (int)n) {
        return 0;
    }
    if (r < 0 && r != UV_EAGAIN) {
        return r;
    }
    size_t done = r > 0 ? (size_t)r : 0;
    wreq_t *w = malloc(sizeof(*w) + n - done);
    if (!w) {
        return UV_ENOMEM;
    }
    memcpy(w->data, (const char *)p + done, n - done);
    w->buf = uv_buf_init(w->data, (unsigned int)(n - done));
    w->req.data = w;
    r = uv_write(&w->req, s, &w->buf, 1, write_done);
    if (r != 0) {
        free(w);
    }
    return r;
}

static int rx_keep(spk_ws_rxbuf_t *rx, const uint8_t *p, size_t n)
{
    if (n > rx->cap) {
        size_t cap = rx->cap ? rx->cap : 256;
        while (cap < n) {
            cap *= 2;
        }
        uint8_t *q = realloc(rx->p, cap);
        if (!q) {
            return -1;
        }
        rx->p = q;
        rx->cap = cap;
    }
    memmove(rx->p, p, n);
    rx->len = n;
    return 0;
}

/* Data to parse: the new bytes alone, or appended to the leftover. */
int spk_ws_rx_input(spk_ws_rxbuf_t *rx, const uv_buf_t *buf, size_t nread, uint8_t **p, size_t *n)
{
    if (rx->len == 0) {
        *p = (uint8_t *)buf->base;
        *n = nread;
        return 0;
    }
    size_t total = rx->len + nread;
    if (total > rx->cap) {
        size_t keep = rx->len;
        rx->len = 0;
        uint8_t *q = realloc(rx->p, total);
        if (!q) {
            return -1;
        }
        rx->p = q;
        rx->cap = total;
        rx->len = keep;
    }
    memcpy(rx->p + rx->len, buf->base, nread);
    rx->len = total;
    *p = rx->p;
    *n = total;
    return 0;
}

/* After parsing `used` of (p, n): keeps the rest for the next read. */
int spk_ws_rx_done(spk_ws_rxbuf_t *rx, uint8_t *p, size_t n, size_t used)
{
    if (used >= n) {
        rx->len = 0;
        if (rx->cap > 65536) {
            free(rx->p);
            rx->p = NULL;
            rx->cap = 0;
        }
        return 0;
    }
    return rx_keep(rx, p + used, n - used);
}

void spk_ws_rx_free(spk_ws_rxbuf_t *rx)
{
    free(rx->p);
    rx->p = NULL;
    rx->len = rx->cap = 0;
}

static uint8_t g_rbuf[RBUF_SIZE];

void spk_ws_alloc_shared(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    *buf = uv_buf_init((char *)g_rbuf, sizeof(g_rbuf));
}

void spk_ws_set_linger0(int fd)
{
    struct linger lg = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
}

void spk_ws_close_rst(uv_tcp_t *tcp, uv_close_cb cb)
{
    uv_os_fd_t fd;
    if (uv_fileno((uv_handle_t *)tcp, &fd) == 0) {
        spk_ws_set_linger0(fd);
    }
    uv_close((uv_handle_t *)tcp, cb);
}

/* ---- client ---- */

static void client_closed(uv_handle_t *h)
{
    spk_ws_client_t *c = h->data;
    spk_ws_rx_free(&c->rx);
    if (c->cbs->closed_cb) {
        c->cbs->closed_cb(c);
    }
}

void spk_ws_client_close(spk_ws_client_t *c)
{
    c->state = SPK_WS_CLOSED;
    if (c->closing || !c->tcp.data) {
        return;
    }
    c->closing = true;
    spk_ws_close_rst(&c->tcp, client_closed);
}

void spk_ws_client_end(spk_ws_client_t *c, const char *why)
{
    if (c->state == SPK_WS_CLOSED) {
        return;
    }
    c->state = SPK_WS_CLOSED;
    if (c->cbs->end_cb) {
        c->cbs->end_cb(c, why);
    }
    spk_ws_client_close(c);
}

bool spk_ws_client_is_open(const spk_ws_client_t *c)
{
    return c->state == SPK_WS_OPEN;
}

void spk_ws_client_send(spk_ws_client_t *c, int opcode, const void *payload, size_t len)
{
    uint8_t frame[256];
    if (c->state == SPK_WS_CLOSED) {
        return;
    }
    uint8_t *out = len + 14 <= sizeof(frame) ? frame : malloc(len + 14);
    if (!out) {
        spk_ws_client_end(c, "out of memory");
        return;
    }
    uint64_t r = spk_ws_xorshift(c->rng);
    uint8_t mask[4] = {(uint8_t)r, (uint8_t)(r >> 8), (uint8_t)(r >> 16), (uint8_t)(r >> 24)};
    size_t n = spk_ws_frame(out, opcode, payload, len, mask);
    if (spk_ws_write((uv_stream_t *)&c->tcp, out, n) != 0) {
        spk_ws_client_end(c, "write failed");
    }
    if (out != frame) {
        free(out);
    }
}

/* Checks the 101 answer at p; returns the bytes used, 0 when incomplete, -1 on refusal. */
static long client_handshake(spk_ws_client_t *c, const uint8_t *p, size_t n)
{
    const uint8_t *end = memmem(p, n, "\r\n\r\n", 4);
    if (!end) {
        return n > SPK_WS_MAX_HEADER ? -1 : 0;
    }
    size_t hlen = (size_t)(end - p) + 4;
    bool ok = hlen > 12 && memcmp(p, "HTTP/1.1 101", 12) == 0 &&
              memmem(p, hlen, c->accept, strlen(c->accept)) &&
              memmem(p, hlen, SPK_WS_SUBPROTOCOL, strlen(SPK_WS_SUBPROTOCOL));
    if (!ok) {
        return -1;
    }
    c->state = SPK_WS_OPEN;
    if (c->cbs->open_cb) {
        c->cbs->open_cb(c);
    }
    return (long)hlen;
}

/* Handles the frames in (p, n); returns the bytes used, -1 on a protocol error, -2 when the
 * connection ended. */
static long client_frames(spk_ws_client_t *c, uint8_t *p, size_t n, uint64_t now)
{
    size_t off = 0;
    spk_ws_frame_t f;
    int r = 0;
    while (c->state == SPK_WS_OPEN && (r = spk_ws_parse(p + off, n - off, &f)) == 1) {
        off += f.size;
        if (f.opcode == SPK_WS_OP_TEXT && f.fin) {
            c->cbs->text_cb(c, (const char *)f.payload, f.len, now);
        } else if (f.opcode == SPK_WS_OP_PING) {
            spk_ws_client_send(c, SPK_WS_OP_PONG, f.payload, f.len);
        } else if (f.opcode == SPK_WS_OP_CLOSE) {
            unsigned code = f.len >= 2 ? (unsigned)f.payload[0] << 8 | f.payload[1] : 1005;
            spk_ws_client_send(c, SPK_WS_OP_CLOSE, f.payload, f.len < 2 ? f.len : 2);
            char why[64];
            snprintf(why, sizeof(why), "closed by the server with %u", code);
            spk_ws_client_end(c, why);
            return -2;
        } else if (f.opcode != SPK_WS_OP_PONG) {
            return -1; /* fragmented or binary: not expected from a signaling server */
        }
    }
    if (c->state != SPK_WS_OPEN) {
        return -2;
    }
    return r < 0 ? -1 : (long)off;
}

static void client_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    spk_ws_client_t *c = s->data;
    if (nread <= 0) {
        if (nread < 0) {
            spk_ws_client_end(c, uv_strerror((int)nread));
        }
        return;
    }
    uint64_t now = uv_hrtime();
    uint8_t *p;
    size_t n;
    if (spk_ws_rx_input(&c->rx, buf, (size_t)nread, &p, &n) != 0) {
        spk_ws_client_end(c, "out of memory");
        return;
    }
    long used = 0;
    if (c->state == SPK_WS_UPGRADING) {
        used = client_handshake(c, p, n);
        if (used < 0) {
            spk_ws_client_end(c, "upgrade refused");
            return;
        }
    }
    if (c->state == SPK_WS_OPEN) {
        long more = client_frames(c, p + used, n - (size_t)used, now);
        if (more == -1) {
            spk_ws_client_end(c, "protocol error");
        }
        if (more < 0) {
            return;
        }
        used += more;
    }
    if (c->state != SPK_WS_CLOSED && spk_ws_rx_done(&c->rx, p, n, (size_t)used) != 0) {
        spk_ws_client_end(c, "out of memory");
    }
}

static void client_connected(uv_connect_t *req, int status)
{
    spk_ws_client_t *c = req->data;
    if (status < 0) {
        spk_ws_client_end(c, uv_strerror(status));
        return;
    }
    if (c->state == SPK_WS_CLOSED) {
        return;
    }
    uint8_t nonce[16];
    for (int i = 0; i < 16; i += 8) {
        uint64_t r = spk_ws_xorshift(c->rng);
        memcpy(nonce + i, &r, 8);
    }
    char key[32];
    spk_ws_base64(nonce, sizeof(nonce), key);
    spk_ws_accept(key, strlen(key), c->accept);
    char req_txt[512];
    int n = snprintf(req_txt, sizeof(req_txt),
                     "GET /ws HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                     "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: " SPK_WS_SUBPROTOCOL
                     "\r\n\r\n",
                     c->host_port, key);
    c->state = SPK_WS_UPGRADING;
    int r = uv_read_start((uv_stream_t *)&c->tcp, spk_ws_alloc_shared, client_read);
    if (r == 0) {
        r = spk_ws_write((uv_stream_t *)&c->tcp, req_txt, (size_t)n);
    }
    if (r != 0) {
        spk_ws_client_end(c, uv_strerror(r));
    }
}

int spk_ws_client_connect(spk_ws_client_t *c, uv_loop_t *loop, const struct sockaddr *addr,
                          const char *host_port, const spk_ws_client_cbs_t *cbs, uint64_t *rng)
{
    c->cbs = cbs;
    c->rng = rng;
    c->host_port = host_port;
    c->state = SPK_WS_CONNECTING;
    c->closing = false;
    uv_tcp_init(loop, &c->tcp);
    c->tcp.data = c;
    c->creq.data = c;
    uv_tcp_nodelay(&c->tcp, 1);
    int r = uv_tcp_connect(&c->creq, &c->tcp, addr, client_connected);
    if (r != 0) {
        spk_ws_client_close(c);
    }
    return r;
}
