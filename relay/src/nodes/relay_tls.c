/* spk/relay_tls.h: TLS 1.3 with an external PSK over memory BIOs. */
#include "spk/relay_tls.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/ssl.h>

#include "spk/error.h"
#include "spk/relay_link.h"
#include "spk/util.h"

#define PSK_IDENTITY "spreek-relay/1"
#define PSK_LABEL "spreek-relay tls psk"

struct spk_relay_tls_ctx_s {
    SSL_CTX *ssl;
    bool server;
    uint8_t psk[32];
};

struct spk_relay_tls_s {
    SSL *ssl;
    BIO *rbio; /* ciphertext in */
    BIO *wbio; /* ciphertext out */
    bool up;   /* the handshake completed once */
    bool failed;
    int err;
};

static int g_ex_index = -1;

static const uint8_t tls13_aes128gcmsha256_id[] = {0x13, 0x01};

static SSL_SESSION *psk_session(SSL *ssl, const spk_relay_tls_ctx_t *c)
{
    const SSL_CIPHER *cipher = SSL_CIPHER_find(ssl, tls13_aes128gcmsha256_id);
    SSL_SESSION *s = cipher != NULL ? SSL_SESSION_new() : NULL;
    if (s == NULL || SSL_SESSION_set1_master_key(s, c->psk, sizeof(c->psk)) != 1 ||
        SSL_SESSION_set_cipher(s, cipher) != 1 ||
        SSL_SESSION_set_protocol_version(s, TLS1_3_VERSION) != 1) {
        SSL_SESSION_free(s);
        return NULL;
    }
    return s;
}

static int use_session_cb(SSL *ssl, const EVP_MD *md, const unsigned char **id, size_t *idlen,
                          SSL_SESSION **sess)
{
    const spk_relay_tls_ctx_t *c = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), g_ex_index);
    SSL_SESSION *s = psk_session(ssl, c);
    if (s == NULL) {
        return 0;
    }
    if (md != NULL && md != SSL_CIPHER_get_handshake_digest(SSL_SESSION_get0_cipher(s))) {
        SSL_SESSION_free(s);
        *sess = NULL;
        return 1;
    }
    *id = (const unsigned char *)PSK_IDENTITY;
    *idlen = strlen(PSK_IDENTITY);
    *sess = s;
    return 1;
}

static int find_session_cb(SSL *ssl, const unsigned char *id, size_t idlen, SSL_SESSION **sess)
{
    const spk_relay_tls_ctx_t *c = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), g_ex_index);
    *sess = NULL;
    if (idlen == strlen(PSK_IDENTITY) && memcmp(id, PSK_IDENTITY, idlen) == 0) {
        *sess = psk_session(ssl, c);
        return *sess != NULL;
    }
    return 1; /* unknown identity: no PSK, and without a certificate the handshake fails */
}

int spk_relay_tls_ctx_new(bool server, const void *secret, size_t secret_len,
                          spk_relay_tls_ctx_t **out)
{
    if (secret == NULL || out == NULL || secret_len < SPK_LINK_SECRET_MIN ||
        secret_len > SPK_LINK_SECRET_MAX) {
        return SPK_EINVAL;
    }
    if (g_ex_index < 0) {
        g_ex_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL);
    }
    spk_relay_tls_ctx_t *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        return SPK_ENOMEM;
    }
    c->server = server;
    unsigned int len = 0;
    c->ssl = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
    bool ok = c->ssl != NULL && g_ex_index >= 0 &&
              HMAC(EVP_sha256(), secret, (int)secret_len, (const uint8_t *)PSK_LABEL,
                   strlen(PSK_LABEL), c->psk, &len) != NULL &&
              len == sizeof(c->psk) && SSL_CTX_set_min_proto_version(c->ssl, TLS1_3_VERSION) == 1 &&
              SSL_CTX_set_ciphersuites(c->ssl, "TLS_AES_128_GCM_SHA256") == 1 &&
              SSL_CTX_set_ex_data(c->ssl, g_ex_index, c) == 1;
    if (!ok) {
        spk_relay_tls_ctx_free(c);
        return SPK_ECRYPTO;
    }
    /* No tickets: every connection is a full PSK-DHE handshake. */
    SSL_CTX_set_num_tickets(c->ssl, 0);
    SSL_CTX_set_options(c->ssl, SSL_OP_NO_TICKET);
    if (server) {
        SSL_CTX_set_psk_find_session_callback(c->ssl, find_session_cb);
    } else {
        SSL_CTX_set_psk_use_session_callback(c->ssl, use_session_cb);
    }
    *out = c;
    return 0;
}

