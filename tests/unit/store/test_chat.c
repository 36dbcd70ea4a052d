/* Unit tests for the delivery service's tables (spk/store_chat.h): conversations, the file
 * records of encrypted attachments, with their quota sums and retention, the replay window with
 * the trimming of the log it allows, and that trimming in batches. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend.h"
#include "spk/error.h"
#include "spk/store.h"
#include "spk/store_chat.h"

typedef struct {
    char dir[256];
    tb_store_t b;
    spk_store_t *st;
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    snprintf(f->dir, sizeof(f->dir), "/tmp/spk_store_chat_XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    tb_create(&f->b, f->dir);
    assert_int_equal(tb_open(&f->b, &f->st), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    spk_store_close(f->st);
    tb_destroy(&f->b);
    char cmd[320];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

static void conv(spk_store_t *st, const char *id, int64_t created, int64_t retention)
{
    spk_chat_conv_rec_t c;
    memset(&c, 0, sizeof(c));
    snprintf(c.id, sizeof(c.id), "%s", id);
    snprintf(c.kind, sizeof(c.kind), "care_team");
    snprintf(c.practice, sizeof(c.practice), "praktijk-a");
    snprintf(c.patient, sizeof(c.patient), "pseudo-1");
    c.created_at = created;
    c.retention_s = retention;
    assert_int_equal(spk_store_chat_conv_insert(st, &c), 0);
}

static void file(spk_store_t *st, const char *id, const char *conversation, int64_t size,
                 int64_t at)
{
    spk_chat_file_rec_t r;
    memset(&r, 0, sizeof(r));
    snprintf(r.id, sizeof(r.id), "%s", id);
    snprintf(r.conversation, sizeof(r.conversation), "%s", conversation);
    snprintf(r.uploader_iss, sizeof(r.uploader_iss), "iss");
    snprintf(r.uploader, sizeof(r.uploader), "gp-1");
    snprintf(r.device, sizeof(r.device), "laptop");
    r.size = size;
    r.created_at = at;
    assert_int_equal(spk_store_chat_file_insert(st, &r), 0);
}

typedef struct {
    char ids[8][SPK_ID_LEN];
    int n;
} ids_t;

static int collect(void *ud, const char *id)
{
    ids_t *l = ud;
    snprintf(l->ids[l->n++], SPK_ID_LEN, "%s", id);
    return 0;
}

static void test_files(void **state)
{
    fixture_t *f = *state;
    conv(f->st, "m_short", 1000, 100);
    conv(f->st, "m_long", 1000, 100000);
    file(f->st, "f_a", "m_short", 10, 1000);
    file(f->st, "f_b", "m_short", 20, 1050);
    file(f->st, "f_c", "m_long", 40, 1000);

    spk_chat_file_rec_t r;
    assert_int_equal(spk_store_chat_file_get(f->st, "f_b", &r), 0);
    assert_string_equal(r.conversation, "m_short");
    assert_string_equal(r.uploader, "gp-1");
    assert_string_equal(r.device, "laptop");
    assert_int_equal(r.size, 20);
    assert_int_equal(r.created_at, 1050);
    assert_int_equal(spk_store_chat_file_get(f->st, "f_none", &r), SPK_ENOTFOUND);

    spk_chat_file_rec_t dup;
    memset(&dup, 0, sizeof(dup));
    snprintf(dup.id, sizeof(dup.id), "f_a");
    snprintf(dup.conversation, sizeof(dup.conversation), "m_long");
    assert_int_equal(spk_store_chat_file_insert(f->st, &dup), SPK_EEXIST);

    int64_t bytes = -1;
    assert_int_equal(spk_store_chat_file_bytes(f->st, "m_short", &bytes), 0);
    assert_int_equal(bytes, 30);
    assert_int_equal(spk_store_chat_file_bytes(f->st, "m_none", &bytes), 0);
    assert_int_equal(bytes, 0);

    /* Retention is the conversation's: at 1099 nothing, at 1100 f_a, at 1150 f_a and f_b. */
    ids_t l = {0};
    assert_int_equal(spk_store_chat_file_each_expired(f->st, 1099, 10, collect, &l), 0);
    assert_int_equal(l.n, 0);
    assert_int_equal(spk_store_chat_file_each_expired(f->st, 1100, 10, collect, &l), 0);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.ids[0], "f_a");
    memset(&l, 0, sizeof(l));
    assert_int_equal(spk_store_chat_file_each_expired(f->st, 1150, 1, collect, &l), 0);
    assert_int_equal(l.n, 1); /* the limit holds */
    memset(&l, 0, sizeof(l));
    assert_int_equal(spk_store_chat_file_each_expired(f->st, 1150, 10, collect, &l), 0);
    assert_int_equal(l.n, 2);
    assert_string_equal(l.ids[1], "f_b");

    assert_int_equal(spk_store_chat_file_delete(f->st, "f_a"), 0);
    assert_int_equal(spk_store_chat_file_get(f->st, "f_a", &r), SPK_ENOTFOUND);
    assert_int_equal(spk_store_chat_file_bytes(f->st, "m_short", &bytes), 0);
    assert_int_equal(bytes, 20);

    /* Bad arguments. */
    assert_int_equal(spk_store_chat_file_insert(NULL, &r), SPK_EINVAL);
    assert_int_equal(spk_store_chat_file_each_expired(f->st, 0, 0, collect, &l), SPK_EINVAL);
    assert_int_equal(spk_store_chat_file_get(f->st, NULL, &r), SPK_EINVAL);
}

