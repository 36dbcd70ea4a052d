/* The signaling core the fuzz targets feed (fuzz_signaling.c, fuzz_chat.c): a real store in a
 * fresh directory (tmpfs when there is one: the store syncs every write), a fixed token issuer
 * the keyring trusts, and no rate limit. */
#ifndef SPK_FUZZ_SIG_ENV_H
#define SPK_FUZZ_SIG_ENV_H

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "spk/log.h"
#include "spk/signaling.h"

typedef struct {
    spk_sig_t *sig;
    spk_store_t *store;
    spk_keyring_t *kr;
    spk_signer_t issuer;
} fuzz_sig_env_t;

/* name: a word for the directory; seed: the issuer key's first byte; aborts on failure. */
static inline void fuzz_sig_env_init(fuzz_sig_env_t *e, const char *name, uint8_t seed,
                                     const char *iss, const spk_sig_io_t *io)
{
    char dir[128];
    spk_log_set_level(SPK_LOG_ERROR);
    snprintf(dir, sizeof(dir), "%s/spk-fuzz-%s-XXXXXX",
             access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp", name);
    if (mkdtemp(dir) == NULL || spk_store_open(&e->store, dir) != 0) {
        abort();
    }
    const uint8_t key[32] = {seed};
    spk_signer_from_seed(&e->issuer, key, iss);
    spk_keyring_new(&e->kr);
    spk_keyring_add(e->kr, e->issuer.iss, e->issuer.kid, e->issuer.pub);
    spk_config_t cfg;
    spk_config_defaults(&cfg);
    cfg.rate_per_s = 1e9;
    cfg.rate_burst = 1e9;
    spk_config_finish(&cfg);
    if (spk_sig_new(&e->sig, &cfg, e->store, e->kr, &e->issuer, io) != 0) {
        abort();
    }
}

#endif
