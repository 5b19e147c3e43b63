#!/bin/bash
# SPDX-License-Identifier: MIT
#
# The live org.shadowmesh1.Tunnel and org.shadowmesh1.Peer interfaces against the files that
# describe them: dbus/org.shadowmesh1.<Interface>.xml (must be equal, normalised by apicheck.py)
# and the API document dbus/org.shadowmesh1.<Interface>.txt (every live method, signal, property
# and error name documented, with its signature, and nothing documented that is not live). Also
# the standard interfaces every process serves: ObjectManager at /org/shadowmesh1, LogControl1
# at /org/freedesktop/LogControl1.
#
#   sm$$-a: instance "intro-1" (label intro_2d1), smt0 10.0.0.1/24, no peer; then a Connect to
#           127.0.0.1:9 in its namespace (nobody answers) makes a peer object to introspect
set -euo pipefail
source "$(dirname "$(readlink -f "$0")")/lib.sh"

dbus_init
add_ns "$NS_A"
start_bus

XML=$SOURCE_ROOT/dbus/org.shadowmesh1.Tunnel.xml
DOC=$SOURCE_ROOT/dbus/org.shadowmesh1.Tunnel.txt
APICHECK=$(dirname "$(readlink -f "$0")")/apicheck.py
INST=intro-1
NAME=$(inst_name $INST)
OBJ=$(inst_path $INST)

write_config "$TMP/a.yaml" ip4=$TUN_A/24 key="$(random_hex_key)"
start_daemon a "$NS_A" "$TMP/a.yaml" --instance $INST
check "the daemon owns $NAME" wait_until 10 name_has_owner "$NAME"

# ---- the live interface -------------------------------------------------------------------------
busctl introspect --xml-interface "$NAME" "$OBJ" >"$TMP/live.xml" 2>&1 || true
check "the instance object introspects" grep -q "<interface name=\"$TUNNEL_IFACE\">" "$TMP/live.xml"
python3 "$APICHECK" normalise "$TMP/live.xml" >"$TMP/live.norm" 2>&1 || true
note "live interface, normalised:"
sed 's/^/#   /' "$TMP/live.norm"

# ---- against dbus/org.shadowmesh1.Tunnel.xml ----------------------------------------------------
if [[ -f $XML ]]; then
        pass "dbus/org.shadowmesh1.Tunnel.xml exists"
        if python3 "$APICHECK" normalise "$XML" >"$TMP/file.norm" 2>"$TMP/file.err"; then
                pass "dbus/org.shadowmesh1.Tunnel.xml parses and declares $TUNNEL_IFACE"
                if d=$(diff -u "$TMP/file.norm" "$TMP/live.norm"); then
                        pass "the live interface equals dbus/org.shadowmesh1.Tunnel.xml"
                else
                        mapfile -t lines <<<"$d"
                        fail "the live interface equals dbus/org.shadowmesh1.Tunnel.xml" \
                                "(--- the file, +++ live)" "${lines[@]}"
                fi
        else
                fail "dbus/org.shadowmesh1.Tunnel.xml parses and declares $TUNNEL_IFACE" \
                        "$(cat "$TMP/file.err")"
        fi
else
        fail "dbus/org.shadowmesh1.Tunnel.xml exists" "$XML not found"
fi

# ---- against the API document -------------------------------------------------------------------
problems=$(python3 "$APICHECK" doc "$TMP/live.xml" "$DOC" 2>&1 || true)
undocumented=$(grep -E ' is live but not documented|: live ' <<<"$problems" || true)
dead=$(grep -E ' is documented but not live|unknown type name' <<<"$problems" || true)
check_eq "every live method, signal and property is in Tunnel.txt, with its signature" \
        "$undocumented" ""
check_eq "everything Tunnel.txt documents is live" "$dead" ""

# Error names: the daemon sends them as string constants, so the binary holds every one.
sent=$(grep -aoE 'org\.shadowmesh1\.Error\.[A-Za-z]+' "$SHADOWMESHD" | sort -u || true)
documented=$(grep -oE 'org\.shadowmesh1\.Error\.[A-Za-z]+' "$DOC" | sort -u || true)
note "error names in the daemon:" "$(tr '\n' ' ' <<<"$sent")"
check "the daemon has org.shadowmesh1.Error names" test -n "$sent"
check_eq "every error name the daemon sends is documented" \
        "$(comm -23 <(echo "$sent") <(echo "$documented") | tr '\n' ' ')" ""
