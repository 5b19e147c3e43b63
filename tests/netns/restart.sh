#!/bin/bash
# SPDX-License-Identifier: MIT
#
# A restart on either side: the tunnel carries traffic again within 5 s, with no operator
# action, while a pings b every 0.2 s (a user's traffic). Each case prints its recovery time:
# from the restarted daemon's start to the first ping reply after it.
#  - b (the side that waits) is killed with SIGKILL and started again: a keeps sending data on
#    keys the new b does not know. b answers with a handshake initiation once a has sent it at
#    least that many bytes (per-source byte credit), and a, whose chatty peer stopped answering,
#    handshakes again after 2.5 s (timers.c rule 3b). WireGuard's bound here is 15 s.
#  - a (the initiator) is killed with SIGKILL and started again: it handshakes at start.
#  - no amplification: the new b never sent a more bytes than it received from it before the
#    handshake completed (counted by nftables on b's underlay).
# Both sides stay `connected` once recovered, and the survivor keeps its PID.

# Functions here are called through check/wait_until, which shellcheck cannot see.
# shellcheck disable=SC2317
set -euo pipefail
# shellcheck source=tests/netns/faults-lib.sh
source "$(dirname "$(readlink -f "$0")")/faults-lib.sh"

faults_init 21

start_node b
check "b up" wait_until 10 node_up b

# ---- no amplification: what b, with no session, answers to data for unknown sessions ---------
# stale_data N LEN: N data messages of LEN bytes from a fresh port of a's namespace.
stale_data() {
        ip netns exec "$NS_A" "$SM_UDP_TOOL" stale-data "$UNDER_B" "$PORT" "$1" "$2" 1500 \
                >"$TMP/stale.out" 2>&1
}
field() { awk -v k="$1" '$1 == k { print $2 }' "$TMP/stale.out"; }
stale_data 3 40
echo "# 3 x 40 B of stale data: $(tr '\n' ' ' <"$TMP/stale.out")"
check_eq "120 B of stale data (less than an initiation) get no answer" "$(field received_bytes)" 0
stale_data 150 100
echo "# 150 x 100 B of stale data over 1.5 s: $(tr '\n' ' ' <"$TMP/stale.out")"
sent=$(field sent_bytes) got=$(field received_bytes) inits=$(field received_initiations)
check "15000 B of stale data get an initiation back" test "${inits:-0}" -ge 1
check "... at most one per second (got $inits in 3 s)" test "${inits:-0}" -le 3
check "... never more bytes back than sent ($got <= $sent)" test "${got:-1}" -le "${sent:-0}"
check "... and nothing but initiations ($got = $inits x 100 B, shared-key mode)" \
        test "${got:-1}" -eq "$((${inits:-0} * 100))"

start_node a
check "a up" wait_until 10 node_up a
check "a connected" wait_until 15 state_is a connected
check "b connected" wait_until 15 state_is b connected
start_pinger
check "ping a->b flows" wait_until 10 reply_after 0

# kill_restart NAME: SIGKILL NAME, wait for it to exit, start it again; RESTART_MS is when.
RESTART_MS=0
kill_restart() {
        if stop_daemon "$1" KILL 10; then
                pass "SIGKILL $1: exits (status $EXIT_CODE)"
        else
                fail "SIGKILL $1: exits"
        fi
        check "SIGKILL $1: its $TAP is gone" wait_until 5 link_gone "$([[ $1 == a ]] && echo "$NS_A" || echo "$NS_B")" "$TAP"
        RESTART_MS=$(now_ms)
        start_node "$1"
        check "restarted $1: up" wait_until 10 node_up "$1"
}

# recovered LABEL: the first reply after RESTART_MS came within 5 s of it.
recovered() {
        local label=$1 t
        if ! wait_until 20 reply_after "$RESTART_MS"; then
                fail "$label: ping a->b within 5 s of the restart (no reply within 20 s)"
                return
        fi
        t=$(($(first_reply_after "$RESTART_MS") - RESTART_MS))
        echo "# $label: recovery time $((t / 1000)).$(((t % 1000) / 100)) s"
        check "$label: ping a->b within 5 s of the restart (took ${t} ms)" test "$t" -le 5000
}

# ---- b, the side that waits, is killed and restarted --------------------------------------
PID_A=${DAEMON_PID[a]}
kill_restart b
recovered "restarted b (SIGKILL)"
check "restarted b: connected" wait_until 5 state_is b connected
check "restarted b: a connected" wait_until 5 state_is a connected
check "restarted b: a was not touched (same PID)" test "${DAEMON_PID[a]}" = "$PID_A"
check "restarted b: a still running" alive a
if log_has b "data for a session we do not know"; then
        echo "# restarted b: b initiated toward a's data for an unknown session"
else
        echo "# restarted b: a's handshake (rule 3b) came first"
fi

# ---- a, the initiator, is killed and restarted --------------------------------------------
kill_restart a
# The pinger ran in a's namespace and survives a's daemon; replies resume when a is back.
recovered "restarted a (SIGKILL)"
check "restarted a: connected" wait_until 5 state_is a connected
check "restarted a: b connected" wait_until 5 state_is b connected

# ---- b restarted twice in a row (the credit and the timers start afresh each time) ----------
kill_restart b
recovered "restarted b again (SIGKILL)"

summary
