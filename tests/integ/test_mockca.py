"""The bench's mock ACME CA (bench/mockca, certfleet-mockca) against certfleet's
own ACME client: the order pipeline (tests/integ/acme_order_driver.c) and
`certfleet rotate-account-key`, over TLS and HTTP/2 as in production.

The DNS world of acmeenv (knot, unbound, `certfleet serve-dns` for the
validation zone) runs without pebble: the driver publishes each TXT record
and checks its propagation there whatever the CA does. The test proves:
- 50 orders at once succeed with --validate none: every chain verifies
  against the root the mock wrote with --ca-out, names its host, and the
  mock's stats count 50 certificates and no rate-limit violation;
- with --bad-nonce 50 (half of the signed requests refused as badNonce)
  50 more orders still succeed, through the client's retries, and the
  stats count the injected refusals;
- --fail-429 on newOrder is reported to the driver as a rate-limit error
  (CF_ERATELIMIT) for every host;
- --ratelimit with a spec refuses the order past certs_per_domain with
  rateLimited and counts it as the client's violation in the stats;
- --validate dns: the mock asks unbound for TXT at _acme-challenge.H, follows
  the customer's CNAME into the validation zone and finds the client's
  digest; a host without delegation fails at its authorization with the
  mock's problem document;
- renewalInfo (RFC 9773) answers for an issued certificate with the window
  --ari-window puts into its lifetime, and a Retry-After;
- `certfleet rotate-account-key` rolls the account over with keyChange and
  the next orders are signed by the new key under the same account URL;
- with --verify-jws, a small client signing with the openssl CLI: EAB is
  required and checked, a bad signature is refused, onlyReturnExisting,
  `replaces` twice is alreadyReplaced, a revoked certificate gets a renewal
  window in the past, keyChange to another account's key is 409 with that
  account's Location, and after a keyChange only the new key signs;
- --ca-dir keeps the CA across restarts, and the stats file is written on
  SIGUSR1 and SIGTERM; every server stops.

    test_mockca.py PATH_TO_CERTFLEET PATH_TO_MOCKCA PATH_TO_ACME_ORDER_DRIVER
"""
import base64
import hashlib
import hmac
import json
import os
import signal
import ssl
import subprocess
import sys
import time
import traceback
import urllib.error
import urllib.request
from datetime import datetime

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import acmeenv  # noqa: E402
import dnsenv  # noqa: E402

CF, MOCKCA, DRIVER = sys.argv[1], sys.argv[2], sys.argv[3]
R = dnsenv.Results()
MOCK_ADDR, MOCK_PORT = acmeenv.NET + "70", 14443


class MockCA:
    """One certfleet-mockca on MOCK_ADDR:MOCK_PORT, started and stopped by PID."""

    def __init__(self, workdir, *flags):
        self.dir = workdir
        self.ca_file = os.path.join(workdir, "mock-ca.pem")
        self.ca_dir = os.path.join(workdir, "mock-ca")
        self.stats_file = os.path.join(workdir, "mock-stats.json")
        self.log = os.path.join(workdir, "mockca.log")
        self.directory_url = "https://%s:%d/dir" % (MOCK_ADDR, MOCK_PORT)
        self.flags = list(flags)
        self.proc = None

    def start(self, *flags, deadline=10.0):
        argv = [MOCKCA, "--listen", "%s:%d" % (MOCK_ADDR, MOCK_PORT), "--ca-out", self.ca_file,
                "--ca-dir", self.ca_dir, "--stats-json", self.stats_file] + self.flags + \
            list(flags)
        if os.path.exists(self.stats_file):
            os.unlink(self.stats_file)
        start = os.path.getsize(self.log) if os.path.exists(self.log) else 0
        self.proc = dnsenv._start(argv, open(self.log, "a"))
        t0 = time.time()
        while time.time() - t0 < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("certfleet-mockca exited %s:\n%s" % (self.proc.returncode,
                                                                         self.log_tail()))
            with open(self.log, errors="replace") as f:
                f.seek(start)
                if '"listening"' in f.read():
                    self.ssl = ssl.create_default_context(cafile=self.ca_file)
                    return
            time.sleep(0.05)
        raise RuntimeError("certfleet-mockca does not listen:\n" + self.log_tail())

    def log_tail(self, n=3000):
        try:
            with open(self.log, errors="replace") as f:
                return f.read()[-n:]
        except OSError:
            return ""

    def get(self, path):
        """GET over TLS (HTTP/1.1, the mock's fallback): (status, headers, body)."""
        url = "https://%s:%d%s" % (MOCK_ADDR, MOCK_PORT, path)
        try:
            with urllib.request.urlopen(url, context=self.ssl, timeout=5) as r:
                return r.status, r.headers, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.headers, e.read()

    def stats(self):
        """The stats file after SIGUSR1."""
        if os.path.exists(self.stats_file):
            os.unlink(self.stats_file)
        os.kill(self.proc.pid, signal.SIGUSR1)
        t0 = time.time()
        while time.time() - t0 < 5:
            if os.path.exists(self.stats_file):
                try:
                    with open(self.stats_file) as f:
                        return json.load(f)
                except ValueError:
                    pass
            time.sleep(0.05)
        raise RuntimeError("no stats file after SIGUSR1")

    def stop(self):
        """SIGTERM by PID; returns (exit status, the final stats)."""
        if self.proc is None:
            return None, None
        p, self.proc = self.proc, None
        if os.path.exists(self.stats_file):
            os.unlink(self.stats_file)
        dnsenv.stop(p)
        st = None
        if os.path.exists(self.stats_file):
            with open(self.stats_file) as f:
                st = json.load(f)
        return p.returncode, st


