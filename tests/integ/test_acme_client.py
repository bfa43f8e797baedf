"""The ACME client session (engine/acme/client.c) against pebble.

acme_client_driver (tests/integ/acme_client_driver.c) makes an EC P-256
key, fetches the directory, registers the account, POSTs-as-GET the account
URL many times (in sequence, then in parallel), then registers again with
the same key (RFC 8555 §7.3.1: 200 and the same account URL), and prints
one JSON line. Pebble runs twice: as it is (5% of nonces rejected), and
with PEBBLE_WFE_NONCEREJECT=50, where badNonce retries must be invisible
to the caller. No DNS world is needed.

The rejecting run also passes --rollover: the account rolls over to a new
key (RFC 8555 §7.3.5, both JWS layers rebuilt on badNonce), the new key must
work, the old key with the known account URL must be refused (before that, a
rollover to (a copy of) the account's own key must be refused and leave
the old key working), the account
URL must not change, and the second registration (with the new key) must
find the same account.

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


def check_rollover(name, out):
    # First a rollover to a copy of the account's own key: pebble refuses it
    # (400 malformed, "same as the old key"; 409 would also do), the old key stays.
    R.check(out["conflict_status"] in (400, 409),
            name + ": keyChange to the current key refused: HTTP %d (%s %s)"
            % (out["conflict_status"], out["conflict_error"], out["conflict_problem"]))
    R.eq(out["conflict_error"], "CF_EACME", name + ": keyChange conflict reported")
    R.check(out["conflict_problem"].startswith("urn:ietf:params:acme:error:"),
            name + ": keyChange conflict problem %r" % out["conflict_problem"])
    R.eq(out["kc_error"], "", name + ": keyChange error (%s %s)" % (out["kc_detail"],
                                                                     out["kc_problem"]))
    R.eq(out["kc_status"], 200, name + ": keyChange 200")
    R.eq(out["newkey_status"], 200, name + ": POST-as-GET with the new key (%s)"
         % out["newkey_error"])
    R.eq(out["newkey_valid"], True, name + ": account valid with the new key")
    R.eq(out["newkey_account_url"], out["account_url"], name + ": account URL unchanged")
    R.eq(out["oldkey_start"], "known", name + ": old-key client start")
    R.check(out["oldkey_status"] >= 400,
            name + ": old key refused (HTTP %d)" % out["oldkey_status"])
    R.eq(out["oldkey_error"], "CF_EACME", name + ": old key refused as an ACME error")
    R.check(out["oldkey_problem"].startswith("urn:ietf:params:acme:error:"),
            name + ": old key refusal problem %r" % out["oldkey_problem"])


def run_case(workdir, name, env_extra, rollover=False):
    pebble = None
    try:
        pebble = acmeenv.Pebble(workdir, env_extra=env_extra, name=name)
        # 20 retries: at a 50% rejection rate 5 would fail one request in 64.
        argv = [DRIVER, "--ca", pebble.ca_file, "--email", "ops@example.test",
                "--retries", "20", "--seq", str(SEQ), "--par", str(PAR)]
        if rollover:
            argv.append("--rollover")
        p = subprocess.run(argv + [pebble.directory_url], capture_output=True, text=True,
                           timeout=90)
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
        if rollover:
            check_rollover(name, out)
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
        rejecting = run_case(work.path, "pebble-reject50", {"PEBBLE_WFE_NONCEREJECT": "50"},
                             rollover=True)
        if rejecting:
            R.check(rejecting["bad_nonce_retries"] > 0,
                    "badNonce retries at 50%%: %d" % rejecting["bad_nonce_retries"])
            # The first client also sent two keyChanges and a POST-as-GET with the new key.
            R.eq(rejecting["posts"], 1 + SEQ + PAR + 3 + rejecting["bad_nonce_retries"],
                 "every retry is one more POST")
        if normal:
            R.eq(normal["posts"], 1 + SEQ + PAR + normal["bad_nonce_retries"],
                 "normal: every retry is one more POST")
    finally:
        work.cleanup()
    return R.finish()


if __name__ == "__main__":
    sys.exit(main())
