/* Unit tests for store/: every function, restart, invites, delegations, and the audit chain
 * under each kind of tampering done directly on the database; on SQLite, and with --pg on
 * PostgreSQL (backend.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "backend.h"
#include "spk/error.h"
#include "spk/store.h"
#include "spk/util.h"

typedef struct {
    char dir[256];
    tb_store_t b;
    spk_store_t *st;
} fixture_t;

static void rm_rf(const char *dir)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    tb_temp_open(&f->b, f->dir, "/tmp/spk_store_XXXXXX", &f->st);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    tb_temp_close(&f->b, f->dir, f->st);
    free(f);
    return 0;
}

static void reopen(fixture_t *f)
{
    spk_store_close(f->st);
    f->st = NULL;
    assert_int_equal(tb_open(&f->b, &f->st), 0);
}

static void sql(fixture_t *f, const char *q)
{
    tb_sql(&f->b, q);
}

static void tamper(fixture_t *f, const char *q)
{
    tb_tamper(&f->b, q);
}

static spk_consult_rec_t mk_consult(const char *id, const char *practice, int64_t at)
{
    spk_consult_rec_t c;
    memset(&c, 0, sizeof(c));
    snprintf(c.id, sizeof(c.id), "%s", id);
    snprintf(c.practice, sizeof(c.practice), "%s", practice);
    strcpy(c.gp, "gp-jansen");
    strcpy(c.patient, "pp-123");
    strcpy(c.title, "Beeldbellen");
    strcpy(c.created_by, "gp-jansen");
    c.created_at = at;
    return c;
}

/* ---- files ---- */

