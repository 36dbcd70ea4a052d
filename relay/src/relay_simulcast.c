/* Simulcast on the worker thread; see relay_simulcast.h and spk/simulcast.h.
 *
 * A publisher's layers are ordinary streams of it (spk_relay_pstream_t with layer != 0): their
 * own statistics, receiver reports, NACKs, retransmission buffer and lobby gates, keyed by the
 * layer's SSRC, learnt from the first packet that carries its rid. A subscriber receives one
 * layer at a time under the output SSRC of the declaration; NACKs and key frame requests on that
 * SSRC are mapped back to the layer (and, for NACKs, to its original sequence numbers). No
 * locks, no allocation. */
#include <string.h>

#include "relay_int.h"
#include "spk/log.h"
#include "spk/util.h"

/* A layer is live while its newest packet is at most this old. */
#define LIVE_MS 1500u
/* While a subscriber waits for the target layer's key frame, it is asked for again this often. */
#define ASK_MS 1000u
#define NACK_MAX_SEQS 128
/* After a step down, the fallback below the lowest layer waits this long beyond the rule's
 * grace time: the step takes effect at the next key frame of each stream, the network's queue
 * then drains, and only the loss window after that speaks of the lower layer. */
#define SETTLE_MS 3000u

static const spk_sim_rule_t *rule_of(const spk_relay_ep_t *ep)
{
    return &ep->w->relay->cfg.simulcast;
}

/* ---- the publisher's side ---- */

void spk_relay_sim_declare(spk_relay_ep_t *ep, const spk_relay_stream_t *streams, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (streams[i].n_rids > 0) {
            if (ep->sim.d.ssrc != streams[i].ssrc) {
                memset(ep->sim.last_ms, 0, sizeof(ep->sim.last_ms));
            }
            ep->sim.d = streams[i];
            return;
        }
    }
    memset(&ep->sim, 0, sizeof(ep->sim));
}

static spk_relay_pstream_t *own(spk_relay_ep_t *ep, uint32_t ssrc, bool *rtx)
{
    for (size_t i = 0; i < SPK_RELAY_MAX_STREAMS; i++) {
        spk_relay_pstream_t *s = &ep->streams[i];
        if (s->in_use && (s->d.ssrc == ssrc || (s->d.rtx_ssrc == ssrc && ssrc != 0))) {
            *rtx = s->d.ssrc != ssrc;
            return s;
        }
    }
    return NULL;
}

static spk_relay_pstream_t *layer_stream(spk_relay_ep_t *ep, int layer)
{
    for (size_t i = 0; i < SPK_RELAY_MAX_STREAMS; i++) {
        spk_relay_pstream_t *s = &ep->streams[i];
        if (s->in_use && s->layer == layer + 1) {
            return s;
        }
    }
    return NULL;
}

/* The layer a rid names; -1 for none. */
static int rid_layer(const spk_relay_ep_t *ep, const spk_rtp_ext_t *e)
{
    for (int k = 0; k < ep->sim.d.n_rids; k++) {
        const char *rid = ep->sim.d.rids[k];
        size_t n = strlen(rid);
        if (e->len == n && memcmp(e->data, rid, n) == 0) {
            return k;
        }
    }
    return -1;
}

