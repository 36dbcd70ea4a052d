/* The MLS delivery service's tables: conversations, members, devices, KeyPackages, the log and
 * the cursors (spk/store_chat.h). */
#include "store_priv.h"

#include <stdlib.h>
#include <string.h>

#include "spk/error.h"
#include "spk/store_chat.h"
#include "spk/util.h"

void spk_store_blob_free(spk_store_blob_t *b)
{
    if (b != NULL && b->p != NULL) {
        spk_wipe(b->p, b->n);
        free(b->p);
    }
    if (b != NULL) {
        b->p = NULL;
        b->n = 0;
    }
}

static int col_blob(st_stmt_t *s, int col, spk_store_blob_t *out)
{
    size_t n = 0;
    const void *p = st_col_bytes(s, col, &n);
    out->p = NULL;
    out->n = 0;
    if (p == NULL || n == 0) {
        return 0;
    }
    out->p = malloc(n);
    if (out->p == NULL) {
        return SPK_ENOMEM;
    }
    memcpy(out->p, p, n);
    out->n = n;
    return 0;
}

/* ---- conversations ---- */

#define CONV_COLS                                                                                  \
    "id, kind, practice, patient, consult, title, created_by_iss, created_by, created_at,"         \
    " closed_at, retention_s, epoch, CASE WHEN observer IS NULL THEN 0 ELSE 1 END"

static int conv_row(st_stmt_t *s, void *out)
{
    spk_chat_conv_rec_t *c = out;
    memset(c, 0, sizeof(*c));
    const st_out_t t[] = {
        ST_OUT(c->id),      ST_OUT(c->kind),  ST_OUT(c->practice),       ST_OUT(c->patient),
        ST_OUT(c->consult), ST_OUT(c->title), ST_OUT(c->created_by_iss), ST_OUT(c->created_by)};
    c->created_at = st_col_i64(s, 8);
    c->closed_at = st_col_i64(s, 9);
    c->retention_s = st_col_i64(s, 10);
    c->epoch = (uint64_t)st_col_i64(s, 11);
    c->has_group = st_col_bool(s, 12);
    return st_col_texts(s, 0, t, sizeof(t) / sizeof(t[0]));
}

int spk_store_chat_conv_insert(spk_store_t *st, const spk_chat_conv_rec_t *c)
{
    if (st == NULL || c == NULL || c->id[0] == '\0' || c->kind[0] == '\0') {
        return SPK_EINVAL;
    }
    const st_in_t t[] = {
        ST_IN(c->id),      ST_IN(c->kind),  ST_IN(c->practice),       ST_IN(c->patient),
        ST_IN(c->consult), ST_IN(c->title), ST_IN(c->created_by_iss), ST_IN(c->created_by)};
    const int64_t ints[] = {c->created_at, c->closed_at, c->retention_s, (int64_t)c->epoch};
    int64_t changed = 0;
    int rc = st_write_texts(st, ST_CHAT_CONV_INSERT,
                            "INSERT INTO chat_conversations (id, kind, practice, patient, consult,"
                            " title, created_by_iss, created_by, created_at, closed_at,"
                            " retention_s, epoch) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10,"
                            " ?11, ?12) ON CONFLICT DO NOTHING",
                            t, 8, ints, 4, &changed, "conversation insert");
    return rc == 0 && changed == 0 ? SPK_EEXIST : rc;
}

int spk_store_chat_conv_get(spk_store_t *st, const char *id, spk_chat_conv_rec_t *out)
{
    if (st == NULL || id == NULL || out == NULL) {
        return SPK_EINVAL;
    }
    st_stmt_t *s = NULL;
    int rc = st_prep(st->db, ST_CHAT_CONV_GET,
                     "SELECT " CONV_COLS " FROM chat_conversations WHERE id = ?1", &s);
    if (rc == 0) {
        rc = st_bind_opt(s, 1, id);
    }
    if (rc == 0) {
        rc = st_one(s, conv_row, out, "conversation get");
    }
    st_done(s);
    return rc;
}

int spk_store_chat_conv_find(spk_store_t *st, const char *kind, const char *practice,
                             const char *patient, const char *consult, spk_chat_conv_rec_t *out)
{
    if (st == NULL || kind == NULL || practice == NULL || patient == NULL || consult == NULL ||
        out == NULL) {
        return SPK_EINVAL;
    }
    st_stmt_t *s = NULL;
    int rc = st_prep(st->db, ST_CHAT_CONV_FIND,
                     "SELECT " CONV_COLS " FROM chat_conversations WHERE kind = ?1 AND"
                     " practice = ?2 AND patient = ?3 AND consult = ?4 AND closed_at = 0"
                     " ORDER BY created_at LIMIT 1",
                     &s);
    const st_in_t t[] = {{kind, SPK_CHAT_KIND_LEN},
                         {practice, SPK_SUB_LEN},
                         {patient, SPK_SUB_LEN},
                         {consult, SPK_ID_LEN}};
    if (rc == 0) {
        rc = st_bind_texts(s, 1, t, 4);
    }
    if (rc == 0) {
        rc = st_one(s, conv_row, out, "conversation find");
    }
    st_done(s);
    return rc;
}

