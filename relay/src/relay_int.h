/* Internal structures of the media relay. Control side: relay.c. Worker side: relay_worker.c
 * (commands, endpoints, ICE), relay_dtls.c (DTLS-SRTP), relay_path.c (packet path). */
#ifndef SPK_RELAY_INT_H
#define SPK_RELAY_INT_H

#include <assert.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <sys/epoll.h>
#include <sys/socket.h>

#include <gio/gio.h>
#include <glib.h>
#include <nice/agent.h>
#include <openssl/ssl.h>
#include <srtp2/srtp.h>
#include <stun/stunagent.h>

#include "relay_fallback.h"
#include "relay_remb.h"
#include "relay_simulcast.h"
#include "spk/addr_filter.h"
#include "spk/map.h"
#include "spk/nack.h"
#include "spk/relay.h"
#include "spk/rtp.h"
#include "spk/rtx.h"

#define SPK_RELAY_MTU 1200
/* Largest datagram the packet path handles; anything larger is dropped. */
#define SPK_RELAY_PKT_MAX 1500
#define SPK_RELAY_FP_LEN 32 /* SHA-256 */

/* Queue bounds between the control thread and the workers. A full command queue refuses new
 * commands (SPK_ENOMEM) except close and stop; a full event queue drops candidates, ICE states
 * and counters (counted in dropped_events) but never connected, failed or closed, of which
 * each endpoint sends at most a few. */
#define SPK_RELAY_CMD_QUEUE_MAX 16384
#define SPK_RELAY_EVENT_QUEUE_MAX 16384

/* DTLS datagrams written before ICE had a selected pair, sent when it has one. */
#define SPK_RELAY_PENDING_MAX 4
typedef struct {
    unsigned n;
    uint16_t len[SPK_RELAY_PENDING_MAX];
    uint8_t data[SPK_RELAY_PENDING_MAX][SPK_RELAY_PKT_MAX];
} spk_relay_pending_t;

typedef struct spk_relay_worker spk_relay_worker_t;
typedef struct spk_relay_consult spk_relay_consult_t;
typedef struct spk_relay_ep spk_relay_ep_t;

typedef enum {
    SPK_RELAY_CMD_CREATE = 1,
    SPK_RELAY_CMD_REMOTE_DESC,
    SPK_RELAY_CMD_REMOTE_CAND,
    SPK_RELAY_CMD_FORWARD,
    SPK_RELAY_CMD_ICE_RESTART,
    SPK_RELAY_CMD_CLOSE,
    SPK_RELAY_CMD_STATS,
    SPK_RELAY_CMD_OWNER,
    SPK_RELAY_CMD_STOP,
    SPK_RELAY_CMD_STREAMS,
    SPK_RELAY_CMD_EXT_MAP,
} spk_relay_cmd_type_t;

/* A command message from the control thread to a worker. */
typedef struct spk_relay_cmd {
    struct spk_relay_cmd *next;
    spk_relay_cmd_type_t type;
    uint64_t consult_id;
    uint64_t endpoint_id;
    unsigned roles;
    uint64_t owner;
    bool on;
    bool end_of_candidates;
    spk_relay_setup_t setup;
    char local_ufrag[SPK_RELAY_UFRAG_MAX];
    char local_pwd[SPK_RELAY_PWD_MAX];
    char remote_ufrag[SPK_RELAY_UFRAG_MAX];
    char remote_pwd[SPK_RELAY_PWD_MAX];
    uint8_t remote_fp[SPK_RELAY_FP_LEN];
    char cand[SPK_RELAY_CANDIDATE_MAX];
    spk_relay_stream_t streams[SPK_RELAY_MAX_STREAMS];
    uint8_t n_streams;
    uint8_t ext_map[SPK_RELAY_EXT_IDS];
} spk_relay_cmd_t;

/* An event message from a worker to the control thread. */
typedef struct spk_relay_evnode {
    struct spk_relay_evnode *next;
    spk_relay_event_t ev;
} spk_relay_evnode_t;

