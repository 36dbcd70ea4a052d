/* spreekload client peer: libnice (full ICE; controlling unless it answers) + OpenSSL DTLS +
 * libsrtp2. */
#include "peer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <gio/gio.h>
#include <nice/agent.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <srtp2/srtp.h>

#include "spk/error.h"
#include "spk/util.h"

#define PEER_MTU 1200
#define PEER_PKT_MAX 1500
#define FP_LEN 32

struct spk_peer {
    spk_peer_config_t cfg;
    NiceAgent *agent;
    guint stream;
    char ufrag[16];
    char pwd[32];
    char fingerprint[FP_LEN * 3];
    char cands[SPK_PEER_MAX_CANDIDATES][SPK_PEER_CANDIDATE_MAX];
    size_t n_cands;
    bool gathered;
    bool ice_up;
    bool failed;
    bool dtls_done;
    bool handshaking;
    unsigned dtls_dropped;

    SSL_CTX *ssl_ctx;
    SSL *ssl;
    BIO *rbio;
    BIO *wbio;
    GSource *timer;
    uint8_t remote_fp[FP_LEN];
    bool have_remote;

    srtp_t srtp_in;
    srtp_t srtp_out;
    const char *profile;
    spk_peer_stats_t st;
    uint8_t buf[PEER_PKT_MAX + SRTP_MAX_TRAILER_LEN];
};

/* libsrtp: initialised once per process, never shut down (a relay in the same process shares
 * its crypto kernel). */
static bool srtp_ready;

/* ---- certificate ---- */

static SSL_CTX *ctx_new(char fp_out[FP_LEN * 3])
{
    EVP_PKEY *pkey = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    SSL_CTX *ctx = SSL_CTX_new(DTLS_method());
    uint8_t md[EVP_MAX_MD_SIZE];
    unsigned n = 0;
    bool ok = pkey && x && ctx && X509_set_version(x, 2) == 1 &&
              ASN1_INTEGER_set(X509_get_serialNumber(x), 1) == 1 &&
              X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                                         (const unsigned char *)"spreekload", -1, -1, 0) == 1 &&
              X509_set_issuer_name(x, X509_get_subject_name(x)) == 1 &&
              X509_gmtime_adj(X509_getm_notBefore(x), -3600) &&
              X509_gmtime_adj(X509_getm_notAfter(x), 86400) && X509_set_pubkey(x, pkey) == 1 &&
              X509_sign(x, pkey, EVP_sha256()) > 0 && X509_digest(x, EVP_sha256(), md, &n) == 1 &&
              n == FP_LEN && SSL_CTX_use_certificate(ctx, x) == 1 &&
              SSL_CTX_use_PrivateKey(ctx, pkey) == 1 &&
              SSL_CTX_set_tlsext_use_srtp(ctx, "SRTP_AEAD_AES_128_GCM:SRTP_AES128_CM_SHA1_80") == 0;
    X509_free(x);
    EVP_PKEY_free(pkey);
    if (!ok) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    for (unsigned i = 0; i < FP_LEN; i++) {
        snprintf(fp_out + 3 * i, 4, i + 1 < FP_LEN ? "%02X:" : "%02X", md[i]);
    }
    return ctx;
}

static int accept_any(int ok, X509_STORE_CTX *c)
{
    return 1; /* self-signed; the fingerprint decides */
}

/* ---- DTLS ---- */

static void fail(spk_peer_t *p, const char *why)
{
    if (!p->failed) {
        p->failed = true;
        fprintf(stderr, "peer %s: %s\n", p->ufrag, why);
    }
}

