#!/bin/bash
# SPDX-License-Identifier: MIT
#
# Roaming: a's underlay address changes the way a DHCP renewal or a move between networks
# changes it (the old address is deleted, then the new one added), in an IPv4 and in an IPv6
# underlay. Within 2 s of the change, with nobody sending anything through the tunnel:
#  - b's path to a moves to the new address (a tells b by itself: the peer follows the source of
#    the last authenticated packet, and a sends one when its addresses change);
#  - pings pass both ways, b's first (b's replies must reach a at the new address).
# Nothing else may send a frame through the tunnel by chance and hide a daemon that stays
# silent: the TAPs have static neighbour entries (no ARP) and no IPv6 (no router solicitations,
# no MLD reports). While a has no
# address (and so no route) to reach b from, a frame sent through the tunnel makes a's daemon
# log the failed send, naming the peer. Last, a's socket bound to its one address does not roam,
# but a says when that address goes and comes back.
#
#   sm$$-a: smt0 10.0.0.1/24, veth0 10.99.21.1 -> .11 -> .21   (fd99:21::1 -> ::11 -> ::21 -> ::31)
#   sm$$-b: smt0 10.0.0.2/24, veth0 10.99.21.2                 (fd99:21::2)

# shellcheck disable=SC2317,SC2016
set -euo pipefail
# shellcheck source=tests/netns/lib.sh
source "$(dirname "$(readlink -f "$0")")/lib.sh"

netns_init 21
readonly BOUND_S=2 # seconds from the address change until traffic passes both ways

# static_neighbours: each TAP knows the other's MAC address for good.
static_neighbours() {
        local mac_a mac_b
        mac_a=$(mac_of "$NS_A" "$TAP")
        mac_b=$(mac_of "$NS_B" "$TAP")
        ip -n "$NS_A" neigh replace "$TUN4_B" lladdr "$mac_b" dev "$TAP" nud permanent
        ip -n "$NS_B" neigh replace "$TUN4_A" lladdr "$mac_a" dev "$TAP" nud permanent
}

# first_reply NS ADDR SECONDS: one echo request every 0.1 s until the first reply, for at most
# SECONDS (a late reply still counts); prints when that reply arrived (ms since the epoch, the
# clock of now_ms). False when none did.
first_reply() {
        local out
        out=$(ip netns exec "$1" ping -D -n -c 1 -i 0.1 -w "$3" "$2" 2>/dev/null) || return 1
        sed -n 's/^\[\([0-9]*\)\.\([0-9]\{3\}\)[0-9]*\] [0-9]* bytes from .*/\1\2/p' <<<"$out" |
                head -n 1 | grep .
}

# elapsed T0 [T1]: seconds from T0 to T1 (ms; T1 now by default), as 1.234
elapsed() {
        local ms=$((${2:-$(now_ms)} - $1))
        printf '%d.%03d' $((ms / 1000)) $((ms % 1000))
}

# roam LABEL FAMILY OLD NEW PREFIX PEER_LOG_FORM [dad]: move a from OLD to NEW on veth0 and
# check the recovery. PEER_LOG_FORM is how b's log writes a's new endpoint. With "dad", a new
# IPv6 address goes through duplicate address detection: it cannot be a source for up to 2 s
# (a random delay of up to rtr_solicit_delay, then retrans_time), during which a reaches b
# from its link-local address; b's path moves to the new address once it is usable.
roam() {
        local label=$1 family=$2 old=$3 new=$4 plen=$5 form=$6 dad=${7:-} t0 took
        local nodad=() path_s=$BOUND_S
        [[ $family == 6 && -z $dad ]] && nodad=(nodad)
        [[ -n $dad ]] && path_s=$((BOUND_S + 2))

        # b must have a's old address as its endpoint now: otherwise there is nothing to prove.
        check "$label: b's path is a's old address $old" log_has b "path to peer: direct via $(
                [[ $family == 6 ]] && echo "[$old]:$PORT" || echo "$old:$PORT")"

        ip -n "$NS_A" addr del "$old/$plen" dev veth0
        # a frame with no address to send from: counted and logged, naming the peer.
        ping_ok "$NS_A" "$TUN4_B" || true
        ip -n "$NS_A" addr add "$new/$plen" dev veth0 "${nodad[@]}"
        t0=$(now_ms)

        if [[ -n $dad ]]; then
                : # b's path goes to the link-local address first; checked last
        elif wait_log b "path to peer: direct via $form" "$path_s"; then
                pass "$label: b's path moves to $form within $path_s s, with no traffic (took $(elapsed "$t0") s)"
        else
                fail "$label: b's path moves to $form within $path_s s, with no traffic"
        fi
        # b first: its ping only gets through if b already sends to the new address.
        local t_ba="" t_ab=""
        if t_ba=$(first_reply "$NS_B" "$TUN4_A" "$BOUND_S") &&
                t_ab=$(first_reply "$NS_A" "$TUN4_B" "$BOUND_S") && ((t_ab - t0 <= BOUND_S * 1000)); then
                took=$(elapsed "$t0" "$t_ab")
                pass "$label: ping b->a and a->b within $BOUND_S s of the change (took $took s)"
                echo "# recovery ($label): $took s"
        else
                fail "$label: ping b->a and a->b within $BOUND_S s of the change" \
                        "first replies: b->a ${t_ba:-none}, a->b ${t_ab:-none}, change at $t0"
        fi
        if [[ -n $dad ]]; then
                if wait_log b "path to peer: direct via $form" "$path_s"; then
                        pass "$label: b's path moves to $form once DAD is over, within $path_s s (took $(elapsed "$t0") s)"
                else
                        fail "$label: b's path moves to $form once DAD is over, within $path_s s"
                fi
        fi
        check "$label: 5 of 5 pings b->a answered" ping_all "$NS_B" "$TUN4_A" 5
        check "$label: 5 of 5 pings a->b answered" ping_all "$NS_A" "$TUN4_B" 5
}

