/* The relay link (spk/relay_link.h): framing, handshake, tags and strict message codecs. */
#include "spk/relay_link.h"

#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include "spk/error.h"
#include "spk/digest.h"
#include "spk/util.h"

/* ---- byte writer / reader ---- */

typedef struct {
    uint8_t *p;
    size_t cap, n;
    bool over;
} wr_t;

static void put(wr_t *w, const void *b, size_t n)
{
    if (w->over || n > w->cap - w->n) {
        w->over = true;
        return;
    }
    memcpy(w->p + w->n, b, n);
    w->n += n;
}

static void put_u8(wr_t *w, uint8_t v)
{
    put(w, &v, 1);
}

static void put_u16(wr_t *w, uint16_t v)
{
    uint8_t b[2] = {(uint8_t)(v >> 8), (uint8_t)v};
    put(w, b, 2);
}

static void put_u32(wr_t *w, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    put(w, b, 4);
}

static void put_u64(wr_t *w, uint64_t v)
{
    put_u32(w, (uint32_t)(v >> 32));
    put_u32(w, (uint32_t)v);
}

/* A string field of capacity cap (NUL included); false when it does not fit. */
static bool put_str(wr_t *w, const char *s, size_t cap)
{
    size_t n = strnlen(s, cap);
    if (n >= cap) {
        return false;
    }
    put_u16(w, (uint16_t)n);
    put(w, s, n);
    return true;
}

typedef struct {
    const uint8_t *p;
    size_t len, off;
    bool bad;
} rd_t;

static const uint8_t *get(rd_t *r, size_t n)
{
    if (r->bad || n > r->len - r->off) {
        r->bad = true;
        return NULL;
    }
    const uint8_t *b = r->p + r->off;
    r->off += n;
    return b;
}

static uint8_t get_u8(rd_t *r)
{
    const uint8_t *b = get(r, 1);
    return b ? b[0] : 0;
}

static uint16_t get_u16(rd_t *r)
{
    const uint8_t *b = get(r, 2);
    return b ? (uint16_t)((b[0] << 8) | b[1]) : 0;
}

static uint32_t get_u32(rd_t *r)
{
    const uint8_t *b = get(r, 4);
    return b ? ((uint32_t)b[0] << 24) | ((uint32_t)b[1] << 16) | ((uint32_t)b[2] << 8) | b[3] : 0;
}

static uint64_t get_u64(rd_t *r)
{
    uint64_t hi = get_u32(r);
    return (hi << 32) | get_u32(r);
}

static bool get_bool(rd_t *r)
{
    uint8_t v = get_u8(r);
    if (v > 1) {
        r->bad = true;
    }
    return v == 1;
}

static void get_str(rd_t *r, char *out, size_t cap)
{
    size_t n = get_u16(r);
    const uint8_t *b = n < cap ? get(r, n) : NULL;
    if (b == NULL || memchr(b, '\0', n) != NULL) {
        r->bad = true;
        out[0] = '\0';
        return;
    }
    memcpy(out, b, n);
    out[n] = '\0';
}

static void get_bytes(rd_t *r, uint8_t *out, size_t n)
{
    const uint8_t *b = get(r, n);
    if (b != NULL) {
        memcpy(out, b, n);
    }
}

/* ---- keys and MACs ---- */

static int hmac3(const spk_link_t *l, const uint8_t *key, size_t key_len, const char *label,
                 const void *a, size_t alen, const void *b, size_t blen, uint8_t out[32])
{
    uint8_t buf[8 + SPK_LINK_WIRE_MAX + 64];
    size_t ll = strlen(label);
    if (ll + alen + blen > sizeof(buf)) {
        return SPK_EINVAL;
    }
    memcpy(buf, label, ll);
    if (alen) {
        memcpy(buf + ll, a, alen);
    }
    if (blen) {
        memcpy(buf + ll + alen, b, blen);
    }
    unsigned int md_len = 0;
    const uint8_t *k = key != NULL ? key : l->secret;
    size_t kl = key != NULL ? key_len : l->secret_len;
    uint8_t *rc = HMAC(EVP_sha256(), k, (int)kl, buf, ll + alen + blen, out, &md_len);
    spk_wipe(buf, sizeof(buf));
    return rc != NULL && md_len == 32 ? 0 : SPK_ECRYPTO;
}

