#!/bin/bash
# SPDX-License-Identifier: MIT
#
# Several data path queues (network.threads, DESIGN "Data path"): a with 4 queues, b with 3 (the
# number is a local choice, like the offloads). Checks that:
#   1. each TAP has its queues, attached, plus the one detached queue the receive thread writes
#      through (ip -d link: numqueues, numdisabled), and a transmit thread per queue runs;
#   2. eight TCP transfers at once (four each way, so the kernel spreads the flows over the
#      queues) all arrive intact (SHA-256), with no datagram taken for a replay or failing
#      authentication on either side (several threads seal with one key pair);
#   3. receive crypto workers (network.rx_workers: a 2, b 1) run as threads of their own and
#      open part of the transfers' datagrams (the stats line's rx_worker_datagrams), with the
#      checks of 2 holding;
#   4. a restarted with threads: 1 and rx_workers: 0 (the data path of earlier versions) still
#      carries a transfer to b.
#
#   sm$$-a: smt0 10.0.0.1/24, veth0 10.99.29.1/24
#   sm$$-b: smt0 10.0.0.2/24, veth0 10.99.29.2/24

# shellcheck disable=SC2317
set -euo pipefail
# shellcheck source=tests/netns/lib.sh
source "$(dirname "$(readlink -f "$0")")/lib.sh"

netns_init 29
need socat socat
need sha256sum coreutils

setup_pair
KEY=$(random_hex_key)
write_config "$TMP/a0.yaml" ip4=10.0.0.1/24 key="$KEY" peer="$UNDER_B:$PORT"
write_config "$TMP/b0.yaml" ip4=10.0.0.2/24 key="$KEY" peer=""
# write_config has no option for them.
with_threads() {
        sed "/^network:/a\\  threads: $2\n  rx_workers: $3" "$1" >"$4"
        chmod 600 "$4"
}
with_threads "$TMP/a0.yaml" 4 2 "$TMP/a.yaml"
with_threads "$TMP/b0.yaml" 3 1 "$TMP/b.yaml"
with_threads "$TMP/a0.yaml" 1 0 "$TMP/a1.yaml"

head -c 8M /dev/urandom >"$TMP/data"
SUM=$(sha256sum <"$TMP/data" | cut -d' ' -f1)

