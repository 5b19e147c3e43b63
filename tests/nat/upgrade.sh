#!/bin/bash
# SPDX-License-Identifier: MIT
#
# From the relay to a direct path, by itself, under traffic (c5). Both sites behind
# port-restricted cones; the internet drops UDP between the two sites' public addresses (not to
# or from the relay or the STUN server), so the daemons start on the relay. Then the rule goes:
# the daemons' probes find the direct path and they switch to it ("(was relay)") while a ping
# every 0.2 s runs across the switch: at most 15 of its echoes may be lost, and the session is
# kept (no new handshake).
# Also measures iperf3 TCP (5 s, a -> b) over the relay and then over the direct path, with the
# same daemons in the same run, and prints both and their ratio.
set -euo pipefail
source "$(dirname "$(readlink -f "$0")")/lib.sh"

nat_init relay
need iperf3 iperf3

KEY=$(random_hex_key)
MAX_LOST=15

topology_new c5 cone cone
start_servers
block_sites
start_pair "$KEY"
time_to_ping c5 40
check_introduced
check "c5: ping b->a" wait_ping "$(secs 10)" "$NS_B" "$TUN_A"
check_path a relay 10
check_path b relay 5
check "c5: the internet dropped the direct attempts ($(blocked_count) packets)" \
        test "$(blocked_count)" -gt 0
check_relay_use a yes

iperf_run relay
MB_RELAY=$IPERF_MBITS

# A ping every 0.2 s across the switch.
hs_a=$(current_log a | grep -c "handshake complete" || true)
hs_b=$(current_log b | grep -c "handshake complete" || true)
spawn "$NS_A" "$TMP/c5-ping.out" ping -i 0.2 -W 1 "$TUN_B"
PING_PID=$SPAWNED_PID
replies() { grep -c "bytes from" "$TMP/c5-ping.out" || true; }
replies_at_least() { (($(replies) >= $1)); }
check "c5: continuous ping answered over the relay" wait_until "$(secs 10)" replies_at_least 5

unblock_sites
t0=$(now_ms)
check_path a direct 30
t=$(($(now_ms) - t0))
note "c5: block removed -> a's Path direct: $(awk -v t="$t" 'BEGIN { printf "%.1f", t / 1000 }') s"
check_path b direct 10
check "a: log says 'path to peer: direct via $WAN_B:$PORT (was relay)'" \
        log_has a "path to peer: direct via $WAN_B:$PORT (was relay)"
check "b: log says 'path to peer: direct via $WAN_A:$PORT (was relay)'" \
        log_has b "path to peer: direct via $WAN_A:$PORT (was relay)"
# Three more seconds of echoes on the direct path, then the tally.
n=$(replies)
check "c5: continuous ping answered on the direct path" \
        wait_until "$(secs 10)" replies_at_least $((n + 15))
kill_own INT "$PING_PID" || true
wait_until 5 has_exited "$PING_PID" || true
{ wait "$PING_PID"; } 2>/dev/null || true
read -r sent got < <(sed -n 's/^\([0-9]*\) packets transmitted, \([0-9]*\) received.*/\1 \2/p' \
        "$TMP/c5-ping.out")
note "c5: continuous ping across the switch: ${sent:-?} sent, ${got:-?} answered"
if [[ -n ${sent:-} && -n ${got:-} ]]; then
        check "c5: at most $MAX_LOST echoes lost across the switch (lost $((sent - got)) of $sent)" \
                test $((sent - got)) -le "$MAX_LOST"
else
        fail "c5: ping printed its statistics" "$(tail -n 3 "$TMP/c5-ping.out")"
fi
check_eq "a: the session was kept (no new handshake)" \
        "$(current_log a | grep -c "handshake complete" || true)" "$hs_a"
check_eq "b: the session was kept (no new handshake)" \
        "$(current_log b | grep -c "handshake complete" || true)" "$hs_b"
check_relay_use a no

iperf_run direct
MB_DIRECT=$IPERF_MBITS
check "a still running" alive a
check "b still running" alive b
topology_del

if [[ -n $MB_RELAY && -n $MB_DIRECT ]]; then
        note "iperf3 TCP 5 s a->b: relay $MB_RELAY Mbit/s, direct $MB_DIRECT Mbit/s," \
                "relay/direct = $(awk -v r="$MB_RELAY" -v d="$MB_DIRECT" \
                        'BEGIN { if (d > 0) printf "%.2f", r / d; else print "n/a" }')"
fi
summary
