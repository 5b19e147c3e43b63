#!/bin/bash
# SPDX-License-Identifier: MIT
#
# The Go prototype's own set-up, unchanged: its daemon.yaml on two hosts (network namespaces,
# each with its own loopback, so both serve the API on 127.0.0.1:9090) and its four curl
# commands, verbatim, run inside each namespace. Shows pings both ways through tap0, the
# prototype's JSON shapes on both nodes, a disconnect and a clean shutdown on SIGINT.
#
#   sm$$-a: tap0 10.0.0.1/24, veth0 10.99.41.1    sm$$-b: tap0 10.0.0.2/24, veth0 10.99.41.2
#   peer.address "" on both: A's curl /connect names B; B waits.
#
# nat.stun_server is stun.l.google.com:19302, which does not resolve in a namespace without
# a route: the daemons must start and run regardless.

# shellcheck disable=SC2317
set -euo pipefail
# shellcheck source=tests/netns/lib.sh
source "$(dirname "$(dirname "$(readlink -f "$0")")")/netns/lib.sh"

netns_init 41
need curl curl
need python3 python3
setup_pair

KEY=$(random_hex_key)
# The prototype's daemon.yaml, as its README writes it; only local_ip differs between nodes.
prototype_yaml() {
        cat <<YAML
daemon:
  listen_address: "127.0.0.1:9090"
  log_level: "info"

network:
  tap_device: "tap0"
  local_ip: "$1"

encryption:
  key: "$KEY"

peer:
  address: ""

nat:
  enabled: true
  stun_server: "stun.l.google.com:19302"
YAML
}
prototype_yaml 10.0.0.1/24 >"$TMP/a.yaml"
prototype_yaml 10.0.0.2/24 >"$TMP/b.yaml"
chmod 600 "$TMP/a.yaml" "$TMP/b.yaml"

