#!/bin/bash
# SPDX-License-Identifier: MIT
#
# shadowmeshctl against live daemons on a private system-like bus: connect, status (text and
# JSON), list, disconnect, the errors and their exit statuses (as man/shadowmeshctl.1 and --help
# document them), the daemon's messages in the CLI's own words (and in German and French),
# addresses checked before anything is sent with the same reasons as `shadowmeshd --check`,
# per-command help, log levels and exit codes the same in both programs, genkey | pubkey and
# genkey's warning about a key file others may read.
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
check_eq "man page: exit 64 usage, 3 not running, 4 denied, 5 timed out, 6 state conflict" \
        "$EXIT_USAGE $EXIT_NOT_RUNNING $EXIT_DENIED $EXIT_TIMEOUT $EXIT_STATE" "64 3 4 5 6"
ctl --help
check_eq "--help exits 0" "$RC" 0
help_codes=$(sed -n '/^Exit status/,/^$/p' <<<"$OUT" | awk '$1 ~ /^[0-9]+$/ { printf "%s ", $1 }')
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
want = {"Instance": "alpha", "State": "connected", "FailureReason": "", "Path": "direct",
        "PeerAddress": sys.argv[2], "Endpoint": sys.argv[2], "TapDevice": "smt0", "Mtu": 1380,
        "LocalAddress": [sys.argv[3]], "PublicKey": "", "NatType": "unknown",
        "PublicEndpoint": "", "Peers": ["/org/shadowmesh1/instance/alpha/peer/1"]}
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
peers = got.get("peers")
if not isinstance(peers, list) or len(peers) != 1 or \
        peers[0].get("Object") != want["Peers"][0] or peers[0].get("State") != "connected" or \
        peers[0].get("Endpoint") != sys.argv[2]:
    print("peers: %r, want one, connected, at %s" % (peers, sys.argv[2]))
extra = set(got) - set(want) - set(numbers) - {"peers"}
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

# The daemon speaks D-Bus ("call Disconnect"); shadowmeshctl says the same in its own words.
msg=$(daemon_message alpha Connect "$UNDER_B:$PORT")
check_eq "the daemon's AlreadyConnected message" "$msg" \
        "Already connected to $UNDER_B:$PORT; call Disconnect first"
ctl -i alpha connect "$UNDER_B:$PORT"
check_eq "a second connect exits 6 (AlreadyConnected)" "$RC" "$EXIT_STATE"
check_eq "... in shadowmeshctl's words" "$ERR_LAST" \
        "shadowmeshctl: already connected to $UNDER_B:$PORT; run 'shadowmeshctl disconnect' first"

msg=$(daemon_message as "$USER_PLAIN" alpha Disconnect)
group=$(sed -n "s/^Only root and members of group '\(.*\)' may disconnect this tunnel\$/\1/p" <<<"$msg")
check "the daemon's AccessDenied message names the group" test -n "$group"
ctl_as "$USER_PLAIN" -i alpha disconnect
check_eq "a plain user's disconnect exits 4 (AccessDenied)" "$RC" "$EXIT_DENIED"
check_eq "... in shadowmeshctl's words" "$ERR_LAST" \
        "shadowmeshctl: permission denied: only root and members of group '$group' may disconnect this instance"
check_eq "the tunnel is still connected" "$(prop alpha State)" 's "connected"'

ctl -i alpha disconnect
check_eq "disconnect exits 0" "$RC" 0
check_eq "disconnect prints nothing" "$OUT" ""
check_eq "the daemon agrees: State disconnected" "$(prop alpha State)" 's "disconnected"'

msg=$(daemon_message alpha Disconnect)
check_eq "the daemon's NotConnected message" "$msg" "No peer is connected"
ctl -i alpha disconnect
check_eq "disconnect when disconnected exits 6 (NotConnected)" "$RC" "$EXIT_STATE"
check_eq "... in shadowmeshctl's words" "$ERR_LAST" "shadowmeshctl: no peer is connected"

# ---- errors -------------------------------------------------------------------------------------
msg=$(daemon_message as "$USER_PLAIN" alpha Connect "$UNDER_B:$PORT")
note "the daemon's refusal: $msg"
ctl_as "$USER_PLAIN" -i alpha connect "$UNDER_B:$PORT"
check_eq "a plain user's connect exits 4 (AccessDenied)" "$RC" "$EXIT_DENIED"
check_eq "... in shadowmeshctl's words" "$ERR_LAST" \
        "shadowmeshctl: permission denied: only root and members of group '$group' may connect this instance"
