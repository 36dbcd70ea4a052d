/* libFuzzer target for the FHIR R4 Appointment mapping (signaling/src/api_fhir.c) and the dates
 * it rests on (signaling/src/api_time.c).
 *
 * The input is read as a posted Appointment (JSON) and, as a NUL-terminated string, as a FHIR
 * instant and as a local day. Properties checked, each aborting on failure:
 *  - an accepted Appointment yields a consult.create with string patient and gp and an integer
 *    planned_at (and planned_end after it when given by minutesDuration);
 *  - the Appointment the server returns for that consult maps back to the same patient, gp,
 *    start and end (for times of the years 2..9998);
 *  - an accepted instant formats as an instant that parses back to the same moment;
 *  - an accepted local day is 23, 24 or 25 hours long and starts at local midnight. */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define YEAR2 (-62104060800LL)    /* 0002-01-01T00:00:00Z */
#define YEAR9999 (253370764800LL) /* 9999-01-01T00:00:00Z */

static void check_instant(const char *s)
{
    int64_t t, back;
    if (!api_instant_parse(s, &t) || t < YEAR2 || t >= YEAR9999) {
        return;
    }
    char buf[32];
    api_instant_format(t, buf, sizeof(buf));
    if (!api_instant_parse(buf, &back) || back != t) {
        abort();
    }
}

static void check_day(const char *s)
{
    int64_t from, until;
    if (!api_local_day(s, &from, &until)) {
        return;
    }
    int64_t len = until - from;
    api_civil_t c;
    api_civil(from + api_local_offset(from), &c);
    if ((len != 82800 && len != 86400 && len != 90000) || c.hour != 0 || c.min != 0 || c.sec != 0) {
        abort();
    }
}

static void check_roundtrip(const json_t *req)
{
    json_int_t at = json_integer_value(json_object_get(req, "planned_at"));
    json_t *end = json_object_get(req, "planned_end");
    if (at < YEAR2 || at >= YEAR9999 ||
        (end != NULL && (json_integer_value(end) < YEAR2 || json_integer_value(end) >= YEAR9999))) {
        return;
    }
    json_t *consult =
        json_pack("{s:s, s:O, s:O, s:s, s:s, s:I, s:I, s:I}", "id", "c_fuzz", "patient",
                  json_object_get(req, "patient"), "gp", json_object_get(req, "gp"), "practice",
                  "praktijk-a", "status", "planned", "planned_at", at, "planned_end",
                  end != NULL ? json_integer_value(end) : 0, "created_at", (json_int_t)1780000000);
    json_t *appt = api_fhir_appointment(consult, NULL);
    char *txt = appt != NULL ? json_dumps(appt, JSON_COMPACT) : NULL;
    json_t *again = txt != NULL ? json_loads(txt, 0, NULL) : NULL;
    json_t *req2 = json_object();
    char why[160];
    if (again == NULL || req2 == NULL || api_fhir_to_create(again, req2, why, sizeof(why)) != 0 ||
        !json_equal(json_object_get(req2, "patient"), json_object_get(req, "patient")) ||
        !json_equal(json_object_get(req2, "gp"), json_object_get(req, "gp")) ||
        json_integer_value(json_object_get(req2, "planned_at")) != at ||
        json_integer_value(json_object_get(req2, "planned_end")) !=
            (end != NULL ? json_integer_value(end) : at + 600)) {
        abort();
    }
    json_decref(req2);
    json_decref(again);
    free(txt);
    json_decref(appt);
    json_decref(consult);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *appt = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
    if (appt != NULL) {
        json_t *req = json_object();
        char why[160];
        why[0] = '\0';
        if (req != NULL && api_fhir_to_create(appt, req, why, sizeof(why)) == 0) {
            json_t *end = json_object_get(req, "planned_end");
            if (!json_is_string(json_object_get(req, "patient")) ||
                !json_is_string(json_object_get(req, "gp")) ||
                !json_is_integer(json_object_get(req, "planned_at")) ||
                (end != NULL && !json_is_integer(end))) {
                abort();
            }
            check_roundtrip(req);
        } else if (req != NULL && why[0] == '\0') {
            abort(); /* a refusal says why */
        }
        json_decref(req);
        json_decref(appt);
    }
    char *z = malloc(size + 1);
    if (z != NULL) {
        memcpy(z, data, size);
        z[size] = '\0';
        check_instant(z);
        check_day(z);
        free(z);
    }
    return 0;
}
