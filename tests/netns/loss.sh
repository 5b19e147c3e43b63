#!/bin/bash
# SPDX-License-Identifier: MIT
#
# 10% random loss in each direction on the underlay (nftables `numgen random`, both ways at b's
# veth0; this kernel has no netem):
#  - over 60 s of pings (a -> b every 0.2 s) the tunnel stays up: State stays `connected` on
#    both sides the whole time (checked every 0.5 s), Path stays direct, no stretch of 3 s without
#    a reply, and at least 70 % of the echoes come back (about 81 % expected: 0.9 x 0.9);
#  - b is killed and restarted under the same loss: traffic again within 5 s plus an allowance of
#    one lost handshake round (6 s, see below); the recovery time is printed.
#
# The allowance: a handshake needs an initiation and a response through the lossy link (each
# lost with 10 %), so a round fails with about 19 % (and a ping needs two more crossings). After
# a restart both sides start a round each, independently (b's answer to a's stale data, a's
# rule 3b), and b tries again with every further second of a's traffic (per-source credit, one
# initiation per second), so failing past 5 s takes four or five lost rounds in a row (< 0.2 %);
# 6 s more covers one REKEY_TIMEOUT retry with jitter on top should every one of those be lost.

# shellcheck disable=SC2317
set -euo pipefail
# shellcheck source=tests/netns/faults-lib.sh
source "$(dirname "$(readlink -f "$0")")/faults-lib.sh"

faults_init 22
readonly LOSS=10 SOAK=${SM_SOAK_SEC:-60} BOUND=5 ALLOWANCE=6

start_node b
check "b up" wait_until 10 node_up b
start_node a
check "a up" wait_until 10 node_up a
check "a connected" wait_until 15 state_is a connected
check "b connected" wait_until 15 state_is b connected

loss_on "$NS_B" "$LOSS"
check "the loss rules are in place" ip netns exec "$NS_B" nft list table inet smloss
start_pinger
T_START=$(now_ms)

# ---- 60 s of pings under loss ---------------------------------------------------------------
bad_states=0 samples=0 not_direct=0
end=$((T_START + SOAK * 1000))
while (($(now_ms) < end)); do
        sa=$(prop a State) sb=$(prop b State) pa=$(prop a Path)
        samples=$((samples + 1))
        if [[ $sa != connected || $sb != connected ]]; then
                bad_states=$((bad_states + 1))
                echo "# $(secs_since "$T_START") s: a $sa, b $sb"
        fi
        [[ $pa == direct ]] || not_direct=$((not_direct + 1))
        sleep 0.5
done
T_END=$(now_ms)
got=$(replies_after "$T_START")
echo "# ${SOAK} s under ${LOSS} % loss each way: $got replies, $(loss_dropped "$NS_B") datagrams dropped, longest gap $(longest_gap "$T_START" "$T_END") ms"
check "both sides connected in all $samples samples over $SOAK s" test "$bad_states" -eq 0
check "Path direct in all $samples samples" test "$not_direct" -eq 0
check "at least 70 % of $((SOAK * 5)) echoes answered (got $got)" test "$got" -ge $((SOAK * 5 * 70 / 100))
check "no 3 s without a reply (longest $(longest_gap "$T_START" "$T_END") ms)" \
        test "$(longest_gap "$T_START" "$T_END")" -lt 3000
check "the loss really dropped packets" test "$(loss_dropped "$NS_B")" -gt 0

# ---- a restart under loss ---------------------------------------------------------------------
if stop_daemon b KILL 10; then
        pass "SIGKILL b under loss: exits"
else
        fail "SIGKILL b under loss: exits"
fi
check "b's $TAP is gone" wait_until 5 link_gone "$NS_B" "$TAP"
T_RESTART=$(now_ms)
start_node b
check "restarted b: up" wait_until 10 node_up b
limit=$((BOUND + ALLOWANCE))
if wait_until $((limit * 3)) reply_after "$T_RESTART"; then
        t=$(($(first_reply_after "$T_RESTART") - T_RESTART))
        echo "# restart under ${LOSS} % loss: recovery time $((t / 1000)).$(((t % 1000) / 100)) s"
        check "restart under loss: ping a->b within $BOUND s + $ALLOWANCE s (took $t ms)" \
                test "$t" -le $((limit * 1000))
else
        fail "restart under loss: ping a->b within $BOUND s + $ALLOWANCE s (none in $((limit * 3)) s)"
fi
check "restarted b: connected" wait_until 10 state_is b connected
check "a connected" wait_until 10 state_is a connected

summary
