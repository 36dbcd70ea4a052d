/* spreekload --e2ee: end-to-end encrypted synthetic media. The participants of each consult
 * form an MLS group (spk_mls, in this process: the GP creates it and adds the others with one
 * Commit), and every payload is an SFrame frame (RFC 9605) under the keys of that group
 * (spk_sframe_mls_t, docs/sframe.md), so the relay forwards what it cannot read. With
 * --e2ee-tap the last participant of each consult is left out of the group: it only receives,
 * and it counts the frames it cannot decrypt and any plaintext marker it finds in them. --tap
 * is the control: the same tap without encryption, which must find the markers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "load.h"
#include "spk/error.h"

static bool is_tap(const load_part_t *p)
{
    return p->L->e2ee_tap && p->idx == p->L->k - 1;
}

bool load_e2ee_sends(const load_part_t *p)
{
    return !is_tap(p);
}

static int consult_group(load_consult_t *c)
{
    load_t *L = c->L;
    int members = L->e2ee_tap ? L->k - 1 : L->k;
    spk_mls_buf_t kp[LOAD_MAX_K], secret[LOAD_MAX_K];
    memset(kp, 0, sizeof(kp));
    memset(secret, 0, sizeof(secret));
    int rc = 0;
    for (int i = 0; rc == 0 && i < members; i++) {
        char id[64];
        int n = snprintf(id, sizeof(id), "load-%d-%d", c->idx, i);
        rc = spk_mls_key_package_create((const uint8_t *)id, (size_t)n, &kp[i], &secret[i]);
    }
    char gid[80];
    int gn = snprintf(gid, sizeof(gid), "consult-%s", c->id);
    if (rc == 0) {
        rc = spk_mls_create(&c->parts[0].mls, (const uint8_t *)gid, (size_t)gn, secret[0].p,
                            secret[0].n);
    }
    spk_mls_buf_t commit = {0}, welcome = {0};
    if (rc == 0 && members > 1) {
        const uint8_t *add[LOAD_MAX_K];
        size_t add_len[LOAD_MAX_K];
        for (int i = 1; i < members; i++) {
            add[i - 1] = kp[i].p;
            add_len[i - 1] = kp[i].n;
        }
        spk_mls_commit_opts_t o = {.add = add, .add_len = add_len, .n_add = (size_t)members - 1};
        rc = spk_mls_commit(c->parts[0].mls, &o, &commit, &welcome);
        if (rc == 0) {
            rc = spk_mls_commit_merge(c->parts[0].mls);
        }
        for (int i = 1; rc == 0 && i < members; i++) {
            rc = spk_mls_join(&c->parts[i].mls, secret[i].p, secret[i].n, welcome.p, welcome.n,
                              NULL, 0);
        }
    }
    for (int i = 0; rc == 0 && i < L->k; i++) {
        load_part_t *p = &c->parts[i];
        rc = spk_sframe_mls_create(&p->sframe, NULL);
        if (rc == 0 && p->mls != NULL) {
            rc = spk_sframe_mls_add_epoch(p->sframe, p->mls);
        }
    }
    for (int i = 0; i < LOAD_MAX_K; i++) {
        spk_mls_buf_free(&kp[i]);
        spk_mls_buf_free(&secret[i]);
    }
    spk_mls_buf_free(&commit);
    spk_mls_buf_free(&welcome);
    return rc;
}

int load_e2ee_setup(load_t *L)
{
    if (L->e2ee_tap && L->k < 3) {
        fprintf(stderr, "spreekload: a tap needs at least 3 participants per consult\n");
        return SPK_EINVAL;
    }
    if (!L->e2ee) {
        return 0;
    }
    for (int c = 0; c < L->consults; c++) {
        int rc = consult_group(&L->cs[c]);
        if (rc != 0) {
            fprintf(stderr, "spreekload: MLS group of consult %d: %s\n", c, spk_strerror(rc));
            return rc;
        }
    }
    return 0;
}

size_t load_e2ee_seal(load_part_t *p, const uint8_t *pt, size_t pt_len, uint8_t *out, size_t cap)
{
    size_t n = 0;
    if (spk_sframe_mls_encrypt(p->sframe, 1, NULL, 0, pt, pt_len, out, cap, &n) != 0) {
        p->L->e2ee_failed++;
        return 0;
    }
    return n;
}

/* Counts a plaintext marker in bytes the relay forwarded (it must never be there). */
static void scan(load_t *L, const uint8_t *frame, size_t len)
{
    static const char *const markers[] = {LOAD_PAYLOAD_MAGIC, LOAD_CANARY};
    for (size_t m = 0; m < sizeof(markers) / sizeof(markers[0]); m++) {
        size_t k = strlen(markers[m]);
        for (size_t i = 0; i + k <= len; i++) {
            if (memcmp(frame + i, markers[m], k) == 0) {
                L->e2ee_canary_seen++;
                return;
            }
        }
    }
}

bool load_e2ee_is_tap(const load_part_t *p)
{
    return is_tap(p);
}

void load_e2ee_tap(load_part_t *p, const uint8_t *payload, size_t len)
{
    load_t *L = p->L;
    L->e2ee_tap_frames++;
    scan(L, payload, len);
    if (!L->e2ee) {
        return; /* the control run: plaintext payloads, the markers must be found */
    }
    uint8_t out[1500];
    size_t n = 0;
    if (p->sframe == NULL ||
        spk_sframe_mls_decrypt(p->sframe, NULL, 0, payload, len, out, sizeof(out), &n, NULL) != 0) {
        L->e2ee_tap_refused++;
    } else {
        L->e2ee_tap_opened++; /* must stay 0 */
    }
}

size_t load_e2ee_open(load_part_t *p, const uint8_t *frame, size_t len, uint8_t *out, size_t cap)
{
    size_t n = 0;
    if (spk_sframe_mls_decrypt(p->sframe, NULL, 0, frame, len, out, cap, &n, NULL) != 0) {
        p->L->e2ee_failed++;
        return 0;
    }
    return n;
}

void load_e2ee_free(load_part_t *p)
{
    spk_sframe_mls_free(p->sframe);
    p->sframe = NULL;
    spk_mls_free(p->mls);
    p->mls = NULL;
}
