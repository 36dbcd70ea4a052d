/* spreekctl: the administrator's command-line tool. Mints tokens, creates consults, invites and
 * delegations, and verifies and exports the audit log. Every command is itself audited with
 * access point "spreekctl", the invoking user ($SUDO_USER, else $USER) and role "admin".
 *
 * Exit codes: 0 success, 1 failure (stderr names the error's wire code), 2 usage error. */
#include <errno.h>
#include <pwd.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "spk/config.h"
#include "spk/error.h"
#include "spk/log.h"
#include "spk/rand.h"
#include "spk/role.h"
#include "spk/store.h"
#include "spk/text.h"
#include "spk/token.h"
#include "spk/util.h"

#include "ctl.h"

#define CTL_DEFAULT_TOKEN_TTL (8 * 3600)

typedef struct {
    const char *group;
    const char *sub; /* NULL for a command without sub-command */
    int (*run)(ctl_t *c);
    int (*check)(ctl_t *c); /* optional: validates option values, returns CTL_USAGE on error */
    const char *allowed;    /* space-separated option names besides the global ones */
    const char *usage;
} ctl_cmd_t;

/* ---- messages ---- */

int fail(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

int fail(int err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "spreekctl: error: %s: ", spk_err_wire(err));
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return CTL_FAIL;
}

int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

int usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "spreekctl: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n(see spreekctl --help)\n");
    va_end(ap);
    return CTL_USAGE;
}

void iso_time(int64_t unix_s, char *out, size_t cap)
{
    time_t t = (time_t)unix_s;
    struct tm tm;
    if (gmtime_r(&t, &tm) == NULL || strftime(out, cap, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0) {
        snprintf(out, cap, "%" PRId64, unix_s);
    }
}

/* ---- options ---- */

const char *opt(const ctl_t *c, const char *key)
{
    for (int i = 0; i < c->nopts; i++) {
        if (strcmp(c->opts[i].key, key) == 0) {
            return c->opts[i].val;
        }
    }
    return NULL;
}

/* A required option (check_opts made sure it is there); "" if it is not. */
const char *req(const ctl_t *c, const char *key)
{
    const char *v = opt(c, key);
    return v != NULL ? v : "";
}

/* An optional option with a default. */
const char *opt_or(const ctl_t *c, const char *key, const char *dflt)
{
    const char *v = opt(c, key);
    return v != NULL ? v : dflt;
}

static bool word_in(const char *list, const char *w)
{
    size_t n = strlen(w);
    for (const char *p = list; p != NULL && *p != '\0';) {
        const char *sp = strchr(p, ' ');
        size_t len = sp != NULL ? (size_t)(sp - p) : strlen(p);
        if (len == n && strncmp(p, w, n) == 0) {
            return true;
        }
        p = sp != NULL ? sp + 1 : NULL;
    }
    return false;
}

/* Parses a positive integer; false on anything else. */
bool parse_pos_i64(const char *s, int64_t *out)
{
    if (s == NULL || *s < '0' || *s > '9') {
        return false;
    }
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || *end != '\0' || v <= 0) {
        return false;
    }
    *out = (int64_t)v;
    return true;
}

static int parse_args(ctl_t *c, int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            c->help = true;
        } else if (strcmp(a, "--json") == 0) {
            c->json = true;
        } else if (strncmp(a, "--", 2) == 0 && a[2] != '\0') {
            if (i + 1 >= argc) {
                return usage_error("option %s needs a value", a);
            }
            const char *key = a + 2;
            const char *val = argv[++i];
            if (strcmp(key, "config") == 0) {
                c->config_path = val;
            } else if (strcmp(key, "data") == 0) {
                c->data_dir = val;
            } else if (strcmp(key, "store") == 0) {
                c->store = val;
            } else if (opt(c, key) != NULL) {
                return usage_error("option --%s given twice", key);
            } else if (c->nopts == CTL_MAX_OPTS) {
                return usage_error("too many options");
            } else {
                c->opts[c->nopts++] = (ctl_opt_t){key, val};
            }
        } else if (a[0] == '-') {
            return usage_error("unknown option %s", a);
        } else if (c->nwords == CTL_MAX_WORDS) {
            return usage_error("unexpected argument %s", a);
        } else {
            c->words[c->nwords++] = a;
        }
    }
    return CTL_OK;
}

/* ---- configuration, store, audit ---- */

static void user_name(uid_t uid, char *out, size_t cap)
{
    struct passwd pw, *res = NULL;
    char buf[1024];
    if (getpwuid_r(uid, &pw, buf, sizeof(buf), &res) == 0 && res != NULL) {
        spk_utf8_copy(out, cap, pw.pw_name);
    } else {
        snprintf(out, cap, "uid%u", (unsigned)uid);
    }
}

/* Who runs spreekctl, from what the caller cannot set freely: the real uid, and the login uid
 * the kernel keeps for the session (/proc/self/loginuid, set at login and not changed by su or
 * sudo); environment variables such as USER or SUDO_USER are not used. The audit entry names
 * the login user when there is one, else the real user. */
static void operator_identity(ctl_t *c)
{
    uid_t uid = getuid();
    char uname[40], lname[40] = "";
    user_name(uid, uname, sizeof(uname));
    unsigned long login = 4294967295UL;
    FILE *f = fopen("/proc/self/loginuid", "re");
    if (f != NULL) {
        if (fscanf(f, "%lu", &login) != 1) {
            login = 4294967295UL;
        }
        fclose(f);
    }
    if (login != 4294967295UL) {
        user_name((uid_t)login, lname, sizeof(lname));
        snprintf(c->operator, sizeof(c->operator), "uid %u login %lu", (unsigned)uid, login);
        snprintf(c->user, sizeof(c->user), "%s", lname);
    } else {
        snprintf(c->operator, sizeof(c->operator), "uid %u", (unsigned)uid);
        snprintf(c->user, sizeof(c->user), "%s", uname);
    }
}

