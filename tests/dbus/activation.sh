#!/bin/bash
# SPDX-License-Identifier: MIT
#
# UDP socket activation without systemd as PID 1: systemd-socket-activate --datagram holds the
# responder's port and execs shadowmeshd (same PID, LISTEN_FDS=1) when the first datagram comes.
# The initiator's first handshake initiation is that datagram: it must be processed, so the
# handshake completes without a retry (retries come after 5 s) and with one initiation sent.
#
#   sm$$-a: initiator, veth0 10.98.31.1, smt0 10.0.0.1/24, peer.address 10.98.31.2:9001
#   sm$$-b: responder "resp" behind systemd-socket-activate on 10.98.31.2:9001, smt0 10.0.0.2/24
set -euo pipefail
source "$(dirname "$(readlink -f "$0")")/lib.sh"

dbus_init
need systemd-socket-activate systemd
need ss iproute2
setup_pair 31
start_bus

KEY=$(random_hex_key)
write_config "$TMP/a.yaml" ip4=$TUN_A/24 key="$KEY" peer="$UNDER_B:$PORT"
write_config "$TMP/b.yaml" ip4=$TUN_B/24 key="$KEY" listen="$UNDER_B:$PORT"
RESP_NAME=$(inst_name resp)

# ---- the socket, before any packet --------------------------------------------------------------
# The activator gives the program a fresh environment: the bus address must be passed with -E.
env --default-signal=INT ip netns exec "$NS_B" systemd-socket-activate --datagram \
        -l "$UNDER_B:$PORT" -E DBUS_SYSTEM_BUS_ADDRESS -- \
        "$SHADOWMESHD" --instance resp "$TMP/b.yaml" >"$TMP/resp.log" 2>&1 &
register_daemon resp $!
port_held() { [[ -n $(ip netns exec "$NS_B" ss -Huln "sport = :$PORT") ]]; }
check "systemd-socket-activate holds udp $UNDER_B:$PORT" wait_until 10 port_held
check_eq "the responder has not started yet" "$(cat "/proc/${DAEMON_PID[resp]}/comm" 2>&1)" \
        systemd-socket-
check "its bus name is not taken yet" test "$(busctl call org.freedesktop.DBus \
        /org/freedesktop/DBus org.freedesktop.DBus NameHasOwner s "$RESP_NAME")" = "b false"

# ---- the initiator's first packet starts the responder ------------------------------------------
t0=$(now_ms)
start_daemon a "$NS_A" "$TMP/a.yaml" --instance init
if wait_log a "handshake complete with peer $UNDER_B:$PORT" 3; then
        pass "the initiator completes the handshake within 3 s (a retry would take 5 s)"
else
        fail "the initiator completes the handshake within 3 s (a retry would take 5 s)"
fi
note "handshake complete $(($(now_ms) - t0)) ms after the initiator started"
check_eq "the initiator sent exactly one initiation" "$(stats_field a initiations_sent)" 1
check_eq "the initiator counts one handshake" "$(stats_field a handshakes)" 1
check_eq "the same PID now runs shadowmeshd" "$(cat "/proc/${DAEMON_PID[resp]}/comm" 2>&1)" \
        shadowmeshd
check "the responder uses the socket it was given" \
        log_has resp "using the socket passed by the service manager (udp port $PORT)"
check "the responder completes the handshake" \
        wait_log resp "handshake complete with peer $UNDER_A:$PORT" 5
check "the responder owns $RESP_NAME (bus address passed with -E)" \
        wait_until 5 name_has_owner "$RESP_NAME"
check "the responder's State is connected" wait_prop 5 resp State 's "connected"'
check "ping through the tunnel a->b" wait_ping 10 "$NS_A" $TUN_B
check "ping through the tunnel b->a" wait_ping 5 "$NS_B" $TUN_A
check_eq "still one initiation after the pings" "$(stats_field a initiations_sent)" 1

# ---- clean stop of the activated daemon ---------------------------------------------------------
kill -TERM "${DAEMON_PID[resp]}"
if wait_exit resp 10; then
        check_eq "the activated responder exits 0 on SIGTERM" "$EXIT_CODE" 0
else
        fail "the activated responder exits 0 on SIGTERM" "still running after 10 s"
fi
check "it removes its TAP" log_has resp "$TAP removed"
check "no $TAP left in the responder's namespace" link_gone "$NS_B" "$TAP"
summary
