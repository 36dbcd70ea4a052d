/* Private helpers shared by token.c (JWS core) and token_file.c (key files). */
#ifndef SPK_TOKEN_PRIV_H
#define SPK_TOKEN_PRIV_H

#include <stdbool.h>
#include <stddef.h>

/* An issuer or key id usable in the keyring and in key files: 1..SPK_TOKEN_STR-1 bytes,
 * no whitespace, no control characters. */
bool spk_token_name_ok(const char *s);

/* Splits a config line "<a> <b> <c>" in place into exactly three fields separated by spaces
 * or tabs; leading/trailing blanks and one trailing "\n" or "\r\n" are allowed.
 * Returns 0 or SPK_ECONFIG. */
int spk_token_split3(char *line, char *fields[3]);

#endif
