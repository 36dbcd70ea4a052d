/* Configuration: embedded defaults, then a JSON file, then command-line flags.
 *
 * One table describes every setting: its flag name, its JSON key, its type, and its range, so
 * that the file and the flags accept exactly the same values. */
#include "spk/config.h"
#include "spk/error.h"
#include "spk/log.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum {
    CFG_STR,     /* char[] */
    CFG_INT,     /* int */
    CFG_SIZE,    /* size_t */
    CFG_I64,     /* int64_t */
    CFG_DOUBLE,  /* double */
    CFG_LOGLVL,  /* char[] holding a valid log level */
    CFG_LISTEN,  /* "HOST:PORT" or "[V6]:PORT" into listen_host + listen_port */
    CFG_ISSUER,  /* appends one "<iss> <kid> <key>" line to issuers[] */
    CFG_ISSUERS, /* JSON only: array of issuer lines, replaces the list */
} cfg_type_t;

typedef struct {
    const char *flag; /* NULL: not settable by flag */
    const char *key;  /* NULL: not settable in the file */
    cfg_type_t type;
    size_t off;
    size_t size; /* for strings: capacity */
    double min, max;
} cfg_opt_t;

#define OFF(f) offsetof(spk_config_t, f)
#define SZ(f) sizeof(((spk_config_t *)0)->f)

static const cfg_opt_t g_opts[] = {
    {"listen", "listen", CFG_LISTEN, 0, 0, 0, 0},
    {"listen-host", "listen_host", CFG_STR, OFF(listen_host), SZ(listen_host), 0, 0},
    {"listen-port", "listen_port", CFG_INT, OFF(listen_port), 0, 0, 65535},
    {"data", "data_dir", CFG_STR, OFF(data_dir), SZ(data_dir), 0, 0},
    {"web-root", "web_root", CFG_STR, OFF(web_root), SZ(web_root), 0, 0},
    {"public-url", "public_url", CFG_STR, OFF(public_url), SZ(public_url), 0, 0},
    {"tls-cert", "tls_cert", CFG_STR, OFF(tls_cert), SZ(tls_cert), 0, 0},
    {"tls-key", "tls_key", CFG_STR, OFF(tls_key), SZ(tls_key), 0, 0},
    {"log-level", "log_level", CFG_LOGLVL, OFF(log_level), SZ(log_level), 0, 0},
    {"max-connections", "max_connections", CFG_INT, OFF(max_connections), 0, 1, 1000000},
    {"max-message-bytes", "max_message_bytes", CFG_SIZE, OFF(max_message_bytes), 0, 256, 16777216},
    {"send-queue-bytes", "send_queue_bytes", CFG_SIZE, OFF(send_queue_bytes), 0, 256, 1073741824},
    {"handshake-timeout", "handshake_timeout_s", CFG_INT, OFF(handshake_timeout_s), 0, 1, 3600},
    {"auth-timeout", "auth_timeout_s", CFG_INT, OFF(auth_timeout_s), 0, 1, 3600},
    {"idle-timeout", "idle_timeout_s", CFG_INT, OFF(idle_timeout_s), 0, 2, 65535},
    {"rate", "rate_per_s", CFG_DOUBLE, OFF(rate_per_s), 0, 0.001, 1e6},
    {"burst", "rate_burst", CFG_DOUBLE, OFF(rate_burst), 0, 1, 1e6},
    {"drain-timeout", "drain_timeout_s", CFG_INT, OFF(drain_timeout_s), 0, 0, 3600},
    {"issuer-name", "issuer_name", CFG_STR, OFF(issuer_name), SZ(issuer_name), 0, 0},
    {"token-leeway", "token_leeway_s", CFG_I64, OFF(token_leeway_s), 0, 0, 3600},
    {"invite-ttl", "invite_ttl_s", CFG_I64, OFF(invite_ttl_s), 0, 60, 31536000},
    {"patient-session", "patient_session_s", CFG_I64, OFF(patient_session_s), 0, 60, 31536000},
    {"relay-address", "relay_addresses", CFG_STR, OFF(relay_addresses), SZ(relay_addresses), 0, 0},
    {"relay-addresses", NULL, CFG_STR, OFF(relay_addresses), SZ(relay_addresses), 0, 0},
    {"relay-port-min", "relay_port_min", CFG_INT, OFF(relay_port_min), 0, 0, 65535},
    {"relay-port-max", "relay_port_max", CFG_INT, OFF(relay_port_max), 0, 0, 65535},
    {"relay-workers", "relay_workers", CFG_INT, OFF(relay_workers), 0, 0, 64},
    {"relay-ice-lite", "relay_ice_lite", CFG_INT, OFF(relay_ice_lite), 0, 0, 1},
    {"relay-candidate-allow", "relay_candidate_allow", CFG_STR, OFF(relay_candidate_allow),
     SZ(relay_candidate_allow), 0, 0},
    {"relay-candidate-deny", "relay_candidate_deny", CFG_STR, OFF(relay_candidate_deny),
     SZ(relay_candidate_deny), 0, 0},
    {"turn-urls", "turn_urls", CFG_STR, OFF(turn_urls), SZ(turn_urls), 0, 0},
    {"turn-secret", "turn_secret", CFG_STR, OFF(turn_secret), SZ(turn_secret), 0, 0},
    {"turn-ttl", "turn_ttl_s", CFG_I64, OFF(turn_ttl_s), 0, 60, 86400},
    {"issuer", NULL, CFG_ISSUER, 0, 0, 0, 0},
    {NULL, "issuers", CFG_ISSUERS, 0, 0, 0, 0},
};

