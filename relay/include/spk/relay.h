/* spreekkamer media relay (SFU): ICE (libnice), DTLS-SRTP (OpenSSL + libsrtp2), RTP routing.
 *
 * Threads. The relay runs N media workers; each owns a GLib main context that drives its libnice
 * agents and does all per-packet work (unprotect, route, protect, send) in the libnice receive
 * callback on that thread. A consult's media lives wholly on one worker, chosen from the consult
 * id, so the packet path takes no lock and makes no cross-thread hop.
 *
 * Messages. The functions taking a spk_relay_t are called from the control thread only (the
 * thread that runs the uv_loop_t given to spk_relay_new()), except spk_relay_fingerprint(),
 * which any thread may call (checked in debug builds). Commands are copied into a small message
 * and queued to the worker that owns the consult; they never block on the worker and return
 * argument errors, or SPK_ENOMEM when out of memory or when the worker has
 * SPK_RELAY_CMD_QUEUE_MAX (16384) commands waiting (a stalled worker; endpoint close is always
 * queued). Results arrive as events (spk_relay_event_t), delivered on the control thread's uv
 * loop through a uv_async_t wake-up, in order per endpoint. The event queue is bounded too: when
 * 16384 events wait (a stalled control thread) candidates, ICE states and counters are dropped,
 * never connected, failed or closed. The same messages can later cross a socket to a separate
 * relay node.
 *
 * Identifiers. The control thread chooses consult and endpoint ids (nonzero, endpoint ids unique
 * within the relay) and passes the consult id with every command; it selects the worker.
 *
 * DTLS roles. The relay answers: when the remote setup is "active" or "actpass" the relay is the
 * DTLS server (a=setup:passive); when the remote setup is "passive" the relay is the DTLS client
 * (a=setup:active). spk_relay_local_setup() gives the attribute to put in the answer.
 *
 * SRTP. Profiles offered and accepted, in order: AEAD_AES_128_GCM, AES_CM_128_HMAC_SHA1_80. RTP
 * and RTCP are multiplexed on one component (rtcp-mux is required).
 *
 * Routing. RTP from a publishing endpoint goes to every other subscribing endpoint of the
 * consult, unchanged apart from SRTP and header extension ids (the publisher's rtx stream, when
 * declared, is terminated: see below), except simulcast layers (below). RTCP is handled per
 * hop, below. Endpoints with the same owner (spk_relay_set_owner) are never routed to each
 * other.
 *
 * RTCP per hop (relay_rtcp.c). The relay terminates RTCP: it sends its own receiver reports
 * (loss, jitter, extended highest seq, LSR/DLSR) and a REMB (cfg.remb_bps, lowered while
 * subscribers or the relay itself see loss) to each publisher about once a second, starting with
 * the publisher's first packet; subscribers' RRs feed that rule and are not forwarded, nor are
 * their REMBs; publishers' SRs (and SDES) go to their subscribers without report blocks. A PLI
 * or FIR for SSRC X goes to the endpoint publishing X (at most one per stream per 500 ms), and
 * the relay asks for a key frame itself when a stream starts and when a subscriber connects or
 * leaves the lobby. Video packets are kept in a retransmission buffer per stream; a NACK is
 * answered from it (as RTX with the publisher's rtx SSRC and payload type and per-subscriber
 * sequence numbers when the stream has rtx, else the original packet) and what the buffer lacks
 * is NACKed to the publisher, as are gaps the relay sees in a declared video stream. Streams
 * are declared with spk_relay_set_streams() or learned from their first packets (then treated
 * as video without rtx).
 *
 * Audio-only fallback (relay_fallback.h). Each subscriber's receiver reports (the loss of the
 * video and audio the relay sends it, measured per stream over about a second from cumulative
 * loss and highest sequence number) feed a rule per subscriber: when its link cannot carry
 * video (video loss above ~20 % for 2.5 s), the relay stops forwarding video to it (originals,
 * retransmissions and NACK answers; its PLI/FIR are not passed on; audio goes on) and sends a VIDEO
 * event (video_on false). After a backoff (8 s, doubling up to 64 s while tries fail) with clean
 * audio it forwards video again from the newest packet on (nothing of the paused period, as for the
 * lobby), asks the publishers for a key frame and sends a VIDEO event (video_on true). Other
 * subscribers are not affected. Subscribers' REMBs are not used (relay_fallback.h says why).
 *
 * Simulcast (spk/simulcast.h; docs/protocol.md 5.7). A stream declared with rids arrives as
 * layers whose SSRCs the relay learns from the rid header extension (an SSRC with no known
 * rid is dropped while the endpoint has such a stream). Each subscriber gets one layer at a
 * time under the declared SSRC, rewritten (sequence number, timestamp, VP8 PictureID and
 * TL0PICIDX) so that a switch, made only at a key frame of the new layer, leaves no gap;
 * NACK, PLI/FIR and the layer's SRs are mapped between the two. The layer follows one level
 * per subscriber (cfg.simulcast) from its receiver reports; the audio-only fallback is the
 * step below the lowest layer, and subscribers' loss on layers does not lower the REMB. A
 * subscriber receives at most four simulcast publishers at once (a fifth one's
 * video does not reach it).
 *
 * Lobby. An endpoint starts with forwarding off: nothing it sends is forwarded and nothing is
 * forwarded to it until spk_relay_set_forwarding(..., true). This is enforced in the packet path.
 * What a publisher sent while a subscriber's forwarding was off never reaches that subscriber
 * later either: when its forwarding is turned on, the relay notes per stream the newest packet
 * it has seen, and packets numbered up to it — answers to NACKs from the retransmission buffer,
 * a publisher's repair of a packet lost on the way, late (reordered) originals — are not sent
 * to it, nor NACKed upstream on its behalf. A publisher whose forwarding is turned on starts its
 * streams over (statistics, numbering, retransmission buffer).
 *
 * libsrtp is initialised once per process and never shut down; it must be the OpenSSL build
 * (scripts/setup-libsrtp.sh), linked statically.
 */
