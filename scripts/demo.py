"""The main job's world (scripts/demo.sh): a local CA and the customers' DNS
on loopback, then a real `certfleet run` over the sample fleet.

It brings up, on 127.0.$CF_TEST_NET.x (default 10) and stopped by PID at the
end: pebble (Let's Encrypt's test CA, Debian's package) with its own TLS
certificate, two knotd serving the sample customers' zones and the CDN's
zone, and unbound as the recursive resolver. The customers of
examples/fleet.csv are in various stages of onboarding:

    www.shop-one.test                    CNAME created, site served by the CDN
    shop-one.test, *.shop-one.test       one CNAME for both, site still elsewhere
    static.widgets.test                  CNAME created, site served by the CDN
    api.xn--bcher-kva.test               no CNAME yet (waits for its delegation)

Then: certfleet init, import (the sample's bad lines are reported), run
(the summary table), status, report leftover, and the metrics file.

    demo.py PATH_TO_CERTFLEET STATE_DIR
"""
import os
import subprocess
import sys

top = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(top, "tests", "integ"))
import acmeenv  # noqa: E402
import dnsenv  # noqa: E402

CF, STATE = sys.argv[1], sys.argv[2]


def cf(*args, check=True):
    print("$ certfleet " + " ".join(args), flush=True)
    p = subprocess.run([CF, "--state", STATE] + list(args))
    if check and p.returncode != 0:
        raise SystemExit("certfleet %s: exit %d" % (args[0], p.returncode))
    return p.returncode


def main():
    wd = dnsenv.Workdir("/tmp/certfleet-demo-")
    world = None
    try:
        print("== starting pebble, knot and unbound on loopback", flush=True)
        world = acmeenv.AcmeWorld(wd.path, customer_zones=(
            "shop-one.test", "widgets.test", "xn--bcher-kva.test"))
        world.set_host("www.shop-one.test")
        # The apex and its wildcard share one CNAME (_acme-challenge.shop-one.test).
        world.set_host("shop-one.test", live="198.51.100.20")
        world.set_host("static.widgets.test")
        world.set_host("api.xn--bcher-kva.test", delegate=False)
        if os.path.exists(os.path.join(STATE, "config.json")):
            print("== using the existing state dir %s" % STATE, flush=True)
        else:
            print("== certfleet init", flush=True)
            print("$ " + " ".join(world.init_argv("certfleet", STATE)[1:]), flush=True)
            world.certfleet_init(CF, STATE)
        print("== import (the sample has bad lines on purpose: each is named)", flush=True)
        cf("import", os.path.join(top, "examples", "fleet.csv"), check=False)
        cf("instructions", "--format", "csv")
        print("== the nightly run", flush=True)
        rc = cf("run", "--deadline", "5m", check=False)
        print("== after the run (exit %d)" % rc, flush=True)
        cf("status")
        cf("report", "leftover")
        print("== metrics (%s/metrics.prom)" % STATE, flush=True)
        with open(os.path.join(STATE, "metrics.prom")) as f:
            print("".join(line for line in f if not line.startswith("#")), flush=True)
        return 0 if rc in (0, 1) else rc
    finally:
        if world is not None:
            world.stop()
        dnsenv._stop_all()
        wd.cleanup()


if __name__ == "__main__":
    sys.exit(main())
