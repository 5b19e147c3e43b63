#!/bin/bash
# SPDX-License-Identifier: MIT
#
# The peers on the bus (dbus/org.shadowmesh1.Peer.txt): the instance's Peers property and its
# PeerAdded/PeerRemoved signals, ObjectManager's InterfacesAdded/Removed, one
# org.shadowmesh1.Peer object per peer with its properties and PropertiesChanged, Peer.Disconnect
# and who may call it, and shadowmeshctl's view of them: status (human and --json), disconnect
# PEER by name and by id, a name that matches nothing, one that names two peers (exit 64,
# nothing disconnected), and the completion of PEER.
#
#   sm$$-a: instance "alpha", veth0 10.98.61.1, smt0 10.0.0.1/24, identity mode; its peers: list
#           names "bravo" (b's key) without an address: it waits until Connect
#   sm$$-b: instance "bravo", veth0 10.98.61.2, smt0 10.0.0.2/24, identity mode; its entry
#           names "alfa" (a's key), no address: it waits for a
#   sm$$-a: instance "charlie" (at the end), smt1, port 9002: peers "2" and "delta" at
#           10.98.61.3, where nothing answers
set -euo pipefail
source "$(dirname "$(readlink -f "$0")")/lib.sh"

dbus_init
setup_pair 61
need timeout coreutils

readonly PEER_IFACE=org.shadowmesh1.Peer
USER_PLAIN="sm$$u"
USER_MEMBER="sm$$m"
CONTROL_GROUP="sm$$g"
make_group "$CONTROL_GROUP"
make_user "$USER_PLAIN"
make_user "$USER_MEMBER" "$CONTROL_GROUP"

for k in a b; do
        (umask 077 && "$SHADOWMESHD" genkey >"$TMP/$k.key")
done
PUB_A=$("$SHADOWMESHD" pubkey <"$TMP/a.key")
PUB_B=$("$SHADOWMESHD" pubkey <"$TMP/b.key")
write_config "$TMP/a.yaml" ip4=$TUN_A/24 private_key_file="$TMP/a.key" \
        control_group="$CONTROL_GROUP" peers="peers:
  - name: bravo
    public_key: \"$PUB_B\""
write_config "$TMP/b.yaml" ip4=$TUN_B/24 private_key_file="$TMP/b.key" peers="peers:
  - name: alfa
    public_key: \"$PUB_A\""

start_bus
A=alpha
B=bravo
NAME_A=$(inst_name $A) PATH_A=$(inst_path $A)
NAME_B=$(inst_name $B) PATH_B=$(inst_path $B)
start_daemon a "$NS_A" "$TMP/a.yaml" --instance $A
start_daemon b "$NS_B" "$TMP/b.yaml" --instance $B
check "alpha owns $NAME_A" wait_until 10 name_has_owner "$NAME_A"
check "bravo owns $NAME_B" wait_until 10 name_has_owner "$NAME_B"

# pprop INSTANCE OBJECT PROPERTY: busctl's text form of a Peer property.
pprop() { busctl get-property "$(inst_name "$1")" "$2" $PEER_IFACE "$3" 2>&1; }
pprop_is() { [[ $(pprop "$1" "$2" "$3") == "$4" ]]; }
# the number in busctl's "t 1234"
pnum() { pprop "$@" | awk '{ print $2 }' || true; }
ctl() { "$SHADOWMESHCTL" "$@"; }

check_eq "no peer before Connect: alpha's Peers is empty" "$(prop $A Peers)" "ao 0"
check_eq "bravo's Peers is empty" "$(prop $B Peers)" "ao 0"

# ---- the signals, watched by a plain user -------------------------------------------------------
MON=$TMP/monitor.out
timeout 120 setpriv --reuid="$USER_PLAIN" --regid="$(id -g "$USER_PLAIN")" --init-groups \
        --inh-caps=-all -- dbus-monitor --system "type='signal',path_namespace='/org/shadowmesh1'" \
        >"$MON" 2>&1 &
