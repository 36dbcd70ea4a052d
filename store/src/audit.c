/* Audit log (NEN 7513): append-only, hash-chained, with an authenticated head anchor.
 *
 * Chain. Entry n stores hash_n = SHA-256(hash_{n-1} || E(entry n)), hash_0 = 32 zero bytes,
 * where E is a canonical encoding of every field: a version tag, seq and ts_ms (8 bytes big
 * endian each) and the ten text fields, each field preceded by its length (4 bytes big endian).
 * Length prefixes make the encoding injective (no two different entries encode alike), and
 * seq inside the hash binds each entry to its position.
 *
 * Anchor. "audit.head" holds the newest (seq, hash) plus, during an append, the entry being
 * committed ("pending"), authenticated with HMAC-SHA256 under the 32-byte key in "audit.key"
 * (mode 0600). The anchor is rewritten atomically (temp file + rename): first with the pending
 * entry before the database commit, then with the new head after it, so a crash at any point
 * leaves an anchor that matches the database. The anchor costs no fsync of its own: the
 * database commit's fsync flushes the file system journal, and with it the rename that came
 * before (ext4 data=ordered with auto_da_alloc, XFS); on other file systems build with
 * -DSPK_AUDIT_ANCHOR_FSYNC.
 * Appends take an exclusive flock on "audit.lock" around the database row and both anchor
 * writes, so spreekd and spreekctl can append to the same chain.
 *
 * Threat model.
 *  - An attacker who can write the database but cannot read audit.key: modifying a field breaks
 *    that entry's hash; deleting, inserting or reordering entries breaks seq continuity or the
 *    prev_hash link; rewriting the chain from some entry onward with fresh SHA-256 hashes (no
 *    key is needed for that) or deleting or adding the newest entries leaves a head that no
 *    longer matches the anchor, and a valid anchor cannot be forged without the key. verify
 *    reports the first bad seq (for a consistent rewrite: the anchored seq).
 *  - When the anchor does not match (or fails authentication), appends still go into the chain
 *    (care must go on) but the anchor is left untouched, so the discrepancy stays visible to
 *    verify until an administrator has investigated it.
 *  - An attacker who holds both the database and audit.key can rebuild a consistent chain and
 *    anchor. Detecting that needs a copy of the head outside the machine: ship audit.head (or
 *    the head line that `spreekctl audit verify` prints) to a log server or another
 *    administrative domain regularly and compare.
 *  - Residual: if the process crashes between the database commit and the final anchor write,
 *    and the newest entry is then deleted before the next append, that deletion is not
 *    detected (the anchor still accepts the pre-commit head).
 */
#include "store_priv.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "spk/error.h"
#include "spk/log.h"
#include "spk/rand.h"
#include "spk/util.h"

/* Build with -DSPK_AUDIT_ANCHOR_FSYNC on file systems that do not persist a rename with the next
 * journal commit: the pending anchor is then flushed before the database commit (one more
 * fsync per append). */
#ifdef SPK_AUDIT_ANCHOR_FSYNC
#define ANCHOR_PENDING ANCHOR_DATA
#else
#define ANCHOR_PENDING ANCHOR_LAZY
#endif

#define AUDIT_TAG "spk-audit-v1"
#define ANCHOR_TAG "spk-audit-head v1"
#define AUDIT_NFIELDS 13 /* tag, seq, ts_ms and ten text fields */
#define AUDIT_COLS                                                                                 \
    "seq, ts_ms, event, outcome, user, name, role, on_behalf_of, access_point, patient,"           \
    " object, detail, prev_hash, hash"

typedef struct {
    const void *p;
    size_t n;
} field_t;

typedef struct {
    int64_t seq;
    uint8_t hash[32];
    int64_t pseq; /* 0 when no append is in flight */
    uint8_t phash[32];
} anchor_t;

static const uint8_t zero_hash[32];

/* ---- hashing ---- */

static void put_be64(uint8_t out[8], int64_t v)
{
    uint64_t u = (uint64_t)v;
    for (int i = 7; i >= 0; i--) {
        out[i] = (uint8_t)(u & 0xff);
        u >>= 8;
    }
}

