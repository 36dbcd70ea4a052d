/* spreekload: the signaling side of a participant (docs/protocol.md). The GP signs in with a
 * token from the data directory's issuer key, creates the consult and one invite per patient,
 * joins and admits whoever appears in the lobby; each patient redeems an invite and joins. Then
 * every participant sets up its publish and subscribe connections (5.7). */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/rand.h>

#include "load.h"
#include "spk/role.h"
#include "spk/util.h"

static void req_push(load_part_t *p, uint64_t id, load_req_t kind)
{
    if (p->ring_n == LOAD_REQ_RING) {
        fprintf(stderr, "spreekload: participant %d: too many requests in flight\n", p->gidx);
        return;
    }
    unsigned at = (p->ring_head + p->ring_n) % LOAD_REQ_RING;
    p->ring[at].id = id;
    p->ring[at].kind = kind;
    p->ring_n++;
}

/* Answers come in request order: the oldest request in flight is the one answered. */
static load_req_t req_pop(load_part_t *p, json_int_t re)
{
    if (p->ring_n == 0 || (json_int_t)p->ring[p->ring_head].id != re) {
        return REQ_NONE;
    }
    load_req_t k = p->ring[p->ring_head].kind;
    p->ring_head = (p->ring_head + 1) % LOAD_REQ_RING;
    p->ring_n--;
    return k;
}

void load_send_req(load_part_t *p, load_req_t kind, json_t *msg)
{
    if (!msg) {
        return;
    }
    uint64_t id = ++p->next_id;
    json_object_set_new(msg, "id", json_integer((json_int_t)id));
    char *txt = json_dumps(msg, JSON_COMPACT);
    json_decref(msg);
    if (!txt) {
        return;
    }
    req_push(p, id, kind);
    spk_ws_client_send(&p->ws, SPK_WS_OP_TEXT, txt, strlen(txt));
    free(txt);
}

static int gp_token(load_part_t *p, char *out, size_t cap)
{
    spk_token_claims_t c;
    memset(&c, 0, sizeof(c));
    time_t now = time(NULL);
    snprintf(c.sub, sizeof(c.sub), "gp-load-%d", p->cons->idx);
    snprintf(c.name, sizeof(c.name), "Dr. Load %d", p->cons->idx);
    c.role = SPK_ROLE_GP;
    snprintf(c.practice, sizeof(c.practice), "praktijk-load");
    snprintf(c.aud, sizeof(c.aud), "spreekkamer");
    uint8_t r[9];
    RAND_bytes(r, sizeof(r));
    spk_hex_encode(c.jti, r, sizeof(r));
    c.iat = now;
    c.nbf = now - 5;
    c.exp = now + 3600;
    long n = spk_token_sign(&p->L->signer, &c, out, cap);
    return n < 0 ? (int)n : 0;
}

static void on_hello(load_part_t *p)
{
    if (p->idx == 0) {
        char tok[SPK_TOKEN_MAX_LEN + 1];
        if (gp_token(p, tok, sizeof(tok)) != 0) {
            fprintf(stderr, "spreekload: cannot sign a token\n");
            p->L->sig_errors++;
            return;
        }
        load_send_req(p, REQ_AUTH, json_pack("{s:s, s:s}", "type", "auth", "token", tok));
    } else {
        char name[32];
        snprintf(name, sizeof(name), "Patient %d-%d", p->cons->idx, p->idx);
        load_send_req(p, REQ_REDEEM,
                      json_pack("{s:s, s:s, s:s}", "type", "invite.redeem", "invite",
                                p->cons->invites[p->idx - 1], "name", name));
    }
}

static void join(load_part_t *p)
{
    load_send_req(p, REQ_JOIN,
                  json_pack("{s:s, s:s}", "type", "consult.join", "consult", p->cons->id));
}

static void start_patients(load_consult_t *c)
{
    for (int i = 1; i < c->L->k; i++) {
        load_part_start(&c->parts[i]);
    }
}

static void admit_lobby(load_part_t *gp, json_t *lobby)
{
    size_t i;
    json_t *e;
    json_array_foreach(lobby, i, e)
    {
        const char *id = json_string_value(json_object_get(e, "id"));
        load_consult_t *c = gp->cons;
        bool known = false;
        for (int k = 0; id && k < c->n_admits; k++) {
            known = known || strcmp(c->admits[k], id) == 0;
        }
        if (id && !known && c->n_admits < LOAD_MAX_K) {
            snprintf(c->admits[c->n_admits++], sizeof(c->admits[0]), "%s", id);
            load_send_req(gp, REQ_ADMIT,
                          json_pack("{s:s, s:s, s:s}", "type", "lobby.admit", "consult",
                                    gp->cons->id, "participant", id));
        }
    }
}

/* m[a][b] as a string, or "". */
static const char *str2(json_t *m, const char *a, const char *b)
{
    const char *v = json_string_value(json_object_get(json_object_get(m, a), b));
    return v ? v : "";
}

/* Media starts once the participant has joined and is admitted: professionals are at once, a
 * patient when the GP has admitted it from the lobby (the relay refuses media before that), which
 * under load can come after the patient's own consult.join has been answered. */
static void start_media(load_part_t *p)
{
    if (!p->joined || !p->admitted || p->media_started) {
        return;
    }
    if (load_media_start(p) != 0) {
        p->L->media_failed++;
    }
}

