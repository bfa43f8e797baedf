"""Real DNS servers on loopback for integration tests: knot (authoritative,
RFC 2136 primary) and unbound (recursive resolver with stub zones).

Every server listens on a 127.0.10.x address chosen by the test, is started
by this module and stopped by its PID (never by name). Zone files are
rewritten and reloaded with knotc to produce real zone changes.
"""
import atexit
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

_procs = []
# Servers started by earlier test runs that died before cleaning up (a ctest
# timeout kills with SIGKILL) are listed here and stopped by PID next time.
PIDFILE = "/tmp/certfleet-test-servers.pids"


def _alive(pid):
    try:
        os.kill(int(pid), 0)
        return True
    except (ProcessLookupError, ValueError):
        return False


def _reap_stale():
    """Stop servers whose test (owner) died; servers of live tests are left alone."""
    try:
        with open(PIDFILE) as f:
            entries = [line.split(" ", 2) for line in f.read().splitlines()
                       if line.count(" ") >= 2]
    except FileNotFoundError:
        return
    keep = []
    for pid, owner, cmd in entries:
        if _alive(owner):
            keep.append("%s %s %s" % (pid, owner, cmd))
            continue
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                alive = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        if alive == cmd.strip():
            try:
                os.kill(int(pid), signal.SIGKILL)
            except ProcessLookupError:
                pass
    time.sleep(0.2)
    with open(PIDFILE, "w") as f:
        f.write("".join(k + "\n" for k in keep))


def _stop_all():
    for p in list(_procs):
        stop(p)


def _on_term(signum, frame):
    _stop_all()
    sys.exit(128 + signum)


_reap_stale()
atexit.register(_stop_all)
signal.signal(signal.SIGTERM, _on_term)


