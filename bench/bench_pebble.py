#!/usr/bin/env python3
"""Certificates per second against pebble, and certfleet's CPU per certificate.

Brings up the loopback ACME world (tests/integ/acmeenv.py: pebble with
PEBBLE_VA_NOSLEEP, two knotd, unbound, `certfleet serve-dns`), delegates N
hosts, and times tests/integ/acme_order_driver issuing for all of them at
once on one loop (new order, dns-01 through the embedded server, propagation
check, finalize, download, verify). Prints certificates/s and the driver's
user+sys CPU per certificate. A benchmark: it asserts nothing about speed.

    bench_pebble.py CERTFLEET ACME_ORDER_DRIVER [--hosts 100]
"""
import argparse
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "integ"))
import acmeenv  # noqa: E402
import dnsenv  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("certfleet")
    ap.add_argument("driver")
    ap.add_argument("--hosts", type=int, default=100)
    a = ap.parse_args()
    wd = dnsenv.Workdir("/tmp/cf-bench-pebble-")
    world = None
    try:
        world = acmeenv.AcmeWorld(wd.path)
        state = os.path.join(wd.path, "state")
        world.certfleet_init(a.certfleet, state)
        hosts = ["h%d.example.test" % i for i in range(a.hosts)]
        subprocess.run([a.certfleet, "--state", state, "import", "-"],
                       input="".join(h + "\n" for h in hosts), text=True, check=True,
                       capture_output=True)
        for h in hosts:
            world.set_host(h, servers=[])  # no reload per host...
        world.sync()  # ...one reload of the zone for all of them
        world.start_serve_dns(a.certfleet, state)
        t0 = time.time()
        r0 = os.times()
        p = subprocess.run([a.driver, world.pebble.directory_url, world.pebble.ca_file, state,
                            acmeenv.RESOLVER, world.zone] + hosts, capture_output=True, text=True,
                           timeout=600)
        wall = time.time() - t0
        r1 = os.times()
        cpu = (r1.children_user - r0.children_user) + (r1.children_system - r0.children_system)
        done = p.stdout.count('"status": "done"') + p.stdout.count('"status":"done"')
        print("pebble benchmark: %d hosts issued at once on one loop" % a.hosts)
        print("  certificates      %d of %d in %.2f s wall" % (done, a.hosts, wall))
        print("  certificates/s    %.1f" % (done / wall if wall else 0))
        print("  driver CPU        %.3f s user+sys = %.2f ms per certificate"
              % (cpu, cpu * 1000 / done if done else 0))
        return 0 if done == a.hosts else 1
    finally:
        if world:
            world.stop()
        dnsenv._stop_all()
        wd.cleanup()


if __name__ == "__main__":
    sys.exit(main())
