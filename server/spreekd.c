/* spreekd: the spreekkamer server. Wires configuration, store, issuer key, signaling core and
 * transport onto one libuv loop, and drains on SIGTERM / SIGINT. docs/operations.md. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "spk/config.h"
#include "spk/error.h"
#include "spk/log.h"
#include "spk/rand.h"
#include "spk/relay.h"
#include "spk/relay_link.h"
#include "spk/sig_media.h"
#include "spk/signaling.h"
#include "spk/store.h"
#include "spreekd_bus.h"
#include "spk/token.h"
#include "spk/util.h"
#include "spk/webhook.h"
#include "spk/ws_server.h"

#ifndef SPK_WEB_ROOT_DEFAULT
#define SPK_WEB_ROOT_DEFAULT "web"
#endif
#ifndef SPK_VERSION
#define SPK_VERSION "0.1.0"
#endif

#define DEMO_TOKEN_TTL_S (12 * 3600)

typedef struct {
    spk_config_t cfg;
    uv_loop_t loop;
    uv_signal_t sigterm, sigint;
    spk_store_t *store;
    spk_signer_t signer;
    spk_keyring_t *kr;
    spk_sig_t *sig;
    spk_ws_server_t *ws;
    spk_webhooks_t *webhooks; /* delivery to practice systems */
    uv_async_t durable;       /* the store's sync thread reports flushed commits */
    bool durable_open;
    bool stopping_on_failure;
    atomic_bool store_failed;
    uv_poll_t *store_poll;  /* PostgreSQL: answers to commits not waited for (spk_store_poll) */
    uv_check_t store_check; /* re-watches the socket when the store reconnected */
    bool store_check_on;
    uv_timer_t store_timer; /* while the store is unreachable: reconnects, /healthz */
    bool store_timer_on;
    bool store_up;
    int store_fd;
    unsigned store_gen;
    spk_relays_t *relay;  /* in-process or relay nodes */
    spk_bus_t *bus;       /* events between nodes (redis set) */
    uv_work_t store_work; /* PostgreSQL: opening the store while listening (start_store_wait) */
    bool store_waiting;
    atomic_bool store_wait_stop;
    int store_open_rc;
    int start_rc; /* a start-up failure after the loop began */
} spreekd_t;

static void usage(FILE *out)
{
    fprintf(out,
            "usage: spreekd [--config FILE] [--key value ...]\n"
            "\n"
            "Runs the spreekkamer server. Settings come from the built-in defaults, then the JSON\n"
            "file given with --config, then these flags (docs/operations.md lists them all with\n"
            "their file keys):\n"
            "\n");
    spk_config_usage(out);
    fprintf(out, "\n"
                 "  --config FILE                  JSON config file\n"
                 "  --help                         this text\n"
                 "  --version                      print the version\n");
}

/* Splits "--key=value" or "--key value"; returns the number of argv entries used, 0 on error. */
static int flag_at(int argc, char **argv, int i, char *key, size_t key_cap, const char **value)
{
    const char *a = argv[i];
    if (strncmp(a, "--", 2) != 0 || a[2] == '\0') {
        fprintf(stderr, "spreekd: unexpected argument \"%s\" (see --help)\n", a);
        return 0;
    }
    a += 2;
    const char *eq = strchr(a, '=');
    if (eq) {
        snprintf(key, key_cap, "%.*s", (int)(eq - a), a);
        *value = eq + 1;
        return 1;
    }
    snprintf(key, key_cap, "%s", a);
    if (i + 1 >= argc) {
        fprintf(stderr, "spreekd: --%s needs a value (see --help)\n", key);
        return 0;
    }
    *value = argv[i + 1];
    return 2;
}

