#include "spk/digest.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <string.h>

#include "spk/error.h"

int spk_sha256(uint8_t out[32], const void *a, size_t alen, const void *b, size_t blen)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned int n = 32;
    bool ok = ctx != NULL && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1 &&
              EVP_DigestUpdate(ctx, a, alen) == 1 &&
              (blen == 0 || EVP_DigestUpdate(ctx, b, blen) == 1) &&
              EVP_DigestFinal_ex(ctx, out, &n) == 1 && n == 32;
    EVP_MD_CTX_free(ctx);
    if (!ok) {
        ERR_clear_error();
        memset(out, 0, 32);
        return SPK_ECRYPTO;
    }
    return 0;
}