static int load_config(ctl_t *c)
{
    spk_config_defaults(&c->cfg);
    char why[256] = "";
    if (c->config_path != NULL) {
        int rc = spk_config_load_file(&c->cfg, c->config_path, why, sizeof(why));
        if (rc != 0) {
            return fail(rc, "%s: %s", c->config_path, why[0] ? why : spk_strerror(rc));
        }
    }
    if (c->data_dir != NULL) {
        int rc = spk_config_set(&c->cfg, "data", c->data_dir, why, sizeof(why));
        if (rc != 0) {
            return fail(rc, "--data: %s", why[0] ? why : spk_strerror(rc));
        }
    }
    if (c->store != NULL) {
        int rc = spk_config_set(&c->cfg, "store", c->store, why, sizeof(why));
        if (rc != 0) {
            return fail(rc, "--store: %s", why[0] ? why : spk_strerror(rc));
        }
    }
    spk_config_finish(&c->cfg);
    operator_identity(c);
    return CTL_OK;
}

static int open_store(ctl_t *c)
{
    /* SQLite: the database file; PostgreSQL: the audit key next to which the chain was made. */
    char path[600];
    snprintf(path, sizeof(path), "%s/%s", c->cfg.data_dir,
             c->cfg.store[0] != '\0' ? "audit.key" : "spreekkamer.db");
    struct stat sb;
    if (stat(path, &sb) != 0) {
        return fail(SPK_ENOTFOUND, "no store in %s (run spreekctl init first)", c->cfg.data_dir);
    }
    int rc = spk_store_open_db(&c->st, c->cfg.data_dir, c->cfg.store);
    if (rc != 0) {
        return fail(rc, "cannot open the store in %s: %s", c->cfg.data_dir, spk_strerror(rc));
    }
    return CTL_OK;
}

/* The operator's fields of an audit entry. */
static void operator_fields(const ctl_t *c, spk_audit_rec_t *r)
{
    spk_utf8_copy(r->user, sizeof(r->user), c->user);
    snprintf(r->issuer, sizeof(r->issuer), "unix");
    spk_utf8_copy(r->name, sizeof(r->name), c->user);
    snprintf(r->role, sizeof(r->role), "admin");
    snprintf(r->access_point, sizeof(r->access_point), "spreekctl %s", c->operator);
}

/* Ends the transaction a command's change ran in: commits when rc is 0, else rolls back.
 * Returns rc, or the commit's error. */
int end_txn(ctl_t *c, int rc)
{
    if (rc == 0) {
        return spk_store_commit(c->st, NULL);
    }
    spk_store_rollback(c->st);
    return rc;
}

/* Appends this command's audit entry (inside the command's transaction when it has one).
 * `result` is 0 or the SPK_E* code the command ends with. */
int audit(ctl_t *c, const char *event, int result, const char *patient, const char *object,
          const char *detail_fmt, ...) __attribute__((format(printf, 6, 7)));

int audit(ctl_t *c, const char *event, int result, const char *patient, const char *object,
          const char *detail_fmt, ...)
{
    spk_audit_rec_t r;
    memset(&r, 0, sizeof(r));
    r.ts_ms = spk_now_ms();
    snprintf(r.event, sizeof(r.event), "%s", event);
    snprintf(r.outcome, sizeof(r.outcome), "%s", result == 0 ? "success" : spk_err_wire(result));
    operator_fields(c, &r);
    spk_utf8_copy(r.patient, sizeof(r.patient), patient != NULL ? patient : "");
    spk_utf8_copy(r.practice, sizeof(r.practice), c->practice != NULL ? c->practice : "");
    spk_utf8_copy(r.object, sizeof(r.object), object != NULL ? object : "");
    if (detail_fmt != NULL) {
        char detail[1024];
        va_list ap;
        va_start(ap, detail_fmt);
        vsnprintf(detail, sizeof(detail), detail_fmt, ap);
        va_end(ap);
        spk_utf8_copy(r.detail, sizeof(r.detail), detail);
    }
    int rc = spk_store_audit_append(c->st, &r);
    if (rc != 0) {
        fail(rc, "cannot write the audit entry for %s: %s", event, spk_strerror(rc));
    }
    return rc;
}

static int issuer_path(const ctl_t *c, char *out, size_t cap)
{
    int n = snprintf(out, cap, "%s/issuer.key", c->cfg.data_dir);
    return (n < 0 || (size_t)n >= cap) ? SPK_ERANGE : 0;
}

static void print_key_line(const spk_signer_t *s)
{
    char pub[64];
    spk_b64url_encode(pub, s->pub, sizeof(s->pub));
    printf("%s %s %s\n", s->iss, s->kid, pub);
}

/* ---- init, key ---- */

static int mkdir_p(const char *dir)
{
    char buf[512];
    if (snprintf(buf, sizeof(buf), "%s", dir) >= (int)sizeof(buf)) {
        return SPK_ERANGE;
    }
    for (char *p = buf + 1; *p != '\0'; p++) {
        if (*p == '/') {
            *p = '\0';
            if (mkdir(buf, 0700) != 0 && errno != EEXIST) {
                return SPK_EIO;
            }
            *p = '/';
        }
    }
    if (mkdir(buf, 0700) != 0 && errno != EEXIST) {
        return SPK_EIO;
    }
    return 0;
}

static int cmd_init(ctl_t *c)
{
    int rc = mkdir_p(c->cfg.data_dir);
    if (rc != 0) {
        return fail(rc, "cannot create %s: %s", c->cfg.data_dir, strerror(errno));
    }
    rc = spk_store_open_db(&c->st, c->cfg.data_dir, c->cfg.store);
    if (rc != 0) {
        return fail(rc, "cannot open the store in %s: %s", c->cfg.data_dir, spk_strerror(rc));
    }
    char path[600];
    spk_signer_t s;
    bool created = false;
    rc = issuer_path(c, path, sizeof(path));
    struct stat sb;
    if (rc == 0 && stat(path, &sb) != 0) {
        rc = spk_signer_generate(&s, c->cfg.issuer_name);
        if (rc == 0) {
            rc = spk_signer_save(&s, path);
        }
        created = rc == 0;
    } else if (rc == 0) {
        rc = spk_signer_load(&s, path);
    }
    if (rc != 0) {
        audit(c, "admin.init", rc, NULL, "issuer.key", "issuer key unusable");
        return fail(rc, "issuer key %s: %s", path, spk_strerror(rc));
    }
    rc = audit(c, "admin.init", 0, NULL, "issuer.key", "data directory %s; issuer key %s",
               c->cfg.data_dir, created ? "created" : "kept");
    if (rc == 0) {
        printf("data directory %s ready; issuer key %s\n", c->cfg.data_dir,
               created ? "created" : "already present");
        print_key_line(&s);
    }
    spk_signer_wipe(&s);
    return rc == 0 ? CTL_OK : CTL_FAIL;
}