/* Defaults, then --config, then the other flags. Returns -1 to exit 2, 1 to exit 0. */
static int parse_args(spk_config_t *cfg, int argc, char **argv)
{
    char why[512] = "";
    char key[64];
    const char *value;
    spk_config_defaults(cfg);
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 1;
        }
        if (strcmp(argv[i], "--version") == 0) {
            printf("spreekd %s\n", SPK_VERSION);
            return 1;
        }
    }
    for (int i = 1; i < argc;) {
        int used = flag_at(argc, argv, i, key, sizeof(key), &value);
        if (used == 0) {
            return -1;
        }
        if (strcmp(key, "config") == 0 && spk_config_load_file(cfg, value, why, sizeof(why))) {
            fprintf(stderr, "spreekd: %s\n", why);
            return -1;
        }
        i += used;
    }
    for (int i = 1; i < argc;) {
        int used = flag_at(argc, argv, i, key, sizeof(key), &value);
        if (strcmp(key, "config") != 0) {
            int rc = spk_config_set(cfg, key, value, why, sizeof(why));
            if (rc != 0) {
                fprintf(stderr, "spreekd: %s (see --help)\n", why);
                return -1;
            }
        }
        i += used;
    }
    if (cfg->web_root[0] == '\0') {
        snprintf(cfg->web_root, sizeof(cfg->web_root), "%s", SPK_WEB_ROOT_DEFAULT);
    }
    if ((cfg->tls_cert[0] == '\0') != (cfg->tls_key[0] == '\0')) {
        fprintf(stderr, "spreekd: --tls-cert and --tls-key go together\n");
        return -1;
    }
    if (cfg->patient_session_s > cfg->token_max_lifetime_s) {
        fprintf(stderr, "spreekd: --patient-session must not exceed --token-max-lifetime\n");
        return -1;
    }
    return 0;
}

/* Loads <data_dir>/issuer.key, or generates and saves it on first start. */
static int load_issuer(spreekd_t *d)
{
    char path[600];
    snprintf(path, sizeof(path), "%s/issuer.key", d->cfg.data_dir);
    struct stat st;
    if (stat(path, &st) == 0) {
        int rc = spk_signer_load(&d->signer, path);
        if (rc != 0) {
            spk_error(0, "cannot load issuer key %s: %s", path, spk_strerror(rc));
            return rc;
        }
        if (strcmp(d->signer.iss, d->cfg.issuer_name) != 0) {
            spk_warn(0, "issuer key %s is for \"%s\", configured issuer name is \"%s\"", path,
                     d->signer.iss, d->cfg.issuer_name);
        }
        spk_info(0, "issuer key loaded: iss=%s kid=%s", d->signer.iss, d->signer.kid);
        return 0;
    }
    int rc = spk_signer_generate(&d->signer, d->cfg.issuer_name);
    if (rc == 0) {
        rc = spk_signer_save(&d->signer, path);
    }
    if (rc != 0) {
        spk_error(0, "cannot create issuer key %s: %s", path, spk_strerror(rc));
        return rc;
    }
    spk_info(0, "issuer key created: %s iss=%s kid=%s", path, d->signer.iss, d->signer.kid);
    return 0;
}

static int build_keyring(spreekd_t *d)
{
    int rc = spk_keyring_new(&d->kr);
    if (rc != 0) {
        return rc;
    }
    rc = spk_keyring_add(d->kr, d->signer.iss, d->signer.kid, d->signer.pub);
    if (rc != 0) {
        spk_error(0, "cannot trust own issuer key: %s", spk_strerror(rc));
        return rc;
    }
    for (int i = 0; i < d->cfg.n_issuers; i++) {
        /* "<iss> <kid> <key> [roles=...]": the keyring takes the first three fields. */
        char line[sizeof(d->cfg.issuers[0])];
        snprintf(line, sizeof(line), "%s", d->cfg.issuers[i]);
        char *roles = strstr(line, " roles=");
        if (roles != NULL) {
            *roles = '\0';
        }
        rc = spk_keyring_add_str(d->kr, line);
        if (rc != 0) {
            spk_error(0, "issuer \"%s\" refused: %s", d->cfg.issuers[i], spk_strerror(rc));
            return rc;
        }
    }
    return 0;
}

/* Embedded default only: a GP demo token and a ready-to-open console link on stdout. */
static void print_demo_link(spreekd_t *d)
{
    spk_token_claims_t c;
    memset(&c, 0, sizeof(c));
    int64_t now = spk_now_s();
    snprintf(c.sub, sizeof(c.sub), "gp-demo");
    snprintf(c.name, sizeof(c.name), "Huisarts Demo");
    c.role = SPK_ROLE_GP;
    snprintf(c.practice, sizeof(c.practice), "praktijk-demo");
    snprintf(c.aud, sizeof(c.aud), "%s", d->cfg.token_audience);
    c.iat = now;
    c.nbf = now;
    c.exp = now + DEMO_TOKEN_TTL_S;
    if (spk_random_id(c.jti, sizeof(c.jti), 12) != 0) {
        return;
    }
    char tok[SPK_TOKEN_MAX_LEN];
    long n = spk_token_sign(&d->signer, &c, tok, sizeof(tok));
    if (n < 0) {
        spk_warn(0, "cannot mint the demo token: %s", spk_strerror((int)n));
        return;
    }
    printf("GP demo console (valid 12 h): %s/console#token=%s\n", d->cfg.public_url, tok);
    fflush(stdout);
    spk_wipe(tok, sizeof(tok));
}