static void test_open_creates_private_files(void **state)
{
    fixture_t *f = *state;
    struct stat sb;
    char p[512];
    assert_int_equal(stat(f->dir, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0700);
    const char *files[] = {"audit.key", "audit.head", "spreekkamer.db"};
    for (size_t i = 0; i < (tb_pg() ? 2 : 3); i++) {
        snprintf(p, sizeof(p), "%s/%s", f->dir, files[i]);
        assert_int_equal(stat(p, &sb), 0);
        assert_int_equal(sb.st_mode & 0777, 0600);
    }
    if (tb_pg()) { /* the data directory holds no database */
        snprintf(p, sizeof(p), "%s/spreekkamer.db", f->dir);
        assert_int_equal(stat(p, &sb), -1);
        assert_string_equal(spk_store_backend(f->st), "postgresql");
    } else {
        assert_string_equal(spk_store_backend(f->st), "sqlite");
    }
    snprintf(p, sizeof(p), "%s/audit.key", f->dir);
    assert_int_equal(stat(p, &sb), 0);
    assert_int_equal(sb.st_size, 32);
    spk_store_t *bad = NULL;
    assert_int_equal(spk_store_open(&bad, ""), SPK_EINVAL);
    assert_int_equal(spk_store_open(&bad, "/proc/nonexistent/x"), SPK_EIO);
    assert_null(bad);
    spk_store_close(NULL);
}

/* ---- consults ---- */

typedef struct {
    int n;
    char ids[8][SPK_ID_LEN];
    int stop_at;
} collect_t;

static int collect_consult(void *ud, const spk_consult_rec_t *c)
{
    collect_t *col = ud;
    snprintf(col->ids[col->n++], SPK_ID_LEN, "%s", c->id);
    return col->n == col->stop_at ? 42 : 0;
}

static void test_consult(void **state)
{
    fixture_t *f = *state;
    spk_store_t *st = f->st;
    spk_consult_rec_t a = mk_consult("c_a", "prac1", 100);
    spk_consult_rec_t b = mk_consult("c_b", "prac2", 200);
    spk_consult_rec_t c = mk_consult("c_c", "prac1", 300);
    assert_int_equal(spk_store_consult_insert(st, &a), 0);
    assert_int_equal(spk_store_consult_insert(st, &b), 0);
    assert_int_equal(spk_store_consult_insert(st, &c), 0);
    assert_int_equal(spk_store_consult_insert(st, &a), SPK_EEXIST);

    spk_consult_rec_t got;
    assert_int_equal(spk_store_consult_get(st, "c_b", &got), 0);
    assert_string_equal(got.practice, "prac2");
    assert_string_equal(got.patient, "pp-123");
    assert_string_equal(got.title, "Beeldbellen");
    assert_int_equal(got.state, SPK_CONSULT_OPEN);
    assert_int_equal(got.created_at, 200);
    assert_int_equal(spk_store_consult_get(st, "c_x", &got), SPK_ENOTFOUND);

    collect_t col = {0};
    assert_int_equal(spk_store_consult_each_open(st, NULL, collect_consult, &col), 0);
    assert_int_equal(col.n, 3);
    assert_string_equal(col.ids[0], "c_a");
    assert_string_equal(col.ids[2], "c_c");

    assert_int_equal(spk_store_consult_end(st, "c_a", 500), 0);
    assert_int_equal(spk_store_consult_end(st, "c_a", 501), SPK_ECONSULTENDED);
    assert_int_equal(spk_store_consult_end(st, "c_x", 501), SPK_ENOTFOUND);
    assert_int_equal(spk_store_consult_get(st, "c_a", &got), 0);
    assert_int_equal(got.state, SPK_CONSULT_ENDED);
    assert_int_equal(got.ended_at, 500);

    memset(&col, 0, sizeof(col));
    assert_int_equal(spk_store_consult_each_open(st, "prac1", collect_consult, &col), 0);
    assert_int_equal(col.n, 1);
    assert_string_equal(col.ids[0], "c_c");

    memset(&col, 0, sizeof(col));
    col.stop_at = 1;
    assert_int_equal(spk_store_consult_each_open(st, NULL, collect_consult, &col), 42);
    assert_int_equal(col.n, 1);

    spk_consult_rec_t bad = mk_consult("c_bad", "p", 1);
    memset(bad.title, 'x', sizeof(bad.title)); /* no NUL: truncated field */
    assert_int_equal(spk_store_consult_insert(st, &bad), SPK_ERANGE);
    assert_int_equal(spk_store_consult_insert(st, NULL), SPK_EINVAL);
}

typedef struct {
    spk_store_t *st;
    int outer, inner;
} nest_t;

static int nest_inner(void *ud, const spk_consult_rec_t *c)
{
    ((nest_t *)ud)->inner++;
    return 0;
}

static int nest_outer(void *ud, const spk_consult_rec_t *c)
{
    nest_t *n = ud;
    n->outer++;
    /* Re-entering the same query, and writing, from inside a callback. */
    int rc = spk_store_consult_each_open(n->st, NULL, nest_inner, n);
    if (rc == 0) {
        rc = spk_store_consult_end(n->st, c->id, 900);
    }
    return rc;
}

static void test_iterator_reentry(void **state)
{
    fixture_t *f = *state;
    for (int i = 0; i < 3; i++) {
        char id[16];
        snprintf(id, sizeof(id), "c_n%d", i);
        spk_consult_rec_t c = mk_consult(id, "prac1", 100 + i);
        assert_int_equal(spk_store_consult_insert(f->st, &c), 0);
    }
    nest_t n = {.st = f->st};
    assert_int_equal(spk_store_consult_each_open(f->st, NULL, nest_outer, &n), 0);
    assert_int_equal(n.outer, 3);
    assert_true(n.inner >= 3);
    collect_t col = {0};
    assert_int_equal(spk_store_consult_each_open(f->st, NULL, collect_consult, &col), 0);
    assert_int_equal(col.n, 0);
}

/* ---- participants ---- */

static int count_part(void *ud, const spk_participant_rec_t *p)
{
    collect_t *col = ud;
    snprintf(col->ids[col->n++], SPK_ID_LEN, "%s", p->id);
    return 0;
}

static void test_participants(void **state)
{
    fixture_t *f = *state;
    spk_consult_rec_t c = mk_consult("c_p", "prac1", 100);
    assert_int_equal(spk_store_consult_insert(f->st, &c), 0);
    spk_participant_rec_t p;
    memset(&p, 0, sizeof(p));
    strcpy(p.consult, "c_p");
    strcpy(p.id, "p1");
    strcpy(p.sub, "p1");
    strcpy(p.name, "Patiënt");
    p.role = SPK_ROLE_PATIENT;
    p.state = SPK_PART_LOBBY;
    p.joined_at = 10;
    p.updated_at = 10;
    assert_int_equal(spk_store_participant_put(f->st, &p), 0);
    strcpy(p.id, "g1");
    strcpy(p.sub, "gp-jansen");
    p.role = SPK_ROLE_GP;
    p.state = SPK_PART_ADMITTED;
    p.joined_at = 20;
    assert_int_equal(spk_store_participant_put(f->st, &p), 0);

    spk_participant_rec_t got;
    assert_int_equal(spk_store_participant_get(f->st, "c_p", "p1", &got), 0);
    assert_int_equal(got.role, SPK_ROLE_PATIENT);
    assert_int_equal(got.state, SPK_PART_LOBBY);
    assert_string_equal(got.name, "Patiënt");

    got.state = SPK_PART_ADMITTED;
    got.updated_at = 30;
    assert_int_equal(spk_store_participant_put(f->st, &got), 0);
    assert_int_equal(spk_store_participant_get(f->st, "c_p", "p1", &got), 0);
    assert_int_equal(got.state, SPK_PART_ADMITTED);
    assert_int_equal(got.updated_at, 30);
    assert_int_equal(spk_store_participant_get(f->st, "c_p", "nobody", &got), SPK_ENOTFOUND);

    collect_t col = {0};
    assert_int_equal(spk_store_participant_each(f->st, "c_p", count_part, &col), 0);
    assert_int_equal(col.n, 2);
    assert_string_equal(col.ids[0], "p1");
    assert_string_equal(col.ids[1], "g1");

    strcpy(p.consult, "c_unknown");
    assert_int_equal(spk_store_participant_put(f->st, &p), SPK_ENOTFOUND);
}

/* ---- invites ---- */

static void test_invites(void **state)
{
    fixture_t *f = *state;
    spk_store_t *st = f->st;
    spk_consult_rec_t c = mk_consult("c_i", "prac1", 100);
    assert_int_equal(spk_store_consult_insert(st, &c), 0);

    char code[32];
    spk_invite_rec_t inv;
    assert_int_equal(
        spk_store_invite_create(st, "c_i", "gp-jansen", 1000, 600, code, sizeof(code), &inv), 0);
    assert_int_equal(strlen(code), 22);
    assert_int_equal(inv.expires_at, 1600);
    uint8_t h[32];
    spk_store_invite_hash(code, strlen(code), h);
    assert_memory_equal(h, inv.code_hash, 32);

    spk_invite_rec_t used;
    assert_int_equal(spk_store_invite_use(st, h, 1100, "part-1", &used), 0);
    assert_int_equal(used.used_at, 1100);
    assert_string_equal(used.used_by, "part-1");
    assert_string_equal(used.consult, "c_i");
    /* Used twice. */
    assert_int_equal(spk_store_invite_use(st, h, 1101, "part-2", NULL), SPK_EINVITEUSED);

    /* Expired: at exactly expires_at it is no longer valid. */
    char code2[32];
    assert_int_equal(
        spk_store_invite_create(st, "c_i", "gp-jansen", 1000, 60, code2, sizeof(code2), NULL), 0);
    uint8_t h2[32];
    spk_store_invite_hash(code2, strlen(code2), h2);
    assert_int_equal(spk_store_invite_use(st, h2, 1060, "part-3", NULL), SPK_EINVITEEXPIRED);
    assert_int_equal(spk_store_invite_use(st, h2, 1059, "part-3", NULL), 0);

    /* Unknown. */
    uint8_t h3[32];
    spk_store_invite_hash("nonsense", 8, h3);
    assert_int_equal(spk_store_invite_use(st, h3, 1000, "part-4", NULL), SPK_EINVITEINVALID);

    /* Manual insert and bad arguments. */
    spk_invite_rec_t m;
    memset(&m, 0, sizeof(m));
    memcpy(m.code_hash, h3, 32);
    strcpy(m.consult, "c_i");
    strcpy(m.created_by, "assistant-1");
    m.created_at = 1000;
    m.expires_at = 2000;
    assert_int_equal(spk_store_invite_insert(st, &m), 0);
    assert_int_equal(spk_store_invite_insert(st, &m), SPK_EEXIST);
    assert_int_equal(spk_store_invite_use(st, h3, 1500, "part-4", NULL), 0);
    strcpy(m.consult, "c_nope");
    m.code_hash[0] ^= 1;
    assert_int_equal(spk_store_invite_insert(st, &m), SPK_ENOTFOUND);
    assert_int_equal(
        spk_store_invite_create(st, "c_nope", "x", 1000, 60, code2, sizeof(code2), NULL),
        SPK_ENOTFOUND);
    assert_int_equal(spk_store_invite_create(st, "c_i", "x", 1000, 60, code2, 8, NULL), SPK_EINVAL);

    /* Ended consult: no new invites. */
    assert_int_equal(spk_store_consult_end(st, "c_i", 1700), 0);
    assert_int_equal(spk_store_invite_create(st, "c_i", "x", 1800, 60, code2, sizeof(code2), NULL),
                     SPK_ECONSULTENDED);
}

/* ---- delegations ---- */

static int count_deleg(void *ud, const spk_delegation_rec_t *d)
{
    collect_t *col = ud;
    snprintf(col->ids[col->n++], SPK_ID_LEN, "%s", d->id);
    return 0;
}

static spk_delegation_rec_t mk_deleg(const char *id, const char *practice, int64_t from,
                                     int64_t until)
{
    spk_delegation_rec_t d;
    memset(&d, 0, sizeof(d));
    snprintf(d.id, sizeof(d.id), "%s", id);
    snprintf(d.practice, sizeof(d.practice), "%s", practice);
    strcpy(d.grantee, "rgp-de-vries");
    strcpy(d.granted_by, "gp-jansen");
    d.created_at = from;
    d.valid_from = from;
    d.valid_until = until;
    return d;
}

static void test_delegations(void **state)
{
    fixture_t *f = *state;
    spk_store_t *st = f->st;
    spk_delegation_rec_t d = mk_deleg("d_1", "prac1", 1000, 2000);
    assert_int_equal(spk_store_delegation_insert(st, &d), 0);
    assert_int_equal(spk_store_delegation_insert(st, &d), SPK_EEXIST);
    spk_delegation_rec_t d2 = mk_deleg("d_2", "prac2", 1000, 2000);
    assert_int_equal(spk_store_delegation_insert(st, &d2), 0);

    spk_delegation_rec_t got;
    assert_int_equal(spk_store_delegation_get(st, "d_1", &got), 0);
    assert_string_equal(got.grantee, "rgp-de-vries");
    assert_int_equal(got.valid_until, 2000);
    assert_int_equal(spk_store_delegation_get(st, "d_x", &got), SPK_ENOTFOUND);

    /* Window edges: valid_from <= now < valid_until. */
    assert_int_equal(spk_store_delegation_find_active(st, "prac1", "", "rgp-de-vries", 999, &got),
                     SPK_ENOTFOUND);
    assert_int_equal(spk_store_delegation_find_active(st, "prac1", "", "rgp-de-vries", 1000, &got),
                     0);
    assert_string_equal(got.id, "d_1");
    assert_int_equal(spk_store_delegation_find_active(st, "prac1", "", "rgp-de-vries", 1999, &got),
                     0);
    assert_int_equal(spk_store_delegation_find_active(st, "prac1", "", "rgp-de-vries", 2000, &got),
                     SPK_ENOTFOUND);
    assert_int_equal(spk_store_delegation_find_active(st, "prac1", "", "someone", 1500, &got),
                     SPK_ENOTFOUND);
    assert_int_equal(spk_store_delegation_find_active(st, "prac3", "", "rgp-de-vries", 1500, &got),
                     SPK_ENOTFOUND);

    /* Revoke. */
    assert_int_equal(spk_store_delegation_revoke(st, "d_1", 1500), 0);
    assert_int_equal(spk_store_delegation_revoke(st, "d_1", 1501), SPK_ESTATE);
    assert_int_equal(spk_store_delegation_revoke(st, "d_x", 1501), SPK_ENOTFOUND);
    assert_int_equal(spk_store_delegation_find_active(st, "prac1", "", "rgp-de-vries", 1600, &got),
                     SPK_ENOTFOUND);
    assert_int_equal(spk_store_delegation_get(st, "d_1", &got), 0);
    assert_int_equal(got.revoked_at, 1500);

    collect_t col = {0};
    assert_int_equal(spk_store_delegation_each(st, "prac1", count_deleg, &col), 0);
    assert_int_equal(col.n, 1);
    assert_string_equal(col.ids[0], "d_1");
    memset(&col, 0, sizeof(col));
    assert_int_equal(spk_store_delegation_each(st, NULL, count_deleg, &col), 0);
    assert_int_equal(col.n, 2);
}

/* ---- facts ---- */

static int count_fact(void *ud, const spk_fact_rec_t *fr)
{
    collect_t *col = ud;
    snprintf(col->ids[col->n++], SPK_ID_LEN, "%s", fr->kind);
    return 0;
}

static void put_fact(spk_store_t *st, const char *consult, const char *kind, const char *subject,
                     const char *value, int64_t at)
{
    spk_fact_rec_t fr;
    memset(&fr, 0, sizeof(fr));
    snprintf(fr.consult, sizeof(fr.consult), "%s", consult);
    snprintf(fr.kind, sizeof(fr.kind), "%s", kind);
    snprintf(fr.subject, sizeof(fr.subject), "%s", subject);
    snprintf(fr.value, sizeof(fr.value), "%s", value);
    strcpy(fr.recorded_by, "gp-jansen");
    fr.at = at;
    assert_int_equal(spk_store_fact_put(st, &fr), 0);
}

static void test_facts(void **state)
{
    fixture_t *f = *state;
    spk_consult_rec_t c = mk_consult("c_f", "prac1", 100);
    assert_int_equal(spk_store_consult_insert(f->st, &c), 0);
    put_fact(f->st, "c_f", "identity_check", "p1", "verified:id_document", 10);
    put_fact(f->st, "c_f", "speak_freely", "p1", "yes", 11);
    put_fact(f->st, "c_f", "speak_freely", "p1", "no", 12); /* replaces */
    spk_fact_rec_t got;
    assert_int_equal(spk_store_fact_get(f->st, "c_f", "speak_freely", NULL, "p1", &got), 0);
    assert_string_equal(got.value, "no");
    assert_int_equal(got.at, 12);
    assert_int_equal(spk_store_fact_get(f->st, "c_f", "consent", NULL, "p1", &got), SPK_ENOTFOUND);
    collect_t col = {0};
    assert_int_equal(spk_store_fact_each(f->st, "c_f", count_fact, &col), 0);
    assert_int_equal(col.n, 2);
    assert_string_equal(col.ids[0], "identity_check");
    spk_fact_rec_t bad;
    memset(&bad, 0, sizeof(bad));
    strcpy(bad.consult, "c_none");
    strcpy(bad.kind, "consent");
    assert_int_equal(spk_store_fact_put(f->st, &bad), SPK_ENOTFOUND);
}

/* ---- restart keeps state ---- */

static void test_restart_keeps_state(void **state)
{
    fixture_t *f = *state;
    spk_consult_rec_t c = mk_consult("c_r", "prac1", 100);
    assert_int_equal(spk_store_consult_insert(f->st, &c), 0);
    spk_participant_rec_t p;
    memset(&p, 0, sizeof(p));
    strcpy(p.consult, "c_r");
    strcpy(p.id, "p1");
    strcpy(p.sub, "p1");
    p.role = SPK_ROLE_PATIENT;
    p.state = SPK_PART_DENIED;
    assert_int_equal(spk_store_participant_put(f->st, &p), 0);
    char code[32];
    assert_int_equal(
        spk_store_invite_create(f->st, "c_r", "gp", 1000, 600, code, sizeof(code), NULL), 0);
    spk_delegation_rec_t d = mk_deleg("d_r", "prac1", 1000, 5000);
    assert_int_equal(spk_store_delegation_insert(f->st, &d), 0);
    put_fact(f->st, "c_r", "consent", "specialist_view", "given:verbal", 50);

    reopen(f);

    spk_consult_rec_t gc;
    assert_int_equal(spk_store_consult_get(f->st, "c_r", &gc), 0);
    assert_string_equal(gc.gp, "gp-jansen");
    spk_participant_rec_t gp;
    assert_int_equal(spk_store_participant_get(f->st, "c_r", "p1", &gp), 0);
    assert_int_equal(gp.state, SPK_PART_DENIED);
    uint8_t h[32];
    spk_store_invite_hash(code, strlen(code), h);
    assert_int_equal(spk_store_invite_use(f->st, h, 1001, "p1", NULL), 0);
    reopen(f);
    assert_int_equal(spk_store_invite_use(f->st, h, 1002, "p2", NULL), SPK_EINVITEUSED);
    spk_delegation_rec_t gd;
    assert_int_equal(
        spk_store_delegation_find_active(f->st, "prac1", "", "rgp-de-vries", 2000, &gd), 0);
    spk_fact_rec_t gf;
    assert_int_equal(spk_store_fact_get(f->st, "c_r", "consent", NULL, "specialist_view", &gf), 0);
    assert_string_equal(gf.value, "given:verbal");
}

/* ---- audit ---- */

static int append_n(spk_store_t *st, int n, const char *patient)
{
    for (int i = 0; i < n; i++) {
        spk_audit_rec_t r;
        memset(&r, 0, sizeof(r));
        r.ts_ms = 1700000000000 + i;
        snprintf(r.event, sizeof(r.event), "%s", i % 2 ? "consult.join" : "consult.create");
        strcpy(r.outcome, "success");
        strcpy(r.user, "gp-jansen");
        strcpy(r.name, "Dr. Jansen");
        strcpy(r.role, "gp");
        strcpy(r.access_point, "127.0.0.1");
        strcpy(r.issuer, "uzi");
        snprintf(r.patient, sizeof(r.patient), "%s", patient);
        snprintf(r.practice, sizeof(r.practice), "%s", i % 3 ? "prac1" : "prac2");
        snprintf(r.object, sizeof(r.object), "c_%d", i);
        int rc = spk_store_audit_append(st, &r);
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}

typedef struct {
    int n;
    int64_t last_seq;
    uint8_t last_hash[32];
    bool linked;
} audit_walk_t;

static int walk_cb(void *ud, const spk_audit_rec_t *r)
{
    audit_walk_t *w = ud;
    if (r->seq != w->last_seq + 1 || memcmp(r->prev_hash, w->last_hash, 32) != 0) {
        w->linked = false;
    }
    w->last_seq = r->seq;
    memcpy(w->last_hash, r->hash, 32);
    w->n++;
    return 0;
}

static void expect_verify(spk_store_t *st, int want_rc, int64_t want_seq)
{
    int64_t bad = -1;
    char why[256];
    int rc = spk_store_audit_verify(st, &bad, why, sizeof(why));
    if (rc != want_rc || (want_rc == SPK_EVERIFY && bad != want_seq)) {
        fail_msg("verify: rc %d (want %d), bad_seq %lld (want %lld): %s", rc, want_rc,
                 (long long)bad, (long long)want_seq, why);
    }
}

static void test_audit_intact(void **state)
{
    fixture_t *f = *state;
    expect_verify(f->st, 0, 0);
    assert_int_equal(append_n(f->st, 4, "pp-1"), 0);
    assert_int_equal(append_n(f->st, 3, "pp-2"), 0);
    spk_audit_rec_t r;
    memset(&r, 0, sizeof(r));
    strcpy(r.event, "audit.read");
    strcpy(r.outcome, "success");
    assert_int_equal(spk_store_audit_append(f->st, &r), 0);
    assert_int_equal(r.seq, 8);
    assert_true(r.ts_ms > 0); /* filled in */
    expect_verify(f->st, 0, 0);

    audit_walk_t w = {.linked = true};
    assert_int_equal(spk_store_audit_each(f->st, NULL, walk_cb, &w), 0);
    assert_int_equal(w.n, 8);
    assert_true(w.linked);
    assert_memory_equal(w.last_hash, r.hash, 32);
    audit_walk_t w2 = {.linked = true};
    spk_store_audit_filter_t pf = {.patient = "pp-2"};
    assert_int_equal(spk_store_audit_each(f->st, &pf, walk_cb, &w2), 0);
    assert_int_equal(w2.n, 3);

    reopen(f);
    expect_verify(f->st, 0, 0);
    assert_int_equal(append_n(f->st, 1, "pp-1"), 0);
    expect_verify(f->st, 0, 0);

    /* Field limits and arguments. */
    memset(r.detail, 'x', sizeof(r.detail));
    assert_int_equal(spk_store_audit_append(f->st, &r), SPK_ERANGE);
    r.event[0] = '\0';
    assert_int_equal(spk_store_audit_append(f->st, &r), SPK_EINVAL);
    assert_int_equal(spk_store_audit_verify(NULL, NULL, NULL, 0), SPK_EINVAL);
}

/* Five entries, then close so that the database can be tampered with. */
static void audit_five(fixture_t *f)
{
    assert_int_equal(append_n(f->st, 5, "pp-1"), 0);
    expect_verify(f->st, 0, 0);
    spk_store_close(f->st);
    f->st = NULL;
}

static void test_tamper_modify(void **state)
{
    fixture_t *f = *state;
    audit_five(f);
    tamper(f, "UPDATE audit SET outcome = 'forbidden' WHERE seq = 3;");
    assert_int_equal(tb_open(&f->b, &f->st), 0);
    expect_verify(f->st, SPK_EVERIFY, 3);
    /* Logging goes on, the fault stays visible. */
    assert_int_equal(append_n(f->st, 1, "pp-1"), 0);
    expect_verify(f->st, SPK_EVERIFY, 3);
}

static void test_tamper_modify_time(void **state)
{
    fixture_t *f = *state;
    audit_five(f);
    tamper(f, "UPDATE audit SET ts_ms = ts_ms + 1 WHERE seq = 2;");
    assert_int_equal(tb_open(&f->b, &f->st), 0);
    expect_verify(f->st, SPK_EVERIFY, 2);
}

static void test_tamper_delete_middle(void **state)
{
    fixture_t *f = *state;
    audit_five(f);
    tamper(f, "DELETE FROM audit WHERE seq = 3;");
    assert_int_equal(tb_open(&f->b, &f->st), 0);
    expect_verify(f->st, SPK_EVERIFY, 3);
}

static void test_tamper_delete_newest(void **state)
{
    fixture_t *f = *state;
    audit_five(f);
    tamper(f, "DELETE FROM audit WHERE seq = 5;");
    assert_int_equal(tb_open(&f->b, &f->st), 0);
    expect_verify(f->st, SPK_EVERIFY, 5);
    /* A later append must not hide the deletion. */
    assert_int_equal(append_n(f->st, 2, "pp-1"), 0);
    expect_verify(f->st, SPK_EVERIFY, 5);
}

static void test_tamper_swap(void **state)
{
    fixture_t *f = *state;
    audit_five(f);
    tamper(f, "CREATE TEMP TABLE t AS SELECT * FROM audit WHERE seq IN (2, 4);"
              "UPDATE audit SET (ts_ms, event, outcome, \"user\", name, role, on_behalf_of,"
              " access_point, patient, object, detail, prev_hash, hash, mac) = (SELECT"
              " ts_ms, event, outcome, \"user\", name, role, on_behalf_of, access_point,"
              " patient, object, detail, prev_hash, hash, mac FROM t"
              " WHERE t.seq = 6 - audit.seq) WHERE seq IN (2, 4);");
    assert_int_equal(tb_open(&f->b, &f->st), 0);
    expect_verify(f->st, SPK_EVERIFY, 2);
}

static void test_tamper_insert_middle(void **state)
{
    fixture_t *f = *state;
    audit_five(f);
    tamper(f, "UPDATE audit SET seq = -seq WHERE seq >= 3;"
              "UPDATE audit SET seq = 1 - seq WHERE seq < 0;"
              "INSERT INTO audit SELECT 3, ts_ms, 'consult.admit', outcome, \"user\", name,"
              " role, on_behalf_of, access_point, patient, object, detail, prev_hash, hash,"
              " v, issuer, practice, mac FROM audit WHERE seq = 2;");
    assert_int_equal(tb_open(&f->b, &f->st), 0);
    expect_verify(f->st, SPK_EVERIFY, 3);
}

/* A forged entry with a valid hash at the end, made by someone without audit.key (a copy of the
 * store with another key): its MAC gives it away although no anchor covers it yet. */
static void test_tamper_insert_newest_valid_hash(void **state)
{
    fixture_t *f = *state;
    audit_five(f);
    char twin[300], key[320];
    snprintf(twin, sizeof(twin), "%s.twin", f->dir);
    tb_store_t tw;
    tb_copy(&f->b, &tw, twin);
    snprintf(key, sizeof(key), "%s/audit.key", twin);
    assert_int_equal(unlink(key), 0);
    spk_store_t *t = NULL;
    assert_int_equal(tb_open(&tw, &t), 0);
    assert_int_equal(append_n(t, 1, "pp-forged"), 0);
    spk_store_close(t);
    tb_copy_audit_row(&tw, &f->b, 6, false);
    tb_destroy(&tw);
    rm_rf(twin);
    assert_int_equal(tb_open(&f->b, &f->st), 0);
    expect_verify(f->st, SPK_EVERIFY, 6);
}

/* The newest entry replaced by another with a valid hash: the anchor catches it. */
static void test_tamper_rewrite_newest(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(append_n(f->st, 4, "pp-1"), 0);
    spk_store_close(f->st);
    char twin[300];
    snprintf(twin, sizeof(twin), "%s.twin", f->dir);
    tb_store_t tw;
    tb_copy(&f->b, &tw, twin);
    assert_int_equal(tb_open(&f->b, &f->st), 0);
    assert_int_equal(append_n(f->st, 1, "pp-1"), 0);
    spk_store_close(f->st);
    spk_store_t *t = NULL;
    assert_int_equal(tb_open(&tw, &t), 0);
    assert_int_equal(append_n(t, 1, "pp-other"), 0);
    spk_store_close(t);
    tb_copy_audit_row(&tw, &f->b, 5, true);
    tb_destroy(&tw);
    rm_rf(twin);
    assert_int_equal(tb_open(&f->b, &f->st), 0);
    expect_verify(f->st, SPK_EVERIFY, 5);
}

static void edit_file(const char *path, long off, char c)
{
    FILE *fp = fopen(path, "r+");
    assert_non_null(fp);
    assert_int_equal(fseek(fp, off, SEEK_SET), 0);
    assert_int_equal(fputc(c, fp), c);
    fclose(fp);
}

static void test_tamper_anchor(void **state)
{
    fixture_t *f = *state;
    audit_five(f);
    char head[300];
    snprintf(head, sizeof(head), "%s/audit.head", f->dir);
    /* "spk-audit-head v1 5 ...": make it claim seq 4. */
    edit_file(head, 18, '4');
    assert_int_equal(tb_open(&f->b, &f->st), 0);
    expect_verify(f->st, SPK_EVERIFY, 0);
    spk_store_close(f->st);
    f->st = NULL;
    assert_int_equal(unlink(head), 0);
    assert_int_equal(tb_open(&f->b, &f->st), 0);
    if (tb_pg()) {
        /* A node without an anchor is new to the shared chain: it anchors the head once the
         * chain verifies (docs/audit.md, several nodes), and from then on holds it. */
        expect_verify(f->st, 0, 0);
    } else {
        expect_verify(f->st, SPK_EVERIFY, 0);
    }
    /* Wiping the whole log (SQLite: together with the anchor) is detected too. */
    spk_store_close(f->st);
    f->st = NULL;
    tamper(f, "DELETE FROM audit;");
    /* SQLite: no anchor file at all; PostgreSQL: the anchor at seq 5 names missing entries. */
    int64_t at = tb_pg() ? 1 : 0;
    assert_int_equal(tb_open(&f->b, &f->st), 0);
    expect_verify(f->st, SPK_EVERIFY, at);
    assert_int_equal(append_n(f->st, 1, "pp-1"), 0);
    expect_verify(f->st, SPK_EVERIFY, tb_pg() ? 2 : 0);
}

static void test_reanchor(void **state)
{
    fixture_t *f = *state;
    audit_five(f);
    tamper(f, "DELETE FROM audit WHERE seq = 5;");
    assert_int_equal(tb_open(&f->b, &f->st), 0);
    expect_verify(f->st, SPK_EVERIFY, 5);
    spk_audit_rec_t r;
    memset(&r, 0, sizeof(r));
    strcpy(r.event, "audit.reanchor");
    strcpy(r.outcome, "success");
    strcpy(r.detail, "investigated: newest entry lost");
    int64_t bad = -1;
    assert_int_equal(spk_store_audit_reanchor(f->st, &r, &bad, NULL, 0), 0);
    assert_int_equal(r.seq, 5);
    expect_verify(f->st, 0, 0);
    reopen(f);
    expect_verify(f->st, 0, 0);
    /* A broken chain cannot be re-anchored. */
    spk_store_close(f->st);
    f->st = NULL;
    tamper(f, "UPDATE audit SET \"user\" = 'x' WHERE seq = 2;");
    assert_int_equal(tb_open(&f->b, &f->st), 0);
    assert_int_equal(spk_store_audit_reanchor(f->st, &r, &bad, NULL, 0), SPK_EVERIFY);
    assert_int_equal(bad, 2);
}

/* Appends from two processes at once keep one valid chain. */
static void test_audit_two_processes(void **state)
{
    fixture_t *f = *state;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        spk_store_t *c = NULL;
        int rc = tb_open(&f->b, &c);
        if (rc == 0) {
            rc = append_n(c, 30, "pp-child");
        }
        spk_store_close(c);
        _exit(rc == 0 ? 0 : 1);
    }
    spk_store_t *second = NULL;
    assert_int_equal(tb_open(&f->b, &second), 0);
    for (int i = 0; i < 15; i++) {
        assert_int_equal(append_n(f->st, 1, "pp-parent"), 0);
        assert_int_equal(append_n(second, 1, "pp-parent"), 0);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    spk_store_close(second);
    expect_verify(f->st, 0, 0);
    audit_walk_t w = {.linked = true};
    assert_int_equal(spk_store_audit_each(f->st, NULL, walk_cb, &w), 0);
    assert_int_equal(w.n, 60);
}

/* A crash after the commit but before the anchor write leaves an anchor that lags the chain:
 * accepted (and moved forward on the next open), also in the format of version 1. */
static void test_anchor_lagging_after_crash(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(append_n(f->st, 2, "pp-1"), 0);
    audit_walk_t w = {.linked = true};
    assert_int_equal(spk_store_audit_each(f->st, NULL, walk_cb, &w), 0);
    uint8_t h2[32];
    memcpy(h2, w.last_hash, 32);
    assert_int_equal(append_n(f->st, 1, "pp-1"), 0);
    memset(&w, 0, sizeof(w));
    assert_int_equal(spk_store_audit_each(f->st, NULL, walk_cb, &w), 0);
    spk_store_close(f->st);
    f->st = NULL;

    /* Rebuild the anchor as it was between commit and final write. */
    char path[300], body[400], a[65], b[65], line[520];
    snprintf(path, sizeof(path), "%s/audit.key", f->dir);
    uint8_t key[32];
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    assert_int_equal(fread(key, 1, 32, fp), 32);
    fclose(fp);
    spk_hex_encode(a, h2, 32);
    spk_hex_encode(b, w.last_hash, 32);
    snprintf(body, sizeof(body), "spk-audit-head v1 2 %s 3 %s", a, b);
    uint8_t mac[32];
    size_t mac_len = 0;
    assert_non_null(EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, key, 32,
                              (const unsigned char *)body, strlen(body), mac, 32, &mac_len));
    char mac_hex[65];
    spk_hex_encode(mac_hex, mac, 32);
    snprintf(line, sizeof(line), "%s %s\n", body, mac_hex);
    snprintf(path, sizeof(path), "%s/audit.head", f->dir);
    fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(line, fp);
    fclose(fp);

    assert_int_equal(tb_open(&f->b, &f->st), 0);
    expect_verify(f->st, 0, 0);
    assert_int_equal(append_n(f->st, 1, "pp-1"), 0);
    expect_verify(f->st, 0, 0);
}

/* ---- transactions, group commit, witness ---- */

static int count_rows(fixture_t *f, const char *table)
{
    char q[128];
    snprintf(q, sizeof(q), "SELECT count(*) FROM %s", table);
    return (int)tb_int(&f->b, q);
}

/* A state change and its audit entry commit together or not at all. */
static void test_txn_atomic(void **state)
{
    fixture_t *f = *state;
    spk_consult_rec_t c = mk_consult("c_t1", "prac1", 100);
    assert_int_equal(spk_store_begin(f->st), 0);
    assert_int_equal(spk_store_begin(f->st), SPK_ESTATE);
    assert_true(spk_store_in_txn(f->st));
    assert_int_equal(spk_store_consult_insert(f->st, &c), 0);
    assert_int_equal(append_n(f->st, 1, "pp-1"), 0);
    spk_store_rollback(f->st);
    assert_false(spk_store_in_txn(f->st));
    spk_consult_rec_t got;
    assert_int_equal(spk_store_consult_get(f->st, "c_t1", &got), SPK_ENOTFOUND);
    assert_int_equal(count_rows(f, "audit"), 0);
    expect_verify(f->st, 0, 0);

    uint64_t before = spk_store_last_ticket(f->st), t = 0;
    assert_int_equal(spk_store_begin(f->st), 0);
    assert_int_equal(spk_store_consult_insert(f->st, &c), 0);
    assert_int_equal(append_n(f->st, 2, "pp-1"), 0);
    assert_int_equal(spk_store_commit(f->st, &t), 0);
    assert_int_equal(t, before + 1);
    assert_int_equal(spk_store_durable(f->st), t); /* no sync thread: durable at once */
    assert_int_equal(spk_store_consult_get(f->st, "c_t1", &got), 0);
    assert_int_equal(count_rows(f, "audit"), 2);
    expect_verify(f->st, 0, 0);
    assert_int_equal(spk_store_commit(f->st, NULL), SPK_ESTATE);

    /* A failing audit append inside a transaction: the caller rolls back everything. */
    spk_consult_rec_t c2 = mk_consult("c_t2", "prac1", 100);
    assert_int_equal(spk_store_begin(f->st), 0);
    assert_int_equal(spk_store_consult_insert(f->st, &c2), 0);
    spk_audit_rec_t r;
    memset(&r, 0, sizeof(r));
    strcpy(r.event, "consult.create");
    memset(r.detail, 'x', sizeof(r.detail));
    assert_int_equal(spk_store_audit_append(f->st, &r), SPK_ERANGE);
    spk_store_rollback(f->st);
    assert_int_equal(spk_store_consult_get(f->st, "c_t2", &got), SPK_ENOTFOUND);
    expect_verify(f->st, 0, 0);
}

static int count_cb(void *ud, const spk_audit_rec_t *r)
{
    (void)r;
    (*(int *)ud)++;
    return 0;
}

static void test_audit_filters(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(append_n(f->st, 6, "pp-1"), 0); /* practices: 2,1,1,2,1,1 */
    assert_int_equal(append_n(f->st, 3, "pp-2"), 0); /* practices: 2,1,1 */
    int n = 0;
    spk_store_audit_filter_t fl = {.practice = "prac1"};
    assert_int_equal(spk_store_audit_each(f->st, &fl, count_cb, &n), 0);
    assert_int_equal(n, 6);
    n = 0;
    fl = (spk_store_audit_filter_t){.practice = "prac2", .patient = "pp-1"};
    assert_int_equal(spk_store_audit_each(f->st, &fl, count_cb, &n), 0);
    assert_int_equal(n, 2);
    n = 0;
    fl = (spk_store_audit_filter_t){.practice = "prac1", .after = 7};
    assert_int_equal(spk_store_audit_each(f->st, &fl, count_cb, &n), 0);
    assert_int_equal(n, 2);
    n = 0;
    fl = (spk_store_audit_filter_t){.patient = "pp-none"};
    assert_int_equal(spk_store_audit_each(f->st, &fl, count_cb, &n), 0);
    assert_int_equal(n, 0);
}

static void test_invite_revoke(void **state)
{
    fixture_t *f = *state;
    spk_consult_rec_t c = mk_consult("c_r1", "prac1", 100);
    assert_int_equal(spk_store_consult_insert(f->st, &c), 0);
    char code[32], code2[32];
    spk_invite_rec_t inv, inv2, got;
    assert_int_equal(
        spk_store_invite_create(f->st, "c_r1", "gp-jansen", 1000, 600, code, sizeof(code), &inv),
        0);
    assert_int_equal(strlen(inv.id), 16);
    assert_int_equal(
        spk_store_invite_create(f->st, "c_r1", "gp-jansen", 1000, 600, code2, sizeof(code2), &inv2),
        0);
    assert_int_equal(spk_store_invite_revoke(f->st, "c_other", inv.id, 1100, NULL), SPK_ENOTFOUND);
    assert_int_equal(spk_store_invite_revoke(f->st, "c_r1", "0000000000000000", 1100, NULL),
                     SPK_ENOTFOUND);
    assert_int_equal(spk_store_invite_revoke(f->st, "c_r1", inv.id, 1100, &got), 0);
    assert_int_equal(got.revoked_at, 1100);
    assert_int_equal(spk_store_invite_revoke(f->st, "c_r1", inv.id, 1101, NULL),
                     SPK_EINVITEREVOKED);
    uint8_t h[32];
    spk_store_invite_hash(code, strlen(code), h);
    assert_int_equal(spk_store_invite_use(f->st, h, 1200, "p_1", NULL), SPK_EINVITEREVOKED);
    spk_store_invite_hash(code2, strlen(code2), h);
    assert_int_equal(spk_store_invite_use(f->st, h, 1200, "p_2", NULL), 0);
    assert_int_equal(spk_store_invite_revoke(f->st, "c_r1", inv2.id, 1300, NULL), SPK_EINVITEUSED);
    int n = 0;
    assert_int_equal(spk_store_invite_each(f->st, "c_r1", (spk_store_invite_cb)NULL, &n),
                     SPK_EINVAL);
}

typedef struct {
    int calls;
    bool failed;
} sync_seen_t;

static void durable_cb(void *ud, bool failed)
{
    sync_seen_t *s = ud;
    __atomic_add_fetch(&s->calls, 1, __ATOMIC_SEQ_CST);
    if (failed) {
        __atomic_store_n(&s->failed, true, __ATOMIC_SEQ_CST);
    }
}

/* Waits as spreekd's loop does: reading the answers of commits not waited for (PostgreSQL). */
static void wait_durable(spk_store_t *st, uint64_t t)
{
    for (int i = 0; i < 500 && spk_store_durable(st) < t; i++) {
        spk_store_poll(st);
        usleep(10000);
    }
    assert_true(spk_store_durable(st) >= t);
}

static void read_text(const char *path, char *buf, size_t cap)
{
    FILE *fp = fopen(path, "r");
    assert_non_null(fp);
    size_t n = fread(buf, 1, cap - 1, fp);
    buf[n] = '\0';
    fclose(fp);
}

/* With the sync thread, commits become durable in groups; the anchor and the witness follow. */
static void test_group_commit(void **state)
{
    fixture_t *f = *state;
    char witness[400], head[400], text[8192];
    snprintf(witness, sizeof(witness), "%s/../witness.log", f->dir);
    snprintf(head, sizeof(head), "%s/audit.head", f->dir);
    sync_seen_t seen = {0};
    spk_store_sync_opts_t o = {.durable_cb = durable_cb,
                               .ud = &seen,
                               .witness = witness,
                               .witness_interval_ms = 1,
                               .full_verify_interval_s = 3600};
    assert_int_equal(spk_store_sync_start(f->st, &o), 0);
    assert_int_equal(spk_store_sync_start(f->st, &o), SPK_EINVAL);
    uint64_t t = 0;
    for (int i = 0; i < 50; i++) {
        assert_int_equal(spk_store_begin(f->st), 0);
        assert_int_equal(append_n(f->st, 1, "pp-1"), 0);
        assert_int_equal(spk_store_commit(f->st, &t), 0);
    }
    wait_durable(f->st, t);
    assert_true(seen.calls >= 1);
    assert_false(seen.failed);
    /* The anchor moves to the head after the flush. */
    for (int i = 0; i < 200; i++) {
        read_text(head, text, sizeof(text));
        if (strstr(text, "v2 50 ") != NULL) {
            break;
        }
        usleep(10000);
    }
    assert_non_null(strstr(text, "spk-audit-head v2 50 "));
    expect_verify(f->st, 0, 0);
    int64_t bad = 0;
    char why[256];
    assert_int_equal(spk_store_audit_verify_recent(f->st, &bad, why, sizeof(why)), 0);
    reopen(f); /* stops the thread: the last head is witnessed */
    read_text(witness, text, sizeof(text));
    assert_non_null(strstr(text, "spk-audit-witness v1 "));
    int64_t lines = 0;
    assert_int_equal(spk_store_audit_check_witness(f->st, witness, &lines, &bad, why, sizeof(why)),
                     0);
    assert_true(lines >= 1);

    /* Someone holding audit.key rebuilds the whole chain: MACs and anchor verify, the witness
     * does not. */
    spk_store_close(f->st);
    f->st = NULL;
    tamper(f, "DELETE FROM audit;");
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "%s/audit.head", f->dir);
    unlink(cmd);
    spk_store_t *t2 = NULL;
    /* A fresh key would be made without audit.key; keep it, so remove only the chain and the
     * anchor and re-anchor from scratch as an insider would. */
    assert_int_equal(tb_open(&f->b, &t2), 0);
    spk_audit_rec_t r;
    memset(&r, 0, sizeof(r));
    strcpy(r.event, "audit.reanchor");
    strcpy(r.outcome, "success");
    assert_int_equal(spk_store_audit_reanchor(t2, &r, &bad, why, sizeof(why)), 0);
    assert_int_equal(append_n(t2, 60, "pp-forged"), 0);
    expect_verify(t2, 0, 0);
    assert_int_equal(spk_store_audit_check_witness(t2, witness, &lines, &bad, why, sizeof(why)),
                     SPK_EVERIFY);
    f->st = t2;
}

