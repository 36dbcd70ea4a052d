/* spreekload --chat-agent --port P: C chat devices (chat_dev.h) driven over stdin/stdout, so
 * that a test can put C members and members running the browser's MLS library into one
 * conversation (tests/integration/chat/cdevice.mjs is the other end).
 *
 * Input: one JSON command per line, {"id": n, "cmd": ..., "dev": <name>, ...}. Output: one JSON
 * object per line: answers {"re": n, "code": null | "<error>", ...} (each command is answered
 * once, when it is done) and events {"ev": ..., "dev": <name>, ...} as they happen:
 *   message  conversation, seq, sender ("<sub>/<device>"), text   (each seq once)
 *   joined   conversation                  removed  conversation
 *   commit   conversation, seq, epoch      error    what          end  why
 * Commands (dev names a device of this process):
 *   open {token | invite + name, device, key_packages}   -> identity, iss, sub, participant,
 *                                                           session_token (a patient's)
 *   connect / disconnect                                  (offline and back; state kept)
 *   req {msg}              any protocol request           -> answer
 *   sync {conversation?}   create_group {conversation}
 *   add_devices {conversation, user: {sub, iss?}, retries}
 *   commit {conversation, remove: [leaf], retries}        propose_leave {conversation}
 *   send {conversation, text}  encrypt {conversation, text} -> message (base64url, not sent)
 *   send_raw {conversation, message}
 *   commit_prepare {conversation} -> commit (built, kept pending, not sent)
 *   commit_merge {conversation, seq}   commit_discard {conversation}
 *   state {conversation}   -> in_group, removed, epoch, authenticator (hex), seen, members
 *   leaves {conversation, sub} -> leaves    upload {n}     ack {}     free      quit */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat_dev.h"
#include "load_chat.h"
#include "spk/error.h"
#include "spk/util.h"

typedef struct {
    char name[64];
    cdev_t *d;
    json_int_t pending_open; /* command waiting for ready_cb, 0: none */
} agent_dev_t;

typedef struct {
    uv_loop_t loop;
    uv_pipe_t in;
    cdev_env_t env;
    agent_dev_t *devs;
    size_t n_devs, cap_devs;
    char *line;
    size_t line_len, line_cap;
    bool quit;
} agent_t;

static agent_t A;

static void out(json_t *o)
{
    char *txt = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (txt != NULL) {
        fputs(txt, stdout);
        fputc('\n', stdout);
        fflush(stdout);
        free(txt);
    }
}

static agent_dev_t *dev_of(cdev_t *d)
{
    for (size_t i = 0; i < A.n_devs; i++) {
        if (A.devs[i].d == d) {
            return &A.devs[i];
        }
    }
    return NULL;
}

static agent_dev_t *dev_named(const char *name)
{
    for (size_t i = 0; i < A.n_devs; i++) {
        if (A.devs[i].d != NULL && strcmp(A.devs[i].name, name) == 0) {
            return &A.devs[i];
        }
    }
    return NULL;
}

static void event(cdev_t *d, const char *ev, json_t *fields)
{
    agent_dev_t *ad = dev_of(d);
    json_object_set_new(fields, "ev", json_string(ev));
    json_object_set_new(fields, "dev", json_string(ad != NULL ? ad->name : "?"));
    out(fields);
}

static void answer(json_int_t re, const char *code, json_t *fields)
{
    json_t *o = fields != NULL ? fields : json_object();
    json_object_set_new(o, "re", json_integer(re));
    json_object_set_new(o, "code", code != NULL ? json_string(code) : json_null());
    out(o);
}

/* ---- device callbacks ---- */

static void on_message(cdev_t *d, cdev_conv_t *cv, int64_t seq, const char *sender,
                       const uint8_t *pt, size_t n, uint64_t t_ns)
{
    (void)t_ns;
    json_t *text = json_stringn((const char *)pt, n);
    if (text == NULL) {
        char *hex = malloc(2 * n + 1);
        if (hex != NULL) {
            spk_hex_encode(hex, pt, n);
            text = json_string(hex);
            free(hex);
        }
    }
    event(d, "message",
          json_pack("{s:s, s:I, s:s, s:o}", "conversation", cv->id, "seq", (json_int_t)seq,
                    "sender", sender, "text", text != NULL ? text : json_null()));
}

static void on_joined(cdev_t *d, cdev_conv_t *cv)
{
    event(d, "joined",
          json_pack("{s:s, s:I}", "conversation", cv->id, "seq", (json_int_t)cv->seen));
}

