"""Hostile DNS answers (issue: reliability and security): a customer zone
whose nameserver lies, against `certfleet check` and `certfleet run`.

hostile.test is served by a small authoritative server written here (raw
sockets, every answer built by hand) on 127.0.N.31, UDP and TCP. It is a stub
zone of the world's unbound, and unbound's questions leave from the
resolver's own address (outgoing-interface), so the server tells them apart:
unbound (and through it pebble) always gets the honest zone, while a direct
question for `_acme-challenge.<host>.hostile.test` from anyone else gets the
hostile answer that <host> names:

    control     the honest answer: confirmed, issued by the run
    loop        a CNAME loop inside the answer (a -> b -> a)
    selfloop    _acme-challenge.selfloop CNAME itself
    loopres     a loop in the zone data, followed through the resolver
    othername   the right CNAME, owned by another name        -> missing
    otherq      the right CNAME, question section for another name
    otherqtype  the right CNAME, question asks for TXT
    badid       the right CNAME under another message ID
    noqr        the right CNAME with QR clear (a query, not an answer)
    notaa       the right CNAME without AA (and no referral)
    wrongclass  the right CNAME in class CH                   -> missing
    oversized   the right CNAME padded to 3,800 octets (EDNS said 1232), no TC
    truncated   the right CNAME with TC set; over TCP garbage
    ptrfwd      the CNAME target a forward compression pointer
    ptrself     the CNAME target a pointer to itself
    ptrpast     the CNAME target a pointer past the end
    ptrowner    the record's owner a pointer to itself
    ptrq        the question name a pointer to itself
    rdlenpast   RDLENGTH past the end of the message
    toolong     a CNAME target of 320 octets

Every hostile host's delegation is classified error (or missing where
said), never confirmed; its state stays awaiting_delegation after `check`
and after a `run` (never delegated or issuing), pebble gets exactly one order
(the control host's), and no certfleet process dies. A second state dir uses
the hostile server as its *resolver*, so the hostile answers also reach the
resolver client (engine/dns/resq.c: our UDP client, and c-ares for the TCP retry
of the truncated one): same classification.

    test_hostile_dns.py PATH_TO_CERTFLEET
"""
import json
import os
import re
import socket
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
HOSTILE_ADDR = acmeenv.NET + "31"
APEX = "hostile.test"
VARIANTS = ["control", "loop", "selfloop", "loopres", "othername", "otherq", "otherqtype",
            "badid", "noqr", "notaa", "wrongclass", "oversized", "truncated", "ptrfwd",
            "ptrself", "ptrpast", "ptrowner", "ptrq", "rdlenpast", "toolong"]
MISSING_OK = {"othername", "wrongclass"}  # no CNAME at the name: missing (error also fine)
HOSTS = ["%s.%s" % (v, APEX) for v in VARIANTS]
T_CNAME, T_A, T_NS, T_SOA, T_TXT = 5, 1, 2, 6, 16
QR, AA, TC = 0x8000, 0x0400, 0x0200
LOG = []  # (source, variant, transport) of every hostile answer sent


# ---- wire helpers -------------------------------------------------------------

def wire(name):
    out = b""
    for label in name.rstrip(".").split("."):
        if label:
            out += bytes([len(label)]) + label.encode()
    return out + b"\0"


def rr(owner, rtype, rdata, ttl=1, rclass=1):
    """owner: wire bytes (a name or a pointer)."""
    return owner + struct.pack(">HHIH", rtype, rclass, ttl, len(rdata)) + rdata


def ptr(off):
    return struct.pack(">H", 0xC000 | off)


def message(qid, flags, question, an=(), ns=(), ar=(), qdcount=1):
    return struct.pack(">HHHHHH", qid, flags, qdcount, len(an), len(ns), len(ar)) + question \
        + b"".join(an) + b"".join(ns) + b"".join(ar)


def parse_query(pkt):
    """(id, flags, question bytes, lower-case qname, qtype) or None."""
    if len(pkt) < 12:
        return None
    qid, flags, qd = struct.unpack(">HHH", pkt[:6])
    if flags & QR or qd != 1:
        return None
    off, labels = 12, []
    while off < len(pkt):
        n = pkt[off]
        if n == 0 or n > 63:
            break
        labels.append(pkt[off + 1:off + 1 + n].decode(errors="replace").lower())
        off += 1 + n
    if off + 5 > len(pkt) or pkt[off] != 0:
        return None
    qtype = struct.unpack(">H", pkt[off + 1:off + 3])[0]
    return qid, flags, pkt[12:off + 5], ".".join(labels), qtype


# ---- the zone -------------------------------------------------------------------

def target(variant):
    return acmeenv.validation_target("%s.%s" % (variant, APEX))


