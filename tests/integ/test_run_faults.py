"""`certfleet run` when things go wrong, against pebble + knot + unbound.

pebble rejects 30% of the nonces it issued (PEBBLE_WFE_NONCEREJECT=30) in
this whole test, so every part also proves that badNonce retries stay
invisible. Then:

- crash: a run over 60 delegated hosts is killed with SIGKILL while orders
  are in flight; the next run resumes. Every host ends `active` with one
  certificate that verifies, none is left `issuing`, and pebble created no
  more orders than hosts + the orders that were in flight at the kill
  (resumed orders are not created again);
- account key rollover between two batches: `rotate-account-key`, then a
  second batch issues with the new key under the same account URL, and the
  CNAME instructions are byte-identical;
- rate limits: a CA limit of 3 new orders an hour orders 3 of 6 hosts and
  defers the rest (not failures); the bucket persists across runs; a token
  due within minutes is waited for inside the run;
- a frozen CA: pebble stopped with SIGSTOP mid-run; the run ends by its
  deadline (plus the HTTP timeout) with exit 1, the hosts are marked for
  retry (next action within minutes, not left unscheduled), and after SIGCONT
  the next run issues them all.

    test_run_faults.py PATH_TO_CERTFLEET
"""
import json
import os
import re
import signal
import subprocess
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import acmeenv  # noqa: E402
import dnsenv  # noqa: E402

CF = sys.argv[1]
R = dnsenv.Results()
os.environ["CERTFLEET_TEST_CLOCK"] = "1"
LOGS = []


def cf(state, *args, timeout=300, check_rc=None, inp=None):
    p = subprocess.run([CF, "--state", state] + list(args), capture_output=True, text=True,
                       timeout=timeout, input=inp)
    LOGS.append(p.stderr)
    if check_rc is not None:
        fails = "\n".join(line for line in p.stderr.splitlines()
                          if "_failed" in line or '"level":"error"' in line)
        R.eq(p.returncode, check_rc, "certfleet %s: exit status (failures: %s; stderr: %s)" % (
            " ".join(args), fails[-3000:], p.stderr[-1500:]))
    return p


def import_hosts(world, state, hosts, **kw):
    for h in hosts:
        world.set_host(h, **kw)
    cf(state, "import", "-", inp="".join(h + "\n" for h in hosts), check_rc=0)


def status(state, host=None):
    p = cf(state, "status", "--json", *([host] if host else []))
    try:
        return json.loads(p.stdout)
    except ValueError:
        R.check(False, "status --json %s parses: %r" % (host, p.stdout[:200]))
        return {}


def new_orders(world):
    """Orders pebble created, from its log: one 'Added order' line per order
    (a 'POST /order-plz' line is also logged for requests refused as badNonce)."""
    with open(world.pebble.log, errors="replace") as f:
        return sum(1 for line in f if re.search(r'Added order "', line))


def crash(world, state):
    hosts = ["c%02d.example.test" % i for i in range(60)]
    import_hosts(world, state, hosts)
    orders0 = new_orders(world)
    log = open(os.path.join(state, "crash-run.log"), "w")
    p = subprocess.Popen([CF, "--state", state, "run", "--order-concurrency", "20"],
                         stdout=log, stderr=log)
    # Kill once some certificates are stored and more orders are in flight.
    t0 = time.time()
    killed_at = None
    while time.time() - t0 < 120 and p.poll() is None:
        s = status(state)
        active = s.get("states", {}).get("active", 0)
        if active >= 10:
            p.send_signal(signal.SIGKILL)
            killed_at = active
            break
        time.sleep(0.1)
    p.wait()
    log.close()
    R.check(killed_at is not None and killed_at < len(hosts),
            "the run was killed mid-batch (at %s active)" % killed_at)
    s = status(state)
    print("after the kill: %s" % json.dumps(s), flush=True)
    issuing = s.get("states", {}).get("issuing", 0)
    p = cf(state, "run", "--order-concurrency", "20", check_rc=0)
    print(p.stdout, flush=True)
    s = status(state)
    R.eq(s.get("states", {}).get("active"), len(hosts), "every crash host is active")
    R.eq(s.get("states", {}).get("issuing"), 0, "no host left issuing")
    created = new_orders(world) - orders0
    print("orders created: %d for %d hosts (%d were issuing at the kill)" % (
        created, len(hosts), issuing), flush=True)
    R.check(created <= len(hosts) + 20, "orders created %d <= hosts %d + in flight 20" % (
        created, len(hosts)))
    root = world.pebble.write_roots()
    serials = set()
    for h in hosts[::7]:
        out = os.path.join(state, "exp")
        cf(state, "export", h, "--out", out, check_rc=0)
        chain = os.path.join(out, h + ".pem")
        v = subprocess.run(["openssl", "verify", "-CAfile", root, "-untrusted", chain, chain],
                           capture_output=True, text=True)
        R.eq(v.returncode, 0, "%s: chain verifies: %s" % (h, v.stderr.strip()))
        serials.add(status(state, h).get("serial"))
    R.eq(len(serials), len(hosts[::7]), "one certificate per host")


