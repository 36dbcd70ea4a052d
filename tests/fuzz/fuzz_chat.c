/* libFuzzer target: the MLS delivery service's request handling (chat.* and mls.* messages into
 * spk_sig_conn_message) with a real store and a LIVE group, so that inputs reach the handlers
 * behind the membership, device and group checks.
 *
 * The harness holds two real members (spk_mls): A, the GP's device "fz-a" on connection 2, and
 * B, the assistant's device "fz-b" on connection 3, in a care_team conversation whose group it
 * built through the protocol (chat.create, members.add, KeyPackages, mls.group.create, claim,
 * mls.commit with a Welcome). Connection 4 is a partner who is not a member (device "fz-c");
 * connection 1 is not signed in. Connections 2-4 follow their conversations live.
 *
 * Input: lines; the first byte of a line picks the connection (1-4; others modulo 4), the rest is
 * the message, in which these are replaced before it is sent (each made fresh where it occurs):
 *   @M  the conversation id            @S  its last seq (decimal, as of the last input)
 *   @K  a valid KeyPackage of the connection's device (base64url)
 *   @A / @B  an application message of A / B for the current epoch
 *   @C / @D  a Commit of A / B (UpdatePath only)      @X  a Commit of A removing B
 *   @P  B's self-remove proposal                     @U  an Update proposal of A
 *   @G  a GroupInfo of A                              @=  the value of the last of these again
 * After each input the harness asks for the conversation (chat.get): when the group moved on
 * (a Commit of the input was accepted) or a connection was closed, the next input starts from a
 * new conversation and group. Oracles: the core does not crash or leak (sanitizers), every
 * request gets exactly one answer, and a conversation the harness did not change keeps its epoch.
 *
 * Built with -DSPK_FUZZ_CHAT_GENERATE (fuzz_chat_gen) the same file writes the seed corpus: the
 * requests of real chat traffic (what spreekload's C devices and the browser client send) as
 * inputs with the placeholders above: fuzz_chat_gen <corpus dir>. */
#define _GNU_SOURCE
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "spk/error.h"
#include "spk/log.h"
#include "spk/mls.h"
#include "spk/signaling.h"
#include "spk/util.h"

#ifndef SPK_FUZZ_CHAT_GENERATE
#include "fuzz_sig_env.h"
#endif

#define N_CONN 4
#define ISSUER "fuzz-issuer"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#ifndef SPK_FUZZ_CHAT_GENERATE

static spk_sig_t *g_sig;
static spk_signer_t g_issuer;

typedef struct {
    const char *sub, *device;
    spk_role_t role;
    bool open, closed;
    int answers; /* answers received since the last request was sent */
    char answer[1 << 16];
} fconn_t;

static fconn_t g_conns[N_CONN + 1] = {
    [1] = {.sub = "", .device = "", .role = SPK_ROLE_NONE},
    [2] = {.sub = "gp-fuzz", .device = "fz-a", .role = SPK_ROLE_GP},
    [3] = {.sub = "da-fuzz", .device = "fz-b", .role = SPK_ROLE_ASSISTANT},
    [4] = {.sub = "apo-fuzz", .device = "fz-c", .role = SPK_ROLE_PARTNER},
};

static spk_mls_t *g_a, *g_b; /* the harness's members */
static char g_conv[64];
static unsigned g_round;
static bool g_live;        /* the group matches the harness's members */
static int64_t g_last_seq; /* the conversation's last seq, as the service last said */

static char *g_prev; /* the last value a placeholder was replaced with (for @=) */

static void fail(const char *what)
{
    fprintf(stderr, "fuzz_chat: %s\n", what);
    abort();
}

static int send_cb(void *ud, uint64_t conn, const char *msg, size_t len)
{
    (void)ud;
    if (conn < 1 || conn > N_CONN) {
        return 0;
    }
    if (memmem(msg, len, "\"re\":", 5) != NULL) {
        fconn_t *c = &g_conns[conn];
        size_t n = len < sizeof(c->answer) - 1 ? len : sizeof(c->answer) - 1;
        memcpy(c->answer, msg, n);
        c->answer[n] = '\0';
        c->answers++;
    }
    return 0;
}