static void entry(spk_store_t *st, const char *conversation, int64_t seq, uint64_t epoch,
                  spk_chat_entry_type_t type)
{
    uint8_t data[4] = {(uint8_t)seq, 1, 2, 3};
    spk_chat_entry_t e;
    memset(&e, 0, sizeof(e));
    snprintf(e.conversation, sizeof(e.conversation), "%s", conversation);
    snprintf(e.sender_iss, sizeof(e.sender_iss), "iss");
    snprintf(e.sender, sizeof(e.sender), "gp-1");
    snprintf(e.sender_device, sizeof(e.sender_device), "laptop");
    e.seq = seq;
    e.epoch = epoch;
    e.type = type;
    e.at_ms = 1000 + seq;
    e.data = data;
    e.data_len = sizeof(data);
    assert_int_equal(spk_store_chat_log_append(st, &e), 0);
}

typedef struct {
    int64_t seq[8];
    int n;
} seqs_t;

static int collect_seq(void *ud, const spk_chat_entry_t *e)
{
    seqs_t *l = ud;
    l->seq[l->n++] = e->seq;
    return 0;
}

static void cursor(spk_store_t *st, const char *conversation, const char *sub, int64_t acked,
                   bool active)
{
    spk_chat_cursor_t c;
    memset(&c, 0, sizeof(c));
    snprintf(c.conversation, sizeof(c.conversation), "%s", conversation);
    snprintf(c.iss, sizeof(c.iss), "iss");
    snprintf(c.sub, sizeof(c.sub), "%s", sub);
    snprintf(c.device, sizeof(c.device), "laptop");
    c.from_seq = 1;
    c.acked = acked;
    c.active = active;
    assert_int_equal(spk_store_chat_cursor_put(st, &c), 0);
}

static int first_seq_cb(void *ud, const spk_chat_entry_t *e)
{
    int64_t *first = ud;
    if (*first == 0) {
        *first = e->seq;
    }
    return 0;
}

static int64_t first_seq(spk_store_t *st, const char *conversation)
{
    int64_t first = 0;
    assert_int_equal(spk_store_chat_log_each(st, conversation, 0, 0, first_seq_cb, &first), 0);
    return first;
}

/* Batched appends (the delivery service's group commit): stored with the commit; a taken seq
 * fails the append (SQLite) or the commit (PostgreSQL, where the append is only sent), and
 * then nothing of the transaction is stored. */