/* Shared placement of consults on relay nodes (spk_relays_set_placement): one record per consult
 * in the store every node shares, so spreekd nodes drive one relay node per consult. */
static int place_consult(void *user, uint64_t consult, int64_t want, int64_t replace,
                         int64_t *chosen)
{
    spreekd_t *d = user;
    char name[SPK_RELAYS_PIN_NAME_LEN];
    spk_relays_pin_name(consult, name);
    return spk_store_mark_claim(d->store, name, want, replace, chosen);
}

/* Connects to the relay nodes (spreek-relay) when relay_nodes is configured. */
static int start_relay_nodes(spreekd_t *d)
{
    spk_relays_remote_config_t rc = {.nodes = d->cfg.relay_nodes, .secret = d->cfg.relay_secret};
    int err = spk_relays_new_remote(&d->loop, &rc, spk_sig_relay_event, d->sig, &d->relay);
    if (err != 0) {
        spk_error(0, "relay_nodes %s: %s (relay_secret must be %d..%d bytes)", d->cfg.relay_nodes,
                  spk_strerror(err), SPK_LINK_SECRET_MIN, SPK_LINK_SECRET_MAX);
        return err;
    }
    if (d->cfg.store[0] != '\0') {
        /* a shared store: other spreekd nodes may drive the same relay nodes */
        spk_relays_set_placement(d->relay, place_consult, d);
    }
    spk_sig_set_relay(d->sig, d->relay);
    spk_info(0, "media on relay nodes %s%s", d->cfg.relay_nodes,
             d->cfg.store[0] != '\0' ? " (placement shared through the store)" : "");
    return 0;
}

/* The fallback's and simulcast's thresholds from the config (percentages to RTCP's /256). */
static void relay_rules(const spk_config_t *c, spk_relay_config_t *rc)
{
    rc->fallback.loss_off = (c->relay_fallback_loss_pct * 256 + 50) / 100;
    rc->fallback.weak_ms = (uint32_t)c->relay_fallback_weak_ms;
    rc->fallback.loss_on = (c->relay_fallback_resume_loss_pct * 256 + 50) / 100;
    rc->fallback.backoff_ms = (uint32_t)c->relay_fallback_backoff_ms;
    rc->fallback.backoff_max_ms = (uint32_t)c->relay_fallback_backoff_max_ms;
    rc->simulcast.loss_down = (c->relay_simulcast_loss_pct * 256 + 50) / 100;
    rc->simulcast.loss_up = (c->relay_simulcast_clean_loss_pct * 256 + 50) / 100;
    rc->simulcast.up_ms = (uint32_t)c->relay_simulcast_up_ms;
    rc->simulcast.up_max_ms = (uint32_t)c->relay_simulcast_up_max_ms;
}

/* Starts the media relay: relay nodes when configured, else the in-process relay when relay
 * addresses are configured. */
