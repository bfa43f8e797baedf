/*
 * timeutil.c - wall-clock time, RFC 3339 and durations.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "err.h"
#include "timeutil.h"

int64_t cf_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t cf_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

char *cf_time_format(char *out, size_t n, int64_t t)
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (!gmtime_r(&tt, &tm) || strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0) {
        if (n)
            out[0] = '\0';
    }
    return out;
}

char *cf_time_format_ms(char *out, size_t n, int64_t ms)
{
    time_t tt = (time_t)(ms / 1000);
    struct tm tm;
    char base[32];
    if (!gmtime_r(&tt, &tm) || strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm) == 0) {
        if (n)
            out[0] = '\0';
        return out;
    }
    snprintf(out, n, "%s.%03dZ", base, (int)(ms % 1000));
    return out;
}

int64_t cf_days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int parse_digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)(*p)[i]))
            return -1;
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    *out = v;
    return 0;
}

int cf_time_parse(int64_t *out, const char *s)
{
    const char *p = s;
    int y, mo, d, h, mi, sec;
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (parse_digits(&p, 4, &y) || *p++ != '-' || parse_digits(&p, 2, &mo) || *p++ != '-' ||
        parse_digits(&p, 2, &d))
        return CF_EPARSE;
    if (*p != 'T' && *p != 't' && *p != ' ')
        return CF_EPARSE;
    p++;
    if (parse_digits(&p, 2, &h) || *p++ != ':' || parse_digits(&p, 2, &mi) || *p++ != ':' ||
        parse_digits(&p, 2, &sec))
        return CF_EPARSE;
    if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h > 23 || mi > 59 || sec > 60)
        return CF_EPARSE;
    if (*p == '.') {
        p++;
        if (!isdigit((unsigned char)*p))
            return CF_EPARSE;
        while (isdigit((unsigned char)*p))
            p++;
    }
    int64_t off = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p == '-' ? -1 : 1, oh, om;
        p++;
        if (parse_digits(&p, 2, &oh) || *p++ != ':' || parse_digits(&p, 2, &om) || oh > 23 ||
            om > 59)
            return CF_EPARSE;
        off = sign * (oh * 3600 + om * 60);
    } else {
        return CF_EPARSE;
    }
    if (*p)
        return CF_EPARSE;
    if (sec == 60)
        sec = 59;
    *out = cf_days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - off;
    return 0;
}

int cf_duration_parse(int64_t *out, const char *s)
{
    const char *p = s;
    int64_t total = 0;
    if (!*p)
        return CF_EPARSE;
    while (*p) {
        if (!isdigit((unsigned char)*p))
            return CF_EPARSE;
        int64_t v = 0;
        while (isdigit((unsigned char)*p)) {
            if (v > 1000000000)
                return CF_EPARSE;
            v = v * 10 + (*p++ - '0');
        }
        int64_t unit = 1;
        switch (*p) {
        case 's':
            p++;
            break;
        case 'm':
            unit = 60;
            p++;
            break;
        case 'h':
            unit = 3600;
            p++;
            break;
        case 'd':
            unit = 86400;
            p++;
            break;
        case '\0':
            if (p != s + strlen(s) || total)
                return CF_EPARSE;
            break;
        default:
            return CF_EPARSE;
        }
        total += v * unit;
    }
    *out = total;
    return 0;
}
