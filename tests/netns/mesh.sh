#!/bin/bash
# SPDX-License-Identifier: MIT
#
# The mesh data plane (issue 11, sections 3 and 6): four nodes on one underlay bridge, each
# configured with the other three (full lists: discovery is not wired yet), twice: in
# shared-key mode (each file lists the other three), and in identity mode with one and the same
# peers: list of all four in every file (each node ignores its own entry).
#  - every node pings every other one (IPv4) within 15 s; ARP resolved each tunnel address to
#    the right node's TAP address; IPv6 neighbour discovery works (ping of the ULA across);
#  - the learning switch: during an A->B iperf3 (5 s), C's underlay receives less than 1% of
#    what B's received from A (nft counters in B's and C's namespaces), and A's counters say
#    its frames went to one peer;
#  - killing D (SIGKILL, no goodbye): A, B and C keep pinging each other, and A forgets the MAC
#    addresses it had learned behind D once D's session is gone (logged and counted).
#
#   sm$$-br: bridge br0, one port per node
#   sm$$-a .. sm$$-d: veth0 10.99.58.{1..4}/24 on the bridge; smt0 10.0.0.{1..4}/24, fd00::{1..4}

# Functions here are called through check/wait_until, which shellcheck cannot see.
# shellcheck disable=SC2317,SC2016
set -euo pipefail
# shellcheck source=tests/netns/lib.sh
source "$(dirname "$(readlink -f "$0")")/lib.sh"

netns_init 58
need iperf3 iperf3
need nft nftables

NODES=(a b c d)
declare -A NS=() UNDER=() TUN4=() TUN6=()
setup_bridge "${NODES[@]}"
i=0
for n in "${NODES[@]}"; do
        i=$((i + 1))
        TUN4[$n]=10.0.0.$i
        TUN6[$n]=fd00::$i
done

# What each node's underlay receives from A: B's (the destination) and C's (a bystander).
for n in b c; do
        ip netns exec "${NS[$n]}" nft -f - <<NFT
table inet smmesh {
        counter from_a { }
        chain input {
                type filter hook input priority 0;
                ip saddr ${UNDER[a]} udp dport $PORT counter name "from_a"
        }
}
NFT
done
# bytes_from_a NODE: the bytes its counter saw.
bytes_from_a() {
        ip netns exec "${NS[$1]}" nft list counter inet smmesh from_a |
                sed -n 's/.*bytes \([0-9]*\).*/\1/p'
}
reset_from_a() { ip netns exec "${NS[$1]}" nft reset counter inet smmesh from_a >/dev/null; }

KEY=$(random_hex_key)
genkey() { (umask 077 && "$SHADOWMESHD" genkey >"$1"); }
declare -A PUB=()
for n in "${NODES[@]}"; do
        genkey "$TMP/$n.key"
        PUB[$n]=$("$SHADOWMESHD" pubkey <"$TMP/$n.key")
done

# peer_entry NODE [KEY]: one entry of a peers: list.
peer_entry() {
        printf '  - name: %s\n    address: "%s:%s"\n' "$1" "${UNDER[$1]}" "$PORT"
        [[ -z ${2:-} ]] || printf '    public_key: "%s"\n' "$2"
}

# all_ping: every node reaches every other one's tunnel address (one echo each).
all_ping() {
        local s t
        for s in "$@"; do
                for t in "$@"; do
                        [[ $s == "$t" ]] && continue
                        ping_ok "${NS[$s]}" "${TUN4[$t]}" || return 1
                done
        done
}

# arp_right S T: S's neighbour entry for T's tunnel address is T's TAP address.
arp_right() {
        local got want
        want=$(mac_of "${NS[$2]}" "$TAP")
        got=$(ip -n "${NS[$1]}" neigh show "${TUN4[$2]}" dev "$TAP" | sed -n 's/.*lladdr \([0-9a-f:]*\).*/\1/p')
        [[ -n $want && $got == "$want" ]]
}

# forgot_d: A logged that it dropped the MAC addresses behind d (pinging d meanwhile keeps
# traffic going toward it, which is how its loss is noticed).
forgot_d() {
        ping_ok "${NS[a]}" "${TUN4[d]}" || true
        log_has "a-$ROUND" "MAC address(es) behind peer d "
}

iperf_listening() { ip netns exec "${NS[b]}" ss -Hltn 'sport = :5201' | grep -q .; }

