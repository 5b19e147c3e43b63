# SPDX-License-Identifier: MIT
# shellcheck shell=bash disable=SC2034,SC2317
#
# What the fault tests (restart.sh, loss.sh, close.sh, deadpeer.sh) share, on top of lib.sh:
# a private system bus with the project's policy so that every daemon serves its Tunnel object
# (the checks read State, Path and FailureReason as users and NetworkManager do), daemons
# started with --instance NAME, a pinger that timestamps every reply (recovery times are read
# from it, to the tenth of a second), and random loss made with nftables (this kernel has no
# netem).
#
#   sm$$-a: smt0 10.0.0.1/24, veth0 10.99.X.1 (initiator: peer.address is b)
#   sm$$-b: smt0 10.0.0.2/24, veth0 10.99.X.2 (waits for a)

# shellcheck source=tests/netns/lib.sh
source "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/lib.sh"

readonly TUNNEL_IFACE=org.shadowmesh1.Tunnel
SOURCE_ROOT=${SHADOWMESH_SOURCE_ROOT:-$(readlink -f "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/../..")}

faults_cleanup() {
        local rc=$?
        cleanup_begin "$rc"
        stop_own_pids
        stop_pid "$BUS_PID"
        del_namespaces
        cleanup_end "$rc"
}

# faults_init X: lib.sh's netns_init, the pair, the private bus, two configurations (a
# initiates to b, b waits) in $TMP/a.yaml and $TMP/b.yaml with one shared key.
faults_init() {
        netns_init "$1"
        trap faults_cleanup EXIT
        need dbus-daemon dbus-daemon
        need busctl systemd
        need nft nftables
        need curl curl
        require_program SHADOWMESHCTL
        setup_pair
        start_private_bus "$TMP/bus" "$TMP/dbus-daemon.log" "$SOURCE_ROOT/dbus/org.shadowmesh1.conf" ||
                { fail "the private dbus-daemon starts"; summary; }
        KEY=$(random_hex_key)
        # Each namespace has its own loopback: both serve the HTTP API on the same address.
        write_config "$TMP/a.yaml" ip4=$TUN4_A/24 peer="$UNDER_B:$PORT" key="$KEY" \
                http=127.0.0.1:9090
        write_config "$TMP/b.yaml" ip4=$TUN4_B/24 peer="" key="$KEY" http=127.0.0.1:9090
}

ns_of() { if [[ $1 == a ]]; then echo "$NS_A"; else echo "$NS_B"; fi; }

# http_state NAME: details.state of the HTTP API's GET /status (the D-Bus State's name) and
# its prototype "state", as "dbus-name/Prototype"; empty when it cannot be read.
http_state() {
        ip netns exec "$(ns_of "$1")" curl -s --max-time 2 http://127.0.0.1:9090/status 2>/dev/null |
                sed -n 's/.*"state":"\([A-Za-z]*\)","details":{"state":"\([a-z]*\)".*/\2\/\1/p' ||
                true
}

# ctl_state NAME: the State line of `shadowmeshctl -i NAME status` ($SHADOWMESHCTL).
ctl_state() {
        "$SHADOWMESHCTL" -i "$1" status 2>/dev/null | awk -F': *' '$1 ~ /^ *State$/ { print $2 }'
}

# same_state_everywhere NAME PROTOTYPE: D-Bus, shadowmeshctl and the HTTP API agree.
same_state_everywhere() {
        local bus ctl http
        bus=$(prop "$1" State)
        ctl=$(ctl_state "$1")
        http=$(http_state "$1")
        [[ -n $bus && $ctl == "$bus" && $http == "$bus/$2" ]] ||
                { echo "# $1: D-Bus '$bus', shadowmeshctl '$ctl', HTTP '$http'"; return 1; }
}

# start_node NAME: shadowmeshd --instance NAME in its namespace, with $TMP/NAME.yaml.
start_node() {
        local ns=$NS_A
        [[ $1 == b ]] && ns=$NS_B
        start_daemon "$1" "$ns" "$TMP/$1.yaml" --instance "$1"
}

name_has_owner() {
        [[ $(busctl call org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus \
                NameHasOwner s "org.shadowmesh1.Instance.$1" 2>/dev/null) == "b true" ]]
}

# node_up NAME: running, its TAP up, its bus name owned.
node_up() { alive "$1" && log_has "$1" "$TAP up" && name_has_owner "$1"; }

