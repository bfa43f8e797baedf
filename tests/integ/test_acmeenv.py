"""The ACME test world (acmeenv.py) works end to end, before certfleet has an
ACME client.

AcmeWorld brings up knot (customer zones and cdn.test), unbound and pebble
on loopback; certfleet init's a state dir for it, serve-dns serves the
validation zone, txt_publish puts TXT records into the store. The test
proves:
- pebble answers /dir and new-nonce over TLS verified by the generated CA
  (and only by it), its management interface hands out the issuance root
  and intermediate, freeze/thaw stop and resume it;
- the DNS path pebble uses: unbound answers `_acme-challenge.H TXT` with
  the customer's CNAME and the embedded server's TXT value; certfleet's own
  delegation and liveness checks agree with the world;
- pebble validates through that path: a minimal ACME client written here
  (standard library, ES256 signatures with the openssl CLI) registers an
  account, orders a certificate for a host, publishes the key authorization
  digest with txt_publish, and the authorization becomes valid; the order
  is finalized and the chain verifies against pebble's root. A wrong digest
  makes another authorization invalid.

    test_acmeenv.py PATH_TO_CERTFLEET PATH_TO_TXT_PUBLISH
"""
import base64
import hashlib
import json
import os
import ssl
import subprocess
import sys
import time
import traceback
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import acmeenv  # noqa: E402
import dnsenv  # noqa: E402

CF, PUBLISH = sys.argv[1], sys.argv[2]
R = dnsenv.Results()
HOST = "www.example.test"
BAD = "bad.shop.test"
# More badNonce answers than pebble's default 5%: the fixture client's retry
# path runs, and env_extra is shown to reach pebble.
NONCEREJECT = 20


def b64u(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def openssl(*args, data=None):
    p = subprocess.run(["openssl"] + list(args), input=data, capture_output=True)
    if p.returncode != 0:
        raise RuntimeError("openssl %s: %s" % (args[0], p.stderr.decode(errors="replace")))
    return p.stdout


def der_ecdsa_to_raw(der, size=32):
    """ECDSA-Sig-Value (SEQUENCE of two INTEGERs) to JWS's r||s."""
    assert der[0] == 0x30
    i = 2 if der[1] < 0x80 else 2 + (der[1] & 0x7f)
    out = b""
    for _ in range(2):
        assert der[i] == 0x02
        n = der[i + 1]
        v = der[i + 2:i + 2 + n].lstrip(b"\0")
        out += v.rjust(size, b"\0")
        i += 2 + n
    return out


class MiniAcme:
    """Just enough RFC 8555 for a test fixture: ES256 account, POST-as-GET,
    badNonce retries. Not product code."""

    def __init__(self, pebble, workdir):
        self.pebble = pebble
        self.key = os.path.join(workdir, "account.key")
        openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                "-out", self.key)
        spki = openssl("pkey", "-in", self.key, "-pubout", "-outform", "DER")
        point = spki[-65:]
        assert point[0] == 4
        self.jwk = {"crv": "P-256", "kty": "EC", "x": b64u(point[1:33]), "y": b64u(point[33:])}
        canon = json.dumps(self.jwk, sort_keys=True, separators=(",", ":"))
        self.thumbprint = b64u(hashlib.sha256(canon.encode()).digest())
        self.dir = pebble.directory()
        self.kid = None
        self.nonce = None
        self.bad_nonces = 0

    def new_nonce(self):
        req = urllib.request.Request(self.dir["newNonce"], method="HEAD")
        with urllib.request.urlopen(req, context=self.pebble.ssl, timeout=5) as r:
            return r.status, r.headers.get("Replay-Nonce")

    def sign(self, data):
        return der_ecdsa_to_raw(openssl("dgst", "-sha256", "-sign", self.key, data=data))

    def post(self, url, payload, use_jwk=False):
        """payload None: POST-as-GET. Returns (status, headers, body: dict or bytes)."""
        for _ in range(10):
            if not self.nonce:
                self.nonce = self.new_nonce()[1]
            prot = {"alg": "ES256", "nonce": self.nonce, "url": url}
            if use_jwk or not self.kid:
                prot["jwk"] = self.jwk
            else:
                prot["kid"] = self.kid
            p64 = b64u(json.dumps(prot))
            pl64 = "" if payload is None else b64u(json.dumps(payload))
            sig = self.sign(("%s.%s" % (p64, pl64)).encode())
            body = json.dumps({"protected": p64, "payload": pl64, "signature": b64u(sig)})
            req = urllib.request.Request(url, data=body.encode(), method="POST",
                                         headers={"Content-Type": "application/jose+json"})
            try:
                with urllib.request.urlopen(req, context=self.pebble.ssl, timeout=10) as r:
                    st, hdrs, raw = r.status, r.headers, r.read()
            except urllib.error.HTTPError as e:
                st, hdrs, raw = e.code, e.headers, e.read()
            self.nonce = hdrs.get("Replay-Nonce")
            ctype = hdrs.get("Content-Type", "")
            data = json.loads(raw) if "json" in ctype and raw else raw
            if st == 400 and isinstance(data, dict) and \
                    data.get("type") == "urn:ietf:params:acme:error:badNonce":
                self.bad_nonces += 1
                continue
            return st, hdrs, data
        raise RuntimeError("badNonce ten times in a row")

    def new_account(self):
        st, hdrs, body = self.post(self.dir["newAccount"], {"termsOfServiceAgreed": True},
                                   use_jwk=True)
        if st in (200, 201):
            self.kid = hdrs.get("Location")
        return st, body

    def new_order(self, host):
        st, hdrs, body = self.post(self.dir["newOrder"],
                                   {"identifiers": [{"type": "dns", "value": host}]})
        return st, hdrs.get("Location"), body

    def get(self, url):
        return self.post(url, None)

    def dns01(self, authz):
        for c in authz.get("challenges", []):
            if c["type"] == "dns-01":
                return c
        return None

    def digest(self, token):
        return b64u(hashlib.sha256(("%s.%s" % (token, self.thumbprint)).encode()).digest())

    def poll(self, url, done=("valid", "invalid"), deadline=30.0):
        t0 = time.time()
        while True:
            st, _, body = self.get(url)
            if st != 200 or body.get("status") in done or time.time() - t0 > deadline:
                return st, body
            time.sleep(0.3)


