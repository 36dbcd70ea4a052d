/* In-memory model of consults and their participants, backed by the store, and the events that
 * keep clients' views current. */
#include "core_int.h"

#include <stdlib.h>
#include <string.h>

#include "spk/error.h"
#include "spk/log.h"
#include "spk/util.h"

static const char *const g_part_states[] = {"lobby", "admitted", "denied", "left"};

static void consult_free(sig_consult_t *c)
{
    for (size_t i = 0; i < c->n_parts; i++) {
        free(c->parts[i]);
    }
    free(c->parts);
    free(c->conns);
    sig_media_bus_free(c);
    free(c);
}

void sig_consults_free(spk_sig_t *s)
{
    size_t it = 0;
    void *v;
    while (spk_map_next(&s->consults, &it, &v)) {
        consult_free(v);
    }
    spk_map_free(&s->consults);
}

int sig_part_add(sig_consult_t *c, const spk_participant_rec_t *rec, sig_part_t **out)
{
    if (c->n_parts == c->cap_parts) {
        size_t ncap = c->cap_parts ? c->cap_parts * 2 : 4;
        sig_part_t **np = realloc(c->parts, ncap * sizeof(*np));
        if (np == NULL) {
            return SPK_ENOMEM;
        }
        c->parts = np;
        c->cap_parts = ncap;
    }
    sig_part_t *p = calloc(1, sizeof(*p));
    if (p == NULL) {
        return SPK_ENOMEM;
    }
    p->rec = *rec;
    c->parts[c->n_parts++] = p;
    if (out != NULL) {
        *out = p;
    }
    return 0;
}

static int load_part_cb(void *ud, const spk_participant_rec_t *p)
{
    return sig_part_add(ud, p, NULL);
}

sig_consult_t *sig_consult_cached(spk_sig_t *s, const char *id)
{
    return spk_map_get_str(&s->consults, id);
}

/* The consult's id towards the relay: FNV-1a 64 of its id (nonzero), the same on every node,
 * so that spreekd nodes driving one relay node name the consult alike (docs/relay_link.md). */
static uint64_t relay_id_of(const char *id)
{
    return spk_fnv1a64(id) | 1u;
}

int sig_consult_lookup(spk_sig_t *s, const char *id, sig_consult_t **out)
{
    sig_consult_t *c = sig_consult_cached(s, id);
    if (c != NULL) {
        *out = c;
        return 0;
    }
    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        return SPK_ENOMEM;
    }
    int rc = spk_store_consult_get(s->store, id, &c->rec);
    if (rc == 0) {
        rc = spk_store_participant_each(s->store, id, load_part_cb, c);
    }
    if (rc == 0) {
        c->relay_id = relay_id_of(c->rec.id);
        c->e2ee = s->cfg.media_e2ee != 0;
        rc = spk_map_put_str(&s->consults, c->rec.id, c);
    }
    if (rc != 0) {
        consult_free(c);
        return rc;
    }
    *out = c;
    return 0;
}

static int reload_part_cb(void *ud, const spk_participant_rec_t *rec)
{
    sig_consult_t *c = ud;
    sig_part_t *p = sig_part_find(c, rec->id);
    if (p == NULL) {
        return sig_part_add(c, rec, NULL);
    }
    p->rec = *rec;
    return 0;
}

int sig_consult_reload(spk_sig_t *s, sig_consult_t *c)
{
    spk_consult_rec_t rec;
    int rc = spk_store_consult_get(s->store, c->rec.id, &rec);
    if (rc == 0) {
        c->rec = rec;
        rc = spk_store_participant_each(s->store, rec.id, reload_part_cb, c);
    }
    return rc;
}

/* Forgets consults nobody is joined to: the store has their state, and sig_consult_lookup
 * loads them again when needed. Runs from the tick, never inside a request, so no handler holds
 * a pointer to a consult that goes away. */
void sig_consults_sweep(spk_sig_t *s)
{
    sig_consult_t *idle[256];
    size_t n = 0, it = 0;
    void *v;
    while (n < sizeof(idle) / sizeof(idle[0]) && spk_map_next(&s->consults, &it, &v)) {
        if (((sig_consult_t *)v)->n_conns == 0) {
            idle[n++] = v;
        }
    }
    for (size_t i = 0; i < n; i++) {
        spk_map_del_str(&s->consults, idle[i]->rec.id);
        consult_free(idle[i]);
    }
}

