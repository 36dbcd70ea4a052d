/* Consult actions: create, list, get, join, leave, end. */
#include "core_int.h"

#include <string.h>

#include "spk/error.h"
#include "spk/log.h"
#include "spk/rand.h"

/* The practice a request is about: the "practice" field, or the caller's own (required of an
 * integration that acts for several practices, which has none of its own). */
static int req_practice(sig_req_t *r, const char **out)
{
    const char *p;
    const spk_token_claims_t *w = r->c->who;
    bool need = w->role == SPK_ROLE_SERVICE && w->practice[0] == '\0';
    int rc = sig_get_str(r, "practice", need, SPK_SUB_LEN - 1, &p);
    if (rc != 0) {
        return rc;
    }
    *out = p != NULL ? p : r->c->who->practice;
    return sig_rel_practice(r, *out);
}

/* The optional planned start and end of a consult (an appointment from the practice system). */
static int req_planned(sig_req_t *r, int64_t *at, int64_t *end)
{
    *at = *end = 0;
    int rc = sig_get_int(r, "planned_at", false, r->now - 86400, r->now + 400 * 86400LL, at);
    if (rc == 0) {
        rc = sig_get_int(r, "planned_end", false, 1, r->now + 401 * 86400LL, end);
    }
    if (rc == 0 && *end != 0 && (*at == 0 || *end <= *at || *end - *at > 86400)) {
        rc = sig_bad_field(r, "planned_end");
    }
    if (rc == 0 && *at != 0 && *end == 0) {
        *end = *at + 600; /* a GP consult: ten minutes */
    }
    return rc;
}

int sig_h_consult_create(sig_req_t *r)
{
    const spk_token_claims_t *w = r->c->who;
    const char *patient, *title, *gp, *practice;
    int64_t planned_at, planned_end;
    int rc = sig_get_str(r, "patient", true, SPK_SUB_LEN - 1, &patient);
    if (rc == 0) {
        rc = sig_get_str(r, "title", false, SPK_SUB_LEN - 1, &title);
    }
    if (rc == 0) {
        rc = sig_get_str(r, "gp", w->role == SPK_ROLE_SERVICE, SPK_SUB_LEN - 1, &gp);
    }
    if (rc == 0) {
        rc = req_planned(r, &planned_at, &planned_end);
    }
    if (rc == 0) {
        rc = req_practice(r, &practice);
    }
    if (rc != 0) {
        return rc;
    }
    snprintf(r->patient, sizeof(r->patient), "%s", patient);
    sig_consult_t tmp;
    memset(&tmp, 0, sizeof(tmp));
    tmp.e2ee = r->s->cfg.media_e2ee != 0;
    spk_consult_rec_t *rec = &tmp.rec;
    memcpy(rec->id, "c_", 2);
    rc = spk_random_id(rec->id + 2, sizeof(rec->id) - 2, 12);
    if (rc != 0) {
        return rc;
    }
    snprintf(rec->practice, sizeof(rec->practice), "%s", practice);
    snprintf(rec->gp, sizeof(rec->gp), "%s",
             gp != NULL ? gp : (w->role == SPK_ROLE_ASSISTANT ? w->acts_for : w->sub));
    snprintf(rec->patient, sizeof(rec->patient), "%s", patient);
    snprintf(rec->title, sizeof(rec->title), "%s", title != NULL ? title : "");
    snprintf(rec->created_by, sizeof(rec->created_by), "%s", w->sub);
    rec->state = SPK_CONSULT_OPEN;
    rec->created_at = r->now;
    rec->planned_at = planned_at;
    rec->planned_end = planned_end;
    snprintf(r->object, sizeof(r->object), "%s", rec->id);
    /* The answer is complete before the commit (an idempotency record stores it with it). */
    json_object_set_new(r->reply, "consult", sig_consult_json(&tmp, true));
    rc = spk_store_consult_insert(r->s->store, rec);
    if (rc == 0) {
        rc = sig_commit(r);
    }
    if (rc != 0) {
        return rc;
    }
    r->s->m[SIG_M_CONSULTS_CREATED]++;
    spk_info(r->c->id, "consult %s created", rec->id);
    return 0;
}

static int list_cb(void *ud, const spk_consult_rec_t *rec)
{
    void **a = ud;
    sig_consult_t *c = sig_consult_cached(a[1], rec->id);
    sig_consult_t tmp;
    if (c == NULL) {
        memset(&tmp, 0, sizeof(tmp));
        tmp.rec = *rec;
        tmp.e2ee = ((spk_sig_t *)a[1])->cfg.media_e2ee != 0;
        c = &tmp;
    }
    return json_array_append_new(a[0], sig_consult_json(c, true)) == 0 ? 0 : SPK_ENOMEM;
}