def check_pebble(world, wd):
    pb = world.pebble
    d = pb.directory()
    R.check(all(k in d for k in ("newAccount", "newNonce", "newOrder", "revokeCert",
                                 "keyChange")), "pebble /dir over verified TLS: %s" % sorted(d))
    R.check(d["newNonce"].startswith("https://%s:14000/" % acmeenv.PEBBLE_ADDR),
            "directory URLs on pebble's address")
    req = urllib.request.Request(d["newNonce"], method="HEAD")
    with urllib.request.urlopen(req, context=pb.ssl, timeout=5) as r:
        R.eq(r.status, 200, "HEAD new-nonce")
        R.check(bool(r.headers.get("Replay-Nonce")), "new-nonce gives a Replay-Nonce")
    # The system's trust store does not know the generated CA: TLS really is verified.
    try:
        urllib.request.urlopen(pb.directory_url, context=ssl.create_default_context(),
                               timeout=5)
        R.check(False, "pebble's certificate must not verify against the system CAs")
    except urllib.error.URLError as e:
        R.check(isinstance(e.reason, ssl.SSLCertVerificationError),
                "without the generated CA: certificate verify failed (%r)" % e.reason)
    # Management interface: the issuance root and intermediate.
    root, inter = pb.roots(), pb.intermediates()
    R.check(root.startswith("-----BEGIN CERTIFICATE-----"), "/roots/0 is a PEM certificate")
    R.check(inter.startswith("-----BEGIN CERTIFICATE-----"),
            "/intermediates/0 is a PEM certificate")
    ipath = os.path.join(wd, "intermediate.pem")
    with open(ipath, "w") as f:
        f.write(inter)
    v = subprocess.run(["openssl", "verify", "-CAfile", pb.write_roots(), ipath],
                       capture_output=True, text=True)
    R.eq(v.returncode, 0, "the intermediate verifies against the root (%s)" % v.stdout.strip())
    log = pb.log_tail(100000)
    R.check("Disabling random VA sleeps" in log, "PEBBLE_VA_NOSLEEP=1 reached pebble")
    R.check("reject %s%% of good nonces" % NONCEREJECT in log,
            "env_extra reached pebble (PEBBLE_WFE_NONCEREJECT=%s)" % NONCEREJECT)
    st, _, _ = pb.get(pb.mgmt_url + "/roots/1")
    R.eq(st, 404, "/roots/1 without alternate roots")


def check_freeze(world):
    pb = world.pebble
    pb.freeze()
    t0 = time.time()
    try:
        pb.directory(timeout=1)
        R.check(False, "a frozen pebble must not answer")
    except OSError:
        R.check(time.time() - t0 < 5, "frozen: /dir times out")
    pb.thaw()
    R.check("newOrder" in pb.directory(), "thawed: /dir answers again")
    root = pb.roots()
    pid = pb.proc.pid
    pb.restart()
    R.check(pb.proc.pid != pid and pb.roots() != root,
            "restart: a new process by PID, new issuance root")


