/* Access decisions that hold for the whole life of a connection, not only when a request
 * arrives: a token that expires, a delegation that is revoked or runs out, a consent that is
 * withdrawn. Each ends what flows at once: the connection leaves the consult (no more lobby,
 * roster or media events; its relay endpoints close, see media.c), the client is told
 * (access.ended, or session.expired and a close with 4004), and it is audited.
 *
 * Also the per-token connection limit: one token (one "<iss> <jti>") may hold at most
 * max_connections_per_token authenticated connections. */
#include "core_int.h"

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "spk/error.h"
#include "spk/log.h"

void sig_end_access(spk_sig_t *s, sig_conn_t *conn, sig_consult_t *c, const char *reason,
                    const char *detail)
{
    char consult_id[SPK_ID_LEN], patient[SPK_SUB_LEN], practice[SPK_SUB_LEN];
    snprintf(consult_id, sizeof(consult_id), "%s", c->rec.id);
    snprintf(patient, sizeof(patient), "%s", c->rec.patient);
    snprintf(practice, sizeof(practice), "%s", c->rec.practice);
    const char *behalf = conn->who->role == SPK_ROLE_ASSISTANT   ? conn->who->acts_for
                         : conn->who->role == SPK_ROLE_REMOTE_GP ? practice
                                                                 : "";
    const sig_audit_ev_t ev = {.who = conn->who,
                               .remote = conn->remote,
                               .event = "access.end",
                               .outcome = 0,
                               .on_behalf_of = behalf,
                               .patient = patient,
                               .practice = practice,
                               .object = consult_id,
                               .detail = detail != NULL ? detail : reason};
    uint64_t t = 0;
    bool own = !spk_store_in_txn(s->store);
    int rc = own ? spk_store_begin(s->store) : 0;
    if (rc == 0) {
        rc = sig_audit_write(s, &ev);
    }
    if (own && rc == 0) {
        rc = spk_store_commit(s->store, &t);
    } else if (own) {
        spk_store_rollback(s->store);
    }
    if (rc != 0) {
        /* Access ends regardless: the failure to record it is logged by sig_audit_write. */
        spk_error(conn->id, "access to %s ended without an audit entry", consult_id);
    }
    uint64_t saved = s->cur_ticket;
    if (t > s->cur_ticket) {
        s->cur_ticket = t;
    }
    spk_info(conn->id, "access to consult %s ended: %s", consult_id, reason);
    sig_chat_access_changed(s);
    sig_bus_access_ended(s, c);
    sig_unjoin_conn(s, conn, c, true); /* may free c */
    sig_send_json(s, conn->id,
                  json_pack("{s:s, s:s, s:s}", "type", "access.ended", "consult", consult_id,
                            "reason", reason));
    s->cur_ticket = saved;
}

/* The token of an authenticated connection has expired: it leaves every consult, is told, and
 * closed. */
static void expire_session(spk_sig_t *s, sig_conn_t *conn)
{
    while (conn->n_joined > 0) {
        sig_end_access(s, conn, conn->joined[conn->n_joined - 1].consult, "token_expired", NULL);
    }
    const sig_audit_ev_t ev = {.who = conn->who,
                               .remote = conn->remote,
                               .event = "session.expire",
                               .outcome = SPK_ETOKENEXPIRED,
                               .practice = conn->who->practice,
                               .object = conn->who->jti};
    sig_audit_write(s, &ev);
    sig_send_json(s, conn->id,
                  json_pack("{s:s, s:I}", "type", "session.expired", "expired_at",
                            (json_int_t)conn->who->exp));
    sig_close_conn(s, conn, SPK_WS_TOKEN_EXPIRED, "token expired");
}

void sig_access_tick(spk_sig_t *s, int64_t now)
{
    /* Collect first: ending access changes the connections' join lists but not the map. */
    size_t it = 0;
    void *v;
    while (spk_map_next(&s->conns, &it, &v)) {
        sig_conn_t *conn = v;
        if (!conn->authed || conn->closing) {
            continue;
        }
        if (now >= conn->who->exp + s->cfg.token_leeway_s) {
            expire_session(s, conn);
            continue;
        }
        for (int j = conn->n_joined - 1; j >= 0; j--) {
            sig_join_t *jn = &conn->joined[j];
            if (jn->access_until > 0 && now >= jn->access_until) {
                char detail[128];
                snprintf(detail, sizeof(detail), "delegation %s ran out", jn->delegation);
                sig_end_access(s, conn, jn->consult, "delegation_ended", detail);
            }
        }
    }
}

void sig_access_delegation_revoked(spk_sig_t *s, const spk_delegation_rec_t *d)
{
    size_t it = 0;
    void *v;
    while (spk_map_next(&s->conns, &it, &v)) {
        sig_conn_t *conn = v;
        if (!conn->authed || conn->who->role != SPK_ROLE_REMOTE_GP ||
            strcmp(conn->who->sub, d->grantee) != 0 ||
            strcmp(conn->who->iss, d->grantee_iss) != 0) {
            continue;
        }
        conn->delegation_used[0] = '\0';
        for (int j = conn->n_joined - 1; j >= 0; j--) {
            sig_consult_t *c = conn->joined[j].consult;
            if (strcmp(c->rec.practice, d->practice) == 0) {
                char detail[128];
                snprintf(detail, sizeof(detail), "delegation %s revoked", d->id);
                sig_end_access(s, conn, c, "delegation_ended", detail);
            }
        }
    }
}

void sig_access_consent_withdrawn(spk_sig_t *s, sig_consult_t *c)
{
    /* From the end: ending access swaps the last connection into the current slot, which was
     * looked at already. The consult is open, so it stays in memory. */
    for (size_t i = c->n_conns; i-- > 0;) {
        sig_conn_t *conn = spk_map_get_u64(&s->conns, c->conns[i]);
        if (conn != NULL && conn->who->role == SPK_ROLE_SPECIALIST) {
            sig_end_access(s, conn, c, "consent_withdrawn", "meekijkconsult consent withdrawn");
        }
    }
}

/* ---- per-token connection limit ---- */

int sig_token_count_add(spk_sig_t *s, sig_conn_t *conn)
{
    char key[sizeof(conn->tok_key)];
    snprintf(key, sizeof(key), "%s %s", conn->who->iss, conn->who->jti);
    uintptr_t n = (uintptr_t)spk_map_get_str(&s->tok_conns, key);
    if ((int)n >= s->cfg.max_connections_per_token) {
        return SPK_ETOOMANY;
    }
    int rc = spk_map_put_str(&s->tok_conns, key, (void *)(n + 1));
    if (rc == 0) {
        memcpy(conn->tok_key, key, sizeof(key));
    }
    return rc;
}

void sig_token_count_del(spk_sig_t *s, sig_conn_t *conn)
{
    if (conn->tok_key[0] == '\0') {
        return;
    }
    uintptr_t n = (uintptr_t)spk_map_get_str(&s->tok_conns, conn->tok_key);
    if (n <= 1) {
        spk_map_del_str(&s->tok_conns, conn->tok_key);
    } else {
        spk_map_put_str(&s->tok_conns, conn->tok_key, (void *)(n - 1));
    }
    conn->tok_key[0] = '\0';
}