/* Sends what OpenSSL wrote, packing whole records into datagrams of at most PEER_MTU bytes. */
static void flush_out(spk_peer_t *p)
{
    uint8_t out[4096];
    int n = BIO_read(p->wbio, out, sizeof(out));
    if (n <= 0) {
        return;
    }
    size_t start = 0, pos = 0;
    while (pos + 13 <= (size_t)n) {
        size_t rec = 13 + (((size_t)out[pos + 11] << 8) | out[pos + 12]);
        if (pos + rec > (size_t)n) {
            break;
        }
        if (pos > start && pos + rec - start > PEER_MTU) {
            nice_agent_send(p->agent, p->stream, 1, (guint)(pos - start), (gchar *)out + start);
            start = pos;
        }
        pos += rec;
    }
    if (n > (int)start) {
        nice_agent_send(p->agent, p->stream, 1, (guint)((size_t)n - start), (gchar *)out + start);
    }
}

static void timer_set(spk_peer_t *p);

static gboolean timer_cb(gpointer user)
{
    spk_peer_t *p = user;
    g_source_unref(p->timer);
    p->timer = NULL;
    if (p->dtls_done || p->failed) {
        return G_SOURCE_REMOVE;
    }
    if (DTLSv1_handle_timeout(p->ssl) < 0) {
        fail(p, "DTLS timeout");
        return G_SOURCE_REMOVE;
    }
    flush_out(p);
    timer_set(p);
    return G_SOURCE_REMOVE;
}

static void timer_set(spk_peer_t *p)
{
    if (p->timer) {
        g_source_destroy(p->timer);
        g_source_unref(p->timer);
        p->timer = NULL;
    }
    struct timeval tv;
    if (p->dtls_done || !DTLSv1_get_timeout(p->ssl, &tv)) {
        return;
    }
    p->timer = g_timeout_source_new((guint)(tv.tv_sec * 1000 + tv.tv_usec / 1000) + 1);
    g_source_set_callback(p->timer, timer_cb, p, NULL);
    g_source_attach(p->timer, p->cfg.ctx);
}

static int make_session(srtp_t *s, srtp_profile_t prof, const uint8_t *key, const uint8_t *salt,
                        size_t slen, bool in)
{
    uint8_t mk[16 + 14];
    srtp_policy_t pol;
    memset(&pol, 0, sizeof(pol));
    srtp_crypto_policy_set_from_profile_for_rtp(&pol.rtp, prof);
    srtp_crypto_policy_set_from_profile_for_rtcp(&pol.rtcp, prof);
    memcpy(mk, key, 16);
    memcpy(mk + 16, salt, slen);
    pol.key = mk;
    pol.ssrc.type = in ? ssrc_any_inbound : ssrc_any_outbound;
    pol.window_size = 1024;
    srtp_err_status_t e = srtp_create(s, &pol);
    spk_wipe(mk, sizeof(mk));
    return e == srtp_err_status_ok ? 0 : SPK_ECRYPTO;
}

static int key_srtp(spk_peer_t *p)
{
    SRTP_PROTECTION_PROFILE *sp = SSL_get_selected_srtp_profile(p->ssl);
    if (!sp) {
        return SPK_ECRYPTO;
    }
    bool gcm = sp->id == SRTP_AEAD_AES_128_GCM;
    size_t slen = gcm ? 12 : 14;
    p->profile = gcm ? "AEAD_AES_128_GCM" : "AES_CM_128_HMAC_SHA1_80";
    srtp_profile_t prof = gcm ? srtp_profile_aead_aes_128_gcm : srtp_profile_aes128_cm_sha1_80;
    uint8_t km[60];
    if (SSL_export_keying_material(p->ssl, km, 2 * (16 + slen), "EXTRACTOR-dtls_srtp", 19, NULL, 0,
                                   0) != 1) {
        return SPK_ECRYPTO;
    }
    /* client_write_key, server_write_key, client_write_salt, server_write_salt */
    const uint8_t *client_key = km, *server_key = km + 16;
    const uint8_t *client_salt = km + 32, *server_salt = km + 32 + slen;
    bool server = p->cfg.dtls_server;
    int rc = make_session(&p->srtp_out, prof, server ? server_key : client_key,
                          server ? server_salt : client_salt, slen, false);
    if (rc == 0) {
        rc = make_session(&p->srtp_in, prof, server ? client_key : server_key,
                          server ? client_salt : server_salt, slen, true);
    }
    spk_wipe(km, sizeof(km));
    return rc;
}

