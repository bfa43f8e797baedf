/*
 * timeutil.h - wall-clock time, RFC 3339 and durations.
 *
 * Times are int64_t seconds (or milliseconds where the name says so) since
 * the Unix epoch, UTC.
 */
#ifndef CF_UTIL_TIMEUTIL_H
#define CF_UTIL_TIMEUTIL_H

#include <stddef.h>
#include <stdint.h>

/* cf_wall_ms returns the real wall clock in milliseconds. */
int64_t cf_wall_ms(void);
/* cf_mono_ns returns a monotonic clock in nanoseconds, for measuring. */
int64_t cf_mono_ns(void);

/*
 * cf_time_format writes t as "YYYY-MM-DDTHH:MM:SSZ" into out (at least 21
 * bytes). Returns out.
 */
char *cf_time_format(char *out, size_t n, int64_t t);
/* cf_time_format_ms writes "YYYY-MM-DDTHH:MM:SS.mmmZ" (at least 25 bytes). */
char *cf_time_format_ms(char *out, size_t n, int64_t ms);

/*
 * cf_time_parse parses an RFC 3339 date-time ("2026-11-28T03:00:00Z", with
 * optional fraction and numeric offset) into *out seconds. Returns 0 or
 * CF_EPARSE.
 */
int cf_time_parse(int64_t *out, const char *s);

/*
 * cf_days_from_civil returns the days from 1970-01-01 to y-m-d in the
 * proleptic Gregorian calendar (negative before). m is 1..12, d 1..31.
 */
int64_t cf_days_from_civil(int64_t y, int m, int d);

/*
 * cf_duration_parse parses "90", "90s", "15m", "2h", "7d" (and combinations
 * such as "1h30m") into *out seconds. Returns 0 or CF_EPARSE.
 */
int cf_duration_parse(int64_t *out, const char *s);

#endif
