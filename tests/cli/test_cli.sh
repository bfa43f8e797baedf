#!/usr/bin/env bash
# End-to-end checks of the certfleet command line without network servers:
# init, import (idempotent, bad lines), instructions, status, remove,
# version, and refusals with clear messages and the documented exit codes.
#   test_cli.sh PATH_TO_CERTFLEET
set -uo pipefail
cf=$1
work=$(mktemp -d /tmp/cf-test-cli-XXXXXX)
trap 'rm -rf "$work"' EXIT
export CERTFLEET_STATE=$work/state
fails=0 passes=0

ok() { passes=$((passes + 1)); }
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }
# expect_rc WANT CMD...: run CMD, keep its stdout/stderr in $work/out, $work/err.
expect_rc() {
    local want=$1
    shift
    "$@" >"$work/out" 2>"$work/err"
    local rc=$?
    if [ "$rc" -eq "$want" ]; then ok; else
        fail "'$*' exited $rc, wanted $want; stderr: $(head -c 400 "$work/err")"
    fi
}
expect_grep() { # expect_grep FILE REGEX
    if grep -qE -- "$2" "$1"; then ok; else fail "$1 lacks /$2/: $(head -c 400 "$1")"; fi
}
json() { python3 -c "import json,sys; d=json.load(open('$work/out')); print(($1))"; }
expect_eq() { if [ "$1" == "$2" ]; then ok; else fail "$3: got '$1', wanted '$2'"; fi; }

# version: every library, and the backend check passes.
expect_rc 0 "$cf" version
for lib in 'crypto backend' libcurl libuv c-ares LMDB jansson libpsl libidn2; do
    expect_grep "$work/out" "^$lib"
done

# Commands before init say so.
expect_rc 2 "$cf" status
expect_grep "$work/err" "not initialized"

# init: bad input named, then good.
expect_rc 2 "$cf" init --validation-zone 'bad..zone' --directory https://ca.test/dir
expect_grep "$work/err" "validation-zone 'bad..zone'"
expect_rc 2 "$cf" init --validation-zone acme.cdn.test --directory http://ca.test/dir
expect_grep "$work/err" "https://"
expect_rc 2 "$cf" init --validation-zone acme.cdn.test --directory https://ca.test/dir --cdn-target 10.0.0.0/33
expect_grep "$work/err" "cdn-target '10.0.0.0/33'"
expect_rc 2 "$cf" init --validation-zone acme.cdn.test --directory https://ca.test/dir --eab-kid k
expect_grep "$work/err" "eab-kid and --eab-hmac-file"
expect_rc 0 "$cf" init --validation-zone ACME.cdn.test. --directory https://ca.test/dir \
    --cdn-target cdn.test --cdn-target 192.0.2.0/24 --resolver 127.0.0.1:5353
[ "$(stat -c %a "$work/state")" = 700 ] && ok || fail "state dir mode $(stat -c %a "$work/state")"
[ "$(stat -c %a "$work/state/config.json")" = 600 ] && ok || fail "config mode"
[ "$(stat -c %a "$work/state/store.mdb")" = 600 ] && ok || fail "store mode"

# import: good and bad lines, line numbers, exit 1 when something was rejected.
cat >"$work/hosts.txt" <<'HOSTS'
www.example.com
Shop.Example.com.
under_score.example.com
*.example.org
bücher.example.de
www.example.com
HOSTS
expect_rc 1 "$cf" import "$work/hosts.txt"
expect_grep "$work/err" "line 3: rejected \"under_score.example.com\": underscore"
expect_grep "$work/err" "line 6: duplicate of line 1"
expect_grep "$work/out" "4 added, 0 unchanged, 0 updated, 1 duplicates, 1 rejected"
# Again from stdin: nothing changes.
"$cf" import - <"$work/hosts.txt" >"$work/out" 2>"$work/err"
expect_grep "$work/out" "0 added, 4 unchanged"
expect_rc 2 "$cf" import "$work/does-not-exist"
expect_grep "$work/err" "does-not-exist: No such file"