static void dtls_step(spk_peer_t *p)
{
    int r = SSL_do_handshake(p->ssl);
    flush_out(p);
    if (r == 1) {
        X509 *cert = SSL_get1_peer_certificate(p->ssl);
        uint8_t md[EVP_MAX_MD_SIZE];
        unsigned n = 0;
        bool ok = cert && X509_digest(cert, EVP_sha256(), md, &n) == 1 && n == FP_LEN &&
                  spk_ct_equal(md, p->remote_fp, FP_LEN);
        X509_free(cert);
        if (!ok) {
            fail(p, "remote fingerprint mismatch");
            return;
        }
        if (key_srtp(p) != 0) {
            fail(p, "SRTP keying failed");
            return;
        }
        p->dtls_done = true;
        timer_set(p);
        return;
    }
    int e = SSL_get_error(p->ssl, r);
    if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
        char why[160];
        snprintf(why, sizeof(why), "DTLS handshake: %s", ERR_error_string(ERR_get_error(), NULL));
        fail(p, why);
        return;
    }
    timer_set(p);
}

static void dtls_maybe_start(spk_peer_t *p)
{
    if (p->ice_up && p->have_remote && !p->handshaking && !p->failed) {
        p->handshaking = true;
        if (!p->cfg.dtls_server) {
            dtls_step(p);
        }
    }
}

/* ---- libnice callbacks ---- */

static void on_recv(NiceAgent *agent, guint stream, guint comp, guint len, gchar *buf, gpointer u)
{
    spk_peer_t *p = u;
    const uint8_t *b = (const uint8_t *)buf;
    if (len == 0 || p->failed) {
        return;
    }
    if (b[0] >= 20 && b[0] <= 63) {
        if (!p->have_remote) {
            return;
        }
        if (p->dtls_dropped < p->cfg.drop_dtls_rx) {
            p->dtls_dropped++;
            return;
        }
        p->handshaking = true;
        BIO_write(p->rbio, buf, (int)len);
        if (!p->dtls_done) {
            dtls_step(p);
        } else {
            uint8_t junk[64];
            SSL_read(p->ssl, junk, sizeof(junk));
            flush_out(p);
            ERR_clear_error();
        }
        return;
    }
    if (b[0] < 128 || b[0] > 191 || !p->srtp_in || len > PEER_PKT_MAX) {
        return;
    }
    bool rtcp = len >= 2 && b[1] >= 192 && b[1] <= 223;
    if (p->cfg.drop_rx && p->cfg.drop_rx(p, b, len, rtcp, p->cfg.user)) {
        return;
    }
    memcpy(p->buf, b, len);
    int n = (int)len;
    srtp_err_status_t e =
        rtcp ? srtp_unprotect_rtcp(p->srtp_in, p->buf, &n) : srtp_unprotect(p->srtp_in, p->buf, &n);
    if (e != srtp_err_status_ok) {
        p->st.unprotect_errors++;
        return;
    }
    if (rtcp) {
        p->st.rtcp_rx++;
    } else {
        p->st.rtp_rx++;
    }
    if (p->cfg.media_cb) {
        p->cfg.media_cb(p, p->buf, (size_t)n, rtcp, p->cfg.user);
    }
}

static void set_rcvbuf(spk_peer_t *p)
{
    GSocket *s = nice_agent_get_selected_socket(p->agent, p->stream, 1);
    if (!s) {
        return;
    }
    int fd = g_socket_get_fd(s);
    int v = p->cfg.rcvbuf_bytes;
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &v, sizeof(v)) != 0) {
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, sizeof(v));
    }
    g_object_unref(s);
}

