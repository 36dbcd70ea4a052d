/* SDP for WebRTC (RFC 8866, JSEP RFC 8829, BUNDLE RFC 8843), as Chromium, Firefox and Safari
 * write it. No I/O and no allocation: the parser fills a caller-provided spk_sdp_t and the writer
 * prints one into a caller buffer.
 *
 * spk_sdp_t is large (about 780 KB with the default limits, 24 KB per m-section): allocate it on
 * the heap or embed it in a long-lived object, never on a worker's stack. It holds no pointers, so
 * it can be copied, compared with memcmp after spk_sdp_parse (which zeroes it first) and sent
 * between threads.
 *
 * Parsing rules: CRLF and LF line ends are both accepted; lines longer than SPK_SDP_MAX_LINE,
 * more than SPK_SDP_MAX_MEDIA m-sections, or a description larger than SPK_SDP_MAX_SIZE are
 * rejected; unknown attributes are ignored; malformed values of known attributes give
 * SPK_EDECODE with a reason in `why`. Codecs, extmaps, ssrcs and candidates beyond the per-section
 * limits are dropped and counted in spk_sdp_media_t.n_dropped (so that a large browser offer
 * still negotiates). */
#ifndef SPK_SDP_H
#define SPK_SDP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SPK_SDP_MAX_SIZE 65536     /* whole description, bytes */
#define SPK_SDP_MAX_LINE 4096      /* one line, bytes, without the line end */
#define SPK_SDP_MAX_MEDIA 32       /* m-sections */
#define SPK_SDP_MAX_CODECS 48      /* payload types per m-section (Chromium video offers ~30) */
#define SPK_SDP_MAX_EXTMAPS 24     /* a=extmap per m-section */
#define SPK_SDP_MAX_SSRCS 8        /* distinct a=ssrc per m-section */
#define SPK_SDP_MAX_SSRC_GROUPS 4  /* a=ssrc-group per m-section */
#define SPK_SDP_MAX_GROUP_SSRCS 4  /* ssrcs in one a=ssrc-group */
#define SPK_SDP_MAX_CANDIDATES 16  /* a=candidate per m-section */
#define SPK_SDP_MAX_ID 64          /* mid, msid ids, cname: bytes + NUL */
#define SPK_SDP_MAX_ICE 257        /* ice-ufrag / ice-pwd (RFC 8839: up to 256 chars) + NUL */
#define SPK_SDP_MAX_FMTP 256       /* raw a=fmtp parameters + NUL */
#define SPK_SDP_MAX_URI 128        /* extmap URI + NUL */
#define SPK_SDP_MAX_FINGERPRINT 64 /* sha-512 */
#define SPK_SDP_MAX_RIDS 4         /* a=rid per m-section; a=simulcast layers */
#define SPK_SDP_MAX_RID 17         /* rid id (RFC 8851: 1..16 of A-Z a-z 0-9 - _) + NUL */

typedef enum {
    SPK_SDP_KIND_AUDIO = 0,
    SPK_SDP_KIND_VIDEO,
    SPK_SDP_KIND_APPLICATION, /* data channel (m=application ... UDP/DTLS/SCTP webrtc-datachannel)
                               */
    SPK_SDP_KIND_OTHER,
} spk_sdp_kind_t;

/* Direction attribute; SENDRECV is the default when absent. */
typedef enum {
    SPK_SDP_SENDRECV = 0,
    SPK_SDP_SENDONLY,
    SPK_SDP_RECVONLY,
    SPK_SDP_INACTIVE,
} spk_sdp_dir_t;

/* a=setup (RFC 4145 / 5763). NONE when absent. */
typedef enum {
    SPK_SDP_SETUP_NONE = 0,
    SPK_SDP_SETUP_ACTPASS,
    SPK_SDP_SETUP_ACTIVE,
    SPK_SDP_SETUP_PASSIVE,
    SPK_SDP_SETUP_HOLDCONN,
} spk_sdp_setup_t;

