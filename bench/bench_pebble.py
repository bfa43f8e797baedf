#!/usr/bin/env python3
"""Certificates per second against pebble, and certfleet's CPU per certificate,
measured on `certfleet run` itself (the nightly job, end to end).

Brings up the loopback ACME world once (tests/integ/acmeenv.py: pebble with
PEBBLE_VA_NOSLEEP, two knotd, unbound) with the largest --hosts count of
delegated, live hosts (one zone reload for all of them), then for every
(hosts, order concurrency K, round) and every CERTFLEET given, in turn: a
fresh pebble, a fresh state directory (`certfleet init`, `certfleet import`
of the first N hosts) and one `certfleet run --order-concurrency K`, which
serves the validation zone itself (its --dns-listen), checks every host's
delegation and liveness, orders, and stores the certificates. Several
CERTFLEET binaries are run interleaved, so that an A/B comparison sees the
same machine load (the VM is shared).

Per run: certificates/s over the process's wall time, user and system CPU
and peak RSS from wait4() on the child, the requests pebble received per
certificate (counted in pebble's log), log bytes per certificate, and the
error classes of failed hosts. A run with 0 hosts (process start, store,
account registration, TLS to the CA, no order) is measured the same way
per binary; "net" CPU subtracts its median.

A benchmark: it asserts nothing about speed; it exits 1 when a run did not
issue every host.

    bench_pebble.py CERTFLEET [CERTFLEET...] [--hosts 500,1000]
                    [--order-concurrency 10,20,50] [--rounds 1] [--perf-record DIR]
                    [--strace DIR] [--log-level info] [--keep]

Pebble 2.4 locks up under load (see main(); about 100 orders/s or a few
hundred concurrent requests): a run whose log stands still for --stall
seconds is stopped, pebble restarted and the run made again (--retries).
"""
import argparse
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "integ"))
import acmeenv  # noqa: E402
import dnsenv  # noqa: E402


def ints(s):
    return [int(x) for x in s.split(",") if x.strip()]


def delegate_all(world, hosts):
    """Delegated and live records for every host, one zone reload per server.

    set_host(servers=[]) only records the host (every server marked lagging);
    sync() then writes each zone file once and reloads it once, instead of
    one knot reload per host."""
    for h in hosts:
        world.set_host(h, servers=[])
    world.sync()


