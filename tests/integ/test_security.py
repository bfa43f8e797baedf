"""Security (issue: reliability and security): file modes, secrets in logs and
argv, TLS verification, and the embedded DNS server as an open resolver,
against pebble (requiring External Account Binding) + knot + unbound.

- Two full runs: one publishing through a knot primary with RFC 2136 + TSIG,
  one serving the validation zone itself; every certfleet command runs with
  CERTFLEET_LOG=debug, and `ps -eo pid,args` is sampled every 20 ms while the
  runs (and serve-dns) go. No log line, no output and no argv holds the
  account key, a certificate key (PEM, or any line of its base64 body), the
  TSIG secret or the EAB MAC key; "PRIVATE KEY" appears in no log.
- Modes: each state dir 0700; config.json, store.mdb and its lock 0600; an
  exported key 0600. No file beside the store (config.json, metrics.prom)
  holds a secret: config.json names the secret files only.
- TLS: a state dir whose --ca-bundle is another CA, and one with no bundle
  (the system's): `run` exits 3 with a TLS/certificate error naming the
  directory URL, pebble sees no newAccount, and no account URL is stored.
- The embedded DNS server (serve-dns): recursive questions for names outside
  the validation zone (A, ANY with EDNS 4096, the root's NS, the parent zone,
  class CH) get REFUSED with empty sections (only our OPT record), no larger
  than the query (plus the OPT record), over UDP and TCP; answers inside the
  zone stay within 512 octets without EDNS and 1232 with it.

    test_security.py PATH_TO_CERTFLEET
"""
import base64
import json
import os
import socket
import stat
import struct
import subprocess
import sys
import threading
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import acmeenv  # noqa: E402
import dnsenv  # noqa: E402

CF = sys.argv[1]
R = dnsenv.Results()
LOGS = []  # (what, text) of every certfleet command's stdout and stderr
TSIG_NAME = "cf-sec-update"
TSIG_SECRET = base64.b64encode(os.urandom(32)).decode()
KIDS = {k: base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("=")
        for k in ("kid-rfc2136", "kid-embedded", "kid-wrongca", "kid-systemca")}
ENV = dict(os.environ, CERTFLEET_LOG="debug")


def cf(state, *args, inp=None, timeout=180):
    p = subprocess.run([CF, "--state", state] + list(args), capture_output=True, text=True,
                       timeout=timeout, input=inp, env=ENV)
    LOGS.append(("certfleet %s" % " ".join(args[:2]), p.stdout + p.stderr))
    return p


class ArgvSampler:
    """Samples `ps -eo pid=,args=` for certfleet processes every 20 ms."""

    def __init__(self):
        self.seen = set()
        self.samples = 0
        self.stop_ev = threading.Event()
        self.t = threading.Thread(target=self._loop, daemon=True)
        self.t.start()

    def _loop(self):
        while not self.stop_ev.is_set():
            out = subprocess.run(["ps", "-eo", "pid=,args="], capture_output=True,
                                 text=True).stdout
            for line in out.splitlines():
                f = line.split(None, 1)
                if len(f) == 2 and f[1].startswith(CF + " "):
                    self.seen.add(f[1])
                    self.samples += 1
            time.sleep(0.02)

    def stop(self):
        self.stop_ev.set()
        self.t.join(5)


def mdb_db(path, db):
    """{key: value} (bytes) of one database of an LMDB file, through mdb_dump -p."""
    out = subprocess.run(["mdb_dump", "-n", "-p", "-s", db, path], capture_output=True,
                         text=True).stdout.splitlines()
    if "HEADER=END" not in out:
        return {}
    data = [line for line in out[out.index("HEADER=END") + 1:] if line.startswith(" ")]

    def dec(s):
        b, i = bytearray(), 1
        while i < len(s):
            if s[i] == "\\" and s[i + 1] == "\\":
                b += b"\\"
                i += 2
            elif s[i] == "\\":
                b.append(int(s[i + 1:i + 3], 16))
                i += 3
            else:
                b += s[i].encode()
                i += 1
        return bytes(b)
    return {dec(k): dec(v) for k, v in zip(data[0::2], data[1::2])}