static void close_cb(void *ud, uint64_t conn, int code, const char *reason)
{
    (void)ud;
    (void)code;
    (void)reason;
    if (conn >= 1 && conn <= N_CONN) {
        g_conns[conn].closed = true;
    }
}

/* Sends one message on conn; true when it was answered "ok". */
static bool send_msg(uint64_t conn, const char *msg, size_t n)
{
    fconn_t *c = &g_conns[conn];
    c->answers = 0;
    spk_sig_conn_message(g_sig, conn, msg, n, 0);
    spk_sig_flush(g_sig); /* group commit on (as in spreekd): chat.send is answered here */
    if (c->answers > 1) {
        fail("two answers to one request");
    }
    return c->answers == 1 && strstr(c->answer, "\"type\":\"ok\"") != NULL;
}

static bool req(uint64_t conn, json_t *m)
{
    char *txt = json_dumps(m, JSON_COMPACT);
    json_decref(m);
    if (txt == NULL) {
        fail("json");
    }
    bool ok = send_msg(conn, txt, strlen(txt));
    free(txt);
    return ok;
}

static char *b64(const spk_mls_buf_t *b)
{
    char *s = malloc(spk_b64url_encoded_len(b->n) + 1);
    if (s == NULL) {
        fail("memory");
    }
    spk_b64url_encode(s, b->p, b->n);
    return s;
}

