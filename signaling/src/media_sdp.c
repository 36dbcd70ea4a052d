/* SDP for the two media connections: the relay's answer to a publish offer, and the relay's
 * offers on the subscribe connection (one sendonly m-section per forwarded stream, keeping the
 * publisher's payload types and SSRCs so packets are forwarded without rewriting). */
#include "media_int.h"

#include <stdlib.h>
#include <string.h>

#include "spk/error.h"
#include "spk/util.h"

void sig_fingerprint_to_str(const spk_sdp_fingerprint_t *fp, char *out, size_t cap)
{
    static const char hx[] = "0123456789ABCDEF";
    size_t o = 0;
    for (uint8_t i = 0; i < fp->len && o + 3 < cap; i++) {
        if (i > 0) {
            out[o++] = ':';
        }
        out[o++] = hx[fp->value[i] >> 4];
        out[o++] = hx[fp->value[i] & 15];
    }
    out[o] = '\0';
}

static void fingerprint_from_str(const char *s, spk_sdp_fingerprint_t *fp)
{
    memset(fp, 0, sizeof(*fp));
    fp->hash = SPK_SDP_HASH_SHA256;
    char hex[2 * SPK_SDP_MAX_FINGERPRINT + 1];
    size_t n = 0;
    for (; *s != '\0' && n + 1 < sizeof(hex); s++) {
        if (*s != ':') {
            hex[n++] = *s;
        }
    }
    long len = spk_hex_decode(fp->value, sizeof(fp->value), hex, n);
    fp->len = len > 0 ? (uint8_t)len : 0;
}

/* Header extensions the relay forwards: offered to subscribers under its own ids
 * (spk_sdp_offer_ext_id), the publisher's ids rewritten to them on the packet path
 * (spk_relay_set_ext_map). Video orientation, so that a phone held upright is shown upright
 * (with it negotiated the sender signals the rotation instead of rotating the picture); audio
 * level (who is speaking); abs-send-time, the send time a receiver's bandwidth estimate uses.
 * Not forwarded: mid (the subscriber's mids differ), transport-wide sequence numbers (they
 * number one transport's packets, the publisher's), and everything else. */
#define SUB_EXTS                                                                                   \
    (SPK_SDP_EXT_BIT(SPK_EXT_ABS_SEND_TIME) | SPK_SDP_EXT_BIT(SPK_EXT_AUDIO_LEVEL) |               \
     SPK_SDP_EXT_BIT(SPK_EXT_VIDEO_ORIENTATION))

/* Transport-wide parameters of one relay endpoint. Publishers get REMB (the relay tells them
 * the bandwidth it wants to receive) plus NACK and PLI/FIR, and are asked for the extensions
 * the relay forwards (plus mid); subscribers are offered those under the relay's ids. */
static void local_of(const sig_ep_t *ep, bool publish, spk_sdp_local_t *l)
{
    memset(l, 0, sizeof(*l));
    l->ice_ufrag = ep->local.ufrag;
    l->ice_pwd = ep->local.pwd;
    fingerprint_from_str(ep->local.fingerprint, &l->fingerprint);
    l->ice_lite = ep->local.ice_lite;
    l->ice_trickle = true;
    l->fb_audio = 0;
    l->fb_video = SPK_SDP_FB_NACK | SPK_SDP_FB_NACK_PLI | SPK_SDP_FB_CCM_FIR;
    l->exts = SUB_EXTS;
    if (publish) {
        l->fb_video |= SPK_SDP_FB_GOOG_REMB;
        l->exts |= SPK_SDP_EXT_BIT(SPK_EXT_MID) | SPK_SDP_EXT_BIT(SPK_EXT_RID) |
                   SPK_SDP_EXT_BIT(SPK_EXT_RRID);
    }
    l->session_id = ep->id;
    l->session_version = 1;
}

/* The primary and rtx SSRCs a section sends: the FID group when there is one. */
static void section_ssrcs(const spk_sdp_media_t *mm, uint32_t *ssrc, uint32_t *rtx)
{
    *ssrc = mm->n_ssrcs > 0 ? mm->ssrcs[0].ssrc : 0;
    *rtx = 0;
    for (int g = 0; g < mm->n_ssrc_groups; g++) {
        const spk_sdp_ssrc_group_t *grp = &mm->ssrc_groups[g];
        if (strcmp(grp->semantics, "FID") == 0 && grp->n >= 2) {
            *ssrc = grp->ssrcs[0];
            *rtx = grp->ssrcs[1];
            return;
        }
    }
}

