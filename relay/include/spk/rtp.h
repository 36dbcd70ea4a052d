/* RTP and RTCP without I/O (RFC 3550, 3551, 4585, 5104, 5506, 7983, 8285; REMB
 * draft-alvestrand-rmcat-remb; transport-cc draft-holmer-rmcat-transport-wide-cc-extensions-01).
 *
 * Parsers are zero-copy views into the caller's buffer: they never allocate and never write.
 * A view is valid as long as the buffer is. Every length and count in peer data is checked
 * against the buffer; nothing is asserted on peer data. Builders write into a caller buffer and
 * return the number of bytes written or a negative SPK_E* code. All multi-byte fields are
 * network byte order on the wire and host order in the structs. */
#ifndef SPK_RTP_H
#define SPK_RTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- Demultiplexing (RFC 7983, RFC 5761) ---------------------------------------------- */

typedef enum {
    SPK_PKT_UNKNOWN = 0,
    SPK_PKT_STUN,         /* first byte 0..3 */
    SPK_PKT_ZRTP,         /* 16..19 */
    SPK_PKT_DTLS,         /* 20..63 */
    SPK_PKT_TURN_CHANNEL, /* 64..79 */
    SPK_PKT_RTP,          /* 128..191, second byte not 192..223 */
    SPK_PKT_RTCP,         /* 128..191, second byte (packet type) 192..223 */
} spk_pkt_class_t;

/* Classifies a datagram by its first two bytes. Never reads past len. */
spk_pkt_class_t spk_pkt_classify(const uint8_t *buf, size_t len);

/* ---- RTP header view ----------------------------------------------------------------- */

#define SPK_RTP_HEADER_LEN 12
#define SPK_RTP_MAX_CSRC 15
#define SPK_RTP_EXT_ONE_BYTE 0xBEDEu /* RFC 8285 section 4.2 profile */
#define SPK_RTP_EXT_TWO_BYTE 0x1000u /* RFC 8285 section 4.3: 0x100 in the top 12 bits */
#define SPK_RTP_EXT_TWO_BYTE_MASK 0xFFF0u

typedef struct {
    const uint8_t *data; /* the packet */
    size_t len;          /* whole packet, including padding */
    bool padding;
    bool extension;
    bool marker;
    uint8_t cc; /* CSRC count */
    uint8_t pt;
    uint16_t seq;
    uint32_t ts;
    uint32_t ssrc;
    uint16_t ext_profile; /* "defined by profile" word when extension is set */
    size_t ext_off;       /* offset of the extension data (after its 4-byte header) */
    size_t ext_len;       /* bytes of extension data */
    size_t payload_off;
    size_t payload_len; /* without padding */
    uint8_t pad_len;    /* padding bytes at the end, including the count byte; 0 if none */
} spk_rtp_view_t;

/* Parses an RTP header. Checks: version 2, len >= 12, CSRCs and extension within the packet,
 * padding count >= 1 and not beyond the bytes after the header. Returns 0, SPK_ETRUNC (a field
 * reaches past len) or SPK_EDECODE (version, padding count 0). */
int spk_rtp_parse(spk_rtp_view_t *v, const uint8_t *buf, size_t len, char *why, size_t why_len);

/* CSRC i (< v->cc) of a parsed packet. */
uint32_t spk_rtp_csrc(const spk_rtp_view_t *v, unsigned i);

/* In-place rewriting of a packet accepted by spk_rtp_parse (len >= 12 guaranteed by it).
 * set_pt keeps the marker bit. */
void spk_rtp_set_pt(uint8_t *pkt, uint8_t pt);
void spk_rtp_set_marker(uint8_t *pkt, bool marker);
void spk_rtp_set_seq(uint8_t *pkt, uint16_t seq);
void spk_rtp_set_ts(uint8_t *pkt, uint32_t ts);
void spk_rtp_set_ssrc(uint8_t *pkt, uint32_t ssrc);

/* ---- Header extensions (RFC 8285) ---------------------------------------------------- */

typedef struct {
    uint8_t id;          /* 1..14 one-byte form, 1..255 two-byte form */
    uint8_t len;         /* data bytes (1..16 one-byte, 0..255 two-byte) */
    size_t off;          /* offset of the data in the packet, for rewriting in place */
    const uint8_t *data; /* = v->data + off */
} spk_rtp_ext_t;

