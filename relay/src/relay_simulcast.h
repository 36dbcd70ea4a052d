/* Simulcast on the worker thread (relay_simulcast.c): a publisher's layers, learnt from the rid
 * header extension, and per subscriber the layer it receives, under one SSRC, switched at key
 * frames (spk/simulcast.h). Hooks: relay_path.c (learn, prepare, forward), relay_rtcp.c
 * (NACK, PLI/FIR, receiver reports, lobby and restarts). */
#ifndef SPK_RELAY_SIMULCAST_H
#define SPK_RELAY_SIMULCAST_H

#include <stdbool.h>
#include <stdint.h>

#include "spk/relay.h"
#include "spk/rtp.h"
#include "spk/simulcast.h"

typedef struct spk_relay_ep spk_relay_ep_t;
struct spk_relay_pstream_s;

/* As a publisher: its simulcast stream (at most one). */
typedef struct {
    spk_relay_stream_t d; /* the declaration; d.n_rids == 0: none. d.ssrc is the output SSRC */
    uint64_t last_ms[SPK_SIM_MAX_LAYERS]; /* the newest packet of each layer (0: none yet) */
} spk_relay_sim_pub_t;

/* As a subscriber: what it receives of one simulcast publisher. Its layer is the subscriber's
 * level (spk_relay_ep_t.sim_sel: one choice per link, as all streams share it), or the
 * publisher's highest below that. */
typedef struct {
    uint64_t pub; /* publisher endpoint id; 0: free slot */
    spk_sim_out_t out;
    uint64_t asked_ms; /* the last key frame request for the target layer */
    uint16_t nack_hi;  /* the newest output sequence number it asked for again */
    bool nack_any;     /* nack_hi is set */
} spk_relay_sim_sub_t;
#define SPK_RELAY_SIM_SUBS 4

/* One layer packet, read once for all subscribers. */
typedef struct {
    int layer;
    uint16_t seq;
    uint32_t ts;
    size_t payload_off;
    spk_vp8_desc_t desc;
} spk_relay_sim_pkt_t;

/* The endpoint's declaration changed: records its simulcast stream (or none). */
void spk_relay_sim_declare(spk_relay_ep_t *ep, const spk_relay_stream_t *streams, size_t n);
/* Before the header extensions are rewritten: a packet of an SSRC the endpoint has no stream
 * for, with a rid (or repaired rid) of its simulcast stream, makes that layer's stream (or its
 * rtx). False when the packet must be dropped: an unknown SSRC without a known rid while the
 * endpoint sends simulcast (it is never learnt as a stream of its own). */
bool spk_relay_sim_learn(spk_relay_ep_t *ep, const uint8_t *pkt, size_t len);
/* A packet of layer stream s, unprotected: fills *p. False for a packet without a valid VP8
 * descriptor (dropped). */
bool spk_relay_sim_prepare(spk_relay_ep_t *pub, const struct spk_relay_pstream_s *s,
                           const uint8_t *pkt, size_t len, uint64_t now_ns, spk_relay_sim_pkt_t *p);
/* Whether sub gets this layer packet; when it does, tx (a copy of the packet) is rewritten. */
bool spk_relay_sim_forward(spk_relay_ep_t *sub, spk_relay_ep_t *pub, const spk_relay_sim_pkt_t *p,
                           uint8_t *tx, uint64_t now_ns);
/* RTCP from sub about SSRC ssrc when it is a simulcast output SSRC (true: handled). A NACK also
 * feeds the layer choice (spk_sim_select_nacks); *down: the level went down, so the loss
 * windows start over. */
bool spk_relay_sim_nack(spk_relay_ep_t *sub, const spk_rtcp_fb_t *fb, uint64_t now_ns, bool *down);
bool spk_relay_sim_keyframe(spk_relay_ep_t *sub, uint32_t ssrc, uint64_t now_ns);
/* Whether ssrc is the SSRC sub receives a simulcast stream under. */
bool spk_relay_sim_owns(const spk_relay_ep_t *sub, uint32_t ssrc);
/* One receiver report of sub: the worst loss over a window (spk_loss_window_update) of the
 * simulcast streams it receives, -1 for none, feeds the layer choice (*changed: its level
 * went down, so the loss windows start over; a try up is judged on the windows as they run).
 * Returns the loss for the audio-only fallback: -1 unless sub is settled at the lowest level (the
 * fallback is the step below). */
int spk_relay_sim_report(spk_relay_ep_t *sub, int window_loss, uint64_t now_ns, bool *changed);
/* A subscriber endpoint is set up (its level starts at the top). */
void spk_relay_sim_init_sub(spk_relay_ep_t *sub, uint64_t now_ns);
/* The RTP timestamp offset under which sub receives pub's `layer` now; false when it does not
 * receive that layer now (a sender report of the layer then does not go to it). */
bool spk_relay_sim_sr_offset(const spk_relay_ep_t *sub, const spk_relay_ep_t *pub, int layer,
                             uint32_t *ts_off);
/* sub's forwarding (re)starts or its video resumes: each stream waits for a key frame. */
void spk_relay_sim_resync_sub(spk_relay_ep_t *sub);
/* pub's streams start over: every subscriber waits for a key frame of them. */
void spk_relay_sim_restart_pub(spk_relay_ep_t *pub);

#endif
