/* A minimal RFC 6455 WebSocket client on libuv, and the framing helpers a tiny server needs:
 * the load tools' own implementation (spreekbench, spreekload), independent of libwebsockets so
 * that it tests spreekd's transport from the outside.
 *
 * Client: HTTP upgrade to /ws with Sec-WebSocket-Protocol spreekkamer.v1 (the answer's
 * Sec-WebSocket-Accept and subprotocol are checked), masked unfragmented frames, server frames
 * with 7/16/64-bit lengths, pings answered with pongs, a close frame echoed. Single-threaded:
 * everything runs on one uv loop; the read buffer is shared by every connection of the
 * process. */
#ifndef SPK_WS_H
#define SPK_WS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#define SPK_WS_SUBPROTOCOL "spreekkamer.v1"
#define SPK_WS_MAX_HEADER 8192
#define SPK_WS_MAX_FRAME (1u << 20)
#define SPK_WS_ACCEPT_LEN 32

enum {
    SPK_WS_OP_CONT = 0,
    SPK_WS_OP_TEXT = 1,
    SPK_WS_OP_BINARY = 2,
    SPK_WS_OP_CLOSE = 8,
    SPK_WS_OP_PING = 9,
    SPK_WS_OP_PONG = 10,
};

/* ---- framing ---- */

typedef struct {
    int opcode;
    bool fin;
    uint8_t *payload;
    size_t len;
    size_t size; /* header + payload */
} spk_ws_frame_t;

/* 1: a whole frame at p (a masked payload is unmasked in place); 0: more bytes needed;
 * -1: protocol error (reserved bits, frame above SPK_WS_MAX_FRAME). */
int spk_ws_parse(uint8_t *p, size_t n, spk_ws_frame_t *f);
/* Writes a final frame of opcode with payload to out; masked when mask is given. Returns the
 * frame length; out needs len + 14 bytes. */
size_t spk_ws_frame(uint8_t *out, int opcode, const void *payload, size_t len, const uint8_t *mask);
/* Sec-WebSocket-Accept for a key (RFC 6455 section 4.2.2) into out (SPK_WS_ACCEPT_LEN). */
void spk_ws_accept(const char *key, size_t key_len, char *out);
/* Standard base64 with padding; out needs 4 * ceil(len / 3) + 1 bytes. */
void spk_ws_base64(const uint8_t *in, size_t len, char *out);
uint64_t spk_ws_xorshift(uint64_t *state);

/* ---- stream helpers ---- */

/* Writes now when the socket takes it, else queues a copy. 0 or a uv error. */
int spk_ws_write(uv_stream_t *s, const void *p, size_t n);
/* Closing with SO_LINGER 0 sends RST: no TIME_WAIT, so that repeated rounds of many
 * connections do not exhaust the ephemeral port range. */
void spk_ws_set_linger0(int fd);
/* Closes a TCP handle with RST (spk_ws_set_linger0). */
void spk_ws_close_rst(uv_tcp_t *tcp, uv_close_cb cb);
/* uv_alloc_cb handing out the process-wide read buffer. */
void spk_ws_alloc_shared(uv_handle_t *h, size_t suggested, uv_buf_t *buf);

/* Per-connection leftover of a partial frame or header. */
typedef struct {
    uint8_t *p;
    size_t len, cap;
} spk_ws_rxbuf_t;

/* Data to parse: the new bytes alone, or appended to the leftover. 0 or -1 (memory). */
int spk_ws_rx_input(spk_ws_rxbuf_t *rx, const uv_buf_t *buf, size_t nread, uint8_t **p, size_t *n);
/* After parsing `used` of (p, n): keeps the rest for the next read. 0 or -1 (memory). */
int spk_ws_rx_done(spk_ws_rxbuf_t *rx, uint8_t *p, size_t n, size_t used);
void spk_ws_rx_free(spk_ws_rxbuf_t *rx);

/* ---- client connection ---- */

typedef struct spk_ws_client spk_ws_client_t;

typedef struct {
    /* The upgrade succeeded (optional). */
    void (*open_cb)(spk_ws_client_t *c);
    /* One text message; msg is borrowed for the call. now_ns: uv_hrtime() of the read. */
    void (*text_cb)(spk_ws_client_t *c, const char *msg, size_t len, uint64_t now_ns);
    /* The connection ended (connect or upgrade failure, read error, close frame, protocol
     * error, or spk_ws_client_end()); called once; the handle is closing. */
    void (*end_cb)(spk_ws_client_t *c, const char *why);
    /* The handle is closed: the memory holding the client may be released. */
    void (*closed_cb)(spk_ws_client_t *c);
} spk_ws_client_cbs_t;

enum { SPK_WS_CONNECTING = 0, SPK_WS_UPGRADING, SPK_WS_OPEN, SPK_WS_CLOSED };

struct spk_ws_client {
    uv_tcp_t tcp; /* tcp.data points at the client once connecting */
    uv_connect_t creq;
    const spk_ws_client_cbs_t *cbs;
    void *data; /* the caller's */
    uint64_t *rng;
    const char *host_port; /* Host header; borrowed */
    uint8_t state;
    bool closing;
    spk_ws_rxbuf_t rx;
    char accept[SPK_WS_ACCEPT_LEN];
};

/* Starts connecting to addr. The client must be zeroed (or fully ended and closed) and stay at
 * the same address until closed_cb. rng (masks and keys) and host_port are borrowed. Returns 0,
 * or a uv error: then end_cb is not called, but the handle is closed and closed_cb follows. */
int spk_ws_client_connect(spk_ws_client_t *c, uv_loop_t *loop, const struct sockaddr *addr,
                          const char *host_port, const spk_ws_client_cbs_t *cbs, uint64_t *rng);
/* Sends one masked frame; a failure ends the connection. */
void spk_ws_client_send(spk_ws_client_t *c, int opcode, const void *payload, size_t len);
/* Ends the connection: end_cb(why) if it has not ended yet, then closes with RST. */
void spk_ws_client_end(spk_ws_client_t *c, const char *why);
/* Closes the handle without end_cb (teardown). */
void spk_ws_client_close(spk_ws_client_t *c);
bool spk_ws_client_is_open(const spk_ws_client_t *c);

#endif
