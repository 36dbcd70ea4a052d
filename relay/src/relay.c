/* Media relay, control side: configuration, workers, command messages and the event queue
 * drained on the control thread's uv loop. */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "relay_int.h"
#include "spk/error.h"
#include "spk/log.h"
#include "spk/sdp.h"
#include "spk/util.h"

/* libsrtp is initialised once per process and never shut down: other code in the process (a
 * load-test peer, a second relay) may hold SRTP sessions that use its crypto kernel. */
static pthread_once_t srtp_once = PTHREAD_ONCE_INIT;
static bool srtp_ok;

/* srtp_init() fails when libsrtp was initialised already (by other code in the process); what
 * counts is that a session can be created. */
static void srtp_init_once(void)
{
    (void)srtp_init();
    uint8_t key[SRTP_MAX_KEY_LEN] = {0};
    srtp_policy_t p;
    memset(&p, 0, sizeof(p));
    srtp_crypto_policy_set_from_profile_for_rtp(&p.rtp, srtp_profile_aead_aes_128_gcm);
    srtp_crypto_policy_set_from_profile_for_rtcp(&p.rtcp, srtp_profile_aead_aes_128_gcm);
    p.ssrc.type = ssrc_any_outbound;
    p.key = key;
    srtp_t s = NULL;
    srtp_ok = srtp_create(&s, &p) == srtp_err_status_ok;
    if (s) {
        srtp_dealloc(s);
    }
}

static int srtp_acquire(void)
{
    pthread_once(&srtp_once, srtp_init_once);
    return srtp_ok ? 0 : SPK_ECRYPTO;
}

#define MMAP_THRESHOLD_BYTES (32 * 1024)

void spk_relay_tune_malloc(void)
{
#ifdef M_MMAP_THRESHOLD
    (void)mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES);
#endif
}

void spk_relay_config_init(spk_relay_config_t *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->remb_bps = SPK_RELAY_REMB_DEFAULT;
    spk_fallback_rule_defaults(&cfg->fallback);
    spk_sim_rule_defaults(&cfg->simulcast);
}

uint64_t spk_relay_candidates_refused(const spk_relay_t *relay)
{
    return relay->cands_refused;
}

const char *spk_relay_fingerprint(const spk_relay_t *relay)
{
    return relay->fingerprint;
}

const char *spk_relay_local_setup(spk_relay_setup_t remote)
{
    return remote == SPK_RELAY_SETUP_PASSIVE ? "active" : "passive";
}

const char *spk_relay_event_name(spk_relay_event_type_t type)
{
    switch (type) {
    case SPK_RELAY_EV_LOCAL_CANDIDATE:
        return "local_candidate";
    case SPK_RELAY_EV_ICE_STATE:
        return "ice_state";
    case SPK_RELAY_EV_CONNECTED:
        return "connected";
    case SPK_RELAY_EV_FAILED:
        return "failed";
    case SPK_RELAY_EV_CLOSED:
        return "closed";
    case SPK_RELAY_EV_STATS:
        return "stats";
    case SPK_RELAY_EV_VIDEO:
        return "video";
    }
    return "unknown";
}

const char *spk_relay_ice_state_name(spk_relay_ice_state_t state)
{
    switch (state) {
    case SPK_RELAY_ICE_NEW:
        return "new";
    case SPK_RELAY_ICE_GATHERING:
        return "gathering";
    case SPK_RELAY_ICE_CHECKING:
        return "checking";
    case SPK_RELAY_ICE_CONNECTED:
        return "connected";
    case SPK_RELAY_ICE_READY:
        return "ready";
    case SPK_RELAY_ICE_FAILED:
        return "failed";
    }
    return "unknown";
}

/* ---- events: workers -> control thread ---- */

/* Events every endpoint sends at most a few of; the others may be dropped when the queue is
 * full (the control thread is not keeping up). */
static bool essential(spk_relay_event_type_t type)
{
    return type == SPK_RELAY_EV_CONNECTED || type == SPK_RELAY_EV_FAILED ||
           type == SPK_RELAY_EV_CLOSED || type == SPK_RELAY_EV_VIDEO;
}

