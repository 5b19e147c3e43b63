#!/bin/bash
# SPDX-License-Identifier: MIT
#
# The relay as the last resort, both sites behind symmetric NATs (masquerade fully-random):
#   c4  no direct path can work: the tunnel runs through shadowmesh-relay; ping both ways, Path
#       "relay" (D-Bus property and log line), the echoes counted as relayed
#   c7  a capture in the internet namespace of everything to and from the relay, while pinging
#       with a marker payload: the relayed datagrams are there (both directions, full size),
#       the marker never is (a control capture on a's TAP does show it), and no ICMP echo
#       crosses the internet
#   c6  the relay is killed (SIGKILL) while the tunnel runs over it: the pings stop; it is
#       started again: the daemons register again and the tunnel carries traffic within 30 s,
#       still over the relay
# Prints the time from starting the second daemon to the first ping answered (relay path).
set -euo pipefail
source "$(dirname "$(readlink -f "$0")")/lib.sh"

nat_init relay
need tcpdump tcpdump
need od coreutils

KEY=$(random_hex_key)
MARKER=5a5a0123456789abcdeffedcba987654

# ---- c4 ---------------------------------------------------------------------------------------
topology_new c4 symmetric symmetric
start_servers
start_pair "$KEY"
time_to_ping c4 40
T_RELAY=$TIME_TO_PING
check_introduced
check_pings c4
check_path a relay 10
check_path b relay 5
check "a: log says 'path to peer: relay via $RELAY_IP:$RELAY_PORT'" \
        log_has a "path to peer: relay via $RELAY_IP:$RELAY_PORT"
check "b: log says 'path to peer: relay via $RELAY_IP:$RELAY_PORT'" \
        log_has b "path to peer: relay via $RELAY_IP:$RELAY_PORT"
check_relay_use a yes
check_relay_use b yes

# ---- c7: what the relay sees ------------------------------------------------------------------
contains() { [[ $1 == *"$2"* ]]; }
captures_ok=1
start_capture internet "$NS_INET" any "udp or icmp" || captures_ok=0
start_capture plain "$NS_A" "$TAP" icmp || captures_ok=0
check "c7: tcpdump listening in the internet namespace and on a's $TAP" test "$captures_ok" = 1
check "c7: ping -s 1000 -p $MARKER a->b, 10 of 10 answered" \
        in_ns "$NS_A" ping -c 10 -i 0.2 -W 2 -q -s 1000 -p "$MARKER" "$TUN_B"
stop_capture internet || true
stop_capture plain || true
if [[ -s $TMP/internet.pcap && -s $TMP/plain.pcap ]]; then
        check "c7: control: the marker is in the capture of a's $TAP" \
                contains "$(pcap_hex "$TMP/plain.pcap")" "$MARKER"
        check "c7: the marker is nowhere in the capture of the internet" \
                test "$(pcap_hex "$TMP/internet.pcap" | grep -c "$MARKER" || true)" = 0
        # Datagrams of >= 1000 bytes: a -> relay, relay -> b, and the replies back.
        big() {
                tcpdump -r "$TMP/internet.pcap" -n "$1" 2>/dev/null |
                        awk '/UDP, length/ { if ($NF + 0 >= 1000) n++ } END { print n + 0 }'
        }
        n_a_in=$(big "src host $WAN_A and dst host $RELAY_IP and dst port $RELAY_PORT")
        n_b_out=$(big "src host $RELAY_IP and src port $RELAY_PORT and dst host $WAN_B")
        n_b_in=$(big "src host $WAN_B and dst host $RELAY_IP and dst port $RELAY_PORT")
        n_a_out=$(big "src host $RELAY_IP and src port $RELAY_PORT and dst host $WAN_A")
        n_direct=$(big "host $WAN_A and host $WAN_B")
        # The pings themselves: echo requests and replies. Other ICMP may cross: a router's
        # "net unreachable" for a direct-path probe to a candidate it cannot route (a's probes
        # to b's host address, every PATH_PROBE_INTERVAL while on the relay).
        n_icmp=$(tcpdump -r "$TMP/internet.pcap" -n 'icmp[icmptype] == icmp-echo or icmp[icmptype] == icmp-echoreply' 2>/dev/null | wc -l)
        n_icmp_other=$(tcpdump -r "$TMP/internet.pcap" -n 'icmp and not (icmp[icmptype] == icmp-echo or icmp[icmptype] == icmp-echoreply)' 2>/dev/null | wc -l)
        note "c7: >= 1000 B datagrams: a->relay $n_a_in, relay->b $n_b_out, b->relay $n_b_in," \
                "relay->a $n_a_out, a<->b directly $n_direct; ICMP echoes: $n_icmp, other ICMP: $n_icmp_other"
        check "c7: the relay received the 10 echo requests from a's public address" test "$n_a_in" -ge 10
        check "c7: the relay forwarded them to b's public address" test "$n_b_out" -ge 10
        check "c7: the relay received the 10 replies from b" test "$n_b_in" -ge 10
        check "c7: the relay forwarded them to a" test "$n_a_out" -ge 10
        check "c7: no full-size datagram went between the sites directly" test "$n_direct" = 0
        check "c7: no ICMP echo (a ping outside the tunnel) on the internet" test "$n_icmp" = 0
else
        fail "c7: captures are not empty"
fi

# ---- c6: the relay restarts under a running tunnel --------------------------------------------
registrations() { current_log "$1" | grep -c "registered with relay" || true; }
regs_a=$(registrations a)
regs_b=$(registrations b)
all_lost() {
        local out
        out=$(in_ns "$1" ping -c 3 -i 0.2 -W 1 "$2" 2>&1 || true)
        [[ $out == *" 0 received"* ]]
}
stop_pid "$RELAY_PID" KILL
check "c6: relay killed" has_exited "$RELAY_PID"
check "c6: with the relay gone, the pings are lost" all_lost "$NS_A" "$TUN_B"
check "c6: shadowmesh-relay listening again" start_relay
t0=$(now_ms)
if wait_ping 30 "$NS_A" "$TUN_B"; then
        t=$(($(now_ms) - t0))
        pass "c6: ping a->b works again within 30 s of the relay's restart"
        note "c6: relay restarted -> first ping answered: $(awk -v t="$t" 'BEGIN { printf "%.1f", t / 1000 }') s"
else
        fail "c6: ping a->b works again within 30 s of the relay's restart"
fi
check "c6: ping b->a works again" wait_ping 10 "$NS_B" "$TUN_A"
check "c6: ping a->b, 10 of 10 answered" ping_all "$NS_A" "$TUN_B" 10
check "c6: a registered with the relay again" test "$(registrations a)" -gt "$regs_a"
check "c6: b registered with the relay again" test "$(registrations b)" -gt "$regs_b"
check_path a relay 5
check "a still running" alive a
check "b still running" alive b
topology_del

note "time from starting the second daemon to the first ping, relay path (c4, symmetric/symmetric): ${T_RELAY:-n/a} s"
summary
