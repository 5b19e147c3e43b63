#!/bin/bash
# SPDX-License-Identifier: MIT
#
# natcheck (src/natcheck.c) against a real STUN server: coturn, run in the foreground in a
# network namespace with two addresses and two ports, so that it answers RFC 5780 requests
# (OTHER-ADDRESS, CHANGE-REQUEST). tests/stun/natcheck-probe runs natcheck with a real socket
# and poll in the other namespaces:
#
#   [ sm$$-cli ] p0 10.98.X.2 --- r1 10.98.X.1 [ sm$$-rtr ] r0 10.97.X.10 --- s0 [ sm$$-srv ]
#                default via 10.98.X.1            ip_forward, nftables          10.97.X.1 :3478
#                                                                               10.97.X.2 :3479
#                                                                               coturn
#
#   1. from sm$$-rtr itself (its own address, nothing in between): no-nat, endpoint = own
#      address and port, RFC 5780 supported, filtering endpoint-independent;
#   2. the same with --public-only: test I alone;
#   3. sm$$-rtr drops UDP to the server: udp-blocked, after the RFC 8489 schedule (last of 4
#      requests at 1750 ms, then 1000 ms of waiting);
#   4. from sm$$-cli through `masquerade` (Linux conntrack: endpoint-independent mapping while
#      the source port is free, address-and-port-dependent filtering): port-restricted-cone;
#   5. through `masquerade fully-random`: symmetric.
# sm$$-srv has no route to 10.98.X.0/24: only the NAT makes cases 4 and 5 work.
#
# Needs root, ip, nft and turnserver (Debian package coturn); exits 77 (skip) without them.
# Environment: SM_NATCHECK_PROBE (the probe; set by meson), SM_VERBOSE=1 (print coturn's log
# and the probe's send/receive trace even when every check passed).

set -euo pipefail
# The shared helpers (wait_until, now_ms, ...); this script keeps its own pass/fail/summary.
# shellcheck source=tests/common.sh
source "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/../common.sh"

skip() {
        echo "SKIP: $*"
        exit 77
}

[[ $(id -u) == 0 ]] || skip "needs root (network namespaces)"
for tool in ip nft turnserver ss; do
        command -v "$tool" >/dev/null || skip "$tool not installed"
done
PROBE=${SM_NATCHECK_PROBE:-}
[[ -n $PROBE && -x $PROBE ]] || skip "SM_NATCHECK_PROBE does not name the natcheck-probe binary"

X=$(($$ % 200 + 20))
SRV_IP1=10.97.$X.1
SRV_IP2=10.97.$X.2
RTR_IP=10.97.$X.10
RTR_LAN=10.98.$X.1
CLI_IP=10.98.$X.2
PORT=3478
ALT_PORT=3479

NS_SRV="sm$$-srv"
NS_RTR="sm$$-rtr"
NS_CLI="sm$$-cli"
NAMESPACES=()
TMP=$(mktemp -d /tmp/shadowmesh-stun.XXXXXX)
TURN_PID=""
PASSED=0
FAILED=0

