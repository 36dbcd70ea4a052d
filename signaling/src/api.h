/* The HTTP JSON API for practice systems (/api/v1, docs/integration.md, docs/openapi.yaml) as an
 * I/O-free mapping onto the signaling core: a request is routed and turned into the core actions
 * it stands for (api.c, FHIR in api_fhir.c); the transport (ws_api.c) runs them on an internal
 * core connection signed in with the request's bearer token, so every call goes through the
 * core's decision, audit and transaction like a WebSocket request; the core's answers become the
 * HTTP response here. Nothing in these files decides access. */
#ifndef SPK_SIG_API_H
#define SPK_SIG_API_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define API_PREFIX "/api/v1/"
#define API_MAX_QUERY 8
#define API_MAX_ACTIONS 2

typedef struct {
    const char *method;               /* "GET", "POST", "DELETE", ... */
    const char *path;                 /* without the query */
    const char *query[API_MAX_QUERY]; /* urldecoded "name=value" */
    int n_query;
    const char *body; /* NULL when the request has none */
    size_t body_len;
    const char *content_type;    /* "" when absent */
    const char *idempotency_key; /* "" when absent */
    int64_t now;                 /* unix seconds */
} api_req_t;

typedef struct api_call api_call_t;

/* Routes and maps a request. 0 and *out; or an SPK_E* code with *status and `why` (unknown
 * path: SPK_ENOTFOUND/404, wrong method: SPK_EUNKNOWNTYPE/405, malformed: SPK_EBADJSON or
 * SPK_EBADMSG/400, ...). *fhir tells how to shape an error (also on failure). */
int api_call_new(const api_req_t *in, api_call_t **out, int *status, bool *fhir, char *why,
                 size_t why_len);
void api_call_free(api_call_t *c);
/* The i-th core request of the call (a JSON object with "type" and "id" i + 2), given the
 * answers so far; NULL when the call has no more actions. The caller owns the result. */
json_t *api_call_next(api_call_t *c, int i, json_t *const *answers);
/* The HTTP response once the actions are answered (answers[0..n), the core's "ok" or "error"
 * messages): status, content type (static) and body (malloc'd). */
void api_call_response(api_call_t *c, json_t *const *answers, int n, int *status,
                       const char **ctype, char **body);
bool api_call_fhir(const api_call_t *c);

/* HTTP status for an error code; the error body in the plain or the FHIR form (malloc'd). */
int api_status(int err);
char *api_error_body(bool fhir, const char *code, const char *message);
/* The error code of a core "error" message (SPK_EINVAL when unknown). */
int api_wire_err(const char *code);

/* api_fhir.c: FHIR R4 Appointment <-> consult. */
/* The consult.create request for a posted Appointment (fields added to req); 0 or SPK_EBADMSG
 * with why. */
int api_fhir_to_create(const json_t *appt, json_t *req, char *why, size_t why_len);
/* An Appointment for a consult object (from consult.create/get/list), with the invite link when
 * given. */
json_t *api_fhir_appointment(const json_t *consult, const json_t *invite);
json_t *api_fhir_outcome(const char *code, const char *message);

/* api_time.c: dates. Days since 1970-01-01 of a date of the proleptic Gregorian calendar, and
 * a moment (Unix seconds) as UTC date and time. */
typedef struct {
    int64_t year;
    int month, day, hour, min, sec;
    int wday; /* 0 = Sunday */
} api_civil_t;
int64_t api_days_from_civil(int64_t y, int m, int d);
void api_civil(int64_t t, api_civil_t *out);
/* A FHIR instant "YYYY-MM-DDThh:mm:ss[.fraction](Z|+hh:mm|-hh:mm)" as Unix seconds (the fraction
 * dropped); false when malformed or not a real date. */
bool api_instant_parse(const char *s, int64_t *out);
/* t as "YYYY-MM-DDThh:mm:ssZ" (cap >= 32 for any year of 4 digits). */
void api_instant_format(int64_t t, char *out, size_t cap);
/* Local time of the practices (Europe/Amsterdam): UTC offset at a moment, and the bounds of a
 * local day "YYYY-MM-DD" (false when malformed). */
int64_t api_local_offset(int64_t t);
bool api_local_day(const char *date, int64_t *from, int64_t *until);

#endif