OWN_PIDS+=("$!")
monitor_sees_probe() {
        busctl emit "$PATH_A" org.freedesktop.DBus.Properties PropertiesChanged 'sa{sv}as' \
                test.probe 0 0 >/dev/null 2>&1 || true
        grep -q 'test.probe' "$MON"
}
check "the subscriber (plain user) is listening" wait_until 10 monitor_sees_probe

# monitor_has SIGNAL_MEMBER PATH TEXT: a signal SIGNAL_MEMBER from PATH whose body has TEXT.
monitor_has() {
        awk -v member="member=$1" -v path="path=$2;" -v text="$3" '
                /^signal / { inside = index($0, member) && index($0, path); next }
                inside && index($0, text) { found = 1 }
                END { exit !found }' "$MON"
}
# monitor_count_at_least N MEMBER PATH TEXT: N such signals carrying TEXT.
monitor_count_at_least() {
        awk -v n="$1" -v member="member=$2" -v path="path=$3;" -v text="$4" '
                /^signal / { inside = index($0, member) && index($0, path); next }
                inside && index($0, text) { found++; inside = 0 }
                END { exit !(found >= n) }' "$MON"
}

# ---- Connect adds the peer ----------------------------------------------------------------------
t0_us=$(($(date +%s%N) / 1000))
check "root Connect to $UNDER_B:$PORT" \
        timeout 20 busctl call "$NAME_A" "$PATH_A" $TUNNEL_IFACE Connect 'sa{sv}' "$UNDER_B:$PORT" 0
OBJ=$PATH_A/peer/1
check_eq "alpha's Peers lists one object, id 1" "$(prop $A Peers)" "ao 1 \"$OBJ\""
check_eq "Name is the peers: entry's name" "$(pprop $A "$OBJ" Name)" 's "bravo"'
check_eq "PublicKey is bravo's key" "$(pprop $A "$OBJ" PublicKey)" "s \"$PUB_B\""
check_eq "Endpoint is bravo's underlay address" "$(pprop $A "$OBJ" Endpoint)" \
        "s \"$UNDER_B:$PORT\""
check_eq "Path is direct" "$(pprop $A "$OBJ" Path)" 's "direct"'
check "State is connected" wait_until 5 pprop_is $A "$OBJ" State 's "connected"'
hs=$(pnum $A "$OBJ" LastHandshake)
now_us=$(($(date +%s%N) / 1000))
check "LastHandshake is recent ($hs, Connect at $t0_us, now $now_us)" \
        test "${hs:-0}" -ge "$t0_us" -a "${hs:-0}" -le "$now_us"
rx0=$(pnum $A "$OBJ" RxBytes)
tx0=$(pnum $A "$OBJ" TxBytes)
check "ping through the tunnel" wait_ping 10 "$NS_A" $TUN_B
rx1=$(pnum $A "$OBJ" RxBytes)
tx1=$(pnum $A "$OBJ" TxBytes)
check "RxBytes grows after a ping ($rx0 -> $rx1)" test "${rx1:-0}" -gt "${rx0:-0}"
macs=$(pnum $A "$OBJ" MACs)
check "MACs counts bravo's TAP address, learned from the ping's answer ($macs)" \
        test "${macs:-0}" -ge 1
check "TxBytes grows after a ping ($tx0 -> $tx1)" test "${tx1:-0}" -gt "${tx0:-0}"
out=$(as_user "$USER_PLAIN" busctl call "$NAME_A" "$OBJ" org.freedesktop.DBus.Properties GetAll \
        s $PEER_IFACE 2>&1 || true)
check_has "a plain user reads the peer's properties (GetAll)" "$out" '"State" s "connected"'