#define N_OPTS (sizeof(g_opts) / sizeof(g_opts[0]))

static int fail(char *why, size_t why_len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(char *why, size_t why_len, const char *fmt, ...)
{
    if (why && why_len > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, why_len, fmt, ap);
        va_end(ap);
    }
    return SPK_ECONFIG;
}

void spk_config_defaults(spk_config_t *c)
{
    memset(c, 0, sizeof(*c));
    snprintf(c->listen_host, sizeof(c->listen_host), "127.0.0.1");
    c->listen_port = 8480;
    snprintf(c->data_dir, sizeof(c->data_dir), "./data");
    snprintf(c->log_level, sizeof(c->log_level), "info");
    c->max_connections = 20000;
    c->max_message_bytes = 65536;
    c->send_queue_bytes = 1024 * 1024;
    c->handshake_timeout_s = 10;
    c->auth_timeout_s = 15;
    c->idle_timeout_s = 60;
    c->rate_per_s = 50;
    c->rate_burst = 100;
    c->drain_timeout_s = 5;
    snprintf(c->issuer_name, sizeof(c->issuer_name), "spreekkamer-local");
    c->token_leeway_s = 60;
    c->invite_ttl_s = 86400;
    c->patient_session_s = 43200;
    c->turn_ttl_s = 3600;
}

static const char *opt_name(const cfg_opt_t *o, bool from_file)
{
    if (from_file) {
        return o->key;
    }
    return o->flag;
}

static int set_string(char *dst, size_t cap, const char *name, const char *v, char *why,
                      size_t why_len)
{
    size_t n = strlen(v);
    if (n >= cap) {
        return fail(why, why_len, "%s: value too long (%zu bytes, at most %zu)", name, n, cap - 1);
    }
    memcpy(dst, v, n + 1);
    return 0;
}

/* Parses "HOST:PORT" or "[IPV6]:PORT". */
static int parse_listen(spk_config_t *c, const char *name, const char *v, char *why, size_t why_len)
{
    const char *host = v;
    size_t host_len;
    const char *colon;
    if (v[0] == '[') {
        const char *close = strchr(v, ']');
        if (!close || close[1] != ':') {
            return fail(why, why_len, "%s: expected [IPV6]:PORT, got \"%s\"", name, v);
        }
        host = v + 1;
        host_len = (size_t)(close - host);
        colon = close + 1;
    } else {
        colon = strrchr(v, ':');
        if (!colon || strchr(v, ':') != colon) {
            return fail(why, why_len, "%s: expected HOST:PORT or [IPV6]:PORT, got \"%s\"", name, v);
        }
        host_len = (size_t)(colon - v);
    }
    if (host_len == 0 || host_len >= sizeof(c->listen_host)) {
        return fail(why, why_len, "%s: bad host in \"%s\"", name, v);
    }
    const char *p = colon + 1;
    char *end = NULL;
    errno = 0;
    long port = strtol(p, &end, 10);
    if (*p == '\0' || *end != '\0' || errno != 0 || port < 0 || port > 65535) {
        return fail(why, why_len, "%s: bad port in \"%s\" (0..65535)", name, v);
    }
    memcpy(c->listen_host, host, host_len);
    c->listen_host[host_len] = '\0';
    c->listen_port = (int)port;
    return 0;
}