/* HMAC-SHA256(secret, label || hello_hash || nonce_c) */
static int handshake_mac(const spk_link_t *l, const char *label, uint8_t out[32])
{
    return hmac3(l, NULL, 0, label, l->hello_hash, sizeof(l->hello_hash), l->nonce_c,
                 sizeof(l->nonce_c), out);
}

static int derive_keys(spk_link_t *l)
{
    uint8_t c2n[32], n2c[32];
    int rc = handshake_mac(l, "spreek-relay c2n", c2n);
    if (rc == 0) {
        rc = handshake_mac(l, "spreek-relay n2c", n2c);
    }
    if (rc == 0) {
        memcpy(l->key_tx, l->role == SPK_LINK_CONTROLLER ? c2n : n2c, 32);
        memcpy(l->key_rx, l->role == SPK_LINK_CONTROLLER ? n2c : c2n, 32);
        l->seq_tx = 0;
        l->seq_rx = 0;
        l->state = SPK_LINK_ST_OPEN;
    }
    spk_wipe(c2n, sizeof(c2n));
    spk_wipe(n2c, sizeof(n2c));
    return rc;
}

static int frame_tag(const spk_link_t *l, const uint8_t *key, uint64_t seq, const uint8_t *frame,
                     size_t n, uint8_t tag[SPK_LINK_TAG_LEN])
{
    uint8_t s[8];
    for (int i = 0; i < 8; i++) {
        s[i] = (uint8_t)(seq >> (56 - 8 * i));
    }
    uint8_t full[32];
    int rc = hmac3(l, key, 32, "", s, sizeof(s), frame, n, full);
    memcpy(tag, full, SPK_LINK_TAG_LEN);
    return rc;
}

int spk_link_init(spk_link_t *l, spk_link_role_t role, const void *secret, size_t secret_len,
                  const uint8_t nonce[SPK_LINK_NONCE_LEN])
{
    if (l == NULL || secret == NULL || nonce == NULL || secret_len < SPK_LINK_SECRET_MIN ||
        secret_len > SPK_LINK_SECRET_MAX ||
        (role != SPK_LINK_CONTROLLER && role != SPK_LINK_NODE)) {
        return SPK_EINVAL;
    }
    memset(l, 0, sizeof(*l));
    l->role = role;
    l->state = SPK_LINK_ST_HELLO;
    memcpy(l->secret, secret, secret_len);
    l->secret_len = secret_len;
    memcpy(l->nonce, nonce, SPK_LINK_NONCE_LEN);
    return 0;
}

void spk_link_wipe(spk_link_t *l)
{
    if (l != NULL) {
        spk_wipe(l, sizeof(*l));
        l->state = SPK_LINK_ST_BROKEN;
    }
}

/* ---- bodies ---- */

static const char *const g_profiles[] = {"", "AEAD_AES_128_GCM", "AES_CM_128_HMAC_SHA1_80"};

static uint8_t profile_index(const char *p)
{
    for (uint8_t i = 1; p != NULL && i < 3; i++) {
        if (strcmp(p, g_profiles[i]) == 0) {
            return i;
        }
    }
    return 0;
}

/* The counters of spk_relay_stats_t in the order of relay.h (the EVENT body). */
/* clang-format off */
#define STATS_FIELDS(X) \
    X(rtp_rx) \
    X(rtcp_rx) \
    X(bytes_rx) \
    X(rtp_tx) \
    X(rtcp_tx) \
    X(bytes_tx) \
    X(unprotect_errors) \
    X(dropped_lobby) \
    X(dropped_other) \
    X(path_ns) \
    X(worker_cpu_ns) \
    X(rtcp_rr_sent) \
    X(rtcp_remb_sent) \
    X(remb_bps) \
    X(pli_forwarded) \
    X(pli_generated) \
    X(pli_throttled) \
    X(nack_forwarded) \
    X(nack_sent) \
    X(nack_received) \
    X(rtx_sent) \
    X(rtcp_terminated) \
    X(rtx_buffer_bytes) \
    X(video_withheld) \
    X(video_off) \
    X(sim_switches) \
    X(dtls_released) \
    X(rx_direct) \
    X(stun_answered) \
    X(rx_yielded)