int spk_store_chat_conv_close(spk_store_t *st, const char *id, int64_t at)
{
    if (st == NULL || id == NULL) {
        return SPK_EINVAL;
    }
    const st_in_t t[] = {{id, SPK_ID_LEN}};
    const int64_t ints[] = {at};
    return st_write_texts(st, ST_CHAT_CONV_CLOSE,
                          "UPDATE chat_conversations SET closed_at = ?2 WHERE id = ?1"
                          " AND closed_at = 0",
                          t, 1, ints, 1, NULL, "conversation close");
}

int spk_store_chat_group_put(spk_store_t *st, const char *id, const uint64_t *prev_epoch,
                             uint64_t epoch, const uint8_t *observer, size_t observer_len)
{
    if (st == NULL || id == NULL || observer == NULL || observer_len == 0) {
        return SPK_EINVAL;
    }
    st_stmt_t *s = NULL;
    int rc = prev_epoch == NULL
                 ? st_prep(st->db, ST_CHAT_GROUP_CREATE,
                           "UPDATE chat_conversations SET epoch = ?2, observer = ?3 WHERE id = ?1"
                           " AND observer IS NULL",
                           &s)
                 : st_prep(st->db, ST_CHAT_GROUP_PUT,
                           "UPDATE chat_conversations SET epoch = ?2, observer = ?3 WHERE id = ?1"
                           " AND observer IS NOT NULL AND epoch = ?4",
                           &s);
    if (rc != 0) {
        return rc;
    }
    rc = st_bind_opt(s, 1, id);
    if (rc == 0) {
        rc = st_bind_i64(s, 2, (int64_t)epoch);
    }
    if (rc == 0) {
        rc = st_bind_blob(s, 3, observer, observer_len);
    }
    if (rc == 0 && prev_epoch != NULL) {
        rc = st_bind_i64(s, 4, (int64_t)*prev_epoch);
    }
    if (rc == 0) {
        rc = st_step_write(st, s, "group put");
    }
    int64_t changed = st_changes(s);
    st_done(s);
    if (rc != 0 || changed > 0) {
        return rc;
    }
    spk_chat_conv_rec_t c;
    rc = spk_store_chat_conv_get(st, id, &c);
    return rc == 0 ? SPK_EMLSSTALE : rc;
}

typedef struct {
    uint64_t *epoch;
    spk_store_blob_t *blob;
} group_out_t;

static int group_row(st_stmt_t *s, void *ud)
{
    group_out_t *g = ud;
    *g->epoch = (uint64_t)st_col_i64(s, 0);
    return col_blob(s, 1, g->blob);
}

int spk_store_chat_group_get(spk_store_t *st, const char *id, uint64_t *epoch,
                             spk_store_blob_t *observer)
{
    if (st == NULL || id == NULL || epoch == NULL || observer == NULL) {
        return SPK_EINVAL;
    }
    st_stmt_t *s = NULL;
    int rc = st_prep(st->db, ST_CHAT_GROUP_GET,
                     "SELECT epoch, observer FROM chat_conversations WHERE id = ?1"
                     " AND observer IS NOT NULL",
                     &s);
    if (rc == 0) {
        rc = st_bind_opt(s, 1, id);
    }
    group_out_t g = {epoch, observer};
    if (rc == 0) {
        rc = st_one(s, group_row, &g, "group get");
    }
    st_done(s);
    return rc;
}

typedef struct {
    spk_store_chat_conv_cb cb;
    void *ud;
} conv_each_t;

static int conv_each_row(st_stmt_t *s, void *ud)
{
    conv_each_t *e = ud;
    spk_chat_conv_rec_t c;
    int rc = conv_row(s, &c);
    return rc != 0 ? rc : e->cb(e->ud, &c);
}

static int conv_each(spk_store_t *st, st_stmt_id_t id, const char *sql, const st_in_t *t, size_t n,
                     spk_store_chat_conv_cb cb, void *ud)
{
    if (st == NULL || cb == NULL) {
        return SPK_EINVAL;
    }
    st_stmt_t *s = NULL;
    int rc = st_prep(st->db, id, sql, &s);
    if (rc == 0) {
        rc = st_bind_texts(s, 1, t, n);
    }
    conv_each_t e = {cb, ud};
    if (rc == 0) {
        rc = st_rows(s, conv_each_row, &e, "conversation each");
    }
    st_done(s);
    return rc;
}

int spk_store_chat_conv_each_of_user(spk_store_t *st, const char *iss, const char *sub,
                                     spk_store_chat_conv_cb cb, void *ud)
{
    const st_in_t t[] = {{iss, SPK_SUB_LEN}, {sub, SPK_SUB_LEN}};
    return conv_each(
        st, ST_CHAT_CONV_OF_USER,
        "SELECT c.id, c.kind, c.practice, c.patient, c.consult, c.title,"
        " c.created_by_iss, c.created_by, c.created_at, c.closed_at, c.retention_s,"
        " c.epoch, CASE WHEN c.observer IS NULL THEN 0 ELSE 1 END FROM chat_members m JOIN"
        " chat_conversations c ON c.id = m.conversation WHERE m.iss = ?1 AND"
        " m.sub = ?2 AND m.removed_at = 0 AND c.closed_at = 0"
        " ORDER BY c.created_at DESC",
        t, 2, cb, ud);
}

