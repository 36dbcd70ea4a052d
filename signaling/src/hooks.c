/* Events for the practice systems' webhooks (docs/integration.md "Webhooks").
 *
 * An action that changes what an integration follows (a patient enters the lobby, is admitted,
 * the consult starts or ends, an invite is used) stores its events in the webhook queue inside
 * the action's own transaction, just before its commit (sig_commit): the events exist exactly
 * when the change does. Expired invites are found by the tick. Every integration that acts for
 * the consult's practice and has a webhook URL gets each event. Events carry state, never
 * content or names: ids, the patient's pseudonym, times. Delivery is webhook.c's. */
#include "core_int.h"

#include <stdio.h>
#include <string.h>

#include "spk/error.h"
#include "spk/log.h"
#include "spk/rand.h"
#include "spk/util.h"

#define EXPIRY_MARK "invite_expiry_reported"

typedef struct {
    spk_sig_t *s;
    const char *practice;
    const char *event; /* JSON text */
    int64_t now;
    int rc;
} enqueue_t;

static int enqueue_cb(void *ud, const spk_integration_rec_t *in)
{
    enqueue_t *e = ud;
    if (in->revoked_at != 0 || in->webhook_url[0] == '\0' ||
        !spk_integration_acts_for(in, e->practice)) {
        return 0;
    }
    int64_t dropped = 0;
    int rc = spk_store_webhook_enqueue(e->s->store, in->id, e->event, e->now,
                                       e->s->cfg.webhook_queue_max, &dropped);
    if (dropped > 0) {
        spk_warn(0, "webhook queue of %s full: %lld oldest event(s) dropped", in->id,
                 (long long)dropped);
    }
    return rc;
}

/* Stores one event about consult c for every integration that follows its practice. */
static int emit(spk_sig_t *s, const spk_consult_rec_t *c, const char *type, int64_t now,
                const char *participant, const char *invite, const char *via)
{
    char id[40] = "ev_";
    int rc = spk_random_id(id + 3, sizeof(id) - 3, 12);
    if (rc != 0) {
        return rc;
    }
    json_t *o = json_pack("{s:s, s:s, s:I, s:s, s:s, s:s, s:s}", "id", id, "type", type,
                          "occurred_at", (json_int_t)now, "consult", c->id, "practice", c->practice,
                          "gp", c->gp, "patient", c->patient);
    if (o == NULL) {
        return SPK_ENOMEM;
    }
    if (participant != NULL) {
        json_object_set_new(o, "participant", json_string(participant));
    }
    if (invite != NULL) {
        json_object_set_new(o, "invite", json_string(invite));
    }
    if (via != NULL) {
        json_object_set_new(o, "via", json_string(via));
    }
    if (c->planned_at != 0) {
        json_object_set_new(o, "planned_at", json_integer(c->planned_at));
    }
    char *txt = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (txt == NULL) {
        return SPK_ENOMEM;
    }
    enqueue_t e = {s, c->practice, txt, now, 0};
    rc = spk_store_integration_each(s->store, enqueue_cb, &e);
    free(txt);
    return rc;
}

int sig_hooks_precommit(sig_req_t *r)
{
    if (!spk_store_in_txn(r->s->store)) {
        return 0;
    }
    sig_consult_t *c = r->object[0] != '\0' ? sig_consult_cached(r->s, r->object) : NULL;
    const char *ev = r->event != NULL ? r->event : "";
    int rc = 0;
    if (strcmp(ev, "invite.use") == 0 && c != NULL) {
        const char *invite = strncmp(r->detail, "invite ", 7) == 0 ? r->detail + 7 : NULL;
        rc = emit(r->s, &c->rec, "invite.used", r->now, r->c->who->sub, invite, NULL);
        if (rc == 0) {
            rc = emit(r->s, &c->rec, "lobby.entered", r->now, r->c->who->sub, NULL, "invite");
        }
    } else if (strcmp(ev, "consult.end") == 0 && c != NULL) {
        spk_consult_rec_t rec = c->rec;
        rec.state = SPK_CONSULT_ENDED;
        rec.ended_at = r->now;
        rc = emit(r->s, &rec, "consult.ended", r->now, NULL, NULL, NULL);
    }
    const sig_part_t *p = r->moved;
    if (rc != 0 || p == NULL || c == NULL || p->rec.role != SPK_ROLE_PATIENT) {
        return rc;
    }
    if (r->moved_to == SPK_PART_LOBBY && p->rec.state != SPK_PART_LOBBY) {
        const char *via = strcmp(ev, "consult.send_back") == 0 ? "sent_back" : "rejoin";
        rc = emit(r->s, &c->rec, "lobby.entered", r->now, p->rec.id, NULL, via);
    } else if (r->moved_to == SPK_PART_ADMITTED && p->rec.state != SPK_PART_ADMITTED) {
        rc = emit(r->s, &c->rec, "patient.admitted", r->now, p->rec.id, NULL, NULL);
        if (rc == 0 && c->rec.started_at == 0) {
            rc = spk_store_consult_set_started(r->s->store, c->rec.id, r->now);
            spk_consult_rec_t rec = c->rec;
            rec.started_at = r->now;
            if (rc == 0) {
                rc = emit(r->s, &rec, "consult.started", r->now, p->rec.id, NULL, NULL);
            }
        }
    }
    return rc;
}

void sig_hooks_postcommit(sig_req_t *r)
{
    const sig_part_t *p = r->moved;
    r->moved = NULL;
    if (p == NULL || r->moved_to != SPK_PART_ADMITTED || p->rec.role != SPK_ROLE_PATIENT) {
        return;
    }
    sig_consult_t *c = sig_consult_cached(r->s, r->object);
    if (c != NULL && c->rec.started_at == 0) {
        c->rec.started_at = r->now;
    }
}

/* ---- invites that expired unused ---- */

static int expired_cb(void *ud, const spk_invite_rec_t *inv)
{
    enqueue_t *e = ud;
    spk_consult_rec_t c;
    int rc = spk_store_consult_get(e->s->store, inv->consult, &c);
    if (rc != 0) {
        return rc == SPK_ENOTFOUND ? 0 : rc;
    }
    return emit(e->s, &c, "invite.expired", inv->expires_at, NULL, inv->id, NULL);
}

static int count_cb(void *ud, const spk_invite_rec_t *inv)
{
    (void)inv;
    (*(int *)ud)++;
    return 0;
}

void sig_hooks_tick(spk_sig_t *s, int64_t now)
{
    int64_t mark = 0;
    int found = 0;
    if (spk_store_in_txn(s->store) || spk_store_mark_get(s->store, EXPIRY_MARK, &mark) != 0) {
        return;
    }
    if (mark != 0 && (mark >= now ||
                      (spk_store_invite_each_expiring(s->store, mark, now, count_cb, &found) == 0 &&
                       found == 0 && now - mark < 300))) {
        return; /* nothing expired: the mark moves on only now and then */
    }
    if (spk_store_begin(s->store) != 0) {
        return;
    }
    enqueue_t e = {s, NULL, NULL, now, 0};
    int rc = mark == 0 ? 0 : spk_store_invite_each_expiring(s->store, mark, now, expired_cb, &e);
    if (rc == 0) {
        rc = spk_store_mark_set(s->store, EXPIRY_MARK, now);
    }
    if (rc == 0) {
        rc = spk_store_commit(s->store, NULL);
    } else {
        spk_store_rollback(s->store);
    }
    if (rc != 0) {
        spk_warn(0, "invite expiry events not stored: %s", spk_strerror(rc));
    }
}