bool spk_relay_sim_learn(spk_relay_ep_t *ep, const uint8_t *pkt, size_t len)
{
    if (ep->sim.d.n_rids == 0) {
        return true;
    }
    spk_rtp_view_t v;
    bool rtx;
    if (spk_rtp_parse(&v, pkt, len, NULL, 0) != 0) {
        return true; /* the path counts it */
    }
    if (own(ep, v.ssrc, &rtx) != NULL) {
        return true;
    }
    spk_rtp_ext_t e;
    int layer = -1;
    bool repair = false;
    if (spk_rtp_ext_find(&v, ep->sim.d.rid_ext, &e) == 0) {
        layer = rid_layer(ep, &e);
    } else if (ep->sim.d.rrid_ext != 0 && spk_rtp_ext_find(&v, ep->sim.d.rrid_ext, &e) == 0) {
        layer = rid_layer(ep, &e);
        repair = true;
    }
    if (layer < 0) {
        return false; /* not one of its layers (or no rid yet): never a stream of its own */
    }
    spk_relay_pstream_t *s = layer_stream(ep, layer);
    if (repair) {
        if (s == NULL || ep->sim.d.rtx_pt == 0) {
            return false;
        }
        s->d.rtx_ssrc = v.ssrc; /* its retransmissions, terminated in relay_rtcp.c */
        s->d.rtx_pt = ep->sim.d.rtx_pt;
        return true;
    }
    spk_relay_stream_t d = {.ssrc = v.ssrc, .pt = ep->sim.d.pt, .video = true};
    if (s != NULL) {
        uint32_t rtx_ssrc = s->d.rtx_ssrc; /* a new SSRC for the layer: it starts over */
        memset(&s->unwrap, 0, sizeof(s->unwrap));
        s->started = false;
        s->have_ext = false;
        s->d.ssrc = v.ssrc;
        s->d.rtx_ssrc = rtx_ssrc;
        if (s->store.arena != NULL) {
            spk_rtx_store_clear(&s->store); /* the old SSRC's packets: never an answer now */
        }
        spk_relay_sim_restart_pub(ep);
        return true;
    }
    s = spk_relay_rtcp_add_stream(ep, &d);
    if (s == NULL) {
        ep->st.dropped_other++;
        return false;
    }
    s->layer = (uint8_t)(layer + 1);
    spk_info(ep->id, "relay: simulcast layer %d (rid %s) is ssrc %u", layer, ep->sim.d.rids[layer],
             v.ssrc);
    return true;
}

bool spk_relay_sim_prepare(spk_relay_ep_t *pub, const spk_relay_pstream_t *s, const uint8_t *pkt,
                           size_t len, uint64_t now_ns, spk_relay_sim_pkt_t *p)
{
    spk_rtp_view_t v;
    if (spk_rtp_parse(&v, pkt, len, NULL, 0) != 0 || v.payload_len == 0 ||
        spk_vp8_desc_parse(&p->desc, pkt + v.payload_off, v.payload_len) != 0) {
        pub->st.dropped_other++;
        return false;
    }
    p->layer = s->layer - 1;
    p->seq = v.seq;
    p->ts = v.ts;
    p->payload_off = v.payload_off;
    pub->sim.last_ms[p->layer] = now_ns / 1000000u;
    if (p->desc.keyframe) {
        spk_relay_pstream_t *ls = layer_stream(pub, p->layer);
        if (ls != NULL) {
            spk_relay_rtcp_keyframe_seen(pub, ls);
        }
    }
    return true;
}

/* The highest live layer (-1: none). */
static int top_live(const spk_relay_ep_t *pub, uint64_t now_ms)
{
    for (int k = pub->sim.d.n_rids - 1; k >= 0; k--) {
        uint64_t t = pub->sim.last_ms[k];
        if (t != 0 && now_ms - t <= LIVE_MS) {
            return k;
        }
    }
    return -1;
}

/* The layer to forward for `want`: the highest live one at most want, else the lowest live. */
static int effective(const spk_relay_ep_t *pub, int want, uint64_t now_ms)
{
    int lowest = -1;
    for (int k = pub->sim.d.n_rids - 1; k >= 0; k--) {
        uint64_t t = pub->sim.last_ms[k];
        if (t != 0 && now_ms - t <= LIVE_MS) {
            if (k <= want) {
                return k;
            }
            lowest = k;
        }
    }
    return lowest >= 0 ? lowest : want;
}

/* ---- the subscriber's side ---- */

static spk_relay_sim_sub_t *sub_find(spk_relay_ep_t *sub, uint64_t pub_id)
{
    for (size_t i = 0; i < SPK_RELAY_SIM_SUBS; i++) {
        if (sub->sim_subs[i].pub == pub_id) {
            return &sub->sim_subs[i];
        }
    }
    return NULL;
}

