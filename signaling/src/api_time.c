/* Dates of the /api/v1 mapping (api.h), I/O-free: the proleptic Gregorian calendar in both
 * directions (H. Hinnant's days_from_civil / civil_from_days), FHIR instants, and the local time
 * of the practices (Europe/Amsterdam: CET, CEST from the last Sunday of March 01:00 UTC to the
 * last Sunday of October 01:00 UTC). */
#include "api.h"

#include <stdio.h>
#include <string.h>

int64_t api_days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

void api_civil(int64_t t, api_civil_t *out)
{
    int64_t days = t >= 0 ? t / 86400 : (t - 86399) / 86400;
    int64_t secs = t - days * 86400;
    int64_t z = days + 719468, era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097, yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100), mp = (5 * doy + 2) / 153;
    out->month = (int)(mp < 10 ? mp + 3 : mp - 9);
    out->year = yoe + era * 400 + (out->month <= 2);
    out->day = (int)(doy - (153 * mp + 2) / 5 + 1);
    out->hour = (int)(secs / 3600);
    out->min = (int)(secs / 60 % 60);
    out->sec = (int)(secs % 60);
    out->wday = (int)((days % 7 + 11) % 7); /* 1970-01-01 was a Thursday */
}

static bool leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int month_days(int64_t y, int m)
{
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && leap(y) ? 29 : mdays[m - 1];
}

/* Exactly n ASCII digits at s (no sign, no space). */
static bool digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return false;
        }
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

/* "YYYY-MM-DD" at s (a real date of the years 1..9999). */
static bool date_at(const char *s, int *y, int *m, int *d)
{
    return digits(s, 4, y) && s[4] == '-' && digits(s + 5, 2, m) && s[7] == '-' &&
           digits(s + 8, 2, d) && *y >= 1 && *m >= 1 && *m <= 12 && *d >= 1 &&
           *d <= month_days(*y, *m);
}

/* FHIR's instant: a leap second (60) is the next minute's first; offsets up to 14:00. */
bool api_instant_parse(const char *s, int64_t *out)
{
    int y, mo, d, h, mi, sec;
    if (s == NULL || strlen(s) < 20 || !date_at(s, &y, &mo, &d) || s[10] != 'T' ||
        !digits(s + 11, 2, &h) || s[13] != ':' || !digits(s + 14, 2, &mi) || s[16] != ':' ||
        !digits(s + 17, 2, &sec) || h > 23 || mi > 59 || sec > 60) {
        return false;
    }
    const char *p = s + 19;
    if (*p == '.') {
        const char *f = ++p;
        while (*p >= '0' && *p <= '9') {
            p++;
        }
        if (p == f || p - f > 9) {
            return false; /* a fraction has 1..9 digits; it is dropped */
        }
    }
    int64_t off = 0;
    int oh, om;
    if (strcmp(p, "Z") == 0) {
        off = 0;
    } else if ((*p == '+' || *p == '-') && strlen(p) == 6 && digits(p + 1, 2, &oh) && p[3] == ':' &&
               digits(p + 4, 2, &om) && om <= 59 && (oh < 14 || (oh == 14 && om == 0))) {
        off = (*p == '+' ? 1 : -1) * (oh * 3600 + om * 60);
    } else {
        return false;
    }
    *out = api_days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - off;
    return true;
}

void api_instant_format(int64_t t, char *out, size_t cap)
{
    api_civil_t c;
    api_civil(t, &c);
    snprintf(out, cap, "%04lld-%02d-%02dT%02d:%02d:%02dZ", (long long)c.year, c.month, c.day,
             c.hour, c.min, c.sec);
}

/* 01:00 UTC on the last Sunday of the month. */
static int64_t last_sunday(int64_t y, int m)
{
    int64_t last = api_days_from_civil(y, m, 31);
    int wday = (int)((last % 7 + 11) % 7);
    return (last - wday) * 86400 + 3600;
}

int64_t api_local_offset(int64_t t)
{
    api_civil_t c;
    api_civil(t, &c);
    return t >= last_sunday(c.year, 3) && t < last_sunday(c.year, 10) ? 7200 : 3600;
}

bool api_local_day(const char *date, int64_t *from, int64_t *until)
{
    int y, m, d;
    if (strlen(date) != 10 || !date_at(date, &y, &m, &d) || y < 2000 || y > 2200) {
        return false;
    }
    int64_t utc0 = api_days_from_civil(y, m, d) * 86400;
    /* Local midnight is never inside a change (those are at 02:00 / 03:00 local). */
    *from = utc0 - api_local_offset(utc0 - 7200);
    int64_t next = utc0 + 86400;
    *until = next - api_local_offset(next - 7200);
    return true;
}