static void test_log_append_batched(void **state)
{
    fixture_t *f = *state;
    spk_store_t *st = f->st;
    entry(st, "ch_a", 1, 0, SPK_CHAT_ENTRY_MESSAGE);
    uint8_t data[3] = {1, 2, 3};
    spk_chat_entry_t e;
    memset(&e, 0, sizeof(e));
    snprintf(e.conversation, sizeof(e.conversation), "ch_a");
    snprintf(e.sender, sizeof(e.sender), "gp-1");
    e.type = SPK_CHAT_ENTRY_MESSAGE;
    e.data = data;
    e.data_len = sizeof(data);
    e.seq = 2;
    assert_int_equal(spk_store_chat_log_append_batched(st, &e), SPK_ESTATE); /* no transaction */

    assert_int_equal(spk_store_begin(st), 0);
    for (e.seq = 2; e.seq <= 5; e.seq++) {
        assert_int_equal(spk_store_chat_log_append_batched(st, &e), 0);
    }
    int64_t last = 0;
    assert_int_equal(spk_store_chat_log_last(st, "ch_a", &last), 0); /* sees its own appends */
    assert_int_equal(last, 5);
    assert_int_equal(spk_store_commit(st, NULL), 0);

    assert_int_equal(spk_store_begin(st), 0);
    e.seq = 6;
    assert_int_equal(spk_store_chat_log_append_batched(st, &e), 0);
    e.seq = 3; /* taken */
    int rc = spk_store_chat_log_append_batched(st, &e);
    if (rc == 0) {
        assert_true(tb_pg());
        rc = spk_store_commit(st, NULL);
    } else {
        spk_store_rollback(st);
    }
    assert_int_equal(rc, SPK_EEXIST);
    assert_false(spk_store_in_txn(st));
    assert_int_equal(spk_store_chat_log_last(st, "ch_a", &last), 0);
    assert_int_equal(last, 5); /* seq 6 went with the transaction */

    /* The store carries on; a refusal also fails the next statement waited for. */
    assert_int_equal(spk_store_begin(st), 0);
    e.seq = 4;
    rc = spk_store_chat_log_append_batched(st, &e);
    if (rc == 0) {
        rc = spk_store_chat_log_last(st, "ch_a", &last);
    }
    assert_int_equal(rc, SPK_EEXIST);
    spk_store_rollback(st);
    assert_int_equal(spk_store_begin(st), 0);
    e.seq = 6;
    assert_int_equal(spk_store_chat_log_append_batched(st, &e), 0);
    assert_int_equal(spk_store_commit(st, NULL), 0);
    assert_int_equal(spk_store_chat_log_last(st, "ch_a", &last), 0);
    assert_int_equal(last, 6);
}

/* Acknowledged entries go in batches of at most the limit: up to the lowest acknowledgement of
 * the conversation's active devices (a device that left does not hold entries back), nothing
 * of a conversation without active devices. */
