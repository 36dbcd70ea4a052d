/* One consult's media across spreekd nodes (docs/architecture.md "Several nodes", bus.c).
 *
 * Every node drives the consult's one relay node for its own connections (the relay node keeps
 * the consult's endpoints of all nodes together), so packets already cross nodes; what a node
 * lacks is the other nodes' publishers for its subscribers' offers (SSRCs, payload types,
 * codecs). Each node says them on the bus, per consult, whenever its own publishers change:
 *
 *   {"k":"media", "id":CONSULT, "pubs":{PART:[TRACK, ...], ...}}   the node's whole list
 *   {"k":"media?", "id":CONSULT}                                   "say yours again"
 *
 *   TRACK = {"kind":0|1 (audio|video), "ssrc":U32, "rtx_ssrc":U32, "track":ID,
 *            "c":CODEC, "x":CODEC (rtx; pt 0 = none)}
 *   CODEC = [pt, name, clock_rate, channels, fmtp, fb, codec, apt, packetization_mode,
 *            profile_level_id, level_asymmetry_allowed]
 *
 * A node keeps the lists of the consults it has loaded, the newest list naming a participant
 * winning (a participant publishes from one connection), and drops a node's lists when that
 * node is gone (bus.c). Subscribers here are offered what remote publishers send only while
 * this node's view of the participant is admitted. Everything read is checked: a bad track is
 * counted (bus_bad) and the list ignored. */
#include "media_int.h"

#include <stdlib.h>
#include <string.h>

#include "spk/error.h"
#include "spk/log.h"
#include "spk/util.h"

#define RPUBS_MAX 32 /* remote publishers per consult */

struct sig_rpub {
    char node[SIG_NODE_LEN];
    char part[SPK_ID_LEN];
    sig_track_t tracks[SIG_MEDIA_MAX_TRACKS];
    int n_tracks;
};

void sig_media_bus_free(sig_consult_t *c)
{
    free(c->rpubs);
    c->rpubs = NULL;
    c->n_rpubs = 0;
}

/* ---- saying ---- */

static json_t *codec_json(const spk_sdp_codec_t *k)
{
    return json_pack("[i, s, I, i, s, I, i, i, i, I, b]", k->pt, k->name, (json_int_t)k->clock_rate,
                     k->channels, k->fmtp, (json_int_t)k->fb, (int)k->codec, k->apt,
                     k->packetization_mode, (json_int_t)k->profile_level_id,
                     k->level_asymmetry_allowed);
}

static json_t *track_json(const sig_track_t *t)
{
    return json_pack("{s:i, s:I, s:I, s:s, s:o, s:o}", "kind",
                     t->kind == SPK_SDP_KIND_VIDEO ? 1 : 0, "ssrc", (json_int_t)t->ssrc, "rtx_ssrc",
                     (json_int_t)t->rtx_ssrc, "track", t->track, "c", codec_json(&t->codec), "x",
                     codec_json(&t->rtx));
}

/* This node's publishers in c: {PART: [TRACK, ...]}. */
static json_t *local_pubs(spk_sig_t *s, sig_consult_t *c)
{
    json_t *pubs = json_object();
    for (size_t i = 0; pubs != NULL && i < c->n_conns; i++) {
        sig_conn_t *conn = spk_map_get_u64(&s->conns, c->conns[i]);
        for (int k = 0; conn != NULL && k < conn->n_joined; k++) {
            const sig_join_t *j = &conn->joined[k];
            const sig_media_t *m = j->media;
            if (j->consult != c || m == NULL || m->pub.id == 0 || m->n_tracks == 0 ||
                j->part->rec.state != SPK_PART_ADMITTED || c->rec.state != SPK_CONSULT_OPEN) {
                continue;
            }
            json_t *list = json_array();
            for (int t = 0; list != NULL && t < m->n_tracks; t++) {
                json_array_append_new(list, track_json(&m->tracks[t]));
            }
            json_object_set_new(pubs, j->part->rec.id, list);
        }
    }
    return pubs;
}

/* "PART:SSRC,SSRC PART:…" of a list, for the debug log. */
static void pubs_summary(json_t *pubs, char *out, size_t cap)
{
    size_t o = 0;
    const char *part;
    json_t *list;
    out[0] = '\0';
    json_object_foreach(pubs, part, list)
    {
        int n = snprintf(out + o, cap - o, "%s%s:", o ? " " : "", part);
        for (size_t t = 0; n >= 0 && (size_t)n < cap - o && t < json_array_size(list); t++) {
            o += (size_t)n;
            json_int_t ssrc = json_integer_value(json_object_get(json_array_get(list, t), "ssrc"));
            n = snprintf(out + o, cap - o, "%s%lld", t ? "," : "", (long long)ssrc);
        }
        if (n < 0 || (size_t)n >= cap - o) {
            return;
        }
        o += (size_t)n;
    }
}