# run_case LABEL FAMILY A B PLEN FORM_OF_B: a tunnel over FAMILY, a roams twice.
run_case() {
        local label=$1 family=$2 under_a=$3 under_b=$4 plen=$5 peer=$6 new1=$7 new2=$8
        local form1=$9 form2=${10} new3=${11:-} form3=${12:-}
        write_config "$TMP/a.yaml" ip4=$TUN4_A/24 peer="$peer" key="$KEY"
        write_config "$TMP/b.yaml" ip4=$TUN4_B/24 peer="" key="$KEY"
        start_daemon b "$NS_B" "$TMP/b.yaml"
        check "$label: b is waiting" wait_log b "waiting for the peer" 10
        start_daemon a "$NS_A" "$TMP/a.yaml"
        check "$label: handshake" wait_log a "handshake complete with peer" 15
        static_neighbours
        check "$label: ping a->b" wait_ping 10 "$NS_A" "$TUN4_B"
        check "$label: ping b->a" wait_ping 10 "$NS_B" "$TUN4_A"

        roam "$label, first move" "$family" "$under_a" "$new1" "$plen" "$form1"
        check "$label: a logged the send that had no address to leave from, naming the peer" \
                log_has a "cannot send to peer $(
                        [[ $family == 6 ]] && echo "[$under_b]:$PORT" || echo "$under_b:$PORT")"
        roam "$label, second move" "$family" "$new1" "$new2" "$plen" "$form2"
        [[ $family == 4 ]] ||
                roam "$label, third move, with DAD" "$family" "$new2" "$new3" "$plen" "$form3" dad

        check "$label: a still running" alive a
        check "$label: b still running" alive b
        check "$label: a stops cleanly" stop_daemon a TERM 10
        check "$label: b stops cleanly" stop_daemon b TERM 10
}

KEY=$(random_hex_key)

# ---- IPv4 underlay ----------------------------------------------------------------------------
setup_pair
# The TAPs the daemons make from now on have no IPv6 (the veths keep theirs).
for ns in "$NS_A" "$NS_B"; do
        ip netns exec "$ns" sysctl -qw net.ipv6.conf.default.disable_ipv6=1
done
run_case "IPv4" 4 "$UNDER_A" "$UNDER_B" 24 "$UNDER_B:$PORT" 10.99.21.11 10.99.21.21 \
        "10.99.21.11:$PORT" "10.99.21.21:$PORT"

# ---- a's socket bound to its one address: no roaming, but the daemon says why -----------------
# (write_config's listen= binds the tunnel's socket.) The address goes away and comes back.
BOUND_A=10.99.21.21
write_config "$TMP/a.yaml" ip4=$TUN4_A/24 peer="$UNDER_B:$PORT" key="$KEY" listen="$BOUND_A:$PORT"
start_daemon b "$NS_B" "$TMP/b.yaml"
check "bound: b is waiting" wait_log b "waiting for the peer" 10
start_daemon a "$NS_A" "$TMP/a.yaml"
check "bound: handshake" wait_log a "handshake complete with peer" 15
static_neighbours
check "bound: ping a->b" wait_ping 10 "$NS_A" "$TUN4_B"
ip -n "$NS_A" addr del "$BOUND_A/24" dev veth0
check "bound: a says its bound address is gone" \
        wait_log a "$BOUND_A, the address the tunnel's socket is bound to, was removed" "$BOUND_S"
ip -n "$NS_A" addr add "$BOUND_A/24" dev veth0
t0=$(now_ms)
check "bound: a says it is back" \
        wait_log a "$BOUND_A, the address the tunnel's socket is bound to, is back" "$BOUND_S"
if first_reply "$NS_B" "$TUN4_A" "$BOUND_S" >/dev/null && t1=$(first_reply "$NS_A" "$TUN4_B" "$BOUND_S"); then
        pass "bound: ping b->a and a->b once the address is back (took $(elapsed "$t0" "$t1") s)"
else
        fail "bound: ping b->a and a->b once the address is back"
fi
check "bound: a stops cleanly" stop_daemon a TERM 10
check "bound: b stops cleanly" stop_daemon b TERM 10

# ---- IPv6 underlay (no IPv4 address on the veth) ----------------------------------------------
# The first two new addresses skip duplicate address detection, as the IPv4 ones have none: the
# bound is the daemon's, not DAD's (up to 2 s of its own before an address may be used). The
# third one goes through it.
V6_A=fd99:21::1 V6_B=fd99:21::2
ip -n "$NS_A" -4 addr flush dev veth0
ip -n "$NS_B" -4 addr flush dev veth0
ip -n "$NS_A" addr add "$V6_A/64" dev veth0 nodad
ip -n "$NS_B" addr add "$V6_B/64" dev veth0 nodad
check "IPv6 underlay answers" wait_until 10 ping_ok "$NS_A" "$V6_B"
run_case "IPv6" 6 "$V6_A" "$V6_B" 64 "[$V6_B]:$PORT" fd99:21::11 fd99:21::21 \
        "[fd99:21::11]:$PORT" "[fd99:21::21]:$PORT" fd99:21::31 "[fd99:21::31]:$PORT"

summary
