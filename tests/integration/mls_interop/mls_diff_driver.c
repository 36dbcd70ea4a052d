/* C members for the differential tests (mls_diff.mjs, tsmls_shapes.mjs): many spk_mls members
 * in one process, driven over stdin/stdout with one command per line and one reply line per
 * command. Only the public API (spk/mls.h) is used. Bytes travel as lower-case hex; "-" is an
 * empty list or absent bytes. Members are slots 0..MAX_MEMBERS-1.
 *
 *   kp ID IDENTITY               -> OK <KeyPackage>      (the secret stays in slot ID)
 *   check KP                     -> OK <identity>
 *   create ID GROUP_ID           -> OK
 *   join ID WELCOME [TREE]       -> OK
 *   commit ID FLAGS ADDS REMOVES -> OK <Commit> <Welcome|->   ADDS: KeyPackages, comma-separated;
 *                                                             REMOVES: leaf indices
 *   merge ID | discard ID        -> OK
 *   propose ID add KP | propose ID remove LEAF | propose ID update -> OK <message>
 *   send ID PLAINTEXT            -> OK <message>
 *   process ID MESSAGE           -> OK application <plaintext> | OK proposal | OK commit |
 *                                   OK removed
 *   info ID LABEL                -> OK <epoch> <own leaf> <epoch authenticator>
 *                                   <exporter(LABEL, "", 32)> <leaf:identity,...>
 *   tree ID                      -> OK <ratchet tree>
 *   cycle ID                     -> OK   (spk_mls_save, spk_mls_free, spk_mls_restore)
 *   free ID                      -> OK
 * Failures answer "ERR <error name>" and leave the member as it was. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spk/error.h"
#include "spk/mls.h"

#define MAX_MEMBERS 256
#define MAX_LIST 64

static spk_mls_t *members[MAX_MEMBERS];
static spk_mls_buf_t secrets[MAX_MEMBERS];

static int unhex(const char *h, spk_mls_buf_t *out)
{
    size_t n = strcmp(h, "-") == 0 ? 0 : strlen(h);
    out->p = NULL;
    out->n = 0;
    if (n % 2 != 0) {
        return SPK_EDECODE;
    }
    out->p = malloc(n / 2 + 1);
    if (out->p == NULL) {
        return SPK_ENOMEM;
    }
    for (size_t i = 0; i < n / 2; i++) {
        unsigned v;
        if (sscanf(h + 2 * i, "%2x", &v) != 1) {
            spk_mls_buf_free(out);
            return SPK_EDECODE;
        }
        out->p[i] = (uint8_t)v;
    }
    out->n = n / 2;
    return 0;
}

static void put_hex(const uint8_t *p, size_t n)
{
    putchar(' ');
    if (n == 0) {
        putchar('-');
    }
    for (size_t i = 0; i < n; i++) {
        printf("%02x", p[i]);
    }
}

static int slot(const char *s, bool need_group)
{
    long id = s != NULL ? strtol(s, NULL, 10) : -1;
    if (id < 0 || id >= MAX_MEMBERS || (need_group && members[id] == NULL)) {
        return -1;
    }
    return (int)id;
}

/* Splits a comma-separated list in place; "-" is empty. */
static size_t split(char *s, char **out)
{
    size_t n = 0;
    if (s == NULL || strcmp(s, "-") == 0) {
        return 0;
    }
    for (char *t = strtok(s, ","); t != NULL && n < MAX_LIST; t = strtok(NULL, ",")) {
        out[n++] = t;
    }
    return n;
}

static int cmd_kp(int id, const char *identity)
{
    spk_mls_buf_t kp;
    spk_mls_buf_free(&secrets[id]);
    int rc =
        spk_mls_key_package_create((const uint8_t *)identity, strlen(identity), &kp, &secrets[id]);
    if (rc == 0) {
        printf("OK");
        put_hex(kp.p, kp.n);
        putchar('\n');
    }
    spk_mls_buf_free(&kp);
    return rc;
}

static int cmd_check(const char *kp_hex)
{
    spk_mls_buf_t kp, identity = {NULL, 0};
    int rc = unhex(kp_hex, &kp);
    rc = rc != 0 ? rc : spk_mls_key_package_check(kp.p, kp.n, 0, &identity);
    if (rc == 0) {
        printf("OK");
        put_hex(identity.p, identity.n);
        putchar('\n');
    }
    spk_mls_buf_free(&kp);
    spk_mls_buf_free(&identity);
    return rc;
}