typedef struct {
    const uint8_t *pkt;
    size_t pos; /* next element, offset in the packet */
    size_t end;
    bool two_byte;
    bool valid; /* false when the profile is neither one- nor two-byte form */
} spk_rtp_ext_iter_t;

/* Starts iterating the extension elements of a parsed packet (none when !v->extension or the
 * profile is not RFC 8285). Padding bytes (id 0) are skipped; a one-byte element with id 15
 * ends the walk (RFC 8285 4.2). */
void spk_rtp_ext_iter_init(spk_rtp_ext_iter_t *it, const spk_rtp_view_t *v);
/* 0 and *out filled; SPK_ENOTFOUND at the end; SPK_ETRUNC when an element runs past the
 * extension block. */
int spk_rtp_ext_next(spk_rtp_ext_iter_t *it, spk_rtp_ext_t *out);
/* First element with this id: 0, SPK_ENOTFOUND, or SPK_ETRUNC (malformed block before it). */
int spk_rtp_ext_find(const spk_rtp_view_t *v, uint8_t id, spk_rtp_ext_t *out);

/* Rewrites extension ids in place for a subscriber whose extmap ids differ: each element's id
 * becomes map[id]; an element mapped to 0 is overwritten with padding (zero bytes), i.e.
 * removed. In the one-byte form new ids must be 1..14 (others are treated as 0). Returns 0 or
 * SPK_ETRUNC. */
int spk_rtp_ext_remap(uint8_t *pkt, const spk_rtp_view_t *v, const uint8_t map[256]);

/* Value readers; false when the element has the wrong length. */
bool spk_rtp_ext_read_u16(const spk_rtp_ext_t *e, uint16_t *out);           /* transport-cc seq */
bool spk_rtp_ext_read_abs_send_time(const spk_rtp_ext_t *e, uint32_t *out); /* 24 bits, 6.18 s */
bool spk_rtp_ext_read_audio_level(const spk_rtp_ext_t *e, bool *voice, uint8_t *level);
/* Writes a 16-bit value into a 2-byte element of pkt (transport-cc seq rewriting). */
void spk_rtp_ext_write_u16(uint8_t *pkt, const spk_rtp_ext_t *e, uint16_t value);

/* ---- Sequence numbers and receiver statistics (RFC 3550 A.1, A.3, A.8) ------------- */

typedef struct {
    int64_t highest;
    bool started;
} spk_seq_unwrap_t;

/* Extends a 16-bit sequence number to 64 bits relative to the highest seen so far (a jump of
 * less than 2^15 forward counts as newer, otherwise older). The first value is returned as is,
 * so earlier packets reordered across a wrap can be negative. */
int64_t spk_seq_unwrap(spk_seq_unwrap_t *u, uint16_t seq);

/* RFC 3550 A.1 source state with A.3 loss and A.8 jitter. */
typedef struct {
    uint32_t ssrc;
    uint32_t clock_rate;
    uint16_t max_seq;
    uint32_t cycles; /* shifted count of seq number cycles (<< 16) */
    uint32_t base_seq;
    uint32_t bad_seq;
    uint32_t probation;
    uint32_t received;
    uint32_t expected_prior;
    uint32_t received_prior;
    int64_t transit; /* previous relative transit time, RTP units */
    uint32_t jitter; /* RFC 3550 A.8 scaled by 16 */
    bool have_transit;
    uint32_t last_sr;         /* middle 32 bits of the last SR's NTP timestamp */
    uint64_t last_sr_recv_us; /* when it arrived (caller's monotonic clock) */
} spk_rtp_rx_stats_t;

/* Starts tracking a source with its first packet's sequence number. */
void spk_rtp_rx_stats_init(spk_rtp_rx_stats_t *s, uint32_t ssrc, uint32_t clock_rate,
                           uint16_t first_seq);
/* Accounts one packet (RFC 3550 A.1 update_seq, then A.8 jitter with arrival_us on the
 * caller's monotonic clock). Returns false while the source is on probation or when the packet
 * is out of sequence beyond MAX_DROPOUT / MAX_MISORDER (it is then not counted). */
bool spk_rtp_rx_stats_update(spk_rtp_rx_stats_t *s, uint16_t seq, uint32_t rtp_ts,
                             uint64_t arrival_us);
