/* spreekload client peer: a synthetic WebRTC participant with real ICE (libnice, full ICE,
 * controlling), DTLS 1.2 (OpenSSL, own ECDSA P-256 certificate, client or server role) and SRTP
 * (libsrtp2), rtcp-mux on one component. Written independently of the relay's internals so
 * that it tests them.
 *
 * Threads: a peer lives on the GMainContext given at creation; call every function on the
 * thread that iterates that context. Callbacks run there too. */
#ifndef SPK_PEER_H
#define SPK_PEER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <glib.h>
#include <sys/socket.h>

typedef struct spk_peer spk_peer_t;

#define SPK_PEER_MAX_CANDIDATES 8
#define SPK_PEER_CANDIDATE_MAX 256

/* A decrypted RTP or RTCP packet from the remote side; borrowed for the call. */
typedef void (*spk_peer_media_cb)(spk_peer_t *peer, const uint8_t *pkt, size_t len, bool rtcp,
                                  void *user);

typedef struct {
    GMainContext *ctx;   /* borrowed; must outlive the peer */
    const char *address; /* local address given to libnice, e.g. "127.0.0.1" */
    bool dtls_server;    /* a=setup:passive (DTLS server) when true, else a=setup:active */
    /* ICE role: controlled when this side answers the other's offer (a subscribe connection,
     * which the relay offers: RFC 8445 6.1.1), else controlling. */
    bool ice_controlled;
    spk_peer_media_cb media_cb;
    void *user;
    /* Loss simulation: the first drop_dtls_rx DTLS datagrams received are discarded, so the
     * remote side has to retransmit its flight. */
    unsigned drop_dtls_rx;
    /* Receive buffer of the selected socket once ICE connects (SO_RCVBUFFORCE where allowed,
     * else SO_RCVBUF up to net.core.rmem_max); 0 = the system default. */
    int rcvbuf_bytes;
    /* Loss simulation for media: called for every SRTP/SRTCP datagram received, before it is
     * unprotected (the RTP header and the RTCP sender SSRC are plaintext); returning true drops
     * it as if the network had lost it. NULL: nothing is dropped. */
    bool (*drop_rx)(spk_peer_t *peer, const uint8_t *pkt, size_t len, bool rtcp, void *user);
} spk_peer_config_t;

typedef struct {
    uint64_t rtp_rx;
    uint64_t rtcp_rx;
    uint64_t rtp_tx;
    uint64_t unprotect_errors;
    uint64_t send_errors;
} spk_peer_stats_t;

/* Creates the peer and starts gathering host candidates. Returns 0 or a negative SPK_E* code. */
int spk_peer_new(const spk_peer_config_t *cfg, spk_peer_t **out);
/* Frees agent, DTLS and SRTP state; wipes keys. NULL is a no-op. */
void spk_peer_free(spk_peer_t *peer);

const char *spk_peer_ufrag(const spk_peer_t *peer);
const char *spk_peer_pwd(const spk_peer_t *peer);
/* SHA-256 of the peer's certificate, "AB:CD:...". */
const char *spk_peer_fingerprint(const spk_peer_t *peer);

/* Local candidates gathered so far ("candidate:..." without "a="); *done is set once gathering
 * has finished. Returns the count. */
size_t spk_peer_local_candidates(const spk_peer_t *peer, const char **lines, size_t max,
                                 bool *done);

/* The remote side's credentials and certificate fingerprint. */
int spk_peer_set_remote(spk_peer_t *peer, const char *ufrag, const char *pwd,
                        const char *fingerprint);
/* One remote candidate ("candidate:..." or "a=candidate:..."), or NULL / "" at the end. */
int spk_peer_add_remote_candidate(spk_peer_t *peer, const char *line);

/* ICE restart (the offering side): new local credentials, remote credentials and candidates
 * forgotten; DTLS and SRTP are kept. Then spk_peer_set_remote_ice() and the candidates again. */
int spk_peer_ice_restart(spk_peer_t *peer);
int spk_peer_set_remote_ice(spk_peer_t *peer, const char *ufrag, const char *pwd);

/* True once DTLS completed, the fingerprint matched and SRTP is keyed. */
bool spk_peer_connected(const spk_peer_t *peer);
/* True after a fatal ICE or DTLS error. */
bool spk_peer_failed(const spk_peer_t *peer);
/* Negotiated SRTP profile name, or NULL before connecting. */
const char *spk_peer_srtp_profile(const spk_peer_t *peer);

/* Protects a copy of an RTP packet (len <= 1400) and sends it. 0 or a negative SPK_E* code. */
int spk_peer_send_rtp(spk_peer_t *peer, const uint8_t *rtp, size_t len);
/* Same for an RTCP compound packet. */
int spk_peer_send_rtcp(spk_peer_t *peer, const uint8_t *rtcp, size_t len);

/* Sends bytes as they are (no SRTP) on the selected pair: for tests of what the relay does with
 * datagrams that do not authenticate. 0 or a negative SPK_E* code. */
int spk_peer_send_raw(spk_peer_t *peer, const uint8_t *buf, size_t len);

void spk_peer_stats(const spk_peer_t *peer, spk_peer_stats_t *out);

/* For the load generator's capacity mode (capgen.h), which sends and receives on the selected
 * pair itself: its UDP socket and remote address (0, or SPK_ESTATE before a pair is selected),
 * and the SRTP sessions (srtp_t; NULL before keying). While they are used elsewhere the peer's
 * context must not be iterated. */
int spk_peer_selected(const spk_peer_t *peer, int *fd, struct sockaddr_storage *to,
                      socklen_t *to_len);
void spk_peer_srtp_sessions(const spk_peer_t *peer, void **in, void **out);

#endif
