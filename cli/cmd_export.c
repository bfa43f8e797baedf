/*
 * cmd_export.c - `certfleet export HOST [--out DIR]`: the host's certificate
 * chain and private key as PEM files, DIR/<host>.pem and DIR/<host>.key
 * (a wildcard's "*" written as "_wildcard"). The key file is created with
 * mode 0600 and never shown; DIR is created 0700 when missing.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "cli.h"
#include "err.h"
#include "hostname.h"

/* write_file writes len bytes to path (created with mode, replaced atomically). */
static int write_file(const char *path, const void *data, size_t len, mode_t mode)
{
    char tmp[4200];
    int fd, rc = 0;
    str_fmt(tmp, sizeof(tmp), "%s.tmp", path);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
    if (fd < 0)
        return -errno;
    /* The umask may have widened nothing, but an existing file keeps its mode: set it. */
    if (fchmod(fd, mode) != 0 || write(fd, data, len) != (ssize_t)len || fsync(fd) != 0)
        rc = errno ? -errno : -EIO;
    close(fd);
    if (rc == 0 && rename(tmp, path) != 0)
        rc = -errno;
    if (rc)
        unlink(tmp);
    return rc;
}

int cmd_export(struct cli *c, int argc, char **argv)
{
    static const struct option opts[] = {{"out", required_argument, NULL, 'o'}, {NULL, 0, NULL, 0}};
    const char *dir = ".";
    char name[HOSTNAME_MAX + 1], file[HOSTNAME_MAX + 16], path[4096];
    const char *reason;
    struct buf chain, key;
    int opt, rc, status = EXIT_DONE;
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (opt != 'o')
            return EXIT_USAGE;
        dir = optarg;
    }
    if (optind != argc - 1) {
        cli_error("export: name one HOST");
        return EXIT_USAGE;
    }
    if (hostname_normalize(name, argv[optind], strlen(argv[optind]), &reason) != 0) {
        cli_error("export: '%s' is not a valid hostname: %s", argv[optind], reason);
        return EXIT_USAGE;
    }
    if ((rc = cli_load_config(c)) || (rc = cli_open_store(c)))
        return rc;
    buf_init(&chain);
    buf_init(&key);
    rc = store_get_cert(c->st, name, &chain, &key);
    if (rc == CF_ENOTFOUND) {
        cli_error("export: %s has no certificate in %s", name, c->state_dir);
        status = EXIT_SOME_FAILED;
        goto out_free;
    }
    if (rc) {
        cli_error("export: reading %s's certificate: %s", name, cf_strerror(rc));
        status = EXIT_FATAL;
        goto out_free;
    }
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        cli_error("export: cannot create %s: %s", dir, strerror(errno));
        status = EXIT_USAGE;
        goto out_free;
    }
    if (name[0] == '*')
        str_fmt(file, sizeof(file), "_wildcard%s", name + 1);
    else
        str_copy(file, sizeof(file), name);
    str_fmt(path, sizeof(path), "%s/%s.key", dir, file);
    rc = write_file(path, key.data, key.len, 0600);
    if (rc == 0) {
        str_fmt(path, sizeof(path), "%s/%s.pem", dir, file);
        rc = write_file(path, chain.data, chain.len, 0644);
    }
    if (rc) {
        cli_error("export: cannot write %s: %s", path, cf_strerror(rc));
        status = EXIT_FATAL;
        goto out_free;
    }
    printf("%s/%s.pem\n%s/%s.key\n", dir, file, dir, file);
out_free:
    if (key.data)
        memset(key.data, 0, key.len);
    buf_cleanup(&key);
    buf_cleanup(&chain);
    return status;
}
