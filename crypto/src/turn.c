/* TURN credentials for coturn's shared-secret scheme: see spk/turn.h. */
#include "spk/turn.h"
#include "spk/error.h"
#include "spk/util.h"

#include <inttypes.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <string.h>

static void clear_outputs(char *username, size_t ucap, char *password, size_t pcap)
{
    if (username != NULL && ucap > 0) {
        username[0] = '\0';
    }
    if (password != NULL && pcap > 0) {
        spk_wipe(password, pcap);
    }
}

static int check_user_id(const char *user_id)
{
    if (user_id == NULL || user_id[0] == '\0') {
        return SPK_EINVAL;
    }
    for (const unsigned char *p = (const unsigned char *)user_id; *p != '\0'; p++) {
        if (*p < 0x20 || *p == 0x7f) {
            return SPK_EINVAL;
        }
    }
    return 0;
}

int spk_turn_credentials(const char *secret, const char *user_id, int64_t now, int64_t ttl,
                         char *username, size_t ucap, char *password, size_t pcap)
{
    clear_outputs(username, ucap, password, pcap);
    if (secret == NULL || secret[0] == '\0' || username == NULL || password == NULL ||
        check_user_id(user_id) != 0 || ttl <= 0 || now < 0 || now > INT64_MAX - ttl) {
        return SPK_EINVAL;
    }
    if (pcap < SPK_TURN_PASSWORD_CAP) {
        return SPK_ERANGE;
    }
    int n = snprintf(username, ucap, "%" PRId64 ":%s", now + ttl, user_id);
    if (n < 0 || (size_t)n >= ucap) {
        clear_outputs(username, ucap, password, pcap);
        return SPK_ERANGE;
    }
    size_t secret_len = strlen(secret);
    if (secret_len > INT32_MAX) {
        clear_outputs(username, ucap, password, pcap);
        return SPK_EINVAL;
    }
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    if (HMAC(EVP_sha1(), secret, (int)secret_len, (const unsigned char *)username, (size_t)n, mac,
             &mac_len) == NULL ||
        mac_len != 20) {
        spk_wipe(mac, sizeof(mac));
        clear_outputs(username, ucap, password, pcap);
        return SPK_ECRYPTO;
    }
    /* 20 bytes -> 28 characters + NUL, which SPK_TURN_PASSWORD_CAP holds. */
    EVP_EncodeBlock((unsigned char *)password, mac, (int)mac_len);
    spk_wipe(mac, sizeof(mac));
    return 0;
}