typedef enum {
    SPK_SDP_HASH_NONE = 0,
    SPK_SDP_HASH_SHA1,
    SPK_SDP_HASH_SHA224,
    SPK_SDP_HASH_SHA256,
    SPK_SDP_HASH_SHA384,
    SPK_SDP_HASH_SHA512,
} spk_sdp_hash_t;

/* Codec recognised from the a=rtpmap encoding name (case-insensitive). */
typedef enum {
    SPK_CODEC_OTHER = 0,
    SPK_CODEC_OPUS,
    SPK_CODEC_VP8,
    SPK_CODEC_VP9,
    SPK_CODEC_H264,
    SPK_CODEC_H265,
    SPK_CODEC_AV1,
    SPK_CODEC_RTX,
    SPK_CODEC_RED,
    SPK_CODEC_ULPFEC,
    SPK_CODEC_FLEXFEC,
    SPK_CODEC_TELEPHONE_EVENT,
    SPK_CODEC_CN,
    SPK_CODEC_G722,
    SPK_CODEC_PCMU,
    SPK_CODEC_PCMA,
} spk_codec_t;

/* a=rtcp-fb values (bit flags in spk_sdp_codec_t.fb). */
#define SPK_SDP_FB_NACK 0x01u         /* nack */
#define SPK_SDP_FB_NACK_PLI 0x02u     /* nack pli */
#define SPK_SDP_FB_CCM_FIR 0x04u      /* ccm fir */
#define SPK_SDP_FB_GOOG_REMB 0x08u    /* goog-remb */
#define SPK_SDP_FB_TRANSPORT_CC 0x10u /* transport-cc */

/* Header extensions recognised from the a=extmap URI. */
typedef enum {
    SPK_EXT_OTHER = 0,
    SPK_EXT_MID,               /* urn:ietf:params:rtp-hdrext:sdes:mid */
    SPK_EXT_RID,               /* urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id */
    SPK_EXT_RRID,              /* urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id */
    SPK_EXT_ABS_SEND_TIME,     /* http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time */
    SPK_EXT_TRANSPORT_CC,      /* ...draft-holmer-rmcat-transport-wide-cc-extensions-01 */
    SPK_EXT_AUDIO_LEVEL,       /* urn:ietf:params:rtp-hdrext:ssrc-audio-level */
    SPK_EXT_TOFFSET,           /* urn:ietf:params:rtp-hdrext:toffset */
    SPK_EXT_VIDEO_ORIENTATION, /* urn:3gpp:video-orientation */
    SPK_EXT_PLAYOUT_DELAY,     /* http://www.webrtc.org/experiments/rtp-hdrext/playout-delay */
    SPK_EXT_CSRC_AUDIO_LEVEL,  /* urn:ietf:params:rtp-hdrext:csrc-audio-level */
    SPK_EXT_DEPENDENCY_DESC, /* https://aomediacodec.github.io/av1-rtp-spec/#dependency-descriptor-rtp-header-extension
                              */
    SPK_EXT_COUNT_,
} spk_sdp_ext_t;

#define SPK_SDP_EXT_BIT(e) (1u << (unsigned)(e))

typedef enum {
    SPK_CAND_HOST = 0,
    SPK_CAND_SRFLX,
    SPK_CAND_PRFLX,
    SPK_CAND_RELAY,
} spk_cand_type_t;

typedef enum {
    SPK_CAND_UDP = 0,
    SPK_CAND_TCP,
} spk_cand_transport_t;

typedef enum {
    SPK_CAND_TCP_NONE = 0,
    SPK_CAND_TCP_ACTIVE,
    SPK_CAND_TCP_PASSIVE,
    SPK_CAND_TCP_SO,
} spk_cand_tcptype_t;

/* a=candidate (RFC 8839 section 5.1). addr is an IPv4/IPv6 literal or an mDNS name
 * ("<uuid>.local", as browsers hide host addresses); it is not resolved here. */
typedef struct {
    char foundation[33];
    uint16_t component;
    spk_cand_transport_t transport;
    uint32_t priority;
    char addr[SPK_SDP_MAX_ID];
    uint16_t port;
    spk_cand_type_t type;
    char raddr[SPK_SDP_MAX_ID]; /* empty when absent */
    uint16_t rport;
    spk_cand_tcptype_t tcptype;
    uint32_t generation; /* "generation N" extension, 0 when absent */
} spk_sdp_candidate_t;