/* f[0..2] are filled here (tag, seq, ts); the caller fills f[3..12] with the text fields. */
static int chain_hash(const uint8_t prev[32], int64_t seq, int64_t ts_ms, field_t *f,
                      uint8_t out[32])
{
    uint8_t seq_be[8], ts_be[8];
    put_be64(seq_be, seq);
    put_be64(ts_be, ts_ms);
    f[0] = (field_t){AUDIT_TAG, sizeof(AUDIT_TAG) - 1};
    f[1] = (field_t){seq_be, 8};
    f[2] = (field_t){ts_be, 8};
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (ctx == NULL) {
        return SPK_ENOMEM;
    }
    int ok =
        EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1 && EVP_DigestUpdate(ctx, prev, 32) == 1;
    for (int i = 0; ok && i < AUDIT_NFIELDS; i++) {
        if (f[i].n > UINT32_MAX) {
            ok = 0;
            break;
        }
        uint8_t len[4] = {(uint8_t)(f[i].n >> 24), (uint8_t)(f[i].n >> 16), (uint8_t)(f[i].n >> 8),
                          (uint8_t)f[i].n};
        ok = EVP_DigestUpdate(ctx, len, 4) == 1 &&
             (f[i].n == 0 || EVP_DigestUpdate(ctx, f[i].p, f[i].n) == 1);
    }
    unsigned int n = 32;
    ok = ok && EVP_DigestFinal_ex(ctx, out, &n) == 1;
    EVP_MD_CTX_free(ctx);
    return ok ? 0 : SPK_ECRYPTO;
}

static void rec_fields(const spk_audit_rec_t *r, field_t *f)
{
    const char *t[10] = {r->event,        r->outcome,      r->user,    r->name,   r->role,
                         r->on_behalf_of, r->access_point, r->patient, r->object, r->detail};
    for (int i = 0; i < 10; i++) {
        f[3 + i] = (field_t){t[i], strlen(t[i])};
    }
}

/* ---- files: key, lock, anchor ---- */

static int fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        return SPK_EIO;
    }
    int rc = fsync(fd) == 0 ? 0 : SPK_EIO;
    close(fd);
    return rc;
}

static int write_all(int fd, const void *buf, size_t n)
{
    const uint8_t *p = buf;
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            return SPK_EIO;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Writes `data` to `tmp` (0600), flushed to disk when `sync` is set. */
static int write_file(const char *tmp, const void *data, size_t n, bool sync)
{
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        spk_error(0, "audit: cannot write %s: %s", tmp, strerror(errno));
        return SPK_EIO;
    }
    int rc = write_all(fd, data, n);
    if (rc == 0 && sync && fdatasync(fd) != 0) {
        rc = SPK_EIO;
    }
    if (close(fd) != 0) {
        rc = SPK_EIO;
    }
    return rc;
}

static int read_file(const char *path, char *buf, size_t cap, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return errno == ENOENT ? SPK_ENOTFOUND : SPK_EIO;
    }
    size_t n = 0;
    int rc = 0;
    for (;;) {
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r < 0) {
            rc = SPK_EIO;
            break;
        }
        if (r == 0) {
            break;
        }
        n += (size_t)r;
        if (n == cap) {
            rc = SPK_ERANGE;
            break;
        }
    }
    close(fd);
    *len = n;
    return rc;
}

/* Loads audit.key, creating it on first open. Creation writes a temp file and link()s it into
 * place, so two processes opening a fresh store at once agree on one complete key. */
static int load_key(spk_store_t *st, bool *created)
{
    char path[SPK_PATH_MAX + 16], tmp[SPK_PATH_MAX + 48];
    snprintf(path, sizeof(path), "%s/audit.key", st->dir);
    char buf[SPK_AUDIT_KEY_LEN + 1];
    size_t n = 0;
    int rc = read_file(path, buf, sizeof(buf), &n);
    *created = false;
    if (rc == SPK_ENOTFOUND) {
        uint8_t key[SPK_AUDIT_KEY_LEN];
        snprintf(tmp, sizeof(tmp), "%s/audit.key.%ld.tmp", st->dir, (long)getpid());
        rc = spk_random_bytes(key, sizeof(key));
        if (rc == 0) {
            rc = write_file(tmp, key, sizeof(key), true);
        }
        if (rc == 0 && link(tmp, path) != 0) {
            if (errno != EEXIST) {
                spk_error(0, "audit: cannot create %s: %s", path, strerror(errno));
                rc = SPK_EIO;
            }
        } else if (rc == 0) {
            *created = true;
        }
        unlink(tmp);
        spk_wipe(key, sizeof(key));
        if (rc == 0) {
            rc = fsync_dir(st->dir);
        }
        if (rc == 0) {
            rc = read_file(path, buf, sizeof(buf), &n);
        }
    }
    if (rc == 0 && n != SPK_AUDIT_KEY_LEN) {
        spk_error(0, "audit: %s must hold exactly %d bytes", path, SPK_AUDIT_KEY_LEN);
        rc = SPK_EIO;
    }
    if (rc == 0) {
        memcpy(st->audit_key, buf, SPK_AUDIT_KEY_LEN);
    }
    spk_wipe(buf, sizeof(buf));
    return rc;
}

