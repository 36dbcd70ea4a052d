/* The MLS delivery service inside the signaling core (docs/chat.md): conversations and their
 * groups as the service follows them, who may be in them, the devices of connections, and the
 * delivery of each conversation's log. Runs on the control thread like the rest of the core. */
#ifndef SPK_SIG_CHAT_INT_H
#define SPK_SIG_CHAT_INT_H

#include "core_int.h"
#include "spk/mls_observer.h"
#include "spk/store_chat.h"

/* A credential identity is "spk1\n<iss>\n<sub>\n<device>" (newlines cannot occur in any of the
 * three: they are accepted text, spk/text.h). */
#define DS_IDENTITY_MAX (5 + 3 * SPK_SUB_LEN + SPK_CHAT_DEVICE_LEN)
/* application messages per conversation whose replay is refused */
#define DS_RECENT 256

typedef struct {
    char iss[SPK_SUB_LEN];
    char sub[SPK_SUB_LEN];
    char device[SPK_CHAT_DEVICE_LEN];
} ds_device_t;

/* A member user of a conversation, and the cached decision whether they may be in it now. */
typedef struct {
    spk_chat_member_rec_t rec;
    uint64_t gen; /* s->access_gen the decision was made at (0: never) */
    bool allowed;
    spk_role_t role; /* spk_role_parse(rec.role), kept with rec */
} ds_member_t;

typedef struct ds_conv {
    spk_chat_conv_rec_t rec;
    spk_mls_observer_t *obs; /* NULL until the group is created */
    /* The group as this process last read or wrote it in the store: a save only succeeds from
     * there (another node may have committed the epoch meanwhile). */
    bool saved;
    uint64_t saved_epoch;
    int64_t last_seq;      /* the newest entry in the store, as far as this node knows */
    int64_t delivered_seq; /* entries up to here went to the devices following it here */
    ds_member_t *members;
    size_t n_members, cap_members;
    spk_map_t member_at; /* "<iss>\n<sub>" -> index in members + 1 (a group of 1,000 users) */
    uint64_t *conns;     /* connections that get the log as it grows */
    size_t n_conns, cap_conns;
    int64_t trimmed_at; /* when the log was last trimmed (seconds) */
    /* digests of the latest application messages of the current epoch (seeded from the log when
     * the conversation is loaded): a replayed one is refused */
    uint64_t recent[DS_RECENT];
    size_t n_recent;
    uint64_t recent_epoch;
    int64_t recent_seq; /* the stored window covers the log up to here */
} ds_conv_t;

/* The device a connection is (chat.device) and the conversations it follows live. */
typedef struct ds_conn {
    char device[SPK_CHAT_DEVICE_LEN];
    bool live; /* chat.sync was called: entries are pushed as they are appended */
    ds_conv_t **convs;
    size_t n_convs, cap_convs;
} ds_conn_t;

/* One appended entry waiting to be delivered after the request's commit. */
typedef struct {
    spk_chat_entry_t e;
    uint8_t *data; /* owned copy */
} ds_pending_t;

/* chat_model.c */
size_t ds_identity(const char *iss, const char *sub, const char *device, uint8_t *out, size_t cap);
int ds_identity_parse(const uint8_t *id, size_t n, ds_device_t *out);
/* The conversation (loaded from the store on first use). SPK_ENOTFOUND when there is none. */
int ds_conv_get(spk_sig_t *s, const char *id, ds_conv_t **out);
/* Rolls back the request's transaction and reads the conversation again from the store (after a
 * refused or failed change that moved the observer in memory only); the connections that follow
 * it keep following. If it cannot be read,
 * it is dropped from memory (c is freed) and its followers get it again on chat.sync. */
void ds_conv_reload(spk_sig_t *s, ds_conv_t *c);
ds_member_t *ds_member_find(ds_conv_t *c, const char *iss, const char *sub);
int ds_member_add(ds_conv_t *c, const spk_chat_member_rec_t *rec);
/* May this member user be in the group now (relationship of their role to the conversation)? */
bool ds_member_allowed(spk_sig_t *s, ds_conv_t *c, ds_member_t *m);
/* Does a connection signed in with claims w read as member m (delivery, chat.sync)? Its role is
 * the member's, and a GP or assistant is of the conversation's practice (what relationship_holds
 * cannot know when they are added; a remote GP's delegation is checked there). */
