/* DTLS-SRTP for relay endpoints: one SSL_CTX with a generated ECDSA P-256 certificate; per
 * endpoint an SSL object reading from a memory BIO and writing each record flight datagram
 * straight to the endpoint's libnice agent; retransmission timers on the worker's GLib context;
 * keys exported per RFC 5764 into two libsrtp sessions. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "relay_int.h"
#include "spk/error.h"
#include "spk/log.h"
#include "spk/util.h"

#define SRTP_PROFILES "SRTP_AEAD_AES_128_GCM:SRTP_AES128_CM_SHA1_80"
#define EXPORT_LABEL "EXTRACTOR-dtls_srtp"

/* ---- certificate and context ---- */

static int make_cert(EVP_PKEY **pkey_out, X509 **cert_out)
{
    EVP_PKEY *pkey = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    X509_NAME *name = X509_NAME_new();
    ASN1_INTEGER *serial = ASN1_INTEGER_new();
    uint8_t sr[8];
    int ok = pkey && x && name && serial && RAND_bytes(sr, sizeof(sr)) == 1;
    if (ok) {
        uint64_t s = 0;
        for (size_t i = 0; i < sizeof(sr); i++) {
            s = (s << 8) | sr[i];
        }
        ok = ASN1_INTEGER_set_uint64(serial, s & 0x7fffffffffffffffull) == 1 &&
             X509_set_serialNumber(x, serial) == 1 && X509_set_version(x, 2) == 1 &&
             X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                        (const unsigned char *)"spreekkamer", -1, -1, 0) == 1 &&
             X509_set_subject_name(x, name) == 1 && X509_set_issuer_name(x, name) == 1 &&
             X509_gmtime_adj(X509_getm_notBefore(x), -86400) != NULL &&
             X509_gmtime_adj(X509_getm_notAfter(x), 30L * 86400) != NULL &&
             X509_set_pubkey(x, pkey) == 1 && X509_sign(x, pkey, EVP_sha256()) > 0;
    }
    ASN1_INTEGER_free(serial);
    X509_NAME_free(name);
    if (!ok) {
        X509_free(x);
        EVP_PKEY_free(pkey);
        return SPK_ECRYPTO;
    }
    *pkey_out = pkey;
    *cert_out = x;
    return 0;
}

static void format_fp(char out[SPK_RELAY_FINGERPRINT_LEN], const uint8_t md[SPK_RELAY_FP_LEN])
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (size_t i = 0; i < SPK_RELAY_FP_LEN; i++) {
        if (i) {
            out[o++] = ':';
        }
        out[o++] = hex[md[i] >> 4];
        out[o++] = hex[md[i] & 15];
    }
    out[o] = '\0';
}

static bool cert_matches(X509 *cert, const uint8_t fp[SPK_RELAY_FP_LEN])
{
    uint8_t md[EVP_MAX_MD_SIZE];
    unsigned n = 0;
    return cert && X509_digest(cert, EVP_sha256(), md, &n) == 1 && n == SPK_RELAY_FP_LEN &&
           spk_ct_equal(md, fp, SPK_RELAY_FP_LEN);
}

/* Self-signed certificates are expected: the peer's end-entity certificate must match the
 * fingerprint from the remote description, so that a mismatch aborts the handshake with an
 * alert. It is checked again once the handshake is done. */
static int verify_cb(int preverify, X509_STORE_CTX *ctx)
{
    if (X509_STORE_CTX_get_error_depth(ctx) != 0) {
        return 1;
    }
    SSL *ssl = X509_STORE_CTX_get_ex_data(ctx, SSL_get_ex_data_X509_STORE_CTX_idx());
    spk_relay_ep_t *ep = ssl ? SSL_get_app_data(ssl) : NULL;
    if (!ep || !cert_matches(X509_STORE_CTX_get_current_cert(ctx), ep->remote_fp)) {
        X509_STORE_CTX_set_error(ctx, X509_V_ERR_CERT_REJECTED);
        return 0;
    }
    return 1;
}

