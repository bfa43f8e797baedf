"""`certfleet run` through outages (issue: reliability and security, Faults),
against pebble + knot + unbound, 20 delegated hosts a phase:

  (a) the recursive resolver (unbound) is stopped by PID mid-run, once
      pebble has created the first orders;
  (b) then both knotd (the customers' nameservers) are stopped mid-run;
  (c) the store is capped (CERTFLEET_STORE_MAX_MB) just above what it holds
      after it was filled with TXT records, so the run's commits hit the cap.

Each outage run ends by its --deadline (the elapsed time is checked), exits
1 (hosts failed or deferred) or 3 (the store is full: fatal), says what
failed (the hosts' last errors name DNS; the store error names the store and
that it is full), leaves every host of the phase marked for retry (not
stopped, a next action set; failures counted where an order failed, no host
left without a way forward), and loses nothing committed earlier: every host
that was active before stays active with the same certificate, and `export`
still writes a chain and its key. With the store full the run stops ordering
at the first failed commit (pebble gets no more orders than certificates
stored plus those in flight), and the next run resumes the orders whose
pending state was committed instead of ordering again. The servers are then
restarted (by PID: dnsenv's restart), the cap lifted, and the next run issues
every host.

    test_run_outage.py PATH_TO_CERTFLEET PATH_TO_TXT_PUBLISH
"""
import json
import os
import re
import subprocess
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import acmeenv  # noqa: E402
import dnsenv  # noqa: E402

CF, TXT_PUBLISH = sys.argv[1], sys.argv[2]
R = dnsenv.Results()
os.environ["CERTFLEET_TEST_CLOCK"] = "1"
DEADLINE = 30  # seconds, each outage run's --deadline
LOGS = []
HOUR = 3600


