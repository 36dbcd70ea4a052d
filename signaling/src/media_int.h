/* Media signaling (docs/protocol.md 5.7): the publish and subscribe connections of the joined
 * (connection, consult) pairs, wired to the relay.
 *
 * Access. Relay endpoints exist only for admitted participants of an open consult: a media
 * request from anyone else is bad_state, and when a participant stops being admitted (sent
 * back, denied, left, consult ended, or unjoined by the core for any reason) their endpoints
 * are closed at once (sig_media_consult_changed, sig_media_unjoin). A participant has at most
 * one publish and one subscribe endpoint in a consult, held by the newest of their connections
 * that asked: a new one replaces an older connection's (which is told with media.state
 * "closed", detail "replaced"); an older connection's request is bad_state while a newer one
 * holds it.
 *
 * Control thread only, like the rest of the core. */
#ifndef SPK_SIG_MEDIA_INT_H
#define SPK_SIG_MEDIA_INT_H

#include "core_int.h"
#include "spk/relay.h"
#include "spk/sdp.h"

#define SIG_MEDIA_MAX_TRACKS 4 /* published m-sections per connection */
#define SIG_MEDIA_MAX_SLOTS 32 /* m-sections of one subscribe connection */
#define SIG_MEDIA_MAX_CANDS 16 /* relay candidates held until the client has a description */

/* One published stream, as learnt from the publish offer and the relay's answer. */
typedef struct {
    spk_sdp_kind_t kind;
    spk_sdp_codec_t codec;   /* the negotiated codec, with the offer's payload type */
    spk_sdp_codec_t rtx;     /* rtx.pt == 0: none */
    uint32_t ssrc, rtx_ssrc; /* simulcast: the SSRCs the relay sends it under */
    char track[SPK_SDP_MAX_ID];
    /* Simulcast (n_rids > 0): the accepted rids, lowest layer first, and the publisher's ids of
     * the rid and repaired-rid header extensions. */
    uint8_t n_rids;
    char rids[SPK_RELAY_MAX_RIDS][SPK_RELAY_RID_MAX];
    uint8_t rid_ext, rrid_ext;
} sig_track_t;

/* One m-section of a subscribe connection: which participant's stream it carries. A stream that
 * goes away leaves its slot inactive (same mid), and a later stream of the same kind takes it
 * over once the client has answered an offer showing it inactive without rejecting it (a client
 * may reject an inactive m-section, and an answer to an offer already superseded is refused,
 * rejections and all: until then the slot's fate is unknown and a new stream gets another one).
 * A slot the client rejected (port 0 in its answer) is offered rejected until a new stream needs
 * it: then it is recycled with a new mid (JSEP, RFC 8829 5.2.2). So the number of m-sections
 * stays at about the most streams received at once. */
typedef struct {
    char mid[8];
    spk_sdp_kind_t kind;
    bool active;
    bool rejected;
    int64_t idle_from; /* the offer that first showed it inactive */
    char participant[SPK_ID_LEN];
    sig_track_t track;
} sig_slot_t;

typedef enum { SIG_PC_PUBLISH = 0, SIG_PC_SUBSCRIBE = 1 } sig_pc_t;

/* A relay endpoint and what the core remembers about it. */
typedef struct {
    uint64_t id; /* 0: none */
    spk_relay_local_t local;
    bool remote_set;
    bool failed;     /* the relay gave up on it: final */
    bool forwarding; /* what the relay was last told */
    char remote_ufrag[SPK_SDP_MAX_ICE];
    char remote_fp[SPK_RELAY_FINGERPRINT_LEN];
    /* The m-section the relay's candidates belong to (the BUNDLE tag); mid[0] == 0 while the
     * client has no description from the relay yet, and candidates are held. */
    char mid[SPK_SDP_MAX_ID];
    int mline;
    char cands[SIG_MEDIA_MAX_CANDS][SPK_RELAY_CANDIDATE_MAX];
    int n_cands;
} sig_ep_t;

struct sig_media {
    sig_ep_t pub, sub;
    sig_track_t tracks[SIG_MEDIA_MAX_TRACKS];
    int n_tracks;
    /* the publisher's header extension ids -> the subscribers' (spk_relay_set_ext_map) */
    uint8_t ext_map[SPK_RELAY_EXT_IDS];
    sig_slot_t slots[SIG_MEDIA_MAX_SLOTS];
    int n_slots;
    unsigned next_mid;  /* mids are never reused on one subscribe connection */
    int64_t version;    /* of the last media.offer sent */
    int64_t answered;   /* the offer the client's last accepted media.answer answered */
    bool offer_pending; /* offer sent, answer not yet received */
    bool starved;       /* a stream found no slot it may take: offered again after an answer */
};

/* Relay endpoint id -> owner (for routing relay events). */
typedef struct {
    uint64_t conn; /* 0 once the endpoint is being closed: its events are dropped */
    char consult[SPK_ID_LEN];
    sig_pc_t pc;
} sig_ep_owner_t;

extern const char *const sig_pc_names[2];

/* media.c */
void sig_media_send_candidate(spk_sig_t *s, uint64_t conn, const char *consult, sig_pc_t pc,
                              const sig_ep_t *ep, const char *cand);

/* media_bus.c: the i-th publisher of c on another node (its participant and tracks); returns
 * the number of tracks, -1 past the end. */
int sig_media_remote_tracks(sig_consult_t *c, size_t i, const char **part,
                            const sig_track_t **tracks);

/* media_sdp.c */
int sig_media_answer(spk_sig_t *s, sig_media_t *m, const spk_sdp_t *offer, char *out, size_t cap,
                     char *why, size_t why_len);
int sig_media_offer(spk_sig_t *s, sig_consult_t *c, sig_conn_t *conn, sig_media_t *m,
                    json_t **streams, char *out, size_t cap);
/* The subscriber's answer: marks the slots it rejected. Returns false when it rejected every
 * m-section (its transport is gone: the next offer needs a new endpoint). */
bool sig_media_answer_slots(sig_media_t *m, const spk_sdp_t *answer);
void sig_fingerprint_to_str(const spk_sdp_fingerprint_t *fp, char *out, size_t cap);

#endif
