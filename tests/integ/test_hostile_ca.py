"""`certfleet run` against a hostile CA: the bench's mock CA (certfleet-mockca)
spoiling its answers, one mode per host (a host named hx-MODE.<zone> gets
MODE, see bench/mockca/README.md "Hostile answers").

The DNS world of acmeenv (knot, unbound; the validation zone served by the
run itself on its --dns-listen) without pebble: the mock runs with
--validate none, but certfleet still checks each host's delegation and its
own TXT record's propagation. One run takes every host at once, with
--order-deadline 20s, and the test proves, for each mode:

- oversized JSON (5 MiB, past the body cap; 300 KiB, past the JSON cap),
  malformed JSON (cut in half, members of the wrong types, 1,000
  authorizations, arrays nested 100,000 deep), JSON and certificates sent as
  text/html, a certificate for other names or for another key, a broken
  chain (a CERTIFICATE block that is not DER, no PEM at all, an empty body,
  a leaf followed by a certificate that did not issue it, 5 MiB), redirects
  to http:// on the order and the certificate URLs, an order that stays
  processing and an authorization that stays pending for ever:
  - the host fails, and its last error names the host, the URL of the
    answer refused and what was wrong with it;
  - nothing is stored for it: `status --json` shows no serial and `export`
    fails;
  - the mock did send that hostile answer (its stats count it);
- the run ends in bounded time (the endless polls end at the order
  deadline), and the well-behaved hosts of the same run get certificates
  that verify against the mock's root and carry their names and keys.

A second run (test clock: when the hosts are due again) resumes or starts
their orders afresh and refuses every answer again, still storing nothing;
the good hosts keep their certificates. Last, a second mock with --hostile
ctype-json spoils an order whatever its name, and an unknown mode is a
usage error.

    test_hostile_ca.py PATH_TO_CERTFLEET PATH_TO_MOCKCA
"""
import calendar
import json
import os
import signal
import subprocess
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import acmeenv  # noqa: E402
import dnsenv  # noqa: E402

CF, MOCKCA = sys.argv[1], sys.argv[2]
R = dnsenv.Results()
os.environ["CERTFLEET_TEST_CLOCK"] = "1"  # run --now, for the second run
# The mock follows the world's net (CF_TEST_NET); .70 is the mock CA's address in every test.
MOCK_ADDR, MOCK_PORT = acmeenv.NET + "70", 14443
BASE = "https://%s:%d" % (MOCK_ADDR, MOCK_PORT)
ORDER_DEADLINE_S = 20
LOGS = []

# mode -> (the URL the refused answer came from, words the error must hold). A URL
# given as a tuple: any of them (the client may finalize without reading the order).
ORDER_OR_FINALIZE = (BASE + "/acme/order/", BASE + "/acme/finalize/")
MODES = {
    "huge-order": (BASE + "/acme/new-order", ["larger than"]),
    "big-order": (BASE + "/acme/new-order", ["larger than 256 KiB"]),
    "many-authz": (BASE + "/acme/new-order", ["authorizations"]),
    "trunc-order": (BASE + "/acme/new-order", ["not valid JSON"]),
    "types-order": (BASE + "/acme/new-order", ["order"]),
    "deep-order": (BASE + "/acme/new-order", ["not valid JSON"]),
    "trunc-authz": (BASE + "/acme/authz/", ["not valid JSON"]),
    "types-authz": (BASE + "/acme/authz/", ["token"]),
    "ctype-json": (BASE + "/acme/new-order", ["text/html"]),
    "ctype-cert": (BASE + "/acme/cert/", ["text/html"]),
    "other-names": (BASE + "/acme/cert/", ["does not name the host"]),
    "other-key": (BASE + "/acme/cert/", ["not for our key"]),
    "garbage-pem": (BASE + "/acme/cert/", ["does not parse"]),
    "not-pem": (BASE + "/acme/cert/", ["does not parse"]),
    "empty-chain": (BASE + "/acme/cert/", ["0 bytes"]),
    "bad-issuer": (BASE + "/acme/cert/", ["not issued by the next"]),
    "huge-cert": (BASE + "/acme/cert/", ["larger than"]),
    "redirect-order": (ORDER_OR_FINALIZE, ["307", "http://"]),
    "redirect-cert": (BASE + "/acme/cert/", ["301", "http://"]),
    "processing-forever": (BASE + "/acme/order/", ["deadline", "poll_order"]),
    "pending-forever": (BASE + "/acme/authz/", ["deadline", "poll_authz"]),
}
HOSTILE = {"hx-%s.%s" % (m, "example.test" if i % 2 == 0 else "shop.test"): m
           for i, m in enumerate(sorted(MODES))}
