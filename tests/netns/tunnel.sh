#!/bin/bash
# SPDX-License-Identifier: MIT
#
# The prototype's quick-start, end to end, in shared-key mode: two namespaces on one veth
# underlay, a shadowmeshd in each, and then what a user relies on: the handshake, ping both
# ways over IPv4 and IPv6, ARP and neighbour discovery across the Layer-2 link, bulk TCP,
# ciphertext only on the wire, the TAP's MTU, an idle daemon's quiet control loop, and a clean
# shutdown on SIGTERM and SIGINT.
#
#   sm$$-a: smt0 10.0.0.1/24 fd00::1/64, veth0 10.99.11.1 (initiator: peer.address = b)
#   sm$$-b: smt0 10.0.0.2/24 fd00::2/64, veth0 10.99.11.2 (waits: peer.address = "")

# Functions here are called through check/wait_until, which shellcheck cannot see.
# shellcheck disable=SC2317,SC2016
set -euo pipefail
# shellcheck source=tests/netns/lib.sh
source "$(dirname "$(readlink -f "$0")")/lib.sh"

netns_init 11
need iperf3 iperf3
need tcpdump tcpdump
need od coreutils
setup_pair

KEY=$(random_hex_key)
write_config "$TMP/a.yaml" ip4=$TUN4_A/24 ip6=$TUN6_A/64 peer="$UNDER_B:$PORT" key="$KEY"
write_config "$TMP/b.yaml" ip4=$TUN4_B/24 ip6=$TUN6_B/64 peer="" key="$KEY"

# ---- start and handshake ----------------------------------------------------------------------
start_daemon b "$NS_B" "$TMP/b.yaml"
check "b: listening on udp port $PORT" wait_log b "listening on udp port $PORT" 10
start_daemon a "$NS_A" "$TMP/a.yaml"
check "a: $TAP up" wait_log a "$TAP up" 10
check "a: shared-key mode (Noise_NNpsk0)" log_has a "shared-key mode (Noise_NNpsk0)"
check "b: shared-key mode (Noise_NNpsk0)" log_has b "shared-key mode (Noise_NNpsk0)"
check "handshake complete on a" wait_log a "handshake complete with peer $UNDER_B:$PORT" 15
check "handshake complete on b" wait_log b "handshake complete with peer $UNDER_A:$PORT" 15

# ---- the sockets: every address is an IPv4 socket and an IPv6-only one on the port -----------
# (IPv4 then takes the kernel's IPv4 path, not the dual-stack socket's v4-mapped one; ss shows a
# dual-stack socket as *:PORT, an IPv6-only one as [::]:PORT.)
udp_sockets() { ip netns exec "$1" ss -uanpH "sport = :$PORT" | awk '{ print $4 }' | sort | tr '\n' ' '; }
for side in a b; do
        ns=$NS_A
        [[ $side == b ]] && ns=$NS_B
        check_eq "$side: its UDP sockets" "$(udp_sockets "$ns")" "0.0.0.0:$PORT [::]:$PORT "
        check "$side: says so" log_has $side "at 0.0.0.0 and [::] (every IPv4 and IPv6 address, a socket each)"
done

# ---- the TAP devices --------------------------------------------------------------------------
for side in a b; do
        ns=$NS_A
        [[ $side == b ]] && ns=$NS_B
        link=$(ip -n "$ns" -o link show dev "$TAP" 2>&1 || true)
        check "$side: $TAP has mtu 1380" contains "$link" " mtu 1380 "
        check "$side: $TAP is UP" contains "$link" ",UP"
        check "$side: $TAP has carrier (LOWER_UP)" contains "$link" "LOWER_UP"
        check "$side: $TAP is Ethernet" contains "$link" "link/ether "
        addrs=$(ip -n "$ns" -o addr show dev "$TAP" 2>&1 || true)
        if [[ $side == a ]]; then
                check "a: $TAP has $TUN4_A/24" contains "$addrs" " $TUN4_A/24 "
                check "a: $TAP has $TUN6_A/64" contains "$addrs" " $TUN6_A/64 "
        else
                check "b: $TAP has $TUN4_B/24" contains "$addrs" " $TUN4_B/24 "
                check "b: $TAP has $TUN6_B/64" contains "$addrs" " $TUN6_B/64 "
        fi
done