int spk_store_chat_conv_each_of_practice(spk_store_t *st, const char *practice,
                                         spk_store_chat_conv_cb cb, void *ud)
{
    const st_in_t t[] = {{practice, SPK_SUB_LEN}};
    return conv_each(st, ST_CHAT_CONV_OF_PRACTICE,
                     "SELECT " CONV_COLS " FROM chat_conversations WHERE practice = ?1"
                     " AND closed_at = 0 ORDER BY created_at DESC",
                     t, 1, cb, ud);
}

/* ---- members ---- */

#define MEMBER_COLS "conversation, iss, sub, name, role, added_by, added_at, removed_at"

static int member_row(st_stmt_t *s, void *out)
{
    spk_chat_member_rec_t *m = out;
    memset(m, 0, sizeof(*m));
    const st_out_t t[] = {ST_OUT(m->conversation), ST_OUT(m->iss),  ST_OUT(m->sub),
                          ST_OUT(m->name),         ST_OUT(m->role), ST_OUT(m->added_by)};
    m->added_at = st_col_i64(s, 6);
    m->removed_at = st_col_i64(s, 7);
    return st_col_texts(s, 0, t, sizeof(t) / sizeof(t[0]));
}

int spk_store_chat_member_put(spk_store_t *st, const spk_chat_member_rec_t *m)
{
    if (st == NULL || m == NULL || m->conversation[0] == '\0' || m->sub[0] == '\0') {
        return SPK_EINVAL;
    }
    const st_in_t t[] = {ST_IN(m->conversation), ST_IN(m->iss),  ST_IN(m->sub),
                         ST_IN(m->name),         ST_IN(m->role), ST_IN(m->added_by)};
    const int64_t ints[] = {m->added_at, m->removed_at};
    return st_write_texts(st, ST_CHAT_MEMBER_PUT,
                          "INSERT INTO chat_members (" MEMBER_COLS ") VALUES (?1, ?2, ?3, ?4, ?5,"
                          " ?6, ?7, ?8) ON CONFLICT (conversation, iss, sub) DO UPDATE SET"
                          " name = excluded.name, role = excluded.role,"
                          " added_by = excluded.added_by, added_at = excluded.added_at,"
                          " removed_at = excluded.removed_at",
                          t, 6, ints, 2, NULL, "member put");
}

int spk_store_chat_member_get(spk_store_t *st, const char *conversation, const char *iss,
                              const char *sub, spk_chat_member_rec_t *out)
{
    if (st == NULL || conversation == NULL || iss == NULL || sub == NULL || out == NULL) {
        return SPK_EINVAL;
    }
    st_stmt_t *s = NULL;
    int rc = st_prep(st->db, ST_CHAT_MEMBER_GET,
                     "SELECT " MEMBER_COLS " FROM chat_members WHERE conversation = ?1"
                     " AND iss = ?2 AND sub = ?3",
                     &s);
    const st_in_t t[] = {{conversation, SPK_ID_LEN}, {iss, SPK_SUB_LEN}, {sub, SPK_SUB_LEN}};
    if (rc == 0) {
        rc = st_bind_texts(s, 1, t, 3);
    }
    if (rc == 0) {
        rc = st_one(s, member_row, out, "member get");
    }
    st_done(s);
    return rc;
}

int spk_store_chat_member_remove(spk_store_t *st, const char *conversation, const char *iss,
                                 const char *sub, int64_t at)
{
    spk_chat_member_rec_t m;
    int rc = spk_store_chat_member_get(st, conversation, iss, sub, &m);
    if (rc != 0) {
        return rc;
    }
    if (m.removed_at != 0) {
        return SPK_ESTATE;
    }
    m.removed_at = at;
    return spk_store_chat_member_put(st, &m);
}

typedef struct {
    spk_store_chat_member_cb cb;
    void *ud;
} member_each_t;

static int member_each_row(st_stmt_t *s, void *ud)
{
    member_each_t *e = ud;
    spk_chat_member_rec_t m;
    int rc = member_row(s, &m);
    return rc != 0 ? rc : e->cb(e->ud, &m);
}

int spk_store_chat_member_each(spk_store_t *st, const char *conversation,
                               spk_store_chat_member_cb cb, void *ud)
{
    if (st == NULL || conversation == NULL || cb == NULL) {
        return SPK_EINVAL;
    }
    st_stmt_t *s = NULL;
    int rc = st_prep(st->db, ST_CHAT_MEMBER_EACH,
                     "SELECT " MEMBER_COLS " FROM chat_members WHERE conversation = ?1"
                     " ORDER BY added_at, rowid",
                     &s);
    if (rc == 0) {
        rc = st_bind_opt(s, 1, conversation);
    }
    member_each_t e = {cb, ud};
    if (rc == 0) {
        rc = st_rows(s, member_each_row, &e, "member each");
    }
    st_done(s);
    return rc;
}

/* ---- devices ---- */

int spk_store_chat_device_touch(spk_store_t *st, const char *iss, const char *sub,
                                const char *device, int64_t now)
{
    if (st == NULL || iss == NULL || sub == NULL || device == NULL || device[0] == '\0') {
        return SPK_EINVAL;
    }
    const st_in_t t[] = {{iss, SPK_SUB_LEN}, {sub, SPK_SUB_LEN}, {device, SPK_CHAT_DEVICE_LEN}};
    const int64_t ints[] = {now};
    return st_write_texts(st, ST_CHAT_DEVICE_TOUCH,
                          "INSERT INTO chat_devices (iss, sub, device, created_at, last_seen)"
                          " VALUES (?1, ?2, ?3, ?4, ?4) ON CONFLICT (iss, sub, device) DO UPDATE"
                          " SET last_seen = excluded.last_seen",
                          t, 3, ints, 1, NULL, "device touch");
}

