/*
 * buf.h - growable byte buffers and the allocation wrappers.
 *
 * Out of memory aborts through xmalloc and friends: the durable state lives
 * in LMDB, so dying is safe and simpler than unwinding everywhere.
 */
#ifndef CF_UTIL_BUF_H
#define CF_UTIL_BUF_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

void *xmalloc(size_t n);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);

/*
 * struct buf is caller-owned: buf_init before use, buf_cleanup after. data is
 * always NUL-terminated past len once anything was appended, so text can be
 * used as a C string.
 */
struct buf {
    char *data;
    size_t len;
    size_t cap;
};

void buf_init(struct buf *b);
void buf_cleanup(struct buf *b);
/* buf_reserve makes room for n more bytes (plus the terminating NUL). */
void buf_reserve(struct buf *b, size_t n);
void buf_append(struct buf *b, const void *data, size_t len);
void buf_puts(struct buf *b, const char *s);
void buf_putc(struct buf *b, char c);
void buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void buf_vprintf(struct buf *b, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
/* buf_reset empties b, keeping its memory. */
void buf_reset(struct buf *b);
/* buf_json_string appends s (len bytes) as a quoted, escaped JSON string. */
void buf_json_string(struct buf *b, const char *s, size_t len);

/*
 * str_copy copies the C string src into dst (n bytes), truncating, always
 * NUL-terminated; returns dst. The plain copy that str_fmt("%s") would do,
 * without the formatting machinery (it is on hot paths).
 */
char *str_copy(char *dst, size_t n, const char *src);

/*
 * str_fmt is snprintf into a fixed buffer where truncation is intended
 * (messages, names already bounded by their sources): it always
 * NUL-terminates and never warns.
 */
void str_fmt(char *dst, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void str_vfmt(char *dst, size_t n, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

#endif