static int start_relay(spreekd_t *d)
{
    if (d->cfg.relay_nodes[0] != '\0') {
        return start_relay_nodes(d);
    }
    if (d->cfg.relay_addresses[0] == '\0') {
        spk_info(0, "media relay off (no relay_addresses or relay_nodes configured)");
        return 0;
    }
    spk_relay_config_t rc;
    spk_relay_config_init(&rc);
    static char addrs[sizeof(d->cfg.relay_addresses)];
    snprintf(addrs, sizeof(addrs), "%s", d->cfg.relay_addresses);
    char *save = NULL;
    for (char *a = strtok_r(addrs, ", ", &save);
         a != NULL && rc.n_addresses < SPK_RELAY_MAX_ADDRESSES; a = strtok_r(NULL, ", ", &save)) {
        rc.addresses[rc.n_addresses++] = a;
    }
    rc.workers = (unsigned)d->cfg.relay_workers;
    rc.port_min = (uint16_t)d->cfg.relay_port_min;
    rc.port_max = (uint16_t)d->cfg.relay_port_max;
    rc.ice_lite = d->cfg.relay_ice_lite != 0;
    rc.consent_timeout_ms = (unsigned)d->cfg.relay_consent_timeout_s * 1000u;
    relay_rules(&d->cfg, &rc);
    rc.candidate_allow = d->cfg.relay_candidate_allow;
    rc.candidate_deny = d->cfg.relay_candidate_deny;
    int err = spk_relays_new_local(&d->loop, &rc, spk_sig_relay_event, d->sig, &d->relay);
    if (err != 0) {
        spk_error(0, "cannot start the media relay on %s: %s%s", d->cfg.relay_addresses,
                  spk_strerror(err),
                  err == SPK_EINVAL
                      ? " (relay_fallback_resume_loss_pct above relay_fallback_loss_pct, "
                        "relay_simulcast_clean_loss_pct above relay_simulcast_loss_pct, "
                        "or a maximum wait below the first?)"
                      : "");
        return err;
    }
    spk_sig_set_relay(d->sig, d->relay);
    spk_info(0, "media relay on %s (%s ICE)", d->cfg.relay_addresses,
             rc.ice_lite ? "lite" : "full");
    return 0;
}

static void stop_relay(spreekd_t *d)
{
    if (d->relay != NULL) {
        if (d->sig != NULL) {
            spk_sig_set_relay(d->sig, NULL);
        }
        spk_relays_destroy(d->relay);
        d->relay = NULL;
    }
}

static void on_drained(void *ud);
static void start_store_watch(spreekd_t *d);

/* Sync thread → control thread: more commits are on disk (or the disk failed). */
static void durable_cb(void *ud, bool failed)
{
    spreekd_t *d = ud;
    if (failed) {
        atomic_store(&d->store_failed, true);
    }
    uv_async_send(&d->durable);
}

static void on_durable(uv_async_t *h)
{
    spreekd_t *d = h->data;
    bool failed = atomic_load(&d->store_failed);
    if (d->sig != NULL) {
        spk_sig_durable(d->sig, failed);
    }
    if (failed && d->ws != NULL && !d->stopping_on_failure) {
        d->stopping_on_failure = true;
        spk_error(0, "storage failure: the server stops (nothing more can be acknowledged)");
        spk_ws_server_drain(d->ws, on_drained, d);
    }
}

static int start_group_commit(spreekd_t *d)
{
    if (uv_async_init(&d->loop, &d->durable, on_durable) != 0) {
        return SPK_ENOMEM;
    }
    d->durable.data = d;
    d->durable_open = true;
    spk_store_sync_opts_t o = {.durable_cb = durable_cb,
                               .ud = d,
                               .witness = d->cfg.audit_witness,
                               .witness_interval_ms = d->cfg.audit_witness_interval_ms,
                               .full_verify_interval_s = d->cfg.audit_verify_interval_s};
    int rc = spk_store_sync_start(d->store, &o);
    if (rc != 0) {
        spk_error(0, "cannot start the store's sync thread: %s", spk_strerror(rc));
        return rc;
    }
    start_store_watch(d);
    return 0;
}

/* The poll handle on the store's socket watches a duplicate of it that only spreekd closes,
 * after the handle is closed: libpq closes its own descriptor when the connection drops (and
 * may open the next one under the same number), which libuv must never see under a handle. */
typedef struct {
    uv_poll_t h;
    int fd;
} store_poll_t;

static void free_store_poll(uv_handle_t *h)
{
    store_poll_t *p = (store_poll_t *)h;
    close(p->fd);
    free(p);
}

static void store_unwatch(spreekd_t *d)
{
    if (d->store_poll != NULL) {
        uv_close((uv_handle_t *)d->store_poll, free_store_poll);
        d->store_poll = NULL;
    }
}

static void on_store_readable(uv_poll_t *h, int status, int events)
{
    (void)events;
    spreekd_t *d = h->data;
    if (status < 0) {
        store_unwatch(d); /* watched again from the next loop turn (on_store_check) */
        d->store_fd = -1;
        return;
    }
    spk_store_poll(d->store);
}

