#!/bin/bash
# SPDX-License-Identifier: MIT
#
# The TAP device left to a real systemd-networkd. With network.local_ip unset, shadowmeshd only
# creates the TAP and brings it up; networkd, matching on the device's name, does the rest. Each
# namespace runs its own /lib/systemd/systemd-networkd in a private mount namespace: its own
# /run/systemd (with netif/ owned by systemd-network, as the unit's RuntimeDirectory= would make
# it), its own /etc/systemd/network holding the test's .network/.netdev files, no system bus
# (/run/dbus hidden, so it cannot register on the host's bus) and a read-only /sys (networkd then
# does not wait for udev, which does not run in a namespace). Three phases, each with fresh
# daemons and networkds:
#
#   static:  a: smn0 10.0.0.1/24 by networkd   b: smn0 10.0.0.2/24 by networkd
#            (a's networkd starts first and sees the TAP appear; b's starts after the TAP
#            exists: both orders work, which is why the unit needs no ordering against networkd)
#   bridge:  b: networkd makes br0 (.netdev) with 10.0.0.2/24 and enslaves smn0 and lan0 with
#            Bridge=br0; sm$$-c, a "LAN host" behind lan0 at 10.0.0.3, is reached from a through
#            the tunnel and b's bridge
#   dhcp:    a: 10.0.0.1/24 and DHCPServer=yes; b: DHCP=ipv4 leases an address over the tunnel
#
#   sm$$-a veth0 10.99.40.1 <--underlay--> veth0 10.99.40.2 sm$$-b lan0 <--veth--> eth0 sm$$-c

# Functions here are called through check/wait_until, which shellcheck cannot see.
# shellcheck disable=SC2317,SC2016
set -euo pipefail
# shellcheck source=tests/netns/lib.sh
source "$(dirname "$(dirname "$(readlink -f "$0")")")/netns/lib.sh"

NETWORKD=${NETWORKD:-/lib/systemd/systemd-networkd}
readonly TAPDEV=smn0

netns_init 40
need unshare util-linux
[[ -x $NETWORKD ]] || skip "$NETWORKD is not installed (apt-get install systemd)"
id systemd-network >/dev/null 2>&1 || skip "no systemd-network user (apt-get install systemd)"
setup_pair
add_ns "$NS_C"

KEY=$(random_hex_key)
declare -A NETWORKD_PID=()

# sm_config FILE PEER: shared-key mode, no local_ip: the daemon leaves the addresses alone.
sm_config() {
        cat >"$1" <<EOT
daemon:
  log_level: info
network:
  tap_device: $TAPDEV
  listen_port: $PORT
encryption:
  key: "$KEY"
peer:
  address: "$2"
nat:
  enabled: false
EOT
        chmod 600 "$1"
}
sm_config "$TMP/a.yaml" "$UNDER_B:$PORT"
sm_config "$TMP/b.yaml" ""