void spk_relay_emit(spk_relay_t *relay, const spk_relay_event_t *ev)
{
    pthread_mutex_lock(&relay->ev_mu);
    bool full = relay->n_events >= SPK_RELAY_EVENT_QUEUE_MAX && !essential(ev->type);
    if (full && relay->dropped_events++ % 1024 == 0) {
        spk_warn(0, "relay: event queue full: %s events dropped (%llu so far)",
                 spk_relay_event_name(ev->type), (unsigned long long)relay->dropped_events);
    }
    pthread_mutex_unlock(&relay->ev_mu);
    if (full) {
        return;
    }
    spk_relay_evnode_t *n = malloc(sizeof(*n));
    if (!n) {
        spk_error(ev->endpoint_id, "relay: out of memory; event %s lost",
                  spk_relay_event_name(ev->type));
        return;
    }
    n->next = NULL;
    n->ev = *ev;
    pthread_mutex_lock(&relay->ev_mu);
    if (relay->destroyed) {
        pthread_mutex_unlock(&relay->ev_mu);
        free(n);
        return;
    }
    if (relay->ev_tail) {
        relay->ev_tail->next = n;
    } else {
        relay->ev_head = n;
    }
    relay->ev_tail = n;
    relay->n_events++;
    pthread_mutex_unlock(&relay->ev_mu);
    uv_async_send(&relay->async);
}

void spk_relay_ep_event(spk_relay_ep_t *ep, spk_relay_event_type_t type)
{
    spk_relay_event_t ev;
    memset(&ev, 0, sizeof(ev));
    ev.type = type;
    ev.consult_id = ep->consult ? ep->consult->id : 0;
    ev.endpoint_id = ep->id;
    ev.ice_state = ep->ice_state;
    ev.srtp_profile = ep->profile;
    ev.stats = ep->st;
    ev.video_on = !ep->fallback.video_off;
    struct timespec ts;
    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) == 0) {
        ev.stats.worker_cpu_ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    }
    spk_relay_emit(ep->w->relay, &ev);
}

void spk_relay_ep_fail(spk_relay_ep_t *ep, int err, const char *reason)
{
    if (ep->failed) {
        return;
    }
    ep->failed = true;
    spk_warn(0, "relay: endpoint %llu: endpoint failed: %s", (unsigned long long)ep->id, reason);
    spk_relay_event_t ev;
    memset(&ev, 0, sizeof(ev));
    ev.type = SPK_RELAY_EV_FAILED;
    ev.consult_id = ep->consult ? ep->consult->id : 0;
    ev.endpoint_id = ep->id;
    ev.err = err;
    ev.ice_state = ep->ice_state;
    snprintf(ev.reason, sizeof(ev.reason), "%s", reason);
    ev.stats = ep->st;
    spk_relay_emit(ep->w->relay, &ev);
}

static void async_cb(uv_async_t *h)
{
    spk_relay_t *relay = h->data;
    pthread_mutex_lock(&relay->ev_mu);
    spk_relay_evnode_t *n = relay->ev_head;
    relay->ev_head = relay->ev_tail = NULL;
    relay->n_events = 0;
    pthread_mutex_unlock(&relay->ev_mu);
    while (n) {
        spk_relay_evnode_t *next = n->next;
        if (!relay->destroyed) {
            relay->cb(relay, &n->ev, relay->user);
        }
        free(n);
        n = next;
    }
}

/* ---- creation and destruction ---- */

static int parse_addresses(spk_relay_t *relay, const spk_relay_config_t *cfg)
{
    if (cfg->n_addresses == 0 || cfg->n_addresses > SPK_RELAY_MAX_ADDRESSES) {
        return SPK_ECONFIG;
    }
    for (size_t i = 0; i < cfg->n_addresses; i++) {
        nice_address_init(&relay->addrs[i]);
        if (!cfg->addresses[i] ||
            !nice_address_set_from_string(&relay->addrs[i], cfg->addresses[i])) {
            spk_error(0, "relay: bad local address '%s'",
                      cfg->addresses[i] ? cfg->addresses[i] : "(null)");
            return SPK_ECONFIG;
        }
    }
    relay->n_addrs = cfg->n_addresses;
    if (cfg->port_min > cfg->port_max) {
        return SPK_ECONFIG;
    }
    char why[128] = "";
    if (spk_addr_filter_init(&relay->cand_filter, cfg->addresses, cfg->n_addresses,
                             cfg->candidate_allow, cfg->candidate_deny, why, sizeof(why)) != 0) {
        spk_error(0, "relay: candidate address ranges: %s", why);
        return SPK_ECONFIG;
    }
    return 0;
}