typedef struct {
    char ufrag[SPK_SDP_MAX_ICE]; /* empty when absent */
    char pwd[SPK_SDP_MAX_ICE];
    bool trickle;      /* a=ice-options containing "trickle" */
    bool renomination; /* a=ice-options containing "renomination" */
} spk_sdp_ice_t;

typedef struct {
    spk_sdp_hash_t hash; /* NONE when absent */
    uint8_t len;         /* bytes in value */
    uint8_t value[SPK_SDP_MAX_FINGERPRINT];
} spk_sdp_fingerprint_t;

/* One payload type: a format of the m-line plus its a=rtpmap, a=fmtp and a=rtcp-fb lines.
 * Static payload types without a=rtpmap (0 PCMU, 8 PCMA, 9 G722, 13 CN) get their RFC 3551
 * names. */
typedef struct {
    uint8_t pt;
    spk_codec_t codec;
    char name[32];               /* encoding name as written, e.g. "opus", "H264" */
    uint32_t clock_rate;         /* 0 when no rtpmap */
    uint8_t channels;            /* 0 when absent (means 1) */
    char fmtp[SPK_SDP_MAX_FMTP]; /* raw parameters after "a=fmtp:<pt> ", empty when absent */
    uint32_t fb;                 /* SPK_SDP_FB_* */
    /* Parsed from fmtp; -1 / 0 when absent. */
    int16_t apt;                  /* rtx: associated payload type */
    int8_t packetization_mode;    /* H.264: 0 or 1 */
    uint32_t profile_level_id;    /* H.264: 24 bits, e.g. 0x42e01f; 0 when absent */
    bool level_asymmetry_allowed; /* H.264 */
} spk_sdp_codec_t;

typedef struct {
    uint8_t id;        /* 1..14 one-byte, 1..255 two-byte */
    spk_sdp_dir_t dir; /* SENDRECV when absent */
    bool has_dir;
    spk_sdp_ext_t ext;
    char uri[SPK_SDP_MAX_URI];
} spk_sdp_extmap_t;

/* a=ssrc:<ssrc> cname:... / msid:... (RFC 5576); attributes other than cname and msid are
 * ignored. */
typedef struct {
    uint32_t ssrc;
    char cname[SPK_SDP_MAX_ID];
    char msid_stream[SPK_SDP_MAX_ID];
    char msid_track[SPK_SDP_MAX_ID];
} spk_sdp_ssrc_t;

/* a=ssrc-group:<semantics> <ssrc>... e.g. FID (primary, rtx), SIM, FEC-FR. */
typedef struct {
    char semantics[16];
    uint8_t n;
    uint32_t ssrcs[SPK_SDP_MAX_GROUP_SSRCS];
} spk_sdp_ssrc_group_t;

/* a=rid:<id> send|recv (RFC 8851); restrictions after the direction are ignored. */
typedef struct {
    char id[SPK_SDP_MAX_RID];
    bool recv; /* false: send */
} spk_sdp_rid_t;

