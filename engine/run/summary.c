/*
 * summary.c - what a run leaves for people and for monitoring: the summary
 * table and the Prometheus textfile (see run.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "run.h"

void run_summary_print(FILE *f, const struct run_summary *s, int dry_run)
{
    size_t nstopped = 0, nresumed = 0;
    for (int i = 1; i < STOP_REASON__COUNT; i++)
        nstopped += s->stopped[i];
    fprintf(f, "certfleet run%s: %zu hosts due, %zu taken, %.1f s\n", dry_run ? " (dry run)" : "",
            s->due, s->taken, s->elapsed_s);
    if (dry_run) {
        fprintf(f, "  %-28s %zu\n  %-28s %zu\n", "would issue", s->planned_issue, "would renew",
                s->planned_renew);
    } else {
        fprintf(f, "  %-28s %zu\n", "issued", s->issued);
        fprintf(f, "  %-28s %zu\n", "renewed", s->renewed);
    }
    fprintf(f, "  %-28s %zu\n", "waiting for delegation", s->waiting);
    fprintf(f, "  %-28s %zu\n", "stopped this run", nstopped);
    for (int i = 1; i < STOP_REASON__COUNT; i++)
        if (s->stopped[i])
            fprintf(f, "    %-26s %zu\n", stop_reason_name(i), s->stopped[i]);
    for (int i = 1; i < STOP_REASON__COUNT; i++)
        nresumed += s->resumed[i];
    if (nresumed)
        fprintf(f, "  %-28s %zu\n", "resumed this run", nresumed);
    for (int i = 1; i < STOP_REASON__COUNT; i++)
        if (s->resumed[i])
            fprintf(f, "    %-26s %zu\n", stop_reason_name(i), s->resumed[i]);
    if (s->leftover)
        fprintf(f, "  %-28s %zu\n", "leftover delegations", s->leftover);
    if (s->alerts)
        fprintf(f, "  %-28s %zu\n", "ALERT delegation removed, live", s->alerts);
    fprintf(f, "  %-28s %zu\n", "rate limited (later)", s->rate_limited);
    fprintf(f, "  %-28s %zu\n", "deferred (deadline)", s->deferred);
    fprintf(f, "  %-28s %zu\n", "failed", s->failed);
    for (size_t i = 0; i < s->n_errors; i++)
        fprintf(f, "    %-26s %zu\n", cf_errname(s->errors[i].code), s->errors[i].count);
    if (!dry_run && s->issued + s->renewed > 0)
        fprintf(f, "  %-28s %.1f certificates/s, %.3f ms CPU per certificate\n", "throughput",
                (double)(s->issued + s->renewed) / (s->elapsed_s > 0 ? s->elapsed_s : 1),
                s->cpu_s * 1000.0 / (double)(s->issued + s->renewed));
    if (s->fatal)
        fprintf(f, "  FATAL: %s\n", s->fatal_text);
}

struct state_counts {
    size_t states[HOST_STATE__COUNT];
    size_t stopped[STOP_REASON__COUNT];
    size_t leftover;
};

static int count_cb(void *ctx, const struct host_record *rec)
{
    struct state_counts *c = ctx;
    if (rec->state < HOST_STATE__COUNT)
        c->states[rec->state]++;
    if (rec->state == HOST_STOPPED && rec->reason < STOP_REASON__COUNT)
        c->stopped[rec->reason]++;
    if (rec->leftover)
        c->leftover++;
    return 0;
}

int run_metrics_write(const char *state_dir, struct store *st, const struct run_summary *s)
{
    struct state_counts c;
    struct buf b;
    char path[4096], tmp[4096];
    int fd, rc = 0;
    memset(&c, 0, sizeof(c));
    if (store_host_iter(st, NULL, count_cb, &c) != 0)
        return CF_ESTORE;
    buf_init(&b);
    buf_puts(&b, "# HELP certfleet_hosts Hosts in the store by state.\n"
                 "# TYPE certfleet_hosts gauge\n");
    for (int i = 0; i < HOST_STATE__COUNT; i++)
        buf_printf(&b, "certfleet_hosts{state=\"%s\"} %zu\n", host_state_name(i), c.states[i]);
    buf_puts(&b, "# HELP certfleet_hosts_stopped Stopped hosts by reason.\n"
                 "# TYPE certfleet_hosts_stopped gauge\n");
    for (int i = 1; i < STOP_REASON__COUNT; i++)
        buf_printf(&b, "certfleet_hosts_stopped{reason=\"%s\"} %zu\n", stop_reason_name(i),
                   c.stopped[i]);
    buf_printf(&b,
               "# HELP certfleet_leftover_delegations Stopped hosts whose _acme-challenge CNAME "
               "still points at us.\n# TYPE certfleet_leftover_delegations gauge\n"
               "certfleet_leftover_delegations %zu\n",
               c.leftover);
    buf_puts(&b, "# HELP certfleet_run_hosts Hosts of the last run by outcome.\n"
                 "# TYPE certfleet_run_hosts gauge\n");
    buf_printf(&b, "certfleet_run_hosts{outcome=\"due\"} %zu\n", s->due);
    buf_printf(&b, "certfleet_run_hosts{outcome=\"taken\"} %zu\n", s->taken);
    buf_printf(&b, "certfleet_run_hosts{outcome=\"issued\"} %zu\n", s->issued);
    buf_printf(&b, "certfleet_run_hosts{outcome=\"renewed\"} %zu\n", s->renewed);
    buf_printf(&b, "certfleet_run_hosts{outcome=\"failed\"} %zu\n", s->failed);
    buf_printf(&b, "certfleet_run_hosts{outcome=\"rate_limited\"} %zu\n", s->rate_limited);
    buf_printf(&b, "certfleet_run_hosts{outcome=\"deferred\"} %zu\n", s->deferred);
    buf_printf(&b, "certfleet_run_hosts{outcome=\"waiting\"} %zu\n", s->waiting);
    buf_puts(&b, "# HELP certfleet_run_errors Failed hosts of the last run by error class.\n"
                 "# TYPE certfleet_run_errors gauge\n");
    for (size_t i = 0; i < s->n_errors; i++)
        buf_printf(&b, "certfleet_run_errors{class=\"%s\"} %zu\n", cf_errname(s->errors[i].code),
                   s->errors[i].count);
    buf_printf(&b,
               "# HELP certfleet_run_alerts Hosts whose delegation was removed while live.\n"
               "# TYPE certfleet_run_alerts gauge\ncertfleet_run_alerts %zu\n"
               "# HELP certfleet_run_duration_seconds Wall time of the last run.\n"
               "# TYPE certfleet_run_duration_seconds gauge\n"
               "certfleet_run_duration_seconds %.3f\n"
               "# HELP certfleet_run_cpu_seconds CPU time (user+sys) of the last run.\n"
               "# TYPE certfleet_run_cpu_seconds gauge\ncertfleet_run_cpu_seconds %.3f\n"
               "# HELP certfleet_run_fatal 1 when the last run ended on a fatal error.\n"
               "# TYPE certfleet_run_fatal gauge\ncertfleet_run_fatal %d\n"
               "# HELP certfleet_last_run_timestamp_seconds When the last run started.\n"
               "# TYPE certfleet_last_run_timestamp_seconds gauge\n"
               "certfleet_last_run_timestamp_seconds %lld\n",
               s->alerts, s->elapsed_s, s->cpu_s, s->fatal ? 1 : 0, (long long)s->started_at);
    str_fmt(path, sizeof(path), "%s/metrics.prom", state_dir);
    str_fmt(tmp, sizeof(tmp), "%s/.metrics.prom.tmp", state_dir);
    /* Written aside and renamed: node_exporter never reads half a file. */
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        rc = -errno;
        goto out_free;
    }
    if (write(fd, b.data, b.len) != (ssize_t)b.len || fsync(fd) != 0)
        rc = -EIO;
    close(fd);
    if (rc == 0 && rename(tmp, path) != 0)
        rc = -errno;
    if (rc)
        unlink(tmp);
out_free:
    buf_cleanup(&b);
    return rc;
}