struct spk_relay_consult {
    uint64_t id;
    size_t n;
    spk_relay_ep_t *eps[SPK_RELAY_MAX_CONSULT_ENDPOINTS];
};

/* A stream an endpoint publishes, as the relay receives it (relay_rtcp.c). */
typedef struct spk_relay_pstream_s {
    spk_relay_stream_t d; /* declared, or learned from the first packet */
    uint8_t layer;        /* simulcast: 1 + the layer it is (relay_simulcast.h); 0: none */
    bool in_use;
    bool declared;
    bool started;                /* a packet arrived: rx is initialised */
    spk_rtp_rx_stats_t rx;       /* for the relay's receiver reports */
    spk_rtx_store_t store;       /* video: retransmission buffer (arena NULL otherwise) */
    spk_nack_gen_t *nack;        /* declared video: gaps the relay NACKs itself; else NULL */
    uint64_t last_keyframe_ns;   /* last PLI/FIR sent to the publisher for this stream */
    uint8_t fir_seq;             /* RFC 5104 command sequence number */
    int16_t worst_fraction_lost; /* worst a subscriber reported this interval; -1: none */
    /* Extended sequence numbers of the media stream since it (re)started: the gate's scale. */
    spk_seq_unwrap_t unwrap;
    int64_t last_ext; /* newest packet so far; valid when have_ext */
    bool have_ext;
    /* The rate the retransmission buffer is sized from (relay_rtcp.c history_fit). */
    uint64_t rate_t0_ns;
    uint64_t rate_bytes;
    uint64_t rate_pkts;
    /* A key frame request that came within 500 ms of the last one: sent when that window
     * ends (relay_rtcp.c spk_relay_rtcp_keyframe_due). */
    bool kf_pending;
    uint8_t kf_why; /* keyframe_why_t (relay_rtcp.c) of the pending request */
} spk_relay_pstream_t;

/* Where forwarding to a subscriber last started, per stream of a publisher it receives: packets
 * of that stream numbered below `start` arrived (or were due) while the subscriber was in the
 * lobby, and never reach it (relay_rtcp.c, spk_relay_gate_open). */
typedef struct {
    uint64_t pub; /* publisher endpoint id */
    uint32_t ssrc;
    int64_t start;
} spk_relay_gate_t;
#define SPK_RELAY_GATE_MAX (SPK_RELAY_MAX_CONSULT_ENDPOINTS * SPK_RELAY_MAX_STREAMS)

/* Streams per subscriber whose reported loss the audio-only fallback follows. */
#define SPK_RELAY_LOSS_WINDOWS 8

/* The rtx sequence numbers the relay uses towards one subscriber, per rtx SSRC. */
#define SPK_RELAY_RTX_OUT_MAX 32
typedef struct {
    uint32_t ssrc;
    uint16_t seq;
} spk_relay_rtx_out_t;

/* One forwarded RTP datagram queued in a wake-up (relay_io.c): the slot of the same index in
 * w->txq_buf holds its bytes. */
#define SPK_RELAY_IO_EVENTS 64 /* epoll events per wake-up */
#define SPK_RELAY_IO_AUX 8     /* descriptors of the worker's context besides the epoll set */
#define SPK_RELAY_TXQ_MAX 256
#define SPK_RELAY_TXQ_EP_MAX 64 /* per endpoint: one sendmmsg() */
#define SPK_RELAY_TXQ_SLOT (SPK_RELAY_PKT_MAX + SRTP_MAX_TRAILER_LEN)
typedef struct {
    uint16_t len;
    int16_t next; /* the endpoint's next queued datagram, -1: none */
} spk_relay_txq_ent_t;

struct spk_relay_ep {
    spk_relay_worker_t *w;
    spk_relay_consult_t *consult;
    uint64_t id;
    uint64_t owner; /* 0: none */
    unsigned roles;
    bool forwarding;
    bool failed;
    bool remote_set;
    bool dtls_server;
    bool dtls_started;
    bool dtls_done;
    spk_relay_ice_state_t ice_state;

