"""The per-host order pipeline (engine/acme/order.c) against pebble.

AcmeWorld brings up knot, unbound, pebble; certfleet init's a state dir,
imports the hosts and serves the validation zone with serve-dns.
acme_order_driver (tests/integ/acme_order_driver.c) then runs one order per
host at once on one loop: newOrder, authorization, TXT published in the
store, propagation check, challenge, finalize with a fresh key, download,
verify. The test proves:
- five delegated hosts and one wildcard get certificates that verify
  against pebble's issuance root with the chain pebble sent;
- a host without delegation fails clearly (its authorization is invalid,
  the error names the host and the authorization URL) and the others are
  not affected;
- every TXT record the driver published is withdrawn afterwards;
- `certfleet rotate-account-key` rolls the account over to a new key: the
  stored key changes, the account URL is stored and printed, the CNAME
  instructions stay byte-identical, and a second batch of new hosts issues
  with the new key under the same account URL; a second rotation works from
  the stored URL; a state dir without an account key exits 2 and a CA that
  cannot be reached exits 3 with the stored key unchanged;
- the loop closes cleanly and every server stops.

    test_acme_order.py PATH_TO_CERTFLEET PATH_TO_ACME_ORDER_DRIVER PATH_TO_TXT_PUBLISH
"""
import json
import os
import subprocess
import sys
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import acmeenv  # noqa: E402
import dnsenv  # noqa: E402

CF, DRIVER, PUBLISH = sys.argv[1], sys.argv[2], sys.argv[3]
R = dnsenv.Results()
GOOD = ["a.example.test", "b.example.test", "c.example.test", "www.shop.test",
        "api.shop.test", "*.wild.example.test"]
BAD = "nodeleg.shop.test"
SECOND = ["d.example.test", "second.shop.test"]


def chain_file(state, host):
    return os.path.join(state, host.replace("*", "_wildcard") + ".pem")


def run(world, state):
    p = subprocess.run([CF, "--state", state, "import", "-"],
                       input="".join(h + "\n" for h in GOOD + [BAD]), capture_output=True,
                       text=True)
    R.eq(p.returncode, 0, "import: " + p.stderr[-500:])
    for h in GOOD:
        world.set_host(h)
    world.set_host(BAD, delegate=False)
    world.start_serve_dns(CF, state)

    res, account_url = drive(world, state, GOOD + [BAD])
    check_issued(world, state, res, GOOD)

    d = res.get(BAD, {})
    R.eq((d.get("status"), d.get("error"), d.get("state")), ("failed", "CF_EACME", "poll_authz"),
         "%s fails at the authorization" % BAD)
    text = d.get("error_text", "")
    R.check(text.startswith(BAD + ": ") and "/authz" in text.lower()
            and "invalid" in text, "%s: error names host, URL, verdict: %r" % (BAD, text))
    R.check(not os.path.exists(chain_file(state, BAD)), "%s: no chain file" % BAD)

    # Every value published was withdrawn: nothing at any target on serve-dns.
    for h in GOOD + [BAD]:
        out = dnsenv.dig(acmeenv.VALIDATION_ADDR, acmeenv.VALIDATION_PORT, world.target(h),
                         "TXT")
        R.eq(out.strip(), "", "%s: TXT at %s withdrawn" % (h, world.target(h)))

    rotate(world, state, account_url)


def drive(world, state, hosts):
    """Run the driver for hosts: ({host: line}, the account URL it used)."""
    argv = [DRIVER, world.pebble.directory_url, world.pebble.ca_file, state, acmeenv.RESOLVER,
            world.zone] + hosts
    p = subprocess.run(argv, capture_output=True, text=True, timeout=150)
    R.eq(p.returncode, 0, "driver exit status (stderr %s)" % p.stderr[-1500:])
    lines = [json.loads(x) for x in p.stdout.splitlines() if x.startswith("{")]
    res = {d["host"]: d for d in lines if "host" in d}
    for d in lines:
        print(json.dumps(d), flush=True)
    R.eq(lines[-1].get("loop_closed") if lines else None, True, "loop closed")
    R.eq(sorted(res), sorted(hosts), "one line per host")
    R.check("BEGIN PRIVATE KEY" not in p.stderr, "no private key in the log")
    urls = [d["account_url"] for d in lines if "account_url" in d]
    R.eq(len(urls), 1, "the driver reports its account URL once")
    return res, urls[0] if urls else None


def check_issued(world, state, res, hosts):
    root = world.pebble.write_roots()
    for h in hosts:
        d = res.get(h, {})
        R.eq((d.get("status"), d.get("error_text")), ("done", ""), "%s issued" % h)
        R.check(d.get("key_pem_bytes", 0) > 100, "%s: the key PEM reached the caller" % h)
        path = chain_file(state, h)
        if not os.path.exists(path):
            R.check(False, "%s: chain file %s" % (h, path))
            continue
        v = subprocess.run(["openssl", "verify", "-CAfile", root, "-untrusted", path, path],
                           capture_output=True, text=True)
        R.eq(v.returncode, 0, "%s: chain verifies against pebble's root (%s%s)" % (
            h, v.stdout.strip(), v.stderr.strip()))
        t = subprocess.run(["openssl", "x509", "-in", path, "-noout", "-ext", "subjectAltName"],
                           capture_output=True, text=True)
        R.check("DNS:" + h in t.stdout, "%s: in the leaf's names (%s)" % (h, t.stdout.strip()))