/* PostgreSQL with the sync thread: COMMIT is sent, not waited for. The ticket counts as durable
 * only after the server's answer has been read (spk_store_poll) and a flush followed; a
 * statement after it sees the commit; a transaction with a failed statement still fails at its
 * commit, at once; BEGIN and the audit lock travel with the next statement. */
static void test_commit_unwaited(void **state)
{
    fixture_t *f = *state;
    spk_store_t *st = f->st;
    sync_seen_t seen = {0};
    spk_store_sync_opts_t o = {.durable_cb = durable_cb, .ud = &seen};
    assert_int_equal(spk_store_sync_start(st, &o), 0);
    uint64_t t1 = 0, t2 = 0;
    spk_consult_rec_t a = mk_consult("c_a", "prac1", 100);
    assert_int_equal(spk_store_begin(st), 0);
    assert_int_equal(spk_store_consult_insert(st, &a), 0);
    assert_int_equal(append_n(st, 1, "pp-1"), 0);
    assert_int_equal(spk_store_commit(st, &t1), 0);
    if (tb_pg()) {
        assert_int_equal(spk_store_pending(st), 1);
        usleep(50000);
        assert_true(spk_store_durable(st) < t1); /* unread: not yet counted as committed */
        assert_true(spk_store_poll_fd(st, NULL) >= 0);
    } else {
        assert_int_equal(spk_store_pending(st), 0);
        assert_int_equal(spk_store_poll_fd(st, NULL), -1);
    }
    /* The next statement reads the commit's answer on its way and sees what it stored. */
    spk_consult_rec_t got;
    assert_int_equal(spk_store_consult_get(st, "c_a", &got), 0);
    assert_int_equal(spk_store_pending(st), 0);
    wait_durable(st, t1);

    /* A failed statement in the transaction: the commit fails at once, nothing is stored. */
    spk_consult_rec_t b = mk_consult("c_b", "prac1", 200);
    assert_int_equal(spk_store_begin(st), 0);
    assert_int_equal(append_n(st, 1, "pp-2"), 0);
    assert_int_equal(spk_store_consult_insert(st, &b), 0);
    spk_participant_rec_t p;
    memset(&p, 0, sizeof(p));
    strcpy(p.consult, "c_none"); /* no such consult: a foreign key violation */
    strcpy(p.id, "p1");
    strcpy(p.sub, "p1");
    p.role = SPK_ROLE_PATIENT;
    assert_int_equal(spk_store_participant_put(st, &p), SPK_ENOTFOUND);
    if (tb_pg()) {
        assert_int_not_equal(spk_store_commit(st, NULL), 0);
    } else {
        spk_store_rollback(st); /* SQLite keeps the transaction: the caller rolls back */
    }
    assert_int_equal(spk_store_consult_get(st, "c_b", &got), SPK_ENOTFOUND);

    /* Each commit's answer comes with the next transaction's first round trip; the last one's
     * is read by a poll. */
    for (int i = 0; i < 20; i++) {
        assert_int_equal(spk_store_begin(st), 0);
        assert_int_equal(append_n(st, 1, "pp-3"), 0);
        assert_int_equal(spk_store_commit(st, &t2), 0);
    }
    assert_int_equal(spk_store_pending(st), tb_pg() ? 1 : 0);
    wait_durable(st, t2);
    assert_int_equal(spk_store_pending(st), 0);
    assert_false(seen.failed);
    expect_verify(st, 0, 0);
    assert_int_equal(tb_int(&f->b, "SELECT count(*) FROM audit"), 21);
}