#ifndef SPK_RELAY_H
#define SPK_RELAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "spk/simulcast.h"

typedef struct spk_relay_s spk_relay_t;

#define SPK_RELAY_MAX_WORKERS 64
#define SPK_RELAY_MAX_ADDRESSES 8
/* "AB:CD:..." for SHA-256 (32 bytes): 95 characters and a NUL. */
#define SPK_RELAY_FINGERPRINT_LEN 96
/* ICE credentials as produced here: ufrag 8 chars, pwd 24 chars (RFC 8839 allows 4..256 and
 * 22..256); remote credentials up to these lengths including the NUL are accepted. */
#define SPK_RELAY_UFRAG_MAX 64
#define SPK_RELAY_PWD_MAX 128
/* One SDP candidate attribute value ("candidate:..."), NUL terminated. */
#define SPK_RELAY_CANDIDATE_MAX 256
/* Endpoints per consult. */
#define SPK_RELAY_MAX_CONSULT_ENDPOINTS 16

/* Endpoint roles; an endpoint normally both publishes and subscribes. */
enum {
    SPK_RELAY_ROLE_PUBLISH = 1u << 0,   /* its RTP is forwarded to the consult's subscribers */
    SPK_RELAY_ROLE_SUBSCRIBE = 1u << 1, /* it receives the consult's publishers' RTP */
};

typedef enum {
    SPK_RELAY_SETUP_ACTPASS = 0,
    SPK_RELAY_SETUP_ACTIVE,
    SPK_RELAY_SETUP_PASSIVE,
} spk_relay_setup_t;

typedef enum {
    SPK_RELAY_ICE_NEW = 0,
    SPK_RELAY_ICE_GATHERING,
    SPK_RELAY_ICE_CHECKING,
    SPK_RELAY_ICE_CONNECTED,
    SPK_RELAY_ICE_READY,
    SPK_RELAY_ICE_FAILED,
} spk_relay_ice_state_t;