static int load_issuer(ctl_t *c, spk_signer_t *s)
{
    char path[600];
    int rc = issuer_path(c, path, sizeof(path));
    if (rc == 0) {
        rc = spk_signer_load(s, path);
    }
    if (rc != 0) {
        fail(rc, "cannot load the issuer key %s: %s (run spreekctl init)", path, spk_strerror(rc));
    }
    return rc;
}

static int cmd_key_show(ctl_t *c)
{
    spk_signer_t s;
    int rc = load_issuer(c, &s);
    if (rc != 0) {
        audit(c, "key.show", rc, NULL, "issuer.key", NULL);
        return CTL_FAIL;
    }
    rc = audit(c, "key.show", 0, NULL, "issuer.key", "kid %s", s.kid);
    if (rc == 0) {
        print_key_line(&s);
    }
    spk_signer_wipe(&s);
    return rc == 0 ? CTL_OK : CTL_FAIL;
}

/* ---- token mint ---- */

static int copy_claim(char *dst, size_t cap, const char *v, const char *what)
{
    if (v == NULL) {
        dst[0] = '\0';
        return CTL_OK;
    }
    if (strlen(v) >= cap || v[0] == '\0') {
        return usage_error("--%s must be 1..%zu characters", what, cap - 1);
    }
    memcpy(dst, v, strlen(v) + 1);
    return CTL_OK;
}

static int check_token_mint(ctl_t *c)
{
    spk_token_claims_t *cl = &c->claims;
    int64_t *ttl = &c->ttl;
    memset(cl, 0, sizeof(*cl));
    const char *role = req(c, "role");
    cl->role = spk_role_parse(role);
    if (cl->role == SPK_ROLE_NONE) {
        return usage_error("unknown role '%s' (patient, gp, assistant, remote_gp, specialist,"
                           " partner, admin)",
                           role);
    }
    *ttl = CTL_DEFAULT_TOKEN_TTL;
    if (opt(c, "ttl") != NULL && !parse_pos_i64(opt(c, "ttl"), ttl)) {
        return usage_error("--ttl must be a positive number of seconds");
    }
    int rc = copy_claim(cl->sub, sizeof(cl->sub), opt(c, "sub"), "sub");
    if (rc == CTL_OK) {
        rc = copy_claim(cl->name, sizeof(cl->name), opt(c, "name"), "name");
    }
    if (rc == CTL_OK) {
        rc = copy_claim(cl->practice, sizeof(cl->practice), opt(c, "practice"), "practice");
    }
    if (rc == CTL_OK) {
        rc = copy_claim(cl->acts_for, sizeof(cl->acts_for), opt(c, "acts-for"), "acts-for");
    }
    if (rc == CTL_OK) {
        rc = copy_claim(cl->consult, sizeof(cl->consult), opt(c, "consult"), "consult");
    }
    return rc;
}

static int cmd_token_mint(ctl_t *c)
{
    spk_token_claims_t cl = c->claims;
    int64_t ttl = c->ttl;
    spk_signer_t s;
    int rc = load_issuer(c, &s);
    if (rc != 0) {
        audit(c, "token.mint", rc, NULL, cl.sub, "role %s", spk_role_name(cl.role));
        return CTL_FAIL;
    }
    int64_t now = spk_now_s();
    cl.iat = now;
    cl.nbf = now;
    cl.exp = now + ttl;
    c->practice = cl.practice;
    snprintf(cl.aud, sizeof(cl.aud), "%s", c->cfg.token_audience);
    rc = spk_random_id(cl.jti, sizeof(cl.jti), 12);
    char tok[SPK_TOKEN_MAX_LEN];
    long n = rc == 0 ? spk_token_sign(&s, &cl, tok, sizeof(tok)) : rc;
    spk_signer_wipe(&s);
    rc = n < 0 ? (int)n : 0;
    /* A token bound to a consult is a session spreekd only accepts when it is recorded; the
     * audit names it by its record, not by its jti (which would let a copy of the log and the
     * issuer key make the same session again). */
    char sess[SPK_TOKEN_SESSION_NAME_LEN] = "";
    if (rc == 0 && cl.consult[0] != '\0') {
        rc = spk_token_session_name(&cl, sess);
        if (rc == 0) {
            rc = spk_store_mark_set(c->st, sess, cl.exp);
        }
    }
    char exp[32];
    iso_time(cl.exp, exp, sizeof(exp));
    int arc = audit(c, "token.mint", rc, NULL, cl.sub,
                    "role %s; practice %s; acts_for %s; consult %s; %s%s; expires %s",
                    spk_role_name(cl.role), cl.practice, cl.acts_for[0] ? cl.acts_for : "-",
                    cl.consult[0] ? cl.consult : "-", sess[0] ? "" : "jti ",
                    sess[0] ? sess : cl.jti, exp);
    if (rc != 0) {
        return fail(rc, "cannot sign the token: %s", spk_strerror(rc));
    }
    if (arc != 0) {
        return CTL_FAIL;
    }
    printf("%s\n", tok);
    spk_wipe(tok, sizeof(tok));
    return CTL_OK;
}

/* ---- consult, invite ---- */