/* Records an SR from this source for the LSR / DLSR fields. */
void spk_rtp_rx_stats_on_sr(spk_rtp_rx_stats_t *s, uint64_t ntp, uint64_t now_us);

/* ---- RTCP ---------------------------------------------------------------------------- */

enum {
    SPK_RTCP_SR = 200,
    SPK_RTCP_RR = 201,
    SPK_RTCP_SDES = 202,
    SPK_RTCP_BYE = 203,
    SPK_RTCP_APP = 204,
    SPK_RTCP_RTPFB = 205, /* RFC 4585 transport layer feedback */
    SPK_RTCP_PSFB = 206,  /* RFC 4585 payload-specific feedback */
    SPK_RTCP_XR = 207,
};

/* RTPFB / PSFB FMT values. */
enum {
    SPK_RTPFB_NACK = 1,  /* RFC 4585 6.2.1 */
    SPK_RTPFB_TWCC = 15, /* transport-wide congestion control feedback */
    SPK_PSFB_PLI = 1,    /* RFC 4585 6.3.1 */
    SPK_PSFB_FIR = 4,    /* RFC 5104 4.3.1 */
    SPK_PSFB_AFB = 15,   /* application layer feedback; REMB when the FCI starts with "REMB" */
};

#define SPK_RTCP_HEADER_LEN 4
#define SPK_RTCP_MAX_REPORTS 31

/* One packet of a compound (or reduced-size, RFC 5506) RTCP datagram. */
typedef struct {
    uint8_t pt;
    uint8_t count; /* RC / SC / FMT / subtype: the 5 low bits of the first byte */
    bool padding;
    const uint8_t *data; /* the packet, starting at its header */
    size_t len;          /* (length field + 1) * 4 */
    const uint8_t *body; /* after the 4-byte header */
    size_t body_len;     /* without padding */
} spk_rtcp_pkt_t;

typedef struct {
    const uint8_t *buf;
    size_t len;
    size_t pos;
} spk_rtcp_iter_t;

void spk_rtcp_iter_init(spk_rtcp_iter_t *it, const uint8_t *buf, size_t len);
/* Next packet: 0 and *out filled; SPK_ENOTFOUND at the end; SPK_ETRUNC (length field beyond
 * the buffer, or fewer than 4 bytes left) or SPK_EDECODE (version not 2, padding count 0 or
 * beyond the packet, packet type outside 192..223). After an error the iterator stays at the
 * error. */
int spk_rtcp_next(spk_rtcp_iter_t *it, spk_rtcp_pkt_t *out, char *why, size_t why_len);
/* Walks a whole datagram; 0 when every packet is well-formed and there is at least one. */
int spk_rtcp_validate(const uint8_t *buf, size_t len, char *why, size_t why_len);

/* RR/SR report block (RFC 3550 6.4.1). */
typedef struct {
    uint32_t ssrc;
    uint8_t fraction_lost;
    int32_t cumulative_lost; /* 24-bit signed */
    uint32_t ext_highest_seq;
    uint32_t jitter;
    uint32_t lsr;
    uint32_t dlsr;
} spk_rtcp_report_t;

/* Fills a report block for this source (RFC 3550 A.3 loss, A.8 jitter, LSR/DLSR) and starts
 * the next reporting interval. */
void spk_rtp_rx_stats_report(spk_rtp_rx_stats_t *s, uint64_t now_us, spk_rtcp_report_t *out);

typedef struct {
    uint32_t ssrc;
    bool is_sr;
    uint64_t ntp; /* SR only */
    uint32_t rtp_ts;
    uint32_t packet_count;
    uint32_t octet_count;
    uint8_t n_reports;
    const uint8_t *reports; /* n_reports * 24 bytes; read with spk_rtcp_report_get */
} spk_rtcp_sr_t;

/* SR (pt 200) or RR (pt 201). Returns 0, SPK_ETRUNC (report count beyond the packet) or
 * SPK_EINVAL (another packet type). */
int spk_rtcp_parse_sr_rr(const spk_rtcp_pkt_t *p, spk_rtcp_sr_t *out, char *why, size_t why_len);
void spk_rtcp_report_get(const spk_rtcp_sr_t *sr, unsigned i, spk_rtcp_report_t *out);