void sig_media_bus_say(spk_sig_t *s, sig_consult_t *c, bool force)
{
    if (s->io.publish_cb == NULL || s->relay == NULL) {
        return;
    }
    json_t *pubs = local_pubs(s, c);
    char *txt = pubs != NULL ? json_dumps(pubs, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    if (txt == NULL) {
        json_decref(pubs);
        return;
    }
    uint64_t said = spk_fnv1a64(txt) | 1u;
    bool empty = json_object_size(pubs) == 0;
    free(txt);
    /* Nothing new, or nothing to say to a node that asked: it has heard nothing from us. */
    if ((!force && said == c->media_said) ||
        (force && empty && (c->media_said == 0 || c->media_said == (spk_fnv1a64("{}") | 1u)))) {
        json_decref(pubs);
        return;
    }
    c->media_said = said;
    if (spk_log_get_level() <= SPK_LOG_DEBUG) {
        char sum[512];
        pubs_summary(pubs, sum, sizeof(sum));
        spk_debug(0, "media bus: %s says its publishers in %s%s: {%s}", s->node, c->rec.id,
                  force ? " (asked)" : "", sum);
    }
    sig_bus_publish_media(
        s, json_pack("{s:s, s:s, s:o}", "k", "media", "id", c->rec.id, "pubs", pubs));
}

void sig_media_bus_resync(spk_sig_t *s, sig_consult_t *c)
{
    if (s->io.publish_cb == NULL || s->relay == NULL) {
        return;
    }
    sig_media_bus_say(s, c, true);
    for (size_t i = 0; i < c->n_conns; i++) {
        sig_conn_t *conn = spk_map_get_u64(&s->conns, c->conns[i]);
        for (int k = 0; conn != NULL && k < conn->n_joined; k++) {
            const sig_media_t *m = conn->joined[k].media;
            if (conn->joined[k].consult == c && m != NULL && m->sub.id != 0) {
                sig_media_bus_ask(s, c); /* a subscriber here: the others' lists */
                return;
            }
        }
    }
}

void sig_media_bus_ask(spk_sig_t *s, sig_consult_t *c)
{
    if (s->io.publish_cb != NULL && s->relay != NULL) {
        sig_bus_publish_media(s, json_pack("{s:s, s:s}", "k", "media?", "id", c->rec.id));
    }
}

/* ---- hearing ---- */

/* Text that goes into an SDP line as it is: printable ASCII without spaces when !spaces. */
static bool sdp_safe(const char *v, size_t cap, bool spaces)
{
    if (v == NULL || strlen(v) >= cap) {
        return false;
    }
    for (const char *p = v; *p != '\0'; p++) {
        if ((unsigned char)*p < 0x21 || (unsigned char)*p > 0x7e) {
            if (!(spaces && *p == ' ')) {
                return false;
            }
        }
    }
    return true;
}

static bool int_in(json_t *v, json_int_t lo, json_int_t hi, json_int_t *out)
{
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi) {
        return false;
    }
    *out = json_integer_value(v);
    return true;
}

static bool codec_of(json_t *a, spk_sdp_codec_t *k)
{
    json_int_t v[9];
    static const json_int_t lo[] = {0, 0, 0, 0, 0, -1, -1, 0};
    static const json_int_t hi[] = {127, UINT32_MAX, 255,     UINT32_MAX, SPK_CODEC_PCMA,
                                    127, 1,          0xffffff};
    static const size_t at[] = {0, 2, 3, 5, 6, 7, 8, 9};
    const char *name = json_string_value(json_array_get(a, 1));
    const char *fmtp = json_string_value(json_array_get(a, 4));
    if (!json_is_array(a) || json_array_size(a) != 11 || !json_is_boolean(json_array_get(a, 10)) ||
        !sdp_safe(name, sizeof(k->name), false) || !sdp_safe(fmtp, sizeof(k->fmtp), true)) {
        return false;
    }
    for (size_t i = 0; i < sizeof(at) / sizeof(at[0]); i++) {
        if (!int_in(json_array_get(a, at[i]), lo[i], hi[i], &v[i])) {
            return false;
        }
    }
    memset(k, 0, sizeof(*k));
    k->pt = (uint8_t)v[0];
    snprintf(k->name, sizeof(k->name), "%s", name);
    k->clock_rate = (uint32_t)v[1];
    k->channels = (uint8_t)v[2];
    snprintf(k->fmtp, sizeof(k->fmtp), "%s", fmtp);
    k->fb = (uint32_t)v[3];
    k->codec = (spk_codec_t)v[4];
    k->apt = (int16_t)v[5];
    k->packetization_mode = (int8_t)v[6];
    k->profile_level_id = (uint32_t)v[7];
    k->level_asymmetry_allowed = json_is_true(json_array_get(a, 10));
    return true;
}

