/* Message framing protection (RFC 9420 §6): signatures over FramedContentTBS, membership tags,
 * PublicMessage and PrivateMessage protect / unprotect.
 *
 * GroupContext is passed serialized (§8.1) for the current epoch. Unprotect functions verify
 * everything before they change any state: a PrivateMessage's ratchet key is consumed (deleted
 * from the secret tree, §9.2) only after decryption and signature verification succeeded. They
 * do not check group_id / epoch against the group; the caller (the group state machine) does. */
#ifndef SPK_MLS_MSGPROT_H
#define SPK_MLS_MSGPROT_H

#include <stddef.h>
#include <stdint.h>

#include "mls/codec.h"
#include "mls/prim.h"
#include "mls/secrettree.h"
#include "mls/structs.h"

/* AuthenticatedContent (§6.1): owned; free with spk_mls_auth_content_free. */
typedef struct {
    uint16_t wire_format;
    spk_mls_framed_content_t content;
    spk_mls_bytes_t signature;
    spk_mls_bytes_t confirmation_tag; /* commit only */
} spk_mls_auth_content_t;

void spk_mls_auth_content_free(spk_mls_auth_content_t *ac);
/* AuthenticatedContent serialization (input of MakeProposalRef and the transcript hash). */
int spk_mls_auth_content_write(spk_mls_writer_t *w, const spk_mls_auth_content_t *ac);
/* ConfirmedTranscriptHashInput: wire_format || FramedContent || V(signature) (§8.2). */
int spk_mls_confirmed_transcript_input_write(spk_mls_writer_t *w, const spk_mls_auth_content_t *ac);

/* The same two serializations from parts (no AuthenticatedContent struct needed). */
int spk_mls_auth_content_write_parts(spk_mls_writer_t *w, uint16_t wire_format,
                                     const spk_mls_framed_content_t *c,
                                     const spk_mls_bytes_t *signature,
                                     const spk_mls_bytes_t *confirmation_tag);
int spk_mls_confirmed_transcript_input_write_parts(spk_mls_writer_t *w, uint16_t wire_format,
                                                   const spk_mls_framed_content_t *c,
                                                   const spk_mls_bytes_t *signature);
/* ProposalRef = MakeProposalRef(AuthenticatedContent) of a proposal message (§5.2). */
int spk_mls_proposal_ref_of(uint16_t wire_format, const spk_mls_framed_content_t *c,
                            const spk_mls_bytes_t *signature, uint8_t out[SPK_MLS_HASH_LEN]);

/* FramedContentTBS (§6.1); the GroupContext is included for member and new_member_commit
 * senders. */
int spk_mls_framed_content_tbs_write(spk_mls_writer_t *w, uint16_t wire_format,
                                     const spk_mls_framed_content_t *c, const uint8_t *gc,
                                     size_t gc_len);
/* SignWithLabel(., "FramedContentTBS", FramedContentTBS). */
int spk_mls_framed_content_sign(uint16_t wire_format, const spk_mls_framed_content_t *c,
                                const uint8_t *gc, size_t gc_len,
                                const uint8_t sig_priv[SPK_MLS_SIG_PRIV_LEN],
                                spk_mls_bytes_t *signature);
/* 0 when valid, SPK_EVERIFY otherwise. */
int spk_mls_framed_content_verify(uint16_t wire_format, const spk_mls_framed_content_t *c,
                                  const uint8_t *gc, size_t gc_len,
                                  const spk_mls_bytes_t *signature, const uint8_t *sig_pub,
                                  size_t sig_pub_len);
/* membership_tag = MAC(membership_key, AuthenticatedContentTBM) (§6.2). */
int spk_mls_membership_tag(const spk_mls_framed_content_t *c, const spk_mls_bytes_t *signature,
                           const spk_mls_bytes_t *confirmation_tag, const uint8_t *gc,
                           size_t gc_len, const uint8_t membership_key[SPK_MLS_HASH_LEN],
                           uint8_t out[SPK_MLS_HASH_LEN]);