/* SDES items (RFC 3550 6.5), chunk by chunk. */
enum { SPK_SDES_CNAME = 1, SPK_SDES_NAME = 2, SPK_SDES_TOOL = 6, SPK_SDES_PRIV = 8 };

typedef struct {
    uint32_t ssrc;
    uint8_t type;
    uint8_t len;
    const uint8_t *data;
} spk_rtcp_sdes_item_t;

typedef struct {
    const uint8_t *body;
    size_t len;
    size_t pos;
    unsigned chunks_left;
    uint32_t ssrc;
    bool in_chunk;
} spk_rtcp_sdes_iter_t;

int spk_rtcp_sdes_iter_init(spk_rtcp_sdes_iter_t *it, const spk_rtcp_pkt_t *p);
/* 0 and an item; SPK_ENOTFOUND at the end; SPK_ETRUNC when a chunk or item runs past the
 * packet or a chunk lacks its terminating null item. */
int spk_rtcp_sdes_next(spk_rtcp_sdes_iter_t *it, spk_rtcp_sdes_item_t *out);

typedef struct {
    uint8_t n_ssrcs;
    const uint8_t *ssrcs; /* n_ssrcs * 4 bytes; read with spk_rtcp_ssrc_at */
    uint8_t reason_len;
    const uint8_t *reason; /* NULL when absent */
} spk_rtcp_bye_t;

int spk_rtcp_parse_bye(const spk_rtcp_pkt_t *p, spk_rtcp_bye_t *out, char *why, size_t why_len);

typedef struct {
    uint8_t subtype;
    uint32_t ssrc;
    char name[5]; /* 4 ASCII characters + NUL */
    const uint8_t *data;
    size_t len;
} spk_rtcp_app_t;

int spk_rtcp_parse_app(const spk_rtcp_pkt_t *p, spk_rtcp_app_t *out, char *why, size_t why_len);

/* Reads a 32-bit big-endian value at p (for ssrc lists returned by the parsers). */
uint32_t spk_rtcp_ssrc_at(const uint8_t *list, unsigned i);

/* Common header of RTPFB (205) and PSFB (206) packets (RFC 4585 6.1). */
typedef struct {
    uint8_t pt;
    uint8_t fmt;
    uint32_t sender_ssrc;
    uint32_t media_ssrc;
    const uint8_t *fci;
    size_t fci_len;
} spk_rtcp_fb_t;

/* Returns 0, SPK_ETRUNC (shorter than 12 bytes) or SPK_EINVAL (not RTPFB/PSFB). */
int spk_rtcp_parse_fb(const spk_rtcp_pkt_t *p, spk_rtcp_fb_t *out, char *why, size_t why_len);

/* Generic NACK (RTPFB fmt 1): each 4-byte FCI is a PID and a bitmask of the 16 following
 * sequence numbers (BLP). The iterator yields every lost sequence number in order. */
typedef struct {
    const uint8_t *fci;
    size_t n_items;
    size_t item;
    int bit; /* -1: the PID itself; 0..15: BLP bits */
} spk_rtcp_nack_iter_t;

/* SPK_EDECODE when the FCI is empty or not a multiple of 4. */
int spk_rtcp_nack_iter_init(spk_rtcp_nack_iter_t *it, const spk_rtcp_fb_t *fb, char *why,
                            size_t why_len);
bool spk_rtcp_nack_next(spk_rtcp_nack_iter_t *it, uint16_t *seq);

/* FIR (PSFB fmt 4) entries: 8 bytes each (ssrc, seq nr, 3 reserved). SPK_EDECODE when the FCI
 * is empty or not a multiple of 8. */
int spk_rtcp_fir_count(const spk_rtcp_fb_t *fb, size_t *n, char *why, size_t why_len);
void spk_rtcp_fir_get(const spk_rtcp_fb_t *fb, size_t i, uint32_t *ssrc, uint8_t *seq_nr);

/* REMB (PSFB fmt 15, "REMB"). bitrate = mantissa << exp, saturated at UINT64_MAX. */
typedef struct {
    uint64_t bitrate_bps;
    uint8_t n_ssrcs;
    const uint8_t *ssrcs;
} spk_rtcp_remb_t;

/* SPK_ENOTFOUND when the AFB is not REMB; SPK_EDECODE when num ssrc does not match the FCI
 * length; SPK_ETRUNC when shorter than the fixed part. */