# ---- ping both ways, IPv4 then IPv6 -----------------------------------------------------------
check "ping a->b" wait_ping 20 "$NS_A" "$TUN4_B"
check "ping b->a" wait_ping 10 "$NS_B" "$TUN4_A"
check "ping a->b, 10 of 10 answered" ping_all "$NS_A" "$TUN4_B" 10
check "ping b->a, 10 of 10 answered" ping_all "$NS_B" "$TUN4_A" 10
check "a: IPv6 address $TUN6_A/64 out of DAD" wait_until 10 ipv6_ready "$NS_A" "$TAP" "$TUN6_A"
check "b: IPv6 address $TUN6_B/64 out of DAD" wait_until 10 ipv6_ready "$NS_B" "$TAP" "$TUN6_B"
check "ping6 a->b" wait_ping 10 "$NS_A" "$TUN6_B"
check "ping6 b->a" wait_ping 10 "$NS_B" "$TUN6_A"

# ---- Layer 2: the neighbour tables hold the other TAP's MAC address ---------------------------
MAC_A=$(mac_of "$NS_A" "$TAP")
MAC_B=$(mac_of "$NS_B" "$TAP")
echo "# a's $TAP: $MAC_A, b's $TAP: $MAC_B"
check "the two TAPs have distinct MAC addresses" test -n "$MAC_A" -a -n "$MAC_B" -a "$MAC_A" != "$MAC_B"
neigh=$(ip -n "$NS_A" neigh show "$TUN4_B" dev "$TAP" 2>&1 || true)
echo "# a: $neigh"
check "ARP: a's entry for $TUN4_B is b's MAC" contains "$neigh" "lladdr $MAC_B "
neigh=$(ip -n "$NS_B" neigh show "$TUN4_A" dev "$TAP" 2>&1 || true)
check "ARP: b's entry for $TUN4_A is a's MAC" contains "$neigh" "lladdr $MAC_A "
neigh=$(ip -n "$NS_A" -6 neigh show "$TUN6_B" dev "$TAP" 2>&1 || true)
check "ND: a's entry for $TUN6_B is b's MAC" contains "$neigh" "lladdr $MAC_B "
neigh=$(ip -n "$NS_B" -6 neigh show "$TUN6_A" dev "$TAP" 2>&1 || true)
check "ND: b's entry for $TUN6_A is a's MAC" contains "$neigh" "lladdr $MAC_A "

# ---- iperf3: 5 s of TCP a->b ------------------------------------------------------------------
spawn "$NS_B" "$TMP/iperf3-server.log" iperf3 -s -1 -B "$TUN4_B" -p 5201
iperf_listening() { nb ss -Hltn 'sport = :5201' | grep -q .; }
IPERF_BYTES=0
if ! wait_until 10 iperf_listening; then
        fail "iperf3 server listening in b"
elif ! na timeout 60 iperf3 -c "$TUN4_B" -p 5201 -t 5 --connect-timeout 5000 -J >"$TMP/iperf3.json" 2>&1; then
        fail "iperf3 a->b ran" "$(tail -n 5 "$TMP/iperf3.json")"