/* A simulcast section (docs/protocol.md 5.7, Simulcast): its layers in the answer's
 * a=simulcast order (lowest first), the rid extension ids, and the SSRCs the relay forwards it
 * under, derived from the publish endpoint and the section so that they stay the same across
 * renegotiations. */
static void learn_simulcast(sig_track_t *t, const spk_sdp_media_t *o, const spk_sdp_media_t *a,
                            uint64_t ep_id, int index)
{
    t->n_rids = 0;
    for (int k = 0; k < a->n_sim && k < SPK_RELAY_MAX_RIDS; k++) {
        snprintf(t->rids[t->n_rids++], SPK_RELAY_RID_MAX, "%s", a->sim[k]);
    }
    const spk_sdp_extmap_t *rid = spk_sdp_find_extmap(o, SPK_EXT_RID);
    const spk_sdp_extmap_t *rrid = spk_sdp_find_extmap(o, SPK_EXT_RRID);
    t->rid_ext = rid != NULL ? rid->id : 0;
    t->rrid_ext = rrid != NULL ? rrid->id : 0;
    uint64_t h = (ep_id + (uint64_t)index + 1) * 0x9E3779B97F4A7C15ull;
    h ^= h >> 29;
    h *= 0xBF58476D1CE4E5B9ull;
    h ^= h >> 32;
    t->ssrc = (uint32_t)h | 1u;
    t->rtx_ssrc = (uint32_t)(h >> 32) & ~1u;
    if (t->rtx_ssrc == 0) {
        t->rtx_ssrc = 2;
    }
}

/* Records the streams the publisher sends, as negotiated. */
static void learn_tracks(sig_media_t *m, const spk_sdp_t *offer, const spk_sdp_t *answer)
{
    m->n_tracks = 0;
    for (int i = 0; i < answer->n_media && m->n_tracks < SIG_MEDIA_MAX_TRACKS; i++) {
        const spk_sdp_media_t *a = &answer->media[i];
        const spk_sdp_media_t *o = &offer->media[i];
        bool sends = o->dir == SPK_SDP_SENDONLY || o->dir == SPK_SDP_SENDRECV;
        if (a->port == 0 || !sends || a->n_codecs == 0 ||
            (a->kind != SPK_SDP_KIND_AUDIO && a->kind != SPK_SDP_KIND_VIDEO)) {
            continue;
        }
        sig_track_t *t = &m->tracks[m->n_tracks];
        memset(t, 0, sizeof(*t));
        t->kind = a->kind;
        t->codec = a->codecs[0];
        for (int k = 1; k < a->n_codecs; k++) {
            if (a->codecs[k].codec == SPK_CODEC_RTX && a->codecs[k].apt == t->codec.pt) {
                t->rtx = a->codecs[k];
            }
        }
        section_ssrcs(o, &t->ssrc, &t->rtx_ssrc);
        if (spk_sdp_answer_simulcast(a)) {
            learn_simulcast(t, o, a, m->pub.id, i);
        }
        if (t->ssrc == 0) {
            continue; /* no a=ssrc: nothing the relay could announce to subscribers */
        }
        if (t->rtx.pt == 0) {
            t->rtx_ssrc = 0;
        }
        snprintf(t->track, sizeof(t->track), "%s",
                 o->msid_track[0] ? o->msid_track
                                  : (a->kind == SPK_SDP_KIND_AUDIO ? "audio" : "video"));
        m->n_tracks++;
    }
}

int sig_media_answer(spk_sig_t *s, sig_media_t *m, const spk_sdp_t *offer, char *out, size_t cap,
                     char *why, size_t why_len)
{
    spk_sdp_t *answer = malloc(sizeof(*answer));
    if (answer == NULL) {
        return SPK_ENOMEM;
    }
    spk_sdp_local_t l;
    local_of(&m->pub, true, &l);
    int rc = spk_sdp_answer_init(answer, offer, &l, why, why_len);
    if (rc == 0) {
        learn_tracks(m, offer, answer);
        spk_sdp_ext_map(answer, SUB_EXTS, m->ext_map);
        int n = spk_sdp_write(answer, out, cap);
        rc = n < 0 ? n : 0;
    }
    /* The relay's candidates belong to the BUNDLE tag: the first accepted m-section. */
    for (int i = 0; rc == 0 && i < answer->n_media; i++) {
        if (answer->media[i].port != 0) {
            snprintf(m->pub.mid, sizeof(m->pub.mid), "%s", answer->media[i].mid);
            m->pub.mline = i;
            break;
        }
    }
    free(answer);
    return rc == SPK_EINVAL || rc == SPK_ENOTFOUND ? SPK_EDECODE : rc;
}

