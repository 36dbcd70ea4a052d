/* The /api/v1 routes and their mapping onto core actions (see api.h). The OpenAPI file
 * docs/openapi.yaml documents exactly the table below (tests/integration/api/openapi.test.mjs
 * checks both ways). */
#include "api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spk/error.h"
#include "spk/text.h"

typedef enum {
    R_LIST,
    R_CREATE,
    R_GET,
    R_END,
    R_INVITE_CREATE,
    R_INVITE_LIST,
    R_INVITE_REVOKE,
    R_LINK,
    R_FHIR_CREATE,
    R_FHIR_GET,
    R_FHIR_SEARCH,
} route_id_t;

typedef struct {
    const char *method;
    const char *pattern; /* '*' stands for one id segment */
    route_id_t id;
    const char *action;
    const char *fields; /* body fields accepted (space-separated); NULL: no body */
    const char *query;  /* query parameters accepted */
    int ok_status;
    bool fhir;
} route_t;

/* api-routes:begin */
static const route_t g_routes[] = {
    {"GET", "/api/v1/consults", R_LIST, "consult.list", NULL, "date practice gp", 200, false},
    {"POST", "/api/v1/consults", R_CREATE, "consult.create",
     "patient gp title practice planned_at planned_end", "", 201, false},
    {"GET", "/api/v1/consults/*", R_GET, "consult.get", NULL, "gp", 200, false},
    {"POST", "/api/v1/consults/*/end", R_END, "consult.end", "gp", "", 200, false},
    {"POST", "/api/v1/consults/*/invites", R_INVITE_CREATE, "invite.create", "ttl gp", "", 201,
     false},
    {"GET", "/api/v1/consults/*/invites", R_INVITE_LIST, "invite.list", NULL, "gp", 200, false},
    {"DELETE", "/api/v1/consults/*/invites/*", R_INVITE_REVOKE, "invite.revoke", NULL, "gp", 200,
     false},
    {"POST", "/api/v1/consults/*/console-link", R_LINK, "console.link", "gp name", "", 201, false},
    {"POST", "/api/v1/fhir/Appointment", R_FHIR_CREATE, "consult.create", NULL, "", 201, true},
    {"GET", "/api/v1/fhir/Appointment/*", R_FHIR_GET, "consult.get", NULL, "gp", 200, true},
    {"GET", "/api/v1/fhir/Appointment", R_FHIR_SEARCH, "consult.list", NULL, "date practice gp",
     200, true},
};
/* api-routes:end */

#define N_ROUTES (sizeof(g_routes) / sizeof(g_routes[0]))
#define MAX_PARAMS 2

struct api_call {
    const route_t *r;
    char params[MAX_PARAMS][48];
    json_t *req; /* the first action's fields */
    char idem[256];
};

/* ---- errors ---- */

int api_status(int err)
{
    switch (err) {
    case SPK_EBADJSON:
    case SPK_EBADMSG:
    case SPK_EINVAL:
    case SPK_EDECODE:
        return 400;
    case SPK_EUNAUTH:
    case SPK_ETOKENEXPIRED:
    case SPK_ETOKENNOTYET:
    case SPK_ETOKENINVALID:
    case SPK_ETOKENISSUER:
    case SPK_ETOKENREVOKED:
        return 401;
    case SPK_EFORBIDDEN:
        return 403;
    case SPK_ENOTFOUND:
        return 404;
    case SPK_EUNKNOWNTYPE:
        return 405;
    case SPK_ECONSULTENDED:
    case SPK_ESTATE:
    case SPK_ECONSENT:
    case SPK_EINVITEUSED:
    case SPK_EINVITEREVOKED:
    case SPK_EINVITEEXPIRED:
    case SPK_EEXIST:
        return 409;
    case SPK_ETOOBIG:
        return 413;
    case SPK_EIDEMPOTENCY:
        return 422;
    case SPK_ERATE:
    case SPK_ETOOMANY:
        return 429;
    case SPK_ESHUTDOWN:
        return 503;
    default:
        return 500;
    }
}

int api_wire_err(const char *code)
{
    for (int e = -1; e >= -SPK_ERR_COUNT; e--) {
        if (code != NULL && strcmp(spk_err_wire(e), code) == 0) {
            return e;
        }
    }
    return SPK_EINVAL;
}

char *api_error_body(bool fhir, const char *code, const char *message)
{
    /* The reason may quote what the client sent (a query parameter's name, a field cut at a
     * length): anything that is not accepted text is escaped, so the body is always JSON. */
    char c[64], m[512];
    spk_text_escape(c, sizeof(c), code != NULL ? code : "internal");
    spk_text_escape(m, sizeof(m), message != NULL ? message : "");
    json_t *o = fhir ? api_fhir_outcome(c, m) : json_pack("{s:s, s:s}", "code", c, "message", m);
    char *txt = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    return txt;
}