GOOD = ["good1.example.test", "good2.shop.test", "good3.example.test"]


class MockCA:
    """certfleet-mockca on MOCK_ADDR:port, started and stopped by PID."""

    def __init__(self, workdir, *flags, port=MOCK_PORT, name="mock"):
        self.ca_file = os.path.join(workdir, name + "-ca.pem")
        self.stats_file = os.path.join(workdir, name + "-stats.json")
        self.log = os.path.join(workdir, name + ".log")
        self.directory_url = "https://%s:%d/dir" % (MOCK_ADDR, port)
        argv = [MOCKCA, "--listen", "%s:%d" % (MOCK_ADDR, port), "--ca-out", self.ca_file,
                "--stats-json", self.stats_file, "--validate", "none", "--trust-jws"] + list(flags)
        self.proc = dnsenv._start(argv, open(self.log, "a"))
        t0 = time.time()
        while time.time() - t0 < 10:
            if self.proc.poll() is not None:
                raise RuntimeError("certfleet-mockca exited %s:\n%s" % (self.proc.returncode,
                                                                         self.log_tail()))
            with open(self.log, errors="replace") as f:
                if '"listening"' in f.read():
                    return
            time.sleep(0.05)
        raise RuntimeError("certfleet-mockca does not listen:\n" + self.log_tail())

    def log_tail(self, n=3000):
        try:
            with open(self.log, errors="replace") as f:
                return f.read()[-n:]
        except OSError:
            return ""

    def stats(self):
        """The stats file, written on SIGUSR1."""
        if os.path.exists(self.stats_file):
            os.unlink(self.stats_file)
        os.kill(self.proc.pid, signal.SIGUSR1)
        t0 = time.time()
        while time.time() - t0 < 5:
            try:
                with open(self.stats_file) as f:
                    return json.load(f)
            except (OSError, ValueError):
                time.sleep(0.05)
        raise RuntimeError("no stats file after SIGUSR1")

    def stop(self):
        if self.proc is not None:
            dnsenv.stop(self.proc)
            R.eq(self.proc.returncode, 0, "the mock CA exits 0 on SIGTERM")
            self.proc = None


def cf(state, *args, timeout=300, inp=None):
    p = subprocess.run([CF, "--state", state] + list(args), capture_output=True, text=True,
                       timeout=timeout, input=inp)
    LOGS.append(p.stderr)
    return p


def status(state, host):
    p = cf(state, "status", "--json", host)
    R.eq(p.returncode, 0, "status --json %s" % host)
    try:
        return json.loads(p.stdout)
    except ValueError:
        R.check(False, "status --json %s parses: %r" % (host, p.stdout[:200]))
        return {}