static void pending_add(spk_relay_ep_t *ep, const uint8_t *data, size_t len)
{
    if (len > sizeof(ep->pending->data[0]) ||
        (ep->pending && ep->pending->n >= SPK_RELAY_PENDING_MAX)) {
        return;
    }
    if (!ep->pending) {
        ep->pending = calloc(1, sizeof(*ep->pending));
        if (!ep->pending) {
            return;
        }
    }
    memcpy(ep->pending->data[ep->pending->n], data, len);
    ep->pending->len[ep->pending->n++] = (uint16_t)len;
}

void spk_relay_dtls_flush_pending(spk_relay_ep_t *ep)
{
    if (!ep->pending) {
        return;
    }
    for (unsigned i = 0; i < ep->pending->n && ep->agent; i++) {
        gint r = nice_agent_send(ep->agent, ep->stream, 1, ep->pending->len[i],
                                 (const gchar *)ep->pending->data[i]);
        if (r > 0) {
            ep->st.bytes_tx += (uint64_t)r;
        }
    }
    free(ep->pending);
    ep->pending = NULL;
}

static int bio_write(BIO *b, const char *data, int len)
{
    spk_relay_ep_t *ep = BIO_get_data(b);
    if (!ep || !ep->agent || len <= 0) {
        return len;
    }
    gint r = nice_agent_send(ep->agent, ep->stream, 1, (guint)len, data);
    if (r > 0) {
        ep->st.bytes_tx += (uint64_t)r;
    } else if (!ep->dtls_done) {
        /* No selected pair yet: the peer's ClientHello can arrive while our checks are still
         * running. Keep the flight for when ICE connects instead of waiting a full DTLS
         * retransmission interval. Otherwise the DTLS timers retransmit. */
        pending_add(ep, (const uint8_t *)data, (size_t)len);
    }
    return len;
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    switch (cmd) {
    case BIO_CTRL_FLUSH:
        return 1;
    case BIO_CTRL_DGRAM_QUERY_MTU:
    case BIO_CTRL_DGRAM_GET_FALLBACK_MTU:
        return SPK_RELAY_MTU;
    case BIO_CTRL_WPENDING:
    case BIO_CTRL_PENDING:
        return 0;
    default:
        return 0;
    }
}

static int bio_create(BIO *b)
{
    BIO_set_init(b, 1);
    return 1;
}

int spk_relay_dtls_ctx_new(spk_relay_t *relay)
{
    EVP_PKEY *pkey = NULL;
    X509 *cert = NULL;
    int rc = make_cert(&pkey, &cert);
    if (rc != 0) {
        return rc;
    }
    uint8_t md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    SSL_CTX *ctx = SSL_CTX_new(DTLS_method());
    bool ok = ctx && X509_digest(cert, EVP_sha256(), md, &mdlen) == 1 &&
              mdlen == SPK_RELAY_FP_LEN && SSL_CTX_use_certificate(ctx, cert) == 1 &&
              SSL_CTX_use_PrivateKey(ctx, pkey) == 1 && SSL_CTX_check_private_key(ctx) == 1 &&
              SSL_CTX_set_min_proto_version(ctx, DTLS1_2_VERSION) == 1 &&
              SSL_CTX_set_tlsext_use_srtp(ctx, SRTP_PROFILES) == 0 &&
              SSL_CTX_set_cipher_list(ctx, "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-"
                                           "SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-AES128-"
                                           "GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384") == 1;
    X509_free(cert);
    EVP_PKEY_free(pkey);
    if (!ok) {
        SSL_CTX_free(ctx);
        spk_error(0, "relay: DTLS context setup failed");
        return SPK_ECRYPTO;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, verify_cb);
    SSL_CTX_set_read_ahead(ctx, 1);
    BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "spk-relay-ice");
    if (!m || BIO_meth_set_write(m, bio_write) != 1 || BIO_meth_set_ctrl(m, bio_ctrl) != 1 ||
        BIO_meth_set_create(m, bio_create) != 1) {
        BIO_meth_free(m);
        SSL_CTX_free(ctx);
        return SPK_ENOMEM;
    }
    relay->ssl_ctx = ctx;
    relay->bio_method = m;
    format_fp(relay->fingerprint, md);
    return 0;
}