static bool in_consult(const spk_relay_ep_t *sub, uint64_t pub_id)
{
    const spk_relay_consult_t *c = sub->consult;
    for (size_t i = 0; c != NULL && i < c->n; i++) {
        if (c->eps[i]->id == pub_id) {
            return true;
        }
    }
    return false;
}

/* sub's state for pub, made when missing (a slot of a publisher gone from the consult is
 * reused). */
static spk_relay_sim_sub_t *sub_state(spk_relay_ep_t *sub, const spk_relay_ep_t *pub,
                                      uint64_t now_ms)
{
    spk_relay_sim_sub_t *x = sub_find(sub, pub->id);
    if (x != NULL) {
        return x;
    }
    for (size_t i = 0; i < SPK_RELAY_SIM_SUBS && x == NULL; i++) {
        spk_relay_sim_sub_t *c = &sub->sim_subs[i];
        if (c->pub == 0 || !in_consult(sub, c->pub)) {
            x = c;
        }
    }
    if (x == NULL) {
        return NULL;
    }
    memset(x, 0, sizeof(*x));
    x->pub = pub->id;
    spk_sim_out_init(&x->out, effective(pub, sub->sim_sel.want, now_ms));
    return x;
}

bool spk_relay_sim_forward(spk_relay_ep_t *sub, spk_relay_ep_t *pub, const spk_relay_sim_pkt_t *p,
                           uint8_t *tx, uint64_t now_ns)
{
    uint64_t now_ms = now_ns / 1000000u;
    spk_relay_sim_sub_t *x = sub_state(sub, pub, now_ms);
    if (x == NULL) {
        return false;
    }
    int target = effective(pub, sub->sim_sel.want, now_ms);
    x->out.target = (int8_t)target;
    int before = x->out.layer;
    bool accepted = spk_sim_out_accept(&x->out, p->layer, p->seq, p->ts, &p->desc, now_ms);
    /* Still waiting for the target's key frame (asked after the packet, so that the key frame
     * that ends the wait is not followed by a request nobody needs). */
    if (x->out.layer != target && now_ms - x->asked_ms >= ASK_MS) {
        spk_relay_pstream_t *ts = layer_stream(pub, target);
        if (ts != NULL) {
            x->asked_ms = now_ms;
            spk_relay_rtcp_keyframe(pub, ts, now_ns);
        }
    }
    if (!accepted) {
        return false;
    }
    spk_sim_select_sent(&sub->sim_sel);
    if (before != x->out.layer) {
        sub->st.sim_switches++;
        spk_info(sub->id, "relay: simulcast: layer %d of endpoint %llu from its key frame (was %d)",
                 x->out.layer, (unsigned long long)pub->id, before);
    }
    spk_sim_rewrite(tx, p->payload_off, &p->desc, &x->out.hist[0], pub->sim.d.ssrc);
    return true;
}

/* The simulcast publisher sub receives under output SSRC ssrc. */
static spk_relay_ep_t *output_pub(const spk_relay_ep_t *sub, uint32_t ssrc)
{
    const spk_relay_consult_t *c = sub->consult;
    for (size_t i = 0; c != NULL && i < c->n; i++) {
        spk_relay_ep_t *p = c->eps[i];
        if (p->sim.d.n_rids > 0 && p->sim.d.ssrc == ssrc && spk_relay_media_link(sub, p)) {
            return p;
        }
    }
    return NULL;
}

bool spk_relay_sim_owns(const spk_relay_ep_t *sub, uint32_t ssrc)
{
    return output_pub(sub, ssrc) != NULL;
}