bool ds_conn_fits(const ds_conv_t *c, const ds_member_t *m, const spk_token_claims_t *w);
/* May the caller act in the conversation (member, allowed, and for staff the token's practice
 * or delegation)? 0, SPK_EFORBIDDEN (why in r->why) or a store error. */
int ds_caller_allowed(sig_req_t *r, ds_conv_t *c);
/* The caller's device (chat.device), or NULL with SPK_ESTATE in *rc. */
ds_conn_t *ds_caller_device(sig_req_t *r, int *rc);
/* Is device (iss, sub, device) a member of the group (a leaf)? Its leaf in *leaf. */
bool ds_device_in_group(const ds_conv_t *c, const char *iss, const char *sub, const char *device,
                        uint32_t *leaf);
/* Live delivery: the connection gets the conversation's entries as they are appended. */
int ds_attach(spk_sig_t *s, sig_conn_t *conn, ds_conv_t *c);
void ds_detach(spk_sig_t *s, sig_conn_t *conn, ds_conv_t *c);
/* Appends an entry to the store (inside the request's transaction) with the next seq, and keeps
 * a copy to deliver after the commit. */
int ds_append(spk_sig_t *s, ds_conv_t *c, spk_chat_entry_t *e, ds_pending_t *pending);
/* Delivers entries to the connections that follow the conversation and may have them. */
void ds_deliver(spk_sig_t *s, ds_conv_t *c, const spk_chat_entry_t *e);
/* Was this application message of the current epoch sent already? Its digest in *digest for
 * ds_remember once it is stored. */
bool ds_replayed(ds_conv_t *c, uint64_t epoch, const uint8_t *msg, size_t n, uint64_t *digest);
void ds_remember(ds_conv_t *c, uint64_t epoch, uint64_t digest);
/* chat_batch.c: the message (checked, for c's current epoch) joins the batch; the request is
 * answered when the batch is written (sig_chat_flush). */
int sig_chat_batch_add(sig_req_t *r, ds_conv_t *c, const spk_chat_entry_t *e);
/* Is the service behind (chat_batch.c: the loop turn's budget spent, too much held for the disk
 * or for slow connections, or the caller's own answers piling up)? The advised retry_ms. */
bool sig_chat_behind(sig_req_t *r, int64_t *retry_ms);
/* The request is answered "unavailable" with retry_ms in its place among the batch's answers. */
int sig_chat_batch_shed(sig_req_t *r, int64_t retry_ms);
/* An acknowledgement joins the batch (cur: conversation, iss, sub, device, and the seq in acked);
 * it is checked against the device's cursor when the batch is written (chat_batch.c ack_write). */
int sig_chat_batch_ack(sig_req_t *r, const spk_chat_cursor_t *cur);
/* Stores the replay window when entries were appended since (inside the caller's transaction):
 * application messages are trimmed from the log only once a stored window covers them. */
int ds_recent_save(spk_sig_t *s, ds_conv_t *c);
/* The chat.entry event for an entry, as text (malloc'd; its length in *len). */
char *ds_entry_text(const spk_chat_entry_t *e, size_t *len);
json_t *ds_conv_json(spk_sig_t *s, ds_conv_t *c);

/* h_mls.c: request fields shared with h_chat.c */
/* A base64url (RFC 4648 §5, no padding) field decoded into a new buffer of at most max bytes. */
int ds_get_b64(sig_req_t *r, const char *field, bool required, size_t max, uint8_t **out,
               size_t *len);
/* A user field {"sub": ..., "iss": ...} (iss defaults to dflt). */
int ds_req_user(sig_req_t *r, const char *field, const char *dflt, char iss[SPK_SUB_LEN],
                char sub[SPK_SUB_LEN]);

#endif
