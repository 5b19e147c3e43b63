# SPDX-License-Identifier: MIT
# shellcheck shell=bash
# shellcheck disable=SC2034 # variables set here are used by the scripts that source it
#
# Shared pieces of the D-Bus tests (the generic ones, checks, polling, processes, namespaces and
# the private bus, are in tests/common.sh). A script sources this file and calls dbus_init. What a
# script makes carries $$ in its name (namespaces sm$$-a/-b/-c, users sm$$u/sm$$m, group
# sm$$g), lives in one mktemp -d directory (the bus socket, configs, logs) and is removed by the
# EXIT trap, which kills only the processes the script started, by PID.
#
# The bus: a private dbus-daemon of type "system" with the default-deny rules of Debian's
# system.conf and the project's own dbus/org.shadowmesh1.conf included. DBUS_SYSTEM_BUS_ADDRESS
# points at its socket, so busctl, dbus-send, dbus-monitor and the daemons (sd_bus_open_system)
# all use it; a socket path works from inside a network namespace.
#
# Topology (setup_pair X):
#
#   [ sm$$-a ]  veth0 10.98.X.1/24 <----veth----> veth0 10.98.X.2/24  [ sm$$-b ]
#     smt0 10.0.0.1/24                               smt0 10.0.0.2/24
#
# Every wait is a bounded poll on a real condition (a bus name, a property, a log line, a ping).
#
# Environment: SHADOWMESHD (the daemon), SOURCE_ROOT (the source tree, for dbus/), SM_CALL and
# SM_NOTIFY_RECV (the helpers built next to this file; found in the daemon's build tree when
# unset), SHADOWMESHCTL (optional), SM_LOG_LEVEL (the daemons' log level, default info),
# SM_VERBOSE=1 (print the logs even when all checks passed).

set -euo pipefail

# shellcheck source=tests/common.sh
source "$(dirname "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")")/common.sh"

readonly TAP=smt0
readonly PORT=9001
readonly TUN_A=10.0.0.1 TUN_B=10.0.0.2
readonly TUNNEL_IFACE=org.shadowmesh1.Tunnel

NS_A="sm$$-a"
NS_B="sm$$-b"
NS_C="sm$$-c"
UNDER_A="" UNDER_B="" UNDER_DEAD=""
# (common.sh: OWN_PIDS, daemons and helpers, are stopped first; BUS_PID, the bus, last.)
USERS_MADE=()
GROUPS_MADE=()
declare -A DAEMON_PID=() DAEMON_LOG=()

# ---- set-up and clean-up ------------------------------------------------------------------------

cleanup() {
        local rc=$? u g
        cleanup_begin "$rc"
        stop_own_pids
        stop_pid "$BUS_PID"
        del_namespaces
        for u in "${USERS_MADE[@]}"; do
                userdel "$u" 2>/dev/null
                # useradd made a group of the same name for it; userdel normally removes it.
                getent group "$u" >/dev/null && groupdel "$u" 2>/dev/null
        done
        for g in "${GROUPS_MADE[@]}"; do
                groupdel "$g" 2>/dev/null
        done
        cleanup_end "$rc"
}

# dbus_init: checks, temp dir, trap.
dbus_init() {
        local here
        here=$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")
        require_netns "sm$$"
        require_program SHADOWMESHD
        SOURCE_ROOT=${SOURCE_ROOT:-$(readlink -f "$here/../..")}
        local build
        build=$(dirname "$SHADOWMESHD")/..
        SM_CALL=${SM_CALL:-$build/tests/dbus/sm-call}
        SM_NOTIFY_RECV=${SM_NOTIFY_RECV:-$build/tests/dbus/notify-recv}
        [[ -x $SM_CALL ]] || { echo "SM_CALL=$SM_CALL is not executable" >&2; exit 1; }
        [[ -f $SOURCE_ROOT/dbus/org.shadowmesh1.conf ]] ||
                { echo "$SOURCE_ROOT/dbus/org.shadowmesh1.conf not found" >&2; exit 1; }
        need dbus-daemon dbus-daemon
        need busctl systemd
        need dbus-send dbus-bin
        need dbus-monitor dbus-bin
        need setpriv util-linux
        need useradd passwd
        need ping iputils-ping
        need python3 python3

        TMP=$(mktemp -d "${TMPDIR:-/tmp}/shadowmesh-dbus.XXXXXX")
        # Test users must reach the bus socket inside.
        chmod 755 "$TMP"
        trap cleanup EXIT
        trap 'exit 130' INT TERM
}

# ---- the private bus ----------------------------------------------------------------------------

# start_bus: the private bus with the project's policy (the one installed to
# /usr/share/dbus-1/system.d/); see start_private_bus in common.sh.
start_bus() {
        start_private_bus "$TMP/bus" "$TMP/dbus-daemon.log" \
                "$SOURCE_ROOT/dbus/org.shadowmesh1.conf" || exit 1
}

