"""`certfleet run` against pebble + knot + unbound with a mixed fleet, across
simulated months (the test clock: `run --now`, CERTFLEET_TEST_CLOCK=1).

The fleet (customer zones on two knotd, unbound as the resolver, pebble as
the CA, the validation zone served by `run` itself on its --dns-listen):

    live.example.test     delegated and live          issued, renewed later
    nolive.example.test   delegated, never live       issued; at renewal time stopped
                                                      never_live (a leftover delegation);
                                                      goes live later and resumes
    nocname.shop.test     no CNAME                    awaiting_delegation throughout
    wrong.shop.test       CNAME to another name       awaiting_delegation (wrong target)
    late.shop.test        CNAME appears after run 1   issued in run 2
    moved.example.test    live, then moved away       offboarded after 72 h (3 checks);
                          (its A record elsewhere)    leftover (CNAME still ours)
    gone.example.test     live, CNAME then removed    delegation_removed, with an alert
                                                      (still live); not a leftover

Every run's exit status, each host's state after each run, the summary, the
metrics file, `report leftover` (exactly the right hosts, as CSV and JSON),
`--dry-run` (changes nothing), and chains that verify with openssl against
pebble's roots are checked. No private key appears in any log.

    test_run.py PATH_TO_CERTFLEET
"""
import calendar
import csv
import io
import json
import os
import subprocess
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import acmeenv  # noqa: E402
import dnsenv  # noqa: E402

CF = sys.argv[1]
R = dnsenv.Results()
DAY = 86400
HOSTS = ["live.example.test", "nolive.example.test", "nocname.shop.test", "wrong.shop.test",
         "late.shop.test", "moved.example.test", "gone.example.test"]
LOGS = []


