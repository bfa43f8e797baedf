"""The loopback world of the ACME integration tests: pebble (Let's Encrypt's
test CA) beside the DNS servers of dnsenv.

    Pebble     one pebble with its own HTTPS CA (generated with the openssl
               CLI: Debian's pebble ships no test certificates), started and
               stopped by PID through dnsenv's process helpers.
    AcmeWorld  customer zones on two knotd, the CDN zone, unbound with stub
               zones for them and for the validation zone (served by
               `certfleet serve-dns`, started by the test), and pebble using
               unbound as its DNS server.

Addresses (all 127.0.10.x, or 127.0.$CF_TEST_NET.x, port 53 unless said): 127.0.10.1 unbound,
127.0.10.11 and 127.0.10.12 knotd, 127.0.10.21 the embedded validation-zone
server, 127.0.10.60:14000 pebble's ACME server, :15000 its management
interface.

Pebble 2.4 (Debian) notes, found by trying:
- flags: -config FILE, -dnsserver ADDR:PORT, -strict. -strict is a Go bool
  flag: "-strict false" (as pebble's README writes it) ends flag parsing at
  "false", so every later flag is ignored and strict stays on; this module
  passes -strict=false.
- the management interface serves /roots/N, /intermediates/N, /root-keys/N,
  /intermediate-keys/N (PEM; N=0 unless PEBBLE_ALTERNATE_ROOTS) and
  /cert-status-by-serial/SERIAL. Roots and intermediates are regenerated at
  every start. The directory has no renewalInfo (no ARI in 2.4).
- dns-01: with -dnsserver, pebble sends one TXT question (recursion desired)
  to that server and keeps the TXT records of the answer; it does not chase
  a CNAME itself, so the resolver must return the chain down to the TXT.
- new-nonce answers HEAD with 200 and GET with 204; 5% of good nonces are
  rejected as badNonce unless PEBBLE_WFE_NONCEREJECT says otherwise; valid
  authorizations are reused 50% of the time (PEBBLE_AUTHZREUSE).
"""
import atexit
import base64
import hashlib
import json
import os
import signal
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dnsenv  # noqa: E402  (importing it reaps stale servers)

# CF_TEST_NET moves the whole world to 127.0.N.x, so that two test runs
# (or two developers' runs) on one machine do not collide. ctest runs the
# integration tests one at a time on the default net (RESOURCE_LOCK).
NET = "127.0.%d." % int(os.environ.get("CF_TEST_NET", "10"))
RESOLVER = NET + "1"
NS1, NS2 = NET + "11", NET + "12"
VALIDATION_ADDR, VALIDATION_PORT = NET + "21", 53
VALIDATION_ZONE = "acme.cdn.test"
CDN_ZONE = "cdn.test"
CDN_EDGE = "edge.cdn.test"
CDN_EDGE_ADDR = "192.0.2.1"
CUSTOMER_ZONES = ("example.test", "shop.test")
PEBBLE_ADDR = NET + "60"

_frozen = set()


def _thaw_all():
    # A stopped process never acts on SIGTERM: continue it before dnsenv's
    # own atexit handler (registered earlier, so run later) stops it.
    for pid in list(_frozen):
        try:
            os.kill(pid, signal.SIGCONT)
        except ProcessLookupError:
            pass
    _frozen.clear()


atexit.register(_thaw_all)


def _openssl(*args, **kw):
    p = subprocess.run(["openssl"] + list(args), capture_output=True, **kw)
    if p.returncode != 0:
        raise RuntimeError("openssl %s: %s" % (args[0], p.stderr.decode(errors="replace")))
    return p.stdout


