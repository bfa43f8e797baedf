/*
 * txt_publish.c - test helper: publish and withdraw TXT records in a state
 * directory's store, as the provisioner will, so tests and benchmarks can
 * give the embedded DNS server something to serve.
 *
 *     txt_publish STATE_DIR < changes
 *
 * One change a line: "+ NAME VALUE" adds VALUE to NAME's TXT set, "- NAME
 * VALUE" removes it (NAME normalized, without the trailing dot; VALUE up to
 * the end of the line). Changes are committed in batches of 10000. Exit
 * status 0, 1 on a bad line, 3 when the store fails.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "store.h"

int main(int argc, char **argv)
{
    struct store *st;
    char line[1024];
    size_t lineno = 0, n = 0;
    int rc, status = 0;
    if (argc != 2) {
        fprintf(stderr, "usage: txt_publish STATE_DIR < changes\n");
        return 2;
    }
    rc = store_open(&st, argv[1], NULL);
    if (rc) {
        fprintf(stderr, "txt_publish: %s: %s\n", argv[1], cf_strerror(rc));
        return 3;
    }
    struct store_batch *b = store_batch_new(st);
    while (fgets(line, sizeof(line), stdin)) {
        lineno++;
        line[strcspn(line, "\r\n")] = '\0';
        if (!line[0])
            continue;
        char *name = line + 2, *value = strchr(name, ' ');
        if ((line[0] != '+' && line[0] != '-') || line[1] != ' ' || !value || value == name ||
            !value[1] || strlen(value + 1) > STORE_TXT_MAX) {
            fprintf(stderr, "txt_publish: line %zu: want '+|- NAME VALUE'\n", lineno);
            status = 1;
            continue;
        }
        *value++ = '\0';
        if (line[0] == '+')
            store_batch_txt_add(b, name, value);
        else
            store_batch_txt_del(b, name, value);
        if (++n % 10000 == 0 && (rc = store_batch_commit(b)) != 0)
            break;
    }
    if (rc == 0)
        rc = store_batch_commit(b);
    if (rc) {
        fprintf(stderr, "txt_publish: commit: %s\n", cf_strerror(rc));
        status = 3;
    }
    store_batch_free(b);
    store_close(st);
    return status;
}