    NiceAgent *agent;
    guint stream;
    /* Packet I/O (relay_io.c): the context libnice delivers this endpoint's packets on, and the
     * selected pair's UDP socket and remote address for direct sends (tx_fd -1: none). */
    GMainContext *io_ctx;
    GSocket *tx_sock;
    int tx_fd;
    bool tx_looked_up;
    socklen_t tx_addrlen;
    struct sockaddr_storage tx_addr;
    uint64_t tx_direct; /* packets sent directly since the pair was cached */
    /* Until then (monotonic ns; 0: not set) libnice reads all of this endpoint's sockets, also
     * the cached one (relay_io.c "Receive"). */
    uint64_t rx_libnice_until;
    /* Its forwarded RTP queued in the current wake-up (relay_io.c): the first and last entry of
     * w->txq (-1: none) and their number. */
    int16_t txq_head;
    int16_t txq_tail;
    uint16_t txq_n;

    SSL *ssl; /* owns rbio (memory) and wbio (sends through the agent) */
    BIO *rbio;
    GSource *dtls_timer;
    spk_relay_pending_t *pending; /* handshake only */
    uint8_t remote_fp[SPK_RELAY_FP_LEN];

    srtp_t srtp_in;  /* remote keys: unprotect */
    srtp_t srtp_out; /* local keys: protect */
    const char *profile;

    uint64_t created_ns;
    uint64_t last_rx_ns; /* the last packet's arrival, whatever it was */
    /* header extension ids of its RTP -> the subscribers' (spk_relay_set_ext_map; all 0 until
     * set: every element removed) */
    uint8_t ext_map[SPK_RELAY_EXT_IDS];
    /* the last packet that authenticated (SRTP/SRTCP from the peer; the DTLS handshake's end):
     * the consent rule (relay_worker.c tick_cb) gives up on an endpoint silent for consent_ns */
    uint64_t heard_ns;
    spk_relay_stats_t st;

    /* RTCP per hop (relay_rtcp.c), worker thread only. */
    uint32_t relay_ssrc;   /* sender SSRC of the relay's own RTCP to this endpoint */
    uint64_t rtcp_next_ns; /* next receiver report + REMB to this publisher */
    uint64_t nack_next_ns; /* next look for gaps to NACK */
    uint8_t kf_pending_n;  /* streams with a deferred key frame request (at least) */
    spk_remb_rule_t remb;
    /* As a subscriber: the audio-only fallback (relay_fallback.h) and the loss it reports per
     * stream it receives (slots reused by SSRC when more streams come). */
    spk_fallback_t fallback;
    spk_loss_window_t loss_win[SPK_RELAY_LOSS_WINDOWS];
    spk_relay_pstream_t streams[SPK_RELAY_MAX_STREAMS];
    spk_relay_rtx_out_t rtx_out[SPK_RELAY_RTX_OUT_MAX];
    uint8_t n_rtx_out;
    spk_relay_gate_t gate[SPK_RELAY_GATE_MAX];
    uint8_t n_gate;
    /* Simulcast (relay_simulcast.c): as a publisher, as a subscriber. */
    spk_relay_sim_pub_t sim;
    spk_relay_sim_sub_t sim_subs[SPK_RELAY_SIM_SUBS];
    spk_sim_select_t sim_sel; /* its level: the layer wanted of every simulcast stream */
};

