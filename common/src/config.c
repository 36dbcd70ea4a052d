/* Configuration: embedded defaults, then a JSON file, then command-line flags.
 *
 * One table describes every setting: its flag name, its JSON key, its type, and its range, so
 * that the file and the flags accept exactly the same values. */
#include "spk/config.h"
#include "spk/error.h"
#include "spk/log.h"
#include "spk/url.h"

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
    const char *arg;  /* --help: the value's placeholder */
    const char *help; /* --help: what it does (default) */
} cfg_opt_t;

#define OFF(f) offsetof(spk_config_t, f)
#define SZ(f) sizeof(((spk_config_t *)0)->f)

static const cfg_opt_t g_opts[] = {
    {"listen", "listen", CFG_LISTEN, 0, 0, 0, 0, "HOST:PORT",
     "address to listen on (127.0.0.1:8480; [::1]:PORT; port 0 picks one)"},
    {"listen-host", "listen_host", CFG_STR, OFF(listen_host), SZ(listen_host), 0, 0, "HOST",
     "host part of --listen"},
    {"listen-port", "listen_port", CFG_INT, OFF(listen_port), 0, 0, 65535, "PORT",
     "port part of --listen"},
    {"data", "data_dir", CFG_STR, OFF(data_dir), SZ(data_dir), 0, 0, "DIR",
     "data directory (./data)"},
    {"files-dir", "files_dir", CFG_STR, OFF(files_dir), SZ(files_dir), 0, 0, "DIR",
     "encrypted chat attachments (<data>/files); shared storage when nodes share the store"},
    {"store", "store", CFG_STR, OFF(store), SZ(store), 0, 0, "URL",
     "PostgreSQL database (postgresql://...); SQLite in the data directory when empty"},
    {"redis", "redis", CFG_STR, OFF(redis), SZ(redis), 0, 0, "HOST:PORT",
     "Redis carrying events between nodes that share the store; empty: one node"},
    {"redis-user", "redis_user", CFG_STR, OFF(redis_user), SZ(redis_user), 0, 0, "NAME",
     "Redis ACL user (default)"},
    {"redis-password", "redis_password", CFG_STR, OFF(redis_password), SZ(redis_password), 0, 0,
     "SECRET", "password spreekd gives Redis (AUTH); empty: none"},
    {"redis-channel", "redis_channel", CFG_STR, OFF(redis_channel), SZ(redis_channel), 0, 0, "NAME",
     "the deployment's Redis channel (spreekkamer)"},
    {"web-root", "web_root", CFG_STR, OFF(web_root), SZ(web_root), 0, 0, "DIR",
     "web client directory (the source tree's web/)"},
    {"public-url", "public_url", CFG_STR, OFF(public_url), SZ(public_url), 0, 0, "URL",
     "base of links handed out (http(s)://<listen>)"},
    {"tls-cert", "tls_cert", CFG_STR, OFF(tls_cert), SZ(tls_cert), 0, 0, "FILE",
     "PEM certificate; with --tls-key serves HTTPS/WSS"},
    {"tls-key", "tls_key", CFG_STR, OFF(tls_key), SZ(tls_key), 0, 0, "FILE", "PEM private key"},
    {"log-level", "log_level", CFG_LOGLVL, OFF(log_level), SZ(log_level), 0, 0, "LEVEL",
     "debug | info | warn | error (info)"},
    {"max-connections", "max_connections", CFG_INT, OFF(max_connections), 0, 1, 1000000, "N",
     "open WebSocket connections (20000)"},
    {"max-message-bytes", "max_message_bytes", CFG_SIZE, OFF(max_message_bytes), 0, 256, 16777216,
     "N", "largest accepted message (65536)"},
    {"send-queue-bytes", "send_queue_bytes", CFG_SIZE, OFF(send_queue_bytes), 0, 256, 1073741824,
     "N", "per-connection send queue cap (1048576)"},
    {"handshake-timeout", "handshake_timeout_s", CFG_INT, OFF(handshake_timeout_s), 0, 1, 3600, "S",
     "TCP accept to WebSocket upgrade (10)"},
    {"auth-timeout", "auth_timeout_s", CFG_INT, OFF(auth_timeout_s), 0, 1, 3600, "S",
     "upgrade to authentication (15)"},
    {"idle-timeout", "idle_timeout_s", CFG_INT, OFF(idle_timeout_s), 0, 2, 65535, "S",
     "no traffic and no pong (60)"},
    {"rate", "rate_per_s", CFG_DOUBLE, OFF(rate_per_s), 0, 0.001, 1e6, "N",
     "messages per second per connection (50)"},
    {"burst", "rate_burst", CFG_DOUBLE, OFF(rate_burst), 0, 1, 1e6, "N",
     "message burst per connection (100)"},
    {"drain-timeout", "drain_timeout_s", CFG_INT, OFF(drain_timeout_s), 0, 0, 3600, "S",
     "SIGTERM to forced close (5)"},
    {"header-timeout", "header_timeout_s", CFG_INT, OFF(header_timeout_s), 0, 1, 3600, "S",
     "TCP accept to a complete request head (5)"},
    {"max-connections-per-address", "max_connections_per_address", CFG_INT,
     OFF(max_connections_per_address), 0, 1, 1000000, "N", "connections from one address (256)"},
    {"max-pending-per-address", "max_pending_per_address", CFG_INT, OFF(max_pending_per_address), 0,
     1, 1000000, "N", "connections from one address without a complete request (32)"},
    {"address-prefix-v4", "address_prefix_v4", CFG_INT, OFF(address_prefix_v4), 0, 8, 32, "N",
     "IPv4 addresses counted together by this prefix (32)"},
    {"address-prefix-v6", "address_prefix_v6", CFG_INT, OFF(address_prefix_v6), 0, 16, 128, "N",
     "IPv6 addresses counted together by this prefix (64)"},
    {"trusted-proxies", "trusted_proxies", CFG_STR, OFF(trusted_proxies), SZ(trusted_proxies), 0, 0,
     "A[,CIDR]", "reverse proxies whose client address header is believed"},
    {"client-address-header", "client_address_header", CFG_STR, OFF(client_address_header),
     SZ(client_address_header), 0, 0, "HEADER",
     "client address from a trusted proxy (X-Forwarded-For)"},
    {"allowed-origins", "allowed_origins", CFG_STR, OFF(allowed_origins), SZ(allowed_origins), 0, 0,
     "ORIGINS", "WebSocket origins allowed (same origin when empty)"},
    {"allow-no-origin", "allow_no_origin", CFG_INT, OFF(allow_no_origin), 0, 0, 1, "0|1",
     "WebSocket upgrades without Origin (non-browser clients) allowed (1)"},
    {"hsts-max-age", "hsts_max_age_s", CFG_I64, OFF(hsts_max_age_s), 0, 0, 63072000, "S",
     "Strict-Transport-Security max-age with TLS (31536000; 0 off)"},
    {"issuer-name", "issuer_name", CFG_STR, OFF(issuer_name), SZ(issuer_name), 0, 0, "NAME",
     "own issuer name (spreekkamer-local)"},
    {"token-leeway", "token_leeway_s", CFG_I64, OFF(token_leeway_s), 0, 0, 3600, "S",
     "clock skew allowed on tokens (60)"},
    {"invite-ttl", "invite_ttl_s", CFG_I64, OFF(invite_ttl_s), 0, 60, 31536000, "S",
     "invite lifetime (86400)"},
    {"patient-session", "patient_session_s", CFG_I64, OFF(patient_session_s), 0, 60, 31536000, "S",
     "patient session token lifetime (43200)"},
    {"relay-address", "relay_addresses", CFG_STR, OFF(relay_addresses), SZ(relay_addresses), 0, 0,
     "A[,B]", "media relay ICE addresses; media is off without"},
    {"relay-addresses", NULL, CFG_STR, OFF(relay_addresses), SZ(relay_addresses), 0, 0, "A[,B]",
     "same as --relay-address"},
    {"relay-port-min", "relay_port_min", CFG_INT, OFF(relay_port_min), 0, 0, 65535, "N",
     "lowest media relay UDP port (0: ephemeral)"},
    {"relay-port-max", "relay_port_max", CFG_INT, OFF(relay_port_max), 0, 0, 65535, "N",
     "highest media relay UDP port (0: ephemeral)"},
    {"relay-workers", "relay_workers", CFG_INT, OFF(relay_workers), 0, 0, 64, "N",
     "media worker threads (0: number of cores)"},
    {"media-e2ee", "media_e2ee", CFG_INT, OFF(media_e2ee), 0, 0, 1, "0|1",
     "consults require end-to-end encrypted media (1)"},
    {"relay-ice-lite", "relay_ice_lite", CFG_INT, OFF(relay_ice_lite), 0, 0, 1, "0|1",
     "ICE-lite for a relay with a public address (0)"},
    {"relay-consent-timeout", "relay_consent_timeout_s", CFG_INT, OFF(relay_consent_timeout_s), 0,
     2, 300, "S", "media endpoint given up after this long without a packet from its peer (30)"},
    {"relay-fallback-loss", "relay_fallback_loss_pct", CFG_INT, OFF(relay_fallback_loss_pct), 0, 1,
     99, "PCT", "video loss above which a subscriber's link is weak (20)"},
    {"relay-fallback-weak", "relay_fallback_weak_ms", CFG_INT, OFF(relay_fallback_weak_ms), 0, 500,
     60000, "MS", "weak this long: the subscriber gets audio only (2500)"},
    {"relay-fallback-resume-loss", "relay_fallback_resume_loss_pct", CFG_INT,
     OFF(relay_fallback_resume_loss_pct), 0, 0, 99, "PCT",
     "audio loss at most this for a try of video again (5)"},
    {"relay-fallback-backoff", "relay_fallback_backoff_ms", CFG_INT, OFF(relay_fallback_backoff_ms),
     0, 1000, 600000, "MS", "first wait before video is tried again (8000)"},
    {"relay-fallback-backoff-max", "relay_fallback_backoff_max_ms", CFG_INT,
     OFF(relay_fallback_backoff_max_ms), 0, 1000, 3600000, "MS",
     "the wait doubles up to this while tries fail (64000)"},
    {"relay-simulcast-loss", "relay_simulcast_loss_pct", CFG_INT, OFF(relay_simulcast_loss_pct), 0,
     1, 99, "PCT", "video loss above which a subscriber steps a simulcast layer down (10)"},
    {"relay-simulcast-clean-loss", "relay_simulcast_clean_loss_pct", CFG_INT,
     OFF(relay_simulcast_clean_loss_pct), 0, 0, 99, "PCT",
     "video loss at most this counts as clean for a try up (2)"},
    {"relay-simulcast-up", "relay_simulcast_up_ms", CFG_INT, OFF(relay_simulcast_up_ms), 0, 500,
     600000, "MS", "clean this long: a try one simulcast layer up (4000)"},
    {"relay-simulcast-up-max", "relay_simulcast_up_max_ms", CFG_INT, OFF(relay_simulcast_up_max_ms),
     0, 500, 3600000, "MS", "that wait doubles up to this while tries fail (32000)"},
    {"relay-candidate-allow", "relay_candidate_allow", CFG_STR, OFF(relay_candidate_allow),
     SZ(relay_candidate_allow), 0, 0, "CIDR[,..]",
     "remote candidate ranges the relay may send to beyond its rules"},
    {"relay-candidate-deny", "relay_candidate_deny", CFG_STR, OFF(relay_candidate_deny),
     SZ(relay_candidate_deny), 0, 0, "CIDR[,..]", "remote candidate ranges it never sends to"},
    {"relay-nodes", "relay_nodes", CFG_STR, OFF(relay_nodes), SZ(relay_nodes), 0, 0,
     "HOST:PORT[,..]", "separate relay nodes (spreek-relay) instead of the in-process relay"},
    {"relay-secret", "relay_secret", CFG_STR, OFF(relay_secret), SZ(relay_secret), 0, 0, "SECRET",
     "shared secret of the relay nodes' link (16..256 bytes)"},
    {"turn-urls", "turn_urls", CFG_STR, OFF(turn_urls), SZ(turn_urls), 0, 0, "URLS",
     "TURN URLs handed to clients, comma-separated"},
    {"turn-secret", "turn_secret", CFG_STR, OFF(turn_secret), SZ(turn_secret), 0, 0, "SECRET",
     "coturn static-auth-secret for TURN credentials"},
    {"turn-ttl", "turn_ttl_s", CFG_I64, OFF(turn_ttl_s), 0, 60, 86400, "S",
     "lifetime of TURN credentials (3600)"},
    {"issuer", NULL, CFG_ISSUER, 0, 0, 0, 0, "\"ISS KID KEY [roles=R,..]\"",
     "trust an external token issuer (repeatable)"},
    {"own-issuer-roles", "own_issuer_roles", CFG_STR, OFF(own_issuer_roles), SZ(own_issuer_roles),
     0, 0, "R[,R]", "roles the own issuer may sign (all; patient with --issuer)"},
    {"token-audience", "token_audience", CFG_STR, OFF(token_audience), SZ(token_audience), 0, 0,
     "AUD", "required token \"aud\" (spreekkamer)"},
    {"token-max-lifetime", "token_max_lifetime_s", CFG_I64, OFF(token_max_lifetime_s), 0, 60,
     31536000, "S", "longest accepted token lifetime exp - iat (86400)"},
    {"max-connections-per-token", "max_connections_per_token", CFG_INT,
     OFF(max_connections_per_token), 0, 1, 1000, "N", "connections one token may hold at once (8)"},
    {"auth-fail-window", "auth_fail_window_s", CFG_INT, OFF(auth_fail_window_s), 0, 1, 86400, "S",
     "window refused sign-ins are counted in, per address (60)"},
    {"auth-fail-log", "auth_fail_log", CFG_INT, OFF(auth_fail_log), 0, 0, 100000, "N",
     "refused sign-ins logged one by one per window (5)"},
    {"auth-fail-throttle", "auth_fail_throttle", CFG_INT, OFF(auth_fail_throttle), 0, 1, 1000000,
     "N", "refused sign-ins after which an address waits (30)"},
    {"chat-retention", "chat_retention_s", CFG_I64, OFF(chat_retention_s), 0, 60, 315360000, "S",
     "keep ciphertext not acknowledged by every device this long (2592000)"},
    {"chat-turn-budget", "chat_turn_budget_ms", CFG_INT, OFF(chat_turn_budget_ms), 0, 0, 60000,
     "MS", "chat.send handled per loop turn before reading waits; 0 = off (10)"},
    {"mls-message-bytes", "mls_message_bytes", CFG_SIZE, OFF(mls_message_bytes), 0, 256, 67108864,
     "N", "largest MLS handshake request (mls.*) of a signed-in connection (4194304)"},
    {"file-max-bytes", "file_max_bytes", CFG_SIZE, OFF(file_max_bytes), 0, 1024, 1073741824, "N",
     "largest encrypted chat attachment (10485760)"},
    {"file-quota-bytes", "file_quota_bytes", CFG_I64, OFF(file_quota_bytes), 0, 1024, 1099511627776,
     "N", "attachments of one conversation together (1073741824)"},
    {"audit-witness", "audit_witness", CFG_STR, OFF(audit_witness), SZ(audit_witness), 0, 0, "DEST",
     "ship the audit head to syslog or a file/FIFO"},
    {"audit-witness-interval", "audit_witness_interval_ms", CFG_INT, OFF(audit_witness_interval_ms),
     0, 1, 3600000, "MS", "at most one witness line per interval (1000)"},
    {"audit-verify-interval", "audit_verify_interval_s", CFG_INT, OFF(audit_verify_interval_s), 0,
     0, 31536000, "S", "full audit chain check interval (3600; 0 never)"},
    {"api-max-body", "api_max_body_bytes", CFG_SIZE, OFF(api_max_body_bytes), 0, 1024, 16777216,
     "N", "largest /api/v1 request body (65536)"},
    {"console-link-ttl", "console_link_ttl_s", CFG_I64, OFF(console_link_ttl_s), 0, 30, 86400, "S",
     "a console link can be opened this long (300)"},
    {"webhook-timeout", "webhook_timeout_ms", CFG_INT, OFF(webhook_timeout_ms), 0, 100, 600000,
     "MS", "one webhook delivery attempt (10000)"},
    {"webhook-queue-max", "webhook_queue_max", CFG_INT, OFF(webhook_queue_max), 0, 1, 10000000, "N",
     "undelivered webhook events kept per integration (10000)"},
    {"webhook-max-age", "webhook_max_age_s", CFG_I64, OFF(webhook_max_age_s), 0, 60, 31536000, "S",
     "undelivered webhook events dropped after (86400)"},
    {"webhook-workers", "webhook_workers", CFG_INT, OFF(webhook_workers), 0, 1, 64, "N",
     "webhook delivery threads (2)"},
    {"webhook-ca-file", "webhook_ca_file", CFG_STR, OFF(webhook_ca_file), SZ(webhook_ca_file), 0, 0,
     "FILE", "CA bundle for HTTPS webhooks (system default)"},
    {NULL, "issuers", CFG_ISSUERS, 0, 0, 0, 0, NULL, NULL},
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
    snprintf(c->redis_channel, sizeof(c->redis_channel), "spreekkamer");
    c->max_connections = 20000;
    c->max_message_bytes = 65536;
    c->send_queue_bytes = 1024 * 1024;
    c->handshake_timeout_s = 10;
    c->auth_timeout_s = 15;
    c->idle_timeout_s = 60;
    c->rate_per_s = 50;
    c->rate_burst = 100;
    c->drain_timeout_s = 5;
    c->max_connections_per_address = 256;
    c->max_pending_per_address = 32;
    c->header_timeout_s = 5;
    c->address_prefix_v4 = 32;
    c->address_prefix_v6 = 64;
    snprintf(c->client_address_header, sizeof(c->client_address_header), "X-Forwarded-For");
    c->allow_no_origin = 1;
    c->hsts_max_age_s = 31536000;
    snprintf(c->issuer_name, sizeof(c->issuer_name), "spreekkamer-local");
    c->token_leeway_s = 60;
    c->invite_ttl_s = 86400;
    c->media_e2ee = 1;
    c->patient_session_s = 43200;
    c->turn_ttl_s = 3600;
    c->relay_consent_timeout_s = 30;
    c->relay_fallback_loss_pct = 20;
    c->relay_fallback_weak_ms = 2500;
    c->relay_fallback_resume_loss_pct = 5;
    c->relay_fallback_backoff_ms = 8000;
    c->relay_fallback_backoff_max_ms = 64000;
    c->relay_simulcast_loss_pct = 10;
    c->relay_simulcast_clean_loss_pct = 2;
    c->relay_simulcast_up_ms = 4000;
    c->relay_simulcast_up_max_ms = 32000;
    snprintf(c->token_audience, sizeof(c->token_audience), "spreekkamer");
    c->token_max_lifetime_s = 86400;
    c->max_connections_per_token = 8;
    c->auth_fail_window_s = 60;
    c->auth_fail_log = 5;
    c->auth_fail_throttle = 30;
    c->audit_witness_interval_ms = 1000;
    c->chat_retention_s = 30 * 86400;
    c->chat_turn_budget_ms = 10;
    c->mls_message_bytes = 4 * 1024 * 1024;
    c->file_max_bytes = 10 * 1024 * 1024;
    c->file_quota_bytes = 1024LL * 1024 * 1024;
    c->audit_verify_interval_s = 3600;
    c->api_max_body_bytes = 65536;
    c->console_link_ttl_s = 300;
    c->webhook_timeout_ms = 10000;
    c->webhook_queue_max = 10000;
    c->webhook_max_age_s = 86400;
    c->webhook_workers = 2;
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
    char host[sizeof(c->listen_host)];
    int port = 0;
    if (spk_hostport_parse(v, host, sizeof(host), &port) != 0) {
        return fail(why, why_len,
                    "%s: expected HOST:PORT or [IPV6]:PORT (port 0..65535), got \"%s\"", name, v);
    }
    memcpy(c->listen_host, host, sizeof(host));
    c->listen_port = port;
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
    const char *roles = strstr(v, " roles=");
    if (fields != 3 && !(fields == 4 && roles != NULL && strchr(roles + 1, ' ') == NULL)) {
        return fail(why, why_len,
                    "%s: expected \"<iss> <kid> <base64url public key> [roles=r1,r2]\", got \"%s\"",
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

void spk_config_usage(FILE *out)
{
    for (size_t i = 0; i < N_OPTS; i++) {
        const cfg_opt_t *o = &g_opts[i];
        if (o->flag == NULL) {
            continue;
        }
        char left[96];
        snprintf(left, sizeof(left), "--%s %s", o->flag, o->arg);
        fprintf(out, "  %-30s %s\n", left, o->help);
    }
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
