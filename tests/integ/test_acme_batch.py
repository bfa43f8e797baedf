"""The order pipeline (engine/acme/order.c) in batches against pebble: scale,
retries, persistence and resume, deadlines, RSA keys, and the CA answers
pebble never gives (through tests/integ/faultproxy.py).

One ACME world (acmeenv.AcmeWorld) for every scenario; pebble is restarted
when a scenario needs other settings. tests/integ/acme_order_driver runs the
jobs. The test proves:
- scale: 200 hosts in one driver run (at most 50 jobs at once: pebble 2.4
  stalls under a few hundred concurrent orders) all get a certificate whose
  chain verifies (openssl verify) against pebble's root and intermediate
  from its management port; each chain and key is stored with
  store_batch_put_cert in the commit that drops the pending order, and
  read back matching; no pending order is left; one newOrder per host;
- badNonce: with PEBBLE_WFE_NONCEREJECT=50 every host of a batch of 30
  still succeeds (the client's retries, then the job's);
- kill and resume: the driver is SIGKILLed mid-batch once some orders
  exist; a rerun with --resume of the hosts without a certificate gives
  every host of the batch a certificate, some from
  the orders of the killed run, and pebble's log shows no more orders
  created than hosts plus the jobs in flight at the kill; a stored order
  pebble does not know (404) is dropped for a new one;
- a crash after issuance, before the commit that stores the certificate:
  the rerun resumes the valid order and downloads the certificate with the
  stored key (no new order for that host);
- deadline: pebble frozen (SIGSTOP) mid-run, the driver still ends by its
  deadline with CF_ETIMEOUT results, none marked terminal; then thawed, a
  rerun resumes every order the timed-out jobs had (kept as pending);
- RSA: an rsa2048 order gives a certificate with a 2048-bit RSA key;
- injected failures: 503 (with and without Retry-After), 500 and dropped
  connections on every step are retried and the hosts succeed; 429
  rateLimited ends with CF_ERATELIMIT and the Retry-After; Let's Encrypt's
  paused answer sets ca_paused and terminal; "replaces" refused as
  alreadyReplaced (RFC 9773 §5) is dropped and the order succeeds; ARI
  renewalInfo is fetched for the new certificates (window, Retry-After
  held to at least a minute).

    test_acme_batch.py PATH_TO_CERTFLEET PATH_TO_ACME_ORDER_DRIVER
"""
import json
import os
import signal
import subprocess
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import acmeenv  # noqa: E402
import dnsenv  # noqa: E402
import faultproxy  # noqa: E402

CF, DRIVER = sys.argv[1], sys.argv[2]
R = dnsenv.Results()
ZONES = ("example.test", "shop.test")


def names(prefix, n):
    return ["%s%03d.%s" % (prefix, i, ZONES[i % 2]) for i in range(n)]


