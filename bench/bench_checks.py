#!/usr/bin/env python3
"""Delegation checks per second against a local knot, beside dnsperf's rate.

One knotd serves a customer zone with N delegated hosts
(_acme-challenge.hN CNAME hN.<zone>.<validation zone>) on 127.0.10.41:53;
unbound resolves the zone cut once. certfleet checks all N delegations
(`certfleet check --only delegation --quiet`), then dnsperf sends the same
N CNAME queries (recursion off) to the same knot for the same kind of load.
Both rates are printed with their ratio. A benchmark: it asserts nothing
about speed.

    bench_checks.py PATH_TO_CERTFLEET [--hosts N] [--ns 1|2] [--concurrency C]
"""
import argparse
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "integ"))
import dnsenv  # noqa: E402

ZONE = "bench.test"
VZONE = "acme.cdn.test"
NS_ADDRS = ["127.0.10.41", "127.0.10.42"]
RES = "127.0.10.40"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("certfleet")
    ap.add_argument("--hosts", type=int, default=100000)
    ap.add_argument("--ns", type=int, default=1, choices=(1, 2))
    ap.add_argument("--concurrency", type=int, default=2000)
    ap.add_argument("--dnsperf-seconds", type=int, default=10)
    a = ap.parse_args()
    wd = dnsenv.Workdir("/tmp/cf-bench-checks-")
    env = dict(os.environ, CERTFLEET_STATE=os.path.join(wd.path, "state"), CERTFLEET_LOG="warn")
    try:
        addrs = NS_ADDRS[:a.ns]
        recs = []
        for i, addr in enumerate(addrs):
            recs += ["@ NS ns%d" % (i + 1), "ns%d A %s" % (i + 1, addr)]
        recs += ["_acme-challenge.h%d CNAME h%d.%s.%s." % (i, i, ZONE, VZONE)
                 for i in range(a.hosts)]
        # One knotd listening on every NS address: "a local knot".
        k = dnsenv.Knot(wd.path, "knot", addrs[0], zones={ZONE: recs})
        if len(addrs) > 1:
            k.stop()
            conf = open(k.conf).read().replace(
                "listen: %s@53" % addrs[0], "listen: [ %s ]" % ", ".join(x + "@53" for x in addrs))
            conf = conf.replace("udp-workers: 1", "udp-workers: 2")
            open(k.conf, "w").write(conf)
            k.proc = dnsenv._start(["knotd", "-c", k.conf], open(k.conf + ".log", "w"))
            dnsenv.wait_answering(addrs[1], 53, ZONE)
        else:
            conf = open(k.conf).read().replace("udp-workers: 1", "udp-workers: 2")
            k.stop()
            open(k.conf, "w").write(conf)
            k.proc = dnsenv._start(["knotd", "-c", k.conf], open(k.conf + ".log", "w"))
            dnsenv.wait_answering(addrs[0], 53, ZONE)
        dnsenv.Unbound(wd.path, RES, stubs={ZONE: [x + "@53" for x in addrs]})

        cf = a.certfleet
        subprocess.run([cf, "init", "--validation-zone", VZONE, "--directory",
                        "https://127.0.0.1:14000/dir", "--resolver", RES], env=env, check=True,
                       capture_output=True)
        names = "".join("h%d.%s\n" % (i, ZONE) for i in range(a.hosts))
        subprocess.run([cf, "import", "-"], input=names, text=True, env=env, check=True,
                       capture_output=True)

        t0 = time.time()
        ru0 = os.times()
        p = subprocess.run([cf, "check", "--only", "delegation", "--quiet", "--concurrency",
                            str(a.concurrency)], env=env, capture_output=True, text=True)
        wall = time.time() - t0
        ru1 = os.times()
        cpu = (ru1.children_user - ru0.children_user) + (ru1.children_system - ru0.children_system)
        summary = p.stdout.strip()
        m = re.search(r"(\d+) confirmed", summary)
        confirmed = int(m.group(1)) if m else 0
        checks_per_s = a.hosts / wall

        qfile = os.path.join(wd.path, "queries.txt")
        with open(qfile, "w") as f:
            for i in range(a.hosts):
                f.write("_acme-challenge.h%d.%s CNAME\n" % (i, ZONE))
        dp = subprocess.run(["dnsperf", "-s", addrs[0], "-p", "53", "-d", qfile, "-l",
                             str(a.dnsperf_seconds), "-c", "8", "-T", "1", "-q", "2000"],
                            capture_output=True, text=True)
        m = re.search(r"Queries per second:\s+([\d.]+)", dp.stdout)
        qps = float(m.group(1)) if m else 0.0

        print("delegation check benchmark: %d hosts, %d authoritative address(es), "
              "concurrency %d" % (a.hosts, len(addrs), a.concurrency))
        print("  certfleet check     %10.0f checks/s   (%.2f s wall, %d confirmed, "
              "%.2f s CPU incl. import-free check only, %.1f us CPU/check)"
              % (checks_per_s, wall, confirmed, cpu, cpu * 1e6 / a.hosts))
        print("  certfleet queries   %10.0f queries/s to knot (one per address per check)"
              % (checks_per_s * len(addrs)))
        print("  dnsperf             %10.0f queries/s  (same knot, same %d CNAME queries)"
              % (qps, a.hosts))
        if qps:
            print("  ratio checks/dnsperf %9.2f   (target >= 0.5)" % (checks_per_s / qps))
        if confirmed != a.hosts:
            print("  WARNING: only %d of %d delegations confirmed: %s %s"
                  % (confirmed, a.hosts, summary, p.stderr[-500:]))
            return 1
    finally:
        dnsenv._stop_all()
        wd.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