/* An issuer line has three space-separated fields: "<iss> <kid> <base64url public key>". */
static int check_issuer(const char *name, const char *v, char *why, size_t why_len)
{
    int fields = 0;
    bool in_field = false;
    for (const char *p = v; *p; p++) {
        if (*p == ' ') {
            in_field = false;
        } else if ((unsigned char)*p < 0x21 || (unsigned char)*p > 0x7e) {
            return fail(why, why_len, "%s: control or non-ASCII character in \"%s\"", name, v);
        } else if (!in_field) {
            in_field = true;
            fields++;
        }
    }
    if (fields != 3) {
        return fail(why, why_len, "%s: expected \"<iss> <kid> <base64url public key>\", got \"%s\"",
                    name, v);
    }
    if (strlen(v) >= sizeof(((spk_config_t *)0)->issuers[0])) {
        return fail(why, why_len, "%s: issuer line too long", name);
    }
    return 0;
}

static int append_issuer(spk_config_t *c, const char *name, const char *v, char *why,
                         size_t why_len)
{
    int rc = check_issuer(name, v, why, why_len);
    if (rc != 0) {
        return rc;
    }
    if (c->n_issuers >= SPK_CONFIG_MAX_ISSUERS) {
        return fail(why, why_len, "%s: at most %d issuers", name, SPK_CONFIG_MAX_ISSUERS);
    }
    snprintf(c->issuers[c->n_issuers], sizeof(c->issuers[0]), "%s", v);
    c->n_issuers++;
    return 0;
}

static int check_range(const cfg_opt_t *o, const char *name, double d, char *why, size_t why_len)
{
    if (!(d >= o->min && d <= o->max)) {
        return fail(why, why_len, "%s: %g is out of range (%g..%g)", name, d, o->min, o->max);
    }
    return 0;
}

/* Stores a numeric value that has already been range-checked. */
static int store_number(spk_config_t *c, const cfg_opt_t *o, const char *name, double d,
                        bool integral, char *why, size_t why_len)
{
    if (o->type != CFG_DOUBLE && !integral) {
        return fail(why, why_len, "%s: expected a whole number", name);
    }
    int rc = check_range(o, name, d, why, why_len);
    if (rc != 0) {
        return rc;
    }
    char *base = (char *)c + o->off;
    switch (o->type) {
    case CFG_INT: {
        int v = (int)d;
        memcpy(base, &v, sizeof(v));
        break;
    }
    case CFG_SIZE: {
        size_t v = (size_t)d;
        memcpy(base, &v, sizeof(v));
        break;
    }
    case CFG_I64: {
        int64_t v = (int64_t)d;
        memcpy(base, &v, sizeof(v));
        break;
    }
    default: {
        memcpy(base, &d, sizeof(d));
        break;
    }
    }
    return 0;
}

static bool is_numeric(cfg_type_t t)
{
    return t == CFG_INT || t == CFG_SIZE || t == CFG_I64 || t == CFG_DOUBLE;
}

/* Applies a string value (flags, and string-typed keys of the file). */
static int apply_string(spk_config_t *c, const cfg_opt_t *o, const char *name, const char *v,
                        char *why, size_t why_len)
{
    switch (o->type) {
    case CFG_STR:
        return set_string((char *)c + o->off, o->size, name, v, why, why_len);
    case CFG_LOGLVL: {
        spk_log_level_t lvl;
        if (spk_log_level_parse(v, &lvl) != 0) {
            return fail(why, why_len, "%s: expected debug, info, warn or error, got \"%s\"", name,
                        v);
        }
        return set_string((char *)c + o->off, o->size, name, v, why, why_len);
    }
    case CFG_LISTEN:
        return parse_listen(c, name, v, why, why_len);
    case CFG_ISSUER:
        return append_issuer(c, name, v, why, why_len);
    default:
        break;
    }
    /* numbers given as text (flags) */
    char *end = NULL;
    errno = 0;
    double d = strtod(v, &end);
    if (*v == '\0' || *end != '\0' || errno != 0 || !isfinite(d)) {
        return fail(why, why_len, "%s: expected a number, got \"%s\"", name, v);
    }
    bool integral = strspn(v, "0123456789-+") == strlen(v);
    return store_number(c, o, name, d, integral, why, why_len);
}