def check_good(mock, state, host):
    s = status(state, host)
    R.eq(s.get("state"), "active", "%s: active (last error %s)" % (host, s.get("last_error")))
    R.check(s.get("serial"), "%s: has a serial" % host)
    out = os.path.join(state, "export-" + host)
    p = cf(state, "export", host, "--out", out)
    R.eq(p.returncode, 0, "export %s: %s" % (host, p.stderr[-500:]))
    chain, key = os.path.join(out, host + ".pem"), os.path.join(out, host + ".key")
    if not os.path.exists(chain):
        R.check(False, "%s: exported chain" % host)
        return
    v = subprocess.run(["openssl", "verify", "-CAfile", mock.ca_file, "-untrusted", chain, chain],
                       capture_output=True, text=True)
    R.eq(v.returncode, 0, "%s: chain verifies against the mock's root (%s%s)" % (
        host, v.stdout.strip(), v.stderr.strip()))
    t = subprocess.run(["openssl", "x509", "-in", chain, "-noout", "-ext", "subjectAltName"],
                       capture_output=True, text=True).stdout
    R.check("DNS:" + host in t, "%s: the leaf names it (%s)" % (host, t.strip()))
    a = subprocess.run(["openssl", "x509", "-in", chain, "-noout", "-pubkey"],
                       capture_output=True, text=True).stdout
    b = subprocess.run(["openssl", "pkey", "-in", key, "-pubout"], capture_output=True,
                       text=True).stdout
    R.check(a and a == b, "%s: the exported key is the certificate's" % host)


def check_hostile(state, host, mode, stats, failures):
    url, words = MODES[mode]
    s = status(state, host)
    err = s.get("last_error") or ""
    print("%-40s %-10s %s" % (host, s.get("state"), err), flush=True)
    R.check(s.get("state") != "active", "%s: not active (%s)" % (host, s.get("state")))
    R.eq(s.get("failures"), failures, "%s: failures counted" % host)
    R.eq(s.get("serial"), None, "%s: no serial stored" % host)
    R.check(host in err, "%s: the error names the host: %r" % (host, err))
    urls = url if isinstance(url, tuple) else (url,)
    R.check(any(u in err for u in urls), "%s: the error names the URL %s: %r" % (host, url, err))
    for w in words:
        R.check(w in err, "%s: the error says %r: %r" % (host, w, err))
    out = os.path.join(state, "export-" + host)
    p = cf(state, "export", host, "--out", out)
    R.check(p.returncode != 0, "%s: export fails (exit %d)" % (host, p.returncode))
    R.check(not os.path.exists(os.path.join(out, host + ".pem")), "%s: no chain exported" % host)
    R.check(stats.get("hostile", {}).get(mode, 0) > 0,
            "%s: the mock sent its %s answer (%s)" % (host, mode, stats.get("hostile", {})))


def run(state, what, deadline_s, *extra):
    """One `certfleet run` with an order deadline; checks it ends in bounded time."""
    t0 = time.time()
    p = cf(state, "run", "--order-deadline", "%ds" % deadline_s, "--deadline", "120s", *extra,
           timeout=200)
    took = time.time() - t0
    print("--- run %s: exit %d in %.1f s\n%s" % (what, p.returncode, took, p.stdout), flush=True)
    R.eq(p.returncode, 1, "run %s: exit status 1, hosts failed (stderr %s)" % (
        what, p.stderr[-2000:]))
    # Every order ends by its deadline: allow for the checks before it and a grace.
    R.check(took < deadline_s + 25, "run %s ends in bounded time (%.1f s)" % (what, took))
    return p


