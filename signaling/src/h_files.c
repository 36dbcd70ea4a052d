/* Encrypted chat attachments (docs/protocol.md §5.10, docs/chat.md "Files"). The client encrypts
 * a file with a fresh key it sends inside an MLS message; the service keeps the ciphertext only.
 * A member asks over the WebSocket for an upload or a download (checked and audited like every
 * action) and gets a ticket: one HTTP request within TICKET_TTL_MS moves the bytes. The ticket is
 * bound to the connection that asked for it and the access is decided again when it is used, so
 * access that ended in between ends the transfer too. The transport owns the bytes on disk. */
#include "chat_int.h"

#include <stdlib.h>
#include <string.h>

#include "spk/error.h"
#include "spk/log.h"
#include "spk/rand.h"
#include "spk/util.h"

#define TICKET_TTL_MS 60000
#define TICKETS_PER_CONN 16
#define TICKETS_MAX 8192
#define TICKET_BYTES 32
#define FILES_EXPIRE_BATCH 256

typedef struct {
    char ticket[SPK_FILE_TICKET_LEN];
    spk_sig_file_op_t op;
    uint64_t conn;
    uint64_t expires_ms;
    char file[SPK_ID_LEN];
    char conversation[SPK_ID_LEN];
    int64_t size;
} sig_ticket_t;

/* The file's conversation, with the caller's access to it and their device in its group. */
static int file_access(sig_req_t *r, const char *conversation, ds_conv_t **out)
{
    int rc;
    ds_conn_t *dev = ds_caller_device(r, &rc);
    if (dev == NULL) {
        return rc;
    }
    ds_conv_t *c;
    rc = ds_conv_get(r->s, conversation, &c);
    if (rc == SPK_ENOTFOUND) {
        snprintf(r->why, sizeof(r->why), "no such conversation");
    }
    if (rc == 0) {
        rc = ds_caller_allowed(r, c);
    }
    if (rc == 0 && !ds_device_in_group(c, r->c->who->iss, r->c->who->sub, dev->device, NULL)) {
        snprintf(r->why, sizeof(r->why), "this device is not in the conversation's group");
        rc = SPK_ESTATE;
    }
    *out = rc == 0 ? c : NULL;
    return rc;
}

static int ticket_new(sig_req_t *r, spk_sig_file_op_t op, const spk_chat_file_rec_t *f)
{
    spk_sig_t *s = r->s;
    if (r->c->n_tickets >= TICKETS_PER_CONN || s->tickets.len >= TICKETS_MAX) {
        snprintf(r->why, sizeof(r->why), "too many transfers waiting; use or let expire some");
        return SPK_ERATE;
    }
    sig_ticket_t *t = calloc(1, sizeof(*t));
    if (t == NULL) {
        return SPK_ENOMEM;
    }
    uint8_t raw[TICKET_BYTES];
    int rc = spk_random_bytes(raw, sizeof(raw));
    if (rc == 0) {
        spk_b64url_encode(t->ticket, raw, sizeof(raw));
        spk_wipe(raw, sizeof(raw));
        t->op = op;
        t->conn = r->c->id;
        t->expires_ms = spk_now_ms() + TICKET_TTL_MS;
        snprintf(t->file, sizeof(t->file), "%s", f->id);
        snprintf(t->conversation, sizeof(t->conversation), "%s", f->conversation);
        t->size = f->size;
        rc = spk_map_put_str(&s->tickets, t->ticket, t);
    }
    if (rc != 0) {
        spk_wipe(t, sizeof(*t));
        free(t);
        return rc;
    }
    r->c->n_tickets++;
    json_object_set_new(r->reply, "file", json_string(f->id));
    json_object_set_new(r->reply, "size", json_integer(f->size));
    json_object_set_new(r->reply, "ticket", json_string(t->ticket));
    json_object_set_new(r->reply, "expires_in", json_integer(TICKET_TTL_MS / 1000));
    char path[16 + SPK_ID_LEN];
    snprintf(path, sizeof(path), "/files/%s", f->id);
    json_object_set_new(r->reply, "path", json_string(path));
    return 0;
}

static void ticket_free(spk_sig_t *s, sig_ticket_t *t)
{
    sig_conn_t *c = spk_map_get_u64(&s->conns, t->conn);
    if (c != NULL && c->n_tickets > 0) {
        c->n_tickets--;
    }
    spk_wipe(t, sizeof(*t));
    free(t);
}