/* clang-format on */

static bool put_event(wr_t *w, const spk_relay_event_t *ev)
{
    put_u8(w, (uint8_t)ev->type);
    put_u64(w, ev->consult_id);
    put_u64(w, ev->endpoint_id);
    put_u32(w, (uint32_t)-ev->err);
    put_u8(w, (uint8_t)ev->ice_state);
    put_u8(w, profile_index(ev->srtp_profile));
    put_u8(w, ev->video_on ? 1 : 0);
    bool ok = put_str(w, ev->cand, sizeof(ev->cand)) && put_str(w, ev->reason, sizeof(ev->reason));
#define PUT_STAT(f) put_u64(w, ev->stats.f);
    STATS_FIELDS(PUT_STAT)
#undef PUT_STAT
    return ok && ev->type >= SPK_RELAY_EV_LOCAL_CANDIDATE && ev->type <= SPK_RELAY_EV_VIDEO &&
           ev->err <= 0 && ev->err > -1000 && (unsigned)ev->ice_state <= SPK_RELAY_ICE_FAILED;
}

static void get_event(rd_t *r, spk_relay_event_t *ev)
{
    uint8_t type = get_u8(r);
    ev->type = (spk_relay_event_type_t)type;
    ev->consult_id = get_u64(r);
    ev->endpoint_id = get_u64(r);
    uint32_t err = get_u32(r);
    ev->err = err < 1000 ? -(int)err : 0;
    uint8_t ice = get_u8(r);
    ev->ice_state = (spk_relay_ice_state_t)ice;
    uint8_t prof = get_u8(r);
    ev->srtp_profile = prof < 3 && prof > 0 ? g_profiles[prof] : NULL;
    ev->video_on = get_bool(r);
    get_str(r, ev->cand, sizeof(ev->cand));
    get_str(r, ev->reason, sizeof(ev->reason));
#define GET_STAT(f) ev->stats.f = get_u64(r);
    STATS_FIELDS(GET_STAT)
#undef GET_STAT
    if (type < SPK_RELAY_EV_LOCAL_CANDIDATE || type > SPK_RELAY_EV_VIDEO || err >= 1000 ||
        ice > SPK_RELAY_ICE_FAILED || prof >= 3 || ev->endpoint_id == 0) {
        r->bad = true;
    }
}

static bool put_streams(wr_t *w, const spk_link_msg_t *m)
{
    if (m->n_streams > SPK_RELAY_MAX_STREAMS) {
        return false;
    }
    put_u8(w, (uint8_t)m->n_streams);
    for (size_t i = 0; i < m->n_streams; i++) {
        const spk_relay_stream_t *s = &m->streams[i];
        put_u32(w, s->ssrc);
        put_u32(w, s->rtx_ssrc);
        put_u8(w, s->pt);
        put_u8(w, s->rtx_pt);
        put_u32(w, s->clock_rate);
        put_u8(w, s->video ? 1 : 0);
        if (s->n_rids > SPK_RELAY_MAX_RIDS) {
            return false;
        }
        put_u8(w, s->n_rids);
        for (size_t r = 0; r < s->n_rids && r < SPK_RELAY_MAX_RIDS; r++) {
            if (!put_str(w, s->rids[r], sizeof(s->rids[r]))) {
                return false;
            }
        }
        put_u8(w, s->rid_ext);
        put_u8(w, s->rrid_ext);
    }
    return true;
}

