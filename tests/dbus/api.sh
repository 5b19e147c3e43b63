#!/bin/bash
# SPDX-License-Identifier: MIT
#
# The org.shadowmesh1.Tunnel API on a private system-like bus with the project's policy file:
# Connect/Disconnect and their errors, properties, GetStatus, PropertiesChanged, who may do
# what (root, a plain user, a member of the control group), two instances side by side and a
# duplicate one, the ObjectManager and LogControl1.
#
#   sm$$-a: instance "alpha",  veth0 10.98.21.1, smt0 10.0.0.1/24, waits (peer.address "")
#   sm$$-b: instance "peer-1", veth0 10.98.21.2, smt0 10.0.0.2/24, waits (peer.address "")
#   sm$$-c: a second "alpha" (must refuse to start)
#   10.98.21.3: nobody (the dead peer)
set -euo pipefail
source "$(dirname "$(readlink -f "$0")")/lib.sh"

dbus_init
setup_pair 21
add_ns "$NS_C"

USER_PLAIN="sm$$u"
USER_MEMBER="sm$$m"
KEY=$(random_hex_key)

# ---- users; the control group ------------------------------------------------------------------
# daemon.control_group names the group whose members may connect: a group made for this test, so
# that a daemon ignoring the key (and falling back to "netdev") fails the member's checks below.
CONTROL_GROUP="sm$$g"
make_group "$CONTROL_GROUP"
make_user "$USER_PLAIN"
make_user "$USER_MEMBER" "$CONTROL_GROUP"
note "control group: $CONTROL_GROUP; $(id "$USER_MEMBER")"

start_bus
write_config "$TMP/a.yaml" ip4=$TUN_A/24 key="$KEY" control_group="$CONTROL_GROUP"
write_config "$TMP/b.yaml" ip4=$TUN_B/24 key="$KEY"
write_config "$TMP/c.yaml" ip4=10.0.0.3/24 key="$KEY"

A=alpha
B="peer-1"
NAME_A=$(inst_name $A) PATH_A=$(inst_path $A)
NAME_B=$(inst_name $B) PATH_B=$(inst_path $B)

start_daemon a "$NS_A" "$TMP/a.yaml" --instance $A
start_daemon b "$NS_B" "$TMP/b.yaml" --instance $B

# ---- two instances side by side -----------------------------------------------------------------
check "alpha owns $NAME_A" wait_until 10 name_has_owner "$NAME_A"
check_eq "instance 'peer-1' is served as org.shadowmesh1.Instance.peer_2d1" "$NAME_B" \
        org.shadowmesh1.Instance.peer_2d1
check "peer-1 owns $NAME_B" wait_until 10 name_has_owner "$NAME_B"
check "alpha logs the name and path it serves" \
        log_has a "serving $NAME_A on the system bus at $PATH_A"
names=$(busctl list --no-legend --acquired 2>&1 | awk '{ print $1 }' | grep '^org\.shadowmesh1\.' |
        sort | tr '\n' ' ' || true)
check_eq "both instances are listed on the bus" "$names" "$NAME_A $NAME_B "
check_eq "peer-1 serves /org/shadowmesh1/instance/peer_2d1" "$(prop $B TapDevice)" 's "smt0"'
check_eq "alpha's LocalAddress" "$(prop $A LocalAddress)" "as 1 \"$TUN_A/24\""
check_eq "peer-1's LocalAddress" "$(prop $B LocalAddress)" "as 1 \"$TUN_B/24\""

# ---- a duplicate instance name ------------------------------------------------------------------
# In its own namespace, so that only the bus name collides (not the TAP or the port).
owner_before=$(name_owner "$NAME_A")
start_daemon dup "$NS_C" "$TMP/c.yaml" --instance $A
if wait_exit dup 15; then
        check_eq "a second 'alpha' exits with status 2" "$EXIT_CODE" 2
else
        fail "a second 'alpha' exits with status 2" "still running after 15 s"
fi
check "it says the instance is already running" \
        log_has dup "instance 'alpha' is already running (the bus name $NAME_A is taken)"
check "it leaves no $TAP behind in its namespace" link_gone "$NS_C" "$TAP"
check_eq "the first alpha still owns the name" "$(name_owner "$NAME_A")" "$owner_before"

# ---- ObjectManager ------------------------------------------------------------------------------
# objects_of INSTANCE: the object paths and interfaces GetManagedObjects lists, read by the
# plain user.
objects_of() {
        as_user "$USER_PLAIN" busctl --json=short call "$(inst_name "$1")" /org/shadowmesh1 \
                org.freedesktop.DBus.ObjectManager GetManagedObjects 2>&1 |
                python3 -c '
import json, sys
try:
    objects = json.load(sys.stdin)["data"][0]
except Exception as e:
    print("unparsable:", e)
    sys.exit(0)
for path in sorted(objects):
    tunnel = objects[path].get("org.shadowmesh1.Tunnel")
    print(path, tunnel["TapDevice"]["data"] if tunnel else "(no org.shadowmesh1.Tunnel)")
'
}
check_eq "GetManagedObjects on alpha lists its instance object" "$(objects_of $A)" \
        "$PATH_A $TAP"