CNAMES = {"_acme-challenge.%s.%s" % (v, APEX): target(v) for v in VARIANTS}
# A loop in the zone data itself: everyone sees it, and the check follows it
# through the resolver (on_chain), not inside one answer.
CNAMES["_acme-challenge.loopres." + APEX] = "a.loopres." + APEX
CNAMES["a.loopres." + APEX] = "b.loopres." + APEX
CNAMES["b.loopres." + APEX] = "a.loopres." + APEX
ADDRS = {"ns1." + APEX: HOSTILE_ADDR}


def soa_rr():
    rdata = wire("ns1." + APEX) + wire("hostmaster." + APEX) + struct.pack(">IIIII", 1, 60, 60,
                                                                           600, 1)
    return rr(wire(APEX), T_SOA, rdata)


def exists(name):
    """name or something below it is in the zone (NODATA rather than NXDOMAIN)."""
    for owner in list(CNAMES) + list(ADDRS) + [APEX]:
        if owner == name or owner.endswith("." + name):
            return True
    return False


def honest(qid, flags, question, qname, qtype):
    rd = flags & 0x0100
    if not (qname == APEX or qname.endswith("." + APEX)):
        return message(qid, QR | rd | 5, question)  # REFUSED
    an, ns, rcode = [], [], 0
    if qname in CNAMES:
        an.append(rr(ptr(12), T_CNAME, wire(CNAMES[qname])))
    elif qname == APEX and qtype == T_SOA:
        an.append(soa_rr())
    elif qname == APEX and qtype == T_NS:
        an.append(rr(ptr(12), T_NS, wire("ns1." + APEX)))
    elif qname in ADDRS and qtype == T_A:
        an.append(rr(ptr(12), T_A, socket.inet_aton(ADDRS[qname])))
    elif exists(qname):
        ns.append(soa_rr())
    else:
        ns.append(soa_rr())
        rcode = 3
    return message(qid, QR | AA | rd | rcode, question, an, ns)


def hostile(variant, qid, flags, question, qname, qtype):
    """The lie for variant, or None for the honest answer."""
    rd = flags & 0x0100
    good = rr(ptr(12), T_CNAME, wire(target(variant)))
    f = QR | AA | rd
    qlen = len(question)
    if variant == "loop":
        a, b = wire("a.loop." + APEX), wire("b.loop." + APEX)
        return message(qid, f, question, [rr(ptr(12), T_CNAME, a), rr(a, T_CNAME, b),
                                          rr(b, T_CNAME, a)])
    if variant == "selfloop":
        return message(qid, f, question, [rr(ptr(12), T_CNAME, wire(qname))])
    if variant == "othername":
        return message(qid, f, question, [rr(wire("_acme-challenge.elsewhere." + APEX), T_CNAME,
                                             wire(target(variant)))])
    if variant == "otherq":
        q2 = wire("_acme-challenge.elsewhere." + APEX) + question[-4:]
        return message(qid, f, q2, [rr(wire(qname), T_CNAME, wire(target(variant)))])
    if variant == "otherqtype":
        q2 = question[:-4] + struct.pack(">HH", T_TXT, 1)
        return message(qid, f, q2, [good])
    if variant == "badid":
        return message(qid ^ 0x5A5A, f, question, [good])
    if variant == "noqr":
        return message(qid, f & ~QR, question, [good])
    if variant == "notaa":
        return message(qid, f & ~AA, question, [good])
    if variant == "wrongclass":
        return message(qid, f, question, [rr(ptr(12), T_CNAME, wire(target(variant)), rclass=3)])
    if variant == "oversized":
        pad = [rr(ptr(12), T_A, bytes([192, 0, 2, i % 256])) for i in range(240)]
        return message(qid, f, question, [good], ar=pad)
    if variant == "truncated":
        return message(qid, f | TC, question, [good])
    if variant == "ptrfwd":
        # The target is spelled out later (an additional record's owner) and
        # pointed at forward: RFC 1035 §4.1.4 pointers point back.
        later = 12 + qlen + 14
        return message(qid, f, question, [rr(ptr(12), T_CNAME, ptr(later))],
                       ar=[rr(wire(target(variant)), T_A, bytes([192, 0, 2, 1]))])
    if variant == "ptrself":
        return message(qid, f, question, [rr(ptr(12), T_CNAME, ptr(12 + qlen + 12))])
    if variant == "ptrpast":
        return message(qid, f, question, [rr(ptr(12), T_CNAME, ptr(0x3FF0))])
    if variant == "ptrowner":
        return message(qid, f, question, [rr(ptr(12 + qlen), T_CNAME, wire(target(variant)))])
    if variant == "ptrq":
        return message(qid, f, ptr(12) + question[-4:], [rr(ptr(12), T_CNAME,
                                                               wire(target(variant)))])
    if variant == "rdlenpast":
        body = wire(target(variant))
        r_ = ptr(12) + struct.pack(">HHIH", T_CNAME, 1, 1, len(body) + 400) + body
        return message(qid, f, question, [r_])
    if variant == "toolong":
        long_ = b"".join(bytes([63]) + b"x" * 63 for _ in range(5)) + b"\0"
        return message(qid, f, question, [rr(ptr(12), T_CNAME, long_)])
    return None