# bus_label NAME: NAME escaped like one element by sd_bus_path_encode() (bytes outside
# [A-Za-z0-9], and a leading digit, become _xx).
bus_label() {
        local s=$1 out="" c i
        [[ -n $s ]] || { echo _; return; }
        for ((i = 0; i < ${#s}; i++)); do
                c=${s:i:1}
                if [[ $c == [A-Za-z] ]] || [[ $c == [0-9] && $i -gt 0 ]]; then
                        out+=$c
                else
                        out+=$(printf '_%02x' "'$c")
                fi
        done
        echo "$out"
}
inst_name() { echo "org.shadowmesh1.Instance.$(bus_label "$1")"; }
inst_path() { echo "/org/shadowmesh1/instance/$(bus_label "$1")"; }

name_has_owner() {
        [[ $(busctl call org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus \
                NameHasOwner s "$1" 2>/dev/null) == "b true" ]]
}
name_owner() {
        busctl call org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus \
                GetNameOwner s "$1" 2>/dev/null | sed -n 's/^s "\(.*\)"$/\1/p'
}

# prop INSTANCE PROPERTY: busctl's text form of a Tunnel property ('s "connected"', 'u 1380').
prop() { busctl get-property "$(inst_name "$1")" "$(inst_path "$1")" "$TUNNEL_IFACE" "$2" 2>&1; }
prop_is() { [[ $(prop "$1" "$2") == "$3" ]]; }
# wait_prop SECONDS INSTANCE PROPERTY VALUE
wait_prop() { wait_until "$1" prop_is "$2" "$3" "$4"; }

# tcall INSTANCE METHOD [SIGNATURE ARGS...]: busctl call on the Tunnel interface.
tcall() {
        local inst=$1
        shift
        busctl call "$(inst_name "$inst")" "$(inst_path "$inst")" "$TUNNEL_IFACE" "$@"
}

# smcall INSTANCE METHOD [ARGS...]: the sm-call helper ("ok" or "error NAME: MESSAGE").
smcall() {
        local inst=$1
        shift
        "$SM_CALL" "$(inst_name "$inst")" "$(inst_path "$inst")" "$@" 2>&1 || true
}

# ---- users and groups ---------------------------------------------------------------------------

make_group() {
        groupadd --system "$1"
        GROUPS_MADE+=("$1")
}

# make_user NAME [SUPPLEMENTARY_GROUP]
make_user() {
        useradd --system --no-create-home --shell /usr/sbin/nologin ${2:+--groups "$2"} "$1"
        USERS_MADE+=("$1")
}

# as_user USER COMMAND...: run with USER's uid, gid and groups, no capabilities, the environment
# kept (DBUS_SYSTEM_BUS_ADDRESS). setpriv execs, so "as_user U cmd &" leaves $! = cmd's PID.
as_user() {
        local u=$1
        shift
        setpriv --reuid="$u" --regid="$(id -g "$u")" --init-groups --inh-caps=-all -- "$@"
}

# ---- namespaces ---------------------------------------------------------------------------------

# setup_pair X: namespaces a and b joined by veth, underlay 10.98.X.0/24. UNDER_DEAD is an
# address in that subnet where nothing answers.
setup_pair() {
        UNDER_A=10.98.$1.1
        UNDER_B=10.98.$1.2
        UNDER_DEAD=10.98.$1.3
        add_ns "$NS_A"
        add_ns "$NS_B"
        veth_pair "$NS_A" "$UNDER_A" "$NS_B" "$UNDER_B" ||
                { echo "the veth underlay does not work" >&2; exit 1; }
}

# ---- daemons ------------------------------------------------------------------------------------

# start_daemon NAME NS CONFIG [ARGS...]: shadowmeshd in NS, output to $TMP/NAME.log. `ip netns
# exec` and `env` exec, so the PID is the daemon's. SIGINT back to default (bash ignores it in
# background jobs).
start_daemon() {
        local name=$1 ns=$2 config=$3
        shift 3
        env --default-signal=INT ip netns exec "$ns" "$SHADOWMESHD" "$@" "$config" \
                >"$TMP/$name.log" 2>&1 &
        register_daemon "$name" $!
}

# register_daemon NAME PID: a daemon started some other way, logging to $TMP/NAME.log.
register_daemon() {
        DAEMON_PID[$1]=$2
        DAEMON_LOG[$1]=$TMP/$1.log
        OWN_PIDS+=("$2")
}

alive() { ! has_exited "${DAEMON_PID[$1]}"; }

log_has() { grep -qF -- "$2" "${DAEMON_LOG[$1]}"; }

# wait_log NAME STRING SECONDS: STRING appears in NAME's log (false early if it died).
wait_log() { wait_while_alive "$3" "${DAEMON_PID[$1]}" log_has "$1" "$2"; }

# wait_exit NAME SECONDS: wait for the daemon to exit; sets EXIT_CODE (see wait_pid_exit).
wait_exit() { wait_pid_exit "${DAEMON_PID[$1]}" "$2"; }

# stats_field NAME FIELD: FIELD of a fresh stats line (SIGUSR1), empty on timeout.
stats_count() { grep -c 'stats: ' "${DAEMON_LOG[$1]}" || true; }
stats_grew() { (($(stats_count "$1") > $2)); }
stats_field() {
        local before
        before=$(stats_count "$1")
        kill -USR1 "${DAEMON_PID[$1]}"
        wait_until 5 stats_grew "$1" "$before" || return 0
        grep 'stats: ' "${DAEMON_LOG[$1]}" | tail -n 1 | grep -o "\b$2=[0-9]*" | cut -d= -f2 || true
}

# ---- the network --------------------------------------------------------------------------------

# all_lost NS ADDR: 3 echoes, none answered.
all_lost() {
        local out
        out=$(ip netns exec "$1" ping -c 3 -i 0.2 -W 1 "$2" 2>&1 || true)
        [[ $out == *" 0 received"* ]]
}

link_exists() { ip -n "$1" link show dev "$2" >/dev/null 2>&1; }
link_gone() { ! link_exists "$@"; }
