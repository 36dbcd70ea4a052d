/* FHIR R4 Appointment <-> consult (docs/integration.md "FHIR"). A posted Appointment becomes a
 * consult.create (and an invite, see api.c); a consult is returned as an Appointment whose
 * status follows the consult's state and whose invite link, when there is one, travels in the
 * R5 virtualService element as the R4 cross-version extension. */
#include "api.h"

#include <stdio.h>
#include <string.h>

#include "spk/error.h"

#define SYS_PSEUDONYM "urn:spreekkamer:patient-pseudonym"
#define SYS_PRACTITIONER "urn:spreekkamer:practitioner"
#define SYS_CONSULT "urn:spreekkamer:consult"
#define EXT_VIRTUAL                                                                                \
    "http://hl7.org/fhir/5.0/StructureDefinition/extension-Appointment.virtualService"
#define EXT_PRACTICE "urn:spreekkamer:fhir:practice"
#define EXT_STATUS "urn:spreekkamer:fhir:consult-status"

static json_t *instant(int64_t t)
{
    char buf[32];
    api_instant_format(t, buf, sizeof(buf));
    return json_string(buf);
}

/* The actor of a participant: its type (Patient, Practitioner; from `type`, else from the
 * "Type/id" reference, copied into rtype) and its id (identifier value, or the reference's id). */
static bool actor(const json_t *part, char rtype[32], const char **type, const char **id)
{
    const json_t *a = json_object_get(part, "actor");
    const char *ref = json_string_value(json_object_get(a, "reference"));
    const char *slash = ref != NULL ? strchr(ref, '/') : NULL;
    *type = json_string_value(json_object_get(a, "type"));
    *id = json_string_value(json_object_get(json_object_get(a, "identifier"), "value"));
    if (slash != NULL && (size_t)(slash - ref) < 32) {
        if (*type == NULL) {
            memcpy(rtype, ref, (size_t)(slash - ref));
            rtype[slash - ref] = '\0';
            *type = rtype;
        }
        if (*id == NULL) {
            *id = slash + 1;
        }
    }
    return *type != NULL && *id != NULL && (*id)[0] != '\0';
}

int api_fhir_to_create(const json_t *appt, json_t *req, char *why, size_t wl)
{
    const char *rt = json_string_value(json_object_get(appt, "resourceType"));
    if (rt == NULL || strcmp(rt, "Appointment") != 0) {
        snprintf(why, wl, "resourceType must be Appointment");
        return SPK_EBADMSG;
    }
    const char *status = json_string_value(json_object_get(appt, "status"));
    if (json_object_get(appt, "status") != NULL && (status == NULL || strcmp(status, "booked"))) {
        snprintf(why, wl, "status must be booked");
        return SPK_EBADMSG;
    }
    int64_t start, end = 0;
    if (!api_instant_parse(json_string_value(json_object_get(appt, "start")), &start)) {
        snprintf(why, wl, "start must be an instant (YYYY-MM-DDThh:mm:ss with Z or an offset)");
        return SPK_EBADMSG;
    }
    json_t *je = json_object_get(appt, "end");
    json_t *dur = json_object_get(appt, "minutesDuration");
    if (je != NULL && !api_instant_parse(json_string_value(je), &end)) {
        snprintf(why, wl, "end must be an instant");
        return SPK_EBADMSG;
    }
    if (je == NULL && dur != NULL) {
        if (!json_is_integer(dur) || json_integer_value(dur) < 1 ||
            json_integer_value(dur) > 1440) {
            snprintf(why, wl, "minutesDuration must be 1..1440");
            return SPK_EBADMSG;
        }
        end = start + json_integer_value(dur) * 60;
    }
    const char *patient = NULL, *gp = NULL, *type, *id;
    char rtype[32];
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(appt, "participant"), i, p)
    {
        if (!actor(p, rtype, &type, &id)) {
            continue;
        }
        if (strcmp(type, "Patient") == 0 && patient == NULL) {
            patient = id;
        } else if (strcmp(type, "Practitioner") == 0 && gp == NULL) {
            gp = id;
        }
    }
    if (patient == NULL || gp == NULL) {
        snprintf(why, wl, "participant needs a Patient (pseudonym) and a Practitioner (the GP)");
        return SPK_EBADMSG;
    }
    json_object_set_new(req, "patient", json_string(patient));
    json_object_set_new(req, "gp", json_string(gp));
    json_object_set_new(req, "planned_at", json_integer(start));
    if (end != 0) {
        json_object_set_new(req, "planned_end", json_integer(end));
    }
    json_t *desc = json_object_get(appt, "description");
    if (desc != NULL) {
        json_object_set(req, "title", desc);
    }
    json_array_foreach(json_object_get(appt, "extension"), i, p)
    {
        const char *url = json_string_value(json_object_get(p, "url"));
        if (url != NULL && strcmp(url, EXT_PRACTICE) == 0) {
            json_object_set(req, "practice", json_object_get(p, "valueString"));
        }
    }
    return 0;
}