else
        # "end": { ..., "sum_received": { ..., "bytes": N, "bits_per_second": X, ... } }
        read -r IPERF_BYTES bps < <(awk '
                /"sum_received"/ { f = 1 }
                f && /"bytes"/ { gsub(/[^0-9.eE+]/, "", $2); b = $2 }
                f && /"bits_per_second"/ { gsub(/[^0-9.eE+]/, "", $2); printf "%.0f %s\n", b, $2; exit }
        ' "$TMP/iperf3.json") || true
        IPERF_BYTES=${IPERF_BYTES:-0}
        mbits=$(awk -v b="${bps:-0}" 'BEGIN { printf "%.1f", b / 1e6 }')
        echo "# iperf3 TCP a->b: $mbits Mbit/s, $IPERF_BYTES bytes received"
        check "iperf3 a->b moved data ($mbits Mbit/s)" awk -v b="${bps:-0}" -v n="$IPERF_BYTES" \
                'BEGIN { exit !(b > 0 && n > 0) }'
fi

# ---- ciphertext only on the wire --------------------------------------------------------------
# A marker in the ICMP padding: seen on the TAP (the control: the search can find it), never on
# the underlay, where the same pings must show up as tunnel datagrams of their size.
MARKER=deadbeefcafebabe0123456789abcdef
captures_ok=1
start_capture underlay "$NS_A" veth0 || captures_ok=0
start_capture plain "$NS_A" "$TAP" icmp || captures_ok=0
check "tcpdump listening on a's veth0 and $TAP" test "$captures_ok" = 1
check "ping -s 1000 -p $MARKER a->b, 5 of 5 answered" \
        na ping -c 5 -i 0.2 -W 2 -q -s 1000 -p "$MARKER" "$TUN4_B" >/dev/null
stop_capture underlay || true
stop_capture plain || true
if [[ -s $TMP/underlay.pcap && -s $TMP/plain.pcap ]]; then
        check "control: the marker is in the capture of the TAP" \
                contains "$(pcap_hex "$TMP/plain.pcap")" "$MARKER"
        check "the marker is nowhere in the capture of the underlay" \
                test "$(pcap_hex "$TMP/underlay.pcap" | grep -c "$MARKER" || true)" = 0
        n_tunnel=$(tcpdump -r "$TMP/underlay.pcap" -n "udp port $PORT" 2>/dev/null |
                awk '/UDP, length/ { if ($NF + 0 >= 1000) n++ } END { print n + 0 }' || true)
        n_other=$( (tcpdump -r "$TMP/underlay.pcap" -n "icmp" 2>/dev/null || true) | wc -l)
        echo "# underlay: $n_tunnel tunnel datagrams of >= 1000 bytes, $n_other ICMP packets"
        check "the underlay carried the 10 echoes as tunnel datagrams >= 1000 B" \
                test "$n_tunnel" -ge 10
        check "no ICMP on the underlay" test "$n_other" = 0
else
        fail "captures are not empty"
fi

# ---- clean shutdown: SIGTERM on a, SIGINT on b ------------------------------------------------
check "a still running" alive a
check "b still running" alive b
request_stats b || true
rx_bytes_b=$(get_stat b rx_bytes)
echo "# b: $(current_log b | grep 'stats: ' | tail -n 1)"
check "b's stats count the iperf3 bytes (rx_bytes=${rx_bytes_b:-none} >= $IPERF_BYTES)" \
        test "${rx_bytes_b:-0}" -ge "$IPERF_BYTES" -a "$IPERF_BYTES" -gt 0

# ---- idle: the control loop's tick slows to once a second -----------------------------------
# With no traffic and nothing under way (timers.h: TIMERS_QUIET_TICK_NSEC) a's main thread, the
# control loop, wakes about once a second instead of four times (TIMERS_TICK_NSEC): at most 14
# wake-ups in 8 s (a liveness keepalive each way every 5 s adds a short tick now and then); the
# short tick alone would be 32. A count of wake-ups, not a time: /proc's context switches.
main_wakeups() {
        awk '/^voluntary_ctxt_switches/ { print $2 }' \
                "/proc/${DAEMON_PID[a]}/task/${DAEMON_PID[a]}/status"
}
w0=$(main_wakeups)
sleep 8 # the window counted, not a wait for a condition
w1=$(main_wakeups)
check "idle: a's control loop woke $((w1 - w0)) times in 8 s (at most 14)" \
        test "$((w1 - w0))" -le 14
check "idle: the tunnel still answers after the quiet ticks" ping_all "$NS_A" "$TUN4_B" 3

# ---- traffic on a settled tunnel: the tick stays slow ------------------------------------------
# A ping every 20 ms for 8 s through a settled tunnel (no handshake, nothing to confirm): the
# timer rules count from the packets' timestamps (timers_next_due), so a's control loop still
# ticks about once a second, at most 14 wake-ups in 8 s; the short tick would be 32. The pings
# are the data threads' work: they never wake the control loop.
# The echoes a's daemon wrote into its TAP: the kernel's count, read without waking the daemon.
tap_echoes() { ip netns exec "$NS_A" cat "/sys/class/net/$TAP/statistics/rx_packets"; }
echoes_since() { (($(tap_echoes) >= $1 + 5)); }
e0=$(tap_echoes)
spawn "$NS_A" "$TMP/tick-ping.out" ping -n -q -i 0.02 -w 9 "$TUN4_B"
tick_ping=$SPAWNED_PID
check "traffic: the echoes come back" wait_until 5 echoes_since "$e0"
w0=$(main_wakeups)
sleep 8 # the window counted
w1=$(main_wakeups)
wait "$tick_ping" # ping -w 9 ends it
received=$(awk '/packets transmitted/ { print $4 }' "$TMP/tick-ping.out")
check "traffic: $((${received:-0})) of the pings answered in 9 s (at least 350)" \
        test "${received:-0}" -ge 350
check "traffic: a's control loop woke $((w1 - w0)) times in 8 s of pings (at most 14)" \
        test "$((w1 - w0))" -le 14

shutdown_checks() {
        local side=$1 sig=$2 ns=$3
        if stop_daemon "$side" "$sig" 10; then
                pass "SIG$sig: $side exits within 10 s"
                check "SIG$sig: $side exits with status 0" test "$EXIT_CODE" = 0
        else
                fail "SIG$sig: $side exits within 10 s"
        fi
        check "SIG$sig: $side's $TAP is gone" link_gone "$ns" "$TAP"
        check "SIG$sig: $side logs 'shutting down'" log_has "$side" "shutting down"
        check "SIG$sig: $side logs '$TAP removed'" log_has "$side" "$TAP removed"
        check "SIG$sig: $side logs its stats at exit" log_has "$side" "stats: tx_packets="
}
shutdown_checks a TERM "$NS_A"
shutdown_checks b INT "$NS_B"

summary
