/* Unit tests for the practice system integration tables (store/src/integration.c) on both
 * backends: registrations and keys, idempotency records, the webhook queue in order with its
 * bound, single-use console links and named marks. */
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

typedef struct {
    char dir[256];
    tb_store_t b;
    spk_store_t *st;
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    snprintf(f->dir, sizeof(f->dir), "/tmp/spk_store_integ_XXXXXX");
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

static int count_cb(void *ud, const spk_integration_rec_t *r)
{
    (void)r;
    (*(int *)ud)++;
    return 0;
}

static int key_cb(void *ud, const spk_integration_key_rec_t *k)
{
    if (k->retired_at == 0) {
        (*(int *)ud)++;
    }
    return 0;
}

static void test_integrations(void **state)
{
    fixture_t *f = *state;
    spk_integration_rec_t r;
    memset(&r, 0, sizeof(r));
    strcpy(r.id, "his-a");
    strcpy(r.name, "HIS A");
    strcpy(r.practices, "praktijk-a,praktijk-b");
    memset(r.webhook_secret, 0x5a, 32);
    r.created_at = 100;
    assert_int_equal(spk_store_integration_insert(f->st, &r), 0);
    assert_int_equal(spk_store_integration_insert(f->st, &r), SPK_EEXIST);
    strcpy(r.id, "his-b");
    assert_int_equal(spk_store_integration_insert(f->st, &r), 0);

    spk_integration_rec_t g;
    assert_int_equal(spk_store_integration_get(f->st, "his-a", &g), 0);
    assert_string_equal(g.practices, "praktijk-a,praktijk-b");
    assert_memory_equal(g.webhook_secret, r.webhook_secret, 32);
    assert_true(spk_integration_acts_for(&g, "praktijk-b"));
    assert_false(spk_integration_acts_for(&g, "praktijk"));
    assert_int_equal(spk_store_integration_get(f->st, "his-x", &g), SPK_ENOTFOUND);

    uint8_t secret[32];
    memset(secret, 0x11, 32);
    assert_int_equal(
        spk_store_integration_set_webhook(f->st, "his-a", "https://his.test/h", secret), 0);
    assert_int_equal(spk_store_integration_set_webhook(f->st, "his-x", "", secret), SPK_ENOTFOUND);
    assert_int_equal(spk_store_integration_get(f->st, "his-a", &g), 0);
    assert_string_equal(g.webhook_url, "https://his.test/h");
    assert_memory_equal(g.webhook_secret, secret, 32);

    assert_int_equal(spk_store_integration_revoke(f->st, "his-b", 200), 0);
    assert_int_equal(spk_store_integration_revoke(f->st, "his-b", 201), SPK_ESTATE);
    assert_int_equal(spk_store_integration_revoke(f->st, "his-x", 201), SPK_ENOTFOUND);
    int n = 0;
    assert_int_equal(spk_store_integration_each(f->st, count_cb, &n), 0);
    assert_int_equal(n, 2);

    spk_integration_key_rec_t k;
    memset(&k, 0, sizeof(k));
    strcpy(k.integration, "his-a");
    strcpy(k.kid, "k1");
    memset(k.pub, 1, 32);
    k.created_at = 100;
    assert_int_equal(spk_store_integration_key_add(f->st, &k), 0);
    assert_int_equal(spk_store_integration_key_add(f->st, &k), SPK_EEXIST);
    strcpy(k.kid, "k2");
    k.created_at = 150;
    assert_int_equal(spk_store_integration_key_add(f->st, &k), 0);
    strcpy(k.integration, "his-none");
    assert_int_equal(spk_store_integration_key_add(f->st, &k), SPK_ENOTFOUND);
    n = 0;
    assert_int_equal(spk_store_integration_key_each(f->st, "his-a", key_cb, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(spk_store_integration_key_retire(f->st, "his-a", "k2", 300), 0);
    n = 0;
    assert_int_equal(spk_store_integration_key_each(f->st, "his-a", key_cb, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(spk_store_integration_key_retire(f->st, "his-a", NULL, 301), 0);
    n = 0;
    assert_int_equal(spk_store_integration_key_each(f->st, "his-a", key_cb, &n), 0);
    assert_int_equal(n, 0);
}

static void test_idempotency(void **state)
{
    fixture_t *f = *state;
    spk_idem_rec_t r;
    memset(&r, 0, sizeof(r));
    strcpy(r.owner, "his-a");
    memset(r.key_hash, 7, 32);
    memset(r.req_hash, 8, 32);
    unsigned char reply[300];
    for (size_t i = 0; i < sizeof(reply); i++) {
        reply[i] = (unsigned char)i; /* includes NUL bytes: stored as bytes, not text */
    }
    r.reply = reply;
    r.reply_len = sizeof(reply);
    r.created_at = 1000;
    assert_int_equal(spk_store_idem_put(f->st, &r), 0);
    assert_int_equal(spk_store_idem_put(f->st, &r), SPK_EEXIST);

    spk_idem_rec_t g;
    assert_int_equal(spk_store_idem_get(f->st, "his-a", r.key_hash, &g), 0);
    assert_int_equal(g.reply_len, sizeof(reply));
    assert_memory_equal(g.reply, reply, sizeof(reply));
    assert_memory_equal(g.req_hash, r.req_hash, 32);
    assert_int_equal(g.created_at, 1000);
    free(g.reply);
    /* Another owner's key of the same hash is not the same record. */
    assert_int_equal(spk_store_idem_get(f->st, "his-b", r.key_hash, &g), SPK_ENOTFOUND);

    assert_int_equal(spk_store_idem_purge(f->st, 1000), 0);
    assert_int_equal(spk_store_idem_get(f->st, "his-a", r.key_hash, &g), 0);
    free(g.reply);
    assert_int_equal(spk_store_idem_purge(f->st, 1001), 0);
    assert_int_equal(spk_store_idem_get(f->st, "his-a", r.key_hash, &g), SPK_ENOTFOUND);
}

static void test_webhook_queue(void **state)
{
    fixture_t *f = *state;
    int64_t dropped = 0;
    char ev[64];
    for (int i = 1; i <= 5; i++) {
        snprintf(ev, sizeof(ev), "{\"type\":\"t\",\"n\":%d}", i);
        assert_int_equal(spk_store_webhook_enqueue(f->st, "his-a", ev, 100 + i, 3, &dropped), 0);
    }
    assert_int_equal(spk_store_webhook_enqueue(f->st, "his-b", "{}", 500, 3, NULL), 0);
    assert_int_equal(dropped, 2);
    int64_t n = 0;
    assert_int_equal(spk_store_webhook_count(f->st, "his-a", &n), 0);
    assert_int_equal(n, 3);

    spk_webhook_rec_t h;
    assert_int_equal(spk_store_webhook_head(f->st, "his-a", &h), 0);
    assert_int_equal(h.seq, 3); /* 1 and 2 were dropped; numbering carries on per integration */
    assert_string_equal(h.event, "{\"type\":\"t\",\"n\":3}");
    assert_int_equal(h.attempts, 0);
    assert_int_equal(spk_store_webhook_retry(f->st, h.id, 1, 999, "timeout"), 0);
    assert_int_equal(spk_store_webhook_head(f->st, "his-a", &h), 0);
    assert_int_equal(h.attempts, 1);
    assert_int_equal(h.next_at_ms, 999);
    assert_string_equal(h.last_error, "timeout");
    assert_int_equal(spk_store_webhook_done(f->st, h.id), 0);
    assert_int_equal(spk_store_webhook_head(f->st, "his-a", &h), 0);
    assert_int_equal(h.seq, 4);
    assert_int_equal(spk_store_webhook_head(f->st, "his-b", &h), 0);
    assert_int_equal(h.seq, 1);

    int64_t gone = 0;
    assert_int_equal(spk_store_webhook_expire(f->st, 105, &gone), 0);
    assert_int_equal(gone, 1); /* n=4 at 104 */
    assert_int_equal(spk_store_webhook_head(f->st, "his-a", &h), 0);
    assert_int_equal(h.seq, 5);
    assert_int_equal(spk_store_webhook_expire(f->st, 1000, &gone), 0);
    assert_int_equal(gone, 2);
    assert_int_equal(spk_store_webhook_head(f->st, "his-a", &h), SPK_ENOTFOUND);
    char big[3000];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(spk_store_webhook_enqueue(f->st, "his-a", big, 1, 3, NULL), SPK_ERANGE);
}

static void test_console_links_and_marks(void **state)
{
    fixture_t *f = *state;
    spk_consult_rec_t c;
    memset(&c, 0, sizeof(c));
    strcpy(c.id, "c_1");
    strcpy(c.practice, "praktijk-a");
    strcpy(c.gp, "gp-jansen");
    strcpy(c.patient, "pp-1");
    c.state = SPK_CONSULT_OPEN;
    c.created_at = 10;
    assert_int_equal(spk_store_consult_insert(f->st, &c), 0);

    spk_console_link_rec_t l;
    memset(&l, 0, sizeof(l));
    strcpy(l.consult, "c_1");
    strcpy(l.practice, "praktijk-a");
    strcpy(l.gp, "gp-jansen");
    strcpy(l.name, "Dr. Jansen");
    strcpy(l.integration, "his-a");
    l.created_at = 100;
    l.expires_at = 200;
    char code[32], code2[32];
    assert_int_equal(spk_store_console_link_create(f->st, &l, code, sizeof(code)), 0);
    assert_int_equal(strlen(code), 22);
    uint8_t h[32];
    spk_store_invite_hash(code, strlen(code), h);
    assert_memory_equal(h, l.code_hash, 32);
    assert_int_equal(spk_store_console_link_create(f->st, &l, code2, sizeof(code2)), 0);
    assert_string_not_equal(code, code2);

    spk_console_link_rec_t out;
    assert_int_equal(spk_store_console_link_use(f->st, h, 150, &out), 0);
    assert_string_equal(out.gp, "gp-jansen");
    assert_int_equal(out.used_at, 150);
    assert_int_equal(spk_store_console_link_use(f->st, h, 151, &out), SPK_EINVITEUSED);
    spk_store_invite_hash(code2, strlen(code2), h);
    assert_int_equal(spk_store_console_link_use(f->st, h, 200, &out), SPK_EINVITEEXPIRED);
    memset(h, 0, 32);
    assert_int_equal(spk_store_console_link_use(f->st, h, 150, &out), SPK_EINVITEINVALID);
    strcpy(l.consult, "c_none");
    assert_int_equal(spk_store_console_link_create(f->st, &l, code, sizeof(code)), SPK_ENOTFOUND);

    int64_t v = -1;
    assert_int_equal(spk_store_mark_get(f->st, "invite_expiry", &v), 0);
    assert_int_equal(v, 0);
    assert_int_equal(spk_store_mark_set(f->st, "invite_expiry", 42), 0);
    assert_int_equal(spk_store_mark_set(f->st, "invite_expiry", 43), 0);
    assert_int_equal(spk_store_mark_get(f->st, "invite_expiry", &v), 0);
    assert_int_equal(v, 43);

    /* purge: only names with the prefix, only values below the bound */
    assert_int_equal(spk_store_mark_set(f->st, "session aa", 100), 0);
    assert_int_equal(spk_store_mark_set(f->st, "session bb", 200), 0);
    assert_int_equal(spk_store_mark_set(f->st, "sessionz", 50), 0);
    assert_int_equal(spk_store_mark_set(f->st, "session!", 50), 0);
    int64_t n = -1;
    assert_int_equal(spk_store_mark_purge(f->st, "session ", 150, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(spk_store_mark_get(f->st, "session aa", &v), 0);
    assert_int_equal(v, 0);
    assert_int_equal(spk_store_mark_get(f->st, "session bb", &v), 0);
    assert_int_equal(v, 200);
    assert_int_equal(spk_store_mark_get(f->st, "sessionz", &v), 0);
    assert_int_equal(v, 50);
    assert_int_equal(spk_store_mark_get(f->st, "session!", &v), 0);
    assert_int_equal(v, 50);
    assert_int_equal(spk_store_mark_get(f->st, "invite_expiry", &v), 0);
    assert_int_equal(v, 43);
    assert_int_equal(spk_store_mark_purge(f->st, "", 150, &n), SPK_EINVAL);

    /* claim: the first value wins; a later claim replaces only the value it names */
    assert_int_equal(spk_store_mark_claim(f->st, "relay_pin 7", 11, 0, &v), 0);
    assert_int_equal(v, 11);
    assert_int_equal(spk_store_mark_claim(f->st, "relay_pin 7", 22, 0, &v), 0);
    assert_int_equal(v, 11);
    assert_int_equal(spk_store_mark_claim(f->st, "relay_pin 7", 22, 99, &v), 0);
    assert_int_equal(v, 11);
    assert_int_equal(spk_store_mark_claim(f->st, "relay_pin 7", 22, 11, &v), 0);
    assert_int_equal(v, 22);
    assert_int_equal(spk_store_mark_claim(f->st, "relay_pin 7", 33, 11, &v), 0);
    assert_int_equal(v, 22);
    assert_int_equal(spk_store_mark_get(f->st, "relay_pin 7", &v), 0);
    assert_int_equal(v, 22);

    /* delete: exactly the name given, not names it is a prefix of */
    assert_int_equal(spk_store_mark_set(f->st, "relay_pin 71", 5), 0);
    assert_int_equal(spk_store_mark_delete(f->st, "relay_pin 7"), 0);
    assert_int_equal(spk_store_mark_get(f->st, "relay_pin 7", &v), 0);
    assert_int_equal(v, 0);
    assert_int_equal(spk_store_mark_get(f->st, "relay_pin 71", &v), 0);
    assert_int_equal(v, 5);
    assert_int_equal(spk_store_mark_delete(f->st, "relay_pin 7"), 0); /* gone already */
    assert_int_equal(spk_store_mark_delete(f->st, ""), SPK_EINVAL);
    /* a deleted pin can be claimed afresh */
    assert_int_equal(spk_store_mark_claim(f->st, "relay_pin 7", 44, 0, &v), 0);
    assert_int_equal(v, 44);
}

int main(int argc, char **argv)
{
    if (!tb_init(argc, argv)) {
        return 2;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_integrations, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idempotency, setup, teardown),
        cmocka_unit_test_setup_teardown(test_webhook_queue, setup, teardown),
        cmocka_unit_test_setup_teardown(test_console_links_and_marks, setup, teardown),
    };
    return cmocka_run_group_tests_name(tb_name(), tests, NULL, NULL);
}