/* ---- subscribe offers ---- */

static bool slot_matches(const sig_slot_t *sl, const char *pid, const sig_track_t *t)
{
    return sl->active && strcmp(sl->participant, pid) == 0 && sl->track.ssrc == t->ssrc;
}

/* A slot for a new stream: an inactive one of the same kind that the client has seen inactive
 * and kept, else a rejected one (recycled with a new mid), else a new one. -1 when the
 * connection has SIG_MEDIA_MAX_SLOTS. */
static int slot_for(sig_media_t *m, spk_sdp_kind_t kind, const bool *wanted)
{
    for (int x = 0; x < m->n_slots; x++) {
        sig_slot_t *sl = &m->slots[x];
        if (!sl->active && !sl->rejected && sl->kind == kind && !wanted[x] &&
            m->answered >= sl->idle_from) {
            return x; /* same mid, new stream */
        }
    }
    int x = -1;
    for (int i = 0; i < m->n_slots && x < 0; i++) {
        if (m->slots[i].rejected && !wanted[i]) {
            x = i;
        }
    }
    if (x < 0 && m->n_slots < SIG_MEDIA_MAX_SLOTS) {
        x = m->n_slots++;
    }
    if (x >= 0) {
        sig_slot_t *sl = &m->slots[x];
        memset(sl, 0, sizeof(*sl));
        snprintf(sl->mid, sizeof(sl->mid), "%u", m->next_mid++);
        sl->kind = kind;
    }
    return x;
}

/* Gives stream tr of participant pid a slot of m (an existing one, else a new one) and marks it
 * wanted; sets *changed when it is new. */
static void want_track(sig_media_t *m, const char *pid, const sig_track_t *tr, bool *wanted,
                       bool *changed)
{
    int found = -1;
    for (int x = 0; x < m->n_slots && found < 0; x++) {
        if (slot_matches(&m->slots[x], pid, tr)) {
            found = x;
        }
    }
    if (found < 0) {
        found = slot_for(m, tr->kind, wanted);
        if (found >= 0) {
            sig_slot_t *sl = &m->slots[found];
            sl->active = true;
            snprintf(sl->participant, sizeof(sl->participant), "%s", pid);
            sl->track = *tr;
            *changed = true;
        }
    }
    if (found >= 0) {
        wanted[found] = true;
    } else {
        m->starved = true;
    }
}

/* Whether a connection here publishes as participant pid in c. */
static bool publishes_here(spk_sig_t *s, sig_consult_t *c, const char *pid)
{
    for (size_t i = 0; i < c->n_conns; i++) {
        sig_conn_t *conn = spk_map_get_u64(&s->conns, c->conns[i]);
        for (int k = 0; conn != NULL && k < conn->n_joined; k++) {
            const sig_join_t *j = &conn->joined[k];
            if (j->consult == c && j->media != NULL && j->media->pub.id != 0 &&
                strcmp(j->part->rec.id, pid) == 0) {
                return true;
            }
        }
    }
    return false;
}

/* The streams of publishers on other nodes (media_bus.c): admitted as this node sees them, not
 * the subscriber's own, and not a participant who publishes here now (newer). */
static void want_remote(spk_sig_t *s, sig_consult_t *c, const sig_conn_t *self, sig_media_t *m,
                        bool *wanted, bool *changed)
{
    const char *me = NULL;
    for (int k = 0; k < self->n_joined; k++) {
        if (self->joined[k].consult == c) {
            me = self->joined[k].part->rec.id;
        }
    }
    const char *pid;
    const sig_track_t *tracks;
    int n;
    for (size_t i = 0; (n = sig_media_remote_tracks(c, i, &pid, &tracks)) >= 0; i++) {
        const sig_part_t *p = sig_part_find(c, pid);
        if (p == NULL || p->rec.state != SPK_PART_ADMITTED ||
            (me != NULL && strcmp(me, pid) == 0) || publishes_here(s, c, pid)) {
            continue;
        }
        for (int t = 0; t < n; t++) {
            want_track(m, pid, &tracks[t], wanted, changed);
        }
    }
}

