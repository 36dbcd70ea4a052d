/* Fuzzes the events other nodes publish (spk_sig_bus_input) with a real store: a GP joined to a
 * consult with a patient in its lobby, so that events naming them reach the code that reads the
 * consult again and tells connections. Input: one or more events separated by newlines; "@C"
 * and "@P" stand for the consult's and the participant's ids. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spk/log.h"
#include "spk/signaling.h"
#include "spk/util.h"
#include "fuzz_sig_env.h"

static spk_sig_t *g_sig;
static char g_consult[64], g_part[64];

static void grab(const char *msg, size_t len, const char *key, char *out, size_t cap)
{
    const char *p = memmem(msg, len, key, strlen(key));
    if (p == NULL || out[0] != '\0') {
        return;
    }
    p += strlen(key) - 2; /* keep the prefix ("c_", "p_") */
    size_t n = 0;
    while (p + n < msg + len && p[n] != '"' && n < cap - 1) {
        n++;
    }
    memcpy(out, p, n);
    out[n] = '\0';
}

static int send_cb(void *ud, uint64_t conn, const char *msg, size_t len)
{
    (void)ud;
    (void)conn;
    grab(msg, len, "\"id\":\"c_", g_consult, sizeof(g_consult));
    grab(msg, len, "\"id\":\"p_", g_part, sizeof(g_part));
    return 0;
}

static void close_cb(void *ud, uint64_t conn, int code, const char *reason)
{
    (void)ud;
    (void)conn;
    (void)code;
    (void)reason;
}

static void publish_cb(void *ud, const char *msg, size_t len)
{
    (void)ud;
    (void)msg;
    (void)len;
}

static void say(uint64_t conn, const char *msg)
{
    spk_sig_conn_message(g_sig, conn, msg, strlen(msg), 0);
}

static void init(void)
{
    static fuzz_sig_env_t env;
    spk_sig_io_t io = {.send_cb = send_cb, .close_cb = close_cb, .publish_cb = publish_cb};
    fuzz_sig_env_init(&env, "bus", 9, "fuzz-issuer", &io);
    g_sig = env.sig;
    spk_token_claims_t c;
    memset(&c, 0, sizeof(c));
    snprintf(c.sub, sizeof(c.sub), "gp-fuzz");
    snprintf(c.name, sizeof(c.name), "Fuzz GP");
    snprintf(c.practice, sizeof(c.practice), "praktijk-fuzz");
    snprintf(c.jti, sizeof(c.jti), "j-bus");
    snprintf(c.aud, sizeof(c.aud), "spreekkamer");
    c.role = SPK_ROLE_GP;
    c.iat = c.nbf = spk_now_s() - 10;
    c.exp = spk_now_s() + 24 * 3600;
    char tok[SPK_TOKEN_MAX_LEN], msg[SPK_TOKEN_MAX_LEN + 64];
    if (spk_token_sign(&env.issuer, &c, tok, sizeof(tok)) < 0) {
        abort();
    }
    snprintf(msg, sizeof(msg), "{\"type\":\"auth\",\"token\":\"%s\"}", tok);
    spk_sig_conn_open(g_sig, 1, "127.0.0.1", 0);
    spk_sig_conn_open(g_sig, 2, "127.0.0.1", 0);
    say(1, msg);
    say(1, "{\"type\":\"consult.create\",\"patient\":\"pseudo-fuzz\"}");
    char req[256];
    snprintf(req, sizeof(req), "{\"type\":\"consult.join\",\"consult\":\"%s\"}", g_consult);
    say(1, req);
    snprintf(req, sizeof(req), "{\"type\":\"invite.create\",\"consult\":\"%s\"}", g_consult);
    say(1, req);
}

/* Copies in with @C / @P replaced by the ids; returns the length. */
static size_t substitute(char *out, size_t cap, const uint8_t *in, size_t n)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o + 80 < cap; i++) {
        if (in[i] == '@' && i + 1 < n && (in[i + 1] == 'C' || in[i + 1] == 'P')) {
            o += (size_t)snprintf(out + o, cap - o, "%s", in[i + 1] == 'C' ? g_consult : g_part);
            i++;
        } else {
            out[o++] = (char)in[i];
        }
    }
    return o;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (g_sig == NULL) {
        init();
    }
    size_t off = 0;
    while (off < size) {
        const uint8_t *nl = memchr(data + off, '\n', size - off);
        size_t end = nl ? (size_t)(nl - data) : size;
        if (end > off) {
            static char buf[1 << 16];
            size_t n = substitute(buf, sizeof(buf), data + off, end - off);
            spk_sig_bus_input(g_sig, buf, n);
        }
        off = end + 1;
    }
    spk_sig_tick(g_sig, spk_now_ms());
    return 0;
}
