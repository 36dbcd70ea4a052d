/* C side of the ts-mls interoperability test (interop.mjs). Files are hex MLSMessages in DIR.
 *
 *   kp DIR      new member keys and KeyPackage: c_kp.hex, c_keys.hex
 *   join DIR    joins with welcome.hex, handles each line of msgs.txt (prints APP / EV lines),
 *               prints AUTH, sends c_app.hex, commits c_commit.hex (path only), prints AUTH2,
 *               sends c_app2.hex in the new epoch
 *   create DIR  creates a group, checks and adds ts_kp.hex (c_welcome.hex), sends c_app.hex,
 *               commits c_commit.hex, sends c_app2.hex, prints AUTH
 * Exit status 0 on success; any failure prints FAIL and exits 1. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mls/group.h"
#include "mls/validate.h"
#include "spk/error.h"
#include "spk/util.h"

#define MAX_FILE (1 << 22)

typedef struct {
    uint8_t sig[SPK_MLS_SIG_PRIV_LEN];
    uint8_t enc[SPK_MLS_KEM_PRIV_LEN];
    uint8_t init[SPK_MLS_KEM_PRIV_LEN];
} keys_t;

static int fail(const char *what, int rc)
{
    printf("FAIL %s: %s\n", what, spk_err_name(rc));
    return 1;
}

static const char *in_dir(const char *dir, const char *name)
{
    static char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return path;
}

static int hex_to_bytes(const char *s, size_t n, spk_mls_bytes_t *out)
{
    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r')) {
        n--;
    }
    out->p = malloc(n / 2 + 1);
    if (out->p == NULL) {
        return SPK_ENOMEM;
    }
    long r = spk_hex_decode(out->p, n / 2 + 1, s, n);
    if (r < 0) {
        spk_mls_bytes_free(out);
        return (int)r;
    }
    out->n = (size_t)r;
    return 0;
}

static int read_hex(const char *path, spk_mls_bytes_t *out)
{
    static char buf[MAX_FILE];
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        return SPK_EIO;
    }
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    return hex_to_bytes(buf, n, out);
}

static int write_hex(const char *path, const spk_mls_bytes_t *b)
{
    char *h = malloc(2 * b->n + 1);
    FILE *f = fopen(path, "w");
    if (h == NULL || f == NULL) {
        free(h);
        if (f != NULL) {
            fclose(f);
        }
        return SPK_EIO;
    }
    spk_hex_encode(h, b->p, b->n);
    fprintf(f, "%s\n", h);
    fclose(f);
    free(h);
    return 0;
}

static void print_hex(const char *tag, const uint8_t *p, size_t n)
{
    printf("%s ", tag);
    for (size_t i = 0; i < n; i++) {
        printf("%02x", p[i]);
    }
    printf("\n");
}

static uint16_t *one_u16(uint16_t v)
{
    uint16_t *p = malloc(sizeof(uint16_t));
    if (p != NULL) {
        *p = v;
    }
    return p;
}

/* A signed key_package-source LeafNode for fresh keys k. */
static int make_leaf(spk_mls_leaf_node_t *ln, keys_t *k, const char *name)
{
    uint8_t sp[SPK_MLS_SIG_PUB_LEN];
    uint8_t ep[SPK_MLS_KEM_PUB_LEN];
    memset(ln, 0, sizeof(*ln));
    int rc = spk_mls_ed25519_keygen(k->sig, sp);
    rc = rc != 0 ? rc : spk_mls_x25519_keygen(k->enc, ep);
    rc = rc != 0 ? rc : spk_mls_bytes_dup(&ln->encryption_key, ep, sizeof(ep));
    rc = rc != 0 ? rc : spk_mls_bytes_dup(&ln->signature_key, sp, sizeof(sp));
    rc = rc != 0 ? rc
                 : spk_mls_bytes_dup(&ln->credential.identity, (const uint8_t *)name, strlen(name));
    if (rc != 0) {
        return rc;
    }
    ln->credential.type = SPK_MLS_CRED_BASIC;
    ln->capabilities.versions = (spk_mls_u16_list_t){one_u16(SPK_MLS_VERSION_10), 1};
    ln->capabilities.cipher_suites = (spk_mls_u16_list_t){one_u16(SPK_MLS_CIPHER_SUITE), 1};
    ln->capabilities.credentials = (spk_mls_u16_list_t){one_u16(SPK_MLS_CRED_BASIC), 1};
    ln->source = SPK_MLS_LEAF_SRC_KEY_PACKAGE;
    ln->lifetime.not_after = UINT64_MAX;
    return spk_mls_leaf_node_sign(ln, k->sig, NULL, 0, 0);
}