def respond(pkt, src, transport):
    q = parse_query(pkt)
    if q is None:
        return None
    qid, flags, question, qname, qtype = q
    m = re.match(r"_acme-challenge\.([a-z]+)\.hostile\.test$", qname)
    if src != acmeenv.RESOLVER and m and m.group(1) in VARIANTS:
        LOG.append((src, m.group(1), transport))
        if transport == "tcp":
            return b"\x00\x01" * 40  # garbage: no DNS message at all
        lie = hostile(m.group(1), qid, flags, question, qname, qtype)
        if lie is not None:
            return lie
    return honest(qid, flags, question, qname, qtype)


class HostileServer:
    def __init__(self, addr, port=53):
        self.stop_ev = threading.Event()
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind((addr, port))
        self.udp.settimeout(0.2)
        self.tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.tcp.bind((addr, port))
        self.tcp.listen(16)
        self.tcp.settimeout(0.2)
        self.threads = [threading.Thread(target=self._udp_loop, daemon=True),
                        threading.Thread(target=self._tcp_loop, daemon=True)]
        for t in self.threads:
            t.start()

    def _udp_loop(self):
        while not self.stop_ev.is_set():
            try:
                pkt, src = self.udp.recvfrom(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            try:
                ans = respond(pkt, src[0], "udp")
                if ans:
                    self.udp.sendto(ans, src)
            except Exception:
                traceback.print_exc()

    def _tcp_conn(self, c, src):
        c.settimeout(3)
        try:
            while True:
                hdr = c.recv(2)
                if len(hdr) < 2:
                    return
                n = struct.unpack(">H", hdr)[0]
                pkt = b""
                while len(pkt) < n:
                    chunk = c.recv(n - len(pkt))
                    if not chunk:
                        return
                    pkt += chunk
                ans = respond(pkt, src, "tcp")
                if ans is None:
                    return
                c.sendall(struct.pack(">H", len(ans)) + ans)
        except OSError:
            return
        finally:
            c.close()

    def _tcp_loop(self):
        while not self.stop_ev.is_set():
            try:
                c, src = self.tcp.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            threading.Thread(target=self._tcp_conn, args=(c, src[0]), daemon=True).start()

    def stop(self):
        self.stop_ev.set()
        for t in self.threads:
            t.join(2)
        self.udp.close()
        self.tcp.close()


# ---- the test -------------------------------------------------------------------

def cf(state, *args, inp=None, timeout=120):
    t0 = time.time()
    p = subprocess.run([CF, "--state", state] + list(args), capture_output=True, text=True,
                       input=inp, timeout=timeout)
    R.check(p.returncode >= 0, "certfleet %s: not killed by a signal (%d)" % (args[0],
                                                                           p.returncode))
    return p, time.time() - t0


def check_json(state, hosts, what):
    p, el = cf(state, "check", "--json", *hosts)
    print("--- check (%s): exit %d in %.1f s" % (what, p.returncode, el), flush=True)
    R.check(p.returncode in (0, 1), "%s: check exits 0 or 1, got %d (%s)" % (
        what, p.returncode, p.stderr[-800:]))
    out = {}
    for line in p.stdout.splitlines():
        try:
            d = json.loads(line)
            out[d["host"]] = d
        except (ValueError, KeyError):
            R.check(False, "%s: check --json line parses: %r" % (what, line[:200]))
    return out


def state_of(state, host):
    p, _ = cf(state, "status", "--json", host)
    try:
        return json.loads(p.stdout)
    except ValueError:
        R.check(False, "status --json %s parses: %r" % (host, p.stdout[:200]))
        return {}


def judge(res, what):
    for v, h in zip(VARIANTS, HOSTS):
        d = res.get(h, {}).get("delegation", {})
        got = d.get("result")
        print("  %-28s %-10s %s" % (h, got, d.get("error", "")), flush=True)
        if v == "control":
            R.eq(got, "confirmed", "%s: the control host is confirmed" % what)
            continue
        ok = ("error", "missing") if v in MISSING_OK else ("error",)
        R.check(got in ok, "%s: %s classified %s, wanted %s (%s)" % (
            what, h, got, "/".join(ok), d.get("error")))
        for s in d.get("servers", []):
            R.check(s.get("result") != "confirmed",
                    "%s: %s: no server confirmed (%s)" % (what, h, s))


def new_orders(world):
    with open(world.pebble.log, errors="replace") as f:
        return sum(1 for line in f if 'Added order "' in line)


def scenario(world, wd):
    hs = HostileServer(HOSTILE_ADDR)
    try:
        # The honest view through unbound: every host is delegated.
        st, ans = world.resolve("_acme-challenge.ptrfwd." + APEX, "CNAME")
        R.eq((st, [(r[2], r[3].rstrip(".")) for r in ans]),
             ("NOERROR", [("CNAME", target("ptrfwd"))]), "unbound sees the honest zone")
        R.check(not LOG, "unbound's questions got honest answers: %r" % LOG[:3])

        state = os.path.join(wd, "state")
        world.certfleet_init(CF, state)
        p, _ = cf(state, "import", "-", inp="".join(h + "\n" for h in HOSTS))
        R.eq(p.returncode, 0, "import: " + p.stderr)
        t0 = time.time()
        res = check_json(state, HOSTS, "check")
        R.check(time.time() - t0 < 60, "check ended within a minute")
        judge(res, "check")
        seen = {v for _, v, _ in LOG}
        R.eq(sorted(seen), sorted(VARIANTS), "every host was asked directly")
        for h in HOSTS[1:]:
            R.eq(state_of(state, h).get("state"), "awaiting_delegation",
                 "after check: %s awaits its delegation" % h)

        # A run: only the control host is ordered and issued.
        orders0 = new_orders(world)
        t0 = time.time()
        p, el = cf(state, "run", "--deadline", "90s", timeout=200)
        print("--- run: exit %d in %.1f s\n%s" % (p.returncode, el, p.stdout), flush=True)
        R.eq(p.returncode, 0, "run: exit 0 (stderr: %s)" % p.stderr[-1500:])
        R.eq(new_orders(world) - orders0, 1, "pebble got one order (the control host's)")
        R.eq(state_of(state, HOSTS[0]).get("state"), "active", "control issued by the run")
        for v, h in zip(VARIANTS[1:], HOSTS[1:]):
            s = state_of(state, h)
            R.eq(s.get("state"), "awaiting_delegation", "after run: %s awaits its delegation" % h)
            ok = ("error", "missing") if v in MISSING_OK else ("error",)
            R.check(s.get("delegation", {}).get("result") in ok,
                    "after run: %s stored delegation %s" % (h, s.get("delegation")))
            R.check(not s.get("serial"), "%s has no certificate" % h)

        # The hostile server as the resolver: the lies reach the resolver client too.
        state2 = os.path.join(wd, "state-hostile-resolver")
        argv = world.init_argv(CF, state2)
        argv[argv.index("--resolver") + 1] = HOSTILE_ADDR
        p = subprocess.run(argv, capture_output=True, text=True)
        R.eq(p.returncode, 0, "init with the hostile resolver: " + p.stderr)
        p, _ = cf(state2, "import", "-", inp="".join(h + "\n" for h in HOSTS))
        LOG.clear()
        # One process a host, at once: each walks to the zone cut itself, so
        # every lie is the first answer of a walk (a checker caches the cut).
        t0 = time.time()
        procs = [subprocess.Popen([CF, "--state", state2, "check", "--json", h],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for h in HOSTS]
        res = {}
        for h, pr in zip(HOSTS, procs):
            out, err = pr.communicate(timeout=120)
            R.check(pr.returncode in (0, 1), "hostile resolver: check %s exits 0 or 1, got %d (%s)"
                    % (h, pr.returncode, err[-500:]))
            for line in out.splitlines():
                try:
                    res[h] = json.loads(line)
                except ValueError:
                    R.check(False, "hostile resolver: check --json %s parses: %r" % (h, line))
        print("--- checks with the hostile resolver: %.1f s" % (time.time() - t0), flush=True)
        R.check(time.time() - t0 < 90, "checks with the hostile resolver ended within 90 s")
        judge(res, "hostile resolver")
        walked = {v for src, v, _ in LOG}
        R.eq(sorted(walked), sorted(VARIANTS), "every lie reached the resolver path")
        R.check(any(t == "tcp" for _, _, t in LOG), "the truncated lie was retried over TCP")
        for h in HOSTS[1:]:
            R.eq(state_of(state2, h).get("state"), "awaiting_delegation",
                 "hostile resolver: %s awaits its delegation" % h)
    finally:
        hs.stop()


def main():
    wd = dnsenv.Workdir("/tmp/cf-integ-hostile-dns-")
    world = None
    t0 = time.time()
    try:
        world = acmeenv.AcmeWorld(
            wd.path, extra_stubs={APEX: ["%s@53" % HOSTILE_ADDR]},
            unbound_extra=["outgoing-interface: " + acmeenv.RESOLVER])
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