static int cmd_consult_create(ctl_t *c)
{
    spk_consult_rec_t rec;
    memset(&rec, 0, sizeof(rec));
    const char *title = opt_or(c, "title", "");
    if (strlen(req(c, "practice")) >= sizeof(rec.practice) ||
        strlen(req(c, "gp")) >= sizeof(rec.gp) ||
        strlen(req(c, "patient")) >= sizeof(rec.patient) || strlen(title) >= sizeof(rec.title)) {
        return usage_error("values must be shorter than %d characters", SPK_SUB_LEN);
    }
    strcpy(rec.practice, req(c, "practice"));
    strcpy(rec.gp, req(c, "gp"));
    strcpy(rec.patient, req(c, "patient"));
    strcpy(rec.title, title);
    snprintf(rec.created_by, sizeof(rec.created_by), "%s", c->user);
    rec.state = SPK_CONSULT_OPEN;
    rec.created_at = spk_now_s();
    memcpy(rec.id, "c_", 2);
    c->practice = rec.practice;
    int rc = spk_random_id(rec.id + 2, sizeof(rec.id) - 2, 12);
    if (rc == 0) {
        rc = spk_store_begin(c->st);
    }
    if (rc == 0) {
        rc = spk_store_consult_insert(c->st, &rec);
    }
    if (rc == 0) {
        rc = audit(c, "consult.create", 0, rec.patient, rec.id, "practice %s; gp %s", rec.practice,
                   rec.gp);
    }
    rc = end_txn(c, rc);
    if (rc != 0) {
        audit(c, "consult.create", rc, rec.patient, rec.id, "practice %s; gp %s", rec.practice,
              rec.gp);
        return fail(rc, "cannot create the consult: %s", spk_strerror(rc));
    }
    printf("%s\n", rec.id);
    return CTL_OK;
}

static int check_invite_create(ctl_t *c)
{
    c->ttl = 0;
    if (opt(c, "ttl") != NULL && !parse_pos_i64(opt(c, "ttl"), &c->ttl)) {
        return usage_error("--ttl must be a positive number of seconds");
    }
    return CTL_OK;
}

static int cmd_invite_create(ctl_t *c)
{
    int64_t ttl = c->ttl > 0 ? c->ttl : c->cfg.invite_ttl_s;
    const char *base = opt_or(c, "url", c->cfg.public_url);
    size_t blen = strlen(base);
    while (blen > 0 && base[blen - 1] == '/') {
        blen--;
    }
    const char *id = req(c, "consult");
    spk_consult_rec_t con;
    int rc = spk_store_consult_get(c->st, id, &con);
    const char *patient = rc == 0 ? con.patient : NULL;
    c->practice = rc == 0 ? con.practice : NULL;
    char code[32];
    spk_invite_rec_t inv;
    if (rc == 0) {
        rc = spk_store_begin(c->st);
    }
    if (rc == 0) {
        rc =
            spk_store_invite_create(c->st, id, c->user, spk_now_s(), ttl, code, sizeof(code), &inv);
    }
    char exp[32] = "-";
    if (rc == 0) {
        iso_time(inv.expires_at, exp, sizeof(exp));
        rc = audit(c, "invite.create", 0, patient, id, "invite %s; expires %s", inv.id, exp);
    }
    rc = end_txn(c, rc);
    int arc = 0;
    if (rc != 0) {
        arc = audit(c, "invite.create", rc, patient, id, "expires %s", exp);
    }
    if (rc == SPK_ENOTFOUND) {
        return fail(rc, "no consult %s", id);
    }
    if (rc == SPK_ECONSULTENDED) {
        return fail(rc, "consult %s has ended", id);
    }
    if (rc != 0) {
        return fail(rc, "cannot create the invite: %s", spk_strerror(rc));
    }
    if (arc == 0) {
        printf("%.*s/join#%s\n", (int)blen, base, code);
    }
    spk_wipe(code, sizeof(code));
    return arc == 0 ? CTL_OK : CTL_FAIL;
}

/* ---- delegations ---- */

static int check_delegation_grant(ctl_t *c)
{
    int64_t now = spk_now_s();
    int64_t *until = &c->until;
    const char *u = opt(c, "until");
    const char *h = opt(c, "hours");
    if ((u == NULL) == (h == NULL)) {
        return usage_error("give exactly one of --until UNIXTIME and --hours N");
    }
    int64_t v = 0;
    if (!parse_pos_i64(u != NULL ? u : h, &v)) {
        return usage_error("--%s must be a positive integer", u != NULL ? "until" : "hours");
    }
    if (h != NULL && v > 24 * 366) {
        return usage_error("--hours must be at most a year");
    }
    *until = u != NULL ? v : now + v * 3600;
    if (*until <= now) {
        return usage_error("--until lies in the past");
    }
    return CTL_OK;
}

static int cmd_delegation_grant(ctl_t *c)
{
    int64_t now = spk_now_s(), until = c->until;
    spk_delegation_rec_t d;
    memset(&d, 0, sizeof(d));
    const char *by = opt_or(c, "by", c->user);
    if (strlen(req(c, "practice")) >= sizeof(d.practice) ||
        strlen(req(c, "remote-gp")) >= sizeof(d.grantee) || strlen(by) >= sizeof(d.granted_by)) {
        return usage_error("values must be shorter than %d characters", SPK_SUB_LEN);
    }
    strcpy(d.practice, req(c, "practice"));
    strcpy(d.grantee, req(c, "remote-gp"));
    strcpy(d.granted_by, by);
    d.created_at = now;
    d.valid_from = now;
    d.valid_until = until;
    memcpy(d.id, "d_", 2);
    snprintf(d.grantee_iss, sizeof(d.grantee_iss), "%s",
             opt_or(c, "remote-gp-issuer", c->cfg.issuer_name));
    c->practice = d.practice;
    char exp[32];
    iso_time(until, exp, sizeof(exp));
    int rc = spk_random_id(d.id + 2, sizeof(d.id) - 2, 12);
    if (rc == 0) {
        rc = spk_store_begin(c->st);
    }
    if (rc == 0) {
        rc = spk_store_delegation_insert(c->st, &d);
    }
    if (rc == 0) {
        rc = audit(c, "delegation.grant", 0, NULL, d.id,
                   "practice %s; remote gp %s (%s); granted by %s; until %s", d.practice, d.grantee,
                   d.grantee_iss, d.granted_by, exp);
    }
    rc = end_txn(c, rc);
    if (rc != 0) {
        audit(c, "delegation.grant", rc, NULL, d.id, "practice %s; remote gp %s; until %s",
              d.practice, d.grantee, exp);
        return fail(rc, "cannot grant the delegation: %s", spk_strerror(rc));
    }
    printf("%s\n", d.id);
    return CTL_OK;
}