class Env:
    def __init__(self, world, state):
        self.world, self.state = world, state
        self.last_stderr = ""

    def argv(self, hosts, opts=(), directory=None):
        return [DRIVER] + list(opts) + [directory or self.world.pebble.directory_url,
                                        self.world.pebble.ca_file, self.state,
                                        acmeenv.RESOLVER, self.world.zone] + list(hosts)

    def run(self, hosts, opts=(), what="", directory=None, timeout=150):
        """Run the driver to its end: ({host: result line}, [all lines], wall seconds)."""
        t0 = time.time()
        p = subprocess.run(self.argv(hosts, opts, directory), capture_output=True, text=True,
                           timeout=timeout)
        wall = time.time() - t0
        self.last_stderr = p.stderr
        lines = [json.loads(x) for x in p.stdout.splitlines() if x.startswith("{")]
        res = {d["host"]: d for d in lines if "host" in d}
        R.eq(p.returncode, 0, "%s: driver exit status (stderr %s)" % (what, p.stderr[-1500:]))
        R.eq(lines[-1].get("loop_closed") if lines else None, True, "%s: loop closed" % what)
        R.eq(sorted(res), sorted(hosts), "%s: one line per host" % what)
        R.check("PRIVATE KEY" not in p.stderr + p.stdout, "%s: no private key printed" % what)
        bad = [d for d in res.values() if d["status"] != "done"]
        print("%s: %d hosts, %d failed, %.1f s, %s" % (what, len(hosts), len(bad), wall,
                                                     json.dumps(lines[-1])), flush=True)
        for d in bad[:5]:
            print("  " + json.dumps(d), flush=True)
        return res, lines, wall

    def new_orders(self):
        """Orders pebble created so far, from its log.

        Pebble 2.4 logs "POST /order-plz -> calling handler()" for every
        newOrder POST, also those it then rejects for a bad nonce (5% by
        default), and 'Added order "ID" to the db' for each order it
        creates: the latter counts newOrder requests that made an order."""
        with open(self.world.pebble.log, errors="replace") as f:
            return sum(1 for line in f if "Added order " in line)

    def chain_file(self, host):
        return os.path.join(self.state, host.replace("*", "_wildcard") + ".pem")

    def verify_chains(self, hosts, what):
        """openssl verify of every leaf against pebble's root, via its intermediate."""
        pb = self.world.pebble
        root = pb.write_roots()
        inter = os.path.join(pb.dir, "intermediate-0.pem")
        with open(inter, "w") as f:
            f.write(pb.intermediates(0))
        files = [self.chain_file(h) for h in hosts]
        missing = [f for f in files if not os.path.exists(f)]
        R.eq(missing, [], "%s: every chain file written" % what)
        ok = 0
        for i in range(0, len(files), 100):
            part = [f for f in files[i:i + 100] if os.path.exists(f)]
            v = subprocess.run(["openssl", "verify", "-CAfile", root, "-untrusted", inter] + part,
                               capture_output=True, text=True)
            ok += sum(1 for line in v.stdout.splitlines() if line.endswith(": OK"))
            if v.returncode != 0:
                print(v.stdout[-800:] + v.stderr[-800:], flush=True)
        R.eq(ok, len(hosts), "%s: every chain verifies against pebble's root and intermediate"
             % what)

    def published(self, hosts):
        """[(host, TXT values)] of the hosts whose validation name serve-dns still answers."""
        return [(h, out) for h in hosts
                for out in [dnsenv.dig(acmeenv.VALIDATION_ADDR, acmeenv.VALIDATION_PORT,
                                       self.world.target(h), "TXT").strip()] if out]

    def delegate(self, hosts):
        for h in hosts:
            self.world.set_host(h, servers=[])  # no reload per host...
        self.world.sync()  # ...one per zone for all of them


def all_done(res, hosts, what):
    bad = [h for h in hosts if res.get(h, {}).get("status") != "done"]
    R.eq(bad, [], "%s: every host got a certificate" % what)


def scale(env):
    hosts = names("a", 200)
    env.delegate(hosts)
    n0 = env.new_orders()
    # 30 orders at a time: pebble 2.4's POSTs hang for good under more on a busy 2-core
    # machine (seen once in 12 runs at 50 with other jobs running).
    res, lines, wall = env.run(hosts, ["--max-jobs", "30", "--store-certs"], "scale")
    all_done(res, hosts, "scale")
    env.verify_chains(hosts, "scale")
    stored = [d for d in lines if "stored_ok" in d]
    R.eq(stored[0] if stored else None, {"stored_ok": 200, "stored_bad": 0, "pending_left": 0},
         "scale: every certificate and key stored, no pending order left")
    R.eq(env.new_orders() - n0, 200, "scale: one newOrder per host")


def bad_nonces(env):
    pb = env.world.pebble
    pb.env_extra["PEBBLE_WFE_NONCEREJECT"] = "50"
    pb.restart()
    try:
        hosts = names("b", 30)
        env.delegate(hosts)
        res, lines, _ = env.run(hosts, ["--store-certs"], "badNonce 50%")
        all_done(res, hosts, "badNonce 50%")
        R.check(lines[-1].get("bad_nonce_retries", 0) > 20,
                "badNonce 50%%: the CA did reject nonces (%s retries)"
                % lines[-1].get("bad_nonce_retries"))
        env.verify_chains(hosts, "badNonce 50%")
    finally:
        del pb.env_extra["PEBBLE_WFE_NONCEREJECT"]
        pb.restart()


