#include "spk/rand.h"
#include "spk/error.h"
#include "spk/util.h"

#include <openssl/rand.h>

int spk_random_bytes(void *buf, size_t n)
{
    if (n > 0 && RAND_bytes(buf, (int)n) != 1) {
        return SPK_ECRYPTO;
    }
    return 0;
}

int spk_random_id(char *out, size_t cap, size_t bytes)
{
    uint8_t raw[64];
    if (bytes > sizeof(raw) || spk_b64url_encoded_len(bytes) + 1 > cap) {
        return SPK_EINVAL;
    }
    int rc = spk_random_bytes(raw, bytes);
    if (rc == 0) {
        spk_b64url_encode(out, raw, bytes);
    }
    spk_wipe(raw, sizeof(raw));
    return rc;
}