static int cmd_delegation_revoke(ctl_t *c)
{
    const char *id = req(c, "id");
    spk_delegation_rec_t d;
    int rc = spk_store_delegation_get(c->st, id, &d);
    c->practice = rc == 0 ? d.practice : NULL;
    if (rc == 0) {
        rc = spk_store_begin(c->st);
    }
    if (rc == 0) {
        rc = spk_store_delegation_revoke(c->st, id, spk_now_s());
    }
    if (rc == 0) {
        rc = audit(c, "delegation.revoke", 0, NULL, id, NULL);
    }
    rc = end_txn(c, rc);
    int arc = 0;
    if (rc != 0) {
        arc = audit(c, "delegation.revoke", rc, NULL, id, NULL);
    }
    if (rc == SPK_ENOTFOUND) {
        return fail(rc, "no delegation %s", id);
    }
    if (rc == SPK_ESTATE) {
        return fail(rc, "delegation %s was already revoked", id);
    }
    if (rc != 0) {
        return fail(rc, "cannot revoke: %s", spk_strerror(rc));
    }
    if (arc != 0) {
        return CTL_FAIL;
    }
    printf("revoked %s\n", id);
    return CTL_OK;
}

typedef struct {
    ctl_t *c;
    json_t *arr;
    int64_t now;
    int n;
} list_ctx_t;

static const char *deleg_status(const spk_delegation_rec_t *d, int64_t now)
{
    if (d->revoked_at != 0) {
        return "revoked";
    }
    if (now < d->valid_from) {
        return "pending";
    }
    return now < d->valid_until ? "active" : "expired";
}

static int print_deleg(void *ud, const spk_delegation_rec_t *d)
{
    list_ctx_t *l = ud;
    char from[32], until[32];
    iso_time(d->valid_from, from, sizeof(from));
    iso_time(d->valid_until, until, sizeof(until));
    const char *status = deleg_status(d, l->now);
    l->n++;
    if (l->arr != NULL) {
        json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "id", d->id, "practice",
                              d->practice, "remote_gp", d->grantee, "granted_by", d->granted_by,
                              "valid_from", from, "valid_until", until, "status", status);
        return o != NULL ? json_array_append_new(l->arr, o) : SPK_ENOMEM;
    }
    printf("%s  %-8s  %s  %s .. %s  (granted by %s)\n", d->id, status, d->grantee, from, until,
           d->granted_by);
    return 0;
}

int dump_json(json_t *arr)
{
    int rc = json_dumpf(arr, stdout, JSON_INDENT(2) | JSON_ENSURE_ASCII);
    fputc('\n', stdout);
    json_decref(arr);
    return rc == 0 ? 0 : SPK_EIO;
}

static int cmd_delegation_list(ctl_t *c)
{
    const char *practice = req(c, "practice");
    c->practice = practice;
    int rc = audit(c, "delegation.list", 0, NULL, practice, NULL);
    if (rc != 0) {
        return CTL_FAIL;
    }
    list_ctx_t l = {.c = c, .now = spk_now_s(), .arr = c->json ? json_array() : NULL};
    rc = spk_store_delegation_each(c->st, practice, print_deleg, &l);
    if (rc == 0 && l.arr != NULL) {
        return dump_json(l.arr) == 0 ? CTL_OK : CTL_FAIL;
    }
    json_decref(l.arr);
    if (rc != 0) {
        return fail(rc, "cannot list delegations: %s", spk_strerror(rc));
    }
    if (l.n == 0) {
        printf("no delegations for practice %s\n", practice);
    }
    return CTL_OK;
}

/* ---- audit ---- */

static const struct {
    const char *event;
    const char *nl;
} ctl_events[] = {
    {"auth.login", "aangemeld"},
    {"consult.create", "consult aangemaakt"},
    {"consult.join", "consult binnengekomen (of wachtkamer)"},
    {"consult.read", "consult ingezien"},
    {"consult.list", "lijst van consulten ingezien"},
    {"lobby.list", "wachtkamer ingezien"},
    {"consult.admit", "toegelaten tot het consult"},
    {"consult.deny", "toegang tot het consult geweigerd"},
    {"consult.send_back", "teruggestuurd naar de wachtkamer"},
    {"consult.leave", "consult verlaten"},
    {"consult.end", "consult beëindigd"},
    {"invite.create", "uitnodiging aangemaakt"},
    {"invite.use", "uitnodiging gebruikt"},
    {"delegation.grant", "waarneming (delegatie) toegekend"},
    {"delegation.use", "gehandeld als waarnemer voor de praktijk"},
    {"delegation.revoke", "waarneming (delegatie) ingetrokken"},
    {"delegation.list", "waarnemingen (delegaties) bekeken"},
    {"identity.check", "identiteit gecontroleerd"},
    {"speak_freely.record", "vastgelegd of vrijuit gesproken kan worden"},
    {"consent.record", "toestemming vastgelegd"},
    {"specialist.invite", "specialist uitgenodigd (meekijkconsult)"},
    {"audit.read", "logboek ingezien"},
    {"audit.export", "logboek geëxporteerd"},
    {"audit.verify", "logboek gecontroleerd op wijzigingen"},
    {"audit.reanchor", "logboek opnieuw verankerd na onderzoek"},
    {"token.mint", "toegangsbewijs (token) uitgegeven"},
    {"key.show", "publieke sleutel getoond"},
    {"admin.init", "opslag ingericht"},
    {"access.end", "toegang beëindigd (verlopen, ingetrokken of toestemming teruggetrokken)"},
    {"session.expire", "sessie verlopen"},
    {"auth.summary", "herhaalde mislukte aanmeldingen (samengevat)"},
    {"invite.list", "uitnodigingen bekeken"},
    {"invite.revoke", "uitnodiging ingetrokken"},
    {"chat.create", "chatgesprek aangemaakt"},
    {"chat.list", "lijst van chatgesprekken ingezien"},
    {"chat.open", "chatgesprek geopend (gegevens, geen inhoud)"},
    {"chat.member.add", "deelnemer aan chatgesprek toegevoegd"},
    {"chat.member.remove", "deelnemer uit chatgesprek verwijderd"},
    {"chat.group.create", "versleutelde chatgroep gestart"},
    {"chat.group.change", "apparaten in versleutelde chatgroep gewijzigd"},
    {"chat.sync", "chatgesprekken opgehaald op een apparaat"},
    {"chat.file.upload", "bestand (versleuteld) in chatgesprek geplaatst"},
    {"chat.file.download", "bestand (versleuteld) uit chatgesprek opgehaald"},
    {"console.link", "consolelink voor de huisarts aangemaakt (praktijksysteem)"},
    {"console.link.use", "aangemeld via consolelink van het praktijksysteem"},
    {"integration.register", "praktijksysteem gekoppeld"},
    {"integration.list", "koppelingen met praktijksystemen bekeken"},
    {"integration.rotate_key", "sleutel van praktijksysteem vervangen"},
    {"integration.revoke", "koppeling met praktijksysteem ingetrokken"},
    {"integration.webhook", "webhook van praktijksysteem ingesteld"},
};