/* The audio-only fallback's thresholds (see Audio-only fallback above; relay/src/
 * relay_fallback.h). Loss as RTCP's fraction lost, 0..255 (= lost / expected * 256). */
typedef struct {
    int loss_off;            /* video loss above this makes a report weak: 51 (~20 %) */
    int loss_on;             /* audio loss at most this lets a try go ahead: 13 (~5 %) */
    uint32_t weak_ms;        /* weak for this long, and weak_n reports, turn video off: 2500 */
    uint32_t weak_n;         /* 2 */
    uint32_t grace_ms;       /* reports this soon after a change do not count: 1500 */
    uint32_t backoff_ms;     /* first wait before a try: 8000 */
    uint32_t backoff_max_ms; /* the wait doubles up to this while tries fail: 64000 */
    uint32_t stable_ms;      /* video on this long resets the wait: 30000 */
} spk_relay_fallback_rule_t;

typedef struct {
    /* Worker threads; 0 = number of online CPUs (capped at SPK_RELAY_MAX_WORKERS). */
    unsigned workers;
    /* Local addresses given to libnice explicitly (nice_agent_add_local_address), e.g.
     * "127.0.0.1" and "::1" in tests, the public address in production. libnice's own interface
     * discovery is not used. At least one. */
    const char *addresses[SPK_RELAY_MAX_ADDRESSES];
    size_t n_addresses;
    /* UDP (and ICE-TCP) port range; 0/0 = ephemeral ports. */
    uint16_t port_min;
    uint16_t port_max;
    /* ICE-lite (a relay with a public address) or full ICE (controlled). */
    bool ice_lite;
    /* ICE-TCP passive candidates in addition to UDP. */
    bool ice_tcp;
    /* Consent: an endpoint that received nothing that authenticates (SRTP or SRTCP from its
     * peer) for this long after connecting fails (browsers send RTCP at least every few
     * seconds); 0 = 30 s, RFC 7675's expiry. STUN is answered inside libnice and does not
     * count. libnice's own consent freshness is off: it ends a pair about 10 s after the last
     * answered check, so a network outage of a few seconds would end the call. */
    unsigned consent_timeout_ms;
    /* DTLS handshake must complete within this after the endpoint is created; 0 = 30 s. */
    unsigned handshake_timeout_ms;
    /* REMB sent to each publisher: the bitrate it may use while nobody reports loss; 0 = no
     * REMB. spk_relay_config_init() sets SPK_RELAY_REMB_DEFAULT. */
    uint64_t remb_bps;
    /* Remote candidate address ranges (spk/addr_filter.h): extra ranges the relay may send to
     * and ranges it never sends to, as CIDR lists separated by commas or spaces; NULL or "" for
     * none. Read during spk_relay_new() only. */
    const char *candidate_allow;
    const char *candidate_deny;
    /* Retransmission history of a video stream: this long at its measured rate (within 16 KiB
     * and SPK_RTX_VIDEO_ARENA); 0 = 500 ms. NACKs for older packets go on to the publisher. */
    unsigned rtx_window_ms;
    /* The audio-only fallback's and the simulcast layer choice's thresholds; defaults from
     * spk_relay_config_init(). spk_relay_new() refuses (SPK_EINVAL) a loss outside 0..255, a
     * loss_on above loss_off, loss_up above loss_down, a zero time or count, or a maximum wait
     * below the first one. */
    spk_relay_fallback_rule_t fallback;
    spk_sim_rule_t simulcast;
} spk_relay_config_t;

#define SPK_RELAY_REMB_DEFAULT 2500000u

/* Fills defaults: workers 0, no addresses, ports 0/0, full ICE, no ICE-TCP, remb_bps
 * SPK_RELAY_REMB_DEFAULT, the fallback and simulcast rules as documented at their fields. */
