/* Audit log (NEN 7513): append-only, hash-chained, each entry authenticated, with an
 * authenticated head anchor and an optional external witness.
 *
 * Chain. Entry n stores hash_n = SHA-256(hash_{n-1} || E(entry n)), hash_0 = 32 zero bytes,
 * where E is a canonical encoding: a version tag, seq and ts_ms (8 bytes big endian each) and
 * the text fields, each preceded by its length (4 bytes big endian). Length prefixes make the
 * encoding injective, and seq inside the hash binds each entry to its position. Entries of
 * version 2 also store mac = HMAC-SHA256(audit.key, hash). Version 1 entries (written before
 * schema 2) have ten text fields and no MAC; once a version 2 entry exists, every later entry
 * must be version 2.
 *
 * Anchor. "audit.head" holds a recent (seq, hash) of the chain, authenticated with HMAC under the
 * 32-byte key in "audit.key" (mode 0600). It is moved forward after entries are on disk (by the
 * sync thread after each group commit, or after the commit itself without one), written to a
 * temporary file, flushed and renamed, under an exclusive flock on "audit.lock" so that spreekd
 * and spreekctl only ever move it forward. The chain must contain the anchored entry; entries
 * after it are those appended since the last anchor write.
 *
 * Threat model.
 *  - An attacker who can write the database but not read audit.key: modifying a field breaks
 *    that entry's hash; deleting, inserting or reordering entries breaks seq continuity or the
 *    prev_hash link; appending entries (with correct hashes, which need no key) fails their MAC;
 *    rewriting the chain from some entry onward fails the MACs; deleting the newest entries is
 *    detected down to the anchored one (the anchor lags the newest entry by at most one group
 *    commit while spreekd runs, and matches it after a clean stop).
 *  - When the anchor does not match (or fails authentication), appends still go into the chain
 *    (care must go on) but the anchor is left untouched, so the discrepancy stays visible to
 *    verify until an administrator has investigated it (spreekctl audit reanchor).
 *  - An attacker who holds both the database and audit.key can rebuild a consistent chain,
 *    MACs and anchor. The external witness defends against that: the sync thread ships the head
 *    to a file, FIFO or syslog in another administrative domain, and `spreekctl audit verify
 *    --witness FILE` checks that every witnessed head is still in the chain.
 */
#include "store_priv.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <openssl/crypto.h>
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

#define TAG_V1 "spk-audit-v1"
#define TAG_V2 "spk-audit-v2"
#define ANCHOR_TAG "spk-audit-head"
#define WITNESS_TAG "spk-audit-witness v1"
#define N_TEXT 12
#define AUDIT_COLS                                                                                 \
    "seq, ts_ms, v, event, outcome, \"user\", issuer, name, role, on_behalf_of, access_point,"     \
    " patient, practice, object, detail, prev_hash, hash, mac"
#define COL_TEXT 3
#define COL_PREV 15
#define COL_HASH 16
#define COL_MAC 17
#define WALK_PAGE 2000 /* entries read per query of a walk */

typedef struct {
    const void *p;
    size_t n;
} field_t;

typedef struct {
    int64_t seq;
    uint8_t hash[32];
} anchor_t;

/* Positions of the version 1 fields in the version 2 order (no issuer, no practice). */
static const int v1_fields[10] = {0, 1, 2, 4, 5, 6, 7, 8, 10, 11};

/* ---- hashing ---- */

static void put_be64(uint8_t out[8], int64_t v)
{
    uint64_t u = (uint64_t)v;
    for (int i = 7; i >= 0; i--) {
        out[i] = (uint8_t)(u & 0xff);
        u >>= 8;
    }
}

static bool digest_field(EVP_MD_CTX *ctx, const void *p, size_t n)
{
    if (n > UINT32_MAX) {
        return false;
    }
    uint8_t len[4] = {(uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n};
    return EVP_DigestUpdate(ctx, len, 4) == 1 && (n == 0 || EVP_DigestUpdate(ctx, p, n) == 1);
}

/* hash = SHA-256(prev || tag || seq || ts || text fields) in the encoding of version v. */
static int chain_hash(int v, const uint8_t prev[32], int64_t seq, int64_t ts_ms,
                      const field_t text[N_TEXT], uint8_t out[32])
{
    uint8_t seq_be[8], ts_be[8];
    put_be64(seq_be, seq);
    put_be64(ts_be, ts_ms);
    const char *tag = v == 1 ? TAG_V1 : TAG_V2;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (ctx == NULL) {
        return SPK_ENOMEM;
    }
    bool ok = EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1 &&
              EVP_DigestUpdate(ctx, prev, 32) == 1 && digest_field(ctx, tag, strlen(tag)) &&
              digest_field(ctx, seq_be, 8) && digest_field(ctx, ts_be, 8);
    int n = v == 1 ? 10 : N_TEXT;
    for (int i = 0; ok && i < n; i++) {
        const field_t *f = &text[v == 1 ? v1_fields[i] : i];
        ok = digest_field(ctx, f->p, f->n);
    }
    unsigned int len = 32;
    ok = ok && EVP_DigestFinal_ex(ctx, out, &len) == 1;
    EVP_MD_CTX_free(ctx);
    return ok ? 0 : SPK_ECRYPTO;
}

static int hmac32(const spk_store_t *st, const void *data, size_t n, uint8_t out[32])
{
    size_t len = 0;
    if (EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, st->audit_key, ST_AUDIT_KEY_LEN, data, n, out,
                  32, &len) == NULL ||
        len != 32) {
        return SPK_ECRYPTO;
    }
    return 0;
}