def run_once(a, world, wd, cf, hosts, k, tag):
    """One fresh state dir with hosts imported, one `certfleet run`; returns a dict."""
    state = os.path.join(wd, "state-" + tag)
    time.sleep(a.gap)
    if a.fresh_pebble:
        # Pebble keeps every order in memory and walks all authorizations on
        # each new order (under its store lock): a fresh pebble per run keeps
        # runs comparable and makes its lock-up (see main) rarer.
        world.pebble.restart()
    shutil.rmtree(state, ignore_errors=True)
    world.certfleet_init(cf, state)
    if hosts:
        subprocess.run([cf, "--state", state, "import", "-"],
                       input="".join(h + "\n" for h in hosts), text=True, check=True,
                       capture_output=True)
    argv = [cf, "--state", state, "run", "--order-concurrency", str(k)]
    if a.strace and hosts:
        os.makedirs(a.strace, exist_ok=True)
        argv = ["strace", "-f", "-c", "-o", os.path.join(a.strace, "strace-%s.txt" % tag),
                "--"] + argv
    if a.perf_record and hosts:
        os.makedirs(a.perf_record, exist_ok=True)
        argv = ["perf", "record", "-g", "--call-graph", "dwarf,16384", "-F", "1999", "-o",
                os.path.join(a.perf_record, "perf-%s.data" % tag), "--"] + argv
    env = dict(os.environ, CERTFLEET_LOG=a.log_level)
    out = open(os.path.join(state, "run.out"), "w+")
    err = open(os.path.join(state, "run.log"), "w+")
    log_at = os.path.getsize(world.pebble.log)
    t0 = time.monotonic()
    p = subprocess.Popen(argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env)
    # Pebble 2.4 sometimes stops answering orders for good (a lock that is
    # never released): a run whose log stands still for --stall seconds is
    # stopped, pebble restarted, and the run counted as stalled.
    last_size, last_change, stalled = -1, time.monotonic(), False
    while True:
        pid, status, ru = os.wait4(p.pid, os.WNOHANG)
        if pid:
            break
        size = os.fstat(err.fileno()).st_size
        if size != last_size:
            last_size, last_change = size, time.monotonic()
        elif time.monotonic() - last_change > a.stall and not stalled:
            stalled = True
            sys.stderr.write("run %s: no progress for %d s: pebble stalled\n" % (tag, a.stall))
            if a.stall_dump:
                # A Go process dumps every goroutine's stack on SIGQUIT (and exits).
                os.kill(world.pebble.proc.pid, signal.SIGQUIT)
                time.sleep(1)
                shutil.copy(world.pebble.log, a.stall_dump + "-" + tag + ".log")
            p.send_signal(signal.SIGTERM)
        time.sleep(0.05)
    wall = time.monotonic() - t0
    # What pebble was asked, from its log: one "METHOD /path -> calling
    # handler()" line per request (the badNonce rejections included).
    reqs = {}
    with open(world.pebble.log, errors="replace") as f:
        f.seek(log_at)
        pebble_log = f.read()
    for m in re.finditer(r"(GET|HEAD|POST) (/[a-zA-Z-]*)/? -> calling handler", pebble_log):
        key = m.group(1) + " " + m.group(2)
        reqs[key] = reqs.get(key, 0) + 1
    if stalled:
        world.pebble.restart()
    p.returncode = os.waitstatus_to_exitcode(status)
    out.seek(0)
    text = out.read()
    err.seek(0)
    log = err.read()

    def num(label):
        m = re.search(r"^\s*%s\s+(\d+)" % re.escape(label), text, re.M)
        return int(m.group(1)) if m else 0

    m = re.search(r"hosts due, \d+ taken, ([0-9.]+) s", text)
    res = {
        "cf": cf, "hosts": len(hosts), "k": k, "rc": p.returncode, "wall": wall,
        "elapsed": float(m.group(1)) if m else wall,
        "issued": num("issued") + num("renewed"), "failed": num("failed"),
        "errors": " ".join("%s=%s" % e for e in re.findall(r"^\s+(CF_\w+)\s+(\d+)", text, re.M)),
        "user": ru.ru_utime, "sys": ru.ru_stime, "rss_kib": ru.ru_maxrss,
        "log_lines": log.count("\n"), "log_bytes": len(log), "out": text, "stalled": stalled,
        "reqs": reqs,
    }
    m = re.search(r"throughput\s+([0-9.]+) certificates/s, ([0-9.]+) ms CPU", text)
    if m:
        res["cf_rate"], res["cf_cpu_ms"] = float(m.group(1)), float(m.group(2))
    if hosts and res["issued"] != len(hosts):
        sys.stderr.write("run %s: %d of %d issued (exit %d)\n%s\n%s\n" % (
            tag, res["issued"], len(hosts), p.returncode, text, log[-3000:]))
        if not stalled:
            # Kept for a look: the run's summary and log, and pebble's log of the run.
            keep = os.path.join(os.path.dirname(wd.rstrip("/")), "cf-bench-pebble-failed-" + tag)
            shutil.rmtree(keep, ignore_errors=True)
            shutil.copytree(state, keep, ignore=shutil.ignore_patterns("*.mdb", "*.mdb-lock"))
            with open(os.path.join(keep, "pebble.log"), "w") as g:
                g.write(pebble_log)
            sys.stderr.write("kept in %s\n" % keep)
    if not a.keep:
        shutil.rmtree(state, ignore_errors=True)
    return res


