# SPDX-License-Identifier: MIT
# shellcheck shell=bash
# shellcheck disable=SC2034 # variables set here are used by the scripts that source it
#
# A sandbox with a real NetworkManager (Debian's network-manager) for the plugin's tests, after
# the nm lab: nothing of the host's network, /etc/NetworkManager, /run or system bus is touched.
#
#   [ smnm$$ ]  NetworkManager + nm-shadowmesh-service + shadowmeshd     [ smnm$$p ]
#     up0 192.0.2.2/24 (NM profile "uplink",  <--- veth --->  gw0 192.0.2.1/24
#     default route via 192.0.2.1)                            lo  198.51.100.1 (the peer's
#                                                                 shadowmeshd daemons)
#
#   bus    a private dbus-daemon of type "system": the default-deny rules of a system bus, the
#          policies in /usr/share/dbus-1/system.d (NetworkManager's own) and the project's
#          nm-plugin/nm-shadowmesh-service.conf and dbus/org.shadowmesh1.conf.
#          DBUS_SYSTEM_BUS_ADDRESS points at it for nmcli, busctl and the peer daemons.
#   files  NetworkManager runs in `ip netns exec smnm$$ unshare --mount` (nm-inner.sh below):
#          /etc/NetworkManager and /var/lib/NetworkManager are bind mounts of $TMP/etc and
#          $TMP/state (NetworkManager reads .name files only from compile-time directories),
#          /run is a tmpfs (the service's runtime directory /run/NetworkManager/shadowmesh is
#          there, seen with nsenter -m), /sys is read-only (else NM waits for udev forever).
#   plugin $TMP/etc/VPN/nm-shadowmesh-service.name runs a wrapper that execs the built
#          nm-shadowmesh-service with --shadowmeshd <built daemon>; auth-dialog= is the built
#          nm-shadowmesh-auth-dialog; [libnm] names the built editor plugin when there is one.
#
# Everything carries $$; the EXIT trap stops only the processes started here (by PID, and those
# left inside the two namespaces made here), deletes the namespaces and $TMP. Every wait is a
# bounded poll on a real condition.
#
# Environment: SHADOWMESHD, NM_SHADOWMESH_SERVICE, NM_SHADOWMESH_AUTH_DIALOG, SOURCE_ROOT,
# NM_SHADOWMESH_EDITOR_PLUGIN (optional), SM_VERBOSE=1 (print the logs even when all passed).

set -uo pipefail

PASSED=0
FAILED=0
SUMMARY_DONE=0
TMP=""
NS="smnm$$"
NSP="smnm$$p"
NAMESPACES=()
NM_PID=""
BUS_PID=""
OWN_PIDS=()
OUT="" RC=0
readonly PEER_IP=198.51.100.1

skip() {
        echo "SKIP: $*"
        exit 77
}
pass() {
        PASSED=$((PASSED + 1))
        echo "ok - $1"
}
fail() {
        FAILED=$((FAILED + 1))
        echo "FAIL - $1"
        shift
        local line
        for line in "$@"; do
                printf '       %s\n' "$line"
        done
}
# check NAME COMMAND...
check() {
        local name=$1
        shift
        if "$@"; then
                pass "$name"
        else
                fail "$name" "(command: $*)"
        fi
}
note() { echo "# $*"; }

now_ms() { echo $(($(date +%s%N) / 1000000)); }
# wait_until SECONDS COMMAND...
wait_until() {
        local deadline=$(($(now_ms) + $1 * 1000))
        shift
        while :; do
                "$@" && return 0
                (($(now_ms) < deadline)) || return 1
                sleep 0.1
        done
}

# nm ARGS...: nmcli on the sandbox's bus, output in $OUT, status in $RC, bounded.
nm() {
        OUT=$(timeout 90 nmcli --wait 60 "$@" 2>&1 </dev/null)
        RC=$?
}
has() { grep -q -- "$1" <<<"$OUT"; }

dump_logs() {
        local f
        [[ -n $TMP && -d $TMP ]] || return 0
        for f in "$TMP"/*.log; do
                [[ -e $f ]] || continue
                echo "----- ${f##*/} -----"
                cat "$f"
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
        local rc=$? pid ns
        set +e
        trap - EXIT
        if ((SUMMARY_DONE == 0)); then
                FAILED=$((FAILED + 1))
                echo "FAIL - script aborted (exit status $rc)"
        fi
        # NetworkManager first: its VPN services see it go and stop their daemons.
        [[ -z $NM_PID ]] || stop_pid "$NM_PID"
        for pid in "${OWN_PIDS[@]}"; do
                stop_pid "$pid"
        done
        # Whatever is left in our namespaces was started by this test (NM's children).
        for ns in "${NAMESPACES[@]}"; do
                for pid in $(ip netns pids "$ns" 2>/dev/null); do
                        kill -KILL "$pid" 2>/dev/null
                done
        done
        for ns in "${NAMESPACES[@]}"; do
                ip netns del "$ns" 2>/dev/null
        done
        [[ -z $BUS_PID ]] || stop_pid "$BUS_PID"
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