# prop NAME PROPERTY: the value without busctl's type and quotes; empty when unreadable.
prop() {
        local out
        out=$(busctl get-property "org.shadowmesh1.Instance.$1" "/org/shadowmesh1/instance/$1" \
                "$TUNNEL_IFACE" "$2" 2>/dev/null) || return 0
        out=${out#* }
        out=${out#\"}
        echo "${out%\"}"
}
state_is() { [[ $(prop "$1" State) == "$2" ]]; }
state_is_not() { local s; s=$(prop "$1" State); [[ -n $s && $s != "$2" ]]; }

# call NAME METHOD [SIGNATURE ARGS...]: a Tunnel method; output in CALL_OUT, status returned.
CALL_OUT=""
call() {
        local name=$1
        shift
        CALL_OUT=$(busctl call "org.shadowmesh1.Instance.$name" \
                "/org/shadowmesh1/instance/$name" "$TUNNEL_IFACE" "$@" 2>&1)
}

# secs_since T0_MS: elapsed seconds with one decimal.
secs_since() {
        local d=$(($(now_ms) - $1))
        echo "$((d / 1000)).$(((d % 1000) / 100))"
}
# ms_le A_MS B_S: A (ms) <= B (seconds, may have decimals)?
ms_le() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a <= b * 1000) }'; }

# timed NAME BOUND_S COMMAND...: poll COMMAND (up to 3 * BOUND_S); print how long it took, and
# pass when it came within BOUND_S. TIMED_MS holds the time.
TIMED_MS=0
timed() {
        local name=$1 bound=$2 t0 limit
        shift 2
        t0=$(now_ms)
        limit=$(awk -v b="$bound" 'BEGIN { printf "%d", b * 3 + 1 }')
        if wait_until "$limit" "$@"; then
                TIMED_MS=$(($(now_ms) - t0))
                if ms_le "$TIMED_MS" "$bound"; then
                        pass "$name within $bound s (took $(secs_since "$t0") s)"
                else
                        fail "$name within $bound s (took $(secs_since "$t0") s)"
                fi
        else
                TIMED_MS=$(($(now_ms) - t0))
                fail "$name within $bound s (not even within $limit s)"
        fi
}

# ---- the pinger -------------------------------------------------------------------------------
# One ping from a to b every 0.2 s for the whole test, each reply with its time (ping -D), so
# that the data a sends keeps flowing through a restart of b, as a user's traffic would, and a
# recovery time is "the first reply after the restart".
PINGER_PID=""
start_pinger() {
        spawn "$NS_A" "$TMP/pinger.out" ping -D -n -i 0.2 -W 1 "$TUN4_B"
        PINGER_PID=$SPAWNED_PID
}

# replies_after T_MS: the number of replies whose timestamp is after T_MS.
replies_after() {
        awk -v t="$1" '/bytes from/ { ts = substr($1, 2, length($1) - 2); if (ts * 1000 > t) n++ }
                END { print n + 0 }' "$TMP/pinger.out"
}
reply_after() { (($(replies_after "$1") > 0)); }

# first_reply_after T_MS: the time (ms) of the first reply after T_MS; empty if none.
first_reply_after() {
        awk -v t="$1" '/bytes from/ { ts = substr($1, 2, length($1) - 2) * 1000;
                if (ts > t) { printf "%.0f\n", ts; exit } }' "$TMP/pinger.out"
}

# longest_gap FROM_MS TO_MS: the longest time (ms) between consecutive replies in the window.
longest_gap() {
        awk -v from="$1" -v to="$2" '/bytes from/ { ts = substr($1, 2, length($1) - 2) * 1000;
                if (ts < from || ts > to) next; if (prev) { g = ts - prev; if (g > max) max = g }
                prev = ts } END { printf "%.0f\n", max }' "$TMP/pinger.out"
}

# ---- random loss ------------------------------------------------------------------------------
# loss_on NS PERCENT: drop PERCENT % of the underlay's UDP packets in each direction at NS's
# veth0, chosen at random per packet (nftables numgen random; no netem on this kernel).
loss_on() {
        local ns=$1 pct=$2
        ip netns exec "$ns" nft -f - <<NFT
table inet smloss {
        chain in {
                type filter hook input priority 0; policy accept;
                iifname "veth0" udp dport $PORT numgen random mod 100 < $pct counter drop
        }
        chain out {
                type filter hook output priority 0; policy accept;
                oifname "veth0" udp sport $PORT numgen random mod 100 < $pct counter drop
        }
}
NFT
}
loss_off() { ip netns exec "$1" nft delete table inet smloss 2>/dev/null || true; }
# loss_dropped NS: packets dropped so far by loss_on's rules (both directions).
loss_dropped() {
        ip netns exec "$1" nft list table inet smloss 2>/dev/null |
                awk '/counter packets/ { for (i = 1; i < NF; i++) if ($i == "packets") n += $(i + 1) }
                        END { print n + 0 }'
}
