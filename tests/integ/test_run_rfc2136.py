"""`certfleet run` publishing its TXT records to an external primary with
RFC 2136 UPDATE and TSIG (DESIGN.md §4: shards publish to one shared DNS
primary), against pebble + knot + unbound.

The validation zone is served by a knotd (not by certfleet) that accepts
TSIG-signed updates; `init --rfc2136 ADDR --tsig-key-file FILE`. The run
issues for every delegated host (pebble finds each TXT value through unbound
at the primary), withdraws every value afterwards, and never serves DNS
itself. A wrong TSIG key makes the hosts fail with an error naming the
server and the zone, and the run exits 1.

    test_run_rfc2136.py PATH_TO_CERTFLEET
"""
import base64
import json
import os
import subprocess
import sys
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import acmeenv  # noqa: E402
import dnsenv  # noqa: E402

CF = sys.argv[1]
R = dnsenv.Results()
KEY = "cf-update"
SECRET = base64.b64encode(os.urandom(32)).decode()
HOSTS = ["u1.example.test", "u2.example.test", "u3.shop.test"]


def write_key(path, name, secret):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write('key "%s" {\n\talgorithm hmac-sha256;\n\tsecret "%s";\n};\n' % (name, secret))


def cf(state, *args, inp=None):
    return subprocess.run([CF, "--state", state] + list(args), capture_output=True, text=True,
                          timeout=240, input=inp)


def scenario(world, wd):
    zone = world.zone
    primary = dnsenv.Knot(wd, "primary", acmeenv.VALIDATION_ADDR, zones={
        zone: ["@ NS ns1", "ns1 A " + acmeenv.VALIDATION_ADDR]}, tsig=(KEY, SECRET))
    try:
        for h in HOSTS:
            world.set_host(h)
        good, bad = os.path.join(wd, "key"), os.path.join(wd, "badkey")
        write_key(good, KEY, SECRET)
        write_key(bad, KEY, base64.b64encode(os.urandom(32)).decode())
        addr = "%s:53" % acmeenv.VALIDATION_ADDR

        state = os.path.join(wd, "state")
        world.certfleet_init(CF, state, ["--rfc2136", addr, "--tsig-key-file", good])
        p = cf(state, "import", "-", inp="".join(h + "\n" for h in HOSTS))
        R.eq(p.returncode, 0, "import")
        p = cf(state, "run")
        print(p.stdout, flush=True)
        R.eq(p.returncode, 0, "run with RFC 2136: exit 0 (%s)" % p.stderr[-1500:])
        for h in HOSTS:
            s = json.loads(cf(state, "status", "--json", h).stdout or "{}")
            R.eq(s.get("state"), "active", "%s issued through the primary" % h)
            out = dnsenv.dig(acmeenv.VALIDATION_ADDR, 53, world.target(h), "TXT")
            R.eq(out.strip(), "", "%s: TXT withdrawn at the primary" % h)
        R.check("dns_listen_in_use" not in p.stderr, "the run did not try to serve DNS")
        R.check(SECRET not in p.stderr, "the TSIG secret is never logged")

        state2 = os.path.join(wd, "state-badkey")
        world.certfleet_init(CF, state2, ["--rfc2136", addr, "--tsig-key-file", bad])
        cf(state2, "import", "-", inp="u1.example.test\n")
        p = cf(state2, "run")
        R.eq(p.returncode, 1, "wrong TSIG key: exit 1")
        s = json.loads(cf(state2, "status", "--json", "u1.example.test").stdout or "{}")
        err = s.get("last_error") or ""
        R.check(acmeenv.VALIDATION_ADDR in err and zone in err,
                "the error names the primary and the zone: %r" % err)
    finally:
        primary.stop()


def main():
    wd = dnsenv.Workdir("/tmp/cf-integ-run-2136-")
    world = None
    try:
        world = acmeenv.AcmeWorld(wd.path)
        scenario(world, wd.path)
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