void spk_relay_config_init(spk_relay_config_t *cfg);
/* The allocator setting the relay's memory figures assume (docs/performance.md, "Memory per
 * participant"): allocations of 32 KiB and more are mapped on their own (glibc's
 * M_MMAP_THRESHOLD), so that the large buffers of each endpoint (libnice's two 64 KiB receive
 * buffers, of which a few pages are ever used; retransmission buffers that are resized) hold
 * only the pages they use and give them back when freed. Process-wide: call once at start, in
 * a program that runs the relay. */
void spk_relay_tune_malloc(void);

typedef struct {
    uint64_t rtp_rx;           /* SRTP packets received and authenticated */
    uint64_t rtcp_rx;          /* SRTCP packets received and authenticated */
    uint64_t bytes_rx;         /* all bytes received (DTLS, SRTP, SRTCP) */
    uint64_t rtp_tx;           /* SRTP packets sent (forwarded to this endpoint) */
    uint64_t rtcp_tx;          /* SRTCP packets sent */
    uint64_t bytes_tx;         /* all bytes sent */
    uint64_t unprotect_errors; /* failed authentication or replay */
    uint64_t dropped_lobby;    /* dropped because forwarding is off (either side) */
    uint64_t dropped_other;    /* not RTP/RTCP/DTLS, malformed, or send failure */
    uint64_t path_ns;          /* time spent in the packet path for this endpoint's input */
    uint64_t worker_cpu_ns;    /* CPU time of the endpoint's worker thread so far (all its work) */
    /* RTCP per hop. As a publisher: */
    uint64_t rtcp_rr_sent;   /* receiver reports the relay sent to this endpoint */
    uint64_t rtcp_remb_sent; /* REMBs the relay sent to this endpoint */
    uint64_t remb_bps;       /* the last REMB value sent */
    uint64_t pli_forwarded;  /* PLI/FIR sent on behalf of a subscriber */
    uint64_t pli_generated;  /* PLI sent by the relay (stream start, subscriber joined) */
    uint64_t pli_throttled;  /* key frame requests within 500 ms of the stream's last one: held
                              * and sent, merged into one, when that window ends */
    uint64_t nack_forwarded; /* sequence numbers NACKed to this endpoint (not in the buffer) */
    uint64_t nack_sent;      /* sequence numbers NACKed for gaps the relay saw itself */
    /* As a subscriber: */
    uint64_t nack_received;    /* sequence numbers this endpoint NACKed */
    uint64_t rtx_sent;         /* retransmissions sent to this endpoint from the buffer */
    uint64_t rtcp_terminated;  /* RTCP packets from this endpoint consumed, not forwarded */
    uint64_t rtx_buffer_bytes; /* memory of this endpoint's retransmission buffers */
    /* Audio-only fallback (below), as a subscriber: */
    uint64_t video_withheld; /* video packets not forwarded to it while its video was off */
    uint64_t video_off;      /* times its video went off */
    /* Simulcast, as a subscriber: times a layer started being forwarded to it (the first one
     * included). */
    uint64_t sim_switches;
    /* 1 once the endpoint's DTLS state was freed: the peer sent SRTP/SRTCP, so it finished the
     * handshake (relay_dtls.c spk_relay_dtls_release). */
    uint64_t dtls_released;
    /* Reading the selected socket without libnice (relay/README.md "ICE and packet I/O"): datagrams
     * the relay read itself, connectivity checks it answered itself there, and datagrams it read
     * there that only libnice handles (dropped; libnice then reads the endpoint's sockets for a
     * while, so the peer's retransmission reaches it). */
    uint64_t rx_direct;
    uint64_t stun_answered;
    uint64_t rx_yielded;
} spk_relay_stats_t;