typedef struct {
    spk_sdp_kind_t kind;
    char kind_name[16]; /* as written ("audio", "video", "application", ...) */
    uint16_t port;      /* 9 in bundled WebRTC sections; 0 means rejected */
    char proto[32];     /* "UDP/TLS/RTP/SAVPF", "UDP/DTLS/SCTP", ... */
    char mid[SPK_SDP_MAX_ID];
    spk_sdp_dir_t dir;
    bool rtcp_mux;
    bool rtcp_rsize;
    bool bundle_only;
    bool end_of_candidates;
    /* Media-level ICE and DTLS; empty / NONE when the session-level value applies (see
     * spk_sdp_media_ice() and spk_sdp_media_fingerprint()). */
    spk_sdp_ice_t ice;
    spk_sdp_fingerprint_t fingerprint;
    spk_sdp_setup_t setup;
    /* msid of the sender's track (a=msid:<stream> <track>); empty when absent. */
    char msid_stream[SPK_SDP_MAX_ID];
    char msid_track[SPK_SDP_MAX_ID];
    char app_fmt[32];   /* non-RTP sections: the first format, e.g. "webrtc-datachannel" */
    uint16_t sctp_port; /* a=sctp-port, application sections; 0 when absent */
    uint8_t n_codecs;   /* in m-line order, i.e. the sender's preference */
    uint8_t n_extmaps;
    uint8_t n_ssrcs;
    uint8_t n_ssrc_groups;
    uint8_t n_candidates;
    uint16_t n_dropped; /* entries beyond the limits above, ignored */
    spk_sdp_codec_t codecs[SPK_SDP_MAX_CODECS];
    spk_sdp_extmap_t extmaps[SPK_SDP_MAX_EXTMAPS];
    spk_sdp_ssrc_t ssrcs[SPK_SDP_MAX_SSRCS];
    spk_sdp_ssrc_group_t ssrc_groups[SPK_SDP_MAX_SSRC_GROUPS];
    spk_sdp_candidate_t candidates[SPK_SDP_MAX_CANDIDATES];
    uint8_t n_rids;
    spk_sdp_rid_t rids[SPK_SDP_MAX_RIDS];
    /* a=simulcast (RFC 8853): the first direction written ("send" or "recv") and its streams in
     * order; of alternatives ("a,b") the first is kept; sim_paused marks a "~" stream. n_sim 0:
     * no a=simulcast. Extra directions and streams beyond SPK_SDP_MAX_RIDS are ignored. */
    bool sim_recv;
    uint8_t n_sim;
    char sim[SPK_SDP_MAX_RIDS][SPK_SDP_MAX_RID];
    bool sim_paused[SPK_SDP_MAX_RIDS];
} spk_sdp_media_t;

typedef struct {
    uint64_t session_id; /* o= */
    uint64_t session_version;
    spk_sdp_ice_t ice; /* session-level ICE attributes */
    bool ice_lite;
    spk_sdp_fingerprint_t fingerprint; /* session-level */
    spk_sdp_setup_t setup;
    bool extmap_allow_mixed;
    bool msid_semantic;                     /* a=msid-semantic: WMS ... present */
    char msid_semantic_ids[SPK_SDP_MAX_ID]; /* the ids after "WMS" as written, e.g. "*" */
    uint8_t n_bundle;                       /* a=group:BUNDLE mids, in order */
    char bundle[SPK_SDP_MAX_MEDIA][SPK_SDP_MAX_ID];
    uint8_t n_media;
    spk_sdp_media_t media[SPK_SDP_MAX_MEDIA];
} spk_sdp_t;

/* Parses a description of `len` bytes (need not be NUL terminated). Zeroes `out` first.
 * Requirements checked: v=0 first, at least one m= line, every m-line format list parses,
 * mids unique, BUNDLE mids exist. Returns 0, SPK_EDECODE (malformed; reason in why), SPK_ETOOBIG
 * (size, line or m-section limit). */
int spk_sdp_parse(spk_sdp_t *out, const char *sdp, size_t len, char *why, size_t why_len);

/* Parses one candidate: "candidate:..." with or without a leading "a=" (the form trickled in
 * RTCPeerConnectionIceEvent.candidate.candidate). Returns 0 or SPK_EDECODE. */
int spk_sdp_candidate_parse(spk_sdp_candidate_t *out, const char *s, size_t len, char *why,
                            size_t why_len);

/* Formats a candidate as "candidate:..." (no "a=", no line end) into out (NUL terminated).
 * Returns the length or SPK_ETOOBIG. */
int spk_sdp_candidate_format(const spk_sdp_candidate_t *c, char *out, size_t cap);

/* Writes `sdp` as text with CRLF line ends into out (NUL terminated). Everything the parser
 * stores is written back, so parse(write(parse(x))) == parse(x). Returns the length or
 * SPK_ETOOBIG / SPK_EINVAL (a struct that cannot be printed, e.g. m-section without codecs). */