# queues NS N: the TAP in NS has N attached queues and one detached.
queues() {
        ip -n "$1" -d link show dev smt0 | grep -q "multi_queue numqueues $2 numdisabled 1 "
}
# tx_threads NAME N: the daemon runs shadowmesh-tx0 .. shadowmesh-tx(N-1) and shadowmesh-rx.
tx_threads() {
        local pid=${DAEMON_PID[$1]} names i
        names=$(cat /proc/"$pid"/task/*/comm 2>/dev/null) || return 1
        grep -qx shadowmesh-rx <<<"$names" || return 1
        for ((i = 0; i < $2; i++)); do
                grep -qx "shadowmesh-tx$i" <<<"$names" || return 1
        done
}
# tx_threads_single NAME: one queue: shadowmesh-tx (no number) and shadowmesh-rx, no worker.
tx_threads_single() {
        local names
        names=$(cat /proc/"${DAEMON_PID[$1]}"/task/*/comm 2>/dev/null) || return 1
        grep -qx shadowmesh-tx <<<"$names" && grep -qx shadowmesh-rx <<<"$names" &&
                ! grep -q "shadowmesh-tx[0-9]" <<<"$names" && ! grep -q "shadowmesh-rxw" <<<"$names"
}
# rx_workers NAME N: the daemon runs exactly the crypto workers shadowmesh-rxw0 .. rxw(N-1).
rx_workers() {
        local names i
        names=$(cat /proc/"${DAEMON_PID[$1]}"/task/*/comm 2>/dev/null) || return 1
        (($(grep -c '^shadowmesh-rxw' <<<"$names") == $2)) || return 1
        for ((i = 0; i < $2; i++)); do
                grep -qx "shadowmesh-rxw$i" <<<"$names" || return 1
        done
}
listening() { ip netns exec "$1" ss -Hntl "sport = :$2" | grep -q .; }

# transfers N_AB N_BA: N_AB transfers a->b and N_BA b->a, all at once, each of the file on its
# own TCP connection (port); every copy must arrive intact. Bounded: senders by timeout,
# receivers by a poll.
XPORT=5100
transfers() {
        local n_ab=$1 n_ba=$2 i from to addr port ok=0
        local -a recv_pids=() send_pids=() names=()
        for ((i = 0; i < n_ab + n_ba; i++)); do
                if ((i < n_ab)); then from=$NS_A to=$NS_B addr=10.0.0.2; else from=$NS_B to=$NS_A addr=10.0.0.1; fi
                XPORT=$((XPORT + 1))
                port=$XPORT
                names+=("x$port")
                rm -f "$TMP/x$port.recv"
                spawn "$to" "$TMP/x$port-recv.log" socat -u "TCP4-LISTEN:$port,bind=$addr,reuseaddr" \
                        "CREATE:$TMP/x$port.recv"
                recv_pids+=("$SPAWNED_PID")
                wait_until 10 listening "$to" "$port" || { echo "# x$port: no listener"; return 1; }
                spawn "$from" "$TMP/x$port-send.log" timeout 120 socat -u "OPEN:$TMP/data" \
                        "TCP4:$addr:$port"
                send_pids+=("$SPAWNED_PID")
        done
        for i in "${!names[@]}"; do
                wait_until 130 has_exited "${send_pids[$i]}" || { echo "# ${names[$i]}: sender still running"; ok=1; }
                wait_until 30 has_exited "${recv_pids[$i]}" || { echo "# ${names[$i]}: receiver still running"; ok=1; }
                local got
                got=$(sha256sum <"$TMP/${names[$i]}.recv" | cut -d' ' -f1)
                if [[ $got != "$SUM" ]]; then
                        echo "# ${names[$i]}: sha256 $got, want $SUM ($(stat -c %s "$TMP/${names[$i]}.recv") bytes)"
                        ok=1
                fi
                rm -f "$TMP/${names[$i]}.recv"
        done
        return "$ok"
}

start_daemon b "$NS_B" "$TMP/b.yaml"
check "b is up" wait_log b "waiting for the peer" 10
start_daemon a "$NS_A" "$TMP/a.yaml"
check "tunnel up" wait_log a "handshake complete" 15
check "a says 4 queues and 2 receive workers" log_has a "4 queues, 2 receive workers)"
check "b says 3 queues and 1 receive worker" log_has b "3 queues, 1 receive worker)"
check "a's TAP: 4 queues attached, 1 detached" queues "$NS_A" 4
check "b's TAP: 3 queues attached, 1 detached" queues "$NS_B" 3
check "a runs a tx thread per queue and the rx thread" tx_threads a 4
check "b runs a tx thread per queue and the rx thread" tx_threads b 3
check "a runs 2 crypto workers" rx_workers a 2
check "b runs 1 crypto worker" rx_workers b 1
check "ping a->b" wait_until 10 na ping -c 1 -W 1 -q 10.0.0.2

check "8 MB x 8 at once (4 each way), all intact" transfers 4 4
request_stats a
request_stats b
echo "# a: $(current_log a | grep 'stats: ' | tail -n 1)"
echo "# b: $(current_log b | grep 'stats: ' | tail -n 1)"
# queue_frames NAME: the stats line's tap_queue_frames field ("N/N/...", one per queue).
queue_frames() {
        current_log "$1" | grep 'stats: ' | tail -n 1 | grep -o '\btap_queue_frames=[0-9/]*' | cut -d= -f2
}
# queues_used NAME N BUSY: tap_queue_frames has N counts, at least BUSY of them above 0. Eight
# flows at once all on one of a's four queues: 4 x (1/4)^8, about 1 in 16000; b's three queues
# (about 1 in 2000) are only checked for their counts.
queues_used() {
        local f counts busy=0 c
        f=$(queue_frames "$1")
        IFS=/ read -r -a counts <<<"$f"
        [[ ${#counts[@]} == "$2" ]] || { echo "# $1: tap_queue_frames=$f, want $2 counts"; return 1; }
        for c in "${counts[@]}"; do ((c > 0)) && busy=$((busy + 1)); done
        ((busy >= $3)) || { echo "# $1: tap_queue_frames=$f: fewer than $3 queues carried frames"; return 1; }
}
check "a's flows were spread over its 4 queues (tap_queue_frames)" queues_used a 4 2
check "b counts frames on each of its 3 queues (tap_queue_frames)" queues_used b 3 1
# Both received four 8 MB flows at once: batches large enough to share (DATAPATH_RX_SPLIT_MIN).
workers_opened() {
        local v
        v=$(get_stat "$1" rx_worker_datagrams)
        echo "# $1: rx_worker_datagrams=${v:-none}"
        ((${v:-0} > 0))
}
check "a's crypto workers opened datagrams" workers_opened a
check "b's crypto worker opened datagrams" workers_opened b
for n in a b; do
        check "$n: no datagram taken for a replay" test "$(get_stat "$n" rx_replayed)" = 0
        check "$n: no datagram failed authentication" test "$(get_stat "$n" rx_bad_tag)" = 0
        check "$n: no send error" test "$(get_stat "$n" tx_errors)" = 0
done

# a on one queue (the earlier data path) with b still on three.
check "a stops cleanly" stop_daemon a TERM 10
check "a's TAP is gone" wait_until 10 link_gone "$NS_A" smt0
start_daemon a "$NS_A" "$TMP/a1.yaml"
check "tunnel up again (a on one queue)" wait_log a "handshake complete" 15
check "a says 1 queue, no receive worker" log_has a "1 queue, 0 receive workers)"
single_queue() { ! ip -n "$1" -d link show dev smt0 | grep -q multi_queue; }
check "a's TAP is a single-queue TAP" single_queue "$NS_A"
check "a runs one tx thread" tx_threads_single a
check "8 MB a->b and b->a with a on one queue, intact" transfers 1 1
request_stats a
check "a counts its one queue's frames (tap_queue_frames)" queues_used a 1 1

check "b stops cleanly" stop_daemon b TERM 10
check "a stops cleanly" stop_daemon a TERM 10
summary
