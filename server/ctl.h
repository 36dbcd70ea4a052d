/* spreekctl internals shared by its command files (spreekctl.c, ctl_integration.c). */
#ifndef SPK_CTL_H
#define SPK_CTL_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "spk/config.h"
#include "spk/store.h"
#include "spk/token.h"

#define CTL_OK 0
#define CTL_FAIL 1
#define CTL_USAGE 2
#define CTL_MAX_OPTS 24
#define CTL_MAX_WORDS 4

typedef struct {
    const char *key;
    const char *val;
} ctl_opt_t;

typedef struct {
    const char *words[CTL_MAX_WORDS];
    int nwords;
    ctl_opt_t opts[CTL_MAX_OPTS];
    int nopts;
    bool help, json;
    const char *config_path;
    const char *data_dir;

    spk_config_t cfg;
    spk_store_t *st;
    char user[SPK_SUB_LEN]; /* the operator: login user (see operator_identity) */
    char operator[48];      /* "uid N login M": the access point's detail */
    const char *practice;   /* the practice the command concerns, for the audit entry */

    /* validated before the store is opened */
    spk_token_claims_t claims;
    int64_t ttl;
    int64_t until;
} ctl_t;

/* Prints "spreekctl: error: <wire code>: ..." and returns CTL_FAIL. */
int fail(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prints the usage error and returns CTL_USAGE. */
int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void iso_time(int64_t unix_s, char *out, size_t cap);
const char *opt(const ctl_t *c, const char *key);
const char *req(const ctl_t *c, const char *key);
const char *opt_or(const ctl_t *c, const char *key, const char *dflt);
bool parse_pos_i64(const char *s, int64_t *out);
/* Commits the command's transaction when rc is 0, else rolls back; returns rc or the commit's. */
int end_txn(ctl_t *c, int rc);
/* Appends the command's audit entry (outcome from result). */
int audit(ctl_t *c, const char *event, int result, const char *patient, const char *object,
          const char *detail_fmt, ...) __attribute__((format(printf, 6, 7)));
/* Prints a JSON value indented and frees it. */
int dump_json(json_t *arr);

/* ctl_integration.c */
int cmd_integration_register(ctl_t *c);
int cmd_integration_list(ctl_t *c);
int cmd_integration_rotate_key(ctl_t *c);
int cmd_integration_revoke(ctl_t *c);
int cmd_integration_webhook(ctl_t *c);

#endif