static bool track_of(json_t *o, sig_track_t *t)
{
    json_int_t kind, ssrc, rtx;
    const char *id = json_string_value(json_object_get(o, "track"));
    if (!json_is_object(o) || !int_in(json_object_get(o, "kind"), 0, 1, &kind) ||
        !int_in(json_object_get(o, "ssrc"), 1, UINT32_MAX, &ssrc) ||
        !int_in(json_object_get(o, "rtx_ssrc"), 0, UINT32_MAX, &rtx) ||
        !sdp_safe(id, sizeof(t->track), false)) {
        return false;
    }
    memset(t, 0, sizeof(*t));
    t->kind = kind == 1 ? SPK_SDP_KIND_VIDEO : SPK_SDP_KIND_AUDIO;
    t->ssrc = (uint32_t)ssrc;
    t->rtx_ssrc = (uint32_t)rtx;
    snprintf(t->track, sizeof(t->track), "%s", id);
    return codec_of(json_object_get(o, "c"), &t->codec) &&
           codec_of(json_object_get(o, "x"), &t->rtx) && t->codec.pt != 0;
}

/* Removes entry i (order does not matter). */
static void rpub_drop(sig_consult_t *c, size_t i)
{
    c->rpubs[i] = c->rpubs[--c->n_rpubs];
}

/* Replaces node's list in c by pubs; false when pubs is malformed (nothing changed then). */
static bool rpubs_set(sig_consult_t *c, const char *node, json_t *pubs)
{
    if (!json_is_object(pubs) || json_object_size(pubs) > RPUBS_MAX) {
        return false;
    }
    struct sig_rpub *in = calloc(json_object_size(pubs) + 1, sizeof(*in));
    size_t n = 0;
    const char *part;
    json_t *list;
    bool ok = in != NULL;
    json_object_foreach(pubs, part, list)
    {
        if (!ok) {
            break;
        }
        ok = strlen(part) < SPK_ID_LEN && json_is_array(list) &&
             json_array_size(list) <= SIG_MEDIA_MAX_TRACKS;
        for (size_t t = 0; ok && t < json_array_size(list); t++) {
            ok = track_of(json_array_get(list, t), &in[n].tracks[t]);
        }
        if (ok) {
            snprintf(in[n].node, sizeof(in[n].node), "%s", node);
            snprintf(in[n].part, sizeof(in[n].part), "%s", part);
            in[n].n_tracks = (int)json_array_size(list);
            n++;
        }
    }
    if (!ok) {
        free(in);
        return false;
    }
    /* The node's old list goes, and so does any other node's entry for a participant named
     * here: a participant publishes from one connection, the newest. */
    for (size_t i = c->n_rpubs; i-- > 0;) {
        bool named = false;
        for (size_t k = 0; k < n && !named; k++) {
            named = strcmp(c->rpubs[i].part, in[k].part) == 0;
        }
        if (named || strcmp(c->rpubs[i].node, node) == 0) {
            rpub_drop(c, i);
        }
    }
    if (c->n_rpubs + n > RPUBS_MAX) {
        free(in);
        return false;
    }
    struct sig_rpub *grown = realloc(c->rpubs, (c->n_rpubs + n + 1) * sizeof(*grown));
    if (grown == NULL) {
        free(in);
        return false;
    }
    c->rpubs = grown;
    memcpy(c->rpubs + c->n_rpubs, in, n * sizeof(*in));
    c->n_rpubs += n;
    free(in);
    return true;
}

void sig_media_bus_input(spk_sig_t *s, sig_consult_t *c, const char *node, const char *kind,
                         json_t *ev)
{
    if (spk_log_get_level() <= SPK_LOG_DEBUG) {
        char sum[512] = "";
        pubs_summary(json_object_get(ev, "pubs"), sum, sizeof(sum));
        spk_debug(0, "media bus: %s hears %s from %s in %s: {%s}", s->node, kind, node, c->rec.id,
                  sum);
    }
    if (strcmp(kind, "media?") == 0) {
        sig_media_bus_say(s, c, true);
        return;
    }
    if (!rpubs_set(c, node, json_object_get(ev, "pubs"))) {
        s->bus_bad++;
        return;
    }
    sig_media_consult_changed(s, c);
}

void sig_media_bus_node_gone(spk_sig_t *s, const char *node)
{
    size_t it = 0;
    void *v;
    while (spk_map_next(&s->consults, &it, &v)) {
        sig_consult_t *c = v;
        size_t before = c->n_rpubs;
        for (size_t i = c->n_rpubs; i-- > 0;) {
            if (strcmp(c->rpubs[i].node, node) == 0) {
                rpub_drop(c, i);
            }
        }
        if (c->n_rpubs != before && s->relay != NULL) {
            sig_media_consult_changed(s, c);
        }
    }
}

/* ---- offers ---- */

int sig_media_remote_tracks(sig_consult_t *c, size_t i, const char **part,
                            const sig_track_t **tracks)
{
    if (i >= c->n_rpubs) {
        return -1;
    }
    *part = c->rpubs[i].part;
    *tracks = c->rpubs[i].tracks;
    return c->rpubs[i].n_tracks;
}