static void get_streams(rd_t *r, spk_link_msg_t *m)
{
    m->n_streams = get_u8(r);
    if (m->n_streams > SPK_RELAY_MAX_STREAMS) {
        r->bad = true;
        m->n_streams = 0;
        return;
    }
    for (size_t i = 0; i < m->n_streams; i++) {
        spk_relay_stream_t *s = &m->streams[i];
        s->ssrc = get_u32(r);
        s->rtx_ssrc = get_u32(r);
        s->pt = get_u8(r);
        s->rtx_pt = get_u8(r);
        s->clock_rate = get_u32(r);
        s->video = get_bool(r);
        s->n_rids = get_u8(r);
        for (size_t k = 0; k < s->n_rids && k < SPK_RELAY_MAX_RIDS; k++) {
            get_str(r, s->rids[k], sizeof(s->rids[k]));
        }
        s->rid_ext = get_u8(r);
        s->rrid_ext = get_u8(r);
        if (s->pt > 127 || s->rtx_pt > 127 || s->n_rids > SPK_RELAY_MAX_RIDS) {
            r->bad = true;
        }
    }
}

/* The body of a command after its consult and endpoint ids. */
static bool put_command(wr_t *w, const spk_link_msg_t *m)
{
    switch (m->type) {
    case SPK_LINK_CREATE:
        put_u8(w, (uint8_t)m->roles);
        return m->roles <= 3 && put_str(w, m->local_ufrag, sizeof(m->local_ufrag)) &&
               put_str(w, m->local_pwd, sizeof(m->local_pwd));
    case SPK_LINK_REMOTE_DESCRIPTION:
        put_u8(w, (uint8_t)m->setup);
        return (unsigned)m->setup <= SPK_RELAY_SETUP_PASSIVE &&
               put_str(w, m->ufrag, sizeof(m->ufrag)) && put_str(w, m->pwd, sizeof(m->pwd)) &&
               put_str(w, m->fingerprint, sizeof(m->fingerprint));
    case SPK_LINK_REMOTE_CANDIDATE:
        return put_str(w, m->cand, sizeof(m->cand));
    case SPK_LINK_SET_OWNER:
        put_u64(w, m->owner);
        return true;
    case SPK_LINK_SET_STREAMS:
        return put_streams(w, m);
    case SPK_LINK_SET_FORWARDING:
        put_u8(w, m->on ? 1 : 0);
        return true;
    case SPK_LINK_SET_EXT_MAP:
        put(w, m->ext_map, sizeof(m->ext_map));
        return true;
    case SPK_LINK_ICE_RESTART:
        return put_str(w, m->ufrag, sizeof(m->ufrag)) && put_str(w, m->pwd, sizeof(m->pwd)) &&
               put_str(w, m->local_ufrag, sizeof(m->local_ufrag)) &&
               put_str(w, m->local_pwd, sizeof(m->local_pwd));
    default: /* CLOSE, STATS: ids only */
        return true;
    }
}

static void get_command(rd_t *r, spk_link_msg_t *m)
{
    m->consult_id = get_u64(r);
    m->endpoint_id = get_u64(r);
    if (m->consult_id == 0 || m->endpoint_id == 0) {
        r->bad = true;
    }
    switch (m->type) {
    case SPK_LINK_CREATE:
        m->roles = get_u8(r);
        r->bad |= m->roles > 3;
        get_str(r, m->local_ufrag, sizeof(m->local_ufrag));
        get_str(r, m->local_pwd, sizeof(m->local_pwd));
        break;
    case SPK_LINK_REMOTE_DESCRIPTION: {
        uint8_t st = get_u8(r);
        r->bad |= st > SPK_RELAY_SETUP_PASSIVE;
        m->setup = (spk_relay_setup_t)st;
        get_str(r, m->ufrag, sizeof(m->ufrag));
        get_str(r, m->pwd, sizeof(m->pwd));
        get_str(r, m->fingerprint, sizeof(m->fingerprint));
        break;
    }
    case SPK_LINK_REMOTE_CANDIDATE:
        get_str(r, m->cand, sizeof(m->cand));
        break;
    case SPK_LINK_SET_OWNER:
        m->owner = get_u64(r);
        break;
    case SPK_LINK_SET_STREAMS:
        get_streams(r, m);
        break;
    case SPK_LINK_SET_FORWARDING:
        m->on = get_bool(r);
        break;
    case SPK_LINK_SET_EXT_MAP:
        get_bytes(r, m->ext_map, sizeof(m->ext_map));
        break;
    case SPK_LINK_ICE_RESTART:
        get_str(r, m->ufrag, sizeof(m->ufrag));
        get_str(r, m->pwd, sizeof(m->pwd));
        get_str(r, m->local_ufrag, sizeof(m->local_ufrag));
        get_str(r, m->local_pwd, sizeof(m->local_pwd));
        break;
    default:
        break;
    }
}