def iso(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def cf(state, *args, env=None, timeout=240, check_rc=None):
    e = dict(os.environ, CERTFLEET_TEST_CLOCK="1")
    e.update(env or {})
    p = subprocess.run([CF, "--state", state] + list(args), capture_output=True, text=True,
                       timeout=timeout, env=e)
    LOGS.append(p.stderr)
    if check_rc is not None:
        R.eq(p.returncode, check_rc, "certfleet %s exit status (stderr: %s)" % (
            " ".join(args), p.stderr[-1500:]))
    return p


def run_at(state, t, what, rc=0, extra=()):
    p = cf(state, "run", "--now", iso(t), "--deadline", "120s", *extra)
    print("--- run %s (%s): exit %d\n%s" % (what, iso(t), p.returncode, p.stdout), flush=True)
    R.eq(p.returncode, rc, "run %s: exit status (stderr tail: %s)" % (what, p.stderr[-2000:]))
    return p


def status(state, host):
    p = cf(state, "status", "--json", host)
    R.eq(p.returncode, 0, "status %s" % host)
    try:
        return json.loads(p.stdout)
    except ValueError:
        return {}


def states(state):
    out = {}
    for h in HOSTS:
        s = status(state, h)
        out[h] = s.get("state") + ("/" + s["reason"] if s.get("reason") else "")
    return out


def expect(state, what, want):
    got = states(state)
    for h, w in want.items():
        R.eq(got.get(h), w, "%s: %s" % (what, h))
    return got


def leftover(state, fmt="csv"):
    p = cf(state, "report", "leftover", "--format", fmt, check_rc=0)
    if fmt == "json":
        return sorted(d["host"] for d in json.loads(p.stdout))
    rows = list(csv.DictReader(io.StringIO(p.stdout)))
    return sorted(r["host"] for r in rows)


def verify_chain(world, state, host, root):
    path = os.path.join(state, "export-" + host)
    p = cf(state, "export", host, "--out", path)
    R.eq(p.returncode, 0, "export %s: %s" % (host, p.stderr[-500:]))
    chain = os.path.join(path, host + ".pem")
    key = os.path.join(path, host + ".key")
    if not os.path.exists(chain):
        R.check(False, "%s: exported chain %s" % (host, chain))
        return
    R.eq(oct(os.stat(key).st_mode & 0o777), "0o600", "%s: exported key is 0600" % host)
    v = subprocess.run(["openssl", "verify", "-CAfile", root, "-untrusted", chain, chain],
                       capture_output=True, text=True)
    R.eq(v.returncode, 0, "%s: chain verifies (%s%s)" % (host, v.stdout.strip(),
                                                         v.stderr.strip()))
    a = subprocess.run(["openssl", "x509", "-in", chain, "-noout", "-pubkey"],
                       capture_output=True, text=True).stdout
    b = subprocess.run(["openssl", "pkey", "-in", key, "-pubout"], capture_output=True,
                       text=True).stdout
    R.check(a and a == b, "%s: the exported key is the certificate's" % host)


def scenario(world, state):
    for h in ("live.example.test", "moved.example.test", "gone.example.test"):
        world.set_host(h)
    world.set_host("nolive.example.test", live=False)
    world.set_host("nocname.shop.test", delegate=False)
    world.set_host("wrong.shop.test", delegate="x.elsewhere.test")
    world.set_host("late.shop.test", delegate=False)
    p = subprocess.run([CF, "--state", state, "import", "-"], capture_output=True, text=True,
                       input="host,customer\n" + "".join("%s,cust-%d\n" % (h, i)
                                                         for i, h in enumerate(HOSTS)))
    R.eq(p.returncode, 0, "import: " + p.stderr)

    t0 = int(time.time())
    # A dry run says what would happen and changes nothing.
    before = states(state)
    p = run_at(state, t0, "dry", extra=["--dry-run"])
    R.check("would issue" in p.stdout, "dry run prints its plan")
    for h in ("live.example.test", "nolive.example.test"):
        R.check(any(line.startswith(h + "\t") and "would issue" in line
                    for line in p.stdout.splitlines()), "dry run: %s would be issued" % h)
    R.eq(states(state), before, "dry run changed no host")
    R.check(not os.path.exists(os.path.join(state, "metrics.prom")), "dry run wrote no metrics")

    # Run 1: the delegated hosts get certificates; the others wait.
    stats = os.path.join(state, "stats.json")
    p = run_at(state, t0, "1", extra=["--stats-json", stats])
    st = json.load(open(stats))
    R.eq((st.get("issued"), st.get("taken")), (4, 7), "stats: issued and taken")
    R.eq(st.get("stages", {}).get("order_total", {}).get("n"), 4, "stats: 4 orders timed")
    R.eq(st.get("stages", {}).get("dns_check", {}).get("n"), 7, "stats: 7 checks timed")
    R.check(st.get("stages", {}).get("order_propagate", {}).get("p50_ms", 0) > 0,
            "stats: the propagation stage has a latency")
    R.check("issued" in p.stdout, "summary table printed")
    expect(state, "after run 1", {
        "live.example.test": "active", "nolive.example.test": "active",
        "moved.example.test": "active", "gone.example.test": "active",
        "nocname.shop.test": "awaiting_delegation", "wrong.shop.test": "awaiting_delegation",
        "late.shop.test": "awaiting_delegation"})
    s = status(state, "wrong.shop.test")
    R.eq(s.get("delegation", {}).get("result"), "wrong_target", "wrong.shop.test: wrong target")
    R.eq(s.get("delegation", {}).get("seen_target"), "x.elsewhere.test",
         "wrong.shop.test: the target seen is kept")
    metrics = open(os.path.join(state, "metrics.prom")).read()
    R.check('certfleet_hosts{state="active"} 4' in metrics, "metrics count active hosts")
    R.check('certfleet_run_hosts{outcome="issued"} 4' in metrics, "metrics count issued")
    root = world.pebble.write_roots()
    for h in ("live.example.test", "nolive.example.test"):
        verify_chain(world, state, h, root)
    first = {h: status(state, h) for h in HOSTS}
    # Every TXT record was withdrawn.
    for h in ("live.example.test", "moved.example.test"):
        out = dnsenv.dig(acmeenv.VALIDATION_ADDR, acmeenv.VALIDATION_PORT, world.target(h), "TXT")
        R.eq(out.strip(), "", "%s: TXT withdrawn after the run" % h)

    # Between runs: late's CNAME appears, moved moves away, gone's CNAME goes.
    world.set_host("late.shop.test")
    world.set_host("moved.example.test", live="198.51.100.7")
    world.set_host("gone.example.test", delegate=False)
    time.sleep(2)  # unbound keeps what it knew for a second
    for d in (1, 2, 3):
        run_at(state, t0 + d * DAY + 60, "day %d" % d)
    expect(state, "after day 3", {
        "late.shop.test": "active", "moved.example.test": "active",
        "gone.example.test": "active"})
    p = run_at(state, t0 + 4 * DAY + 120, "day 4")
    R.check("ALERT" in p.stdout, "the summary raises the alert for gone.example.test")
    expect(state, "after day 4", {
        "moved.example.test": "stopped/offboarded",
        "gone.example.test": "stopped/delegation_removed",
        "live.example.test": "active", "nolive.example.test": "active"})
    R.eq(status(state, "gone.example.test").get("leftover"), False, "gone: no leftover")
    R.eq(leftover(state), ["moved.example.test"], "report leftover after day 4")
    R.eq(leftover(state, "json"), ["moved.example.test"], "report leftover (json) after day 4")

    # Renewal time of the first certificates.
    s = first["live.example.test"]
    nb = calendar.timegm(time.strptime(s["not_before"], "%Y-%m-%dT%H:%M:%SZ"))
    na = calendar.timegm(time.strptime(s["not_after"], "%Y-%m-%dT%H:%M:%SZ"))
    t_renew = nb + (na - nb) * 3 // 4
    R.check(t_renew > t0 + 5 * DAY, "pebble's certificates outlive the first days")
    # unbound (cache-max-ttl 1, whole seconds) may still hold the TXT values of
    # the orders a moment ago; pebble asks it once and does not retry.
    time.sleep(2)
    p = run_at(state, t_renew, "renewal")
    got = expect(state, "after the renewal run", {
        "live.example.test": "active", "nolive.example.test": "stopped/never_live",
        "late.shop.test": "active", "moved.example.test": "stopped/offboarded",
        "gone.example.test": "stopped/delegation_removed",
        "nocname.shop.test": "awaiting_delegation"})
    R.check(status(state, "live.example.test").get("serial") != first["live.example.test"]["serial"],
            "live.example.test was renewed (new serial)")
    R.eq(status(state, "moved.example.test").get("serial"), first["moved.example.test"]["serial"],
         "moved.example.test was not renewed")
    R.eq(leftover(state), ["moved.example.test", "nolive.example.test"],
         "report leftover after the renewal run")
    p = cf(state, "report", "never-live", check_rc=0)
    R.check("nolive.example.test" in p.stdout, "report never-live lists nolive")

    # nolive goes live: it resumes by itself and is renewed.
    world.set_host("nolive.example.test")
    time.sleep(2)  # unbound keeps its negative answer for a second
    run_at(state, t_renew + DAY + 60, "after nolive went live")
    expect(state, "nolive resumed", {"nolive.example.test": "active"})
    R.check(status(state, "nolive.example.test").get("serial")
            != first["nolive.example.test"]["serial"], "nolive.example.test was renewed")
    R.eq(leftover(state), ["moved.example.test"], "report leftover at the end")
    verify_chain(world, state, "live.example.test", root)

    # The status counts agree with the records.
    p = cf(state, "status", "--json", check_rc=0)
    st = json.loads(p.stdout)
    R.eq(st.get("hosts"), len(HOSTS), "status counts every host")
    R.eq(st.get("stopped", {}).get("offboarded"), 1, "status: one offboarded")


def main():
    wd = dnsenv.Workdir("/tmp/cf-integ-run-")
    state = os.path.join(wd.path, "state")
    world = None
    try:
        world = acmeenv.AcmeWorld(wd.path)
        world.certfleet_init(CF, state)
        scenario(world, state)
        R.check(not any("PRIVATE KEY" in x for x in LOGS), "no private key in any log")
        world.stop()
    except Exception:
        traceback.print_exc()
        R.check(False, "the test stopped at an exception")
    finally:
        if R.failed and world is not None and world.pebble:
            print("--- pebble.log\n" + world.pebble.log_tail())
        if R.failed and LOGS:
            print("--- last certfleet stderr\n" + LOGS[-1][-3000:])
        if world is not None and world.pebble:
            world.pebble.stop()
        dnsenv._stop_all()
        wd.cleanup()
    return R.finish()


if __name__ == "__main__":
    sys.exit(main())
