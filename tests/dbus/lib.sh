# SPDX-License-Identifier: MIT
# shellcheck shell=bash
# shellcheck disable=SC2034 # variables set here are used by the scripts that source it
#
# Shared pieces of the D-Bus tests. A script sources this file and calls dbus_init. What a
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
# unset), SHADOWMESHCTL (optional), SM_VERBOSE=1 (print the logs even when all checks passed).

set -euo pipefail

readonly TAP=smt0
readonly PORT=9001
readonly TUN_A=10.0.0.1 TUN_B=10.0.0.2
readonly TUNNEL_IFACE=org.shadowmesh1.Tunnel

PASSED=0
FAILED=0
SUMMARY_DONE=0
TMP=""
NS_A="sm$$-a"
NS_B="sm$$-b"
NS_C="sm$$-c"
UNDER_A="" UNDER_B="" UNDER_DEAD=""
NAMESPACES=()
OWN_PIDS=()      # daemons and helpers, stopped first
BUS_PID=""       # the dbus-daemon, stopped last
USERS_MADE=()
GROUPS_MADE=()
declare -A DAEMON_PID=() DAEMON_LOG=()

skip() {
        echo "SKIP: $*"
        exit 77
}

pass() {
        PASSED=$((PASSED + 1))
        echo "ok - $1"
}

# fail NAME [DETAIL...]
fail() {
        FAILED=$((FAILED + 1))
        echo "FAIL - $1"
        shift
        local line
        for line in "$@"; do
                printf '       %s\n' "$line"
        done
}

# check NAME COMMAND...: passes when the command succeeds.
check() {
        local name=$1
        shift
        if "$@"; then
                pass "$name"
        else
                fail "$name" "(command: $*)"
        fi
}

# check_eq NAME GOT WANT
check_eq() {
        if [[ $2 == "$3" ]]; then
                pass "$1"
        else
                fail "$1" "got:  $2" "want: $3"
        fi
}

# check_has NAME TEXT SUBSTRING
check_has() {
        if [[ $2 == *"$3"* ]]; then
                pass "$1"
        else
                fail "$1" "got:  $2" "want (substring): $3"
        fi
}

note() { echo "# $*"; }

now_ms() { echo $(($(date +%s%N) / 1000000)); }

# wait_until SECONDS COMMAND...: poll every 0.1 s until the command succeeds; false at the
# deadline.
wait_until() {
        local deadline=$(($(now_ms) + $1 * 1000))
        shift
        while :; do
                "$@" && return 0
                (($(now_ms) < deadline)) || return 1
                sleep 0.1
        done
}

need() {
        if ! command -v "$1" >/dev/null; then
                echo "FAIL - '$1' is missing (apt-get install $2)"
                echo "0 passed, 1 failed"
                exit 1
        fi
}

# ---- set-up and clean-up ------------------------------------------------------------------------

dump_logs() {
        local f
        [[ -n $TMP && -d $TMP ]] || return 0
        for f in "$TMP"/*.log "$TMP"/*.out; do
                [[ -e $f ]] || continue
                echo "----- ${f##*/} -----"
                cat "$f" || true
        done
        echo "----- end of logs -----"
}

stop_pid() {
        local pid=$1 i
        kill -TERM "$pid" 2>/dev/null || return 0
        for ((i = 0; i < 50; i++)); do
                kill -0 "$pid" 2>/dev/null || break
                [[ $(awk '/^State:/ { print $2 }' "/proc/$pid/status" 2>/dev/null) == Z ]] && break
                sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
}