int sig_h_chat_file_upload(sig_req_t *r)
{
    const char *conversation;
    int64_t size = 0;
    int rc = sig_get_str(r, "conversation", true, SPK_ID_LEN - 1, &conversation);
    if (rc == 0) {
        rc = sig_get_int(r, "size", true, 1, INT64_MAX / 2, &size);
    }
    if (rc != 0) {
        return rc;
    }
    ds_conv_t *c;
    rc = file_access(r, conversation, &c);
    if (rc != 0) {
        return rc;
    }
    if ((uint64_t)size > r->s->cfg.file_max_bytes) {
        snprintf(r->why, sizeof(r->why), "a file may have at most %zu bytes",
                 r->s->cfg.file_max_bytes);
        return SPK_ETOOBIG;
    }
    int64_t used = 0;
    rc = spk_store_chat_file_bytes(r->s->store, c->rec.id, &used);
    if (rc == 0 && used + size > r->s->cfg.file_quota_bytes) {
        snprintf(r->why, sizeof(r->why), "the conversation's files have reached their quota");
        rc = SPK_ETOOBIG;
    }
    spk_chat_file_rec_t f;
    memset(&f, 0, sizeof(f));
    memcpy(f.id, "f_", 2);
    if (rc == 0) {
        rc = spk_random_id(f.id + 2, sizeof(f.id) - 2, 16);
    }
    if (rc != 0) {
        return rc;
    }
    snprintf(f.conversation, sizeof(f.conversation), "%s", c->rec.id);
    snprintf(f.uploader_iss, sizeof(f.uploader_iss), "%s", r->c->who->iss);
    snprintf(f.uploader, sizeof(f.uploader), "%s", r->c->who->sub);
    snprintf(f.device, sizeof(f.device), "%s", r->c->chat->device);
    f.size = size;
    f.created_at = r->now;
    snprintf(r->detail, sizeof(r->detail), "file %s, %lld bytes", f.id, (long long)size);
    rc = sig_begin(r);
    if (rc == 0) {
        rc = spk_store_chat_file_insert(r->s->store, &f);
    }
    if (rc == 0) {
        rc = sig_commit(r);
    }
    return rc == 0 ? ticket_new(r, SPK_SIG_FILE_PUT, &f) : rc;
}

int sig_h_chat_file_download(sig_req_t *r)
{
    const char *conversation, *file;
    int rc = sig_get_str(r, "conversation", true, SPK_ID_LEN - 1, &conversation);
    if (rc == 0) {
        rc = sig_get_str(r, "file", true, SPK_ID_LEN - 1, &file);
    }
    if (rc != 0) {
        return rc;
    }
    ds_conv_t *c;
    rc = file_access(r, conversation, &c);
    spk_chat_file_rec_t f;
    if (rc == 0) {
        rc = spk_store_chat_file_get(r->s->store, file, &f);
    }
    if (rc == 0 && strcmp(f.conversation, c->rec.id) != 0) {
        rc = SPK_ENOTFOUND; /* another conversation's file is not there for this one */
    }
    if (rc == SPK_ENOTFOUND) {
        snprintf(r->why, sizeof(r->why), "no such file in this conversation");
    }
    if (rc != 0) {
        return rc;
    }
    snprintf(r->detail, sizeof(r->detail), "file %s", f.id);
    rc = sig_begin(r);
    if (rc == 0) {
        rc = sig_commit(r); /* the audit entry is in the commit the ticket waits for */
    }
    return rc == 0 ? ticket_new(r, SPK_SIG_FILE_GET, &f) : rc;
}

/* Audits a transfer refused when its ticket was used (the access ended in between). */
static void audit_refused(spk_sig_t *s, sig_conn_t *c, const sig_ticket_t *t, int rc,
                          const char *practice, const char *patient)
{
    char detail[64];
    snprintf(detail, sizeof(detail), "file %s", t->file);
    sig_audit_ev_t ev = {
        .who = c->who,
        .remote = c->remote,
        .event = t->op == SPK_SIG_FILE_PUT ? "chat.file.upload" : "chat.file.download",
        .outcome = rc,
        .practice = practice,
        .patient = patient,
        .object = t->conversation,
        .detail = detail,
    };
    sig_audit_write(s, &ev);
}