/* PostgreSQL: the connection fails with a commit's answer unread (its backend ended while the
 * transaction waited for the COMMIT, so it was never made). Once reconnected the store finds the
 * commit missing and stops promising durability (durable_cb with failed), as after a failed
 * flush (test_reconnect.c has the other outcomes). */
static void test_commit_in_doubt(void **state)
{
    fixture_t *f = *state;
    if (!tb_pg()) {
        skip();
    }
    spk_store_t *st = f->st;
    sync_seen_t seen = {0};
    spk_store_sync_opts_t o = {.durable_cb = durable_cb, .ud = &seen};
    assert_int_equal(spk_store_sync_start(st, &o), 0);
    uint64_t t = 0;
    assert_int_equal(spk_store_begin(st), 0);
    assert_int_equal(append_n(st, 1, "pp-1"), 0);
    /* Every other session of the database ends: the store's and its sync thread's. */
    tb_sql(&f->b, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                  " WHERE datname = current_database() AND pid <> pg_backend_pid()");
    int rc = spk_store_commit(st, &t);
    if (rc == 0) {
        /* Sent: the answer that comes is the connection's end. */
        for (int i = 0; i < 500 && !__atomic_load_n(&seen.failed, __ATOMIC_SEQ_CST); i++) {
            spk_store_poll(st);
            usleep(10000);
        }
        assert_true(__atomic_load_n(&seen.failed, __ATOMIC_SEQ_CST));
        assert_true(spk_store_durable(st) < t);
    } else {
        assert_int_equal(rc, SPK_EUNAVAILABLE); /* refused at once: not committed */
    }
    /* The store carries on after reconnecting (statements work; durability stays ended). */
    spk_consult_rec_t a = mk_consult("c_a", "prac1", 100);
    int rc2 = spk_store_consult_insert(st, &a);
    for (int i = 0; i < 500 && rc2 == SPK_EUNAVAILABLE; i++) { /* reconnecting */
        usleep(10000);
        rc2 = spk_store_consult_insert(st, &a);
    }
    assert_int_equal(rc2, 0);
}

