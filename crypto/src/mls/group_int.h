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

/* Caches the proposal carried by c (signed as signature) under its ProposalRef. */
int spk_mls_group_cache_proposal(spk_mls_group_t *g, uint16_t wire_format,
                                 const spk_mls_framed_content_t *c,
                                 const spk_mls_bytes_t *signature);

#endif