def check_dns(world, state):
    # The CNAME instructions certfleet hands out match acmeenv's rule.
    p = subprocess.run([CF, "--state", state, "instructions", "--format", "json", HOST, BAD],
                       capture_output=True, text=True)
    R.eq(p.returncode, 0, "instructions: " + p.stderr)
    got = {d["host"]: d["target"].rstrip(".") for d in json.loads(p.stdout or "[]")}
    R.eq(got, {HOST: world.target(HOST), BAD: world.target(BAD)},
         "instructions' targets are acmeenv.validation_target's")

    # Before anything is published: the CNAME, then NXDOMAIN (the rcode of
    # the chain's last name: the target does not exist in the validation zone).
    st, cnames, txts = world.challenge_chain(HOST)
    R.eq((st, cnames, txts), ("NXDOMAIN", [("_acme-challenge." + HOST, world.target(HOST))], []),
         "unbound: CNAME into the validation zone, nothing there yet")

    acmeenv.txt_publish(PUBLISH, state, [("+", world.target(HOST), "probe-value")])
    st, cnames, txts = world.wait_txt(HOST, "probe-value")
    R.eq((st, cnames, txts), ("NOERROR", [("_acme-challenge." + HOST, world.target(HOST))],
                              ["probe-value"]),
         "unbound returns the CNAME and the embedded server's TXT for _acme-challenge.H TXT")
    st, ans = world.resolve("_acme-challenge.%s." % HOST, "TXT", tcp=True)
    R.eq([r[2] for r in ans], ["CNAME", "TXT"], "the same over TCP")
    acmeenv.txt_publish(PUBLISH, state, [("-", world.target(HOST), "probe-value")])
    st, _, txts = world.wait_chain(HOST, lambda st, c, t: not t)
    R.eq((st, txts), ("NXDOMAIN", []), "a withdrawn value is gone through unbound")

    # certfleet's own checks see the world as built.
    p = subprocess.run([CF, "--state", state, "check", "--json", HOST, BAD],
                       capture_output=True, text=True)
    res = {}
    for line in p.stdout.splitlines():
        d = json.loads(line)
        res[d["host"]] = d
    for h in (HOST, BAD):
        R.eq(res.get(h, {}).get("delegation", {}).get("result"), "confirmed",
             "certfleet check: delegation of %s (%s)" % (h, p.stderr[-300:]))
        R.eq(res.get(h, {}).get("liveness", {}).get("result"), "live",
             "certfleet check: liveness of %s" % h)

    # A customer change through Knot.set_zone is seen: delegation removed, then back.
    world.set_host(HOST, delegate=False)
    st, cnames, _ = world.wait_chain(HOST, lambda st, c, t: not c)
    R.eq((st, cnames), ("NXDOMAIN", []), "remove the delegation: NXDOMAIN through unbound")
    world.set_host(HOST)
    want = [("_acme-challenge." + HOST, world.target(HOST))]
    R.eq(world.wait_chain(HOST, lambda st, c, t: c == want)[1], want, "delegation back")


def authorize(acme, world, state, host, value_fn):
    """New order for host, publish value_fn(digest), respond, poll the authz.
    Returns (order url, order, authz status, authz)."""
    st, order_url, order = acme.new_order(host)
    R.eq(st, 201, "new order for %s" % host)
    if st != 201:
        return None, None, None, None
    authz_url = order["authorizations"][0]
    st, _, authz = acme.get(authz_url)
    R.eq((st, authz.get("status")), (200, "pending"), "authorization of %s pending" % host)
    ch = acme.dns01(authz)
    R.check(ch is not None, "%s: pebble offers dns-01" % host)
    if ch is None:
        return order_url, order, None, authz
    digest = acme.digest(ch["token"])
    value = value_fn(digest)
    acmeenv.txt_publish(PUBLISH, state, [("+", world.target(host), value)])
    # What pebble will ask, asked first: the resolver serves the value.
    _, _, txts = world.wait_txt(host, value)
    R.check(value in txts, "%s: unbound serves the published value before we respond" % host)
    st, _, body = acme.post(ch["url"], {})
    R.eq(st, 200, "%s: respond to the challenge (%s)" % (host, body))
    st, authz = acme.poll(authz_url)
    acmeenv.txt_publish(PUBLISH, state, [("-", world.target(host), value)])
    return order_url, order, authz.get("status"), authz