int sig_h_consult_list(sig_req_t *r)
{
    const char *practice;
    int64_t from = 0, until = 0;
    int rc = sig_get_int(r, "from", false, 0, INT64_MAX / 2, &from);
    if (rc == 0) {
        rc = sig_get_int(r, "until", false, 1, INT64_MAX / 2, &until);
    }
    if (rc == 0 && (from != 0 || until != 0) && (until <= from || until - from > 31 * 86400)) {
        rc = sig_bad_field(r, "until");
    }
    if (rc == 0) {
        rc = req_practice(r, &practice);
    }
    if (rc != 0) {
        return rc;
    }
    snprintf(r->object, sizeof(r->object), "%s", practice);
    json_t *arr = json_array();
    void *ud[2] = {arr, r->s};
    if (arr == NULL) {
        rc = SPK_ENOMEM;
    } else if (until != 0) {
        rc = spk_store_consult_each_between(r->s->store, practice, from, until, list_cb, ud);
    } else {
        rc = spk_store_consult_each_open(r->s->store, practice, list_cb, ud);
    }
    if (rc != 0) {
        json_decref(arr);
        return rc;
    }
    json_object_set_new(r->reply, "consults", arr);
    return 0;
}

static int facts_cb(void *ud, const spk_fact_rec_t *f)
{
    return json_array_append_new(ud, sig_fact_json(f)) == 0 ? 0 : SPK_ENOMEM;
}

int sig_h_consult_get(sig_req_t *r)
{
    /* The one action an ended consult still answers: its final state stays readable. */
    sig_consult_t *c;
    int rc = sig_req_consult(r, false, &c);
    if (rc != 0) {
        return rc;
    }
    const spk_token_claims_t *w = r->c->who;
    json_object_set_new(r->reply, "consult", sig_consult_json(c, w->role != SPK_ROLE_PATIENT));
    if (w->role == SPK_ROLE_PATIENT) {
        /* A patient sees themself only, until admitted; then no other patient ever. */
        sig_part_t *me = sig_part_find(c, w->sub);
        json_t *a = json_array();
        if (me->rec.state == SPK_PART_ADMITTED) {
            json_decref(a);
            a = sig_roster_json(c, me);
        } else {
            json_array_append_new(a, sig_part_json(me));
        }
        json_object_set_new(r->reply, "participants", a);
        return 0;
    }
    if (w->role == SPK_ROLE_SERVICE) {
        /* A practice system sees the consult's state and times, no names (docs/integration.md). */
        return 0;
    }
    if (!sig_is_staff(w->role)) {
        /* A specialist (joined or not) sees what an admitted non-patient sees. */
        sig_part_t view;
        memset(&view, 0, sizeof(view));
        view.rec.role = w->role;
        view.rec.state = SPK_PART_ADMITTED;
        json_object_set_new(r->reply, "participants", sig_roster_json(c, &view));
        return 0;
    }
    json_t *facts = json_array();
    rc = facts ? spk_store_fact_each(r->s->store, c->rec.id, facts_cb, facts) : SPK_ENOMEM;
    if (rc != 0) {
        json_decref(facts);
        return rc;
    }
    json_object_set_new(r->reply, "participants", sig_roster_json(c, NULL));
    json_object_set_new(r->reply, "lobby", sig_lobby_json(c));
    json_object_set_new(r->reply, "facts", facts);
    return 0;
}

/* A professional joining: their participant record (one per consult and user) is admitted,
 * made if needed, and the request committed. */
static int professional_part(sig_req_t *r, sig_consult_t *c, sig_part_t **out)
{
    const spk_token_claims_t *w = r->c->who;
    sig_part_t *p = sig_part_find_sub(c, w->iss, w->sub);
    if (p != NULL) {
        *out = p;
        return sig_part_commit(r, p, SPK_PART_ADMITTED);
    }
    spk_participant_rec_t rec;
    memset(&rec, 0, sizeof(rec));
    snprintf(rec.consult, sizeof(rec.consult), "%s", c->rec.id);
    memcpy(rec.id, "p_", 2);
    int rc = spk_random_id(rec.id + 2, sizeof(rec.id) - 2, 12);
    if (rc != 0) {
        return rc;
    }
    snprintf(rec.sub, sizeof(rec.sub), "%s", w->sub);
    snprintf(rec.iss, sizeof(rec.iss), "%s", w->iss);
    snprintf(rec.name, sizeof(rec.name), "%s", w->name);
    rec.role = w->role;
    rec.state = SPK_PART_ADMITTED;
    rec.joined_at = rec.updated_at = r->now;
    rc = spk_store_participant_put(r->s->store, &rec);
    if (rc == 0) {
        rc = sig_commit(r);
    }
    if (rc == 0) {
        rc = sig_part_add(c, &rec, out);
    }
    return rc;
}

