/* libFuzzer target for the /api/v1 request mapping (signaling/src/api.c: api_call_new,
 * api_call_next, api_call_response) and its error bodies.
 *
 * Input: "METHOD\nPATH\nCONTENT-TYPE\nIDEMPOTENCY-KEY\nQUERY\nBODY...", QUERY being up to 8
 * "name=value" separated by '&'; the body is the rest, as an exact-size copy. Properties
 * checked, each aborting on failure:
 *  - a refused request has a negative code, an HTTP status of the documented set and a reason;
 *  - a mapped request's first core action is a JSON object with the route's string "type" and
 *    "id" 2, carrying none of the connection-level fields (token) and nothing the client can use
 *    to choose the action ("type" and "id" are the mapping's own);
 *  - with the core's answers (ok, then an error), the response has a documented status and a
 *    body that is a JSON object. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "spk/error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool status_ok(int st)
{
    static const int known[] = {200, 201, 400, 401, 403, 404, 405, 409, 413, 422, 429, 500, 503};
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
        if (st == known[i]) {
            return true;
        }
    }
    return false;
}

static bool action_ok(const char *type)
{
    static const char *const actions[] = {"consult.list",  "consult.create", "consult.get",
                                          "consult.end",   "invite.create",  "invite.list",
                                          "invite.revoke", "console.link"};
    for (size_t i = 0; type != NULL && i < sizeof(actions) / sizeof(actions[0]); i++) {
        if (strcmp(type, actions[i]) == 0) {
            return true;
        }
    }
    return false;
}

static void check_body(const char *body)
{
    json_t *o = body != NULL ? json_loads(body, 0, NULL) : NULL;
    if (!json_is_object(o)) {
        abort();
    }
    json_decref(o);
}

/* The next line of the input (NUL-terminated copy into out), advancing *p. */
static void line(const uint8_t **p, const uint8_t *end, char *out, size_t cap)
{
    size_t n = 0;
    while (*p < end && **p != '\n') {
        if (n + 1 < cap) {
            out[n++] = (char)**p;
        }
        (*p)++;
    }
    out[n] = '\0';
    if (*p < end) {
        (*p)++;
    }
}

/* A consult as the core answers it, with the given id. */
static json_t *consult_answer(int re, const char *id)
{
    return json_pack("{s:s, s:i, s:{s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:I}, s:[], "
                     "s:{s:s, s:s, s:I}}",
                     "type", "ok", "re", re, "consult", "id", id, "patient", "pseudo-1", "gp",
                     "gp-1", "practice", "praktijk-a", "status", "planned", "planned_at",
                     (json_int_t)1780000000, "planned_end", (json_int_t)1780000600, "created_at",
                     (json_int_t)1779990000, "started_at", (json_int_t)0, "consults", "invite",
                     "url", "https://example.invalid/join#i=x", "id", "inv1", "expires_at",
                     (json_int_t)1780086400);
}

static void run_call(api_call_t *c)
{
    json_t *m = api_call_next(c, 0, NULL);
    const char *type = json_string_value(json_object_get(m, "type"));
    if (m == NULL || !action_ok(type) || json_integer_value(json_object_get(m, "id")) != 2 ||
        json_object_get(m, "token") != NULL) {
        abort();
    }
    const char *cid = json_string_value(json_object_get(m, "consult"));
    json_t *answers[API_MAX_ACTIONS] = {consult_answer(2, cid != NULL ? cid : "c_new"), NULL};
    int n = 1;
    json_t *m2 = api_call_next(c, 1, answers);
    if (m2 != NULL) {
        if (json_integer_value(json_object_get(m2, "id")) != 3) {
            abort();
        }
        answers[n++] = consult_answer(3, "c_new");
        json_decref(m2);
    }
    int status = 0;
    const char *ctype = NULL;
    char *body = NULL;
    api_call_response(c, answers, n, &status, &ctype, &body);
    if (!status_ok(status) || ctype == NULL) {
        abort();
    }
    check_body(body);
    free(body);
    /* The core refuses the action. */
    json_decref(answers[n - 1]);
    answers[n - 1] = json_pack("{s:s, s:i, s:s, s:s}", "type", "error", "re", 1 + n, "code",
                               type[0] == 'c' ? "forbidden" : "no_such_code", "message", type);
    api_call_response(c, answers, n, &status, &ctype, &body);
    if (status < 400 || !status_ok(status)) {
        abort();
    }
    check_body(body);
    free(body);
    for (int i = 0; i < n; i++) {
        json_decref(answers[i]);
    }
    json_decref(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *p = data, *end = data + size;
    char method[16], path[300], ctype[100], idem[320], query[API_MAX_QUERY * 64];
    line(&p, end, method, sizeof(method));
    line(&p, end, path, sizeof(path));
    line(&p, end, ctype, sizeof(ctype));
    line(&p, end, idem, sizeof(idem));
    line(&p, end, query, sizeof(query));
    api_req_t in;
    memset(&in, 0, sizeof(in));
    in.method = method;
    in.path = path;
    in.content_type = ctype;
    in.idempotency_key = idem;
    in.now = 1780000000;
    for (char *q = query, *save = NULL; in.n_query < API_MAX_QUERY;) {
        char *tok = strtok_r(q, "&", &save);
        q = NULL;
        if (tok == NULL) {
            break;
        }
        in.query[in.n_query++] = tok;
    }
    size_t blen = (size_t)(end - p);
    char *body = malloc(blen ? blen : 1);
    if (body == NULL) {
        return 0;
    }
    memcpy(body, p, blen);
    in.body = blen > 0 ? body : NULL;
    in.body_len = blen;

    api_call_t *c = NULL;
    int status = 0;
    bool fhir = false;
    char why[160];
    why[0] = '\0';
    int rc = api_call_new(&in, &c, &status, &fhir, why, sizeof(why));
    if (rc != 0) {
        if (rc > 0 || c != NULL || !status_ok(status) || status < 400 ||
            strnlen(why, sizeof(why)) == sizeof(why)) {
            abort();
        }
        char *eb = api_error_body(fhir, spk_err_wire(rc), why);
        check_body(eb);
        free(eb);
    } else {
        if (c == NULL) {
            abort();
        }
        run_call(c);
        api_call_free(c);
    }
    free(body);
    return 0;
}