def account_db(state):
    p = subprocess.run(["mdb_dump", "-n", "-s", "account", os.path.join(state, "store.mdb")],
                       capture_output=True, text=True)
    R.eq(p.returncode, 0, "mdb_dump: " + p.stderr)
    return p.stdout


def instructions(state):
    p = subprocess.run([CF, "--state", state, "instructions"], capture_output=True)
    R.eq(p.returncode, 0, "instructions: %r" % p.stderr[-500:])
    return p.stdout


def rotate_key(state, what):
    p = subprocess.run([CF, "--state", state, "rotate-account-key"], capture_output=True,
                       text=True, timeout=90)
    print("rotate-account-key (%s): exit %d: %s%s" % (what, p.returncode, p.stdout, p.stderr),
          flush=True)
    R.check("PRIVATE KEY" not in p.stdout + p.stderr, "%s: no key material printed" % what)
    return p


def copy_state(state, dest, directory=None):
    """A copy of state's store and config (directory replaced if given)."""
    os.makedirs(dest, mode=0o700)
    subprocess.run(["mdb_copy", "-n", os.path.join(state, "store.mdb"),
                    os.path.join(dest, "store.mdb")], check=True)
    with open(os.path.join(state, "config.json")) as f:
        cfg = json.load(f)
    if directory:
        cfg["directory"] = directory
    with open(os.path.join(dest, "config.json"), "w") as f:
        json.dump(cfg, f)


def rotate(world, state, account_url):
    copy_state(state, state + "-oldkey")  # the old key, for after the rotation
    before, instr_before = account_db(state), instructions(state)
    p = rotate_key(state, "first rotation")
    R.eq(p.returncode, 0, "rotate-account-key exits 0")
    R.eq(p.stdout, "rotated the account key of %s\n" % account_url,
         "rotate-account-key names the account URL")
    after = account_db(state)
    R.check(before != after, "the stored account key changed")
    R.check(account_url.encode().hex() in after.replace("\n", "").replace(" ", ""),
            "the account URL is stored")
    R.eq(instructions(state), instr_before, "instructions are byte-identical after rotation")

    # A second batch of new hosts issues with the new key, same account URL.
    p = subprocess.run([CF, "--state", state, "import", "-"],
                       input="".join(h + "\n" for h in SECOND), capture_output=True, text=True)
    R.eq(p.returncode, 0, "import second batch: " + p.stderr[-500:])
    for h in SECOND:
        world.set_host(h)
    res, url2 = drive(world, state, SECOND)
    R.eq(url2, account_url, "second batch: the account URL is unchanged")
    check_issued(world, state, res, SECOND)

    # A second rotation starts from the stored URL (no newAccount).
    before = account_db(state)
    p = rotate_key(state, "second rotation")
    R.eq((p.returncode, p.stdout), (0, "rotated the account key of %s\n" % account_url),
         "second rotation")
    R.check(account_db(state) != before, "the stored account key changed again")

    # The CA unreachable: exit 3, the stored key unchanged.
    unreach, bad_dir = state + "-unreachable", "https://%s:14999/dir" % acmeenv.PEBBLE_ADDR
    copy_state(state, unreach, bad_dir)
    before = account_db(unreach)
    p = rotate_key(unreach, "CA unreachable")
    R.eq(p.returncode, 3, "rotate-account-key exits 3 when the CA is unreachable")
    R.check(bad_dir in p.stderr and "unchanged" in p.stderr,
            "the error names the directory URL: %r" % p.stderr)
    R.eq(account_db(unreach), before, "the stored key is kept when the CA is unreachable")

    # The old key no longer finds the account: the CA registers a new one for it.
    p = rotate_key(state + "-oldkey", "old key")
    R.eq(p.returncode, 0, "rotate-account-key with the old key")
    R.check(p.stdout.startswith("rotated the account key of https://")
            and account_url not in p.stdout, "the old key is not the account's any more")

    # No account yet: exit 2, nothing created.
    nokey = state + "-nokey"
    world.certfleet_init(CF, nokey)
    p = rotate_key(nokey, "no account")
    R.eq(p.returncode, 2, "rotate-account-key exits 2 without an account")
    R.check("no ACME account" in p.stderr, "it says there is no account: %r" % p.stderr)


def main():
    wd = dnsenv.Workdir("/tmp/cf-integ-acme-order-")
    state = os.path.join(wd.path, "state")
    world = None
    try:
        world = acmeenv.AcmeWorld(wd.path)
        world.certfleet_init(CF, state)
        procs = [world.unbound.proc, world.knot1.proc, world.knot2.proc, world.pebble.proc]
        run(world, state)
        procs.append(world.serve_dns)
        R.eq(world.stop_serve_dns(), 0, "serve-dns exits 0 on SIGTERM")
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
            world.pebble.stop()
        dnsenv._stop_all()
        wd.cleanup()
    return R.finish()


if __name__ == "__main__":
    sys.exit(main())