/* ---- routing ---- */

/* Does path match pattern? Fills the '*' segments. */
static bool match(const char *pattern, const char *path, char params[MAX_PARAMS][48])
{
    int np = 0;
    while (*pattern != '\0' && *path != '\0') {
        if (*pattern == '*') {
            size_t n = strcspn(path, "/");
            if (n == 0 || n >= 48 || np == MAX_PARAMS) {
                return false;
            }
            for (size_t i = 0; i < n; i++) {
                char ch = path[i];
                if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                      (ch >= '0' && ch <= '9') || ch == '_' || ch == '-')) {
                    return false;
                }
            }
            memcpy(params[np], path, n);
            params[np++][n] = '\0';
            path += n;
            pattern++;
        } else if (*pattern++ != *path++) {
            return false;
        }
    }
    return *pattern == '\0' && (*path == '\0' || strcmp(path, "/") == 0);
}

static bool word_in(const char *list, const char *w, size_t n)
{
    for (const char *p = list; p != NULL && *p != '\0';) {
        size_t len = strcspn(p, " ");
        if (len == n && strncmp(p, w, n) == 0) {
            return true;
        }
        p += len;
        while (*p == ' ') {
            p++;
        }
    }
    return false;
}

/* Query parameters into req (date → from/until); unknown names are refused. */
static int map_query(const api_req_t *in, const route_t *r, json_t *req, char *why, size_t wl)
{
    bool have_date = false;
    for (int i = 0; i < in->n_query; i++) {
        const char *q = in->query[i];
        const char *eq = strchr(q, '=');
        size_t n = eq != NULL ? (size_t)(eq - q) : strlen(q);
        if (eq == NULL || !word_in(r->query, q, n)) {
            snprintf(why, wl, "unknown query parameter: %.*s", (int)(n > 40 ? 40 : n), q);
            return SPK_EBADMSG;
        }
        if (strncmp(q, "date", n) == 0) {
            int64_t from, until;
            if (!api_local_day(eq + 1, &from, &until)) {
                snprintf(why, wl, "date must be YYYY-MM-DD");
                return SPK_EBADMSG;
            }
            json_object_set_new(req, "from", json_integer(from));
            json_object_set_new(req, "until", json_integer(until));
            have_date = true;
        } else {
            char name[16];
            snprintf(name, sizeof(name), "%.*s", (int)n, q);
            json_object_set_new(req, name, json_string(eq + 1));
        }
    }
    if ((r->id == R_LIST || r->id == R_FHIR_SEARCH) && !have_date) {
        snprintf(why, wl, "missing query parameter: date (YYYY-MM-DD)");
        return SPK_EBADMSG;
    }
    return 0;
}

/* The JSON body into req: an object whose fields the route accepts (unknown ones refused). */
static int map_body(const api_req_t *in, const route_t *r, json_t *req, char *why, size_t wl)
{
    if (in->body == NULL || in->body_len == 0) {
        if (r->id == R_FHIR_CREATE || (r->fields != NULL && strstr(r->fields, "patient"))) {
            snprintf(why, wl, "a JSON body is required");
            return SPK_EBADJSON;
        }
        return 0;
    }
    if (r->fields == NULL && !r->fhir) {
        snprintf(why, wl, "this request takes no body");
        return SPK_EBADMSG;
    }
    const char *ct = in->content_type;
    bool json_ct = strncmp(ct, "application/json", 16) == 0 ||
                   (r->fhir && strncmp(ct, "application/fhir+json", 21) == 0);
    if (!json_ct) {
        snprintf(why, wl, "Content-Type must be application/json%s",
                 r->fhir ? " or application/fhir+json" : "");
        return SPK_EBADJSON;
    }
    json_error_t jerr;
    json_t *b = json_loadb(in->body, in->body_len, JSON_REJECT_DUPLICATES, &jerr);
    if (b == NULL || !json_is_object(b)) {
        snprintf(why, wl, "body is not a JSON object%s%.100s", b ? "" : ": ", b ? "" : jerr.text);
        json_decref(b);
        return SPK_EBADJSON;
    }
    int rc = 0;
    if (r->fhir) {
        rc = api_fhir_to_create(b, req, why, wl);
    } else {
        const char *k;
        json_t *v;
        json_object_foreach(b, k, v)
        {
            if (!word_in(r->fields, k, strlen(k))) {
                snprintf(why, wl, "unknown field: %.60s", k);
                rc = SPK_EBADMSG;
                break;
            }
            json_object_set(req, k, v);
        }
    }
    json_decref(b);
    return rc;
}

