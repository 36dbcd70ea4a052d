/* The packet path: runs in the libnice receive callback on the endpoint's worker thread.
 * Demultiplex (RFC 7983: STUN is libnice's, DTLS 20..63, RTP/RTCP 128..191), unprotect, route
 * to the consult's other endpoints (header extension ids rewritten once, for all subscribers),
 * protect per subscriber, send (queued until the wake-up's end: relay_io.c). No locks, no
 * allocation.
 * RTCP is handled per hop and RTP accounted and buffered for retransmission in relay_rtcp.c. */
#include <string.h>

#include "relay_int.h"
#include "spk/rtp.h"
#include "spk/util.h"

static bool can_receive(const spk_relay_ep_t *to, const spk_relay_ep_t *from)
{
    if (to == from || !to->forwarding || !to->srtp_out || to->failed ||
        (to->roles & SPK_RELAY_ROLE_SUBSCRIBE) == 0) {
        return false;
    }
    return from->owner == 0 || from->owner != to->owner; /* not one participant's own */
}

/* Protects w->rx[0, plain_len) (RTP of pub's stream s, extended number ext) per subscriber and
 * sends it; a simulcast layer's packet (sim) only to those that receive that layer, rewritten
 * for each (relay_simulcast.h). */
static void forward(spk_relay_worker_t *w, spk_relay_ep_t *from, size_t plain_len,
                    const spk_relay_pstream_t *s, int64_t ext, const spk_relay_sim_pkt_t *sim)
{
    spk_relay_consult_t *c = from->consult;
    for (size_t i = 0; i < c->n; i++) {
        spk_relay_ep_t *to = c->eps[i];
        if (!can_receive(to, from)) {
            if (to != from && !to->forwarding) {
                from->st.dropped_lobby++;
            }
            continue;
        }
        if (s->d.video && to->fallback.video_off) {
            to->st.video_withheld++; /* its link cannot carry video (relay_fallback.h) */
            continue;
        }
        if (!spk_relay_gate_allows(to, from, s, ext)) {
            from->st.dropped_lobby++; /* late: due while `to` was in the lobby */
            continue;
        }
        uint8_t *tx = spk_relay_io_rtp_buf(to); /* a send queue slot or w->tx */
        memcpy(tx, w->rx, plain_len);
        if (sim != NULL && !spk_relay_sim_forward(to, from, sim, tx, from->last_rx_ns)) {
            continue; /* another layer than it receives */
        }
        int len = (int)plain_len;
        if (srtp_protect(to->srtp_out, tx, &len) != srtp_err_status_ok) {
            to->st.dropped_other++;
            continue;
        }
        spk_relay_io_send_rtp(to, tx, (size_t)len); /* counts rtp_tx or dropped_other */
    }
}

/* Rewrites the header extension ids of an RTP packet from the publisher's to the subscribers'
 * (spk_relay_set_ext_map). False for a malformed extension block. */
static bool remap_exts(const spk_relay_ep_t *ep, uint8_t *pkt, size_t len)
{
    if ((pkt[0] & 0x10u) == 0) {
        return true; /* no extension */
    }
    spk_rtp_view_t v;
    return spk_rtp_parse(&v, pkt, len, NULL, 0) == 0 &&
           spk_rtp_ext_remap(pkt, &v, ep->ext_map) == 0;
}

static void media_input(spk_relay_ep_t *ep, const uint8_t *buf, size_t len, bool rtcp)
{
    spk_relay_worker_t *w = ep->w;
    if (!ep->srtp_in || len < 12 || len > SPK_RELAY_PKT_MAX) {
        ep->st.dropped_other++;
        return;
    }
    memcpy(w->rx, buf, len);
    int plain = (int)len;
    srtp_err_status_t e = rtcp ? srtp_unprotect_rtcp(ep->srtp_in, w->rx, &plain)
                               : srtp_unprotect(ep->srtp_in, w->rx, &plain);
    if (e != srtp_err_status_ok) {
        ep->st.unprotect_errors++;
        return;
    }
    if (ep->ssl != NULL) {
        spk_relay_dtls_release(ep); /* the peer is done with the handshake */
    }
    ep->heard_ns = ep->last_rx_ns;
    if (rtcp) {
        ep->st.rtcp_rx++;
    } else {
        ep->st.rtp_rx++;
    }
    if (!ep->forwarding) {
        ep->st.dropped_lobby++;
        return;
    }
    if (!rtcp && !(ep->roles & SPK_RELAY_ROLE_PUBLISH)) {
        ep->st.dropped_other++;
        return;
    }
    /* RTCP per hop (relay_rtcp.c); last_rx_ns is this packet's arrival. */
    if (rtcp) {
        spk_relay_rtcp_in(ep, w->rx, (size_t)plain, ep->last_rx_ns);
        return;
    }
    if (!spk_relay_sim_learn(ep, w->rx, (size_t)plain)) {
        ep->st.dropped_other++; /* simulcast: an SSRC of no known layer */
        return;
    }
    if (!remap_exts(ep, w->rx, (size_t)plain)) {
        ep->st.dropped_other++;
        return;
    }
    int64_t ext = 0;
    const spk_relay_pstream_t *s =
        spk_relay_rtcp_rtp_in(ep, w->rx, (size_t)plain, ep->last_rx_ns, &ext);
    spk_relay_sim_pkt_t sim;
    if (s != NULL && (s->layer == 0 ||
                      spk_relay_sim_prepare(ep, s, w->rx, (size_t)plain, ep->last_rx_ns, &sim))) {
        forward(w, ep, (size_t)plain, s, ext, s->layer != 0 ? &sim : NULL);
    }
    spk_relay_rtcp_poll(ep, ep->last_rx_ns);
}

void spk_relay_path_recv_cb(NiceAgent *agent, guint stream_id, guint component_id, guint len,
                            gchar *buf, gpointer user)
{
    spk_relay_ep_t *ep = user;
    SPK_RELAY_ON_WORKER(ep->w);
    if (ep->failed || len == 0) {
        return;
    }
    uint64_t t0 = spk_mono_ns();
    const uint8_t *p = (const uint8_t *)buf;
    ep->st.bytes_rx += len;
    ep->last_rx_ns = t0;
    switch (spk_pkt_classify(p, len)) {
    case SPK_PKT_DTLS:
        spk_relay_dtls_input(ep, p, len);
        break;
    case SPK_PKT_RTP:
        media_input(ep, p, len, false);
        break;
    case SPK_PKT_RTCP:
        media_input(ep, p, len, true);
        break;
    default:
        ep->st.dropped_other++;
        break;
    }
    ep->st.path_ns += spk_mono_ns() - t0;
}