void spk_relay_dtls_ctx_free(spk_relay_t *relay)
{
    SSL_CTX_free(relay->ssl_ctx);
    relay->ssl_ctx = NULL;
    BIO_meth_free(relay->bio_method);
    relay->bio_method = NULL;
}

int spk_relay_fingerprint_parse(const char *s, uint8_t out[SPK_RELAY_FP_LEN])
{
    if (!s) {
        return SPK_EINVAL;
    }
    if (g_ascii_strncasecmp(s, "sha-256 ", 8) == 0) {
        s += 8;
    }
    size_t n = 0;
    int hi = -1;
    for (; *s; s++) {
        char c = *s;
        if (c == ':') {
            continue;
        }
        int v = g_ascii_xdigit_value(c);
        if (v < 0 || n >= SPK_RELAY_FP_LEN) {
            return SPK_EDECODE;
        }
        if (hi < 0) {
            hi = v;
        } else {
            out[n++] = (uint8_t)((hi << 4) | v);
            hi = -1;
        }
    }
    return (n == SPK_RELAY_FP_LEN && hi < 0) ? 0 : SPK_EDECODE;
}

/* ---- per endpoint ---- */

static void timer_arm(spk_relay_ep_t *ep);

static gboolean timer_cb(gpointer user)
{
    spk_relay_ep_t *ep = user;
    g_source_unref(ep->dtls_timer);
    ep->dtls_timer = NULL;
    if (!ep->ssl || ep->dtls_done || ep->failed) {
        return G_SOURCE_REMOVE;
    }
    if (DTLSv1_handle_timeout(ep->ssl) < 0) {
        spk_relay_ep_fail(ep, SPK_ETIMEOUT, "DTLS retransmissions exhausted");
        return G_SOURCE_REMOVE;
    }
    timer_arm(ep);
    return G_SOURCE_REMOVE;
}

static void timer_cancel(spk_relay_ep_t *ep)
{
    if (ep->dtls_timer) {
        g_source_destroy(ep->dtls_timer);
        g_source_unref(ep->dtls_timer);
        ep->dtls_timer = NULL;
    }
}

static void timer_arm(spk_relay_ep_t *ep)
{
    timer_cancel(ep);
    struct timeval tv;
    if (ep->dtls_done || !DTLSv1_get_timeout(ep->ssl, &tv)) {
        return;
    }
    guint ms = (guint)(tv.tv_sec * 1000 + tv.tv_usec / 1000) + 1;
    ep->dtls_timer = g_timeout_source_new(ms);
    g_source_set_callback(ep->dtls_timer, timer_cb, ep, NULL);
    g_source_attach(ep->dtls_timer, ep->w->ctx);
}

int spk_relay_dtls_setup(spk_relay_ep_t *ep, spk_relay_setup_t remote_setup)
{
    spk_relay_t *relay = ep->w->relay;
    SSL *ssl = SSL_new(relay->ssl_ctx);
    BIO *rbio = BIO_new(BIO_s_mem());
    BIO *wbio = BIO_new(relay->bio_method);
    if (!ssl || !rbio || !wbio) {
        SSL_free(ssl);
        BIO_free(rbio);
        BIO_free(wbio);
        return SPK_ENOMEM;
    }
    BIO_set_mem_eof_return(rbio, -1);
    BIO_set_data(wbio, ep);
    SSL_set_app_data(ssl, ep);
    SSL_set_bio(ssl, rbio, wbio);
    SSL_set_options(ssl, SSL_OP_NO_QUERY_MTU);
    SSL_set_mtu(ssl, SPK_RELAY_MTU);
    DTLS_set_link_mtu(ssl, SPK_RELAY_MTU);
    ep->dtls_server = remote_setup != SPK_RELAY_SETUP_PASSIVE;
    if (ep->dtls_server) {
        SSL_set_accept_state(ssl);
    } else {
        SSL_set_connect_state(ssl);
    }
    ep->ssl = ssl;
    ep->rbio = rbio;
    return 0;
}