typedef enum {
    /* A local ICE candidate: cand is an SDP attribute value ("candidate:..."); an empty cand
     * means end-of-candidates. */
    SPK_RELAY_EV_LOCAL_CANDIDATE = 1,
    /* ICE state change: ice_state. */
    SPK_RELAY_EV_ICE_STATE,
    /* DTLS done and SRTP keyed: srtp_profile ("AEAD_AES_128_GCM" or "AES_CM_128_HMAC_SHA1_80"). */
    SPK_RELAY_EV_CONNECTED,
    /* The endpoint failed (ICE failure, consent lost, DTLS failure, fingerprint mismatch,
     * timeout): err and reason. It stays allocated until spk_relay_endpoint_close(). */
    SPK_RELAY_EV_FAILED,
    /* The endpoint is closed and freed; the last event for its id, with final stats.
     * spk_relay_destroy() sends none. */
    SPK_RELAY_EV_CLOSED,
    /* Reply to spk_relay_stats(). */
    SPK_RELAY_EV_STATS,
    /* Audio-only fallback: the relay stopped (video_on false) or resumed (true) forwarding video
     * to this subscribing endpoint: its link could not carry video, or (video_on) it has room
     * for a try again (see Audio-only fallback above). */
    SPK_RELAY_EV_VIDEO,
} spk_relay_event_type_t;

typedef struct {
    spk_relay_event_type_t type;
    uint64_t consult_id;
    uint64_t endpoint_id;
    int err;                            /* FAILED: negative SPK_E* code */
    spk_relay_ice_state_t ice_state;    /* ICE_STATE */
    const char *srtp_profile;           /* CONNECTED: static string */
    char cand[SPK_RELAY_CANDIDATE_MAX]; /* LOCAL_CANDIDATE */
    char reason[96];                    /* FAILED: short text for logs */
    spk_relay_stats_t stats;            /* STATS (and a final copy with CLOSED) */
    bool video_on;                      /* VIDEO */
} spk_relay_event_t;

/* Called on the control thread; the event is borrowed for the duration of the call. The callback
 * may call any spk_relay_* command, but not spk_relay_destroy(). */
typedef void (*spk_relay_event_cb)(spk_relay_t *relay, const spk_relay_event_t *ev, void *user);

/* Local ICE/DTLS parameters for the SDP answer. */
typedef struct {
    char ufrag[SPK_RELAY_UFRAG_MAX];
    char pwd[SPK_RELAY_PWD_MAX];
    char fingerprint[SPK_RELAY_FINGERPRINT_LEN]; /* sha-256, "AB:CD:..." */
    bool ice_lite;
} spk_relay_local_t;

/* Creates the relay: generates the ECDSA P-256 self-signed DTLS certificate, starts the workers
 * and registers a uv_async_t on loop for events. Returns 0 or SPK_EINVAL / SPK_ECONFIG (bad
 * address) / SPK_ECRYPTO / SPK_ENOMEM / SPK_EIO (thread); on error *out is untouched. */
int spk_relay_new(uv_loop_t *loop, const spk_relay_config_t *cfg, spk_relay_event_cb cb, void *user,
                  spk_relay_t **out);

/* Stops the workers (each frees its agents, DTLS and SRTP contexts on its own thread), joins
 * them, and closes the uv_async_t; the relay's memory is released in that handle's close
 * callback, so run the loop once more afterwards. No events are delivered after this call.
 * Must not be called from the event callback. */
void spk_relay_destroy(spk_relay_t *relay);

/* The DTLS certificate's SHA-256 fingerprint, "AB:CD:...". Immutable; any thread. */
const char *spk_relay_fingerprint(const spk_relay_t *relay);

/* The a=setup value for the relay's answer given the remote one: "passive" unless the remote
 * is passive. */
const char *spk_relay_local_setup(spk_relay_setup_t remote);

/* Creates an endpoint (one ICE stream, one component, rtcp-mux) on the consult's worker. Fills
 * *local synchronously (credentials are generated here and handed to the worker); the local
 * candidates follow as LOCAL_CANDIDATE events, then an end-of-candidates one. roles is a mask of
 * SPK_RELAY_ROLE_*. Forwarding starts off. SPK_EEXIST is not detected here: a duplicate id gets a
 * FAILED event. */