typedef struct {
    spk_store_chat_device_cb cb;
    void *ud;
} device_each_t;

static int device_each_row(st_stmt_t *s, void *ud)
{
    device_each_t *e = ud;
    char device[SPK_CHAT_DEVICE_LEN];
    int rc = st_col_str(s, 0, device, sizeof(device));
    return rc != 0 ? rc : e->cb(e->ud, device, st_col_i64(s, 1));
}

int spk_store_chat_device_each(spk_store_t *st, const char *iss, const char *sub,
                               spk_store_chat_device_cb cb, void *ud)
{
    if (st == NULL || iss == NULL || sub == NULL || cb == NULL) {
        return SPK_EINVAL;
    }
    st_stmt_t *s = NULL;
    int rc = st_prep(st->db, ST_CHAT_DEVICE_EACH,
                     "SELECT device, last_seen FROM chat_devices WHERE iss = ?1 AND sub = ?2"
                     " ORDER BY created_at, device",
                     &s);
    const st_in_t t[] = {{iss, SPK_SUB_LEN}, {sub, SPK_SUB_LEN}};
    if (rc == 0) {
        rc = st_bind_texts(s, 1, t, 2);
    }
    device_each_t e = {cb, ud};
    if (rc == 0) {
        rc = st_rows(s, device_each_row, &e, "device each");
    }
    st_done(s);
    return rc;
}

/* ---- KeyPackages ---- */

int spk_store_chat_kp_put(spk_store_t *st, const uint8_t ref[32], const char *iss, const char *sub,
                          const char *device, const uint8_t *kp, size_t kp_len, bool last_resort,
                          int64_t now, int64_t not_after)
{
    if (st == NULL || ref == NULL || iss == NULL || sub == NULL || device == NULL || kp == NULL ||
        kp_len == 0) {
        return SPK_EINVAL;
    }
    const st_in_t t[] = {{iss, SPK_SUB_LEN}, {sub, SPK_SUB_LEN}, {device, SPK_CHAT_DEVICE_LEN}};
    int rc = 0;
    if (last_resort) {
        rc = st_write_texts(st, ST_CHAT_KP_DROP_LR,
                            "DELETE FROM chat_keypackages WHERE iss = ?1 AND sub = ?2 AND"
                            " device = ?3 AND last_resort = 1",
                            t, 3, NULL, 0, NULL, "key package replace");
    }
    st_stmt_t *s = NULL;
    if (rc == 0) {
        rc = st_prep(st->db, ST_CHAT_KP_PUT,
                     "INSERT INTO chat_keypackages (iss, sub, device, ref, kp, last_resort,"
                     " created_at, not_after) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
                     " ON CONFLICT DO NOTHING",
                     &s);
    }
    if (rc != 0) {
        return rc;
    }
    rc = st_bind_texts(s, 1, t, 3);
    if (rc == 0) {
        rc = st_bind_blob32(s, 4, ref);
    }
    if (rc == 0) {
        rc = st_bind_blob(s, 5, kp, kp_len);
    }
    const int64_t ints[] = {last_resort ? 1 : 0, now, not_after};
    for (int i = 0; rc == 0 && i < 3; i++) {
        rc = st_bind_i64(s, 6 + i, ints[i]);
    }
    if (rc == 0) {
        rc = st_step_write(st, s, "key package put");
    }
    int64_t changed = st_changes(s);
    st_done(s);
    return rc == 0 && changed == 0 ? SPK_EEXIST : rc;
}

typedef struct {
    uint8_t ref[32];
    spk_store_blob_t *kp;
    bool last_resort;
} kp_pick_t;

static int kp_pick_row(st_stmt_t *s, void *ud)
{
    kp_pick_t *k = ud;
    st_col_blob32(s, 0, k->ref);
    k->last_resort = st_col_bool(s, 2);
    return col_blob(s, 1, k->kp);
}

int spk_store_chat_kp_claim(spk_store_t *st, const char *iss, const char *sub, const char *device,
                            int64_t now, spk_store_blob_t *kp, bool *last_resort)
{
    if (st == NULL || iss == NULL || sub == NULL || device == NULL || kp == NULL) {
        return SPK_EINVAL;
    }
    kp->p = NULL;
    kp->n = 0;
    st_stmt_t *s = NULL;
    int rc = st_prep(st->db, ST_CHAT_KP_PICK,
                     "SELECT ref, kp, last_resort FROM chat_keypackages WHERE iss = ?1 AND"
                     " sub = ?2 AND device = ?3 AND kp IS NOT NULL AND not_after > ?4"
                     " ORDER BY last_resort, created_at LIMIT 1",
                     &s);
    const st_in_t t[] = {{iss, SPK_SUB_LEN}, {sub, SPK_SUB_LEN}, {device, SPK_CHAT_DEVICE_LEN}};
    if (rc == 0) {
        rc = st_bind_texts(s, 1, t, 3);
    }
    if (rc == 0) {
        rc = st_bind_i64(s, 4, now);
    }
    kp_pick_t k = {.kp = kp};
    if (rc == 0) {
        rc = st_one(s, kp_pick_row, &k, "key package pick");
    }
    st_done(s);
    if (rc == 0 && !k.last_resort) {
        /* A one-time KeyPackage is used up; its owner stays known for routing the Welcome. */
        st_stmt_t *u = NULL;
        rc = st_prep(st->db, ST_CHAT_KP_USE, "UPDATE chat_keypackages SET kp = NULL WHERE ref = ?1",
                     &u);
        if (rc == 0) {
            rc = st_bind_blob32(u, 1, k.ref);
        }
        if (rc == 0) {
            rc = st_step_write(st, u, "key package use");
        }
        st_done(u);
    }
    if (rc != 0) {
        spk_store_blob_free(kp);
        return rc;
    }
    if (last_resort != NULL) {
        *last_resort = k.last_resort;
    }
    return 0;
}