def make_tls_ca(dirpath, names, ips, days=30):
    """A CA and a server certificate (P-256) for names/ips, signed by it.

    Returns (ca_file, cert_file, key_file). The CA has keyUsage and a subject
    key identifier and the leaf an authority key identifier, as strict
    verifiers (Python 3.13's VERIFY_X509_STRICT, Go) want.
    """
    os.makedirs(dirpath, exist_ok=True)
    ca_key, ca = os.path.join(dirpath, "ca.key"), os.path.join(dirpath, "ca.pem")
    key, csr = os.path.join(dirpath, "server.key"), os.path.join(dirpath, "server.csr")
    cert, ext = os.path.join(dirpath, "server.pem"), os.path.join(dirpath, "server.ext")
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", ca_key, "-out", ca, "-days", str(days), "-subj",
             "/CN=certfleet integration test CA %d" % os.getpid(),
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign",
             "-addext", "subjectKeyIdentifier=hash")
    _openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", key, "-out", csr, "-subj", "/CN=%s" % (names or ips)[0])
    san = ",".join(["DNS:" + n for n in names] + ["IP:" + i for i in ips])
    with open(ext, "w") as f:
        f.write("basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                "extendedKeyUsage=serverAuth\nsubjectAltName=%s\n"
                "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n" % san)
    _openssl("x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
             "-out", cert, "-days", str(days), "-extfile", ext)
    return ca, cert, key


class Pebble:
    """One pebble on addr:port (ACME) and addr:mgmt_port (management)."""

    def __init__(self, workdir, addr=PEBBLE_ADDR, port=14000, mgmt_port=15000,
                 dns_server=RESOLVER + ":53", env_extra=None, name="pebble", eab_keys=None):
        self.dir = os.path.join(workdir, name)
        os.makedirs(self.dir, exist_ok=True)
        self.addr, self.port, self.mgmt_port = addr, port, mgmt_port
        self.dns_server = dns_server
        self.env_extra = dict(env_extra or {})
        self.directory_url = "https://%s:%d/dir" % (addr, port)
        self.mgmt_url = "https://%s:%d" % (addr, mgmt_port)
        # ca_file: the CA of pebble's HTTPS certificate (what a client's
        # --ca-bundle needs); not the issuance root (see roots()).
        self.ca_file, self.cert_file, self.key_file = make_tls_ca(
            os.path.join(self.dir, "tls"), ["localhost"], sorted({addr, "127.0.0.1"}))
        self.conf = os.path.join(self.dir, "pebble-config.json")
        with open(self.conf, "w") as f:
            json.dump({"pebble": {
                "listenAddress": "%s:%d" % (addr, port),
                "managementListenAddress": "%s:%d" % (addr, mgmt_port),
                "certificate": self.cert_file, "privateKey": self.key_file,
                # http-01/tls-alpn-01 ports: unused by DNS-01 tests.
                "httpPort": 5002, "tlsPort": 5001,
                "ocspResponderURL": "",
                # eab_keys: {kid: base64url MAC key}; new accounts then need a binding.
                "externalAccountBindingRequired": bool(eab_keys),
                "externalAccountMACKeys": dict(eab_keys or {})}}, f, indent=1)
        self.log = os.path.join(self.dir, "pebble.log")
        self.ssl = ssl.create_default_context(cafile=self.ca_file)
        self.proc = None
        self.start()

    def env(self):
        e = {"PEBBLE_VA_NOSLEEP": "1"}
        e.update({k: str(v) for k, v in self.env_extra.items()})
        return e

    def start(self, deadline=20.0):
        """Start pebble (new issuance roots every time) and wait for /dir."""
        argv = ["pebble", "-config", self.conf, "-dnsserver", self.dns_server, "-strict=false"]
        # dnsenv._start takes no environment: the child inherits os.environ
        # as it is during the call.
        saved = dict(os.environ)
        os.environ.update(self.env())
        try:
            self.proc = dnsenv._start(argv, open(self.log, "a"))
        finally:
            os.environ.clear()
            os.environ.update(saved)
        t0 = time.time()
        last = None
        while time.time() - t0 < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("pebble exited with %s:\n%s" % (self.proc.returncode,
                                                                   self.log_tail()))
            try:
                self.directory()
                return
            except (OSError, ValueError) as e:
                last = e
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("pebble's %s does not answer: %s\n%s" % (self.directory_url, last,
                                                                  self.log_tail()))

    def log_tail(self, n=3000):
        try:
            with open(self.log, errors="replace") as f:
                return f.read()[-n:]
        except OSError:
            return ""

    def get(self, url, timeout=5):
        """GET url over TLS verified by ca_file; returns (status, headers, body bytes)."""
        try:
            with urllib.request.urlopen(url, context=self.ssl, timeout=timeout) as r:
                return r.status, r.headers, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.headers, e.read()

    def directory(self, timeout=5):
        st, _, body = self.get(self.directory_url, timeout)
        if st != 200:
            raise ValueError("GET %s: HTTP %d" % (self.directory_url, st))
        return json.loads(body)

    def _mgmt_pem(self, kind, index):
        st, _, body = self.get("%s/%s/%d" % (self.mgmt_url, kind, index))
        if st != 200:
            raise RuntimeError("pebble management /%s/%d: HTTP %d" % (kind, index, st))
        return body.decode()

    def roots(self, index=0):
        """The issuance root (PEM) that signs the certificates pebble issues."""
        return self._mgmt_pem("roots", index)

    def intermediates(self, index=0):
        """The issuing intermediate (PEM) under roots(index)."""
        return self._mgmt_pem("intermediates", index)

    def root_keys(self, index=0):
        return self._mgmt_pem("root-keys", index)

    def intermediate_keys(self, index=0):
        return self._mgmt_pem("intermediate-keys", index)

    def write_roots(self, path=None, index=0):
        """Write roots(index) to a file (for openssl verify -CAfile); returns the path."""
        path = path or os.path.join(self.dir, "issuance-root-%d.pem" % index)
        with open(path, "w") as f:
            f.write(self.roots(index))
        return path

    def freeze(self):
        """SIGSTOP by PID: connections are accepted by the kernel, never answered."""
        os.kill(self.proc.pid, signal.SIGSTOP)
        _frozen.add(self.proc.pid)

    def thaw(self):
        os.kill(self.proc.pid, signal.SIGCONT)
        _frozen.discard(self.proc.pid)

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        if self.proc is None:
            return
        if self.proc.pid in _frozen:
            self.thaw()
        dnsenv.stop(self.proc)

    def restart(self):
        """Stop and start again: same HTTPS CA, new issuance roots, no accounts."""
        self.stop()
        self.start()