def rollover(world, state):
    before = cf(state, "instructions", check_rc=0).stdout
    p = cf(state, "rotate-account-key", check_rc=0)
    R.check(p.stdout.startswith("rotated the account key of https://"), p.stdout)
    url0 = p.stdout.split()[-1]
    second = ["r%d.shop.test" % i for i in range(8)]
    import_hosts(world, state, second)
    p = cf(state, "run", check_rc=0)
    for h in second:
        R.eq(status(state, h).get("state"), "active", "%s issued after the rollover" % h)
    after = cf(state, "instructions", check_rc=0).stdout
    old = "".join(line + "\n" for line in after.splitlines()
                  if not any(line.startswith(h + ",") for h in second))
    R.eq(old, before, "CNAME instructions unchanged by the rollover")
    p = subprocess.run(["mdb_dump", "-n", "-p", "-s", "account", os.path.join(state, "store.mdb")],
                       capture_output=True, text=True)
    R.check(url0 in p.stdout, "the account URL is unchanged (%s in %r)" % (url0, p.stdout[-600:]))


def frozen(world, state):
    hosts = ["f%02d.example.test" % i for i in range(12)]
    import_hosts(world, state, hosts)
    log = open(os.path.join(state, "frozen-run.log"), "w")
    orders0 = new_orders(world)
    t0 = time.time()
    # The run's deadline comes before any order's own: the run cancels them.
    p = subprocess.Popen([CF, "--state", state, "run", "--deadline", "12s",
                          "--order-deadline", "60s"], stdout=log, stderr=log)
    # Freeze as soon as the first order exists: the others are in flight.
    while new_orders(world) == orders0 and time.time() - t0 < 10:
        time.sleep(0.01)
    world.pebble.freeze()
    try:
        rc = p.wait(timeout=120)
    except subprocess.TimeoutExpired:
        p.kill()
        rc = None
    elapsed = time.time() - t0
    world.pebble.thaw()
    log.close()
    print(open(os.path.join(state, "frozen-run.log")).read()[-1500:], flush=True)
    R.eq(rc, 1, "frozen CA: the run exits 1")
    R.check(elapsed < 12 + 30 + 5, "frozen CA: the run ended by its deadline (%.1f s)" % elapsed)
    for h in hosts:
        s = status(state, h)
        if s.get("state") == "active":
            continue  # issued before the freeze
        na = s.get("next_action")
        R.check(na is not None, "%s: marked for retry (next action %s)" % (h, na))
    # Past the first backoff step (1 min), on the test clock.
    p = cf(state, "run", "--now", time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                 time.gmtime(time.time() + 180)), check_rc=0)
    print(p.stdout, flush=True)
    for h in hosts:
        R.eq(status(state, h).get("state"), "active", "%s issued once the CA is back" % h)


def limits(world, state):
    """A CA limit of 3 new orders an hour (GCRA: a burst of 3, then one per
    20 min): the run orders for 3 hosts and defers the others without
    counting a failure; the bucket survives the process, so a run 25 min
    later (test clock) orders exactly one more."""
    hosts = ["l%d.shop.test" % i for i in range(6)]
    import_hosts(world, state, hosts)
    spec = "none,new_orders=3/1h"
    t0 = time.time()
    iso = lambda t: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))  # noqa: E731
    p = cf(state, "run", "--rate-limits", spec, "--now", iso(t0), check_rc=0)
    print(p.stdout, flush=True)
    active = [h for h in hosts if status(state, h).get("state") == "active"]
    R.eq(len(active), 3, "3 of 6 hosts ordered under new_orders=3/1h")
    R.check("rate limited (later)         3" in p.stdout, "the summary counts 3 rate limited")
    waiting = [h for h in hosts if h not in active]
    for h in waiting:
        s = status(state, h)
        R.eq(s.get("failures"), 0, "%s: a rate limit is not a failure" % h)
    p = cf(state, "run", "--rate-limits", spec, "--now", iso(t0 + 25 * 60), check_rc=0)
    print(p.stdout, flush=True)
    active2 = [h for h in hosts if status(state, h).get("state") == "active"]
    R.eq(len(active2), 4, "one more order 25 min later: the bucket was kept in the store")

    # A token due within minutes is waited for in the run, not left for tomorrow:
    # 2 orders per 10 s (a burst of 2, then one per 5 s) gets 5 hosts done in one run.
    quick = ["q%d.example.test" % i for i in range(5)]
    import_hosts(world, state, quick)
    t1 = time.time()
    p = cf(state, "run", "--rate-limits", "none,new_orders=2/10s", "--now",
           iso(t0 + 3 * 3600), check_rc=0)
    took = time.time() - t1
    R.eq([status(state, h).get("state") for h in quick], ["active"] * 5,
         "every host ordered within the run, pacing the bucket")
    R.check(8 <= took < 60, "the run waited for the tokens (%.1f s)" % took)


def main():
    wd = dnsenv.Workdir("/tmp/cf-integ-run-faults-")
    state = os.path.join(wd.path, "state")
    world = None
    try:
        world = acmeenv.AcmeWorld(wd.path, pebble_env={"PEBBLE_WFE_NONCEREJECT": "30"})
        world.certfleet_init(CF, state)
        crash(world, state)
        rollover(world, state)
        limits(world, state)
        frozen(world, state)
        R.check(not any("PRIVATE KEY" in x for x in LOGS), "no private key in any log")
        world.stop()
    except Exception:
        traceback.print_exc()
        R.check(False, "the test stopped at an exception")
    finally:
        if R.failed and world is not None and world.pebble:
            print("--- pebble.log\n" + world.pebble.log_tail())
        if world is not None and world.pebble and world.pebble.running():
            world.pebble.thaw()
            world.pebble.stop()
        dnsenv._stop_all()
        wd.cleanup()
    return R.finish()


if __name__ == "__main__":
    sys.exit(main())
