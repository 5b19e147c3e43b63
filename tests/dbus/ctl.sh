#!/bin/bash
# SPDX-License-Identifier: MIT
#
# shadowmeshctl against live daemons on a private system-like bus: connect, status (text and
# JSON), list, disconnect, the errors and their exit statuses (as man/shadowmeshctl.1 and --help
# document them), the daemon's messages passed through verbatim, genkey | pubkey.
#
#   sm$$-a: instance "alpha",  veth0 10.98.51.1, smt0 10.0.0.1/24, waits (peer.address "")
#   sm$$-b: instance "peer-1", veth0 10.98.51.2, smt0 10.0.0.2/24, waits
#   10.98.51.3: nobody (the dead peer)
set -euo pipefail
source "$(dirname "$(readlink -f "$0")")/lib.sh"

[[ -n ${SHADOWMESHCTL:-} ]] || skip "SHADOWMESHCTL is not set (shadowmeshctl is not built)"
dbus_init
[[ -x $SHADOWMESHCTL ]] || { echo "SHADOWMESHCTL=$SHADOWMESHCTL is not executable" >&2; exit 1; }
SHADOWMESHCTL=$(readlink -f "$SHADOWMESHCTL")
MAN=$SOURCE_ROOT/man/shadowmeshctl.1
setup_pair 51
USER_PLAIN="sm$$u"
make_user "$USER_PLAIN"
start_bus

KEY=$(random_hex_key)
write_config "$TMP/a.yaml" ip4=$TUN_A/24 key="$KEY"
write_config "$TMP/b.yaml" ip4=$TUN_B/24 key="$KEY"
start_daemon a "$NS_A" "$TMP/a.yaml" --instance alpha
start_daemon b "$NS_B" "$TMP/b.yaml" --instance peer-1
check "alpha is on the bus" wait_until 10 name_has_owner "$(inst_name alpha)"
check "peer-1 is on the bus" wait_until 10 name_has_owner "$(inst_name peer-1)"

# ctl ARGS...: run shadowmeshctl; sets RC, OUT (stdout), ERR (stderr) and ERR_LAST, the last
# line of stderr (connect first prints "Connecting to ADDR..." there when it is not a terminal).
RC=0 OUT="" ERR="" ERR_LAST=""
ctl() {
        RC=0
        "$SHADOWMESHCTL" "$@" >"$TMP/ctl.stdout" 2>"$TMP/ctl.stderr" || RC=$?
        OUT=$(cat "$TMP/ctl.stdout")
        ERR=$(cat "$TMP/ctl.stderr")
        ERR_LAST=$(tail -n 1 "$TMP/ctl.stderr")
}
# ctl_as USER ARGS...
ctl_as() {
        local u=$1
        shift
        RC=0
        as_user "$u" "$SHADOWMESHCTL" "$@" >"$TMP/ctl.stdout" 2>"$TMP/ctl.stderr" || RC=$?
        OUT=$(cat "$TMP/ctl.stdout")
        ERR=$(cat "$TMP/ctl.stderr")
        ERR_LAST=$(tail -n 1 "$TMP/ctl.stderr")
}
# daemon_message [as USER] INSTANCE METHOD ARGS...: the message of the daemon's error reply.
daemon_message() {
        local pre=()
        if [[ $1 == as ]]; then
                pre=(as_user "$2")
                shift 2
        fi
        local inst=$1
        shift
        local out
        out=$("${pre[@]}" "$SM_CALL" "$(inst_name "$inst")" "$(inst_path "$inst")" "$@" 2>&1 ||
                true)
        sed -n 's/^error [^:]*: //p' <<<"$out"
}

# ---- the exit status table ----------------------------------------------------------------------
# code_for KEYWORD: the exit status whose entry in the man page's EXIT STATUS section mentions
# KEYWORD.
python3 - "$MAN" >"$TMP/man-codes" 2>&1 <<'EOF' || true
import re, sys
text = open(sys.argv[1], encoding="utf-8").read()
section = re.search(r'^\.SH "?EXIT STATUS"?\n(.*?)^\.SH', text, re.S | re.M).group(1)
for entry in section.split(".TP\n")[1:]:
    lines = entry.strip().splitlines()
    code = re.sub(r"^\.B\s+", "", lines[0]).strip()
    body = " ".join(re.sub(r"^\.[A-Z]+\s*", "", l) for l in lines[1:])
    print(code, re.sub(r'\\-', "-", body.replace('"', "")))
