#!/bin/bash
# SPDX-License-Identifier: MIT
#
# Mesh discovery (issue 11, sections 4 and 6): four nodes on one underlay bridge, where each
# configuration lists only the next node (a->b, b->c, d->a; c lists none). Nobody introduces
# a and c, b and d, or c and d but the peer lists the nodes send each other inside the tunnels
# (MESSAGE_DISCOVERY). Within 15 s of the start every node pings every other (all 12 ordered
# pairs), and the pairs that were never configured handshake directly: the handshake log names
# the other node's underlay address. Two rounds:
#  - shared-key mode (one key; a node's id is its per-run node id);
#  - identity mode, where every node's peers: list holds all four public keys (the node's own
#    is dropped) but only the one address.
#
#   sm$$-br: bridge br0 joining v-a v-b v-c v-d
#   sm$$-a:  veth0 10.99.61.1  smt0 10.0.0.1/24
#   sm$$-b:  veth0 10.99.61.2  smt0 10.0.0.2/24
#   sm$$-c:  veth0 10.99.61.3  smt0 10.0.0.3/24   (and 10.99.61.103 later)
#   sm$$-d:  veth0 10.99.61.4  smt0 10.0.0.4/24

# Functions here are called through check/wait_until, which shellcheck cannot see.
# shellcheck disable=SC2317
set -euo pipefail
# shellcheck source=tests/netns/lib.sh
source "$(dirname "$(readlink -f "$0")")/lib.sh"

netns_init 61

NODES=(a b c d)
declare -A NS=() UNDER=() TUNIP=() NEXT=([a]=b [b]=c [c]="" [d]=a)
EXTRA_C=10.99.61.103 # added to c's underlay once the mesh is up
setup_bridge "${NODES[@]}"
i=0
for n in "${NODES[@]}"; do
        i=$((i + 1))
        TUNIP[$n]=10.0.0.$i
done

# all_pairs_ping: every ordered pair pings once; the pairs still missing are in MISSING.
declare -A PAIR_OK=()
MISSING=""
all_pairs_ping() {
        local s t
        MISSING=""
        for s in "${NODES[@]}"; do
                for t in "${NODES[@]}"; do
                        [[ $s != "$t" ]] || continue
                        [[ -z ${PAIR_OK[$s$t]:-} ]] || continue
                        if ping_ok "${NS[$s]}" "${TUNIP[$t]}"; then
                                PAIR_OK[$s$t]=1
                        else
                                MISSING+=" $s->$t"
                        fi
                done
        done
        [[ -z $MISSING ]]
}

# run_round MODE: start the four daemons with $TMP/MODE-N.yaml, then the checks.
run_round() {
        local mode=$1 n s t start elapsed
        for n in c b a d; do
                start_daemon "$mode-$n" "${NS[$n]}" "$TMP/$mode-$n.yaml"
        done
        for n in "${NODES[@]}"; do
                check "$mode: $n is up" wait_log "$mode-$n" "listening on" 10
        done
        start=$(now_ms)
        PAIR_OK=()
        if wait_until 15 all_pairs_ping; then
                elapsed=$(($(now_ms) - start))
                pass "$mode: all 12 ordered pairs ping within 15 s (${elapsed} ms)"
        else
                fail "$mode: all 12 ordered pairs ping within 15 s" "missing:$MISSING"
        fi
        # The pairs nobody configured met directly: one side's handshake names the other's
        # underlay address (there is no relay in this test: direct is the only way anyway).
        for pair in ac bd cd; do
                s=${pair:0:1} t=${pair:1:1}
                check "$mode: $s and $t handshook directly (${UNDER[$s]} <-> ${UNDER[$t]})" \
                        eval "log_has $mode-$s 'handshake complete with peer ${UNDER[$t]}:$PORT' ||
                              log_has $mode-$t 'handshake complete with peer ${UNDER[$s]}:$PORT'"
        done
        # Whichever side of a pair learned of the other first logged it (the other side may
        # have met it through its handshake first).
        check "$mode: the nodes logged the peers they discovered" \
                eval "grep -qh 'discovered peer' $TMP/$mode-*.log"
        for n in "${NODES[@]}"; do
                check_not "$mode: $n never handshook with its own address" \
                        log_has "$mode-$n" "handshake complete with peer ${UNDER[$n]}:$PORT"
        done
        check_not "$mode: no discovery list was refused" \
                eval "grep -h 'refused a discovery list' $TMP/$mode-*.log"
        # A new address of c's goes into its SELF entry when the host reports it (addrwatch),
        # not at the next periodic read (every 30 s; it was every second, two rtnetlink dumps
        # each): c logs its new list within 5 s.
        if [[ $mode == shared ]]; then
                ip -n "${NS[c]}" addr add "$EXTRA_C/24" dev veth0
                check "$mode: c lists its new address $EXTRA_C within 5 s" \
                        wait_until 5 eval "grep 'mesh discovery: our addresses are now' \
                                           $TMP/$mode-c.log | grep -qF '$EXTRA_C:$PORT'"
        fi
        for n in "${NODES[@]}"; do
                if stop_daemon "$mode-$n" TERM 10; then
                        pass "$mode: $n stops on SIGTERM"
                else
                        fail "$mode: $n stops on SIGTERM"
                fi
        done
}

# ---- shared-key mode --------------------------------------------------------------------------
KEY=$(random_hex_key)
for n in "${NODES[@]}"; do
        t=${NEXT[$n]}
        if [[ -n $t ]]; then
                write_config "$TMP/shared-$n.yaml" ip4="${TUNIP[$n]}/24" key="$KEY" peers="peers:
  - name: $t
    address: \"${UNDER[$t]}:$PORT\""
        else
                write_config "$TMP/shared-$n.yaml" ip4="${TUNIP[$n]}/24" key="$KEY" peer=""
        fi
done
run_round shared

# ---- identity mode: all four keys, one address -------------------------------------------------
declare -A PUB=()
for n in "${NODES[@]}"; do
        (umask 077 && "$SHADOWMESHD" genkey >"$TMP/$n.key")
        PUB[$n]=$("$SHADOWMESHD" pubkey <"$TMP/$n.key")
done
for n in "${NODES[@]}"; do
        list="peers:"
        for t in "${NODES[@]}"; do
                list+="
  - name: $t"
                [[ $t != "${NEXT[$n]}" ]] || list+="
    address: \"${UNDER[$t]}:$PORT\""
                list+="
    public_key: \"${PUB[$t]}\""
        done
        write_config "$TMP/identity-$n.yaml" ip4="${TUNIP[$n]}/24" private_key_file="$TMP/$n.key" \
                peers="$list"
done
run_round identity

summary