typedef struct {
    int64_t *one_time;
    bool *last_resort;
} kp_count_t;

static int kp_count_row(st_stmt_t *s, void *ud)
{
    kp_count_t *k = ud;
    *k->one_time = st_col_i64(s, 0);
    *k->last_resort = st_col_i64(s, 1) > 0;
    return 0;
}

int spk_store_chat_kp_count(spk_store_t *st, const char *iss, const char *sub, const char *device,
                            int64_t now, int64_t *one_time, bool *last_resort)
{
    if (st == NULL || iss == NULL || sub == NULL || device == NULL || one_time == NULL ||
        last_resort == NULL) {
        return SPK_EINVAL;
    }
    st_stmt_t *s = NULL;
    int rc = st_prep(st->db, ST_CHAT_KP_COUNT,
                     "SELECT CAST(coalesce(sum(1 - last_resort), 0) AS BIGINT),"
                     " CAST(coalesce(sum(last_resort), 0) AS BIGINT)"
                     " FROM chat_keypackages WHERE iss = ?1 AND sub = ?2 AND device = ?3 AND"
                     " kp IS NOT NULL AND not_after > ?4",
                     &s);
    const st_in_t t[] = {{iss, SPK_SUB_LEN}, {sub, SPK_SUB_LEN}, {device, SPK_CHAT_DEVICE_LEN}};
    if (rc == 0) {
        rc = st_bind_texts(s, 1, t, 3);
    }
    if (rc == 0) {
        rc = st_bind_i64(s, 4, now);
    }
    kp_count_t k = {one_time, last_resort};
    if (rc == 0) {
        rc = st_one(s, kp_count_row, &k, "key package count");
    }
    st_done(s);
    return rc;
}

int spk_store_chat_kp_expire(spk_store_t *st, int64_t now, int64_t *n)
{
    if (st == NULL) {
        return SPK_EINVAL;
    }
    const int64_t ints[] = {now};
    return st_write_texts(st, ST_CHAT_KP_EXPIRE,
                          "DELETE FROM chat_keypackages WHERE not_after <= ?1", NULL, 0, ints, 1, n,
                          "key package expire");
}

typedef struct {
    char *iss, *sub, *device;
} kp_owner_t;

static int kp_owner_row(st_stmt_t *s, void *ud)
{
    kp_owner_t *o = ud;
    const st_out_t t[] = {
        {o->iss, SPK_SUB_LEN}, {o->sub, SPK_SUB_LEN}, {o->device, SPK_CHAT_DEVICE_LEN}};
    return st_col_texts(s, 0, t, 3);
}

int spk_store_chat_kp_owner(spk_store_t *st, const uint8_t ref[32], char iss[SPK_SUB_LEN],
                            char sub[SPK_SUB_LEN], char device[SPK_CHAT_DEVICE_LEN])
{
    if (st == NULL || ref == NULL || iss == NULL || sub == NULL || device == NULL) {
        return SPK_EINVAL;
    }
    st_stmt_t *s = NULL;
    int rc = st_prep(st->db, ST_CHAT_KP_OWNER,
                     "SELECT iss, sub, device FROM chat_keypackages WHERE ref = ?1", &s);
    if (rc == 0) {
        rc = st_bind_blob32(s, 1, ref);
    }
    kp_owner_t o = {iss, sub, device};
    if (rc == 0) {
        rc = st_one(s, kp_owner_row, &o, "key package owner");
    }
    st_done(s);
    return rc;
}

/* ---- log ---- */

#define LOG_COLS                                                                                   \
    "conversation, seq, epoch, type, sender_iss, sender, sender_device, to_iss, to_sub,"           \
    " to_device, at_ms, data"

static int log_append(spk_store_t *st, const spk_chat_entry_t *e, bool defer);

int spk_store_chat_log_append(spk_store_t *st, const spk_chat_entry_t *e)
{
    return log_append(st, e, false);
}

int spk_store_chat_log_append_batched(spk_store_t *st, const spk_chat_entry_t *e)
{
    if (st == NULL || !st->in_txn) {
        return SPK_ESTATE;
    }
    return log_append(st, e, true);
}