struct spk_relay_worker {
    spk_relay_t *relay;
    unsigned index;
    pthread_t thread;
    pthread_t self; /* set by the worker thread itself: the owner of everything below */
    bool started;
    GMainContext *ctx;
    GMainLoop *loop;
    GSource *wake_src;
    GSource *tick_src;
    int wake_fd;     /* eventfd */
    int epoll_fd;    /* every endpoint's ICE sockets (relay_io.c) */
    GSource *io_src; /* epoll_fd in ctx */
    uint64_t io_wakeups;
    spk_relay_ep_t **io_eps; /* socket descriptor -> endpoint, io_cap entries */
    size_t io_cap;
    struct epoll_event *io_cur; /* inside io_cb: the ready sockets (relay_io.c io_poll) */
    int io_cur_n;
    /* The worker context's poll (relay_io.c worker_poll): epoll_wait() on epoll_fd, in which the
     * context's other descriptors (GLib's wake-up, wake_fd) are registered too (aux, tagged);
     * the endpoints' events it returned, for io_cb (io_ready_n -1: none at hand). */
    struct epoll_event io_ready[SPK_RELAY_IO_EVENTS];
    int io_ready_n;
    int aux_fd[SPK_RELAY_IO_AUX];
    uint32_t aux_ev[SPK_RELAY_IO_AUX];
    int aux_n;
    /* Inside io_cb: forwarded RTP is queued per endpoint and sent with sendmmsg() at the end of
     * the wake-up (relay_io.c). txq_buf holds SPK_RELAY_TXQ_MAX datagrams of
     * SPK_RELAY_TXQ_SLOT bytes; txq_eps the endpoints with queued datagrams, in queue order. */
    bool txq_on;
    bool txq_gso_off; /* the kernel refused UDP GSO once */
    uint8_t *txq_buf;
    spk_relay_txq_ent_t *txq;
    spk_relay_ep_t **txq_eps;
    uint16_t txq_n;
    uint16_t txq_n_eps;
    /* datagrams queued, messages (a GSO one counts once) and sendmmsg() calls: logged at the end */
    uint64_t txq_queued;
    uint64_t txq_msgs;
    uint64_t txq_calls;
    /* Reading selected sockets directly (relay_io.c rx_read): RX_BATCH slots for recvmmsg(),
     * the STUN agent that checks and answers connectivity checks there, recvmmsg() calls. */
    uint8_t *rx_buf;
    struct mmsghdr *rx_msgs;
    struct iovec *rx_iov;
    struct sockaddr_storage *rx_from;
    StunAgent rx_stun;
    uint64_t rx_calls;
    uint64_t rx_datagrams;

    pthread_mutex_t mu; /* guards the command queue only */
    spk_relay_cmd_t *head;
    spk_relay_cmd_t *tail;
    size_t n_cmds;

    /* Worker thread only. */
    spk_map_t endpoints; /* id -> spk_relay_ep_t */
    spk_map_t consults;  /* id -> spk_relay_consult_t */
    uint8_t rx[SPK_RELAY_PKT_MAX + SRTP_MAX_TRAILER_LEN];
    uint8_t tx[SPK_RELAY_PKT_MAX + SRTP_MAX_TRAILER_LEN];
    /* The relay's own RTCP and retransmissions (relay_rtcp.c); rx may still hold the input. */
    uint8_t ctl[SPK_RELAY_PKT_MAX + 2 + SRTP_MAX_TRAILER_LEN];
};

struct spk_relay_s {
    uv_loop_t *loop;
    uv_async_t async;
    spk_relay_event_cb cb;
    void *user;
    spk_relay_config_t cfg;
    NiceAddress addrs[SPK_RELAY_MAX_ADDRESSES];
    size_t n_addrs;
    uint64_t consent_ns;
    uint64_t handshake_ns;

    spk_addr_filter_t cand_filter;
    uint64_t cands_refused; /* control thread */

    SSL_CTX *ssl_ctx;
    BIO_METHOD *bio_method;
    char fingerprint[SPK_RELAY_FINGERPRINT_LEN];

    pthread_mutex_t ev_mu; /* guards the event queue only */
    spk_relay_evnode_t *ev_head;
    spk_relay_evnode_t *ev_tail;
    size_t n_events;
    uint64_t dropped_events;
    bool destroyed;
    pthread_t control; /* the thread that runs `loop`: every command comes from it */

    unsigned n_workers;
    spk_relay_worker_t *workers;
};

