"""The ACME client session (engine/acme/client.c) against pebble.

acme_client_driver (tests/integ/acme_client_driver.c) makes an EC P-256
key, fetches the directory, registers the account, POSTs-as-GET the account
URL many times (in sequence, then in parallel), then registers again with
the same key (RFC 8555 §7.3.1: 200 and the same account URL), and prints
one JSON line. Pebble runs twice: as it is (5% of nonces rejected), and
with PEBBLE_WFE_NONCEREJECT=50, where badNonce retries must be invisible
to the caller. No DNS world is needed.

    test_acme_client.py PATH_TO_CERTFLEET PATH_TO_ACME_CLIENT_DRIVER
"""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import acmeenv  # noqa: E402
import dnsenv  # noqa: E402

DRIVER = sys.argv[2]
R = dnsenv.Results()
SEQ, PAR = 20, 5


def run_case(workdir, name, env_extra):
    pebble = None
    try:
        pebble = acmeenv.Pebble(workdir, env_extra=env_extra, name=name)
        # 20 retries: at a 50% rejection rate 5 would fail one request in 64.
        p = subprocess.run([DRIVER, "--ca", pebble.ca_file, "--email", "ops@example.test",
                            "--retries", "20", "--seq", str(SEQ), "--par", str(PAR),
                            pebble.directory_url], capture_output=True, text=True, timeout=90)
        R.eq(p.returncode, 0, "%s: driver exit status (stderr %s)" % (name, p.stderr[-500:]))
        try:
            out = json.loads(p.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            R.check(False, "%s: driver output %r" % (name, p.stdout))
            return None
        print("%s: %s" % (name, json.dumps(out)), flush=True)
        base = "https://%s:%d/" % (pebble.addr, pebble.port)
        R.eq(out["loop_closed"], True, name + ": loop closed")
        R.eq(out["start_error"], "", name + ": start error (%s)" % out["start_detail"])
        R.eq(out["start_detail"], "created", name + ": newAccount 201")
        R.check(out["account_url"].startswith(base), name + ": account URL %r" % out["account_url"])
        R.eq(out["gets_ok"], SEQ + PAR, name + ": POST-as-GET ok (%s)" % out["first_error"])
        R.eq(out["gets_failed"], 0, name + ": POST-as-GET failed")
        R.eq(out["second_error"], "", name + ": second start error (%s)" % out["second_detail"])
        R.eq(out["second_detail"], "existing", name + ": newAccount again 200")
        R.eq(out["second_account_url"], out["account_url"], name + ": same account URL")
        # Nonces come from responses: one HEAD for the first request, and at
        # most one per parallel request that found the pool empty.
        requests = out["posts"]
        R.check(requests >= 1 + SEQ + PAR, name + ": %d POSTs" % requests)
        R.check(1 <= out["nonce_heads"] <= 1 + PAR,
                name + ": %d HEAD newNonce for %d POSTs" % (out["nonce_heads"], requests))
        R.check(out["nonce_heads"] * 3 < requests, name + ": HEADs much fewer than POSTs")
        R.check(out["nonces_from_responses"] >= requests - 1,
                name + ": %d nonces from responses" % out["nonces_from_responses"])
        return out
    finally:
        if pebble:
            pebble.stop()


def main():
    work = dnsenv.Workdir("cf-acme-client-")
    try:
        normal = run_case(work.path, "pebble-normal", None)
        rejecting = run_case(work.path, "pebble-reject50", {"PEBBLE_WFE_NONCEREJECT": "50"})
        if rejecting:
            R.check(rejecting["bad_nonce_retries"] > 0,
                    "badNonce retries at 50%%: %d" % rejecting["bad_nonce_retries"])
            R.eq(rejecting["posts"], 1 + SEQ + PAR + rejecting["bad_nonce_retries"],
                 "every retry is one more POST")
        if normal:
            R.eq(normal["posts"], 1 + SEQ + PAR + normal["bad_nonce_retries"],
                 "normal: every retry is one more POST")
    finally:
        work.cleanup()
    return R.finish()


if __name__ == "__main__":
    sys.exit(main())
