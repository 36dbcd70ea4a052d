/* The delivery service's file records (spk/store_chat.h "files"): which conversation an
 * encrypted attachment belongs to, who uploaded it and how big it is. */
#include "store_priv.h"

#include <string.h>

#include "spk/error.h"
#include "spk/store_chat.h"

#define FILE_COLS "id, conversation, size, uploader_iss, uploader, device, created_at"

static int file_row(sqlite3_stmt *s, void *out)
{
    spk_chat_file_rec_t *f = out;
    memset(f, 0, sizeof(*f));
    f->size = sqlite3_column_int64(s, 2);
    f->created_at = sqlite3_column_int64(s, 6);
    const st_out_t a[] = {ST_OUT(f->id), ST_OUT(f->conversation)};
    const st_out_t b[] = {ST_OUT(f->uploader_iss), ST_OUT(f->uploader), ST_OUT(f->device)};
    int rc = st_col_texts(s, 0, a, 2);
    return rc != 0 ? rc : st_col_texts(s, 3, b, 3);
}

int spk_store_chat_file_insert(spk_store_t *st, const spk_chat_file_rec_t *f)
{
    if (st == NULL || f == NULL || f->id[0] == '\0' || f->size < 0) {
        return SPK_EINVAL;
    }
    const st_in_t t[] = {ST_IN(f->id), ST_IN(f->conversation), ST_IN(f->uploader_iss),
                         ST_IN(f->uploader), ST_IN(f->device)};
    const int64_t ints[] = {f->size, f->created_at};
    return st_write_texts(st, ST_CHAT_FILE_INSERT,
                          "INSERT INTO chat_files (id, conversation, uploader_iss, uploader,"
                          " device, size, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                          t, 5, ints, 2, "file insert");
}

int spk_store_chat_file_get(spk_store_t *st, const char *id, spk_chat_file_rec_t *out)
{
    if (st == NULL || id == NULL || out == NULL) {
        return SPK_EINVAL;
    }
    sqlite3_stmt *s = NULL;
    int rc =
        st_acquire(st, ST_CHAT_FILE_GET, "SELECT " FILE_COLS " FROM chat_files WHERE id = ?1", &s);
    if (rc == 0) {
        rc = st_bind_opt(s, 1, id);
    }
    if (rc == 0) {
        rc = st_one(st->db, s, file_row, out, "file get");
    }
    st_release(st, ST_CHAT_FILE_GET, s);
    return rc;
}

static int sum_row(sqlite3_stmt *s, void *out)
{
    *(int64_t *)out = sqlite3_column_int64(s, 0);
    return 0;
}

int spk_store_chat_file_bytes(spk_store_t *st, const char *conversation, int64_t *out)
{
    if (st == NULL || conversation == NULL || out == NULL) {
        return SPK_EINVAL;
    }
    sqlite3_stmt *s = NULL;
    int rc =
        st_acquire(st, ST_CHAT_FILE_BYTES,
                   "SELECT coalesce(sum(size), 0) FROM chat_files WHERE conversation = ?1", &s);
    if (rc == 0) {
        rc = st_bind_opt(s, 1, conversation);
    }
    if (rc == 0) {
        rc = st_one(st->db, s, sum_row, out, "file bytes");
    }
    st_release(st, ST_CHAT_FILE_BYTES, s);
    return rc;
}

typedef struct {
    spk_store_chat_file_cb cb;
    void *ud;
} file_each_t;

static int expired_row(sqlite3_stmt *s, void *ud)
{
    file_each_t *e = ud;
    char id[SPK_ID_LEN];
    int rc = st_col_str(s, 0, id, sizeof(id));
    return rc != 0 ? rc : e->cb(e->ud, id);
}

int spk_store_chat_file_each_expired(spk_store_t *st, int64_t now, int64_t limit,
                                     spk_store_chat_file_cb cb, void *ud)
{
    if (st == NULL || cb == NULL || limit <= 0) {
        return SPK_EINVAL;
    }
    sqlite3_stmt *s = NULL;
    int rc = st_acquire(st, ST_CHAT_FILE_EXPIRED,
                        "SELECT f.id FROM chat_files f JOIN chat_conversations c"
                        " ON c.id = f.conversation WHERE f.created_at + c.retention_s <= ?1"
                        " ORDER BY f.created_at LIMIT ?2",
                        &s);
    if (rc == 0) {
        sqlite3_bind_int64(s, 1, now);
        sqlite3_bind_int64(s, 2, limit);
        file_each_t e = {cb, ud};
        rc = st_rows(st->db, s, expired_row, &e, "file expired");
    }
    st_release(st, ST_CHAT_FILE_EXPIRED, s);
    return rc;
}

int spk_store_chat_file_delete(spk_store_t *st, const char *id)
{
    if (st == NULL || id == NULL) {
        return SPK_EINVAL;
    }
    const st_in_t t[] = {{id, SPK_ID_LEN}};
    return st_write_texts(st, ST_CHAT_FILE_DELETE, "DELETE FROM chat_files WHERE id = ?1", t, 1,
                          NULL, 0, "file delete");
}
