"""Crash safety of `certfleet run` (issue: reliability): a run over 300
delegated hosts against pebble is killed with SIGKILL at 20 random moments,
each kill followed by a new run that resumes; a last run finishes the
batch. Then:

- every host is `active` and holds exactly one certificate: its stored
  chain verifies against pebble's roots, is for the host, and the exported
  key is the certificate's; all serials differ;
- no host is left `issuing`; the store opens cleanly (status, mdb_stat);
- pebble created at most hosts + kills orders (runs use the default newOrder
  gate of 1: a kill can orphan at most the one order whose URL was not yet
  stored).

    test_run_crash.py PATH_TO_CERTFLEET
"""
import json
import os
import random
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
N, KILLS = 300, 20


def cf(state, *args, inp=None, timeout=300):
    return subprocess.run([CF, "--state", state] + list(args), capture_output=True, text=True,
                          input=inp, timeout=timeout)


def new_orders(world):
    with open(world.pebble.log, errors="replace") as f:
        return sum(1 for line in f if re.search(r'Added order "', line))


def scenario(world, state):
    hosts = ["k%03d.%s" % (i, "example.test" if i % 2 else "shop.test") for i in range(N)]
    world.set_hosts(hosts)
    p = cf(state, "import", "-", inp="".join(h + "\n" for h in hosts))
    R.eq(p.returncode, 0, "import")
    rnd = random.Random(int(os.environ.get("CF_TEST_SEED", "7")))
    orders0 = new_orders(world)
    kills = 0
    for k in range(KILLS):
        log = open(os.path.join(state, "run-%d.log" % k), "w")
        proc = subprocess.Popen([CF, "--state", state, "run", "--order-concurrency", "40"],
                                stdout=log, stderr=log)
        time.sleep(rnd.uniform(0.05, 0.8))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait()
        log.close()
    p = cf(state, "run", "--order-concurrency", "40")
    print(p.stdout, flush=True)
    R.eq(p.returncode, 0, "the last run finishes the batch (%s)" % p.stderr[-800:])
    created = new_orders(world) - orders0
    print("kills %d, orders created %d for %d hosts" % (kills, created, N), flush=True)
    R.check(kills >= KILLS // 2, "most runs were killed mid-batch (%d)" % kills)
    R.check(created <= N + kills, "orders created %d <= hosts %d + kills %d" % (created, N, kills))

    st = json.loads(cf(state, "status", "--json").stdout or "{}")
    R.eq(st.get("states", {}).get("active"), N, "every host active")
    R.eq(st.get("states", {}).get("issuing"), 0, "no host left issuing")
    p = subprocess.run(["mdb_stat", "-n", "-a", os.path.join(state, "store.mdb")],
                       capture_output=True, text=True)
    R.eq(p.returncode, 0, "mdb_stat opens the store: %s" % p.stderr)
    # A kill after a challenge was answered leaves its TXT value published; the run that
    # resumes the order withdraws it, whatever state the order has reached by then.
    dbs, cur = {}, None
    for line in p.stdout.splitlines():
        if line.startswith("Status of "):
            cur = line[len("Status of "):].strip()
        elif cur and line.strip().startswith("Entries:"):
            dbs[cur] = int(line.split(":")[1])
    R.eq(dbs.get("dns"), 0, "no TXT value is left published in the validation zone")

    root = world.pebble.write_roots()
    out = os.path.join(state, "export")
    serials = set()
    bad = []
    for h in hosts:
        s = json.loads(cf(state, "status", "--json", h).stdout or "{}")
        serials.add(s.get("serial"))
        if cf(state, "export", h, "--out", out).returncode != 0:
            bad.append((h, "export"))
            continue
        chain, key = os.path.join(out, h + ".pem"), os.path.join(out, h + ".key")
        v = subprocess.run(["openssl", "verify", "-CAfile", root, "-untrusted", chain, chain],
                           capture_output=True, text=True)
        if v.returncode != 0:
            bad.append((h, v.stdout + v.stderr))
            continue
        sans = subprocess.run(["openssl", "x509", "-in", chain, "-noout", "-ext",
                               "subjectAltName"], capture_output=True, text=True).stdout
        a = subprocess.run(["openssl", "x509", "-in", chain, "-noout", "-pubkey"],
                           capture_output=True, text=True).stdout
        b = subprocess.run(["openssl", "pkey", "-in", key, "-pubout"], capture_output=True,
                           text=True).stdout
        if "DNS:" + h not in sans or not a or a != b:
            bad.append((h, "names or key"))
    R.eq(bad, [], "every host's certificate verifies, names it and matches its key")
    R.eq(len(serials), N, "one distinct certificate per host")


def main():
    wd = dnsenv.Workdir("/tmp/cf-integ-run-crash-")
    state = os.path.join(wd.path, "state")
    world = None
    try:
        world = acmeenv.AcmeWorld(wd.path)
        world.certfleet_init(CF, state)
        scenario(world, state)
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
        wd.cleanup()
    return R.finish()


if __name__ == "__main__":
    sys.exit(main())