static int anchor_mac(const spk_store_t *st, const char *text, size_t n, char hex[65])
{
    uint8_t mac[32];
    size_t mac_len = 0;
    if (EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, st->audit_key, SPK_AUDIT_KEY_LEN,
                  (const unsigned char *)text, n, mac, sizeof(mac), &mac_len) == NULL ||
        mac_len != sizeof(mac)) {
        return SPK_ECRYPTO;
    }
    spk_hex_encode(hex, mac, sizeof(mac));
    return 0;
}

/* "<tag> <seq> <hash> <pseq> <phash>" without the mac; returns its length. */
static int anchor_body(const anchor_t *a, char *out, size_t cap)
{
    char h[65], ph[65];
    spk_hex_encode(h, a->hash, 32);
    spk_hex_encode(ph, a->phash, 32);
    int n =
        snprintf(out, cap, "%s %" PRId64 " %s %" PRId64 " %s", ANCHOR_TAG, a->seq, h, a->pseq, ph);
    return (n < 0 || (size_t)n >= cap) ? SPK_ERANGE : n;
}

/* Durability levels of an anchor write. */
typedef enum {
    ANCHOR_LAZY,   /* rename only; made durable by the database commit's fsync, which flushes
                    * the file system journal (ext4 data=ordered with auto_da_alloc, XFS) */
    ANCHOR_DATA,   /* contents flushed before the rename */
    ANCHOR_DURABLE /* contents and directory flushed */
} anchor_sync_t;

static int anchor_write(spk_store_t *st, const anchor_t *a, anchor_sync_t sync)
{
    char buf[512], mac[65];
    int n = anchor_body(a, buf, sizeof(buf) - 70);
    if (n < 0) {
        return n;
    }
    int rc = anchor_mac(st, buf, (size_t)n, mac);
    if (rc != 0) {
        return rc;
    }
    n += snprintf(buf + n, sizeof(buf) - (size_t)n, " %s\n", mac);
    rc = write_file(st->head_tmp_path, buf, (size_t)n, sync != ANCHOR_LAZY);
    if (rc == 0 && rename(st->head_tmp_path, st->head_path) != 0) {
        spk_error(0, "audit: cannot replace %s: %s", st->head_path, strerror(errno));
        rc = SPK_EIO;
    }
    if (rc == 0 && sync == ANCHOR_DURABLE) {
        rc = fsync_dir(st->dir);
    }
    return rc;
}

static bool parse_i64(const char *s, int64_t *out)
{
    if (*s < '0' || *s > '9') {
        return false;
    }
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < 0) {
        return false;
    }
    *out = (int64_t)v;
    return true;
}

/* 0, SPK_ENOTFOUND (no anchor), SPK_EVERIFY (malformed or failing authentication), SPK_EIO. */
static int anchor_read(spk_store_t *st, anchor_t *a)
{
    char buf[512];
    size_t n = 0;
    memset(a, 0, sizeof(*a));
    int rc = read_file(st->head_path, buf, sizeof(buf) - 1, &n);
    if (rc == SPK_ERANGE) {
        return SPK_EVERIFY;
    }
    if (rc != 0) {
        return rc;
    }
    buf[n] = '\0';
    char *nl = strchr(buf, '\n');
    char *mac_sp = strrchr(buf, ' ');
    if (nl == NULL || nl[1] != '\0' || mac_sp == NULL) {
        return SPK_EVERIFY;
    }
    *nl = '\0';
    char want[65];
    rc = anchor_mac(st, buf, (size_t)(mac_sp - buf), want);
    if (rc != 0) {
        return rc;
    }
    if (strlen(mac_sp + 1) != 64 || !spk_ct_equal(want, mac_sp + 1, 64)) {
        return SPK_EVERIFY;
    }
    *mac_sp = '\0';
    char *tok[6];
    int nt = 0;
    char *save = NULL;
    for (char *t = strtok_r(buf, " ", &save); t != NULL && nt < 6; t = strtok_r(NULL, " ", &save)) {
        tok[nt++] = t;
    }
    if (nt != 6 || strcmp(tok[0], "spk-audit-head") != 0 || strcmp(tok[1], "v1") != 0 ||
        !parse_i64(tok[2], &a->seq) || spk_hex_decode(a->hash, 32, tok[3], strlen(tok[3])) != 32 ||
        !parse_i64(tok[4], &a->pseq) ||
        spk_hex_decode(a->phash, 32, tok[5], strlen(tok[5])) != 32) {
        return SPK_EVERIFY;
    }
    return 0;
}

