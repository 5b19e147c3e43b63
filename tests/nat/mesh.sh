#!/bin/bash
# SPDX-License-Identifier: MIT
#
# Behind NAT, a mesh of three (issue 11, section 6): a and b behind port-restricted cone NATs
# (they can punch through to each other), c behind a symmetric NAT (masquerade fully-random:
# neither cone side can reach it directly, nor it them). All three register with one
# shadowmesh-relay and know nothing but the relay:
#   mesh.sh [shared]   one shared key, `peer: address: ""`: the relay introduces every node of
#                      the network to every other (issue 11, section 4).
#   mesh.sh identity   identity mode: each node has its own key pair and one peers: list of the
#                      three public keys, no addresses (each node ignores its own entry). Each
#                      node's REGISTER names both others (a want list, messages.h), and the
#                      relay pairs every two nodes that want each other: a node needs the relay
#                      for several pairs at once. (With one wanted peer per registration, c
#                      would be paired with nobody: a and b want each other first.)
#   m1  every node pings every other (six directions) within 30 s of starting the last daemon:
#       registration is at once, a direct handshake takes one round trip, the relay fallback
#       RELAY_FALLBACK_AFTER_MS (3 s) and, if a first introduction was missed, the next
#       re-registration RELAY_REGISTER_INTERVAL (20 s) repeats it.
#   m2  each node was introduced to both others, each under its own relay slot, and holds a
#       peer (a session) for each.
#   m3  a<->b is direct: a capture in the internet namespace during 10 full-size pings a->b
#       shows them (both ways) between the two sites' public addresses and none to or from the
#       relay.
#   m4  a<->c and b<->c go through the relay: a capture during 10 full-size pings shows them
#       reaching the relay from one site and leaving it to the other, and none directly
#       between the sites.
set -euo pipefail
source "$(dirname "$(readlink -f "$0")")/lib.sh"

readonly MESH_MODE=${1:-shared}
[[ $MESH_MODE == shared || $MESH_MODE == identity ]] ||
        { echo "usage: mesh.sh [shared|identity]" >&2; exit 64; }
nat_init relay
need tcpdump tcpdump

readonly TUN_C=10.0.0.3
KEY=$(random_hex_key)

topology_new m cone cone
add_site 3 symmetric
check "m: site c routes to the internet namespace" \
        wait_until 10 in_ns "$NS_C" ping -c 1 -W 1 -q "$STUN_IP"
note "case m: c $MODE_C (public $WAN_C, host $HOST_C)"
start_servers

if [[ $MESH_MODE == shared ]]; then
        write_config "$TMP/m-a.yaml" "$TUN_A/24" "$KEY" stun relay
        write_config "$TMP/m-b.yaml" "$TUN_B/24" "$KEY" stun relay
        write_config "$TMP/m-c.yaml" "$TUN_C/24" "$KEY" stun relay
else
        # One list of all three keys, no addresses: the relay introduces them.
        declare -A PUB=() TUN_IP=([a]=$TUN_A [b]=$TUN_B [c]=$TUN_C)
        for x in a b c; do
                (umask 077 && "$SHADOWMESHD" genkey >"$TMP/$x.key")
                PUB[$x]=$("$SHADOWMESHD" pubkey <"$TMP/$x.key")
        done
        for x in a b c; do
                write_config "$TMP/m-$x.yaml" "${TUN_IP[$x]}/24" "" stun relay
                # write_config's shared key and `peer:` give way to the identity and the list.
                sed -i -e '/^encryption:/,+1d' -e '/^peer:/,+1d' "$TMP/m-$x.yaml"
                {
                        echo "identity:"
                        echo "  private_key_file: $TMP/$x.key"
                        echo "peers:"
                        for y in a b c; do
                                echo "  - name: $y"
                                echo "    public_key: \"${PUB[$y]}\""
                        done
                } >>"$TMP/m-$x.yaml"
        done
fi
note "mode: $MESH_MODE"
start_daemon c "$NS_C" "$TMP/m-c.yaml"
check "c: up" wait_until 15 daemon_up c
start_daemon b "$NS_B" "$TMP/m-b.yaml"
check "b: up" wait_until 15 daemon_up b
start_daemon a "$NS_A" "$TMP/m-a.yaml"
check "a: up" wait_until 15 daemon_up a

# ---- m1: every node pings every other ---------------------------------------------------------
declare -A NS_OF=([a]=$NS_A [b]=$NS_B [c]=$NS_C) TUN_OF=([a]=$TUN_A [b]=$TUN_B [c]=$TUN_C)
all_ping() {
        local x y
        for x in a b c; do
                for y in a b c; do
                        [[ $x == "$y" ]] && continue
                        ping_ok "${NS_OF[$x]}" "${TUN_OF[$y]}" || return 1
                done
        done
}
t0=$(now_ms)
if wait_until 30 all_ping; then
        pass "m1: every node pings every other within 30 s"
        note "m1: last daemon started -> all six directions answered:" \
                "$(awk -v t="$(($(now_ms) - t0))" 'BEGIN { printf "%.1f", t / 1000 }') s"
