/* A chat device in C: one WebSocket connection to spreekd speaking docs/protocol.md §5.9 with
 * spk_mls (spk/mls.h), the same things a browser does with the WebAssembly build of the library.
 * Used by spreekload's chat modes: the load (load_chat.c) and the agent that node tests drive
 * (chat_agent.c).
 *
 * A device signs in (a token, or an invite it redeems), declares itself (chat.device), uploads
 * KeyPackages, and then creates groups, commits, sends and handles the entries the delivery
 * service pushes: Welcomes (it joins with one of its KeyPackage secrets), Commits, proposals and
 * application messages, strictly in seq order, skipping every seq it has handled already (so
 * nothing reaches the application twice), and acknowledges what it handled (chat.ack, at once
 * or cumulatively every ack_ms). It keeps its MLS state across connections: cdev_disconnect and
 * cdev_connect again are a device going offline and coming back.
 *
 * Single-threaded: everything runs on the environment's uv loop. Requests are answered in
 * order (protocol §2); each has a callback. Callbacks may start new requests. */
#ifndef SPK_LOAD_CHAT_DEV_H
#define SPK_LOAD_CHAT_DEV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <netinet/in.h>
#include <uv.h>

#include "spk/mls.h"
#include "spk/token.h"
#include "ws.h"

#define CDEV_ID_LEN 64
#define CDEV_DEVICE_LEN 65
#define CDEV_IDENTITY_MAX (5 + 3 * SPK_TOKEN_STR + CDEV_DEVICE_LEN)

typedef struct cdev_env cdev_env_t;
typedef struct cdev cdev_t;
typedef struct cdev_conv cdev_conv_t;

/* The answer to a request: code is NULL for "ok", else the error code; m (the whole answer) is
 * borrowed, NULL when the connection ended before the answer. */
typedef void (*cdev_answer_cb)(cdev_t *d, void *ud, const char *code, json_t *m);

typedef struct {
    /* An application message for the application, once per seq. sender: "<sub>/<device>". */
    void (*message_cb)(cdev_t *d, cdev_conv_t *cv, int64_t seq, const char *sender,
                       const uint8_t *pt, size_t n, uint64_t t_ns);
    /* An application message received and not decrypted (cv->decrypt false): its receipt. */
    void (*receipt_cb)(cdev_t *d, cdev_conv_t *cv, int64_t seq, const uint8_t *msg, size_t n,
                       uint64_t t_ns);
    /* The device joined the conversation's group from a Welcome. */
    void (*joined_cb)(cdev_t *d, cdev_conv_t *cv);
    /* Another member's Commit was processed (cv->g is in a new epoch). */
    void (*commit_cb)(cdev_t *d, cdev_conv_t *cv, int64_t seq);
    /* A Commit removed this device from the group. */
    void (*removed_cb)(cdev_t *d, cdev_conv_t *cv);
    /* Signed in, device declared, KeyPackages uploaded (cdev_connect finished). */
    void (*ready_cb)(cdev_t *d);
    /* The connection ended (the device keeps its state; cdev_connect again). */
    void (*end_cb)(cdev_t *d, const char *why);
    /* Something went wrong that no request answer reports (an entry that could not be
     * handled, an unexpected answer). */
    void (*error_cb)(cdev_t *d, const char *what);
    /* Any other event (lobby.update, access.ended, ...); m borrowed. */
    void (*event_cb)(cdev_t *d, const char *type, json_t *m);
} cdev_cbs_t;

struct cdev_env {
    uv_loop_t *loop;
    struct sockaddr_in addr;
    char host_port[64];
    uint64_t rng;
    const cdev_cbs_t *cbs;
    void *data;
    int ack_ms; /* 0: acknowledge each entry at once; else cumulatively every ack_ms */
    uv_timer_t ack_timer;
    cdev_t **devs; /* every device, for the acknowledgement timer */
    size_t n_devs, cap_devs;
    /* counters */
    uint64_t skipped;      /* entries with a seq handled already */
    uint64_t entry_errors; /* entries that could not be handled */
    uint64_t req_errors;   /* error answers the caller did not expect (cdev_count_error) */
};

/* A device's view of one conversation. */
struct cdev_conv {
    char id[CDEV_ID_LEN];
    spk_mls_t *g; /* NULL when not in the group */
    bool removed;
    bool decrypt;  /* application messages are decrypted (true) or only counted */
    int64_t seen;  /* highest seq handled */
    int64_t acked; /* highest seq acknowledged to this connection's server */
    bool ack_busy;
    void *data;                /* the application's */
    struct cdev_commit *retry; /* a Commit waiting to be built again (lost a race) */
};

/* A request in flight. */
typedef struct {
    uint64_t id;
    cdev_answer_cb cb;
    void *ud;
} cdev_req_t;