sig_part_t *sig_part_find(sig_consult_t *c, const char *id)
{
    for (size_t i = 0; i < c->n_parts; i++) {
        if (strcmp(c->parts[i]->rec.id, id) == 0) {
            return c->parts[i];
        }
    }
    return NULL;
}

sig_part_t *sig_part_find_sub(sig_consult_t *c, const char *iss, const char *sub)
{
    for (size_t i = 0; i < c->n_parts; i++) {
        if (strcmp(c->parts[i]->rec.sub, sub) == 0 && strcmp(c->parts[i]->rec.iss, iss) == 0) {
            return c->parts[i];
        }
    }
    return NULL;
}

int sig_part_commit(sig_req_t *r, sig_part_t *p, spk_part_state_t state)
{
    spk_participant_rec_t rec = p->rec;
    rec.state = state;
    rec.updated_at = r->now;
    r->moved = p;
    r->moved_to = state;
    int rc = spk_store_participant_put(r->s->store, &rec);
    if (rc == 0) {
        rc = sig_commit(r);
    }
    if (rc == 0) {
        p->rec = rec;
        sig_chat_access_changed(r->s); /* a consult's chat follows admission */
    }
    return rc;
}

json_t *sig_consult_json(const sig_consult_t *c, bool with_patient)
{
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:I}", "id", c->rec.id, "practice",
                          c->rec.practice, "gp", c->rec.gp, "title", c->rec.title, "state",
                          c->rec.state == SPK_CONSULT_OPEN ? "open" : "ended", "created_at",
                          (json_int_t)c->rec.created_at, "ended_at", (json_int_t)c->rec.ended_at);
    if (o != NULL) {
        json_object_set_new(o, "e2ee", json_boolean(c->e2ee));
    }
    if (o != NULL && with_patient) {
        json_object_set_new(o, "patient", json_string(c->rec.patient));
    }
    if (o != NULL) {
        sig_consult_status(c, o);
    }
    return o;
}

json_t *sig_part_json(const sig_part_t *p)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:b, s:I}", "id", p->rec.id, "name", p->rec.name, "role",
                     spk_role_name(p->rec.role), "state", g_part_states[p->rec.state & 3], "online",
                     sig_part_online(p) > 0, "since", (json_int_t)p->rec.updated_at);
}

/* May `viewer` (NULL: staff) see participant p in a roster? Staff see everyone but denied
 * participants. Others see no one waiting in the lobby. A patient sees another patient only
 * while both are admitted to the call at the same time (staff brought them in together, and
 * they see each other's video anyway): never one who waits, was refused, or has left. */
static bool roster_shows(const sig_part_t *viewer, const sig_part_t *p)
{
    if (p->rec.state == SPK_PART_DENIED) {
        return false;
    }
    if (viewer == NULL || sig_is_staff(viewer->rec.role) || p == viewer) {
        return true;
    }
    if (p->rec.state == SPK_PART_LOBBY) {
        return false;
    }
    if (viewer->rec.role != SPK_ROLE_PATIENT || p->rec.role != SPK_ROLE_PATIENT) {
        return true;
    }
    return p->rec.state == SPK_PART_ADMITTED && viewer->rec.state == SPK_PART_ADMITTED;
}

json_t *sig_roster_json(const sig_consult_t *c, const sig_part_t *viewer)
{
    json_t *a = json_array();
    for (size_t i = 0; a != NULL && i < c->n_parts; i++) {
        if (roster_shows(viewer, c->parts[i])) {
            json_array_append_new(a, sig_part_json(c->parts[i]));
        }
    }
    return a;
}

json_t *sig_lobby_json(const sig_consult_t *c)
{
    json_t *a = json_array();
    for (size_t i = 0; a != NULL && i < c->n_parts; i++) {
        if (c->parts[i]->rec.state == SPK_PART_LOBBY) {
            json_array_append_new(a, sig_part_json(c->parts[i]));
        }
    }
    return a;
}

