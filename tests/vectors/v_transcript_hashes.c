/* transcript-hashes.json: confirmed / interim transcript hashes and the confirmation tag
 * (RFC 9420 §8.2, §6.1). */
#include <string.h>

#include "mls/keysched.h"
#include "mls/msgprot.h"
#include "vectors.h"

/* Decodes the AuthenticatedContent and checks that both serializations re-encode exactly. */
static bool check_reencode(const spk_mls_bytes_t *ac)
{
    spk_mls_reader_t r;
    spk_mls_auth_content_t a;
    spk_mls_writer_t w1, w2;
    memset(&a, 0, sizeof a);
    spk_mls_reader_init(&r, ac->p, ac->n);
    spk_mls_read_u16(&r, &a.wire_format);
    spk_mls_framed_content_read(&r, &a.content);
    spk_mls_auth_data_read(&r, a.content.content_type, &a.signature, &a.confirmation_tag);
    bool ok = vec_ok("decode AuthenticatedContent", spk_mls_reader_done(&r));
    spk_mls_writer_init(&w1);
    spk_mls_writer_init(&w2);
    ok = ok && vec_ok("encode", spk_mls_auth_content_write(&w1, &a)) &&
         vec_eq("AuthenticatedContent", w1.buf, w1.len, ac->p, ac->n) &&
         vec_ok("encode", spk_mls_confirmed_transcript_input_write(&w2, &a)) &&
         vec_eq("ConfirmedTranscriptHashInput", w2.buf, w2.len, ac->p, ac->n - 33);
    spk_mls_writer_free(&w1);
    spk_mls_writer_free(&w2);
    spk_mls_auth_content_free(&a);
    return ok;
}

bool vec_transcript_hashes(const json_t *entry, size_t index)
{
    spk_mls_bytes_t ac = {0}, interim_before = {0};
    uint8_t key[32], confirmed[32], interim[32], tag[32];
    bool ok = vec_hex(entry, "authenticated_content", &ac) &&
              vec_hex(entry, "interim_transcript_hash_before", &interim_before) &&
              vec_hex_fixed(entry, "confirmation_key", key, 32);
    /* AuthenticatedContent = wire_format || FramedContent || V(signature) || V(confirmation_tag);
     * the confirmed input is everything but the trailing V(tag), a 1-byte header and 32 bytes. */
    if (ok && (ac.n < 33 || ac.p[ac.n - 33] != 0x20)) {
        ok = vec_fail("authenticated_content does not end in a 32-byte confirmation tag");
    }
    ok = ok &&
         vec_ok("confirmed", spk_mls_confirmed_transcript_hash(interim_before.p, interim_before.n,
                                                               ac.p, ac.n - 33, confirmed)) &&
         vec_eq_hex("confirmed_transcript_hash_after", confirmed, 32, entry,
                    "confirmed_transcript_hash_after") &&
         vec_ok("confirmation tag", spk_mls_confirmation_tag(key, confirmed, tag)) &&
         vec_eq("confirmation_tag", tag, 32, ac.p + ac.n - 32, 32) &&
         vec_ok("verify tag",
                spk_mls_confirmation_tag_verify(key, confirmed, ac.p + ac.n - 32, 32)) &&
         vec_ok("interim", spk_mls_interim_transcript_hash(confirmed, tag, 32, interim)) &&
         vec_eq_hex("interim_transcript_hash_after", interim, 32, entry,
                    "interim_transcript_hash_after");
    ok = ok && check_reencode(&ac);
    spk_mls_bytes_free(&ac);
    spk_mls_bytes_free(&interim_before);
    return ok;
}
