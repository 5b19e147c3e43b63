#!/bin/bash
# SPDX-License-Identifier: MIT
#
# The NATs the other scripts rely on behave as built, checked without the daemon: RFC 5780
# behaviour discovery against coturn (nat-udp rfc5780, written apart from src/natcheck.c), the
# mapping and filtering seen by plain UDP (a reflector that echoes the source address, and
# unsolicited datagrams from other addresses and ports), and hole punching between the hosts on
# port 9001 the way the daemon does it (answering the address a punch came from). When
# tests/stun/natcheck-probe is built, the daemon's discovery code (src/natcheck.c) must name the
# same NAT types as nat-udp's independent RFC 5780 client. If a check of nat-udp fails, the
# daemon's NAT tests fail for the topology's sake, not the daemon's.
#
#   t1  a none       b none       punch works
#   t2  a cone       b cone       punch works (both sides punch)
#   t3  a symmetric  b fullcone   punch works (b answers a's peer-reflexive address)
#   t4  a symmetric  b symmetric  punch fails (needs the relay)
#   t5  a cone       b cone, UDP between the sites dropped in the internet: punch fails, the
#       relay's address stays reachable; rule removed: punch works
set -euo pipefail
source "$(dirname "$(readlink -f "$0")")/lib.sh"

nat_init
# tests/stun/natcheck-probe (built by tests/stun/meson.build), when it exists.
SM_NATCHECK_PROBE=${SM_NATCHECK_PROBE:-$(dirname "$SHADOWMESHD")/../tests/stun/natcheck-probe}
[[ -x $SM_NATCHECK_PROBE ]] || note "no natcheck-probe at $SM_NATCHECK_PROBE: comparing with nat-udp only"

R1=$REFLECT_IP:$REFLECT_PORT
R2=$REFLECT_IP:$((REFLECT_PORT + 1))
R3=$REFLECT_IP2:$REFLECT_PORT

# wait_status PID SECONDS: wait for PID to exit; sets STATUS (124 when it is still running).
STATUS=0
wait_status() {
        STATUS=124
        wait_until "$2" has_exited "$1" || { stop_pid "$1" KILL; return 0; }
        STATUS=0
        { wait "$1"; } 2>/dev/null || STATUS=$?
}

start_reflectors() {
        local r
        for r in "$R1" "$R2" "$R3" "$RELAY_IP:$RELAY_PORT"; do
                spawn "$NS_INET" "$TMP/$CASE-whoami-$r.out" "$SM_NAT_UDP" whoami "$r"
                wait_until 5 grep -qs bound "$TMP/$CASE-whoami-$r.out" ||
                        { echo "reflector $r did not start" >&2; exit 1; }
        done
}

# rfc5780 SIDE WANT_TYPE WANT_MAPPED_IP: behaviour discovery from the host's ports 9002 (nat-udp)
# and 9003 (natcheck-probe).
rfc5780() {
        local side=$1 want=$2 ip=$3 ns out
        ns=$([[ $side == a ]] && echo "$NS_A" || echo "$NS_B")
        # Each probe from a port of its own: the NAT's state from one probe (its mapping to the
        # alternate address) would open the filter for the next.
        out=$(in_ns "$ns" timeout 30 "$SM_NAT_UDP" rfc5780 -b "0.0.0.0:$((PORT + 1))" \
                "$STUN_IP:$STUN_PORT" 2>&1) || true
        echo "$out" | sed "s/^/# $CASE $side: /"
        check_eq "$CASE $side: coturn names $STUN_IP2:$STUN_ALT_PORT as OTHER-ADDRESS" \
                "$(sed -n 's/^test1 mapped .* other //p' <<<"$out")" "$STUN_IP2:$STUN_ALT_PORT"
        check_eq "$CASE $side: RFC 5780 public address" \
                "$(sed -n 's/^test1 mapped \([0-9.]*\):.*/\1/p' <<<"$out")" "$ip"
        check_eq "$CASE $side: RFC 5780 NAT type" "$(sed -n 's/^type //p' <<<"$out")" "$want"
        # The daemon's own discovery code (src/natcheck.c) through the STUN engineer's probe,
        # from the same port, against the same NAT.
        [[ -x $SM_NATCHECK_PROBE ]] || return 0
        out=$(in_ns "$ns" timeout 30 "$SM_NATCHECK_PROBE" --bind "0.0.0.0:$((PORT + 2))" \
                "$STUN_IP:$STUN_PORT" 2>&1) || true
        note "$CASE $side: natcheck-probe: $(tr '\n' ' ' <<<"$out")"
        check_eq "$CASE $side: natcheck (src/natcheck.c) NAT type" \
                "$(sed -n 's/^type=//p' <<<"$out")" "$want"
        check_eq "$CASE $side: natcheck public address" \
                "$(sed -n 's/^public=\([0-9.]*\):.*/\1/p' <<<"$out")" "$ip"
}