static void join_reply(sig_req_t *r, sig_consult_t *c, sig_part_t *p)
{
    bool staff = sig_is_staff(r->c->who->role);
    json_object_set_new(r->reply, "consult",
                        sig_consult_json(c, r->c->who->role != SPK_ROLE_PATIENT));
    json_object_set_new(r->reply, "participant", sig_part_json(p));
    if (p->rec.state == SPK_PART_ADMITTED) {
        json_object_set_new(r->reply, "participants", sig_roster_json(c, staff ? NULL : p));
    }
    if (staff) {
        json_object_set_new(r->reply, "lobby", sig_lobby_json(c));
    }
    if (r->s->relay != NULL) {
        json_t *ice = sig_ice_servers_json(r->s, r->c, r->now);
        if (ice != NULL) {
            json_object_set_new(r->reply, "ice_servers", ice);
        }
    }
}

int sig_h_consult_join(sig_req_t *r)
{
    sig_consult_t *c;
    int rc = sig_req_consult(r, true, &c);
    if (rc != 0) {
        return rc;
    }
    sig_part_t *p;
    if (r->c->who->role == SPK_ROLE_PATIENT) {
        p = sig_part_find(c, r->c->who->sub);
        rc = p->rec.state == SPK_PART_LEFT ? sig_part_commit(r, p, SPK_PART_LOBBY) : sig_commit(r);
    } else {
        rc = professional_part(r, c, &p);
    }
    if (rc == 0) {
        rc = sig_join_conn(r->s, r->c, c, p);
    }
    if (rc != 0) {
        return rc;
    }
    /* A remote GP's presence ends with the delegation it rests on (access.c). */
    sig_join_t *jn = sig_join_find(r->c, c);
    jn->access_until = r->delegation_until;
    snprintf(jn->delegation, sizeof(jn->delegation), "%s", r->delegation);
    join_reply(r, c, p);
    sig_reply_ok(r);
    if (p->rec.state == SPK_PART_ADMITTED) {
        sig_broadcast_roster(r->s, c);
    } else {
        sig_broadcast_lobby(r->s, c);
    }
    sig_media_consult_changed(r->s, c);
    return 0;
}

int sig_h_consult_leave(sig_req_t *r)
{
    sig_consult_t *c;
    int rc = sig_req_consult(r, true, &c);
    if (rc != 0) {
        return rc;
    }
    const spk_token_claims_t *w = r->c->who;
    sig_part_t *p = w->role == SPK_ROLE_PATIENT ? sig_part_find(c, w->sub)
                                                : sig_part_find_sub(c, w->iss, w->sub);
    if (p == NULL) {
        snprintf(r->why, sizeof(r->why), "not a participant of this consult");
        return SPK_ESTATE;
    }
    rc = sig_part_commit(r, p, SPK_PART_LEFT);
    if (rc != 0) {
        return rc;
    }
    sig_reply_ok(r);
    /* This connection leaves; the participant's other connections stay. */
    sig_unjoin_conn(r->s, r->c, c, false);
    sig_broadcast_roster(r->s, c);
    sig_broadcast_lobby(r->s, c);
    return 0;
}

int sig_h_consult_end(sig_req_t *r)
{
    sig_consult_t *c;
    int rc = sig_req_consult(r, true, &c);
    if (rc == 0) {
        rc = spk_store_consult_end(r->s->store, c->rec.id, r->now);
    }
    if (rc == 0 && r->s->relay != NULL) {
        /* its placement on a relay node, shared by the spreekd nodes (docs/relay_link.md): the
         * media of an ended consult is over on every node */
        char pin[SPK_RELAYS_PIN_NAME_LEN];
        spk_relays_pin_name(c->relay_id, pin);
        rc = spk_store_mark_delete(r->s->store, pin);
    }
    if (rc == 0) {
        rc = sig_commit(r);
    }
    if (rc != 0) {
        return rc;
    }
    c->rec.state = SPK_CONSULT_ENDED;
    c->rec.ended_at = r->now;
    json_object_set_new(r->reply, "consult",
                        sig_consult_json(c, r->c->who->role != SPK_ROLE_PATIENT));
    sig_reply_ok(r);
    sig_bus_consult(r->s, c, "ended");
    sig_consult_ended(r->s, c);
    return 0;
}