static void on_state(NiceAgent *agent, guint stream, guint comp, guint state, gpointer u)
{
    spk_peer_t *p = u;
    if (state == NICE_COMPONENT_STATE_CONNECTED || state == NICE_COMPONENT_STATE_READY) {
        if (!p->ice_up && p->cfg.rcvbuf_bytes > 0) {
            set_rcvbuf(p);
        }
        p->ice_up = true;
        dtls_maybe_start(p);
    } else if (state == NICE_COMPONENT_STATE_FAILED) {
        fail(p, "ICE failed");
    }
}

static void on_cand(NiceAgent *agent, NiceCandidate *c, gpointer u)
{
    spk_peer_t *p = u;
    gchar *sdp = nice_agent_generate_local_candidate_sdp(agent, c);
    if (sdp && p->n_cands < SPK_PEER_MAX_CANDIDATES) {
        const char *l = strncmp(sdp, "a=", 2) == 0 ? sdp + 2 : sdp;
        snprintf(p->cands[p->n_cands++], SPK_PEER_CANDIDATE_MAX, "%s", l);
    }
    g_free(sdp);
}

static void on_gathered(NiceAgent *agent, guint stream, gpointer u)
{
    ((spk_peer_t *)u)->gathered = true;
}

/* ---- API ---- */