EOF
code_for() { awk -v k="$1" 'index($0, k) { print $1; exit }' "$TMP/man-codes"; }
EXIT_USAGE=$(code_for "Usage error")
EXIT_NOT_RUNNING=$(code_for "is not running")
EXIT_DENIED=$(code_for "AccessDenied")
EXIT_TIMEOUT=$(code_for "HandshakeTimeout")
EXIT_STATE=$(code_for "AlreadyConnected")
note "man page: usage=$EXIT_USAGE not-running=$EXIT_NOT_RUNNING denied=$EXIT_DENIED" \
        "timeout=$EXIT_TIMEOUT state=$EXIT_STATE"
check_eq "man page: exit 2 usage, 3 not running, 4 denied, 5 timed out, 6 state conflict" \
        "$EXIT_USAGE $EXIT_NOT_RUNNING $EXIT_DENIED $EXIT_TIMEOUT $EXIT_STATE" "2 3 4 5 6"
ctl --help
check_eq "--help exits 0" "$RC" 0
help_codes=$(sed -n '/^Exit status:/,/^$/p' <<<"$OUT" | awk '$1 ~ /^[0-9]+$/ { printf "%s ", $1 }')
check_eq "--help lists the same exit statuses as the man page" "$help_codes" \
        "$(awk '{ printf "%s ", $1 }' "$TMP/man-codes")"

# ---- connect, status, list, disconnect ----------------------------------------------------------
ctl -i alpha connect "$UNDER_B:$PORT"
check_eq "connect exits 0" "$RC" 0
check_eq "connect prints where it is connected" "$OUT" "Connected to $UNDER_B:$PORT (direct)"
check_eq "the daemon agrees: State connected" "$(prop alpha State)" 's "connected"'
check "ping through the tunnel" wait_ping 10 "$NS_A" $TUN_B

ctl -i alpha status
check_eq "status exits 0" "$RC" 0
check "status shows State: connected" grep -qE '^ *State: connected$' <<<"$OUT"
check "status shows Instance: alpha" grep -qE '^ *Instance: alpha$' <<<"$OUT"
check "status shows the device" grep -qE "^ *Device: $TAP\$" <<<"$OUT"