json_t *sig_fact_json(const spk_fact_rec_t *f)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:I}", "kind", f->kind, "subject", f->subject, "value",
                     f->value, "recorded_by", f->recorded_by, "at", (json_int_t)f->at);
}

sig_join_t *sig_join_find(sig_conn_t *conn, const sig_consult_t *c)
{
    for (int j = 0; j < conn->n_joined; j++) {
        if (conn->joined[j].consult == c) {
            return &conn->joined[j];
        }
    }
    return NULL;
}

/* Sends a copy of msg to every admitted connection of the consult (staff only if asked). */
static void send_filtered(spk_sig_t *s, sig_consult_t *c, json_t *msg, bool staff_only)
{
    for (size_t i = 0; i < c->n_conns; i++) {
        sig_conn_t *conn = spk_map_get_u64(&s->conns, c->conns[i]);
        sig_join_t *jn = conn != NULL ? sig_join_find(conn, c) : NULL;
        if (jn != NULL && jn->part->rec.state == SPK_PART_ADMITTED &&
            (!staff_only || sig_is_staff(jn->part->rec.role))) {
            sig_send_json(s, conn->id, json_incref(msg));
        }
    }
    json_decref(msg);
}

void sig_broadcast_roster(spk_sig_t *s, sig_consult_t *c)
{
    sig_bus_consult(s, c, "roster");
    /* Each admitted participant gets the roster as they may see it. */
    for (size_t i = 0; i < c->n_conns; i++) {
        sig_conn_t *conn = spk_map_get_u64(&s->conns, c->conns[i]);
        sig_join_t *jn = conn != NULL ? sig_join_find(conn, c) : NULL;
        if (jn == NULL || jn->part->rec.state != SPK_PART_ADMITTED) {
            continue;
        }
        const sig_part_t *viewer = sig_is_staff(jn->part->rec.role) ? NULL : jn->part;
        sig_send_json(s, conn->id,
                      json_pack("{s:s, s:s, s:o}", "type", "roster", "consult", c->rec.id,
                                "participants", sig_roster_json(c, viewer)));
    }
}

void sig_broadcast_lobby(spk_sig_t *s, sig_consult_t *c)
{
    sig_bus_consult(s, c, "lobby");
    json_t *m = json_pack("{s:s, s:s, s:o}", "type", "lobby.update", "consult", c->rec.id, "lobby",
                          sig_lobby_json(c));
    if (m != NULL) {
        send_filtered(s, c, m, true);
    }
}

static int fact_cb(void *ud, const spk_fact_rec_t *f)
{
    return json_array_append_new(ud, sig_fact_json(f)) == 0 ? 0 : SPK_ENOMEM;
}

void sig_broadcast_facts(spk_sig_t *s, sig_consult_t *c)
{
    sig_bus_consult(s, c, "facts");
    json_t *facts = json_array();
    if (facts == NULL || spk_store_fact_each(s->store, c->rec.id, fact_cb, facts) != 0) {
        json_decref(facts);
        return;
    }
    json_t *m =
        json_pack("{s:s, s:s, s:o}", "type", "consult.facts", "consult", c->rec.id, "facts", facts);
    if (m != NULL) {
        send_filtered(s, c, m, true);
    }
}

/* Sends msg to every connection joined as participant p (steals msg). */
void sig_send_to_part(spk_sig_t *s, sig_consult_t *c, sig_part_t *p, json_t *msg)
{
    sig_bus_part(s, c, p, msg);
    for (size_t i = 0; i < c->n_conns; i++) {
        sig_conn_t *conn = spk_map_get_u64(&s->conns, c->conns[i]);
        for (int j = 0; conn != NULL && j < conn->n_joined; j++) {
            if (conn->joined[j].consult == c && conn->joined[j].part == p) {
                sig_send_json(s, conn->id, json_incref(msg));
            }
        }
    }
    json_decref(msg);
}

