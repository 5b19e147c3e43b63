#!/bin/bash
# SPDX-License-Identifier: MIT
#
# Segmentation offloads end to end (network.offload, DESIGN "Data path"): a 50 MB random file
# moves through the tunnel over TCP, over IPv4 and over IPv6 tunnel addresses, and its SHA-256
# must match at the far end:
#   1. both daemons with offloads on (the default), where the counters must show that TCP
#      super-frames were segmented, sent with UDP GSO, received with UDP GRO and coalesced;
#   2. the same with 5% of the underlay's tunnel datagrams dropped in each direction (nftables
#      `numgen random mod 20`; the kernel here has no netem);
#   3. b restarted with network.offload: no, in both directions: offload is a local choice and
#      the wire format does not change.
# Both daemons run one receive crypto worker (network.rx_workers: 1) throughout, which must open
# part of what b receives in each case (with UDP GRO, under loss, and from plain recvmmsg
# batches without offloads).
# Case 1 also sends the file over IPv6 with a Hop-by-Hop and a Destination Options header on
# every packet (sticky socket options): the kernel hands such TCP super-frames to the TAP too,
# and they must be segmented (they were dropped as tx errors before).
#
#   sm$$-a: smt0 10.0.0.1/24 fd00::1/64, veth0 10.99.23.1/24
#   sm$$-b: smt0 10.0.0.2/24 fd00::2/64, veth0 10.99.23.2/24

# shellcheck disable=SC2317
set -euo pipefail
# shellcheck source=tests/netns/lib.sh
source "$(dirname "$(readlink -f "$0")")/lib.sh"

netns_init 23
need socat socat
need nft nftables
need sha256sum coreutils
need python3 python3

setup_pair
KEY=$(random_hex_key)
write_config "$TMP/a.yaml" ip4=10.0.0.1/24 ip6=fd00::1/64 key="$KEY" peer="$UNDER_B:$PORT"
write_config "$TMP/b.yaml" ip4=10.0.0.2/24 ip6=fd00::2/64 key="$KEY" peer=""
# A receive crypto worker on both, and b's configuration with the offloads off (write_config has
# no option for them).
sed -i '/^network:/a\  rx_workers: 1' "$TMP/a.yaml" "$TMP/b.yaml"
sed '/^network:/a\  offload: no' "$TMP/b.yaml" >"$TMP/b-plain.yaml"
chmod 600 "$TMP/b-plain.yaml"

head -c 50M /dev/urandom >"$TMP/data"
SUM=$(sha256sum <"$TMP/data" | cut -d' ' -f1)

listening() { ip netns exec "$1" ss -Hntl "sport = :$2" | grep -q .; }

# transfer NAME FROM_NS TO_NS FAMILY ADDR: send the file over TCP from FROM_NS to ADDR (in
# TO_NS) and check what arrived. Bounded: the sender by timeout, the receiver by a poll.
XPORT=5000
transfer() {
        local name=$1 from=$2 to=$3 fam=$4 addr=$5 listen connect pid
        XPORT=$((XPORT + 1))
        if [[ $fam == 6 ]]; then
                listen="TCP6-LISTEN:$XPORT,bind=[$addr],reuseaddr"
                connect="TCP6:[$addr]:$XPORT"
        else
                listen="TCP4-LISTEN:$XPORT,bind=$addr,reuseaddr"
                connect="TCP4:$addr:$XPORT"
        fi
        rm -f "$TMP/$name.recv"
        spawn "$to" "$TMP/$name-recv.log" socat -u "$listen" "CREATE:$TMP/$name.recv"
        pid=$SPAWNED_PID
        wait_until 10 listening "$to" "$XPORT" || { echo "# $name: no listener"; return 1; }
        ip netns exec "$from" timeout 120 socat -u "OPEN:$TMP/data" "$connect" \
                2>"$TMP/$name-send.log" || { echo "# $name: sender failed"; return 1; }
        wait_until 30 has_exited "$pid" || { echo "# $name: receiver still running"; return 1; }
        local got
        got=$(sha256sum <"$TMP/$name.recv" | cut -d' ' -f1)
        [[ $got == "$SUM" ]] || { echo "# $name: sha256 $got, want $SUM ($(stat -c %s "$TMP/$name.recv") bytes)"; return 1; }
        rm -f "$TMP/$name.recv"
}

