/* spreekload: the media side of a participant. A publish peer (DTLS client: the relay answers
 * a=setup:passive) sends synthetic RTP paced at the run's rate, each payload carrying the
 * consult, the participant, a 64-bit sequence number and the send time (monotonic ns). A
 * subscribe peer answers the relay's offers with a=setup:passive (so it is the DTLS server)
 * and accounts every packet per publisher: sequence numbers in a bitmap (loss, duplicates) and
 * receive time minus send time (latency through the relay, one host clock). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "benchutil.h"
#include "load.h"
#include "spk/error.h"
#include "spk/rtp.h"
#include "spk/util.h"

#define PAYLOAD_MAGIC LOAD_PAYLOAD_MAGIC
#define HDR_LEN 12
#define INFO_LEN 24 /* magic 4, consult 2, participant 2, seq 8, send time 8 */
#define PT_VP8 96
#define BURST_MAX 256 /* packets per publisher per pump, to bound a catch-up burst */

/* ---- the uv loop as a GLib source ---- */

typedef struct {
    GSource src;
    uv_loop_t *loop;
    gpointer tag;
    gint64 ready_us; /* uv's next timer, GLib monotonic time; -1 none */
} uv_source_t;

static gboolean uvs_prepare(GSource *s, gint *timeout)
{
    uv_source_t *u = (uv_source_t *)s;
    int t = uv_backend_timeout(u->loop);
    *timeout = t;
    u->ready_us = t < 0 ? -1 : g_source_get_time(s) + (gint64)t * 1000;
    return t == 0;
}

static gboolean uvs_check(GSource *s)
{
    uv_source_t *u = (uv_source_t *)s;
    if (g_source_query_unix_fd(s, u->tag) & G_IO_IN) {
        return TRUE;
    }
    return u->ready_us >= 0 && g_source_get_time(s) >= u->ready_us;
}

static gboolean uvs_dispatch(GSource *s, GSourceFunc cb, gpointer user)
{
    uv_source_t *u = (uv_source_t *)s;
    uv_run(u->loop, UV_RUN_NOWAIT);
    return G_SOURCE_CONTINUE;
}

static GSourceFuncs g_uv_funcs = {uvs_prepare, uvs_check, uvs_dispatch, NULL, NULL, NULL};

GSource *load_uv_source_new(uv_loop_t *loop)
{
    GSource *s = g_source_new(&g_uv_funcs, sizeof(uv_source_t));
    uv_source_t *u = (uv_source_t *)s;
    u->loop = loop;
    u->tag = g_source_add_unix_fd(s, uv_backend_fd(loop), G_IO_IN);
    return s;
}

/* ---- receiving ---- */

static void pair_mark(load_pair_t *pr, uint64_t seq)
{
    if (seq >= pr->cap_bits) {
        size_t cap = pr->cap_bits ? pr->cap_bits : 8192;
        while (cap <= seq) {
            cap *= 2;
        }
        uint8_t *b = realloc(pr->bits, cap / 8);
        if (!b) {
            return;
        }
        memset(b + pr->cap_bits / 8, 0, (cap - pr->cap_bits) / 8);
        pr->bits = b;
        pr->cap_bits = cap;
    }
    uint8_t bit = (uint8_t)(1u << (seq & 7));
    if (pr->bits[seq / 8] & bit) {
        pr->dups++;
        return;
    }
    pr->bits[seq / 8] |= bit;
    pr->received++;
    pr->any = true;
}

