#!/bin/bash
# SPDX-License-Identifier: MIT
#
# NAT discovery (c8): each daemon runs STUN with RFC 5780 behaviour discovery against coturn at
# start-up, from its own port 9001, and must name the NAT the test built in front of it:
#   n1  a no NAT (on the internet itself)   b port-restricted cone (masquerade)
#   n2  a symmetric (masquerade fully-random)  b full cone (masquerade + dnat of port 9001)
# Checked in the start-up log line "public endpoint A:P, NAT type T (mapping M, filtering F)",
# the NatType and PublicEndpoint properties, the NetCheck() method, and `shadowmeshctl netcheck
# --json` (a build without that command fails). No relay is needed; when shadowmesh-relay is
# built, the daemons are configured with it and NetCheck() must find it reachable.
set -euo pipefail
source "$(dirname "$(readlink -f "$0")")/lib.sh"

nat_init
need python3 python3

KEY=$(random_hex_key)
WITH_RELAY=0
[[ -z ${SHADOWMESH_RELAY:-} ]] || WITH_RELAY=1
# shadowmeshctl netcheck is part of what this test proves: a build without shadowmeshctl, or a
# shadowmeshctl without the command, fails here rather than checking less.
if [[ -z ${SHADOWMESHCTL:-} ]]; then
        fail "shadowmeshctl is built (SHADOWMESHCTL is set by tests/nat/meson.build)"
        summary
fi
check "shadowmeshctl --help lists netcheck" \
        bash -c '"$1" --help 2>&1 | grep -qw netcheck' _ "$SHADOWMESHCTL"

# json_get KEY: the value of KEY in the JSON object on stdin ("" when absent). Accepts the
# object itself or busctl's {"type": "a{sv}", "data": [{KEY: {"type": ..., "data": V}}]}.
json_get() {
        python3 -c '
import json, sys
key = sys.argv[1]
try:
    doc = json.load(sys.stdin)
except ValueError:
    sys.exit(0)
if isinstance(doc, dict) and "data" in doc and isinstance(doc["data"], list) and doc["data"]:
    doc = doc["data"][0]
v = doc.get(key, "") if isinstance(doc, dict) else ""
if isinstance(v, dict) and "data" in v:
    v = v["data"]
if isinstance(v, bool):
    v = "true" if v else "false"
print(v)
' "$1"
}