static int log_append(spk_store_t *st, const spk_chat_entry_t *e, bool defer)
{
    if (st == NULL || e == NULL || e->conversation[0] == '\0' || e->seq <= 0 || e->data == NULL) {
        return SPK_EINVAL;
    }
    st_stmt_t *s = NULL;
    int rc = st_prep(st->db, ST_CHAT_LOG_APPEND,
                     "INSERT INTO chat_log (" LOG_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7,"
                     " ?8, ?9, ?10, ?11, ?12)",
                     &s);
    if (rc != 0) {
        return rc;
    }
    const st_in_t a[] = {ST_IN(e->conversation)};
    const st_in_t b[] = {ST_IN(e->sender_iss), ST_IN(e->sender), ST_IN(e->sender_device),
                         ST_IN(e->to_iss),     ST_IN(e->to),     ST_IN(e->to_device)};
    rc = st_bind_texts(s, 1, a, 1);
    if (rc == 0) {
        rc = st_bind_texts(s, 5, b, 6);
    }
    const int64_t ints[] = {e->seq, (int64_t)e->epoch, (int64_t)e->type};
    for (int i = 0; rc == 0 && i < 3; i++) {
        rc = st_bind_i64(s, 2 + i, ints[i]);
    }
    if (rc == 0) {
        rc = st_bind_i64(s, 11, e->at_ms);
    }
    if (rc == 0) {
        rc = st_bind_blob(s, 12, e->data, e->data_len);
    }
    if (rc == 0 && defer && st->db->be->defer_next != NULL) {
        st->db->be->defer_next(st->db);
    }
    if (rc == 0) {
        rc = st_step_write(st, s, "log append");
    }
    st_done(s);
    return rc;
}

static int last_row(st_stmt_t *s, void *out)
{
    *(int64_t *)out = st_col_i64(s, 0);
    return 0;
}

int spk_store_chat_log_last(spk_store_t *st, const char *conversation, int64_t *seq)
{
    if (st == NULL || conversation == NULL || seq == NULL) {
        return SPK_EINVAL;
    }
    *seq = 0;
    st_stmt_t *s = NULL;
    int rc = st_prep(st->db, ST_CHAT_LOG_LAST,
                     "SELECT coalesce(max(seq), 0) FROM chat_log WHERE conversation = ?1", &s);
    if (rc == 0) {
        rc = st_bind_opt(s, 1, conversation);
    }
    if (rc == 0) {
        rc = st_one(s, last_row, seq, "log last");
    }
    st_done(s);
    return rc;
}

typedef struct {
    spk_store_chat_entry_cb cb;
    void *ud;
} entry_each_t;

static int entry_row(st_stmt_t *s, void *ud)
{
    entry_each_t *x = ud;
    spk_chat_entry_t e;
    memset(&e, 0, sizeof(e));
    const st_out_t t[] = {ST_OUT(e.sender_iss), ST_OUT(e.sender), ST_OUT(e.sender_device),
                          ST_OUT(e.to_iss),     ST_OUT(e.to),     ST_OUT(e.to_device)};
    int rc = st_col_str(s, 0, e.conversation, sizeof(e.conversation));
    if (rc == 0) {
        rc = st_col_texts(s, 4, t, 6);
    }
    if (rc != 0) {
        return rc;
    }
    e.seq = st_col_i64(s, 1);
    e.epoch = (uint64_t)st_col_i64(s, 2);
    e.type = (spk_chat_entry_type_t)st_col_i64(s, 3);
    e.at_ms = st_col_i64(s, 10);
    e.data = st_col_bytes(s, 11, &e.data_len);
    return x->cb(x->ud, &e);
}

int spk_store_chat_log_each(spk_store_t *st, const char *conversation, int64_t after, int64_t limit,
                            spk_store_chat_entry_cb cb, void *ud)
{
    if (st == NULL || conversation == NULL || cb == NULL) {
        return SPK_EINVAL;
    }
    st_stmt_t *s = NULL;
    int rc = st_prep(st->db, ST_CHAT_LOG_EACH,
                     "SELECT " LOG_COLS " FROM chat_log WHERE conversation = ?1 AND seq > ?2"
                     " ORDER BY seq LIMIT ?3",
                     &s);
    if (rc == 0) {
        rc = st_bind_opt(s, 1, conversation);
    }
    if (rc == 0) {
        rc = st_bind_i64(s, 2, after);
    }
    if (rc == 0) {
        rc = st_bind_i64(s, 3, limit > 0 ? limit : INT64_MAX);
    }
    entry_each_t x = {cb, ud};
    if (rc == 0) {
        rc = st_rows(s, entry_row, &x, "log each");
    }
    st_done(s);
    return rc;
}

int spk_store_chat_log_recent(spk_store_t *st, const char *conversation, uint64_t epoch,
                              spk_chat_entry_type_t type, int64_t after, int64_t limit,
                              spk_store_chat_entry_cb cb, void *ud)
{
    if (st == NULL || conversation == NULL || cb == NULL) {
        return SPK_EINVAL;
    }
    st_stmt_t *s = NULL;
    int rc = st_prep(st->db, ST_CHAT_LOG_RECENT,
                     "SELECT " LOG_COLS " FROM chat_log WHERE conversation = ?1 AND seq > ?2"
                     " AND epoch = ?3 AND type = ?4 ORDER BY seq DESC LIMIT ?5",
                     &s);
    if (rc == 0) {
        rc = st_bind_opt(s, 1, conversation);
    }
    const int64_t ints[] = {after, (int64_t)epoch, (int64_t)type, limit > 0 ? limit : INT64_MAX};
    for (int i = 0; rc == 0 && i < 4; i++) {
        rc = st_bind_i64(s, 2 + i, ints[i]);
    }
    entry_each_t x = {cb, ud};
    if (rc == 0) {
        rc = st_rows(s, entry_row, &x, "log recent");
    }
    st_done(s);
    return rc;
}