static void on_media(spk_peer_t *peer, const uint8_t *pkt, size_t len, bool rtcp, void *user)
{
    load_part_t *p = user;
    load_t *L = p->L;
    if (rtcp) {
        return;
    }
    if (load_e2ee_is_tap(p)) {
        if (len > HDR_LEN) {
            load_e2ee_tap(p, pkt + HDR_LEN, len - HDR_LEN);
        }
        return;
    }
    uint8_t clear[1500];
    if (L->e2ee && len > HDR_LEN) {
        /* the RTP header stays as it came; the payload is the SFrame frame */
        size_t n = load_e2ee_open(p, pkt + HDR_LEN, len - HDR_LEN, clear + HDR_LEN,
                                  sizeof(clear) - HDR_LEN);
        if (n == 0) {
            return;
        }
        memcpy(clear, pkt, HDR_LEN);
        pkt = clear;
        len = HDR_LEN + n;
    }
    if (len < HDR_LEN + INFO_LEN || memcmp(pkt + HDR_LEN, PAYLOAD_MAGIC, 4) != 0) {
        L->bad_payload++;
        return;
    }
    uint16_t ci, pi;
    uint64_t seq, sent;
    memcpy(&ci, pkt + HDR_LEN + 4, 2);
    memcpy(&pi, pkt + HDR_LEN + 6, 2);
    memcpy(&seq, pkt + HDR_LEN + 8, 8);
    memcpy(&sent, pkt + HDR_LEN + 16, 8);
    if (ci == p->cons->idx && pi == p->idx && L->step >= 0) {
        L->steps[L->step].echo_rx++; /* its own media, routed back to it */
    }
    if (ci != p->cons->idx || pi >= L->k || pi == p->idx) {
        L->foreign_rx++; /* not from another participant of this consult */
        return;
    }
    uint64_t now = spk_mono_ns();
    if (p->t_media_ns == 0) {
        p->t_media_ns = now;
    }
    pair_mark(&p->pairs[pi], seq);
    p->pairs[pi].rx_ssrc =
        (uint32_t)pkt[8] << 24 | (uint32_t)pkt[9] << 16 | (uint32_t)pkt[10] << 8 | pkt[11];
    p->pairs[pi].seq_off = (uint16_t)((uint16_t)(pkt[2] << 8 | pkt[3]) - (uint16_t)seq);
    const load_part_t *src = &p->cons->parts[pi];
    for (int k = L->step; k >= 0; k--) {
        if (seq >= src->s0[k] && (src->s1[k] == 0 || seq < src->s1[k])) {
            spk_bench_samples_add(&L->steps[k].lat, now > sent ? (now - sent) / 1000 : 0);
            break;
        }
    }
}

/* ---- SDP ---- */

static void fp_from_str(const char *s, spk_sdp_fingerprint_t *fp)
{
    char hex[2 * SPK_SDP_MAX_FINGERPRINT + 1];
    size_t n = 0;
    for (; *s && n + 1 < sizeof(hex); s++) {
        if (*s != ':') {
            hex[n++] = *s;
        }
    }
    memset(fp, 0, sizeof(*fp));
    fp->hash = SPK_SDP_HASH_SHA256;
    long len = spk_hex_decode(fp->value, sizeof(fp->value), hex, n);
    fp->len = len > 0 ? (uint8_t)len : 0;
}

static void local_of(const spk_peer_t *peer, spk_sdp_local_t *l, uint64_t session)
{
    memset(l, 0, sizeof(*l));
    l->ice_ufrag = spk_peer_ufrag(peer);
    l->ice_pwd = spk_peer_pwd(peer);
    fp_from_str(spk_peer_fingerprint(peer), &l->fingerprint);
    l->ice_trickle = true;
    l->session_id = session;
    l->session_version = 1;
}

static int build_offer(load_part_t *p, char *out, size_t cap)
{
    spk_sdp_t *sdp = p->L->sdp_a;
    spk_sdp_local_t l;
    local_of(p->pub.peer, &l, (uint64_t)p->gidx + 1);
    spk_sdp_codec_t vp8;
    memset(&vp8, 0, sizeof(vp8));
    vp8.pt = PT_VP8;
    vp8.codec = SPK_CODEC_VP8;
    snprintf(vp8.name, sizeof(vp8.name), "VP8");
    vp8.clock_rate = 90000;
    vp8.apt = -1;
    vp8.packetization_mode = -1;
    int rc = spk_sdp_offer_init(sdp, &l);
    spk_sdp_media_t *m = rc == 0 ? spk_sdp_offer_add_media(sdp, &l, SPK_SDP_KIND_VIDEO, "0",
                                                           SPK_SDP_SENDONLY, &vp8, 1)
                                 : NULL;
    char stream[32];
    snprintf(stream, sizeof(stream), "load-%d", p->gidx);
    if (!m || spk_sdp_media_add_stream(m, p->ssrc, 0, stream, stream, "video") != 0) {
        return SPK_EINVAL;
    }
    int n = spk_sdp_write(sdp, out, cap);
    return n < 0 ? n : 0;
}