/* relay.c (any thread) */
void spk_relay_emit(spk_relay_t *relay, const spk_relay_event_t *ev);
void spk_relay_ep_event(spk_relay_ep_t *ep, spk_relay_event_type_t type);
void spk_relay_ep_fail(spk_relay_ep_t *ep, int err, const char *reason);

/* Thread ownership (checked in debug builds): control-thread functions and worker-thread ones. */
#define SPK_RELAY_ON_CONTROL(relay) assert(pthread_equal(pthread_self(), (relay)->control))
#define SPK_RELAY_ON_WORKER(w) assert(pthread_equal(pthread_self(), (w)->self))

/* relay_worker.c */
void *spk_relay_worker_main(void *arg);
int spk_relay_worker_init(spk_relay_worker_t *w, spk_relay_t *relay, unsigned index);
void spk_relay_worker_cleanup(spk_relay_worker_t *w);
/* Queues cmd (taking ownership); SPK_ENOMEM (cmd freed) when the queue is full, except for
 * close and stop, which are always queued. */
int spk_relay_worker_post(spk_relay_worker_t *w, spk_relay_cmd_t *cmd);

/* relay_dtls.c */
int spk_relay_dtls_ctx_new(spk_relay_t *relay);
void spk_relay_dtls_ctx_free(spk_relay_t *relay);
int spk_relay_dtls_setup(spk_relay_ep_t *ep, spk_relay_setup_t remote_setup);
void spk_relay_dtls_start(spk_relay_ep_t *ep);
void spk_relay_dtls_flush_pending(spk_relay_ep_t *ep);
void spk_relay_dtls_input(spk_relay_ep_t *ep, const uint8_t *buf, size_t len);
void spk_relay_dtls_free(spk_relay_ep_t *ep);
/* Frees the DTLS state once the handshake is done and the peer has shown it finished too. */
void spk_relay_dtls_release(spk_relay_ep_t *ep);
int spk_relay_fingerprint_parse(const char *s, uint8_t out[SPK_RELAY_FP_LEN]);

/* relay_rtcp.c: RTCP per hop, retransmissions, key frame requests */
void spk_relay_rtcp_ep_init(spk_relay_ep_t *ep);
void spk_relay_rtcp_ep_free(spk_relay_ep_t *ep);
void spk_relay_rtcp_set_streams(spk_relay_ep_t *ep, const spk_relay_stream_t *streams, size_t n);
/* DTLS done or forwarding turned on: key frames for what the endpoint will receive. */
void spk_relay_rtcp_on_ready(spk_relay_ep_t *ep);
/* An unprotected RTP packet from a publisher (forwarding on), before forwarding: statistics and
 * the retransmission buffer. Returns the packet's stream and sets *ext (its extended sequence
 * number, for spk_relay_gate_allows), or NULL when the packet must not be forwarded: the
 * publisher's rtx stream (terminated here), a malformed packet, or a stream beyond what the
 * relay tracks. pkt may be rewritten in place. */
spk_relay_pstream_t *spk_relay_rtcp_rtp_in(spk_relay_ep_t *ep, uint8_t *pkt, size_t len,
                                           uint64_t now_ns, int64_t *ext);
/* Forwarding to sub is turned on: from now on it gets, of every stream it receives, only what
 * follows the newest packet the relay has seen. */
void spk_relay_gate_open(spk_relay_ep_t *sub);
/* Whether packet ext of pub's stream s may reach sub (it arrived, or was due, after sub's
 * forwarding last started). */
bool spk_relay_gate_allows(const spk_relay_ep_t *sub, const spk_relay_ep_t *pub,
                           const spk_relay_pstream_t *s, int64_t ext);
/* A stream learnt from a simulcast publisher's rid (declared, no eviction of declared ones);
 * NULL when every slot is taken. */
spk_relay_pstream_t *spk_relay_rtcp_add_stream(spk_relay_ep_t *ep, const spk_relay_stream_t *d);
/* A key frame request from the relay itself for pub's stream s (throttled: within 500 ms of
 * the last one it is deferred to the end of that window). */