static bool is_command(spk_link_type_t t)
{
    return t >= SPK_LINK_CREATE && t <= SPK_LINK_SET_EXT_MAP;
}

/* Who may send what: the controller sends AUTH, KEEPALIVE and commands; the node the rest. */
static bool sent_by_controller(spk_link_type_t t)
{
    return t == SPK_LINK_AUTH || t == SPK_LINK_KEEPALIVE || is_command(t);
}

static bool known_type(int t)
{
    return (t >= SPK_LINK_HELLO && t <= SPK_LINK_KEEPALIVE) || is_command((spk_link_type_t)t) ||
           t == SPK_LINK_EVENT;
}

/* The handshake message a side may send or receive in a state (0: only OPEN messages). */
static spk_link_type_t handshake_expected(spk_link_state_t st)
{
    return st == SPK_LINK_ST_HELLO     ? SPK_LINK_HELLO
           : st == SPK_LINK_ST_AUTH    ? SPK_LINK_AUTH
           : st == SPK_LINK_ST_AUTH_OK ? SPK_LINK_AUTH_OK
                                       : (spk_link_type_t)0;
}

static bool body_put(spk_link_t *l, wr_t *w, const spk_link_msg_t *m)
{
    switch (m->type) {
    case SPK_LINK_HELLO:
        put_u16(w, SPK_LINK_VERSION);
        put(w, l->nonce, SPK_LINK_NONCE_LEN);
        put_u8(w, m->ice_lite ? 1 : 0);
        put_u32(w, m->capacity);
        return put_str(w, m->node_id, sizeof(m->node_id)) &&
               put_str(w, m->fingerprint, sizeof(m->fingerprint));
    case SPK_LINK_AUTH:
    case SPK_LINK_AUTH_OK: {
        if (m->type == SPK_LINK_AUTH) {
            memcpy(l->nonce_c, l->nonce, SPK_LINK_NONCE_LEN);
            put(w, l->nonce_c, SPK_LINK_NONCE_LEN);
        }
        uint8_t mac[32];
        bool ok =
            handshake_mac(l, m->type == SPK_LINK_AUTH ? "spreek-relay ctl" : "spreek-relay node",
                          mac) == 0;
        put(w, mac, sizeof(mac));
        return ok;
    }
    case SPK_LINK_LOAD:
        put_u32(w, m->endpoints);
        put_u32(w, m->consults);
        put_u64(w, m->candidates_refused);
        return true;
    case SPK_LINK_KEEPALIVE:
        return true;
    case SPK_LINK_EVENT:
        return put_event(w, &m->ev);
    default:
        put_u64(w, m->consult_id);
        put_u64(w, m->endpoint_id);
        return m->consult_id != 0 && m->endpoint_id != 0 && put_command(w, m);
    }
}