def check_acme(world, wd, state):
    acme = MiniAcme(world.pebble, wd)
    st, body = acme.new_account()
    R.eq(st, 201, "new account (%s)" % body)
    R.check(bool(acme.kid) and "/my-account/" in acme.kid, "account URL: %s" % acme.kid)

    order_url, order, status, authz = authorize(acme, world, state, HOST, lambda d: d)
    R.eq(status, "valid", "pebble validated %s through unbound and serve-dns (%s)" % (
        HOST, json.dumps(authz)[:600] if authz else None))
    if status == "valid":
        ch = acme.dns01(authz)
        R.eq(ch and ch.get("status"), "valid", "the dns-01 challenge is valid")
        st, order = acme.poll(order_url, done=("ready", "invalid"))
        R.eq(order.get("status"), "ready", "order ready")
        csr = openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                      "-nodes", "-keyout", os.path.join(wd, "cert.key"), "-subj", "/CN=" + HOST,
                      "-addext", "subjectAltName=DNS:" + HOST, "-outform", "DER")
        st, _, body = acme.post(order["finalize"], {"csr": b64u(csr)})
        R.check(st == 200, "finalize: %s %s" % (st, body))
        st, order = acme.poll(order_url, done=("valid", "invalid"))
        R.eq(order.get("status"), "valid", "order valid")
        st, _, chain = acme.get(order.get("certificate", order_url))
        R.eq(st, 200, "certificate downloaded")
        chain = chain.decode() if isinstance(chain, bytes) else ""
        certs = ["-----BEGIN CERTIFICATE-----" + c for c in
                 chain.split("-----BEGIN CERTIFICATE-----")[1:]]
        R.eq(len(certs), 2, "leaf and one intermediate")
        if len(certs) == 2:
            leaf, inter = os.path.join(wd, "leaf.pem"), os.path.join(wd, "chain-inter.pem")
            open(leaf, "w").write(certs[0])
            open(inter, "w").write(certs[1])
            v = subprocess.run(["openssl", "verify", "-CAfile", world.pebble.write_roots(),
                                "-untrusted", inter, leaf], capture_output=True, text=True)
            R.eq(v.returncode, 0, "the chain verifies against /roots/0: " + v.stdout + v.stderr)
            R.eq(certs[1].strip(), world.pebble.intermediates().strip(),
                 "the chain's intermediate is /intermediates/0")
            txt = openssl("x509", "-in", leaf, "-noout", "-ext", "subjectAltName").decode()
            R.check("DNS:" + HOST in txt, "the leaf names the host: " + txt.strip())

    _, _, status, authz = authorize(acme, world, state, BAD, lambda d: "not-" + d)
    R.eq(status, "invalid", "a wrong digest: pebble says invalid")
    ch = acme.dns01(authz) if authz else None
    err = (ch or {}).get("error", {})
    R.check(err.get("type", "").endswith(":unauthorized"),
            "the challenge error is unauthorized: %s" % err)
    print("pebble badNonce answers retried: %d" % acme.bad_nonces)


def main():
    wd = dnsenv.Workdir("/tmp/cf-integ-acmeenv-")
    state = os.path.join(wd.path, "state")
    world = None
    procs = []
    try:
        world = acmeenv.AcmeWorld(wd.path, pebble_env={"PEBBLE_WFE_NONCEREJECT": NONCEREJECT})
        procs = [world.unbound.proc, world.knot1.proc, world.knot2.proc]
        check_pebble(world, wd.path)

        p = world.certfleet_init(CF, state)
        R.eq(p.returncode, 0, "init")
        p = subprocess.run([CF, "--state", state, "import", "-"], input=HOST + "\n" + BAD + "\n",
                           capture_output=True, text=True)
        R.eq(p.returncode, 0, "import: " + p.stderr)
        world.set_host(HOST)
        world.set_host(BAD)
        srv = world.start_serve_dns(CF, state)
        procs.append(srv)

        check_dns(world, state)
        check_acme(world, wd.path, state)
        check_freeze(world)

        R.eq(world.stop_serve_dns(), 0, "serve-dns exits 0 on SIGTERM")
        procs.append(world.pebble.proc)
        world.stop()
        R.eq([p.poll() is not None for p in procs], [True] * len(procs),
             "every server of the world stopped")
    except Exception:  # a world that cannot start is a failure, not a silent exit
        traceback.print_exc()
        R.check(False, "the test stopped at an exception")
    finally:
        if R.failed and world is not None:
            if world.pebble:
                print("--- pebble.log\n" + world.pebble.log_tail())
            path = os.path.join(state, "serve-dns.log")
            if os.path.exists(path):
                print("--- serve-dns.log\n" + open(path).read()[-2000:])
        if world is not None and world.pebble:
            world.pebble.stop()  # thaws a frozen pebble first
        dnsenv._stop_all()
        wd.cleanup()
    return R.finish()


if __name__ == "__main__":
    sys.exit(main())
