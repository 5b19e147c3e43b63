#!/bin/bash
# SPDX-License-Identifier: MIT
#
# What the daemon may do and what a caller may make it do (issue 9, items 4 and 7, and NetCheck):
#
# - The running daemon keeps CAP_NET_ADMIN only, in every thread (the data path threads too):
#   effective, permitted and bounding sets are 0x1000, inheritable and ambient empty,
#   no_new_privs set; read from /proc/PID/task/*/status. It still removes its TAP at exit.
# - A member of the control group may Connect, but not name a peer other than the configured
#   one: public_key and relay_server are refused (org.shadowmesh1.Error.PermissionDenied,
#   naming the option) unless they repeat the configuration. Root may.
# - NetCheck sends traffic from the tunnel's socket: a plain user gets AccessDenied, a member of
#   the control group gets the report.
#
#   sm$$-a: instance "alpha", identity mode, pins b's key, relay.server 10.98.23.3:9545 (nobody)
#   sm$$-b: instance "bravo", identity mode, pins a's key, waits
set -euo pipefail
source "$(dirname "$(readlink -f "$0")")/lib.sh"

dbus_init
setup_pair 23

USER_PLAIN="sm$$u"
USER_MEMBER="sm$$m"
CONTROL_GROUP="sm$$g"
make_group "$CONTROL_GROUP"
make_user "$USER_PLAIN"
make_user "$USER_MEMBER" "$CONTROL_GROUP"
RELAY=$UNDER_DEAD:9545
OTHER_RELAY=10.98.23.4:9545

genkey() { (umask 077 && "$SHADOWMESHD" genkey >"$1"); }
pubkey() { "$SHADOWMESHD" pubkey <"$1"; }
for k in a b c; do
        genkey "$TMP/$k.key"
done
PUB_A=$(pubkey "$TMP/a.key")
PUB_B=$(pubkey "$TMP/b.key")
PUB_C=$(pubkey "$TMP/c.key") # nobody's: the key a member would like to redirect the tunnel to

start_bus
write_config "$TMP/a.yaml" ip4=$TUN_A/24 control_group="$CONTROL_GROUP" \
        private_key_file="$TMP/a.key" peer_public_key="$PUB_B"
printf 'relay:\n  server: "%s"\n' "$RELAY" >>"$TMP/a.yaml"
write_config "$TMP/b.yaml" ip4=$TUN_B/24 private_key_file="$TMP/b.key" peer_public_key="$PUB_A"

A=alpha
B=bravo
NAME_A=$(inst_name $A) PATH_A=$(inst_path $A)
start_daemon a "$NS_A" "$TMP/a.yaml" --instance $A
start_daemon b "$NS_B" "$TMP/b.yaml" --instance $B
check "alpha owns $NAME_A" wait_until 10 name_has_owner "$NAME_A"
check "bravo owns its name" wait_until 10 name_has_owner "$(inst_name $B)"