/* Remote ICE credentials, fingerprint and candidates of the first accepted section. */
static int take_remote(load_pc_t *pc, const spk_sdp_t *sdp)
{
    const spk_sdp_media_t *m = NULL;
    for (int i = 0; i < sdp->n_media && !m; i++) {
        if (sdp->media[i].port != 0) {
            m = &sdp->media[i];
        }
    }
    if (!m) {
        return SPK_EDECODE;
    }
    if (!pc->have_remote) {
        const spk_sdp_ice_t *ice = spk_sdp_media_ice(sdp, m);
        const spk_sdp_fingerprint_t *f = spk_sdp_media_fingerprint(sdp, m);
        char fp[2 * SPK_SDP_MAX_FINGERPRINT + 1]; /* hex without colons: the peer takes both */
        spk_hex_encode(fp, f->value, f->len);
        int rc = spk_peer_set_remote(pc->peer, ice->ufrag, ice->pwd, fp);
        if (rc != 0) {
            return rc;
        }
        pc->have_remote = true;
    }
    for (int i = 0; i < m->n_candidates; i++) {
        char line[SPK_PEER_CANDIDATE_MAX];
        if (spk_sdp_candidate_format(&m->candidates[i], line, sizeof(line)) > 0) {
            spk_peer_add_remote_candidate(pc->peer, line);
        }
    }
    return 0;
}

static int parse(load_t *L, const char *text, spk_sdp_t *out)
{
    char why[128] = "";
    int rc = text ? spk_sdp_parse(out, text, strlen(text), why, sizeof(why)) : SPK_EINVAL;
    if (rc != 0) {
        fprintf(stderr, "spreekload: SDP from the server does not parse: %s\n", why);
        L->media_failed++;
    }
    return rc;
}

/* ---- connections ---- */

static int peer_new(load_part_t *p, bool dtls_server, spk_peer_t **out)
{
    spk_peer_config_t cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.ctx = p->L->ctx;
    cfg.address = "127.0.0.1";
    cfg.dtls_server = dtls_server;
    cfg.ice_controlled = dtls_server; /* the subscribe connection answers the relay's offer */
    cfg.media_cb = dtls_server ? on_media : NULL;
    cfg.user = p;
    cfg.rcvbuf_bytes = p->L->rcvbuf;
    return spk_peer_new(&cfg, out);
}

int load_media_start(load_part_t *p)
{
    load_t *L = p->L;
    RAND_bytes((uint8_t *)&p->ssrc, sizeof(p->ssrc));
    p->ssrc |= 1;
    int rc = peer_new(p, false, &p->pub.peer);
    if (rc == 0) {
        rc = peer_new(p, true, &p->sub.peer);
    }
    if (rc == 0) {
        rc = build_offer(p, L->sdp_text, SPK_SDP_MAX_SIZE);
    }
    if (rc != 0) {
        fprintf(stderr, "spreekload: participant %d: media setup: %s\n", p->gidx, spk_strerror(rc));
        return rc;
    }
    p->media_started = true;
    load_send_req(p, REQ_PUBLISH,
                  json_pack("{s:s, s:s, s:s, s:b}", "type", "media.publish", "consult", p->cons->id,
                            "sdp", L->sdp_text, "e2ee", L->e2ee || L->e2ee_tap));
    return 0;
}

void load_media_on_answer(load_part_t *p, const char *text)
{
    if (!p->media_started || parse(p->L, text, p->L->sdp_a) != 0) {
        return;
    }
    if (take_remote(&p->pub, p->L->sdp_a) != 0) {
        p->L->media_failed++;
        return;
    }
    p->pub.trickle = true;
    load_media_trickle(p);
}

