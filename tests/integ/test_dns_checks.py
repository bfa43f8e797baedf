"""Delegation and liveness checks against real knot and unbound on loopback.

Two knotd instances are the two nameservers of the customers' zone
example.test (one can lag behind: propagating); unbound is the recursive
resolver. Every classification is reached by a real zone, and a zone change
moves a host from one class to another.

    test_dns_checks.py PATH_TO_CERTFLEET PATH_TO_TXT_CHECK_DRIVER
"""
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dnsenv  # noqa: E402

CF = sys.argv[1]
TXT_DRIVER = sys.argv[2]
NS1, NS2, RES = "127.0.10.11", "127.0.10.12", "127.0.10.1"
ZONE = "acme.cdn.test"
R = dnsenv.Results()


def target(host):
    return host.lstrip("*.") + "." + ZONE + "."


def example_records(ns2_view=False):
    recs = [
        "@ NS ns1", "@ NS ns2", "ns1 A " + NS1, "ns2 A " + NS2,
        "_acme-challenge.ok CNAME " + target("ok.example.test"),
        "_acme-challenge.wrong CNAME somewhere.else.test.",
        "_acme-challenge.chain CNAME hop.other.test.",
        "_acme-challenge.loop CNAME l1.other.test.",
        "_acme-challenge.wild CNAME " + target("wild.example.test"),
        "_acme-challenge.far CNAME hop2.other.test.",
        "live CNAME edge.cdn.test.",
        "ipl A 203.0.113.9",
        "notlive A 198.51.100.7",
        "sub NS ns.sub", "ns.sub A " + NS2,
    ]
    # The second server lags: it does not have the newest delegation yet.
    if not ns2_view:
        recs.append("_acme-challenge.prop CNAME " + target("prop.example.test"))
    return recs


def run_check(env, *hosts, concurrency=None):
    argv = [CF, "check", "--json"] + (["--concurrency", str(concurrency)] if concurrency else [])
    p = subprocess.run(argv + list(hosts), capture_output=True, text=True, env=env)
    out = {}
    for line in p.stdout.splitlines():
        d = json.loads(line)
        out[d["host"]] = d
    return p.returncode, out, p.stderr


