"""The per-host order pipeline (engine/acme/order.c) against pebble.

AcmeWorld brings up knot, unbound, pebble; certfleet init's a state dir,
imports the hosts and serves the validation zone with serve-dns.
acme_order_driver (tests/integ/acme_order_driver.c) then runs one order per
host at once on one loop: newOrder, authorization, TXT published in the
store, propagation check, challenge, finalize with a fresh key, download,
verify. The test proves:
- five delegated hosts and one wildcard get certificates that verify
  against pebble's issuance root with the chain pebble sent;
- a host without delegation fails clearly (its authorization is invalid,
  the error names the host and the authorization URL) and the others are
  not affected;
- every TXT record the driver published is withdrawn afterwards;
- the loop closes cleanly and every server stops.

    test_acme_order.py PATH_TO_CERTFLEET PATH_TO_ACME_ORDER_DRIVER PATH_TO_TXT_PUBLISH
"""
import json
import os
import subprocess
import sys
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import acmeenv  # noqa: E402
import dnsenv  # noqa: E402

CF, DRIVER, PUBLISH = sys.argv[1], sys.argv[2], sys.argv[3]
R = dnsenv.Results()
GOOD = ["a.example.test", "b.example.test", "c.example.test", "www.shop.test",
        "api.shop.test", "*.wild.example.test"]
BAD = "nodeleg.shop.test"


def chain_file(state, host):
    return os.path.join(state, host.replace("*", "_wildcard") + ".pem")


def run(world, state):
    p = subprocess.run([CF, "--state", state, "import", "-"],
                       input="".join(h + "\n" for h in GOOD + [BAD]), capture_output=True,
                       text=True)
    R.eq(p.returncode, 0, "import: " + p.stderr[-500:])
    for h in GOOD:
        world.set_host(h)
    world.set_host(BAD, delegate=False)
    world.start_serve_dns(CF, state)

    argv = [DRIVER, world.pebble.directory_url, world.pebble.ca_file, state, acmeenv.RESOLVER,
            world.zone] + GOOD + [BAD]
    p = subprocess.run(argv, capture_output=True, text=True, timeout=150)
    R.eq(p.returncode, 0, "driver exit status (stderr %s)" % p.stderr[-1500:])
    lines = [json.loads(x) for x in p.stdout.splitlines() if x.startswith("{")]
    res = {d["host"]: d for d in lines if "host" in d}
    for d in lines:
        print(json.dumps(d), flush=True)
    R.eq(lines[-1].get("loop_closed") if lines else None, True, "loop closed")
    R.eq(sorted(res), sorted(GOOD + [BAD]), "one line per host")
    R.check("BEGIN PRIVATE KEY" not in p.stderr, "no private key in the log")

    root = world.pebble.write_roots()
    for h in GOOD:
        d = res.get(h, {})
        R.eq((d.get("status"), d.get("error_text")), ("done", ""), "%s issued" % h)
        R.check(d.get("key_pem_bytes", 0) > 100, "%s: the key PEM reached the caller" % h)
        path = chain_file(state, h)
        if not os.path.exists(path):
            R.check(False, "%s: chain file %s" % (h, path))
            continue
        v = subprocess.run(["openssl", "verify", "-CAfile", root, "-untrusted", path, path],
                           capture_output=True, text=True)
        R.eq(v.returncode, 0, "%s: chain verifies against pebble's root (%s%s)" % (
            h, v.stdout.strip(), v.stderr.strip()))
        t = subprocess.run(["openssl", "x509", "-in", path, "-noout", "-ext", "subjectAltName"],
                           capture_output=True, text=True)
        R.check("DNS:" + h in t.stdout, "%s: in the leaf's names (%s)" % (h, t.stdout.strip()))

    d = res.get(BAD, {})
    R.eq((d.get("status"), d.get("error"), d.get("state")), ("failed", "CF_EACME", "poll_authz"),
         "%s fails at the authorization" % BAD)
    text = d.get("error_text", "")
    R.check(text.startswith(BAD + ": ") and "/authz" in text.lower()
            and "invalid" in text, "%s: error names host, URL, verdict: %r" % (BAD, text))
    R.check(not os.path.exists(chain_file(state, BAD)), "%s: no chain file" % BAD)

    # Every value published was withdrawn: nothing at any target on serve-dns.
    for h in GOOD + [BAD]:
        out = dnsenv.dig(acmeenv.VALIDATION_ADDR, acmeenv.VALIDATION_PORT, world.target(h),
                         "TXT")
        R.eq(out.strip(), "", "%s: TXT at %s withdrawn" % (h, world.target(h)))


def main():
    wd = dnsenv.Workdir("/tmp/cf-integ-acme-order-")
    state = os.path.join(wd.path, "state")
    world = None
    try:
        world = acmeenv.AcmeWorld(wd.path)
        world.certfleet_init(CF, state)
        procs = [world.unbound.proc, world.knot1.proc, world.knot2.proc, world.pebble.proc]
        run(world, state)
        procs.append(world.serve_dns)
        R.eq(world.stop_serve_dns(), 0, "serve-dns exits 0 on SIGTERM")
        world.stop()
        R.eq([p.poll() is not None for p in procs], [True] * len(procs),
             "every server of the world stopped")
    except Exception:  # a world that cannot start is a failure, not a silent exit
        traceback.print_exc()
        R.check(False, "the test stopped at an exception")
    finally:
        if R.failed and world is not None:
            if world.pebble:
                print("--- pebble.log\n" + world.pebble.log_tail())
            path = os.path.join(state, "serve-dns.log")
            if os.path.exists(path):
                print("--- serve-dns.log\n" + open(path).read()[-2000:])
        if world is not None and world.pebble:
            world.pebble.stop()
        dnsenv._stop_all()
        wd.cleanup()
    return R.finish()


if __name__ == "__main__":
    sys.exit(main())
