/* mls_vectors: runs the official MLS and HPKE test vectors.
 *
 * Usage: mls_vectors FILE.json [FILE.json ...]
 * Prints "<file> <passed>/<total>" per file (or "<file> not yet supported") and a total line.
 * Exit status: 0 when every entry of every supported file passed, 1 on any failure or load
 * error, 77 when no given file has a handler (CTest SKIP_RETURN_CODE). */
#include <stdio.h>
#include <string.h>

#include "vectors.h"

typedef struct {
    const char *file; /* basename */
    vec_handler_fn fn;
} vec_entry_t;

static const char *basename_of(const char *path)
{
    const char *s = strrchr(path, '/');
    return s != NULL ? s + 1 : path;
}

static vec_handler_fn find_handler(const char *name)
{
    /* Weak handlers that are not linked in evaluate to NULL. */
    const vec_entry_t table[] = {
        {"x25519_sha256_aes128gcm.json", vec_hpke},
        {"tree-math.json", vec_tree_math},
        {"deserialization.json", vec_deserialization},
        {"crypto-basics.json", vec_crypto_basics},
        {"key-schedule.json", vec_key_schedule},
        {"psk_secret.json", vec_psk_secret},
        {"secret-tree.json", vec_secret_tree},
        {"transcript-hashes.json", vec_transcript_hashes},
        {"message-protection.json", vec_message_protection},
        {"welcome.json", vec_welcome},
        {"messages.json", vec_messages},
        {"tree-operations.json", vec_tree_operations},
        {"tree-validation.json", vec_tree_validation},
        {"treekem.json", vec_treekem},
        {"passive-client-welcome.json", vec_passive_client_welcome},
        {"passive-client-handling-commit.json", vec_passive_client_handling_commit},
        {"passive-client-random.json", vec_passive_client_random},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        if (strcmp(table[i].file, name) == 0) {
            return table[i].fn;
        }
    }
    return NULL;
}

/* Runs one file; returns 0 all passed, 1 failure, 77 unsupported. */
static int run_file(const char *path, size_t *passed_all, size_t *total_all)
{
    const char *name = basename_of(path);
    vec_handler_fn fn = find_handler(name);
    if (fn == NULL) {
        printf("%s not yet supported\n", name);
        return 77;
    }
    json_error_t jerr;
    json_t *root = json_load_file(path, 0, &jerr);
    if (root == NULL) {
        fprintf(stderr, "%s: %s (line %d)\n", path, jerr.text, jerr.line);
        printf("%s load error\n", name);
        return 1;
    }
    size_t n = json_is_array(root) ? json_array_size(root) : 1;
    size_t passed = 0;
    for (size_t i = 0; i < n; i++) {
        const json_t *entry = json_is_array(root) ? json_array_get(root, i) : root;
        vec_set_context(name, i);
        if (fn(entry, i)) {
            passed++;
        }
    }
    json_decref(root);
    printf("%s %zu/%zu\n", name, passed, n);
    fflush(stdout);
    *passed_all += passed;
    *total_all += n;
    return passed == n && n > 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    size_t passed = 0;
    size_t total = 0;
    bool failed = false;
    bool any_supported = false;

    if (argc < 2) {
        fprintf(stderr, "usage: %s FILE.json [FILE.json ...]\n", argv[0]);
        return 2;
    }
    for (int i = 1; i < argc; i++) {
        int rc = run_file(argv[i], &passed, &total);
        if (rc != 77) {
            any_supported = true;
        }
        if (rc == 1) {
            failed = true;
        }
    }
    printf("total %zu/%zu\n", passed, total);
    if (failed) {
        return 1;
    }
    return any_supported ? 0 : 77;
}
