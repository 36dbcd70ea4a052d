/* C member for interop_api.mjs, using only the public API (spk/mls.h). Each member's state
 * lives in DIR/NAME.state between invocations (spk_mls_save / spk_mls_restore), so every step
 * also exercises state serialisation. Files hold hex; messages are standard MLSMessage bytes.
 *
 *   kp DIR NAME                 NAME.kp (KeyPackage), NAME.secret
 *   create DIR NAME GROUP       a new group
 *   join DIR NAME WELCOME       joins from the Welcome file
 *   add DIR NAME KP [private]   commits the Add of the KeyPackage file: commit, welcome
 *   remove DIR NAME LEAF [private]  commits a Remove: commit
 *   commit DIR NAME [private]   commits an UpdatePath only: commit
 *   send DIR NAME FILE TEXT     encrypts TEXT into FILE
 *   recv DIR NAME FILE          processes FILE: prints APP <text> | EV <type> | ERR <name>
 *   info DIR NAME LABEL         prints EPOCH, AUTH, EXPORT (32 bytes for LABEL, empty context),
 *                               LEAF
 * Exit status 0 on success (also for recv printing ERR), 1 on failure. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spk/error.h"
#include "spk/mls.h"

#define MAX_FILE (1 << 24)

static const char *dir;

static const char *path_of(const char *name, const char *ext)
{
    static char p[1024];
    snprintf(p, sizeof p, "%s/%s%s", dir, name, ext);
    return p;
}

static int fail(const char *what, int rc)
{
    printf("FAIL %s: %s\n", what, spk_err_name(rc));
    return 1;
}

static int read_hex(const char *path, spk_mls_buf_t *out)
{
    FILE *f = fopen(path, "r");
    out->p = NULL;
    out->n = 0;
    if (f == NULL) {
        return SPK_EIO;
    }
    char *h = malloc(MAX_FILE);
    size_t n = h != NULL ? fread(h, 1, MAX_FILE - 1, f) : 0;
    fclose(f);
    while (n > 0 && (h[n - 1] == '\n' || h[n - 1] == '\r')) {
        n--;
    }
    out->p = malloc(n / 2 + 1);
    if (h == NULL || out->p == NULL || n % 2 != 0) {
        free(h);
        spk_mls_buf_free(out);
        return SPK_EDECODE;
    }
    for (size_t i = 0; i < n / 2; i++) {
        unsigned v;
        if (sscanf(h + 2 * i, "%2x", &v) != 1) {
            free(h);
            spk_mls_buf_free(out);
            return SPK_EDECODE;
        }
        out->p[i] = (uint8_t)v;
    }
    out->n = n / 2;
    free(h);
    return 0;
}

static int write_hex(const char *path, const uint8_t *p, size_t n)
{
    FILE *f = fopen(path, "w");
    if (f == NULL) {
        return SPK_EIO;
    }
    for (size_t i = 0; i < n; i++) {
        fprintf(f, "%02x", p[i]);
    }
    fprintf(f, "\n");
    fclose(f);
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

static int load(const char *name, spk_mls_t **g)
{
    spk_mls_buf_t b;
    int rc = read_hex(path_of(name, ".state"), &b);
    rc = rc != 0 ? rc : spk_mls_restore(g, b.p, b.n);
    spk_mls_buf_free(&b);
    return rc;
}

/* Saves g (the test keeps it in plain hex; a product stores it encrypted) and frees it. */
static int store(const char *name, spk_mls_t *g, int rc)
{
    spk_mls_buf_t b = {NULL, 0};
    if (rc == 0) {
        rc = spk_mls_save(g, &b);
        rc = rc != 0 ? rc : write_hex(path_of(name, ".state"), b.p, b.n);
    }
    spk_mls_buf_free(&b);
    spk_mls_free(g);
    return rc;
}

