/*
 * certfleet_bench.c - certfleet-bench: the load harness's driver (DESIGN.md §5).
 *
 *   certfleet-bench SCENARIO [--hosts N] [--json FILE] [--plot FILE.png] [options]
 *
 * One command per scenario. It starts certfleet-mockdns and certfleet-mockca
 * on loopback, initializes a fresh state dir with `certfleet init`, imports
 * a generated fleet (bench/fleet.h), runs `certfleet run` (or `check`) as
 * the scenario says, and reports what it measured: a table on stdout, the
 * JSON report (--json) and a PNG plot (--plot, gnuplot). Every process is
 * a child of the harness, started with posix_spawn, waited for with wait4
 * (its CPU time and peak RSS come from the kernel's rusage) and stopped by
 * PID, also when the harness is interrupted. Waiting is sigtimedwait on
 * SIGCHLD with a timeout that doubles as the sampling clock of
 * /proc/PID/stat (CPU and RSS over time, for the plot).
 *
 * The certfleet side of the numbers comes from `run --stats-json FILE`
 * (stage latencies, in-flight pipelines, a timeline); a certfleet without
 * that flag still gives the counts, CPU and durations through the run's
 * metrics.prom, and the report says the stage table is missing.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "buf.h"
#include "fleet.h"
#include "ratelimit.h"
#include "timeutil.h"

extern char **environ;

#define VZONE "acme.cdn.bench.test"
#define VNS "ns1.acme.cdn.bench.test"
#define CDN_TARGET "cdn.bench.test"
#define DEFAULT_MIX "delegated=90,notlive=3,propagating=2,wrong=2,missing=3"
#define MAX_RUNS 64
#define MAX_PROCS 8
#define SAMPLE_S 0.25
/* The bars (issue 6, "Must show"). */
#define BAR_CERTS_PER_S 1000.0
#define BAR_CHECKS_PER_S 50000.0
#define BAR_CPU_MS 0.5
#define BAR_RSS_BASE (64.0 * 1024 * 1024)
#define BAR_RSS_PER_PIPELINE (8.0 * 1024)
#define BAR_RL_SHARE 0.9

enum scenario { SC_RENEWAL, SC_MIGRATION, SC_RATELIMITED, SC_FAULTY, SC_SLOWDNS, SC_CHECKS };

static const char *const sc_names[] = {"renewal", "migration", "ratelimited",
                                       "faulty",  "slowdns",   "checks"};

/* An argv under construction. */
struct strv {
    char **v;
    size_t n, cap;
};

struct opts {
    enum scenario sc;
    uint64_t hosts;
    const char *json_path, *plot_path;
    char certfleet[PATH_MAX], mockca[PATH_MAX], mockdns[PATH_MAX];
    char workdir[PATH_MAX];
    int keep, own_workdir;
    int perf; /* measured commands under perf record */
    const char *net;
    int dns_port, ca_port;
    size_t concurrency, order_concurrency;
    size_t new_order_concurrency; /* run --new-order-concurrency; 0: certfleet's default */
    const char *mix;
    int runs;
    double duration_s, interval_s;
    const char *rate_spec;
    const char *deadline;
    int verify_jws;
    int dns_threads;
    unsigned per_domain; /* hosts per customer domain; 0: 1 to 8 */
    struct strv ca_args, dns_args;
};

/* One child process. */
struct proc {
    char name[32];
    pid_t pid; /* 0 once reaped */
    int status;
    struct rusage ru;
    double t_start, t_end;
    char out_path[PATH_MAX], err_path[PATH_MAX];
};

/* The harness's own view of a running certfleet: /proc/PID/stat every SAMPLE_S. */
struct sample {
    double t;
    double cpu_s;
    double rss;
};

struct run_res {
    char label[64];
    double t_offset; /* where the run starts on the scenario's time axis */
    double wall_s;   /* process start to exit */
    double elapsed_s;
    double cpu_s; /* user + sys of the process, from wait4 */
    double maxrss;
    int exit_code;
    int have_stats; /* run --stats-json was read */
    uint64_t taken, checked, issued, renewed, failed, rate_limited, deferred, waiting;
    uint64_t max_in_flight, max_orders;
    int64_t dns_queries; /* questions the mock DNS answered during the run; -1 unknown */
    json_t *stats;       /* the --stats-json document, or NULL */
    json_t *errors;      /* class -> count */
    struct sample *samples;
    size_t nsamples, capsamples;
    uint64_t expected[FLEET__COUNT]; /* the classes of the fleet under this run's mix */
    char mix[256];
};

struct bench {
    struct opts *o;
    struct proc dns, ca;
    char state[PATH_MAX], hosts_file[PATH_MAX];
    char directory[512];
    char dns_listen[2][64], cf_dns_listen[64], ca_listen[64];
    struct run_res runs[MAX_RUNS];
    size_t nruns;
    size_t meas_from, meas_to; /* the measured runs: [from, to) */
    int stats_flag;            /* run --stats-json: -1 unknown, 0 refused, 1 accepted */
    json_t *ca_stats, *dns_stats, *status, *extra;
    uint64_t dns_queries_total;
    double dns_busy_s; /* mockdns uptime summed over its restarts */
    double t0;         /* the scenario's time origin (monotonic s) */
    char check_line[512];
};

static volatile sig_atomic_t g_interrupted;
static sigset_t g_waitset; /* SIGCHLD, SIGINT, SIGTERM: blocked, taken by sigtimedwait */
static struct proc *g_live[MAX_PROCS];

/* ---- small helpers ---- */

static double mono_s(void)
{
    return (double)cf_mono_ns() / 1e9;
}

static void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* note prints a progress line on stderr. */
static void note(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("certfleet-bench: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static void sv_add(struct strv *s, const char *x)
{
    if (s->n + 2 > s->cap) {
        s->cap = s->cap ? s->cap * 2 : 16;
        s->v = xrealloc(s->v, s->cap * sizeof(*s->v));
    }
    s->v[s->n++] = xstrdup(x);
    s->v[s->n] = NULL;
}

static void sv_addf(struct strv *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void sv_addf(struct strv *s, const char *fmt, ...)
{
    char tmp[1024];
    va_list ap;
    va_start(ap, fmt);
    str_vfmt(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    sv_add(s, tmp);
}

static void sv_addv(struct strv *s, const struct strv *more)
{
    for (size_t i = 0; i < more->n; i++)
        sv_add(s, more->v[i]);
}

static void sv_free(struct strv *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i]);
    free(s->v);
    memset(s, 0, sizeof(*s));
}

static void sv_join(char *out, size_t cap, const struct strv *s)
{
    size_t o = 0;
    out[0] = '\0';
    for (size_t i = 0; i < s->n && o + 1 < cap; i++) {
        int n = snprintf(out + o, cap - o, "%s%s", i ? " " : "", s->v[i]);
        if (n < 0)
            break;
        o += (size_t)n;
    }
}

/* read_file returns the file's contents NUL-terminated (caller frees), or NULL. */
static char *read_file(const char *path, size_t max)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    char *data = xmalloc(max + 1);
    size_t n = fread(data, 1, max, f);
    fclose(f);
    data[n] = '\0';
    return data;
}

static double dir_bytes_sum;

static int on_dir_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)path;
    (void)flag;
    (void)ftw;
    dir_bytes_sum += (double)st->st_blocks * 512.0;
    return 0;
}

/* dir_bytes returns the disk space used by the files under path (allocated blocks). */
static double dir_bytes(const char *path)
{
    dir_bytes_sum = 0;
    nftw(path, on_dir_entry, 16, FTW_PHYS);
    return dir_bytes_sum;
}

static int on_rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    return flag == FTW_DP ? rmdir(path) : unlink(path);
}

/* ---- processes ---- */

static void live_add(struct proc *p)
{
    for (int i = 0; i < MAX_PROCS; i++)
        if (!g_live[i]) {
            g_live[i] = p;
            return;
        }
}

static void live_del(struct proc *p)
{
    for (int i = 0; i < MAX_PROCS; i++)
        if (g_live[i] == p)
            g_live[i] = NULL;
}

/*
 * proc_spawn starts argv (argv[0] a path) with stdout and stderr in the
 * given files, stdin /dev/null, the extra environment entries added
 * ("NAME=value", NULL-terminated list or NULL), and a clean signal mask.
 * Returns 0 or a negated errno.
 */
static int proc_spawn(struct proc *p, const char *name, char *const argv[],
                      const char *const *env_extra, const char *out, const char *err)
{
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    sigset_t none, dflt;
    struct strv env = {0};
    int rc;
    memset(p, 0, sizeof(*p));
    str_copy(p->name, sizeof(p->name), name);
    str_copy(p->out_path, sizeof(p->out_path), out);
    str_copy(p->err_path, sizeof(p->err_path), err);
    for (char **e = environ; *e; e++) {
        int replaced = 0;
        for (const char *const *x = env_extra; x && *x && !replaced; x++) {
            const char *eq = strchr(*x, '=');
            replaced = eq && strncmp(*e, *x, (size_t)(eq - *x + 1)) == 0;
        }
        if (!replaced)
            sv_add(&env, *e);
    }
    for (const char *const *x = env_extra; x && *x; x++)
        sv_add(&env, *x);
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&fa, 2, err, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawnattr_init(&at);
    sigemptyset(&none);
    sigemptyset(&dflt);
    sigaddset(&dflt, SIGINT);
    sigaddset(&dflt, SIGTERM);
    sigaddset(&dflt, SIGPIPE);
    posix_spawnattr_setsigmask(&at, &none);
    posix_spawnattr_setsigdefault(&at, &dflt);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    p->t_start = mono_s();
    rc = posix_spawn(&p->pid, argv[0], &fa, &at, argv, env.v);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    sv_free(&env);
    if (rc) {
        p->pid = 0;
        return -rc;
    }
    live_add(p);
    return 0;
}

/* proc_reap collects p if it has ended. Returns 1 when it has (now or before). */
static int proc_reap(struct proc *p)
{
    if (!p->pid)
        return 1;
    pid_t r = wait4(p->pid, &p->status, WNOHANG, &p->ru);
    if (r != p->pid)
        return 0;
    p->t_end = mono_s();
    p->pid = 0;
    live_del(p);
    return 1;
}

static int proc_exit_code(const struct proc *p)
{
    if (WIFEXITED(p->status))
        return WEXITSTATUS(p->status);
    if (WIFSIGNALED(p->status))
        return 128 + WTERMSIG(p->status);
    return -1;
}

/*
 * wait_tick waits up to sec seconds for a signal of g_waitset. Returns 1
 * when the harness was interrupted (SIGINT, SIGTERM), else 0.
 */
static int wait_tick(double sec)
{
    struct timespec ts = {(time_t)sec, (long)((sec - (double)(time_t)sec) * 1e9)};
    int sig = sigtimedwait(&g_waitset, NULL, &ts);
    if (sig == SIGINT || sig == SIGTERM)
        g_interrupted = sig;
    return g_interrupted != 0;
}

/* proc_stop ends p: SIGTERM, then SIGKILL after grace seconds. */
static void proc_stop(struct proc *p, double grace)
{
    if (proc_reap(p))
        return;
    kill(p->pid, SIGTERM);
    double until = mono_s() + grace;
    /* wait_tick also notes a Ctrl-C meanwhile: stopping goes on, the harness ends after. */
    while (!proc_reap(p) && mono_s() < until)
        wait_tick(0.05);
    if (!proc_reap(p)) {
        kill(p->pid, SIGKILL);
        while (!proc_reap(p))
            wait_tick(0.05);
    }
}

/* stop_all stops every child still running, by PID. */
static void stop_all(void)
{
    for (int i = 0; i < MAX_PROCS; i++)
        if (g_live[i])
            proc_stop(g_live[i], 5);
}

