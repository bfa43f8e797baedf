"""`certfleet run` against a mock CA that enforces rate limits (the bench's
`ratelimited` scenario, short): the ACME client's per-endpoint pacer keeps
every request within the CA's limits, judged by the mock CA's own buckets
(bench/mockca/ratelimit.c, written apart from certfleet's).

- With request rates tight enough that an unpaced client exceeds them at
  once (other endpoints 100/s burst 20, newOrder 20/s burst 5, newNonce
  5/s burst 2) and new orders at 100 per 10 s: the mock counts no
  violation, certfleet issues at least 90% of what the new-orders limit
  allowed over the scenario's time, and its runs report requests that
  waited in the pacer (so the limits were reached, not just avoided).
- The judge is not blind: when certfleet is told a looser profile than the
  mock enforces (no endpoint limits), the mock counts endpoint violations.

The harness (certfleet-bench) starts the mock CA and mock DNS on
127.0.$CF_TEST_NET.x (ports 15353 and 14100) and stops them by PID.

    test_bench_ratelimited.py PATH_TO_CERTFLEET PATH_TO_CERTFLEET_BENCH
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dnsenv  # noqa: E402

CF, BENCH = sys.argv[1], sys.argv[2]
R = dnsenv.Results()
NET = "127.0.%d" % int(os.environ.get("CF_TEST_NET", "10"))
LIMITS = ("letsencrypt,new_orders=100/10s,ep_other=100/s:20,ep_new_order=20/s:5,"
          "ep_new_nonce=5/s:2")


def bench(workdir, name, hosts, duration, spec, *extra):
    """Runs the scenario; returns its JSON report (None when it did not finish)."""
    out = os.path.join(workdir, name + ".json")
    wd = os.path.join(workdir, name)
    cmd = [BENCH, "ratelimited", "--certfleet", CF, "--hosts", str(hosts),
           "--duration", str(duration), "--rate-limits", spec, "--net", NET,
           "--dns-port", "15353", "--ca-port", "14100", "--workdir", wd,
           "--json", out] + list(extra)
    print("+", " ".join(cmd), flush=True)
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        text, _ = p.communicate(timeout=duration + 120)
    except subprocess.TimeoutExpired:
        p.send_signal(signal.SIGINT)  # the harness stops its children by PID
        text, _ = p.communicate(timeout=30)
    print(text[-4000:], flush=True)
    R.eq(p.returncode, 0, "%s: certfleet-bench exit status" % name)
    try:
        with open(out) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        R.check(False, "%s: no report (%s)" % (name, e))
        return None


def main():
    workdir = tempfile.mkdtemp(prefix="cf-bench-rl-")
    try:
        rep = bench(workdir, "paced", 400, 30, LIMITS)
        if rep:
            det = rep.get("scenario_details", {})
            R.eq(rep["rate_limit_violations"], 0, "paced: the mock CA counts no violation")
            R.eq(rep["mockca"]["rate_limit_violations"], 0, "paced: the mock's own stats agree")
            share = det.get("issuance_vs_allowed", 0)
            R.check(share >= 0.9, "paced: issued %s of %.1f allowed (%.3f), wanted >= 0.9"
                    % (det.get("issued"), det.get("allowed_orders", 0), share))
            R.check(det.get("requests_paced", 0) > 0,
                    "paced: requests waited in the pacer (%s)" % det.get("requests_paced"))
            R.eq(det.get("client_saw_429"), 0, "paced: certfleet saw no 429")
            R.eq(rep.get("errors"), {}, "paced: no host failed")

        # certfleet believes the endpoints are unlimited; the mock does not.
        loose = "none,new_orders=100/10s"
        rep = bench(workdir, "unpaced", 100, 8, loose, "--ca-arg=--ratelimit=" + LIMITS)
        if rep:
            rl = rep["mockca"].get("rate_limited", {})
            ep = sum(v for k, v in rl.items() if k.startswith("ep_"))
            R.check(rep["rate_limit_violations"] > 0 and ep > 0,
                    "unpaced: the mock counts endpoint rate violations (%s)" % rl)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return R.finish()


if __name__ == "__main__":
    sys.exit(main())