check_eq "GetManagedObjects on peer-1 lists its instance object" "$(objects_of $B)" \
        "$PATH_B $TAP"

# ---- LogControl1 --------------------------------------------------------------------------------
LC=("$NAME_A" /org/freedesktop/LogControl1 org.freedesktop.LogControl1)
rc=0
out=$(busctl set-property "${LC[@]}" LogLevel s debug 2>&1) || rc=$?
check_eq "root sets LogLevel to debug (exit status: output)" "$rc: $out" "0: "
check_eq "LogLevel reads back as debug" "$(busctl get-property "${LC[@]}" LogLevel 2>&1)" \
        's "debug"'
check_eq "a plain user reads LogLevel" \
        "$(as_user "$USER_PLAIN" busctl get-property "${LC[@]}" LogLevel 2>&1)" 's "debug"'
out=$(as_user "$USER_PLAIN" dbus-send --system --print-reply --dest="$NAME_A" \
        /org/freedesktop/LogControl1 org.freedesktop.DBus.Properties.Set \
        string:org.freedesktop.LogControl1 string:LogLevel variant:string:error 2>&1 || true)
check_has "a plain user may not set LogLevel" "$out" \
        "Error org.freedesktop.DBus.Error.AccessDenied"
check_eq "LogLevel is still debug" "$(busctl get-property "${LC[@]}" LogLevel 2>&1)" 's "debug"'

# ---- what a plain user may do -------------------------------------------------------------------
check_eq "initial State is waiting (no peer.address: it accepts its peer)" "$(prop $A State)" \
        's "waiting"'
check_eq "initial Path is none" "$(prop $A Path)" 's "none"'
check_eq "initial PeerAddress is empty" "$(prop $A PeerAddress)" 's ""'
out=$(as_user "$USER_PLAIN" busctl get-property "$NAME_A" "$PATH_A" $TUNNEL_IFACE State 2>&1 ||
        true)
check_eq "a plain user reads State (Get)" "$out" 's "waiting"'
out=$(as_user "$USER_PLAIN" busctl call "$NAME_A" "$PATH_A" org.freedesktop.DBus.Properties \
        GetAll s $TUNNEL_IFACE 2>&1 || true)
check_has "a plain user reads all properties (GetAll)" "$out" '"TapDevice" s "smt0"'
out=$(as_user "$USER_PLAIN" busctl introspect --xml-interface "$NAME_A" "$PATH_A" 2>&1 || true)
check_has "a plain user introspects the instance" "$out" "<interface name=\"$TUNNEL_IFACE\">"
out=$(as_user "$USER_PLAIN" "$SM_CALL" "$NAME_A" "$PATH_A" Connect "$UNDER_B:$PORT" 2>&1 || true)
# The daemon's message (org.shadowmesh1.Tunnel.txt, /work/notes/daemon-cli.md).
DENIED="org.freedesktop.DBus.Error.AccessDenied: Only root and members of group"
DENIED+=" '$CONTROL_GROUP' may"
check_eq "a plain user may not Connect (AccessDenied, the daemon's message)" "$out" \
        "error $DENIED connect this tunnel"
out=$(as_user "$USER_PLAIN" dbus-send --system --print-reply --dest="$NAME_A" "$PATH_A" \
        $TUNNEL_IFACE.Disconnect 2>&1 || true)
check_eq "a plain user may not Disconnect (dbus-send shows the message)" "$out" \
        "Error $DENIED disconnect this tunnel"
check_eq "State is still waiting" "$(prop $A State)" 's "waiting"'

# ---- a plain user subscribes to PropertiesChanged -----------------------------------------------
MON=$TMP/monitor.out
as_user "$USER_PLAIN" dbus-monitor --system \
        "type='signal',interface='org.freedesktop.DBus.Properties',path='$PATH_A'" >"$MON" 2>&1 &
OWN_PIDS+=("$!")
# Ready once its match rule is in place: a probe signal on the same path comes through.
monitor_sees_probe() {
        busctl emit "$PATH_A" org.freedesktop.DBus.Properties PropertiesChanged 'sa{sv}as' \
                test.probe 0 0 >/dev/null 2>&1 || true
        grep -q 'test.probe' "$MON"
}
check "the subscriber (plain user) is listening" wait_until 10 monitor_sees_probe
# state_changes: the State values of the PropertiesChanged signals seen so far, in order.
state_changes() {
        awk '/string "State"/ {
                getline
                if (match($0, /"[a-z]*"/))
                        print substr($0, RSTART + 1, RLENGTH - 2)
        }' "$MON" | tr '\n' ' '
}
changes_match() { [[ $(state_changes) == *$1* ]]; }