int spk_link_encode(spk_link_t *l, const spk_link_msg_t *msg, uint8_t *out, size_t cap)
{
    if (l == NULL || msg == NULL || out == NULL || !known_type((int)msg->type)) {
        return SPK_EINVAL;
    }
    bool mine = sent_by_controller(msg->type) == (l->role == SPK_LINK_CONTROLLER);
    spk_link_type_t hs = handshake_expected(l->state);
    bool open = l->state == SPK_LINK_ST_OPEN;
    bool handshake = msg->type <= SPK_LINK_AUTH_OK;
    if (!mine || l->state == SPK_LINK_ST_BROKEN || (open && handshake) ||
        (!open && msg->type != hs)) {
        return SPK_ESTATE;
    }
    wr_t w = {.p = out, .cap = cap};
    put_u32(&w, 0);
    put_u8(&w, (uint8_t)msg->type);
    if (!body_put(l, &w, msg)) {
        return SPK_EINVAL;
    }
    size_t tag_len = open ? SPK_LINK_TAG_LEN : 0;
    size_t frame_len = w.n - 4 + tag_len;
    if (w.over || frame_len > SPK_LINK_FRAME_MAX || w.n + tag_len > cap) {
        return SPK_ETOOBIG;
    }
    out[0] = (uint8_t)(frame_len >> 24);
    out[1] = (uint8_t)(frame_len >> 16);
    out[2] = (uint8_t)(frame_len >> 8);
    out[3] = (uint8_t)frame_len;
    if (open) {
        if (frame_tag(l, l->key_tx, l->seq_tx, out, w.n, out + w.n) != 0) {
            return SPK_ECRYPTO;
        }
        l->seq_tx++;
        return (int)(w.n + tag_len);
    }
    /* handshake progress on the sending side */
    int rc = 0;
    if (msg->type == SPK_LINK_HELLO) {
        rc = spk_sha256(l->hello_hash, out, w.n, NULL, 0);
        l->state = SPK_LINK_ST_AUTH;
    } else if (msg->type == SPK_LINK_AUTH) {
        l->state = SPK_LINK_ST_AUTH_OK;
    } else {
        rc = derive_keys(l);
    }
    return rc != 0 ? rc : (int)w.n;
}

/* Receiving side of the handshake messages. */
static int handshake_in(spk_link_t *l, rd_t *r, spk_link_msg_t *m, const uint8_t *frame, size_t n)
{
    if (m->type == SPK_LINK_HELLO) {
        m->version = get_u16(r);
        get_bytes(r, m->nonce, SPK_LINK_NONCE_LEN);
        m->ice_lite = get_bool(r);
        m->capacity = get_u32(r);
        get_str(r, m->node_id, sizeof(m->node_id));
        get_str(r, m->fingerprint, sizeof(m->fingerprint));
        if (r->bad || r->off != r->len || m->version != SPK_LINK_VERSION) {
            return SPK_EDECODE;
        }
        l->state = SPK_LINK_ST_AUTH;
        return spk_sha256(l->hello_hash, frame, n, NULL, 0);
    }
    if (m->type == SPK_LINK_AUTH) {
        get_bytes(r, l->nonce_c, SPK_LINK_NONCE_LEN);
        memcpy(m->nonce, l->nonce_c, SPK_LINK_NONCE_LEN);
    }
    get_bytes(r, m->mac, SPK_LINK_MAC_LEN);
    if (r->bad || r->off != r->len) {
        return SPK_EDECODE;
    }
    uint8_t want[32];
    int rc =
        handshake_mac(l, m->type == SPK_LINK_AUTH ? "spreek-relay ctl" : "spreek-relay node", want);
    if (rc == 0 && CRYPTO_memcmp(want, m->mac, sizeof(want)) != 0) {
        rc = SPK_EVERIFY;
    }
    spk_wipe(want, sizeof(want));
    if (rc != 0) {
        return rc;
    }
    if (m->type == SPK_LINK_AUTH) {
        l->state = SPK_LINK_ST_AUTH_OK;
        return 0;
    }
    return derive_keys(l);
}

static int open_in(rd_t *r, spk_link_msg_t *m)
{
    switch (m->type) {
    case SPK_LINK_LOAD:
        m->endpoints = get_u32(r);
        m->consults = get_u32(r);
        m->candidates_refused = get_u64(r);
        break;
    case SPK_LINK_KEEPALIVE:
        break;
    case SPK_LINK_EVENT:
        get_event(r, &m->ev);
        break;
    default:
        get_command(r, m);
        break;
    }
    return r->bad || r->off != r->len ? SPK_EDECODE : 0;
}