# instructions, JSON and CSV.
expect_rc 0 "$cf" instructions --format json
expect_eq "$(json 'len(d)')" 4 "instruction count"
expect_eq "$(json '[x for x in d if x["host"]=="*.example.org"][0]["name"]')" \
    "_acme-challenge.example.org" "wildcard challenge name"
expect_eq "$(json '[x for x in d if x["host"]=="xn--bcher-kva.example.de"][0]["target"]')" \
    "xn--bcher-kva.example.de.acme.cdn.test" "IDN target"
expect_eq "$(json 'sorted(d[0].keys())')" "['host', 'name', 'target', 'type']" "JSON members"
expect_rc 0 "$cf" instructions --format csv shop.example.com
expect_eq "$(cat "$work/out")" "host,name,type,target
shop.example.com,_acme-challenge.shop.example.com,CNAME,shop.example.com.acme.cdn.test" "CSV row"
expect_rc 1 "$cf" instructions unknown.example.com
expect_grep "$work/err" "unknown.example.com is not in the store"

# status.
expect_rc 0 "$cf" status --json
expect_eq "$(json 'd["hosts"]')" 4 "hosts"
expect_eq "$(json 'd["states"]["awaiting_delegation"]')" 4 "awaiting"
expect_eq "$(json 'sorted(d["stopped"].keys())')" \
    "['ca_paused', 'delegation_removed', 'failing', 'never_live', 'offboarded', 'removed']" "reasons"
expect_rc 0 "$cf" status --json WWW.example.com
expect_eq "$(json 'd["host"], d["state"], d["leftover"], d["failures"], d["delegation"]["result"]')" \
    "('www.example.com', 'awaiting_delegation', False, 0, 'unknown')" "host record"
expect_rc 2 "$cf" status 'bad..host'
expect_grep "$work/err" "'bad..host' is not a valid hostname: empty label"

# remove keeps the record, stopped.
expect_rc 0 "$cf" remove www.example.com
expect_rc 0 "$cf" status --json www.example.com
expect_eq "$(json 'd["state"], d["reason"]')" "('stopped', 'removed')" "removed host"
expect_rc 0 "$cf" status --json
expect_eq "$(json 'd["states"]["stopped"], d["stopped"]["removed"]')" "(1, 1)" "stopped count"
# Re-import does not resurrect it.
"$cf" import "$work/hosts.txt" >/dev/null 2>&1
expect_rc 0 "$cf" status --json www.example.com
expect_eq "$(json 'd["state"]')" "stopped" "re-import keeps state"
# rearm brings a stopped host back (no certificate: to awaiting its delegation), due now.
expect_rc 0 "$cf" rearm www.example.com
expect_rc 0 "$cf" status --json www.example.com
expect_eq "$(json 'd["state"], d["reason"]')" "('awaiting_delegation', None)" "re-armed host"
expect_rc 1 "$cf" rearm nosuch.example.com
"$cf" remove www.example.com >/dev/null 2>&1

# The validation zone cannot change under existing hosts.
expect_rc 2 "$cf" init --validation-zone other.cdn.test --directory https://ca.test/dir
expect_grep "$work/err" "cannot change to other.cdn.test"

# A store written by a newer schema is refused clearly, and not modified.
python3 - "$work/state/store.mdb" <<'PY' || fail "could not set up the newer-schema store"
import subprocess, sys
# mdb_load -T reads "key\nvalue\n" lines in plain text with backslash-hex escapes.
p = subprocess.run(["mdb_load", "-n", "-T", "-s", "meta", sys.argv[1]],
                   input=b"schema\n\\00\\00\\00\\ff\n", capture_output=True)
sys.exit(p.returncode)
PY
before=$(md5sum <"$work/state/store.mdb")
expect_rc 3 "$cf" status
expect_grep "$work/err" "written by a newer certfleet"
expect_eq "$(md5sum <"$work/state/store.mdb")" "$before" "newer store untouched"

echo "$passes passed, $fails failed"
[ "$fails" -eq 0 ]