static void on_ok(load_part_t *p, load_req_t kind, json_t *m)
{
    load_consult_t *c = p->cons;
    switch (kind) {
    case REQ_AUTH:
        load_send_req(p, REQ_CREATE,
                      json_pack("{s:s, s:s, s:s}", "type", "consult.create", "patient",
                                "pseudo-load", "title", "spreekload"));
        break;
    case REQ_CREATE: {
        snprintf(c->id, sizeof(c->id), "%s", str2(m, "consult", "id"));
        for (int i = 1; i < c->L->k; i++) {
            load_send_req(p, REQ_INVITE,
                          json_pack("{s:s, s:s}", "type", "invite.create", "consult", c->id));
        }
        if (c->L->k == 1) {
            join(p);
        }
        break;
    }
    case REQ_INVITE: {
        const char *code = str2(m, "invite", "code");
        if (code[0] && c->n_invites < LOAD_MAX_K) {
            snprintf(c->invites[c->n_invites++], sizeof(c->invites[0]), "%s", code);
        }
        if (c->n_invites == c->L->k - 1) {
            join(p);
            start_patients(c);
        }
        break;
    }
    case REQ_REDEEM:
        snprintf(p->pid, sizeof(p->pid), "%s", str2(m, "participant", "id"));
        join(p);
        break;
    case REQ_JOIN: {
        snprintf(p->pid, sizeof(p->pid), "%s", str2(m, "participant", "id"));
        p->joined = true;
        const char *st = str2(m, "participant", "state");
        p->admitted = p->admitted || (st != NULL && strcmp(st, "admitted") == 0);
        start_media(p);
        break;
    }
    case REQ_PUBLISH:
        load_media_on_answer(p, json_string_value(json_object_get(m, "sdp")));
        load_send_req(p, REQ_SUBSCRIBE,
                      json_pack("{s:s, s:s, s:b}", "type", "media.subscribe", "consult", c->id,
                                "e2ee", p->L->e2ee || p->L->e2ee_tap));
        break;
    case REQ_SUBSCRIBE:
        break;
    case REQ_ANSWER:
        p->sub.trickle = true;
        load_media_trickle(p);
        break;
    default:
        break;
    }
}

static void on_event(load_part_t *p, const char *type, json_t *m)
{
    if (strcmp(type, "lobby.update") == 0 && p->idx == 0) {
        admit_lobby(p, json_object_get(m, "lobby"));
    } else if (strcmp(type, "media.offer") == 0) {
        load_media_on_offer(p, json_string_value(json_object_get(m, "sdp")),
                            (int64_t)json_integer_value(json_object_get(m, "version")));
    } else if (strcmp(type, "media.candidate") == 0) {
        load_media_on_candidate(p, json_string_value(json_object_get(m, "pc")),
                                json_string_value(json_object_get(m, "candidate")));
    } else if (strcmp(type, "media.state") == 0) {
        const char *st = json_string_value(json_object_get(m, "state"));
        if (st && strcmp(st, "failed") == 0) {
            p->L->media_failed++;
            fprintf(stderr, "spreekload: participant %d: media %s failed: %s\n", p->gidx,
                    json_string_value(json_object_get(m, "pc")),
                    json_string_value(json_object_get(m, "detail")));
        }
    } else if (strcmp(type, "admitted") == 0) {
        p->admitted = true;
        start_media(p);
    } else if (strcmp(type, "hello") == 0) {
        on_hello(p);
    }
}

static bool is_str(const json_t *v, const char *want)
{
    const char *s = json_string_value(v);
    return s && strcmp(s, want) == 0;
}

static void on_text(spk_ws_client_t *ws, const char *msg, size_t len, uint64_t now)
{
    load_part_t *p = ws->data;
    json_error_t err;
    json_t *m = json_loadb(msg, len, 0, &err);
    const char *type = json_string_value(json_object_get(m, "type"));
    if (!type) {
        json_decref(m);
        return;
    }
    if (strcmp(type, "ok") == 0 || strcmp(type, "error") == 0) {
        load_req_t kind = req_pop(p, json_integer_value(json_object_get(m, "re")));
        if (type[0] == 'o') {
            on_ok(p, kind, m);
        } else if (kind != REQ_ANSWER || !is_str(json_object_get(m, "code"), "bad_state")) {
            /* An answer to an offer that was superseded is expected to be refused. */
            p->L->sig_errors++;
            if (p->L->sig_errors <= 5) {
                fprintf(stderr, "spreekload: participant %d: request %d: %.*s\n", p->gidx,
                        (int)kind, (int)(len > 300 ? 300 : len), msg);
            }
        }
    } else {
        on_event(p, type, m);
    }
    json_decref(m);
}

static void on_end(spk_ws_client_t *ws, const char *why)
{
    load_part_t *p = ws->data;
    p->ended = true;
    p->L->ws_lost++;
    fprintf(stderr, "spreekload: participant %d: connection ended: %s\n", p->gidx, why);
}

static const spk_ws_client_cbs_t g_cbs = {.text_cb = on_text, .end_cb = on_end};

void load_part_start(load_part_t *p)
{
    p->t_start_ns = spk_mono_ns();
    p->ws.data = p;
    int r = spk_ws_client_connect(&p->ws, &p->L->uv, (const struct sockaddr *)&p->L->addr,
                                  p->L->host_port, &g_cbs, &p->L->rng);
    if (r != 0) {
        p->ended = true;
        p->L->ws_lost++;
        fprintf(stderr, "spreekload: connect: %s\n", uv_strerror(r));
    }
}

void load_part_close(load_part_t *p)
{
    spk_ws_client_close(&p->ws);
}