def needles(secret):
    """What of a secret must never show: the whole, and every line of a PEM body."""
    secret = secret.strip()
    out = {secret}
    body = [line for line in secret.splitlines() if line and not line.startswith("-----")]
    out.update(line for line in body if len(line) >= 16)
    if body:
        out.add("".join(body))
    return out


def mode(path):
    return oct(stat.S_IMODE(os.stat(path).st_mode))


def check_modes(state, what):
    R.eq(mode(state), "0o700", "%s: the state dir is 0700" % what)
    for name in ("config.json", "store.mdb", "store.mdb-lock"):
        p = os.path.join(state, name)
        R.check(os.path.exists(p), "%s: %s exists" % (what, name))
        if os.path.exists(p):
            R.eq(mode(p), "0o600", "%s: %s is 0600" % (what, name))
    for name in os.listdir(state):
        p = os.path.join(state, name)
        R.check(not (os.stat(p).st_mode & 0o022), "%s: %s is writable by its owner only (%s)" % (
            what, name, mode(p)))


def import_hosts(world, state, hosts):
    world.set_hosts(hosts)
    p = cf(state, "import", "-", inp="".join(h + "\n" for h in hosts))
    R.eq(p.returncode, 0, "import: " + p.stderr[-300:])


def full_run(state, what):
    sampler = ArgvSampler()
    try:
        p = cf(state, "run", "--stats-json", os.path.join(state, "stats.json"))
    finally:
        sampler.stop()
    print("--- %s run: exit %d\n%s" % (what, p.returncode, p.stdout), flush=True)
    R.eq(p.returncode, 0, "%s: run exit 0 (%s)" % (what, p.stderr[-1200:]))
    R.check(any(" run" in a for a in sampler.seen), "%s: the running certfleet was sampled by ps "
            "(%d samples: %s)" % (what, sampler.samples, sorted(sampler.seen)[:3]))
    return sampler.seen


def secrets_of(state, hosts):
    """Needles for the account key and every certificate key of state (exported 0600)."""
    out = {}
    acct = mdb_db(os.path.join(state, "store.mdb"), "account")
    key = acct.get(b"key", b"").decode(errors="replace")
    R.check("PRIVATE KEY" in key, "%s: the account key is in the store" % state)
    out["account key of " + state] = needles(key)
    for h in hosts:
        d = os.path.join(state, "export")
        p = cf(state, "export", h, "--out", d)
        R.eq(p.returncode, 0, "export %s: %s" % (h, p.stderr[-300:]))
        kp = os.path.join(d, (h.replace("*", "_wildcard", 1)) + ".key")
        if not os.path.exists(kp):
            continue
        R.eq(mode(kp), "0o600", "the exported key of %s is 0600" % h)
        k = open(kp).read()
        R.check("PRIVATE KEY" in k, "%s: an exported key" % h)
        out["certificate key of " + h] = needles(k)
    return out


# ---- DNS ---------------------------------------------------------------------

def wire(name):
    out = b""
    for label in name.rstrip(".").split("."):
        if label:
            out += bytes([len(label)]) + label.encode()
    return out + b"\0"


def query(name, qtype, rd=True, edns=None, qclass=1, qid=0x4a4b):
    q = struct.pack(">HHHHHH", qid, 0x0100 if rd else 0, 1, 0, 0, 1 if edns else 0)
    q += wire(name) + struct.pack(">HH", qtype, qclass)
    if edns:
        q += b"\x00" + struct.pack(">HHIH", 41, edns, 0, 0)
    return q


def ask_udp(addr, q):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(2)
    try:
        s.sendto(q, (addr, 53))
        return s.recv(65535)
    except socket.timeout:
        return b""
    finally:
        s.close()


def ask_tcp(addr, q):
    s = socket.create_connection((addr, 53), timeout=2)
    try:
        s.sendall(struct.pack(">H", len(q)) + q)
        n = struct.unpack(">H", s.recv(2))[0]
        b = b""
        while len(b) < n:
            c = s.recv(n - len(b))
            if not c:
                break
            b += c
        return b
    finally:
        s.close()


def header(resp):
    qid, flags, qd, an, ns, ar = struct.unpack(">HHHHHH", resp[:12])
    return {"id": qid, "rcode": flags & 0xF, "tc": bool(flags & 0x0200), "aa": bool(flags & 0x0400),
            "ra": bool(flags & 0x0080), "qd": qd, "an": an, "ns": ns, "ar": ar}