# start_networkd NAME NS CONFDIR: a real systemd-networkd in NS, in a private mount namespace
# whose /etc/systemd/network is CONFDIR. Log in $TMP/networkd-NAME.log. `ip netns exec`,
# `unshare` (without --fork) and `sh -c exec` all exec, so the PID is networkd's own.
start_networkd() {
        local name=$1 ns=$2 conf=$3 run=$TMP/run-$1
        rm -rf "$run"
        mkdir -p "$run/netif" "$run/empty"
        chown systemd-network:systemd-network "$run/netif"
        chmod 755 "$run" "$run/netif"
        chmod 755 "$conf"
        chmod 644 "$conf"/*
        echo "=== start $(date +%T.%N) ===" >>"$TMP/networkd-$name.log"
        SYSTEMD_LOG_TARGET=console SYSTEMD_LOG_LEVEL=debug SYSTEMD_LOG_COLOR=0 \
                ip netns exec "$ns" unshare --mount --propagation private sh -c '
                        set -e
                        mount --bind "$1" /run/systemd
                        if [ -d /run/dbus ]; then mount --bind "$1/empty" /run/dbus; fi
                        mkdir -p /etc/systemd/network
                        mount --bind "$2" /etc/systemd/network
                        mount -o remount,bind,ro /sys
                        exec "$3"' sh "$run" "$conf" "$NETWORKD" >>"$TMP/networkd-$name.log" 2>&1 &
        NETWORKD_PID[$name]=$!
        OWN_PIDS+=("$!")
}

stop_networkd() { stop_pid "${NETWORKD_PID[$1]}"; }

# networkd_state NAME IFNAME: networkd's own record of the link (ADMIN_STATE=configured,
# NETWORK_FILE=...), from the netif/links/IFINDEX file it writes.
networkd_state() {
        local ns=$2 idx
        idx=$(ip -n "$ns" -o link show dev "$3" 2>/dev/null | cut -d: -f1) || return 1
        [[ -n $idx ]] || return 1
        cat "$TMP/run-$1/netif/links/$idx" 2>/dev/null
}
# configured NAME NS IFNAME: networkd says it finished configuring the link.
configured() { networkd_state "$@" | grep -qx 'ADMIN_STATE=configured'; }
network_file_of() { networkd_state "$@" | sed -n 's/^NETWORK_FILE=//p'; }

has_addr() { ip -n "$1" -4 -o addr show dev "$2" 2>/dev/null | grep -qF " $3/"; }
no_ipv4() { [[ -z $(ip -n "$1" -4 -o addr show dev "$2" 2>/dev/null) ]]; }
master_of() { ip -n "$1" -o link show dev "$2" 2>/dev/null | grep -o 'master [^ ]*' | cut -d' ' -f2; }

# example_conf NAME SED_EXPR FILE...: a fresh directory of networkd files, copied from the shipped
# examples/networkd/ with the test's device names (smn0 for tap0, lan0 for eth0) and SED_EXPR.
EXAMPLES=$(dirname "$(dirname "$(dirname "$(readlink -f "$0")")")")/examples/networkd
example_conf() {
        local dir=$TMP/conf-$1 expr=$2 f
        shift 2
        rm -rf "$dir"
        mkdir -p "$dir"
        for f in "$@"; do
                sed -e "s/\btap0\b/$TAPDEV/g" -e 's/\beth0\b/lan0/g' -e "$expr" \
                        "$EXAMPLES/$f" >"$dir/$f"
        done
        echo "$dir"
}

stop_phase() {
        stop_daemon a TERM 10 || true
        stop_daemon b TERM 10 || true
        stop_networkd a
        stop_networkd b
}

# ---- static addresses ---------------------------------------------------------------------------
note "phase 1: static addresses from networkd"
CONF_A=$(example_conf a-static "" 50-shadowmesh-static.network)
CONF_B=$(example_conf b-static s/10.0.0.1/10.0.0.2/ 50-shadowmesh-static.network)

# a: networkd first, the TAP appears later.
start_networkd a "$NS_A" "$CONF_A"
check "a: networkd runs and enumerated the links" \
        wait_while_alive 10 "${NETWORKD_PID[a]}" grep -q "Enumeration completed" "$TMP/networkd-a.log"
# b: the TAP first; before networkd runs it has no IPv4 address (the daemon set none).
start_daemon b "$NS_B" "$TMP/b.yaml"
check "b: $TAPDEV up" wait_log b "$TAPDEV up" 10
check "b: no IPv4 address on $TAPDEV before networkd runs" no_ipv4 "$NS_B" "$TAPDEV"
check "b: $TAPDEV is up without networkd" contains "$(ip -n "$NS_B" -o link show dev "$TAPDEV")" ",UP"
start_networkd b "$NS_B" "$CONF_B"
start_daemon a "$NS_A" "$TMP/a.yaml"
check "a: $TAPDEV up" wait_log a "$TAPDEV up" 10

check "a: networkd configured $TAPDEV" wait_until 20 configured a "$NS_A" "$TAPDEV"
check "b: networkd configured $TAPDEV" wait_until 20 configured b "$NS_B" "$TAPDEV"
check_eq "a: by the shipped 50-shadowmesh-static.network" "$(network_file_of a "$NS_A" "$TAPDEV")" \
        "/etc/systemd/network/50-shadowmesh-static.network"
check "a: $TAPDEV has 10.0.0.1 from networkd" has_addr "$NS_A" "$TAPDEV" 10.0.0.1
check "b: $TAPDEV has 10.0.0.2 from networkd" has_addr "$NS_B" "$TAPDEV" 10.0.0.2
# network-online.target must not wait for the tunnel: the unit is ordered after it.
check "a: networkd does not count $TAPDEV for network-online" \
        eval 'networkd_state a "$NS_A" "$TAPDEV" | grep -qx REQUIRED_FOR_ONLINE=no'
check "ping a->b through the tunnel" wait_ping 20 "$NS_A" 10.0.0.2
check "ping b->a through the tunnel" wait_ping 10 "$NS_B" 10.0.0.1
check "the daemons still run" alive a
stop_phase

# ---- bridge --------------------------------------------------------------------------------------
note "phase 2: b bridges the tunnel to its LAN (Bridge=)"
ip -n "$NS_B" link add lan0 type veth peer name eth0 netns "$NS_C"
ip -n "$NS_C" addr add 10.0.0.3/24 dev eth0
ip -n "$NS_C" link set eth0 up
CONF_B=$(example_conf b-bridge "" 25-br0.netdev 25-br0.network 50-shadowmesh-bridge.network \
        50-lan-bridge.network)
start_networkd a "$NS_A" "$CONF_A"
start_networkd b "$NS_B" "$CONF_B"
start_daemon b "$NS_B" "$TMP/b.yaml"
start_daemon a "$NS_A" "$TMP/a.yaml"
check "b: networkd created br0" wait_until 20 link_exists "$NS_B" br0
check "b: networkd enslaved $TAPDEV to br0" wait_until 20 configured b "$NS_B" "$TAPDEV"
check_eq "b: $TAPDEV's master" "$(master_of "$NS_B" "$TAPDEV")" br0
check "b: networkd enslaved lan0 to br0" wait_until 20 configured b "$NS_B" lan0
check_eq "b: lan0's master" "$(master_of "$NS_B" lan0)" br0
check "b: br0 has 10.0.0.2 from networkd" wait_until 20 has_addr "$NS_B" br0 10.0.0.2
check "b: no IPv4 address on the enslaved $TAPDEV" no_ipv4 "$NS_B" "$TAPDEV"
check "a: $TAPDEV has 10.0.0.1 from networkd" wait_until 20 has_addr "$NS_A" "$TAPDEV" 10.0.0.1
check "ping a->b's bridge through the tunnel" wait_ping 20 "$NS_A" 10.0.0.2
check "ping a->LAN host c through the tunnel and b's bridge" wait_ping 20 "$NS_A" 10.0.0.3
check "ping LAN host c->a" wait_ping 10 "$NS_C" 10.0.0.1
check "ping a->c, 10 of 10 answered" ping_all "$NS_A" 10.0.0.3 10
stop_phase
ip -n "$NS_B" link del br0 2>/dev/null || true

# ---- DHCP server and client ---------------------------------------------------------------------
note "phase 3: a serves DHCP, b leases its address over the tunnel"
CONF_A=$(example_conf a-dhcp "" 50-shadowmesh-dhcp-server.network)
CONF_B=$(example_conf b-dhcp "" 50-shadowmesh-dhcp-client.network)
start_networkd a "$NS_A" "$CONF_A"
start_networkd b "$NS_B" "$CONF_B"
start_daemon b "$NS_B" "$TMP/b.yaml"
start_daemon a "$NS_A" "$TMP/a.yaml"
leased() { ip -n "$NS_B" -4 -o addr show dev "$TAPDEV" 2>/dev/null | grep -qE ' 10\.0\.0\.1[0-1][0-9]/24 .*dynamic'; }
check "b: leased an address from a's DHCP server" wait_until 40 leased
LEASE=$(ip -n "$NS_B" -4 -o addr show dev "$TAPDEV" | grep -oE '10\.0\.0\.1[0-1][0-9]' | head -n 1 || true)
note "b leased $LEASE"
check "a: networkd logged the lease" grep -q "DHCPv4 server: ACK" "$TMP/networkd-a.log"
check "ping a->b's leased address" wait_ping 10 "$NS_A" "${LEASE:-10.0.0.250}"
stop_phase

# ---- NetworkManager ------------------------------------------------------------------------------
# The shipped snippet adds to an unmanaged-devices list set elsewhere instead of replacing it, as
# NetworkManager itself merges it.
if command -v NetworkManager >/dev/null; then
        mkdir -p "$TMP/nm/conf.d" "$TMP/nm/none"
        printf '[keyfile]\nunmanaged-devices=mac:02:00:00:00:00:01\n' >"$TMP/nm/NetworkManager.conf"
        cp "$EXAMPLES/90-shadowmesh-unmanaged.conf" "$TMP/nm/conf.d/"
        NM_CONF=$(NetworkManager --print-config --config="$TMP/nm/NetworkManager.conf" \
                --config-dir="$TMP/nm/conf.d" --system-config-dir="$TMP/nm/none" 2>&1 || true)
        check_has "NetworkManager merges the unmanaged-devices snippet" "$NM_CONF" \
                "unmanaged-devices=mac:02:00:00:00:00:01,interface-name:tap0"
else
        note "NetworkManager is not installed: its snippet is not checked"
fi

summary