static unsigned worker_count(const spk_relay_config_t *cfg)
{
    unsigned n = cfg->workers;
    if (n == 0) {
        long c = sysconf(_SC_NPROCESSORS_ONLN);
        n = c > 0 ? (unsigned)c : 1;
    }
    return n > SPK_RELAY_MAX_WORKERS ? SPK_RELAY_MAX_WORKERS : n;
}

static void relay_free_mem(spk_relay_t *relay)
{
    spk_relay_dtls_ctx_free(relay);
    pthread_mutex_destroy(&relay->ev_mu);
    free(relay->workers);
    free(relay);
}

static void async_close_cb(uv_handle_t *h)
{
    relay_free_mem(h->data);
}

static void stop_workers(spk_relay_t *relay)
{
    for (unsigned i = 0; i < relay->n_workers; i++) {
        spk_relay_worker_t *w = &relay->workers[i];
        if (!w->started) {
            continue;
        }
        spk_relay_cmd_t *cmd = calloc(1, sizeof(*cmd));
        if (cmd) {
            cmd->type = SPK_RELAY_CMD_STOP;
            (void)spk_relay_worker_post(w, cmd); /* always queued */
        } else {
            g_main_loop_quit(w->loop);
        }
    }
    for (unsigned i = 0; i < relay->n_workers; i++) {
        spk_relay_worker_t *w = &relay->workers[i];
        if (w->started) {
            pthread_join(w->thread, NULL);
            w->started = false;
        }
        spk_relay_worker_cleanup(w);
    }
}

static int start_workers(spk_relay_t *relay)
{
    relay->workers = calloc(relay->n_workers, sizeof(*relay->workers));
    if (!relay->workers) {
        return SPK_ENOMEM;
    }
    for (unsigned i = 0; i < relay->n_workers; i++) {
        spk_relay_worker_t *w = &relay->workers[i];
        int rc = spk_relay_worker_init(w, relay, i);
        if (rc == 0 && pthread_create(&w->thread, NULL, spk_relay_worker_main, w) != 0) {
            rc = SPK_EIO;
        }
        if (rc != 0) {
            spk_relay_worker_cleanup(w);
            return rc;
        }
        w->started = true;
    }
    return 0;
}

int spk_relay_new(uv_loop_t *loop, const spk_relay_config_t *cfg, spk_relay_event_cb cb, void *user,
                  spk_relay_t **out)
{
    if (!loop || !cfg || !cb || !out || !spk_fallback_rule_ok(&cfg->fallback) ||
        !spk_sim_rule_ok(&cfg->simulcast)) {
        return SPK_EINVAL;
    }
    spk_relay_t *relay = calloc(1, sizeof(*relay));
    if (!relay) {
        return SPK_ENOMEM;
    }
    int rc = srtp_acquire();
    if (rc != 0) {
        free(relay);
        return rc;
    }
    relay->loop = loop;
    relay->control = pthread_self();
    relay->cb = cb;
    relay->user = user;
    relay->cfg = *cfg;
    relay->cfg.candidate_allow = relay->cfg.candidate_deny = NULL; /* not kept */
    relay->consent_ns =
        (uint64_t)(cfg->consent_timeout_ms ? cfg->consent_timeout_ms : 30000) * 1000000u;
    relay->handshake_ns =
        (uint64_t)(cfg->handshake_timeout_ms ? cfg->handshake_timeout_ms : 30000) * 1000000u;
    relay->n_workers = worker_count(cfg);
    pthread_mutex_init(&relay->ev_mu, NULL);
    rc = parse_addresses(relay, cfg);
    if (rc == 0) {
        rc = spk_relay_dtls_ctx_new(relay);
    }
    if (rc == 0 && uv_async_init(loop, &relay->async, async_cb) != 0) {
        rc = SPK_EIO;
    }
    if (rc != 0) {
        relay_free_mem(relay);
        return rc;
    }
    relay->async.data = relay;
    rc = start_workers(relay);
    if (rc != 0) {
        stop_workers(relay);
        relay->destroyed = true;
        uv_close((uv_handle_t *)&relay->async, async_close_cb);
        return rc;
    }
    spk_info(0, "relay: %u workers, %s ICE%s, fingerprint %s", relay->n_workers,
             cfg->ice_lite ? "lite" : "full", cfg->ice_tcp ? " +tcp" : "", relay->fingerprint);
    *out = relay;
    return 0;
}