/* The incremental check walks only new entries; the sync thread's full walk finds a fault in
 * old ones, and from then on the incremental check fails too. */
static void test_verify_recent(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(append_n(f->st, 5, "pp-1"), 0);
    int64_t bad = 0;
    char why[256];
    assert_int_equal(spk_store_audit_verify_recent(f->st, &bad, why, sizeof(why)), 0);
    tamper(f, "UPDATE audit SET \"user\" = 'someone-else' WHERE seq = 2;");
    assert_int_equal(append_n(f->st, 1, "pp-1"), 0);
    assert_int_equal(spk_store_audit_verify_recent(f->st, &bad, why, sizeof(why)), 0);
    expect_verify(f->st, SPK_EVERIFY, 2);
    spk_store_sync_opts_t o = {.full_verify_interval_s = 1};
    assert_int_equal(spk_store_sync_start(f->st, &o), 0);
    int rc = 0;
    for (int i = 0; i < 300; i++) {
        rc = spk_store_audit_verify_recent(f->st, &bad, why, sizeof(why));
        if (rc != 0) {
            break;
        }
        usleep(10000);
    }
    assert_int_equal(rc, SPK_EVERIFY);
    assert_int_equal(bad, 2);
}

static int fact_count_cb(void *ud, const spk_fact_rec_t *fr)
{
    assert_string_equal(fr->subject_iss, "");
    (*(int *)ud)++;
    return 0;
}