def validation_target(host, zone=VALIDATION_ZONE):
    """The CNAME target of _acme-challenge.HOST (README: the CNAME target rule)."""
    base = host[2:] if host.startswith("*.") else host
    t = base + "." + zone
    if len(t) <= 253:
        return t
    return "h" + base64.b32encode(hashlib.sha256(base.encode()).digest()[:20]).decode().lower() \
        + "." + zone


def txt_publish(txt_publish_path, state_dir, changes):
    """Run tests/integ/txt_publish: changes are (op, name, value), op '+' or '-'."""
    p = subprocess.run([txt_publish_path, state_dir],
                       input="".join("%s %s %s\n" % c for c in changes),
                       capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError("txt_publish: " + p.stderr)


def parse_dig(out):
    """kdig's full output: (status, [(owner, ttl, type, rdata)] of the answer section)."""
    status, answer, sec = None, [], None
    for line in out.splitlines():
        if "->>HEADER<<-" in line:
            status = line.split("status: ")[1].split(";")[0].strip()
        elif line.startswith(";; ") and line.endswith(" SECTION:"):
            sec = line[3:-len(" SECTION:")]
        elif not line.strip():
            sec = None
        elif line.startswith(";"):
            continue
        elif sec == "ANSWER":
            f = line.split(None, 4)
            answer.append((f[0], int(f[1]), f[3], f[4] if len(f) > 4 else ""))
    return status, answer


class AcmeWorld:
    """Customer DNS, CDN DNS, a recursive resolver and pebble, on loopback.

    The validation zone's server (`certfleet serve-dns`) is started by the
    test with start_serve_dns(); until then unbound's questions for names in
    the validation zone time out (SERVFAIL after a few seconds). Zone
    changes are live on knot when set_host returns; unbound may answer from
    its cache for one more second (TTLs are 1 s): use wait_chain().
    """

    def __init__(self, workdir, pebble_env=None, customer_zones=CUSTOMER_ZONES, eab_keys=None,
                 validation_zone=VALIDATION_ZONE, start_pebble=True, extra_stubs=None,
                 unbound_extra=()):
        # extra_stubs: {zone: ["ADDR@PORT", ...]} more stub zones for unbound
        # (a test's own servers); unbound_extra: more unbound server: lines.
        self.workdir = workdir
        self.zone = validation_zone
        self.customer_zones = tuple(customer_zones)
        self.hosts = {z: {} for z in self.customer_zones}  # zone -> host -> records
        # Servers that have not got the latest records of a zone (propagation).
        self.lagging = {z: set() for z in self.customer_zones}
        self.serve_dns = None
        self.pebble = None
        zones = {z: self._zone_records(z) for z in self.customer_zones}
        cdn = ["@ NS ns1", "ns1 A " + NS1, "edge A " + CDN_EDGE_ADDR,
               # The validation zone is delegated to the embedded server.
               "%s. NS ns1.%s." % (self.zone, self.zone),
               "ns1.%s. A %s" % (self.zone, VALIDATION_ADDR)]
        self.knot1 = dnsenv.Knot(workdir, "knot1", NS1, zones=dict(zones, **{CDN_ZONE: cdn}))
        self.knot2 = dnsenv.Knot(workdir, "knot2", NS2, zones=dict(zones))
        self.knots = {NS1: self.knot1, NS2: self.knot2}
        stubs = {z: [NS1 + "@53", NS2 + "@53"] for z in self.customer_zones}
        stubs[CDN_ZONE] = [NS1 + "@53"]
        stubs[self.zone] = ["%s@%d" % (VALIDATION_ADDR, VALIDATION_PORT)]
        stubs.update(extra_stubs or {})
        self.unbound = dnsenv.Unbound(workdir, RESOLVER, stubs=stubs,
                                      nxdomain=["elsewhere.test"], server_extra=unbound_extra)
        if start_pebble:
            self.pebble = Pebble(workdir, dns_server="%s:53" % RESOLVER, env_extra=pebble_env,
                                 eab_keys=eab_keys)

    # ---- customer zones -------------------------------------------------

    def zone_of(self, host):
        base = host[2:] if host.startswith("*.") else host
        best = None
        for z in self.customer_zones:
            if (base == z or base.endswith("." + z)) and (best is None or len(z) > len(best)):
                best = z
        if best is None:
            raise ValueError("%s is in none of the customer zones %s" % (host,
                                                                       self.customer_zones))
        return best

    def _zone_records(self, zone):
        recs = ["@ NS ns1", "@ NS ns2", "ns1 A " + NS1, "ns2 A " + NS2]
        for host, hrecs in sorted(self.hosts[zone].items()):
            recs += hrecs
        return recs

    def _push(self, zone, servers=None):
        """Reload zone on servers (default: all but those marked lagging)."""
        for addr, k in self.knots.items():
            if servers is not None and addr not in servers:
                self.lagging[zone].add(addr)
                continue
            k.set_zone(zone, self._zone_records(zone))
            self.lagging[zone].discard(addr)

    def set_host(self, host, delegate=True, live=True, target=None, extra=(), servers=None):
        """Replace HOST's records in its customer zone and reload it.

        delegate: True gives `_acme-challenge.H CNAME <validation target>.`,
        a string gives that CNAME target instead, False none. live: True
        gives `H CNAME edge.cdn.test.`, a string an A record with that
        address, False none. extra: more zone-file lines. servers: only these
        knot addresses get the change (the others lag behind until the next
        change without servers=)."""
        zone = self.zone_of(host)
        base = host[2:] if host.startswith("*.") else host
        recs = []
        if delegate:
            t = delegate if isinstance(delegate, str) else (target or validation_target(host,
                                                                                      self.zone))
            recs.append("_acme-challenge.%s. CNAME %s." % (base, t.rstrip(".")))
        if live is True:
            recs.append("%s. CNAME %s." % (base, CDN_EDGE))
        elif live:
            recs.append("%s. A %s" % (base, live))
        recs += list(extra)
        self.hosts[zone][host] = recs
        self._push(zone, servers)
        return recs

    def set_hosts(self, hosts, **kw):
        """set_host for many hosts with one zone reload per zone (servers= not taken)."""
        touched = set()
        for host in hosts:
            zone = self.zone_of(host)
            saved = self._push
            self._push = lambda z, servers=None: None
            try:
                self.set_host(host, **kw)
            finally:
                self._push = saved
            touched.add(zone)
        for zone in sorted(touched):
            self._push(zone)

    def add_host(self, host, **kw):
        return self.set_host(host, **kw)

    def remove_host(self, host, servers=None):
        """Delete every record set_host gave HOST."""
        zone = self.zone_of(host)
        self.hosts[zone].pop(host, None)
        self._push(zone, servers)

    def sync(self):
        """Bring lagging servers up to date."""
        for zone in self.customer_zones:
            if self.lagging[zone]:
                self._push(zone)

    # ---- the validation zone --------------------------------------------

    def target(self, host):
        return validation_target(host, self.zone)

    def init_argv(self, certfleet, state_dir, extra=()):
        """`certfleet init` for this world (validation zone served by serve-dns)."""
        argv = [certfleet, "--state", state_dir, "init", "--validation-zone", self.zone,
                "--dns-listen", "%s:%d" % (VALIDATION_ADDR, VALIDATION_PORT),
                "--validation-ns", "ns1.%s=%s" % (self.zone, VALIDATION_ADDR),
                "--resolver", RESOLVER, "--cdn-target", CDN_ZONE]
        if self.pebble:
            argv += ["--directory", self.pebble.directory_url,
                     "--ca-bundle", self.pebble.ca_file]
        return argv + list(extra)

    def certfleet_init(self, certfleet, state_dir, extra=()):
        p = subprocess.run(self.init_argv(certfleet, state_dir, extra), capture_output=True,
                           text=True)
        if p.returncode != 0:
            raise RuntimeError("certfleet init (exit %d): %s" % (p.returncode, p.stderr))
        return p

    def start_serve_dns(self, certfleet_path, state_dir):
        """`certfleet serve-dns` on 127.0.10.21:53 for state_dir, by PID."""
        self.stop_serve_dns()
        log = open(os.path.join(state_dir, "serve-dns.log"), "a")
        self.serve_dns = dnsenv._start(
            [certfleet_path, "--state", state_dir, "serve-dns", "--listen",
             "%s:%d" % (VALIDATION_ADDR, VALIDATION_PORT)], log)
        try:
            dnsenv.wait_answering(VALIDATION_ADDR, VALIDATION_PORT, self.zone)
        except RuntimeError:
            rc = self.serve_dns.poll()
            self.stop_serve_dns()
            raise RuntimeError("serve-dns (exit %s) does not answer; log:\n%s" % (
                rc, open(os.path.join(state_dir, "serve-dns.log")).read()[-2000:]))
        return self.serve_dns

    def stop_serve_dns(self):
        """SIGTERM by PID; returns serve-dns's exit status (None if not running)."""
        if self.serve_dns is None:
            return None
        p, self.serve_dns = self.serve_dns, None
        dnsenv.stop(p)
        return p.returncode

    # ---- questions --------------------------------------------------------

    def resolve(self, name, qtype="TXT", tcp=False):
        """Ask unbound (recursion desired), as pebble does: (status, answer records)."""
        argv = ["kdig", "-p", "53", "@" + RESOLVER, name, qtype, "+timeout=2", "+retry=1"]
        if tcp:
            argv.append("+tcp")
        return parse_dig(subprocess.run(argv, capture_output=True, text=True).stdout)

    def challenge_chain(self, host):
        """unbound's answer to `_acme-challenge.H TXT`: (status, [CNAME...], [TXT values])."""
        base = host[2:] if host.startswith("*.") else host
        st, ans = self.resolve("_acme-challenge.%s." % base, "TXT")
        cnames = [(r[0].rstrip("."), r[3].rstrip(".")) for r in ans if r[2] == "CNAME"]
        txts = sorted(r[3].strip('"') for r in ans if r[2] == "TXT")
        return st, cnames, txts

    def wait_chain(self, host, cond, deadline=10.0):
        """Poll challenge_chain(host) until cond(status, cnames, txts) holds or the
        deadline passes (unbound caches for up to 1 s); returns the last answer."""
        t0 = time.time()
        while True:
            r = self.challenge_chain(host)
            if cond(*r) or time.time() - t0 > deadline:
                return r
            time.sleep(0.2)

    def wait_txt(self, host, value, deadline=10.0):
        """Wait until unbound returns value at _acme-challenge.H; returns the last chain."""
        return self.wait_chain(host, lambda st, c, t: value in t, deadline)

    def stop(self):
        """Stop everything this world started, by PID."""
        self.stop_serve_dns()
        if self.pebble:
            self.pebble.stop()
        for s in (self.unbound, self.knot2, self.knot1):
            s.stop()
