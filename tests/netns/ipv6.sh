#!/bin/bash
# SPDX-License-Identifier: MIT
#
# An IPv6 underlay: the daemons talk UDP over IPv6 only (the veth carries no IPv4 address), a
# listens on the wildcard (dual-stack [::]) and dials b at "[fd99:S::2]:9001", b listens on its
# IPv6 address. The tunnel must come up, carry pings both ways, and the wire must show only
# IPv6 UDP, with b's endpoint for a reported as an IPv6 address.
#
#   sm$$-a: smt0 10.0.0.1/24, veth0 fd99:S::1/64
#   sm$$-b: smt0 10.0.0.2/24, veth0 fd99:S::2/64

# shellcheck disable=SC2317,SC2016
set -euo pipefail
# shellcheck source=tests/netns/lib.sh
source "$(dirname "$(readlink -f "$0")")/lib.sh"

netns_init 16
need tcpdump tcpdump
V6_A=fd99:16::1
V6_B=fd99:16::2

add_ns "$NS_A"
add_ns "$NS_B"
ip -n "$NS_A" link add veth0 type veth peer name veth0 netns "$NS_B"
ip -n "$NS_A" addr add "$V6_A/64" dev veth0 nodad
ip -n "$NS_B" addr add "$V6_B/64" dev veth0 nodad
ip -n "$NS_A" link set veth0 up
ip -n "$NS_B" link set veth0 up
check "IPv6 underlay answers" wait_until 10 na ping -6 -c 1 -W 1 -q "$V6_B"
check_not "the underlay has no IPv4 address" sh -c "ip -n $NS_A -4 addr show dev veth0 | grep -q inet"

KEY=$(random_hex_key)
write_config "$TMP/a.yaml" ip4=10.0.0.1/24 key="$KEY" peer="[$V6_B]:$PORT" listen="[::]:$PORT"
write_config "$TMP/b.yaml" ip4=10.0.0.2/24 key="$KEY" peer="" listen="[$V6_B]:$PORT"

start_daemon b "$NS_B" "$TMP/b.yaml"
check "b is up" wait_log b "waiting for the peer" 10
nb ss -Hnul >"$TMP/b-sockets"
check "b listens on its IPv6 address only" grep -qF "[$V6_B]:$PORT" "$TMP/b-sockets"

env --default-signal=INT ip netns exec "$NS_B" timeout 30 tcpdump --immediate-mode -n -U -i veth0 -w "$TMP/wire.pcap" udp port "$PORT" \
        2>"$TMP/tcpdump.log" &
CAPTURE=$!
OWN_PIDS+=("$CAPTURE")
check "capture running" wait_until 10 grep -q "listening on" "$TMP/tcpdump.log"

start_daemon a "$NS_A" "$TMP/a.yaml"
check "a: handshake complete with b's IPv6 address" wait_log a "handshake complete with peer [$V6_B]:$PORT" 15
check "b: handshake complete with a's IPv6 address" wait_log b "handshake complete with peer [$V6_A]:$PORT" 15
check "ping a->b through the tunnel" wait_until 10 na ping -c 1 -W 1 -q 10.0.0.2
check "ping b->a through the tunnel" wait_until 10 nb ping -c 1 -W 1 -q 10.0.0.1
check "5 of 5 pings answered" na ping -c 5 -i 0.2 -W 1 -q 10.0.0.2

kill -INT "$CAPTURE" 2>/dev/null || true
wait "$CAPTURE" 2>/dev/null || true
tcpdump -n -r "$TMP/wire.pcap" 2>/dev/null >"$TMP/wire.txt" || true
check "the wire carried the tunnel (IPv6 UDP packets captured)" \
        test "$(grep -c "IP6 fd99:16::" "$TMP/wire.txt" || true)" -ge 10
check "the wire carried no IPv4" test "$(grep -c "^[0-9:.]* IP " "$TMP/wire.txt" || true)" -eq 0

check "a stops cleanly on SIGTERM" stop_daemon a TERM 10
check "b stops cleanly on SIGTERM" stop_daemon b TERM 10
summary