static int cmd_kp(const char *dir)
{
    keys_t k;
    uint8_t ip[SPK_MLS_KEM_PUB_LEN];
    spk_mls_message_t m;
    spk_mls_bytes_t enc;
    memset(&m, 0, sizeof(m));
    m.version = SPK_MLS_VERSION_10;
    m.wire_format = SPK_MLS_WIRE_KEY_PACKAGE;
    spk_mls_key_package_t *kp = &m.u.key_package;
    kp->version = SPK_MLS_VERSION_10;
    kp->cipher_suite = SPK_MLS_CIPHER_SUITE;
    int rc = make_leaf(&kp->leaf_node, &k, "c-member");
    rc = rc != 0 ? rc : spk_mls_x25519_keygen(k.init, ip);
    rc = rc != 0 ? rc : spk_mls_bytes_dup(&kp->init_key, ip, sizeof(ip));
    rc = rc != 0 ? rc : spk_mls_key_package_sign(kp, k.sig);
    rc = rc != 0 ? rc : spk_mls_message_encode(&m, &enc);
    spk_mls_message_free(&m);
    if (rc != 0) {
        return fail("key package", rc);
    }
    spk_mls_bytes_t kb = {(uint8_t *)&k, sizeof(k)};
    rc = write_hex(in_dir(dir, "c_kp.hex"), &enc);
    rc = rc != 0 ? rc : write_hex(in_dir(dir, "c_keys.hex"), &kb);
    spk_mls_bytes_free(&enc);
    spk_wipe(&k, sizeof(k));
    return rc != 0 ? fail("write", rc) : 0;
}

static int handle_line(spk_mls_group_t *g, const char *line)
{
    spk_mls_bytes_t b;
    spk_mls_message_t m;
    spk_mls_group_event_t ev;
    spk_mls_bytes_t app = {NULL, 0};
    int rc = hex_to_bytes(line, strlen(line), &b);
    rc = rc != 0 ? rc : spk_mls_message_decode(&m, b.p, b.n);
    spk_mls_bytes_free(&b);
    if (rc != 0) {
        return fail("decode", rc);
    }
    rc = spk_mls_group_handle(g, &m, NULL, &ev, &app);
    spk_mls_message_free(&m);
    if (rc != 0) {
        return fail("handle", rc);
    }
    if (ev == SPK_MLS_GROUP_EV_APPLICATION) {
        printf("APP %.*s\n", (int)app.n, (const char *)app.p);
    } else {
        printf("EV %d epoch %llu\n", (int)ev, (unsigned long long)g->gc.epoch);
    }
    spk_mls_bytes_free(&app);
    return 0;
}

/* Sends text as c_<name>.hex. */
static int send_text(spk_mls_group_t *g, const char *dir, const char *name, const char *text)
{
    spk_mls_bytes_t out;
    int rc = spk_mls_group_send(g, (const uint8_t *)text, strlen(text), 0, &out);
    rc = rc != 0 ? rc : write_hex(in_dir(dir, name), &out);
    spk_mls_bytes_free(&out);
    return rc;
}

/* Commits an UpdatePath only, writes it to c_commit.hex and installs the new epoch. */
static int commit_path(spk_mls_group_t *g, const char *dir)
{
    spk_mls_commit_out_t co;
    int rc = spk_mls_group_commit(g, NULL, 0, true, NULL, &co);
    if (rc != 0) {
        return rc;
    }
    rc = write_hex(in_dir(dir, "c_commit.hex"), &co.commit);
    if (rc == 0) {
        spk_mls_group_merge_commit(g, &co);
    } else {
        spk_mls_group_commit_out_free(&co);
    }
    return rc;
}

static int join_group(const char *dir, spk_mls_group_t *g)
{
    spk_mls_bytes_t kb = {NULL, 0};
    spk_mls_bytes_t kpb = {NULL, 0};
    spk_mls_bytes_t wb = {NULL, 0};
    spk_mls_message_t kpm;
    spk_mls_message_t wm;
    keys_t k;
    memset(&kpm, 0, sizeof(kpm));
    memset(&wm, 0, sizeof(wm));
    int rc = read_hex(in_dir(dir, "c_keys.hex"), &kb);
    rc = rc != 0 ? rc : read_hex(in_dir(dir, "c_kp.hex"), &kpb);
    rc = rc != 0 ? rc : read_hex(in_dir(dir, "welcome.hex"), &wb);
    rc = rc != 0 ? rc : (kb.n == sizeof(k) ? 0 : SPK_EDECODE);
    rc = rc != 0 ? rc : spk_mls_message_decode(&kpm, kpb.p, kpb.n);
    rc = rc != 0 ? rc : spk_mls_message_decode(&wm, wb.p, wb.n);
    rc = rc != 0 ? rc
                 : (kpm.wire_format == SPK_MLS_WIRE_KEY_PACKAGE &&
                            wm.wire_format == SPK_MLS_WIRE_WELCOME
                        ? 0
                        : SPK_EDECODE);
    if (rc == 0) {
        memcpy(&k, kb.p, sizeof(k));
        rc = spk_mls_group_join(g, &wm.u.welcome, &kpm.u.key_package, k.init, k.enc, k.sig, NULL,
                                NULL);
        spk_wipe(&k, sizeof(k));
    }
    spk_mls_message_free(&kpm);
    spk_mls_message_free(&wm);
    spk_mls_bytes_free(&kb);
    spk_mls_bytes_free(&kpb);
    spk_mls_bytes_free(&wb);
    return rc;
}