/* Resends output packet out_seq to sub from the layer's buffer, rewritten as sub got it. */
static bool resend_one(spk_relay_ep_t *sub, spk_relay_ep_t *pub, const spk_relay_sim_sub_t *x,
                       uint16_t out_seq, uint64_t now_ns)
{
    uint16_t seq;
    const spk_sim_map_t *m = spk_sim_out_lookup(&x->out, out_seq, &seq);
    spk_relay_pstream_t *s = m != NULL ? layer_stream(pub, m->layer) : NULL;
    if (s == NULL || s->store.arena == NULL || !s->have_ext) {
        return true; /* not forwarded under a mapping still known: nothing to do */
    }
    if (m != &x->out.hist[0] && x->out.layer >= 0) {
        /* From before the last switch, whose key frame went out since: the decoder starts
         * again from that, and the resend would only take room from it on the link (a switch
         * down comes when the link is short). */
        return true;
    }
    int64_t ext = s->last_ext + (int16_t)(uint16_t)(seq - (uint16_t)s->last_ext);
    if (!spk_relay_gate_allows(sub, pub, s, ext)) {
        return true; /* from its lobby period: never */
    }
    const uint8_t *pkt;
    size_t len;
    if (spk_rtx_get(&s->store, seq, now_ns / 1000000u, 0, &pkt, &len) != 0) {
        return false;
    }
    spk_rtp_view_t v;
    spk_vp8_desc_t d;
    uint8_t *buf = sub->w->tx; /* free here: the packet path is done with it */
    if (len > SPK_RELAY_PKT_MAX || spk_rtp_parse(&v, pkt, len, NULL, 0) != 0 ||
        spk_vp8_desc_parse(&d, pkt + v.payload_off, v.payload_len) != 0) {
        return true;
    }
    memcpy(buf, pkt, len);
    spk_sim_rewrite(buf, v.payload_off, &d, m, pub->sim.d.ssrc);
    spk_relay_rtcp_resend(sub, pub->sim.d.rtx_ssrc, pub->sim.d.rtx_pt, buf, len);
    return true;
}

/* Whether out_seq is asked for the first time (newer than any asked before). */
static bool first_ask(spk_relay_sim_sub_t *x, uint16_t out_seq)
{
    if (x->nack_any && (int16_t)(uint16_t)(out_seq - x->nack_hi) <= 0) {
        return false;
    }
    x->nack_any = true;
    x->nack_hi = out_seq;
    return true;
}

bool spk_relay_sim_nack(spk_relay_ep_t *sub, const spk_rtcp_fb_t *fb, uint64_t now_ns, bool *down)
{
    *down = false;
    spk_relay_ep_t *pub = output_pub(sub, fb->media_ssrc);
    if (pub == NULL) {
        return false;
    }
    spk_relay_sim_sub_t *x = sub_find(sub, pub->id);
    spk_rtcp_nack_iter_t it;
    if (x == NULL || spk_rtcp_nack_iter_init(&it, fb, NULL, 0) != 0) {
        return true;
    }
    uint16_t out_seq;
    uint32_t fresh = 0;
    for (size_t count = 0; count < NACK_MAX_SEQS && spk_rtcp_nack_next(&it, &out_seq); count++) {
        sub->st.nack_received++;
        fresh += first_ask(x, out_seq) ? 1u : 0u;
        if (!resend_one(sub, pub, x, out_seq, now_ns)) {
            /* Not in the buffer: the relay's own NACKs of the layer's gaps ask the publisher,
             * and the subscriber asks again. */
            sub->st.dropped_other++;
        }
    }
    int before = sub->sim_sel.want;
    uint32_t sent = sub->sim_sel.sent, asked = sub->sim_sel.nacked + fresh;
    int want = spk_sim_select_nacks(&sub->sim_sel, rule_of(sub), now_ns / 1000000u, fresh);
    if (want != before) {
        *down = true;
        spk_info(sub->id, "relay: simulcast wants layer %d (was %d; %u of %u packets asked again)",
                 want, before, asked, sent);
    }
    return true;
}