/* Decides again whether the connection may move the file now. */
static int recheck(spk_sig_t *s, const sig_ticket_t *t)
{
    sig_conn_t *c = spk_map_get_u64(&s->conns, t->conn);
    if (c == NULL || c->closing || !c->authed) {
        return SPK_EUNAUTH; /* the session that asked is gone */
    }
    sig_req_t r;
    memset(&r, 0, sizeof(r));
    r.s = s;
    r.c = c;
    r.now = spk_now_s();
    ds_conv_t *conv;
    int rc = file_access(&r, t->conversation, &conv);
    if (rc != 0 && rc != SPK_ENOMEM && rc != SPK_EIO) {
        audit_refused(s, c, t, rc, r.practice, r.patient);
        spk_info(0, "files: %s of %s refused at use: %s",
                 t->op == SPK_SIG_FILE_PUT ? "upload" : "download", t->file,
                 r.why[0] ? r.why : spk_strerror(rc));
    }
    return rc;
}

int spk_sig_file_begin(spk_sig_t *s, spk_sig_file_op_t op, const char *file, const char *ticket,
                       spk_sig_file_t *out)
{
    if (s == NULL || file == NULL || out == NULL) {
        return SPK_EINVAL;
    }
    memset(out, 0, sizeof(*out));
    sig_ticket_t *t = ticket != NULL ? spk_map_get_str(&s->tickets, ticket) : NULL;
    if (t == NULL || t->op != op || strcmp(t->file, file) != 0) {
        s->m[SIG_M_FILE_REFUSED]++;
        return SPK_EUNAUTH;
    }
    spk_map_del_str(&s->tickets, t->ticket);
    int rc = t->expires_ms < (uint64_t)spk_now_ms() ? SPK_EUNAUTH : recheck(s, t);
    if (rc == 0) {
        snprintf(out->file, sizeof(out->file), "%s", t->file);
        snprintf(out->conversation, sizeof(out->conversation), "%s", t->conversation);
        out->size = t->size;
        out->conn = t->conn;
        out->op = op;
        s->m[op == SPK_SIG_FILE_PUT ? SIG_M_FILE_UPLOADS : SIG_M_FILE_DOWNLOADS]++;
    } else {
        s->m[SIG_M_FILE_REFUSED]++;
    }
    ticket_free(s, t);
    return rc;
}

int spk_sig_file_recheck(spk_sig_t *s, const spk_sig_file_t *f)
{
    if (s == NULL || f == NULL) {
        return SPK_EINVAL;
    }
    sig_ticket_t t;
    memset(&t, 0, sizeof(t));
    t.op = f->op;
    t.conn = f->conn;
    snprintf(t.file, sizeof(t.file), "%s", f->file);
    snprintf(t.conversation, sizeof(t.conversation), "%s", f->conversation);
    int rc = recheck(s, &t);
    if (rc != 0) {
        s->m[SIG_M_FILE_REFUSED]++;
    }
    return rc;
}

void sig_files_tick(spk_sig_t *s, uint64_t now_ms)
{
    sig_ticket_t *gone[64];
    size_t n = 0, it = 0;
    void *v;
    while (n < sizeof(gone) / sizeof(gone[0]) && spk_map_next(&s->tickets, &it, &v)) {
        if (((sig_ticket_t *)v)->expires_ms < now_ms) {
            gone[n++] = v;
        }
    }
    for (size_t i = 0; i < n; i++) {
        spk_map_del_str(&s->tickets, gone[i]->ticket);
        ticket_free(s, gone[i]);
    }
}

void sig_files_free(spk_sig_t *s)
{
    size_t it = 0;
    void *v;
    while (spk_map_next(&s->tickets, &it, &v)) {
        spk_wipe(v, sizeof(sig_ticket_t));
        free(v);
    }
    spk_map_free(&s->tickets);
}

typedef struct {
    char ids[FILES_EXPIRE_BATCH][SPK_ID_LEN];
    size_t n;
} expired_t;

static int expired_cb(void *ud, const char *id)
{
    expired_t *e = ud;
    snprintf(e->ids[e->n++], SPK_ID_LEN, "%s", id);
    return 0;
}

int sig_files_expire(spk_sig_t *s, int64_t now, int64_t *n)
{
    expired_t *e = calloc(1, sizeof(*e));
    if (e == NULL) {
        return SPK_ENOMEM;
    }
    int rc = spk_store_chat_file_each_expired(s->store, now, FILES_EXPIRE_BATCH, expired_cb, e);
    for (size_t i = 0; rc == 0 && i < e->n; i++) {
        /* the bytes first: a record without them is a file that is gone (404), never bytes that
         * nothing accounts for */
        if (s->io.file_delete_cb != NULL) {
            s->io.file_delete_cb(s->io.ud, e->ids[i]);
        }
        rc = spk_store_chat_file_delete(s->store, e->ids[i]);
    }
    *n = rc == 0 ? (int64_t)e->n : 0;
    free(e);
    return rc;
}