cleanup() {
        local rc=$? pid ns u g
        set +e
        trap - EXIT
        if ((SUMMARY_DONE == 0)); then
                FAILED=$((FAILED + 1))
                echo "FAIL - script aborted (exit status $rc)"
        fi
        for pid in "${OWN_PIDS[@]}"; do
                kill -TERM "$pid" 2>/dev/null
        done
        for pid in "${OWN_PIDS[@]}"; do
                stop_pid "$pid"
        done
        [[ -z $BUS_PID ]] || stop_pid "$BUS_PID"
        for ns in "${NAMESPACES[@]}"; do
                ip netns del "$ns" 2>/dev/null
        done
        for u in "${USERS_MADE[@]}"; do
                userdel "$u" 2>/dev/null
                # useradd made a group of the same name for it; userdel normally removes it.
                getent group "$u" >/dev/null && groupdel "$u" 2>/dev/null
        done
        for g in "${GROUPS_MADE[@]}"; do
                groupdel "$g" 2>/dev/null
        done
        if ((SUMMARY_DONE == 0)); then
                dump_logs
                echo "$PASSED passed, $FAILED failed"
                rc=1
        fi
        [[ -n $TMP ]] && rm -rf "$TMP"
        exit "$rc"
}

summary() {
        if ((FAILED > 0)) || [[ ${SM_VERBOSE:-0} == 1 ]]; then
                dump_logs
        fi
        SUMMARY_DONE=1
        echo "$PASSED passed, $FAILED failed"
        ((FAILED == 0)) || exit 1
        exit 0
}