/* Marks every slot of `m` still wanted and gives new streams a slot; returns true when anything
 * changed. */
static bool sync_slots(spk_sig_t *s, sig_consult_t *c, sig_conn_t *self, sig_media_t *m)
{
    bool wanted[SIG_MEDIA_MAX_SLOTS] = {false};
    bool changed = false;
    m->starved = false;
    for (size_t i = 0; i < c->n_conns; i++) {
        sig_conn_t *conn = spk_map_get_u64(&s->conns, c->conns[i]);
        for (int k = 0; conn != NULL && conn != self && k < conn->n_joined; k++) {
            sig_join_t *j = &conn->joined[k];
            if (j->consult != c || j->media == NULL || j->media->pub.id == 0 ||
                j->part->rec.state != SPK_PART_ADMITTED) {
                continue;
            }
            for (int t = 0; t < j->media->n_tracks; t++) {
                want_track(m, j->part->rec.id, &j->media->tracks[t], wanted, &changed);
            }
        }
    }
    want_remote(s, c, self, m, wanted, &changed);
    for (int x = 0; x < m->n_slots; x++) {
        if (m->slots[x].active && !wanted[x]) {
            m->slots[x].active = false;
            m->slots[x].idle_from = m->version + 1; /* the offer this goes into */
            changed = true;
        }
    }
    return changed;
}

bool sig_media_answer_slots(sig_media_t *m, const spk_sdp_t *answer)
{
    bool any = false;
    for (int x = 0; x < m->n_slots && x < answer->n_media; x++) {
        if (answer->media[x].port == 0) {
            m->slots[x].rejected = true;
            m->slots[x].active = false;
        } else {
            any = true;
        }
    }
    return any;
}

/* Builds the subscribe offer from m's slots. Returns 1 when the slots changed, 0 when not,
 * or a negative SPK_E* code. *streams gets the mid -> participant list. */
int sig_media_offer(spk_sig_t *s, sig_consult_t *c, sig_conn_t *conn, sig_media_t *m,
                    json_t **streams, char *out, size_t cap)
{
    bool changed = sync_slots(s, c, conn, m);
    spk_sdp_t *offer = malloc(sizeof(*offer));
    json_t *list = json_array();
    if (offer == NULL || list == NULL) {
        free(offer);
        json_decref(list);
        return SPK_ENOMEM;
    }
    spk_sdp_local_t l;
    local_of(&m->sub, false, &l);
    l.session_version = (uint64_t)m->version + 1;
    int rc = spk_sdp_offer_init(offer, &l);
    for (int x = 0; rc == 0 && x < m->n_slots; x++) {
        sig_slot_t *sl = &m->slots[x];
        spk_sdp_codec_t codecs[2] = {sl->track.codec, sl->track.rtx};
        size_t n = sl->track.rtx.pt != 0 ? 2 : 1;
        spk_sdp_media_t *mm =
            spk_sdp_offer_add_media(offer, &l, sl->kind, sl->mid,
                                    sl->active ? SPK_SDP_SENDONLY : SPK_SDP_INACTIVE, codecs, n);
        if (mm == NULL) {
            rc = SPK_ETOOBIG;
            break;
        }
        if (sl->rejected) {
            mm->port = 0; /* stays rejected, outside the BUNDLE group */
            offer->n_bundle--;
        }
        if (!sl->active) {
            continue;
        }
        rc = spk_sdp_media_add_stream(mm, sl->track.ssrc, sl->track.rtx_ssrc, "spreekkamer",
                                      sl->participant, sl->track.track);
        json_array_append_new(list,
                              json_pack("{s:s, s:s, s:s, s:s}", "participant", sl->participant,
                                        "kind", sl->kind == SPK_SDP_KIND_AUDIO ? "audio" : "video",
                                        "mid", sl->mid, "stream", sl->participant));
    }
    if (rc == 0 && m->n_slots > 0) {
        int n = spk_sdp_write(offer, out, cap);
        rc = n < 0 ? n : 0;
    }
    free(offer);
    if (rc != 0) {
        json_decref(list);
        return rc;
    }
    *streams = list;
    return changed ? 1 : 0;
}