def stop(proc, sig=signal.SIGTERM):
    """Stop one server by its PID and wait for it."""
    if proc.poll() is None:
        try:
            os.kill(proc.pid, sig)
            proc.wait(timeout=10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
            except ProcessLookupError:
                pass
    if proc in _procs:
        _procs.remove(proc)


def _start(argv, log):
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    _procs.append(proc)
    with open(PIDFILE, "a") as f:
        f.write("%d %d %s\n" % (proc.pid, os.getpid(), " ".join(argv)))
    return proc


def dig(server, port, name, qtype, rd=False, timeout=1):
    """Ask server one question with kdig; returns its output text."""
    argv = ["kdig", "-p", str(port), "@" + server, name, qtype, "+timeout=%d" % timeout,
            "+retry=0", "+short"]
    if not rd:
        argv.append("+norec")
    return subprocess.run(argv, capture_output=True, text=True).stdout


def wait_answering(server, port, name, qtype="SOA", deadline=10.0, rd=False):
    t0 = time.time()
    while time.time() - t0 < deadline:
        r = subprocess.run(["kdig", "-p", str(port), "@" + server, name, qtype, "+timeout=1",
                            "+retry=0"] + ([] if rd else ["+norec"]),
                           capture_output=True, text=True)
        if "status: NOERROR" in r.stdout or "status: NXDOMAIN" in r.stdout:
            return
        time.sleep(0.1)
    raise RuntimeError("%s:%d does not answer for %s" % (server, port, name))


class Knot:
    """One knotd serving the given zones (apex -> list of record lines)."""

    def __init__(self, workdir, name, addr, port=53, zones=None, tsig=None):
        self.dir = os.path.join(workdir, name)
        os.makedirs(os.path.join(self.dir, "zones"), exist_ok=True)
        self.addr, self.port = addr, port
        self.zones = {}
        self.serials = {}
        self.conf = os.path.join(self.dir, "knot.conf")
        self.sock = os.path.join(self.dir, "knot.sock")
        self.tsig = tsig  # (name, base64 secret) allowed to update every zone
        for apex, records in (zones or {}).items():
            self.set_zone(apex, records, reload=False)
        self._write_conf()
        self.proc = _start(["knotd", "-c", self.conf],
                           open(os.path.join(self.dir, "knotd.log"), "w"))
        for apex in self.zones:
            wait_answering(addr, port, apex)

    def _write_conf(self):
        acl = ""
        key = ""
        if self.tsig:
            key = 'key:\n  - id: %s\n    algorithm: hmac-sha256\n    secret: %s\n' % self.tsig
            acl = "acl:\n  - id: update\n    key: %s\n    action: update\n" % self.tsig[0]
        zones = "".join("  - domain: %s\n" % z + ("    acl: update\n" if self.tsig else "")
                        for z in self.zones)
        with open(self.conf, "w") as f:
            f.write("""server:
    rundir: "{d}"
    listen: {a}@{p}
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
database:
    storage: "{d}/db"
control:
    listen: "{s}"
log:
  - target: stderr
    any: warning
{key}{acl}template:
  - id: default
    storage: "{d}/zones"
    file: "%s.zone"
    semantic-checks: off
    zonefile-sync: -1
    zonefile-load: whole
    journal-content: none
zone:
{zones}""".format(d=self.dir, a=self.addr, p=self.port, s=self.sock, key=key, acl=acl,
                  zones=zones))

    def set_zone(self, apex, records, reload=True):
        """Write apex's zone file (SOA and a default TTL added) and reload it."""
        self.serials[apex] = self.serials.get(apex, 0) + 1
        lines = ["$ORIGIN %s." % apex, "$TTL 1",
                 "@ SOA ns1.%s. hostmaster.%s. %d 60 60 600 1" % (apex, apex,
                                                                  self.serials[apex])]
        lines += records
        with open(os.path.join(self.dir, "zones", apex + ".zone"), "w") as f:
            f.write("\n".join(lines) + "\n")
        self.zones[apex] = records
        if reload:
            r = subprocess.run(["knotc", "-s", self.sock, "zone-reload", apex],
                               capture_output=True, text=True)
            if r.returncode != 0:
                raise RuntimeError("knotc zone-reload %s: %s" % (apex, r.stdout + r.stderr))
            # Wait until the new serial is served.
            t0 = time.time()
            while time.time() - t0 < 10:
                out = dig(self.addr, self.port, apex, "SOA")
                if out.split() and out.split()[2] == str(self.serials[apex]):
                    return
                time.sleep(0.05)
            raise RuntimeError("%s did not load serial %d" % (apex, self.serials[apex]))

    def stop(self):
        stop(self.proc)

    def restart(self):
        """Start knotd again (after stop(), by PID) on the same config and zone files."""
        self.stop()
        self.proc = _start(["knotd", "-c", self.conf],
                           open(os.path.join(self.dir, "knotd.log"), "a"))
        for apex in self.zones:
            wait_answering(self.addr, self.port, apex)


class Unbound:
    """A recursive resolver whose stub zones point at the test's servers."""

    def __init__(self, workdir, addr, port=53, stubs=None, nxdomain=(), server_extra=()):
        """server_extra: more lines for the server: section (like
        "outgoing-interface: ADDR", so that a test's server can tell
        unbound's questions from a client's)."""
        self.dir = os.path.join(workdir, "unbound")
        os.makedirs(self.dir, exist_ok=True)
        self.addr, self.port = addr, port
        conf = os.path.join(self.dir, "unbound.conf")
        tlds = sorted({z.rstrip(".").split(".")[-1] for z in stubs})
        with open(conf, "w") as f:
            f.write("""server:
    interface: {a}@{p}
    do-not-query-localhost: no
    access-control: 127.0.0.0/8 allow
    username: ""
    chroot: ""
    directory: "{d}"
    pidfile: ""
    use-syslog: no
    logfile: ""
    verbosity: 0
    num-threads: 1
    module-config: "iterator"
    qname-minimisation: no
    do-ip6: no
    cache-max-ttl: 1
    cache-max-negative-ttl: 1
    infra-host-ttl: 1
    val-log-level: 0
""".format(a=addr, p=port, d=self.dir))
            for line in server_extra:
                f.write("    %s\n" % line)
            for t in tlds:
                f.write('    local-zone: "%s." nodefault\n' % t)
            # Names outside every test zone: NXDOMAIN, as on the Internet
            # (without this the resolver looks for the root and SERVFAILs).
            for z in nxdomain:
                f.write('    local-zone: "%s." static\n' % z)
            for zone, servers in stubs.items():
                f.write('stub-zone:\n    name: "%s."\n' % zone)
                for s in servers:
                    f.write("    stub-addr: %s\n" % s)
        self.proc = _start(["unbound", "-d", "-c", conf],
                           open(os.path.join(self.dir, "unbound.log"), "w"))
        wait_answering(addr, port, next(iter(stubs)), rd=True)
        self.conf, self.probe = conf, next(iter(stubs))

    def stop(self):
        stop(self.proc)

    def restart(self):
        """Start unbound again (after stop(), by PID) with the same config; empty cache."""
        self.stop()
        self.proc = _start(["unbound", "-d", "-c", self.conf],
                           open(os.path.join(self.dir, "unbound.log"), "a"))
        wait_answering(self.addr, self.port, self.probe, rd=True)


class Workdir:
    def __init__(self, prefix):
        self.path = tempfile.mkdtemp(prefix=prefix)

    def cleanup(self):
        if os.environ.get("CF_TEST_KEEP"):  # for debugging: keep logs and stores
            print("kept %s" % self.path, flush=True)
            return
        shutil.rmtree(self.path, ignore_errors=True)


class Results:
    """Counts assertions and prints the closing 'N passed, M failed' line."""

    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, cond, what):
        if cond:
            self.passed += 1
        else:
            self.failed += 1
            print("FAIL:", what, flush=True)

    def eq(self, got, want, what):
        self.check(got == want, "%s: got %r, wanted %r" % (what, got, want))

    def finish(self):
        print("%d passed, %d failed" % (self.passed, self.failed))
        return 0 if self.failed == 0 else 1