# transfer_ext6 NAME FROM_NS TO_NS ADDR: the same over IPv6 from a socket whose every packet
# carries a Hop-by-Hop Options header and a Destination Options header (PadN options only).
transfer_ext6() {
        local name=$1 from=$2 to=$3 addr=$4 pid
        XPORT=$((XPORT + 1))
        rm -f "$TMP/$name.recv"
        spawn "$to" "$TMP/$name-recv.log" socat -u "TCP6-LISTEN:$XPORT,bind=[$addr],reuseaddr" \
                "CREATE:$TMP/$name.recv"
        pid=$SPAWNED_PID
        wait_until 10 listening "$to" "$XPORT" || { echo "# $name: no listener"; return 1; }
        ip netns exec "$from" timeout 120 python3 - "$addr" "$XPORT" "$TMP/data" \
                2>"$TMP/$name-send.log" <<'PY' || { echo "# $name: sender failed: $(cat "$TMP/$name-send.log")"; return 1; }
import socket, sys
s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
# <next header (the kernel's), length 0 = 8 bytes, PadN of 4 bytes>
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_HOPOPTS, bytes([0, 0, 1, 4, 0, 0, 0, 0]))
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_DSTOPTS, bytes([0, 0, 1, 4, 0, 0, 0, 0]))
s.connect((sys.argv[1], int(sys.argv[2])))
with open(sys.argv[3], "rb") as f:
    s.sendfile(f)
s.close()
PY
        wait_until 30 has_exited "$pid" || { echo "# $name: receiver still running"; return 1; }
        local got
        got=$(sha256sum <"$TMP/$name.recv" | cut -d' ' -f1)
        [[ $got == "$SUM" ]] || { echo "# $name: sha256 $got, want $SUM ($(stat -c %s "$TMP/$name.recv") bytes)"; return 1; }
        rm -f "$TMP/$name.recv"
}

# lossy NS on|off: drop 1 in 20 tunnel datagrams leaving NS (nftables, counted).
lossy() {
        if [[ $2 == on ]]; then
                ip netns exec "$1" nft -f - <<EOF
table inet smloss$$ {
        chain out {
                type filter hook output priority 0; policy accept;
                udp dport $PORT numgen random mod 20 == 0 counter drop
                udp sport $PORT numgen random mod 20 == 0 counter drop
        }
}
EOF
        else
                ip netns exec "$1" nft delete table inet "smloss$$"
        fi
}
dropped_by() {
        ip netns exec "$1" nft list table inet "smloss$$" |
                awk '/counter packets/ { for (i = 1; i < NF; i++) if ($i == "packets") s += $(i + 1) } END { print s + 0 }'
}

# tunnel_ready WHEN SECONDS: pings answered over both families (after b's restart, a notices
# that its session is gone only when its own data goes unanswered and it initiates again).
tunnel_ready() {
        check "$1: ping over IPv4" wait_ping "$2" "$NS_A" 10.0.0.2
        check "$1: a's IPv6 address is ready" wait_until 10 ipv6_ready "$NS_A" smt0 fd00::1
        check "$1: b's IPv6 address is ready" wait_until 10 ipv6_ready "$NS_B" smt0 fd00::2
        check "$1: ping over IPv6" wait_ping 10 "$NS_A" fd00::2 -6
}

