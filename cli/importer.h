/*
 * importer.h - bulk import of hostnames into the store.
 *
 * Input is streamed: one hostname a line, or CSV (RFC 4180 quoting, no
 * fields spanning lines) whose first line is a header naming a "host" (or
 * "hostname") column and optionally "customer". Blank lines and lines
 * starting with '#' are skipped. Each bad line is reported through the
 * reject callback with its line number and reason, and the import goes on.
 * Good lines are committed in batches (one LMDB transaction per batch,
 * names sorted within it), and re-importing changes nothing already stored.
 */
#ifndef CF_CLI_IMPORTER_H
#define CF_CLI_IMPORTER_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

#define IMPORT_LINE_MAX 4096

struct import_stats {
    size_t lines;
    size_t added;
    size_t unchanged;
    size_t updated;    /* existing hosts whose customer label changed */
    size_t duplicates; /* repeated in the same input; the first occurrence counts */
    size_t rejected;
};

/* import_reject_cb receives a bad line: its number, raw bytes and the reason. */
typedef void (*import_reject_cb)(void *ctx, size_t line, const char *text, size_t len,
                                 const char *reason);
/* import_dup_cb receives a repeated host: its line and the line it first appeared on. */
typedef void (*import_dup_cb)(void *ctx, size_t line, const char *host, size_t first_line);

struct importer;

/*
 * importer_new prepares an import into st for validation zone `zone`
 * (normalized); new hosts get created_at = next_action = now. batch_size 0
 * means the default (50,000 hosts a transaction). Names are sorted in runs of up
 * to about a million before they are committed.
 */
struct importer *importer_new(struct store *st, const char *zone, int64_t now, size_t batch_size);
void importer_set_callbacks(struct importer *imp, import_reject_cb on_reject, import_dup_cb on_dup,
                            void *ctx);
/* importer_feed consumes len bytes of input. Returns 0 or a store error. */
int importer_feed(struct importer *imp, const char *data, size_t len);
/* importer_finish processes a last unterminated line and commits. Returns 0 or a store error. */
int importer_finish(struct importer *imp);
const struct import_stats *importer_stats(const struct importer *imp);
/* importer_free accepts NULL. */
void importer_free(struct importer *imp);

/*
 * import_csv_split splits one CSV line (len bytes, no newline) into at most
 * max fields, unquoting in place into out (at least len + 1 bytes); fields[i]
 * point into out. Returns the number of fields, or -1 for malformed quoting.
 */
int import_csv_split(char *out, const char *line, size_t len, char **fields, int max);

#endif