int spk_sdp_write(const spk_sdp_t *sdp, char *out, size_t cap);

/* Effective ICE credentials / fingerprint / setup of a section: media level if present, else
 * session level. Never NULL. */
const spk_sdp_ice_t *spk_sdp_media_ice(const spk_sdp_t *sdp, const spk_sdp_media_t *m);
const spk_sdp_fingerprint_t *spk_sdp_media_fingerprint(const spk_sdp_t *sdp,
                                                       const spk_sdp_media_t *m);
spk_sdp_setup_t spk_sdp_media_setup(const spk_sdp_t *sdp, const spk_sdp_media_t *m);

/* Lookups inside a section; NULL when absent. */
const spk_sdp_codec_t *spk_sdp_find_codec(const spk_sdp_media_t *m, uint8_t pt);
const spk_sdp_codec_t *spk_sdp_find_rtx(const spk_sdp_media_t *m, uint8_t apt);
const spk_sdp_extmap_t *spk_sdp_find_extmap(const spk_sdp_media_t *m, spk_sdp_ext_t ext);
spk_sdp_media_t *spk_sdp_find_mid(spk_sdp_t *sdp, const char *mid);

/* Recognisers (exposed for tests and the media worker). */
spk_codec_t spk_sdp_codec_from_name(const char *name);
spk_sdp_ext_t spk_sdp_ext_from_uri(const char *uri);
const char *spk_sdp_ext_uri(spk_sdp_ext_t ext); /* canonical URI; "" for OTHER */
const char *spk_sdp_dir_name(spk_sdp_dir_t dir);
const char *spk_sdp_hash_name(spk_sdp_hash_t hash);

/* True for H.264 baseline and constrained baseline (RFC 6184 table 5): profile_idc 0x42 with
 * any constraint flags, 0x4d with constraint_set0, 0x58 with constraint_set0 and 1. */
bool spk_sdp_h264_is_baseline(uint32_t profile_level_id);

/* Codec selection in the relay's preference order: audio Opus 48000/2; video VP8, then H.264
 * baseline (packetization-mode 1 before 0, 42e01f-style constrained before plain baseline).
 * RED, ULPFEC, FlexFEC, CN and telephone-event are never selected. The offer's payload type
 * numbers are kept. Writes the chosen codec to *primary and, when the offer has an rtx
 * payload type with apt= the chosen one, that to *rtx (rtx may be NULL; rtx->pt == 0 means
 * none). Returns 0 or SPK_ENOTFOUND (nothing acceptable). */
int spk_sdp_select_codec(const spk_sdp_media_t *offer, spk_sdp_codec_t *primary,
                         spk_sdp_codec_t *rtx);

/* The relay's own transport parameters and capabilities. */
typedef struct {
    const char *ice_ufrag;             /* 4..256 ice-chars */
    const char *ice_pwd;               /* 22..256 ice-chars */
    spk_sdp_fingerprint_t fingerprint; /* of the relay's DTLS certificate */
    bool ice_lite;                     /* write a=ice-lite */
    bool ice_trickle;                  /* write a=ice-options:trickle */
    uint32_t fb_audio;   /* SPK_SDP_FB_* offered/accepted for audio (e.g. TRANSPORT_CC) */
    uint32_t fb_video;   /* for video (e.g. NACK|NACK_PLI|CCM_FIR|GOOG_REMB|TRANSPORT_CC) */
    uint32_t exts;       /* SPK_SDP_EXT_BIT() set of supported header extensions */
    uint64_t session_id; /* o= values */
    uint64_t session_version;
} spk_sdp_local_t;