# plain_udp SIDE MODE: the mapping per destination and which unsolicited senders get through.
plain_udp() {
        local side=$1 mode=$2 ns wan host out m1 m2 m3 got want lport=$((PORT + 3))
        if [[ $side == a ]]; then
                ns=$NS_A wan=$WAN_A host=$HOST_A
        else
                ns=$NS_B wan=$WAN_B host=$HOST_B
        fi
        out=$TMP/$CASE-ask-$side.out
        spawn "$ns" "$out" "$SM_NAT_UDP" ask -b "0.0.0.0:$lport" -l 3 "$R1" "$R2" "$R3"
        local pid=$SPAWNED_PID
        if ! wait_until 5 grep -qs listening "$out"; then
                fail "$CASE $side: reflectors answered" "$(cat "$out")"
                stop_pid "$pid"
                return 0
        fi
        m1=$(sed -n "s/^$R1 mapped //p" "$out")
        m2=$(sed -n "s/^$R2 mapped //p" "$out")
        m3=$(sed -n "s/^$R3 mapped //p" "$out")
        note "$CASE $side: mapped for $R1: $m1, for $R2: $m2, for $R3: $m3"
        case $mode in
        none) check_eq "$CASE $side: no translation" "$m1 $m2 $m3" \
                "$host:$lport $host:$lport $host:$lport" ;;
        cone | fullcone) check_eq "$CASE $side: endpoint-independent mapping, port kept" \
                "$m1 $m2 $m3" "$wan:$lport $wan:$lport $wan:$lport" ;;
        symmetric)
                check "$CASE $side: a new port for every destination ($m1 $m2 $m3)" \
                        test "${m1%:*}" = "$wan" -a "$m1" != "$m2" -a "$m2" != "$m3" -a "$m1" != "$m3"
                ;;
        esac
        # Unsolicited datagrams to the first mapping: from another address and port, from the
        # same address and another port, then (the control) from the reflector's own endpoint.
        in_ns "$NS_INET" "$SM_NAT_UDP" send -b "$REFLECT_IP2:$((REFLECT_PORT + 2))" "$m1" 3
        in_ns "$NS_INET" "$SM_NAT_UDP" send -b "$REFLECT_IP:$((REFLECT_PORT + 2))" "$m1" 3
        in_ns "$NS_INET" "$SM_NAT_UDP" send -b "$R1" "$m1" 3
        wait_until 5 grep -qs "^from $R1\$" "$out" || true
        wait_status "$pid" 5
        got=$(sed -n 's/^from //p' "$out" | sort | tr '\n' ' ')
        case $mode in
        none | fullcone) want="$R1 $REFLECT_IP:$((REFLECT_PORT + 2)) $REFLECT_IP2:$((REFLECT_PORT + 2)) " ;;
        *) want="$R1 " ;;
        esac
        check_eq "$CASE $side: unsolicited senders let through ($mode)" "$got" "$want"
}

# punch WANT: both hosts punch from port 9001 towards the other's public address.
punch() {
        local want=$1 pa pb sa sb
        spawn "$NS_A" "$TMP/$CASE-punch-a.out" "$SM_NAT_UDP" punch -b "0.0.0.0:$PORT" "$WAN_B:$PORT" 3
        pa=$SPAWNED_PID
        spawn "$NS_B" "$TMP/$CASE-punch-b.out" "$SM_NAT_UDP" punch -b "0.0.0.0:$PORT" "$WAN_A:$PORT" 3
        pb=$SPAWNED_PID
        wait_status "$pa" 6
        sa=$STATUS
        wait_status "$pb" 6
        sb=$STATUS
        note "$CASE punch a: $(tr '\n' ' ' <"$TMP/$CASE-punch-a.out")"
        note "$CASE punch b: $(tr '\n' ' ' <"$TMP/$CASE-punch-b.out")"
        if [[ $want == works ]]; then
                check "$CASE: hole punching works (a exit $sa, b exit $sb)" test "$sa$sb" = 00
        else
                check "$CASE: hole punching fails (a exit $sa, b exit $sb)" test "$sa$sb" = 11
        fi
}

# t1 no NAT.
topology_new t1 none none
check "t1: coturn listening on two addresses and two ports" start_coturn
start_reflectors
rfc5780 a no-nat "$WAN_A"
plain_udp a none
punch works
topology_del

# t2 port-restricted cone both sides.
topology_new t2 cone cone
check "t2: coturn listening" start_coturn
start_reflectors
rfc5780 a port-restricted-cone "$WAN_A"
rfc5780 b port-restricted-cone "$WAN_B"
plain_udp a cone
punch works
topology_del

# t3 symmetric against full cone.
topology_new t3 symmetric fullcone
check "t3: coturn listening" start_coturn
start_reflectors
rfc5780 a symmetric "$WAN_A"
rfc5780 b full-cone "$WAN_B"
plain_udp a symmetric
plain_udp b fullcone
punch works
topology_del

# t4 symmetric both sides.
topology_new t4 symmetric symmetric
check "t4: coturn listening" start_coturn
start_reflectors
rfc5780 b symmetric "$WAN_B"
punch fails
topology_del

# t5 the internet drops UDP between the sites, then stops.
topology_new t5 cone cone
start_reflectors
block_sites
punch fails
check "t5: the block dropped the punches" test "$(blocked_count)" -gt 0
reaches() { in_ns "$1" "$SM_NAT_UDP" ask "$2" >/dev/null; }
check "t5: a still reaches the relay's address" reaches "$NS_A" "$RELAY_IP:$RELAY_PORT"
check "t5: b still reaches the relay's address" reaches "$NS_B" "$RELAY_IP:$RELAY_PORT"
unblock_sites
punch works
topology_del

summary
