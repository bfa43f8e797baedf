/*
 * log.h - structured logging.
 *
 * One event a line: JSON lines by default (machines read the nightly run's
 * output), "key=value" text when asked for (a person at a terminal). Values
 * are strings; callers format numbers themselves. Secrets are never passed
 * here: the logger cannot tell a key from a hostname, so the rule is kept at
 * the call sites (and checked by a test that greps a full run's logs).
 */
#ifndef CF_UTIL_LOG_H
#define CF_UTIL_LOG_H

#include <stdio.h>

enum log_level { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR, LOG_OFF };

/* log_setup sets the threshold, the format (json != 0 for JSON lines) and the stream. */
void log_setup(enum log_level level, int json, FILE *out);
/* log_level_parse maps "debug", "info", "warn", "error", "off" to a level, or returns -1. */
int log_level_parse(const char *s);
int log_enabled(enum log_level level);

/*
 * log_event writes one event: name, then NULL-terminated key/value string
 * pairs. A NULL value is written as JSON null.
 */
void log_event(enum log_level level, const char *event, ...) __attribute__((sentinel));

#endif
