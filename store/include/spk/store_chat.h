/* Persistence of the MLS delivery service (docs/chat.md): conversations, who may be in them,
 * devices and their KeyPackages, each conversation's ordered log of MLS messages, and each
 * device's place in that log. The store holds ciphertext and public MLS data only.
 *
 * Same conventions as spk/store.h (0 or SPK_E*, borrowed pointers, transactions). Byte
 * arguments are borrowed; spk_store_blob_t outputs are malloc'd and owned by the caller
 * (spk_store_blob_free). */
#ifndef SPK_STORE_CHAT_H
#define SPK_STORE_CHAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "spk/store.h"

#define SPK_CHAT_DEVICE_LEN 65 /* device ids: 1..64 characters */
#define SPK_CHAT_KIND_LEN 24

typedef struct {
    uint8_t *p;
    size_t n;
} spk_store_blob_t;

void spk_store_blob_free(spk_store_blob_t *b);

/* ---- conversations ---- */
typedef struct {
    char id[SPK_ID_LEN];
    char kind[SPK_CHAT_KIND_LEN]; /* "consult" | "econsult" | "specialist_question" | "care_team" */
    char practice[SPK_SUB_LEN];
    char patient[SPK_SUB_LEN]; /* pseudonym */
    char consult[SPK_ID_LEN];  /* the consult it belongs to; "" for care_team */
    char title[SPK_SUB_LEN];
    char created_by_iss[SPK_SUB_LEN];
    char created_by[SPK_SUB_LEN];
    int64_t created_at, closed_at; /* closed_at 0 while open */
    int64_t retention_s;           /* ciphertext older than this is deleted */
    uint64_t epoch;                /* current MLS epoch; 0 before the group exists */
    bool has_group;
} spk_chat_conv_rec_t;

int spk_store_chat_conv_insert(spk_store_t *st, const spk_chat_conv_rec_t *c); /* SPK_EEXIST */
int spk_store_chat_conv_get(spk_store_t *st, const char *id, spk_chat_conv_rec_t *out);
/* The open conversation of a kind for (consult) or, for care_team, (practice, patient).
 * SPK_ENOTFOUND when none. */
int spk_store_chat_conv_find(spk_store_t *st, const char *kind, const char *practice,
                             const char *patient, const char *consult, spk_chat_conv_rec_t *out);
int spk_store_chat_conv_close(spk_store_t *st, const char *id, int64_t at);
/* The group's public state after its creation (prev_epoch NULL), a Commit or a Proposal: epoch
 * and the observer blob. Stored only while the conversation's group is where the caller saw
 * it: no group yet for a creation, else still at *prev_epoch. SPK_EMLSSTALE when another
 * creation or Commit (of this or another process) got there first: one Commit per epoch holds
 * across spreekd nodes sharing a store. SPK_ENOTFOUND for an unknown conversation. */
int spk_store_chat_group_put(spk_store_t *st, const char *id, const uint64_t *prev_epoch,
                             uint64_t epoch, const uint8_t *observer, size_t observer_len);
int spk_store_chat_group_get(spk_store_t *st, const char *id, uint64_t *epoch,
                             spk_store_blob_t *observer);
typedef int (*spk_store_chat_conv_cb)(void *ud, const spk_chat_conv_rec_t *c);
/* Open conversations the user is a member of (not removed), newest first. */
int spk_store_chat_conv_each_of_user(spk_store_t *st, const char *iss, const char *sub,
                                     spk_store_chat_conv_cb cb, void *ud);
/* Open conversations of a practice (staff see them all), newest first. */
int spk_store_chat_conv_each_of_practice(spk_store_t *st, const char *practice,
                                         spk_store_chat_conv_cb cb, void *ud);

/* ---- members: the users who may be in a conversation's group ---- */
typedef struct {
    char conversation[SPK_ID_LEN];
    char iss[SPK_SUB_LEN];
    char sub[SPK_SUB_LEN];
    char name[SPK_SUB_LEN];
    char role[16];
    char added_by[SPK_SUB_LEN];
    int64_t added_at, removed_at; /* removed_at 0 while a member */
} spk_chat_member_rec_t;

/* Insert or replace (re-adding clears removed_at). */
int spk_store_chat_member_put(spk_store_t *st, const spk_chat_member_rec_t *m);
int spk_store_chat_member_get(spk_store_t *st, const char *conversation, const char *iss,
                              const char *sub, spk_chat_member_rec_t *out);