static int cmd_join(int id, const char *welcome_hex, const char *tree_hex)
{
    spk_mls_buf_t w, tree = {NULL, 0};
    int rc = unhex(welcome_hex, &w);
    rc = rc != 0 || tree_hex == NULL ? rc : unhex(tree_hex, &tree);
    rc = rc != 0
             ? rc
             : spk_mls_join(&members[id], secrets[id].p, secrets[id].n, w.p, w.n, tree.p, tree.n);
    spk_mls_buf_free(&w);
    spk_mls_buf_free(&tree);
    return rc;
}

static int cmd_commit(int id, unsigned flags, char *adds_s, char *removes_s)
{
    char *add_hex[MAX_LIST], *rem_s[MAX_LIST];
    spk_mls_buf_t adds[MAX_LIST];
    const uint8_t *add_p[MAX_LIST];
    size_t add_n[MAX_LIST];
    uint32_t removes[MAX_LIST];
    size_t n_add = split(adds_s, add_hex);
    size_t n_rem = split(removes_s, rem_s);
    int rc = 0;
    size_t done = 0;
    for (; done < n_add && rc == 0; done++) {
        rc = unhex(add_hex[done], &adds[done]);
        add_p[done] = adds[done].p;
        add_n[done] = adds[done].n;
    }
    for (size_t i = 0; i < n_rem; i++) {
        removes[i] = (uint32_t)strtoul(rem_s[i], NULL, 10);
    }
    spk_mls_commit_opts_t o = {add_p, add_n, n_add, removes, n_rem, flags};
    spk_mls_buf_t commit, welcome;
    rc = rc != 0 ? rc : spk_mls_commit(members[id], &o, &commit, &welcome);
    if (rc == 0) {
        printf("OK");
        put_hex(commit.p, commit.n);
        put_hex(welcome.p, welcome.n);
        putchar('\n');
        spk_mls_buf_free(&commit);
        spk_mls_buf_free(&welcome);
    }
    for (size_t i = 0; i < done; i++) {
        spk_mls_buf_free(&adds[i]);
    }
    return rc;
}

static int cmd_propose(int id, const char *what, const char *arg)
{
    spk_mls_buf_t msg = {NULL, 0}, kp;
    int rc = SPK_EINVAL;
    if (strcmp(what, "update") == 0) {
        rc = spk_mls_propose_update(members[id], &msg);
    } else if (strcmp(what, "remove") == 0 && arg != NULL) {
        rc = spk_mls_propose_remove(members[id], (uint32_t)strtoul(arg, NULL, 10), &msg);
    } else if (strcmp(what, "add") == 0 && arg != NULL && (rc = unhex(arg, &kp)) == 0) {
        rc = spk_mls_propose_add(members[id], kp.p, kp.n, &msg);
        spk_mls_buf_free(&kp);
    }
    if (rc == 0) {
        printf("OK");
        put_hex(msg.p, msg.n);
        putchar('\n');
    }
    spk_mls_buf_free(&msg);
    return rc;
}

static int cmd_send(int id, const char *pt_hex)
{
    spk_mls_buf_t pt, msg;
    int rc = unhex(pt_hex, &pt);
    rc = rc != 0 ? rc : spk_mls_encrypt(members[id], pt.p, pt.n, 0, &msg);
    if (rc == 0) {
        printf("OK");
        put_hex(msg.p, msg.n);
        putchar('\n');
        spk_mls_buf_free(&msg);
    }
    spk_mls_buf_free(&pt);
    return rc;
}

static int cmd_process(int id, const char *msg_hex)
{
    static const char *types[] = {"", "application", "proposal", "commit", "removed"};
    spk_mls_buf_t msg;
    spk_mls_event_t ev;
    int rc = unhex(msg_hex, &msg);
    rc = rc != 0 ? rc : spk_mls_process(members[id], msg.p, msg.n, &ev);
    if (rc == 0) {
        printf("OK %s", ev.type >= 1 && ev.type <= 4 ? types[ev.type] : "unknown");
        if (ev.type == SPK_MLS_EVENT_APPLICATION) {
            put_hex(ev.data.p, ev.data.n);
        }
        putchar('\n');
        spk_mls_buf_free(&ev.data);
    }
    spk_mls_buf_free(&msg);
    return rc;
}

static int cmd_info(int id, const char *label)
{
    const spk_mls_t *g = members[id];
    uint8_t auth[SPK_MLS_EPOCH_AUTHENTICATOR_LEN], exp[32];
    int rc = spk_mls_epoch_authenticator(g, auth);
    rc = rc != 0 ? rc : spk_mls_export_secret(g, label, NULL, 0, exp, sizeof(exp));
    if (rc != 0) {
        return rc;
    }
    printf("OK %llu %u", (unsigned long long)spk_mls_epoch(g), spk_mls_own_leaf(g));
    put_hex(auth, sizeof(auth));
    put_hex(exp, sizeof(exp));
    putchar(' ');
    const char *sep = "";
    for (uint32_t l = 0; l < spk_mls_leaf_count(g); l++) {
        const uint8_t *ident;
        size_t len;
        if (spk_mls_is_member(g, l) && spk_mls_member_identity(g, l, &ident, &len) == 0) {
            printf("%s%u:", sep, l);
            for (size_t i = 0; i < len; i++) {
                printf("%02x", ident[i]);
            }
            sep = ",";
        }
    }
    putchar('\n');
    return 0;
}