struct cdev {
    cdev_env_t *env;
    spk_ws_client_t *ws; /* NULL while offline */
    bool ready;
    bool passive; /* entries are counted and acknowledged, not processed (a member that only
                   * takes up a leaf: the Commit benchmark's large groups) */
    uint64_t passive_entries;
    void *data;
    /* how to sign in: a token (patients: their session token once redeemed) or an invite */
    char *token;
    char invite[CDEV_ID_LEN];
    char name[SPK_TOKEN_STR];
    int upload; /* KeyPackages to upload when connecting (then 0) */
    char device[CDEV_DEVICE_LEN];
    char iss[SPK_TOKEN_STR], sub[SPK_TOKEN_STR];
    char participant[CDEV_ID_LEN]; /* a patient's participant id, once redeemed */
    uint8_t identity[CDEV_IDENTITY_MAX];
    size_t identity_len;
    spk_mls_buf_t *secrets; /* KeyPackage secrets not used yet */
    size_t n_secrets, cap_secrets;
    cdev_conv_t **convs;
    size_t n_convs, cap_convs;
    cdev_req_t *reqs; /* ring of requests in flight */
    size_t req_head, n_reqs, cap_reqs;
    uint64_t next_id;
};

/* Sets up the environment (loop borrowed, port on 127.0.0.1). */
int cdev_env_init(cdev_env_t *e, uv_loop_t *loop, int port, const cdev_cbs_t *cbs, int ack_ms);
/* Closes the timer; devices must be freed first. */
void cdev_env_close(cdev_env_t *e);

/* A new offline device. token (copied) or invite+name says how it signs in; device is its id;
 * upload: KeyPackages to upload on the first connection. */
cdev_t *cdev_new(cdev_env_t *e, const char *token, const char *invite, const char *name,
                 const char *device, int upload);
/* Disconnects and frees every group and secret. */
void cdev_free(cdev_t *d);
/* Connects and signs in; ready_cb (or end_cb) follows. */
int cdev_connect(cdev_t *d);
/* Goes offline: the connection closes, requests in flight are answered with code
 * "disconnected", the MLS state stays. */
void cdev_disconnect(cdev_t *d);

/* Sends a request: msg (taken) gets an id; cb (may be NULL) gets the answer. */
void cdev_request(cdev_t *d, json_t *msg, cdev_answer_cb cb, void *ud);
/* Sends a request given as text without its id: "{"type":...}" gets "id" spliced in. */
void cdev_request_text(cdev_t *d, const char *body, size_t len, cdev_answer_cb cb, void *ud);

cdev_conv_t *cdev_conv(cdev_t *d, const char *id, bool create);
/* chat.sync (every conversation, or only one). */
void cdev_sync(cdev_t *d, const char *conversation, cdev_answer_cb cb, void *ud);
/* Uploads n more KeyPackages. */
void cdev_upload(cdev_t *d, int n, cdev_answer_cb cb, void *ud);
/* mls.group.create: a one-member group of this device for the conversation. */
void cdev_group_create(cdev_t *d, const char *conversation, cdev_answer_cb cb, void *ud);
/* A Commit adding KeyPackages (MLSMessage bytes) and removing leaves; when another Commit wins
 * the epoch it is built again on the new epoch (up to `retries` times). The answer is the final
 * one; "ok" once merged. */
typedef struct {
    const uint8_t *const *add;
    const size_t *add_len;
    size_t n_add;
    const uint32_t *remove;
    size_t n_remove;
    int retries;
} cdev_commit_opts_t;
/* Bytes of the last Commit built (MLS Commit and Welcome, before base64url). */
extern size_t cdev_last_commit_bytes, cdev_last_welcome_bytes;
void cdev_commit(cdev_t *d, const char *conversation, const cdev_commit_opts_t *o,
                 cdev_answer_cb cb, void *ud);
/* Claims the KeyPackages of every device of user (iss may be NULL) not in the group yet and
 * commits their Adds. */
void cdev_add_devices(cdev_t *d, const char *conversation, const char *iss, const char *sub,
                      int retries, cdev_answer_cb cb, void *ud);
/* Encrypts pt for the conversation's current epoch; the MLSMessage as base64url (malloc'd) in
 * *b64. */
int cdev_encrypt_b64(cdev_t *d, const char *conversation, const uint8_t *pt, size_t n, char **b64);
/* chat.send of a message already encrypted (base64url). */
void cdev_send_b64(cdev_t *d, const char *conversation, const char *b64, cdev_answer_cb cb,
                   void *ud);
/* Encrypts and sends. */
int cdev_send(cdev_t *d, const char *conversation, const uint8_t *pt, size_t n, cdev_answer_cb cb,
              void *ud);
/* A self-remove proposal (mls.proposal): another member commits it. */
int cdev_propose_leave(cdev_t *d, const char *conversation, cdev_answer_cb cb, void *ud);
/* Acknowledges what was handled and not acknowledged yet (every conversation). */
void cdev_ack_flush(cdev_t *d);
/* The leaves of the group whose identity's user is sub (out: up to max), count returned. */
size_t cdev_leaves_of(const cdev_t *d, const char *conversation, const char *sub, uint32_t *out,
                      size_t max);

/* Helpers. */
const char *cdev_str(json_t *m, const char *key);
char *cdev_b64(const uint8_t *p, size_t n);
/* Decodes base64url into a new buffer; NULL on error. */
uint8_t *cdev_unb64(const char *s, size_t *n);

#endif