check_eq "every documented error name is sent by the daemon" \
        "$(comm -13 <(echo "$sent") <(echo "$documented") | tr '\n' ' ')" ""

# ---- the other objects every instance serves ----------------------------------------------------
out=$(busctl introspect --xml-interface "$NAME" /org/shadowmesh1 2>&1 || true)
check_has "ObjectManager at /org/shadowmesh1" "$out" \
        '<interface name="org.freedesktop.DBus.ObjectManager">'
out=$(busctl introspect --xml-interface "$NAME" /org/shadowmesh1/instance 2>&1 || true)
check_has "/org/shadowmesh1/instance lists the instance node" "$out" \
        "<node name=\"$(bus_label $INST)\"/>"
# ---- org.shadowmesh1.Peer: a peer object exists while a Connect is pending ---------------------
PEER_XML=$SOURCE_ROOT/dbus/org.shadowmesh1.Peer.xml
PEER_DOC=$SOURCE_ROOT/dbus/org.shadowmesh1.Peer.txt
"$SM_CALL" "$NAME" "$OBJ" Connect 127.0.0.1:9 timeout_sec=u:60 >"$TMP/connect.out" 2>&1 &
OWN_PIDS+=("$!")
has_peer() { [[ $(prop $INST Peers) == "ao 1 \"$OBJ/peer/1\"" ]]; }
check "a pending Connect makes the peer object $OBJ/peer/1" wait_until 10 has_peer
busctl introspect --xml-interface "$NAME" "$OBJ/peer/1" >"$TMP/peer.xml" 2>&1 || true
python3 "$APICHECK" normalise "$TMP/peer.xml" org.shadowmesh1.Peer >"$TMP/peer.norm" 2>&1 || true
note "live Peer interface, normalised:"
sed 's/^/#   /' "$TMP/peer.norm"
python3 "$APICHECK" normalise "$PEER_XML" org.shadowmesh1.Peer >"$TMP/peerfile.norm" 2>&1 || true
if d=$(diff -u "$TMP/peerfile.norm" "$TMP/peer.norm"); then
        pass "the live Peer interface equals dbus/org.shadowmesh1.Peer.xml"
else
        mapfile -t lines <<<"$d"
        fail "the live Peer interface equals dbus/org.shadowmesh1.Peer.xml" \
                "(--- the file, +++ live)" "${lines[@]}"
fi
problems=$(python3 "$APICHECK" doc "$TMP/peer.xml" "$PEER_DOC" org.shadowmesh1.Peer 2>&1 || true)
check_eq "Peer.txt documents exactly the live Peer interface" "$problems" ""
out=$(busctl introspect --xml-interface "$NAME" "$OBJ/peer" 2>&1 || true)
check_has "$OBJ/peer lists the peer node" "$out" '<node name="1"/>'
check "Disconnect ends the pending Connect" busctl call "$NAME" "$OBJ" $TUNNEL_IFACE Disconnect
check_eq "and the peer object is gone" "$(prop $INST Peers)" "ao 0"

busctl introspect --xml-interface "$NAME" /org/freedesktop/LogControl1 \
        >"$TMP/logcontrol.xml" 2>&1 || true
want="property LogLevel s readwrite;property LogTarget s readwrite;"
want+="property SyslogIdentifier s read;"
check_eq "LogControl1 at /org/freedesktop/LogControl1 has LogLevel, LogTarget, SyslogIdentifier" \
        "$(python3 "$APICHECK" normalise "$TMP/logcontrol.xml" org.freedesktop.LogControl1 2>&1 |
                cut -d' ' -f1-4 | tr '\n' ';')" "$want"
check_eq "SyslogIdentifier" \
        "$(busctl get-property "$NAME" /org/freedesktop/LogControl1 org.freedesktop.LogControl1 \
                SyslogIdentifier 2>&1)" 's "shadowmeshd"'
summary
