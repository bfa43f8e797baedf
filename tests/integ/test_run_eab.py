"""External Account Binding (RFC 8555 §7.3.4) through `certfleet run`, against
a pebble that requires it.

- init with --eab-kid and --eab-hmac-file (the MAC key in a 0600 file, never
  in argv): the run registers the account with the binding and issues;
- a state dir without EAB against the same CA: the run exits 3 and says the
  CA requires External Account Binding; nothing is issued;
- a MAC key file that is not base64url: exit 2 naming the file;
- the MAC key never appears in a log line.

    test_run_eab.py PATH_TO_CERTFLEET
"""
import base64
import json
import os
import subprocess
import sys
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import acmeenv  # noqa: E402
import dnsenv  # noqa: E402

CF = sys.argv[1]
R = dnsenv.Results()
KID = "cdn-team-kid-1"
MAC = base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("=")
HOSTS = ["e1.example.test", "e2.shop.test"]


def cf(state, *args, inp=None):
    return subprocess.run([CF, "--state", state] + list(args), capture_output=True, text=True,
                          timeout=180, input=inp)


def setup(world, state, extra=()):
    world.certfleet_init(CF, state, extra)
    p = cf(state, "import", "-", inp="".join(h + "\n" for h in HOSTS))
    R.eq(p.returncode, 0, "import: " + p.stderr)


def scenario(world, wd):
    for h in HOSTS:
        world.set_host(h)
    keyfile = os.path.join(wd, "eab.key")
    fd = os.open(keyfile, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, (MAC + "\n").encode())
    os.close(fd)

    plain = os.path.join(wd, "plain")
    setup(world, plain)
    p = cf(plain, "run")
    R.eq(p.returncode, 2, "without EAB: exit 2, a config error (%s)" % p.stderr[-500:])
    R.check("External Account Binding" in p.stderr, "it says the CA requires EAB: %r"
            % p.stderr[-500:])

    bad = os.path.join(wd, "bad")
    badkey = os.path.join(wd, "bad.key")
    with open(badkey, "w") as f:
        f.write("not base64url!!\n")
    os.chmod(badkey, 0o600)
    setup(world, bad, ["--eab-kid", KID, "--eab-hmac-file", badkey])
    p = cf(bad, "run")
    R.eq(p.returncode, 2, "bad MAC key file: exit 2")
    R.check(badkey in p.stderr, "the error names the file: %r" % p.stderr[-300:])

    good = os.path.join(wd, "good")
    setup(world, good, ["--eab-kid", KID, "--eab-hmac-file", keyfile])
    p = cf(good, "run")
    print(p.stdout, flush=True)
    R.eq(p.returncode, 0, "with EAB: exit 0 (%s)" % p.stderr[-800:])
    for h in HOSTS:
        s = json.loads(cf(good, "status", "--json", h).stdout or "{}")
        R.eq(s.get("state"), "active", "%s issued with EAB" % h)
    R.check(MAC not in p.stderr and MAC not in p.stdout, "the MAC key is never logged")


def main():
    wd = dnsenv.Workdir("/tmp/cf-integ-eab-")
    world = None
    try:
        world = acmeenv.AcmeWorld(wd.path, eab_keys={KID: MAC})
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
    return R.finish()


if __name__ == "__main__":
    sys.exit(main())
