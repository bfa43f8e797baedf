/*
 * cli.h - the certfleet command line (DESIGN.md §5 is the contract).
 */
#ifndef CF_CLI_CLI_H
#define CF_CLI_CLI_H

#include "config.h"
#include "store.h"

/* Exit statuses (DESIGN.md §5). */
enum cli_exit {
    EXIT_DONE = 0, /* all done */
    EXIT_SOME_FAILED = 1,
    EXIT_USAGE = 2, /* usage or configuration error */
    EXIT_FATAL = 3  /* store unusable, CA unreachable */
};

struct cli {
    const char *state_dir;
    struct config cfg;
    struct store *st;
};

/* cli_load_config loads the state dir's config; prints the error and returns an exit status. */
int cli_load_config(struct cli *c);
/* cli_open_store opens the store; prints the error and returns an exit status. */
int cli_open_store(struct cli *c);
/* cli_error prints "certfleet: <message>" to stderr. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

int cmd_init(struct cli *c, int argc, char **argv);
int cmd_import(struct cli *c, int argc, char **argv);
int cmd_instructions(struct cli *c, int argc, char **argv);
int cmd_status(struct cli *c, int argc, char **argv);
int cmd_remove(struct cli *c, int argc, char **argv);
int cmd_version(struct cli *c, int argc, char **argv);
int cmd_check(struct cli *c, int argc, char **argv);
int cmd_serve_dns(struct cli *c, int argc, char **argv);
int cmd_rotate_account_key(struct cli *c, int argc, char **argv);
int cmd_run(struct cli *c, int argc, char **argv);
int cmd_report(struct cli *c, int argc, char **argv);
int cmd_export(struct cli *c, int argc, char **argv);
int cmd_rearm(struct cli *c, int argc, char **argv);

/*
 * cli_check_backends verifies at run time that crypto symbols come from the
 * library this build selected and that curl's TLS backend is the expected
 * one (DESIGN.md §6). Returns 0, or prints why and returns EXIT_FATAL.
 */
int cli_check_backends(void);

#endif