static unsigned flags_of(int argc, char **argv, int at)
{
    return argc > at && strcmp(argv[at], "private") == 0 ? SPK_MLS_COMMIT_PRIVATE : 0;
}

/* Commits o; writes commit (and welcome) files; merges. */
static int commit_with(spk_mls_t *g, const spk_mls_commit_opts_t *o)
{
    spk_mls_buf_t commit, welcome;
    int rc = spk_mls_commit(g, o, &commit, &welcome);
    rc = rc != 0 ? rc : write_hex(path_of("commit", ""), commit.p, commit.n);
    if (rc == 0 && welcome.n > 0) {
        rc = write_hex(path_of("welcome", ""), welcome.p, welcome.n);
    }
    rc = rc != 0 ? rc : spk_mls_commit_merge(g);
    spk_mls_buf_free(&commit);
    spk_mls_buf_free(&welcome);
    return rc;
}

static int cmd_kp(const char *name)
{
    spk_mls_buf_t kp, sec;
    int rc = spk_mls_key_package_create((const uint8_t *)name, strlen(name), &kp, &sec);
    rc = rc != 0 ? rc : write_hex(path_of(name, ".kp"), kp.p, kp.n);
    rc = rc != 0 ? rc : write_hex(path_of(name, ".secret"), sec.p, sec.n);
    spk_mls_buf_free(&kp);
    spk_mls_buf_free(&sec);
    return rc;
}

static int cmd_create(const char *name, const char *group)
{
    spk_mls_buf_t sec;
    spk_mls_t *g = NULL;
    int rc = cmd_kp(name);
    rc = rc != 0 ? rc : read_hex(path_of(name, ".secret"), &sec);
    if (rc != 0) {
        return rc;
    }
    rc = spk_mls_create(&g, (const uint8_t *)group, strlen(group), sec.p, sec.n);
    spk_mls_buf_free(&sec);
    return rc != 0 ? rc : store(name, g, 0);
}

static int cmd_join(const char *name, const char *welcome_file)
{
    spk_mls_buf_t sec, w;
    spk_mls_t *g = NULL;
    int rc = read_hex(path_of(name, ".secret"), &sec);
    rc = rc != 0 ? rc : read_hex(path_of(welcome_file, ""), &w);
    rc = rc != 0 ? rc : spk_mls_join(&g, sec.p, sec.n, w.p, w.n, NULL, 0);
    spk_mls_buf_free(&sec);
    spk_mls_buf_free(&w);
    return rc != 0 ? rc : store(name, g, 0);
}

static int cmd_add(const char *name, const char *kp_file, unsigned flags)
{
    spk_mls_buf_t kp;
    spk_mls_t *g = NULL;
    int rc = read_hex(path_of(kp_file, ""), &kp);
    rc = rc != 0 ? rc : spk_mls_key_package_check(kp.p, kp.n, 0, NULL);
    rc = rc != 0 ? rc : load(name, &g);
    if (rc == 0) {
        const uint8_t *adds[1] = {kp.p};
        size_t lens[1] = {kp.n};
        spk_mls_commit_opts_t o = {adds, lens, 1, NULL, 0, flags};
        rc = store(name, g, commit_with(g, &o));
    }
    spk_mls_buf_free(&kp);
    return rc;
}

static int cmd_remove(const char *name, uint32_t leaf, unsigned flags)
{
    spk_mls_t *g = NULL;
    spk_mls_commit_opts_t o = {NULL, NULL, 0, &leaf, 1, flags};
    int rc = load(name, &g);
    return rc != 0 ? rc : store(name, g, commit_with(g, &o));
}

static int cmd_commit(const char *name, unsigned flags)
{
    spk_mls_t *g = NULL;
    spk_mls_commit_opts_t o = {NULL, NULL, 0, NULL, 0, flags};
    int rc = load(name, &g);
    return rc != 0 ? rc : store(name, g, commit_with(g, &o));
}