static size_t identity(uint64_t conn, uint8_t *out, size_t cap)
{
    int n = snprintf((char *)out, cap, "spk1\n" ISSUER "\n%s\n%s", g_conns[conn].sub,
                     g_conns[conn].device);
    return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

static void sign_in(uint64_t conn)
{
    fconn_t *c = &g_conns[conn];
    spk_sig_conn_open(g_sig, conn, "127.0.0.1", 0);
    c->open = true;
    c->closed = false;
    if (c->role == SPK_ROLE_NONE) {
        return;
    }
    spk_token_claims_t t;
    memset(&t, 0, sizeof(t));
    snprintf(t.sub, sizeof(t.sub), "%s", c->sub);
    snprintf(t.name, sizeof(t.name), "Fuzz %s", c->sub);
    snprintf(t.practice, sizeof(t.practice), "praktijk-fuzz");
    snprintf(t.acts_for, sizeof(t.acts_for), "%s", c->role == SPK_ROLE_ASSISTANT ? "gp-fuzz" : "");
    snprintf(t.jti, sizeof(t.jti), "j-%s-%u", c->sub, g_round);
    snprintf(t.aud, sizeof(t.aud), "spreekkamer");
    t.role = c->role;
    t.iat = t.nbf = spk_now_s() - 10;
    t.exp = spk_now_s() + 3600;
    char tok[SPK_TOKEN_MAX_LEN];
    if (spk_token_sign(&g_issuer, &t, tok, sizeof(tok)) < 0) {
        fail("token");
    }
    if (!req(conn, json_pack("{s:s, s:s}", "type", "auth", "token", tok)) ||
        !req(conn, json_pack("{s:s, s:s}", "type", "chat.device", "device", c->device)) ||
        !req(conn, json_pack("{s:s}", "type", "chat.sync"))) {
        fail("sign-in");
    }
}

/* A fresh KeyPackage of conn's device; its secret in *secret (may be NULL: dropped). */
static char *key_package(uint64_t conn, spk_mls_buf_t *secret)
{
    uint8_t id[256];
    size_t n = identity(conn, id, sizeof(id));
    spk_mls_buf_t kp = {0}, sec = {0};
    if (n == 0 || spk_mls_key_package_create(id, n, &kp, &sec) != 0) {
        fail("key package");
    }
    char *s = b64(&kp);
    spk_mls_buf_free(&kp);
    if (secret != NULL) {
        *secret = sec;
    } else {
        spk_mls_buf_free(&sec);
    }
    return s;
}

/* A new conversation whose group is A and B, built through the protocol. */
static void build_group(void)
{
    spk_mls_free(g_a);
    spk_mls_free(g_b);
    g_a = g_b = NULL;
    g_live = false;
    char patient[32];
    snprintf(patient, sizeof(patient), "fz-%u", ++g_round);
    if (!req(2, json_pack("{s:s, s:s, s:s}", "type", "chat.create", "kind", "care_team", "patient",
                          patient))) {
        fail("chat.create");
    }
    json_t *a = json_loads(g_conns[2].answer, 0, NULL);
    snprintf(g_conv, sizeof(g_conv), "%s",
             json_string_value(json_object_get(json_object_get(a, "conversation"), "id")));
    json_decref(a);
    if (!req(2, json_pack("{s:s, s:s, s:{s:s}, s:s}", "type", "chat.members.add", "conversation",
                          g_conv, "user", "sub", "da-fuzz", "role", "assistant"))) {
        fail("members.add");
    }
    spk_mls_buf_t sa = {0}, sb = {0}, gi = {0}, commit = {0}, welcome = {0};
    char *ka = key_package(2, &sa);
    char *kb = key_package(3, &sb);
    free(ka);
    if (spk_mls_create(&g_a, (const uint8_t *)g_conv, strlen(g_conv), sa.p, sa.n) != 0 ||
        spk_mls_group_info(g_a, 0, &gi) != 0) {
        fail("create");
    }
    char *gis = b64(&gi);
    bool ok =
        req(2, json_pack("{s:s, s:s, s:s}", "type", "mls.group.create", "conversation", g_conv,
                         "group_info", gis)) &&
        req(3, json_pack("{s:s, s:[s]}", "type", "mls.key_packages.upload", "key_packages", kb)) &&
        req(2, json_pack("{s:s, s:s, s:{s:s}}", "type", "mls.key_packages.claim", "conversation",
                         g_conv, "user", "sub", "da-fuzz"));
    size_t kn = 0;
    uint8_t kpb[16384];
    long got = spk_b64url_decode(kpb, sizeof(kpb), kb, strlen(kb));
    kn = got > 0 ? (size_t)got : 0;
    const uint8_t *add[1] = {kpb};
    spk_mls_commit_opts_t o = {.add = add, .add_len = &kn, .n_add = 1};
    ok = ok && spk_mls_commit(g_a, &o, &commit, &welcome) == 0;
    char *cs = ok ? b64(&commit) : NULL, *ws = ok ? b64(&welcome) : NULL;
    ok = ok && req(2, json_pack("{s:s, s:s, s:s, s:s}", "type", "mls.commit", "conversation",
                                g_conv, "commit", cs, "welcome", ws));
    ok = ok && spk_mls_commit_merge(g_a) == 0 &&
         spk_mls_join(&g_b, sb.p, sb.n, welcome.p, welcome.n, NULL, 0) == 0;
    if (!ok) {
        fail("the group could not be built");
    }
    free(gis);
    free(kb);
    free(cs);
    free(ws);
    spk_mls_buf_free(&sa);
    spk_mls_buf_free(&sb);
    spk_mls_buf_free(&gi);
    spk_mls_buf_free(&commit);
    spk_mls_buf_free(&welcome);
    g_live = true;
    g_last_seq = 2;
}

static void init(void)
{
    static fuzz_sig_env_t env;
    spk_sig_io_t io = {.ud = NULL, .send_cb = send_cb, .close_cb = close_cb};
    fuzz_sig_env_init(&env, "chat", 9, ISSUER, &io);
    g_sig = env.sig;
    g_issuer = env.issuer;
}

/* The commit or message a placeholder stands for (base64url, malloc'd). */
static char *made(char what, uint64_t conn)
{
    spk_mls_buf_t b = {0};
    int rc = SPK_EINVAL;
    spk_mls_t *g = what == 'B' || what == 'D' || what == 'P' ? g_b : g_a;
    static const uint8_t text[] = "fuzz";
    uint32_t leaf_b = 1;
    spk_mls_commit_opts_t rm = {.remove = &leaf_b, .n_remove = 1};
    switch (what) {
    case 'K':
        return key_package(conn, NULL);
    case 'A':
    case 'B':
        rc = spk_mls_encrypt(g, text, sizeof(text) - 1, 0, &b);
        break;
    case 'C':
    case 'D':
        rc = spk_mls_commit(g, NULL, &b, NULL);
        break;
    case 'X':
        rc = spk_mls_commit(g, &rm, &b, NULL);
        break;
    case 'P':
        rc = spk_mls_leave(g, &b);
        break;
    case 'U':
        rc = spk_mls_propose_update(g, &b);
        break;
    case 'G':
        rc = spk_mls_group_info(g, 0, &b);
        break;
    default:
        break;
    }
    char *s = rc == 0 ? b64(&b) : strdup("");
    spk_mls_buf_free(&b);
    return s;
}

/* Copies in[0..n) to out with the placeholders replaced; returns the new length. */
static size_t substitute(char *out, size_t cap, const uint8_t *in, size_t n, uint64_t conn)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o + 1 < cap; i++) {
        char what = in[i] == '@' && i + 1 < n ? (char)in[i + 1] : 0;
        if (what == 0 || strchr("MSKABCDXPUG=", what) == NULL) {
            out[o++] = (char)in[i];
            continue;
        }
        i++;
        char num[32];
        char *s = NULL;
        const char *v = num;
        if (what == 'M') {
            v = g_conv;
        } else if (what == 'S') {
            snprintf(num, sizeof(num), "%lld", (long long)g_last_seq);
        } else if (what == '=') {
            v = g_prev != NULL ? g_prev : "";
        } else if (g_live) {
            v = s = made(what, conn);
            free(g_prev);
            g_prev = strdup(s);
        } else {
            v = "";
        }
        size_t vn = strlen(v);
        if (o + vn + 1 < cap) {
            memcpy(out + o, v, vn);
            o += vn;
        }
        free(s);
    }
    return o;
}