# ---- root connects ------------------------------------------------------------------------------
t0=$(now_ms)
check "root Connect to $UNDER_B:$PORT gets its reply" \
        timeout 20 busctl call "$NAME_A" "$PATH_A" $TUNNEL_IFACE Connect 'sa{sv}' "$UNDER_B:$PORT" 0
note "Connect took $(($(now_ms) - t0)) ms"
check "alpha logs the request" log_has a "connect to $UNDER_B:$PORT requested"
check_eq "State is connected when the reply has come" "$(prop $A State)" 's "connected"'
check_eq "Path is direct" "$(prop $A Path)" 's "direct"'
check_eq "PeerAddress" "$(prop $A PeerAddress)" "s \"$UNDER_B:$PORT\""
check_eq "Endpoint" "$(prop $A Endpoint)" "s \"$UNDER_B:$PORT\""
lh=$(prop $A LastHandshake)
now_us=$(($(date +%s%N) / 1000))
if [[ $lh =~ ^t\ ([0-9]+)$ ]] &&
        ((BASH_REMATCH[1] > now_us - 60000000 && BASH_REMATCH[1] <= now_us)); then
        pass "LastHandshake is the time of the handshake"
else
        fail "LastHandshake is the time of the handshake" "got: $lh, now: $now_us"
fi
check "peer-1 (the responder) is connected too" wait_prop 5 $B State 's "connected"'
check "ping through the tunnel" wait_ping 10 "$NS_A" $TUN_B
check "debug log shows the state changes" log_has a "state waiting -> connecting"
check "the subscriber saw State connecting, then connected" \
        wait_until 5 changes_match "connecting connected"

# ---- GetStatus ----------------------------------------------------------------------------------
status=$(as_user "$USER_PLAIN" busctl --json=short call "$NAME_A" "$PATH_A" $TUNNEL_IFACE \
        GetStatus 2>&1 || true)
