/*
 * log.c - structured logging to one stream.
 */
#include <stdarg.h>
#include <string.h>

#include "buf.h"
#include "log.h"
#include "timeutil.h"

static enum log_level g_level = LOG_INFO;
static int g_json = 1;
static FILE *g_out;

static const char *const level_names[] = {"debug", "info", "warn", "error", "off"};

void log_setup(enum log_level level, int json, FILE *out)
{
    g_level = level;
    g_json = json;
    g_out = out;
}

int log_level_parse(const char *s)
{
    for (int i = 0; i <= LOG_OFF; i++)
        if (strcmp(s, level_names[i]) == 0)
            return i;
    return -1;
}

int log_enabled(enum log_level level)
{
    return level >= g_level && level < LOG_OFF;
}

void log_event(enum log_level level, const char *event, ...)
{
    if (!log_enabled(level))
        return;
    FILE *out = g_out ? g_out : stderr;
    char ts[40];
    cf_time_format_ms(ts, sizeof(ts), cf_wall_ms());

    struct buf b;
    buf_init(&b);
    if (g_json) {
        buf_puts(&b, "{\"ts\":\"");
        buf_puts(&b, ts);
        buf_puts(&b, "\",\"level\":\"");
        buf_puts(&b, level_names[level]);
        buf_puts(&b, "\",\"event\":");
        buf_json_string(&b, event, strlen(event));
    } else {
        buf_printf(&b, "%s %-5s %s", ts, level_names[level], event);
    }
    va_list ap;
    va_start(ap, event);
    for (;;) {
        const char *k = va_arg(ap, const char *);
        if (!k)
            break;
        const char *v = va_arg(ap, const char *);
        if (g_json) {
            buf_putc(&b, ',');
            buf_json_string(&b, k, strlen(k));
            buf_putc(&b, ':');
            if (v)
                buf_json_string(&b, v, strlen(v));
            else
                buf_puts(&b, "null");
        } else {
            buf_printf(&b, " %s=", k);
            if (!v)
                buf_puts(&b, "-");
            else if (strpbrk(v, " \t\"=") || !*v)
                buf_json_string(&b, v, strlen(v));
            else
                buf_puts(&b, v);
        }
    }
    va_end(ap);
    if (g_json)
        buf_putc(&b, '}');
    buf_putc(&b, '\n');
    fwrite(b.data, 1, b.len, out);
    fflush(out);
    buf_cleanup(&b);
}