static int lock_audit(spk_store_t *st)
{
    while (flock(st->lock_fd, LOCK_EX) != 0) {
        if (errno != EINTR) {
            spk_error(0, "audit: cannot lock audit.lock: %s", strerror(errno));
            return SPK_EIO;
        }
    }
    return 0;
}

static void unlock_audit(spk_store_t *st)
{
    flock(st->lock_fd, LOCK_UN);
}

/* Newest (seq, hash) in the database; (0, zeros) when empty. */
static int db_head(spk_store_t *st, int64_t *seq, uint8_t hash[32])
{
    sqlite3_stmt *s = NULL;
    int rc = spk_st_acquire(st, SPK_ST_AUDIT_HEAD,
                            "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1", &s);
    if (rc != 0) {
        return rc;
    }
    *seq = 0;
    memset(hash, 0, 32);
    int step = sqlite3_step(s);
    if (step == SQLITE_ROW) {
        *seq = sqlite3_column_int64(s, 0);
        const void *h = sqlite3_column_blob(s, 1);
        if (h != NULL && sqlite3_column_bytes(s, 1) == 32) {
            memcpy(hash, h, 32);
        }
    } else if (step != SQLITE_DONE) {
        rc = spk_st_err(st, step, "audit head");
    }
    spk_st_release(st, SPK_ST_AUDIT_HEAD, s);
    return rc;
}

/* True when the anchor accepts (seq, hash) as the database head: either the recorded head, or
 * the pending entry of an append whose final anchor write did not happen. */
static bool anchor_accepts(const anchor_t *a, int64_t seq, const uint8_t hash[32])
{
    if (a->seq == seq && memcmp(a->hash, hash, 32) == 0) {
        return true;
    }
    return a->pseq != 0 && a->pseq == seq && memcmp(a->phash, hash, 32) == 0;
}

/* Checks the anchor against the database head (caller holds the audit lock). */
static int anchor_check(spk_store_t *st, bool *ok)
{
    int64_t seq = 0;
    uint8_t hash[32];
    int rc = db_head(st, &seq, hash);
    if (rc != 0) {
        return rc;
    }
    anchor_t a;
    rc = anchor_read(st, &a);
    if (rc == SPK_ENOTFOUND) {
        *ok = false; /* only a freshly created key starts a new anchor (spk_audit_open) */
        return 0;
    }
    if (rc == SPK_EVERIFY) {
        *ok = false;
        return 0;
    }
    *ok = rc == 0 && anchor_accepts(&a, seq, hash);
    return rc;
}

int spk_audit_open(spk_store_t *st)
{
    bool fresh_key = false;
    int rc = load_key(st, &fresh_key);
    if (rc != 0) {
        return rc;
    }
    char path[SPK_PATH_MAX + 16];
    snprintf(path, sizeof(path), "%s/audit.lock", st->dir);
    st->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (st->lock_fd < 0) {
        spk_error(0, "audit: cannot open %s: %s", path, strerror(errno));
        return SPK_EIO;
    }
    rc = lock_audit(st);
    if (rc != 0) {
        return rc;
    }
    anchor_t a;
    int64_t seq = 0;
    uint8_t hash[32];
    rc = db_head(st, &seq, hash);
    int ar = rc == 0 ? anchor_read(st, &a) : rc;
    /* A missing anchor is normal only next to a key made just now: once a store has a key, its
     * anchor must exist, so wiping the audit table and the anchor together is detected. */
    if (rc == 0 && ar == SPK_ENOTFOUND && seq == 0 && fresh_key) {
        memset(&a, 0, sizeof(a));
        rc = anchor_write(st, &a, ANCHOR_DURABLE);
    } else if (rc == 0 && ar != SPK_EIO && (ar != 0 || !anchor_accepts(&a, seq, hash))) {
        st->anchor_warned = true;
        spk_warn(0,
                 "audit: head anchor does not match the log (newest seq %" PRId64
                 "); run spreekctl audit verify",
                 seq);
    } else if (rc == 0 && ar == SPK_EIO) {
        rc = SPK_EIO;
    }
    unlock_audit(st);
    return rc;
}