problems=$(python3 -c '
import json, sys
want = {"State": "s", "FailureReason": "s", "Path": "s", "PeerAddress": "s", "Endpoint": "s", "PublicEndpoint": "s",
        "NatType": "s", "TapDevice": "s", "LocalAddress": "as", "Mtu": "u", "PublicKey": "s",
        "RxBytes": "t", "TxBytes": "t", "RxPackets": "t", "TxPackets": "t", "LastHandshake": "t",
        "Peers": "ao"}
try:
    reply = json.loads(sys.argv[1])
    assert reply["type"] == "a{sv}", "reply type " + reply["type"]
    got = reply["data"][0]
except Exception as e:
    print("unparsable reply:", repr(e), sys.argv[1][:200])
    sys.exit(0)
for name, sig in want.items():
    if name not in got:
        print("missing", name)
    elif got[name]["type"] != sig:
        print(name, "has type", got[name]["type"], "not", sig)
for name in got:
    if name not in want:
        print("undocumented", name)
' "$status")
check_eq "GetStatus (plain user) returns every documented property with its signature" \
        "$problems" ""
values=$(python3 -c '
import json, sys
d = json.loads(sys.argv[1])["data"][0]
print(d["State"]["data"], d["Path"]["data"], d["TapDevice"]["data"], d["Mtu"]["data"],
      ",".join(d["LocalAddress"]["data"]), d["PublicKey"]["data"] or "-", d["NatType"]["data"],
      d["TxPackets"]["data"] > 0, d["RxPackets"]["data"] > 0)
' "$status" 2>&1 || true)
check_eq "GetStatus values" "$values" "connected direct $TAP 1380 $TUN_A/24 - unknown True True"

# ---- refused while connected --------------------------------------------------------------------
check_eq "a second Connect: AlreadyConnected" \
        "$(smcall $A Connect "$UNDER_B:$PORT" | cut -d: -f1)" \
        "error org.shadowmesh1.Error.AlreadyConnected"
out=$(as_user "$USER_PLAIN" dbus-send --system --print-reply --dest="$NAME_A" "$PATH_A" \
        $TUNNEL_IFACE.Disconnect 2>&1 || true)
check_has "a plain user may not Disconnect a live tunnel" "$out" \
        "Error org.freedesktop.DBus.Error.AccessDenied"
check_eq "State is still connected" "$(prop $A State)" 's "connected"'

# ---- root disconnects ---------------------------------------------------------------------------
check "root Disconnect" busctl call "$NAME_A" "$PATH_A" $TUNNEL_IFACE Disconnect
check_eq "State is disconnected" "$(prop $A State)" 's "disconnected"'
check_eq "Path is none" "$(prop $A Path)" 's "none"'
check "alpha logs it" log_has a "disconnected by request"
check "no ping through the tunnel (3 of 3 lost)" all_lost "$NS_A" $TUN_B
check "the subscriber saw State disconnected" \
        wait_until 5 changes_match "connecting connected disconnected"
out=$(dbus-send --system --print-reply --dest="$NAME_A" "$PATH_A" $TUNNEL_IFACE.Disconnect 2>&1 ||
        true)
check_has "Disconnect when disconnected: NotConnected" "$out" \
        "Error org.shadowmesh1.Error.NotConnected: "

# ---- invalid arguments --------------------------------------------------------------------------
err_name() { smcall "$@" | sed -n 's/^error \([^:]*\):.*/\1/p;s/^ok$/ok/p'; }
check_eq "Connect \"\": InvalidPeer" "$(err_name $A Connect "")" org.shadowmesh1.Error.InvalidPeer
check_eq "Connect host:99999: InvalidPeer" "$(err_name $A Connect "host:99999")" \
        org.shadowmesh1.Error.InvalidPeer
check_eq "unknown option: InvalidArguments" \
        "$(err_name $A Connect "$UNDER_B:$PORT" bogus=s:1)" org.shadowmesh1.Error.InvalidArguments
check_eq "timeout_sec of the wrong type: InvalidArguments" \
        "$(err_name $A Connect "$UNDER_B:$PORT" timeout_sec=s:3)" \
        org.shadowmesh1.Error.InvalidArguments
check_eq "timeout_sec 0: InvalidArguments" \
        "$(err_name $A Connect "$UNDER_B:$PORT" timeout_sec=u:0)" \
        org.shadowmesh1.Error.InvalidArguments
check_eq "relay: RelayUnavailable" "$(err_name $A Connect "$UNDER_B:$PORT" relay=b:true)" \
        org.shadowmesh1.Error.RelayUnavailable
check_eq "State is still disconnected after the refused calls" "$(prop $A State)" \
        's "disconnected"'

# ---- a dead peer --------------------------------------------------------------------------------
t0=$(now_ms)
out=$(smcall $A Connect "$UNDER_DEAD:$PORT" timeout_sec=u:3)
elapsed=$(($(now_ms) - t0))
check_has "Connect to a dead peer with timeout_sec=3: HandshakeTimeout" "$out" \
        "error org.shadowmesh1.Error.HandshakeTimeout: "
if ((elapsed >= 2500 && elapsed < 8000)); then
        pass "the timeout came after ${elapsed} ms (2.5 to 8 s)"
else
        fail "the timeout came after ${elapsed} ms (2.5 to 8 s)"
fi
check_eq "State is failed after the timeout" "$(prop $A State)" 's "failed"'
check_has "FailureReason names the peer" "$(prop $A FailureReason)" "No handshake with $UNDER_DEAD:$PORT"
check_eq "Path is none when failed" "$(prop $A Path)" 's "none"'
check_eq "PeerAddress is empty after the timeout" "$(prop $A PeerAddress)" 's ""'
check "alpha logs the timeout" log_has a "connect to $UNDER_DEAD:$PORT timed out"

# A pending Connect is cancelled by Disconnect.
"$SM_CALL" "$NAME_A" "$PATH_A" Connect "$UNDER_DEAD:$PORT" timeout_sec=u:30 \
        >"$TMP/pending.out" 2>&1 &
pending=$!
OWN_PIDS+=("$pending")
check "a pending Connect: State connecting" wait_prop 5 $A State 's "connecting"'
check "Disconnect during a pending Connect" busctl call "$NAME_A" "$PATH_A" $TUNNEL_IFACE Disconnect
wait_until 5 has_exited "$pending" || true
check_has "the pending Connect fails with Cancelled" "$(cat "$TMP/pending.out")" \
        "error org.shadowmesh1.Error.Cancelled: "

# ---- a member of the control group --------------------------------------------------------------
out=$(as_user "$USER_MEMBER" "$SM_CALL" "$NAME_A" "$PATH_A" Connect "$UNDER_B:$PORT" \
        timeout_sec=u:10 2>&1 || true)
check_eq "a member of '$CONTROL_GROUP' may Connect" "$out" ok
check_eq "State is connected" "$(prop $A State)" 's "connected"'
check "ping through the tunnel again" wait_ping 10 "$NS_A" $TUN_B
out=$(as_user "$USER_MEMBER" "$SM_CALL" "$NAME_A" "$PATH_A" Disconnect 2>&1 || true)
check_eq "a member of '$CONTROL_GROUP' may Disconnect" "$out" ok
check_eq "State is disconnected" "$(prop $A State)" 's "disconnected"'

check "alpha is still running" alive a
check "peer-1 is still running" alive b
summary
