/* spreekload internals: consults and participants (load_sig.c: the signaling side over the
 * shared WebSocket client), their media peers and synthetic RTP (load_media.c), and the run
 * driver (spreekload.c). Everything runs on one thread: a GLib main context drives the libnice
 * agents and the uv loop of the WebSocket connections is a source inside it. */
#ifndef SPK_LOAD_H
#define SPK_LOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <glib.h>
#include <jansson.h>
#include <netinet/in.h>
#include <uv.h>

#include "benchutil.h"
#include "peer.h"
#include "spk/mls.h"
#include "spk/sdp.h"
#include "spk/sframe.h"
#include "spk/token.h"
#include "ws.h"

#define LOAD_MAX_STEPS 16
#define LOAD_MAX_K 8 /* participants per consult */
#define LOAD_REQ_RING 64

/* Plaintext markers of the synthetic payload; with --e2ee neither may appear in what the relay
 * forwards. */
#define LOAD_PAYLOAD_MAGIC "SPKL"
#define LOAD_CANARY "CANARY-spreekkamer-plaintext"

typedef struct load load_t;
typedef struct load_consult load_consult_t;
typedef struct load_part load_part_t;

typedef enum {
    REQ_NONE = 0,
    REQ_AUTH,
    REQ_CREATE,
    REQ_INVITE,
    REQ_JOIN,
    REQ_REDEEM,
    REQ_PUBLISH,
    REQ_SUBSCRIBE,
    REQ_ANSWER,
    REQ_CANDIDATE,
    REQ_ADMIT,
} load_req_t;

/* What one subscriber received from one publisher. */
typedef struct {
    uint8_t *bits; /* received sequence numbers */
    size_t cap_bits;
    uint64_t received;
    uint64_t dups;
    bool any;
    /* the publisher's stream as it arrives: SSRC, and sequence number minus the sent one (the
     * relay rewrites both for a simulcast layer only), learnt from the last packet */
    uint32_t rx_ssrc;
    uint16_t seq_off;
} load_pair_t;

/* One local media connection: a peer plus its trickle state. */
typedef struct {
    spk_peer_t *peer;
    bool trickle;  /* the relay endpoint exists: candidates may be sent */
    size_t n_sent; /* local candidates sent */
    bool eoc_sent; /* end-of-candidates sent */
    bool have_remote;
} load_pc_t;

struct load_part {
    load_t *L;
    load_consult_t *cons;
    int idx;  /* in the consult; 0 is the GP */
    int gidx; /* in the run */
    spk_ws_client_t ws;
    bool ended;
    bool joined;
    bool admitted;
    bool media_started;
    uint64_t next_id;
    struct {
        uint64_t id;
        load_req_t kind;
    } ring[LOAD_REQ_RING];
    unsigned ring_head, ring_n;
    char pid[64]; /* participant id */
    uint64_t t_start_ns;
    uint64_t t_media_ns; /* first media packet received; 0 until then */

    load_pc_t pub;
    load_pc_t sub;
    uint32_t ssrc;
    int64_t offer_version;

    /* publisher */
    uint64_t seq;          /* next sequence number */
    uint64_t send_base_ns; /* pacing origin of the current rate */
    uint64_t send_base_seq;
    uint64_t last_rr_ns;
    uint64_t s0[LOAD_MAX_STEPS]; /* first sequence number of each step */
    uint64_t s1[LOAD_MAX_STEPS]; /* end (exclusive); 0 while the step runs */

    /* subscriber: what arrived from each participant of the consult */
    load_pair_t pairs[LOAD_MAX_K];

    /* --e2ee: this participant's MLS group (NULL for a tap) and SFrame keys */
    spk_mls_t *mls;
    spk_sframe_mls_t *sframe;
};

struct load_consult {
    load_t *L;
    int idx;
    char id[64];
    char invites[LOAD_MAX_K][64];
    int n_invites;
    char admits[LOAD_MAX_K][64]; /* participants the GP admitted */
    int n_admits;
    load_part_t parts[LOAD_MAX_K];
};

typedef struct {
    double pps;
    uint64_t t0_ns, t1_ns;
    double cpu0, cpu1;   /* spreekd */
    double self0, self1; /* this process */
    long sdrop0, sdrop1; /* UDP receive drops: spreekd's sockets */
    long cdrop0, cdrop1; /* and this process's */
    double wcpu0[64], wcpu1[64];
    double wwait0[64], wwait1[64]; /* workers' run-queue wait */
    uint64_t echo_rx;              /* own media received back on the subscribe connection */
    spk_bench_samples_t lat;       /* latency samples of the step, µs */
} load_step_t;