void load_media_on_offer(load_part_t *p, const char *text, int64_t version)
{
    load_t *L = p->L;
    if (!p->media_started || parse(L, text, L->sdp_a) != 0) {
        return;
    }
    spk_sdp_local_t l;
    local_of(p->sub.peer, &l, (uint64_t)p->gidx + 1001);
    char why[128] = "";
    int rc = take_remote(&p->sub, L->sdp_a);
    if (rc == 0) {
        rc = spk_sdp_answer_init(L->sdp_b, L->sdp_a, &l, why, sizeof(why));
    }
    int n = rc == 0 ? spk_sdp_write(L->sdp_b, L->sdp_text, SPK_SDP_MAX_SIZE) : rc;
    if (n < 0) {
        fprintf(stderr, "spreekload: participant %d: cannot answer: %s %s\n", p->gidx,
                spk_strerror(n), why);
        L->media_failed++;
        return;
    }
    p->offer_version = version;
    load_send_req(p, REQ_ANSWER,
                  json_pack("{s:s, s:s, s:s, s:I}", "type", "media.answer", "consult", p->cons->id,
                            "sdp", L->sdp_text, "version", (json_int_t)version));
}

void load_media_on_candidate(load_part_t *p, const char *pc, const char *cand)
{
    if (!p->media_started || !pc) {
        return;
    }
    spk_peer_t *peer = strcmp(pc, "publish") == 0 ? p->pub.peer : p->sub.peer;
    spk_peer_add_remote_candidate(peer, cand);
}

static void trickle_pc(load_part_t *p, load_pc_t *pc, const char *name)
{
    if (!pc->trickle || pc->eoc_sent || p->ended) {
        return;
    }
    const char *lines[SPK_PEER_MAX_CANDIDATES];
    bool done = false;
    size_t n = spk_peer_local_candidates(pc->peer, lines, SPK_PEER_MAX_CANDIDATES, &done);
    for (; pc->n_sent < n; pc->n_sent++) {
        load_send_req(p, REQ_CANDIDATE,
                      json_pack("{s:s, s:s, s:s, s:s}", "type", "media.candidate", "consult",
                                p->cons->id, "pc", name, "candidate", lines[pc->n_sent]));
    }
    if (done) {
        pc->eoc_sent = true;
        load_send_req(p, REQ_CANDIDATE,
                      json_pack("{s:s, s:s, s:s, s:s}", "type", "media.candidate", "consult",
                                p->cons->id, "pc", name, "candidate", ""));
    }
}

void load_media_trickle(load_part_t *p)
{
    if (p->media_started) {
        trickle_pc(p, &p->pub, "publish");
        trickle_pc(p, &p->sub, "subscribe");
    }
}

/* ---- sending ---- */

size_t load_media_build(load_part_t *p, uint64_t seq, uint64_t now, uint8_t *pkt)
{
    pkt[0] = 0x80;
    spk_rtp_set_pt(pkt, PT_VP8);
    spk_rtp_set_seq(pkt, (uint16_t)seq);
    spk_rtp_set_ts(pkt, (uint32_t)(seq * 3000));
    spk_rtp_set_ssrc(pkt, p->ssrc);
    memcpy(pkt + HDR_LEN, PAYLOAD_MAGIC, 4);
    uint16_t ci = (uint16_t)p->cons->idx, pi = (uint16_t)p->idx;
    memcpy(pkt + HDR_LEN + 4, &ci, 2);
    memcpy(pkt + HDR_LEN + 6, &pi, 2);
    memcpy(pkt + HDR_LEN + 8, &seq, 8);
    memcpy(pkt + HDR_LEN + 16, &now, 8);
    memset(pkt + HDR_LEN + INFO_LEN, 0, p->L->size - HDR_LEN - INFO_LEN);
    return p->L->size;
}

bool load_media_check(const load_part_t *p, uint64_t seq, const uint8_t *pkt, size_t len)
{
    uint16_t ci, pi;
    uint64_t got;
    if (len != p->L->size || memcmp(pkt + HDR_LEN, PAYLOAD_MAGIC, 4) != 0) {
        return false;
    }
    memcpy(&ci, pkt + HDR_LEN + 4, 2);
    memcpy(&pi, pkt + HDR_LEN + 6, 2);
    memcpy(&got, pkt + HDR_LEN + 8, 8);
    return ci == p->cons->idx && pi == p->idx && got == seq &&
           ((uint16_t)(pkt[2] << 8 | pkt[3])) == (uint16_t)seq;
}