/* Watches the store's PostgreSQL socket (the one it has now: a reconnect changes it). */
static void store_watch(spreekd_t *d)
{
    unsigned gen = 0;
    int fd = spk_store_poll_fd(d->store, &gen);
    if (d->store_poll != NULL && fd == d->store_fd && gen == d->store_gen) {
        return;
    }
    store_unwatch(d);
    d->store_fd = fd;
    d->store_gen = gen;
    store_poll_t *p = fd >= 0 ? malloc(sizeof(*p)) : NULL;
    if (p == NULL) {
        return;
    }
    p->fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (p->fd < 0 || uv_poll_init_socket(&d->loop, &p->h, p->fd) != 0) {
        if (p->fd >= 0) {
            close(p->fd);
        }
        free(p);
        return;
    }
    p->h.data = d;
    d->store_poll = &p->h;
    uv_poll_start(&p->h, UV_READABLE, on_store_readable);
}

static void on_store_check(uv_check_t *h)
{
    store_watch(h->data);
}

/* Every STORE_TICK_MS: while the store's connection is lost, moves reconnecting on (never
 * blocks); /healthz follows whether the store is reachable. */
#define STORE_TICK_MS 100
static void on_store_timer(uv_timer_t *h)
{
    spreekd_t *d = h->data;
    bool up = spk_store_available(d->store);
    if (!up) {
        spk_store_poll(d->store);
        up = spk_store_available(d->store);
    }
    if (up != d->store_up) {
        d->store_up = up;
        spk_ws_server_set_store_up(d->ws, up);
        if (up) {
            spk_info(0, "store reachable again: /healthz answers ok");
        } else {
            spk_warn(0, "store unreachable: requests that need it are refused (unavailable)");
        }
    }
}

/* PostgreSQL only (SQLite has no socket). */
static void start_store_watch(spreekd_t *d)
{
    if (spk_store_poll_fd(d->store, NULL) < 0 || uv_check_init(&d->loop, &d->store_check) != 0) {
        return;
    }
    d->store_check.data = d;
    d->store_check_on = true;
    uv_check_start(&d->store_check, on_store_check);
    store_watch(d);
    d->store_up = true;
    if (uv_timer_init(&d->loop, &d->store_timer) == 0) {
        d->store_timer.data = d;
        d->store_timer_on = true;
        uv_timer_start(&d->store_timer, on_store_timer, STORE_TICK_MS, STORE_TICK_MS);
    }
}

static void stop_store_watch(spreekd_t *d)
{
    store_unwatch(d);
    if (d->store_check_on) {
        uv_close((uv_handle_t *)&d->store_check, NULL);
        d->store_check_on = false;
    }
    if (d->store_timer_on) {
        uv_close((uv_handle_t *)&d->store_timer, NULL);
        d->store_timer_on = false;
    }
}

static void stop_group_commit(spreekd_t *d)
{
    stop_store_watch(d);
    if (d->store != NULL) {
        spk_store_sync_stop(d->store); /* flushes and anchors what is committed */
    }
    if (d->durable_open) {
        d->durable_open = false;
        uv_close((uv_handle_t *)&d->durable, NULL);
    }
}

static void on_drained(void *ud)
{
    spreekd_t *d = ud;
    spk_webhooks_stop(d->webhooks);
    d->webhooks = NULL;
    spk_bus_stop(d->bus);
    d->bus = NULL;
    stop_relay(d);
    stop_group_commit(d);
    uv_close((uv_handle_t *)&d->sigterm, NULL);
    uv_close((uv_handle_t *)&d->sigint, NULL);
}

static void on_signal(uv_signal_t *h, int signum)
{
    spreekd_t *d = h->data;
    if (d->store_waiting) {
        spk_info(0, "signal %d: stopping (the store is not open yet)", signum);
        atomic_store(&d->store_wait_stop, true);
        return;
    }
    spk_info(0, "signal %d: draining", signum);
    spk_ws_server_drain(d->ws, on_drained, d);
}

static void on_bus_event(void *ud, const char *msg, size_t len)
{
    spreekd_t *d = ud;
    if (d->sig != NULL) {
        spk_sig_bus_input(d->sig, msg, len);
    }
}