static int cmd_join(const char *dir)
{
    static char line[MAX_FILE];
    spk_mls_group_t g;
    int rc = join_group(dir, &g);
    if (rc != 0) {
        return fail("join", rc);
    }
    printf("JOINED epoch %llu leaf %u\n", (unsigned long long)g.gc.epoch, g.own_leaf);
    FILE *f = fopen(in_dir(dir, "msgs.txt"), "r");
    while (rc == 0 && f != NULL && fgets(line, sizeof line, f) != NULL) {
        line[strcspn(line, "\r\n")] = '\0';
        if (line[0] != '\0') {
            rc = handle_line(&g, line);
        }
    }
    if (f != NULL) {
        fclose(f);
    }
    if (rc == 0) {
        print_hex("AUTH", g.secrets.epoch_authenticator, SPK_MLS_HASH_LEN);
        rc = send_text(&g, dir, "c_app.hex", "hello from C");
        rc = rc != 0 ? rc : commit_path(&g, dir);
        if (rc == 0) {
            print_hex("AUTH2", g.secrets.epoch_authenticator, SPK_MLS_HASH_LEN);
        }
        rc = rc != 0 ? rc : send_text(&g, dir, "c_app2.hex", "second from C");
        if (rc != 0) {
            fail("send", rc);
        }
    }
    spk_mls_group_free(&g);
    return rc != 0 ? 1 : 0;
}

/* Checks the ts-mls KeyPackage and commits its Add; writes c_welcome.hex. */
static int add_member(spk_mls_group_t *g, const char *dir)
{
    spk_mls_bytes_t kpb;
    spk_mls_message_t kpm;
    spk_mls_proposal_t add;
    spk_mls_commit_out_t co;
    int rc = read_hex(in_dir(dir, "ts_kp.hex"), &kpb);
    if (rc != 0) {
        return rc;
    }
    rc = spk_mls_message_decode(&kpm, kpb.p, kpb.n);
    spk_mls_bytes_free(&kpb);
    if (rc != 0) {
        return rc;
    }
    rc = kpm.wire_format == SPK_MLS_WIRE_KEY_PACKAGE ? 0 : SPK_EDECODE;
    rc = rc != 0 ? rc : spk_mls_key_package_validate(&kpm.u.key_package, spk_now_s());
    if (rc == 0) {
        memset(&add, 0, sizeof(add));
        add.type = SPK_MLS_PROPOSAL_ADD;
        add.u.add = kpm.u.key_package;
        rc = spk_mls_group_commit(g, &add, 1, false, NULL, &co);
    }
    spk_mls_message_free(&kpm);
    if (rc != 0) {
        return rc;
    }
    rc = write_hex(in_dir(dir, "c_welcome.hex"), &co.welcome);
    if (rc == 0) {
        spk_mls_group_merge_commit(g, &co);
    } else {
        spk_mls_group_commit_out_free(&co);
    }
    return rc;
}

static int cmd_create(const char *dir)
{
    keys_t k;
    spk_mls_leaf_node_t ln;
    spk_mls_group_t g;
    static const uint8_t gid[] = "interop-group";
    int rc = make_leaf(&ln, &k, "c-creator");
    rc = rc != 0 ? rc : spk_mls_group_create(&g, gid, sizeof(gid), &ln, k.enc, k.sig, NULL);
    spk_mls_leaf_node_free(&ln);
    spk_wipe(&k, sizeof(k));
    if (rc != 0) {
        return fail("create", rc);
    }
    rc = add_member(&g, dir);
    rc = rc != 0 ? rc : send_text(&g, dir, "c_app.hex", "welcome from C");
    rc = rc != 0 ? rc : commit_path(&g, dir);
    rc = rc != 0 ? rc : send_text(&g, dir, "c_app2.hex", "after update");
    if (rc == 0) {
        print_hex("AUTH", g.secrets.epoch_authenticator, SPK_MLS_HASH_LEN);
    }
    spk_mls_group_free(&g);
    return rc != 0 ? fail("create flow", rc) : 0;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s kp|join|create DIR\n", argv[0]);
        return 2;
    }
    if (strcmp(argv[1], "kp") == 0) {
        return cmd_kp(argv[2]);
    }
    if (strcmp(argv[1], "join") == 0) {
        return cmd_join(argv[2]);
    }
    if (strcmp(argv[1], "create") == 0) {
        return cmd_create(argv[2]);
    }
    return 2;
}