else
        fail "m1: every node pings every other within 30 s"
        CASE_DEAD=1
fi
for x in a b c; do
        for y in a b c; do
                [[ $x == "$y" ]] && continue
                check "m1: ping $x->$y, 5 of 5 answered" ping_all "${NS_OF[$x]}" "${TUN_OF[$y]}" 5
        done
done

# ---- m2: introductions and peers --------------------------------------------------------------
# introduced_slots NAME: how many distinct relay slots NAME was introduced to.
introduced_slots() {
        current_log "$1" | sed -n 's/.*relay introduced peer: .*(relay slot \([0-9]*\)).*/\1/p' |
                sort -u | wc -l
}
for x in a b c; do
        check "m2: $x: registered with relay $RELAY_IP:$RELAY_PORT" \
                wait_log "$x" "registered with relay $RELAY_IP:$RELAY_PORT" 5
        check_eq "m2: $x: introduced to two nodes, each under its own relay slot" \
                "$(introduced_slots "$x")" 2
done

# ---- m3, m4: which pair uses the relay --------------------------------------------------------
# big FILTER: datagrams of >= 1000 bytes in the internet capture that match FILTER.
big() {
        tcpdump -r "$TMP/$CAP.pcap" -n "$1" 2>/dev/null |
                awk '/UDP, length/ { if ($NF + 0 >= 1000) n++ } END { print n + 0 }'
}
# capture_pings NAME FROM TO: 10 full-size pings FROM->TO under a capture of the internet.
capture_pings() {
        CAP=$1
        # Neighbour entries fresh first: an expired one holds the first echoes back and sends
        # them in a burst, which the capture may see as fewer, coalesced datagrams.
        ping_all "${NS_OF[$2]}" "${TUN_OF[$3]}" 3 || true
        check "$CAP: tcpdump listening in the internet namespace" \
                start_capture "$CAP" "$NS_INET" any udp
        check "$CAP: ping -s 1000 $2->$3, 10 of 10 answered" \
                in_ns "${NS_OF[$2]}" ping -c 10 -i 0.2 -W 2 -q -s 1000 "${TUN_OF[$3]}"
        stop_capture "$CAP" || true
}
RELAY="host $RELAY_IP and port $RELAY_PORT"

# a<->b: direct once the probes found the path (the handshake may have gone through the relay
# first; path.c upgrades within PATH_PROBE_INTERVAL).
check "m3: a: path to b direct" wait_log a "path to peer: direct via $WAN_B:$PORT" "$(secs 15)"
check "m3: b: path to a direct" wait_log b "path to peer: direct via $WAN_A:$PORT" "$(secs 15)"
capture_pings m3 a b
n_ab=$(big "src host $WAN_A and dst host $WAN_B")
n_ba=$(big "src host $WAN_B and dst host $WAN_A")
n_relay=$(big "$RELAY")
note "m3: >= 1000 B datagrams: a->b $n_ab, b->a $n_ba, to or from the relay $n_relay"
check "m3: the 10 echo requests went from a's public address to b's" test "$n_ab" -ge 10
check "m3: the 10 replies went from b's public address to a's" test "$n_ba" -ge 10
check_eq "m3: no full-size datagram to or from the relay" "$n_relay" 0

# x<->c: through the relay, both ways.
for x in a b; do
        wan=$([[ $x == a ]] && echo "$WAN_A" || echo "$WAN_B")
        capture_pings "m4-$x" "$x" c
        n_in=$(big "src host $wan and dst $RELAY")
        n_out=$(big "src $RELAY and dst host $WAN_C")
        n_back_in=$(big "src host $WAN_C and dst $RELAY")
        n_back_out=$(big "src $RELAY and dst host $wan")
        n_direct=$(big "host $wan and host $WAN_C")
        note "m4-$x: >= 1000 B datagrams: $x->relay $n_in, relay->c $n_out, c->relay" \
                "$n_back_in, relay->$x $n_back_out, $x<->c directly $n_direct"
        check "m4-$x: the relay received the 10 echo requests from $x" test "$n_in" -ge 10
        check "m4-$x: the relay forwarded them to c" test "$n_out" -ge 10
        check "m4-$x: the relay received the 10 replies from c" test "$n_back_in" -ge 10
        check "m4-$x: the relay forwarded them to $x" test "$n_back_out" -ge 10
        check_eq "m4-$x: no full-size datagram between $x and c directly" "$n_direct" 0
done

for x in a b c; do
        check "$x still running" alive "$x"
done
topology_del
summary
