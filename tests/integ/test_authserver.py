"""The embedded authoritative server (`certfleet serve-dns`) against real kdig.

A state dir is initialized for the validation zone acme.cdn.test, TXT
records are published into its store with the txt_publish helper, and
serve-dns listens on 127.0.10.21:53. kdig asks over UDP and TCP: SOA, NS
and TXT with AA, two values at one name, NXDOMAIN vs NODATA and empty
non-terminals, REFUSED for other zones, truncation then TCP, records
published while it runs, and a restart that serves what was published.
Python's socket sends what kdig cannot: mixed-case names (kdig 3.2 lowers
them), garbage, responses, pipelined TCP queries. The server is stopped by
its PID with SIGTERM and must exit 0.

    test_authserver.py PATH_TO_CERTFLEET PATH_TO_TXT_PUBLISH
"""
import os
import random
import signal
import socket
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dnsenv  # noqa: E402

CF, PUBLISH = sys.argv[1], sys.argv[2]
ADDR, PORT = "127.0.10.21", 53
ZONE = "acme.cdn.test"
WWW = "www.example.com." + ZONE
BIG = "big." + ZONE
R = dnsenv.Results()


def publish(state, lines):
    p = subprocess.run([PUBLISH, state], input="".join(l + "\n" for l in lines), text=True,
                       capture_output=True)
    if p.returncode != 0:
        raise RuntimeError("txt_publish: " + p.stderr)


class Answer:
    """kdig's output, parsed: status, flags, and the records of each section."""

    def __init__(self, out):
        self.out = out
        self.status = None
        self.flags = []
        self.sections = {"ANSWER": [], "AUTHORITY": [], "ADDITIONAL": []}
        sec = None
        for line in out.splitlines():
            if "->>HEADER<<-" in line:
                self.status = line.split("status: ")[1].split(";")[0]
            elif line.startswith(";; Flags:"):
                self.flags = line[len(";; Flags:"):].split(";")[0].split()
            elif line.startswith(";; ") and line.endswith(" SECTION:"):
                sec = line[3:-len(" SECTION:")]
            elif not line.strip() or line.startswith(";"):
                if not line.strip():
                    sec = None
            elif sec in self.sections:
                f = line.split(None, 4)
                self.sections[sec].append((f[0], int(f[1]), f[3], f[4] if len(f) > 4 else ""))

    def types(self, sec="ANSWER"):
        return [r[2] for r in self.sections[sec]]

    def rdata(self, sec="ANSWER"):
        return sorted(r[3] for r in self.sections[sec])


def kdig(name, qtype, *opts):
    argv = ["kdig", "-p", str(PORT), "@" + ADDR, name, qtype, "+norec", "+timeout=2",
            "+retry=0"] + list(opts)
    return Answer(subprocess.run(argv, capture_output=True, text=True).stdout)


def raw_query(name, qtype=16, qid=0x4242, edns=None):
    """A query with name's case kept, as bytes."""
    q = struct.pack(">HHHHHH", qid, 0, 1, 0, 0, 1 if edns else 0)
    for label in name.split("."):
        q += bytes([len(label)]) + label.encode()
    q += b"\0" + struct.pack(">HH", qtype, 1)
    if edns:
        q += b"\0" + struct.pack(">HHIH", 41, edns, 0, 0)
    return q


def udp_ask(payload, timeout=1.0):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(timeout)
    try:
        s.sendto(payload, (ADDR, PORT))
        return s.recv(65535)
    except socket.timeout:
        return None
    finally:
        s.close()


def start(env):
    log = open(os.path.join(env["CERTFLEET_STATE"], "serve-dns.log"), "a")
    p = dnsenv._start([CF, "serve-dns", "--listen", "%s:%d" % (ADDR, PORT)], log)
    p.env = env
    dnsenv.wait_answering(ADDR, PORT, ZONE)
    return p


