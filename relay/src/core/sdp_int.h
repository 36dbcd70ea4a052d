/* Private interface between the SDP parser, writer and builders. */
#ifndef SPK_SDP_INT_H
#define SPK_SDP_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "spk/sdp.h"

/* Decimal without sign or spaces, at most max. */
bool spk_sdp_parse_u64(const char *s, size_t n, uint64_t max, uint64_t *out);

/* A codec for payload type pt with the RFC 3551 defaults of static payload types. */
void spk_sdp_codec_init_static(spk_sdp_codec_t *c, uint8_t pt);

/* Parses the fmtp parameters in c->fmtp into the typed fields. Returns 0 or SPK_EDECODE with a
 * reason (without line number) in why. */
int spk_sdp_codec_parse_fmtp(spk_sdp_codec_t *c, char *why, size_t why_len);

/* Media-level attributes other than ICE/DTLS ones; unknown names are ignored. */
int spk_sdp_parse_media_attr(spk_sdp_media_t *m, uint32_t *fb_wildcard, const char *name,
                             const char *value, char *why, size_t why_len, unsigned line_no);

#endif