static const char *event_nl(const char *event)
{
    for (size_t i = 0; i < sizeof(ctl_events) / sizeof(ctl_events[0]); i++) {
        if (strcmp(ctl_events[i].event, event) == 0) {
            return ctl_events[i].nl;
        }
    }
    return "overige handeling";
}

static const char *outcome_nl(const char *outcome)
{
    if (strcmp(outcome, "success") == 0) {
        return "gelukt";
    }
    if (strcmp(outcome, "forbidden") == 0 || strcmp(outcome, "unauthenticated") == 0) {
        return "geweigerd";
    }
    return "mislukt";
}

static int print_entry(void *ud, const spk_audit_rec_t *r)
{
    list_ctx_t *l = ud;
    char when[32];
    iso_time(r->ts_ms / 1000, when, sizeof(when));
    l->n++;
    if (l->arr != NULL) {
        json_t *o =
            json_pack("{s:I, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s,"
                      " s:s, s:s, s:s}",
                      "seq", (json_int_t)r->seq, "time", when, "user", r->user, "issuer", r->issuer,
                      "name", r->name, "role", r->role, "on_behalf_of", r->on_behalf_of, "event",
                      r->event, "event_nl", event_nl(r->event), "object", r->object, "patient",
                      r->patient, "practice", r->practice, "outcome", r->outcome, "outcome_nl",
                      outcome_nl(r->outcome), "access_point", r->access_point, "detail", r->detail);
        return o != NULL ? json_array_append_new(l->arr, o) : SPK_ENOMEM;
    }
    /* Every field is escaped: one entry is always one line, whatever a field holds. */
    char who[400], behalf[400], object[400], via[200], detail[800];
    spk_text_escape(who, sizeof(who), r->name[0] ? r->name : r->user);
    spk_text_escape(behalf, sizeof(behalf), r->on_behalf_of);
    spk_text_escape(object, sizeof(object), r->object);
    spk_text_escape(via, sizeof(via), r->access_point);
    spk_text_escape(detail, sizeof(detail), r->detail);
    printf("%s  #%" PRId64 "  wie: %s (%s)", when, r->seq, who, r->role[0] ? r->role : "-");
    if (behalf[0] != '\0') {
        printf(", namens %s", behalf);
    }
    printf("  wat: %s [%s]", event_nl(r->event), r->event);
    if (object[0] != '\0') {
        printf("  object: %s", object);
    }
    printf("  uitkomst: %s (%s)  via: %s", outcome_nl(r->outcome), r->outcome, via);
    if (detail[0] != '\0') {
        printf("  details: %s", detail);
    }
    fputc('\n', stdout);
    return 0;
}

static int audit_listing(ctl_t *c, const char *patient)
{
    list_ctx_t l = {.c = c, .arr = c->json ? json_array() : NULL};
    if (!c->json && patient != NULL) {
        printf("Wie heeft mijn gegevens ingezien? / Who accessed my data? Patient %s\n", patient);
    }
    spk_store_audit_filter_t f = {.patient = patient};
    int rc = spk_store_audit_each(c->st, &f, print_entry, &l);
    if (rc == 0 && l.arr != NULL) {
        return dump_json(l.arr) == 0 ? CTL_OK : CTL_FAIL;
    }
    json_decref(l.arr);
    if (rc != 0) {
        return fail(rc, "cannot read the audit log: %s", spk_strerror(rc));
    }
    return CTL_OK;
}

static int cmd_audit_export(ctl_t *c)
{
    const char *patient = req(c, "patient");
    if (audit(c, "audit.export", 0, patient, patient, "format %s", c->json ? "json" : "text") !=
        0) {
        return CTL_FAIL;
    }
    return audit_listing(c, patient);
}

static int cmd_audit_list(ctl_t *c)
{
    if (audit(c, "audit.read", 0, NULL, "audit log", "all entries") != 0) {
        return CTL_FAIL;
    }
    return audit_listing(c, NULL);
}

typedef struct {
    int64_t n;
    int64_t head_seq;
    uint8_t head_hash[32];
} head_ctx_t;

static int head_cb(void *ud, const spk_audit_rec_t *r)
{
    head_ctx_t *h = ud;
    h->n++;
    h->head_seq = r->seq;
    memcpy(h->head_hash, r->hash, sizeof(h->head_hash));
    return 0;
}