/* Does the service's conversation still match the harness's members? */
static bool still_live(void)
{
    for (uint64_t c = 2; c <= N_CONN; c++) {
        if (g_conns[c].closed) {
            return false;
        }
    }
    if (!req(2, json_pack("{s:s, s:s}", "type", "chat.get", "conversation", g_conv))) {
        return false;
    }
    json_t *a = json_loads(g_conns[2].answer, 0, NULL);
    json_t *conv = json_object_get(a, "conversation");
    g_last_seq = (int64_t)json_integer_value(json_object_get(conv, "last_seq"));
    bool same =
        json_integer_value(json_object_get(conv, "epoch")) == (json_int_t)spk_mls_epoch(g_a) &&
        json_array_size(json_object_get(conv, "devices")) == 2;
    json_decref(a);
    return same;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (g_sig == NULL) {
        init();
        spk_sig_batch_chat(g_sig, true);
    }
    for (uint64_t c = 1; c <= N_CONN; c++) {
        if (g_conns[c].open && (g_conns[c].closed || c == 1)) {
            spk_sig_conn_close(g_sig, c);
            g_conns[c].open = false;
            g_live = g_live && c == 1;
        }
        if (!g_conns[c].open) {
            sign_in(c);
        }
    }
    if (!g_live) {
        build_group();
    }
    static char buf[1 << 17];
    size_t off = 0;
    while (off < size) {
        const uint8_t *nl = memchr(data + off, '\n', size - off);
        size_t end = nl ? (size_t)(nl - data) : size;
        if (end > off) {
            uint64_t conn = 1 + (data[off] + N_CONN - 1) % N_CONN; /* 1..4 as themselves */
            size_t n = substitute(buf, sizeof(buf), data + off + 1, end - off - 1, conn);
            send_msg(conn, buf, n);
            if (getenv("SPK_FUZZ_VERBOSE") != NULL) {
                fprintf(stderr, "conn %llu %.60s -> %.100s\n", (unsigned long long)conn, buf,
                        g_conns[conn].answer);
            }
        }
        off = end + 1;
    }
    spk_mls_commit_discard(g_a);
    spk_mls_commit_discard(g_b);
    g_live = still_live();
    return 0;
}

#else /* generator: the seed corpus */

static const char *corpus_dir;
static int n_seeds;