/* sample_proc appends CPU time and RSS of the running p to r (from /proc/PID/stat). */
static void sample_proc(struct run_res *r, const struct proc *p, double t_origin)
{
    char path[64], buf[2048];
    static long tick, page;
    if (!tick) {
        tick = sysconf(_SC_CLK_TCK);
        page = sysconf(_SC_PAGESIZE);
    }
    str_fmt(path, sizeof(path), "/proc/%d/stat", (int)p->pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return;
    buf[n] = '\0';
    /* Fields after the command name (which may hold spaces): state is field 3. */
    char *s = strrchr(buf, ')');
    if (!s)
        return;
    unsigned long long v[24] = {0};
    int k = 0;
    for (char *tok = strtok(s + 2, " "); tok && k < 24; tok = strtok(NULL, " "))
        v[k++] = strtoull(tok, NULL, 10);
    if (k < 22)
        return;
    /* v[0] is field 3: utime is field 14, stime 15, rss 24. */
    if (r->nsamples == r->capsamples) {
        r->capsamples = r->capsamples ? r->capsamples * 2 : 256;
        r->samples = xrealloc(r->samples, r->capsamples * sizeof(*r->samples));
    }
    struct sample *sm = &r->samples[r->nsamples++];
    sm->t = mono_s() - t_origin;
    sm->cpu_s = (double)(v[11] + v[12]) / (double)tick;
    sm->rss = (double)v[21] * (double)page;
}

/* mock_died tells whether the mock server m, which should be running (t_start set), ended. */
static int mock_died(struct proc *m, const struct proc *p)
{
    return m != p && m->t_start > 0 && proc_reap(m);
}

/*
 * proc_wait waits for p to end, at most timeout_s (0: no limit), sampling
 * it into r (may be NULL) every SAMPLE_S. The mock servers must stay up
 * meanwhile. Returns 0 when p ended, -ETIMEDOUT, -EINTR when the harness
 * was interrupted, or -ECHILD when a mock server died.
 */
static int proc_wait(struct bench *b, struct proc *p, double timeout_s, struct run_res *r)
{
    double last = 0;
    for (;;) {
        if (proc_reap(p))
            return 0;
        if (g_interrupted)
            return -EINTR;
        if (mock_died(&b->dns, p) || mock_died(&b->ca, p)) {
            note("a mock server died: see %s and %s", b->dns.err_path, b->ca.err_path);
            return -ECHILD;
        }
        double now = mono_s();
        if (timeout_s > 0 && now - p->t_start > timeout_s)
            return -ETIMEDOUT;
        if (r && now - last >= SAMPLE_S) {
            sample_proc(r, p, b->t0);
            last = now;
        }
        wait_tick(SAMPLE_S);
    }
}

/* wait_line waits until path holds a first complete line (a server is listening). */
static char *wait_line(struct bench *b, struct proc *p, const char *path, double timeout_s)
{
    double until = mono_s() + timeout_s;
    (void)b;
    while (mono_s() < until && !g_interrupted) {
        char *data = read_file(path, 65536);
        char *nl = data ? strchr(data, '\n') : NULL;
        if (nl) {
            *nl = '\0';
            return data;
        }
        free(data);
        if (proc_reap(p))
            return NULL;
        wait_tick(0.02);
    }
    return NULL;
}

/* ---- certfleet commands ---- */

/*
 * cf_cmd runs `certfleet --state S ARGS...` to its end (at most timeout_s)
 * with output in WORKDIR/<label>.out/.err; a measured command (r given)
 * runs under `perf record` with --perf. Returns its exit code, or a
 * negative code from proc_wait.
 */
static int cf_cmd(struct bench *b, const char *label, const struct strv *args,
                  const char *const *env, double timeout_s, struct proc *p, struct run_res *r)
{
    struct strv argv = {0};
    char out[PATH_MAX], err[PATH_MAX];
    if (r && b->o->perf) {
        /* perf's own CPU and memory are in the rusage then: the report says so. */
        sv_add(&argv, "/usr/bin/perf");
        sv_add(&argv, "record");
        sv_add(&argv, "-g");
        sv_add(&argv, "-F");
        sv_add(&argv, "499");
        sv_add(&argv, "-o");
        sv_addf(&argv, "%s/%s.perf.data", b->o->workdir, label);
        sv_add(&argv, "--");
    }
    sv_add(&argv, b->o->certfleet);
    sv_add(&argv, "--state");
    sv_add(&argv, b->state);
    sv_addv(&argv, args);
    str_fmt(out, sizeof(out), "%s/%s.out", b->o->workdir, label);
    str_fmt(err, sizeof(err), "%s/%s.err", b->o->workdir, label);
    int rc = proc_spawn(p, label, argv.v, env, out, err);
    sv_free(&argv);
    if (rc) {
        note("cannot start %s: %s", b->o->certfleet, strerror(-rc));
        return rc;
    }
    rc = proc_wait(b, p, timeout_s, r);
    if (rc) {
        proc_stop(p, 10);
        return rc;
    }
    return proc_exit_code(p);
}

/* cf_simple runs a short certfleet command and fails loudly when it does not exit 0 or 1. */
static int cf_simple(struct bench *b, const char *label, const struct strv *args, int ok_max)
{
    struct proc p;
    int rc = cf_cmd(b, label, args, NULL, 3600, &p, NULL);
    if (rc < 0 || rc > ok_max) {
        char path[PATH_MAX];
        str_fmt(path, sizeof(path), "%s/%s.err", b->o->workdir, label);
        char *e = read_file(path, 4000);
        note("`certfleet %s` failed (%d): %s", args->v[0], rc, e ? e : "");
        free(e);
        return -1;
    }
    return 0;
}

/* ---- the mock servers ---- */

static void dns_args_for(struct bench *b, struct strv *a, const char *mix)
{
    const struct opts *o = b->o;
    sv_add(a, o->mockdns);
    sv_add(a, "--listen");
    sv_add(a, b->dns_listen[0]);
    sv_add(a, "--listen");
    sv_add(a, b->dns_listen[1]);
    sv_add(a, "--validation-zone");
    sv_add(a, VZONE);
    sv_addf(a, "--validation-ns=" VNS "=%s.21", o->net);
    sv_add(a, "--mix");
    sv_add(a, mix);
    sv_addf(a, "--threads=%d", o->dns_threads);
    sv_addf(a, "--stats-json=%s/mockdns-stats.json", o->workdir);
    if (o->sc == SC_SLOWDNS) {
        sv_add(a, "--latency-ms=20");
        sv_add(a, "--jitter-ms=30");
        sv_add(a, "--timeout=1");
        sv_add(a, "--servfail=0.5");
    }
    sv_addv(a, &o->dns_args);
}

/* dns_start starts certfleet-mockdns with mix and waits until it listens. */
static int dns_start(struct bench *b, const char *mix)
{
    struct strv a = {0};
    char out[PATH_MAX], err[PATH_MAX], cmd[2048];
    dns_args_for(b, &a, mix);
    sv_join(cmd, sizeof(cmd), &a);
    str_fmt(out, sizeof(out), "%s/mockdns.out", b->o->workdir);
    str_fmt(err, sizeof(err), "%s/mockdns.err", b->o->workdir);
    int rc = proc_spawn(&b->dns, "mockdns", a.v, NULL, out, err);
    sv_free(&a);
    if (rc) {
        note("cannot start %s: %s", b->o->mockdns, strerror(-rc));
        return -1;
    }
    char *line = wait_line(b, &b->dns, out, 10);
    if (!line) {
        char *e = read_file(err, 4000);
        note("certfleet-mockdns did not start (%s): %s", cmd, e ? e : "");
        free(e);
        return -1;
    }
    free(line);
    return 0;
}

/* dns_stop stops the mock DNS and keeps its stats (SIGTERM writes them). */
static void dns_stop(struct bench *b)
{
    char path[PATH_MAX];
    if (!b->dns.t_start)
        return;
    proc_stop(&b->dns, 10);
    str_fmt(path, sizeof(path), "%s/mockdns-stats.json", b->o->workdir);
    json_t *st = json_load_file(path, 0, NULL);
    if (st) {
        b->dns_queries_total += (uint64_t)json_integer_value(json_object_get(st, "queries"));
        b->dns_busy_s += json_real_value(json_object_get(st, "uptime_s"));
        json_decref(b->dns_stats);
        b->dns_stats = st;
    }
    b->dns.t_start = 0;
}

/*
 * dns_queries returns the running mock DNS's query count (SIGUSR1 makes it
 * write its stats file), or -1.
 */
static int64_t dns_queries(struct bench *b)
{
    char path[PATH_MAX];
    if (!b->dns.t_start || !b->dns.pid)
        return -1;
    str_fmt(path, sizeof(path), "%s/mockdns-stats.json", b->o->workdir);
    unlink(path);
    kill(b->dns.pid, SIGUSR1);
    /* It writes a temporary file and renames it: a file that is there is whole. */
    double until = mono_s() + 2;
    while (mono_s() < until && !g_interrupted) {
        json_t *j = json_load_file(path, 0, NULL);
        if (j) {
            int64_t q = (int64_t)json_integer_value(json_object_get(j, "queries"));
            json_decref(j);
            return q;
        }
        wait_tick(0.01);
    }
    return -1;
}

static int ca_start(struct bench *b)
{
    const struct opts *o = b->o;
    struct strv a = {0};
    char out[PATH_MAX], err[PATH_MAX], cmd[2048];
    sv_add(&a, o->mockca);
    sv_add(&a, "--listen");
    sv_add(&a, b->ca_listen);
    sv_addf(&a, "--ca-out=%s/ca.pem", o->workdir);
    sv_addf(&a, "--stats-json=%s/mockca-stats.json", o->workdir);
    sv_add(&a, "--validate=none");
    sv_add(&a, o->verify_jws ? "--verify-jws" : "--trust-jws");
    sv_add(&a, "--log-level=warn");
    sv_add(&a, "--cert-lifetime=90d");
    if (o->sc == SC_RATELIMITED)
        sv_addf(&a, "--ratelimit=%s", o->rate_spec);
    if (o->sc == SC_FAULTY) {
        sv_add(&a, "--fail-429=2");
        sv_add(&a, "--fail-503=2");
        sv_add(&a, "--bad-nonce=2");
        sv_add(&a, "--drop=0.5");
        sv_add(&a, "--hang=0.1");
        sv_add(&a, "--retry-after=1");
    }
    sv_addv(&a, &o->ca_args);
    sv_join(cmd, sizeof(cmd), &a);
    str_fmt(out, sizeof(out), "%s/mockca.out", o->workdir);
    str_fmt(err, sizeof(err), "%s/mockca.err", o->workdir);
    int rc = proc_spawn(&b->ca, "mockca", a.v, NULL, out, err);
    sv_free(&a);
    if (rc) {
        note("cannot start %s: %s", o->mockca, strerror(-rc));
        return -1;
    }
    char *line = wait_line(b, &b->ca, out, 30);
    json_t *j = line ? json_loads(line, 0, NULL) : NULL;
    const char *dir = j ? json_string_value(json_object_get(j, "directory")) : NULL;
    if (!dir) {
        char *e = read_file(err, 4000);
        note("certfleet-mockca did not start (%s): %s", cmd, e ? e : "");
        free(e);
        free(line);
        json_decref(j);
        return -1;
    }
    str_copy(b->directory, sizeof(b->directory), dir);
    json_decref(j);
    free(line);
    return 0;
}

static void ca_stop(struct bench *b)
{
    char path[PATH_MAX];
    if (!b->ca.t_start)
        return;
    proc_stop(&b->ca, 10);
    str_fmt(path, sizeof(path), "%s/mockca-stats.json", b->o->workdir);
    json_decref(b->ca_stats);
    b->ca_stats = json_load_file(path, 0, NULL);
    b->ca.t_start = 0;
}

/* ---- the fleet ---- */

/* write_fleet writes the generated hostnames, one a line. */
static int write_fleet(struct bench *b)
{
    struct fleet_gen g;
    char name[64];
    str_fmt(b->hosts_file, sizeof(b->hosts_file), "%s/hosts.txt", b->o->workdir);
    FILE *f = fopen(b->hosts_file, "w");
    if (!f)
        return -1;
    fleet_gen_init(&g, b->o->per_domain);
    for (uint64_t i = 0; i < b->o->hosts; i++) {
        size_t n = fleet_gen_next(&g, name, sizeof(name));
        name[n] = '\n';
        fwrite(name, 1, n + 1, f);
    }
    return fclose(f) == 0 ? 0 : -1;
}

/* count_classes counts the fleet's hosts by class under mix. */
static void count_classes(struct bench *b, const char *mix, uint64_t out[FLEET__COUNT])
{
    struct fleet_mix m;
    struct fleet_gen g;
    char name[64], err[256];
    memset(out, 0, sizeof(uint64_t) * FLEET__COUNT);
    if (fleet_mix_parse(&m, mix, err, sizeof(err)) != 0)
        return;
    fleet_gen_init(&g, b->o->per_domain);
    for (uint64_t i = 0; i < b->o->hosts; i++) {
        size_t n = fleet_gen_next(&g, name, sizeof(name));
        out[fleet_host_class(&m, name, n)]++;
    }
}

/* setup_state: certfleet init, dns_auth_port in config.json (init has no flag), import. */
static int setup_state(struct bench *b)
{
    const struct opts *o = b->o;
    struct strv a = {0};
    char ca_pem[PATH_MAX], cfg[PATH_MAX];
    int rc = -1;
    str_fmt(b->state, sizeof(b->state), "%s/state", o->workdir);
    str_fmt(ca_pem, sizeof(ca_pem), "%s/ca.pem", o->workdir);
    sv_add(&a, "init");
    sv_add(&a, "--validation-zone=" VZONE);
    sv_addf(&a, "--directory=%s", b->directory);
    sv_addf(&a, "--ca-bundle=%s", ca_pem);
    sv_addf(&a, "--resolver=%s", b->dns_listen[0]);
    sv_addf(&a, "--dns-listen=%s", b->cf_dns_listen);
    sv_addf(&a, "--validation-ns=" VNS "=%s.21", o->net);
    sv_add(&a, "--cdn-target=" CDN_TARGET);
    if (o->sc == SC_RATELIMITED)
        sv_addf(&a, "--rate-limits=%s", o->rate_spec);
    if (cf_simple(b, "init", &a, 0) != 0)
        goto out_free;
    /*
     * The authoritative servers' port: config.json's dns_auth_port, which
     * `init` has no flag for. The validation zone's server is asked on the
     * same port, so certfleet's --dns-listen uses the mock's port too.
     */
    str_fmt(cfg, sizeof(cfg), "%s/config.json", b->state);
    json_t *c = json_load_file(cfg, 0, NULL);
    if (!c) {
        note("cannot read %s", cfg);
        goto out_free;
    }
    json_object_set_new(c, "dns_auth_port", json_integer(o->dns_port));
    int wrc = json_dump_file(c, cfg, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(c);
    if (wrc != 0 || chmod(cfg, 0600) != 0) {
        note("cannot write %s", cfg);
        goto out_free;
    }
    sv_free(&a);
    sv_add(&a, "import");
    sv_add(&a, b->hosts_file);
    note("importing %llu hosts", (unsigned long long)o->hosts);
    double t = mono_s();
    if (cf_simple(b, "import", &a, 0) != 0)
        goto out_free;
    json_object_set_new(b->extra, "import_s", json_real(mono_s() - t));
    rc = 0;
out_free:
    sv_free(&a);
    return rc;
}

/* ---- one certfleet run ---- */

static uint64_t jint(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    return json_is_integer(v) ? (uint64_t)json_integer_value(v) : (uint64_t)json_number_value(v);
}

/*
 * read_metrics fills r from the run's metrics.prom: everything without
 * --stats-json, and the hosts still waiting for their delegation with it.
 */
static void read_metrics(struct bench *b, struct run_res *r)
{
    char path[PATH_MAX];
    str_fmt(path, sizeof(path), "%s/metrics.prom", b->state);
    char *m = read_file(path, 1 << 20);
    if (!m)
        return;
    for (char *line = strtok(m, "\n"); line; line = strtok(NULL, "\n")) {
        char key[128];
        double v;
        if (line[0] == '#' || sscanf(line, "%127s %lf", key, &v) != 2)
            continue;
        static const struct {
            const char *k;
            size_t off;
        } outcomes[] = {
            {"certfleet_run_hosts{outcome=\"taken\"}", offsetof(struct run_res, taken)},
            {"certfleet_run_hosts{outcome=\"issued\"}", offsetof(struct run_res, issued)},
            {"certfleet_run_hosts{outcome=\"renewed\"}", offsetof(struct run_res, renewed)},
            {"certfleet_run_hosts{outcome=\"failed\"}", offsetof(struct run_res, failed)},
            {"certfleet_run_hosts{outcome=\"rate_limited\"}",
             offsetof(struct run_res, rate_limited)},
            {"certfleet_run_hosts{outcome=\"deferred\"}", offsetof(struct run_res, deferred)},
            {"certfleet_run_hosts{outcome=\"waiting\"}", offsetof(struct run_res, waiting)},
        };
        for (size_t i = 0; i < sizeof(outcomes) / sizeof(outcomes[0]); i++)
            if (strcmp(key, outcomes[i].k) == 0)
                *(uint64_t *)((char *)r + outcomes[i].off) = (uint64_t)v;
        if (strcmp(key, "certfleet_run_duration_seconds") == 0)
            r->elapsed_s = v;
        if (strncmp(key, "certfleet_run_errors{class=\"", 28) == 0) {
            char *q = strchr(key + 28, '"');
            if (q) {
                *q = '\0';
                json_object_set_new(r->errors, key + 28, json_integer((json_int_t)v));
            }
        }
    }
    /* Without the stats file every host taken was checked. */
    r->checked = r->taken;
    free(m);
}

/* read_stats fills r from the run's --stats-json document. */
static void read_stats(struct run_res *r, json_t *s)
{
    r->stats = s;
    r->have_stats = 1;
    r->elapsed_s = json_number_value(json_object_get(s, "elapsed_s"));
    r->taken = jint(s, "taken");
    r->checked = jint(s, "checked");
    r->issued = jint(s, "issued");
    r->renewed = jint(s, "renewed");
    r->failed = jint(s, "failed");
    r->rate_limited = jint(s, "rate_limited");
    r->deferred = jint(s, "deferred");
    r->max_in_flight = jint(s, "max_in_flight");
    r->max_orders = jint(s, "max_orders_in_flight");
    json_t *e = json_object_get(s, "errors");
    if (json_is_object(e)) {
        json_decref(r->errors);
        r->errors = json_deep_copy(e);
    }
}

/*
 * cf_run runs `certfleet run` once (now_t > 0: with the test clock at that
 * Unix time) and records it as b->runs[b->nruns]. Returns 0 when the run
 * went through (hosts may have failed), -1 otherwise.
 */
static int cf_run(struct bench *b, const char *label, int64_t now_t, const char *deadline,
                  const char *mix)
{
    const struct opts *o = b->o;
    struct run_res *r;
    struct strv a;
    struct proc p;
    char stats_path[PATH_MAX], tbuf[64];
    const char *env[] = {"CERTFLEET_LOG=warn", now_t ? "CERTFLEET_TEST_CLOCK=1" : NULL, NULL};
    int64_t dl_s = 0;
    if (b->nruns == MAX_RUNS)
        return -1;
    r = &b->runs[b->nruns];
    cf_duration_parse(&dl_s, deadline);
    str_fmt(stats_path, sizeof(stats_path), "%s/%s-stats.json", o->workdir, label);
    for (;;) {
        memset(r, 0, sizeof(*r));
        memset(&a, 0, sizeof(a));
        str_copy(r->label, sizeof(r->label), label);
        str_copy(r->mix, sizeof(r->mix), mix);
        r->errors = json_object();
        r->t_offset = mono_s() - b->t0;
        sv_add(&a, "run");
        sv_addf(&a, "--concurrency=%zu", o->concurrency);
        sv_addf(&a, "--order-concurrency=%zu", o->order_concurrency);
        if (o->new_order_concurrency)
            sv_addf(&a, "--new-order-concurrency=%zu", o->new_order_concurrency);
        sv_addf(&a, "--deadline=%s", deadline);
        if (now_t) {
            cf_time_format(tbuf, sizeof(tbuf), now_t);
            sv_addf(&a, "--now=%s", tbuf);
        }
        if (b->stats_flag != 0) {
            sv_add(&a, "--stats-json");
            sv_add(&a, stats_path);
        }
        unlink(stats_path);
        int64_t q0 = dns_queries(b);
        int rc = cf_cmd(b, label, &a, env, (double)dl_s + 120, &p, r);
        sv_free(&a);
        int64_t q1 = rc >= 0 ? dns_queries(b) : -1;
        r->dns_queries = q0 >= 0 && q1 >= q0 ? q1 - q0 : -1;
        if (rc < 0) {
            note("run %s: %s", label,
                 rc == -ETIMEDOUT ? "did not end in time"
                 : rc == -EINTR   ? "interrupted"
                                  : "failed");
            return -1;
        }
        if (rc == 2 && b->stats_flag < 0) {
            char errp[PATH_MAX];
            str_fmt(errp, sizeof(errp), "%s/%s.err", o->workdir, label);
            char *e = read_file(errp, 8000);
            int refused = e && strstr(e, "stats-json") != NULL;
            free(e);
            if (refused) {
                note("this certfleet has no `run --stats-json`: no stage latencies nor timeline");
                b->stats_flag = 0;
                json_decref(r->errors);
                free(r->samples);
                continue;
            }
        }
        r->exit_code = rc;
        break;
    }
    r->wall_s = p.t_end - p.t_start;
    r->cpu_s = (double)p.ru.ru_utime.tv_sec + (double)p.ru.ru_utime.tv_usec / 1e6 +
               (double)p.ru.ru_stime.tv_sec + (double)p.ru.ru_stime.tv_usec / 1e6;
    r->maxrss = (double)p.ru.ru_maxrss * 1024.0;
    json_t *s = b->stats_flag != 0 ? json_load_file(stats_path, 0, NULL) : NULL;
    /* metrics.prom always (it alone has "waiting"), the stats document over it when there. */
    read_metrics(b, r);
    if (s) {
        b->stats_flag = 1;
        read_stats(r, s);
    }
    if (r->elapsed_s <= 0)
        r->elapsed_s = r->wall_s;
    count_classes(b, mix, r->expected);
    b->nruns++;
    note("run %s: exit %d, %.1f s, %llu checked, %llu issued, %llu renewed, %llu failed, "
         "%llu rate limited, %llu deferred, %.2f s CPU, peak RSS %.1f MiB",
         label, r->exit_code, r->elapsed_s, (unsigned long long)r->checked,
         (unsigned long long)r->issued, (unsigned long long)r->renewed,
         (unsigned long long)r->failed, (unsigned long long)r->rate_limited,
         (unsigned long long)r->deferred, r->cpu_s, r->maxrss / 1048576.0);
    if (r->exit_code > 1) {
        char errp[PATH_MAX];
        str_fmt(errp, sizeof(errp), "%s/%s.err", o->workdir, label);
        char *e = read_file(errp, 2000);
        note("run %s ended with %d: %s", label, r->exit_code, e ? e : "");
        free(e);
        return -1;
    }
    return 0;
}

/* status_json reads `certfleet status --json` into b->status. */
static void status_json(struct bench *b)
{
    struct strv a = {0};
    char path[PATH_MAX];
    sv_add(&a, "status");
    sv_add(&a, "--json");
    if (cf_simple(b, "status", &a, 1) == 0) {
        str_fmt(path, sizeof(path), "%s/status.out", b->o->workdir);
        json_decref(b->status);
        b->status = json_load_file(path, 0, NULL);
    }
    sv_free(&a);
}

/* ---- scenarios ---- */

static int sc_renewal(struct bench *b)
{
    const char *mix = b->o->mix ? b->o->mix : "delegated=100";
    /* First issuance of the whole fleet: the setup, reported as its own run. */
    note("renewal: issuing %llu certificates (setup run)", (unsigned long long)b->o->hosts);
    if (cf_run(b, "issue", 0, b->o->deadline, mix) != 0)
        return -1;
    /*
     * Then the nightly run, 80% into the certificates' 90 days: past the
     * renewal point (62-70% of the lifetime, or the mock CA's ARI window at
     * 66-70%) and before expiry. Every host is due.
     */
    int64_t now = cf_wall_ms() / 1000 + 72 * 86400;
    note("renewal: the nightly run at +72 days");
    b->meas_from = b->nruns;
    if (cf_run(b, "renew", now, b->o->deadline, mix) != 0)
        return -1;
    b->meas_to = b->nruns;
    return 0;
}

static int sc_migration(struct bench *b)
{
    const struct opts *o = b->o;
    int64_t t0 = cf_wall_ms() / 1000;
    b->meas_from = b->nruns;
    for (int k = 1; k <= o->runs; k++) {
        /*
         * CNAMEs appear over time: the share of hosts with a CNAME grows to
         * 98% by the last run; 1% each of them stays not live, propagating
         * or wrong. Bands only move up (fleet.h), so a host that was
         * delegated stays delegated. One simulated day between runs: every
         * host waiting for its delegation is due again (re-checks double
         * from 10 min up to a day), and active hosts get their daily check.
         */
        double with_cname = 98.0 * k / o->runs;
        double deleg = with_cname > 3 ? with_cname - 3 : 0;
        char mix[256], label[32];
        if (o->mix)
            str_copy(mix, sizeof(mix), o->mix);
        else
            str_fmt(mix, sizeof(mix), "delegated=%.2f,notlive=1,propagating=1,wrong=1", deleg);
        str_fmt(label, sizeof(label), "run%d", k);
        if (k > 1) {
            dns_stop(b);
            if (dns_start(b, mix) != 0)
                return -1;
        }
        note("migration: run %d of %d, mix %s", k, o->runs, mix);
        if (cf_run(b, label, t0 + (int64_t)(k - 1) * 86400 + 60, o->deadline, mix) != 0)
            return -1;
        if (g_interrupted)
            return -1;
    }
    b->meas_to = b->nruns;
    return 0;
}

static int sc_ratelimited(struct bench *b)
{
    const struct opts *o = b->o;
    const char *mix = o->mix ? o->mix : "delegated=100";
    double start = mono_s();
    uint64_t issued = 0, expected = 0, counts[FLEET__COUNT];
    count_classes(b, mix, counts);
    expected = counts[FLEET_DELEGATED] + counts[FLEET_NOTLIVE];
    b->meas_from = b->nruns;
    /*
     * Back-to-back runs (a cron job every --interval) until --duration is
     * over: hosts refused by the buckets are deferred to when they allow
     * them, and a later run takes them.
     */
    for (int k = 1; mono_s() - start < o->duration_s && issued < expected && !g_interrupted; k++) {
        char label[32], dl[32];
        double left = o->duration_s - (mono_s() - start);
        str_fmt(label, sizeof(label), "run%d", k);
        str_fmt(dl, sizeof(dl), "%ds", left > 1 ? (int)left : 1);
        if (cf_run(b, label, 0, dl, mix) != 0)
            return -1;
        issued += b->runs[b->nruns - 1].issued;
        if (b->nruns == MAX_RUNS)
            break;
        double until = mono_s() + o->interval_s;
        while (mono_s() < until && !wait_tick(until - mono_s()))
            ;
    }
    b->meas_to = b->nruns;
    /* What the CA allowed over the whole time: a full new-orders bucket, then its rate. */
    struct rl_profile prof;
    char err[256];
    double total_s = mono_s() - start;
    if (rl_profile_parse(&prof, o->rate_spec, err, sizeof(err)) == 0 &&
        prof.limit[RL_NEW_ORDERS].count) {
        const struct rl_limit *l = &prof.limit[RL_NEW_ORDERS];
        double burst = l->burst ? l->burst : l->count;
        double rate = (double)l->count * 1000.0 / (double)l->period_ms;
        double allowed = burst + rate * total_s;
        double cap = allowed < (double)expected ? allowed : (double)expected;
        json_object_set_new(b->extra, "rate_spec", json_string(o->rate_spec));
        json_object_set_new(b->extra, "scenario_s", json_real(total_s));
        json_object_set_new(b->extra, "allowed_orders", json_real(allowed));
        json_object_set_new(b->extra, "allowed_burst", json_real(burst));
        json_object_set_new(b->extra, "allowed_per_s", json_real(rate));
        json_object_set_new(b->extra, "allowed_t0", json_real(start - b->t0));
        json_object_set_new(b->extra, "issued", json_integer((json_int_t)issued));
        json_object_set_new(b->extra, "issuance_vs_allowed",
                            json_real(cap > 0 ? (double)issued / cap : 0));
    }
    /* How much the ACME client's pacer held back (run --stats-json), over the measured runs. */
    json_int_t paced = 0, wait_ms = 0, got429 = 0;
    int have_pacer = 0;
    for (size_t i = b->meas_from; i < b->meas_to; i++) {
        json_t *st = b->runs[i].stats;
        if (!st || !json_is_integer(json_object_get(st, "acme_paced")))
            continue;
        have_pacer = 1;
        paced += json_integer_value(json_object_get(st, "acme_paced"));
        wait_ms += json_integer_value(json_object_get(st, "acme_pace_wait_ms"));
        got429 += json_integer_value(json_object_get(st, "acme_429"));
    }
    if (have_pacer) {
        json_object_set_new(b->extra, "requests_paced", json_integer(paced));
        json_object_set_new(b->extra, "pace_wait_s_mean",
                            json_real(paced ? (double)wait_ms / 1000.0 / (double)paced : 0));
        json_object_set_new(b->extra, "client_saw_429", json_integer(got429));
    }
    return 0;
}

static int sc_faulty(struct bench *b)
{
    const char *mix = b->o->mix ? b->o->mix : "delegated=100";
    note("faulty: issuing against a CA that injects errors");
    b->meas_from = b->nruns;
    if (cf_run(b, "faulty", 0, b->o->deadline, mix) != 0)
        return -1;
    b->meas_to = b->nruns;
    /* The failed hosts back off (1 min, 10 min, 100 min): a run 2 h later takes them again. */
    note("faulty: the next run, 2 h later (test clock), retries what failed");
    if (cf_run(b, "retry", cf_wall_ms() / 1000 + 7200, b->o->deadline, mix) != 0)
        return -1;
    return 0;
}

static int sc_slowdns(struct bench *b)
{
    const char *mix = b->o->mix ? b->o->mix : DEFAULT_MIX;
    note("slowdns: DNS answers 20-50 ms late, 1%% lost, 0.5%% SERVFAIL");
    b->meas_from = b->nruns;
    if (cf_run(b, "slowdns", 0, b->o->deadline, mix) != 0)
        return -1;
    b->meas_to = b->nruns;
    return 0;
}

/* sc_checks measures delegation checks alone: `certfleet check --only delegation --quiet`. */
static int sc_checks(struct bench *b)
{
    const struct opts *o = b->o;
    const char *mix = o->mix ? o->mix : DEFAULT_MIX;
    struct strv a = {0};
    struct proc p;
    struct run_res *r = &b->runs[b->nruns];
    memset(r, 0, sizeof(*r));
    str_copy(r->label, sizeof(r->label), "check");
    str_copy(r->mix, sizeof(r->mix), mix);
    r->errors = json_object();
    r->t_offset = mono_s() - b->t0;
    sv_add(&a, "check");
    sv_add(&a, "--only=delegation");
    sv_add(&a, "--quiet");
    sv_addf(&a, "--concurrency=%zu", o->concurrency);
    note("checks: %llu delegation checks", (unsigned long long)o->hosts);
    int64_t q0 = dns_queries(b);
    int rc = cf_cmd(b, "check", &a, (const char *const[]){"CERTFLEET_LOG=warn", NULL}, 3600, &p, r);
    sv_free(&a);
    int64_t q1 = rc >= 0 ? dns_queries(b) : -1;
    r->dns_queries = q0 >= 0 && q1 >= q0 ? q1 - q0 : -1;
    if (rc < 0 || rc > 1)
        return -1;
    r->exit_code = rc;
    r->wall_s = p.t_end - p.t_start;
    r->cpu_s = (double)p.ru.ru_utime.tv_sec + (double)p.ru.ru_utime.tv_usec / 1e6 +
               (double)p.ru.ru_stime.tv_sec + (double)p.ru.ru_stime.tv_usec / 1e6;
    r->maxrss = (double)p.ru.ru_maxrss * 1024.0;
    char path[PATH_MAX];
    str_fmt(path, sizeof(path), "%s/check.out", o->workdir);
    char *out = read_file(path, 1 << 16);
    unsigned long long n = 0, conf = 0, prop = 0, miss = 0, wrong = 0, errs = 0;
    double secs = 0;
    const char *line = out ? strstr(out, "checked ") : NULL;
    if (line && sscanf(line,
                       "checked %llu hosts in %lf s (%*f hosts/s): %llu confirmed, %llu "
                       "propagating, %llu missing, %llu wrong target, %llu errors",
                       &n, &secs, &conf, &prop, &miss, &wrong, &errs) == 7) {
        const char *nl = strchr(line, '\n');
        str_fmt(b->check_line, sizeof(b->check_line), "%.*s", nl ? (int)(nl - line) : 400, line);
        r->checked = r->taken = n;
        r->elapsed_s = secs;
        json_t *found = json_object();
        json_object_set_new(found, "confirmed", json_integer((json_int_t)conf));
        json_object_set_new(found, "propagating", json_integer((json_int_t)prop));
        json_object_set_new(found, "missing", json_integer((json_int_t)miss));
        json_object_set_new(found, "wrong_target", json_integer((json_int_t)wrong));
        json_object_set_new(found, "error", json_integer((json_int_t)errs));
        json_object_set_new(b->extra, "delegation_results", found);
    }
    free(out);
    if (r->elapsed_s <= 0)
        r->elapsed_s = r->wall_s;
    count_classes(b, mix, r->expected);
    b->meas_from = b->nruns;
    b->nruns++;
    b->meas_to = b->nruns;
    return 0;
}

/* ---- the report ---- */

struct totals {
    double elapsed, cpu, maxrss;
    uint64_t taken, checked, issued, renewed, failed, rate_limited, deferred;
    uint64_t max_in_flight, max_orders;
    int64_t dns_queries; /* -1 when a measured run's count is unknown */
    json_t *errors;
};

static void sum_runs(const struct bench *b, struct totals *t)
{
    memset(t, 0, sizeof(*t));
    t->errors = json_object();
    for (size_t i = b->meas_from; i < b->meas_to; i++) {
        const struct run_res *r = &b->runs[i];
        const char *k;
        json_t *v;
        t->elapsed += r->elapsed_s;
        t->cpu += r->cpu_s;
        t->maxrss = r->maxrss > t->maxrss ? r->maxrss : t->maxrss;
        t->taken += r->taken;
        t->checked += r->checked;
        t->issued += r->issued;
        t->renewed += r->renewed;
        t->failed += r->failed;
        t->rate_limited += r->rate_limited;
        t->deferred += r->deferred;
        if (r->max_in_flight > t->max_in_flight)
            t->max_in_flight = r->max_in_flight;
        if (r->max_orders > t->max_orders)
            t->max_orders = r->max_orders;
        if (r->dns_queries < 0 || t->dns_queries < 0)
            t->dns_queries = -1;
        else
            t->dns_queries += r->dns_queries;
        json_object_foreach(r->errors, k, v)
        {
            json_int_t prev = json_integer_value(json_object_get(t->errors, k));
            json_object_set_new(t->errors, k, json_integer(prev + json_integer_value(v)));
        }
    }
}

/* stage_table merges the measured runs' stage histograms: the largest quantiles win. */
static json_t *stage_table(const struct bench *b)
{
    json_t *out = NULL;
    for (size_t i = b->meas_from; i < b->meas_to; i++) {
        json_t *st = b->runs[i].stats ? json_object_get(b->runs[i].stats, "stages") : NULL;
        const char *k;
        json_t *v;
        if (!json_is_object(st))
            continue;
        if (!out)
            out = json_object();
        json_object_foreach(st, k, v)
        {
            json_t *cur = json_object_get(out, k);
            if (!cur) {
                json_object_set_new(out, k, json_deep_copy(v));
                continue;
            }
            /* Several runs: counts add up; a quantile is kept at its worst run's value. */
            json_object_set_new(cur, "n",
                                json_integer(json_integer_value(json_object_get(cur, "n")) +
                                             json_integer_value(json_object_get(v, "n"))));
            static const char *const qs[] = {"p50_ms", "p95_ms", "p99_ms"};
            for (int q = 0; q < 3; q++) {
                double a = json_number_value(json_object_get(cur, qs[q]));
                double c = json_number_value(json_object_get(v, qs[q]));
                if (c > a)
                    json_object_set_new(cur, qs[q], json_real(c));
            }
        }
    }
    return out;
}

static json_t *run_json(const struct run_res *r)
{
    json_t *j = json_object();
    json_object_set_new(j, "label", json_string(r->label));
    json_object_set_new(j, "mix", json_string(r->mix));
    json_object_set_new(j, "exit", json_integer(r->exit_code));
    json_object_set_new(j, "elapsed_s", json_real(r->elapsed_s));
    json_object_set_new(j, "wall_s", json_real(r->wall_s));
    json_object_set_new(j, "cpu_s", json_real(r->cpu_s));
    json_object_set_new(j, "peak_rss_bytes", json_integer((json_int_t)r->maxrss));
    json_object_set_new(j, "taken", json_integer((json_int_t)r->taken));
    json_object_set_new(j, "checked", json_integer((json_int_t)r->checked));
    json_object_set_new(j, "issued", json_integer((json_int_t)r->issued));
    json_object_set_new(j, "renewed", json_integer((json_int_t)r->renewed));
    json_object_set_new(j, "failed", json_integer((json_int_t)r->failed));
    json_object_set_new(j, "rate_limited", json_integer((json_int_t)r->rate_limited));
    json_object_set_new(j, "deferred", json_integer((json_int_t)r->deferred));
    json_object_set_new(j, "waiting", json_integer((json_int_t)r->waiting));
    json_object_set_new(j, "max_in_flight", json_integer((json_int_t)r->max_in_flight));
    json_object_set_new(j, "max_orders_in_flight", json_integer((json_int_t)r->max_orders));
    double certs = (double)(r->issued + r->renewed);
    json_object_set_new(j, "certs_per_s", json_real(r->elapsed_s > 0 ? certs / r->elapsed_s : 0));
    json_object_set_new(j, "checks_per_s",
                        json_real(r->elapsed_s > 0 ? (double)r->checked / r->elapsed_s : 0));
    json_object_set_new(j, "errors", json_deep_copy(r->errors));
    json_t *exp = json_object();
    for (int c = 0; c < FLEET__COUNT; c++)
        json_object_set_new(exp, fleet_class_name(c), json_integer((json_int_t)r->expected[c]));
    json_object_set_new(j, "fleet_classes", exp);
    json_object_set_new(j, "stats_json", json_boolean(r->have_stats));
    json_object_set_new(j, "dns_queries",
                        r->dns_queries >= 0 ? json_integer(r->dns_queries) : json_null());
    if (r->dns_queries >= 0 && r->elapsed_s > 0)
        json_object_set_new(j, "dns_queries_per_s",
                            json_real((double)r->dns_queries / r->elapsed_s));
    /* The ACME client's pacer, when the run reports it: requests that waited, their waits, 429s. */
    static const char *const pacer_keys[] = {"acme_paced", "acme_pace_wait_ms", "acme_429"};
    for (size_t i = 0; i < sizeof(pacer_keys) / sizeof(pacer_keys[0]); i++) {
        json_t *v = r->stats ? json_object_get(r->stats, pacer_keys[i]) : NULL;
        if (json_is_integer(v))
            json_object_set_new(j, pacer_keys[i], json_integer(json_integer_value(v)));
    }
    return j;
}

/*
 * timeline_json concatenates the measured runs' timelines on the scenario's
 * time axis: [t_s, done, in_flight, orders_in_flight, certs], counts
 * cumulative over the runs.
 */
static json_t *timeline_json(const struct bench *b)
{
    json_t *out = json_array();
    double done0 = 0, certs0 = 0;
    for (size_t i = 0; i < b->nruns; i++) {
        const struct run_res *r = &b->runs[i];
        json_t *tl = r->stats ? json_object_get(r->stats, "timeline") : NULL;
        size_t k;
        json_t *row;
        if (!tl)
            continue;
        json_array_foreach(tl, k, row)
        {
            if (!json_is_array(row) || json_array_size(row) < 5)
                continue;
            double v[5];
            for (int c = 0; c < 5; c++)
                v[c] = json_number_value(json_array_get(row, (size_t)c));
            json_array_append_new(out, json_pack("[f,f,f,f,f,s]", r->t_offset + v[0], done0 + v[1],
                                                 v[2], v[3], certs0 + v[4], r->label));
        }
        /* The run's end: the timeline's rows are periodic and miss it. */
        done0 += (double)r->taken;
        certs0 += (double)(r->issued + r->renewed);
        json_array_append_new(out, json_pack("[f,f,f,f,f,s]", r->t_offset + r->wall_s, done0, 0.0,
                                             0.0, certs0, r->label));
    }
    return out;
}

static json_t *samples_json(const struct bench *b)
{
    json_t *out = json_array();
    for (size_t i = 0; i < b->nruns; i++)
        for (size_t k = 0; k < b->runs[i].nsamples; k++) {
            const struct sample *s = &b->runs[i].samples[k];
            json_array_append_new(out,
                                  json_pack("[f,f,f,s]", s->t, s->cpu_s, s->rss, b->runs[i].label));
        }
    return out;
}

static json_t *bar(json_t *bars, const char *name, double value, double limit, int at_least,
                   const char *note_text)
{
    json_t *j = json_object();
    json_object_set_new(j, "value", json_real(value));
    json_object_set_new(j, at_least ? "at_least" : "at_most", json_real(limit));
    json_object_set_new(j, "met", json_boolean(at_least ? value >= limit : value <= limit));
    if (note_text)
        json_object_set_new(j, "note", json_string(note_text));
    json_object_set_new(bars, name, j);
    return j;
}

static json_t *build_report(struct bench *b)
{
    const struct opts *o = b->o;
    struct totals t;
    json_t *j = json_object();
    sum_runs(b, &t);
    double certs = (double)(t.issued + t.renewed);
    double certs_per_s = t.elapsed > 0 ? certs / t.elapsed : 0;
    double checks_per_s = t.elapsed > 0 ? (double)t.checked / t.elapsed : 0;
    double cpu_ms = certs > 0 ? t.cpu * 1000.0 / certs : 0;
    double store = dir_bytes(b->state);
    uint64_t viol = b->ca_stats ? jint(b->ca_stats, "rate_limit_violations") : 0;
    json_object_set_new(j, "scenario", json_string(sc_names[o->sc]));
    json_object_set_new(j, "hosts", json_integer((json_int_t)o->hosts));
    json_object_set_new(j, "measured_runs", json_integer((json_int_t)(b->meas_to - b->meas_from)));
    json_object_set_new(j, "certs_per_s", json_real(certs_per_s));
    json_object_set_new(j, "checks_per_s", json_real(checks_per_s));
    json_object_set_new(j, "cpu_ms_per_cert", certs > 0 ? json_real(cpu_ms) : json_null());
    json_object_set_new(j, "cpu_us_per_check",
                        t.checked ? json_real(t.cpu * 1e6 / (double)t.checked) : json_null());
    json_object_set_new(j, "peak_rss_bytes", json_integer((json_int_t)t.maxrss));
    json_object_set_new(j, "max_in_flight",
                        b->stats_flag == 1 ? json_integer((json_int_t)t.max_in_flight)
                                           : json_null());
    json_object_set_new(j, "max_orders_in_flight",
                        b->stats_flag == 1 ? json_integer((json_int_t)t.max_orders) : json_null());
    if (b->stats_flag == 1 && t.max_in_flight > 0) {
        double over = t.maxrss > BAR_RSS_BASE ? t.maxrss - BAR_RSS_BASE : 0;
        json_object_set_new(j, "rss_per_pipeline_bytes", json_real(over / (double)t.max_in_flight));
        json_object_set_new(j, "rss_budget_bytes",
                            json_real(BAR_RSS_BASE + BAR_RSS_PER_PIPELINE * t.max_in_flight));
    } else {
        json_object_set_new(j, "rss_per_pipeline_bytes", json_null());
    }
    json_object_set_new(j, "store_bytes_per_host", json_real(store / (double)o->hosts));
    json_object_set_new(j, "rate_limit_violations", json_integer((json_int_t)viol));
    json_object_set_new(j, "certs", json_integer((json_int_t)certs));
    json_object_set_new(j, "issued", json_integer((json_int_t)t.issued));
    json_object_set_new(j, "renewed", json_integer((json_int_t)t.renewed));
    json_object_set_new(j, "checked", json_integer((json_int_t)t.checked));
    json_object_set_new(j, "failed", json_integer((json_int_t)t.failed));
    json_object_set_new(j, "rate_limited", json_integer((json_int_t)t.rate_limited));
    json_object_set_new(j, "deferred", json_integer((json_int_t)t.deferred));
    json_object_set_new(j, "elapsed_s", json_real(t.elapsed));
    json_object_set_new(j, "cpu_s", json_real(t.cpu));
    json_object_set_new(j, "errors", t.errors);
    json_t *stages = stage_table(b);
    json_object_set_new(j, "stages", stages ? stages : json_null());
    if (!stages)
        json_object_set_new(j, "stages_missing",
                            json_string(b->stats_flag == 0 ? "certfleet run has no --stats-json"
                                                           : "no stage data in the measured runs"));
    json_object_set_new(j, "scenario_details", json_deep_copy(b->extra));
    json_t *runs = json_array();
    for (size_t i = 0; i < b->nruns; i++) {
        json_t *rj = run_json(&b->runs[i]);
        json_object_set_new(rj, "measured", json_boolean(i >= b->meas_from && i < b->meas_to));
        json_array_append_new(runs, rj);
    }
    json_object_set_new(j, "runs", runs);
    /* What the mock DNS made of the fleet at the last run, against where the hosts ended up. */
    const struct run_res *last = &b->runs[b->nruns - 1];
    json_t *cls = json_object();
    for (int c = 0; c < FLEET__COUNT; c++)
        json_object_set_new(cls, fleet_class_name(c), json_integer((json_int_t)last->expected[c]));
    json_object_set_new(j, "fleet_classes", cls);
    json_object_set_new(j, "fleet_delegated",
                        json_integer((json_int_t)(last->expected[FLEET_DELEGATED] +
                                                  last->expected[FLEET_NOTLIVE])));
    json_object_set_new(j, "status_after", b->status ? json_deep_copy(b->status) : json_null());
    json_object_set_new(j, "mockca", b->ca_stats ? json_deep_copy(b->ca_stats) : json_null());
    json_t *dns = b->dns_stats ? json_deep_copy(b->dns_stats) : json_null();
    if (b->dns_stats)
        json_object_set_new(dns, "queries_all_runs",
                            json_integer((json_int_t)b->dns_queries_total));
    if (t.dns_queries >= 0 && t.elapsed > 0)
        json_object_set_new(j, "dns_queries_per_s", json_real((double)t.dns_queries / t.elapsed));
    json_object_set_new(j, "mockdns", dns);
    json_t *cfg = json_object();
    json_object_set_new(cfg, "concurrency", json_integer((json_int_t)o->concurrency));
    json_object_set_new(cfg, "order_concurrency", json_integer((json_int_t)o->order_concurrency));
    json_object_set_new(cfg, "new_order_concurrency",
                        json_integer((json_int_t)o->new_order_concurrency));
    json_object_set_new(cfg, "deadline", json_string(o->deadline));
    json_object_set_new(cfg, "verify_jws", json_boolean(o->verify_jws));
    json_object_set_new(cfg, "perf", json_boolean(o->perf));
    json_object_set_new(cfg, "mockdns_threads", json_integer(o->dns_threads));
    json_object_set_new(cfg, "hosts_per_domain",
                        o->per_domain ? json_integer(o->per_domain) : json_string("1-8"));
    json_object_set_new(cfg, "cpus", json_integer(sysconf(_SC_NPROCESSORS_ONLN)));
    json_object_set_new(cfg, "workdir", json_string(o->workdir));
    json_object_set_new(j, "config", cfg);
    /* The bars, where this scenario measures them. */
    json_t *bars = json_object();
    if (certs > 0 && o->sc != SC_RATELIMITED && o->sc != SC_FAULTY && o->sc != SC_SLOWDNS) {
        bar(bars, "certs_per_s", certs_per_s, BAR_CERTS_PER_S, 1,
            o->verify_jws ? "signature checks were on" : NULL);
        bar(bars, "cpu_ms_per_cert", cpu_ms, BAR_CPU_MS, 0, NULL);
    }
    if (o->sc == SC_CHECKS)
        bar(bars, "checks_per_s", checks_per_s, BAR_CHECKS_PER_S, 1, NULL);
    if (b->stats_flag == 1 && t.max_in_flight > 0)
        bar(bars, "peak_rss_bytes", t.maxrss,
            BAR_RSS_BASE + BAR_RSS_PER_PIPELINE * (double)t.max_in_flight, 0,
            "64 MiB + 8 KiB per in-flight pipeline");
    if (o->sc == SC_RATELIMITED) {
        bar(bars, "rate_limit_violations", (double)viol, 0, 0, NULL);
        json_t *share = json_object_get(b->extra, "issuance_vs_allowed");
        if (share)
            bar(bars, "issuance_vs_allowed", json_real_value(share), BAR_RL_SHARE, 1, NULL);
    }
    json_object_set_new(j, "bars", bars);
    json_object_set_new(j, "timeline", timeline_json(b));
    json_object_set_new(j, "samples", samples_json(b));
    return j;
}

static const char *human_bytes(char *out, size_t n, double v)
{
    if (v >= 1048576.0)
        str_fmt(out, n, "%.1f MiB", v / 1048576.0);
    else if (v >= 1024.0)
        str_fmt(out, n, "%.1f KiB", v / 1024.0);
    else
        str_fmt(out, n, "%.0f B", v);
    return out;
}

static void print_report(const struct bench *b, json_t *rep)
{
    char tmp[64];
    FILE *f = stdout;
    const char *k;
    json_t *v;
    fprintf(f, "\ncertfleet-bench %s: %lld hosts\n", sc_names[b->o->sc],
            (long long)json_integer_value(json_object_get(rep, "hosts")));
    fprintf(f, "  %-4s %-8s %8s %8s %8s %8s %6s %6s %6s %6s %8s %8s %9s %4s\n", "", "run",
            "seconds", "checked", "issued", "renewed", "failed", "ratelm", "defer", "wait",
            "certs/s", "checks/s", "peak RSS", "exit");
    for (size_t i = 0; i < b->nruns; i++) {
        const struct run_res *r = &b->runs[i];
        double certs = (double)(r->issued + r->renewed);
        fprintf(f,
                "  %-4s %-8s %8.1f %8llu %8llu %8llu %6llu %6llu %6llu %6llu %8.1f %8.0f %9s %4d\n",
                i >= b->meas_from && i < b->meas_to ? "*" : "", r->label, r->elapsed_s,
                (unsigned long long)r->checked, (unsigned long long)r->issued,
                (unsigned long long)r->renewed, (unsigned long long)r->failed,
                (unsigned long long)r->rate_limited, (unsigned long long)r->deferred,
                (unsigned long long)r->waiting, r->elapsed_s > 0 ? certs / r->elapsed_s : 0,
                r->elapsed_s > 0 ? (double)r->checked / r->elapsed_s : 0,
                human_bytes(tmp, sizeof(tmp), r->maxrss), r->exit_code);
    }
    fprintf(f, "  (* measured)\n");
    fprintf(f, "  %-34s %.1f\n", "certificates/s",
            json_real_value(json_object_get(rep, "certs_per_s")));
    fprintf(f, "  %-34s %.0f\n", "checks/s", json_real_value(json_object_get(rep, "checks_per_s")));
    v = json_object_get(rep, "dns_queries_per_s");
    if (json_is_real(v))
        fprintf(f, "  %-34s %.0f\n", "mock DNS queries/s (measured runs)", json_real_value(v));
    v = json_object_get(rep, "cpu_ms_per_cert");
    if (json_is_real(v))
        fprintf(f, "  %-34s %.3f ms\n", "certfleet CPU per certificate", json_real_value(v));
    v = json_object_get(rep, "cpu_us_per_check");
    if (json_is_real(v))
        fprintf(f, "  %-34s %.1f us\n", "certfleet CPU per host checked", json_real_value(v));
    fprintf(f, "  %-34s %s\n", "peak RSS",
            human_bytes(tmp, sizeof(tmp),
                        (double)json_integer_value(json_object_get(rep, "peak_rss_bytes"))));
    v = json_object_get(rep, "max_in_flight");
    if (json_is_integer(v))
        fprintf(f, "  %-34s %lld pipelines, %lld orders\n", "most in flight",
                (long long)json_integer_value(v),
                (long long)json_integer_value(json_object_get(rep, "max_orders_in_flight")));
    v = json_object_get(rep, "rss_per_pipeline_bytes");
    if (json_is_real(v))
        fprintf(f, "  %-34s %s (above 64 MiB)\n", "RSS per in-flight pipeline",
                human_bytes(tmp, sizeof(tmp), json_real_value(v)));
    fprintf(f, "  %-34s %.0f B\n", "store bytes per host",
            json_real_value(json_object_get(rep, "store_bytes_per_host")));
    fprintf(f, "  %-34s %lld\n", "rate-limit violations (CA)",
            (long long)json_integer_value(json_object_get(rep, "rate_limit_violations")));
    json_t *errs = json_object_get(rep, "errors");
    if (json_object_size(errs)) {
        fprintf(f, "  errors by class\n");
        json_object_foreach(errs, k, v)
            fprintf(f, "    %-32s %lld\n", k, (long long)json_integer_value(v));
    }
    json_t *det = json_object_get(rep, "scenario_details");
    json_object_foreach(det, k, v)
    {
        if (json_is_real(v))
            fprintf(f, "  %-34s %.3f\n", k, json_real_value(v));
        else if (json_is_integer(v))
            fprintf(f, "  %-34s %lld\n", k, (long long)json_integer_value(v));
        else if (json_is_string(v))
            fprintf(f, "  %-34s %s\n", k, json_string_value(v));
        else if (json_is_object(v)) {
            const char *k2;
            json_t *v2;
            fprintf(f, "  %s\n", k);
            json_object_foreach(v, k2, v2)
                fprintf(f, "    %-32s %lld\n", k2, (long long)json_integer_value(v2));
        }
    }
    if (b->check_line[0])
        fprintf(f, "  certfleet: %s\n", b->check_line);
    json_t *stages = json_object_get(rep, "stages");
    if (json_is_object(stages)) {
        fprintf(f, "  %-26s %9s %10s %10s %10s\n", "stage", "n", "p50 ms", "p95 ms", "p99 ms");
        json_object_foreach(stages, k, v)
            fprintf(f, "  %-26s %9lld %10.2f %10.2f %10.2f\n", k,
                    (long long)json_integer_value(json_object_get(v, "n")),
                    json_number_value(json_object_get(v, "p50_ms")),
                    json_number_value(json_object_get(v, "p95_ms")),
                    json_number_value(json_object_get(v, "p99_ms")));
    } else {
        fprintf(f, "  stages: missing (%s)\n",
                json_string_value(json_object_get(rep, "stages_missing")));
    }
    json_t *cls = json_object_get(rep, "fleet_classes");
    fprintf(f, "  fleet in the mock DNS (last run):");
    json_object_foreach(cls, k, v)
    {
        fprintf(f, " %s %lld", k, (long long)json_integer_value(v));
    }
    fprintf(f, "\n");
    json_t *st = json_object_get(rep, "status_after");
    if (json_is_object(json_object_get(st, "states"))) {
        fprintf(f, "  hosts by state after:");
        json_object_foreach(json_object_get(st, "states"), k, v)
            fprintf(f, " %s %lld", k, (long long)json_integer_value(v));
        fprintf(f, "\n");
    }
    json_t *dns = json_object_get(rep, "mockdns");
    if (json_is_object(dns))
        fprintf(f,
                "  %-34s %llu queries (last server: %.1f s CPU, %llu dropped, %llu SERVFAIL "
                "injected)\n",
                "mock DNS", (unsigned long long)jint(dns, "queries_all_runs"),
                json_number_value(json_object_get(dns, "cpu_s")),
                (unsigned long long)jint(dns, "dropped_injected"),
                (unsigned long long)jint(dns, "servfail_injected"));
    json_t *ca = json_object_get(rep, "mockca");
    if (json_is_object(ca)) {
        json_t *inj = json_object_get(ca, "injected");
        fprintf(f, "  %-34s %llu requests, %llu orders, %llu certificates, %.1f s CPU", "mock CA",
                (unsigned long long)jint(json_object_get(ca, "requests"), "total"),
                (unsigned long long)jint(ca, "orders"),
                (unsigned long long)jint(ca, "certs_issued"),
                json_number_value(json_object_get(ca, "cpu_s")));
        if (json_is_object(inj))
            fprintf(f, "; injected 429 %llu, 503 %llu, badNonce %llu, drop %llu, hang %llu",
                    (unsigned long long)jint(inj, "rate_limited_429"),
                    (unsigned long long)jint(inj, "unavailable_503"),
                    (unsigned long long)jint(inj, "bad_nonce"),
                    (unsigned long long)jint(inj, "drop"), (unsigned long long)jint(inj, "hang"));
        fprintf(f, "\n");
    }
    json_t *bars = json_object_get(rep, "bars");
    json_object_foreach(bars, k, v)
    {
        json_t *lim = json_object_get(v, "at_least");
        fprintf(f, "  bar %-30s %s (%.3f, %s %.3f)\n", k,
                json_is_true(json_object_get(v, "met")) ? "MET" : "MISSED",
                json_real_value(json_object_get(v, "value")), lim ? "at least" : "at most",
                json_real_value(lim ? lim : json_object_get(v, "at_most")));
    }
}

/* ---- the plot ---- */

static const char plot_script[] =
    "set terminal pngcairo size 1200,900 font ',10'\n"
    "set output outfile\n"
    "set multiplot layout 2,1 title plottitle\n"
    "set grid\n"
    "set key top left\n"
    "set xlabel 'time since the first run started (s)'\n"
    "set ylabel 'per second'\n"
    "set ytics nomirror\n"
    "set y2tics\n"
    "if (has_timeline) {\n"
    "  set y2label 'certificates (cumulative)'\n"
    "  allowed(t) = t < allowed_t0 ? 1/0 : allowed_burst + allowed_rate * (t - allowed_t0)\n"
    "  if (has_allowed) {\n"
    "    plot tlfile using 1:2 with lines lw 2 title 'certificates/s', \\\n"
    "         tlfile using 1:3 with lines title 'hosts done/s', \\\n"
    "         tlfile using 1:6 axes x1y2 with linespoints pt 7 ps 0.5 title 'certificates', \\\n"
    "         allowed(x) axes x1y2 with lines dt 2 lw 2 title 'allowed by the CA limits'\n"
    "  } else {\n"
    "    plot tlfile using 1:2 with lines lw 2 title 'certificates/s', \\\n"
    "         tlfile using 1:3 with lines title 'hosts done/s', \\\n"
    "         tlfile using 1:6 axes x1y2 with lines dt 3 title 'certificates (cumulative)'\n"
    "  }\n"
    "} else {\n"
    "  set ylabel 'certfleet CPU (%)'\n"
    "  plot smfile using 1:3 with lines lw 2 title 'certfleet CPU (%)'\n"
    "}\n"
    "set ylabel 'in flight'\n"
    "set y2label 'RSS (MiB)'\n"
    "if (has_timeline) {\n"
    "  plot tlfile using 1:4 with lines lw 2 title 'pipelines in flight', \\\n"
    "       tlfile using 1:5 with lines title 'orders in flight', \\\n"
    "       smfile using 1:2 axes x1y2 with lines dt 2 title 'certfleet RSS (MiB)'\n"
    "} else {\n"
    "  plot smfile using 1:2 axes x1y2 with lines lw 2 title 'certfleet RSS (MiB)'\n"
    "}\n"
    "unset multiplot\n";

/* make_plot writes the data files and the gnuplot script to the workdir and runs gnuplot. */
static int make_plot(struct bench *b, json_t *rep)
{
    const struct opts *o = b->o;
    char tl[PATH_MAX], sm[PATH_MAX], gp[PATH_MAX];
    str_fmt(tl, sizeof(tl), "%s/timeline.dat", o->workdir);
    str_fmt(sm, sizeof(sm), "%s/samples.dat", o->workdir);
    str_fmt(gp, sizeof(gp), "%s/plot.gp", o->workdir);
    FILE *f = fopen(tl, "w");
    json_t *timeline = json_object_get(rep, "timeline"), *row;
    size_t i;
    double pt = -1, pd = 0, pc = 0;
    int rows = 0;
    if (!f)
        return -1;
    const char *prun = "";
    fprintf(f, "# t_s certs_per_s done_per_s in_flight orders_in_flight certs\n");
    json_array_foreach(timeline, i, row)
    {
        double t = json_number_value(json_array_get(row, 0));
        double d = json_number_value(json_array_get(row, 1));
        double c = json_number_value(json_array_get(row, 4));
        const char *run = json_string_value(json_array_get(row, 5));
        if (run && strcmp(run, prun) != 0) {
            fprintf(f, "\n"); /* a new run: a new line segment */
            pt = -1;
            prun = run;
        }
        /* The first row of a run has no rate yet: NaN, which gnuplot leaves out. */
        if (pt >= 0 && t > pt)
            fprintf(f, "%.3f %.2f %.2f", t, (c - pc) / (t - pt), (d - pd) / (t - pt));
        else
            fprintf(f, "%.3f NaN NaN", t);
        fprintf(f, " %.0f %.0f %.0f\n", json_number_value(json_array_get(row, 2)),
                json_number_value(json_array_get(row, 3)), c);
        pt = t;
        pd = d;
        pc = c;
        rows++;
    }
    fclose(f);
    f = fopen(sm, "w");
    if (!f)
        return -1;
    fprintf(f, "# t_s rss_mib cpu_percent\n");
    json_t *samples = json_object_get(rep, "samples");
    pt = -1;
    double pcpu = 0;
    const char *plabel = "";
    json_array_foreach(samples, i, row)
    {
        double t = json_number_value(json_array_get(row, 0));
        double cpu = json_number_value(json_array_get(row, 1));
        const char *label = json_string_value(json_array_get(row, 3));
        if (strcmp(label, plabel) != 0) {
            fprintf(f, "\n"); /* a new run: a new line segment */
            pt = -1;
        }
        if (pt >= 0 && t > pt)
            fprintf(f, "%.3f %.2f %.1f\n", t, json_number_value(json_array_get(row, 2)) / 1048576.0,
                    (cpu - pcpu) * 100.0 / (t - pt));
        pt = t;
        pcpu = cpu;
        plabel = label;
    }
    fclose(f);
    f = fopen(gp, "w");
    if (!f)
        return -1;
    fputs(plot_script, f);
    fclose(f);
    struct strv a = {0};
    struct proc p;
    char out[PATH_MAX], err[PATH_MAX];
    str_fmt(out, sizeof(out), "%s/gnuplot.out", o->workdir);
    str_fmt(err, sizeof(err), "%s/gnuplot.err", o->workdir);
    sv_add(&a, "/usr/bin/gnuplot");
    sv_add(&a, "-e");
    json_t *det = json_object_get(rep, "scenario_details");
    json_t *al = json_object_get(det, "allowed_burst");
    sv_addf(&a,
            "outfile='%s'; tlfile='%s'; smfile='%s'; has_timeline=%d; "
            "plottitle='certfleet-bench %s, %llu hosts'; has_allowed=%d; allowed_burst=%g; "
            "allowed_rate=%g; allowed_t0=%g",
            o->plot_path, tl, sm, rows > 0, sc_names[o->sc], (unsigned long long)o->hosts,
            al != NULL, json_number_value(al),
            json_number_value(json_object_get(det, "allowed_per_s")),
            json_number_value(json_object_get(det, "allowed_t0")));
    sv_add(&a, gp);
    int rc = proc_spawn(&p, "gnuplot", a.v, NULL, out, err);
    sv_free(&a);
    if (rc) {
        note("cannot run gnuplot (apt-get install gnuplot-nox): %s", strerror(-rc));
        return -1;
    }
    if (proc_wait(b, &p, 60, NULL) != 0 || proc_exit_code(&p) != 0) {
        proc_stop(&p, 2);
        char *e = read_file(err, 2000);
        note("gnuplot failed: %s", e ? e : "");
        free(e);
        return -1;
    }
    return 0;
}

/* ---- main ---- */

static const char usage_text[] =
    "usage: certfleet-bench SCENARIO [--hosts N] [--json FILE] [--plot FILE.png] [options]\n"
    "  SCENARIO: renewal (default 100000 hosts), migration (1000000), ratelimited (2000),\n"
    "            faulty (10000), slowdns (10000), checks (100000)\n"
    "  --certfleet PATH --mockca PATH --mockdns PATH\n"
    "                         the programs (default: beside this one, certfleet in ../cli)\n"
    "  --concurrency N        run/check --concurrency (default 10000)\n"
    "  --order-concurrency N  run --order-concurrency (default 10000)\n"
    "  --new-order-concurrency N\n"
    "                         run --new-order-concurrency: newOrders in flight before their\n"
    "                         URLs are stored (default: certfleet's, 1)\n"
    "  --deadline D           run --deadline (default 30m)\n"
    "  --mix SPEC             the mock DNS's host classes (default: the scenario's)\n"
    "  --runs K               migration: runs, one simulated day apart (default 5)\n"
    "  --duration S           ratelimited: seconds of back-to-back runs (default 120)\n"
    "  --interval S           ratelimited: pause between runs (default 1)\n"
    "  --rate-limits SPEC     ratelimited: both sides' limits\n"
    "                         (default letsencrypt,new_orders=300/60s)\n"
    "  --verify-jws           the mock CA checks signatures (default: trusts them)\n"
    "  --dns-threads N        mock DNS threads (default 1)\n"
    "  --hosts-per-domain K   every customer domain gets K hosts (default: 1 to 8, 4.5 on\n"
    "                         average); bigger zones mean fewer zone-cut walks\n"
    "  --ca-arg ARG, --dns-arg ARG   extra mock CA / mock DNS argument (repeatable)\n"
    "  --net A.B.C            loopback /24 to use (default 127.0.70): .10 CA, .20/.22 DNS,\n"
    "                         .21 certfleet's validation-zone server\n"
    "  --dns-port P --ca-port P   (default 5353, 14000)\n"
    "  --workdir DIR          keep everything there (default: a temporary dir, removed)\n"
    "  --keep                 keep the temporary dir\n"
    "  --perf                 run the measured commands under `perf record -g` (WORKDIR/\n"
    "                         LABEL.perf.data; implies --keep; CPU and RSS then include perf)\n";

enum {
    OPT_HOSTS = 256,
    OPT_JSON,
    OPT_PLOT,
    OPT_CERTFLEET,
    OPT_MOCKCA,
    OPT_MOCKDNS,
    OPT_CONC,
    OPT_OCONC,
    OPT_NOCONC,
    OPT_DEADLINE,
    OPT_MIX,
    OPT_RUNS,
    OPT_DURATION,
    OPT_INTERVAL,
    OPT_RATE,
    OPT_VERIFY,
    OPT_DNS_THREADS,
    OPT_PER_DOMAIN,
    OPT_CA_ARG,
    OPT_DNS_ARG,
    OPT_NET,
    OPT_DNS_PORT,
    OPT_CA_PORT,
    OPT_WORKDIR,
    OPT_KEEP,
    OPT_PERF,
    OPT_HELP,
};

static int usage(const char *msg, const char *arg)
{
    if (msg)
        fprintf(stderr, "certfleet-bench: %s%s%s\n", msg, arg ? " " : "", arg ? arg : "");
    fputs(usage_text, stderr);
    return 2;
}

/* sibling resolves a program beside this executable (rel: a path relative to its dir). */
static void sibling(char *out, size_t n, const char *rel)
{
    char self[PATH_MAX];
    ssize_t k = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (k <= 0) {
        str_copy(out, n, rel);
        return;
    }
    self[k] = '\0';
    char *slash = strrchr(self, '/');
    if (slash)
        *slash = '\0';
    str_fmt(out, n, "%s/%s", self, rel);
    char *real = realpath(out, NULL);
    if (real) {
        str_copy(out, n, real);
        free(real);
    }
}

static int parse_u64(const char *s, uint64_t *out)
{
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (!*s || *end || v == 0)
        return -1;
    *out = v;
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option lopts[] = {
        {"hosts", required_argument, NULL, OPT_HOSTS},
        {"json", required_argument, NULL, OPT_JSON},
        {"plot", required_argument, NULL, OPT_PLOT},
        {"certfleet", required_argument, NULL, OPT_CERTFLEET},
        {"mockca", required_argument, NULL, OPT_MOCKCA},
        {"mockdns", required_argument, NULL, OPT_MOCKDNS},
        {"concurrency", required_argument, NULL, OPT_CONC},
        {"order-concurrency", required_argument, NULL, OPT_OCONC},
        {"new-order-concurrency", required_argument, NULL, OPT_NOCONC},
        {"deadline", required_argument, NULL, OPT_DEADLINE},
        {"mix", required_argument, NULL, OPT_MIX},
        {"runs", required_argument, NULL, OPT_RUNS},
        {"duration", required_argument, NULL, OPT_DURATION},
        {"interval", required_argument, NULL, OPT_INTERVAL},
        {"rate-limits", required_argument, NULL, OPT_RATE},
        {"verify-jws", no_argument, NULL, OPT_VERIFY},
        {"dns-threads", required_argument, NULL, OPT_DNS_THREADS},
        {"hosts-per-domain", required_argument, NULL, OPT_PER_DOMAIN},
        {"ca-arg", required_argument, NULL, OPT_CA_ARG},
        {"dns-arg", required_argument, NULL, OPT_DNS_ARG},
        {"net", required_argument, NULL, OPT_NET},
        {"dns-port", required_argument, NULL, OPT_DNS_PORT},
        {"ca-port", required_argument, NULL, OPT_CA_PORT},
        {"workdir", required_argument, NULL, OPT_WORKDIR},
        {"keep", no_argument, NULL, OPT_KEEP},
        {"perf", no_argument, NULL, OPT_PERF},
        {"help", no_argument, NULL, OPT_HELP},
        {NULL, 0, NULL, 0},
    };
    struct opts o;
    struct bench b;
    uint64_t v;
    int opt, rc = 1;
    memset(&o, 0, sizeof(o));
    memset(&b, 0, sizeof(b));
    o.net = "127.0.70";
    o.dns_port = 5353;
    o.ca_port = 14000;
    o.concurrency = 10000;
    o.order_concurrency = 10000;
    o.deadline = "30m";
    o.runs = 5;
    o.duration_s = 120;
    o.interval_s = 1;
    o.rate_spec = "letsencrypt,new_orders=300/60s";
    o.dns_threads = 1;
    sibling(o.certfleet, sizeof(o.certfleet), "../cli/certfleet");
    sibling(o.mockca, sizeof(o.mockca), "certfleet-mockca");
    sibling(o.mockdns, sizeof(o.mockdns), "certfleet-mockdns");
    if (argc < 2 || argv[1][0] == '-') {
        if (argc >= 2 && strcmp(argv[1], "--help") == 0) {
            fputs(usage_text, stdout);
            return 0;
        }
        return usage("a SCENARIO comes first", NULL);
    }
    int found = 0;
    for (size_t i = 0; i < sizeof(sc_names) / sizeof(sc_names[0]); i++)
        if (strcmp(argv[1], sc_names[i]) == 0) {
            o.sc = (enum scenario)i;
            found = 1;
        }
    if (!found)
        return usage("unknown scenario", argv[1]);
    static const uint64_t default_hosts[] = {100000, 1000000, 2000, 10000, 10000, 100000};
    o.hosts = default_hosts[o.sc];
    optind = 2;
    while ((opt = getopt_long(argc, argv, "", lopts, NULL)) != -1) {
        switch (opt) {
        case OPT_HOSTS:
            if (parse_u64(optarg, &o.hosts) != 0 || o.hosts > 100000000)
                return usage("bad --hosts", optarg);
            break;
        case OPT_JSON:
            o.json_path = optarg;
            break;
        case OPT_PLOT:
            o.plot_path = optarg;
            break;
        case OPT_CERTFLEET:
        case OPT_MOCKCA:
        case OPT_MOCKDNS: {
            char *real = realpath(optarg, NULL);
            char *dst = opt == OPT_CERTFLEET ? o.certfleet
                        : opt == OPT_MOCKCA  ? o.mockca
                                             : o.mockdns;
            if (!real)
                return usage("no such program:", optarg);
            str_copy(dst, PATH_MAX, real);
            free(real);
            break;
        }
        case OPT_CONC:
        case OPT_OCONC:
            if (parse_u64(optarg, &v) != 0 || v > 100000)
                return usage("bad concurrency", optarg);
            *(opt == OPT_CONC ? &o.concurrency : &o.order_concurrency) = (size_t)v;
            break;
        case OPT_NOCONC:
            if (parse_u64(optarg, &v) != 0 || v < 1 || v > 1000)
                return usage("bad --new-order-concurrency (1 to 1000)", optarg);
            o.new_order_concurrency = (size_t)v;
            break;
        case OPT_DEADLINE: {
            int64_t s;
            if (cf_duration_parse(&s, optarg) != 0 || s <= 0)
                return usage("bad --deadline", optarg);
            o.deadline = optarg;
            break;
        }
        case OPT_MIX: {
            struct fleet_mix m;
            char err[256];
            if (fleet_mix_parse(&m, optarg, err, sizeof(err)) != 0)
                return usage(err, NULL);
            o.mix = optarg;
            break;
        }
        case OPT_RUNS:
            if (parse_u64(optarg, &v) != 0 || v > MAX_RUNS)
                return usage("bad --runs", optarg);
            o.runs = (int)v;
            break;
        case OPT_DURATION:
        case OPT_INTERVAL: {
            char *end;
            double d = strtod(optarg, &end);
            if (*end || !(d >= 0 && d <= 86400))
                return usage("bad duration", optarg);
            *(opt == OPT_DURATION ? &o.duration_s : &o.interval_s) = d;
            break;
        }
        case OPT_RATE: {
            struct rl_profile p;
            char err[256];
            if (rl_profile_parse(&p, optarg, err, sizeof(err)) != 0)
                return usage(err, NULL);
            o.rate_spec = optarg;
            break;
        }
        case OPT_VERIFY:
            o.verify_jws = 1;
            break;
        case OPT_DNS_THREADS:
            if (parse_u64(optarg, &v) != 0 || v > 16)
                return usage("bad --dns-threads", optarg);
            o.dns_threads = (int)v;
            break;
        case OPT_PER_DOMAIN:
            if (parse_u64(optarg, &v) != 0 || v > 1000000)
                return usage("bad --hosts-per-domain", optarg);
            o.per_domain = (unsigned)v;
            break;
        case OPT_CA_ARG:
            sv_add(&o.ca_args, optarg);
            break;
        case OPT_DNS_ARG:
            sv_add(&o.dns_args, optarg);
            break;
        case OPT_NET:
            o.net = optarg;
            break;
        case OPT_DNS_PORT:
        case OPT_CA_PORT:
            if (parse_u64(optarg, &v) != 0 || v > 65535)
                return usage("bad port", optarg);
            *(opt == OPT_DNS_PORT ? &o.dns_port : &o.ca_port) = (int)v;
            break;
        case OPT_WORKDIR:
            str_copy(o.workdir, sizeof(o.workdir), optarg);
            break;
        case OPT_KEEP:
            o.keep = 1;
            break;
        case OPT_PERF:
            o.perf = o.keep = 1;
            break;
        case OPT_HELP:
            fputs(usage_text, stdout);
            return 0;
        default:
            return usage(NULL, NULL);
        }
    }
    if (optind < argc)
        return usage("unexpected argument", argv[optind]);
    if (o.workdir[0]) {
        if (mkdir(o.workdir, 0700) != 0 && errno != EEXIST)
            return usage("cannot create --workdir", o.workdir);
        char *real = realpath(o.workdir, NULL);
        str_copy(o.workdir, sizeof(o.workdir), real ? real : o.workdir);
        free(real);
    } else {
        str_copy(o.workdir, sizeof(o.workdir), "/tmp/cfbench-XXXXXX");
        if (!mkdtemp(o.workdir))
            return usage("cannot create a temporary dir", NULL);
        o.own_workdir = 1;
    }

    /* Signals are taken synchronously: the waits below are sigtimedwait. */
    sigemptyset(&g_waitset);
    sigaddset(&g_waitset, SIGCHLD);
    sigaddset(&g_waitset, SIGINT);
    sigaddset(&g_waitset, SIGTERM);
    sigprocmask(SIG_BLOCK, &g_waitset, NULL);
    signal(SIGPIPE, SIG_IGN);

    b.o = &o;
    b.stats_flag = -1;
    b.extra = json_object();
    b.t0 = mono_s();
    str_fmt(b.dns_listen[0], sizeof(b.dns_listen[0]), "%s.20:%d", o.net, o.dns_port);
    str_fmt(b.dns_listen[1], sizeof(b.dns_listen[1]), "%s.22:%d", o.net, o.dns_port);
    str_fmt(b.cf_dns_listen, sizeof(b.cf_dns_listen), "%s.21:%d", o.net, o.dns_port);
    str_fmt(b.ca_listen, sizeof(b.ca_listen), "%s.10:%d", o.net, o.ca_port);
    note("%s: %llu hosts, workdir %s", sc_names[o.sc], (unsigned long long)o.hosts, o.workdir);

    const char *first_mix = o.mix                                       ? o.mix
                            : (o.sc == SC_SLOWDNS || o.sc == SC_CHECKS) ? DEFAULT_MIX
                                                                        : "delegated=100";
    if (o.sc == SC_MIGRATION && !o.mix) {
        static char m1[128];
        double d = 98.0 / o.runs - 3;
        str_fmt(m1, sizeof(m1), "delegated=%.2f,notlive=1,propagating=1,wrong=1", d > 0 ? d : 0);
        first_mix = m1;
    }
    if (write_fleet(&b) != 0) {
        note("cannot write %s", b.hosts_file);
        goto out_cleanup;
    }
    if (dns_start(&b, first_mix) != 0 || ca_start(&b) != 0 || setup_state(&b) != 0)
        goto out_stop;
    b.t0 = mono_s();
    switch (o.sc) {
    case SC_RENEWAL:
        rc = sc_renewal(&b);
        break;
    case SC_MIGRATION:
        rc = sc_migration(&b);
        break;
    case SC_RATELIMITED:
        rc = sc_ratelimited(&b);
        break;
    case SC_FAULTY:
        rc = sc_faulty(&b);
        break;
    case SC_SLOWDNS:
        rc = sc_slowdns(&b);
        break;
    case SC_CHECKS:
        rc = sc_checks(&b);
        break;
    }
    if (!g_interrupted)
        status_json(&b);
out_stop:
    dns_stop(&b);
    ca_stop(&b);
    stop_all();
    if (b.nruns > 0 && b.meas_to > b.meas_from && !g_interrupted) {
        json_t *rep = build_report(&b);
        print_report(&b, rep);
        if (o.json_path && json_dump_file(rep, o.json_path, JSON_INDENT(2)) != 0) {
            note("cannot write %s", o.json_path);
            rc = 1;
        }
        if (o.plot_path && make_plot(&b, rep) != 0)
            rc = 1;
        json_decref(rep);
    } else if (rc == 0) {
        rc = 1;
    }
out_cleanup:
    if (g_interrupted) {
        note("interrupted");
        rc = 130;
    }
    if (o.own_workdir && !o.keep && rc == 0)
        nftw(o.workdir, on_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    else
        note("kept %s", o.workdir);
    for (size_t i = 0; i < b.nruns; i++) {
        json_decref(b.runs[i].stats);
        json_decref(b.runs[i].errors);
        free(b.runs[i].samples);
    }
    json_decref(b.ca_stats);
    json_decref(b.dns_stats);
    json_decref(b.status);
    json_decref(b.extra);
    sv_free(&o.ca_args);
    sv_free(&o.dns_args);
    return rc < 0 ? 1 : rc;
}