int spk_config_set(spk_config_t *c, const char *key, const char *value, char *why, size_t why_len)
{
    if (!c || !key || !value) {
        return SPK_EINVAL;
    }
    for (size_t i = 0; i < N_OPTS; i++) {
        const cfg_opt_t *o = &g_opts[i];
        if (o->flag && strcmp(o->flag, key) == 0) {
            return apply_string(c, o, o->flag, value, why, why_len);
        }
    }
    fail(why, why_len, "unknown option --%s", key);
    return SPK_ENOTFOUND;
}

static int apply_issuers(spk_config_t *c, const char *name, json_t *v, char *why, size_t why_len)
{
    if (!json_is_array(v)) {
        return fail(why, why_len, "%s: expected an array of strings", name);
    }
    c->n_issuers = 0;
    size_t i;
    json_t *e;
    json_array_foreach(v, i, e)
    {
        if (!json_is_string(e)) {
            return fail(why, why_len, "%s[%zu]: expected a string", name, i);
        }
        int rc = append_issuer(c, name, json_string_value(e), why, why_len);
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}

static int apply_json(spk_config_t *c, const cfg_opt_t *o, json_t *v, char *why, size_t why_len)
{
    const char *name = opt_name(o, true);
    if (o->type == CFG_ISSUERS) {
        return apply_issuers(c, name, v, why, why_len);
    }
    if (is_numeric(o->type)) {
        if (json_is_integer(v)) {
            return store_number(c, o, name, (double)json_integer_value(v), true, why, why_len);
        }
        if (json_is_real(v)) {
            double d = json_real_value(v);
            return store_number(c, o, name, d, d == floor(d), why, why_len);
        }
        return fail(why, why_len, "%s: expected a number", name);
    }
    if (!json_is_string(v)) {
        return fail(why, why_len, "%s: expected a string", name);
    }
    return apply_string(c, o, name, json_string_value(v), why, why_len);
}

int spk_config_load_file(spk_config_t *c, const char *path, char *why, size_t why_len)
{
    if (!c || !path) {
        return SPK_EINVAL;
    }
    json_error_t jerr;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        return fail(why, why_len, "%s:%d:%d: %s", path, jerr.line, jerr.column, jerr.text);
    }
    int rc = 0;
    if (!json_is_object(root)) {
        rc = fail(why, why_len, "%s: the top level must be an object", path);
        goto out;
    }
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v)
    {
        const cfg_opt_t *found = NULL;
        for (size_t i = 0; i < N_OPTS; i++) {
            if (g_opts[i].key && strcmp(g_opts[i].key, key) == 0) {
                found = &g_opts[i];
                break;
            }
        }
        if (!found) {
            rc = fail(why, why_len, "%s: unknown key \"%s\"", path, key);
            goto out;
        }
        char sub[256];
        rc = apply_json(c, found, v, sub, sizeof(sub));
        if (rc != 0) {
            fail(why, why_len, "%s: %s", path, sub);
            goto out;
        }
    }
out:
    json_decref(root);
    return rc;
}

void spk_config_finish(spk_config_t *c)
{
    if (c->public_url[0] != '\0') {
        size_t n = strlen(c->public_url);
        while (n > 0 && c->public_url[n - 1] == '/') {
            c->public_url[--n] = '\0';
        }
        return;
    }
    const char *scheme = (c->tls_cert[0] && c->tls_key[0]) ? "https" : "http";
    bool v6 = strchr(c->listen_host, ':') != NULL;
    snprintf(c->public_url, sizeof(c->public_url), "%s://%s%s%s:%d", scheme, v6 ? "[" : "",
             c->listen_host, v6 ? "]" : "", c->listen_port);
}