static int cmd_audit_verify(ctl_t *c)
{
    int64_t bad = 0, lines = 0;
    char why[256];
    int rc = spk_store_audit_verify(c->st, &bad, why, sizeof(why));
    const char *witness = opt(c, "witness");
    if (rc == 0 && witness != NULL) {
        rc = spk_store_audit_check_witness(c->st, witness, &lines, &bad, why, sizeof(why));
        if (rc == SPK_ENOTFOUND) {
            return fail(rc, "%s", why);
        }
    }
    head_ctx_t h = {0};
    if (rc == 0) {
        rc = spk_store_audit_each(c->st, NULL, head_cb, &h);
    }
    int64_t n = h.n;
    if (rc == SPK_EVERIFY) {
        printf("audit log NOT intact: first bad seq %" PRId64 ": %s\n", bad, why);
        audit(c, "audit.verify", rc, NULL, "audit log", "first bad seq %" PRId64 ": %s", bad, why);
        return fail(rc, "audit log verification failed at seq %" PRId64, bad);
    }
    if (rc != 0) {
        return fail(rc, "cannot verify the audit log: %s", spk_strerror(rc));
    }
    char hex[65];
    spk_hex_encode(hex, h.head_hash, sizeof(h.head_hash));
    printf("audit log intact: %" PRId64 " entries\nhead: seq %" PRId64 " sha256 %s\n", n,
           h.head_seq, hex);
    if (witness != NULL) {
        printf("witness: %" PRId64 " heads in %s are all in the chain\n", lines, witness);
    }
    return audit(c, "audit.verify", 0, NULL, "audit log", "%" PRId64 " entries intact", n) == 0
               ? CTL_OK
               : CTL_FAIL;
}

static int cmd_audit_reanchor(ctl_t *c)
{
    spk_audit_rec_t r;
    memset(&r, 0, sizeof(r));
    const char *reason = req(c, "reason");
    snprintf(r.event, sizeof(r.event), "audit.reanchor");
    snprintf(r.outcome, sizeof(r.outcome), "success");
    operator_fields(c, &r);
    snprintf(r.object, sizeof(r.object), "audit log");
    int64_t bad = 0;
    char why[256] = "";
    spk_store_audit_verify(c->st, &bad, why, sizeof(why));
    snprintf(r.detail, sizeof(r.detail), "reason: %.100s; previous state: %.120s", reason, why);
    int rc = spk_store_audit_reanchor(c->st, &r, &bad, why, sizeof(why));
    if (rc == SPK_EVERIFY) {
        return fail(rc, "the chain itself is broken at seq %" PRId64 " (%s); not re-anchored", bad,
                    why);
    }
    if (rc != 0) {
        return fail(rc, "cannot re-anchor: %s", spk_strerror(rc));
    }
    printf("audit log re-anchored at seq %" PRId64 "\n", r.seq);
    return CTL_OK;
}

/* ---- dispatch ---- */

static const ctl_cmd_t ctl_cmds[] = {
    {"init", NULL, cmd_init, NULL, "",
     "init\n  Creates the data directory, the store and the issuer key"
     " (issuer.key) when missing. Idempotent."},
    {"key", "show", cmd_key_show, NULL, "",
     "key show\n  Prints the issuer's config line"
     " \"<iss> <kid> <base64url public key>\"."},
    {"token", "mint", cmd_token_mint, check_token_mint,
     "role sub name practice acts-for consult ttl",
     "token mint --role R --sub S --name N --practice P [--acts-for GP] [--consult ID]"
     " [--ttl SECONDS]\n  Prints a compact JWS signed with the issuer key (default ttl 8 hours)."},
    {"consult", "create", cmd_consult_create, NULL, "practice gp patient title",
     "consult create --practice P --gp G --patient PSEUDONYM [--title T]\n"
     "  Prints the new consult id."},
    {"invite", "create", cmd_invite_create, check_invite_create, "consult ttl url",
     "invite create --consult ID [--ttl SECONDS] [--url BASE]\n"
     "  Prints the single-use patient link BASE/join#CODE (BASE defaults to public_url)."},
    {"delegation", "grant", cmd_delegation_grant, check_delegation_grant,
     "practice remote-gp remote-gp-issuer until hours by",
     "delegation grant --practice P --remote-gp SUB [--remote-gp-issuer ISS] (--until UNIXTIME |"
     " --hours N) [--by SUB]\n"
     "  Lets a remote GP (of issuer ISS, default the own issuer) act for the practice until the"
     " given time; prints the id."},
    {"delegation", "revoke", cmd_delegation_revoke, NULL, "id", "delegation revoke --id ID"},
    {"delegation", "list", cmd_delegation_list, NULL, "practice",
     "delegation list --practice P [--json]"},
    {"audit", "verify", cmd_audit_verify, NULL, "witness",
     "audit verify [--witness FILE]\n  Walks the hash chain and checks every entry's MAC and the"
     " head anchor; with --witness also that every head in that copy of the witness (a file or"
     " a syslog extract) is still in the chain. Exit 0 when intact, 1 with the first bad seq"
     " otherwise."},
    {"audit", "export", cmd_audit_export, NULL, "patient",
     "audit export --patient PSEUDONYM [--json]\n  Who accessed this patient's data: time, who,"
     " on behalf of, what, object, outcome."},
    {"audit", "list", cmd_audit_list, NULL, "", "audit list [--json]\n  Every audit entry."},
    {"integration", "register", cmd_integration_register, NULL,
     "id name practices public-key webhook",
     "integration register --id ID --practices P1,P2 --public-key B64URL [--name N]"
     " [--webhook URL]\n  Registers a practice system (role service) with its Ed25519 public key;"
     " prints the key id and, with a webhook, its signing secret (shown once)."},
    {"integration", "list", cmd_integration_list, NULL, "",
     "integration list [--json]\n  Integrations, their keys and queued webhook events."},
    {"integration", "rotate-key", cmd_integration_rotate_key, NULL, "id public-key grace",
     "integration rotate-key --id ID --public-key B64URL [--grace SECONDS]\n  Adds the new key;"
     " the old ones keep verifying tokens for the grace period (default none)."},
    {"integration", "revoke", cmd_integration_revoke, NULL, "id",
     "integration revoke --id ID\n  Its tokens are refused from now on (token_revoked)."},
    {"integration", "webhook", cmd_integration_webhook, NULL, "id url",
     "integration webhook --id ID --url (URL | none)\n  Sets the webhook endpoint with a new"
     " signing secret (printed once)."},
    {"audit", "reanchor", cmd_audit_reanchor, NULL, "reason",
     "audit reanchor --reason TEXT\n  After investigating a verify failure: accepts the current"
     " chain (which must link from seq 1) as the new baseline; the reason is logged."},
};