void spk_audit_close(spk_store_t *st)
{
    if (st->lock_fd >= 0) {
        close(st->lock_fd);
        st->lock_fd = -1;
    }
}

/* ---- append ---- */

static bool audit_rec_fits(const spk_audit_rec_t *r)
{
    return spk_st_fits(r->event, sizeof(r->event)) && spk_st_fits(r->outcome, sizeof(r->outcome)) &&
           spk_st_fits(r->user, sizeof(r->user)) && spk_st_fits(r->name, sizeof(r->name)) &&
           spk_st_fits(r->role, sizeof(r->role)) &&
           spk_st_fits(r->on_behalf_of, sizeof(r->on_behalf_of)) &&
           spk_st_fits(r->access_point, sizeof(r->access_point)) &&
           spk_st_fits(r->patient, sizeof(r->patient)) &&
           spk_st_fits(r->object, sizeof(r->object)) && spk_st_fits(r->detail, sizeof(r->detail));
}

static int audit_insert(spk_store_t *st, const spk_audit_rec_t *r)
{
    sqlite3_stmt *s = NULL;
    int rc = spk_st_acquire(st, SPK_ST_AUDIT_INSERT,
                            "INSERT INTO audit (" AUDIT_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6,"
                            " ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
                            &s);
    if (rc != 0) {
        return rc;
    }
    const char *t[10] = {r->event,        r->outcome,      r->user,    r->name,   r->role,
                         r->on_behalf_of, r->access_point, r->patient, r->object, r->detail};
    sqlite3_bind_int64(s, 1, r->seq);
    sqlite3_bind_int64(s, 2, r->ts_ms);
    for (int i = 0; i < 10 && rc == 0; i++) {
        rc = spk_st_bind_opt(s, 3 + i, t[i]);
    }
    if (rc == 0 && (sqlite3_bind_blob(s, 13, r->prev_hash, 32, SQLITE_TRANSIENT) != SQLITE_OK ||
                    sqlite3_bind_blob(s, 14, r->hash, 32, SQLITE_TRANSIENT) != SQLITE_OK)) {
        rc = SPK_EIO;
    }
    if (rc == 0) {
        rc = spk_st_err(st, sqlite3_step(s), "audit insert");
    }
    spk_st_release(st, SPK_ST_AUDIT_INSERT, s);
    return rc;
}

/* Inserts the entry and commits, moving the anchor along when it matched (caller holds the
 * audit lock and has begun the transaction). */
static int append_locked(spk_store_t *st, spk_audit_rec_t *rec, bool force_anchor,
                         bool *pending_written)
{
    bool anchor_ok = false;
    int rc = anchor_check(st, &anchor_ok);
    anchor_ok = anchor_ok || force_anchor;
    anchor_t a;
    memset(&a, 0, sizeof(a));
    if (rc == 0) {
        rc = db_head(st, &a.seq, a.hash);
    }
    if (rc != 0) {
        return rc;
    }
    rec->seq = a.seq + 1;
    memcpy(rec->prev_hash, a.hash, 32);
    field_t f[AUDIT_NFIELDS];
    rec_fields(rec, f);
    rc = chain_hash(rec->prev_hash, rec->seq, rec->ts_ms, f, rec->hash);
    if (rc == 0) {
        rc = audit_insert(st, rec);
    }
    a.pseq = rec->seq;
    memcpy(a.phash, rec->hash, 32);
    if (rc == 0 && anchor_ok) {
        rc = anchor_write(st, &a, ANCHOR_PENDING);
        *pending_written = rc == 0;
    }
    if (rc == 0) {
        rc = spk_st_exec(st, "COMMIT");
    }
    if (rc != 0) {
        return rc;
    }
    if (anchor_ok) {
        anchor_t head = {.seq = rec->seq};
        memcpy(head.hash, rec->hash, 32);
        if (anchor_write(st, &head, ANCHOR_LAZY) != 0) {
            /* The entry is durable and the pending anchor still covers it. */
            spk_error(0, "audit: could not move the head anchor to seq %" PRId64, rec->seq);
        }
    } else if (!st->anchor_warned) {
        st->anchor_warned = true;
        spk_warn(0, "audit: head anchor does not match the log; left as is for investigation"
                    " (run spreekctl audit verify)");
    }
    return 0;
}

