#!/bin/bash
# SPDX-License-Identifier: MIT
#
# Roaming through the relay: both sites behind symmetric NATs, so the tunnel runs through
# shadowmesh-relay. a's host then gets another address on its LAN, twice (the old one is
# deleted, the new one and the default route added, as a DHCP client does). The relay forwards to a by the
# address a registered from, so a must register again from the new address at once (its
# periodic registration would take up to RELAY_REGISTER_INTERVAL, 20 s). Within 2 s of the new
# address, b's pings reach a and a's reach b, still through the relay.
#
# Nothing else may send a frame through the tunnel by chance and hide a daemon that stays
# silent: the TAPs have static neighbour entries (no ARP) and no IPv6.
set -euo pipefail
# shellcheck source=tests/nat/lib.sh
source "$(dirname "$(readlink -f "$0")")/lib.sh"

nat_init relay
readonly BOUND_S=2

# first_reply NS ADDR SECONDS: one echo request every 0.1 s until the first reply, for at most
# SECONDS (a late reply still counts); prints when that reply arrived (ms since the epoch, the
# clock of now_ms). False when none did.
first_reply() {
        local out
        out=$(ip netns exec "$1" ping -D -n -c 1 -i 0.1 -w "$3" "$2" 2>/dev/null) || return 1
        sed -n 's/^\[\([0-9]*\)\.\([0-9]\{3\}\)[0-9]*\] [0-9]* bytes from .*/\1\2/p' <<<"$out" |
                head -n 1 | grep .
}

# mac_of NS DEV: DEV's Ethernet address.
mac_of() { ip -n "$1" -o link show dev "$2" | sed -n 's/.*link\/ether \([0-9a-f:]*\).*/\1/p'; }

KEY=$(random_hex_key)
topology_new c9 symmetric symmetric
for ns in "$NS_A" "$NS_B"; do
        in_ns "$ns" sysctl -qw net.ipv6.conf.default.disable_ipv6=1
done
start_servers
start_pair "$KEY"
time_to_ping c9 40
check_introduced
check_path a relay 10
check_path b relay 5
ip -n "$NS_A" neigh replace "$TUN_B" lladdr "$(mac_of "$NS_B" "$TAP")" dev "$TAP" nud permanent
ip -n "$NS_B" neigh replace "$TUN_A" lladdr "$(mac_of "$NS_A" "$TAP")" dev "$TAP" nud permanent
check_pings c9

# ---- a moves to another address on its LAN, twice -------------------------------------------
# Twice, a few seconds apart: a's periodic registration (every 20 s) could fall into one 2 s
# window by chance, never into both.
# move_a OLD NEW
move_a() {
        local old=$1 new=$2 t0 t1 ms took
        ip -n "$NS_A" addr del "$old/24" dev eth0
        ip -n "$NS_A" addr add "$new/24" dev eth0
        ip -n "$NS_A" route add default via 10.0.1.1
        t0=$(now_ms)
        # b first: its pings reach a only once the relay knows a's new address.
        if first_reply "$NS_B" "$TUN_A" "$BOUND_S" >/dev/null &&
                t1=$(first_reply "$NS_A" "$TUN_B" "$BOUND_S") && ((t1 - t0 <= BOUND_S * 1000)); then
                ms=$((t1 - t0))
                took=$(printf '%d.%03d' $((ms / 1000)) $((ms % 1000)))
                pass "c9: $old -> $new: ping b->a and a->b within $BOUND_S s (took $took s)"
                note "recovery (roaming through the relay, $old -> $new): $took s"
        else
                fail "c9: $old -> $new: ping b->a and a->b within $BOUND_S s (took $(($(now_ms) - t0)) ms)"
        fi
        check "c9: $old -> $new: a logged that its source address went away" \
                log_has a "our source address $old for the peer was removed"
        check_pings "c9, after $old -> $new"
}
move_a "$HOST_A" 10.0.1.12
move_a 10.0.1.12 10.0.1.22
check_path a relay 5
check_path b relay 5
check "a still running" alive a
check "b still running" alive b
summary