# The responder's side: the peer came through its handshake.
check_eq "bravo's Peers lists its peer" "$(prop $B Peers)" "ao 1 \"$PATH_B/peer/1\""
check_eq "bravo's peer is 'alfa'" "$(pprop $B "$PATH_B/peer/1" Name)" 's "alfa"'
check_eq "bravo's peer's Endpoint is alpha's underlay address" \
        "$(pprop $B "$PATH_B/peer/1" Endpoint)" "s \"$UNDER_A:$PORT\""
check_eq "bravo's peer's PublicKey is alpha's key" "$(pprop $B "$PATH_B/peer/1" PublicKey)" \
        "s \"$PUB_A\""

check "PeerAdded($OBJ) was emitted" wait_until 5 monitor_has PeerAdded "$PATH_A" "\"$OBJ\""
check "InterfacesAdded for $OBJ" \
        wait_until 5 monitor_has InterfacesAdded /org/shadowmesh1 "object path \"$OBJ\""
check "PropertiesChanged for the peer's State (connected)" \
        wait_until 5 monitor_has PropertiesChanged "$OBJ" '"connected"'
check "PropertiesChanged invalidates the peer's RxBytes after the ping (rate-limited, 2 s)" \
        wait_until 5 monitor_has PropertiesChanged "$OBJ" '"RxBytes"'
check "PropertiesChanged for the instance's Peers" \
        wait_until 5 monitor_has PropertiesChanged "$PATH_A" '"Peers"'