def chain_file(state, host):
    return os.path.join(state, host.replace("*", "_wildcard") + ".pem")


def drive(mock, state, zone, hosts, timeout=150):
    """Run the order driver for hosts: {host: its result line}."""
    argv = [DRIVER, mock.directory_url, mock.ca_file, state, acmeenv.RESOLVER, zone] + hosts
    t0 = time.time()
    p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    took = time.time() - t0
    lines = [json.loads(x) for x in p.stdout.splitlines() if x.startswith("{")]
    res = {d["host"]: d for d in lines if "host" in d}
    print("driver: %d hosts in %.2f s, exit %d" % (len(hosts), took, p.returncode), flush=True)
    R.eq(p.returncode, 0, "driver exit status (stderr %s)" % p.stderr[-1500:])
    R.eq(lines[-1].get("loop_closed") if lines else None, True, "the driver's loop closed")
    R.eq(sorted(res), sorted(hosts), "one line per host")
    return res


def check_issued(mock, state, res, hosts, what):
    bad = [(h, res.get(h, {}).get("error_text")) for h in hosts
           if res.get(h, {}).get("status") != "done"]
    R.eq(bad, [], "%s: every host issued" % what)
    for h in hosts[:3]:
        path = chain_file(state, h)
        if not os.path.exists(path):
            R.check(False, "%s: chain file %s" % (h, path))
            continue
        v = subprocess.run(["openssl", "verify", "-CAfile", mock.ca_file, "-untrusted", path, path],
                           capture_output=True, text=True)
        R.eq(v.returncode, 0, "%s: chain verifies against the mock's root (%s%s)" % (
            h, v.stdout.strip(), v.stderr.strip()))
        t = subprocess.run(["openssl", "x509", "-in", path, "-noout", "-ext", "subjectAltName"],
                           capture_output=True, text=True)
        R.check("DNS:" + h in t.stdout, "%s: in the leaf's names (%s)" % (h, t.stdout.strip()))


def cert_id(path):
    """The RFC 9773 certificate identifier of the leaf in path: b64url(AKI).b64url(serial)."""
    t = subprocess.run(["openssl", "x509", "-in", path, "-noout", "-serial", "-ext",
                        "authorityKeyIdentifier", "-dates"], capture_output=True, text=True).stdout
    serial = bytes.fromhex(t.split("serial=")[1].split()[0])
    if serial[0] & 0x80:
        serial = b"\0" + serial
    aki_line = [x for x in t.splitlines() if ":" in x and len(x.strip()) > 40 and "=" not in x][0]
    aki = bytes.fromhex(aki_line.strip().replace("keyid:", "").replace(":", ""))

    def b64(b):
        return base64.urlsafe_b64encode(b).decode().rstrip("=")
    nb = [x for x in t.splitlines() if x.startswith("notBefore=")][0].split("=", 1)[1]
    na = [x for x in t.splitlines() if x.startswith("notAfter=")][0].split("=", 1)[1]
    fmt = "%b %d %H:%M:%S %Y GMT"
    return b64(aki) + "." + b64(serial), datetime.strptime(nb, fmt), datetime.strptime(na, fmt)