def stop_ok(p, what):
    os.kill(p.pid, signal.SIGTERM)
    try:
        rc = p.wait(timeout=10)
    except subprocess.TimeoutExpired:
        rc = None
    R.eq(rc, 0, what + ": serve-dns exits 0 on SIGTERM")
    dnsenv.stop(p)


def check_basics():
    for tr in ([], ["+tcp"]):
        t = "TCP" if tr else "UDP"
        a = kdig(ZONE, "SOA", *tr)
        R.eq(a.status, "NOERROR", t + " SOA status")
        R.check("aa" in a.flags and "ra" not in a.flags, t + " SOA flags aa, no ra: %s" % a.flags)
        R.eq(a.types(), ["SOA"], t + " SOA answer")
        R.check(a.rdata() and a.rdata()[0].startswith("ns1.%s. hostmaster.%s." % (ZONE, ZONE)),
                t + " SOA mname and rname: %s" % a.rdata())

        a = kdig(ZONE, "NS", *tr)
        R.check("aa" in a.flags, t + " NS aa")
        R.eq(a.rdata(), ["ns1.%s." % ZONE, "ns2.provider.test."], t + " NS set")
        R.eq([(r[0], r[2], r[3]) for r in a.sections["ADDITIONAL"]],
             [("ns1.%s." % ZONE, "A", ADDR)], t + " NS glue for the in-zone name only")

        a = kdig(WWW, "TXT", *tr)
        R.eq(a.status, "NOERROR", t + " TXT status")
        R.check("aa" in a.flags, t + " TXT aa")
        R.eq(a.rdata(), ['"digest-one"', '"digest-two"'], t + " two TXT values at one name")
        R.eq(sorted({r[1] for r in a.sections["ANSWER"]}), [60], t + " TXT TTL 60")

        # NODATA: the name exists without A; empty non-terminals; the apex.
        for name, qt in ((WWW, "A"), ("example.com." + ZONE, "TXT"), ("com." + ZONE, "TXT"),
                         (ZONE, "TXT")):
            a = kdig(name, qt, *tr)
            R.eq((a.status, a.types(), a.types("AUTHORITY")), ("NOERROR", [], ["SOA"]),
                 t + " NODATA %s %s" % (name, qt))
            R.check("aa" in a.flags, t + " NODATA aa")
        for name in ("nope." + ZONE, "x." + WWW, "ample.com." + ZONE):
            a = kdig(name, "TXT", *tr)
            R.eq((a.status, a.types(), a.types("AUTHORITY")), ("NXDOMAIN", [], ["SOA"]),
                 t + " NXDOMAIN " + name)
            R.eq([r[1] for r in a.sections["AUTHORITY"]], [30], t + " negative TTL 30")

        for name in ("example.org", "cdn.test", "other.zone.test"):
            a = kdig(name, "TXT", *tr)
            R.eq((a.status, a.types(), a.types("AUTHORITY")), ("REFUSED", [], []),
                 t + " REFUSED " + name)
            R.check("aa" not in a.flags, t + " REFUSED without aa")
        a = kdig("example.org", "A", "+rec", *tr)
        R.eq(a.status, "REFUSED", t + " recursion asked: still REFUSED (no open resolver)")

    # ANY (RFC 8482): one RRset.
    a = kdig(WWW, "ANY")
    R.eq(a.types(), ["TXT", "TXT"], "ANY: the TXT set only")


def check_truncation():
    a = kdig(BIG, "TXT", "+bufsize=512", "+ignore")
    R.check("tc" in a.flags, "small buffer: TC set (%s)" % a.flags)
    R.eq(a.types(), [], "truncated: the question only")
    a = kdig(BIG, "TXT", "+noedns", "+ignore")
    R.check("tc" in a.flags, "no EDNS: TC set")
    a = kdig(BIG, "TXT", "+bufsize=4096", "+ignore")
    R.check("tc" in a.flags, "4096 asked, capped at 1232: still TC")
    a = kdig(BIG, "TXT", "+tcp")
    R.check("tc" not in a.flags, "TCP: no TC")
    R.eq(len(a.types()), 30, "TCP: all 30 values")
    # kdig's default: UDP, then TCP after TC.
    a = kdig(BIG, "TXT", "+bufsize=1232")
    R.eq(len(a.types()), 30, "kdig falls back to TCP and gets all 30 values")
    a = kdig(WWW, "TXT", "+bufsize=512")
    R.check("tc" not in a.flags and len(a.types()) == 2, "a small answer is not truncated")