static int decode_frame(spk_link_t *l, const uint8_t *in, size_t n, spk_link_msg_t *msg)
{
    bool open = l->state == SPK_LINK_ST_OPEN;
    size_t tag_len = open ? SPK_LINK_TAG_LEN : 0;
    if (n < 4 + 1 + tag_len) {
        return SPK_EDECODE;
    }
    if (open) {
        uint8_t tag[SPK_LINK_TAG_LEN];
        if (frame_tag(l, l->key_rx, l->seq_rx, in, n - tag_len, tag) != 0) {
            return SPK_ECRYPTO;
        }
        if (CRYPTO_memcmp(tag, in + n - tag_len, tag_len) != 0) {
            return SPK_EVERIFY;
        }
        l->seq_rx++;
    }
    int type = in[4];
    bool theirs =
        known_type(type) && sent_by_controller((spk_link_type_t)type) == (l->role == SPK_LINK_NODE);
    if (!theirs) {
        return SPK_EDECODE;
    }
    spk_link_type_t hs = handshake_expected(l->state);
    bool handshake = type <= SPK_LINK_AUTH_OK;
    if ((open && handshake) || (!open && type != (int)hs)) {
        return SPK_ESTATE;
    }
    memset(msg, 0, sizeof(*msg));
    msg->type = (spk_link_type_t)type;
    rd_t r = {.p = in + 5, .len = n - 5 - tag_len};
    return open ? open_in(&r, msg) : handshake_in(l, &r, msg, in, n);
}

int spk_link_decode(spk_link_t *l, const uint8_t *in, size_t len, size_t *used, spk_link_msg_t *msg)
{
    if (l == NULL || (in == NULL && len > 0) || used == NULL || msg == NULL) {
        return SPK_EINVAL;
    }
    *used = 0;
    if (l->state == SPK_LINK_ST_BROKEN) {
        return SPK_ESTATE;
    }
    if (len < 4) {
        return 0;
    }
    uint32_t flen =
        ((uint32_t)in[0] << 24) | ((uint32_t)in[1] << 16) | ((uint32_t)in[2] << 8) | in[3];
    int rc = 0;
    if (flen > SPK_LINK_FRAME_MAX) {
        rc = SPK_ETOOBIG;
    } else if (flen == 0) {
        rc = SPK_EDECODE;
    } else if (len - 4 < flen) {
        return 0;
    } else {
        rc = decode_frame(l, in, 4 + flen, msg);
    }
    if (rc != 0) {
        l->state = SPK_LINK_ST_BROKEN;
        return rc;
    }
    *used = 4 + flen;
    return 1;
}

const char *spk_link_type_name(spk_link_type_t type)
{
    static const char *const names[] = {
        [SPK_LINK_HELLO] = "hello",
        [SPK_LINK_AUTH] = "auth",
        [SPK_LINK_AUTH_OK] = "auth_ok",
        [SPK_LINK_LOAD] = "load",
        [SPK_LINK_KEEPALIVE] = "keepalive",
        [SPK_LINK_CREATE] = "create",
        [SPK_LINK_REMOTE_DESCRIPTION] = "remote_description",
        [SPK_LINK_REMOTE_CANDIDATE] = "remote_candidate",
        [SPK_LINK_SET_OWNER] = "set_owner",
        [SPK_LINK_SET_STREAMS] = "set_streams",
        [SPK_LINK_SET_FORWARDING] = "set_forwarding",
        [SPK_LINK_ICE_RESTART] = "ice_restart",
        [SPK_LINK_CLOSE] = "close",
        [SPK_LINK_STATS] = "stats",
        [SPK_LINK_SET_EXT_MAP] = "set_ext_map",
        [SPK_LINK_EVENT] = "event",
    };
    if ((unsigned)type < sizeof(names) / sizeof(names[0]) && names[type] != NULL) {
        return names[type];
    }
    return "unknown";
}
