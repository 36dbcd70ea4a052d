/* spreekd / spreekctl configuration: embedded defaults, then a JSON config file (--config),
 * then command-line flags. docs/operations.md lists every key. */
#ifndef SPK_CONFIG_H
#define SPK_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define SPK_CONFIG_MAX_ISSUERS 16

typedef struct {
    char listen_host[64];     /* "127.0.0.1" */
    int listen_port;          /* 8480 */
    char data_dir[512];       /* "./data" */
    char files_dir[512];      /* chat attachments; "" = <data_dir>/files */
    char store[1024];         /* "" = SQLite in data_dir; else a PostgreSQL libpq connection string
                               * ("postgresql://user@host/db"); the data directory keeps the keys */
    char redis[256];          /* "" = one node; else HOST:PORT of the Redis that carries events
                               * between the nodes sharing `store` */
    char redis_user[129];     /* "" = "default" (Redis ACL user) */
    char redis_password[257]; /* "" = no AUTH */
    char redis_channel[96];   /* the deployment's channel ("spreekkamer") */
    char web_root[512];       /* directory of the web client; "" = built-in default path */
    char public_url[256];     /* base of links handed out; default http://<listen> */
    char tls_cert[512];       /* PEM; TLS (HTTPS/WSS) is on when both are set */
    char tls_key[512];
    char log_level[16]; /* debug | info | warn | error */

    /* limits */
    int max_connections;      /* 20000 */
    size_t max_message_bytes; /* 65536 */
    size_t send_queue_bytes;  /* 1 MiB per connection */
    int handshake_timeout_s;  /* 10: TCP accept to WebSocket upgrade */
    int auth_timeout_s;       /* 15: upgrade to successful auth / invite.redeem */
    int idle_timeout_s;       /* 60: ping after idle/2, close after idle without traffic */
    double rate_per_s;        /* 50 messages/s sustained per connection */
    double rate_burst;        /* 100 */
    int drain_timeout_s;      /* 5: SIGTERM to forced close */

    /* transport hardening (docs/operations.md "Limits", "Behind a reverse proxy") */
    int max_connections_per_address; /* 256: open TCP connections (or proxied WebSockets) */
    int max_pending_per_address;     /* 32: connections without a complete first request */
    int header_timeout_s;            /* 5: accept to complete request head */
    int address_prefix_v4;           /* 32: IPv4 addresses counted together by this prefix */
    int address_prefix_v6;           /* 64: IPv6 addresses counted together by this prefix */
    char trusted_proxies[512];       /* comma-separated addresses or CIDRs; "" = none */
    char client_address_header[64];  /* "X-Forwarded-For": client address from a proxy */
    char allowed_origins[1024];      /* comma-separated; "" = same origin only */
    int allow_no_origin;             /* 1: upgrades without Origin (non-browser) allowed */
    int64_t hsts_max_age_s;          /* 31536000; 0 = no Strict-Transport-Security */

    /* identity */
    char issuer_name[128];     /* own issuer "iss", default "spreekkamer-local" */
    int64_t token_leeway_s;    /* 60 */
    int64_t invite_ttl_s;      /* 86400 */
    int64_t patient_session_s; /* 43200: lifetime of the patient's resume token */
    int n_issuers; /* trusted external issuers, "<iss> <kid> <b64url pubkey> [roles=r1,r2]" */
    char issuers[SPK_CONFIG_MAX_ISSUERS][256];
    char own_issuer_roles[128];    /* roles the own issuer may sign; "" = every role while no
                                    * external issuer is configured, else "patient" */
    char token_audience[128];      /* required "aud" ("spreekkamer") */
    int64_t token_max_lifetime_s;  /* longest accepted exp - iat (86400) */
    int max_connections_per_token; /* connections one token may hold at once (8) */
    int auth_fail_window_s;        /* refused sign-ins are counted per address in windows of (60) */
    int auth_fail_log;             /* ... logged one by one up to this many per window (5) */
    int auth_fail_throttle;        /* ... and from this many on further attempts are refused (30) */

    /* practice system integrations (docs/integration.md) */
    size_t api_max_body_bytes;  /* largest accepted /api/v1 request body (65536) */
    int64_t console_link_ttl_s; /* a console link can be opened this long (300) */
    int webhook_timeout_ms;     /* one delivery attempt, connect to answer (10000) */
    int webhook_queue_max;      /* undelivered events kept per integration (10000) */
    int64_t webhook_max_age_s;  /* an event not delivered within this is dropped (86400) */
    int webhook_workers;        /* delivery threads (2) */
    char webhook_ca_file[512];  /* PEM CA bundle for HTTPS webhooks; "" = system default */
    /* chat (the MLS delivery service) */
    int64_t chat_retention_s; /* ciphertext not acknowledged by every device is kept this long */
    int chat_turn_budget_ms;  /* chat.send handled per loop turn before reading waits (10; 0 off) */
    size_t mls_message_bytes; /* largest mls.* request of a signed-in connection (4 MiB) */
    size_t file_max_bytes;    /* largest encrypted attachment (10485760) */
    int64_t file_quota_bytes; /* attachments of one conversation together (1073741824) */

    /* audit */
    char audit_witness[512];       /* "" | "syslog" | a file or FIFO the audit head goes to */
    int audit_witness_interval_ms; /* at most one witness line per interval (1000) */
    int audit_verify_interval_s;   /* full walk of the chain this often (3600; 0 = never) */

    /* media relay: off while relay_addresses is empty */
    char relay_addresses[256]; /* comma-separated addresses ICE candidates are gathered on */
    int relay_port_min;        /* UDP port range; 0/0 = ephemeral ports */
    int relay_port_max;
    int relay_workers;  /* media worker threads; 0 = number of cores */
    int relay_ice_lite; /* 1: ICE-lite (a relay with a public address), 0: full ICE */
    /* an endpoint whose peer sent nothing for this long is given up (30): a shorter outage of
     * the network is carried over without renegotiation */
    int relay_consent_timeout_s;
    /* The audio-only fallback (docs/protocol.md 5.7): video loss (%) that makes a report weak,
     * how long weak before video stops, audio loss (%) at most for a try, the first and the
     * longest wait before a try */
    int relay_fallback_loss_pct;
    int relay_fallback_weak_ms;
    int relay_fallback_resume_loss_pct;
    int relay_fallback_backoff_ms;
    int relay_fallback_backoff_max_ms;
    /* Simulcast layer choice: video loss (%) above which a window is weak, at most which it is
     * clean, the first and the longest clean wait before a try one layer up */
    int relay_simulcast_loss_pct;
    int relay_simulcast_clean_loss_pct;
    int relay_simulcast_up_ms;
    int relay_simulcast_up_max_ms;
    int media_e2ee; /* 1: consults require end-to-end encrypted media (SFrame) */
    /* remote candidate address ranges (CIDR lists, relay/include/spk/addr_filter.h) */
    char relay_candidate_allow[512]; /* extra ranges the relay may send to */
    char relay_candidate_deny[512];  /* ranges it never sends to */
    /* relay nodes (spreek-relay) instead of the in-process relay: "host:port,..." and the link's
     * shared secret; relay_addresses and the other relay_* settings are then the nodes' own */
    char relay_nodes[1024];
    char relay_secret[257];

    /* TURN (coturn, shared-secret scheme): handed to clients while turn_urls is set */
    char turn_urls[512];   /* comma-separated, "turns:turn.example.nl:443?transport=tcp,..." */
    char turn_secret[256]; /* coturn's static-auth-secret */
    int64_t turn_ttl_s;    /* 3600: lifetime of the credentials handed out */
} spk_config_t;

/* Fills the embedded defaults. */
void spk_config_defaults(spk_config_t *c);
/* Applies a JSON config file; unknown keys and mistyped values are errors (SPK_ECONFIG with
 * `why`). */
int spk_config_load_file(spk_config_t *c, const char *path, char *why, size_t why_len);
/* Applies one "--key value" flag (key without dashes, e.g. "listen", "data", "config" is not
 * handled here). Returns 0, SPK_ENOTFOUND for an unknown key, SPK_ECONFIG for a bad value. */
int spk_config_set(spk_config_t *c, const char *key, const char *value, char *why, size_t why_len);
/* Prints one line per flag ("--key VALUE   what it does (default)"), for --help. */
void spk_config_usage(FILE *out);
/* Fills in derived values (public_url from listen address when empty). */
void spk_config_finish(spk_config_t *c);

#endif