void spk_relay_tls_ctx_free(spk_relay_tls_ctx_t *ctx)
{
    if (ctx != NULL) {
        SSL_CTX_free(ctx->ssl);
        spk_wipe(ctx->psk, sizeof(ctx->psk));
        free(ctx);
    }
}

int spk_relay_tls_new(spk_relay_tls_ctx_t *ctx, spk_relay_tls_t **out)
{
    spk_relay_tls_t *t = calloc(1, sizeof(*t));
    if (t == NULL) {
        return SPK_ENOMEM;
    }
    t->ssl = SSL_new(ctx->ssl);
    t->rbio = BIO_new(BIO_s_mem());
    t->wbio = BIO_new(BIO_s_mem());
    if (t->ssl == NULL || t->rbio == NULL || t->wbio == NULL) {
        BIO_free(t->rbio);
        BIO_free(t->wbio);
        SSL_free(t->ssl);
        free(t);
        return SPK_ENOMEM;
    }
    SSL_set_bio(t->ssl, t->rbio, t->wbio);
    if (ctx->server) {
        SSL_set_accept_state(t->ssl);
    } else {
        SSL_set_connect_state(t->ssl);
        (void)SSL_do_handshake(t->ssl); /* the ClientHello is pending */
    }
    *out = t;
    return 0;
}

void spk_relay_tls_free(spk_relay_tls_t *t)
{
    if (t != NULL) {
        SSL_free(t->ssl); /* frees the BIOs */
        free(t);
    }
}

/* After an SSL call returned r <= 0: 0 when it only wants more input, else the final error. */
static int ssl_error(spk_relay_tls_t *t, int r)
{
    int e = SSL_get_error(t->ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        return 0;
    }
    if (!t->failed) {
        t->failed = true;
        t->err = e == SSL_ERROR_ZERO_RETURN ? SPK_EIO : t->up ? SPK_EDECODE : SPK_EVERIFY;
    }
    ERR_clear_error();
    return t->err;
}

int spk_relay_tls_feed(spk_relay_tls_t *t, const uint8_t *in, size_t n)
{
    if (t->failed) {
        return t->err;
    }
    if (n > 0 && BIO_write(t->rbio, in, (int)n) != (int)n) {
        return SPK_ENOMEM;
    }
    if (!SSL_is_init_finished(t->ssl)) {
        int r = SSL_do_handshake(t->ssl);
        if (r <= 0) {
            return ssl_error(t, r);
        }
    }
    t->up = true;
    return 0;
}

int spk_relay_tls_read(spk_relay_tls_t *t, uint8_t *out, size_t cap)
{
    if (t->failed) {
        return t->err;
    }
    if (!SSL_is_init_finished(t->ssl) || cap == 0) {
        return 0;
    }
    int r = SSL_read(t->ssl, out, cap > INT32_MAX ? INT32_MAX : (int)cap);
    return r > 0 ? r : ssl_error(t, r);
}

int spk_relay_tls_write(spk_relay_tls_t *t, const uint8_t *in, size_t n)
{
    if (t->failed) {
        return t->err;
    }
    if (!SSL_is_init_finished(t->ssl)) {
        return SPK_ESTATE;
    }
    int r = SSL_write(t->ssl, in, (int)n);
    return r == (int)n ? 0 : ssl_error(t, r) != 0 ? t->err : SPK_EIO;
}

size_t spk_relay_tls_pending(spk_relay_tls_t *t, uint8_t *out, size_t cap)
{
    int r = BIO_read(t->wbio, out, cap > INT32_MAX ? INT32_MAX : (int)cap);
    return r > 0 ? (size_t)r : 0;
}

bool spk_relay_tls_ready(const spk_relay_tls_t *t)
{
    return SSL_is_init_finished(t->ssl) && !t->failed;
}