def check_ari(mock, state, host):
    cid, nb, na = cert_id(chain_file(state, host))
    st, hdr, body = mock.get("/acme/renewal-info/" + cid)
    R.eq(st, 200, "renewalInfo for %s answers 200 (%r)" % (host, body[:200]))
    if st != 200:
        return
    w = json.loads(body)["suggestedWindow"]
    start = datetime.strptime(w["start"], "%Y-%m-%dT%H:%M:%SZ")
    end = datetime.strptime(w["end"], "%Y-%m-%dT%H:%M:%SZ")
    life = (na - nb).total_seconds()
    R.check(abs((start - nb).total_seconds() - 0.5 * life) <= 2 and
            abs((end - nb).total_seconds() - 0.75 * life) <= 2,
            "the ARI window is 50%%..75%% of the lifetime (%s .. %s; %s .. %s)" % (
                w["start"], w["end"], nb, na))
    R.eq(hdr.get("Retry-After"), "3600", "renewalInfo carries Retry-After")
    st, _, body = mock.get("/acme/renewal-info/AAAA.AAAA")
    R.eq(st, 404, "renewalInfo for another CA's certificate is 404")


def b64u(data):
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def openssl(*args, data=None):
    p = subprocess.run(["openssl"] + list(args), input=data, capture_output=True)
    if p.returncode != 0:
        raise RuntimeError("openssl %s: %s" % (args[0], p.stderr.decode(errors="replace")))
    return p.stdout


def ecdsa_raw(der):
    """A DER ECDSA-Sig-Value as JWS r||s (RFC 7518 §3.4), P-256."""
    i = 2 if der[1] < 0x80 else 3
    out = b""
    for _ in range(2):
        n = der[i + 1]
        out += der[i + 2:i + 2 + n].lstrip(b"\0").rjust(32, b"\0")
        i += 2 + n
    return out


class Key:
    """A P-256 key made with the openssl CLI, and its JWK."""

    def __init__(self, path):
        self.path = path
        openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                "-out", path)
        spki = openssl("pkey", "-in", path, "-pubout", "-outform", "DER")
        self.jwk = {"crv": "P-256", "kty": "EC", "x": b64u(spki[-64:-32]), "y": b64u(spki[-32:])}

    def sign(self, data):
        return ecdsa_raw(openssl("dgst", "-sha256", "-sign", self.path, data=data))


class MiniClient:
    """Signed requests to the mock over HTTP/1.1, for what the order driver does not send."""

    def __init__(self, mock, key):
        self.mock, self.key, self.kid = mock, key, None
        self.dir = json.loads(mock.get("/dir")[2])

    def nonce(self):
        req = urllib.request.Request(self.dir["newNonce"], method="HEAD")
        with urllib.request.urlopen(req, context=self.mock.ssl, timeout=5) as r:
            return r.headers["Replay-Nonce"]

    def jws(self, url, payload, key=None, use_jwk=False, nonce=True):
        key = key or self.key
        prot = {"alg": "ES256", "url": url}
        if nonce:
            prot["nonce"] = self.nonce()
        if use_jwk or not self.kid:
            prot["jwk"] = key.jwk
        else:
            prot["kid"] = self.kid
        p64 = b64u(json.dumps(prot).encode())
        pl64 = "" if payload is None else b64u(json.dumps(payload).encode())
        sig = key.sign(("%s.%s" % (p64, pl64)).encode())
        return {"protected": p64, "payload": pl64, "signature": b64u(sig)}

    def post(self, url, payload, **kw):
        """POST a JWS; payload None is POST-as-GET. Returns (status, headers, body)."""
        body = json.dumps(self.jws(url, payload, **kw)).encode()
        req = urllib.request.Request(url, data=body, method="POST",
                                     headers={"Content-Type": "application/jose+json"})
        try:
            with urllib.request.urlopen(req, context=self.mock.ssl, timeout=5) as r:
                return r.status, r.headers, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.headers, e.read()


def eab(key, kid, mac_key, url):
    """The externalAccountBinding of RFC 8555 §7.3.4 (HS256 over the account's JWK)."""
    p64 = b64u(json.dumps({"alg": "HS256", "kid": kid, "url": url}).encode())
    pl64 = b64u(json.dumps(key.jwk).encode())
    mac = hmac.new(mac_key, ("%s.%s" % (p64, pl64)).encode(), hashlib.sha256).digest()
    return {"protected": p64, "payload": pl64, "signature": b64u(mac)}


