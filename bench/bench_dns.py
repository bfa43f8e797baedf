#!/usr/bin/env python3
"""The embedded DNS server's query rate beside knot's, with dnsperf.

knotd and `certfleet serve-dns` serve the same validation zone with the
same N TXT names (every tenth with two values: a wildcard and its apex);
dnsperf sends both the same query file (TXT queries for those names, plus a
share of names that do not exist: NXDOMAIN), one server after the other, in
the same run, on the same machine. Both rates are printed with their ratio.
A benchmark: it checks the answers' rcodes match, nothing about speed.

    bench_dns.py PATH_TO_CERTFLEET PATH_TO_TXT_PUBLISH [--names N] [--seconds S]
                 [--clients C] [--threads T] [--nx-percent P] [--knot-workers W]
"""
import argparse
import hashlib
import base64
import os
import random
import re
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "integ"))
import dnsenv  # noqa: E402

ZONE = "acme.bench.test"
KNOT_ADDR, CF_ADDR = "127.0.10.51", "127.0.10.52"


def digest(i):
    """An ACME DNS-01 value: base64url of a SHA-256, 43 characters."""
    d = hashlib.sha256(b"key-authorization-%d" % i).digest()
    return base64.urlsafe_b64encode(d).decode().rstrip("=")


def names(n):
    """N readable CNAME targets, as certfleet derives them: host.customer.tld.<zone>."""
    return ["www%d.customer%d.com.%s" % (i, i % 500, ZONE) for i in range(n)]


def dnsperf(addr, qfile, a):
    argv = ["dnsperf", "-s", addr, "-p", "53", "-d", qfile, "-c", str(a.clients),
            "-T", str(a.threads), "-l", str(a.seconds), "-q", str(a.outstanding), "-t", "2"]
    out = subprocess.run(argv, capture_output=True, text=True).stdout
    qps = re.search(r"Queries per second:\s+([\d.]+)", out)
    lost = re.search(r"Queries lost:\s+(\d+)", out)
    codes = re.search(r"Response codes:\s+(.*)", out)
    if not qps:
        raise RuntimeError("dnsperf against %s failed:\n%s" % (addr, out))
    return float(qps.group(1)), int(lost.group(1)), codes.group(1) if codes else "", argv


def rcode_shares(codes):
    return {k: round(float(v)) for k, v in re.findall(r"(\w+) \d+ \(([\d.]+)%\)", codes)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("certfleet")
    ap.add_argument("txt_publish")
    ap.add_argument("--names", type=int, default=10000)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--clients", type=int, default=10)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--outstanding", type=int, default=200)
    ap.add_argument("--nx-percent", type=int, default=10)
    ap.add_argument("--knot-workers", type=int, default=0,
                    help="knot's UDP workers; 0 = knot's default (one per CPU)")
    ap.add_argument("--rounds", type=int, default=1, help="alternate the servers this many times")
    a = ap.parse_args()

    wd = dnsenv.Workdir("/tmp/cf-bench-dns-")
    state = os.path.join(wd.path, "state")
    env = dict(os.environ, CERTFLEET_STATE=state, CERTFLEET_LOG="warn")
    try:
        ns = names(a.names)
        # The same zone content for both: SOA, NS with glue, the TXT sets.
        recs = ["@ NS ns1", "ns1 A " + KNOT_ADDR]
        lines = []
        for i, name in enumerate(ns):
            rel = name[:-len(ZONE) - 1]
            vals = [digest(i)] + ([digest(i + a.names)] if i % 10 == 0 else [])
            for v in vals:
                recs.append('%s 60 TXT "%s"' % (rel, v))
                lines.append("+ %s %s" % (name, v))
        k = dnsenv.Knot(wd.path, "knot", KNOT_ADDR, zones={ZONE: recs})
        conf = open(k.conf).read()
        workers = "udp-workers: %d" % a.knot_workers if a.knot_workers else ""
        conf = conf.replace("udp-workers: 1", workers).replace("background-workers: 1", "")
        k.stop()
        open(k.conf, "w").write(conf)
        k.proc = dnsenv._start(["knotd", "-c", k.conf], open(k.conf + ".log", "w"))
        dnsenv.wait_answering(KNOT_ADDR, 53, ZONE)

        subprocess.run([a.certfleet, "init", "--validation-zone", ZONE, "--directory",
                        "https://ca.bench.test/dir", "--dns-listen", CF_ADDR + ":53"],
                       env=env, check=True, capture_output=True)
        subprocess.run([a.txt_publish, state], input="\n".join(lines) + "\n", text=True,
                       check=True)
        dnsenv._start([a.certfleet, "--state", state, "serve-dns"],
                      open(os.path.join(wd.path, "cf.log"), "w"))
        dnsenv.wait_answering(CF_ADDR, 53, ZONE)

        # One query file for both: TXT for published names, some that do not exist.
        rnd = random.Random(1)
        qs = []
        for i in range(a.names):
            if rnd.randrange(100) < a.nx_percent:
                qs.append("nx%d.customer%d.com.%s TXT" % (i, i % 500, ZONE))
            else:
                qs.append("%s TXT" % ns[rnd.randrange(a.names)])
        qfile = os.path.join(wd.path, "queries.txt")
        open(qfile, "w").write("\n".join(qs) + "\n")

        best = {"knot": (-1.0, ""), "certfleet": (-1.0, "")}
        for r in range(a.rounds):
            for label, addr in (("knot", KNOT_ADDR), ("certfleet", CF_ADDR)):
                qps, lost, codes, argv = dnsperf(addr, qfile, a)
                print("round %d %-9s %10.0f qps  lost %d  %s" % (r + 1, label, qps, lost, codes),
                      flush=True)
                if qps > best[label][0]:
                    best[label] = (qps, codes)
        print("dnsperf: " + " ".join(argv[:2] + ["ADDR"] + argv[3:]))
        kq, cq = best["knot"][0], best["certfleet"][0]
        print("knot      %.0f qps (udp-workers %s)" % (kq, a.knot_workers or "default"))
        print("certfleet %.0f qps (serve-dns, one event loop)" % cq)
        print("ratio     %.2f (certfleet / knot)" % (cq / kq if kq else 0))
        if rcode_shares(best["knot"][1]) != rcode_shares(best["certfleet"][1]):
            print("WARNING: the rcode mixes differ: knot %s, certfleet %s" %
                  (best["knot"][1], best["certfleet"][1]))
            return 1
        return 0
    finally:
        dnsenv._stop_all()
        wd.cleanup()


if __name__ == "__main__":
    sys.exit(main())