#define N_CMDS (sizeof(ctl_cmds) / sizeof(ctl_cmds[0]))

/* Options every command requires (the rest in `allowed` are optional). */
static const char *required_opts(const ctl_cmd_t *cmd)
{
    if (cmd->run == cmd_token_mint) {
        return "role sub name practice";
    }
    if (cmd->run == cmd_consult_create) {
        return "practice gp patient";
    }
    if (cmd->run == cmd_invite_create) {
        return "consult";
    }
    if (cmd->run == cmd_delegation_grant) {
        return "practice remote-gp";
    }
    if (cmd->run == cmd_delegation_revoke) {
        return "id";
    }
    if (cmd->run == cmd_delegation_list) {
        return "practice";
    }
    if (cmd->run == cmd_audit_export) {
        return "patient";
    }
    if (cmd->run == cmd_audit_reanchor) {
        return "reason";
    }
    if (cmd->run == cmd_integration_register) {
        return "id practices public-key";
    }
    if (cmd->run == cmd_integration_rotate_key) {
        return "id public-key";
    }
    if (cmd->run == cmd_integration_revoke) {
        return "id";
    }
    if (cmd->run == cmd_integration_webhook) {
        return "id url";
    }
    return "";
}

/* Prints a usage text with every line indented; description lines get four more spaces. */
static void print_usage(const char *usage, const char *indent)
{
    for (const char *p = usage; *p != '\0';) {
        const char *nl = strchr(p, '\n');
        int len = nl != NULL ? (int)(nl - p) : (int)strlen(p);
        printf("%s%s%.*s\n", indent, p == usage ? "" : "  ", len, p);
        p = nl != NULL ? nl + 1 : p + len;
    }
}

static void print_help(const char *group)
{
    printf("usage: spreekctl [--config FILE] [--data DIR] [--store URL] <command> [options]"
           " [--help]\n\n"
           "commands:\n");
    for (size_t i = 0; i < N_CMDS; i++) {
        if (group == NULL || strcmp(group, ctl_cmds[i].group) == 0) {
            print_usage(ctl_cmds[i].usage, "  ");
        }
    }
    printf("\nglobal options:\n  --config FILE  JSON configuration (default: embedded defaults)\n"
           "  --data DIR     data directory (default: data_dir from the configuration, ./data)\n"
           "  --store URL    PostgreSQL database (default: store from the configuration; SQLite\n"
           "                 in the data directory when empty)\n"
           "\nexit codes: 0 success, 1 failure (error code on stderr), 2 usage error\n");
}

static int check_opts(const ctl_t *c, const ctl_cmd_t *cmd)
{
    for (int i = 0; i < c->nopts; i++) {
        if (!word_in(cmd->allowed, c->opts[i].key)) {
            return usage_error("unknown option --%s for '%s %s'", c->opts[i].key, cmd->group,
                               cmd->sub != NULL ? cmd->sub : "");
        }
    }
    char buf[128];
    snprintf(buf, sizeof(buf), "%s", required_opts(cmd));
    char *save = NULL;
    for (char *w = strtok_r(buf, " ", &save); w != NULL; w = strtok_r(NULL, " ", &save)) {
        const char *v = opt(c, w);
        if (v == NULL || v[0] == '\0') {
            return usage_error("'%s %s' needs --%s", cmd->group, cmd->sub != NULL ? cmd->sub : "",
                               w);
        }
    }
    bool json_ok = cmd->run == cmd_delegation_list || cmd->run == cmd_audit_export ||
                   cmd->run == cmd_audit_list || cmd->run == cmd_integration_list;
    if (c->json && !json_ok) {
        return usage_error("--json is not available for this command");
    }
    return CTL_OK;
}

static const ctl_cmd_t *find_cmd(const ctl_t *c, bool *group_known)
{
    *group_known = false;
    for (size_t i = 0; i < N_CMDS; i++) {
        const ctl_cmd_t *cmd = &ctl_cmds[i];
        if (c->nwords < 1 || strcmp(c->words[0], cmd->group) != 0) {
            continue;
        }
        *group_known = true;
        int want = cmd->sub != NULL ? 2 : 1;
        if (c->nwords == want && (cmd->sub == NULL || strcmp(c->words[1], cmd->sub) == 0)) {
            return cmd;
        }
    }
    return NULL;
}

int main(int argc, char **argv)
{
    ctl_t c;
    memset(&c, 0, sizeof(c));
    spk_log_set_level(SPK_LOG_ERROR);
    int rc = parse_args(&c, argc, argv);
    if (rc != CTL_OK) {
        return rc;
    }
    bool group_known = false;
    const ctl_cmd_t *cmd = find_cmd(&c, &group_known);
    if (cmd == NULL) {
        if (c.help || c.nwords == 0) {
            print_help(group_known ? c.words[0] : NULL);
            return c.help ? CTL_OK : CTL_USAGE;
        }
        if (group_known) {
            print_help(c.words[0]);
            return CTL_USAGE;
        }
        return usage_error("unknown command '%s'", c.words[0]);
    }
    if (c.help) {
        printf("usage: spreekctl [--config FILE] [--data DIR] [--store URL] ");
        print_usage(cmd->usage, "");
        return CTL_OK;
    }
    rc = check_opts(&c, cmd);
    if (rc == CTL_OK && cmd->check != NULL) {
        rc = cmd->check(&c);
    }
    if (rc == CTL_OK) {
        rc = load_config(&c);
    }
    if (rc == CTL_OK && cmd->run != cmd_init) {
        rc = open_store(&c);
    }
    if (rc == CTL_OK) {
        rc = cmd->run(&c);
    }
    spk_store_close(c.st);
    if (fflush(stdout) != 0 && rc == CTL_OK) {
        rc = CTL_FAIL;
    }
    return rc;
}