void spk_relay_destroy(spk_relay_t *relay)
{
    if (!relay) {
        return;
    }
    SPK_RELAY_ON_CONTROL(relay);
    stop_workers(relay);
    pthread_mutex_lock(&relay->ev_mu);
    relay->destroyed = true;
    spk_relay_evnode_t *n = relay->ev_head;
    relay->ev_head = relay->ev_tail = NULL;
    pthread_mutex_unlock(&relay->ev_mu);
    while (n) {
        spk_relay_evnode_t *next = n->next;
        free(n);
        n = next;
    }
    uv_close((uv_handle_t *)&relay->async, async_close_cb);
}

/* ---- commands: control thread -> workers ---- */

static spk_relay_worker_t *worker_for(spk_relay_t *relay, uint64_t consult_id)
{
    /* A fixed mix so that sequential ids spread over the workers. */
    uint64_t h = consult_id * 0x9E3779B97F4A7C15ull;
    return &relay->workers[(h >> 32) % relay->n_workers];
}

static int post(spk_relay_t *relay, spk_relay_cmd_t *cmd)
{
    return spk_relay_worker_post(worker_for(relay, cmd->consult_id), cmd);
}

static spk_relay_cmd_t *cmd_new(spk_relay_t *relay, spk_relay_cmd_type_t type, uint64_t consult_id,
                                uint64_t endpoint_id)
{
    if (!relay || relay->destroyed || consult_id == 0 || endpoint_id == 0) {
        return NULL;
    }
    SPK_RELAY_ON_CONTROL(relay);
    spk_relay_cmd_t *cmd = calloc(1, sizeof(*cmd));
    if (cmd) {
        cmd->type = type;
        cmd->consult_id = consult_id;
        cmd->endpoint_id = endpoint_id;
    }
    return cmd;
}

static int cmd_fail(spk_relay_t *relay, uint64_t consult_id, uint64_t endpoint_id)
{
    if (!relay || relay->destroyed || consult_id == 0 || endpoint_id == 0) {
        return SPK_EINVAL;
    }
    return SPK_ENOMEM;
}

static int random_token(char *out, size_t n)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    uint8_t r[SPK_RELAY_PWD_MAX];
    if (n >= sizeof(r) || RAND_bytes(r, (int)n) != 1) {
        return SPK_ECRYPTO;
    }
    for (size_t i = 0; i < n; i++) {
        out[i] = alphabet[r[i] & 63];
    }
    out[n] = '\0';
    spk_wipe(r, sizeof(r));
    return 0;
}

static int new_credentials(spk_relay_t *relay, spk_relay_cmd_t *cmd, spk_relay_local_t *local)
{
    int rc = random_token(cmd->local_ufrag, 8);
    if (rc == 0) {
        rc = random_token(cmd->local_pwd, 24);
    }
    if (rc != 0) {
        return rc;
    }
    memset(local, 0, sizeof(*local));
    memcpy(local->ufrag, cmd->local_ufrag, sizeof(local->ufrag));
    memcpy(local->pwd, cmd->local_pwd, sizeof(local->pwd));
    memcpy(local->fingerprint, relay->fingerprint, sizeof(local->fingerprint));
    local->ice_lite = relay->cfg.ice_lite;
    return 0;
}

static bool ice_token_ok(const char *s, size_t cap)
{
    if (!s) {
        return false;
    }
    size_t n = strnlen(s, cap);
    if (n == 0 || n >= cap) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '+' || c == '/';
        if (!ok) {
            return false;
        }
    }
    return true;
}