def print_tables(a, results, base):
    labels = {cf: chr(ord("A") + i) for i, cf in enumerate(a.certfleet)}
    if len(a.certfleet) > 1:
        for cf in a.certfleet:
            print("%s = %s" % (labels[cf], cf))
    for cf in a.certfleet:
        b = base[cf]
        print("%sbaseline (0 hosts, median of %d): %.1f ms CPU, %.2f s wall, %.1f MiB RSS" % (
            labels[cf] + " " if len(a.certfleet) > 1 else "", b["n"], b["cpu"] * 1000, b["wall"],
            b["rss"] / 1024.0))
    hdr = ("bin", "hosts", "K", "issued", "wall s", "certs/s", "user ms/c", "sys ms/c",
           "cpu ms/c", "net ms/c", "RSS MiB", "req/c", "log B/c", "failed")
    print("| " + " | ".join(hdr) + " |")
    print("|" + "|".join("---:" for _ in hdr) + "|")
    for r in results:
        c = r["issued"] or 1
        cpu = r["user"] + r["sys"]
        print("| %s | %d | %d | %d | %.2f | %.1f | %.3f | %.3f | %.3f | %.3f | %.1f | %.2f | %d "
              "| %s |" % (
                  labels[r["cf"]], r["hosts"], r["k"], r["issued"], r["wall"],
                  r["issued"] / r["wall"], r["user"] * 1000 / c, r["sys"] * 1000 / c,
                  cpu * 1000 / c, (cpu - base[r["cf"]]["cpu"]) * 1000 / c,
                  r["rss_kib"] / 1024.0, sum(r["reqs"].values()) / c, r["log_bytes"] // c,
                  r["errors"] or r["failed"]))
    if a.rounds > 1:
        print("medians over %d rounds:" % a.rounds)
        print("| bin | hosts | K | certs/s | cpu ms/c | net ms/c | RSS MiB | req/c |")
        print("|---:|---:|---:|---:|---:|---:|---:|---:|")
        groups = {}
        for r in results:
            groups.setdefault((r["hosts"], r["k"], r["cf"]), []).append(r)
        for (n, k, cf), rs in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1],
                                                                      labels[kv[0][2]])):
            med = statistics.median
            cpu = med((r["user"] + r["sys"]) * 1000 / (r["issued"] or 1) for r in rs)
            print("| %s | %d | %d | %.1f | %.3f | %.3f | %.1f | %.2f |" % (
                labels[cf], n, k, med(r["issued"] / r["wall"] for r in rs), cpu,
                cpu - base[cf]["cpu"] * 1000 / (rs[0]["hosts"] or 1),
                med(r["rss_kib"] / 1024.0 for r in rs),
                med(sum(r["reqs"].values()) / (r["issued"] or 1) for r in rs)))
    eps = sorted({e for r in results for e in r["reqs"]})
    if eps:
        print("requests to pebble per certificate (from pebble's log; badNonce rejections "
              "included):")
        print("| bin | hosts | K | total | " + " | ".join(eps) + " |")
        print("|" + "|".join("---:" for _ in range(len(eps) + 4)) + "|")
        for r in results:
            c = r["issued"] or 1
            print("| %s | %d | %d | %.2f | %s |" % (
                labels[r["cf"]], r["hosts"], r["k"], sum(r["reqs"].values()) / c,
                " | ".join("%.2f" % (r["reqs"].get(e, 0) / c) for e in eps)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("certfleet", nargs="+", help="certfleet binaries (several: interleaved)")
    ap.add_argument("--hosts", type=ints, default=[500, 1000],
                    help="comma-separated host counts (default 500,1000)")
    ap.add_argument("--order-concurrency", type=ints, default=[10, 20, 50],
                    help="comma-separated --order-concurrency values (default 10,20,50)")
    ap.add_argument("--rounds", type=int, default=1, help="runs per (hosts, K) pair")
    ap.add_argument("--baseline-rounds", type=int, default=3, help="runs with 0 hosts")
    ap.add_argument("--log-level", default="info", help="CERTFLEET_LOG of the runs")
    ap.add_argument("--perf-record", metavar="DIR",
                    help="run each certfleet under perf record, data files into DIR")
    ap.add_argument("--strace", metavar="DIR",
                    help="run each certfleet under strace -c (system calls counted), into DIR")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--stall", type=int, default=20,
                    help="seconds without a log line before a run counts as stalled")
    ap.add_argument("--stall-dump", metavar="PREFIX",
                    help="on a stall, SIGQUIT pebble and copy its log (goroutine dump) here")
    ap.add_argument("--retries", type=int, default=2, help="runs again after a pebble stall")
    ap.add_argument("--gap", type=float, default=1.0, help="seconds to wait before each run")
    ap.add_argument("--host-sets", type=int, default=3,
                    help="disjoint host sets the runs take turns with (see main)")
    ap.add_argument("--no-fresh-pebble", dest="fresh_pebble", action="store_false",
                    help="keep one pebble for all runs instead of restarting it before each")
    a = ap.parse_args()
    a.certfleet = [os.path.abspath(c) for c in a.certfleet]
    wd = dnsenv.Workdir("/tmp/cf-bench-pebble-")
    world = None
    results = []
    stalls = []
    ok = True
    try:
        # PEBBLE_AUTHZREUSE=0: of no use here (a fresh account per run has no
        # authorization to reuse), and one thing fewer for pebble's locks.
        # Pebble 2.4 still walks every authorization on each new order
        # (FindValidAuthorization, holding its store's read lock while it
        # takes each authorization's lock) while other new orders wait for
        # the store's write lock; under load it stops answering for good (a
        # goroutine dump, --stall-dump, shows those waits).
        world = acmeenv.AcmeWorld(wd.path, pebble_env={"PEBBLE_AUTHZREUSE": "0"})
        # Runs take their hosts from --host-sets disjoint sets in turn: a host
        # validated again within seconds can meet its previous run's TXT value
        # in unbound's cache (pebble then finds no correct value: seen with
        # back-to-back runs on one set), so one set's runs are sets-1 runs apart.
        sets = [["h%d.example.test" % i if a.host_sets == 1 else "h%d-%d.example.test" % (i, s)
                 for i in range(max(a.hosts))] for s in range(a.host_sets)]
        t0 = time.monotonic()
        delegate_all(world, [h for hs in sets for h in hs])
        # unbound caches for up to 1 s (TTL 1): let the old negative answers expire.
        time.sleep(1.5)
        sys.stderr.write("delegated %d hosts in %.2f s\n" % (sum(len(hs) for hs in sets),
                                                            time.monotonic() - t0))
        nrun = 0
        base = {}
        for cf in a.certfleet:
            rs = [run_once(a, world, wd.path, cf, [], 1, "base%d" % i)
                  for i in range(a.baseline_rounds)]
            base[cf] = {
                "n": len(rs),
                "cpu": statistics.median(r["user"] + r["sys"] for r in rs) if rs else 0.0,
                "wall": statistics.median(r["wall"] for r in rs) if rs else 0.0,
                "rss": statistics.median(r["rss_kib"] for r in rs) if rs else 0,
            }
        for n in a.hosts:
            for k in a.order_concurrency:
                for i in range(a.rounds):
                    for j, cf in enumerate(a.certfleet):
                        for t in range(a.retries + 1):
                            hosts = sets[nrun % len(sets)][:n]
                            nrun += 1
                            r = run_once(a, world, wd.path, cf, hosts, k,
                                         "%d-%d-%d-%d-%d" % (n, k, i, j, t))
                            if not r["stalled"]:
                                break
                            stalls.append(r)
                        results.append(r)
                        ok = ok and r["issued"] == n
                        sys.stderr.write("  %s: %d hosts, K %d: %d issued in %.2f s\n" % (
                            cf, n, k, r["issued"], r["wall"]))
        print("pebble benchmark: `certfleet run` (validation zone served by the run itself)")
        print_tables(a, results, base)
        if stalls:
            print("pebble stalled (runs stopped, pebble restarted, run again): %s" % ", ".join(
                "%d hosts K %d" % (r["hosts"], r["k"]) for r in stalls))
        print("certs/s: issued / wall time of the process (start to exit); cpu: user+sys of")
        print("the process (wait4), everything included; net: minus the 0-host baseline.")
        return 0 if ok else 1
    finally:
        if world:
            world.stop()
        dnsenv._stop_all()
        if a.keep:
            print("kept", wd.path)
        else:
            wd.cleanup()


if __name__ == "__main__":
    sys.exit(main())