/* Several nodes on one store: events between them go over Redis (spreekd_bus.c). */
static int start_bus(spreekd_t *d, spk_sig_io_t *io)
{
    if (d->cfg.redis[0] == '\0') {
        return 0;
    }
    if (d->cfg.store[0] == '\0') {
        spk_warn(0, "redis is set but the store is SQLite in the data directory: nodes share "
                    "nothing else");
    }
    const spk_bus_config_t bc = {.addr = d->cfg.redis,
                                 .channel = d->cfg.redis_channel,
                                 .user = d->cfg.redis_user,
                                 .password = d->cfg.redis_password};
    int rc = spk_bus_start(&d->bus, &d->loop, &bc, on_bus_event, d);
    if (rc == 0) {
        io->publish_cb = spk_bus_publish;
        io->bus_ud = d->bus;
    }
    return rc;
}

/* Binds; the public URL follows from the bound port. */
static int start_listening(spreekd_t *d)
{
    char why[512] = "";
    int rc = spk_ws_server_new(&d->ws, &d->loop, &d->cfg);
    if (rc == 0) {
        rc = spk_ws_server_listen(d->ws, why, sizeof(why));
    }
    if (rc != 0) {
        spk_error(0, "cannot start: %s", why[0] ? why : spk_strerror(rc));
        return rc;
    }
    d->cfg.listen_port = spk_ws_server_port(d->ws);
    spk_config_finish(&d->cfg); /* public_url from the bound port unless configured */
    return 0;
}

/* Creates the core (the store is open) and starts serving. */
static int start_serving(spreekd_t *d)
{
    spk_sig_io_t io;
    spk_ws_server_io(d->ws, &io);
    int rc = start_bus(d, &io);
    if (rc != 0) {
        return rc;
    }
    rc = spk_sig_new(&d->sig, &d->cfg, d->store, d->kr, &d->signer, &io);
    if (rc != 0) {
        spk_error(0, "cannot create the signaling core: %s", spk_strerror(rc));
        return rc;
    }
    rc = start_group_commit(d);
    if (rc != 0) {
        return rc;
    }
    rc = start_relay(d);
    if (rc != 0) {
        return rc;
    }
    rc = spk_webhooks_start(&d->webhooks, &d->loop, &d->cfg, d->store);
    if (rc != 0) {
        spk_error(0, "cannot start webhook delivery: %s", spk_strerror(rc));
        return rc;
    }
    return spk_ws_server_start(d->ws, d->sig);
}

static int make_data_dir(const spreekd_t *d)
{
    if (mkdir(d->cfg.data_dir, 0700) != 0 && errno != EEXIST) {
        spk_error(0, "cannot create data directory %s: %s", d->cfg.data_dir, strerror(errno));
        return SPK_EIO;
    }
    return 0;
}

static void store_opened_log(const spreekd_t *d, int rc)
{
    if (rc != 0) {
        spk_error(0, "cannot open the store%s in %s: %s",
                  d->cfg.store[0] != '\0' ? " (PostgreSQL)" : "", d->cfg.data_dir,
                  spk_strerror(rc));
    } else {
        spk_info(0, "store: %s", spk_store_backend(d->store));
    }
}

/* Sets *wait when PostgreSQL is not reachable (start_store_wait takes over). */
static int open_store(spreekd_t *d, bool *wait)
{
    int rc = make_data_dir(d);
    if (rc == 0) {
        rc = spk_store_open_db(&d->store, d->cfg.data_dir, d->cfg.store);
        *wait = rc == SPK_EUNAVAILABLE && d->cfg.store[0] != '\0';
        if (*wait) {
            spk_warn(0, "store: not reachable at start: listening meanwhile (/healthz 503), "
                        "trying again");
            return 0;
        }
        store_opened_log(d, rc);
    }
    return rc;
}

static void log_listening(const spreekd_t *d)
{
    const char *ws_scheme = d->cfg.tls_cert[0] ? "wss" : "ws";
    bool v6 = strchr(d->cfg.listen_host, ':') != NULL;
    spk_info(0, "listening %s port=%d ws=%s://%s%s%s:%d%s tls=%s", d->cfg.public_url,
             d->cfg.listen_port, ws_scheme, v6 ? "[" : "", d->cfg.listen_host, v6 ? "]" : "",
             d->cfg.listen_port, SPK_WS_PATH, d->cfg.tls_cert[0] ? "on" : "off");
}

/* ---- PostgreSQL: listening while the store is opened ----
 * A node started while its database cannot be reached does not exit (an orchestrator would
 * restart it in a crash loop): it listens, /livez 200, /healthz 503 store_unavailable, every
 * other request and WebSocket upgrade 503, while a worker thread opens the store
 * (spk_store_open_wait: back-off, fails fast when the database refuses). Then it serves. */