int spk_relay_endpoint_create(spk_relay_t *relay, uint64_t consult_id, uint64_t endpoint_id,
                              unsigned roles, spk_relay_local_t *local);

/* The remote side's ICE credentials, DTLS fingerprint (SHA-256 only, "AB:CD:..." hex with or
 * without colons, case-insensitive; a leading "sha-256 " is accepted) and a=setup. SPK_EINVAL on
 * bad arguments, SPK_EDECODE on a malformed fingerprint. */
int spk_relay_remote_description(spk_relay_t *relay, uint64_t consult_id, uint64_t endpoint_id,
                                 const char *ufrag, const char *pwd, const char *fingerprint,
                                 spk_relay_setup_t setup);

/* One remote candidate: an SDP attribute value ("candidate:..." with or without "a="), or NULL /
 * "" for end-of-candidates. Its address goes through the relay's address filter
 * (spk/addr_filter.h: the relay's own addresses and cfg.candidate_allow / _deny): a refused
 * address (or a name such as an mDNS ".local" one) is SPK_EFORBIDDEN and counted, and the relay
 * never sends to it. SPK_EINVAL for a line that is not a candidate. A candidate libnice cannot
 * parse is ignored (logged). */
int spk_relay_remote_candidate(spk_relay_t *relay, uint64_t consult_id, uint64_t endpoint_id,
                               const char *candidate);

/* Remote candidates refused by the address filter so far (control thread). */
uint64_t spk_relay_candidates_refused(const spk_relay_t *relay);

/* Groups endpoints that belong to one participant (e.g. its publish and its subscribe
 * connection): endpoints with the same nonzero owner never forward to each other, so nobody
 * receives their own media or feedback. 0 (the default) = no group. Send it right after
 * spk_relay_endpoint_create(), before forwarding is turned on. */
int spk_relay_set_owner(spk_relay_t *relay, uint64_t consult_id, uint64_t endpoint_id,
                        uint64_t owner);

/* The streams an endpoint publishes, as negotiated (its offer's ssrcs and FID group, the
 * answer's payload types). */
#define SPK_RELAY_MAX_STREAMS 4
#define SPK_RELAY_MAX_RIDS 3 /* simulcast layers (SPK_SIM_MAX_LAYERS) */
#define SPK_RELAY_RID_MAX 17 /* rid: 1..16 of A-Z a-z 0-9 - _, + NUL */
typedef struct {
    uint32_t ssrc;       /* media SSRC, nonzero */
    uint32_t rtx_ssrc;   /* RFC 4588 rtx SSRC (FID group); 0 = no rtx */
    uint8_t pt;          /* media payload type */
    uint8_t rtx_pt;      /* rtx payload type (apt = pt); 0 = no rtx */
    uint32_t clock_rate; /* 0 = 90000 for video, 48000 for audio */
    bool video;          /* video: retransmission buffer, key frame requests, REMB */
    /* Simulcast (spk/simulcast.h): n_rids > 0 for a VP8 stream the publisher sends as layers,
     * rids[0] the lowest. ssrc and rtx_ssrc are then the SSRCs the relay sends the stream to
     * subscribers under (chosen by the caller, offered to them); each layer's own SSRCs are
     * learnt from its packets' rid and repaired-rid header extensions, which have the ids
     * rid_ext and rrid_ext (0: none) in the publisher's numbering. At most one per endpoint. */
    uint8_t n_rids;
    char rids[SPK_RELAY_MAX_RIDS][SPK_RELAY_RID_MAX];
    uint8_t rid_ext;
    uint8_t rrid_ext;
} spk_relay_stream_t;

