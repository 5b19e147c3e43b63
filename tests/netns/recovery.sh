#!/bin/bash
# SPDX-License-Identifier: MIT
#
# The tunnel heals without anyone touching the surviving side:
#  - the initiator is killed with SIGKILL (no goodbye, no TAP cleanup by the daemon) and
#    started again: traffic flows within 30 s; the other daemon keeps its PID;
#  - the same for the side that waits: the initiator notices its keys no longer work and
#    handshakes again (at the latest by WireGuard's rule: sent data, no reply within 15 s;
#    restart.sh holds the tighter 5 s bound of the faster paths): within 40 s, and
#    traffic flows again (within 60 s: see passive_restart for the ARP cache);
#  - the waiting side stopped with SIGTERM and started again at once;
#  - roaming: a's underlay address changes; b follows the source address of a's authenticated
#    packets, and its replies reach a at the new address, within 2 s (roaming.sh covers both
#    address families and a side that has nothing to send).
#
#   sm$$-a: smt0 10.0.0.1/24, veth0 10.99.14.1 -> 10.99.14.3 (initiator)
#   sm$$-b: smt0 10.0.0.2/24, veth0 10.99.14.2 (waits)

# Functions here are called through check/wait_until, which shellcheck cannot see.
# shellcheck disable=SC2317,SC2016
set -euo pipefail
# shellcheck source=tests/netns/lib.sh
source "$(dirname "$(readlink -f "$0")")/lib.sh"

netns_init 14
setup_pair

KEY=$(random_hex_key)
write_config "$TMP/a.yaml" ip4=$TUN4_A/24 peer="$UNDER_B:$PORT" key="$KEY"
write_config "$TMP/b.yaml" ip4=$TUN4_B/24 peer="" key="$KEY"

start_daemon b "$NS_B" "$TMP/b.yaml"
check "b listening" wait_log b "listening on udp port $PORT" 10
start_daemon a "$NS_A" "$TMP/a.yaml"
check "handshake complete on a" wait_log a "handshake complete with peer $UNDER_B:$PORT" 15
check "ping a->b" wait_ping 20 "$NS_A" "$TUN4_B"
check "ping b->a" wait_ping 10 "$NS_B" "$TUN4_A"

# same_daemon NAME PID: NAME is still the process PID, and running.
same_daemon() { [[ ${DAEMON_PID[$1]} == "$2" ]] && alive "$1"; }

# timed_ping LABEL SECONDS NS ADDR: poll, and say how long it took.
timed_ping() {
        local label=$1 secs=$2 t0 t1
        t0=$(now_ms)
        if wait_ping "$secs" "$3" "$4"; then
                t1=$(now_ms)
                pass "$label within $secs s (took $(((t1 - t0) / 1000)).$((((t1 - t0) % 1000) / 100)) s)"
        else
                fail "$label within $secs s"
        fi
}

# kill_and_restart SIDE NS SIGNAL CONFIG
kill_and_restart() {
        local side=$1 ns=$2 sig=$3 config=$4
        local want=0
        [[ $sig == KILL ]] && want=137
        if stop_daemon "$side" "$sig" 10; then
                pass "SIG$sig $side: exits within 10 s"
                check "SIG$sig $side: exit status $want (got $EXIT_CODE)" test "$EXIT_CODE" = "$want"
        else
                fail "SIG$sig $side: exits within 10 s"
        fi
        check "SIG$sig $side: its $TAP is gone" wait_until 5 link_gone "$ns" "$TAP"
        start_daemon "$side" "$ns" "$config"
        check "restarted $side: $TAP up" wait_log "$side" "$TAP up" 10
}