# json FILE PYTHON-EXPR: evaluate EXPR on the parsed reply j (prints the result; fails on bad
# JSON).
json() { python3 -c 'import json, sys; j = json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"; }
api_up() { ip netns exec "$1" curl -s -o /dev/null http://127.0.0.1:9090/health; }

# ---- both nodes start with the unchanged file ---------------------------------------------------
start_daemon a "$NS_A" "$TMP/a.yaml"
start_daemon b "$NS_B" "$TMP/b.yaml"
for n in a b; do
        ns=$NS_A
        [[ $n == b ]] && ns=$NS_B
        check "$n: HTTP API on 127.0.0.1:9090" wait_log $n "HTTP API on http://127.0.0.1:9090/" 10
        check "$n: tunnel listens on udp 9001" log_has $n "listening on udp port 9001"
        check "$n: tap0 up" link_exists "$ns" tap0
        check "$n: the API answers" wait_until 10 api_up "$ns"
done

# ---- the prototype's curl commands on A, verbatim ------------------------------------------------
ip netns exec "$NS_A" curl -X POST http://127.0.0.1:9090/connect -H "Content-Type: application/json" -d '{"peer_address": "'"$UNDER_B"':9001"}' \
        >"$TMP/a-connect.out" 2>"$TMP/a-connect-curl.log" || true
note "a /connect: $(cat "$TMP/a-connect.out")"
check_eq "a: /connect status" "$(json "$TMP/a-connect.out" 'j["status"]')" success
check_eq "a: /connect message" "$(json "$TMP/a-connect.out" 'j["message"]')" "Connected to peer at $UNDER_B:9001"
check_eq "a: /connect has exactly status and message" \
        "$(json "$TMP/a-connect.out" 'sorted(j.keys())')" "['message', 'status']"

check "ping 10.0.0.1 -> 10.0.0.2" wait_ping 10 "$NS_A" 10.0.0.2
check "ping 10.0.0.2 -> 10.0.0.1" wait_ping 10 "$NS_B" 10.0.0.1
check "ping a->b, 5 of 5 answered" ping_all "$NS_A" 10.0.0.2 5
check "ping b->a, 5 of 5 answered" ping_all "$NS_B" 10.0.0.1 5

# /status on both nodes: the prototype's shape.
check_status() {
        local n=$1 ns=$2 ip=$3 peer=$4 out=$TMP/$1-status.out
        ip netns exec "$ns" curl http://127.0.0.1:9090/status >"$out" 2>"$TMP/$n-status-curl.log" || true
        note "$n /status: $(cat "$out")"
        check_eq "$n: /status status" "$(json "$out" 'j["status"]')" success
        check_eq "$n: /status state" "$(json "$out" 'j["state"]')" Connected
        check_eq "$n: /status keys" "$(json "$out" 'sorted(j.keys())')" "['details', 'state', 'status']"
        check_eq "$n: /status details keys" "$(json "$out" 'sorted(j["details"].keys())')" \
                "['connected', 'local_ip', 'peer_address', 'state', 'tap_device']"
        check_eq "$n: details.state" "$(json "$out" 'j["details"]["state"]')" connected
        check_eq "$n: details.connected is true" "$(json "$out" 'j["details"]["connected"] is True')" True
        check_eq "$n: details.tap_device" "$(json "$out" 'j["details"]["tap_device"]')" tap0
        check_eq "$n: details.local_ip" "$(json "$out" 'j["details"]["local_ip"]')" "$ip"
        check_eq "$n: details.peer_address" "$(json "$out" 'j["details"]["peer_address"]')" "$peer"
}
check_status a "$NS_A" 10.0.0.1/24 "$UNDER_B:9001"
# B never had a peer.address: it names the peer it learnt from the handshake.
check_status b "$NS_B" 10.0.0.2/24 "$UNDER_A:9001"

# /health on both.
for n in a b; do
        ns=$NS_A
        [[ $n == b ]] && ns=$NS_B
        ip netns exec "$ns" curl http://127.0.0.1:9090/health >"$TMP/$n-health.out" 2>/dev/null || true
        check_eq "$n: /health" "$(cat "$TMP/$n-health.out")" '{"status":"success","message":"healthy"}'
done

# ---- disconnect ------------------------------------------------------------------------------------
ip netns exec "$NS_A" curl -X POST http://127.0.0.1:9090/disconnect >"$TMP/a-disconnect.out" 2>/dev/null || true
note "a /disconnect: $(cat "$TMP/a-disconnect.out")"
check_eq "a: /disconnect status" "$(json "$TMP/a-disconnect.out" 'j["status"]')" success
check_eq "a: /disconnect message" "$(json "$TMP/a-disconnect.out" 'j["message"]')" "Disconnected from peer"
ip netns exec "$NS_A" curl http://127.0.0.1:9090/status >"$TMP/a-status2.out" 2>/dev/null || true
check_eq "a: state after /disconnect" "$(json "$TMP/a-status2.out" 'j["state"]')" Disconnected
check_eq "a: details.connected after /disconnect" \
        "$(json "$TMP/a-status2.out" 'j["details"]["connected"] is False')" True
check_not "no ping a->b after /disconnect" ping_ok "$NS_A" 10.0.0.2
ip netns exec "$NS_A" curl -s -w ' %{http_code}' -X POST http://127.0.0.1:9090/disconnect >"$TMP/a-disconnect2.out" 2>/dev/null || true
check_has "a: a second /disconnect is 409 (not connected)" "$(cat "$TMP/a-disconnect2.out")" '"status":"error"'
check_has "a: ... with code 409" "$(cat "$TMP/a-disconnect2.out")" ' 409'
ip netns exec "$NS_A" curl http://127.0.0.1:9090/health >"$TMP/a-health2.out" 2>/dev/null || true
check_eq "a: /health after /disconnect" "$(cat "$TMP/a-health2.out")" '{"status":"success","message":"healthy"}'

# ---- clean shutdown on SIGINT ----------------------------------------------------------------------
for n in a b; do
        ns=$NS_A
        [[ $n == b ]] && ns=$NS_B
        pid=${DAEMON_PID[$n]}
        check "$n: exits on SIGINT" stop_daemon $n INT 10
        check_eq "$n: exit status 0" "$EXIT_CODE" 0
        check "$n: tap0 removed" link_gone "$ns" tap0
        check "$n: process gone" has_exited "$pid"
        check_not "$n: nothing listens on 127.0.0.1:9090" ip netns exec "$ns" curl -s -o /dev/null --max-time 2 http://127.0.0.1:9090/health
done
check "a: shut down on SIGINT" log_has a "received SIGINT, shutting down"

summary
