/* Audit entries of the signaling core (docs/audit.md), and the throttling of refused sign-ins.
 *
 * An entry goes into the store's open transaction when there is one, so that an action and its
 * entry are committed together (core.c opens one per audited request); otherwise it is a
 * transaction of its own.
 *
 * Refused sign-ins (auth, invite.redeem) are counted per source address in windows of
 * auth_fail_window_s: the first auth_fail_log failures of a window are logged one by one, the
 * rest are counted and written as one "auth.summary" entry when the window ends; from
 * auth_fail_throttle failures on, further attempts from that address are refused with
 * rate_limited without being evaluated (and counted into the summary). */
#include "core_int.h"
#include "ws_addr.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spk/error.h"
#include "spk/log.h"
#include "spk/text.h"
#include "spk/util.h"

#define MAX_SOURCES 65536 /* sources tracked at once; beyond that, one shared bucket */
#define OVERFLOW_KEY "*"

int sig_audit_write(spk_sig_t *s, const sig_audit_ev_t *ev)
{
    spk_audit_rec_t a;
    memset(&a, 0, sizeof(a));
    a.ts_ms = spk_now_ms();
    spk_utf8_copy(a.event, sizeof(a.event), ev->event);
    spk_utf8_copy(a.outcome, sizeof(a.outcome),
                  ev->outcome == 0 ? "success" : spk_err_wire(ev->outcome));
    if (ev->who != NULL) {
        spk_utf8_copy(a.user, sizeof(a.user), ev->who->sub);
        spk_utf8_copy(a.issuer, sizeof(a.issuer), ev->who->iss);
        spk_utf8_copy(a.role, sizeof(a.role), spk_role_name(ev->who->role));
        /* Patients appear by participant id only: the name they typed is not logged. */
        if (ev->who->role != SPK_ROLE_PATIENT) {
            spk_utf8_copy(a.name, sizeof(a.name), ev->who->name);
        }
    }
    spk_utf8_copy(a.on_behalf_of, sizeof(a.on_behalf_of), ev->on_behalf_of ? ev->on_behalf_of : "");
    spk_utf8_copy(a.access_point, sizeof(a.access_point), ev->remote ? ev->remote : "");
    spk_utf8_copy(a.patient, sizeof(a.patient), ev->patient ? ev->patient : "");
    spk_utf8_copy(a.practice, sizeof(a.practice), ev->practice ? ev->practice : "");
    spk_utf8_copy(a.object, sizeof(a.object), ev->object ? ev->object : "");
    spk_utf8_copy(a.detail, sizeof(a.detail), ev->detail ? ev->detail : "");
    int rc = spk_store_audit_append(s->store, &a);
    if (rc != 0) {
        spk_error(0, "audit append failed for %s: %s", ev->event, spk_strerror(rc));
    }
    return rc;
}

int sig_audit(sig_req_t *r, int outcome)
{
    const spk_token_claims_t *who = r->c->authed ? r->c->who : NULL;
    if (who == NULL && r->refused_signed) {
        who = &r->refused;
    }
    const sig_audit_ev_t ev = {
        .who = who,
        .remote = r->c->remote,
        .event = r->event,
        .outcome = outcome,
        .on_behalf_of = r->on_behalf_of,
        .patient = r->patient,
        .practice = r->practice[0] ? r->practice : (who != NULL ? who->practice : ""),
        .object = r->object,
        .detail = r->detail,
    };
    return sig_audit_write(r->s, &ev);
}

/* ---- refused sign-ins ---- */

/* Refusals count per source as the connection limits do: an IPv4 address, an IPv6 /64 (a client
 * rotating addresses inside its own network is one source). */
static const char *source_key(const char *remote, char *buf, size_t cap)
{
    ws_ip_t ip;
    if (ws_ip_parse(remote, strlen(remote), &ip) != 0 || ip.family != 6) {
        return remote;
    }
    ws_ip_t net = ws_ip_masked(&ip, 64);
    char a[48]; /* the longest IPv6 text form, 45 characters */
    ws_ip_format(&net, a, sizeof(a));
    snprintf(buf, cap, "%s/64", a);
    return buf;
}