def dns_checks(addr, zone):
    cases = [("www.example.com", 1, None, 1), ("example.com", 255, 4096, 1), (".", 2, 4096, 1),
             (acmeenv.CDN_ZONE, 255, 4096, 1), ("elsewhere.test", 16, None, 1),
             (zone, 6, 4096, 3)]
    for name, qtype, edns, qclass in cases:
        what = "%s type %d class %d%s" % (name, qtype, qclass, " EDNS %d" % edns if edns else "")
        q = query(name, qtype, edns=edns, qclass=qclass)
        for transport, ask in (("udp", ask_udp), ("tcp", ask_tcp)):
            r = ask(addr, q)
            R.check(len(r) >= 12, "%s over %s: answered" % (what, transport))
            if len(r) < 12:
                continue
            h = header(r)
            R.eq((h["id"], h["rcode"], h["an"], h["ns"]), (0x4a4b, 5, 0, 0),
                 "%s over %s: REFUSED with no answer or authority" % (what, transport))
            R.check(h["ar"] <= (1 if edns else 0), "%s over %s: no additional data but OPT (%d)"
                    % (what, transport, h["ar"]))
            R.check(not h["ra"], "%s over %s: recursion not offered" % (what, transport))
            R.check(len(r) <= len(q) + 11, "%s over %s: %d octets answer a %d-octet query" % (
                what, transport, len(r), len(q)))
    # Inside the zone: answers stay small (no amplification through the zone either).
    for qtype in (255, 6, 2, 16):
        for edns, limit in ((None, 512), (4096, 1232)):
            r = ask_udp(addr, query(zone, qtype, edns=edns))
            R.check(0 < len(r) <= limit, "%s type %d%s: %d octets, within %d" % (
                zone, qtype, " EDNS" if edns else "", len(r), limit))


# ---- the scenario -----------------------------------------------------------------

def write_secret_file(path, text):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    return path


def eab_args(wd, kid):
    return ["--eab-kid", kid, "--eab-hmac-file",
            write_secret_file(os.path.join(wd, kid + ".mac"), KIDS[kid] + "\n")]


