#!/bin/bash
# SPDX-License-Identifier: MIT
#
# The NAT in front of a changes its mapping mid-session, the way a home router does when it
# reboots or its connection tracking is flushed: the router's masquerade moves to another port
# range and its conntrack table is flushed, so a's next packet leaves from a new public port.
# b follows the source of the first authenticated packet from there (WireGuard's roaming rule):
# within 2 s of the change, a ping a->b passes, b's path names the new public port, and b's own
# pings reach a through the new mapping.
#
#   sm$$-a (behind the NAT)       sm$$-c (NAT router)                     sm$$-b (public)
#   eth0 10.0.22.2/24 ---- lan0 10.0.22.1/24  wan0 198.18.22.1/24 ---- eth0 198.18.22.2/24
#   smt0 10.0.0.1/24         masquerade to :20000-20099, then :30000-30099     smt0 10.0.0.2/24
#
# b has no route to 10.0.22.0/24: everything between a and b goes through the NAT.

# shellcheck disable=SC2317,SC2016
set -euo pipefail
# shellcheck source=tests/netns/lib.sh
source "$(dirname "$(readlink -f "$0")")/lib.sh"

netns_init 22
need nft nftables
need conntrack conntrack
readonly BOUND_S=2
readonly HOST_A=10.0.22.2 LAN_R=10.0.22.1 WAN_R=198.18.22.1 HOST_B=198.18.22.2

add_ns "$NS_A"
add_ns "$NS_B"
add_ns "$NS_C"
ip -n "$NS_A" link add eth0 type veth peer name lan0 netns "$NS_C"
ip -n "$NS_B" link add eth0 type veth peer name wan0 netns "$NS_C"
ip -n "$NS_A" addr add "$HOST_A/24" dev eth0
ip -n "$NS_C" addr add "$LAN_R/24" dev lan0
ip -n "$NS_C" addr add "$WAN_R/24" dev wan0
ip -n "$NS_B" addr add "$HOST_B/24" dev eth0
for l in "$NS_A eth0" "$NS_C lan0" "$NS_C wan0" "$NS_B eth0"; do
        read -r ns dev <<<"$l"
        ip -n "$ns" link set "$dev" up
done
ip -n "$NS_A" route add default via "$LAN_R"
nsc sysctl -qw net.ipv4.ip_forward=1
# The TAPs the daemons make have no IPv6: no router solicitation or MLD report goes through the
# tunnel by chance (with static ARP entries below, only what the test sends does).
for ns in "$NS_A" "$NS_B"; do
        ip netns exec "$ns" sysctl -qw net.ipv6.conf.default.disable_ipv6=1
done

# nat_ports RANGE: the router masquerades a's traffic to ports RANGE of its wan address, and
# drops anything unsolicited from the wan side.
nat_ports() {
        nsc nft -f - <<EOF
table ip nat
delete table ip nat
table ip nat {
        chain postrouting {
                type nat hook postrouting priority srcnat; policy accept;
                oifname "wan0" meta l4proto udp masquerade to :$1
                oifname "wan0" masquerade
        }
}
table inet filter
delete table inet filter
table inet filter {
        chain input {
                type filter hook input priority filter; policy accept;
                iifname "wan0" ct state established,related accept
                iifname "wan0" drop
        }
}
EOF
}
nat_ports 20000-20099
check "a reaches b through the NAT" wait_until 10 ping_ok "$NS_A" "$HOST_B"
check_not "b has no way to a except through the NAT" ping_ok "$NS_B" "$HOST_A"

KEY=$(random_hex_key)
write_config "$TMP/a.yaml" ip4=$TUN4_A/24 peer="$HOST_B:$PORT" key="$KEY"
write_config "$TMP/b.yaml" ip4=$TUN4_B/24 peer="" key="$KEY"
start_daemon b "$NS_B" "$TMP/b.yaml"
check "b is waiting" wait_log b "waiting for the peer" 10
start_daemon a "$NS_A" "$TMP/a.yaml"
check "handshake through the NAT" wait_log a "handshake complete with peer $HOST_B:$PORT" 15
ip -n "$NS_A" neigh replace "$TUN4_B" lladdr "$(mac_of "$NS_B" "$TAP")" dev "$TAP" nud permanent
ip -n "$NS_B" neigh replace "$TUN4_A" lladdr "$(mac_of "$NS_A" "$TAP")" dev "$TAP" nud permanent
check "ping a->b" wait_ping 10 "$NS_A" "$TUN4_B"
check "ping b->a" wait_ping 10 "$NS_B" "$TUN4_A"

# first_reply NS ADDR SECONDS: one echo request every 0.1 s until the first reply, for at most
# SECONDS (a late reply still counts); prints when that reply arrived (ms since the epoch, the
# clock of now_ms). False when none did.
first_reply() {
        local out
        out=$(ip netns exec "$1" ping -D -n -c 1 -i 0.1 -w "$3" "$2" 2>/dev/null) || return 1
        sed -n 's/^\[\([0-9]*\)\.\([0-9]\{3\}\)[0-9]*\] [0-9]* bytes from .*/\1\2/p' <<<"$out" |
                head -n 1 | grep .
}

# public_port: the port of the router's wan address in b's last path line for a.
public_port() {
        current_log b | sed -n "s/.*path to peer: direct via ${WAN_R//./\\.}:\([0-9]*\).*/\1/p" |
                tail -n 1
}
old_port=$(public_port)
check "b sees a at a port of the first range (got '$old_port')" \
        test -n "$old_port" -a "${old_port:-0}" -ge 20000 -a "${old_port:-0}" -le 20099

# ---- the mapping changes ----------------------------------------------------------------------
nat_ports 30000-30099
nsc conntrack -F >/dev/null 2>&1
check "the router's connection tracking is empty" \
        test "$(nsc conntrack -L 2>/dev/null | wc -l)" -eq 0
t0=$(now_ms)
# a sends first: only a's packets can open the new mapping.
if first_reply "$NS_A" "$TUN4_B" "$BOUND_S" >/dev/null &&
        t1=$(first_reply "$NS_B" "$TUN4_A" "$BOUND_S") && ((t1 - t0 <= BOUND_S * 1000)); then
        ms=$((t1 - t0))
        took=$(printf '%d.%03d' $((ms / 1000)) $((ms % 1000)))
        pass "ping a->b and b->a within $BOUND_S s of the new mapping (took $took s)"
        echo "# recovery (NAT rebinding): $took s"
else
        fail "ping a->b and b->a within $BOUND_S s of the new mapping (took $(($(now_ms) - t0)) ms)"
fi
new_port=$(public_port)
check "b's path moved to a port of the new range (got '$new_port')" \
        test -n "$new_port" -a "${new_port:-0}" -ge 30000 -a "${new_port:-0}" -le 30099
check "5 of 5 pings b->a answered" ping_all "$NS_B" "$TUN4_A" 5
check "5 of 5 pings a->b answered" ping_all "$NS_A" "$TUN4_B" 5
check "a still running" alive a
check "b still running" alive b
check "a stops cleanly" stop_daemon a TERM 10
check "b stops cleanly" stop_daemon b TERM 10
summary