out=$(busctl --json=short call "$NAME_A" /org/shadowmesh1 org.freedesktop.DBus.ObjectManager \
        GetManagedObjects 2>&1 | python3 -c '
import json, sys
objects = json.load(sys.stdin)["data"][0]
print(" ".join(p + "=" + ",".join(sorted(i for i in objects[p]
                                         if i.startswith("org.shadowmesh1")))
               for p in sorted(objects)))' 2>&1 || true)
check_eq "GetManagedObjects lists the instance and its peer" "$out" \
        "$PATH_A=org.shadowmesh1.Tunnel $OBJ=org.shadowmesh1.Peer"

# ---- shadowmeshctl status -----------------------------------------------------------------------
out=$(ctl -i $A status 2>&1 || true)
note "shadowmeshctl -i alpha status:" "$out"
check_has "status shows the peer's heading" "$out" $'\npeer: bravo\n'
block=$(sed -n '/^peer: /,$p' <<<"$out")
check_has "the peer block: public key" "$block" $'\n  public key: '"$PUB_B"$'\n'
check_has "the peer block: endpoint" "$block" $'\n  endpoint: '"$UNDER_B:$PORT"$'\n'
check_has "the peer block: path" "$block" $'\n  path: direct\n'
check_has "the peer block: state" "$block" $'\n  state: connected\n'
check "the peer block: latest handshake N seconds ago" \
        grep -qE '^  latest handshake: [0-9]+ seconds? ago$' <<<"$block"
check "the peer block: transfer in human units" \
        grep -qE '^  transfer: [0-9.]+ (B|KiB|MiB) received, [0-9.]+ (B|KiB|MiB) sent$' <<<"$block"
check "the peer block: MACs learned" grep -qE '^  MACs learned: [1-9][0-9]*$' <<<"$block"
check_has "the peer block: its object" "$block" $'\n  object: '"$OBJ"
check_eq "the instance's lines keep the only 'State:' line (scripts grep for it)" \
        "$(grep -c 'State:' <<<"$out")" 1
out=$(ctl -i $A status --json 2>&1 || true)
got=$(python3 -c '
import json, sys
s = json.loads(sys.argv[1])
p = s["peers"]
print(len(p), p[0]["Object"], p[0]["Name"], p[0]["Endpoint"], p[0]["State"], p[0]["Path"],
      p[0]["PublicKey"] == sys.argv[2], p[0]["RxBytes"] > 0, p[0]["LastHandshake"] > 0,
      p[0]["MACs"] >= 1, s["Peers"] == [p[0]["Object"]])' "$out" "$PUB_B" 2>&1 || true)
check_eq "status --json parses, with a peers array of one (its fields in machine units)" "$got" \
        "1 $OBJ bravo $UNDER_B:$PORT connected direct True True True True True"
out=$(ctl status --json 2>&1 || true)
check_eq "status --json of every instance: each has its peers" \
        "$(python3 -c 'import json, sys; print([len(i["peers"]) for i in json.loads(sys.argv[1])])' \
                "$out" 2>&1)" "[1, 1]"

# ---- the completion of disconnect's PEER --------------------------------------------------------
out=$(PATH="$(dirname "$(readlink -f "$SHADOWMESHCTL")"):$PATH" bash --norc --noprofile -c '
        source "$1"
        COMP_WORDS=(shadowmeshctl -i alpha disconnect "")
        COMP_CWORD=4
        _shadowmeshctl
        printf "%s\n" "${COMPREPLY[@]}" | sort | tr "\n" " "' \
        sh "$SOURCE_ROOT/shell-completion/bash/shadowmeshctl" 2>&1 || true)
check_eq "completion of 'disconnect ' offers the peer's name" "$out" \
        "--help --instance -h -i bravo "

# ---- who may disconnect a peer ------------------------------------------------------------------
out=$(as_user "$USER_PLAIN" dbus-send --system --print-reply --dest="$NAME_A" "$OBJ" \
        $PEER_IFACE.Disconnect 2>&1 || true)
check_eq "a plain user may not Peer.Disconnect (the same refusal as Tunnel.Disconnect)" "$out" \
        "Error org.freedesktop.DBus.Error.AccessDenied: Only root and members of group '$CONTROL_GROUP' may disconnect this tunnel"
rc=0
out=$(as_user "$USER_PLAIN" "$SHADOWMESHCTL" -i $A disconnect bravo 2>&1) || rc=$?
check_eq "shadowmeshctl disconnect bravo as a plain user: exit 4" "$rc" 4
check_has "and it says why" "$out" "permission denied: only root and members of group"
check_eq "the peer is still connected" "$(pprop $A "$OBJ" State)" 's "connected"'

# ---- disconnect PEER ----------------------------------------------------------------------------
rc=0
out=$(ctl -i $A disconnect nosuch 2>&1) || rc=$?
check_eq "disconnect of a name no peer has: exit 6" "$rc" 6
check_eq "and the error names the argument" "$out" \
        "shadowmeshctl: instance 'alpha' has no peer 'nosuch' (a name, a public key or an id, as 'shadowmeshctl status' shows them)"
check_eq "the peer is still connected" "$(pprop $A "$OBJ" State)" 's "connected"'

rc=0
out=$(ctl -i $A disconnect bravo 2>&1) || rc=$?
check_eq "shadowmeshctl disconnect bravo (root): exit 0, silent" "$rc: $out" "0: "
check_eq "alpha's Peers is empty again" "$(prop $A Peers)" "ao 0"
check_eq "alpha is disconnected" "$(prop $A State)" 's "disconnected"'
check_has "the peer's object is gone" "$(pprop $A "$OBJ" State)" "Unknown object"
check "PeerRemoved($OBJ) was emitted" wait_until 5 monitor_has PeerRemoved "$PATH_A" "\"$OBJ\""
check "InterfacesRemoved for $OBJ" \
        wait_until 5 monitor_has InterfacesRemoved /org/shadowmesh1 "object path \"$OBJ\""
check "bravo's peer leaves too (alpha's closing message)" \
        wait_until 10 prop_is $B Peers "ao 0"
check "no ping through the tunnel (3 of 3 lost)" all_lost "$NS_A" $TUN_B

# ---- the peer comes back (Connect to its address); a member disconnects it by id ----------------
check "root Connect again" \
        timeout 20 busctl call "$NAME_A" "$PATH_A" $TUNNEL_IFACE Connect 'sa{sv}' "$UNDER_B:$PORT" 0
check_eq "the peer is back (Connect to its address takes the same peer, id 1)" "$(prop $A Peers)" \
        "ao 1 \"$OBJ\""
check "PeerAdded($OBJ) again" wait_until 5 monitor_count_at_least 2 PeerAdded "$PATH_A" "\"$OBJ\""
rc=0
out=$(as_user "$USER_MEMBER" "$SHADOWMESHCTL" -i $A disconnect 1 2>&1) || rc=$?
check_eq "a member of '$CONTROL_GROUP' disconnects peer 1 by its id" "$rc: $out" "0: "
check_eq "alpha's Peers is empty" "$(prop $A Peers)" "ao 0"
rc=0
out=$(busctl call "$NAME_A" "$OBJ" $PEER_IFACE Disconnect 2>&1) || rc=$?
check "Peer.Disconnect on a peer that left fails" test "$rc" -ne 0

# ---- disconnect PEER naming two peers: one's name is the other's id -----------------------------
# A third instance beside alpha: peer 1 is named "2", peer 2 (delta) has the id 2. Both try
# addresses where nothing answers (UNDER_DEAD), so they stay in play, and nothing changes under
# them but what disconnect would do.
C=charlie
NAME_C=$(inst_name $C) PATH_C=$(inst_path $C)
(umask 077 && "$SHADOWMESHD" genkey >"$TMP/c.key")
PUB_X=$("$SHADOWMESHD" genkey | "$SHADOWMESHD" pubkey)
PUB_Y=$("$SHADOWMESHD" genkey | "$SHADOWMESHD" pubkey)
write_config "$TMP/c.yaml" tap=smt1 ip4=10.0.1.1/24 listen=0.0.0.0:$((PORT + 1)) \
        private_key_file="$TMP/c.key" peers="peers:
  - name: \"2\"
    address: \"$UNDER_DEAD:$PORT\"
    public_key: \"$PUB_X\"
  - name: delta
    address: \"$UNDER_DEAD:$((PORT + 2))\"
    public_key: \"$PUB_Y\""
start_daemon c "$NS_A" "$TMP/c.yaml" --instance $C
check "charlie owns $NAME_C" wait_until 10 name_has_owner "$NAME_C"
peers_c="ao 2 \"$PATH_C/peer/1\" \"$PATH_C/peer/2\""
check "charlie's Peers lists both, ids 1 and 2" wait_until 10 prop_is $C Peers "$peers_c"
check_eq "peer 1 is named '2'" "$(pprop $C "$PATH_C/peer/1" Name)" 's "2"'
state1=$(pprop $C "$PATH_C/peer/1" State)
state2=$(pprop $C "$PATH_C/peer/2" State)
rc=0
out=$(ctl -i $C disconnect 2 2>&1) || rc=$?
check_eq "disconnect 2 (peer 1's name, peer 2's id): exit 64" "$rc" 64
check_eq "and the error names the ambiguity and the peers" "$out" \
        "shadowmeshctl: '2' names 2 peers of instance 'charlie' (ids 1, 2): give the peer's public key or object path, as 'shadowmeshctl status' shows them"
check_eq "nothing was disconnected: charlie's Peers still lists both" "$(prop $C Peers)" "$peers_c"
check_eq "peer 1's State is as before ($state1)" "$(pprop $C "$PATH_C/peer/1" State)" "$state1"
check_eq "peer 2's State is as before ($state2)" "$(pprop $C "$PATH_C/peer/2" State)" "$state2"
check_not "the daemon was asked to disconnect no one" log_has c "disconnected by request"
rc=0
out=$(ctl -i $C disconnect "$PATH_C/peer/2" 2>&1) || rc=$?
check_eq "its object path picks the one peer (delta)" "$rc: $out" "0: "
check_eq "charlie's Peers lists peer 1 only" "$(prop $C Peers)" "ao 1 \"$PATH_C/peer/1\""
summary
