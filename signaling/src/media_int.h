/* Media signaling (docs/protocol.md 5.7): the publish and subscribe connections of each joined
 * (connection, consult) pair, wired to the relay. */
#ifndef SPK_SIG_MEDIA_INT_H
#define SPK_SIG_MEDIA_INT_H

#include "core_int.h"

#ifdef SPK_HAVE_RELAY
#include "spk/relay.h"
#include "spk/sdp.h"

#define SIG_MEDIA_MAX_TRACKS 4 /* published m-sections per connection */
#define SIG_MEDIA_MAX_SLOTS 32 /* m-sections of one subscribe connection over its life */
#define SIG_MEDIA_MAX_CANDS 16 /* relay candidates remembered per endpoint */

/* One published stream, as learnt from the publish offer and the relay's answer. */
typedef struct {
    spk_sdp_kind_t kind;
    spk_sdp_codec_t codec; /* the negotiated codec, with the offer's payload type */
    spk_sdp_codec_t rtx;   /* rtx.pt == 0: none */
    uint32_t ssrc, rtx_ssrc;
    char track[SPK_SDP_MAX_ID];
} sig_track_t;

/* One m-section of a subscribe connection: which participant's stream it carries. Slots keep
 * their mid for the life of the connection (JSEP); a gone stream leaves an inactive slot. */
typedef struct {
    char mid[8];
    spk_sdp_kind_t kind;
    bool active;
    char participant[SPK_ID_LEN];
    sig_track_t track;
} sig_slot_t;

typedef enum { SIG_PC_PUBLISH = 0, SIG_PC_SUBSCRIBE = 1 } sig_pc_t;

/* A relay endpoint and what the core remembers about it. */
typedef struct {
    uint64_t id; /* 0: none */
    spk_relay_local_t local;
    bool remote_set;
    char remote_ufrag[SPK_SDP_MAX_ICE];
    char cands[SIG_MEDIA_MAX_CANDS][SPK_RELAY_CANDIDATE_MAX];
    int n_cands;
    bool cands_done;
} sig_ep_t;

struct sig_media {
    sig_ep_t pub, sub;
    sig_track_t tracks[SIG_MEDIA_MAX_TRACKS];
    int n_tracks;
    sig_slot_t slots[SIG_MEDIA_MAX_SLOTS];
    int n_slots;
    int64_t version;    /* of the last media.offer sent */
    bool offer_pending; /* offer sent, answer not yet received */
    bool forwarding;    /* what the relay was last told */
};

/* Relay endpoint id -> owner (for routing relay events). */
typedef struct {
    uint64_t conn;
    char consult[SPK_ID_LEN];
    sig_pc_t pc;
} sig_ep_owner_t;

/* media_sdp.c */
int sig_media_answer(spk_sig_t *s, sig_media_t *m, const spk_sdp_t *offer, char *out, size_t cap,
                     char *why, size_t why_len);
int sig_media_offer(spk_sig_t *s, sig_consult_t *c, sig_conn_t *conn, sig_media_t *m,
                    json_t **streams, char *out, size_t cap);
void sig_fingerprint_to_str(const spk_sdp_fingerprint_t *fp, char *out, size_t cap);

#endif /* SPK_HAVE_RELAY */
#endif