static void on_commit(cdev_t *d, cdev_conv_t *cv, int64_t seq)
{
    event(d, "commit",
          json_pack("{s:s, s:I, s:I}", "conversation", cv->id, "seq", (json_int_t)seq, "epoch",
                    (json_int_t)spk_mls_epoch(cv->g)));
}

static void on_removed(cdev_t *d, cdev_conv_t *cv)
{
    event(d, "removed",
          json_pack("{s:s, s:I}", "conversation", cv->id, "seq", (json_int_t)cv->seen));
}

static void on_ready(cdev_t *d)
{
    agent_dev_t *ad = dev_of(d);
    if (ad == NULL || ad->pending_open == 0) {
        return;
    }
    json_int_t re = ad->pending_open;
    ad->pending_open = 0;
    answer(re, NULL,
           json_pack("{s:s%, s:s, s:s, s:s, s:s}", "identity", (const char *)d->identity,
                     d->identity_len, "iss", d->iss, "sub", d->sub, "participant", d->participant,
                     "session_token", d->token != NULL ? d->token : ""));
}

static void on_end(cdev_t *d, const char *why)
{
    agent_dev_t *ad = dev_of(d);
    if (ad != NULL && ad->pending_open != 0) {
        json_int_t re = ad->pending_open;
        ad->pending_open = 0;
        answer(re, "connection_failed", json_pack("{s:s}", "why", why));
    }
    event(d, "end", json_pack("{s:s}", "why", why));
}

static void on_error(cdev_t *d, const char *what)
{
    event(d, "error", json_pack("{s:s}", "what", what));
}

static const cdev_cbs_t cbs = {.message_cb = on_message,
                               .joined_cb = on_joined,
                               .commit_cb = on_commit,
                               .removed_cb = on_removed,
                               .ready_cb = on_ready,
                               .end_cb = on_end,
                               .error_cb = on_error};

/* ---- commands ---- */

/* The answer to a command that was one request: the request's answer as "answer". */
static void req_done(cdev_t *d, void *ud, const char *code, json_t *m)
{
    (void)d;
    answer((json_int_t)(intptr_t)ud, code,
           json_pack("{s:O}", "answer", m != NULL ? m : json_null()));
}

static void cmd_open(json_int_t id, const char *name, json_t *c)
{
    if (dev_named(name) != NULL) {
        answer(id, "exists", NULL);
        return;
    }
    if (A.n_devs == A.cap_devs) {
        size_t ncap = A.cap_devs ? A.cap_devs * 2 : 16;
        agent_dev_t *n = realloc(A.devs, ncap * sizeof(*n));
        if (n == NULL) {
            answer(id, "internal", NULL);
            return;
        }
        A.devs = n;
        A.cap_devs = ncap;
    }
    json_t *kp = json_object_get(c, "key_packages");
    const char *token = json_string_value(json_object_get(c, "token"));
    const char *invite = json_string_value(json_object_get(c, "invite"));
    cdev_t *d = cdev_new(&A.env, token, invite, cdev_str(c, "name"), cdev_str(c, "device"),
                         json_is_integer(kp) ? (int)json_integer_value(kp) : 3);
    if (d == NULL) {
        answer(id, "internal", NULL);
        return;
    }
    agent_dev_t *ad = &A.devs[A.n_devs++];
    memset(ad, 0, sizeof(*ad));
    snprintf(ad->name, sizeof(ad->name), "%s", name);
    ad->d = d;
    ad->pending_open = id;
    if (cdev_connect(d) != 0) {
        ad->pending_open = 0;
        answer(id, "connection_failed", NULL);
    }
}

static void cmd_state(json_int_t id, cdev_t *d, const char *conv)
{
    cdev_conv_t *cv = cdev_conv(d, conv, false);
    json_t *o = json_pack("{s:b, s:b, s:I}", "in_group", cv != NULL && cv->g != NULL, "removed",
                          cv != NULL && cv->removed, "seen", (json_int_t)(cv ? cv->seen : 0));
    if (cv != NULL && cv->g != NULL) {
        uint8_t auth[SPK_MLS_EPOCH_AUTHENTICATOR_LEN];
        char hex[2 * sizeof(auth) + 1];
        spk_mls_epoch_authenticator(cv->g, auth);
        spk_hex_encode(hex, auth, sizeof(auth));
        json_object_set_new(o, "epoch", json_integer((json_int_t)spk_mls_epoch(cv->g)));
        json_object_set_new(o, "authenticator", json_string(hex));
        json_object_set_new(o, "own_leaf", json_integer(spk_mls_own_leaf(cv->g)));
        json_t *members = json_array();
        for (uint32_t l = 0; l < spk_mls_leaf_count(cv->g); l++) {
            const uint8_t *ident;
            size_t n;
            if (spk_mls_member_identity(cv->g, l, &ident, &n) == 0) {
                json_array_append_new(members, json_pack("{s:i, s:s%}", "leaf", (int)l, "identity",
                                                         (const char *)ident, n));
            }
        }
        json_object_set_new(o, "members", members);
    }
    answer(id, NULL, o);
}