/* SPK_ENOTFOUND, or SPK_ESTATE when already removed. */
int spk_store_chat_member_remove(spk_store_t *st, const char *conversation, const char *iss,
                                 const char *sub, int64_t at);
typedef int (*spk_store_chat_member_cb)(void *ud, const spk_chat_member_rec_t *m);
/* Every member record of the conversation, removed ones included, in order of addition. */
int spk_store_chat_member_each(spk_store_t *st, const char *conversation,
                               spk_store_chat_member_cb cb, void *ud);

/* ---- devices and KeyPackages ---- */

/* Records (or refreshes last_seen of) a device of user (iss, sub). */
int spk_store_chat_device_touch(spk_store_t *st, const char *iss, const char *sub,
                                const char *device, int64_t now);
typedef int (*spk_store_chat_device_cb)(void *ud, const char *device, int64_t last_seen);
int spk_store_chat_device_each(spk_store_t *st, const char *iss, const char *sub,
                               spk_store_chat_device_cb cb, void *ud);

/* Stores a validated KeyPackage (ref = its KeyPackageRef). A last-resort one replaces the
 * device's previous last-resort KeyPackage. SPK_EEXIST for a ref stored already. */
int spk_store_chat_kp_put(spk_store_t *st, const uint8_t ref[32], const char *iss, const char *sub,
                          const char *device, const uint8_t *kp, size_t kp_len, bool last_resort,
                          int64_t now, int64_t not_after);
/* Takes one KeyPackage of the device valid at now: a one-time one (deleted), else the
 * last-resort one (kept). SPK_ENOTFOUND when the device has none. */
int spk_store_chat_kp_claim(spk_store_t *st, const char *iss, const char *sub, const char *device,
                            int64_t now, spk_store_blob_t *kp, bool *last_resort);
/* One-time KeyPackages of the device still valid at now, and whether it has a last-resort. */
int spk_store_chat_kp_count(spk_store_t *st, const char *iss, const char *sub, const char *device,
                            int64_t now, int64_t *one_time, bool *last_resort);
/* The device a KeyPackage (by ref) came from, for routing a Welcome; the KeyPackage may have
 * been claimed (its owner is remembered until it expires). */
int spk_store_chat_kp_owner(spk_store_t *st, const uint8_t ref[32], char iss[SPK_SUB_LEN],
                            char sub[SPK_SUB_LEN], char device[SPK_CHAT_DEVICE_LEN]);

/* Deletes KeyPackages (used or not) whose lifetime ended before now. */
int spk_store_chat_kp_expire(spk_store_t *st, int64_t now, int64_t *n);

/* ---- the log: one ordered sequence of entries per conversation ---- */
typedef enum {
    SPK_CHAT_ENTRY_COMMIT = 1,
    SPK_CHAT_ENTRY_PROPOSAL = 2,
    SPK_CHAT_ENTRY_MESSAGE = 3, /* application message (PrivateMessage) */
    SPK_CHAT_ENTRY_WELCOME = 4, /* for one device only (to_*) */
} spk_chat_entry_type_t;

typedef struct {
    char conversation[SPK_ID_LEN];
    int64_t seq; /* from 1 per conversation */
    uint64_t epoch;
    spk_chat_entry_type_t type;
    char sender_iss[SPK_SUB_LEN], sender[SPK_SUB_LEN], sender_device[SPK_CHAT_DEVICE_LEN];
    /* WELCOME: the device it is for */
    char to_iss[SPK_SUB_LEN], to[SPK_SUB_LEN], to_device[SPK_CHAT_DEVICE_LEN];
    int64_t at_ms;
    const uint8_t *data; /* borrowed (on read: valid during the callback) */
    size_t data_len;
} spk_chat_entry_t;

int spk_store_chat_log_append(spk_store_t *st, const spk_chat_entry_t *e);
/* The same inside the caller's transaction (SPK_ESTATE outside one), for many appends in a
 * row: on PostgreSQL the append is only sent, and its refusal (SPK_EEXIST: the seq is taken)
 * fails the next statement the store waits for or spk_store_commit instead (the transaction
 * is then rolled back); on SQLite it fails here. */
int spk_store_chat_log_append_batched(spk_store_t *st, const spk_chat_entry_t *e);
/* The highest seq of the conversation's log (0 when empty). */
int spk_store_chat_log_last(spk_store_t *st, const char *conversation, int64_t *seq);
typedef int (*spk_store_chat_entry_cb)(void *ud, const spk_chat_entry_t *e);
/* Entries with seq > after, in order, at most limit (0: no limit). */
int spk_store_chat_log_each(spk_store_t *st, const char *conversation, int64_t after, int64_t limit,
                            spk_store_chat_entry_cb cb, void *ud);
