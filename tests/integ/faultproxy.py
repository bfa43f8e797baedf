"""An HTTPS proxy in front of pebble that injects the CA failures pebble never
produces, for tests of engine/acme/order.c's retries and verdicts.

Pebble builds every URL it hands out, and the URL it expects in a JWS, from
the Host header of the request; the proxy keeps the client's Host, so the
client only ever talks to the proxy and pebble accepts the signatures. The
proxy decodes (never verifies) the JWS of each POST to decide what to do:

- newOrder for a host starting "g-limited": 429 rateLimited, Retry-After 3600;
- newOrder for a host starting "g-paused": Let's Encrypt's paused answer
  (429 rateLimited, "Your account is temporarily prevented ...");
- newOrder carrying "replaces" for a host starting "g-replaced": 409
  alreadyReplaced (RFC 9773 §5);
- for hosts starting "g-retry": the first nonce seen on a newOrder for the
  host gets 503 with Retry-After: 1; on each finalize URL, 503 without it;
  on each challenge URL, the connection is closed without an answer (every
  request with that nonce, so curl's own reconnect cannot hide it); on each
  order URL, 500;
- GET /renewal-info/<certID> (the directory gains "renewalInfo"): a window
  from now + 1 day to now + 2 days, Retry-After: 10.

Everything else goes to pebble unchanged. Counters in .stats say what was
injected. Runs in a thread of the test process; stop() shuts it down.
"""
import base64
import http.client
import http.server
import json
import socket
import ssl
import threading
import time
import urllib.parse

HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "proxy-connection"}


def b64d(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def rfc3339(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


class FaultProxy:
    def __init__(self, addr, port, upstream_addr, upstream_port, cert_file, key_file, ca_file):
        self.addr, self.port = addr, port
        self.upstream = (upstream_addr, upstream_port)
        self.up_ctx = ssl.create_default_context(cafile=ca_file)
        self.lock = threading.Lock()
        self.seen = {}  # (kind, key) -> first nonce
        self.stats = {"503": 0, "500": 0, "closed": 0, "429": 0, "paused": 0, "409": 0,
                      "ari": 0, "forwarded": 0}
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_GET(self):
                proxy.handle(self, "GET")

            def do_HEAD(self):
                proxy.handle(self, "HEAD")

            def do_POST(self):
                proxy.handle(self, "POST")

        self.httpd = http.server.ThreadingHTTPServer((addr, port), Handler)
        self.httpd.daemon_threads = True
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert_file, key_file)
        ctx.set_alpn_protocols(["http/1.1"])
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        self.directory_url = "https://%s:%d/dir" % (addr, port)

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()

    # ---- answers of our own ---------------------------------------------

    def send(self, h, status, body=b"", ctype="application/problem+json", extra=()):
        h.send_response(status)
        h.send_header("Content-Type", ctype)
        h.send_header("Content-Length", str(len(body)))
        for k, v in extra:
            h.send_header(k, v)
        h.end_headers()
        if h.command != "HEAD":
            h.wfile.write(body)

    def problem(self, h, status, ptype, detail, retry_after=None):
        body = json.dumps({"type": "urn:ietf:params:acme:error:" + ptype, "detail": detail,
                           "status": status}).encode()
        extra = [("Retry-After", str(retry_after))] if retry_after is not None else []
        self.send(h, status, body, extra=extra)

    def close(self, h):
        """No answer at all: the client sees the connection end."""
        h.close_connection = True
        try:
            h.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def first(self, kind, key, nonce):
        """True while nonce is the first one seen for (kind, key)."""
        with self.lock:
            n = self.seen.setdefault((kind, key), nonce)
        return n == nonce

    # ---- dispatch ---------------------------------------------------------

    def handle(self, h, method):
        path = urllib.parse.urlsplit(h.path).path
        body = b""
        if method == "POST":
            body = h.rfile.read(int(h.headers.get("Content-Length", "0")))
        if method == "GET" and path.startswith("/renewal-info/"):
            return self.renewal_info(h, path)
        if method == "POST":
            try:
                jws = json.loads(body)
                prot = json.loads(b64d(jws["protected"]))
                payload = json.loads(b64d(jws["payload"])) if jws["payload"] else None
            except (ValueError, KeyError):
                prot, payload = {}, None
            if self.inject(h, path, prot.get("nonce", ""), payload):
                return
        self.forward(h, method, body, path)

    def inject(self, h, path, nonce, payload):
        if path == "/order-plz" and payload:
            host = payload["identifiers"][0]["value"]
            if host.startswith("g-limited"):
                self.stats["429"] += 1
                self.problem(h, 429, "rateLimited", "too many new orders (300) from this "
                             "account in the last 3h0m0s", retry_after=3600)
                return True
            if host.startswith("g-paused"):
                self.stats["paused"] += 1
                self.problem(h, 429, "rateLimited", "Your account is temporarily prevented "
                             "from requesting certificates for %s and possibly others. Please "
                             "visit: https://portal.letsencrypt.org/sfe/v1/unpause?jwt=a.b.c"
                             % host)
                return True
            if host.startswith("g-replaced") and "replaces" in payload:
                self.stats["409"] += 1
                self.problem(h, 409, "alreadyReplaced", "certificate %s was already replaced"
                             % payload["replaces"])
                return True
            if host.startswith("g-retry") and self.first("new", host, nonce):
                self.stats["503"] += 1
                self.problem(h, 503, "serverInternal", "try later", retry_after=1)
                return True
            return False
        # The other steps only fail once some "g-retry" host has ordered: the
        # injected failures then fall on every order's URLs alike.
        if not any(k[0] == "new" for k in self.seen):
            return False
        if path.startswith("/finalize-order/") and self.first("fin", path, nonce):
            self.stats["503"] += 1
            self.problem(h, 503, "serverInternal", "busy")
            return True
        if path.startswith("/chalZ/") and self.first("chal", path, nonce):
            self.stats["closed"] += 1
            self.close(h)
            return True
        if path.startswith("/my-order/") and self.first("order", path, nonce):
            self.stats["500"] += 1
            self.problem(h, 500, "serverInternal", "oops")
            return True
        return False

    def renewal_info(self, h, path):
        self.stats["ari"] += 1
        now = int(time.time())
        body = json.dumps({"suggestedWindow": {"start": rfc3339(now + 86400),
                                               "end": rfc3339(now + 2 * 86400)},
                           "explanationURL": "https://ca.example/ari-explained"}).encode()
        self.send(h, 200, body, "application/json", extra=[("Retry-After", "10")])

    def forward(self, h, method, body, path):
        self.stats["forwarded"] += 1
        conn = http.client.HTTPSConnection(*self.upstream, context=self.up_ctx, timeout=30)
        headers = {k: v for k, v in h.headers.items() if k.lower() not in HOP}
        try:
            conn.request(method, h.path, body=body if method == "POST" else None,
                         headers=headers)
            r = conn.getresponse()
            data = r.read()
        except OSError:
            return self.close(h)
        finally:
            conn.close()
        if method == "GET" and path == "/dir" and r.status == 200:
            d = json.loads(data)
            d["renewalInfo"] = "https://%s/renewal-info" % h.headers["Host"]
            data = json.dumps(d).encode()
        h.send_response(r.status)
        for k, v in r.getheaders():
            if k.lower() not in HOP:
                h.send_header(k, v)
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        if method != "HEAD":
            h.wfile.write(data)
