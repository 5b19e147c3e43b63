#!/bin/bash
# SPDX-License-Identifier: MIT
#
# The HTTP API and D-Bus drive one connection manager, so they never disagree: a /connect over
# HTTP is the State and PeerAddress D-Bus reports, a D-Bus Disconnect is what /status says
# next, a D-Bus Connect shows in /status, and a Connect of either kind while the other one
# waits gets "already connecting". Two namespaces and a private system-like bus with the
# project's own policy.
#
#   sm$$-a: tap0 10.0.0.1/24, veth0 10.99.43.1, bus name org.shadowmesh1.Instance.a
#   sm$$-b: tap0 10.0.0.2/24, veth0 10.99.43.2, bus name org.shadowmesh1.Instance.b

# shellcheck disable=SC2317
set -euo pipefail
# shellcheck source=tests/netns/lib.sh
source "$(dirname "$(dirname "$(readlink -f "$0")")")/netns/lib.sh"
SOURCE_ROOT=$(readlink -f "$(dirname "$(readlink -f "$0")")/../..")

netns_init 43
need curl curl
need python3 python3
need busctl systemd
need dbus-daemon dbus-daemon
setup_pair
start_private_bus "$TMP/bus" "$TMP/bus.log" "$SOURCE_ROOT/dbus/org.shadowmesh1.conf"
OWN_PIDS+=("$BUS_PID") # stopped by the cleanup with the daemons

KEY=$(random_hex_key)
for n in a b; do
        ip=10.0.0.1/24
        [[ $n == b ]] && ip=10.0.0.2/24
        cat >"$TMP/$n.yaml" <<YAML
daemon:
  listen_address: "127.0.0.1:9090"
network:
  tap_device: "tap0"
  local_ip: "$ip"
encryption:
  key: "$KEY"
peer:
  address: ""
YAML
        chmod 600 "$TMP/$n.yaml"
done

URL=http://127.0.0.1:9090
OBJ=/org/shadowmesh1/instance/a
BUS_A=org.shadowmesh1.Instance.a
CODE="" BODY=""
req() {
        local name=$1
        shift
        CODE=$(ip netns exec "$NS_A" curl -s --max-time 20 -o "$TMP/$name.body" -w '%{http_code}' "$@" 2>/dev/null || true)
        BODY=$(cat "$TMP/$name.body" 2>/dev/null || true)
}
http_state() {
        req state "$URL/status"
        python3 -c 'import json, sys; print(json.loads(sys.argv[1])["state"])' "$BODY" 2>/dev/null || true
}
http_state_is() { [[ $(http_state) == "$1" ]]; }
bus_prop() { busctl get-property "$BUS_A" "$OBJ" org.shadowmesh1.Tunnel "$1" 2>&1 || true; }
bus_state_is() { [[ $(bus_prop State) == "s \"$1\"" ]]; }
bus_up() { busctl status "$1" >/dev/null 2>&1; }

start_daemon a "$NS_A" "$TMP/a.yaml"
start_daemon b "$NS_B" "$TMP/b.yaml"
check "a owns its bus name" wait_until 10 bus_up "$BUS_A"
check "b owns its bus name" wait_until 10 bus_up org.shadowmesh1.Instance.b
check "a serves HTTP" wait_log a "HTTP API on http://127.0.0.1:9090/" 10

# HTTP /connect -> D-Bus State and PeerAddress.
req connect -X POST "$URL/connect" -H "Content-Type: application/json" -d "{\"peer_address\": \"$UNDER_B:9001\"}"
check_eq "HTTP /connect: 200" "$CODE" 200
check_eq "D-Bus State after HTTP /connect" "$(bus_prop State)" 's "connected"'
check_eq "D-Bus PeerAddress after HTTP /connect" "$(bus_prop PeerAddress)" "s \"$UNDER_B:9001\""
check "ping a->b" wait_ping 10 "$NS_A" 10.0.0.2

# D-Bus Disconnect -> HTTP /status.
check "D-Bus Disconnect" busctl call "$BUS_A" "$OBJ" org.shadowmesh1.Tunnel Disconnect
check_eq "HTTP /status after D-Bus Disconnect" "$(http_state)" Disconnected
req disconnect -X POST "$URL/disconnect"
check_eq "HTTP /disconnect after D-Bus Disconnect: 409 not connected" "$CODE" 409

# D-Bus Connect -> HTTP /status; HTTP /connect then conflicts.
check "D-Bus Connect" busctl --timeout=20 call "$BUS_A" "$OBJ" org.shadowmesh1.Tunnel Connect 'sa{sv}' "$UNDER_B:9001" 0
check_eq "HTTP /status after D-Bus Connect" "$(http_state)" Connected
req again -X POST "$URL/connect" -H "Content-Type: application/json" -d "{\"peer_address\": \"$UNDER_B:9001\"}"
check_eq "HTTP /connect while D-Bus connected it: 409" "$CODE" 409
req disconnect2 -X POST "$URL/disconnect"
check_eq "HTTP /disconnect: 200" "$CODE" 200
check "D-Bus State after HTTP /disconnect" bus_state_is disconnected

# A /connect waiting over HTTP: D-Bus sees it connecting and its Connect is refused; a D-Bus
# Disconnect ends the HTTP wait.
ip netns exec "$NS_A" curl -s -o "$TMP/pending.body" -w '%{http_code}' --max-time 20 -X POST "$URL/connect" \
        -H "Content-Type: application/json" -d "{\"peer_address\": \"$UNDER_B:9002\"}" >"$TMP/pending.code" &
pending=$!
OWN_PIDS+=("$pending")
check "D-Bus State while HTTP /connect waits" wait_until 5 bus_state_is connecting
out=$(busctl call "$BUS_A" "$OBJ" org.shadowmesh1.Tunnel Connect 'sa{sv}' "$UNDER_B:9001" 0 2>&1 || true)
check_has "D-Bus Connect while HTTP /connect waits: already connecting" "$out" "Already connecting to $UNDER_B:9002"
check "D-Bus Disconnect ends the wait" busctl call "$BUS_A" "$OBJ" org.shadowmesh1.Tunnel Disconnect
wait_pid_exit "$pending" 5 || true
check_eq "the waiting HTTP /connect: 409" "$(cat "$TMP/pending.code")" 409
check_has "... cancelled by the Disconnect" "$(cat "$TMP/pending.body")" "Disconnected before the handshake"

check "a: exits on SIGINT" stop_daemon a INT 10
check_eq "a: exit status 0" "$EXIT_CODE" 0
check "b: exits on SIGINT" stop_daemon b INT 10
summary