ctl -i alpha status --json
check_eq "status --json exits 0" "$RC" 0
check "status --json is valid JSON" python3 -m json.tool <<<"$OUT" >/dev/null
json_problems=$(python3 -c '
import json, sys
want = {"Instance": "alpha", "State": "connected", "Path": "direct",
        "PeerAddress": sys.argv[2], "Endpoint": sys.argv[2], "TapDevice": "smt0", "Mtu": 1380,
        "LocalAddress": [sys.argv[3]], "PublicKey": "", "NatType": "unknown",
        "PublicEndpoint": ""}
numbers = ["RxBytes", "TxBytes", "RxPackets", "TxPackets", "LastHandshake"]
try:
    got = json.loads(sys.argv[1])
except ValueError as e:
    sys.exit("not JSON: %s" % e)
for k, v in want.items():
    if got.get(k) != v:
        print("%s: %r, want %r" % (k, got.get(k), v))
for k in numbers:
    if not isinstance(got.get(k), int):
        print("%s: %r is not a number" % (k, got.get(k)))
extra = set(got) - set(want) - set(numbers)
if extra:
    print("unexpected keys:", sorted(extra))
' "$OUT" "$UNDER_B:$PORT" "$TUN_A/24" 2>&1 || true)
check_eq "status --json: the properties with their values and JSON types" "$json_problems" ""

ctl_as "$USER_PLAIN" -i alpha status
check_eq "a plain user may read the status" "$RC" 0

ctl list
check_eq "list exits 0" "$RC" 0
check "list shows alpha, connected" grep -qE '^alpha +connected ' <<<"$OUT"
check "list shows peer-1 by its plain name" grep -qE '^peer-1 +connected ' <<<"$OUT"
ctl list --json
check_eq "list --json: the two instances, sorted" \
        "$(python3 -c 'import json, sys
print(" ".join(o["Instance"] + ":" + o["State"] for o in json.loads(sys.argv[1])))' \
                "$OUT" 2>&1 || true)" \
        "alpha:connected peer-1:connected"

msg=$(daemon_message alpha Connect "$UNDER_B:$PORT")
ctl -i alpha connect "$UNDER_B:$PORT"
check_eq "a second connect exits 6 (AlreadyConnected)" "$RC" "$EXIT_STATE"
check_eq "... with the daemon's message" "$ERR_LAST" "shadowmeshctl: $msg"

msg=$(daemon_message as "$USER_PLAIN" alpha Disconnect)
ctl_as "$USER_PLAIN" -i alpha disconnect
check_eq "a plain user's disconnect exits 4 (AccessDenied)" "$RC" "$EXIT_DENIED"
check_eq "... with the daemon's message verbatim" "$ERR_LAST" "shadowmeshctl: $msg"
check_eq "the tunnel is still connected" "$(prop alpha State)" 's "connected"'

ctl -i alpha disconnect
check_eq "disconnect exits 0" "$RC" 0
check_eq "disconnect prints nothing" "$OUT" ""
check_eq "the daemon agrees: State disconnected" "$(prop alpha State)" 's "disconnected"'

msg=$(daemon_message alpha Disconnect)
ctl -i alpha disconnect
check_eq "disconnect when disconnected exits 6 (NotConnected)" "$RC" "$EXIT_STATE"
check_eq "... with the daemon's message" "$ERR_LAST" "shadowmeshctl: $msg"

# ---- errors -------------------------------------------------------------------------------------
msg=$(daemon_message as "$USER_PLAIN" alpha Connect "$UNDER_B:$PORT")
note "the daemon's refusal: $msg"
ctl_as "$USER_PLAIN" -i alpha connect "$UNDER_B:$PORT"
check_eq "a plain user's connect exits 4 (AccessDenied)" "$RC" "$EXIT_DENIED"
check_eq "... with the daemon's message verbatim" "$ERR_LAST" "shadowmeshctl: $msg"
check_eq "the tunnel stays disconnected" "$(prop alpha State)" 's "disconnected"'

t0=$(now_ms)
ctl -i alpha connect "$UNDER_DEAD:$PORT" --timeout 2
elapsed=$(($(now_ms) - t0))
check_eq "connect to a dead peer with --timeout 2 exits 5" "$RC" "$EXIT_TIMEOUT"
check_has "... with the daemon's HandshakeTimeout message" "$ERR_LAST" \
        "shadowmeshctl: No handshake with $UNDER_DEAD:$PORT"
if ((elapsed >= 1500 && elapsed < 7000)); then
        pass "... after ${elapsed} ms (1.5 to 7 s)"
else
        fail "... after ${elapsed} ms (1.5 to 7 s)"
fi
check_eq "State is disconnected after the timeout" "$(prop alpha State)" 's "disconnected"'

ctl -i nosuch status
check_eq "-i nosuch status exits 3" "$RC" "$EXIT_NOT_RUNNING"
want="shadowmeshctl: instance 'nosuch' is not running"
want+=" (no org.shadowmesh1.Instance.nosuch on the system bus)"
check_eq "... saying it is not running" "$ERR" "$want"
RC=0
DBUS_SYSTEM_BUS_ADDRESS="unix:path=$TMP/no-bus" "$SHADOWMESHCTL" -i alpha status \
        >"$TMP/ctl.stdout" 2>"$TMP/ctl.stderr" || RC=$?
check_eq "no system bus: exit 3" "$RC" "$EXIT_NOT_RUNNING"
check_has "... saying so" "$(cat "$TMP/ctl.stderr")" "cannot connect to the system bus"
ctl -i alpha frobnicate
check_eq "an unknown command exits 2" "$RC" "$EXIT_USAGE"
ctl -i alpha connect "$UNDER_B:$PORT" --timeout 0
check_eq "connect --timeout 0 exits 2" "$RC" "$EXIT_USAGE"

# ---- keys ---------------------------------------------------------------------------------------
ctl genkey
check_eq "genkey exits 0" "$RC" 0
priv=$OUT
check "genkey prints a 44-character base64 key" grep -qE '^[A-Za-z0-9+/]{43}=$' <<<"$priv"
RC=0
pub=$("$SHADOWMESHCTL" pubkey <<<"$priv" 2>&1) || RC=$?
check_eq "pubkey exits 0" "$RC" 0
check "pubkey prints a 44-character base64 key" grep -qE '^[A-Za-z0-9+/]{43}=$' <<<"$pub"
check_eq "pubkey agrees with shadowmeshd pubkey" "$pub" "$("$SHADOWMESHD" pubkey <<<"$priv" 2>&1)"
check "two genkey runs differ" test "$("$SHADOWMESHCTL" genkey)" != "$priv"
summary