static void rand_token(char *out, size_t n)
{
    static const char al[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    uint8_t r[32];
    RAND_bytes(r, (int)n);
    for (size_t i = 0; i < n; i++) {
        out[i] = al[r[i] % 62];
    }
    out[n] = '\0';
}

static int agent_setup(spk_peer_t *p)
{
    NiceAddress addr;
    nice_address_init(&addr);
    if (!p->cfg.address || !nice_address_set_from_string(&addr, p->cfg.address)) {
        return SPK_EINVAL;
    }
    p->agent =
        nice_agent_new_full(p->cfg.ctx, NICE_COMPATIBILITY_RFC5245, NICE_AGENT_OPTION_ICE_TRICKLE);
    if (!p->agent) {
        return SPK_ENOMEM;
    }
    g_object_set(p->agent, "upnp", FALSE, "ice-tcp", FALSE, "controlling-mode",
                 (gboolean)!p->cfg.ice_controlled, NULL);
    nice_agent_add_local_address(p->agent, &addr);
    g_signal_connect(p->agent, "component-state-changed", G_CALLBACK(on_state), p);
    g_signal_connect(p->agent, "new-candidate-full", G_CALLBACK(on_cand), p);
    g_signal_connect(p->agent, "candidate-gathering-done", G_CALLBACK(on_gathered), p);
    p->stream = nice_agent_add_stream(p->agent, 1);
    rand_token(p->ufrag, 8);
    rand_token(p->pwd, 24);
    if (!p->stream || !nice_agent_set_local_credentials(p->agent, p->stream, p->ufrag, p->pwd) ||
        !nice_agent_attach_recv(p->agent, p->stream, 1, p->cfg.ctx, on_recv, p) ||
        !nice_agent_gather_candidates(p->agent, p->stream)) {
        return SPK_EIO;
    }
    return 0;
}

int spk_peer_new(const spk_peer_config_t *cfg, spk_peer_t **out)
{
    if (!cfg || !cfg->ctx || !out) {
        return SPK_EINVAL;
    }
    spk_peer_t *p = calloc(1, sizeof(*p));
    if (!p) {
        return SPK_ENOMEM;
    }
    p->cfg = *cfg;
    if (!srtp_ready) {
        /* Fails harmlessly when a relay in the process initialised libsrtp first. */
        (void)srtp_init();
        srtp_ready = true;
    }
    p->ssl_ctx = ctx_new(p->fingerprint);
    int rc = p->ssl_ctx ? 0 : SPK_ECRYPTO;
    if (rc == 0) {
        SSL_CTX_set_verify(p->ssl_ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
                           accept_any);
        p->ssl = SSL_new(p->ssl_ctx);
        p->rbio = BIO_new(BIO_s_mem());
        p->wbio = BIO_new(BIO_s_mem());
        rc = (p->ssl && p->rbio && p->wbio) ? 0 : SPK_ENOMEM;
    }
    if (rc == 0) {
        BIO_set_mem_eof_return(p->rbio, -1);
        SSL_set_bio(p->ssl, p->rbio, p->wbio);
        SSL_set_options(p->ssl, SSL_OP_NO_QUERY_MTU);
        SSL_set_mtu(p->ssl, PEER_MTU);
        if (cfg->dtls_server) {
            SSL_set_accept_state(p->ssl);
        } else {
            SSL_set_connect_state(p->ssl);
        }
        rc = agent_setup(p);
    } else if (p->ssl) {
        BIO_free(p->rbio);
        BIO_free(p->wbio);
        p->rbio = p->wbio = NULL;
    }
    if (rc != 0) {
        spk_peer_free(p);
        return rc;
    }
    *out = p;
    return 0;
}

void spk_peer_free(spk_peer_t *p)
{
    if (!p) {
        return;
    }
    if (p->timer) {
        g_source_destroy(p->timer);
        g_source_unref(p->timer);
    }
    if (p->agent) {
        g_signal_handlers_disconnect_by_data(p->agent, p);
        if (p->stream) {
            nice_agent_attach_recv(p->agent, p->stream, 1, p->cfg.ctx, NULL, NULL);
            nice_agent_remove_stream(p->agent, p->stream);
        }
        g_object_unref(p->agent);
    }
    if (p->ssl) {
        SSL_free(p->ssl);
    } else {
        BIO_free(p->rbio);
        BIO_free(p->wbio);
    }
    SSL_CTX_free(p->ssl_ctx);
    if (p->srtp_in) {
        srtp_dealloc(p->srtp_in);
    }
    if (p->srtp_out) {
        srtp_dealloc(p->srtp_out);
    }
    spk_wipe(p, sizeof(*p));
    free(p);
}

const char *spk_peer_ufrag(const spk_peer_t *p)
{
    return p->ufrag;
}

const char *spk_peer_pwd(const spk_peer_t *p)
{
    return p->pwd;
}

const char *spk_peer_fingerprint(const spk_peer_t *p)
{
    return p->fingerprint;
}

size_t spk_peer_local_candidates(const spk_peer_t *p, const char **lines, size_t max, bool *done)
{
    size_t n = p->n_cands < max ? p->n_cands : max;
    for (size_t i = 0; i < n; i++) {
        lines[i] = p->cands[i];
    }
    if (done) {
        *done = p->gathered;
    }
    return n;
}

int spk_peer_set_remote(spk_peer_t *p, const char *ufrag, const char *pwd, const char *fp)
{
    size_t n = 0;
    int hi = -1;
    for (const char *s = fp; s && *s; s++) {
        int v = g_ascii_xdigit_value(*s);
        if (*s == ':') {
            continue;
        }
        if (v < 0 || n >= FP_LEN) {
            return SPK_EDECODE;
        }
        if (hi < 0) {
            hi = v;
        } else {
            p->remote_fp[n++] = (uint8_t)(hi << 4 | v);
            hi = -1;
        }
    }
    if (n != FP_LEN || !ufrag || !pwd ||
        !nice_agent_set_remote_credentials(p->agent, p->stream, ufrag, pwd)) {
        return SPK_EINVAL;
    }
    p->have_remote = true;
    dtls_maybe_start(p);
    return 0;
}

int spk_peer_add_remote_candidate(spk_peer_t *p, const char *line)
{
    if (!line || !*line) {
        nice_agent_peer_candidate_gathering_done(p->agent, p->stream);
        return 0;
    }
    char buf[SPK_PEER_CANDIDATE_MAX + 2];
    snprintf(buf, sizeof(buf), "%s%s", strncmp(line, "a=", 2) == 0 ? "" : "a=", line);
    NiceCandidate *c = nice_agent_parse_remote_candidate_sdp(p->agent, p->stream, buf);
    if (!c) {
        return SPK_EDECODE;
    }
    GSList l = {.data = c, .next = NULL};
    int added = nice_agent_set_remote_candidates(p->agent, p->stream, 1, &l);
    nice_candidate_free(c);
    return added == 1 ? 0 : SPK_EINVAL;
}

int spk_peer_ice_restart(spk_peer_t *p)
{
    rand_token(p->ufrag, 8);
    rand_token(p->pwd, 24);
    if (!nice_agent_restart_stream(p->agent, p->stream) ||
        !nice_agent_set_local_credentials(p->agent, p->stream, p->ufrag, p->pwd)) {
        return SPK_EIO;
    }
    return 0;
}

int spk_peer_set_remote_ice(spk_peer_t *p, const char *ufrag, const char *pwd)
{
    if (!ufrag || !pwd || !nice_agent_set_remote_credentials(p->agent, p->stream, ufrag, pwd)) {
        return SPK_EINVAL;
    }
    return 0;
}

bool spk_peer_connected(const spk_peer_t *p)
{
    return p->dtls_done && !p->failed;
}

bool spk_peer_failed(const spk_peer_t *p)
{
    return p->failed;
}

const char *spk_peer_srtp_profile(const spk_peer_t *p)
{
    return p->profile;
}

static int send_protected(spk_peer_t *p, const uint8_t *pkt, size_t len, bool rtcp)
{
    if (!p->srtp_out) {
        return SPK_ESTATE;
    }
    if (len < 8 || len > 1400) {
        return SPK_EINVAL;
    }
    memcpy(p->buf, pkt, len);
    int n = (int)len;
    srtp_err_status_t e =
        rtcp ? srtp_protect_rtcp(p->srtp_out, p->buf, &n) : srtp_protect(p->srtp_out, p->buf, &n);
    if (e != srtp_err_status_ok) {
        return SPK_ECRYPTO;
    }
    if (nice_agent_send(p->agent, p->stream, 1, (guint)n, (gchar *)p->buf) != n) {
        p->st.send_errors++;
        return SPK_EIO;
    }
    if (!rtcp) {
        p->st.rtp_tx++;
    }
    return 0;
}

int spk_peer_send_rtp(spk_peer_t *p, const uint8_t *rtp, size_t len)
{
    return send_protected(p, rtp, len, false);
}

int spk_peer_send_rtcp(spk_peer_t *p, const uint8_t *rtcp, size_t len)
{
    return send_protected(p, rtcp, len, true);
}

int spk_peer_send_raw(spk_peer_t *p, const uint8_t *buf, size_t len)
{
    if (len == 0 || len > 1400) {
        return SPK_EINVAL;
    }
    if (nice_agent_send(p->agent, p->stream, 1, (guint)len, (const gchar *)buf) != (gint)len) {
        p->st.send_errors++;
        return SPK_EIO;
    }
    return 0;
}

void spk_peer_stats(const spk_peer_t *p, spk_peer_stats_t *out)
{
    *out = p->st;
}

int spk_peer_selected(const spk_peer_t *p, int *fd, struct sockaddr_storage *to, socklen_t *to_len)
{
    NiceCandidate *local = NULL, *remote = NULL;
    if (!nice_agent_get_selected_pair(p->agent, p->stream, 1, &local, &remote) || !remote) {
        return SPK_ESTATE;
    }
    GSocket *s = nice_agent_get_selected_socket(p->agent, p->stream, 1);
    if (!s) {
        return SPK_ESTATE;
    }
    *fd = g_socket_get_fd(s);
    g_object_unref(s); /* the agent keeps it open */
    memset(to, 0, sizeof(*to));
    nice_address_copy_to_sockaddr(&remote->addr, (struct sockaddr *)to);
    *to_len = to->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    return 0;
}

void spk_peer_srtp_sessions(const spk_peer_t *p, void **in, void **out)
{
    *in = p->srtp_in;
    *out = p->srtp_out;
}