/* Signs c and frames it as an MLSMessage(PublicMessage) into out. confirmation_tag is required
 * for commits and ignored otherwise; membership_key is required for member senders.
 * Application content cannot be sent as PublicMessage (SPK_EINVAL, §6.2). */
int spk_mls_public_message_protect(const spk_mls_framed_content_t *c,
                                   const spk_mls_bytes_t *confirmation_tag, const uint8_t *gc,
                                   size_t gc_len, const uint8_t sig_priv[SPK_MLS_SIG_PRIV_LEN],
                                   const uint8_t *membership_key, spk_mls_bytes_t *out);
/* Verifies a PublicMessage: the membership tag for member senders (membership_key), then the
 * signature with the sender's signature key. SPK_EVERIFY on any mismatch. */
int spk_mls_public_message_verify(const spk_mls_public_message_t *pm, const uint8_t *gc,
                                  size_t gc_len, const uint8_t *membership_key,
                                  const uint8_t *sig_pub, size_t sig_pub_len);

/* The same with specific codes: SPK_EMLSMEMBERTAG for a bad membership tag, SPK_EMLSSIG for a
 * bad signature. */
int spk_mls_public_message_check(const spk_mls_public_message_t *pm, const uint8_t *gc,
                                 size_t gc_len, const uint8_t *membership_key,
                                 const uint8_t *sig_pub, size_t sig_pub_len);

/* Signs c (a member sender; its leaf is c->sender.index), encrypts it with the next key of that
 * leaf's ratchet in st (handshake or application by content type) and frames it as an
 * MLSMessage(PrivateMessage) with `padding` zero bytes. The generation is consumed as soon as
 * its key is taken (§9.2), so a failure after that point (out of memory) skips it. */
int spk_mls_private_message_protect(const spk_mls_framed_content_t *c,
                                    const spk_mls_bytes_t *confirmation_tag, const uint8_t *gc,
                                    size_t gc_len, const uint8_t sig_priv[SPK_MLS_SIG_PRIV_LEN],
                                    spk_mls_secret_tree_t *st,
                                    const uint8_t sender_data_secret[SPK_MLS_HASH_LEN],
                                    size_t padding, spk_mls_bytes_t *out);

/* Looks up the signature public key of the member at leaf_index (borrowed; valid for the call).
 * Returns 0 or a negative SPK_E* code (e.g. SPK_ENOTFOUND for a blank leaf). */
typedef int (*spk_mls_sig_key_cb)(void *arg, uint32_t leaf_index, const uint8_t **pub,
                                  size_t *pub_len);

/* Decrypts and verifies a PrivateMessage; on success out receives the AuthenticatedContent
 * (wire_format private, sender = member at the decrypted leaf index) and the ratchet key is
 * consumed. On failure st is unchanged and out is zeroed. */
int spk_mls_private_message_unprotect(const spk_mls_private_message_t *pm, const uint8_t *gc,
                                      size_t gc_len, spk_mls_secret_tree_t *st,
                                      const uint8_t sender_data_secret[SPK_MLS_HASH_LEN],
                                      spk_mls_sig_key_cb sig_key, void *arg,
                                      spk_mls_auth_content_t *out);

/* The first half of unprotect: decrypts and verifies without consuming the ratchet key
 * (st is unchanged; SPK_EMLSSIG for a bad signature). *generation receives the generation to
 * pass to spk_mls_private_message_consume once the content has been handled. */
int spk_mls_private_message_open(const spk_mls_private_message_t *pm, const uint8_t *gc,
                                 size_t gc_len, spk_mls_secret_tree_t *st,
                                 const uint8_t sender_data_secret[SPK_MLS_HASH_LEN],
                                 spk_mls_sig_key_cb sig_key, void *arg, spk_mls_auth_content_t *out,
                                 uint32_t *generation);
/* Deletes the ratchet key of an opened message (§9.2). */
int spk_mls_private_message_consume(spk_mls_secret_tree_t *st, const spk_mls_auth_content_t *ac,
                                    uint32_t generation);

#endif