cleanup() {
        local rc=$?
        if [[ -n $TURN_PID ]]; then
                kill "$TURN_PID" 2>/dev/null || true
                wait "$TURN_PID" 2>/dev/null || true
        fi
        for ns in "${NAMESPACES[@]}"; do
                ip netns del "$ns" 2>/dev/null || true
        done
        if ((FAILED > 0)) || [[ ${SM_VERBOSE:-0} == 1 ]]; then
                for f in "$TMP"/*.log "$TMP"/*.trace; do
                        [[ -f $f ]] || continue
                        echo "---- $(basename "$f")"
                        cat "$f"
                done
        fi
        rm -rf "$TMP"
        exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

pass() {
        PASSED=$((PASSED + 1))
        echo "ok - $1"
}

fail() {
        FAILED=$((FAILED + 1))
        echo "FAIL - $1"
        shift
        (($# == 0)) || echo "       $*"
}

# expect NAME ACTUAL WANTED
expect() {
        if [[ $2 == "$3" ]]; then
                pass "$1 ($2)"
        else
                fail "$1" "got '$2', expected '$3'"
        fi
}



new_ns() {
        ip netns add "$1"
        NAMESPACES+=("$1")
        ip -n "$1" link set lo up
}

# ---- topology ----------------------------------------------------------------------------------

new_ns "$NS_SRV"
new_ns "$NS_RTR"
new_ns "$NS_CLI"

ip link add s0 netns "$NS_SRV" type veth peer name r0 netns "$NS_RTR"
ip -n "$NS_SRV" addr add "$SRV_IP1/24" dev s0
ip -n "$NS_SRV" addr add "$SRV_IP2/24" dev s0
ip -n "$NS_SRV" link set s0 up
ip -n "$NS_RTR" addr add "$RTR_IP/24" dev r0
ip -n "$NS_RTR" link set r0 up

ip link add r1 netns "$NS_RTR" type veth peer name p0 netns "$NS_CLI"
ip -n "$NS_RTR" addr add "$RTR_LAN/24" dev r1
ip -n "$NS_RTR" link set r1 up
ip -n "$NS_CLI" addr add "$CLI_IP/24" dev p0
ip -n "$NS_CLI" link set p0 up
ip -n "$NS_CLI" route add default via "$RTR_LAN"
ip netns exec "$NS_RTR" sysctl -qw net.ipv4.ip_forward=1

# ---- coturn ------------------------------------------------------------------------------------

# STUN only (no TURN relay, so no users, realm or database to set up); the user database points
# into our temp directory so that the system's /var/lib/turn is never opened.
cat >"$TMP/turnserver.conf" <<EOF
stun-only
no-auth
userdb=$TMP/turndb
no-software-attribute
EOF

# ip netns exec execs turnserver: $! is coturn's own PID.
ip netns exec "$NS_SRV" turnserver -c "$TMP/turnserver.conf" \
        --listening-ip "$SRV_IP1" --listening-ip "$SRV_IP2" \
        --listening-port "$PORT" --alt-listening-port "$ALT_PORT" \
        --no-cli --no-tls --no-dtls --no-tcp \
        --log-file stdout --simple-log --log-binding \
        --pidfile "$TMP/turnserver.pid" >"$TMP/coturn.log" 2>&1 &
TURN_PID=$!

# Ready when it listens on all four address/port pairs RFC 5780 needs.
coturn_listening() {
        local have
        kill -0 "$TURN_PID" 2>/dev/null || return 1
        have=$(ip netns exec "$NS_SRV" ss -Hnuln | awk '{print $4}' | sort -u | tr '\n' ' ')
        [[ $have == *"$SRV_IP1:$PORT "* && $have == *"$SRV_IP1:$ALT_PORT "* &&
                $have == *"$SRV_IP2:$PORT "* && $have == *"$SRV_IP2:$ALT_PORT "* ]]
}
if wait_until 20 coturn_listening; then
        pass "coturn listens on $SRV_IP1 and $SRV_IP2, ports $PORT and $ALT_PORT"
else
        fail "coturn did not come up"
        echo "$PASSED passed, $FAILED failed"
        exit 1
fi
pidfile_names_coturn() { [[ -s $TMP/turnserver.pid && $(<"$TMP/turnserver.pid") == "$TURN_PID" ]]; }
if wait_until 5 pidfile_names_coturn; then
        pass "coturn's pidfile names the process we started"
else
        fail "coturn's pidfile" "$(cat "$TMP/turnserver.pid" 2>/dev/null) != $TURN_PID"
fi

# ---- probes ------------------------------------------------------------------------------------

declare -A R
# probe NAME NS ARGS...: run natcheck-probe, load its key=value output into R.
probe() {
        local name=$1 ns=$2 key value
        shift 2
        R=()
        if ! ip netns exec "$ns" "$PROBE" -v "$@" >"$TMP/$name.out" 2>"$TMP/$name.trace"; then
                fail "$name: natcheck-probe failed" "$(cat "$TMP/$name.trace")"
                return
        fi
        while IFS='=' read -r key value; do
                R[$key]=$value
        done <"$TMP/$name.out"
        echo "# $name: type=${R[type]} public=${R[public]} local=${R[local]}" \
                "mapping=${R[mapping]} filtering=${R[filtering]} rfc5780=${R[rfc5780]}" \
                "elapsed=${R[elapsed_ms]}ms"
}

port_of() { echo "${1##*:}"; }
ip_of() { echo "${1%:*}"; }

# 1. No NAT: the router namespace's own address.
probe direct "$NS_RTR" "$SRV_IP1:$PORT"
expect "direct: type" "${R[type]:-}" no-nat
expect "direct: public address is our own" "$(ip_of "${R[public]:-}")" "$RTR_IP"
expect "direct: public port is our socket's" "$(port_of "${R[public]:-}")" \
        "$(port_of "${R[local]:-x}")"
expect "direct: coturn supports RFC 5780" "${R[rfc5780]:-}" yes
expect "direct: filtering" "${R[filtering]:-}" endpoint-independent
expect "direct: udp not blocked" "${R[udp_blocked]:-}" no

# 2. Test I only.
probe public-only "$NS_RTR" --public-only "$SRV_IP1:$PORT"
expect "public-only: type" "${R[type]:-}" no-nat
expect "public-only: public address" "$(ip_of "${R[public]:-}")" "$RTR_IP"
expect "public-only: filtering not tested" "${R[filtering]:-}" unknown

# 3. UDP blocked: the router drops what it sends to the server.
ip netns exec "$NS_RTR" nft -f - <<EOF
table ip smblock {
        chain out {
                type filter hook output priority filter;
                ip daddr $SRV_IP1 udp dport $PORT drop
        }
}
EOF
probe blocked "$NS_RTR" "$SRV_IP1:$PORT"
expect "blocked: type" "${R[type]:-}" udp-blocked
expect "blocked: no public endpoint" "${R[public]:-}" none
sends=$(grep -c ' send ' "$TMP/blocked.trace" || true)
expect "blocked: requests sent (Rc)" "$sends" 4
# The requests left at 0, 250, 750 and 1750 ms (RTO 250 ms, doubling).
times=$(awk '/ send /{printf "%d ", $1 + 0.5}' "$TMP/blocked.trace")
schedule_ok=1
expected=(0 250 750 1750)
read -r -a got <<<"$times"
for i in 0 1 2 3; do
        t=${got[$i]:-99999}
        ((t >= expected[i] && t < expected[i] + 100)) || schedule_ok=0
done
if ((schedule_ok)); then
        pass "blocked: requests at ${times}ms (0 250 750 1750)"
else
        fail "blocked: requests at ${times}ms" "expected 0 250 750 1750 (+ up to 100 ms)"
fi
elapsed=${R[elapsed_ms]:-0}
if ((elapsed >= 2750 && elapsed < 3500)); then
        pass "blocked: gave up after ${elapsed} ms (schedule: 2750 ms)"
else
        fail "blocked: gave up after ${elapsed} ms" "expected 2750 ms (+ scheduling slack)"
fi
ip netns exec "$NS_RTR" nft delete table ip smblock

# 4. Behind masquerade.
ip netns exec "$NS_RTR" nft -f - <<EOF
table ip smnat {
        chain post {
                type nat hook postrouting priority srcnat;
                oifname "r0" masquerade
        }
}
EOF
probe masquerade "$NS_CLI" "$SRV_IP1:$PORT"
expect "masquerade: type" "${R[type]:-}" port-restricted-cone
expect "masquerade: public address is the router's" "$(ip_of "${R[public]:-}")" "$RTR_IP"
expect "masquerade: source port kept" "$(port_of "${R[public]:-}")" "$(port_of "${R[local]:-x}")"
expect "masquerade: mapping" "${R[mapping]:-}" endpoint-independent
expect "masquerade: filtering" "${R[filtering]:-}" address-and-port-dependent
expect "masquerade: coturn supports RFC 5780" "${R[rfc5780]:-}" yes

# 5. Behind masquerade fully-random.
ip netns exec "$NS_RTR" nft flush chain ip smnat post
ip netns exec "$NS_RTR" nft add rule ip smnat post oifname "r0" masquerade fully-random
probe fully-random "$NS_CLI" "$SRV_IP1:$PORT"
expect "fully-random: type" "${R[type]:-}" symmetric
expect "fully-random: public address is the router's" "$(ip_of "${R[public]:-}")" "$RTR_IP"
expect "fully-random: filtering" "${R[filtering]:-}" address-and-port-dependent

if kill -0 "$TURN_PID" 2>/dev/null; then
        pass "coturn still running"
else
        fail "coturn exited during the tests"
fi

echo "$PASSED passed, $FAILED failed"
((FAILED == 0))