static void test_trim_acked_batches(void **state)
{
    fixture_t *f = *state;
    for (int64_t i = 1; i <= 60; i++) {
        entry(f->st, "ch_a", i, 0, SPK_CHAT_ENTRY_MESSAGE);
    }
    for (int64_t i = 1; i <= 20; i++) {
        entry(f->st, "ch_b", i, 0, SPK_CHAT_ENTRY_MESSAGE);
    }
    for (int64_t i = 1; i <= 5; i++) {
        entry(f->st, "ch_c", i, 0, SPK_CHAT_ENTRY_MESSAGE);
    }
    cursor(f->st, "ch_a", "gp-1", 30, true);
    cursor(f->st, "ch_a", "pt-1", 50, true);
    cursor(f->st, "ch_b", "gp-1", 10, true);
    cursor(f->st, "ch_b", "pt-1", 0, false);
    /* Replay windows cover every message (trimming waits for them: test_replay_window). */
    assert_int_equal(spk_store_chat_replay_put(f->st, "ch_a", 0, 60, NULL, 0), 0);
    assert_int_equal(spk_store_chat_replay_put(f->st, "ch_b", 0, 20, NULL, 0), 0);
    assert_int_equal(spk_store_chat_replay_put(f->st, "ch_c", 0, 5, NULL, 0), 0);
    int64_t n = -1;
    assert_int_equal(spk_store_chat_log_trim_acked(f->st, 25, &n), 0);
    assert_int_equal(n, 25);
    assert_int_equal(spk_store_chat_log_trim_acked(f->st, 25, &n), 0);
    assert_int_equal(n, 15); /* fewer than the limit: none left */
    assert_int_equal(spk_store_chat_log_trim_acked(f->st, 25, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(first_seq(f->st, "ch_a"), 31);
    assert_int_equal(first_seq(f->st, "ch_b"), 11);
    assert_int_equal(first_seq(f->st, "ch_c"), 1);
    /* No limit: everything acknowledged at once. */
    cursor(f->st, "ch_a", "gp-1", 60, true);
    cursor(f->st, "ch_a", "pt-1", 60, true);
    assert_int_equal(spk_store_chat_log_trim_acked(f->st, 0, &n), 0);
    assert_int_equal(n, 30);
    assert_int_equal(first_seq(f->st, "ch_a"), 0);
    assert_int_equal(spk_store_chat_log_trim_acked(f->st, -1, &n), SPK_EINVAL);
}

/* The replay window: stored and read back (newest kept when it is larger than asked), and
 * application messages are trimmed as acknowledged only once a stored window covers them. */
static void test_replay_window(void **state)
{
    fixture_t *f = *state;
    conv(f->st, "m_a", 1000, 0);
    entry(f->st, "m_a", 1, 0, SPK_CHAT_ENTRY_COMMIT);
    entry(f->st, "m_a", 2, 1, SPK_CHAT_ENTRY_MESSAGE);
    entry(f->st, "m_a", 3, 1, SPK_CHAT_ENTRY_MESSAGE);
    entry(f->st, "m_a", 4, 1, SPK_CHAT_ENTRY_COMMIT);
    entry(f->st, "m_a", 5, 2, SPK_CHAT_ENTRY_MESSAGE);
    entry(f->st, "m_a", 6, 2, SPK_CHAT_ENTRY_MESSAGE);
    spk_chat_cursor_t cur;
    memset(&cur, 0, sizeof(cur));
    snprintf(cur.conversation, sizeof(cur.conversation), "m_a");
    snprintf(cur.iss, sizeof(cur.iss), "iss");
    snprintf(cur.sub, sizeof(cur.sub), "apo-1");
    snprintf(cur.device, sizeof(cur.device), "pc");
    cur.from_seq = 1;
    cur.acked = 6;
    cur.active = true;
    assert_int_equal(spk_store_chat_cursor_put(f->st, &cur), 0);

    /* the latest messages of an epoch after a seq, newest first */
    seqs_t l = {0};
    assert_int_equal(
        spk_store_chat_log_recent(f->st, "m_a", 1, SPK_CHAT_ENTRY_MESSAGE, 0, 0, collect_seq, &l),
        0);
    assert_int_equal(l.n, 2);
    assert_int_equal(l.seq[0], 3);
    assert_int_equal(l.seq[1], 2);
    memset(&l, 0, sizeof(l));
    assert_int_equal(
        spk_store_chat_log_recent(f->st, "m_a", 2, SPK_CHAT_ENTRY_MESSAGE, 5, 10, collect_seq, &l),
        0);
    assert_int_equal(l.n, 1);
    assert_int_equal(l.seq[0], 6);

    /* without a window only the Commits go */
    int64_t n = 0;
    assert_int_equal(spk_store_chat_log_trim_acked(f->st, 0, &n), 0);
    assert_int_equal(n, 2);
    uint64_t epoch = 0, h[4];
    int64_t seq = 0;
    size_t got = 0;
    assert_int_equal(spk_store_chat_replay_get(f->st, "m_a", &epoch, &seq, h, 4, &got),
                     SPK_ENOTFOUND);

    /* a window up to seq 5: the messages up to 5 go, 6 stays */
    const uint64_t w[3] = {UINT64_C(0x0102030405060708), 7, UINT64_MAX};
    assert_int_equal(spk_store_chat_replay_put(f->st, "m_a", 2, 5, w, 3), 0);
    assert_int_equal(spk_store_chat_log_trim_acked(f->st, 0, &n), 0);
    assert_int_equal(n, 3);
    memset(&l, 0, sizeof(l));
    assert_int_equal(spk_store_chat_log_each(f->st, "m_a", 0, 0, collect_seq, &l), 0);
    assert_int_equal(l.n, 1);
    assert_int_equal(l.seq[0], 6);

    /* read back whole, then only the newest two */
    assert_int_equal(spk_store_chat_replay_get(f->st, "m_a", &epoch, &seq, h, 4, &got), 0);
    assert_int_equal(epoch, 2);
    assert_int_equal(seq, 5);
    assert_int_equal(got, 3);
    assert_true(h[0] == w[0] && h[1] == w[1] && h[2] == w[2]);
    assert_int_equal(spk_store_chat_replay_get(f->st, "m_a", &epoch, &seq, h, 2, &got), 0);
    assert_int_equal(got, 2);
    assert_true(h[0] == w[1] && h[1] == w[2]);
    /* replaced, not added to */
    assert_int_equal(spk_store_chat_replay_put(f->st, "m_a", 3, 6, NULL, 0), 0);
    assert_int_equal(spk_store_chat_replay_get(f->st, "m_a", &epoch, &seq, h, 4, &got), 0);
    assert_true(epoch == 3 && seq == 6 && got == 0);
    assert_int_equal(spk_store_chat_replay_put(f->st, NULL, 3, 6, NULL, 0), SPK_EINVAL);
}

int main(int argc, char **argv)
{
    if (!tb_init(argc, argv)) {
        return 2;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replay_window, setup, teardown),
        cmocka_unit_test_setup_teardown(test_trim_acked_batches, setup, teardown),
        cmocka_unit_test_setup_teardown(test_log_append_batched, setup, teardown),
    };
    return cmocka_run_group_tests_name(tb_name(), tests, NULL, NULL);
}