/* A Commit built and kept pending without sending it (the test sends it), then merged (with the
 * seq the service gave it) or discarded. */
static void cmd_pending(json_int_t id, const char *cmd, cdev_t *d, const char *conv, json_t *c)
{
    cdev_conv_t *cv = cdev_conv(d, conv, false);
    if (cv == NULL || cv->g == NULL) {
        answer(id, "bad_state", NULL);
        return;
    }
    if (strcmp(cmd, "commit_discard") == 0) {
        spk_mls_commit_discard(cv->g);
        answer(id, NULL, NULL);
        return;
    }
    if (strcmp(cmd, "commit_merge") == 0) {
        int rc = spk_mls_commit_merge(cv->g);
        int64_t seq = (int64_t)json_integer_value(json_object_get(c, "seq"));
        if (rc == 0 && seq > cv->seen) {
            cv->seen = seq;
        }
        answer(id, rc == 0 ? NULL : spk_err_wire(rc), NULL);
        return;
    }
    spk_mls_buf_t commit = {0};
    int rc = spk_mls_commit(cv->g, NULL, &commit, NULL);
    char *b64 = rc == 0 ? cdev_b64(commit.p, commit.n) : NULL;
    spk_mls_buf_free(&commit);
    answer(id, rc == 0 ? NULL : spk_err_wire(rc),
           b64 != NULL ? json_pack("{s:s}", "commit", b64) : NULL);
    free(b64);
}

static void cmd_device(json_int_t id, const char *cmd, agent_dev_t *ad, json_t *c)
{
    cdev_t *d = ad->d;
    void *ud = (void *)(intptr_t)id;
    const char *conv = cdev_str(c, "conversation");
    json_t *retries = json_object_get(c, "retries");
    int tries = json_is_integer(retries) ? (int)json_integer_value(retries) : 5;
    if (strcmp(cmd, "req") == 0) {
        cdev_request(d, json_deep_copy(json_object_get(c, "msg")), req_done, ud);
    } else if (strcmp(cmd, "connect") == 0) {
        ad->pending_open = id;
        if (cdev_connect(d) != 0) {
            ad->pending_open = 0;
            answer(id, "connection_failed", NULL);
        }
    } else if (strcmp(cmd, "disconnect") == 0) {
        cdev_disconnect(d);
        answer(id, NULL, NULL);
    } else if (strcmp(cmd, "sync") == 0) {
        cdev_sync(d, conv[0] ? conv : NULL, req_done, ud);
    } else if (strcmp(cmd, "create_group") == 0) {
        cdev_group_create(d, conv, req_done, ud);
    } else if (strcmp(cmd, "add_devices") == 0) {
        json_t *u = json_object_get(c, "user");
        const char *iss = json_string_value(json_object_get(u, "iss"));
        cdev_add_devices(d, conv, iss, cdev_str(u, "sub"), tries, req_done, ud);
    } else if (strcmp(cmd, "commit") == 0) {
        json_t *rm = json_object_get(c, "remove");
        uint32_t leaves[64];
        size_t n = 0;
        for (size_t i = 0; i < json_array_size(rm) && n < 64; i++) {
            leaves[n++] = (uint32_t)json_integer_value(json_array_get(rm, i));
        }
        cdev_commit_opts_t o = {.remove = leaves, .n_remove = n, .retries = tries};
        cdev_commit(d, conv, &o, req_done, ud);
    } else if (strcmp(cmd, "propose_leave") == 0) {
        int rc = cdev_propose_leave(d, conv, req_done, ud);
        if (rc != 0) {
            answer(id, spk_err_wire(rc), NULL);
        }
    } else if (strcmp(cmd, "send") == 0 || strcmp(cmd, "encrypt") == 0) {
        const char *text = cdev_str(c, "text");
        char *b64 = NULL;
        int rc = cdev_encrypt_b64(d, conv, (const uint8_t *)text, strlen(text), &b64);
        if (rc != 0) {
            answer(id, spk_err_wire(rc), NULL);
        } else if (cmd[0] == 's') {
            cdev_send_b64(d, conv, b64, req_done, ud);
        } else {
            answer(id, NULL, json_pack("{s:s}", "message", b64));
        }
        free(b64);
    } else if (strcmp(cmd, "commit_prepare") == 0 || strcmp(cmd, "commit_merge") == 0 ||
               strcmp(cmd, "commit_discard") == 0) {
        cmd_pending(id, cmd, d, conv, c);
    } else if (strcmp(cmd, "send_raw") == 0) {
        cdev_send_b64(d, conv, cdev_str(c, "message"), req_done, ud);
    } else if (strcmp(cmd, "state") == 0) {
        cmd_state(id, d, conv);
    } else if (strcmp(cmd, "leaves") == 0) {
        uint32_t leaves[64];
        size_t n = cdev_leaves_of(d, conv, cdev_str(c, "sub"), leaves, 64);
        json_t *arr = json_array();
        for (size_t i = 0; i < n; i++) {
            json_array_append_new(arr, json_integer(leaves[i]));
        }
        answer(id, NULL, json_pack("{s:o}", "leaves", arr));
    } else if (strcmp(cmd, "upload") == 0) {
        cdev_upload(d, (int)json_integer_value(json_object_get(c, "n")), req_done, ud);
    } else if (strcmp(cmd, "ack") == 0) {
        cdev_ack_flush(d);
        answer(id, NULL, NULL);
    } else if (strcmp(cmd, "free") == 0) {
        cdev_free(d);
        ad->d = NULL;
        answer(id, NULL, NULL);
    } else {
        answer(id, "unknown_command", NULL);
    }
}

