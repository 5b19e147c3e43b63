#!/bin/bash
# SPDX-License-Identifier: MIT
#
# Reload (SIGHUP, what `systemctl reload shadowmesh@NAME` sends) while the tunnel runs: the log
# level of the edited file applies and the tunnel is not dropped (same process, same TAP, no new
# handshake, pings answered); a change that needs a restart (network.tap_device) is refused
# with a message naming it, after the log level was applied, and the tunnel runs on; a file
# that no longer loads changes nothing.
#
#   sm$$-a: smt0 10.0.0.1/24, veth0 10.99.42.1 (connects to b)    sm$$-b: smt0 10.0.0.2/24, waits

# Functions here are called through check/wait_until, which shellcheck cannot see.
# shellcheck disable=SC2317
set -euo pipefail
# shellcheck source=tests/netns/lib.sh
source "$(dirname "$(dirname "$(readlink -f "$0")")")/netns/lib.sh"

netns_init 42
setup_pair
KEY=$(random_hex_key)

# sm_config FILE LOG_LEVEL TAP ADDR PEER
sm_config() {
        cat >"$1" <<EOF
daemon:
  log_level: $2
network:
  tap_device: $3
  local_ip: $4
  listen_port: $PORT
encryption:
  key: "$KEY"
peer:
  address: "$5"
nat:
  enabled: false
EOF
        chmod 600 "$1"
}
sm_config "$TMP/a.yaml" info "$TAP" "$TUN4_A/24" "$UNDER_B:$PORT"
sm_config "$TMP/b.yaml" info "$TAP" "$TUN4_B/24" ""

start_daemon b "$NS_B" "$TMP/b.yaml"
check "b: listening" wait_log b "listening on udp port $PORT" 10
start_daemon a "$NS_A" "$TMP/a.yaml"
check "handshake" wait_log a "handshake complete" 15
check "ping a->b" wait_ping 10 "$NS_A" "$TUN4_B"
ifindex() { ip -n "$NS_A" -o link show dev "$TAP" 2>/dev/null | cut -d: -f1; }
IFINDEX=$(ifindex)
HANDSHAKES=$(log_count a "handshake complete")

hup() { kill_own HUP "${DAEMON_PID[a]}"; }

# ---- the log level applies, nothing is dropped --------------------------------------------------
check_not "at info, no debug line yet" log_has a "reload: the log level in force is"
sm_config "$TMP/a.yaml" debug "$TAP" "$TUN4_A/24" "$UNDER_B:$PORT"
hup
check "reload: log level debug" wait_log a "reload: log level debug" 10
check "reload: reloaded" wait_log a "reloaded $TMP/a.yaml" 10
check "the new level is in force (a debug line)" \
        wait_log a "reload: the log level in force is debug" 10
check "the daemon still runs" alive a
check_eq "the same TAP (ifindex)" "$(ifindex)" "$IFINDEX"
check "ping a->b after the reload" ping_all "$NS_A" "$TUN4_B" 5
check_eq "no new handshake" "$(log_count a "handshake complete")" "$HANDSHAKES"

# ---- what reload applies live: STUN server, relay, control group; the tunnel stays -------------
sm_config "$TMP/a.yaml" debug "$TAP" "$TUN4_A/24" "$UNDER_B:$PORT"
sed -i 's/^  enabled: false$/  enabled: true\n  stun_server: "127.0.0.1:3478"/' "$TMP/a.yaml"
printf 'relay:\n  server: "%s:9545"\ndaemon:\n  control_group: root\n' "$UNDER_B" >>"$TMP/a.yaml"
sed -i '1,2{/^daemon:$/d;/^  log_level: debug$/d}' "$TMP/a.yaml"
printf '  log_level: debug\n' >>"$TMP/a.yaml"
hup
check "reload: NAT discovery with the new STUN server" \
        wait_log a "reload: NAT discovery with 127.0.0.1:3478" 10
check "reload: the new relay" wait_log a "reload: relay $UNDER_B:9545" 10
check "reload: the new control group" wait_log a "reload: control group root" 10
check "reloaded, naming what was applied" \
        wait_log a "reloaded $TMP/a.yaml (relay applied) (STUN server applied) (control group applied)" 10
check "the daemon still runs" alive a
check_eq "the same TAP (ifindex)" "$(ifindex)" "$IFINDEX"
check "ping a->b after the live reload" ping_all "$NS_A" "$TUN4_B" 5
check_eq "no new handshake" "$(log_count a "handshake complete")" "$HANDSHAKES"

# ---- a change that needs a restart: refused, the log level still applies -------------------------
sm_config "$TMP/a.yaml" info smt9 "$TUN4_A/24" "$UNDER_B:$PORT"
hup
check "reload: log level info, first" wait_log a "reload: log level info" 10
check "reload refused, naming network.tap_device" \
        wait_log a "reload refused: network.tap_device changed in $TMP/a.yaml, which needs a restart (systemctl restart shadowmesh@a)" 10
check "the daemon still runs" alive a
check "no device smt9 was made" link_gone "$NS_A" smt9
check_eq "the same TAP (ifindex)" "$(ifindex)" "$IFINDEX"
check "ping a->b after the refused reload" ping_all "$NS_A" "$TUN4_B" 5
check_eq "no new handshake" "$(log_count a "handshake complete")" "$HANDSHAKES"

# ---- the receive workers need a restart too (the data path's threads start with the TAP) --------
sm_config "$TMP/a.yaml" info "$TAP" "$TUN4_A/24" "$UNDER_B:$PORT"
sed -i '/^network:/a\  rx_workers: 2' "$TMP/a.yaml"
hup
check "reload refused, naming network.rx_workers" \
        wait_log a "reload refused: network.rx_workers changed in $TMP/a.yaml, which needs a restart" 10
check "the daemon still runs" alive a
check "ping a->b after the refused reload" ping_all "$NS_A" "$TUN4_B" 5

# ---- a file that does not load changes nothing ---------------------------------------------------
sm_config "$TMP/a.yaml" debug "$TAP" "$TUN4_A/24" "$UNDER_B:$PORT"
echo "network: [" >>"$TMP/a.yaml"
hup
check "reload failed, the running configuration stays" \
        wait_log a "reload failed, the running configuration stays: " 10
check_eq "... not even the log level (still one 'log level debug' line)" \
        "$(log_count a "reload: log level debug")" 1
check "ping a->b after the failed reload" ping_all "$NS_A" "$TUN4_B" 5
check "the daemon still runs" alive a

summary
