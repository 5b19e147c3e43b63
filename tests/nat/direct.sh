#!/bin/bash
# SPDX-License-Identifier: MIT
#
# Direct paths through NATs, the peers introduced by the relay (peer.address "" on both sides):
#   c1  no NAT: both hosts on the internet namespace                     -> direct
#   c2  port-restricted cone on both sides (masquerade)                  -> direct (both punch)
#   c3  a symmetric (masquerade fully-random), b full cone (+ dnat 9001) -> direct: b answers
#       a's peer-reflexive address, which no STUN reply and no relay told it
# Each case: both daemons register with the relay and are introduced, the handshake completes,
# ping both ways through the tunnel, Path is "direct" (D-Bus property and log line), the peer's
# Endpoint is its public address (in c3, b's is a peer-reflexive one), and the echoes do not go
# through the relay. Prints the time
# from starting the second daemon to the first ping answered in c2 (for the lead's note).
set -euo pipefail
source "$(dirname "$(readlink -f "$0")")/lib.sh"

nat_init relay

KEY=$(random_hex_key)

# not_listed ITEM "A, B, C": ITEM is not empty and is none of the list's items.
not_listed() {
        [[ -n $1 && -n $2 ]] || return 1
        [[ ", $2, " != *", $1, "* ]]
}

# direct_case CASE MODE_A MODE_B
direct_case() {
        local c=$1
        topology_new "$c" "$2" "$3"
        start_servers
        start_pair "$KEY"
        time_to_ping "$c" 30
        check_introduced
        check_pings "$c"
        check_path a direct 10
        check_path b direct 5
        check "a: log says 'path to peer: direct via $WAN_B:'" \
                log_has a "path to peer: direct via $WAN_B:"
        check "b: log says 'path to peer: direct via $WAN_A:'" \
                log_has b "path to peer: direct via $WAN_A:"
        check "a: Endpoint is at b's public address $WAN_B ($(prop a Endpoint))" \
                endpoint_ip_is a "$WAN_B"
        check "b: Endpoint is at a's public address $WAN_A ($(prop b Endpoint))" \
                endpoint_ip_is b "$WAN_A"
        # Ports: a cone or no NAT keeps 9001; a symmetric NAT's port is its own choice.
        [[ $3 == symmetric ]] || check_eq "a: Endpoint is $WAN_B:$PORT" "$(prop a Endpoint)" "$WAN_B:$PORT"
        [[ $2 == symmetric ]] || check_eq "b: Endpoint is $WAN_A:$PORT" "$(prop b Endpoint)" "$WAN_A:$PORT"
        if [[ $2 == symmetric ]]; then
                # a's NAT picked a new port for the flow to b: b can only have learnt it from
                # where a's packets came from, not from what the relay told it.
                local cands ep
                cands=$(current_log b | sed -n 's/.*relay introduced peer: candidates //p' | tail -n 1)
                ep=$(prop b Endpoint)
                note "$CASE b: relay's candidates for a: $cands; b's Endpoint: $ep"
                check "b: Endpoint $ep is peer-reflexive (none of the relay's candidates: $cands)" \
                        not_listed "$ep" "$cands"
        fi
        check_relay_use a no
        check "a still running" alive a
        check "b still running" alive b
}

direct_case c1 none none
topology_del
direct_case c2 cone cone
T_DIRECT=$TIME_TO_PING
topology_del
direct_case c3 symmetric fullcone
topology_del

note "time from starting the second daemon to the first ping, direct path (c2, cone/cone): ${T_DIRECT:-n/a} s"
summary