/* Appointment.status from the consult's status. */
static const char *fhir_status(const json_t *c)
{
    const char *st = json_string_value(json_object_get(c, "status"));
    st = st != NULL ? st : "planned";
    if (strcmp(st, "waiting") == 0) {
        return "arrived";
    }
    if (strcmp(st, "in_progress") == 0) {
        return "checked-in";
    }
    if (strcmp(st, "ended") == 0) {
        if (json_integer_value(json_object_get(c, "started_at")) != 0) {
            return "fulfilled";
        }
        int64_t planned = json_integer_value(json_object_get(c, "planned_at"));
        return planned != 0 && json_integer_value(json_object_get(c, "ended_at")) < planned
                   ? "cancelled"
                   : "noshow";
    }
    return "booked";
}

static json_t *participant(const char *type, const char *sys, const char *value)
{
    return json_pack("{s:{s:s, s:{s:s, s:s}}, s:s, s:s}", "actor", "type", type, "identifier",
                     "system", sys, "value", value != NULL ? value : "", "required", "required",
                     "status", "accepted");
}

json_t *api_fhir_appointment(const json_t *c, const json_t *invite)
{
    const char *id = json_string_value(json_object_get(c, "id"));
    json_t *a = json_pack("{s:s, s:s, s:[{s:s, s:s}], s:s}", "resourceType", "Appointment", "id",
                          id != NULL ? id : "", "identifier", "system", SYS_CONSULT, "value",
                          id != NULL ? id : "", "status", fhir_status(c));
    if (a == NULL) {
        return NULL;
    }
    const char *title = json_string_value(json_object_get(c, "title"));
    if (title != NULL && title[0] != '\0') {
        json_object_set_new(a, "description", json_string(title));
    }
    int64_t start = json_integer_value(json_object_get(c, "planned_at"));
    int64_t end = json_integer_value(json_object_get(c, "planned_end"));
    if (start != 0) {
        json_object_set_new(a, "start", instant(start));
        json_object_set_new(a, "end", instant(end != 0 ? end : start + 600));
        json_object_set_new(a, "minutesDuration",
                            json_integer(((end != 0 ? end : start + 600) - start) / 60));
    }
    json_object_set_new(a, "created",
                        instant(json_integer_value(json_object_get(c, "created_at"))));
    json_object_set_new(a, "participant",
                        json_pack("[o, o]",
                                  participant("Patient", SYS_PSEUDONYM,
                                              json_string_value(json_object_get(c, "patient"))),
                                  participant("Practitioner", SYS_PRACTITIONER,
                                              json_string_value(json_object_get(c, "gp")))));
    json_t *ext = json_array();
    json_array_append_new(ext, json_pack("{s:s, s:s}", "url", EXT_STATUS, "valueCode",
                                         json_string_value(json_object_get(c, "status"))));
    json_array_append_new(ext, json_pack("{s:s, s:s}", "url", EXT_PRACTICE, "valueString",
                                         json_string_value(json_object_get(c, "practice"))));
    const char *url = json_string_value(json_object_get(invite, "url"));
    if (url != NULL) {
        json_array_append_new(
            ext, json_pack("{s:s, s:[{s:s, s:{s:s, s:s, s:s}}, {s:s, s:s}, {s:s, s:i}]}", "url",
                           EXT_VIRTUAL, "extension", "url", "channelType", "valueCoding", "system",
                           "urn:spreekkamer:virtual-service-type", "code", "spreekkamer", "display",
                           "spreekkamer video consult", "url", "addressUrl", "valueUrl", url, "url",
                           "maxParticipants", "valuePositiveInt", 2));
    }
    json_object_set_new(a, "extension", ext);
    return a;
}

json_t *api_fhir_outcome(const char *code, const char *message)
{
    const char *issue = strcmp(code, "forbidden") == 0                ? "forbidden"
                        : strcmp(code, "not_found") == 0              ? "not-found"
                        : strncmp(code, "token_", 6) == 0             ? "security"
                        : strcmp(code, "unauthenticated") == 0        ? "login"
                        : strcmp(code, "too_large") == 0              ? "too-costly"
                        : strcmp(code, "internal") == 0               ? "exception"
                        : strcmp(code, "bad_state") == 0              ? "conflict"
                        : strcmp(code, "consult_ended") == 0          ? "conflict"
                        : strcmp(code, "idempotency_key_reused") == 0 ? "duplicate"
                                                                      : "invalid";
    return json_pack("{s:s, s:[{s:s, s:s, s:{s:[{s:s, s:s}], s:s}, s:s}]}", "resourceType",
                     "OperationOutcome", "issue", "severity", "error", "code", issue, "details",
                     "coding", "system", "urn:spreekkamer:error", "code", code, "text", code,
                     "diagnostics", message);
}