def check_raw():
    # Case preserved (0x20): the question comes back octet for octet.
    mixed = "wWw.ExAmPlE.cOm.AcMe.cDn.TeSt"
    q = raw_query(mixed, edns=1232)
    r = udp_ask(q)
    qlen = len(raw_query(mixed)) - 12
    R.check(r is not None and r[12:12 + qlen] == q[12:12 + qlen], "mixed case echoed")
    R.check(r is not None and struct.unpack(">H", r[6:8])[0] == 2, "mixed case: two answers")
    R.check(r is not None and r[2] & 0x04, "mixed case: AA")
    q = raw_query("NoPe.AcMe.CdN.TeSt")
    r = udp_ask(q)
    R.check(r is not None and r[3] & 0xf == 3 and r[12:12 + len(q) - 12] == q[12:],
            "mixed case NXDOMAIN echoes the question")

    # Garbage, responses and truncated messages get no answer at all.
    rnd = random.Random(7)
    junk = [b"", b"\x00", b"\x12\x34\x81\x80" + b"\x00" * 8, raw_query(WWW)[:-3],
            raw_query(WWW) + b"\x00\x00"]
    resp = bytearray(raw_query(WWW))
    resp[2] |= 0x80  # QR: a response must never be answered (no reflection loops)
    junk.append(bytes(resp))
    junk += [bytes(rnd.getrandbits(8) for _ in range(rnd.randint(1, 600))) for _ in range(40)]
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for j in junk[:8]:
        s.sendto(j, (ADDR, PORT))
    s.settimeout(0.5)
    try:
        got = s.recv(65535)
    except socket.timeout:
        got = None
    R.eq(got, None, "malformed packets and responses: no answer")
    for j in junk[8:]:
        s.sendto(j, (ADDR, PORT))
    s.close()
    a = kdig(WWW, "TXT")
    R.eq(a.rdata(), ['"digest-one"', '"digest-two"'], "still answering after garbage")

    # TCP: several queries on one connection, answers framed and in order.
    c = socket.create_connection((ADDR, PORT), timeout=3)
    msgs = [raw_query(WWW, qid=1), raw_query(ZONE, 6, qid=2), raw_query("nope." + ZONE, qid=3)]
    c.sendall(b"".join(struct.pack(">H", len(m)) + m for m in msgs))
    buf = b""
    ids = []
    while len(ids) < 3:
        chunk = c.recv(65535)
        if not chunk:
            break
        buf += chunk
        while len(buf) >= 2 and len(buf) >= 2 + struct.unpack(">H", buf[:2])[0]:
            n = struct.unpack(">H", buf[:2])[0]
            ids.append((struct.unpack(">H", buf[2:4])[0], buf[5] & 0xf))
            buf = buf[2 + n:]
    c.close()
    R.eq(ids, [(1, 0), (2, 0), (3, 3)], "three pipelined TCP queries answered in order")

    # A client that closes its side after the query still gets the answer.
    c = socket.create_connection((ADDR, PORT), timeout=3)
    m = raw_query(WWW, qid=9)
    c.sendall(struct.pack(">H", len(m)) + m)
    c.shutdown(socket.SHUT_WR)
    data = b""
    while True:
        chunk = c.recv(65535)
        if not chunk:
            break
        data += chunk
    c.close()
    R.check(len(data) > 4 and struct.unpack(">H", data[2:4])[0] == 9,
            "TCP half-close: answered, then closed")

    # A connection that sends nothing is closed after the idle timeout (10 s).
    c = socket.create_connection((ADDR, PORT), timeout=20)
    t0 = time.time()
    try:
        closed = c.recv(10) == b""
    except OSError:
        closed = True
    c.close()
    R.check(closed and 5 < time.time() - t0 < 15,
            "an idle TCP connection is closed after about 10 s (%.1f s)" % (time.time() - t0))
    # A TCP stream of garbage is closed at once; the server goes on.
    c = socket.create_connection((ADDR, PORT), timeout=3)
    c.sendall(b"\x00\x05hello")
    try:
        closed = c.recv(10) == b""
    except OSError:
        closed = True
    c.close()
    R.check(closed, "a malformed TCP message closes the connection")


