/* The relay link: the commands and events of spk/relay.h carried over a byte stream between
 * spreekd (the controller) and a separate relay node (spreek-relay). I/O-free: the caller moves
 * the bytes (relay/src/nodes/, server/spreek_relay.c); this module frames, authenticates and
 * strictly decodes them. docs/relay_link.md describes the wire format.
 *
 * Frames. Every frame is a 4-byte big-endian length L (of what follows, 1..SPK_LINK_FRAME_MAX)
 * then one type byte and the body; once the handshake is done the last SPK_LINK_TAG_LEN bytes of
 * every frame are an authentication tag. Integers are big-endian, strings a 2-byte length then
 * bytes (no NUL inside, shorter than the field they fill), booleans one byte 0 or 1. A body
 * with bytes left over, a string too long, an unknown type, a value out of range, or a frame in
 * the wrong state is SPK_EDECODE (or SPK_ETOOBIG, SPK_EVERIFY for a bad tag or MAC, SPK_ESTATE);
 * every error is final: the stream is closed.
 *
 * Handshake (a shared secret, at least SPK_LINK_SECRET_MIN bytes, configured on both sides).
 *   node -> controller  HELLO    version, node id, DTLS fingerprint, ICE-lite, capacity, nonce_n
 *   controller -> node  AUTH     nonce_c, HMAC-SHA256(secret, "spreek-relay ctl"  || h || nonce_c)
 *   node -> controller  AUTH_OK           HMAC-SHA256(secret, "spreek-relay node" || h || nonce_c)
 * where h = SHA-256 of the HELLO frame as sent (so nonce_n makes every session distinct). Then
 * each direction keys its tags with HMAC-SHA256(secret, "spreek-relay c2n" / "spreek-relay n2c"
 * || h || nonce_c); a tag is the first 16 bytes of HMAC-SHA256(key, seq || frame without tag),
 * seq counting that direction's tagged frames from 0 (so frames cannot be replayed, dropped or
 * reordered unnoticed). The link authenticates; it does not encrypt (docs/relay_link.md). */
#ifndef SPK_RELAY_LINK_H
#define SPK_RELAY_LINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "spk/relay.h"

#define SPK_LINK_VERSION 3      /* 2: simulcast fields in SET_STREAMS; 3: 30 counters */
#define SPK_LINK_FRAME_MAX 2048 /* bytes after the length field */
#define SPK_LINK_TAG_LEN 16
#define SPK_LINK_NONCE_LEN 32
#define SPK_LINK_MAC_LEN 32
#define SPK_LINK_SECRET_MIN 16
#define SPK_LINK_SECRET_MAX 256
#define SPK_LINK_NODE_ID_MAX 64
/* Largest encoded frame, length field included. */
#define SPK_LINK_WIRE_MAX (4 + SPK_LINK_FRAME_MAX)

typedef enum {
    /* handshake */
    SPK_LINK_HELLO = 1,
    SPK_LINK_AUTH = 2,
    SPK_LINK_AUTH_OK = 3,
    /* node -> controller, about once a second: what the node carries (also the keep-alive) */
    SPK_LINK_LOAD = 4,
    /* controller -> node, about once a second when nothing else was sent */
    SPK_LINK_KEEPALIVE = 5,
    /* commands, controller -> node (spk/relay.h) */
    SPK_LINK_CREATE = 16,
    SPK_LINK_REMOTE_DESCRIPTION = 17,
    SPK_LINK_REMOTE_CANDIDATE = 18,
    SPK_LINK_SET_OWNER = 19,
    SPK_LINK_SET_STREAMS = 20,
    SPK_LINK_SET_FORWARDING = 21,
    SPK_LINK_ICE_RESTART = 22,
    SPK_LINK_CLOSE = 23,
    SPK_LINK_STATS = 24,
    SPK_LINK_SET_EXT_MAP = 25,
    /* node -> controller: one spk_relay_event_t */
    SPK_LINK_EVENT = 32,
} spk_link_type_t;

typedef enum { SPK_LINK_CONTROLLER = 0, SPK_LINK_NODE = 1 } spk_link_role_t;