static int invite_seen_cb(void *ud, const spk_invite_rec_t *inv)
{
    assert_int_equal(strlen(inv->id), 16);
    char want[17];
    spk_hex_encode(want, inv->code_hash, 8);
    assert_string_equal(inv->id, want);
    (*(int *)ud)++;
    return 0;
}

/* A store written by schema version 1 (tests/unit/store/fixtures/store_v1, made with the
 * previous release's spreekctl) is migrated on open: its audit chain of version 1 entries and its
 * version 1 anchor still verify, new entries continue the chain, invites get their ids. */
static void test_migrate_v1(void **state)
{
    fixture_t *f = *state;
    if (tb_pg()) {
        skip(); /* PostgreSQL stores start at schema version 3 */
    }
    spk_store_close(f->st);
    f->st = NULL;
    char cmd[2048];
    snprintf(cmd, sizeof(cmd),
             "rm -rf '%s' && mkdir -m 0700 '%s' && cp %s/store_v1/* '%s/' && chmod 0600 '%s'/*",
             f->dir, f->dir, SPK_STORE_FIXTURES, f->dir, f->dir);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(tb_open(&f->b, &f->st), 0);
    expect_verify(f->st, 0, 0);
    int n = 0;
    assert_int_equal(spk_store_audit_each(f->st, NULL, count_cb, &n), 0);
    assert_int_equal(n, 6);
    assert_int_equal(append_n(f->st, 3, "pp-4711"), 0);
    expect_verify(f->st, 0, 0);
    int facts = 0, invites = 0;
    assert_int_equal(spk_store_fact_each(f->st, "c_1yipJF5Rdkb7N5D6", fact_count_cb, &facts), 0);
    assert_int_equal(facts, 1);
    assert_int_equal(spk_store_invite_each(f->st, "c_1yipJF5Rdkb7N5D6", invite_seen_cb, &invites),
                     0);
    assert_int_equal(invites, 1);
    spk_participant_rec_t p;
    assert_int_equal(spk_store_participant_get(f->st, "c_1yipJF5Rdkb7N5D6", "p_abc", &p), 0);
    assert_string_equal(p.iss, "");
    reopen(f); /* idempotent */
    expect_verify(f->st, 0, 0);
    /* A forged version 1 entry after version 2 ones is refused. */
    spk_store_close(f->st);
    f->st = NULL;
    tamper(f, "INSERT INTO audit (seq, ts_ms, event, outcome, user, name, role,"
              " on_behalf_of, access_point, patient, object, detail, prev_hash, hash, v)"
              " SELECT seq + 1, ts_ms, event, outcome, user, name, role, on_behalf_of,"
              " access_point, patient, object, detail, hash, hash, 1 FROM audit"
              " WHERE seq = 9;");
    assert_int_equal(tb_open(&f->b, &f->st), 0);
    expect_verify(f->st, SPK_EVERIFY, 10);
}