run_round() {
        ROUND=$1
        local n m peers shared=""
        if [[ $ROUND == identity ]]; then
                shared="peers:"$'\n'
                for m in "${NODES[@]}"; do
                        shared+=$(peer_entry "$m" "${PUB[$m]}")$'\n'
                done
        fi
        for n in "${NODES[@]}"; do
                if [[ $ROUND == identity ]]; then
                        write_config "$TMP/$n-$ROUND.yaml" ip4="${TUN4[$n]}/24" ip6="${TUN6[$n]}/64" \
                                private_key_file="$TMP/$n.key" peers="$shared"
                else
                        peers="peers:"$'\n'
                        for m in "${NODES[@]}"; do
                                [[ $m == "$n" ]] || peers+=$(peer_entry "$m")$'\n'
                        done
                        write_config "$TMP/$n-$ROUND.yaml" ip4="${TUN4[$n]}/24" ip6="${TUN6[$n]}/64" \
                                key="$KEY" peers="$peers"
                fi
        done
        if [[ $ROUND == identity ]]; then
                check "$ROUND: the peers: lines are the same in every file" test \
                        "$(sed -n '/^peers:/,/^nat:/p' "$TMP/a-$ROUND.yaml")" = \
                        "$(sed -n '/^peers:/,/^nat:/p' "$TMP/d-$ROUND.yaml")"
        fi
        for n in "${NODES[@]}"; do
                start_daemon "$n-$ROUND" "${NS[$n]}" "$TMP/$n-$ROUND.yaml"
        done
        for n in "${NODES[@]}"; do
                check "$ROUND: $n up" wait_log "$n-$ROUND" "listening on" 10
        done
        local t0
        t0=$(now_ms)
        if wait_until 15 all_ping a b c d; then
                pass "$ROUND: every node pings every other within 15 s (took $(($(now_ms) - t0)) ms)"
        else
                fail "$ROUND: every node pings every other within 15 s"
        fi
        for n in "${NODES[@]}"; do
                for m in "${NODES[@]}"; do
                        [[ $n == "$m" ]] || check "$ROUND: ARP on $n resolved $m to its TAP address" arp_right "$n" "$m"
                done
        done
        for m in b c d; do
                check "$ROUND: IPv6 ND: a -> $m (fd00::)" wait_until 10 ping_ok "${NS[a]}" "${TUN6[$m]}" -6
        done
        check "$ROUND: IPv6 ND: d -> b" wait_until 10 ping_ok "${NS[d]}" "${TUN6[b]}" -6

        # ---- the learning switch: A's stream to B stays off C's wire ----
        spawn "${NS[b]}" "$TMP/iperf-s-$ROUND.log" iperf3 -s -1 -B "${TUN4[b]}"
        local server=$SPAWNED_PID
        check "$ROUND: iperf3 server listening" wait_until 10 iperf_listening
        reset_from_a b
        reset_from_a c
        if ip netns exec "${NS[a]}" timeout 30 iperf3 -c "${TUN4[b]}" -t 5 >"$TMP/iperf-c-$ROUND.log" 2>&1; then
                pass "$ROUND: iperf3 a -> b ran"
        else
                fail "$ROUND: iperf3 a -> b ran"
        fi
        wait_until 10 has_exited "$server" || kill_own TERM "$server" || true
        local to_b to_c
        to_b=$(bytes_from_a b)
        to_c=$(bytes_from_a c)
        echo "# $ROUND: during the iperf3, b's underlay got $to_b bytes from a, c's $to_c"
        check "$ROUND: b received the stream (> 1 MB from a)" test "${to_b:-0}" -gt 1000000
        check "$ROUND: c received less than 1% of what b did from a" \
                test "$((${to_c:-0} * 100))" -lt "${to_b:-0}"
        request_stats "a-$ROUND" || true
        check "$ROUND: a's frames went to one peer (tx_unicast_frames)" \
                test "$(get_stat "a-$ROUND" tx_unicast_frames)" -gt 1000

        # ---- D dies without a word ----
        kill_own KILL "${DAEMON_PID[d-$ROUND]}" || true
        wait_until 10 has_exited "${DAEMON_PID[d-$ROUND]}" || true
        check "$ROUND: after d died, a, b and c still ping each other" all_ping a b c
        check "$ROUND: a forgets the MAC addresses behind d once its session is gone" \
                wait_until 45 forgot_d
        request_stats "a-$ROUND" || true
        check "$ROUND: a counted them (macs_forgotten)" test "$(get_stat "a-$ROUND" macs_forgotten)" -ge 1
        check "$ROUND: a, b and c still ping each other" all_ping a b c
        for n in a b c; do
                if stop_daemon "$n-$ROUND" TERM 10; then
                        pass "$ROUND: $n stops on SIGTERM"
                else
                        fail "$ROUND: $n stops on SIGTERM"
                fi
        done
        for n in "${NODES[@]}"; do
                check "$ROUND: no TAP left on $n" link_gone "${NS[$n]}" "$TAP"
        done
}

run_round shared-key
run_round identity

summary