def iso(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def cf(state, *args, inp=None, env=None, timeout=240):
    p = subprocess.run([CF, "--state", state] + list(args), capture_output=True, text=True,
                       timeout=timeout, input=inp, env=env)
    LOGS.append(p.stderr)
    return p


def status(state, host=None):
    p = cf(state, "status", "--json", *([host] if host else []))
    try:
        return json.loads(p.stdout)
    except ValueError:
        R.check(False, "status --json %s parses: %r" % (host, p.stdout[:200]))
        return {}


def new_orders(world):
    with open(world.pebble.log, errors="replace") as f:
        return sum(1 for line in f if 'Added order "' in line)


def import_hosts(world, state, hosts, every):
    every.extend(hosts)
    world.set_hosts(hosts)
    p = cf(state, "import", "-", inp="".join(h + "\n" for h in hosts))
    R.eq(p.returncode, 0, "import: " + p.stderr)


def committed(state, hosts):
    """{host: serial} of the hosts active in the store now."""
    out = {}
    for h in hosts:
        s = status(state, h)
        if s.get("state") == "active":
            out[h] = s.get("serial")
    return out


def check_kept(state, before, what):
    """Every host active before is still active with the same certificate, and exports."""
    for h, serial in sorted(before.items()):
        s = status(state, h)
        R.eq((s.get("state"), s.get("serial")), ("active", serial),
             "%s: %s kept its certificate" % (what, h))
    for h in sorted(before)[::7]:
        out = os.path.join(os.path.dirname(state), "export-" + h)
        p = cf(state, "export", h, "--out", out)
        R.eq(p.returncode, 0, "%s: export %s (%s)" % (what, h, p.stderr[-300:]))
        chain, key = os.path.join(out, h + ".pem"), os.path.join(out, h + ".key")
        a = subprocess.run(["openssl", "x509", "-in", chain, "-noout", "-pubkey"],
                           capture_output=True, text=True).stdout
        b = subprocess.run(["openssl", "pkey", "-in", key, "-pubout"], capture_output=True,
                           text=True).stdout
        R.check(a and a == b, "%s: %s: the exported key is the certificate's" % (what, h))


def check_retry(state, hosts, what, want_failed):
    """Hosts not active are marked for retry; returns their last errors."""
    errors, nfailed = {}, 0
    for h in hosts:
        s = status(state, h)
        if s.get("state") == "active":
            continue
        R.check(s.get("state") != "stopped", "%s: %s not stopped (%s/%s)" % (
            what, h, s.get("state"), s.get("reason")))
        R.check(s.get("next_action") is not None, "%s: %s has a next action" % (what, h))
        if s.get("failures"):
            nfailed += 1
            R.check(bool(s.get("last_error")), "%s: %s's failure says why" % (what, h))
            errors[h] = s.get("last_error")
    if want_failed:
        R.check(nfailed > 0, "%s: failures were recorded (%d hosts)" % (what, nfailed))
    return errors


def outage_run(world, state, what, action, min_orders=3, env=None, extra=()):
    """Run with DEADLINE; action() once pebble has min_orders new orders (None: at once).
    Returns (exit status, elapsed s, stderr)."""
    orders0 = new_orders(world)
    logpath = os.path.join(os.path.dirname(state), "%s.log" % what.split()[0])
    log = open(logpath, "w")
    t0 = time.time()
    p = subprocess.Popen([CF, "--state", state, "run", "--deadline", "%ds" % DEADLINE,
                          "--order-concurrency", "2"] + list(extra), stdout=log, stderr=log,
                         env=env)
    if action:
        while new_orders(world) - orders0 < min_orders and p.poll() is None \
                and time.time() - t0 < DEADLINE:
            time.sleep(0.01)
        R.check(p.poll() is None, "%s: the outage began while the run was going" % what)
        n = new_orders(world) - orders0
        action()
        print("--- %s: outage after %d orders, %.1f s into the run" % (what, n,
                                                                     time.time() - t0),
              flush=True)
    try:
        rc = p.wait(timeout=DEADLINE + 120)
    except subprocess.TimeoutExpired:
        p.kill()
        rc = None
    elapsed = time.time() - t0
    log.close()
    out = open(logpath, errors="replace").read()
    LOGS.append(out)
    summary = out[out.find("certfleet run:"):] if "certfleet run:" in out else out[-1500:]
    print("--- %s: exit %s in %.1f s\n%s" % (what, rc, elapsed, summary[:1500]), flush=True)
    R.check(elapsed < DEADLINE + 15, "%s: the run ended by its deadline (%.1f s for --deadline "
            "%ds)" % (what, elapsed, DEADLINE))
    return rc, elapsed, out


def wait_resolvable(world, state, hosts, deadline=60):
    """Wait until unbound answers pebble's question (TXT at _acme-challenge.H, through
    the CNAME into the validation zone, served meanwhile by serve-dns) for every
    host: after an outage it keeps SERVFAIL for a while (the next nightly run is
    hours later)."""
    world.start_serve_dns(CF, state)
    t0 = time.time()
    try:
        for h in hosts:
            while time.time() - t0 < deadline and \
                    world.resolve("_acme-challenge." + h, "TXT")[0] not in ("NOERROR", "NXDOMAIN"):
                time.sleep(0.2)
    finally:
        world.stop_serve_dns()
    print("--- unbound answered again after %.1f s" % (time.time() - t0), flush=True)
    time.sleep(2)  # the NXDOMAIN these questions got stays cached for a second


def recovery_run(state, hosts, now, what):
    p = cf(state, "run", "--now", iso(now), "--deadline", "120s")
    with open(os.path.join(os.path.dirname(state), "recovery-%d.log" % now), "w") as f:
        f.write(p.stderr)
    print("--- %s: exit %d\n%s" % (what, p.returncode, p.stdout), flush=True)
    R.eq(p.returncode, 0, "%s: exit 0 (%s)" % (what, p.stderr[-1500:]))
    for h in hosts:
        s = status(state, h)
        R.eq(s.get("state"), "active", "%s: %s issued (%s)" % (what, h, s.get("last_error")))


def used_bytes(state):
    out = subprocess.run(["mdb_stat", "-e", "-n", os.path.join(state, "store.mdb")],
                         capture_output=True, text=True).stdout
    psize = int(re.search(r"Page size: (\d+)", out).group(1))
    pages = int(re.search(r"Number of pages used: (\d+)", out).group(1))
    return pages * psize


def fill_store(state, upto):
    """Add TXT records (names no host uses) until the store uses about `upto` bytes."""
    i = 0
    while used_bytes(state) < upto:
        step = max(20, (upto - used_bytes(state)) // 600)
        lines = "".join("+ fill%06d.filler.acme.cdn.test %s\n" % (i + k, "f" * 200)
                        for k in range(step))
        i += step
        p = subprocess.run([TXT_PUBLISH, state], input=lines, capture_output=True, text=True)
        if p.returncode != 0:
            raise RuntimeError("txt_publish: " + p.stderr)
    return i


def scenario(world, wd):
    state = os.path.join(wd, "state")
    world.certfleet_init(CF, state)
    base = ["base%d.example.test" % i for i in range(4)]
    a_hosts = ["ua%02d.%s" % (i, "example.test" if i % 2 else "shop.test") for i in range(20)]
    b_hosts = ["kb%02d.%s" % (i, "example.test" if i % 2 else "shop.test") for i in range(20)]
    c_hosts = ["sc%02d.%s" % (i, "example.test" if i % 2 else "shop.test") for i in range(20)]
    every = []  # the hosts imported so far
    t_clock = time.time()

    import_hosts(world, state, base, every)
    p = cf(state, "run")
    R.eq(p.returncode, 0, "baseline run (%s)" % p.stderr[-800:])

    # (a) The recursive resolver stops mid-run.
    import_hosts(world, state, a_hosts, every)
    kept = committed(state, every)
    R.eq(sorted(kept), sorted(base), "the baseline hosts are active")
    rc, _, out = outage_run(world, state, "resolver down", world.unbound.stop)
    R.eq(rc, 1, "resolver down: exit 1 (hosts failed or deferred)")
    errs = check_retry(state, a_hosts, "resolver down", want_failed=True)
    print("last errors: %s" % json.dumps(errs, indent=1)[:1500], flush=True)
    R.check(errs and all("DNS" in e or "dns" in e or "resolv" in e for e in errs.values()),
            "resolver down: the errors name DNS")
    check_kept(state, kept, "resolver down")
    world.unbound.restart()
    t_clock += 2 * HOUR
    recovery_run(state, a_hosts, t_clock, "after the resolver came back")

    # (b) Both customer nameservers stop mid-run.
    import_hosts(world, state, b_hosts, every)
    kept = committed(state, every)

    def knots_down():
        world.knot1.stop()
        world.knot2.stop()
    rc, _, out = outage_run(world, state, "knot down", knots_down)
    R.eq(rc, 1, "knot down: exit 1 (hosts failed or deferred)")
    errs = check_retry(state, b_hosts, "knot down", want_failed=True)
    print("last errors: %s" % json.dumps(errs, indent=1)[:1500], flush=True)
    R.check(errs and all("DNS" in e or "SERVFAIL" in e for e in errs.values()),
            "knot down: the errors name DNS")
    check_kept(state, kept, "knot down")
    world.knot1.restart()
    world.knot2.restart()
    wait_resolvable(world, state, b_hosts)
    t_clock += 2 * HOUR
    recovery_run(state, b_hosts, t_clock, "after knot came back")

    # (c) A store whose map cannot grow.
    import_hosts(world, state, c_hosts, every)
    kept = committed(state, every)
    used = used_bytes(state)
    cap_mb = used // (1 << 20) + 2
    n = fill_store(state, cap_mb * (1 << 20) - 64 * 1024)
    print("--- store: %d bytes used, %d filler records, capped at %d MiB, now %d used" % (
        used, n, cap_mb, used_bytes(state)), flush=True)
    env = dict(os.environ, CERTFLEET_STORE_MAX_MB=str(cap_mb))
    orders0 = new_orders(world)
    rc, _, out = outage_run(world, state, "store full", None, env=env)
    R.eq(rc, 3, "store full: exit 3 (fatal)")
    store_path = os.path.join(state, "store.mdb")
    said = [line for line in out.splitlines() if line.startswith("certfleet: ")]
    R.check(said and store_path in said[-1] and "full" in said[-1],
            "store full: the error names the store and says it is full: %r" % said[-1:])
    created = new_orders(world) - orders0
    states = [status(state, h).get("state") for h in c_hosts]
    stored = states.count("active")
    print("store full: %d orders created, %d certificates stored, states %s" % (
        created, stored, sorted(set(states))), flush=True)
    R.check(stored > 0 or "issuing" in states, "store full: the cap was hit during the run, "
            "after some commits (%s)" % states)
    # Ordering stops at the first failed commit: no certificate is fetched to be thrown away.
    R.check(created <= stored + 3, "store full: %d orders created for %d certificates stored "
            "(order concurrency 2)" % (created, stored))
    check_retry(state, c_hosts, "store full", want_failed=False)
    check_kept(state, kept, "store full")
    p = cf(state, "status", "--json", env=env)
    R.eq(p.returncode, 0, "status reads the full store under the cap")
    t_clock += 2 * HOUR
    orders0 = new_orders(world)
    recovery_run(state, c_hosts, t_clock, "without the cap")
    after = new_orders(world) - orders0
    print("orders created in the run after: %d" % after, flush=True)
    # Hosts whose pending order was committed resume it; no host is ordered twice.
    R.check(after <= len(c_hosts) - stored, "without the cap: %d new orders for %d hosts left" % (
        after, len(c_hosts) - stored))
    s = status(state)
    R.eq(s.get("states", {}).get("active"), len(every), "every host is active at the end")
    R.eq(s.get("states", {}).get("issuing", 0), 0, "no host left issuing")


def main():
    wd = dnsenv.Workdir("/tmp/cf-integ-outage-")
    world = None
    t0 = time.time()
    try:
        world = acmeenv.AcmeWorld(wd.path)
        scenario(world, wd.path)
        R.check(not any("PRIVATE KEY" in x for x in LOGS), "no private key in any log")
        world.stop()
    except Exception:
        traceback.print_exc()
        R.check(False, "the test stopped at an exception")
    finally:
        if R.failed and world is not None and world.pebble:
            print("--- pebble.log\n" + world.pebble.log_tail())
        if world is not None and world.pebble:
            world.pebble.stop()
        dnsenv._stop_all()
        if os.environ.get("CF_KEEP_WORKDIR"):
            print("workdir kept: " + wd.path)
        else:
            wd.cleanup()
    print("elapsed %.1f s" % (time.time() - t0))
    return R.finish()


if __name__ == "__main__":
    sys.exit(main())