int spk_relay_ice_credentials(spk_relay_ice_creds_t *out)
{
    if (!out) {
        return SPK_EINVAL;
    }
    int rc = random_token(out->ufrag, 8);
    if (rc == 0) {
        rc = random_token(out->pwd, 24);
    }
    return rc;
}

static bool creds_ok(const spk_relay_ice_creds_t *c)
{
    return c && ice_token_ok(c->ufrag, SPK_RELAY_UFRAG_MAX) &&
           ice_token_ok(c->pwd, SPK_RELAY_PWD_MAX) && strlen(c->ufrag) >= 4 && strlen(c->pwd) >= 22;
}

bool spk_relay_ice_lite(const spk_relay_t *relay)
{
    return relay && relay->cfg.ice_lite;
}

int spk_relay_endpoint_create_with(spk_relay_t *relay, uint64_t consult_id, uint64_t endpoint_id,
                                   unsigned roles, const spk_relay_ice_creds_t *local)
{
    if (!creds_ok(local) ||
        (roles & ~(unsigned)(SPK_RELAY_ROLE_PUBLISH | SPK_RELAY_ROLE_SUBSCRIBE)) != 0) {
        return SPK_EINVAL;
    }
    spk_relay_cmd_t *cmd = cmd_new(relay, SPK_RELAY_CMD_CREATE, consult_id, endpoint_id);
    if (!cmd) {
        return cmd_fail(relay, consult_id, endpoint_id);
    }
    cmd->roles = roles;
    snprintf(cmd->local_ufrag, sizeof(cmd->local_ufrag), "%s", local->ufrag);
    snprintf(cmd->local_pwd, sizeof(cmd->local_pwd), "%s", local->pwd);
    return post(relay, cmd);
}

int spk_relay_ice_restart_with(spk_relay_t *relay, uint64_t consult_id, uint64_t endpoint_id,
                               const char *ufrag, const char *pwd,
                               const spk_relay_ice_creds_t *local)
{
    if (!creds_ok(local) || !ice_token_ok(ufrag, SPK_RELAY_UFRAG_MAX) ||
        !ice_token_ok(pwd, SPK_RELAY_PWD_MAX)) {
        return SPK_EINVAL;
    }
    spk_relay_cmd_t *cmd = cmd_new(relay, SPK_RELAY_CMD_ICE_RESTART, consult_id, endpoint_id);
    if (!cmd) {
        return cmd_fail(relay, consult_id, endpoint_id);
    }
    snprintf(cmd->local_ufrag, sizeof(cmd->local_ufrag), "%s", local->ufrag);
    snprintf(cmd->local_pwd, sizeof(cmd->local_pwd), "%s", local->pwd);
    snprintf(cmd->remote_ufrag, sizeof(cmd->remote_ufrag), "%s", ufrag);
    snprintf(cmd->remote_pwd, sizeof(cmd->remote_pwd), "%s", pwd);
    return post(relay, cmd);
}

int spk_relay_endpoint_create(spk_relay_t *relay, uint64_t consult_id, uint64_t endpoint_id,
                              unsigned roles, spk_relay_local_t *local)
{
    if (!local || (roles & ~(unsigned)(SPK_RELAY_ROLE_PUBLISH | SPK_RELAY_ROLE_SUBSCRIBE)) != 0) {
        return SPK_EINVAL;
    }
    spk_relay_cmd_t *cmd = cmd_new(relay, SPK_RELAY_CMD_CREATE, consult_id, endpoint_id);
    if (!cmd) {
        return cmd_fail(relay, consult_id, endpoint_id);
    }
    cmd->roles = roles;
    int rc = new_credentials(relay, cmd, local);
    if (rc != 0) {
        free(cmd);
        return rc;
    }
    return post(relay, cmd);
}