check_eq "the tunnel stays disconnected" "$(prop alpha State)" 's "disconnected"'

t0=$(now_ms)
ctl -i alpha connect "$UNDER_DEAD:$PORT" --timeout 2
elapsed=$(($(now_ms) - t0))
check_eq "connect to a dead peer with --timeout 2 exits 5" "$RC" "$EXIT_TIMEOUT"
check_has "... saying the peer did not answer" "$ERR_LAST" \
        "shadowmeshctl: no handshake with $UNDER_DEAD:$PORT before the timeout: the peer did not answer"
if ((elapsed >= 1500 && elapsed < 7000)); then
        pass "... after ${elapsed} ms (1.5 to 7 s)"
else
        fail "... after ${elapsed} ms (1.5 to 7 s)"
fi
check_eq "State is failed after the timeout" "$(prop alpha State)" 's "failed"'

ctl -i nosuch status
check_eq "-i nosuch status exits 3" "$RC" "$EXIT_NOT_RUNNING"
want="shadowmeshctl: instance 'nosuch' is not running"
want+=" (no org.shadowmesh1.Instance.nosuch on the system bus)"
want+=$'\nRunning instances: alpha, peer-1'
want+=$'\nStart it with: systemctl start shadowmesh@nosuch'
check_eq "... saying it is not running, which run, and how to start it" "$ERR" "$want"
# status and disconnect PEER read the status and the peers through one helper
# (ctl_get_tunnel): an instance that is not there is an error naming it, never a crash.
ctl -i nosuch status --json
check_eq "-i nosuch status --json exits 3 (no crash)" "$RC: $OUT" "$EXIT_NOT_RUNNING: "
check_eq "... saying the same" "$ERR" "$want"
ctl -i nosuch disconnect x
check_eq "-i nosuch disconnect x exits 3 (no crash)" "$RC: $OUT" "$EXIT_NOT_RUNNING: "
check_eq "... saying it is not running, which run, and how to start it" "$ERR" "$want"
RC=0
DBUS_SYSTEM_BUS_ADDRESS="unix:path=$TMP/no-bus" "$SHADOWMESHCTL" -i alpha status \
        >"$TMP/ctl.stdout" 2>"$TMP/ctl.stderr" || RC=$?
check_eq "no system bus: exit 3" "$RC" "$EXIT_NOT_RUNNING"
check_has "... saying so" "$(cat "$TMP/ctl.stderr")" "cannot connect to the system bus"
ctl -i alpha frobnicate
check_eq "an unknown command exits 64" "$RC" "$EXIT_USAGE"
ctl -i alpha connect "$UNDER_B:$PORT" --timeout 0
check_eq "connect --timeout 0 exits 64" "$RC" "$EXIT_USAGE"
ctl -i alpha connect --bogus
check_eq "connect --bogus exits 64" "$RC" "$EXIT_USAGE"
check_eq "... pointing to the command's own help" "$ERR_LAST" \
        "Try 'shadowmeshctl connect --help' for more information."