/* ---- the replay window ---- */

int st_schema_chat(spk_store_t *st)
{
    return st_db_exec(st->db, "CREATE TABLE IF NOT EXISTS chat_replay ("
                              " conversation TEXT PRIMARY KEY NOT NULL, epoch INTEGER NOT NULL,"
                              " seq INTEGER NOT NULL, digests BLOB NOT NULL) WITHOUT ROWID;");
}

#define REPLAY_MAX 4096 /* digests per conversation */

int spk_store_chat_replay_put(spk_store_t *st, const char *conversation, uint64_t epoch,
                              int64_t seq, const uint64_t *digests, size_t n)
{
    if (st == NULL || conversation == NULL || (digests == NULL && n > 0) || n > REPLAY_MAX) {
        return SPK_EINVAL;
    }
    uint8_t *b = malloc(n * 8 + 1);
    if (b == NULL) {
        return SPK_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        for (size_t k = 0; k < 8; k++) {
            b[i * 8 + k] = (uint8_t)(digests[i] >> (8 * k)); /* little-endian */
        }
    }
    st_stmt_t *s = NULL;
    int rc = st_prep(st->db, ST_CHAT_REPLAY_PUT,
                     "INSERT INTO chat_replay (conversation, epoch, seq, digests)"
                     " VALUES (?1, ?2, ?3, ?4) ON CONFLICT (conversation) DO UPDATE SET"
                     " epoch = excluded.epoch, seq = excluded.seq, digests = excluded.digests",
                     &s);
    if (rc == 0) {
        rc = st_bind_opt(s, 1, conversation);
    }
    if (rc == 0) {
        rc = st_bind_i64(s, 2, (int64_t)epoch);
    }
    if (rc == 0) {
        rc = st_bind_i64(s, 3, seq);
    }
    if (rc == 0) {
        rc = st_bind_blob(s, 4, b, n * 8);
    }
    if (rc == 0) {
        rc = st_step_write(st, s, "replay window put");
    }
    st_done(s);
    free(b);
    return rc;
}

typedef struct {
    uint64_t *epoch;
    int64_t *seq;
    uint64_t *digests;
    size_t cap, *n;
} replay_out_t;

static int replay_row(st_stmt_t *s, void *out)
{
    replay_out_t *o = out;
    *o->epoch = (uint64_t)st_col_i64(s, 0);
    *o->seq = st_col_i64(s, 1);
    size_t bytes = 0;
    const uint8_t *b = st_col_bytes(s, 2, &bytes);
    size_t have = bytes / 8;
    size_t skip = have > o->cap ? have - o->cap : 0; /* keep the newest */
    *o->n = 0;
    for (size_t i = skip; i < have; i++) {
        uint64_t h = 0;
        for (size_t k = 0; k < 8; k++) {
            h |= (uint64_t)b[i * 8 + k] << (8 * k);
        }
        o->digests[(*o->n)++] = h;
    }
    return 0;
}

int spk_store_chat_replay_get(spk_store_t *st, const char *conversation, uint64_t *epoch,
                              int64_t *seq, uint64_t *digests, size_t cap, size_t *n)
{
    if (st == NULL || conversation == NULL || epoch == NULL || seq == NULL || n == NULL ||
        (digests == NULL && cap > 0)) {
        return SPK_EINVAL;
    }
    *epoch = 0;
    *seq = 0;
    *n = 0;
    st_stmt_t *s = NULL;
    int rc = st_prep(st->db, ST_CHAT_REPLAY_GET,
                     "SELECT epoch, seq, digests FROM chat_replay WHERE conversation = ?1", &s);
    if (rc == 0) {
        rc = st_bind_opt(s, 1, conversation);
    }
    replay_out_t o = {epoch, seq, digests, cap, n};
    if (rc == 0) {
        rc = st_one(s, replay_row, &o, "replay window get");
    }
    st_done(s);
    return rc;
}

int spk_store_chat_log_trim(spk_store_t *st, const char *conversation, int64_t upto, int64_t *n)
{
    if (st == NULL || conversation == NULL) {
        return SPK_EINVAL;
    }
    const st_in_t t[] = {{conversation, SPK_ID_LEN}};
    const int64_t ints[] = {upto};
    return st_write_texts(st, ST_CHAT_LOG_TRIM,
                          "DELETE FROM chat_log WHERE conversation = ?1 AND seq <= ?2", t, 1, ints,
                          1, n, "log trim");
}

int spk_store_chat_log_trim_acked(spk_store_t *st, int64_t limit, int64_t *n)
{
    if (st == NULL || limit < 0) {
        return SPK_EINVAL;
    }
    const int64_t ints[] = {limit > 0 ? limit : INT64_MAX};
    return st_write_texts(st, ST_CHAT_LOG_TRIM_ACKED,
                          "DELETE FROM chat_log WHERE (conversation, seq) IN ("
                          "SELECT l.conversation, l.seq FROM chat_log AS l WHERE l.seq <="
                          " (SELECT min(c.acked) FROM chat_cursors AS c"
                          " WHERE c.conversation = l.conversation AND c.active = 1)"
                          " AND (l.type <> 3 OR l.seq <= (SELECT r.seq FROM chat_replay AS r"
                          " WHERE r.conversation = l.conversation))"
                          " LIMIT ?1)",
                          NULL, 0, ints, 1, n, "log trim acknowledged");
}

