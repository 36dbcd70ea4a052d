/* libFuzzer target: KeyPackage validation as the delivery service does it on
 * mls.key_packages.upload (signaling/src/h_mls.c): spk_mls_key_package_check at a fixed time,
 * the KeyPackageRef it is stored under, the lifetime that bounds how long it is kept and handed
 * out, and the credential identity held to the uploading
 * device ("spk1\n<iss>\n<sub>\n<device>", ds_identity_parse / ds_identity).
 *
 * Input: the bytes of an MLSMessage(KeyPackage). Oracles (abort on violation):
 *   - a KeyPackage that checks has a ref, an identity of at most SPK_MLS_MAX_IDENTITY bytes,
 *     a lifetime that contains FUZZ_NOW, and checks again without the lifetime (now = 0) with
 *     the same identity;
 *   - a failed check returns no identity; checking twice gives the same result;
 *   - an identity the service parses forms again into exactly the same bytes (so no two
 *     devices share a credential, and no credential names two devices).
 * Seeds: tests/fuzz/key_package_seeds.mjs (the browser's library and hand-built ones with one
 * fault each, lifetimes around FUZZ_NOW). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat_int.h"
#include "spk/mls.h"

#define FUZZ_NOW 1796600000u /* keep equal to FUZZ_NOW in key_package_seeds.mjs */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "key_package oracle violated: %s\n", what);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    spk_mls_buf_t id = {0}, id0 = {0};
    uint8_t ref[SPK_MLS_REF_LEN];
    int rc = spk_mls_key_package_check(data, size, FUZZ_NOW, &id);
    int rr = spk_mls_key_package_ref(data, size, ref);
    uint64_t not_before = 1, not_after = 1;
    int rl = spk_mls_key_package_lifetime(data, size, &not_before, &not_after);
    check(rl == 0 || (not_before == 0 && not_after == 0), "lifetime on failure");
    check(spk_mls_key_package_check(data, size, FUZZ_NOW, NULL) == rc, "deterministic");
    if (rc != 0) {
        check(id.p == NULL && id.n == 0, "identity on failure");
        return 0;
    }
    check(rr == 0, "a valid KeyPackage has a ref");
    check(rl == 0 && not_before <= FUZZ_NOW && FUZZ_NOW <= not_after, "lifetime");
    check(id.n <= SPK_MLS_MAX_IDENTITY, "identity size");
    check(spk_mls_key_package_check(data, size, 0, &id0) == 0 && id0.n == id.n &&
              (id.n == 0 || memcmp(id0.p, id.p, id.n) == 0),
          "valid without the lifetime check");
    ds_device_t d;
    if (ds_identity_parse(id.p, id.n, &d) == 0) {
        uint8_t again[DS_IDENTITY_MAX];
        size_t n = ds_identity(d.iss, d.sub, d.device, again, sizeof(again));
        check(n == id.n && memcmp(again, id.p, n) == 0, "identity round trip");
    }
    spk_mls_buf_free(&id);
    spk_mls_buf_free(&id0);
    return 0;
}