int spk_relay_remote_description(spk_relay_t *relay, uint64_t consult_id, uint64_t endpoint_id,
                                 const char *ufrag, const char *pwd, const char *fingerprint,
                                 spk_relay_setup_t setup)
{
    if (!ice_token_ok(ufrag, SPK_RELAY_UFRAG_MAX) || !ice_token_ok(pwd, SPK_RELAY_PWD_MAX) ||
        !fingerprint || setup < SPK_RELAY_SETUP_ACTPASS || setup > SPK_RELAY_SETUP_PASSIVE) {
        return SPK_EINVAL;
    }
    uint8_t fp[SPK_RELAY_FP_LEN];
    int rc = spk_relay_fingerprint_parse(fingerprint, fp);
    if (rc != 0) {
        return rc;
    }
    spk_relay_cmd_t *cmd = cmd_new(relay, SPK_RELAY_CMD_REMOTE_DESC, consult_id, endpoint_id);
    if (!cmd) {
        return cmd_fail(relay, consult_id, endpoint_id);
    }
    snprintf(cmd->remote_ufrag, sizeof(cmd->remote_ufrag), "%s", ufrag);
    snprintf(cmd->remote_pwd, sizeof(cmd->remote_pwd), "%s", pwd);
    memcpy(cmd->remote_fp, fp, sizeof(fp));
    cmd->setup = setup;
    return post(relay, cmd);
}

int spk_relay_remote_candidate(spk_relay_t *relay, uint64_t consult_id, uint64_t endpoint_id,
                               const char *candidate)
{
    if (candidate && strncmp(candidate, "a=", 2) == 0) {
        candidate += 2;
    }
    bool eoc = !candidate || candidate[0] == '\0';
    if (!eoc && (strncmp(candidate, "candidate:", 10) != 0 ||
                 strlen(candidate) >= SPK_RELAY_CANDIDATE_MAX)) {
        return SPK_EINVAL;
    }
    if (!eoc && relay != NULL) {
        spk_sdp_candidate_t c;
        if (spk_sdp_candidate_parse(&c, candidate, strlen(candidate), NULL, 0) != 0) {
            return SPK_EINVAL;
        }
        if (!spk_addr_filter_allows(&relay->cand_filter, c.addr)) {
            relay->cands_refused++;
            spk_info(0, "relay: endpoint %llu: remote candidate address refused",
                     (unsigned long long)endpoint_id);
            return SPK_EFORBIDDEN;
        }
    }
    spk_relay_cmd_t *cmd = cmd_new(relay, SPK_RELAY_CMD_REMOTE_CAND, consult_id, endpoint_id);
    if (!cmd) {
        return cmd_fail(relay, consult_id, endpoint_id);
    }
    cmd->end_of_candidates = eoc;
    if (!eoc) {
        /* libnice's parser wants the "a=" form. */
        snprintf(cmd->cand, sizeof(cmd->cand), "a=%s", candidate);
    }
    return post(relay, cmd);
}

int spk_relay_set_owner(spk_relay_t *relay, uint64_t consult_id, uint64_t endpoint_id,
                        uint64_t owner)
{
    spk_relay_cmd_t *cmd = cmd_new(relay, SPK_RELAY_CMD_OWNER, consult_id, endpoint_id);
    if (!cmd) {
        return cmd_fail(relay, consult_id, endpoint_id);
    }
    cmd->owner = owner;
    return post(relay, cmd);
}

/* A simulcast declaration (spk_relay_stream_t.n_rids > 0): video, 1..SPK_RELAY_MAX_RIDS
 * terminated non-empty rids, a rid extension id. */
static bool simulcast_ok(const spk_relay_stream_t *a)
{
    if (a->n_rids == 0) {
        return true;
    }
    if (!a->video || a->n_rids > SPK_RELAY_MAX_RIDS || a->rid_ext == 0) {
        return false;
    }
    for (size_t r = 0; r < a->n_rids; r++) {
        size_t len = strnlen(a->rids[r], SPK_RELAY_RID_MAX);
        if (len == 0 || len == SPK_RELAY_RID_MAX) {
            return false;
        }
    }
    return true;
}