static int cmd_tree(int id)
{
    spk_mls_buf_t tree;
    int rc = spk_mls_ratchet_tree(members[id], &tree);
    if (rc == 0) {
        printf("OK");
        put_hex(tree.p, tree.n);
        putchar('\n');
        spk_mls_buf_free(&tree);
    }
    return rc;
}

static int cmd_cycle(int id)
{
    spk_mls_buf_t blob;
    spk_mls_t *g = NULL;
    int rc = spk_mls_save(members[id], &blob);
    rc = rc != 0 ? rc : spk_mls_restore(&g, blob.p, blob.n);
    if (rc == 0) {
        spk_mls_free(members[id]);
        members[id] = g;
    }
    spk_mls_buf_free(&blob);
    return rc;
}

/* Commands that answer a bare "OK" on success print it here. */
static int plain(int rc)
{
    if (rc == 0) {
        printf("OK\n");
    }
    return rc;
}

static int dispatch(char **w, int n)
{
    const char *c = w[0];
    int id = slot(w[1], true);
    int fresh = slot(w[1], false); /* for commands that make the member */
    if (strcmp(c, "kp") == 0 && fresh >= 0 && n >= 3) {
        return cmd_kp(fresh, w[2]);
    }
    if (strcmp(c, "check") == 0 && n >= 2) {
        return cmd_check(w[1]);
    }
    if (strcmp(c, "create") == 0 && fresh >= 0 && n >= 3 && members[fresh] == NULL) {
        spk_mls_buf_t gid;
        int rc = unhex(w[2], &gid);
        rc = rc != 0 ? rc
                     : spk_mls_create(&members[fresh], gid.p, gid.n, secrets[fresh].p,
                                      secrets[fresh].n);
        spk_mls_buf_free(&gid);
        return plain(rc);
    }
    if (strcmp(c, "join") == 0 && fresh >= 0 && n >= 3 && members[fresh] == NULL) {
        return plain(cmd_join(fresh, w[2], n >= 4 ? w[3] : NULL));
    }
    if (strcmp(c, "free") == 0 && fresh >= 0) {
        spk_mls_free(members[fresh]);
        members[fresh] = NULL;
        spk_mls_buf_free(&secrets[fresh]);
        return plain(0);
    }
    if (id < 0) {
        return SPK_EINVAL;
    }
    if (strcmp(c, "commit") == 0 && n >= 5) {
        return cmd_commit(id, (unsigned)strtoul(w[2], NULL, 10), w[3], w[4]);
    }
    if (strcmp(c, "merge") == 0) {
        return plain(spk_mls_commit_merge(members[id]));
    }
    if (strcmp(c, "discard") == 0) {
        spk_mls_commit_discard(members[id]);
        return plain(0);
    }
    if (strcmp(c, "propose") == 0 && n >= 3) {
        return cmd_propose(id, w[2], n >= 4 ? w[3] : NULL);
    }
    if (strcmp(c, "send") == 0 && n >= 3) {
        return cmd_send(id, w[2]);
    }
    if (strcmp(c, "process") == 0 && n >= 3) {
        return cmd_process(id, w[2]);
    }
    if (strcmp(c, "info") == 0 && n >= 3) {
        return cmd_info(id, w[2]);
    }
    if (strcmp(c, "tree") == 0) {
        return cmd_tree(id);
    }
    if (strcmp(c, "cycle") == 0) {
        return plain(cmd_cycle(id));
    }
    return SPK_EINVAL;
}

int main(void)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, stdin)) > 0) {
        char *w[6] = {NULL};
        int n = 0;
        for (char *t = strtok(line, " \r\n"); t != NULL && n < 6; t = strtok(NULL, " \r\n")) {
            w[n++] = t;
        }
        if (n == 0) {
            continue;
        }
        int rc = dispatch(w, n);
        if (rc != 0) {
            printf("ERR %s\n", spk_err_name(rc));
        }
        fflush(stdout);
    }
    free(line);
    for (int i = 0; i < MAX_MEMBERS; i++) {
        spk_mls_free(members[i]);
        spk_mls_buf_free(&secrets[i]);
    }
    return 0;
}