nm_init() {
        local p
        [[ $EUID -eq 0 ]] || skip "needs root"
        for p in NetworkManager nmcli; do
                command -v "$p" >/dev/null ||
                        skip "$p not installed (apt-get install network-manager)"
        done
        for p in dbus-daemon ip unshare nsenter busctl ping timeout; do
                command -v "$p" >/dev/null || skip "$p not installed"
        done
        ip netns add "smnm$$-probe" 2>/dev/null || skip "ip netns is not usable here"
        ip netns del "smnm$$-probe"
        for p in SHADOWMESHD NM_SHADOWMESH_SERVICE NM_SHADOWMESH_AUTH_DIALOG SOURCE_ROOT; do
                [[ -n ${!p:-} ]] || { echo "$p is not set" >&2; exit 1; }
        done
        SHADOWMESHD=$(readlink -f "$SHADOWMESHD")
        NM_SHADOWMESH_SERVICE=$(readlink -f "$NM_SHADOWMESH_SERVICE")
        NM_SHADOWMESH_AUTH_DIALOG=$(readlink -f "$NM_SHADOWMESH_AUTH_DIALOG")
        TMP=$(mktemp -d "${TMPDIR:-/tmp}/shadowmesh-nm.XXXXXX")
        trap cleanup EXIT
        trap 'exit 130' INT TERM
        export DBUS_SYSTEM_BUS_ADDRESS="unix:path=$TMP/bus/socket"
        # for nmcli: the sandbox's .name file (NetworkManager itself reads /etc/NetworkManager/VPN)
        export NM_VPN_PLUGIN_DIR="$TMP/etc/VPN"
}

add_ns() {
        ip netns add "$1"
        NAMESPACES+=("$1")
        ip -n "$1" link set lo up
}

start_bus() {
        mkdir -p "$TMP/bus"
        cat >"$TMP/bus/bus.conf" <<EOF
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
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
  </policy>
  <policy user="root">
    <allow send_destination="org.freedesktop.DBus"
           send_interface="org.freedesktop.DBus.Monitoring"/>
  </policy>
  <includedir>/usr/share/dbus-1/system.d</includedir>
  <include>$SOURCE_ROOT/nm-plugin/nm-shadowmesh-service.conf</include>
  <include>$SOURCE_ROOT/dbus/org.shadowmesh1.conf</include>
</busconfig>
EOF
        dbus-daemon --config-file="$TMP/bus/bus.conf" --nofork --nopidfile --print-address=3 \
                3>"$TMP/bus/address" 2>"$TMP/dbus-daemon.log" &
        BUS_PID=$!
        wait_until 10 test -s "$TMP/bus/address" ||
                { echo "the private dbus-daemon did not start" >&2; exit 1; }
}

write_nm_files() {
        mkdir -p "$TMP"/etc/{conf.d,VPN,system-connections,dispatcher.d} "$TMP/state"
        chmod 700 "$TMP/etc/system-connections" "$TMP/state"
        cat >"$TMP/etc/NetworkManager.conf" <<'EOF'
[main]
plugins=keyfile
auth-polkit=false
dns=none
rc-manager=unmanaged
hostname-mode=none
no-auto-default=*

[logging]
level=INFO
domains=ALL,VPN:TRACE,VPN_PLUGIN:TRACE

[connectivity]
enabled=false
EOF
        # NetworkManager passes the service only --bus-name; the wrapper adds the built daemon,
        # and logging to stderr (NetworkManager asks for syslog, which does not run here): the
        # service's and the daemon's lines land in nm.log.
        cat >"$TMP/nm-shadowmesh-service" <<EOF
#!/bin/sh
NM_VPN_LOG_SYSLOG=0 exec "$NM_SHADOWMESH_SERVICE" --shadowmeshd "$SHADOWMESHD" "\$@"
EOF
        chmod 755 "$TMP/nm-shadowmesh-service"
        local libnm_plugin="# no editor plugin"
        if [[ -n ${NM_SHADOWMESH_EDITOR_PLUGIN:-} && -f ${NM_SHADOWMESH_EDITOR_PLUGIN:-} ]]; then
                libnm_plugin="plugin=$(readlink -f "$NM_SHADOWMESH_EDITOR_PLUGIN")"
        fi
        sed -e "s|@SERVICE_PROGRAM@|$TMP/nm-shadowmesh-service|" \
                -e "s|@AUTH_DIALOG@|$NM_SHADOWMESH_AUTH_DIALOG|" \
                -e "s|@LIBNM_PLUGIN@|$libnm_plugin|" \
                "$SOURCE_ROOT/nm-plugin/nm-shadowmesh-service.name.in" \
                >"$TMP/etc/VPN/nm-shadowmesh-service.name"
        chmod 644 "$TMP/etc/VPN/nm-shadowmesh-service.name"
        cat >"$TMP/nm-inner.sh" <<EOF
#!/bin/sh
# Runs in the sandbox's network and (private) mount namespace, then becomes NetworkManager.
set -e
mount --bind /sys /sys
mount -o remount,bind,ro /sys
mount -t tmpfs -o mode=755 smnm-run /run
mkdir -p /run/NetworkManager /run/dbus
ln -s "$TMP/bus/socket" /run/dbus/system_bus_socket
mount --bind "$TMP/etc" /etc/NetworkManager
mount --bind "$TMP/state" /var/lib/NetworkManager
exec NetworkManager --debug --pid-file=/run/NetworkManager/NetworkManager.pid \
        --system-config-dir="$TMP/etc/conf.d"
EOF
        chmod 755 "$TMP/nm-inner.sh"
}

