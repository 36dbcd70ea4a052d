/* Private helpers shared by the group state files. */
#ifndef SPK_MLS_GROUP_INT_H
#define SPK_MLS_GROUP_INT_H

#include "mls/group.h"

/* psk_secret over ids (§8.4): resumption PSKs of g's own recent epochs (g may be NULL), other
 * PSKs through env's callback. */
int spk_mls_group_psk_secret(const spk_mls_group_t *g, const spk_mls_group_env_t *env,
                             const spk_mls_psk_id_t *ids, size_t n, uint8_t out[SPK_MLS_HASH_LEN]);

/* Installs the epoch state of ng into g (ng's ownership moves; g's old state is freed), keeping
 * g's resumption PSKs and adding ng's epoch. */
void spk_mls_group_install(spk_mls_group_t *g, spk_mls_group_t *ng);

/* Deep copy of a GroupContext through its encoding; also returns the encoding in enc. */
int spk_mls_group_context_dup(const spk_mls_group_context_t *src, spk_mls_group_context_t *dst,
                              spk_mls_bytes_t *enc);

/* Signature key of a message sender (§6.1 / §12.1.8): member leaf, external sender from the
 * external_senders extension, or the new member's key in an Add. Borrowed from g or content. */
int spk_mls_group_sender_key(const spk_mls_group_t *g, const spk_mls_framed_content_t *c,
                             const uint8_t **pub, size_t *pub_len);

/* GroupContext of the next epoch (§12.4.1, §12.4.2) over tree, with the new extensions (gce,
 * or g's when NULL) and the given confirmed transcript hash: g's current one gives the
 * provisional GroupContext that UpdatePath secrets are encrypted under, the new one the epoch's
 * GroupContext. Decoded into gc (when not NULL) and serialized into enc. */
int spk_mls_group_next_context(const spk_mls_group_t *g, const spk_mls_tree_t *tree,
                               const spk_mls_extensions_t *gce, const uint8_t *confirmed,
                               size_t confirmed_len, spk_mls_group_context_t *gc,
                               spk_mls_bytes_t *enc);

/* The same from the current GroupContext cur (no group needed: the observer uses it). */
int spk_mls_next_context(const spk_mls_group_context_t *cur, const spk_mls_tree_t *tree,
                         const spk_mls_extensions_t *gce, const uint8_t *confirmed,
                         size_t confirmed_len, spk_mls_group_context_t *gc, spk_mls_bytes_t *enc);

/* Adds the proposal carried by c (signed as signature) to a proposal cache under its
 * ProposalRef: SPK_EMLSREPLAY when it is there already, SPK_ERANGE when the cache is full.
 * drop removes the entry with ref (SPK_ENOTFOUND when none). */
int spk_mls_proposal_cache_add(spk_mls_cached_proposal_t **cache, size_t *n, uint16_t wire_format,
                               const spk_mls_framed_content_t *c, const spk_mls_bytes_t *signature);
int spk_mls_proposal_cache_drop(spk_mls_cached_proposal_t *cache, size_t *n,
                                const uint8_t ref[SPK_MLS_HASH_LEN]);

/* Caches the proposal carried by c (signed as signature) under its ProposalRef. */
int spk_mls_group_cache_proposal(spk_mls_group_t *g, uint16_t wire_format,
                                 const spk_mls_framed_content_t *c,
                                 const spk_mls_bytes_t *signature);

/* The ratchet tree of a GroupInfo: a copy of oob when not NULL, else decoded from its
 * ratchet_tree extension (SPK_ENOTFOUND without one). */
int spk_mls_group_info_tree(const spk_mls_group_info_t *gi, const spk_mls_tree_t *oob,
                            spk_mls_tree_t *out);

/* Saved states (group_state.c, observer_state.c): uint32 magic, uint16 version, uint16
 * cipher_suite, then { uint16 tag; opaque body<V>; } for tags 1..last in order. read checks
 * the header and calls fn with a reader over each body; SPK_EDECODE for another magic, version
 * or suite, a tag out of order, or trailing bytes. */
typedef int (*spk_mls_state_field_fn)(spk_mls_reader_t *body, void *arg, int tag);
void spk_mls_state_write_header(spk_mls_writer_t *w, uint32_t magic, uint16_t version);
int spk_mls_state_read(const uint8_t *p, size_t n, uint32_t magic, uint16_t version, int last,
                       spk_mls_state_field_fn fn, void *arg);
/* A GroupContext field: decoded into gc, kept in its canonical encoding enc (SPK_EDECODE when
 * the bytes are not canonical). */
int spk_mls_state_read_gc(const spk_mls_reader_t *r, spk_mls_group_context_t *gc,
                          spk_mls_bytes_t *enc);

/* Cached proposals in the saved-state encoding (group_state.c): { opaque ref[32]; uint8
 * sender_type; uint32 sender; Proposal proposal; } repeated to the end of the reader. read
 * appends to *out / *n (at most SPK_MLS_GROUP_MAX_PROPOSALS). */
void spk_mls_proposals_write(spk_mls_writer_t *w, const spk_mls_cached_proposal_t *v, size_t n);
int spk_mls_proposals_read(spk_mls_reader_t *r, spk_mls_cached_proposal_t **out, size_t *n);

#endif