static void send_one(load_part_t *p, uint8_t *pkt, uint64_t now)
{
    load_t *L = p->L;
    size_t len = load_media_build(p, p->seq, now, pkt);
    if (L->e2ee) {
        /* the same information plus a known plaintext, sealed into an SFrame frame */
        uint8_t pt[1500];
        size_t pt_len = L->size - HDR_LEN - SPK_SFRAME_MAX_OVERHEAD;
        memcpy(pt, pkt + HDR_LEN, INFO_LEN);
        for (size_t i = INFO_LEN; i < pt_len; i++) {
            pt[i] = (uint8_t)LOAD_CANARY[(i - INFO_LEN) % (sizeof(LOAD_CANARY) - 1)];
        }
        size_t n = load_e2ee_seal(p, pt, pt_len, pkt + HDR_LEN, 1500 - HDR_LEN);
        if (n == 0) {
            return;
        }
        len = HDR_LEN + n;
    }
    if (spk_peer_send_rtp(p->pub.peer, pkt, len) != 0) {
        L->send_errors++;
    }
    p->seq++;
}

/* Receiver report + SDES on the subscribe connection once a second, as browsers do: the relay
 * fails an endpoint that sends it nothing (consent_timeout_ms). */
void load_media_send_rr(load_part_t *p, uint64_t now)
{
    if (now - p->last_rr_ns < 1000000000u || !spk_peer_connected(p->sub.peer)) {
        return;
    }
    p->last_rr_ns = now;
    uint8_t rtcp[128];
    char cname[32];
    snprintf(cname, sizeof(cname), "load-%d", p->gidx);
    int a = spk_rtcp_build_rr(rtcp, sizeof(rtcp), p->ssrc + 1, NULL, 0);
    int b = a > 0
                ? spk_rtcp_build_sdes_cname(rtcp + a, sizeof(rtcp) - (size_t)a, p->ssrc + 1, cname)
                : -1;
    if (b > 0 && spk_peer_send_rtcp(p->sub.peer, rtcp, (size_t)(a + b)) != 0) {
        p->L->send_errors++;
    }
}

void load_media_pump(load_t *L, uint64_t now)
{
    static uint8_t pkt[1500];
    for (int c = 0; c < L->consults; c++) {
        for (int i = 0; i < L->k; i++) {
            load_part_t *p = &L->cs[c].parts[i];
            if (!p->media_started || p->ended) {
                continue;
            }
            load_media_trickle(p);
            load_media_send_rr(p, now);
            if (!L->sending || !spk_peer_connected(p->pub.peer) || !load_e2ee_sends(p)) {
                continue;
            }
            if (p->send_base_ns == 0) {
                p->send_base_ns = now;
                p->send_base_seq = p->seq;
            }
            double rate = L->step >= 0 ? L->steps[L->step].pps : L->pps;
            uint64_t due =
                p->send_base_seq + (uint64_t)((double)(now - p->send_base_ns) * rate / 1e9);
            for (int n = 0; p->seq < due && n < BURST_MAX; n++) {
                send_one(p, pkt, spk_mono_ns());
            }
        }
    }
}

int load_media_pairs_ready(load_t *L, int *total)
{
    int ready = 0, all = 0;
    for (int c = 0; c < L->consults; c++) {
        for (int i = 0; i < L->k; i++) {
            for (int j = 0; j < L->k; j++) {
                /* a tap (--e2ee-tap) neither sends nor can read what it gets */
                if (i != j && load_e2ee_sends(&L->cs[c].parts[j]) &&
                    load_e2ee_sends(&L->cs[c].parts[i])) {
                    all++;
                    ready += L->cs[c].parts[i].pairs[j].any ? 1 : 0;
                }
            }
        }
    }
    *total = all;
    return ready;
}

void load_media_free(load_part_t *p)
{
    load_e2ee_free(p);
    spk_peer_free(p->pub.peer);
    spk_peer_free(p->sub.peer);
    p->pub.peer = p->sub.peer = NULL;
    for (int i = 0; i < LOAD_MAX_K; i++) {
        free(p->pairs[i].bits);
        p->pairs[i].bits = NULL;
    }
}
