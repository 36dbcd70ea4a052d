/* Fuzzes the signaling core's message handling (spk_sig_conn_message) with a real store.
 * Input: one or more messages separated by newlines. Each message goes to one of three
 * connections chosen by its first byte: unauthenticated, signed in as a GP, or signed in as
 * an assistant, so both the envelope parser and every action handler see arbitrary input. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "spk/log.h"
#include "spk/signaling.h"
#include "spk/util.h"
#include "fuzz_sig_env.h"

static spk_sig_t *g_sig;
static spk_signer_t g_issuer;
static size_t g_sent;
/* Last consult id, participant id and invite code seen in answers: "@C", "@P" and "@I" in the
 * input are replaced by them so the fuzzer reaches the handlers behind the id checks. */
static char g_last[3][64];

static void remember(const char *msg, size_t len, const char *key, int slot)
{
    const char *p = memmem(msg, len, key, strlen(key));
    if (p == NULL) {
        return;
    }
    p += strlen(key);
    size_t n = 0;
    while (p + n < msg + len && p[n] != '"' && n < sizeof(g_last[slot]) - 1) {
        n++;
    }
    memcpy(g_last[slot], p, n);
    g_last[slot][n] = '\0';
}

static int send_cb(void *ud, uint64_t conn, const char *msg, size_t len)
{
    g_sent += len;
    remember(msg, len, "\"id\":\"c_", 0);
    remember(msg, len, "\"id\":\"p_", 1);
    remember(msg, len, "\"code\":\"", 2);
    return 0;
}

/* Copies in[0..n) to out with the @C/@P/@I substitutions; returns the new length. */
static size_t substitute(char *out, size_t cap, const uint8_t *in, size_t n)
{
    static const char *const pre[3] = {"c_", "p_", ""};
    size_t o = 0;
    for (size_t i = 0; i < n && o + 80 < cap; i++) {
        int slot = -1;
        if (in[i] == '@' && i + 1 < n) {
            slot = in[i + 1] == 'C' ? 0 : in[i + 1] == 'P' ? 1 : in[i + 1] == 'I' ? 2 : -1;
        }
        if (slot < 0) {
            out[o++] = (char)in[i];
            continue;
        }
        o += (size_t)snprintf(out + o, cap - o, "%s%s", pre[slot], g_last[slot]);
        i++;
    }
    return o;
}

static void close_cb(void *ud, uint64_t conn, int code, const char *reason)
{
}

static void sign_in(uint64_t conn, const char *sub, spk_role_t role, const char *acts_for)
{
    spk_token_claims_t c;
    memset(&c, 0, sizeof(c));
    snprintf(c.sub, sizeof(c.sub), "%s", sub);
    snprintf(c.name, sizeof(c.name), "Fuzz %s", sub);
    snprintf(c.practice, sizeof(c.practice), "praktijk-fuzz");
    snprintf(c.acts_for, sizeof(c.acts_for), "%s", acts_for);
    snprintf(c.jti, sizeof(c.jti), "j-%s", sub);
    c.role = role;
    snprintf(c.aud, sizeof(c.aud), "spreekkamer");
    c.iat = c.nbf = spk_now_s() - 10;
    c.exp = spk_now_s() + 3600;
    char tok[SPK_TOKEN_MAX_LEN], msg[SPK_TOKEN_MAX_LEN + 64];
    if (spk_token_sign(&g_issuer, &c, tok, sizeof(tok)) < 0) {
        abort();
    }
    int n = snprintf(msg, sizeof(msg), "{\"type\":\"auth\",\"token\":\"%s\"}", tok);
    spk_sig_conn_message(g_sig, conn, msg, (size_t)n, 0);
}

static void init(void)
{
    static fuzz_sig_env_t env;
    spk_sig_io_t io = {.ud = NULL, .send_cb = send_cb, .close_cb = close_cb};
    fuzz_sig_env_init(&env, "sig", 7, "fuzz-issuer", &io);
    g_sig = env.sig;
    g_issuer = env.issuer;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (g_sig == NULL) {
        init();
    }
    /* Fresh connections each run so sessions do not leak state between inputs. */
    for (uint64_t c = 1; c <= 3; c++) {
        spk_sig_conn_open(g_sig, c, "127.0.0.1", 0);
    }
    sign_in(2, "gp-fuzz", SPK_ROLE_GP, "");
    sign_in(3, "da-fuzz", SPK_ROLE_ASSISTANT, "gp-fuzz");
    size_t off = 0;
    while (off < size) {
        const uint8_t *nl = memchr(data + off, '\n', size - off);
        size_t end = nl ? (size_t)(nl - data) : size;
        if (end > off) {
            static char buf[1 << 16];
            uint64_t conn = 1 + data[off] % 3;
            size_t n = substitute(buf, sizeof(buf), data + off + 1, end - off - 1);
            spk_sig_conn_message(g_sig, conn, buf, n, 0);
        }
        off = end + 1;
    }
    for (uint64_t c = 1; c <= 3; c++) {
        spk_sig_conn_close(g_sig, c);
    }
    return 0;
}