def soa_serial():
    a = kdig(ZONE, "SOA")
    return int(a.rdata()[0].split()[2]) if a.rdata() else -1


def main():
    wd = dnsenv.Workdir("/tmp/cf-integ-authsrv-")
    state = os.path.join(wd.path, "state")
    env = dict(os.environ, CERTFLEET_STATE=state, CERTFLEET_LOG="info")
    os.environ.update(env)
    try:
        p = subprocess.run([CF, "init", "--validation-zone", ZONE, "--directory",
                            "https://ca.test/dir", "--dns-listen", "%s:%d" % (ADDR, PORT),
                            "--validation-ns", "ns1.%s=%s" % (ZONE, ADDR),
                            "--validation-ns", "ns2.provider.test"],
                           capture_output=True, text=True)
        R.eq(p.returncode, 0, "init: " + p.stderr)
        p = subprocess.run([CF, "init", "--validation-zone", ZONE, "--directory",
                            "https://ca.test/dir", "--validation-ns", "ns3." + ZONE],
                           capture_output=True, text=True, env=dict(env, CERTFLEET_STATE=state + "x"))
        R.eq(p.returncode, 2, "init: an in-zone nameserver without an address is refused")
        publish(state, ["+ %s digest-one" % WWW, "+ %s digest-two" % WWW,
                        "+ h%s.%s hashed" % ("a" * 32, ZONE)] +
                ["+ %s %02d-%s" % (BIG, i, "x" * 100) for i in range(30)])

        srv = start(env)
        check_basics()
        check_truncation()
        check_raw()

        # Published while running: served at once, and the serial grows.
        serial = soa_serial()
        publish(state, ["+ late.example.net.%s late-value" % ZONE])
        R.eq(kdig("late.example.net." + ZONE, "TXT").rdata(), ['"late-value"'],
             "a record published while running is served")
        R.check(soa_serial() > serial, "the SOA serial grows when records change")
        stop_ok(srv, "first run")

        # A restart serves what was published.
        srv = start(env)
        R.eq(kdig(WWW, "TXT").rdata(), ['"digest-one"', '"digest-two"'], "after restart: TXT")
        R.eq(kdig("late.example.net." + ZONE, "TXT", "+tcp").rdata(), ['"late-value"'],
             "after restart: the late record")
        publish(state, ["- late.example.net.%s late-value" % ZONE])
        R.eq(kdig("late.example.net." + ZONE, "TXT").status, "NXDOMAIN",
             "a withdrawn record is gone")
        R.eq(kdig("example.net." + ZONE, "TXT").status, "NXDOMAIN",
             "and so is its empty non-terminal")
        stop_ok(srv, "second run")

        # Another process on the address: serve-dns fails with a clear error.
        blocker = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        blocker.bind((ADDR, PORT))
        p = subprocess.run([CF, "serve-dns", "--listen", "%s:%d" % (ADDR, PORT)],
                           capture_output=True, text=True, timeout=10)
        blocker.close()
        R.eq(p.returncode, 3, "address in use: exit 3")
        R.check("cannot listen" in p.stderr, "address in use: says so (%r)" % p.stderr[-200:])
    finally:
        dnsenv._stop_all()
        if R.failed:
            for f in ("serve-dns.log",):
                path = os.path.join(state, f)
                if os.path.exists(path):
                    print("--- " + f + "\n" + open(path).read()[-3000:])
        wd.cleanup()
    return R.finish()


if __name__ == "__main__":
    sys.exit(main())