int api_call_new(const api_req_t *in, api_call_t **out, int *status, bool *fhir, char *why,
                 size_t why_len)
{
    const route_t *r = NULL;
    bool path_known = false;
    char params[MAX_PARAMS][48];
    *fhir = strncmp(in->path, "/api/v1/fhir/", 13) == 0;
    for (size_t i = 0; i < N_ROUTES; i++) {
        if (match(g_routes[i].pattern, in->path, params)) {
            path_known = true;
            if (strcmp(g_routes[i].method, in->method) == 0) {
                r = &g_routes[i];
                break;
            }
        }
    }
    if (r == NULL) {
        int err = path_known ? SPK_EUNKNOWNTYPE : SPK_ENOTFOUND;
        snprintf(why, why_len, path_known ? "method %s not allowed here" : "no such endpoint",
                 in->method);
        *status = api_status(err);
        return err;
    }
    api_call_t *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        *status = 500;
        return SPK_ENOMEM;
    }
    c->r = r;
    memcpy(c->params, params, sizeof(params));
    c->req = json_object();
    int rc = c->req != NULL ? 0 : SPK_ENOMEM;
    if (rc == 0) {
        rc = map_query(in, r, c->req, why, why_len);
    }
    if (rc == 0) {
        rc = map_body(in, r, c->req, why, why_len);
    }
    if (rc == 0 && in->idempotency_key[0] != '\0') {
        if (strcmp(r->method, "POST") != 0 || r->ok_status != 201) {
            snprintf(why, why_len, "Idempotency-Key is for creating requests (POST)");
            rc = SPK_EBADMSG;
        } else if (strlen(in->idempotency_key) >= sizeof(c->idem)) {
            snprintf(why, why_len, "Idempotency-Key is longer than 255 bytes");
            rc = SPK_EBADMSG;
        } else {
            snprintf(c->idem, sizeof(c->idem), "%s", in->idempotency_key);
        }
    }
    if (rc != 0) {
        *status = api_status(rc);
        api_call_free(c);
        return rc;
    }
    *out = c;
    return 0;
}

void api_call_free(api_call_t *c)
{
    if (c != NULL) {
        json_decref(c->req);
        free(c);
    }
}

bool api_call_fhir(const api_call_t *c)
{
    return c->r->fhir;
}

json_t *api_call_next(api_call_t *c, int i, json_t *const *answers)
{
    const route_t *r = c->r;
    if (i == 0) {
        json_t *m = json_deep_copy(c->req);
        json_object_set_new(m, "type", json_string(r->action));
        json_object_set_new(m, "id", json_integer(2));
        if (strchr(r->pattern, '*') != NULL) {
            json_object_set_new(m, "consult", json_string(c->params[0]));
        }
        if (r->id == R_INVITE_REVOKE) {
            json_object_set_new(m, "invite", json_string(c->params[1]));
        }
        if (c->idem[0] != '\0') {
            json_object_set_new(m, "idempotency_key", json_string(c->idem));
        }
        return m;
    }
    /* A posted Appointment also gets its patient invite: the link goes back in the answer. */
    const char *type = json_string_value(json_object_get(answers[0], "type"));
    if (i == 1 && r->id == R_FHIR_CREATE && type != NULL && strcmp(type, "ok") == 0) {
        const char *id =
            json_string_value(json_object_get(json_object_get(answers[0], "consult"), "id"));
        json_t *m = json_pack("{s:s, s:i, s:s?}", "type", "invite.create", "id", 3, "consult", id);
        json_t *gp = json_object_get(c->req, "gp");
        if (m != NULL && gp != NULL) {
            json_object_set(m, "gp", gp);
        }
        if (m != NULL && c->idem[0] != '\0') {
            char k[300];
            snprintf(k, sizeof(k), "%s/invite", c->idem);
            json_object_set_new(m, "idempotency_key", json_string(k));
        }
        return m;
    }
    return NULL;
}

/* ---- answers ---- */

static const char *const g_days_nl[] = {"zondag",    "maandag", "dinsdag", "woensdag",
                                        "donderdag", "vrijdag", "zaterdag"};
static const char *const g_days_en[] = {"Sunday",   "Monday", "Tuesday", "Wednesday",
                                        "Thursday", "Friday", "Saturday"};
static const char *const g_months_nl[] = {"januari",   "februari", "maart",    "april",
                                          "mei",       "juni",     "juli",     "augustus",
                                          "september", "oktober",  "november", "december"};
static const char *const g_months_en[] = {"January",   "February", "March",    "April",
                                          "May",       "June",     "July",     "August",
                                          "September", "October",  "November", "December"};

