/* Private parts of the public MLS API (spk/mls.h) shared by mls_api*.c: the handle and small
 * helpers between the library's byte buffers and spk_mls_buf_t. */
#ifndef SPK_MLS_API_INT_H
#define SPK_MLS_API_INT_H

#include "spk/mls.h"

#include "mls/group.h"

struct spk_mls {
    spk_mls_group_t g;
    bool has_pending;
    spk_mls_commit_out_t pending;
    spk_mls_bytes_t pending_ad; /* authenticated_data of the pending Commit */
    /* What the last event points to (borrowed by the caller until the next non-const call). */
    spk_mls_group_report_t last;
    spk_mls_member_t *last_members; /* joined, then left */
};

/* Decodes an MLSMessage given to the API: SPK_EINVAL for NULL, SPK_ETOOBIG above
 * SPK_MLS_MAX_MESSAGE, else the decoder's result (m is zeroed on failure). */
int mls_api_decode(spk_mls_message_t *m, const uint8_t *p, size_t n);
/* Moves src's bytes into dst (src is left empty). */
void mls_api_buf_take(spk_mls_buf_t *dst, spk_mls_bytes_t *src);
/* Sets b (when not NULL) to {NULL, 0}. */
void mls_api_buf_clear(spk_mls_buf_t *b);
/* Drops a pending Commit. */
void mls_api_pending_drop(spk_mls_t *g);
/* Releases what the last event pointed to. */
void mls_api_last_clear(spk_mls_t *g);
/* Describes a cached proposal (identities borrowed from tree and cp). */
void mls_api_proposal_info(const spk_mls_tree_t *tree, const spk_mls_cached_proposal_t *cp,
                           spk_mls_proposal_info_t *out);
/* The joined members then the left ones of c as one allocated array (identities borrowed from
 * c); free it with free(). */
int mls_api_members(const spk_mls_changes_t *c, spk_mls_member_t **out);

#endif
