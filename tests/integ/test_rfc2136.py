"""The RFC 2136 provisioner against a real primary: knotd with a TSIG key.

knotd serves the validation zone acme.cdn.test on 127.0.10.31:53 and lets
key cf-update update it. rfc2136_driver (tests/integ/rfc2136_driver.c) runs
add/del changes through engine/dns/rfc2136.c on one loop; kdig checks what
knot serves afterwards.

    test_rfc2136.py PATH_TO_CERTFLEET PATH_TO_RFC2136_DRIVER
"""
import base64
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dnsenv  # noqa: E402

DRIVER = sys.argv[2]
ADDR = "127.0.10.31"
SERVER = ADDR + ":53"
ZONE = "acme.cdn.test"
KEY = "cf-update"
R = dnsenv.Results()


def write_key(path, name, secret):
    """A BIND (tsig-keygen) key file, mode 0600."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write('key "%s" {\n\talgorithm hmac-sha256;\n\tsecret "%s";\n};\n' % (name, secret))


def drive(keyfile, ops, zone=ZONE, extra=(), env=None):
    """Runs the driver on ops [(op, name, value)]; returns (rc, results, stats, stderr, secs)."""
    text = "".join("%s %s %s\n" % o for o in ops)
    t0 = time.time()
    p = subprocess.run([DRIVER] + list(extra) + [SERVER, zone, keyfile, "-"], input=text,
                       capture_output=True, text=True, env=env, timeout=120)
    secs = time.time() - t0
    results, stats = [], {}
    for line in p.stdout.splitlines():
        if line.startswith("stats "):
            stats = {k: int(v) for k, v in (kv.split("=") for kv in line.split()[1:])}
            continue
        parts = line.split(" ", 5)
        if parts[1] == "ok":
            results.append(("ok", parts[2], parts[3], parts[4], None, None))
        else:
            rest = parts[5].split(" ", 1)
            results.append(("fail", parts[2], parts[3], parts[4], rest[0],
                            rest[1] if len(rest) > 1 else ""))
    return p.returncode, results, stats, p.stderr, secs


def txt_values(names):
    """The TXT values knot serves at each name (one kdig run for all)."""
    out = {}
    # kdig takes many queries in one run; +short prints each answer's strings.
    chunk = 100
    for i in range(0, len(names), chunk):
        part = names[i:i + chunk]
        argv = ["kdig", "-p", "53", "@" + ADDR, "+norec", "+timeout=2", "+retry=1",
                "+noall", "+answer"]
        for n in part:
            argv += [n, "TXT"]
        r = subprocess.run(argv, capture_output=True, text=True)
        for n in part:
            out.setdefault(n, set())
        for line in r.stdout.splitlines():
            f = line.split(None, 4)
            if len(f) == 5 and f[3] == "TXT":
                out.setdefault(f[0].rstrip(".").lower(), set()).add(f[4].strip('"'))
    return out


def serial():
    s = dnsenv.dig(ADDR, 53, ZONE, "SOA").split()
    return int(s[2]) if len(s) > 2 else -1


def main():
    wd = dnsenv.Workdir("/tmp/cf-integ-rfc2136-")
    secret = base64.b64encode(os.urandom(32)).decode()
    keyfile = os.path.join(wd.path, "tsig.key")
    knot = None
    try:
        knot = dnsenv.Knot(wd.path, "knot", ADDR, zones={
            ZONE: ["@ NS ns1", "ns1 A " + ADDR]}, tsig=(KEY, secret))
        write_key(keyfile, KEY, secret)
        R.eq(os.stat(keyfile).st_mode & 0o777, 0o600, "key file mode")

        # 500 adds in one run: batched (200 a message, over TCP), all served.
        names = ["h%d.example-%d.com.%s" % (i, i % 7, ZONE) for i in range(500)]
        values = ["digest-%d-%s" % (i, base64.urlsafe_b64encode(os.urandom(24)).decode())
                  for i in range(500)]
        s0 = serial()
        rc, res, st, err, secs = drive(keyfile, [("add", n, v) for n, v in zip(names, values)])
        R.eq(rc, 0, "500 adds exit status (%s)" % err.strip()[-300:])
        R.eq(len(res), 500, "one result line per change")
        R.eq(sum(1 for r in res if r[0] == "ok"), 500,
             "500 adds ok (first failure: %r)" % next((r for r in res if r[0] != "ok"), None))
        R.check(1 <= st.get("messages", 99) <= 5, "500 adds in <= 5 messages: %r" % st)
        R.check(st.get("tcp_exchanges", 0) >= 1, "large batches over TCP: %r" % st)
        R.eq(st.get("retransmits"), 0, "no retransmissions")
        s1 = serial()
        R.check(1 <= s1 - s0 <= st.get("messages", 0),
                "one zone change per message at most: serial %d -> %d" % (s0, s1))
        served = txt_values(names)
        R.eq(sum(1 for n, v in zip(names, values) if served.get(n) == {v}), 500,
             "all 500 TXT values served by knot")
        print("500 adds: %r in %.2fs" % (st, secs), flush=True)

        # Two values at one name (a hostname and its wildcard) coexist; deleting one keeps the other.
        both = "shared.example.com." + ZONE
        rc, res, st, err, _ = drive(keyfile, [("add", both, "apex-digest"),
                                              ("add", both, "wild-digest")])
        R.eq([r[0] for r in res], ["ok", "ok"], "two values at one name: %r" % res)
        R.eq(st.get("messages"), 1, "two adds, one message")
        R.eq(st.get("tcp_exchanges"), 0, "a small message over UDP")
        R.eq(txt_values([both]).get(both), {"apex-digest", "wild-digest"}, "both values served")
        rc, res, st, err, _ = drive(keyfile, [("del", both, "apex-digest")])
        R.eq([r[0] for r in res], ["ok"], "delete one value: %r" % res)
        R.eq(txt_values([both]).get(both), {"wild-digest"}, "the other value stays")
        # Deleting a value that is not there is not an error (RFC 2136 §3.4.2.4).
        rc, res, st, err, _ = drive(keyfile, [("del", both, "never-added")])
        R.eq([r[0] for r in res], ["ok"], "deleting an absent value")

        # Delete the 500 again, in one run.
        rc, res, st, err, _ = drive(keyfile, [("del", n, v) for n, v in zip(names, values)])
        R.eq(sum(1 for r in res if r[0] == "ok"), 500, "500 deletes ok")
        served = txt_values(names[:50])
        R.eq(sum(1 for n in names[:50] if served.get(n)), 0, "deleted values are gone")

        # Debug logs name the server and the outcome, never the secret.
        env = dict(os.environ, CERTFLEET_LOG="debug")
        rc, res, st, err, _ = drive(keyfile, [("add", "log." + ZONE, "v")], env=env)
        R.eq(rc, 0, "debug run")
        R.check('"event":"rfc2136_update"' in err, "message outcome logged: %s" % err[-300:])
        R.check(secret not in err and secret not in "".join(map(str, res)),
                "the secret is never logged")

        # A wrong secret: NOTAUTH with TSIG BADSIG, naming the server.
        bad = os.path.join(wd.path, "bad.key")
        write_key(bad, KEY, base64.b64encode(os.urandom(32)).decode())
        rc, res, st, err, _ = drive(bad, [("add", "x." + ZONE, "v")])
        R.eq(rc, 1, "wrong secret: exit 1")
        r = res[0] if res else ("?",) * 6
        R.eq(r[0], "fail", "wrong secret fails")
        R.eq(r[4], "CF_EDNS_UPDATE", "wrong secret: status (%s)" % r[5])
        R.check("NOTAUTH" in (r[5] or "") and "BADSIG" in (r[5] or "") and SERVER in (r[5] or ""),
                "wrong secret detail: %r" % r[5])
        R.eq(txt_values(["x." + ZONE]).get("x." + ZONE), set(), "nothing added with a bad key")
        print("wrong secret: %s %s" % (r[4], r[5]), flush=True)

        # A key knot does not know: NOTAUTH with TSIG BADKEY.
        unknown = os.path.join(wd.path, "unknown.key")
        write_key(unknown, "stranger", secret)
        rc, res, st, err, _ = drive(unknown, [("add", "x." + ZONE, "v")])
        r = res[0] if res else ("?",) * 6
        R.check(r[0] == "fail" and "NOTAUTH" in r[5] and "BADKEY" in r[5],
                "unknown key detail: %r" % (r,))
        print("unknown key: %s %s" % (r[4], r[5]), flush=True)

        # A zone knot does not serve: NOTAUTH or REFUSED, clearly.
        rc, res, st, err, _ = drive(keyfile, [("add", "x.other.test", "v")], zone="other.test")
        r = res[0] if res else ("?",) * 6
        R.check(r[0] == "fail" and r[4] in ("CF_EDNS_UPDATE", "CF_EDNS_REFUSED") and
                re.search(r"(NOTAUTH|REFUSED)", r[5] or "") and "other.test" in r[5] and
                SERVER in r[5], "zone not served: %r" % (r,))
        print("zone not served: %s %s" % (r[4], r[5]), flush=True)

        # A stopped server: a timeout within tries x timeout (plus slack).
        knot.stop()
        rc, res, st, err, secs = drive(keyfile, [("add", "t." + ZONE, "v")],
                                       extra=["--timeout", "500", "--tries", "2"])
        r = res[0] if res else ("?",) * 6
        R.eq(r[4], "CF_ETIMEOUT", "stopped server: timeout (%r)" % (r,))
        R.check("no answer from " + SERVER in (r[5] or ""), "timeout detail: %r" % r[5])
        R.check(0.9 <= secs < 3.0, "timeout within the bound: %.2fs" % secs)
        R.eq(st.get("udp_sends"), 2, "two tries sent")
        print("stopped server: %s (%.2fs)" % (r[5], secs), flush=True)
    finally:
        if knot:
            knot.stop()
        wd.cleanup()
    return R.finish()


if __name__ == "__main__":
    sys.exit(main())
