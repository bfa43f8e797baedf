"""The HTTP client (engine/http) against pebble over HTTPS on loopback.

pebble serves its ACME API on 127.0.10.60:14000 with a server certificate
for 127.0.0.1/localhost/127.0.10.60 issued by a CA this test generates with
the openssl CLI. http_driver (tests/integ/http_driver.c) runs requests on
one loop and prints one JSON line per response.

    test_http.py PATH_TO_CERTFLEET PATH_TO_HTTP_DRIVER
"""
import json
import os
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dnsenv  # noqa: E402

DRIVER = sys.argv[2]
ADDR = "127.0.10.60"
BASE = "https://%s:14000" % ADDR
R = dnsenv.Results()


def openssl(*args):
    subprocess.run(["openssl"] + list(args), check=True, capture_output=True)


def make_ca(d, name):
    """A self-signed CA; returns (cert, key) paths."""
    key, crt = os.path.join(d, name + ".key"), os.path.join(d, name + ".pem")
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", key, "-out", crt, "-days", "2", "-subj", "/CN=certfleet test " + name,
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    return crt, key


def make_server_cert(d, ca_crt, ca_key):
    key, csr, crt = (os.path.join(d, "server." + e) for e in ("key", "csr", "pem"))
    ext = os.path.join(d, "server.ext")
    with open(ext, "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,IP:%s,DNS:localhost\n"
                "basicConstraints=critical,CA:FALSE\n"
                "keyUsage=critical,digitalSignature\n"
                "extendedKeyUsage=serverAuth\n" % ADDR)
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", key, "-out", csr, "-subj", "/CN=localhost")
    openssl("x509", "-req", "-in", csr, "-CA", ca_crt, "-CAkey", ca_key, "-CAcreateserial",
            "-out", crt, "-days", "2", "-extfile", ext)
    return crt, key