static void rec_text(const spk_audit_rec_t *r, field_t f[N_TEXT])
{
    const char *t[N_TEXT] = {r->event,   r->outcome,  r->user,         r->issuer,
                             r->name,    r->role,     r->on_behalf_of, r->access_point,
                             r->patient, r->practice, r->object,       r->detail};
    for (int i = 0; i < N_TEXT; i++) {
        f[i] = (field_t){t[i], strlen(t[i])};
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

/* Writes `data` to a new file `path` (0600), flushed to disk. */
static int write_file(const char *path, const void *data, size_t n)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        spk_error(0, "audit: cannot write %s: %s", path, strerror(errno));
        return SPK_EIO;
    }
    int rc = write_all(fd, data, n);
    if (rc == 0 && fdatasync(fd) != 0) {
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
    char path[ST_PATH_MAX + 16], tmp[ST_PATH_MAX + 48];
    snprintf(path, sizeof(path), "%s/audit.key", st->dir);
    char buf[ST_AUDIT_KEY_LEN + 1];
    size_t n = 0;
    int rc = read_file(path, buf, sizeof(buf), &n);
    *created = false;
    if (rc == SPK_ENOTFOUND) {
        uint8_t key[ST_AUDIT_KEY_LEN];
        snprintf(tmp, sizeof(tmp), "%s/audit.key.%ld.tmp", st->dir, (long)getpid());
        rc = spk_random_bytes(key, sizeof(key));
        if (rc == 0) {
            rc = write_file(tmp, key, sizeof(key));
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
    if (rc == 0 && n != ST_AUDIT_KEY_LEN) {
        spk_error(0, "audit: %s must hold exactly %d bytes", path, ST_AUDIT_KEY_LEN);
        rc = SPK_EIO;
    }
    if (rc == 0) {
        memcpy(st->audit_key, buf, ST_AUDIT_KEY_LEN);
    }
    spk_wipe(buf, sizeof(buf));
    return rc;
}

static int anchor_write(spk_store_t *st, const anchor_t *a)
{
    char body[200], hex[65], mac_hex[65];
    uint8_t mac[32];
    spk_hex_encode(hex, a->hash, 32);
    int n = snprintf(body, sizeof(body), "%s v2 %" PRId64 " %s", ANCHOR_TAG, a->seq, hex);
    int rc = hmac32(st, body, (size_t)n, mac);
    if (rc != 0) {
        return rc;
    }
    spk_hex_encode(mac_hex, mac, 32);
    char line[300];
    n = snprintf(line, sizeof(line), "%s %s\n", body, mac_hex);
    rc = write_file(st->head_tmp_path, line, (size_t)n);
    if (rc == 0 && rename(st->head_tmp_path, st->head_path) != 0) {
        spk_error(0, "audit: cannot replace %s: %s", st->head_path, strerror(errno));
        rc = SPK_EIO;
    }
    return rc == 0 ? fsync_dir(st->dir) : rc;
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

/* 0, SPK_ENOTFOUND (no anchor), SPK_EVERIFY (malformed or failing authentication), SPK_EIO.
 * Reads version 2 ("<tag> v2 <seq> <hash> <mac>") and version 1 ("<tag> v1 <seq> <hash> <pseq>
 * <phash> <mac>", whose pending part is ignored: a lagging anchor is accepted anyway). */
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
    uint8_t want[32], got[32];
    rc = hmac32(st, buf, (size_t)(mac_sp - buf), want);
    if (rc != 0) {
        return rc;
    }
    if (spk_hex_decode(got, 32, mac_sp + 1, strlen(mac_sp + 1)) != 32 ||
        CRYPTO_memcmp(want, got, 32) != 0) {
        return SPK_EVERIFY;
    }
    *mac_sp = '\0';
    char *tok[6];
    int nt = 0;
    char *save = NULL;
    for (char *t = strtok_r(buf, " ", &save); t != NULL && nt < 6; t = strtok_r(NULL, " ", &save)) {
        tok[nt++] = t;
    }
    bool v1 = nt == 6 && strcmp(tok[1], "v1") == 0;
    bool v2 = nt == 4 && strcmp(tok[1], "v2") == 0;
    if ((!v1 && !v2) || strcmp(tok[0], ANCHOR_TAG) != 0 || !parse_i64(tok[2], &a->seq) ||
        spk_hex_decode(a->hash, 32, tok[3], strlen(tok[3])) != 32) {
        return SPK_EVERIFY;
    }
    return 0;
}

static int lock_anchor(spk_store_t *st)
{
    while (flock(st->lock_fd, LOCK_EX) != 0) {
        if (errno != EINTR) {
            spk_error(0, "audit: cannot lock audit.lock: %s", strerror(errno));
            return SPK_EIO;
        }
    }
    return 0;
}

/* ---- chain queries on a given connection ---- */

typedef struct {
    int64_t *seq;
    uint8_t *hash;
} head_t;

static int head_row(st_stmt_t *s, void *ud)
{
    head_t *h = ud;
    *h->seq = st_col_i64(s, 0);
    st_col_blob32(s, 1, h->hash);
    return 0;
}

int st_audit_head(st_db_t *db, int64_t *seq, uint8_t hash[32])
{
    *seq = 0;
    memset(hash, 0, 32);
    st_stmt_t *s = NULL;
    int rc =
        st_prep(db, ST_AUDIT_HEAD, "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1", &s);
    head_t h = {seq, hash};
    if (rc == 0) {
        rc = st_one(s, head_row, &h, "audit head");
    }
    st_done(s);
    return rc == SPK_ENOTFOUND ? 0 : rc;
}

static int hash_row(st_stmt_t *s, void *hash)
{
    return st_col_blob32(s, 0, hash) ? 0 : SPK_EVERIFY;
}

/* Stored hash of entry seq (zeros for seq 0); SPK_ENOTFOUND when there is no such entry. */
static int hash_at(st_db_t *db, int64_t seq, uint8_t hash[32])
{
    memset(hash, 0, 32);
    if (seq == 0) {
        return 0;
    }
    st_stmt_t *s = NULL;
    int rc = st_prep(db, ST_AUDIT_HASH_AT, "SELECT hash FROM audit WHERE seq = ?1", &s);
    if (rc == 0) {
        rc = st_bind_i64(s, 1, seq);
    }
    if (rc == 0) {
        rc = st_one(s, hash_row, hash, "audit hash");
    }
    st_done(s);
    return rc;
}

/* Does the chain (as db sees it) contain the anchored entry? */
static int anchor_in_chain(st_db_t *db, const anchor_t *a, bool *ok)
{
    uint8_t h[32];
    int rc = hash_at(db, a->seq, h);
    if (rc == SPK_ENOTFOUND || rc == SPK_EVERIFY) {
        *ok = false;
        return 0;
    }
    *ok = rc == 0 && memcmp(h, a->hash, 32) == 0;
    return rc;
}

int st_audit_anchor_move(spk_store_t *st, st_db_t *db, int64_t seq, const uint8_t hash[32])
{
    if (atomic_load(&st->anchor_bad)) {
        return 0;
    }
    anchor_t head = {.seq = seq};
    memcpy(head.hash, hash, 32);
    int rc = lock_anchor(st);
    if (rc != 0) {
        return rc;
    }
    anchor_t a;
    int ar = anchor_read(st, &a);
    bool ok = false;
    if (ar == 0 && a.seq < head.seq) {
        rc = anchor_in_chain(db, &a, &ok);
        if (rc == 0 && ok) {
            rc = anchor_write(st, &head);
        }
        ok = ok || rc != 0; /* not known (the database cannot be reached): the next move tries */
    } else if (ar == 0) {
        ok = true; /* already there (or moved further by another process) */
    } else if (ar == SPK_EIO) {
        rc = ar;
        ok = true;
    }
    flock(st->lock_fd, LOCK_UN);
    if (!ok && !atomic_exchange(&st->anchor_bad, true)) {
        spk_warn(0, "audit: head anchor does not match the log; left as is for investigation"
                    " (run spreekctl audit verify)");
    }
    return rc;
}

static int anchor_first(spk_store_t *st, const anchor_t *head, bool *ok);

int st_audit_open(spk_store_t *st)
{
    bool fresh_key = false;
    int rc = load_key(st, &fresh_key);
    if (rc != 0) {
        return rc;
    }
    char path[ST_PATH_MAX + 16];
    snprintf(path, sizeof(path), "%s/audit.lock", st->dir);
    st->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (st->lock_fd < 0) {
        spk_error(0, "audit: cannot open %s: %s", path, strerror(errno));
        return SPK_EIO;
    }
    anchor_t head, a;
    rc = st_audit_head(st->db, &head.seq, head.hash);
    if (rc != 0) {
        return rc;
    }
    rc = lock_anchor(st);
    if (rc != 0) {
        return rc;
    }
    int ar = anchor_read(st, &a);
    bool ok = false;
    /* A missing anchor is normal only next to a key made just now: once a store has a key, its
     * anchor must exist, so wiping the audit table and the anchor together is detected. On
     * PostgreSQL every node keeps its own anchor, and a node new to the deployment has none
     * yet: it anchors the head once the whole chain verifies under the key. */
    if (ar == SPK_ENOTFOUND && head.seq == 0 && fresh_key) {
        memset(&a, 0, sizeof(a));
        rc = anchor_write(st, &a);
        ok = true;
    } else if (ar == SPK_ENOTFOUND && st->target[0] != '\0') {
        rc = anchor_first(st, &head, &ok);
        a = head;
    } else if (ar == 0) {
        rc = anchor_in_chain(st->db, &a, &ok);
    } else if (ar == SPK_EIO) {
        rc = ar;
    }
    flock(st->lock_fd, LOCK_UN);
    if (rc == 0 && !ok) {
        atomic_store(&st->anchor_bad, true);
        spk_warn(0,
                 "audit: head anchor does not match the log (newest seq %" PRId64
                 "); run spreekctl audit verify",
                 head.seq);
    } else if (rc == 0 && a.seq < head.seq) {
        /* entries committed after the last anchor write */
        rc = st_audit_anchor_move(st, st->db, head.seq, head.hash);
    }
    return rc;
}

void st_audit_close(spk_store_t *st)
{
    if (st->lock_fd >= 0) {
        close(st->lock_fd);
        st->lock_fd = -1;
    }
}

/* ---- append ---- */

static bool rec_fits(const spk_audit_rec_t *r)
{
    return st_fits(r->event, sizeof(r->event)) && st_fits(r->outcome, sizeof(r->outcome)) &&
           st_fits(r->user, sizeof(r->user)) && st_fits(r->issuer, sizeof(r->issuer)) &&
           st_fits(r->name, sizeof(r->name)) && st_fits(r->role, sizeof(r->role)) &&
           st_fits(r->on_behalf_of, sizeof(r->on_behalf_of)) &&
           st_fits(r->access_point, sizeof(r->access_point)) &&
           st_fits(r->patient, sizeof(r->patient)) && st_fits(r->practice, sizeof(r->practice)) &&
           st_fits(r->object, sizeof(r->object)) && st_fits(r->detail, sizeof(r->detail));
}

static int insert_row(spk_store_t *st, const spk_audit_rec_t *r, const uint8_t mac[32])
{
    st_stmt_t *s = NULL;
    int rc = st_prep(st->db, ST_AUDIT_INSERT,
                     "INSERT INTO audit (" AUDIT_COLS ") VALUES (?1, ?2, 2, ?3, ?4, ?5, ?6,"
                     " ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)",
                     &s);
    if (rc != 0) {
        return rc;
    }
    const st_in_t t[N_TEXT] = {ST_IN(r->event),        ST_IN(r->outcome),      ST_IN(r->user),
                               ST_IN(r->issuer),       ST_IN(r->name),         ST_IN(r->role),
                               ST_IN(r->on_behalf_of), ST_IN(r->access_point), ST_IN(r->patient),
                               ST_IN(r->practice),     ST_IN(r->object),       ST_IN(r->detail)};
    rc = st_bind_i64(s, 1, r->seq);
    if (rc == 0) {
        rc = st_bind_i64(s, 2, r->ts_ms);
    }
    if (rc == 0) {
        rc = st_bind_texts(s, 3, t, N_TEXT);
    }
    if (rc == 0) {
        rc = st_bind_blob32(s, 15, r->prev_hash);
    }
    if (rc == 0) {
        rc = st_bind_blob32(s, 16, r->hash);
    }
    if (rc == 0) {
        rc = st_bind_blob32(s, 17, mac);
    }
    if (rc == 0) {
        rc = st_failed(st->db, st_step(s), "audit insert");
    }
    st_done(s);
    return rc;
}

/* Links rec to the head and inserts it (caller holds the write transaction). The head is read
 * after taking the audit lock, which other processes' appends wait for until their
 * transaction ends: one chain, whatever the number of processes or nodes. */
static int append_in_txn(spk_store_t *st, spk_audit_rec_t *rec)
{
    int rc = st_failed(st->db, st->db->be->lock_audit(st->db), "audit lock");
    int64_t head = 0;
    if (rc == 0) {
        rc = st_audit_head(st->db, &head, rec->prev_hash);
    }
    if (rc != 0) {
        return rc;
    }
    rec->seq = head + 1;
    field_t f[N_TEXT];
    rec_text(rec, f);
    uint8_t mac[32];
    if (rc == 0) {
        rc = chain_hash(2, rec->prev_hash, rec->seq, rec->ts_ms, f, rec->hash);
    }
    if (rc == 0) {
        rc = hmac32(st, rec->hash, 32, mac);
    }
    if (rc == 0) {
        rc = insert_row(st, rec, mac);
    }
    if (rc == 0) {
        st->txn_audited = true;
    }
    return rc;
}

int spk_store_audit_append(spk_store_t *st, spk_audit_rec_t *rec)
{
    if (st == NULL || rec == NULL || rec->event[0] == '\0') {
        return SPK_EINVAL;
    }
    if (!rec_fits(rec)) {
        return SPK_ERANGE;
    }
    if (rec->ts_ms == 0) {
        rec->ts_ms = spk_now_ms();
    }
    if (st->in_txn) {
        return append_in_txn(st, rec);
    }
    int rc = spk_store_begin(st);
    if (rc == 0) {
        rc = append_in_txn(st, rec);
    }
    if (rc == 0) {
        return spk_store_commit(st, NULL);
    }
    spk_store_rollback(st);
    return rc;
}

/* ---- verify ---- */

struct st_walk {
    const spk_store_t *st;
    int64_t last_seq;
    uint8_t last_hash[32];
    bool seen_v2;
    int64_t bad_seq;
    char why[200];
    int err;
};
typedef st_walk_t walk_t;

static bool walk_fail(walk_t *w, int64_t seq, const char *why)
{
    w->bad_seq = seq;
    snprintf(w->why, sizeof(w->why), "entry %" PRId64 " %s", seq, why);
    return false;
}

/* Checks one row against the running chain; false (filling w) at the first fault. */
static bool walk_row(st_stmt_t *s, walk_t *w)
{
    int64_t seq = st_col_i64(s, 0);
    int64_t expected = w->last_seq + 1;
    if (seq > expected) {
        return walk_fail(w, expected, "is missing (deleted)");
    }
    if (seq < expected || !s->db->be->col_is_int(s, 0) || !s->db->be->col_is_int(s, 1)) {
        return walk_fail(w, seq, "is unexpected (inserted)");
    }
    int v = (int)st_col_i64(s, 2);
    if ((v != 1 && v != 2) || (v == 1 && w->seen_v2)) {
        return walk_fail(w, seq, "has a forged version (inserted)");
    }
    uint8_t prev[32], stored[32], h[32];
    if (!st_col_blob32(s, COL_PREV, prev) || memcmp(prev, w->last_hash, 32) != 0) {
        return walk_fail(w, seq,
                         "does not link to the entry before it (entries deleted, inserted"
                         " or reordered)");
    }
    field_t f[N_TEXT];
    for (int i = 0; i < N_TEXT; i++) {
        f[i].p = st_col_bytes(s, COL_TEXT + i, &f[i].n);
    }
    w->err = chain_hash(v, w->last_hash, seq, st_col_i64(s, 1), f, h);
    if (w->err != 0) {
        return false;
    }
    if (!st_col_blob32(s, COL_HASH, stored) || memcmp(stored, h, 32) != 0) {
        return walk_fail(w, seq, "was modified (hash mismatch)");
    }
    if (v == 2) {
        uint8_t mac[32], want[32];
        w->err = hmac32(w->st, h, 32, want);
        if (w->err != 0) {
            return false;
        }
        if (!st_col_blob32(s, COL_MAC, mac) || CRYPTO_memcmp(mac, want, 32) != 0) {
            return walk_fail(w, seq, "fails authentication (forged or rewritten)");
        }
        w->seen_v2 = true;
    }
    w->last_seq = seq;
    memcpy(w->last_hash, h, 32);
    return true;
}

/* Walks up to max_rows entries after w->last_seq on db; 0 when they hold together,
 * SPK_EVERIFY otherwise. *at_end tells whether the last entry was reached. */
static int walk_from(st_db_t *db, walk_t *w, int64_t max_rows, bool *at_end)
{
    st_stmt_t *s = NULL;
    int rc = st_prep(db, ST_AUDIT_WALK,
                     "SELECT " AUDIT_COLS " FROM audit WHERE seq > ?1 ORDER BY seq LIMIT ?2", &s);
    if (rc == 0) {
        rc = st_bind_i64(s, 1, w->last_seq);
    }
    if (rc == 0) {
        rc = st_bind_i64(s, 2, max_rows);
    }
    bool good = true;
    int step = rc;
    int64_t n = 0;
    while (rc == 0 && (step = st_step(s)) == ST_ROW) {
        n++;
        good = walk_row(s, w);
        if (!good) {
            break;
        }
    }
    *at_end = n < max_rows;
    if (rc == 0) {
        rc = w->err != 0 ? w->err : (good ? st_failed(db, step, "audit walk") : 0);
    }
    st_done(s);
    if (rc != 0) {
        return rc;
    }
    return good ? 0 : SPK_EVERIFY;
}

/* Walks every entry after w->last_seq, a page at a time. */
static int walk_rest(st_db_t *db, walk_t *w)
{
    bool at_end = false;
    int rc = 0;
    while (rc == 0 && !at_end) {
        rc = walk_from(db, w, WALK_PAGE, &at_end);
    }
    return rc;
}

/* Does the walked chain (or db) contain the anchor? Fills w on failure. */
static int check_anchor(spk_store_t *st, st_db_t *db, walk_t *w)
{
    anchor_t a;
    int ar = anchor_read(st, &a);
    if (ar == SPK_ENOTFOUND || ar == SPK_EVERIFY) {
        w->bad_seq = 0;
        snprintf(w->why, sizeof(w->why), "%s",
                 ar == SPK_ENOTFOUND ? "audit.head is missing"
                                     : "audit.head fails authentication (modified, or audit.key "
                                       "replaced)");
        return SPK_EVERIFY;
    }
    if (ar != 0) {
        return ar;
    }
    if (a.seq > w->last_seq) {
        w->bad_seq = w->last_seq + 1;
        snprintf(w->why, sizeof(w->why),
                 "entries %" PRId64 "..%" PRId64 " are missing at the end (deleted; the head"
                 " anchor records seq %" PRId64 ")",
                 w->bad_seq, a.seq, a.seq);
        return SPK_EVERIFY;
    }
    bool ok = false;
    int rc = anchor_in_chain(db, &a, &ok);
    if (rc == 0 && !ok) {
        w->bad_seq = a.seq;
        snprintf(w->why, sizeof(w->why),
                 "entry %" PRId64 " does not match the head anchor (log rewritten)", a.seq);
        return SPK_EVERIFY;
    }
    return rc;
}

/* Walks from (w->last_seq, w->last_hash) in one read snapshot of db (the open transaction, if
 * there is one) and checks the anchor. */
static int verify_snapshot(spk_store_t *st, st_db_t *db, walk_t *w, bool with_anchor)
{
    bool own = !db->in_txn;
    int rc = own ? st_db_begin(db, ST_TXN_SNAPSHOT) : 0;
    if (rc != 0) {
        return rc;
    }
    rc = walk_rest(db, w);
    if (rc == 0 && with_anchor) {
        rc = check_anchor(st, db, w);
    }
    if (own) {
        st_db_rollback(db);
    }
    return rc;
}

/* A node's first anchor on a shared (PostgreSQL) chain: the head, if the chain up to it holds
 * together. */
static int anchor_first(spk_store_t *st, const anchor_t *head, bool *ok)
{
    walk_t w;
    memset(&w, 0, sizeof(w));
    w.st = st;
    int rc = verify_snapshot(st, st->db, &w, false);
    *ok = rc == 0 && w.last_seq >= head->seq;
    if (rc == SPK_EVERIFY) {
        spk_warn(0, "audit: chain fails verification at seq %" PRId64 ": %s", w.bad_seq, w.why);
        return 0;
    }
    if (!*ok) {
        return rc;
    }
    anchor_t a = {.seq = w.last_seq};
    memcpy(a.hash, w.last_hash, 32);
    spk_info(0, "audit: no head anchor in %s yet; the chain verifies, anchored at seq %" PRId64,
             st->dir, a.seq);
    return anchor_write(st, &a);
}

st_walk_t *st_walk_new(const spk_store_t *st)
{
    st_walk_t *w = calloc(1, sizeof(*w));
    if (w != NULL) {
        w->st = st;
    }
    return w;
}

void st_walk_free(st_walk_t *w)
{
    free(w);
}

int st_walk_step(spk_store_t *st, st_walk_t *w, st_db_t *db, int max_rows, bool *done,
                 int64_t *bad_seq)
{
    *done = false;
    int rc = st_db_begin(db, ST_TXN_SNAPSHOT);
    if (rc != 0) {
        return rc;
    }
    bool at_end = false;
    rc = walk_from(db, w, max_rows, &at_end);
    if (rc == 0 && at_end) {
        rc = check_anchor(st, db, w);
        *done = true;
    }
    st_db_rollback(db);
    if (rc == SPK_EVERIFY) {
        *done = true;
        *bad_seq = w->bad_seq;
        spk_warn(0, "audit: periodic verification failed at seq %" PRId64 ": %s", w->bad_seq,
                 w->why);
    }
    return rc;
}

static void report(int rc, const walk_t *w, int64_t *bad_seq, char *why, size_t why_len)
{
    if (bad_seq != NULL) {
        *bad_seq = rc == SPK_EVERIFY ? w->bad_seq : 0;
    }
    if (why != NULL && why_len > 0) {
        snprintf(why, why_len, "%s",
                 rc == SPK_EVERIFY ? w->why : (rc == 0 ? "intact" : spk_strerror(rc)));
    }
}

int st_audit_walk_all(spk_store_t *st, st_db_t *db, int64_t *bad_seq, char *why, size_t why_len)
{
    walk_t w;
    memset(&w, 0, sizeof(w));
    w.st = st;
    int rc = verify_snapshot(st, db, &w, true);
    report(rc, &w, bad_seq, why, why_len);
    if (rc == SPK_EVERIFY) {
        spk_warn(0, "audit: verification failed at seq %" PRId64 ": %s", w.bad_seq, w.why);
    }
    return rc;
}

int spk_store_audit_verify(spk_store_t *st, int64_t *bad_seq, char *why, size_t why_len)
{
    if (st == NULL || st->in_txn) {
        return st == NULL ? SPK_EINVAL : SPK_ESTATE;
    }
    return st_audit_walk_all(st, st->db, bad_seq, why, why_len);
}

int spk_store_audit_verify_recent(spk_store_t *st, int64_t *bad_seq, char *why, size_t why_len)
{
    if (st == NULL) {
        return SPK_EINVAL;
    }
    walk_t w;
    memset(&w, 0, sizeof(w));
    w.st = st;
    int rc;
    if (atomic_load(&st->full_failed)) {
        w.bad_seq = atomic_load(&st->full_bad_seq);
        snprintf(w.why, sizeof(w.why), "the periodic full verification failed at seq %" PRId64,
                 w.bad_seq);
        rc = SPK_EVERIFY;
    } else {
        w.last_seq = st->ver_seq;
        memcpy(w.last_hash, st->ver_hash, 32);
        w.seen_v2 = st->ver_v2;
        rc = verify_snapshot(st, st->db, &w, true);
        /* Remember how far the chain is known intact only when no entry of an uncommitted
         * transaction was walked (it could still be rolled back). */
        if (rc == 0 && !(st->in_txn && st->txn_audited)) {
            st->ver_seq = w.last_seq;
            st->ver_v2 = w.seen_v2;
            memcpy(st->ver_hash, w.last_hash, 32);
        }
    }
    report(rc, &w, bad_seq, why, why_len);
    return rc;
}

int st_audit_witness_line(int64_t seq, const uint8_t hash[32], int64_t ms, char *out, size_t cap)
{
    char hex[65];
    spk_hex_encode(hex, hash, 32);
    int n = snprintf(out, cap, "%s %" PRId64 " %" PRId64 " %s", WITNESS_TAG, ms, seq, hex);
    return (n < 0 || (size_t)n >= cap) ? SPK_ERANGE : n;
}

/* Checks one witness line (any prefix before the tag, e.g. syslog's, is ignored). */
static int witness_check_line(st_db_t *db, const char *line, int64_t *seq_out, bool *ok)
{
    const char *p = strstr(line, WITNESS_TAG " ");
    *ok = true;
    if (p == NULL) {
        return SPK_ENOTFOUND;
    }
    long long ms = 0, seq = 0;
    char hex[80];
    if (sscanf(p + sizeof(WITNESS_TAG), "%lld %lld %70s", &ms, &seq, hex) != 3 || seq < 0) {
        *ok = false;
        return 0;
    }
    uint8_t want[32], have[32];
    *seq_out = seq;
    if (spk_hex_decode(want, 32, hex, strlen(hex)) != 32) {
        *ok = false;
        return 0;
    }
    int rc = hash_at(db, seq, have);
    if (rc == SPK_ENOTFOUND || rc == SPK_EVERIFY) {
        *ok = false;
        return 0;
    }
    *ok = rc == 0 && memcmp(want, have, 32) == 0;
    return rc;
}

int spk_store_audit_check_witness(spk_store_t *st, const char *path, int64_t *lines,
                                  int64_t *bad_seq, char *why, size_t why_len)
{
    if (st == NULL || path == NULL || lines == NULL) {
        return SPK_EINVAL;
    }
    *lines = 0;
    FILE *f = fopen(path, "re");
    if (f == NULL) {
        snprintf(why, why_len, "cannot read %s: %s", path, strerror(errno));
        return SPK_ENOTFOUND;
    }
    char line[1024];
    int rc = 0;
    while (rc == 0 && fgets(line, sizeof(line), f) != NULL) {
        int64_t seq = 0;
        bool ok = true;
        int lr = witness_check_line(st->db, line, &seq, &ok);
        if (lr == SPK_ENOTFOUND) {
            continue;
        }
        (*lines)++;
        if (lr != 0) {
            rc = lr;
        } else if (!ok) {
            *bad_seq = seq;
            snprintf(why, why_len,
                     "witnessed head seq %" PRId64 " is not in the chain (log rebuilt or "
                     "truncated)",
                     seq);
            rc = SPK_EVERIFY;
        }
    }
    fclose(f);
    return rc;
}

int spk_store_audit_reanchor(spk_store_t *st, spk_audit_rec_t *rec, int64_t *bad_seq, char *why,
                             size_t why_len)
{
    if (st == NULL || rec == NULL || st->in_txn) {
        return SPK_EINVAL;
    }
    walk_t w;
    memset(&w, 0, sizeof(w));
    w.st = st;
    int rc = verify_snapshot(st, st->db, &w, false);
    report(rc, &w, bad_seq, why, why_len);
    if (rc != 0) {
        return rc;
    }
    atomic_store(&st->anchor_bad, true); /* no anchor move for the append itself ... */
    rc = spk_store_audit_append(st, rec);
    atomic_store(&st->anchor_bad, false);
    if (rc != 0) {
        return rc;
    }
    /* ... the new baseline is written regardless of what the old anchor says. */
    anchor_t head;
    rc = st_audit_head(st->db, &head.seq, head.hash);
    if (rc == 0) {
        rc = lock_anchor(st);
    }
    if (rc == 0) {
        rc = anchor_write(st, &head);
        flock(st->lock_fd, LOCK_UN);
    }
    return rc;
}

/* ---- reading ---- */

static int audit_row(st_stmt_t *s, spk_audit_rec_t *r)
{
    memset(r, 0, sizeof(*r));
    r->seq = st_col_i64(s, 0);
    r->ts_ms = st_col_i64(s, 1);
    const st_out_t t[N_TEXT] = {
        ST_OUT(r->event),   ST_OUT(r->outcome),  ST_OUT(r->user),         ST_OUT(r->issuer),
        ST_OUT(r->name),    ST_OUT(r->role),     ST_OUT(r->on_behalf_of), ST_OUT(r->access_point),
        ST_OUT(r->patient), ST_OUT(r->practice), ST_OUT(r->object),       ST_OUT(r->detail)};
    int rc = st_col_texts(s, COL_TEXT, t, N_TEXT);
    st_col_blob32(s, COL_PREV, r->prev_hash);
    st_col_blob32(s, COL_HASH, r->hash);
    return rc;
}

typedef struct {
    spk_store_audit_cb cb;
    void *ud;
    int64_t last_seq, rows;
} each_t;

static int each_row(st_stmt_t *s, void *ud)
{
    each_t *e = ud;
    spk_audit_rec_t r;
    int rc = audit_row(s, &r);
    e->last_seq = r.seq;
    e->rows++;
    return rc != 0 ? rc : e->cb(e->ud, &r);
}

int spk_store_audit_each(spk_store_t *st, const spk_store_audit_filter_t *f, spk_store_audit_cb cb,
                         void *ud)
{
    if (st == NULL || cb == NULL) {
        return SPK_EINVAL;
    }
    /* One statement per index: by patient (practice as a filter), by practice, or all; a page
     * of entries at a time. */
    st_stmt_id_t id = ST_AUDIT_EACH;
    const char *sql = "SELECT " AUDIT_COLS " FROM audit WHERE seq > ?1 AND CAST(?2 AS TEXT) IS"
                      " NULL AND CAST(?3 AS TEXT) IS NULL ORDER BY seq LIMIT ?4";
    if (f != NULL && f->patient != NULL) {
        id = ST_AUDIT_EACH_PATIENT;
        sql = "SELECT " AUDIT_COLS " FROM audit WHERE patient = ?2 AND seq > ?1"
              " AND (CAST(?3 AS TEXT) IS NULL OR practice = ?3) ORDER BY seq LIMIT ?4";
    } else if (f != NULL && f->practice != NULL) {
        id = ST_AUDIT_EACH_PRACTICE;
        sql = "SELECT " AUDIT_COLS " FROM audit WHERE practice = ?3 AND seq > ?1"
              " AND CAST(?2 AS TEXT) IS NULL ORDER BY seq LIMIT ?4";
    }
    each_t e = {cb, ud, f != NULL ? f->after : 0, WALK_PAGE};
    int rc = 0;
    while (rc == 0 && e.rows == WALK_PAGE) {
        st_stmt_t *s = NULL;
        rc = st_prep(st->db, id, sql, &s);
        if (rc == 0) {
            rc = st_bind_i64(s, 1, e.last_seq);
        }
        if (rc == 0) {
            rc = st_bind_opt(s, 2, f != NULL ? f->patient : NULL);
        }
        if (rc == 0) {
            rc = st_bind_opt(s, 3, f != NULL ? f->practice : NULL);
        }
        if (rc == 0) {
            rc = st_bind_i64(s, 4, WALK_PAGE);
        }
        e.rows = 0;
        if (rc == 0) {
            rc = st_rows(s, each_row, &e, "audit each");
        }
        st_done(s);
    }
    return rc;
}