struct load {
    /* settings */
    int consults, k;
    double duration_s, setup_timeout_s, pps;
    size_t size;
    int rcvbuf;    /* client sockets' receive buffer, bytes */
    bool e2ee;     /* payloads are SFrame frames under each consult's MLS group */
    bool e2ee_tap; /* ... and the last participant is outside the group, receiving only */
    double rates[LOAD_MAX_STEPS];
    int n_rates;
    bool verbose;
    /* --capacity (load_cap.c) */
    bool capacity;
    int cap_threads;
    unsigned cap_tick_us;
    size_t cap_mem_mb;

    /* environment */
    GMainContext *ctx;
    GMainLoop *gloop;
    uv_loop_t uv;
    GSource *uv_src;
    struct sockaddr_in addr;
    char host_port[64];
    uint64_t rng;
    spk_signer_t signer;
    int pid; /* spreekd */
    int worker_tids[64];
    size_t n_workers;

    /* state */
    load_consult_t *cs;
    int n_parts_total;
    bool sending;
    int step; /* current step, -1 before measuring */
    load_step_t steps[LOAD_MAX_STEPS];
    uint64_t t_run0_ns;
    uint64_t sig_errors, ws_lost, media_failed, send_errors, foreign_rx, bad_payload;
    uint64_t e2ee_failed;      /* frames a member could not encrypt or decrypt */
    uint64_t e2ee_tap_frames;  /* frames the tap received */
    uint64_t e2ee_tap_refused; /* ... and could not decrypt */
    uint64_t e2ee_tap_opened;  /* ... and could (must stay 0) */
    uint64_t e2ee_canary_seen; /* plaintext markers in forwarded frames (must stay 0) */
    spk_sdp_t *sdp_a, *sdp_b;  /* scratch (large) */
    char *sdp_text;
};

/* load_sig.c */
void load_part_start(load_part_t *p);
void load_part_close(load_part_t *p);
void load_send_req(load_part_t *p, load_req_t kind, json_t *msg);

/* load_media.c */
int load_media_start(load_part_t *p);
void load_media_on_answer(load_part_t *p, const char *sdp);
void load_media_on_offer(load_part_t *p, const char *sdp, int64_t version);
void load_media_on_candidate(load_part_t *p, const char *pc, const char *cand);
void load_media_trickle(load_part_t *p);
void load_media_pump(load_t *L, uint64_t now_ns);
void load_media_free(load_part_t *p);
/* Plaintext RTP packet seq of p's stream as load_media_pump sends it (not --e2ee); the length. */
size_t load_media_build(load_part_t *p, uint64_t seq, uint64_t now, uint8_t *pkt);
/* True when an unprotected packet is p's packet seq. */
bool load_media_check(const load_part_t *p, uint64_t seq, const uint8_t *pkt, size_t len);
/* Receiver report + SDES on p's subscribe connection, at most once a second. */
void load_media_send_rr(load_part_t *p, uint64_t now);

/* load_cap.c: --capacity, after the setup; prints the JSON summary, returns the exit code. */
int load_cap_run(load_t *L, double setup_s);

/* spreekload.c */
/* Iterates the loop until cond holds or ms pass (cond NULL: just ms). */
bool load_run_until(load_t *L, bool (*cond)(load_t *), double ms);
/* Counts pairs (subscriber, publisher) of the run that have received something. */
int load_media_pairs_ready(load_t *L, int *total);
GSource *load_uv_source_new(uv_loop_t *loop);

/* load_e2ee.c */
int load_e2ee_setup(load_t *L);
bool load_e2ee_sends(const load_part_t *p);
/* Frame length, 0 on failure (counted). */
size_t load_e2ee_seal(load_part_t *p, const uint8_t *pt, size_t pt_len, uint8_t *out, size_t cap);
size_t load_e2ee_open(load_part_t *p, const uint8_t *frame, size_t len, uint8_t *out, size_t cap);
bool load_e2ee_is_tap(const load_part_t *p);
/* The tap received a payload: scans it for plaintext markers and tries to decrypt it. */
void load_e2ee_tap(load_part_t *p, const uint8_t *payload, size_t len);
void load_e2ee_free(load_part_t *p);

#endif