def main():
    wd = dnsenv.Workdir("/tmp/cf-integ-dns-")
    env = dict(os.environ, CERTFLEET_STATE=os.path.join(wd.path, "state"), CERTFLEET_LOG="warn")
    try:
        other = ["@ NS ns1", "ns1 A " + NS1,
                 "hop CNAME " + target("chain.example.test"),
                 "hop2 CNAME hop3", "hop3 CNAME elsewhere.test.",
                 "l1 CNAME l2", "l2 CNAME l1"]
        cdn = ["@ NS ns1", "ns1 A " + NS1, "edge A 192.0.2.1"]
        lame = ["@ NS ns", "ns A " + NS2]  # NS2 does not serve lame.test: REFUSED
        sub = ["@ NS ns", "ns A " + NS2,
               "_acme-challenge.www CNAME " + target("www.sub.example.test")]
        vzone = ["@ NS ns1", "@ NS ns2", "ns1 A " + NS1, "ns2 A " + NS2]
        k1 = dnsenv.Knot(wd.path, "knot1", NS1, zones={
            "example.test": example_records(), "other.test": other, "cdn.test": cdn,
            "lame.test": lame, ZONE: vzone + ['ok.example.test TXT "digest-1"']})
        k2 = dnsenv.Knot(wd.path, "knot2", NS2, zones={
            "example.test": example_records(ns2_view=True), "sub.example.test": sub,
            ZONE: vzone})
        dnsenv.Unbound(wd.path, RES, stubs={
            "example.test": [NS1 + "@53", NS2 + "@53"], "other.test": [NS1 + "@53"],
            "cdn.test": [NS1 + "@53"], "lame.test": [NS1 + "@53"],
            ZONE: [NS1 + "@53", NS2 + "@53"]},
            nxdomain=["else.test", "elsewhere.test"])

        subprocess.run([CF, "init", "--validation-zone", ZONE, "--directory",
                        "https://127.0.0.1:14000/dir", "--resolver", RES,
                        "--cdn-target", "cdn.test", "--cdn-target", "203.0.113.0/24"],
                       env=env, check=True, capture_output=True)
        hosts = ["ok.example.test", "prop.example.test", "missing.example.test",
                 "wrong.example.test", "chain.example.test", "loop.example.test",
                 "far.example.test", "x.lame.test", "*.wild.example.test",
                 "live.example.test", "ipl.example.test", "notlive.example.test",
                 "nx.example.test", "www.sub.example.test"]
        p = subprocess.run([CF, "import", "-"], input="\n".join(hosts) + "\n", env=env,
                           capture_output=True, text=True)
        R.eq(p.returncode, 0, "import: " + p.stderr)

        rc, res, err = run_check(env)
        R.eq(set(res), set(hosts), "every host reported")
        want = {
            "ok.example.test": "confirmed",
            "prop.example.test": "propagating",
            "missing.example.test": "missing",
            "wrong.example.test": "wrong_target",
            "chain.example.test": "confirmed",  # CNAME chain through other.test
            "loop.example.test": "error",       # l1 -> l2 -> l1
            "far.example.test": "wrong_target",  # chain ends elsewhere
            "x.lame.test": "error",             # REFUSED by the listed server
            "*.wild.example.test": "confirmed",
            "www.sub.example.test": "confirmed",  # its own zone below example.test
        }
        for h, w in want.items():
            d = res.get(h, {}).get("delegation", {})
            R.eq(d.get("result"), w, "delegation of %s (%s)" % (h, d.get("error")))
        R.eq(rc, 1, "exit 1 when some check ended in error")
        d = res["ok.example.test"]["delegation"]
        R.eq(d["zone"], "example.test", "zone of ok")
        R.eq(sorted(s["addr"] for s in d["servers"]), [NS1, NS2], "both servers asked")
        d = res["prop.example.test"]["delegation"]
        R.eq(sorted((s["addr"], s["result"]) for s in d["servers"]),
             [(NS1, "confirmed"), (NS2, "missing")], "per-server detail of prop")
        R.eq(res["wrong.example.test"]["delegation"].get("seen_target"), "somewhere.else.test",
             "wrong target kept")
        R.eq(res["far.example.test"]["delegation"].get("seen_target"), "elsewhere.test",
             "end of the chain kept")
        R.check("REFUSED" in res["x.lame.test"]["delegation"].get("error", ""),
                "lame error names REFUSED: %r" % res["x.lame.test"]["delegation"])
        R.check("loop" in res["loop.example.test"]["delegation"].get("error", ""),
                "loop error says loop: %r" % res["loop.example.test"]["delegation"])
        R.eq(res["www.sub.example.test"]["delegation"]["zone"], "sub.example.test", "deeper cut")
        R.eq(res["*.wild.example.test"]["delegation"]["name"], "_acme-challenge.wild.example.test",
             "wildcard challenge name")

        live = {"live.example.test": "live", "ipl.example.test": "live",
                "notlive.example.test": "not_live", "nx.example.test": "not_live",
                "ok.example.test": "not_live"}
        for h, w in live.items():
            R.eq(res[h]["liveness"]["result"], w, "liveness of " + h)
        R.check("cdn.test" in res["live.example.test"]["liveness"]["detail"], "live detail")
        R.check("198.51.100.7" in res["notlive.example.test"]["liveness"]["detail"],
                "not-live detail names the address")

        # Propagation of a published TXT: ready only when every server has it.
        def txt_check(name, value):
            p = subprocess.run([TXT_DRIVER, RES, ZONE, name, value], capture_output=True,
                               text=True)
            return json.loads(p.stdout)
        t = txt_check("ok.example.test." + ZONE, "digest-1")
        R.eq((t["ready"], t["nservers"], t["nready"]), (False, 2, 1), "TXT on one server of two")
        k2.set_zone(ZONE, vzone + ['ok.example.test TXT "digest-1"',
                                   'ok.example.test TXT "digest-2"'])
        t = txt_check("ok.example.test." + ZONE, "digest-1")
        R.eq((t["ready"], t["nready"]), (True, 2), "TXT on both servers")
        t = txt_check("ok.example.test." + ZONE, "digest-2")
        R.eq(t["ready"], False, "second value only on one server")
        t = txt_check("nothing.example.test." + ZONE, "digest-1")
        R.eq((t["ready"], t["nready"], t["error"]), (False, 0, ""), "NXDOMAIN is not ready")

        # A cached parent zone whose servers refer us down: the deeper cut is found.
        rc, res, err = run_check(env, "ok.example.test", "www.sub.example.test", concurrency=1)
        R.eq(res["www.sub.example.test"]["delegation"]["result"], "confirmed",
             "deeper cut after a referral")
        R.eq(res["www.sub.example.test"]["delegation"]["zone"], "sub.example.test",
             "zone after a referral")

        # Real zone changes: the lagging server catches up; a CNAME is removed.
        k2.set_zone("example.test", example_records())
        recs = [r for r in example_records() if not r.startswith("_acme-challenge.ok ")]
        k1.set_zone("example.test", recs)
        k2.set_zone("example.test", recs)
        time.sleep(1.2)  # unbound's cache-max-ttl
        rc, res, err = run_check(env, "prop.example.test", "ok.example.test")
        R.eq(res["prop.example.test"]["delegation"]["result"], "confirmed", "prop caught up")
        R.eq(res["ok.example.test"]["delegation"]["result"], "missing", "ok removed")

        # Results are recorded in the store.
        p = subprocess.run([CF, "status", "--json", "prop.example.test"], env=env,
                           capture_output=True, text=True)
        st = json.loads(p.stdout)
        R.eq(st["delegation"]["result"], "confirmed", "stored delegation result")
        R.check(st["delegation"]["first_ok"] is not None, "first_ok stored")
        p = subprocess.run([CF, "status", "--json", "ok.example.test"], env=env,
                           capture_output=True, text=True)
        st = json.loads(p.stdout)
        R.eq(st["delegation"]["result"], "missing", "stored missing")
        R.check(st["delegation"]["last_ok"] is not None, "last_ok kept from before")

        # The second server stops answering: an error, not a confirmation.
        k2.stop()
        rc, res, err = run_check(env, "prop.example.test")
        R.eq(res["prop.example.test"]["delegation"]["result"], "error", "server down")
    finally:
        dnsenv._stop_all()
        wd.cleanup()
    return R.finish()


if __name__ == "__main__":
    sys.exit(main())
