#!/bin/bash
# SPDX-License-Identifier: MIT
#
# The D-Bus Reload() method (issue 14): what SIGHUP does, with the outcome as the reply.
#
# - root gets "reloaded FILE (...)" and the change applies: a new peer.address ends the session
#   with the old peer and connects to the new one (State goes through connecting to connected
#   again, Endpoint is the new address), the tunnel carries traffic after it; an emptied
#   peer.address (wait instead) is refused: only a restart makes an instance wait again;
# - a change that needs a restart (network.tap_device) is refused: ReloadRefused, naming the key;
# - a file that does not load: InvalidConfig with the parser's file:line message;
# - a plain user gets AccessDenied and nothing changes.
#
#   sm$$-a: instance "alpha", connects to b        sm$$-b: instance "bravo", waits
set -euo pipefail
source "$(dirname "$(readlink -f "$0")")/lib.sh"

dbus_init
setup_pair 27
USER_PLAIN="sm$$u"
make_user "$USER_PLAIN"
KEY=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')

start_bus
write_config "$TMP/a.yaml" ip4=$TUN_A/24 key="$KEY" peer="$UNDER_B:$PORT"
write_config "$TMP/b.yaml" ip4=$TUN_B/24 key="$KEY"
A=alpha
B=bravo
start_daemon b "$NS_B" "$TMP/b.yaml" --instance $B
check "bravo owns its name" wait_until 10 name_has_owner "$(inst_name $B)"
start_daemon a "$NS_A" "$TMP/a.yaml" --instance $A
check "alpha owns its name" wait_until 10 name_has_owner "$(inst_name $A)"
check "alpha connected" wait_prop 15 $A State 's "connected"'
check "ping a->b" wait_until 10 ping_ok "$NS_A" "$TUN_B"

# ---- a plain user may not reload ----------------------------------------------------------------
out=$(as_user "$USER_PLAIN" "$SM_CALL" "$(inst_name $A)" "$(inst_path $A)" Reload 2>&1 || true)
echo "# plain user: $out"
check "a plain user gets AccessDenied" contains "$out" "org.freedesktop.DBus.Error.AccessDenied"

# ---- root: the peer moves to another address of b --------------------------------------------
UNDER_B2=10.98.27.12
ip -n "$NS_B" addr add "$UNDER_B2/24" dev "$(ip -n "$NS_B" -o -4 addr show | awk -v a="$UNDER_B/" 'index($4, a) == 1 { print $2; exit }')"
handshakes=$(grep -c "handshake complete" "$TMP/a.log" || true)
write_config "$TMP/a.yaml" ip4=$TUN_A/24 key="$KEY" peer="$UNDER_B2:$PORT"
out=$(tcall $A Reload 2>&1 || true)
echo "# Reload, peer.address $UNDER_B2:$PORT: $out"
check "Reload replies 'reloaded ... (peer applied)'" contains "$out" "reloaded $TMP/a.yaml (peer applied)"
check "the daemon logged the new peer" log_has a "reload: peer is now $UNDER_B2:$PORT"
check "alpha connected again" wait_prop 15 $A State 's "connected"'
check "... to the new address" wait_prop 10 $A Endpoint "s \"$UNDER_B2:$PORT\""
check "a new handshake" wait_until 10 sh -c "[ \$(grep -c 'handshake complete' '$TMP/a.log') -gt $handshakes ]"
check "ping a->b after the reload" wait_until 10 ping_ok "$NS_A" "$TUN_B"

# ---- an empty peer.address (wait instead) needs a restart ----------------------------------------
write_config "$TMP/a.yaml" ip4=$TUN_A/24 key="$KEY" peer=""
out=$(smcall $A Reload)
echo "# Reload, peer.address now empty: $out"
check "ReloadRefused for an emptied peer.address" contains "$out" "org.shadowmesh1.Error.ReloadRefused"
check "... naming peer.address" contains "$out" "peer.address (now empty: to wait for the peer)"
check "still connected" prop_is $A State 's "connected"'

# ---- refused and invalid ------------------------------------------------------------------------
write_config "$TMP/a.yaml" ip4=$TUN_A/24 key="$KEY" peer="$UNDER_B2:$PORT" tap=smt9
out=$(smcall $A Reload)
echo "# Reload, tap_device changed: $out"
check "ReloadRefused" contains "$out" "org.shadowmesh1.Error.ReloadRefused"
check "... naming network.tap_device" contains "$out" "network.tap_device"
echo "network: [" >>"$TMP/a.yaml"
out=$(smcall $A Reload)
echo "# Reload, broken file: $out"
check "InvalidConfig" contains "$out" "org.shadowmesh1.Error.InvalidConfig"
check "... with the file's name" contains "$out" "$TMP/a.yaml"
check "the tunnel still carries traffic" wait_until 10 ping_ok "$NS_A" "$TUN_B"
check "alpha still runs" alive a

summary