def problem_type(body):
    try:
        return json.loads(body).get("type", "").rsplit(":", 1)[-1]
    except ValueError:
        return None


def issue(c, wd, host, replaces=None):
    """newOrder, challenge, finalize, download: (order status code, chain PEM or None)."""
    payload = {"identifiers": [{"type": "dns", "value": host}]}
    if replaces:
        payload["replaces"] = replaces
    st, hdr, body = c.post(c.dir["newOrder"], payload)
    if st != 201:
        return st, body
    order_url, order = hdr["Location"], json.loads(body)
    authz = json.loads(c.post(order["authorizations"][0], None)[2])
    c.post(authz["challenges"][0]["url"], {})
    key = os.path.join(wd, host + ".key")
    csr = openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                  "-keyout", key, "-subj", "/CN=" + host, "-addext", "subjectAltName=DNS:" + host,
                  "-outform", "DER")
    st, _, body = c.post(order["finalize"], {"csr": b64u(csr)})
    order = json.loads(body)
    if st != 200 or order.get("status") != "valid":
        return st, body
    st, hdr, chain = c.post(order["certificate"], None)
    R.eq(hdr.get("Content-Type"), "application/pem-certificate-chain", "certificate type")
    return order_url, chain.decode()


def check_signed(wd):
    """Verified JWS (--verify-jws), EAB, bad signatures, replaces, revocation, key conflicts."""
    mac_key = os.urandom(32)
    mac_file = os.path.join(wd, "eab.key")
    with open(mac_file, "w") as f:
        f.write(b64u(mac_key))
    mock = MockCA(wd)
    mock.start("--verify-jws", "--validate", "none", "--eab-kid", "kid-1", "--eab-hmac-file",
               mac_file)
    k1, k2, k3 = (Key(os.path.join(wd, "k%d.pem" % i)) for i in (1, 2, 3))
    c = MiniClient(mock, k1)
    R.check(c.dir.get("meta", {}).get("externalAccountRequired") is True,
            "the directory says EAB is required")
    na = c.dir["newAccount"]
    st, _, body = c.post(na, {"termsOfServiceAgreed": True})
    R.eq((st, problem_type(body)), (400, "externalAccountRequired"), "newAccount without EAB")
    good = {"termsOfServiceAgreed": True, "externalAccountBinding": eab(k1, "kid-1", mac_key, na)}
    st, _, body = c.post(na, dict(good, externalAccountBinding=eab(k1, "kid-1", b"x" * 32, na)))
    R.eq((st, problem_type(body)), (400, "malformed"), "newAccount with a wrong EAB MAC")
    body = c.jws(na, good)
    body["signature"] = b64u(k2.sign(b"something else"))
    req = urllib.request.Request(na, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/jose+json"})
    try:
        urllib.request.urlopen(req, context=mock.ssl, timeout=5)
        R.check(False, "a bad JWS signature is refused")
    except urllib.error.HTTPError as e:
        R.eq((e.code, problem_type(e.read())), (400, "malformed"), "a bad JWS signature")
    st, hdr, _ = c.post(na, good)
    R.eq(st, 201, "newAccount with EAB")
    c.kid = hdr["Location"]
    st, hdr, _ = c.post(na, {"onlyReturnExisting": True}, use_jwk=True)
    R.eq((st, hdr.get("Location")), (200, c.kid), "onlyReturnExisting finds the account")
    st, _, body = MiniClient(mock, k3).post(na, {"onlyReturnExisting": True}, use_jwk=True)
    R.eq((st, problem_type(body)), (400, "accountDoesNotExist"), "onlyReturnExisting, new key")

    url1, chain1 = issue(c, wd, "m1.example.test")
    R.check(isinstance(chain1, str) and chain1.count("BEGIN CERTIFICATE") == 2,
            "a verified client gets a chain of two")
    path1 = os.path.join(wd, "m1.pem")
    with open(path1, "w") as f:
        f.write(chain1 if isinstance(chain1, str) else "")
    cid, _, _ = cert_id(path1)
    _, chain2 = issue(c, wd, "m1.example.test", replaces=cid)
    R.check(isinstance(chain2, str), "an order replacing the certificate issues (%r)" % chain2)
    st, body = issue(c, wd, "m1.example.test", replaces=cid)
    R.eq((st, problem_type(body)), (409, "alreadyReplaced"), "replacing it twice")
    st, _, _ = c.post(c.dir["revokeCert"], {"certificate": b64u(openssl(
        "x509", "-in", path1, "-outform", "DER"))})
    R.eq(st, 200, "revokeCert by the account")
    st, _, body = mock.get("/acme/renewal-info/" + cid)
    end = json.loads(body)["suggestedWindow"]["end"] if st == 200 else ""
    R.check(st == 200 and end < time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "a revoked certificate's renewal window is in the past (%s)" % end)

    # keyChange (RFC 8555 §7.3.5) to a key another account holds: 409 with its Location.
    c3 = MiniClient(mock, k3)
    st, hdr, _ = c3.post(na, {"termsOfServiceAgreed": True,
                              "externalAccountBinding": eab(k3, "kid-1", mac_key, na)})
    R.eq(st, 201, "a second account")
    c3.kid = hdr["Location"]
    kc = c.dir["keyChange"]
    inner = c.jws(kc, {"account": c.kid, "oldKey": k1.jwk}, key=k3, use_jwk=True, nonce=False)
    st, hdr, _ = c.post(kc, inner)
    R.eq((st, hdr.get("Location")), (409, c3.kid), "keyChange to another account's key")
    inner = c.jws(kc, {"account": c.kid, "oldKey": k1.jwk}, key=k2, use_jwk=True, nonce=False)
    st, _, _ = c.post(kc, inner)
    R.eq(st, 200, "keyChange to a new key")
    c.key = k2
    st, _, _ = c.post(c.kid, None)
    R.eq(st, 200, "the account answers to the new key")
    c.key = k1
    st, _, body = c.post(c.kid, None)
    R.eq((st, problem_type(body)), (400, "malformed"), "the old key no longer signs for it")
    st = mock.stats()
    R.eq(st["rate_limit_violations"], 0, "no violation in the signed checks")
    R.check(st["signatures"]["jws_verified"] > 10 and st["signatures"]["csr_verified"] == 2,
            "signatures were verified (%s)" % st["signatures"])
    mock.stop()


def run(wd, world, state):
    zone = world.zone
    mock = MockCA(wd, "--ari-window", "50,75", "--ari-retry-after", "3600", "--cert-lifetime",
                  "30d")

    # 1. 50 orders at once, --validate none.
    mock.start("--validate", "none")
    world.certfleet_init(CF, state, ["--directory", mock.directory_url,
                                     "--ca-bundle", mock.ca_file])
    world.start_serve_dns(CF, state)
    hosts = ["h%02d.example.test" % i for i in range(50)]
    res = drive(mock, state, zone, hosts)
    check_issued(mock, state, res, hosts, "--validate none")
    check_ari(mock, state, hosts[0])
    st = mock.stats()
    R.eq((st["certs_issued"], st["orders"], st["rate_limit_violations"]), (50, 50, 0),
         "stats after the first batch: 50 certificates, 50 orders, no violation")
    R.check(st["transport"]["h2"] >= 1 and st["transport"]["connections"] <= 8,
            "the client multiplexed HTTP/2 on few connections (%s)" % st["transport"])
    rc, final = mock.stop()
    R.eq(rc, 0, "the mock exits 0 on SIGTERM")
    R.check(final is not None and final["certs_issued"] == 50,
            "the stats file is written on SIGTERM")

    # 2. Half of the signed requests refused as badNonce: the client retries through it.
    with open(mock.ca_file) as f:
        root_before = f.read()
    mock.start("--validate", "none", "--bad-nonce", "50", "--seed", "7")
    with open(mock.ca_file) as f:
        R.eq(f.read(), root_before, "--ca-dir keeps the same root across restarts")
    hosts2 = ["n%02d.example.test" % i for i in range(50)]
    res = drive(mock, state, zone, hosts2)
    check_issued(mock, state, res, hosts2, "--bad-nonce 50")
    st = mock.stats()
    R.check(st["injected"]["bad_nonce"] >= 50,
            "badNonce refusals were injected (%d)" % st["injected"]["bad_nonce"])
    R.eq(st["certs_issued"], 50, "--bad-nonce 50: 50 certificates")
    mock.stop()

    # 3. 429 on newOrder: a rate-limit error for the client.
    mock.start("--validate", "none", "--fail-429", "100", "--inject-on", "new-order",
               "--retry-after", "120")
    hosts3 = ["r%d.example.test" % i for i in range(5)]
    res = drive(mock, state, zone, hosts3)
    R.eq(sorted(set((d["status"], d["error"]) for d in res.values())),
         [("failed", "CF_ERATELIMIT")], "--fail-429: every order fails as rate limited")
    R.check(all(d["state"] == "new_order" for d in res.values()),
            "--fail-429: the orders fail at newOrder")
    st = mock.stats()
    R.eq((st["injected"]["rate_limited_429"], st["certs_issued"]), (5, 0),
         "--fail-429: five injected 429s, no certificate")
    mock.stop()

    # 3b. Let's Encrypt-style limits from a spec: the third certificate for one registered
    # domain is refused, and counted as the client's violation.
    mock.start("--validate", "none", "--ratelimit", "none,certs_per_domain=2/1h")
    hosts3b = ["l%d.shop.test" % i for i in range(3)]
    res = drive(mock, state, zone, hosts3b)
    R.eq(sorted((d["status"], d["error"]) for d in res.values()),
         [("done", ""), ("done", ""), ("failed", "CF_ERATELIMIT")],
         "certs_per_domain=2/1h: two certificates, then rateLimited")
    st = mock.stats()
    R.eq((st["rate_limit_violations"], st["rate_limited"]["certs_per_domain"]), (1, 1),
         "the refused order is counted as one violation of certs_per_domain")
    mock.stop()

    # 4. --validate dns through unbound: the CNAME into the validation zone, as a CA does it.
    mock.start("--validate", "dns", "--dns-server", acmeenv.RESOLVER)
    good = ["d1.example.test", "d2.shop.test", "*.wild.example.test"]
    bad = "nodeleg.shop.test"
    for h in good:
        world.set_host(h)
    world.set_host(bad, delegate=False)
    res = drive(mock, state, zone, good + [bad])
    check_issued(mock, state, res, good, "--validate dns")
    d = res.get(bad, {})
    R.eq((d.get("status"), d.get("error"), d.get("state")), ("failed", "CF_EACME", "poll_authz"),
         "%s fails at its authorization" % bad)
    R.check("_acme-challenge.%s" % bad in d.get("error_text", ""),
            "the failure names the challenge's name: %r" % d.get("error_text"))
    st = mock.stats()
    R.eq((st["authz_valid"], st["authz_invalid"]), (3, 1), "--validate dns: 3 valid, 1 invalid")
    R.check(st["dns"]["queries"] >= 4, "the mock asked DNS (%s)" % st["dns"])
    mock.stop()

    # 5. keyChange with the real client, then orders under the same account with the new key.
    mock.start("--validate", "none")
    res = drive(mock, state, zone, ["k0.example.test"])
    p = subprocess.run([CF, "--state", state, "rotate-account-key"], capture_output=True,
                       text=True, timeout=60)
    print("rotate-account-key: exit %d: %s%s" % (p.returncode, p.stdout, p.stderr[-800:]),
          flush=True)
    R.eq(p.returncode, 0, "rotate-account-key against the mock exits 0")
    res = drive(mock, state, zone, ["k1.example.test", "k2.example.test"])
    check_issued(mock, state, res, ["k1.example.test", "k2.example.test"], "after keyChange")
    st = mock.stats()
    R.eq((st["key_changes"], st["accounts"]), (1, 1),
         "one key change, and the new key found the same account")
    R.eq(st["signatures"]["jws_failed"], 0, "no JWS failed to verify")
    rc, final = mock.stop()
    R.eq(rc, 0, "the mock exits 0")

    # 6. What certfleet's order pipeline does not send, with a small signing client.
    check_signed(wd)


def main():
    wd = dnsenv.Workdir("/tmp/cf-integ-mockca-")
    state = os.path.join(wd.path, "state")
    world = None
    try:
        world = acmeenv.AcmeWorld(wd.path, start_pebble=False)
        procs = [world.unbound.proc, world.knot1.proc, world.knot2.proc]
        run(wd.path, world, state)
        procs.append(world.serve_dns)
        R.eq(world.stop_serve_dns(), 0, "serve-dns exits 0 on SIGTERM")
        world.stop()
        R.eq([p.poll() is not None for p in procs], [True] * len(procs),
             "every server stopped")
    except Exception:  # a world that cannot start is a failure, not a silent exit
        traceback.print_exc()
        R.check(False, "the test stopped at an exception")
    finally:
        if R.failed:
            path = os.path.join(wd.path, "mockca.log")
            if os.path.exists(path):
                print("--- mockca.log\n" + open(path, errors="replace").read()[-3000:])
        dnsenv._stop_all()
        wd.cleanup()
    return R.finish()


if __name__ == "__main__":
    sys.exit(main())