# ---- the initiator dies -----------------------------------------------------------------------
PID_B=${DAEMON_PID[b]}
hs_b=$(log_count b "handshake complete")
kill_and_restart a "$NS_A" KILL "$TMP/a.yaml"
timed_ping "restarted a: ping a->b" 30 "$NS_A" "$TUN4_B"
check "restarted a: ping b->a" wait_ping 10 "$NS_B" "$TUN4_A"
check "restarted a: b handshook again" test "$(log_count b "handshake complete")" -gt "$hs_b"
check "restarted a: b was not touched (same PID $PID_B, running)" \
        same_daemon b "$PID_B"

# ---- the waiting side dies --------------------------------------------------------------------
# a notices by rule 3 of timers.c at the latest (data sent, nothing authenticated back for 15 s;
# rule 3b and b's answer to data for an unknown session are faster, see restart.sh) and handshakes
# again. Traffic then also needs a's neighbour entry for b: if b's TAP came back with another
# MAC address, a keeps sending to the old one until its ARP entry expires (15-45 s reachable
# time, then 5 s delay and 3 probes), so ping gets 60 s and the MAC is checked on its own.
# passive_restart LABEL SIGNAL
passive_restart() {
        local label=$1 sig=$2 t0 hs_a mac_before mac_after
        PID_A=${DAEMON_PID[a]}
        hs_a=$(log_count a "handshake complete")
        mac_before=$(mac_of "$NS_B" "$TAP")
        kill_and_restart b "$NS_B" "$sig" "$TMP/b.yaml"
        t0=$(now_ms)
        mac_after=$(mac_of "$NS_B" "$TAP")
        # ping from a all along: it is a's unanswered data that makes a handshake again.
        pinger() {
                ping_ok "$NS_A" "$TUN4_B" || true
                (($(log_count a "handshake complete") > hs_a))
        }
        if wait_until 40 pinger; then
                pass "$label: a handshakes again within 40 s (took $((($(now_ms) - t0) / 1000)) s)"
        else
                fail "$label: a handshakes again within 40 s"
        fi
        # 60 s from the restart, the wait for the handshake included.
        local left=$((60 - ($(now_ms) - t0) / 1000))
        ((left > 0)) || left=1
        if wait_ping "$left" "$NS_A" "$TUN4_B"; then
                pass "$label: ping a->b within 60 s of the restart (took $((($(now_ms) - t0) / 1000)) s)"
        else
                fail "$label: ping a->b within 60 s of the restart"
        fi
        echo "# $label: b's $TAP MAC $mac_before -> $mac_after;" \
                "a's entry: $(ip -n "$NS_A" neigh show "$TUN4_B" dev "$TAP" 2>&1 || true)"
        check "$label: b's $TAP keeps its MAC address across the restart" \
                test -n "$mac_before" -a "$mac_before" = "$mac_after"
        check "$label: ping b->a" wait_ping 10 "$NS_B" "$TUN4_A"
        check "$label: a was not touched (same PID $PID_A, running)" \
                same_daemon a "$PID_A"
}
passive_restart "restarted b (SIGKILL)" KILL

# ---- the waiting side stops cleanly and comes straight back -----------------------------------
passive_restart "restarted b (SIGTERM)" TERM

# ---- roaming: a moves to another underlay address ---------------------------------------------
NEW_A=10.99.14.3
na sysctl -qw net.ipv4.conf.veth0.promote_secondaries=1
ip -n "$NS_A" addr add "$NEW_A/24" dev veth0
ip -n "$NS_A" addr del "$UNDER_A/24" dev veth0
check "roaming: a has only $NEW_A on veth0" \
        test "$(ip -n "$NS_A" -4 -o addr show dev veth0 | awk '{ print $4 }')" = "$NEW_A/24"
# b's replies reach a only if b now sends to NEW_A: nothing answers ARP for UNDER_A any more.
timed_ping "roaming: ping a->b from $NEW_A" 2 "$NS_A" "$TUN4_B"
check "roaming: ping b->a" wait_ping 2 "$NS_B" "$TUN4_A"
check "roaming: ping b->a, 5 of 5 answered" ping_all "$NS_B" "$TUN4_A" 5
check "a still running" alive a
check "b still running" alive b

summary