static sig_fail_t *fail_get(spk_sig_t *s, const char *remote_addr, bool create)
{
    char buf[64];
    const char *remote = source_key(remote_addr, buf, sizeof(buf));
    sig_fail_t *f = spk_map_get_str(&s->auth_fail, remote);
    if (f != NULL || !create) {
        return f;
    }
    if (s->auth_fail.len >= MAX_SOURCES) {
        remote = OVERFLOW_KEY;
        f = spk_map_get_str(&s->auth_fail, remote);
        if (f != NULL) {
            return f;
        }
    }
    f = calloc(1, sizeof(*f));
    if (f != NULL) {
        spk_utf8_copy(f->key, sizeof(f->key), remote);
    }
    if (f != NULL && spk_map_put_str(&s->auth_fail, f->key, f) != 0) {
        free(f);
        f = NULL;
    }
    return f;
}

static void note_code(sig_fail_t *f, const char *code)
{
    if (strstr(f->codes, code) != NULL) {
        return;
    }
    size_t n = strlen(f->codes);
    snprintf(f->codes + n, sizeof(f->codes) - n, "%s%s", n > 0 ? ", " : "", code);
}

static void write_summary(spk_sig_t *s, const char *remote, sig_fail_t *f, int64_t now)
{
    if (f->unlogged == 0) {
        return;
    }
    char detail[256];
    snprintf(detail, sizeof(detail),
             "%d further refused sign-ins from this address between %" PRId64 " and %" PRId64
             " (%s)",
             f->unlogged, f->window_start, now, f->codes);
    const sig_audit_ev_t ev = {.remote = remote,
                               .event = "auth.summary",
                               .outcome = SPK_ERATE,
                               .object = "sign-in",
                               .detail = detail};
    sig_audit_write(s, &ev);
    f->unlogged = 0;
    f->codes[0] = '\0';
}

/* Starts a new window when the current one has ended. */
static void roll_window(spk_sig_t *s, const char *remote, sig_fail_t *f, int64_t now)
{
    if (now - f->window_start >= s->cfg.auth_fail_window_s) {
        write_summary(s, remote, f, now);
        f->window_start = now;
        f->failures = 0;
    }
}

bool sig_auth_throttled(spk_sig_t *s, const char *remote, int64_t now)
{
    sig_fail_t *f = fail_get(s, remote, false);
    if (f == NULL) {
        return false;
    }
    roll_window(s, f->key, f, now);
    if (f->failures < s->cfg.auth_fail_throttle) {
        return false;
    }
    f->unlogged++;
    note_code(f, "rate_limited");
    return true;
}

void sig_audit_auth_refused(sig_req_t *r, int outcome)
{
    spk_sig_t *s = r->s;
    sig_fail_t *f = fail_get(s, r->c->remote, true);
    if (f != NULL) {
        roll_window(s, f->key, f, r->now);
        f->failures++;
        if (f->failures > s->cfg.auth_fail_log) {
            f->unlogged++;
            note_code(f, spk_err_wire(outcome));
            return;
        }
    }
    sig_audit(r, outcome);
}

void sig_auth_fail_tick(spk_sig_t *s, int64_t now)
{
    sig_fail_t *done[64];
    size_t n = 0, it = 0;
    void *v;
    /* Collect finished windows first: the map must not change while it is iterated. */
    while (n < sizeof(done) / sizeof(done[0]) && spk_map_next(&s->auth_fail, &it, &v)) {
        sig_fail_t *f = v;
        if (now - f->window_start >= s->cfg.auth_fail_window_s) {
            done[n++] = f;
        }
    }
    for (size_t i = 0; i < n; i++) {
        write_summary(s, done[i]->key, done[i], now);
        spk_map_del_str(&s->auth_fail, done[i]->key);
        free(done[i]);
    }
}

void sig_auth_fail_free(spk_sig_t *s)
{
    size_t it = 0;
    void *v;
    while (spk_map_next(&s->auth_fail, &it, &v)) {
        free(v);
    }
    spk_map_free(&s->auth_fail);
}