/* Webhook retry times are kept in milliseconds (a "1 s" backoff is one second, not 0..1 s); a
 * queue of a store from before, whose next_at held seconds, is migrated and due at once. */
static void test_webhook_retry_ms(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(spk_store_begin(f->st), 0);
    assert_int_equal(
        spk_store_webhook_enqueue(f->st, "his-a", "{\"type\":\"x\"}", 1780000000, 10, NULL), 0);
    assert_int_equal(spk_store_commit(f->st, NULL), 0);
    spk_webhook_rec_t ev;
    assert_int_equal(spk_store_webhook_head(f->st, "his-a", &ev), 0);
    assert_int_equal(ev.next_at_ms, 0); /* due at once */
    assert_int_equal(ev.created_at, 1780000000);
    assert_int_equal(spk_store_begin(f->st), 0);
    assert_int_equal(spk_store_webhook_retry(f->st, ev.id, 1, 1780000001234LL, "http 500"), 0);
    assert_int_equal(spk_store_commit(f->st, NULL), 0);
    reopen(f);
    assert_int_equal(spk_store_webhook_head(f->st, "his-a", &ev), 0);
    assert_int_equal(ev.next_at_ms, 1780000001234LL);
    assert_int_equal(ev.attempts, 1);
    assert_string_equal(ev.last_error, "http 500");

    if (tb_pg()) {
        return; /* PostgreSQL's schema had next_at_ms from its first version */
    }
    /* the queue as it was kept before */
    spk_store_close(f->st);
    f->st = NULL;
    sql(f, "DROP TABLE webhook_queue;"
           "CREATE TABLE webhook_queue (id INTEGER PRIMARY KEY AUTOINCREMENT, integration TEXT NOT "
           "NULL, seq INTEGER NOT NULL, event TEXT NOT NULL, created_at INTEGER NOT NULL, next_at "
           "INTEGER NOT NULL, attempts INTEGER NOT NULL, last_error TEXT NOT NULL);"
           "INSERT INTO webhook_queue (integration, seq, event, created_at, next_at, attempts,"
           " last_error) VALUES ('his-b', 1, '{}', 1780000000, 1780000002, 2, 'http 503');");
    assert_int_equal(tb_open(&f->b, &f->st), 0);
    assert_int_equal(spk_store_webhook_head(f->st, "his-b", &ev), 0);
    assert_int_equal(ev.next_at_ms, 1780000002); /* read as milliseconds: long past */
    assert_int_equal(ev.attempts, 2);
    reopen(f); /* idempotent */
    assert_int_equal(spk_store_webhook_head(f->st, "his-b", &ev), 0);
}