static int append(spk_store_t *st, spk_audit_rec_t *rec, bool force_anchor)
{
    if (st == NULL || rec == NULL || rec->event[0] == '\0' || !audit_rec_fits(rec)) {
        return rec != NULL && st != NULL && rec->event[0] != '\0' ? SPK_ERANGE : SPK_EINVAL;
    }
    if (rec->ts_ms == 0) {
        rec->ts_ms = spk_now_ms();
    }
    int rc = lock_audit(st);
    if (rc != 0) {
        return rc;
    }
    rc = spk_st_exec(st, "BEGIN IMMEDIATE");
    if (rc == 0) {
        bool pending = false;
        rc = append_locked(st, rec, force_anchor, &pending);
        if (rc != 0) {
            spk_st_exec(st, "ROLLBACK");
            /* The pending anchor accepts the old head already; drop the pending part. */
            anchor_t a;
            memset(&a, 0, sizeof(a));
            if (pending && db_head(st, &a.seq, a.hash) == 0) {
                anchor_write(st, &a, ANCHOR_PENDING);
            }
        }
    }
    unlock_audit(st);
    return rc;
}

int spk_store_audit_append(spk_store_t *st, spk_audit_rec_t *rec)
{
    return append(st, rec, false);
}

/* ---- verify ---- */

typedef struct {
    int64_t last_seq;
    uint8_t last_hash[32];
    int64_t watch[2];          /* seqs whose stored hash is recorded (anchor head, pending) */
    uint8_t watch_hash[2][32]; /* zeros when not seen */
    int64_t bad_seq;
    char why[200];
} walk_t;

static void col_field(sqlite3_stmt *s, int col, field_t *f)
{
    const void *p = sqlite3_column_blob(s, col);
    f->n = p != NULL ? (size_t)sqlite3_column_bytes(s, col) : 0;
    f->p = p;
}

/* Checks one row against the running chain; returns false (filling w) at the first fault. */
static bool walk_row(sqlite3_stmt *s, walk_t *w, int *err)
{
    int64_t seq = sqlite3_column_int64(s, 0);
    int64_t expected = w->last_seq + 1;
    if (seq > expected) {
        w->bad_seq = expected;
        snprintf(w->why, sizeof(w->why), "entry %" PRId64 " is missing (deleted)", expected);
        return false;
    }
    if (seq < expected || sqlite3_column_type(s, 0) != SQLITE_INTEGER) {
        w->bad_seq = seq;
        snprintf(w->why, sizeof(w->why), "unexpected entry %" PRId64 " (inserted)", seq);
        return false;
    }
    const void *prev = sqlite3_column_blob(s, 12);
    if (prev == NULL || sqlite3_column_bytes(s, 12) != 32 || memcmp(prev, w->last_hash, 32) != 0) {
        w->bad_seq = seq;
        snprintf(w->why, sizeof(w->why),
                 "entry %" PRId64 " does not link to entry %" PRId64
                 " (entries deleted, inserted or reordered)",
                 seq, seq - 1);
        return false;
    }
    field_t f[AUDIT_NFIELDS];
    for (int i = 0; i < 10; i++) {
        col_field(s, 2 + i, &f[3 + i]);
    }
    uint8_t h[32];
    *err = chain_hash(w->last_hash, seq, sqlite3_column_int64(s, 1), f, h);
    const void *stored = sqlite3_column_blob(s, 13);
    if (*err != 0) {
        return false;
    }
    if (stored == NULL || sqlite3_column_bytes(s, 13) != 32 || memcmp(stored, h, 32) != 0 ||
        sqlite3_column_type(s, 1) != SQLITE_INTEGER) {
        w->bad_seq = seq;
        snprintf(w->why, sizeof(w->why), "entry %" PRId64 " was modified (hash mismatch)", seq);
        return false;
    }
    w->last_seq = seq;
    memcpy(w->last_hash, h, 32);
    for (int i = 0; i < 2; i++) {
        if (w->watch[i] == seq) {
            memcpy(w->watch_hash[i], h, 32);
        }
    }
    return true;
}