/* "dinsdag 12 mei om 14:30" / "Tuesday 12 May at 14:30" in the practices' local time. */
static void local_when(int64_t t, bool nl, char *out, size_t cap)
{
    api_civil_t c;
    api_civil(t + api_local_offset(t), &c);
    snprintf(out, cap, nl ? "%s %d %s om %02d:%02d" : "%s %d %s at %02d:%02d",
             nl ? g_days_nl[c.wday] : g_days_en[c.wday], c.day,
             nl ? g_months_nl[c.month - 1] : g_months_en[c.month - 1], c.hour, c.min);
}

/* Texts a practice system sends by SMS or e-mail with the invite link. */
static json_t *invite_texts(const json_t *invite, const json_t *consult)
{
    const char *url = json_string_value(json_object_get(invite, "url"));
    int64_t planned = json_integer_value(json_object_get(consult, "planned_at"));
    int64_t exp = json_integer_value(json_object_get(invite, "expires_at"));
    char at_nl[64] = "", at_en[64] = "", exp_nl[64], exp_en[64], nl[1024], en[1024];
    if (planned > 0) {
        char w[48];
        local_when(planned, true, w, sizeof(w));
        snprintf(at_nl, sizeof(at_nl), " op %s", w);
        local_when(planned, false, w, sizeof(w));
        snprintf(at_en, sizeof(at_en), " on %s", w);
    }
    local_when(exp, true, exp_nl, sizeof(exp_nl));
    local_when(exp, false, exp_en, sizeof(exp_en));
    snprintf(nl, sizeof(nl),
             "Uw videoconsult met de huisarts%s. Open op dat moment deze link in uw browser: %s "
             "De link werkt één keer en is geldig tot %s. Deel de link met niemand.",
             at_nl, url != NULL ? url : "", exp_nl);
    snprintf(en, sizeof(en),
             "Your video consultation with your GP%s. At that time, open this link in your "
             "browser: %s The link works once and is valid until %s. Do not share it.",
             at_en, url != NULL ? url : "", exp_en);
    return json_pack("{s:s, s:s}", "nl", nl, "en", en);
}

static json_t *plain_answer(const route_t *r, json_t *ok)
{
    json_t *o = json_deep_copy(ok);
    json_object_del(o, "type");
    json_object_del(o, "re");
    if (r->id == R_GET) {
        /* The service's view: the consult; nothing else is answered to it anyway. */
        json_t *keep = json_pack("{s:O}", "consult", json_object_get(o, "consult"));
        json_decref(o);
        o = keep;
    } else if (r->id == R_INVITE_CREATE) {
        json_t *inv = json_object_get(o, "invite");
        json_object_set_new(inv, "text", invite_texts(inv, json_object_get(o, "consult")));
        json_object_del(o, "consult");
    }
    if (json_is_true(json_object_get(ok, "replayed"))) {
        json_object_set_new(o, "replayed", json_true());
    }
    return o;
}

static json_t *fhir_answer(const route_t *r, json_t *const *answers, int n)
{
    if (r->id == R_FHIR_SEARCH) {
        json_t *entries = json_array();
        json_t *cs = json_object_get(answers[0], "consults");
        size_t i;
        json_t *v;
        json_array_foreach(cs, i, v)
        {
            json_array_append_new(entries,
                                  json_pack("{s:o}", "resource", api_fhir_appointment(v, NULL)));
        }
        return json_pack("{s:s, s:s, s:I, s:o}", "resourceType", "Bundle", "type", "searchset",
                         "total", (json_int_t)json_array_size(cs), "entry", entries);
    }
    json_t *inv = n > 1 ? json_object_get(answers[1], "invite") : NULL;
    return api_fhir_appointment(json_object_get(answers[0], "consult"), inv);
}

void api_call_response(api_call_t *c, json_t *const *answers, int n, int *status,
                       const char **ctype, char **body)
{
    const route_t *r = c->r;
    *ctype = r->fhir ? "application/fhir+json" : "application/json";
    for (int i = 0; i < n; i++) {
        const char *type = json_string_value(json_object_get(answers[i], "type"));
        if (type == NULL || strcmp(type, "ok") != 0) {
            const char *code = json_string_value(json_object_get(answers[i], "code"));
            const char *msg = json_string_value(json_object_get(answers[i], "message"));
            *status = api_status(api_wire_err(code));
            *body =
                api_error_body(r->fhir, code != NULL ? code : "internal", msg != NULL ? msg : "");
            return;
        }
    }
    json_t *o = r->fhir ? fhir_answer(r, answers, n) : plain_answer(r, answers[0]);
    bool replayed = json_is_true(json_object_get(answers[0], "replayed"));
    *status = replayed && r->ok_status == 201 ? 200 : r->ok_status;
    *body = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (*body == NULL) {
        *status = 500;
        *body = api_error_body(r->fhir, "internal", "out of memory");
    }
}