/* Declares the streams an endpoint publishes (replacing an earlier declaration), n <=
 * SPK_RELAY_MAX_STREAMS; send it before forwarding is turned on. Without it the relay learns
 * streams from their first packets and treats them as video without rtx. SPK_EINVAL on a zero
 * or duplicate SSRC or a payload type above 127, or for simulcast: more than one simulcast
 * stream, audio, more than SPK_RELAY_MAX_RIDS rids, an empty or unterminated rid, or rid_ext 0.
 * The layers of a simulcast stream take stream slots as they are learnt, so the declaration
 * plus the layers must fit SPK_RELAY_MAX_STREAMS (audio and three layers do). */
int spk_relay_set_streams(spk_relay_t *relay, uint64_t consult_id, uint64_t endpoint_id,
                          const spk_relay_stream_t *streams, size_t n);

/* Header extensions of what an endpoint publishes: each RTP packet from it has its extension
 * ids rewritten with map (spk_rtp_ext_remap(): map[publisher's id] = the id the subscribers
 * were offered, 0 = the element is removed; spk_sdp_ext_map() builds it) before it is buffered
 * and forwarded, so every subscriber gets the same ids. Until an endpoint has a map, every
 * element is removed: the publisher's ids mean nothing on a subscriber's connection. */
#define SPK_RELAY_EXT_IDS 256
int spk_relay_set_ext_map(spk_relay_t *relay, uint64_t consult_id, uint64_t endpoint_id,
                          const uint8_t map[SPK_RELAY_EXT_IDS]);

/* Lobby gate. */
int spk_relay_set_forwarding(spk_relay_t *relay, uint64_t consult_id, uint64_t endpoint_id,
                             bool on);

/* ICE restart with the remote side's new credentials; fills *local with new local credentials.
 * DTLS and SRTP state are kept. New local candidates follow as events. */
int spk_relay_ice_restart(spk_relay_t *relay, uint64_t consult_id, uint64_t endpoint_id,
                          const char *ufrag, const char *pwd, spk_relay_local_t *local);

/* Closes and frees the endpoint on its worker; a CLOSED event (with final stats) follows, also
 * for an id the worker does not know (e.g. after a failed create). */
int spk_relay_endpoint_close(spk_relay_t *relay, uint64_t consult_id, uint64_t endpoint_id);

/* Requests counters; a STATS event follows. */
int spk_relay_stats(spk_relay_t *relay, uint64_t consult_id, uint64_t endpoint_id);

/* Local ICE credentials chosen by the caller, for a relay driven by a controller that answers
 * for it (spk/relay_link.h: spreekd chooses them and sends them to a relay node). ICE
 * characters only (A-Z a-z 0-9 + /), ufrag 4..SPK_RELAY_UFRAG_MAX-1, pwd
 * 22..SPK_RELAY_PWD_MAX-1 (RFC 8839). */
typedef struct {
    char ufrag[SPK_RELAY_UFRAG_MAX];
    char pwd[SPK_RELAY_PWD_MAX];
} spk_relay_ice_creds_t;

/* Fresh random credentials as spk_relay_endpoint_create() makes them (8 and 24 characters).
 * 0 or SPK_ECRYPTO. Any thread. */
int spk_relay_ice_credentials(spk_relay_ice_creds_t *out);

/* spk_relay_endpoint_create() and spk_relay_ice_restart() with the local credentials given
 * instead of generated; SPK_EINVAL for credentials outside the ranges above. */
int spk_relay_endpoint_create_with(spk_relay_t *relay, uint64_t consult_id, uint64_t endpoint_id,
                                   unsigned roles, const spk_relay_ice_creds_t *local);
int spk_relay_ice_restart_with(spk_relay_t *relay, uint64_t consult_id, uint64_t endpoint_id,
                               const char *ufrag, const char *pwd,
                               const spk_relay_ice_creds_t *local);

/* The relay's ICE mode (cfg.ice_lite). */
bool spk_relay_ice_lite(const spk_relay_t *relay);

/* Name of an event type / ICE state, for logs; never NULL. */
const char *spk_relay_event_name(spk_relay_event_type_t type);
const char *spk_relay_ice_state_name(spk_relay_ice_state_t state);

#endif
