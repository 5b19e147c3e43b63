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
# bounded poll on a real condition. The generic pieces (checks, polling, processes, namespaces,
# the private bus) are in tests/common.sh.
#
# Environment: SHADOWMESHD, NM_SHADOWMESH_SERVICE, NM_SHADOWMESH_AUTH_DIALOG, SOURCE_ROOT,
# NM_SHADOWMESH_EDITOR_PLUGIN (optional), SM_VERBOSE=1 (print the logs even when all passed).

set -uo pipefail

# shellcheck source=tests/common.sh
source "$(dirname "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")")/common.sh"

NS="smnm$$"
NSP="smnm$$p"
NM_PID=""
OUT="" RC=0
readonly PEER_IP=198.51.100.1

# nm ARGS...: nmcli on the sandbox's bus, output in $OUT, status in $RC, bounded.
nm() {
        OUT=$(timeout 90 nmcli --wait 60 "$@" 2>&1 </dev/null)
        RC=$?
}
has() { grep -q -- "$1" <<<"$OUT"; }

cleanup() {
        local rc=$? pid ns
        cleanup_begin "$rc"
        # NetworkManager first: its VPN services see it go and stop their daemons.
        stop_pid "$NM_PID"
        stop_own_pids
        # Whatever is left in our namespaces was started by this test (NM's children).
        for ns in "${NAMESPACES[@]}"; do
                for pid in $(ip netns pids "$ns" 2>/dev/null); do
                        kill -KILL "$pid" 2>/dev/null
                done
        done
        del_namespaces
        stop_pid "$BUS_PID"
        cleanup_end "$rc"
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
        require_netns "smnm$$"
        for p in SHADOWMESHD NM_SHADOWMESH_SERVICE NM_SHADOWMESH_AUTH_DIALOG; do
                require_program "$p"
        done
        [[ -n ${SOURCE_ROOT:-} ]] || { echo "SOURCE_ROOT is not set" >&2; exit 1; }
        TMP=$(mktemp -d "${TMPDIR:-/tmp}/shadowmesh-nm.XXXXXX")
        trap cleanup EXIT
        trap 'exit 130' INT TERM
        export DBUS_SYSTEM_BUS_ADDRESS="unix:path=$TMP/bus/socket"
        # for nmcli: the sandbox's .name file (NetworkManager itself reads /etc/NetworkManager/VPN)
        export NM_VPN_PLUGIN_DIR="$TMP/etc/VPN"
}

# start_bus: the private bus with NetworkManager's policies and the project's (see
# start_private_bus in common.sh).
start_bus() {
        start_private_bus "$TMP/bus" "$TMP/dbus-daemon.log" /usr/share/dbus-1/system.d \
                "$SOURCE_ROOT/nm-plugin/nm-shadowmesh-service.conf" \
                "$SOURCE_ROOT/dbus/org.shadowmesh1.conf" || exit 1
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
        sandbox_network
        sandbox_start_nm
}

# sandbox_network: the namespaces, the veth "LAN", the bus and NetworkManager's files (which a
# test may edit before sandbox_start_nm).
sandbox_network() {
        add_ns "$NS"
        add_ns "$NSP"
        ip -n "$NS" link add up0 type veth peer name gw0 netns "$NSP"
        ip -n "$NSP" addr add 192.0.2.1/24 dev gw0
        ip -n "$NSP" link set gw0 up
        # The peer's public address, one hop away (NetworkManager pins a host route to it).
        ip -n "$NSP" addr add "$PEER_IP/32" dev lo
        start_bus
        write_nm_files
}

# sandbox_start_nm: NetworkManager in its namespace, running.
sandbox_start_nm() {
        # ip netns exec, unshare (without --fork) and nm-inner.sh all exec: $! is NM itself.
        ip netns exec "$NS" unshare --mount --propagation private "$TMP/nm-inner.sh" \
                >"$TMP/nm.log" 2>&1 &
        NM_PID=$!
        wait_until 30 nm_running || { tail -30 "$TMP/nm.log" >&2; return 1; }
}

# ---- the peer side ------------------------------------------------------------------------------

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

# PIDs in NetworkManager's namespace whose argv[0] (or the script's argument) is $1.
pids_of() {
        local pid cmd
        for pid in $(ip netns pids "$NS" 2>/dev/null); do
                cmd=$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline") || continue
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
