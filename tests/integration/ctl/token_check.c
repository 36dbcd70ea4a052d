/* Verifies a token minted by spreekctl against the issuer's config line and prints its claims
 * as "role sub practice acts_for consult ttl". Usage: ctl_token_check "<iss kid pub>" TOKEN */
#include <stdio.h>
#include <string.h>

#include "spk/error.h"
#include "spk/role.h"
#include "spk/token.h"
#include "spk/util.h"

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: ctl_token_check KEYLINE TOKEN\n");
        return 2;
    }
    spk_keyring_t *kr = NULL;
    int rc = spk_keyring_new(&kr);
    if (rc == 0) {
        rc = spk_keyring_add_str(kr, argv[1]);
    }
    spk_token_claims_t cl;
    char why[128] = "";
    if (rc == 0) {
        rc = spk_token_verify(kr, argv[2], strlen(argv[2]), spk_now_s(), 60, &cl, why, sizeof(why));
    }
    spk_keyring_free(kr);
    if (rc != 0) {
        fprintf(stderr, "token rejected: %s (%s)\n", spk_err_wire(rc), why);
        return 1;
    }
    printf("%s %s %s %s %s %lld\n", spk_role_name(cl.role), cl.sub, cl.practice,
           cl.acts_for[0] ? cl.acts_for : "-", cl.consult[0] ? cl.consult : "-",
           (long long)(cl.exp - cl.iat));
    return 0;
}