nm_running() { [[ $(nmcli -t -f RUNNING general 2>/dev/null) == running ]]; }

# start_sandbox: namespaces, the veth "LAN", the bus, NetworkManager and its uplink profile.
start_sandbox() {
        add_ns "$NS"
        add_ns "$NSP"
        ip -n "$NS" link add up0 type veth peer name gw0 netns "$NSP"
        ip -n "$NSP" addr add 192.0.2.1/24 dev gw0
        ip -n "$NSP" link set gw0 up
        # The peer's public address, one hop away (NetworkManager pins a host route to it).
        ip -n "$NSP" addr add "$PEER_IP/32" dev lo
        start_bus
        write_nm_files
        # ip netns exec, unshare (without --fork) and nm-inner.sh all exec: $! is NM itself.
        ip netns exec "$NS" unshare --mount --propagation private "$TMP/nm-inner.sh" \
                >"$TMP/nm.log" 2>&1 &
        NM_PID=$!
        wait_until 30 nm_running || { tail -30 "$TMP/nm.log" >&2; return 1; }
}

# ---- the peer side ------------------------------------------------------------------------------

random_hex_key() { od -An -tx1 -N32 /dev/urandom | tr -d ' \n'; }

# start_peer NAME CONFIG: a plain shadowmeshd in the peer namespace, log $TMP/NAME.log.
declare -A PEER_PID=()
start_peer() {
        env --default-signal=INT ip netns exec "$NSP" "$SHADOWMESHD" --instance "$1" "$2" \
                >"$TMP/$1.log" 2>&1 &
        PEER_PID[$1]=$!
        OWN_PIDS+=("$!")
        wait_until 10 grep -q "listening on udp port" "$TMP/$1.log"
}

# ---- what runs in NetworkManager's namespace ----------------------------------------------------

link_exists() { ip -n "$NS" link show dev "$1" >/dev/null 2>&1; }
link_gone() { ! link_exists "$1"; }
ping_ok() { ip netns exec "$1" ping -c 1 -W 1 -q "$2" >/dev/null 2>&1; }

# PIDs in NetworkManager's namespace whose argv[0] (or the script's argument) is $1.
pids_of() {
        local pid cmd
        for pid in $(ip netns pids "$NS" 2>/dev/null); do
                cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || continue
                [[ $cmd == "$1 "* ]] && echo "$pid"
        done
}
daemon_pids() { pids_of "$SHADOWMESHD"; }
service_pids() { pids_of "$NM_SHADOWMESH_SERVICE"; }
no_daemon() { [[ -z $(daemon_pids) ]]; }
no_service() { [[ -z $(service_pids) ]]; }

# in_nm_mounts COMMAND...: run in NetworkManager's mount namespace (its /run).
in_nm_mounts() { nsenter -t "$NM_PID" -m -- "$@"; }
runtime_dir() { echo "/run/NetworkManager/shadowmesh/$1"; }
runtime_dir_gone() { ! in_nm_mounts test -e "$(runtime_dir "$1")"; }

active() { nmcli -t -f NAME connection show --active 2>/dev/null | grep -qx -- "$1"; }
inactive() { ! active "$1"; }
con_uuid() { nmcli -g connection.uuid connection show "$1" 2>/dev/null; }