/* A store of a newer schema than this build knows is refused, on either backend. */
static void test_schema_newer(void **state)
{
    fixture_t *f = *state;
    spk_store_close(f->st);
    f->st = NULL;
    sql(f, tb_pg() ? "UPDATE spk_schema SET version = 99" : "PRAGMA user_version=99");
    assert_int_equal(tb_open(&f->b, &f->st), SPK_ECONFIG);
    assert_null(f->st);
    sql(f, tb_pg() ? "UPDATE spk_schema SET version = 4" : "PRAGMA user_version=4");
    assert_int_equal(tb_open(&f->b, &f->st), 0);
}

/* Processes opening an empty store at once (nodes starting together) agree on one schema,
 * one audit key and one chain. Nodes share a PostgreSQL store; a SQLite store belongs to one
 * spreekd process (its data directory), so the race does not arise there and SQLite's switch
 * to WAL on a brand-new file answers "locked" to the losers: PostgreSQL only. */
static void test_open_concurrently(void **state)
{
    if (!tb_pg()) {
        skip();
    }
    fixture_t *f = *state;
    spk_store_close(f->st);
    f->st = NULL;
    char fresh[300];
    snprintf(fresh, sizeof(fresh), "%s.fresh", f->dir);
    tb_store_t b;
    tb_create(&b, fresh);
    pid_t kids[4];
    for (int i = 0; i < 4; i++) {
        kids[i] = fork();
        assert_true(kids[i] >= 0);
        if (kids[i] == 0) {
            spk_store_t *c = NULL;
            int rc = tb_open(&b, &c);
            if (rc == 0) {
                rc = append_n(c, 5, "pp-start");
            }
            spk_store_close(c);
            _exit(rc == 0 ? 0 : 1);
        }
    }
    for (int i = 0; i < 4; i++) {
        int status = 0;
        assert_int_equal(waitpid(kids[i], &status, 0), kids[i]);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    spk_store_t *st = NULL;
    assert_int_equal(tb_open(&b, &st), 0);
    expect_verify(st, 0, 0);
    audit_walk_t w = {.linked = true};
    assert_int_equal(spk_store_audit_each(st, NULL, walk_cb, &w), 0);
    assert_int_equal(w.n, 20);
    assert_true(w.linked);
    spk_store_close(st);
    tb_destroy(&b);
    rm_rf(fresh);
    assert_int_equal(tb_open(&f->b, &f->st), 0);
}

int main(int argc, char **argv)
{
    if (!tb_init(argc, argv)) {
        return 2;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_open_creates_private_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_consult, setup, teardown),
        cmocka_unit_test_setup_teardown(test_iterator_reentry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_participants, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invites, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delegations, setup, teardown),
        cmocka_unit_test_setup_teardown(test_facts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restart_keeps_state, setup, teardown),
        cmocka_unit_test_setup_teardown(test_audit_intact, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tamper_modify, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tamper_modify_time, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tamper_delete_middle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tamper_delete_newest, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tamper_swap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tamper_insert_middle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tamper_insert_newest_valid_hash, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tamper_rewrite_newest, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tamper_anchor, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reanchor, setup, teardown),
        cmocka_unit_test_setup_teardown(test_audit_two_processes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_anchor_lagging_after_crash, setup, teardown),
        cmocka_unit_test_setup_teardown(test_txn_atomic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_audit_filters, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invite_revoke, setup, teardown),
        cmocka_unit_test_setup_teardown(test_group_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_commit_unwaited, setup, teardown),
        cmocka_unit_test_setup_teardown(test_commit_in_doubt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_verify_recent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migrate_v1, setup, teardown),
        cmocka_unit_test_setup_teardown(test_schema_newer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_concurrently, setup, teardown),
        cmocka_unit_test_setup_teardown(test_webhook_retry_ms, setup, teardown),
    };
    return cmocka_run_group_tests_name(tb_name(), tests, NULL, NULL);
}
