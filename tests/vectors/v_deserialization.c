/* deserialization.json: the varint length header of opaque<V> (RFC 9420 §2.1.2). */
#include "mls/codec.h"
#include "vectors.h"

bool vec_deserialization(const json_t *entry, size_t index)
{
    spk_mls_bytes_t hdr = {0};
    uint64_t length = 0, got = 0;
    spk_mls_reader_t r;
    spk_mls_writer_t w;
    bool ok = vec_hex(entry, "vlbytes_header", &hdr) && vec_u64(entry, "length", &length);
    if (ok) {
        spk_mls_reader_init(&r, hdr.p, hdr.n);
        ok = vec_ok("read_varint", spk_mls_read_varint(&r, &got)) &&
             vec_ok("trailing bytes", spk_mls_reader_done(&r));
        if (ok && got != length) {
            ok = vec_fail("length: got %llu, expected %llu", (unsigned long long)got,
                          (unsigned long long)length);
        }
    }
    if (ok) {
        spk_mls_writer_init(&w);
        ok = vec_ok("write_varint", spk_mls_write_varint(&w, length)) &&
             vec_eq("encoded header", w.buf, w.len, hdr.p, hdr.n);
        spk_mls_writer_free(&w);
    }
    spk_mls_bytes_free(&hdr);
    return ok;
}