bool spk_relay_sim_keyframe(spk_relay_ep_t *sub, uint32_t ssrc, uint64_t now_ns)
{
    spk_relay_ep_t *pub = output_pub(sub, ssrc);
    if (pub == NULL) {
        return false;
    }
    spk_relay_sim_sub_t *x = sub_find(sub, pub->id);
    int layer = x == NULL ? -1 : (x->out.layer >= 0 ? x->out.layer : x->out.target);
    spk_relay_pstream_t *s = layer >= 0 ? layer_stream(pub, layer) : NULL;
    if (s != NULL) {
        pub->st.pli_forwarded++;
        spk_relay_rtcp_keyframe(pub, s, now_ns);
    }
    return true;
}

/* The highest layer any simulcast publisher sub receives sends now (-1: none). */
static int top_of_all(const spk_relay_ep_t *sub, uint64_t now_ms)
{
    int top = -1;
    const spk_relay_consult_t *c = sub->consult;
    for (size_t i = 0; c != NULL && i < c->n; i++) {
        const spk_relay_ep_t *p = c->eps[i];
        if (p->sim.d.n_rids > 0 && spk_relay_media_link(sub, p)) {
            int t = top_live(p, now_ms);
            top = t > top ? t : top;
        }
    }
    return top;
}

void spk_relay_sim_init_sub(spk_relay_ep_t *sub, uint64_t now_ns)
{
    spk_sim_select_init(&sub->sim_sel, rule_of(sub), SPK_SIM_MAX_LAYERS - 1, now_ns / 1000000u);
}

int spk_relay_sim_report(spk_relay_ep_t *sub, int window_loss, uint64_t now_ns, bool *changed)
{
    *changed = false;
    uint64_t now_ms = now_ns / 1000000u;
    int top = top_of_all(sub, now_ms);
    if (top < 0) {
        return -1; /* no layer flows: nothing to choose, and the loss says nothing */
    }
    int before = sub->sim_sel.want;
    int want = spk_sim_select_report(&sub->sim_sel, rule_of(sub), now_ms, window_loss, top);
    if (want != before) {
        *changed = want < before; /* a step down: the next window must not span it */
        spk_info(sub->id, "relay: simulcast wants layer %d (was %d; loss %d /256)", want, before,
                 window_loss);
    }
    /* Below the lowest layer comes the audio-only fallback, once the lowest layer has had its
     * grace time: the loss right after a step down is the higher layer's. */
    bool settled = now_ms - sub->sim_sel.changed_at >= rule_of(sub)->grace_ms + SETTLE_MS;
    return want == 0 && settled ? window_loss : -1;
}

bool spk_relay_sim_sr_offset(const spk_relay_ep_t *sub, const spk_relay_ep_t *pub, int layer,
                             uint32_t *ts_off)
{
    for (size_t i = 0; i < SPK_RELAY_SIM_SUBS; i++) {
        const spk_relay_sim_sub_t *x = &sub->sim_subs[i];
        if (x->pub == pub->id && x->out.layer == layer && layer >= 0) {
            *ts_off = x->out.hist[0].ts_off;
            return true;
        }
    }
    return false;
}

void spk_relay_sim_resync_sub(spk_relay_ep_t *sub)
{
    /* A try up waits a full wait from here: nothing of the time before says the link is clean. */
    sub->sim_sel.clean_from = spk_mono_ns() / 1000000u;
    for (size_t i = 0; i < SPK_RELAY_SIM_SUBS; i++) {
        if (sub->sim_subs[i].pub != 0) {
            spk_sim_out_resync(&sub->sim_subs[i].out);
            sub->sim_subs[i].asked_ms = 0;
        }
    }
}

void spk_relay_sim_restart_pub(spk_relay_ep_t *pub)
{
    spk_relay_consult_t *c = pub->consult;
    for (size_t i = 0; c != NULL && i < c->n; i++) {
        spk_relay_sim_sub_t *x = sub_find(c->eps[i], pub->id);
        if (x != NULL) {
            spk_sim_out_resync(&x->out);
            x->asked_ms = 0;
        }
    }
}