static int srtp_session(srtp_t *out, srtp_profile_t profile, const uint8_t *key, size_t klen,
                        const uint8_t *salt, size_t slen, bool inbound)
{
    uint8_t master[SRTP_MAX_KEY_LEN];
    srtp_policy_t p;
    memset(&p, 0, sizeof(p));
    if (srtp_crypto_policy_set_from_profile_for_rtp(&p.rtp, profile) != srtp_err_status_ok ||
        srtp_crypto_policy_set_from_profile_for_rtcp(&p.rtcp, profile) != srtp_err_status_ok) {
        return SPK_ECRYPTO;
    }
    memcpy(master, key, klen);
    memcpy(master + klen, salt, slen);
    p.ssrc.type = inbound ? ssrc_any_inbound : ssrc_any_outbound;
    p.key = master;
    p.window_size = 1024;
    p.allow_repeat_tx = 1;
    srtp_err_status_t e = srtp_create(out, &p);
    spk_wipe(master, sizeof(master));
    return e == srtp_err_status_ok ? 0 : SPK_ECRYPTO;
}

static int srtp_from_dtls(spk_relay_ep_t *ep)
{
    SRTP_PROTECTION_PROFILE *sp = SSL_get_selected_srtp_profile(ep->ssl);
    if (!sp) {
        return SPK_ECRYPTO;
    }
    srtp_profile_t profile;
    size_t klen = 16;
    size_t slen;
    if (sp->id == SRTP_AEAD_AES_128_GCM) {
        profile = srtp_profile_aead_aes_128_gcm;
        slen = 12;
        ep->profile = "AEAD_AES_128_GCM";
    } else if (sp->id == SRTP_AES128_CM_SHA1_80) {
        profile = srtp_profile_aes128_cm_sha1_80;
        slen = 14;
        ep->profile = "AES_CM_128_HMAC_SHA1_80";
    } else {
        return SPK_ECRYPTO;
    }
    /* RFC 5764 4.2: client key | server key | client salt | server salt. */
    uint8_t km[2 * (16 + 14)];
    size_t total = 2 * (klen + slen);
    if (SSL_export_keying_material(ep->ssl, km, total, EXPORT_LABEL, strlen(EXPORT_LABEL), NULL, 0,
                                   0) != 1) {
        return SPK_ECRYPTO;
    }
    const uint8_t *ckey = km, *skey = km + klen, *csalt = km + 2 * klen;
    const uint8_t *ssalt = km + 2 * klen + slen;
    const uint8_t *lkey = ep->dtls_server ? skey : ckey, *lsalt = ep->dtls_server ? ssalt : csalt;
    const uint8_t *rkey = ep->dtls_server ? ckey : skey, *rsalt = ep->dtls_server ? csalt : ssalt;
    int rc = srtp_session(&ep->srtp_in, profile, rkey, klen, rsalt, slen, true);
    if (rc == 0) {
        rc = srtp_session(&ep->srtp_out, profile, lkey, klen, lsalt, slen, false);
    }
    spk_wipe(km, sizeof(km));
    return rc;
}

static bool peer_fingerprint_ok(spk_relay_ep_t *ep)
{
    X509 *peer = SSL_get1_peer_certificate(ep->ssl);
    bool ok = cert_matches(peer, ep->remote_fp);
    X509_free(peer);
    return ok;
}

static void handshake_done(spk_relay_ep_t *ep)
{
    timer_cancel(ep);
    if (!peer_fingerprint_ok(ep)) {
        spk_relay_ep_fail(ep, SPK_EVERIFY, "DTLS peer certificate does not match fingerprint");
        return;
    }
    int rc = srtp_from_dtls(ep);
    if (rc != 0) {
        spk_relay_ep_fail(ep, rc, "SRTP keying failed");
        return;
    }
    ep->dtls_done = true;
    ep->last_rx_ns = spk_mono_ns();
    ep->heard_ns = ep->last_rx_ns;
    spk_info(0, "relay: endpoint %llu: DTLS connected (%s, %s), SRTP %s",
             (unsigned long long)ep->id, SSL_get_version(ep->ssl),
             ep->dtls_server ? "server" : "client", ep->profile);
    spk_relay_ep_event(ep, SPK_RELAY_EV_CONNECTED);
    spk_relay_rtcp_on_ready(ep);
}