def kill_and_resume(env):
    hosts = names("c", 60)
    env.delegate(hosts)
    n0 = env.new_orders()
    p = subprocess.Popen(env.argv(hosts, ["--max-jobs", "20", "--store-certs"]),
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    started, finished = set(), set()
    t0 = time.time()
    # Kill once a third of the hosts have orders at the CA (some finished, many in flight).
    while time.time() - t0 < 60:
        line = p.stdout.readline()
        if not line:
            break
        d = json.loads(line) if line.startswith("{") else {}
        if "started" in d:
            started.add(d["started"])
        if "host" in d:
            finished.add(d["host"])
        if env.new_orders() - n0 >= 25:
            break
    p.send_signal(signal.SIGKILL)
    p.wait()
    # Lines printed before the kill (the pipe still holds them).
    for line in p.stdout.read().splitlines():
        d = json.loads(line) if line.startswith("{") else {}
        started.update([d["started"]] if "started" in d else [])
        finished.update([d["host"]] if "host" in d else [])
    p.stdout.close()
    in_flight = len(started - finished)
    killed_orders = env.new_orders() - n0
    print("kill: %d started, %d finished, %d in flight, %d newOrders before the kill"
          % (len(started), len(finished), in_flight, killed_orders), flush=True)
    R.check(0 < len(finished) < len(hosts) and in_flight > 0,
            "kill: the driver died mid-batch (%d finished, %d in flight)"
            % (len(finished), in_flight))

    # The rerun takes the hosts without a certificate, as `certfleet run` would, plus one
    # whose stored order pebble never heard of. (Ordering again for a host that has just
    # been validated could meet the old TXT answer in unbound's cache.)
    ghost = "c-ghost.example.test"
    env.delegate([ghost])
    bogus = "https://%s:14000/my-order/no-such-order" % acmeenv.PEBBLE_ADDR
    rerun = [h for h in hosts if h not in finished] + [ghost]
    res, lines, _ = env.run(rerun, ["--resume", "--max-jobs", "20", "--store-certs",
                                    "--seed-pending", "%s=%s" % (ghost, bogus)], "resume")
    all_done(res, rerun, "resume")
    env.verify_chains(hosts + [ghost], "resume: every host of the batch")
    R.eq(env.published(rerun), [], "resume: no TXT value is left published, the killed run's "
         "included")
    resumed = [h for h in rerun if res.get(h, {}).get("resumed")]
    total = env.new_orders() - n0
    print("resume: %d of %d hosts went on with the killed run's orders; %d orders in all"
          % (len(resumed), len(rerun), total), flush=True)
    R.check(len(resumed) > 0, "resume: some hosts went on with the killed run's orders (%d)"
            % len(resumed))
    R.eq(res.get(ghost, {}).get("resumed"), False,
         "resume: the order pebble does not know is dropped for a new one")
    stored = [d for d in lines if "stored_ok" in d]
    R.eq(stored[0] if stored else None,
         {"stored_ok": len(rerun), "stored_bad": 0, "pending_left": 0},
         "resume: every certificate stored, no pending order left")
    R.check(total <= len(hosts) + 1 + in_flight,
            "resume: %d orders created <= %d hosts + %d in flight at the kill"
            % (total, len(hosts) + 1, in_flight))


def crash_after_issuance(env):
    hosts = names("d", 3)
    env.delegate(hosts)
    p = subprocess.run(env.argv(hosts, ["--max-jobs", "1", "--store-certs", "--crash-after",
                                        "1"]), capture_output=True, text=True, timeout=60)
    R.eq(p.returncode, 9, "crash: the driver died in the first callback")
    first = [json.loads(x) for x in p.stdout.splitlines() if x.startswith('{"host"')]
    R.eq([d["status"] for d in first], ["done"], "crash: one host had its certificate")
    if not first:
        return
    crashed = first[0]
    n0 = env.new_orders()
    res, lines, _ = env.run(hosts, ["--resume", "--store-certs"], "after crash")
    all_done(res, hosts, "after crash")
    d = res.get(crashed["host"], {})
    R.eq((d.get("resumed"), d.get("order_url")), (True, crashed["order_url"]),
         "crash: the valid order is resumed, not replaced")
    R.eq(env.new_orders() - n0, len(hosts) - 1, "crash: new orders only for the other hosts")
    env.verify_chains(hosts, "after crash")
    stored = [x for x in lines if "stored_ok" in x]
    R.eq(stored[0] if stored else None, {"stored_ok": 3, "stored_bad": 0, "pending_left": 0},
         "crash: the certificate is stored with the key of the first run")


def frozen_ca(env):
    hosts = names("e", 20)
    env.delegate(hosts)
    deadline_ms = 6000
    pb = env.world.pebble
    t0 = time.time()
    p = subprocess.Popen(env.argv(hosts, ["--deadline-ms", str(deadline_ms), "--store-certs"]),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    n0 = env.new_orders()
    try:
        while time.time() - t0 < 10 and env.new_orders() - n0 < 5:
            time.sleep(0.02)
        pb.freeze()
        out, err = p.communicate(timeout=deadline_ms / 1000 + 20)
    finally:
        pb.thaw()
    wall = time.time() - t0
    lines = [json.loads(x) for x in out.splitlines() if x.startswith("{")]
    res = {d["host"]: d for d in lines if "host" in d}
    print("frozen: %.1f s, %s" % (wall, json.dumps(lines[-1]) if lines else err[-500:]),
          flush=True)
    R.eq(p.returncode, 0, "frozen: driver exit status")
    R.eq(sorted(res), sorted(hosts), "frozen: one line per host")
    R.check(wall < deadline_ms / 1000 + 4, "frozen: the driver ended by its deadline (%.1f s)"
            % wall)
    timeouts = [h for h, d in res.items() if d["error"] == "CF_ETIMEOUT"]
    others = [d for d in res.values() if d["status"] != "done" and d["error"] != "CF_ETIMEOUT"]
    R.check(len(timeouts) > 0, "frozen: hosts end with CF_ETIMEOUT (%d)" % len(timeouts))
    R.eq(others, [], "frozen: no other failure")
    R.check(all(not res[h]["terminal"] for h in timeouts), "frozen: a timeout is not terminal")
    R.check(all("deadline" in res[h]["error_text"] for h in timeouts),
            "frozen: the error says the deadline passed")
    # The CA answers again: a rerun finishes the orders the frozen run left pending
    # (a timeout is transient: the pending order of a host whose newOrder was answered is kept).
    # An order whose challenge was answered just before the freeze may have been failed by
    # pebble as it thawed (its DNS lookup timed out while it was stopped): the rerun must drop
    # that order, withdraw the value it left published and order afresh. Unbound keeps
    # answers for up to a second: the rerun comes after that, as the next run would.
    with_order = sorted(h for h in timeouts if res[h]["order_url"])
    time.sleep(1.5)
    res2, lines2, _ = env.run(timeouts, ["--resume", "--store-certs"], "after thaw")
    with open(pb.log, errors="replace") as f:  # "Pebble DATE TIME order ID set INVALID by..."
        invalid = {w[4] for w in (line.split() for line in f)
                   if len(w) > 5 and w[3] == "order" and "INVALID" in w[6:8]}
    lost = sorted(h for h in with_order if res[h]["order_url"].rsplit("/", 1)[-1] in invalid)
    all_done(res2, timeouts, "after thaw")
    kept = [h for h in with_order if h not in lost]
    not_resumed = [h for h in kept if not res2.get(h, {}).get("resumed")]
    print("after thaw: %d orders resumed, %d failed by pebble as it thawed %s"
          % (len(kept) - len(not_resumed), len(lost), lost), flush=True)
    R.eq(not_resumed, [], "after thaw: every order the timed-out run had is resumed (%d), "
         "but those pebble failed" % len(kept))
    for h in not_resumed:  # what the frozen run said, and what the rerun logged about it
        print("  frozen: " + json.dumps(res[h]), flush=True)
        for line in err.splitlines():
            if '"%s"' % h in line:
                print("  frozen run: " + line[:600], flush=True)
        for line in env.last_stderr.splitlines():
            if '"%s"' % h in line:
                print("  rerun: " + line[:600], flush=True)
    R.eq(sorted(res2[h]["order_url"] for h in kept if h in res2),
         sorted(res[h]["order_url"] for h in kept), "after thaw: the same orders")
    R.check(all(res2[h]["order_url"] != res[h]["order_url"] for h in lost if h in res2),
            "after thaw: an order pebble failed is replaced by a new one")
    # Every value published for these hosts is withdrawn, those the frozen run left too.
    R.eq(env.published(timeouts), [], "after thaw: no TXT value is left published")


def rsa(env):
    hosts = ["f-rsa.example.test"]
    env.delegate(hosts)
    res, _, _ = env.run(hosts, ["--key-type", "rsa2048", "--store-certs"], "rsa2048")
    all_done(res, hosts, "rsa2048")
    env.verify_chains(hosts, "rsa2048")
    t = subprocess.run(["openssl", "x509", "-in", env.chain_file(hosts[0]), "-noout", "-text"],
                       capture_output=True, text=True)
    R.check("rsaEncryption" in t.stdout and "(2048 bit)" in t.stdout,
            "rsa2048: the certificate carries a 2048-bit RSA key")


def injected(env):
    pb = env.world.pebble
    proxy = faultproxy.FaultProxy(pb.addr, 14100, pb.addr, pb.port, pb.cert_file, pb.key_file,
                                  pb.ca_file)
    try:
        retry = ["g-retry%d.example.test" % i for i in range(4)]
        odd = ["g-limited.example.test", "g-paused.shop.test", "g-replaced.example.test"]
        hosts = retry + odd
        env.delegate(hosts)
        replaces = "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE"
        res, lines, _ = env.run(hosts, ["--replaces", replaces, "--ari", "--store-certs"],
                                "injected", directory=proxy.directory_url)
        print("proxy: %s" % json.dumps(proxy.stats), flush=True)
        all_done(res, retry + ["g-replaced.example.test"], "injected")
        R.check(proxy.stats["503"] >= 8 and proxy.stats["500"] >= 4 and proxy.stats["closed"] >= 4,
                "injected: 503, 500 and dropped connections on every step were retried")
        lim = res.get("g-limited.example.test", {})
        now = time.time()
        R.eq((lim.get("error"), lim.get("terminal"), lim.get("ca_paused")),
             ("CF_ERATELIMIT", False, False), "injected: 429 rateLimited ends the job")
        R.check(now + 3500 < lim.get("retry_after", 0) < now + 3700,
                "injected: the rate limit's Retry-After is in the result")
        R.check(lim.get("problem_type", "").endswith(":rateLimited"),
                "injected: the problem type is reported")
        pz = res.get("g-paused.shop.test", {})
        R.eq((pz.get("error"), pz.get("terminal"), pz.get("ca_paused")), ("CF_EACME", True, True),
             "injected: Let's Encrypt's paused answer sets ca_paused")
        R.eq(proxy.stats["409"], 1, "injected: alreadyReplaced once, then newOrder without it")
        ari = {d["ari"]: d for d in lines if "ari" in d}
        good = retry + ["g-replaced.example.test"]
        R.eq(sorted(ari), sorted(good), "injected: renewalInfo asked for every new certificate")
        for h in good:
            a = ari.get(h, {})
            ok = (a.get("error") == "" and a.get("start", 0) > now + 80000
                  and a.get("end", 0) - a.get("start", 0) == 86400
                  and now + 55 < a.get("retry_after", 0) < now + 120
                  and a.get("explanation_url") == "https://ca.example/ari-explained")
            R.check(ok, "injected: %s: renewalInfo window and Retry-After (%s)"
                    % (h, json.dumps(a)))
    finally:
        proxy.stop()


def main():
    wd = dnsenv.Workdir("/tmp/cf-integ-acme-batch-")
    state = os.path.join(wd.path, "state")
    world = None
    t0 = time.time()
    try:
        world = acmeenv.AcmeWorld(wd.path)
        world.certfleet_init(CF, state)
        world.start_serve_dns(CF, state)
        env = Env(world, state)
        only = os.environ.get("CF_TEST_SCENARIOS", "")  # e.g. "rsa,injected", for debugging
        for scenario in (scale, bad_nonces, kill_and_resume, crash_after_issuance, frozen_ca,
                         rsa, injected):
            if only and scenario.__name__ not in only.split(","):
                continue
            t = time.time()
            scenario(env)
            print("--- %s: %.1f s" % (scenario.__name__, time.time() - t), flush=True)
        world.stop()
    except Exception:  # a world that cannot start is a failure, not a silent exit
        traceback.print_exc()
        R.check(False, "the test stopped at an exception")
    finally:
        if (R.failed or os.environ.get("CF_TEST_PEBBLE_LOG")) and world and world.pebble:
            print("--- pebble.log\n" + world.pebble.log_tail())
        if world is not None and world.pebble:
            world.pebble.stop()
        dnsenv._stop_all()
        wd.cleanup()
    print("total %.1f s" % (time.time() - t0))
    return R.finish()


if __name__ == "__main__":
    sys.exit(main())