/* Builds the relay's answer to `offer` in `answer` (zeroed first): one m-section per offered
 * one, same kind, mid and order; setup passive; rtcp-mux and rtcp-rsize when offered; the
 * selected codec (+ its rtx) with the offered payload types and the intersection of offered
 * and local rtcp-fb; the offered extmaps whose extension is in local->exts, with the offered
 * ids; direction the complement of the offer's (sendonly -> recvonly, recvonly -> sendonly,
 * sendrecv -> recvonly, inactive -> inactive: the caller switches a section to sendonly or
 * sendrecv and adds ssrcs/msid when it forwards a stream on it); ICE and fingerprint at media
 * level; BUNDLE over all accepted mids. Sections with no acceptable codec, application
 * sections and sections the offer rejected are rejected (port 0, inactive).
 * Simulcast: an offered video section with a=simulcast:send of 2..SPK_SDP_MAX_RIDS streams
 * (each with its a=rid ... send), whose selected codec is VP8 and whose offer has the rid
 * header extension in local->exts, is answered with a=rid:<id> recv for each and
 * a=simulcast:recv in the same order (paused streams left out); otherwise simulcast is not
 * answered and the sender sends its first encoding only. spk_sdp_answer_simulcast() tells
 * which. Fails with SPK_EDECODE when the offer lacks ICE credentials, fingerprint, mid or rtcp-mux
 * on an accepted section, SPK_ENOTFOUND when no section can be accepted, or SPK_EINVAL for a bad
 * `local` (ufrag 4..256 / pwd 22..256 ice-chars, a fingerprint). On error `answer` is zeroed. */
int spk_sdp_answer_init(spk_sdp_t *answer, const spk_sdp_t *offer, const spk_sdp_local_t *local,
                        char *why, size_t why_len);

/* Whether the answered section m accepted simulcast (a=simulcast:recv with at least 2 rids). */
bool spk_sdp_answer_simulcast(const spk_sdp_media_t *m);

/* Starts a relay offer: session fields from local, no m-sections. */
int spk_sdp_offer_init(spk_sdp_t *offer, const spk_sdp_local_t *local);

/* The id under which spk_sdp_offer_add_media() offers extension `ext` when local->exts is
 * `exts`: the extensions in exts are numbered 1, 2, ... in spk_sdp_ext_t order (at most 14, the
 * one-byte form). 0 when ext is not in exts (or is SPK_EXT_OTHER, or beyond the 14th). */
uint8_t spk_sdp_offer_ext_id(uint32_t exts, spk_sdp_ext_t ext);

/* The header extension id map for forwarding a publisher's RTP to subscribers whose offers were
 * built with `exts` (spk_rtp_ext_remap): from the extmaps of every accepted section of `sdp` (the
 * relay's answer to the publisher, whose ids are the publisher's), map[publisher id] = the id the
 * subscribers were offered for that extension; every other entry 0 (the element is removed). */
void spk_sdp_ext_map(const spk_sdp_t *sdp, uint32_t exts, uint8_t map[256]);

/* Appends an m-section to a relay offer (setup actpass, rtcp-mux, rtcp-rsize, ICE and
 * fingerprint from local, rtcp-fb from local->fb_*, the extmaps in local->exts with ids 1..14
 * in spk_sdp_ext_t order, mid added to BUNDLE). codecs[0..n) are copied (their fb is replaced by
 * the local set; rtx entries get none). Returns the new section for the caller to set ssrcs and
 * msid, or NULL when full or the arguments are invalid. */
spk_sdp_media_t *spk_sdp_offer_add_media(spk_sdp_t *offer, const spk_sdp_local_t *local,
                                         spk_sdp_kind_t kind, const char *mid, spk_sdp_dir_t dir,
                                         const spk_sdp_codec_t *codecs, size_t n);

/* Adds a stream's ssrc lines to a section (cname + msid on each ssrc, and a FID group when
 * rtx_ssrc != 0); also sets the section's a=msid. Ids must be 1..63 printable characters
 * without spaces. Returns 0, SPK_EINVAL or SPK_ETOOBIG. */
int spk_sdp_media_add_stream(spk_sdp_media_t *m, uint32_t ssrc, uint32_t rtx_ssrc,
                             const char *cname, const char *stream_id, const char *track_id);

/* Adds a candidate to a section. Returns 0, SPK_EINVAL or SPK_ETOOBIG. */
int spk_sdp_media_add_candidate(spk_sdp_media_t *m, const spk_sdp_candidate_t *c);

#endif