int spk_store_chat_log_expire(spk_store_t *st, int64_t before_ms, int64_t *n)
{
    if (st == NULL) {
        return SPK_EINVAL;
    }
    const int64_t ints[] = {before_ms};
    return st_write_texts(st, ST_CHAT_LOG_EXPIRE, "DELETE FROM chat_log WHERE at_ms < ?1", NULL, 0,
                          ints, 1, n, "log expire");
}

/* ---- cursors ---- */

#define CURSOR_COLS "conversation, iss, sub, device, from_seq, acked, active"

static int cursor_row(st_stmt_t *s, void *out)
{
    spk_chat_cursor_t *c = out;
    memset(c, 0, sizeof(*c));
    const st_out_t t[] = {ST_OUT(c->conversation), ST_OUT(c->iss), ST_OUT(c->sub),
                          ST_OUT(c->device)};
    c->from_seq = st_col_i64(s, 4);
    c->acked = st_col_i64(s, 5);
    c->active = st_col_bool(s, 6);
    return st_col_texts(s, 0, t, 4);
}

int spk_store_chat_cursor_put(spk_store_t *st, const spk_chat_cursor_t *c)
{
    if (st == NULL || c == NULL || c->conversation[0] == '\0' || c->device[0] == '\0') {
        return SPK_EINVAL;
    }
    const st_in_t t[] = {ST_IN(c->conversation), ST_IN(c->iss), ST_IN(c->sub), ST_IN(c->device)};
    const int64_t ints[] = {c->from_seq, c->acked, c->active ? 1 : 0};
    return st_write_texts(st, ST_CHAT_CURSOR_PUT,
                          "INSERT INTO chat_cursors (" CURSOR_COLS ") VALUES (?1, ?2, ?3, ?4, ?5,"
                          " ?6, ?7) ON CONFLICT (conversation, iss, sub, device) DO UPDATE SET"
                          " from_seq = excluded.from_seq, acked = excluded.acked,"
                          " active = excluded.active",
                          t, 4, ints, 3, NULL, "cursor put");
}

int spk_store_chat_cursor_get(spk_store_t *st, const char *conversation, const char *iss,
                              const char *sub, const char *device, spk_chat_cursor_t *out)
{
    if (st == NULL || conversation == NULL || iss == NULL || sub == NULL || device == NULL ||
        out == NULL) {
        return SPK_EINVAL;
    }
    st_stmt_t *s = NULL;
    int rc = st_prep(st->db, ST_CHAT_CURSOR_GET,
                     "SELECT " CURSOR_COLS " FROM chat_cursors WHERE conversation = ?1 AND"
                     " iss = ?2 AND sub = ?3 AND device = ?4",
                     &s);
    const st_in_t t[] = {{conversation, SPK_ID_LEN},
                         {iss, SPK_SUB_LEN},
                         {sub, SPK_SUB_LEN},
                         {device, SPK_CHAT_DEVICE_LEN}};
    if (rc == 0) {
        rc = st_bind_texts(s, 1, t, 4);
    }
    if (rc == 0) {
        rc = st_one(s, cursor_row, out, "cursor get");
    }
    st_done(s);
    return rc;
}

typedef struct {
    spk_store_chat_cursor_cb cb;
    void *ud;
} cursor_each_t;

static int cursor_each_row(st_stmt_t *s, void *ud)
{
    cursor_each_t *e = ud;
    spk_chat_cursor_t c;
    int rc = cursor_row(s, &c);
    return rc != 0 ? rc : e->cb(e->ud, &c);
}

static int cursor_each(spk_store_t *st, st_stmt_id_t id, const char *sql, const st_in_t *t,
                       size_t n, spk_store_chat_cursor_cb cb, void *ud)
{
    if (st == NULL || cb == NULL) {
        return SPK_EINVAL;
    }
    st_stmt_t *s = NULL;
    int rc = st_prep(st->db, id, sql, &s);
    if (rc == 0) {
        rc = st_bind_texts(s, 1, t, n);
    }
    cursor_each_t e = {cb, ud};
    if (rc == 0) {
        rc = st_rows(s, cursor_each_row, &e, "cursor each");
    }
    st_done(s);
    return rc;
}

int spk_store_chat_cursor_each(spk_store_t *st, const char *conversation,
                               spk_store_chat_cursor_cb cb, void *ud)
{
    const st_in_t t[] = {{conversation, SPK_ID_LEN}};
    return cursor_each(st, ST_CHAT_CURSOR_EACH,
                       "SELECT " CURSOR_COLS " FROM chat_cursors WHERE conversation = ?1", t, 1, cb,
                       ud);
}

int spk_store_chat_cursor_each_of_device(spk_store_t *st, const char *iss, const char *sub,
                                         const char *device, spk_store_chat_cursor_cb cb, void *ud)
{
    const st_in_t t[] = {{iss, SPK_SUB_LEN}, {sub, SPK_SUB_LEN}, {device, SPK_CHAT_DEVICE_LEN}};
    return cursor_each(st, ST_CHAT_CURSOR_OF_DEVICE,
                       "SELECT " CURSOR_COLS " FROM chat_cursors WHERE iss = ?1 AND sub = ?2"
                       " AND device = ?3 AND active = 1",
                       t, 3, cb, ud);
}