def iso(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def unix(s):
    return calendar.timegm(time.strptime(s, "%Y-%m-%dT%H:%M:%SZ"))


def scenario(world, mock, state):
    hosts = sorted(HOSTILE) + GOOD
    world.set_hosts(hosts)
    p = cf(state, "import", "-", inp="".join(h + "\n" for h in hosts))
    R.eq(p.returncode, 0, "import: " + p.stderr[-500:])
    run(state, "1", ORDER_DEADLINE_S)
    stats = mock.stats()
    print("mock: hostile %s, certs issued %s" % (json.dumps(stats.get("hostile")),
                                                 stats.get("certs_issued")), flush=True)
    for h in GOOD:
        check_good(mock, state, h)
    for h, m in sorted(HOSTILE.items()):
        check_hostile(state, h, m, stats, 1)
    serials = {h: status(state, h).get("serial") for h in GOOD}

    # When the hosts are due again (the test clock), a second run resumes or
    # starts their orders afresh: refused again, still nothing stored.
    due = [status(state, h).get("next_action") for h in HOSTILE]
    R.check(all(due), "every hostile host has a next action: %s" % due)
    t2 = max([unix(d) for d in due if d] + [int(time.time())]) + 60
    run(state, "2", ORDER_DEADLINE_S // 2, "--now", iso(t2))
    stats = mock.stats()
    for h, m in sorted(HOSTILE.items()):
        check_hostile(state, h, m, stats, 2)
    for h in GOOD:
        R.eq(status(state, h).get("serial"), serials[h], "%s: its certificate is kept" % h)
    flag_mode(world, state)
    p = cf(state, "status", "--json")
    try:
        st = json.loads(p.stdout)
    except ValueError:
        st = {}
    R.eq(st.get("states", {}).get("active"), len(GOOD), "only the good hosts are active")
    R.eq(st.get("states", {}).get("issuing", 0), 0, "no host left issuing")


def flag_mode(world, state):
    """--hostile MODE spoils every order, whatever its name; a bad mode is a usage error."""
    p = subprocess.run([MOCKCA, "--hostile", "no-such-mode"], capture_output=True, text=True)
    R.eq(p.returncode, 2, "--hostile no-such-mode: exit 2")
    R.check("unknown --hostile mode" in p.stderr, "--hostile no-such-mode: says why")
    wd = os.path.dirname(state)
    state2 = os.path.join(wd, "state-flag")
    mock = MockCA(wd, "--hostile", "ctype-json", port=MOCK_PORT + 1, name="mock-flag")
    try:
        world.certfleet_init(CF, state2, ["--directory", mock.directory_url,
                                          "--ca-bundle", mock.ca_file])
        host = GOOD[0]
        p = cf(state2, "import", "-", inp=host + "\n")
        R.eq(p.returncode, 0, "import (flag): " + p.stderr[-500:])
        run(state2, "with --hostile ctype-json", ORDER_DEADLINE_S)
        s = status(state2, host)
        err = s.get("last_error") or ""
        print("--hostile ctype-json: %s %s" % (host, err), flush=True)
        R.eq(s.get("serial"), None, "--hostile: nothing stored for %s" % host)
        want = "https://%s:%d/acme/new-order" % (MOCK_ADDR, MOCK_PORT + 1)
        R.check(host in err and want in err and "text/html" in err,
                "--hostile ctype-json: %s refused at %s: %r" % (host, want, err))
        R.eq(mock.stats().get("hostile", {}).get("ctype-json"), 1, "--hostile: one spoiled answer")
    finally:
        mock.stop()


def main():
    wd = dnsenv.Workdir("/tmp/cf-integ-hostile-")
    state = os.path.join(wd.path, "state")
    world = mock = None
    try:
        world = acmeenv.AcmeWorld(wd.path, start_pebble=False)
        mock = MockCA(wd.path)
        world.certfleet_init(CF, state, ["--directory", mock.directory_url,
                                         "--ca-bundle", mock.ca_file])
        scenario(world, mock, state)
        R.check(not any("PRIVATE KEY" in x for x in LOGS), "no private key in any log")
    except Exception:
        traceback.print_exc()
        R.check(False, "the test stopped at an exception")
    finally:
        if R.failed and mock is not None:
            print("--- mock CA log tail:\n" + mock.log_tail(), flush=True)
        if R.failed and LOGS:
            print("--- last certfleet stderr:\n" + "\n".join(LOGS[-3:])[-4000:], flush=True)
        if mock is not None:
            mock.stop()
        if world is not None:
            world.stop()
        dnsenv._stop_all()
        if not R.failed:
            wd.cleanup()
        else:
            print("kept for a look: " + wd.path, flush=True)
    return R.finish()


if __name__ == "__main__":
    sys.exit(main())