static bool streams_ok(const spk_relay_stream_t *streams, size_t n)
{
    if (n > SPK_RELAY_MAX_STREAMS || (n > 0 && streams == NULL)) {
        return false;
    }
    size_t n_sim = 0;
    for (size_t i = 0; i < n; i++) {
        const spk_relay_stream_t *a = &streams[i];
        if (a->ssrc == 0 || a->pt > 127 || a->rtx_pt > 127 || a->rtx_ssrc == a->ssrc ||
            !simulcast_ok(a) || (a->n_rids > 0 && ++n_sim > 1)) {
            return false;
        }
        for (size_t j = 0; j < i; j++) {
            const spk_relay_stream_t *b = &streams[j];
            if (a->ssrc == b->ssrc || (a->rtx_ssrc != 0 && a->rtx_ssrc == b->rtx_ssrc) ||
                a->ssrc == b->rtx_ssrc || (a->rtx_ssrc != 0 && a->rtx_ssrc == b->ssrc)) {
                return false;
            }
        }
    }
    return true;
}

int spk_relay_set_streams(spk_relay_t *relay, uint64_t consult_id, uint64_t endpoint_id,
                          const spk_relay_stream_t *streams, size_t n)
{
    if (!streams_ok(streams, n)) {
        return SPK_EINVAL;
    }
    spk_relay_cmd_t *cmd = cmd_new(relay, SPK_RELAY_CMD_STREAMS, consult_id, endpoint_id);
    if (!cmd) {
        return cmd_fail(relay, consult_id, endpoint_id);
    }
    if (n > 0) {
        memcpy(cmd->streams, streams, n * sizeof(*streams));
    }
    cmd->n_streams = (uint8_t)n;
    return post(relay, cmd);
}

int spk_relay_set_ext_map(spk_relay_t *relay, uint64_t consult_id, uint64_t endpoint_id,
                          const uint8_t map[SPK_RELAY_EXT_IDS])
{
    spk_relay_cmd_t *cmd = cmd_new(relay, SPK_RELAY_CMD_EXT_MAP, consult_id, endpoint_id);
    if (!cmd) {
        return cmd_fail(relay, consult_id, endpoint_id);
    }
    memcpy(cmd->ext_map, map, SPK_RELAY_EXT_IDS);
    return post(relay, cmd);
}

int spk_relay_set_forwarding(spk_relay_t *relay, uint64_t consult_id, uint64_t endpoint_id, bool on)
{
    spk_relay_cmd_t *cmd = cmd_new(relay, SPK_RELAY_CMD_FORWARD, consult_id, endpoint_id);
    if (!cmd) {
        return cmd_fail(relay, consult_id, endpoint_id);
    }
    cmd->on = on;
    return post(relay, cmd);
}

int spk_relay_ice_restart(spk_relay_t *relay, uint64_t consult_id, uint64_t endpoint_id,
                          const char *ufrag, const char *pwd, spk_relay_local_t *local)
{
    if (!local || !ice_token_ok(ufrag, SPK_RELAY_UFRAG_MAX) ||
        !ice_token_ok(pwd, SPK_RELAY_PWD_MAX)) {
        return SPK_EINVAL;
    }
    spk_relay_cmd_t *cmd = cmd_new(relay, SPK_RELAY_CMD_ICE_RESTART, consult_id, endpoint_id);
    if (!cmd) {
        return cmd_fail(relay, consult_id, endpoint_id);
    }
    int rc = new_credentials(relay, cmd, local);
    if (rc != 0) {
        free(cmd);
        return rc;
    }
    snprintf(cmd->remote_ufrag, sizeof(cmd->remote_ufrag), "%s", ufrag);
    snprintf(cmd->remote_pwd, sizeof(cmd->remote_pwd), "%s", pwd);
    return post(relay, cmd);
}

int spk_relay_endpoint_close(spk_relay_t *relay, uint64_t consult_id, uint64_t endpoint_id)
{
    spk_relay_cmd_t *cmd = cmd_new(relay, SPK_RELAY_CMD_CLOSE, consult_id, endpoint_id);
    if (!cmd) {
        return cmd_fail(relay, consult_id, endpoint_id);
    }
    return post(relay, cmd);
}

int spk_relay_stats(spk_relay_t *relay, uint64_t consult_id, uint64_t endpoint_id)
{
    spk_relay_cmd_t *cmd = cmd_new(relay, SPK_RELAY_CMD_STATS, consult_id, endpoint_id);
    if (!cmd) {
        return cmd_fail(relay, consult_id, endpoint_id);
    }
    return post(relay, cmd);
}