/* Walks the whole chain; 0 when it holds together, SPK_EVERIFY with w->bad_seq otherwise. */
static int walk_chain(spk_store_t *st, walk_t *w)
{
    sqlite3_stmt *s = NULL;
    int rc =
        spk_st_acquire(st, SPK_ST_AUDIT_WALK, "SELECT " AUDIT_COLS " FROM audit ORDER BY seq", &s);
    if (rc != 0) {
        return rc;
    }
    int step;
    int err = 0;
    bool good = true;
    while ((step = sqlite3_step(s)) == SQLITE_ROW) {
        good = walk_row(s, w, &err);
        if (!good) {
            break;
        }
    }
    if (good && step != SQLITE_DONE) {
        err = spk_st_err(st, step, "audit walk");
    }
    spk_st_release(st, SPK_ST_AUDIT_WALK, s);
    if (err != 0) {
        return err;
    }
    return good ? 0 : SPK_EVERIFY;
}

/* Compares the walked chain with an authenticated anchor. */
static int compare_anchor(const anchor_t *a, walk_t *w)
{
    if (anchor_accepts(a, w->last_seq, w->last_hash)) {
        return 0;
    }
    int64_t e = a->seq;
    const uint8_t *eh = a->hash;
    const uint8_t *seen = w->watch_hash[0];
    if (a->pseq != 0 && w->last_seq >= a->pseq && memcmp(w->watch_hash[1], a->phash, 32) == 0) {
        e = a->pseq;
        eh = a->phash;
        seen = w->watch_hash[1];
    }
    if (w->last_seq < e) {
        w->bad_seq = w->last_seq + 1;
        if (w->bad_seq == e) {
            snprintf(w->why, sizeof(w->why),
                     "entry %" PRId64 " is missing at the end (deleted; the head anchor records"
                     " seq %" PRId64 ")",
                     e, e);
        } else {
            snprintf(w->why, sizeof(w->why),
                     "entries %" PRId64 "..%" PRId64 " are missing at the end (deleted; the head"
                     " anchor records seq %" PRId64 ")",
                     w->bad_seq, e, e);
        }
    } else if (e > 0 && memcmp(seen, eh, 32) != 0) {
        w->bad_seq = e;
        snprintf(w->why, sizeof(w->why),
                 "entry %" PRId64 " does not match the head anchor (log rewritten)", e);
    } else if (e == 0 && memcmp(eh, zero_hash, 32) != 0) {
        w->bad_seq = 0;
        snprintf(w->why, sizeof(w->why), "audit.head is inconsistent");
    } else {
        w->bad_seq = e + 1;
        snprintf(w->why, sizeof(w->why),
                 "entry %" PRId64 " is newer than the head anchor (seq %" PRId64
                 "): inserted, or appended while the anchor did not match",
                 e + 1, e);
    }
    return SPK_EVERIFY;
}

/* Reads the anchor and starts a read snapshot of the database under the audit lock, so that
 * both describe the same moment. */
static int snapshot_begin(spk_store_t *st, anchor_t *a, int *anchor_rc)
{
    int rc = lock_audit(st);
    if (rc != 0) {
        return rc;
    }
    rc = spk_st_exec(st, "BEGIN");
    int64_t seq;
    uint8_t hash[32];
    if (rc == 0) {
        rc = db_head(st, &seq, hash); /* the first read fixes the snapshot */
        if (rc != 0) {
            spk_st_exec(st, "ROLLBACK");
        }
    }
    if (rc == 0) {
        *anchor_rc = anchor_read(st, a);
    }
    unlock_audit(st);
    return rc;
}

static int verify_impl(spk_store_t *st, bool check_anchor, walk_t *w)
{
    anchor_t a;
    int ar = 0;
    int rc = snapshot_begin(st, &a, &ar);
    if (rc != 0) {
        return rc;
    }
    memset(w, 0, sizeof(*w));
    w->watch[0] = ar == 0 ? a.seq : -1;
    w->watch[1] = ar == 0 && a.pseq != 0 ? a.pseq : -1;
    rc = walk_chain(st, w);
    spk_st_exec(st, "COMMIT");
    if (rc != 0 || !check_anchor) {
        return rc;
    }
    if (ar == SPK_ENOTFOUND) {
        w->bad_seq = 0;
        snprintf(w->why, sizeof(w->why), "audit.head is missing");
        return SPK_EVERIFY;
    }
    if (ar == SPK_EVERIFY) {
        w->bad_seq = 0;
        snprintf(w->why, sizeof(w->why),
                 "audit.head fails authentication (modified, or audit.key replaced)");
        return SPK_EVERIFY;
    }
    if (ar != 0) {
        return ar;
    }
    return compare_anchor(&a, w);
}