# netcheck_side SIDE WANT_TYPE WANT_MAPPING WANT_FILTERING: WANT_MAPPING/FILTERING "" = not
# checked (no NAT: the RFC leaves them meaningless).
netcheck_side() {
        local side=$1 want=$2 want_m=$3 want_f=$4 wan ep line type m f out
        wan=$([[ $side == a ]] && echo "$WAN_A" || echo "$WAN_B")
        if ! check "$CASE $side: start-up log line 'public endpoint ..., NAT type ...'" \
                wait_log "$side" "NAT type" 30; then
                return 0
        fi
        line=$(current_log "$side" | grep -m 1 "public endpoint .*NAT type")
        note "$CASE $side: ${line#*shadowmeshd: }"
        ep=$(sed -n 's/.*public endpoint \([0-9.:]*\), NAT type.*/\1/p' <<<"$line")
        type=$(sed -n 's/.*NAT type \([a-z-]*\).*/\1/p' <<<"$line")
        m=$(sed -n 's/.*(mapping \([a-z-]*\), filtering \([a-z-]*\)).*/\1/p' <<<"$line")
        f=$(sed -n 's/.*(mapping \([a-z-]*\), filtering \([a-z-]*\)).*/\2/p' <<<"$line")
        check_eq "$CASE $side: log: NAT type" "$type" "$want"
        check_eq "$CASE $side: log: public address" "${ep%:*}" "$wan"
        # Masquerade keeps the source port while it is free; fully-random never does.
        [[ $want == symmetric ]] || check_eq "$CASE $side: log: public port" "${ep##*:}" "$PORT"
        [[ -z $want_m ]] || check_eq "$CASE $side: log: mapping" "$m" "$want_m"
        [[ -z $want_f ]] || check_eq "$CASE $side: log: filtering" "$f" "$want_f"

        check_eq "$CASE $side: NatType property" "$(prop "$side" NatType)" "$want"
        check_eq "$CASE $side: PublicEndpoint property" "$(prop "$side" PublicEndpoint)" "$ep"
        out=$(busctl --json=short --timeout=30 call "org.shadowmesh1.Instance.$side" \
                "/org/shadowmesh1/instance/$side" "$TUNNEL_IFACE" NetCheck 2>&1) || true
        note "$CASE $side: NetCheck() -> $out"
        check_eq "$CASE $side: NetCheck() NatType" "$(json_get NatType <<<"$out")" "$want"
        check_eq "$CASE $side: NetCheck() PublicEndpoint address" \
                "$(json_get PublicEndpoint <<<"$out" | sed 's/:[0-9]*$//')" "$wan"
        check_eq "$CASE $side: NetCheck() StunServer" "$(json_get StunServer <<<"$out")" \
                "$STUN_IP:$STUN_PORT"
        [[ -z $want_m ]] || check_eq "$CASE $side: NetCheck() NatMapping" \
                "$(json_get NatMapping <<<"$out")" "$want_m"
        [[ -z $want_f ]] || check_eq "$CASE $side: NetCheck() NatFiltering" \
                "$(json_get NatFiltering <<<"$out")" "$want_f"
        if ((WITH_RELAY)); then
                check_eq "$CASE $side: NetCheck() Relay" "$(json_get Relay <<<"$out")" \
                        "$RELAY_IP:$RELAY_PORT"
                check_eq "$CASE $side: NetCheck() RelayReachable" \
                        "$(json_get RelayReachable <<<"$out")" true
        fi

        out=$(timeout 60 "$SHADOWMESHCTL" -i "$side" --json netcheck 2>&1) || true
        note "$CASE $side: shadowmeshctl -i $side --json netcheck -> $out"
        check_eq "$CASE $side: shadowmeshctl --json netcheck: NatType" \
                "$(json_get NatType <<<"$out")" "$want"
        check_eq "$CASE $side: shadowmeshctl --json netcheck: PublicEndpoint address" \
                "$(json_get PublicEndpoint <<<"$out" | sed 's/:[0-9]*$//')" "$wan"
        # --json after the command, as `shadowmeshctl status --json` takes it.
        out=$(timeout 60 "$SHADOWMESHCTL" -i "$side" netcheck --json 2>&1) || true
        [[ $out == "{"* ]] || note "$CASE $side: shadowmeshctl -i $side netcheck --json -> $out"
        check_eq "$CASE $side: shadowmeshctl netcheck --json: NatType" \
                "$(json_get NatType <<<"$out")" "$want"
}

# netcheck_case CASE MODE_A MODE_B
netcheck_case() {
        topology_new "$1" "$2" "$3"
        check "$CASE: coturn listening" start_coturn
        local relay=""
        if ((WITH_RELAY)); then
                check "$CASE: shadowmesh-relay listening" start_relay
                relay=relay
        fi
        write_config "$TMP/$CASE-a.yaml" "$TUN_A/24" "$KEY" stun $relay
        write_config "$TMP/$CASE-b.yaml" "$TUN_B/24" "$KEY" stun $relay
        start_daemon a "$NS_A" "$TMP/$CASE-a.yaml"
        start_daemon b "$NS_B" "$TMP/$CASE-b.yaml"
        check "$CASE a: up" wait_until 15 daemon_up a
        check "$CASE b: up" wait_until 15 daemon_up b
}

readonly EI=endpoint-independent APD=address-and-port-dependent

netcheck_case n1 none cone
netcheck_side a no-nat "" ""
netcheck_side b port-restricted-cone "$EI" "$APD"
topology_del

netcheck_case n2 symmetric fullcone
netcheck_side a symmetric "$APD" "$APD"
netcheck_side b full-cone "$EI" "$EI"
topology_del

summary