/* One message; which fields count depends on type. */
typedef struct {
    spk_link_type_t type;
    uint64_t consult_id;  /* commands */
    uint64_t endpoint_id; /* commands */
    /* HELLO */
    uint16_t version;
    char node_id[SPK_LINK_NODE_ID_MAX];
    char fingerprint[SPK_RELAY_FINGERPRINT_LEN]; /* HELLO: the node's; REMOTE_DESCRIPTION: peer's */
    bool ice_lite;
    uint32_t capacity;                 /* endpoints the node is meant to carry; 0 = no limit */
    uint8_t nonce[SPK_LINK_NONCE_LEN]; /* HELLO, AUTH: filled by spk_link_encode() */
    uint8_t mac[SPK_LINK_MAC_LEN];     /* AUTH, AUTH_OK: filled and checked here */
    /* LOAD */
    uint32_t endpoints;
    uint32_t consults;
    uint64_t candidates_refused;
    /* CREATE, ICE_RESTART: the local ICE credentials the controller chose */
    char local_ufrag[SPK_RELAY_UFRAG_MAX];
    char local_pwd[SPK_RELAY_PWD_MAX];
    /* REMOTE_DESCRIPTION, ICE_RESTART: the remote side's */
    char ufrag[SPK_RELAY_UFRAG_MAX];
    char pwd[SPK_RELAY_PWD_MAX];
    spk_relay_setup_t setup;
    unsigned roles;                     /* CREATE */
    char cand[SPK_RELAY_CANDIDATE_MAX]; /* REMOTE_CANDIDATE: "" = end of candidates */
    uint64_t owner;                     /* SET_OWNER */
    spk_relay_stream_t streams[SPK_RELAY_MAX_STREAMS]; /* SET_STREAMS */
    size_t n_streams;
    bool on;                            /* SET_FORWARDING */
    uint8_t ext_map[SPK_RELAY_EXT_IDS]; /* SET_EXT_MAP: map[publisher id] = offered id */
    spk_relay_event_t ev;               /* EVENT (srtp_profile points to a static string) */
} spk_link_msg_t;

typedef enum {
    SPK_LINK_ST_HELLO = 0, /* controller waits for HELLO; node has to send it */
    SPK_LINK_ST_AUTH,      /* node waits for AUTH; controller has to send it */
    SPK_LINK_ST_AUTH_OK,   /* controller waits for AUTH_OK; node has to send it */
    SPK_LINK_ST_OPEN,
    SPK_LINK_ST_BROKEN, /* after any error */
} spk_link_state_t;

typedef struct {
    spk_link_role_t role;
    spk_link_state_t state;
    uint8_t secret[SPK_LINK_SECRET_MAX];
    size_t secret_len;
    uint8_t nonce[SPK_LINK_NONCE_LEN]; /* this side's, given to spk_link_init() */
    uint8_t nonce_c[SPK_LINK_NONCE_LEN];
    uint8_t hello_hash[32];
    uint8_t key_tx[32], key_rx[32];
    uint64_t seq_tx, seq_rx;
    bool hello_sent, auth_sent, auth_ok_sent;
} spk_link_t;

/* Sets up one side of one connection. nonce: SPK_LINK_NONCE_LEN fresh random bytes (the node's
 * goes into HELLO, the controller's into AUTH). SPK_EINVAL for a secret shorter than
 * SPK_LINK_SECRET_MIN or longer than SPK_LINK_SECRET_MAX. */
int spk_link_init(spk_link_t *l, spk_link_role_t role, const void *secret, size_t secret_len,
                  const uint8_t nonce[SPK_LINK_NONCE_LEN]);

/* Wipes the keys. */
void spk_link_wipe(spk_link_t *l);

/* Encodes msg as one frame into out (cap >= SPK_LINK_WIRE_MAX always suffices): the length of
 * the frame, or SPK_ESTATE (a message this side may not send now: handshake order, direction),
 * SPK_EINVAL (a field out of range or too long), SPK_ETOOBIG (cap). A HELLO or AUTH takes its
 * nonce from the link; AUTH and AUTH_OK get their MAC here. */
int spk_link_encode(spk_link_t *l, const spk_link_msg_t *msg, uint8_t *out, size_t cap);

/* Decodes the first frame in in[0..len): 1 with *used bytes consumed and *msg filled, 0 when
 * the frame is not complete yet (nothing consumed), or a negative error (the link is broken
 * from then on). Checks the handshake MACs and tags, the state and the direction. */
int spk_link_decode(spk_link_t *l, const uint8_t *in, size_t len, size_t *used,
                    spk_link_msg_t *msg);

/* Name of a message type, for logs; never NULL. */
const char *spk_link_type_name(spk_link_type_t type);

#endif