static void store_wait_work(uv_work_t *w)
{
    spreekd_t *d = w->data;
    d->store_open_rc =
        spk_store_open_wait(&d->store, d->cfg.data_dir, d->cfg.store, &d->store_wait_stop);
}

static void stop_loop_at_start(spreekd_t *d, int rc)
{
    d->start_rc = rc;
    uv_close((uv_handle_t *)&d->sigterm, NULL);
    uv_close((uv_handle_t *)&d->sigint, NULL);
    uv_stop(&d->loop);
}

static void store_wait_done(uv_work_t *w, int status)
{
    spreekd_t *d = w->data;
    d->store_waiting = false;
    int rc = status != 0 ? SPK_ESHUTDOWN : d->store_open_rc;
    if (rc == 0 && atomic_load(&d->store_wait_stop)) {
        rc = SPK_ESHUTDOWN;
    }
    if (rc == SPK_ESHUTDOWN) {
        spk_info(0, "stopped before the store could be opened");
        stop_loop_at_start(d, 0);
        return;
    }
    store_opened_log(d, rc);
    if (rc == 0) {
        rc = start_serving(d);
    }
    if (rc != 0) {
        stop_loop_at_start(d, rc);
        return;
    }
    spk_ws_server_set_store_up(d->ws, true);
    spk_info(0, "store open: serving");
    if (d->cfg.n_issuers == 0) {
        print_demo_link(d);
    }
}

static int start_store_wait(spreekd_t *d)
{
    spk_ws_server_set_store_up(d->ws, false);
    d->store_work.data = d;
    int rc = uv_queue_work(&d->loop, &d->store_work, store_wait_work, store_wait_done);
    if (rc != 0) {
        spk_error(0, "cannot open the store: %s", uv_strerror(rc));
        return SPK_EIO;
    }
    d->store_waiting = true;
    return 0;
}

static int run(spreekd_t *d)
{
    bool wait_store = false;
    int rc = open_store(d, &wait_store);
    if (rc == 0) {
        rc = load_issuer(d);
    }
    if (rc == 0) {
        rc = build_keyring(d);
    }
    if (rc == 0) {
        rc = start_listening(d);
    }
    if (rc == 0) {
        rc = wait_store ? start_store_wait(d) : start_serving(d);
    }
    if (rc != 0) {
        return rc;
    }
    uv_signal_init(&d->loop, &d->sigterm);
    uv_signal_init(&d->loop, &d->sigint);
    d->sigterm.data = d->sigint.data = d;
    uv_signal_start(&d->sigterm, on_signal, SIGTERM);
    uv_signal_start(&d->sigint, on_signal, SIGINT);

    log_listening(d);
    if (d->cfg.n_issuers == 0 && !wait_store) {
        print_demo_link(d);
    }
    uv_run(&d->loop, UV_RUN_DEFAULT);
    spk_info(0, "stopped");
    return d->start_rc;
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    spk_relay_tune_malloc(); /* before any allocation of the relay's */
    static spreekd_t d;
    int prc = parse_args(&d.cfg, argc, argv);
    if (prc != 0) {
        return prc > 0 ? 0 : 2;
    }
    spk_log_level_t lvl = SPK_LOG_INFO;
    spk_log_level_parse(d.cfg.log_level, &lvl);
    spk_log_set_level(lvl);

    if (uv_loop_init(&d.loop) != 0) {
        spk_error(0, "cannot initialise the event loop");
        return 1;
    }
    int rc = run(&d);

    spk_webhooks_stop(d.webhooks);
    d.webhooks = NULL;
    spk_bus_stop(d.bus);
    d.bus = NULL;
    stop_relay(&d);
    stop_group_commit(&d);
    spk_ws_server_free(d.ws);
    spk_sig_free(d.sig);
    spk_keyring_free(d.kr);
    spk_signer_wipe(&d.signer);
    if (d.store) {
        spk_store_close(d.store);
    }
    uv_run(&d.loop, UV_RUN_NOWAIT);
    int lc = uv_loop_close(&d.loop);
    if (lc != 0) {
        spk_warn(0, "event loop not empty at exit: %s", uv_strerror(lc));
    }
    return rc == 0 && !d.stopping_on_failure ? 0 : 1;
}