static int cmd_send(const char *name, const char *file, const char *text)
{
    spk_mls_t *g = NULL;
    spk_mls_buf_t m = {NULL, 0};
    int rc = load(name, &g);
    if (rc != 0) {
        return rc;
    }
    rc = spk_mls_encrypt(g, (const uint8_t *)text, strlen(text), 0, &m);
    rc = rc != 0 ? rc : write_hex(path_of(file, ""), m.p, m.n);
    spk_mls_buf_free(&m);
    return store(name, g, rc);
}

static int cmd_recv(const char *name, const char *file)
{
    static const char *types[] = {"", "application", "proposal", "commit", "removed"};
    spk_mls_t *g = NULL;
    spk_mls_buf_t m;
    spk_mls_event_t ev;
    int rc = read_hex(path_of(file, ""), &m);
    rc = rc != 0 ? rc : load(name, &g);
    if (rc != 0) {
        spk_mls_buf_free(&m);
        return rc;
    }
    int prc = spk_mls_process(g, m.p, m.n, &ev);
    spk_mls_buf_free(&m);
    if (prc != 0) {
        printf("ERR %s\n", spk_err_name(prc));
    } else if (ev.type == SPK_MLS_EVENT_APPLICATION) {
        printf("APP %.*s\n", (int)ev.data.n, (const char *)ev.data.p);
    } else {
        printf("EV %s\n", types[ev.type]);
    }
    spk_mls_buf_free(&ev.data);
    return store(name, g, 0);
}

static int cmd_info(const char *name, const char *label)
{
    spk_mls_t *g = NULL;
    uint8_t auth[SPK_MLS_EPOCH_AUTHENTICATOR_LEN];
    uint8_t exp[32];
    int rc = load(name, &g);
    rc = rc != 0 ? rc : spk_mls_epoch_authenticator(g, auth);
    rc = rc != 0 ? rc : spk_mls_export_secret(g, label, NULL, 0, exp, sizeof(exp));
    if (rc == 0) {
        printf("EPOCH %llu\n", (unsigned long long)spk_mls_epoch(g));
        printf("LEAF %u\n", spk_mls_own_leaf(g));
        print_hex("AUTH", auth, sizeof(auth));
        print_hex("EXPORT", exp, sizeof(exp));
    }
    spk_mls_free(g);
    return rc;
}

static int run(int argc, char **argv)
{
    const char *cmd = argv[1];
    const char *name = argv[3];
    if (strcmp(cmd, "kp") == 0) {
        return cmd_kp(name);
    }
    if (strcmp(cmd, "create") == 0 && argc >= 5) {
        return cmd_create(name, argv[4]);
    }
    if (strcmp(cmd, "join") == 0 && argc >= 5) {
        return cmd_join(name, argv[4]);
    }
    if (strcmp(cmd, "add") == 0 && argc >= 5) {
        return cmd_add(name, argv[4], flags_of(argc, argv, 5));
    }
    if (strcmp(cmd, "remove") == 0 && argc >= 5) {
        return cmd_remove(name, (uint32_t)strtoul(argv[4], NULL, 10), flags_of(argc, argv, 5));
    }
    if (strcmp(cmd, "commit") == 0) {
        return cmd_commit(name, flags_of(argc, argv, 4));
    }
    if (strcmp(cmd, "send") == 0 && argc >= 6) {
        return cmd_send(name, argv[4], argv[5]);
    }
    if (strcmp(cmd, "recv") == 0 && argc >= 5) {
        return cmd_recv(name, argv[4]);
    }
    if (strcmp(cmd, "info") == 0 && argc >= 5) {
        return cmd_info(name, argv[4]);
    }
    return SPK_EINVAL;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: %s CMD DIR NAME ...\n", argv[0]);
        return 2;
    }
    dir = argv[2];
    int rc = run(argc, argv);
    return rc != 0 ? fail(argv[1], rc) : 0;
}