# dbus_init: checks, temp dir, trap.
dbus_init() {
        local here
        here=$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")
        [[ $EUID -eq 0 ]] || skip "needs root"
        command -v ip >/dev/null || skip "ip (iproute2) not installed"
        if ! ip netns add "sm$$-probe" 2>/dev/null; then
                skip "ip netns is not usable here"
        fi
        ip netns del "sm$$-probe"
        [[ -n ${SHADOWMESHD:-} ]] || { echo "SHADOWMESHD is not set" >&2; exit 1; }
        [[ -x $SHADOWMESHD ]] || { echo "SHADOWMESHD=$SHADOWMESHD is not executable" >&2; exit 1; }
        SHADOWMESHD=$(readlink -f "$SHADOWMESHD")
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

start_bus() {
        mkdir "$TMP/bus"
        chmod 755 "$TMP/bus"
        cat >"$TMP/bus/bus.conf" <<EOF
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<!-- Test bus written by tests/dbus/lib.sh: the rules of a system bus (nobody owns a name or
     sends a method call unless a policy file allows it), without <user>, <fork/>, <pidfile>
     or a service helper, so that it runs in the foreground as the test's own child. -->
<busconfig>
  <type>system</type>
  <listen>unix:path=$TMP/bus/socket</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
    <allow send_destination="org.freedesktop.DBus"
           send_interface="org.freedesktop.DBus.Introspectable"/>
    <allow send_destination="org.freedesktop.DBus"
           send_interface="org.freedesktop.DBus.Properties"/>
    <deny send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"
          send_member="UpdateActivationEnvironment"/>
  </policy>
  <policy user="root">
    <allow send_destination="org.freedesktop.DBus"
           send_interface="org.freedesktop.DBus.Monitoring"/>
  </policy>
  <!-- The policy the project installs to /usr/share/dbus-1/system.d/ -->
  <include>$SOURCE_ROOT/dbus/org.shadowmesh1.conf</include>
</busconfig>
EOF
        export DBUS_SYSTEM_BUS_ADDRESS="unix:path=$TMP/bus/socket"
        dbus-daemon --config-file="$TMP/bus/bus.conf" --nofork --nopidfile --print-address=3 \
                3>"$TMP/bus/address" 2>"$TMP/dbus-daemon.log" &
        BUS_PID=$!
        if ! wait_until 10 test -s "$TMP/bus/address"; then
                echo "the private dbus-daemon did not start" >&2
                cat "$TMP/dbus-daemon.log" >&2
                exit 1
        fi
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

add_ns() {
        ip netns add "$1"
        NAMESPACES+=("$1")
        ip -n "$1" link set lo up
}

# setup_pair X: namespaces a and b joined by veth, underlay 10.98.X.0/24. UNDER_DEAD is an
# address in that subnet where nothing answers.
setup_pair() {
        UNDER_A=10.98.$1.1
        UNDER_B=10.98.$1.2
        UNDER_DEAD=10.98.$1.3
        add_ns "$NS_A"
        add_ns "$NS_B"
        ip -n "$NS_A" link add veth0 type veth peer name veth0 netns "$NS_B"
        ip -n "$NS_A" addr add "$UNDER_A/24" dev veth0
        ip -n "$NS_B" addr add "$UNDER_B/24" dev veth0
        ip -n "$NS_A" link set veth0 up
        ip -n "$NS_B" link set veth0 up
        wait_until 10 ping_ok "$NS_A" "$UNDER_B" ||
                { echo "the veth underlay does not work" >&2; exit 1; }
}

random_hex_key() { od -An -tx1 -N32 /dev/urandom | tr -d ' \n'; }

# write_config FILE NAME=VALUE...: tap= ip4= listen= peer= key= log= control_group=
write_config() {
        local file=$1 kv
        shift
        local tap=$TAP ip4="" listen="0.0.0.0:$PORT" peer="" key="" log=info group=""
        for kv in "$@"; do
                case $kv in
                tap=*) tap=${kv#*=} ;;
                ip4=*) ip4=${kv#*=} ;;
                listen=*) listen=${kv#*=} ;;
                peer=*) peer=${kv#*=} ;;
                key=*) key=${kv#*=} ;;
                log=*) log=${kv#*=} ;;
                control_group=*) group=${kv#*=} ;;
                *) echo "write_config: unknown option $kv" >&2; return 1 ;;
                esac
        done
        {
                echo "daemon:"
                echo "  listen_address: \"$listen\""
                echo "  log_level: $log"
                [[ -z $group ]] || echo "  control_group: $group"
                echo "network:"
                echo "  tap_device: $tap"
                echo "  local_ip: $ip4"
                echo "encryption:"
                echo "  key: \"$key\""
                echo "peer:"
                echo "  address: \"$peer\""
                echo "nat:"
                echo "  enabled: false"
        } >"$file"
        chmod 600 "$file"
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

proc_state() { awk '/^State:/ { print $2 }' "/proc/$1/status" 2>/dev/null || true; }
# has_exited PID: gone, or a zombie.
has_exited() {
        local state
        state=$(proc_state "$1")
        [[ ! -e /proc/$1 || -z $state || $state == Z ]]
}
alive() { ! has_exited "${DAEMON_PID[$1]}"; }

log_has() { grep -qF -- "$2" "${DAEMON_LOG[$1]}"; }

# wait_log NAME STRING SECONDS: STRING appears in NAME's log (false early if it died).
wait_log() {
        local name=$1 str=$2 deadline=$(($(now_ms) + $3 * 1000))
        while :; do
                log_has "$name" "$str" && return 0
                if ! alive "$name"; then
                        log_has "$name" "$str"
                        return
                fi
                (($(now_ms) < deadline)) || return 1
                sleep 0.1
        done
}

# wait_exit NAME SECONDS: sets EXIT_CODE; returns 1 if it still runs at the deadline.
EXIT_CODE=""
wait_exit() {
        local pid=${DAEMON_PID[$1]}
        EXIT_CODE=""
        wait_until "$2" has_exited "$pid" || return 1
        EXIT_CODE=0
        wait "$pid" || EXIT_CODE=$?
        return 0
}

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

ping_ok() { ip netns exec "$1" ping -c 1 -W 1 -q "$2" >/dev/null 2>&1; }
wait_ping() { wait_until "$1" ping_ok "$2" "$3"; }
# all_lost NS ADDR: 3 echoes, none answered.
all_lost() {
        local out
        out=$(ip netns exec "$1" ping -c 3 -i 0.2 -W 1 "$2" 2>&1 || true)
        [[ $out == *" 0 received"* ]]
}

link_exists() { ip -n "$1" link show dev "$2" >/dev/null 2>&1; }
link_gone() { ! link_exists "$@"; }