int spk_rtcp_parse_remb(const spk_rtcp_fb_t *fb, spk_rtcp_remb_t *out, char *why, size_t why_len);

/* Transport-wide CC feedback (RTPFB fmt 15). */
typedef struct {
    uint16_t base_seq;
    uint16_t status_count;
    int32_t ref_time; /* 24-bit signed, units of 64 ms */
    uint8_t fb_count;
    const uint8_t *chunks; /* packet status chunks, then receive deltas */
    size_t chunks_len;
} spk_rtcp_twcc_t;

int spk_rtcp_parse_twcc(const spk_rtcp_fb_t *fb, spk_rtcp_twcc_t *out, char *why, size_t why_len);

/* Decodes every packet status: for each seq base_seq + i (i < status_count), received and the
 * arrival time in microseconds relative to ref_time * 64 ms (valid when received). Returns the
 * number of statuses written (min(status_count, cap)) or SPK_ETRUNC / SPK_EDECODE when the
 * chunks or deltas run past the packet or a chunk is malformed. */
typedef struct {
    uint16_t seq;
    bool received;
    int64_t arrival_us;
} spk_twcc_status_t;

int spk_rtcp_twcc_decode(const spk_rtcp_twcc_t *tw, spk_twcc_status_t *out, size_t cap);

/* ---- RTCP builders ------------------------------------------------------------------ */
/* Each returns the bytes written (a multiple of 4) or SPK_ETOOBIG when cap is too small,
 * SPK_EINVAL for bad arguments. Packets can be concatenated into a compound. */

int spk_rtcp_build_rr(uint8_t *out, size_t cap, uint32_t sender_ssrc,
                      const spk_rtcp_report_t *reports, size_t n);
int spk_rtcp_build_sr(uint8_t *out, size_t cap, uint32_t sender_ssrc, uint64_t ntp, uint32_t rtp_ts,
                      uint32_t packet_count, uint32_t octet_count, const spk_rtcp_report_t *reports,
                      size_t n);
/* One chunk with a CNAME item. */
int spk_rtcp_build_sdes_cname(uint8_t *out, size_t cap, uint32_t ssrc, const char *cname);
int spk_rtcp_build_bye(uint8_t *out, size_t cap, const uint32_t *ssrcs, size_t n);
int spk_rtcp_build_pli(uint8_t *out, size_t cap, uint32_t sender_ssrc, uint32_t media_ssrc);
/* FIR with one entry (RFC 5104: media source SSRC field 0, target in the FCI). */
int spk_rtcp_build_fir(uint8_t *out, size_t cap, uint32_t sender_ssrc, uint32_t target_ssrc,
                       uint8_t seq_nr);
/* Generic NACK for n sequence numbers, packed into PID/BLP items. seqs must be in increasing
 * order modulo 2^16 (duplicates are fine). */
int spk_rtcp_build_nack(uint8_t *out, size_t cap, uint32_t sender_ssrc, uint32_t media_ssrc,
                        const uint16_t *seqs, size_t n);
/* REMB for the given media ssrcs (1..255). */
int spk_rtcp_build_remb(uint8_t *out, size_t cap, uint32_t sender_ssrc, uint64_t bitrate_bps,
                        const uint32_t *ssrcs, size_t n);

/* One received packet for transport-cc feedback: transport-wide sequence number, unwrapped
 * (spk_seq_unwrap), and arrival time on the receiver's clock in microseconds. */
typedef struct {
    int64_t seq;
    int64_t arrival_us;
} spk_twcc_recv_t;

/* Transport-cc feedback for received packets pkts[0..n), sorted by seq, no duplicates. Missing
 * seqs in between are reported as not received. Stops early when the next packet would need a
 * delta beyond 16 bits, more than 0xffff statuses or more than cap bytes; *consumed says how
 * many packets went in (the caller sends the rest in the next feedback). Returns bytes written
 * or SPK_EINVAL (n == 0 or unsorted input) / SPK_ETOOBIG (not even one packet fits). */
int spk_rtcp_build_twcc(uint8_t *out, size_t cap, uint32_t sender_ssrc, uint32_t media_ssrc,
                        uint8_t fb_count, const spk_twcc_recv_t *pkts, size_t n, size_t *consumed);

#endif