static void seed(const char *name, const char *lines)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", corpus_dir, name);
    FILE *f = fopen(path, "wb");
    if (f == NULL) {
        perror(path);
        exit(1);
    }
    fputs(lines, f);
    fclose(f);
    n_seeds++;
}

/* Connection bytes: '\x01' anonymous, '\x02' A (GP), '\x03' B (assistant), '\x04' outsider. */
int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: fuzz_chat_gen <corpus dir>\n");
        return 2;
    }
    corpus_dir = argv[1];
    seed("send",
         "\x02{\"id\":7,\"type\":\"chat.send\",\"conversation\":\"@M\",\"message\":\"@A\"}\n"
         "\x03{\"id\":3,\"type\":\"chat.send\",\"conversation\":\"@M\",\"message\":\"@B\"}\n");
    seed("send_replay", "\x02{\"id\":1,\"type\":\"chat.send\",\"conversation\":\"@M\",\"message\":"
                        "\"@A\"}\n\x02{\"id\":2,\"type\":\"chat.send\",\"conversation\":\"@M\","
                        "\"message\":\"@=\"}\n");
    seed("commit_replay", "\x02{\"id\":1,\"type\":\"mls.commit\",\"conversation\":\"@M\","
                          "\"commit\":\"@C\"}\n\x02{\"id\":2,\"type\":\"mls.commit\","
                          "\"conversation\":\"@M\",\"commit\":\"@=\"}\n");
    seed("send_wrong_sender",
         "\x03{\"id\":1,\"type\":\"chat.send\",\"conversation\":\"@M\",\"message\":\"@A\"}\n"
         "\x04{\"id\":2,\"type\":\"chat.send\",\"conversation\":\"@M\",\"message\":\"@A\"}\n");
    seed("send_not_app", "\x02{\"id\":1,\"type\":\"chat.send\",\"conversation\":\"@M\","
                         "\"message\":\"@C\"}\n");
    seed("commit",
         "\x02{\"id\":4,\"type\":\"mls.commit\",\"conversation\":\"@M\",\"commit\":\"@C\"}\n");
    seed("commit_race", "\x03{\"id\":1,\"type\":\"mls.commit\",\"conversation\":\"@M\",\"commit\":"
                        "\"@D\"}\n\x02{\"id\":1,\"type\":\"mls.commit\",\"conversation\":\"@M\","
                        "\"commit\":\"@C\"}\n");
    seed("commit_remove", "\x02{\"id\":1,\"type\":\"mls.commit\",\"conversation\":\"@M\","
                          "\"commit\":\"@X\"}\n\x03{\"id\":2,\"type\":\"chat.send\","
                          "\"conversation\":\"@M\",\"message\":\"@B\"}\n");
    seed("commit_other_sender",
         "\x03{\"id\":1,\"type\":\"mls.commit\",\"conversation\":\"@M\",\"commit\":\"@C\"}\n");
    seed("commit_welcome", "\x02{\"id\":1,\"type\":\"mls.commit\",\"conversation\":\"@M\","
                           "\"commit\":\"@C\",\"welcome\":\"@C\"}\n");
    seed("proposal_leave", "\x03{\"id\":1,\"type\":\"mls.proposal\",\"conversation\":\"@M\","
                           "\"proposal\":\"@P\"}\n\x02{\"id\":2,\"type\":\"mls.commit\","
                           "\"conversation\":\"@M\",\"commit\":\"@C\"}\n");
    seed("proposal_update", "\x02{\"id\":1,\"type\":\"mls.proposal\",\"conversation\":\"@M\","
                            "\"proposal\":\"@U\"}\n\x02{\"id\":1,\"type\":\"mls.proposal\","
                            "\"conversation\":\"@M\",\"proposal\":\"@U\"}\n");
    seed("kp_upload", "\x03{\"id\":1,\"type\":\"mls.key_packages.upload\",\"key_packages\":"
                      "[\"@K\",\"@K\"],\"last_resort\":\"@K\"}\n\x03{\"id\":2,\"type\":"
                      "\"mls.key_packages.status\"}\n");
    seed("kp_wrong_owner", "\x04{\"id\":1,\"type\":\"mls.key_packages.upload\",\"key_packages\":"
                           "[\"@K\"]}\n\x03{\"id\":1,\"type\":\"mls.key_packages.upload\","
                           "\"key_packages\":[\"@K\",\"@G\"]}\n");
    seed("kp_claim", "\x02{\"id\":1,\"type\":\"mls.key_packages.claim\",\"conversation\":\"@M\","
                     "\"user\":{\"sub\":\"da-fuzz\"}}\n\x04{\"id\":1,\"type\":"
                     "\"mls.key_packages.claim\",\"conversation\":\"@M\",\"user\":{\"sub\":"
                     "\"gp-fuzz\",\"iss\":\"fuzz-issuer\"}}\n");
    seed("group_create", "\x02{\"id\":1,\"type\":\"chat.create\",\"kind\":\"care_team\","
                         "\"patient\":\"p-1\",\"title\":\"t\"}\n\x02{\"id\":1,\"type\":"
                         "\"mls.group.create\",\"conversation\":\"@M\",\"group_info\":\"@G\"}\n");
    seed("sync_ack", "\x03{\"id\":1,\"type\":\"chat.sync\",\"conversation\":\"@M\"}\n\x03{\"id\":2,"
                     "\"type\":\"chat.ack\",\"conversation\":\"@M\",\"seq\":@S}\n\x03{\"id\":3,"
                     "\"type\":\"chat.ack\",\"conversation\":\"@M\",\"seq\":99999}\n");
    seed("members", "\x02{\"id\":1,\"type\":\"chat.members.add\",\"conversation\":\"@M\","
                    "\"user\":{\"sub\":\"apo-fuzz\"},\"role\":\"partner\",\"name\":\"A\"}\n"
                    "\x04{\"id\":2,\"type\":\"chat.get\",\"conversation\":\"@M\"}\n\x02{\"id\":3,"
                    "\"type\":\"chat.members.remove\",\"conversation\":\"@M\",\"user\":{\"sub\":"
                    "\"apo-fuzz\"}}\n\x03{\"id\":4,\"type\":\"chat.members.remove\","
                    "\"conversation\":\"@M\",\"user\":{\"sub\":\"da-fuzz\"}}\n");
    seed("list_get", "\x02{\"id\":1,\"type\":\"chat.list\"}\n\x04{\"id\":2,\"type\":\"chat.list\","
                     "\"practice\":\"praktijk-fuzz\"}\n\x03{\"id\":3,\"type\":\"chat.get\","
                     "\"conversation\":\"@M\"}\n");
    seed("device", "\x02{\"id\":1,\"type\":\"chat.device\",\"device\":\"other\"}\n\x01{\"id\":2,"
                   "\"type\":\"chat.device\",\"device\":\"x\"}\n\x01{\"id\":3,\"type\":"
                   "\"chat.send\",\"conversation\":\"@M\",\"message\":\"@A\"}\n");
    seed("consult_chat", "\x02{\"id\":1,\"type\":\"consult.create\",\"patient\":\"p-2\"}\n"
                         "\x02{\"id\":2,\"type\":\"chat.create\",\"kind\":\"consult\","
                         "\"consult\":\"c_x\"}\n\x03{\"id\":3,\"type\":\"chat.create\",\"kind\":"
                         "\"specialist_question\",\"consult\":\"c_x\"}\n");
    seed("bad_fields", "\x02{\"id\":1,\"type\":\"chat.send\",\"conversation\":\"@M\",\"message\":"
                       "\"***\"}\n\x02{\"id\":2,\"type\":\"mls.commit\",\"conversation\":\"@M\","
                       "\"commit\":7}\n\x02{\"id\":3,\"type\":\"chat.ack\",\"conversation\":"
                       "\"@M\",\"seq\":-1}\n\x02{\"id\":4,\"type\":\"chat.members.add\","
                       "\"conversation\":\"@M\",\"user\":\"x\",\"role\":\"admin\"}\n");
    printf("wrote %d seeds to %s\n", n_seeds, corpus_dir);
    return 0;
}

#endif
