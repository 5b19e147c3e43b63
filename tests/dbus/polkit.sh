#!/bin/bash
# SPDX-License-Identifier: MIT
#
# polkit as the alternative to the control group (issue 14), with the real polkitd on the
# private system-like bus. polkitd reads its actions from /usr/share/polkit-1/actions and its
# rules from /etc/polkit-1/rules.d: it runs in a private mount namespace where both are bind
# mounts of this test's directories (the shipped polkit/org.shadowmesh1.policy, and a rule that
# grants org.shadowmesh1.connect to one test user), so the host's polkit is never touched.
#
# - the user the rule names (not in the control group) may Connect and Disconnect;
# - a plain user is refused, and the message names the polkit action;
# - the rule grants connect only: NetCheck (org.shadowmesh1.netcheck) stays refused;
# - an authorized user has a member's rights, not root's: relay_server is still refused;
# - polkitd stopped: no polkit on the bus, so the group check alone decides.
#
#   sm$$-a: instance "alpha", shared-key mode, control group sm$$g (nobody in it), waits
#   sm$$-b: instance "bravo", shared-key mode, waits
set -euo pipefail
source "$(dirname "$(readlink -f "$0")")/lib.sh"

dbus_init
POLKITD=/usr/lib/polkit-1/polkitd
[[ -x $POLKITD ]] || { fail "polkitd is installed (apt-get install polkitd)"; summary; }
need unshare util-linux
need pkaction pkexec
POLKIT_BUS_POLICY=/usr/share/dbus-1/system.d/org.freedesktop.PolicyKit1.conf
[[ -f $POLKIT_BUS_POLICY ]] ||
        { fail "$POLKIT_BUS_POLICY exists (apt-get install polkitd)"; summary; }
setup_pair 24

USER_PLAIN="sm$$u"
USER_POLKIT="sm$$p"
CONTROL_GROUP="sm$$g"
make_group "$CONTROL_GROUP"
make_user "$USER_PLAIN"
make_user "$USER_POLKIT"
KEY=$(random_hex_key)

start_private_bus "$TMP/bus" "$TMP/dbus-daemon.log" "$SOURCE_ROOT/dbus/org.shadowmesh1.conf" \
        "$POLKIT_BUS_POLICY" || exit 1

# ---- polkitd ------------------------------------------------------------------------------------
mkdir -p "$TMP/polkit/actions" "$TMP/polkit/rules.d"
cp "$SOURCE_ROOT/polkit/org.shadowmesh1.policy" "$TMP/polkit/actions/"
cat >"$TMP/polkit/rules.d/10-shadowmesh-test.rules" <<EOF
polkit.addRule(function(action, subject) {
    if (action.id == "org.shadowmesh1.connect" && subject.user == "$USER_POLKIT")
        return polkit.Result.YES;
});
EOF
# polkitd switches to the polkitd user itself: it must read these.
chmod -R a+rX "$TMP/polkit"
unshare --mount --propagation private sh -c '
        mount --bind "$1/actions" /usr/share/polkit-1/actions &&
        mount --bind "$1/rules.d" /etc/polkit-1/rules.d &&
        exec "$2" --no-debug' sh "$TMP/polkit" "$POLKITD" >"$TMP/polkitd.log" 2>&1 &
POLKITD_PID=$!
OWN_PIDS+=("$POLKITD_PID")
check "polkitd owns org.freedesktop.PolicyKit1" \
        wait_while_alive 15 "$POLKITD_PID" name_has_owner org.freedesktop.PolicyKit1
out=$(pkaction --action-id org.shadowmesh1.connect --verbose 2>&1 || true)
check_has "polkitd knows org.shadowmesh1.connect from the shipped policy" "$out" \
        "implicit active:   auth_admin_keep"
out=$(pkaction --action-id org.shadowmesh1.netcheck --verbose 2>&1 || true)
check_has "and org.shadowmesh1.netcheck" "$out" "implicit any:      no"

# ---- the daemons --------------------------------------------------------------------------------
write_config "$TMP/a.yaml" ip4=$TUN_A/24 key="$KEY" control_group="$CONTROL_GROUP"
write_config "$TMP/b.yaml" ip4=$TUN_B/24 key="$KEY"
A=alpha
NAME_A=$(inst_name $A) PATH_A=$(inst_path $A)
start_daemon a "$NS_A" "$TMP/a.yaml" --instance $A
start_daemon b "$NS_B" "$TMP/b.yaml" --instance bravo
check "alpha owns $NAME_A" wait_until 10 name_has_owner "$NAME_A"
check "bravo owns its name" wait_until 10 name_has_owner "$(inst_name bravo)"

call_as() {
        local user=$1
        shift
        as_user "$user" "$SM_CALL" --timeout 30 "$NAME_A" "$PATH_A" "$@" 2>&1 || true
}

# ---- polkit authorizes ------------------------------------------------------------------------
check_not "$USER_POLKIT is not in the control group" \
        contains " $(id -nG "$USER_POLKIT") " " $CONTROL_GROUP "
out=$(call_as "$USER_POLKIT" Connect "$UNDER_B:$PORT" timeout_sec=u:10)
check_eq "the user polkit authorizes may Connect" "$out" ok
check_eq "State is connected" "$(prop $A State)" 's "connected"'
check "ping through the tunnel" wait_ping 10 "$NS_A" $TUN_B
out=$(call_as "$USER_POLKIT" Disconnect)
check_eq "and Disconnect" "$out" ok
check_eq "State is disconnected" "$(prop $A State)" 's "disconnected"'

DENIED="error org.freedesktop.DBus.Error.AccessDenied: Only root, members of group"
DENIED+=" '$CONTROL_GROUP' and users polkit authorizes for"
out=$(call_as "$USER_PLAIN" Connect "$UNDER_B:$PORT" timeout_sec=u:10)
check_eq "a plain user: AccessDenied naming the polkit action" "$out" \
        "$DENIED org.shadowmesh1.connect may connect this tunnel (polkit: not authorized)"
out=$(call_as "$USER_POLKIT" NetCheck)
check_eq "the rule grants connect, not netcheck: NetCheck is refused" "$out" \
        "$DENIED org.shadowmesh1.netcheck may run NetCheck on this tunnel (polkit: not authorized)"
out=$(call_as "$USER_POLKIT" Connect "" relay_server=s:"$UNDER_DEAD:9545" timeout_sec=u:3)
check_eq "polkit grants a member's rights, not root's: relay_server is refused" "$out" \
        "error org.shadowmesh1.Error.PermissionDenied: Option 'relay_server' changes who the \
peer is: only root may name a relay other than the configured relay.server (none is \
configured)"
check_eq "State is still disconnected" "$(prop $A State)" 's "disconnected"'

# ---- no polkit on the bus: the group check alone ------------------------------------------------
stop_pid "$POLKITD_PID"
name_gone() { ! name_has_owner "$1"; }
check "polkitd is gone from the bus" wait_until 10 name_gone org.freedesktop.PolicyKit1
out=$(call_as "$USER_POLKIT" Connect "$UNDER_B:$PORT" timeout_sec=u:10)
check_eq "without polkit the same user is refused by the group check" "$out" \
        "error org.freedesktop.DBus.Error.AccessDenied: Only root and members of group \
'$CONTROL_GROUP' may connect this tunnel"
check_eq "State is still disconnected" "$(prop $A State)" 's "disconnected"'

check "alpha is still running" alive a
check "bravo is still running" alive b
summary