static void handshake_step(spk_relay_ep_t *ep)
{
    ERR_clear_error();
    int r = SSL_do_handshake(ep->ssl);
    if (r == 1) {
        handshake_done(ep);
        return;
    }
    int e = SSL_get_error(ep->ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        timer_arm(ep);
        return;
    }
    if (SSL_get_verify_result(ep->ssl) != X509_V_OK) {
        ERR_clear_error();
        spk_relay_ep_fail(ep, SPK_EVERIFY, "DTLS peer certificate does not match fingerprint");
        return;
    }
    char why[96];
    snprintf(why, sizeof(why), "DTLS handshake failed: %s",
             ERR_reason_error_string(ERR_peek_last_error())
                 ? ERR_reason_error_string(ERR_peek_last_error())
                 : "error");
    ERR_clear_error();
    spk_relay_ep_fail(ep, SPK_ECRYPTO, why);
}

void spk_relay_dtls_start(spk_relay_ep_t *ep)
{
    spk_relay_dtls_flush_pending(ep);
    if (!ep->ssl || ep->dtls_started || ep->failed) {
        return;
    }
    ep->dtls_started = true;
    if (!ep->dtls_server) {
        handshake_step(ep); /* sends the ClientHello */
    }
}

void spk_relay_dtls_input(spk_relay_ep_t *ep, const uint8_t *buf, size_t len)
{
    if (!ep->ssl || ep->failed) {
        return; /* before the remote description (the peer retransmits), or released */
    }
    ep->dtls_started = true;
    BIO_write(ep->rbio, buf, (int)len);
    if (!ep->dtls_done) {
        handshake_step(ep);
        return;
    }
    /* After the handshake, until the peer's first SRTP/SRTCP (spk_relay_dtls_release): alerts,
     * close_notify, retransmitted flights, or application data (no data channels are
     * negotiated; it is read and dropped). */
    uint8_t scratch[512];
    ERR_clear_error();
    for (int i = 0; i < 8; i++) {
        int r = SSL_read(ep->ssl, scratch, sizeof(scratch));
        if (r > 0) {
            continue;
        }
        int e = SSL_get_error(ep->ssl, r);
        if (e == SSL_ERROR_ZERO_RETURN) {
            spk_relay_ep_fail(ep, SPK_EIO, "DTLS closed by peer");
        } else if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
            spk_relay_ep_fail(ep, SPK_ECRYPTO, "DTLS error after handshake");
        }
        break;
    }
    ERR_clear_error();
    (void)BIO_reset(ep->rbio); /* never let unread input accumulate */
}

/* Called with the first authenticated SRTP or SRTCP packet from the peer: it sends media only
 * once its side of the handshake is complete, so it will not retransmit a flight that this side
 * would have to answer. The SSL object, its buffers and the peer's certificate (about 48 KB of
 * resident memory per endpoint, docs/performance.md) are freed. DTLS the peer sends later (a
 * close_notify when it closes its connection) is ignored: the endpoint then ends by signaling
 * or by the consent timeout; and no close_notify is sent when the relay closes it. DTLS 1.2
 * renegotiation is not supported by WebRTC stacks, nor here. */
void spk_relay_dtls_release(spk_relay_ep_t *ep)
{
    if (ep->ssl == NULL || !ep->dtls_done) {
        return;
    }
    timer_cancel(ep);
    SSL_free(ep->ssl);
    ep->ssl = NULL;
    ep->rbio = NULL;
    ep->st.dtls_released = 1;
}

void spk_relay_dtls_free(spk_relay_ep_t *ep)
{
    timer_cancel(ep);
    free(ep->pending);
    ep->pending = NULL;
    if (ep->ssl) {
        if (ep->dtls_done && !ep->failed && ep->agent) {
            SSL_shutdown(ep->ssl); /* close_notify, best effort */
        }
        SSL_free(ep->ssl);
        ep->ssl = NULL;
        ep->rbio = NULL;
    }
    if (ep->srtp_in) {
        srtp_dealloc(ep->srtp_in);
        ep->srtp_in = NULL;
    }
    if (ep->srtp_out) {
        srtp_dealloc(ep->srtp_out);
        ep->srtp_out = NULL;
    }
}
