/* mls_vectors: runs the official MLS, HPKE and SFrame test vectors.
 *
 * Usage: mls_vectors FILE.json [FILE.json ...]
 * Prints "<file> <passed>/<total>" per file (or "<file> not yet supported") and a total line.
 * The SFrame file (test-vectors.json) is an object of three arrays (header, aes_ctr_hmac,
 * sframe) whose integers reach 2^64 - 1, more than jansson takes: it is read with every number
 * turned into a decimal string (vec_u64 accepts both), and each case of each array is one
 * entry, handed to the handler as {"section": <array name>, "case": <element>}.
 * Exit status: 0 when every entry of every supported file passed, 1 on any failure or load
 * error, 77 when no given file has a handler (CTest SKIP_RETURN_CODE). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vectors.h"

typedef struct {
    const char *file; /* basename */
    vec_handler_fn fn;
    bool sections; /* an object of arrays whose numbers may exceed 2^63 */
} vec_entry_t;

static const char *basename_of(const char *path)
{
    const char *s = strrchr(path, '/');
    return s != NULL ? s + 1 : path;
}

static const vec_entry_t *find_handler(const char *name)
{
    /* Weak handlers that are not linked in evaluate to NULL. */
    const vec_entry_t table[] = {
        {"x25519_sha256_aes128gcm.json", vec_hpke, false},
        {"tree-math.json", vec_tree_math, false},
        {"deserialization.json", vec_deserialization, false},
        {"crypto-basics.json", vec_crypto_basics, false},
        {"key-schedule.json", vec_key_schedule, false},
        {"psk_secret.json", vec_psk_secret, false},
        {"secret-tree.json", vec_secret_tree, false},
        {"transcript-hashes.json", vec_transcript_hashes, false},
        {"message-protection.json", vec_message_protection, false},
        {"welcome.json", vec_welcome, false},
        {"messages.json", vec_messages, false},
        {"tree-operations.json", vec_tree_operations, false},
        {"tree-validation.json", vec_tree_validation, false},
        {"treekem.json", vec_treekem, false},
        {"passive-client-welcome.json", vec_passive_client_welcome, false},
        {"passive-client-handling-commit.json", vec_passive_client_handling_commit, false},
        {"passive-client-random.json", vec_passive_client_random, false},
        {"test-vectors.json", vec_sframe, true},
    };
    static vec_entry_t found;
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        if (strcmp(table[i].file, name) == 0 && table[i].fn != NULL) {
            found = table[i];
            return &found;
        }
    }
    return NULL;
}

/* Loads a JSON file with every number outside strings turned into a string. */
static json_t *load_numbers_as_strings(const char *path, json_error_t *jerr)
{
    FILE *f = fopen(path, "rb");
    char *in = NULL;
    char *out = NULL;
    long n = -1;
    if (f != NULL && fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 &&
        fseek(f, 0, SEEK_SET) == 0) {
        in = malloc((size_t)n + 1);
        out = malloc(3 * (size_t)n + 1); /* each number gains two quotes */
    }
    if (in == NULL || out == NULL || fread(in, 1, (size_t)n, f) != (size_t)n) {
        if (f != NULL) {
            fclose(f);
        }
        free(in);
        free(out);
        snprintf(jerr->text, sizeof(jerr->text), "cannot read file");
        jerr->line = 0;
        return NULL;
    }
    fclose(f);
    size_t o = 0;
    bool in_string = false;
    for (long i = 0; i < n; i++) {
        char c = in[i];
        if (in_string) {
            out[o++] = c;
            if (c == '\\' && i + 1 < n) {
                out[o++] = in[++i];
            } else if (c == '"') {
                in_string = false;
            }
        } else if (c == '-' || (c >= '0' && c <= '9')) {
            out[o++] = '"';
            while (i < n && strchr("0123456789+-.eE", in[i]) != NULL) {
                out[o++] = in[i++];
            }
            out[o++] = '"';
            i--;
        } else {
            in_string = c == '"';
            out[o++] = c;
        }
    }
    json_t *root = json_loadb(out, o, 0, jerr);
    free(in);
    free(out);
    return root;
}

/* The entries of a file: the elements of a top-level array, the object itself, or for a
 * sectioned file one {"section", "case"} object per element of each array. */
static json_t *entries_of(json_t *root, bool sections)
{
    json_t *list = json_array();
    if (!sections) {
        if (json_is_array(root)) {
            json_array_extend(list, root);
        } else {
            json_array_append(list, root);
        }
        return list;
    }
    const char *key;
    json_t *arr;
    json_object_foreach(root, key, arr)
    {
        size_t i;
        json_t *c;
        json_array_foreach(arr, i, c)
        {
            json_array_append_new(list, json_pack("{s:s, s:O}", "section", key, "case", c));
        }
    }
    return list;
}

/* Runs one file; returns 0 all passed, 1 failure, 77 unsupported. */
static int run_file(const char *path, size_t *passed_all, size_t *total_all)
{
    const char *name = basename_of(path);
    const vec_entry_t *h = find_handler(name);
    if (h == NULL) {
        printf("%s not yet supported\n", name);
        return 77;
    }
    vec_handler_fn fn = h->fn;
    json_error_t jerr;
    json_t *root =
        h->sections ? load_numbers_as_strings(path, &jerr) : json_load_file(path, 0, &jerr);
    if (root == NULL) {
        fprintf(stderr, "%s: %s (line %d)\n", path, jerr.text, jerr.line);
        printf("%s load error\n", name);
        return 1;
    }
    json_t *list = entries_of(root, h->sections);
    size_t n = json_array_size(list);
    size_t passed = 0;
    for (size_t i = 0; i < n; i++) {
        vec_set_context(name, i);
        if (fn(json_array_get(list, i), i)) {
            passed++;
        }
    }
    json_decref(list);
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