# ---- the daemon's capabilities ------------------------------------------------------------------
# caps_of PID: one line per thread, "NAME CapInh CapPrm CapEff CapBnd CapAmb NoNewPrivs".
caps_of() {
        local status
        for status in /proc/"$1"/task/*/status; do
                awk '/^Name:/ { n = $2 }
                     /^CapInh:/ { i = $2 } /^CapPrm:/ { p = $2 } /^CapEff:/ { e = $2 }
                     /^CapBnd:/ { b = $2 } /^CapAmb:/ { a = $2 } /^NoNewPrivs:/ { s = $2 }
                     END { print n, i, p, e, b, a, s }' "$status"
        done
}
NET_ADMIN=0000000000001000 # 1 << CAP_NET_ADMIN (12)
PID_A=${DAEMON_PID[a]}
caps=$(caps_of "$PID_A")
note "alpha's threads (name inh prm eff bnd amb nnp):"
while read -r line; do note "  $line"; done <<<"$caps"
threads=$(wc -l <<<"$caps")
if ((threads >= 3)); then
        pass "alpha runs $threads threads (the main loop and the data path threads)"
else
        fail "alpha runs at least 3 threads" "got: $threads"
fi
wrong=$(awk -v k=$NET_ADMIN '!($2 == "0000000000000000" && $3 == k && $4 == k && $5 == k &&
        $6 == "0000000000000000" && $7 == 1)' <<<"$caps")
check_eq "every thread: CAP_NET_ADMIN only (prm, eff, bnd), no inh or amb, no_new_privs" \
        "$wrong" ""

# ---- NetCheck -----------------------------------------------------------------------------------
out=$(as_user "$USER_PLAIN" "$SM_CALL" "$NAME_A" "$PATH_A" NetCheck 2>&1 || true)
check_eq "a plain user may not run NetCheck (it sends traffic)" "$out" \
        "error org.freedesktop.DBus.Error.AccessDenied: Only root and members of group \
'$CONTROL_GROUP' may run NetCheck on this tunnel"
out=$(as_user "$USER_MEMBER" "$SM_CALL" --timeout 30 "$NAME_A" "$PATH_A" NetCheck 2>&1 || true)
check_eq "a member of the control group runs NetCheck" "$out" ok
out=$(as_user "$USER_PLAIN" "$SM_CALL" "$NAME_A" "$PATH_A" GetStatus 2>&1 || true)
check_eq "a plain user still reads GetStatus" "$out" ok

# ---- options that change who the peer is -------------------------------------------------------
member_connect() { as_user "$USER_MEMBER" "$SM_CALL" "$NAME_A" "$PATH_A" Connect "$@" 2>&1 || true; }
out=$(member_connect "$UNDER_B:$PORT" public_key=s:"$PUB_C" timeout_sec=u:3)
check_eq "a member's public_key other than the configured one: PermissionDenied" "$out" \
        "error org.shadowmesh1.Error.PermissionDenied: Option 'public_key' changes who the peer \
is: only root may pass a key other than the configured peer.public_key"
out=$(member_connect "" relay_server=s:"$OTHER_RELAY" timeout_sec=u:3)
check_eq "a member's relay_server other than the configured one: PermissionDenied" "$out" \
        "error org.shadowmesh1.Error.PermissionDenied: Option 'relay_server' changes who the \
peer is: only root may name a relay other than the configured relay.server"
check_eq "State is still waiting after the refused calls" "$(prop $A State)" \
        's "waiting"'
check_eq "PeerAddress is still empty" "$(prop $A PeerAddress)" 's ""'
check_not "alpha never sent to the other relay" log_has a "$OTHER_RELAY"

out=$(member_connect "$UNDER_B:$PORT" public_key=s:"$PUB_B" relay_server=s:"$RELAY" \
        timeout_sec=u:10)
check_eq "a member may repeat the configured public_key and relay_server" "$out" ok
check_eq "State is connected" "$(prop $A State)" 's "connected"'
check "ping through the tunnel" wait_ping 10 "$NS_A" $TUN_B
out=$(as_user "$USER_MEMBER" "$SM_CALL" "$NAME_A" "$PATH_A" Disconnect 2>&1 || true)
check_eq "the member disconnects" "$out" ok

# Root may name another peer: the Connect is accepted and times out (nobody holds that key).
out=$(smcall $A Connect "$UNDER_B:$PORT" public_key=s:"$PUB_C" timeout_sec=u:2)
check_has "root may pass another public_key (then: HandshakeTimeout)" "$out" \
        "error org.shadowmesh1.Error.HandshakeTimeout: "

# ---- exit with CAP_NET_ADMIN only ---------------------------------------------------------------
kill -TERM "$PID_A"
if wait_exit a 10; then
        check_eq "alpha exits with status 0 on SIGTERM" "$EXIT_CODE" 0
else
        fail "alpha exits on SIGTERM" "still running after 10 s"
fi
check "alpha removed its TAP with the capabilities it kept" link_gone "$NS_A" "$TAP"
check "and says so" log_has a "$TAP removed"
check "bravo is still running" alive b
summary