/* The latest entries of one epoch and type with seq > after, newest first, at most limit (0: no
 * limit). */
int spk_store_chat_log_recent(spk_store_t *st, const char *conversation, uint64_t epoch,
                              spk_chat_entry_type_t type, int64_t after, int64_t limit,
                              spk_store_chat_entry_cb cb, void *ud);
/* The delivery service's replay window of a conversation: digests of application messages of
 * `epoch` (oldest first), covering the log up to `seq`. Until a window covers them, application
 * messages are not trimmed as acknowledged (spk_store_chat_log_trim_acked). */
int spk_store_chat_replay_put(spk_store_t *st, const char *conversation, uint64_t epoch,
                              int64_t seq, const uint64_t *digests, size_t n);
/* SPK_ENOTFOUND when none was stored; at most cap digests (the newest) are returned in *n. */
int spk_store_chat_replay_get(spk_store_t *st, const char *conversation, uint64_t *epoch,
                              int64_t *seq, uint64_t *digests, size_t cap, size_t *n);
/* Deletes entries up to and including seq; returns the number deleted in *n (may be NULL). */
int spk_store_chat_log_trim(spk_store_t *st, const char *conversation, int64_t upto, int64_t *n);
/* Deletes, in every conversation, entries every active device has acknowledged (application
 * messages only once the conversation's replay window covers them): at most `limit` (0: all), so
 * that a caller on a busy thread can spread the work; the number deleted in *n (may be NULL).
 * Fewer than `limit` deleted means none is left. */
int spk_store_chat_log_trim_acked(spk_store_t *st, int64_t limit, int64_t *n);
/* Deletes entries written before `before_ms` in every conversation (retention). */
int spk_store_chat_log_expire(spk_store_t *st, int64_t before_ms, int64_t *n);

/* ---- cursors: each device's place in a conversation's log ---- */
typedef struct {
    char conversation[SPK_ID_LEN];
    char iss[SPK_SUB_LEN], sub[SPK_SUB_LEN], device[SPK_CHAT_DEVICE_LEN];
    int64_t from_seq; /* the first entry the device is to get (its Welcome) */
    int64_t acked;    /* the device has every entry up to here */
    bool active;      /* false once the device left the group */
} spk_chat_cursor_t;

int spk_store_chat_cursor_put(spk_store_t *st, const spk_chat_cursor_t *c);
int spk_store_chat_cursor_get(spk_store_t *st, const char *conversation, const char *iss,
                              const char *sub, const char *device, spk_chat_cursor_t *out);
typedef int (*spk_store_chat_cursor_cb)(void *ud, const spk_chat_cursor_t *c);
int spk_store_chat_cursor_each(spk_store_t *st, const char *conversation,
                               spk_store_chat_cursor_cb cb, void *ud);
/* Every active cursor of a device, across conversations. */
int spk_store_chat_cursor_each_of_device(spk_store_t *st, const char *iss, const char *sub,
                                         const char *device, spk_store_chat_cursor_cb cb, void *ud);

/* ---- files: encrypted attachments (the bytes live on disk, docs/chat.md "Files") ---- */
typedef struct {
    char id[SPK_ID_LEN];
    char conversation[SPK_ID_LEN];
    int64_t size; /* bytes, as declared when the upload was granted */
    char uploader_iss[SPK_SUB_LEN], uploader[SPK_SUB_LEN];
    char device[SPK_CHAT_DEVICE_LEN];
    int64_t created_at;
} spk_chat_file_rec_t;

int spk_store_chat_file_insert(spk_store_t *st, const spk_chat_file_rec_t *f); /* SPK_EEXIST */
int spk_store_chat_file_get(spk_store_t *st, const char *id, spk_chat_file_rec_t *out);
/* Total declared bytes of a conversation's files. */
int spk_store_chat_file_bytes(spk_store_t *st, const char *conversation, int64_t *out);
typedef int (*spk_store_chat_file_cb)(void *ud, const char *id);
/* Files whose conversation's retention has run out at `now` (seconds), at most limit. */
int spk_store_chat_file_each_expired(spk_store_t *st, int64_t now, int64_t limit,
                                     spk_store_chat_file_cb cb, void *ud);
int spk_store_chat_file_delete(spk_store_t *st, const char *id);

#endif