void sig_send_to_user(spk_sig_t *s, spk_role_t role, const char *iss, const char *sub, json_t *msg)
{
    sig_bus_user(s, role, iss, sub, msg);
    size_t it = 0;
    void *v;
    while (spk_map_next(&s->conns, &it, &v)) {
        sig_conn_t *conn = v;
        if (conn->authed && conn->who->role == role && strcmp(conn->who->sub, sub) == 0 &&
            strcmp(conn->who->iss, iss) == 0) {
            sig_send_json(s, conn->id, json_incref(msg));
        }
    }
    json_decref(msg);
}

int sig_join_conn(spk_sig_t *s, sig_conn_t *conn, sig_consult_t *c, sig_part_t *p)
{
    for (int j = 0; j < conn->n_joined; j++) {
        if (conn->joined[j].consult == c) {
            if (conn->joined[j].part != p) {
                conn->joined[j].part->online--;
                conn->joined[j].part = p;
                p->online++;
            }
            return 0;
        }
    }
    if (conn->n_joined == SPK_SIG_MAX_JOINED) {
        return SPK_ERANGE;
    }
    if (conn->n_joined == conn->cap_joined) {
        int cap = conn->cap_joined ? 2 * conn->cap_joined : 2;
        cap = cap > SPK_SIG_MAX_JOINED ? SPK_SIG_MAX_JOINED : cap;
        sig_join_t *j = realloc(conn->joined, (size_t)cap * sizeof(*j));
        if (j == NULL) {
            return SPK_ENOMEM;
        }
        conn->joined = j;
        conn->cap_joined = cap;
    }
    if (spk_u64_push(&c->conns, &c->n_conns, &c->cap_conns, conn->id) != 0) {
        return SPK_ENOMEM;
    }
    conn->joined[conn->n_joined++] = (sig_join_t){.consult = c, .part = p};
    p->online++;
    return 0;
}

void sig_unjoin_conn(spk_sig_t *s, sig_conn_t *conn, sig_consult_t *c, bool notify)
{
    sig_part_t *p = NULL;
    bool had_media = false;
    for (int j = 0; j < conn->n_joined; j++) {
        if (conn->joined[j].consult == c) {
            p = conn->joined[j].part;
            had_media = conn->joined[j].media != NULL;
            sig_media_unjoin(s, conn, &conn->joined[j]);
            conn->joined[j] = conn->joined[--conn->n_joined];
            break;
        }
    }
    if (p == NULL) {
        return;
    }
    for (size_t i = 0; i < c->n_conns; i++) {
        if (c->conns[i] == conn->id) {
            c->conns[i] = c->conns[--c->n_conns];
            break;
        }
    }
    p->online--;
    if (had_media && c->rec.state == SPK_CONSULT_OPEN) {
        sig_media_consult_changed(s, c);
    }
    if (notify && p->online == 0 && c->rec.state == SPK_CONSULT_OPEN) {
        if (p->rec.state == SPK_PART_LOBBY) {
            sig_broadcast_lobby(s, c);
        } else {
            sig_broadcast_roster(s, c);
        }
    }
}

void sig_consult_ended(spk_sig_t *s, sig_consult_t *c)
{
    json_t *m = json_pack("{s:s, s:s}", "type", "consult.ended", "consult", c->rec.id);
    for (size_t i = 0; m != NULL && i < c->n_conns; i++) {
        sig_send_json(s, c->conns[i], json_incref(m));
    }
    json_decref(m);
    /* Everyone is unjoined; the consult is forgotten at the next sweep. */
    while (c->n_conns > 0) {
        sig_conn_t *conn = spk_map_get_u64(&s->conns, c->conns[c->n_conns - 1]);
        if (conn == NULL) {
            c->n_conns--;
            continue;
        }
        sig_unjoin_conn(s, conn, c, false);
    }
}

size_t sig_lobby_waiting(spk_sig_t *s)
{
    size_t n = 0, it = 0;
    void *v;
    while (spk_map_next(&s->consults, &it, &v)) {
        sig_consult_t *c = v;
        for (size_t i = 0; c->rec.state == SPK_CONSULT_OPEN && i < c->n_parts; i++) {
            n += c->parts[i]->rec.state == SPK_PART_LOBBY && c->parts[i]->online > 0;
        }
    }
    return n;
}
