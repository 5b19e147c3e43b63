#!/bin/bash
# SPDX-License-Identifier: MIT
#
# Issue 9, item 1: in shared-key mode (Noise_NNpsk0) a node's own initiation, sent back to it,
# is a valid initiation. An attacker who only sees the traffic (tests/netns/reflector, in b's
# namespace, watching b's veth) bounces every initiation of a back to a from its own port: at
# once (a's handshake is in flight) and again 4 s later (it has finished). a must refuse both:
#  - the tunnel still comes up with the real peer b, and keeps working afterwards;
#  - a never completes a handshake with the reflector's address, and keeps b as its endpoint;
#  - a counts and logs (rate-limited) each refusal: rx_reflected.
#
#   sm$$-a: smt0 10.0.0.1/24, veth0 10.99.41.1 (initiator)
#   sm$$-b: smt0 10.0.0.2/24, veth0 10.99.41.2 (waits), and the reflector

# Functions here are called through check/wait_until, which shellcheck cannot see.
# shellcheck disable=SC2317
set -euo pipefail
# shellcheck source=tests/netns/lib.sh
source "$(dirname "$(readlink -f "$0")")/lib.sh"

netns_init 41
if [[ -z ${SM_REFLECTOR:-} ]]; then
        SM_REFLECTOR=$(dirname "$SHADOWMESHD")/../tests/netns/reflector
fi
require_program SM_REFLECTOR
setup_pair

KEY=$(random_hex_key)
write_config "$TMP/a.yaml" ip4=$TUN4_A/24 peer="$UNDER_B:$PORT" key="$KEY"
write_config "$TMP/b.yaml" ip4=$TUN4_B/24 peer="" key="$KEY"

# The delayed copy comes 4 s after the original: a's first initiation gets no answer (b is
# not up yet) and its retry comes 5 s later, so each delayed copy lands after the handshake it
# belongs to has been superseded or finished.
spawn "$NS_B" "$TMP/reflector.log" "$SM_REFLECTOR" veth0 "$PORT" 4000
check "reflector listening in b's namespace" wait_until 10 grep -q '^listening' "$TMP/reflector.log"
bounced() { grep -c '^bounced' "$TMP/reflector.log" || true; }
bounced_at_least() { (($(bounced) >= $1)); }

# In flight: b is not running yet, so a's initiation is unanswered when it comes back.
start_daemon a "$NS_A" "$TMP/a.yaml"
check "the reflector bounced a's first initiation back to a at once" \
        wait_until 10 bounced_at_least 1
check "a refused its own initiation in flight" wait_log a "our own initiation sent back to us" 5
check "a counts it in rx_reflected" wait_until 5 stat_at_least a rx_reflected 1

# The real peer appears: a's next retry must complete with it, bounces or not.
start_daemon b "$NS_B" "$TMP/b.yaml"
check "b listening" wait_log b "listening on udp port $PORT" 10
check "the tunnel comes up with b all the same" \
        wait_log a "handshake complete with peer $UNDER_B:$PORT" 20
check "ping a->b" wait_ping 15 "$NS_A" "$TUN4_B"
check "ping b->a" wait_ping 10 "$NS_B" "$TUN4_A"

# Finished: the delayed copy of the initiation that just succeeded.
request_stats a || true
r0=$(get_stat a rx_reflected)
b0=$(bounced)
check "the reflector bounced a's initiation again after the handshake" \
        wait_until 10 bounced_at_least $((b0 + 1))
check "a refused it (rx_reflected grew)" wait_until 5 stat_at_least a rx_reflected $((${r0:-0} + 1))
check "a logs the refusal of a finished initiation" \
        wait_log a "one of our own initiations sent back to us" 5
check "a counts every bounce it received in rx_reflected" \
        wait_until 10 stat_at_least a rx_reflected "$(bounced)"
note "a: $(current_log a | grep 'stats: ' | tail -n 1)"

# Every handshake a completed was with b's own port, never the reflector's.
others=$(current_log a | grep -F "handshake complete with peer" |
        grep -vF "handshake complete with peer $UNDER_B:$PORT " || true)
check "a completed no handshake with the reflector" test -z "$others"
check "ping a->b after the bounces" ping_all "$NS_A" "$TUN4_B" 3
check "ping b->a after the bounces (a's endpoint for b unchanged)" ping_all "$NS_B" "$TUN4_A" 3
moved=$(current_log a | grep -F "path to peer:" | grep -vF "via $UNDER_B:$PORT" || true)
check "a never moved its path to the reflector" test -z "$moved"
check "a still running" alive a
check "b still running" alive b

summary