def wait_listening(addr, port, deadline=15.0):
    t0 = time.time()
    while time.time() - t0 < deadline:
        try:
            socket.create_connection((addr, port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("pebble does not listen on %s:%d" % (addr, port))


def port_busy(addr, port):
    try:
        socket.create_connection((addr, port), timeout=0.5).close()
        return True
    except OSError:
        return False


def start_pebble(d, crt, key):
    # Another test's pebble on the address would answer with its own certificate.
    t0 = time.time()
    while port_busy(ADDR, 14000):
        if time.time() - t0 > 20:
            raise RuntimeError("%s:14000 is taken by another server" % ADDR)
        time.sleep(0.5)
    conf = os.path.join(d, "pebble.json")
    with open(conf, "w") as f:
        json.dump({"pebble": {
            "listenAddress": ADDR + ":14000",
            "managementListenAddress": ADDR + ":15000",
            "certificate": crt, "privateKey": key,
            "httpPort": 5002, "tlsPort": 5001, "ocspResponderURL": "",
            "externalAccountBindingRequired": False}}, f)
    os.environ["PEBBLE_VA_NOSLEEP"] = "1"
    # "-strict=false": a Go boolean flag; "-strict false" would end flag parsing.
    proc = dnsenv._start(["pebble", "-config", conf, "-strict=false"],
                         open(os.path.join(d, "pebble.log"), "w"))
    wait_listening(ADDR, 14000)
    time.sleep(0.2)
    if proc.poll() is not None:
        with open(os.path.join(d, "pebble.log")) as f:
            raise RuntimeError("pebble exited: " + f.read()[-2000:])
    return proc


def drive(args, timeout=60):
    """Runs the driver; returns (rc, responses, summary, stderr, seconds)."""
    t0 = time.time()
    p = subprocess.run([DRIVER] + list(args), capture_output=True, text=True, timeout=timeout)
    secs = time.time() - t0
    resps, summary = [], {}
    for line in p.stdout.splitlines():
        try:
            obj = json.loads(line)
        except ValueError:
            R.check(False, "driver printed a non-JSON line: %r" % line)
            continue
        if "summary" in obj:
            summary = obj["summary"]
        else:
            resps.append(obj)
    return p.returncode, resps, summary, p.stderr, secs


def main():
    work = dnsenv.Workdir("cf-http-")
    d = work.path
    pebble = None
    try:
        ca_crt, ca_key = make_ca(d, "ca")
        other_crt, _ = make_ca(d, "other")
        crt, key = make_server_cert(d, ca_crt, ca_key)
        pebble = start_pebble(d, crt, key)
        ca = ["--ca", ca_crt]

        # GET /dir over HTTP/2, verified against our CA.
        rc, rs, sm, err, _ = drive(ca + ["--show-body", "GET", BASE + "/dir"])
        R.eq(rc, 0, "GET /dir exit status (stderr %s)" % err)
        R.eq(len(rs), 1, "GET /dir responses")
        if rs:
            r = rs[0]
            R.eq(r["status"], 200, "GET /dir status")
            R.eq(r["error"], None, "GET /dir error")
            R.eq(r["http_version"], 20, "GET /dir HTTP version")
            R.check((r["content_type"] or "").startswith("application/json"),
                    "GET /dir content type %r" % r["content_type"])
            try:
                dirobj = json.loads(r["body"])
            except ValueError:
                dirobj = {}
            R.check("newNonce" in dirobj and "newOrder" in dirobj, "/dir is a directory")
            R.eq(r["body_len"], len(r["body"].encode()), "GET /dir body length")
            new_nonce = dirobj.get("newNonce", BASE + "/nonce-plz")
        else:
            new_nonce = BASE + "/nonce-plz"
            dirobj = {}

        # HEAD newNonce: a Replay-Nonce and the directory as rel="index".
        rc, rs, sm, err, _ = drive(ca + ["HEAD", new_nonce, "3"])
        R.eq(rc, 0, "HEAD newNonce exit status")
        nonces = set()
        for r in rs:
            R.eq(r["error"], None, "HEAD newNonce error")
            R.check(r["status"] in (200, 204), "HEAD newNonce status %r" % r["status"])
            R.check(bool(r["replay_nonce"]), "HEAD newNonce Replay-Nonce")
            R.eq(r["body_len"], 0, "HEAD body length")
            nonces.add(r["replay_nonce"])
            R.check({"rel": "index", "url": BASE + "/dir"} in r["links"],
                    "rel=index link in %r" % r["links"])
        R.eq(len(nonces), 3, "three distinct nonces")

        # POST: pebble answers a JWS-less body with a problem document (and a nonce).
        rc, rs, sm, err, _ = drive(ca + ["--show-body", "--body", "{}",
                                         "POST", dirobj.get("newAccount", BASE + "/sign-me-up")])
        R.eq(rc, 0, "POST exit status")
        if rs:
            R.eq(rs[0]["status"], 400, "POST bad JWS status")
            R.check("problem+json" in (rs[0]["content_type"] or ""),
                    "POST problem document %r" % rs[0]["content_type"])
            R.check(bool(rs[0]["replay_nonce"]), "POST error carries a Replay-Nonce")

        # 200 parallel GETs: all succeed over at most 4 connections.
        t0 = time.time()
        rc, rs, sm, err, secs = drive(ca + ["GET", BASE + "/dir", "200"], timeout=90)
        R.eq(rc, 0, "200 GETs exit status (stderr %s)" % err[-500:])
        R.eq(len(rs), 200, "200 GETs responses")
        R.eq(sum(1 for r in rs if r["status"] == 200 and r["error"] is None), 200,
             "200 GETs succeeded")
        R.check(all(r["http_version"] == 20 for r in rs), "200 GETs all over HTTP/2")
        R.check(1 <= sm.get("connections", 0) <= 4,
                "200 GETs opened %r connections" % sm.get("connections"))
        R.check(1 <= sm.get("local_ports", 0) <= 4,
                "200 GETs used %r local ports" % sm.get("local_ports"))
        print("200 GETs: %.2fs, %d connections, %d local ports" %
              (secs, sm.get("connections", -1), sm.get("local_ports", -1)), flush=True)
        # A lower bound is honoured too.
        rc, rs, sm, err, _ = drive(ca + ["--max-conn", "1", "GET", BASE + "/dir", "50"])
        R.eq(sum(1 for r in rs if r["status"] == 200), 50, "50 GETs on one connection")
        R.eq(sm.get("connections"), 1, "--max-conn 1 connections")

        # Another CA's bundle: a TLS verification error, clearly reported.
        rc, rs, sm, err, _ = drive(["--ca", other_crt, "GET", BASE + "/dir"])
        R.eq(rc, 0, "wrong CA exit status")
        if rs:
            R.eq(rs[0]["status"], 0, "wrong CA status")
            R.eq(rs[0]["error"], "CF_EHTTP", "wrong CA error")
            R.check(rs[0]["error_text"].startswith("TLS error"),
                    "wrong CA error text %r" % rs[0]["error_text"])
            print("wrong CA:", rs[0]["error_text"], flush=True)
        # A missing bundle file fails the same way, not silently.
        rc, rs, sm, err, _ = drive(["--ca", os.path.join(d, "nope.pem"), "GET", BASE + "/dir"])
        R.check(rs and rs[0]["error"] == "CF_EHTTP" and rs[0]["status"] == 0,
                "missing CA file: %r" % (rs[0] if rs else None))

        # http:// is refused without any connection: count accepts on a listener.
        lsock = socket.socket()
        lsock.bind((ADDR, 18080))
        lsock.listen(8)
        lsock.settimeout(0.5)
        rc, rs, sm, err, secs = drive(ca + ["GET", "http://%s:18080/dir" % ADDR,
                                            "GET", "HTTP://%s:18080/x" % ADDR,
                                            "GET", "ftp://%s:18080/x" % ADDR])
        accepted = 0
        try:
            while True:
                c, _ = lsock.accept()
                accepted += 1
                c.close()
        except socket.timeout:
            pass
        lsock.close()
        R.eq(rc, 0, "http:// exit status")
        R.eq(len(rs), 3, "http:// responses")
        for r in rs:
            R.eq(r["error"], "CF_EHTTP", "%s error" % r["url"])
            R.check("only https" in r["error_text"], "%s: %r" % (r["url"], r["error_text"]))
            R.eq(r["new_connections"], 0, "%s connections" % r["url"])
        R.eq(accepted, 0, "connections made for non-https URLs")
        if rs:
            print("http://:", rs[0]["error_text"], flush=True)

        # A body cap smaller than /dir's body: CF_ETOOBIG.
        rc, rs, sm, err, _ = drive(ca + ["--max-body", "64", "GET", BASE + "/dir", "3"])
        R.eq(rc, 0, "body cap exit status")
        R.eq([r["error"] for r in rs], ["CF_ETOOBIG"] * 3, "body cap errors")
        if rs:
            print("body cap:", rs[0]["error_text"], flush=True)
        # And a cap the body fits exactly.
        rc, rs, sm, err, _ = drive(ca + ["GET", BASE + "/dir"])
        n = rs[0]["body_len"] if rs else 0
        rc, rs, sm, err, _ = drive(ca + ["--max-body", str(n), "GET", BASE + "/dir"])
        R.check(rs and rs[0]["error"] is None and rs[0]["body_len"] == n,
                "body of exactly the cap: %r" % (rs[0] if rs else None))

        # A frozen server: every request times out within the configured timeout.
        os.kill(pebble.pid, signal.SIGSTOP)
        try:
            rc, rs, sm, err, secs = drive(ca + ["--timeout", "1500", "GET", BASE + "/dir", "5",
                                                "HEAD", new_nonce])
            R.eq(rc, 0, "frozen exit status")
            R.eq([r["error"] for r in rs], ["CF_ETIMEOUT"] * 6, "frozen errors")
            R.check(all(1400 <= r["elapsed_ms"] <= 3000 for r in rs),
                    "frozen elapsed %r" % [r["elapsed_ms"] for r in rs])
            R.check(secs < 5, "frozen run took %.1fs" % secs)
            if rs:
                print("frozen:", rs[0]["error_text"], flush=True)
            # Freeing the client cancels what is in flight, each callback once.
            rc, rs, sm, err, secs = drive(ca + ["--timeout", "10000", "--cancel-after", "300",
                                                "GET", BASE + "/dir", "4"])
            R.eq(rc, 0, "cancel exit status")
            R.eq([r["error"] for r in rs], ["CF_ECANCELED"] * 4, "cancelled errors")
            R.check(sm.get("loop_closed") is True, "loop closed after cancel")
            R.check(secs < 3, "cancel run took %.1fs" % secs)
        finally:
            os.kill(pebble.pid, signal.SIGCONT)
        # And it recovers once thawed.
        rc, rs, sm, err, _ = drive(ca + ["GET", BASE + "/dir"])
        R.check(rs and rs[0]["status"] == 200, "GET after SIGCONT")
    finally:
        if pebble:
            dnsenv.stop(pebble)
        work.cleanup()
    return R.finish()


if __name__ == "__main__":
    sys.exit(main())