def scenario(world, wd):
    secrets = {"TSIG secret": {TSIG_SECRET}}
    secrets.update({"EAB MAC key " + k: {v} for k, v in KIDS.items()})
    argvs = set()
    tsig_file = write_secret_file(os.path.join(wd, "tsig.key"), 'key "%s" {\n\talgorithm '
                                  'hmac-sha256;\n\tsecret "%s";\n};\n' % (TSIG_NAME, TSIG_SECRET))

    # 1. RFC 2136 with TSIG to a knot primary on the validation zone's address.
    state_b = os.path.join(wd, "state-rfc2136")
    hosts_b = ["s1.example.test", "s2.shop.test"]
    primary = dnsenv.Knot(wd, "primary", acmeenv.VALIDATION_ADDR, zones={
        world.zone: ["@ NS ns1", "ns1 A " + acmeenv.VALIDATION_ADDR]},
        tsig=(TSIG_NAME, TSIG_SECRET))
    try:
        world.certfleet_init(CF, state_b, ["--rfc2136", "%s:53" % acmeenv.VALIDATION_ADDR,
                                           "--tsig-key-file", tsig_file]
                             + eab_args(wd, "kid-rfc2136"))
        import_hosts(world, state_b, hosts_b)
        argvs |= full_run(state_b, "RFC 2136")
    finally:
        primary.stop()
    for h in hosts_b:
        R.eq(json.loads(cf(state_b, "status", "--json", h).stdout or "{}").get("state"), "active",
             "RFC 2136: %s issued" % h)

    # 2. The validation zone served by the run itself.
    state_a = os.path.join(wd, "state-embedded")
    hosts_a = ["s3.example.test", "s4.shop.test", "*.s5.example.test"]
    world.certfleet_init(CF, state_a, eab_args(wd, "kid-embedded"))
    import_hosts(world, state_a, hosts_a)
    argvs |= full_run(state_a, "embedded DNS")
    for args in (["status", "--json"], ["instructions"], ["check", "--json"],
                 ["report", "leftover"]):
        cf(state_a, *args)

    # 3. The embedded server is no open resolver and does not amplify.
    sampler = ArgvSampler()
    try:
        world.start_serve_dns(CF, state_a)
        dns_checks(acmeenv.VALIDATION_ADDR, world.zone)
    finally:
        world.stop_serve_dns()
        sampler.stop()
    argvs |= sampler.seen
    log = os.path.join(state_a, "serve-dns.log")
    if os.path.exists(log):
        LOGS.append(("serve-dns log", open(log, errors="replace").read()))

    # 4. TLS verification: another CA's bundle, and the system's bundle.
    other_ca = acmeenv.make_tls_ca(os.path.join(wd, "other-ca"), ["localhost"],
                                   [acmeenv.PEBBLE_ADDR])[0]
    for kid, bundle in (("kid-wrongca", other_ca), ("kid-systemca", None)):
        state = os.path.join(wd, "state-" + kid)
        argv = world.init_argv(CF, state, eab_args(wd, kid))
        i = argv.index("--ca-bundle")
        if bundle:
            argv[i + 1] = bundle
        else:
            del argv[i:i + 2]
        p = subprocess.run(argv, capture_output=True, text=True, env=ENV)
        R.eq(p.returncode, 0, "init (%s): %s" % (kid, p.stderr))
        import_hosts(world, state, ["t-%s.example.test" % kid])
        before = pebble_accounts(world)
        p = cf(state, "run")
        print("--- %s: exit %d: %s" % (kid, p.returncode, p.stderr.strip().splitlines()[-1:]),
              flush=True)
        R.eq(p.returncode, 3, "%s: run exits 3 (%s)" % (kid, p.stderr[-600:]))
        last = [line for line in p.stderr.splitlines() if line.startswith("certfleet: ")]
        err = last[-1] if last else p.stderr[-400:]
        R.check(world.pebble.directory_url in err, "%s: the error names %s: %r" % (
            kid, world.pebble.directory_url, err))
        R.check(any(w in err.lower() for w in ("tls", "certificate", "ssl", "verif")),
                "%s: the error says TLS/certificate: %r" % (kid, err))
        R.eq(pebble_accounts(world), before, "%s: pebble saw no newAccount" % kid)
        R.check(b"url" not in mdb_db(os.path.join(state, "store.mdb"), "account"),
                "%s: no account URL stored" % kid)
        check_modes(state, kid)

    # 5. Modes, and the secrets nowhere.
    check_modes(state_a, "embedded")
    check_modes(state_b, "RFC 2136")
    secrets.update(secrets_of(state_a, hosts_a))
    secrets.update(secrets_of(state_b, hosts_b))
    R.check(len(secrets) >= 2 + len(KIDS) + len(hosts_a) + len(hosts_b),
            "every secret was found (%d)" % len(secrets))
    files = []
    for st in (state_a, state_b):
        for name in ("config.json", "metrics.prom", "stats.json"):
            p = os.path.join(st, name)
            if os.path.exists(p):
                files.append((p, open(p, errors="replace").read()))
    R.check(tsig_file in open(os.path.join(state_b, "config.json")).read(),
            "config.json names the TSIG key file")
    print("--- %d log texts (%d octets), %d argv samples, %d files searched for %d secrets" % (
        len(LOGS), sum(len(t) for _, t in LOGS), len(argvs), len(files), len(secrets)),
        flush=True)
    R.check(sum(len(t) for _, t in LOGS) > 20000, "the debug logs are substantial")
    hay = [("log of " + w, t) for w, t in LOGS] + [("argv", a) for a in argvs] + \
        [("file " + p, t) for p, t in files]
    for what, ns in sorted(secrets.items()):
        for where, text in hay:
            hit = next((n for n in ns if n in text), None)
            R.check(hit is None, "%s appears in %s: %r" % (what, where, (hit or "")[:20]))
    for where, text in hay:
        R.check("PRIVATE KEY" not in text, "no PEM private key in %s" % where)


def pebble_accounts(world):
    with open(world.pebble.log, errors="replace") as f:
        return sum(1 for line in f if "sign-me-up" in line)


def main():
    wd = dnsenv.Workdir("/tmp/cf-integ-security-")
    world = None
    t0 = time.time()
    try:
        world = acmeenv.AcmeWorld(wd.path, eab_keys=KIDS)
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
    print("elapsed %.1f s" % (time.time() - t0))
    return R.finish()


if __name__ == "__main__":
    sys.exit(main())
