#!/bin/bash
# SPDX-License-Identifier: MIT
#
# A multi-homed responder listening on every address must answer from the address it was
# reached on (IP_PKTINFO / IPV6_PKTINFO), not from whichever address routing prefers:
# otherwise the initiator sees replies from a stranger, and behind a NAT they would not get
# back at all. b's veth has two IPv4 and two IPv6 addresses; a dials the second of each.
#
#   sm$$-a: smt0 10.0.0.1/24, veth0 10.99.18.1, fd99:18::1
#   sm$$-b: smt0 10.0.0.2/24, veth0 10.99.18.2 + 10.99.18.3, fd99:18::2 + fd99:18::3

# shellcheck disable=SC2317,SC2016
set -euo pipefail
# shellcheck source=tests/netns/lib.sh
source "$(dirname "$(readlink -f "$0")")/lib.sh"

netns_init 18
setup_pair
ip -n "$NS_B" addr add 10.99.18.3/24 dev veth0
ip -n "$NS_A" addr add fd99:18::1/64 dev veth0 nodad
ip -n "$NS_B" addr add fd99:18::2/64 dev veth0 nodad
ip -n "$NS_B" addr add fd99:18::3/64 dev veth0 nodad
check "b's second IPv4 address answers" wait_until 10 na ping -c 1 -W 1 -q 10.99.18.3
check "b's second IPv6 address answers" wait_until 10 na ping -6 -c 1 -W 1 -q fd99:18::3

KEY=$(random_hex_key)
write_config "$TMP/b.yaml" ip4=10.0.0.2/24 key="$KEY" peer=""
start_daemon b "$NS_B" "$TMP/b.yaml"
check "b is up (listening on every address)" wait_log b "waiting for the peer" 10

for target in 10.99.18.3 "[fd99:18::3]"; do
        write_config "$TMP/a.yaml" ip4=10.0.0.1/24 key="$KEY" peer="$target:$PORT"
        start_daemon a "$NS_A" "$TMP/a.yaml"
        check "a dialled $target: the handshake completes with $target, not another address" \
                wait_log a "handshake complete with peer $target:$PORT" 10
        check "ping a->b through the tunnel (via $target)" \
                wait_until 10 na ping -c 1 -W 1 -q 10.0.0.2
        check "b's replies keep coming from $target (data too)" \
                na ping -c 3 -i 0.2 -W 1 -q 10.0.0.2
        request_stats a
        check "a dropped nothing from an unexpected address" test "$(get_stat a rx_unknown_index)" = 0
        check "a stops cleanly" stop_daemon a TERM 10
done
check "b stops cleanly" stop_daemon b TERM 10
summary