void spk_relay_rtcp_keyframe(spk_relay_ep_t *pub, spk_relay_pstream_t *s, uint64_t now_ns);
/* Sends pub's deferred key frame requests whose window has ended (called with each of pub's
 * packets and from the worker's tick). */
void spk_relay_rtcp_keyframe_due(spk_relay_ep_t *pub, uint64_t now_ns);
/* A key frame of pub's stream s arrived (known where the relay reads the payload descriptor:
 * simulcast layers): a deferred request for it is answered and is not sent. */
void spk_relay_rtcp_keyframe_seen(spk_relay_ep_t *pub, spk_relay_pstream_t *s);
/* Sends a stored packet (already rewritten as sub receives it) to sub: as RTX on rtx_ssrc
 * with rtx_pt when rtx_ssrc != 0, else as it is. */
void spk_relay_rtcp_resend(spk_relay_ep_t *sub, uint32_t rtx_ssrc, uint8_t rtx_pt,
                           const uint8_t *pkt, size_t len);
/* Whether sub receives pub's media (roles and owner; not the lobby). */
bool spk_relay_media_link(const spk_relay_ep_t *sub, const spk_relay_ep_t *pub);
/* After forwarding a publisher's RTP: the periodic receiver report and REMB when due. */
void spk_relay_rtcp_poll(spk_relay_ep_t *ep, uint64_t now_ns);
/* An unprotected RTCP compound from an endpoint (forwarding on): handled per hop. */
void spk_relay_rtcp_in(spk_relay_ep_t *ep, const uint8_t *buf, size_t len, uint64_t now_ns);

/* relay_io.c: one epoll set per worker for every endpoint's sockets; direct sends on the
 * selected pair. Worker thread only. */
int spk_relay_io_init(spk_relay_worker_t *w);
/* On the worker thread, before its loop runs: its context polls through the epoll set. */
void spk_relay_io_thread(spk_relay_worker_t *w);
void spk_relay_io_cleanup(spk_relay_worker_t *w);
/* After the agent's stream exists: packets of ep are delivered on ep->io_ctx. */
int spk_relay_io_ep_attach(spk_relay_ep_t *ep);
/* Registers ep's current sockets in the worker's epoll set (after gathering, on state and
 * pair changes: libnice may open sockets). */
void spk_relay_io_ep_sync(spk_relay_ep_t *ep);
/* Before the agent's stream is removed. */
void spk_relay_io_ep_detach(spk_relay_ep_t *ep);
/* Another pair was selected, ICE restarted or failed: the cached destination is stale. */
void spk_relay_io_pair_changed(spk_relay_ep_t *ep);
/* Before an ICE restart: as pair_changed, and libnice reads the endpoint's sockets until the
 * new checks had time to complete. */
void spk_relay_io_ice_restart(spk_relay_ep_t *ep);
/* Sends one datagram to ep's peer at once: 0 or SPK_EIO. */
int spk_relay_io_send(spk_relay_ep_t *ep, const uint8_t *buf, size_t len);
/* Forwarded RTP for ep: the buffer to build it in (SPK_RELAY_TXQ_SLOT bytes): a free slot of
 * the worker's send queue inside a wake-up when ep has a direct UDP socket, else w->tx. */
uint8_t *spk_relay_io_rtp_buf(spk_relay_ep_t *ep);
/* Sends the forwarded RTP built in buf (from spk_relay_io_rtp_buf, right before): queued until
 * the wake-up's end when buf is a queue slot, else at once. Counts rtp_tx and bytes_tx when the
 * datagram leaves, dropped_other when it cannot be sent. */
void spk_relay_io_send_rtp(spk_relay_ep_t *ep, uint8_t *buf, size_t len);

/* relay_path.c */
void spk_relay_path_recv_cb(NiceAgent *agent, guint stream_id, guint component_id, guint len,
                            gchar *buf, gpointer user);

#endif