# --- 1. both sides with offloads -----------------------------------------------------------
start_daemon b "$NS_B" "$TMP/b.yaml"
check "b is up" wait_log b "waiting for the peer" 10
check "b: the TAP has the offloads" log_has b "offloads on"
start_daemon a "$NS_A" "$TMP/a.yaml"
check "a: the TAP has the offloads" wait_log a "offloads on" 10
tunnel_ready "offload both" 15
check "50 MB a->b over IPv4, sha256 equal" transfer v4 "$NS_A" "$NS_B" 4 10.0.0.2
check "50 MB a->b over IPv6, sha256 equal" transfer v6 "$NS_A" "$NS_B" 6 fd00::2
check "50 MB b->a over IPv4, sha256 equal" transfer v4-back "$NS_B" "$NS_A" 4 10.0.0.1
check "a segmented TCP super-frames from its TAP" stat_at_least a tx_gso_frames 100
check "a sent datagrams with UDP GSO" stat_at_least a tx_udp_gso_datagrams 1000
check "b received datagrams coalesced by UDP GRO" stat_at_least b rx_udp_gro_datagrams 1000
check "b coalesced TCP segments for its TAP" stat_at_least b rx_gro_merged 1000
check "b's crypto worker opened datagrams" stat_at_least b rx_worker_datagrams 1000
check "b: no packet failed authentication" test "$(get_stat b rx_bad_tag)" = 0
check "a: no send errors" test "$(get_stat a tx_errors)" = 0
request_stats a
GSO_BEFORE=$(get_stat a tx_gso_frames)
check "50 MB a->b over IPv6 with Hop-by-Hop and Destination Options headers, sha256 equal" \
        transfer_ext6 v6-ext "$NS_A" "$NS_B" fd00::2
check "a segmented super-frames with extension headers" stat_at_least a tx_gso_frames $((GSO_BEFORE + 100))
check "a: still no send errors (no frame refused)" test "$(get_stat a tx_errors)" = 0

# --- 2. 5% loss each way ---------------------------------------------------------------------
WORKER_BEFORE=$(get_stat b rx_worker_datagrams)
lossy "$NS_A" on
lossy "$NS_B" on
check "50 MB a->b over IPv4 with 5% loss, sha256 equal" transfer loss-v4 "$NS_A" "$NS_B" 4 10.0.0.2
check "50 MB a->b over IPv6 with 5% loss, sha256 equal" transfer loss-v6 "$NS_A" "$NS_B" 6 fd00::2
check "the loss rules dropped datagrams from a" test "$(dropped_by "$NS_A")" -ge 100
check "the loss rules dropped datagrams from b" test "$(dropped_by "$NS_B")" -ge 10
check "b's crypto worker opened datagrams under loss" \
        stat_at_least b rx_worker_datagrams $((WORKER_BEFORE + 1000))
check "b: still no packet failed authentication or was taken for a replay" \
        test "$(get_stat b rx_bad_tag)/$(get_stat b rx_replayed)" = 0/0
lossy "$NS_A" off
lossy "$NS_B" off

# --- 3. b without offloads -------------------------------------------------------------------
check "b stops cleanly" stop_daemon b TERM 10
start_daemon b "$NS_B" "$TMP/b-plain.yaml"
check "b is up again" wait_log b "waiting for the peer" 10
check_not "b: a plain TAP this time" log_has b "offloads on"
# Another configuration file is another instance name and so another TAP MAC address: a must
# not wait for its neighbour entries of the old one to time out.
ip -n "$NS_A" neigh flush dev smt0
tunnel_ready "b plain" 40
check "50 MB a(offload)->b(plain) over IPv4, sha256 equal" transfer plain-v4 "$NS_A" "$NS_B" 4 10.0.0.2
check "50 MB b(plain)->a(offload) over IPv6, sha256 equal" transfer plain-v6 "$NS_B" "$NS_A" 6 fd00::1
check "b (plain) segmented nothing" stat_at_least b tx_gso_frames 0
check_eq "b (plain): tx_gso_frames" "$(get_stat b tx_gso_frames)" 0
check_eq "b (plain): rx_udp_gro_datagrams" "$(get_stat b rx_udp_gro_datagrams)" 0
check "b (plain): its crypto worker opened datagrams of recvmmsg batches" \
        stat_at_least b rx_worker_datagrams 1000
check "a still coalesced what b sent" stat_at_least a rx_gro_merged 1000

check "a stops cleanly" stop_daemon a TERM 10
check "b stops cleanly" stop_daemon b TERM 10
summary