int spk_store_audit_verify(spk_store_t *st, int64_t *bad_seq, char *why, size_t why_len)
{
    if (st == NULL) {
        return SPK_EINVAL;
    }
    walk_t w;
    int rc = verify_impl(st, true, &w);
    if (bad_seq != NULL) {
        *bad_seq = rc == SPK_EVERIFY ? w.bad_seq : 0;
    }
    if (why != NULL && why_len > 0) {
        snprintf(why, why_len, "%s",
                 rc == SPK_EVERIFY ? w.why : (rc == 0 ? "intact" : spk_strerror(rc)));
    }
    if (rc == SPK_EVERIFY) {
        spk_warn(0, "audit: verification failed at seq %" PRId64 ": %s", w.bad_seq, w.why);
    }
    return rc;
}

int spk_store_audit_reanchor(spk_store_t *st, spk_audit_rec_t *rec, int64_t *bad_seq, char *why,
                             size_t why_len)
{
    if (st == NULL || rec == NULL) {
        return SPK_EINVAL;
    }
    walk_t w;
    int rc = verify_impl(st, false, &w);
    if (bad_seq != NULL) {
        *bad_seq = rc == SPK_EVERIFY ? w.bad_seq : 0;
    }
    if (why != NULL && why_len > 0) {
        snprintf(why, why_len, "%s", rc == SPK_EVERIFY ? w.why : "");
    }
    if (rc != 0) {
        return rc;
    }
    /* The new entry links to the head as it is when the append takes the lock. */
    rc = append(st, rec, true);
    if (rc == 0) {
        st->anchor_warned = false;
    }
    return rc;
}

/* ---- reading ---- */

static int audit_row(sqlite3_stmt *s, spk_audit_rec_t *r)
{
    memset(r, 0, sizeof(*r));
    r->seq = sqlite3_column_int64(s, 0);
    r->ts_ms = sqlite3_column_int64(s, 1);
    char *t[10] = {r->event,        r->outcome,      r->user,    r->name,   r->role,
                   r->on_behalf_of, r->access_point, r->patient, r->object, r->detail};
    size_t caps[10] = {sizeof(r->event),        sizeof(r->outcome), sizeof(r->user),
                       sizeof(r->name),         sizeof(r->role),    sizeof(r->on_behalf_of),
                       sizeof(r->access_point), sizeof(r->patient), sizeof(r->object),
                       sizeof(r->detail)};
    for (int i = 0; i < 10; i++) {
        int rc = spk_st_col_str(s, 2 + i, t[i], caps[i]);
        if (rc != 0) {
            return rc;
        }
    }
    const void *p = sqlite3_column_blob(s, 12);
    const void *h = sqlite3_column_blob(s, 13);
    if (p != NULL && sqlite3_column_bytes(s, 12) == 32) {
        memcpy(r->prev_hash, p, 32);
    }
    if (h != NULL && sqlite3_column_bytes(s, 13) == 32) {
        memcpy(r->hash, h, 32);
    }
    return 0;
}

int spk_store_audit_each(spk_store_t *st, const char *patient, spk_store_audit_cb cb, void *ud)
{
    if (st == NULL || cb == NULL) {
        return SPK_EINVAL;
    }
    spk_stmt_id_t id = patient != NULL ? SPK_ST_AUDIT_EACH_PATIENT : SPK_ST_AUDIT_EACH;
    const char *sql = patient != NULL ? "SELECT " AUDIT_COLS
                                        " FROM audit WHERE patient = ?1 ORDER BY seq"
                                      : "SELECT " AUDIT_COLS " FROM audit ORDER BY seq";
    sqlite3_stmt *s = NULL;
    int rc = spk_st_acquire(st, id, sql, &s);
    if (rc != 0) {
        return rc;
    }
    if (patient != NULL) {
        rc = spk_st_bind_opt(s, 1, patient);
    }
    int step = SQLITE_DONE;
    while (rc == 0 && (step = sqlite3_step(s)) == SQLITE_ROW) {
        spk_audit_rec_t r;
        rc = audit_row(s, &r);
        if (rc == 0) {
            rc = cb(ud, &r);
        }
    }
    if (rc == 0 && step != SQLITE_DONE) {
        rc = spk_st_err(st, step, "audit each");
    }
    spk_st_release(st, id, s);
    return rc;
}