static void command(const char *line, size_t n)
{
    json_error_t err;
    json_t *c = json_loadb(line, n, 0, &err);
    json_int_t id = json_integer_value(json_object_get(c, "id"));
    const char *cmd = cdev_str(c, "cmd");
    const char *name = cdev_str(c, "dev");
    if (c == NULL) {
        answer(0, "bad_json", NULL);
    } else if (strcmp(cmd, "quit") == 0) {
        A.quit = true;
        uv_read_stop((uv_stream_t *)&A.in);
        answer(id, NULL, NULL);
    } else if (strcmp(cmd, "open") == 0) {
        cmd_open(id, name, c);
    } else {
        agent_dev_t *ad = dev_named(name);
        if (ad == NULL) {
            answer(id, "no_such_device", NULL);
        } else {
            cmd_device(id, cmd, ad, c);
        }
    }
    json_decref(c);
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    (void)suggested;
    static char rbuf[65536];
    *buf = uv_buf_init(rbuf, sizeof(rbuf));
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    (void)s;
    if (nread < 0) {
        A.quit = true;
        uv_read_stop((uv_stream_t *)&A.in);
        return;
    }
    for (ssize_t i = 0; i < nread; i++) {
        if (buf->base[i] == '\n') {
            command(A.line, A.line_len);
            A.line_len = 0;
            continue;
        }
        if (A.line_len + 1 >= A.line_cap) {
            size_t ncap = A.line_cap ? A.line_cap * 2 : 65536;
            char *nl = realloc(A.line, ncap);
            if (nl == NULL) {
                A.quit = true;
                return;
            }
            A.line = nl;
            A.line_cap = ncap;
        }
        A.line[A.line_len++] = buf->base[i];
    }
}

static void close_walk(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h)) {
        uv_close(h, NULL);
    }
}

int load_chat_agent(int port)
{
    uv_loop_init(&A.loop);
    cdev_env_init(&A.env, &A.loop, port, &cbs, 0);
    uv_pipe_init(&A.loop, &A.in, 0);
    if (uv_pipe_open(&A.in, 0) != 0 ||
        uv_read_start((uv_stream_t *)&A.in, alloc_cb, read_cb) != 0) {
        fprintf(stderr, "spreekload: cannot read stdin\n");
        return 1;
    }
    while (!A.quit && uv_run(&A.loop, UV_RUN_ONCE)) {
    }
    for (size_t i = 0; i < A.n_devs; i++) {
        cdev_free(A.devs[i].d);
    }
    free(A.devs);
    free(A.line);
    cdev_env_close(&A.env);
    uv_walk(&A.loop, close_walk, NULL);
    uv_run(&A.loop, UV_RUN_DEFAULT);
    int rc = uv_loop_close(&A.loop);
    if (rc != 0) {
        fprintf(stderr, "spreekload: uv handles left open\n");
    }
    return rc == 0 ? 0 : 1;
}