# ---- addresses: checked before anything is sent, in the words of shadowmeshd --check ------------
# check_reason KEY VALUE: the reason shadowmeshd --check gives for KEY: VALUE in a configuration
# (the text after "is not host[:port]: ").
check_reason() {
        local section=${1%%.*} key=${1#*.}
        {
                echo "encryption:"
                echo "  key: \"$KEY\""
                echo "$section:"
                echo "  $key: \"$2\""
        } >"$TMP/check.yaml"
        chmod 600 "$TMP/check.yaml"
        { "$SHADOWMESHD" --check "$TMP/check.yaml" 2>&1 || true; } |
                sed -n 's/.* is not host\[:port\]: //p'
}
for bad in 192.0.2.300 192.0.2.1:99999 "host name" "[2001:db8::1" ""; do
        [[ -n $bad ]] || continue
        reason=$(check_reason peer.address "$bad")
        ctl -i alpha connect "$bad"
        check_eq "connect '$bad' exits 64" "$RC" "$EXIT_USAGE"
        check "... shadowmeshd --check has a reason for it too" test -n "$reason"
        check_eq "... with the reason of shadowmeshd --check" "$(head -n 1 <<<"$ERR")" \
                "shadowmeshctl: invalid ADDR: '$bad' is not host[:port]: $reason"
        check_not "... before printing Connecting" grep -q Connecting <<<"$ERR"
done
reason=$(check_reason relay.server relay.example:99999)
ctl -i alpha connect --relay-server relay.example:99999
check_eq "connect --relay-server relay.example:99999 exits 64" "$RC" "$EXIT_USAGE"
check_eq "... naming --relay-server, with the reason of shadowmeshd --check" \
        "$(head -n 1 <<<"$ERR")" \
        "shadowmeshctl: invalid --relay-server: 'relay.example:99999' is not host[:port]: $reason"
check_eq "nothing reached the daemon: State still failed" "$(prop alpha State)" 's "failed"'

# ---- per-command help ---------------------------------------------------------------------------
ctl --help
general=$OUT
for c in connect disconnect status list netcheck genkey pubkey help; do
        ctl "$c" --help
        check_eq "$c --help exits 0" "$RC" 0
        check "$c --help is $c's own usage" grep -qE "^Usage: shadowmeshctl .*\b$c\b" <<<"$(head -n 1 <<<"$OUT")"
        check "$c --help is not the general help" test "$OUT" != "$general"
done
ctl connect --help
connect_help=$OUT
check_has "connect --help describes --relay-server" "$connect_help" "--relay-server HOST[:PORT]"
ctl help connect
check_eq "help connect = connect --help" "$OUT" "$connect_help"
ctl -i alpha connect 192.0.2.300 -h
check_eq "connect ADDR -h: the help, not a check of ADDR" "$OUT" "$connect_help"

# ---- log levels and exit codes: the same in --help, the man pages and the parser ----------------
help_levels=$("$SHADOWMESHD" --help | sed -n 's/.*--log-level LEVEL *\(.*\) (overrides.*/\1/p')
man_levels=$(sed -n '/^\.BR \\-l ", " \\-\\-log\\-level/,/^Overrides/p' "$SOURCE_ROOT/man/shadowmeshd.8" |
        sed -n 's/^\.BR\? \([a-z][a-z]*\).*/\1/p' | tr '\n' ' ')
note "shadowmeshd --help: $help_levels; shadowmeshd(8): $man_levels"
check_eq "shadowmeshd --help and shadowmeshd(8) name the same log levels" \
        "$(tr -d ',' <<<"$help_levels" | sed 's/ or / /')" "${man_levels% }"
for level in $man_levels; do
        check "shadowmeshd --log-level $level is accepted" \
                "$SHADOWMESHD" --check --log-level "$level" "$TMP/a.yaml"
        sed "s/^  log_level: .*/  log_level: $level/" "$TMP/a.yaml" >"$TMP/level.yaml"
        chmod 600 "$TMP/level.yaml"
        check "daemon.log_level: $level is accepted" "$SHADOWMESHD" --check "$TMP/level.yaml"
done
sed "s/^  log_level: .*/  log_level: verbose/" "$TMP/a.yaml" >"$TMP/level.yaml"
check_has "the configuration's error lists the same levels" \
        "$("$SHADOWMESHD" --check "$TMP/level.yaml" 2>&1)" "(use $help_levels)"
check_has "--log-level's error lists the same levels" \
        "$("$SHADOWMESHD" --log-level verbose "$TMP/a.yaml" 2>&1)" "($help_levels)"
RC=0
"$SHADOWMESHD" --bogus >/dev/null 2>&1 || RC=$?
check_eq "a usage error is the same exit status in shadowmeshd" "$RC" "$EXIT_USAGE"
d_usage=$(sed -n '/^\.SH EXIT STATUS/,/^\.SH/p' "$SOURCE_ROOT/man/shadowmeshd.8" |
        grep -A1 '^\.B [0-9]' | awk '/^\.B/ { c = $2 } /^Usage error/ { print c }')
check_eq "... and in shadowmeshd(8)" "$d_usage" "$EXIT_USAGE"

# ---- the daemon's messages and ours in German and French ----------------------------------------
# The catalogs as built (po/), where the program looks for them: bind-mounted over its localedir
# in a private mount namespace.
BUILD_ROOT=$(dirname "$(dirname "$(dirname "$SHADOWMESHCTL")")")
LOCALEDIR=$(meson introspect --buildoptions "$BUILD_ROOT" 2>/dev/null | python3 -c '
import json, os, sys
o = {x["name"]: x["value"] for x in json.load(sys.stdin)}
print(os.path.join(o["prefix"], o["localedir"]))' 2>/dev/null || true)
# A new machine may have no localedir yet (/usr/local/share/locale comes with the first
# program installed there): then the private namespace mounts a tmpfs over its deepest existing
# parent and makes it there, so nothing is created on the machine itself. Never over / or /usr,
# which the program itself needs.
LOCALE_PARENT=$LOCALEDIR
while [[ -n $LOCALE_PARENT && ! -d $LOCALE_PARENT ]]; do
        LOCALE_PARENT=$(dirname "$LOCALE_PARENT")
done
# ctl_lang LANG ARGS...: shadowmeshctl in LANG (the build's catalogs).
ctl_lang() {
        local lang=$1
        shift
        RC=0
        unshare --mount sh -c 'if [ ! -d "$2" ]; then
                        mount -t tmpfs shadowmesh-test "$3" && mkdir -p "$2" || exit 1
                fi
                mount --bind "$1" "$2" && shift 3 && exec "$@"' sh \
                "$BUILD_ROOT/po" "$LOCALEDIR" "$LOCALE_PARENT" env LANGUAGE="$lang" LC_ALL=C.UTF-8 \
                "$SHADOWMESHCTL" "$@" >"$TMP/ctl.stdout" 2>"$TMP/ctl.stderr" || RC=$?
        ERR=$(cat "$TMP/ctl.stderr")
        ERR_LAST=$(tail -n 1 "$TMP/ctl.stderr")
}
# alpha is failed (the timeout above): disconnect it, so that the next ones have nothing to do.
ctl -i alpha disconnect
check_eq "disconnect a failed instance exits 0" "$RC" 0
check_eq "the daemon agrees: State disconnected again" "$(prop alpha State)" 's "disconnected"'
if [[ -n $LOCALEDIR && -f $BUILD_ROOT/po/de/LC_MESSAGES/shadowmesh.mo &&
        $LOCALE_PARENT != / && $LOCALE_PARENT != /usr ]]; then
        ctl_lang de -i alpha disconnect
        check_eq "de: NotConnected" "$ERR_LAST" "shadowmeshctl: keine Gegenstelle ist verbunden"
        ctl_lang fr -i alpha disconnect
        check_eq "fr: NotConnected" "$ERR_LAST" "shadowmeshctl: aucun pair n'est connecté"
        ctl_lang de -i alpha connect "$UNDER_DEAD:$PORT" --timeout 1
        check_has "de: HandshakeTimeout" "$ERR_LAST" \
                "shadowmeshctl: kein Handshake mit $UNDER_DEAD:$PORT vor Ablauf der Zeit"
        ctl_lang fr -i alpha connect "$UNDER_DEAD:$PORT" --timeout 1
        check_has "fr: HandshakeTimeout" "$ERR_LAST" \
                "shadowmeshctl: pas de poignée de main avec $UNDER_DEAD:$PORT avant le délai"
        ctl_lang de -i alpha connect 192.0.2.300
        check_eq "de: the address's reason" "$(head -n 1 <<<"$ERR")" \
                "shadowmeshctl: ungültige Angabe ADDR: „192.0.2.300“ ist nicht HOST[:PORT]: keine IPv4-Adresse (vier Zahlen von 0 bis 255, durch Punkte getrennt)"
        ctl_lang fr -i nosuch status
        check_has "fr: not running, how to start it" "$ERR" \
                "Pour la démarrer : systemctl start shadowmesh@nosuch"
else
        fail "the build's catalogs (po/de) and a localedir (${LOCALEDIR:-?}, under ${LOCALE_PARENT:-?}) to mount them over are there for the translation checks"
fi

# ---- genkey's warning -----------------------------------------------------------------------------
RC=0
(umask 022 && "$SHADOWMESHCTL" genkey >"$TMP/open.key" 2>"$TMP/genkey.err") || RC=$?
check_eq "genkey into a file others may read exits 0" "$RC" 0
check "... writes the key" grep -qE '^[A-Za-z0-9+/]{43}=$' "$TMP/open.key"
check_has "... and warns" "$(cat "$TMP/genkey.err")" \
        "shadowmeshctl: warning: the key file is readable by other users (mode 0644)"
(umask 077 && "$SHADOWMESHCTL" genkey >"$TMP/closed.key" 2>"$TMP/genkey.err") || true
check_eq "genkey into a private file says nothing" "$(cat "$TMP/genkey.err")" ""

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
