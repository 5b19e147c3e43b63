# SPDX-License-Identifier: MIT
# shellcheck shell=bash
# shellcheck disable=SC2034 # variables set here are used by the scripts that source it
#
# Shared pieces of the NAT traversal tests (the generic ones, checks, polling, processes,
# namespaces and the private bus, are in tests/common.sh). A script sources this file, calls
# nat_init, then builds one topology per case with topology_new and removes it with
# topology_del. Everything a script makes carries $$ in its name (namespaces
# smn$$-<case>-<role>), lives in one mktemp -d directory, and is removed by the EXIT trap, which
# kills only the processes the script started, by PID. Traffic stays inside these namespaces;
# nothing is routed to the host's network.
#
# Topology (topology_new CASE MODE_A MODE_B), MODE one of none, cone, symmetric, fullcone:
#
#                       [ smn$$-C-inet ]  the "internet": a router with no default route
#                         lo: 198.18.0.1, 198.18.0.2  coturn (STUN, RFC 5780)
#                             198.18.0.3, 198.18.0.4  plain-UDP reflectors (nat-udp)
#                             198.18.0.10             shadowmesh-relay :9545
#            site-a 198.18.1.1/24                       site-b 198.18.2.1/24
#                 |                                          |
#   wan0 198.18.1.2 [ smn$$-C-ra ]             [ smn$$-C-rb ] wan0 198.18.2.2
#   lan0 10.0.1.1   nftables NAT                  nftables NAT lan0 10.0.2.1
#                 |                                          |
#   eth0 10.0.1.2   [ smn$$-C-a ]               [ smn$$-C-b ]  eth0 10.0.2.2
#   smt0 10.0.0.1/24 (shadowmeshd)              (shadowmeshd) smt0 10.0.0.2/24
#
# With MODE none the host itself holds 198.18.N.2 on the site link (no router namespace).
# The NAT modes, on the router's wan0 (RFC 4787 terms):
#   cone       masquerade: endpoint-independent mapping (Linux keeps the source port while it
#              is free), address-and-port-dependent filtering = port-restricted cone
#   symmetric  masquerade fully-random: a new random port for every new destination
#   fullcone   masquerade, plus a dnat of UDP ports 9001-9010 (the daemon's port, which
#              masquerade keeps, and ports for the probes of topology.sh) back to the host:
#              endpoint-independent filtering too
# Each router also has the input filter every home router has: nothing unsolicited from the WAN
# reaches the router itself. (Without it Linux would create a conntrack entry for an unsolicited
# punch aimed at the router's port 9001, and the host's own later outbound packet to that peer
# would then clash with it and be given another port.)
#
# Every wait is a bounded poll on a real condition (a socket, a log line, a property, a ping).
#
# Environment: SHADOWMESHD (the daemon), SHADOWMESH_RELAY (optional: scripts that need the relay
# skip without it), SHADOWMESHCTL (optional), SM_NAT_UDP (the nat-udp helper; found in the
# daemon's build tree when unset), SM_LOG_LEVEL (the daemons' log level, default info),
# SM_VERBOSE=1 (print the logs even when every check passed).

set -euo pipefail

# shellcheck source=tests/common.sh
source "$(dirname "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")")/common.sh"

readonly TAP=smt0
readonly PORT=9001
readonly TUN_A=10.0.0.1 TUN_B=10.0.0.2
readonly STUN_IP=198.18.0.1 STUN_IP2=198.18.0.2 STUN_PORT=3478 STUN_ALT_PORT=3479
readonly REFLECT_IP=198.18.0.3 REFLECT_IP2=198.18.0.4 REFLECT_PORT=7000
readonly RELAY_IP=198.18.0.10 RELAY_PORT=9545
readonly TUNNEL_IFACE=org.shadowmesh1.Tunnel

# OWN_PIDS (common.sh): every background process this script started; BUS_PID (common.sh): the
# private dbus-daemon, stopped last.
# summary (common.sh) first looks for sanitizer reports in the logs.
SANITIZER_CHECK=1
# dump_logs (common.sh) prints the last 200 lines of each log.
DUMP_LOG_LINES=200
declare -A DAEMON_PID=() DAEMON_LOG=() DAEMON_NS=()

# The current case's topology (topology_new).
CASE=""
NS_INET="" NS_RA="" NS_RB="" NS_A="" NS_B=""
WAN_A="" WAN_B="" HOST_A="" HOST_B=""
MODE_A="" MODE_B=""
# A third site (add_site 3 MODE: 198.18.3.0/24, lan 10.0.3.0/24), for mesh.sh.
NS_RC="" NS_C="" WAN_C="" HOST_C="" MODE_C=""
CASE_PIDS=()
COTURN_PID="" RELAY_PID=""

# ---- processes --------------------------------------------------------------------------------

# spawn NS OUTFILE CMD...: CMD in NS in the background (ip netns exec execs, so $! is the
# command's own PID); the PID goes to SPAWNED_PID and to the case's list. Never background the
# wrappers below (`in_ns ... &`): that would fork a subshell whose PID is not the command's.
SPAWNED_PID=""
spawn() {
        local ns=$1 out=$2
        shift 2
        env --default-signal=INT,QUIT ip netns exec "$ns" "$@" >"$out" 2>&1 &
        SPAWNED_PID=$!
        OWN_PIDS+=("$SPAWNED_PID")
        CASE_PIDS+=("$SPAWNED_PID")
}

in_ns() {
        local ns=$1
        shift
        ip netns exec "$ns" "$@"
}

# ---- set-up and clean-up ----------------------------------------------------------------------

cleanup() {
        local rc=$?
        cleanup_begin "$rc"
        stop_own_pids
        stop_pid "$BUS_PID"
        del_namespaces
        cleanup_end "$rc"
}

# nat_init [relay]: checks, temp dir, trap, the private bus. With "relay", skip (77) when no
# relay program is available: the cases where the relay introduces the peers cannot run.
nat_init() {
        local here
        here=$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")
        require_netns "smn$$"
        require_program SHADOWMESHD
        if [[ ${1:-} == relay ]]; then
                [[ -n ${SHADOWMESH_RELAY:-} ]] ||
                        skip "SHADOWMESH_RELAY is not set (shadowmesh-relay is not built)"
        fi
        [[ -z ${SHADOWMESH_RELAY:-} ]] || require_program SHADOWMESH_RELAY
        SOURCE_ROOT=${SOURCE_ROOT:-$(readlink -f "$here/../..")}
        SM_NAT_UDP=${SM_NAT_UDP:-$(dirname "$SHADOWMESHD")/../tests/nat/nat-udp}
        [[ -x $SM_NAT_UDP ]] || { echo "SM_NAT_UDP=$SM_NAT_UDP is not executable" >&2; exit 1; }
        need ping iputils-ping
        need nft nftables
        need turnserver coturn
        need ss iproute2
        need timeout coreutils

        TMP=$(mktemp -d "${TMPDIR:-/tmp}/shadowmesh-nat.XXXXXX")
        chmod 755 "$TMP"
        trap cleanup EXIT
        trap 'exit 130' INT TERM
        start_bus
}

# ---- the private system bus -------------------------------------------------------------------

# start_bus: the private bus of common.sh (start_private_bus) with the project's policy, so the
# daemons serve their Tunnel objects and busctl reads Path and NatType. Every D-Bus check of
# these tests needs it: without it the test fails (it never quietly checks less).
start_bus() {
        need dbus-daemon dbus-daemon
        need busctl systemd
        if [[ ! -f $SOURCE_ROOT/dbus/org.shadowmesh1.conf ]]; then
                fail "dbus/org.shadowmesh1.conf exists in $SOURCE_ROOT"
                summary
        fi
        if ! start_private_bus "$TMP/bus" "$TMP/dbus-daemon.log" \
                "$SOURCE_ROOT/dbus/org.shadowmesh1.conf"; then
                fail "the private dbus-daemon starts" "$(tail -n 20 "$TMP/dbus-daemon.log" 2>/dev/null)"
                summary
        fi
}

# prop INSTANCE PROPERTY: the property's value without busctl's type prefix and quotes
# ('s "direct"' -> direct); empty when it cannot be read.
prop() {
        local out
        out=$(busctl get-property "org.shadowmesh1.Instance.$1" "/org/shadowmesh1/instance/$1" \
                "$TUNNEL_IFACE" "$2" 2>/dev/null) || return 0
        out=${out#* }
        out=${out#\"}
        echo "${out%\"}"
}

name_has_owner() {
        [[ $(busctl call org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus \
                NameHasOwner s "org.shadowmesh1.Instance.$1" 2>/dev/null) == "b true" ]]
}

# ---- topology ---------------------------------------------------------------------------------

# nft_router NS LAN_HOST MODE: the router's NAT and input filter (see the header).
nft_router() {
        local ns=$1 host=$2 mode=$3 masq=masquerade dnat=""
        [[ $mode == symmetric ]] && masq="masquerade fully-random"
        [[ $mode == fullcone ]] &&
                dnat="chain prerouting { type nat hook prerouting priority dstnat; policy accept;
                        iifname \"wan0\" udp dport $PORT-$((PORT + 9)) dnat to $host; }"
        in_ns "$ns" nft -f - <<EOF
table ip nat {
        chain postrouting {
                type nat hook postrouting priority srcnat; policy accept;
                oifname "wan0" $masq
        }
        $dnat
}
table inet filter {
        chain input {
                type filter hook input priority filter; policy accept;
                iifname "wan0" ct state established,related accept
                iifname "wan0" drop
        }
}
EOF
}

# add_site N MODE: site N (1 = a, 2 = b); sets the globals of that side.
add_site() {
        local n=$1 mode=$2 side host router wan
        side=$(case $n in 1) echo a ;; 2) echo b ;; *) echo c ;; esac) # site 3: mesh.sh
        host=smn$$-$CASE-$side
        router=smn$$-$CASE-r$side
        wan=198.18.$n.2
        ip -n "$NS_INET" link add "site-$side" type veth peer name wan0
        ip -n "$NS_INET" addr add "198.18.$n.1/24" dev "site-$side"
        ip -n "$NS_INET" link set "site-$side" up
        add_ns "$host"
        if [[ $mode == none ]]; then
                ip -n "$NS_INET" link set wan0 netns "$host" name eth0
                ip -n "$host" addr add "$wan/24" dev eth0
                ip -n "$host" link set eth0 up
                ip -n "$host" route add default via "198.18.$n.1"
                router=""
                eval "HOST_${side^^}=$wan"
        else
                add_ns "$router"
                ip -n "$NS_INET" link set wan0 netns "$router"
                ip -n "$router" addr add "$wan/24" dev wan0
                ip -n "$router" link set wan0 up
                ip -n "$router" route add default via "198.18.$n.1"
                ip -n "$router" link add lan0 type veth peer name eth0 netns "$host"
                ip -n "$router" addr add "10.0.$n.1/24" dev lan0
                ip -n "$router" link set lan0 up
                ip -n "$host" addr add "10.0.$n.2/24" dev eth0
                ip -n "$host" link set eth0 up
                ip -n "$host" route add default via "10.0.$n.1"
                in_ns "$router" sysctl -qw net.ipv4.ip_forward=1
                nft_router "$router" "10.0.$n.2" "$mode"
                eval "HOST_${side^^}=10.0.$n.2"
        fi
        eval "NS_${side^^}=$host NS_R${side^^}=$router WAN_${side^^}=$wan MODE_${side^^}=$mode"
}

# topology_new CASE MODE_A MODE_B: the internet namespace and the two sites.
topology_new() {
        CASE=$1
        CASE_DEAD=0
        CASE_PIDS=()
        COTURN_PID="" RELAY_PID=""
        NS_INET=smn$$-$CASE-inet
        add_ns "$NS_INET"
        in_ns "$NS_INET" sysctl -qw net.ipv4.ip_forward=1
        # The servers' addresses sit on lo (this kernel may have no dummy driver); packets to
        # them arrive through site-a and site-b, which is where a capture looks.
        local a
        for a in "$STUN_IP" "$STUN_IP2" "$REFLECT_IP" "$REFLECT_IP2" "$RELAY_IP"; do
                ip -n "$NS_INET" addr add "$a/32" dev lo
        done
        add_site 1 "$2"
        add_site 2 "$3"
        if ! wait_until 10 in_ns "$NS_A" ping -c 1 -W 1 -q "$STUN_IP" >/dev/null 2>&1 ||
                ! wait_until 10 in_ns "$NS_B" ping -c 1 -W 1 -q "$STUN_IP" >/dev/null 2>&1; then
                echo "the topology does not route to the internet namespace" >&2
                exit 1
        fi
        note "case $CASE: a $2 (public $WAN_A, host $HOST_A), b $3 (public $WAN_B, host $HOST_B)"
}

# topology_del: stop the case's processes, remove its namespaces.
topology_del() {
        local pid ns keep=()
        for pid in "${CASE_PIDS[@]}"; do
                kill_own TERM "$pid" || true
        done
        for pid in "${CASE_PIDS[@]}"; do
                stop_pid "$pid"
        done
        CASE_PIDS=()
        for ns in "${NAMESPACES[@]}"; do
                if [[ $ns == smn$$-$CASE-* ]]; then
                        ip netns del "$ns" 2>/dev/null || true
                else
                        keep+=("$ns")
                fi
        done
        NAMESPACES=("${keep[@]}")
}

# udp_listening NS PORT [IP]: a UDP socket bound to the port (and address).
udp_listening() {
        local out
        out=$(in_ns "$1" ss -Hlun "sport = :$2" 2>/dev/null) || return 1
        [[ -n $out ]] || return 1
        [[ -z ${3:-} || $out == *"$3:$2"* ]]
}

# start_coturn: coturn in the internet namespace as a STUN server on two addresses and two
# ports (RFC 5780: OTHER-ADDRESS is 198.18.0.2:3479).
start_coturn() {
        local log=$TMP/$CASE-coturn.log
        spawn "$NS_INET" "$TMP/$CASE-coturn.out" turnserver -n --stun-only \
                --listening-ip "$STUN_IP" --listening-ip "$STUN_IP2" \
                --listening-port "$STUN_PORT" --alt-listening-port "$STUN_ALT_PORT" \
                --no-cli --no-tls --no-dtls --no-tcp --log-file "$log" --simple-log \
                --no-stdout-log --pidfile "$TMP/$CASE-coturn.pid" --userdb "$TMP/$CASE-turndb"
        COTURN_PID=$SPAWNED_PID
        wait_until 10 udp_listening "$NS_INET" "$STUN_PORT" "$STUN_IP" &&
                wait_until 5 udp_listening "$NS_INET" "$STUN_ALT_PORT" "$STUN_IP2"
}

# start_relay: shadowmesh-relay in the internet namespace (appends to its log, so a restart
# keeps the history).
start_relay() {
        local log=$TMP/$CASE-relay.log
        echo "=== start $(date +%T.%N) ===" >>"$log"
        env --default-signal=INT,QUIT ip netns exec "$NS_INET" \
                "$SHADOWMESH_RELAY" --listen "$RELAY_IP:$RELAY_PORT" >>"$log" 2>&1 &
        RELAY_PID=$!
        OWN_PIDS+=("$RELAY_PID")
        CASE_PIDS+=("$RELAY_PID")
        wait_until 10 udp_listening "$NS_INET" "$RELAY_PORT" "$RELAY_IP"
}

# ---- daemons ----------------------------------------------------------------------------------

# write_config FILE IP4 KEY [stun] [relay]: the daemon's config; peer.address is empty (the
# relay introduces the peers). (Replaces common.sh's write_config, which writes "nat: enabled:
# false" and has no STUN server or relay.)
write_config() {
        local file=$1 ip4=$2 key=$3 opt stun=0 relay=0
        shift 3
        for opt in "$@"; do
                case $opt in
                stun) stun=1 ;;
                relay) relay=1 ;;
                *) echo "write_config: unknown option $opt" >&2; return 1 ;;
                esac
        done
        {
                echo "daemon:"
                echo "  log_level: ${SM_LOG_LEVEL:-info}"
                echo "network:"
                echo "  tap_device: $TAP"
                echo "  listen_port: $PORT"
                echo "  local_ip: $ip4"
                echo "encryption:"
                echo "  key: \"$key\""
                echo "peer:"
                echo "  address: \"\""
                if ((stun)); then
                        echo "nat:"
                        echo "  stun_server: \"$STUN_IP:$STUN_PORT\""
                fi
                if ((relay)); then
                        echo "relay:"
                        echo "  server: \"$RELAY_IP:$RELAY_PORT\""
                fi
        } >"$file"
        chmod 600 "$file"
}

# start_daemon NAME NS CONFIG: shadowmeshd --instance NAME in NS, output appended to
# $TMP/<case>-NAME.log. SIGINT back to its default (bash ignores it in background jobs).
start_daemon() {
        local name=$1 ns=$2 config=$3
        local log=$TMP/$CASE-$name.log
        echo "=== start $(date +%T.%N) ===" >>"$log"
        env --default-signal=INT,QUIT ip netns exec "$ns" \
                "$SHADOWMESHD" --instance "$name" "$config" >>"$log" 2>&1 &
        local pid=$!
        OWN_PIDS+=("$pid")
        CASE_PIDS+=("$pid")
        DAEMON_PID[$name]=$pid
        DAEMON_LOG[$name]=$log
        DAEMON_NS[$name]=$ns
}

# The log of NAME since its last start.
current_log() {
        awk '/^=== start / { buf = ""; next } { buf = buf $0 "\n" } END { printf "%s", buf }' \
                "${DAEMON_LOG[$1]}"
}

alive() { ! has_exited "${DAEMON_PID[$1]}"; }
log_has() { current_log "$1" | grep -qF -- "$2"; }

# wait_log NAME STRING SECONDS: STRING appears in NAME's log (false early if it died).
wait_log() { wait_while_alive "$3" "${DAEMON_PID[$1]}" log_has "$1" "$2"; }

# daemon_up NAME: its TAP is up and it owns its bus name.
daemon_up() {
        alive "$1" || return 1
        log_has "$1" "$TAP up" || return 1
        name_has_owner "$1"
}

# path_now NAME: the Path property.
path_now() { prop "$1" Path; }
path_is() { [[ $(path_now "$1") == "$2" ]]; }
# log_path_is NAME VALUE: the last "path to peer:" line names VALUE.
log_path_is() {
        [[ $(current_log "$1" | sed -n 's/.*path to peer: \([a-z]*\).*/\1/p' | tail -n 1) == "$2" ]]
}

# check_path NAME VALUE SECONDS: the Path property becomes VALUE, and the log says so too.
check_path() {
        local name=$1 want=$2 secs
        secs=$(secs "$3")
        if wait_until "$secs" path_is "$name" "$want"; then
                pass "$name: Path property is '$want'"
        else
                fail "$name: Path property is '$want' within $secs s" "got: '$(path_now "$name")'"
        fi
        check "$name: log says 'path to peer: $want'" wait_until 5 log_path_is "$name" "$want"
}

# ---- stats ------------------------------------------------------------------------------------

stats_lines() { current_log "$1" | grep -c 'stats: ' || true; }
stats_grew() { (($(stats_lines "$1") > $2)); }
# get_stat NAME FIELD: FIELD of a fresh stats line (SIGUSR1); empty when none came.
get_stat() {
        local before
        before=$(stats_lines "$1")
        kill_own USR1 "${DAEMON_PID[$1]}" || return 0
        wait_until 5 stats_grew "$1" "$before" || return 0
        current_log "$1" | grep 'stats: ' | tail -n 1 | grep -o "\b$2=[0-9]*" | cut -d= -f2 || true
}

# ---- network checks ---------------------------------------------------------------------------

# ping_all NS ADDR COUNT: every one of COUNT echoes answered.
ping_all() { ip netns exec "$1" ping -c "$3" -i 0.2 -W 2 -q "$2" >/dev/null 2>&1; }

# secs N: N, or 1 once the case's tunnel never carried a ping (CASE_DEAD): every later check of
# the case fails anyway, and waiting for each would take the script past its time limit.
CASE_DEAD=0
secs() { if ((CASE_DEAD)); then echo 1; else echo "$1"; fi; }

# check_pings LABEL: ping both ways through the tunnel, 5 of 5 answered.
check_pings() {
        check "$1: ping a->b through the tunnel" wait_ping "$(secs 10)" "$NS_A" "$TUN_B"
        check "$1: ping b->a through the tunnel" wait_ping "$(secs 10)" "$NS_B" "$TUN_A"
        check "$1: ping a->b, 5 of 5 answered" ping_all "$NS_A" "$TUN_B" 5
        check "$1: ping b->a, 5 of 5 answered" ping_all "$NS_B" "$TUN_A" 5
}

# start_pair KEY: configs and daemons for both hosts (b first, then a); sets T_SECOND, the time
# the second daemon was started (ms).
T_SECOND=0
start_pair() {
        local key=$1
        write_config "$TMP/$CASE-a.yaml" "$TUN_A/24" "$key" stun relay
        write_config "$TMP/$CASE-b.yaml" "$TUN_B/24" "$key" stun relay
        start_daemon b "$NS_B" "$TMP/$CASE-b.yaml"
        check "b: up" wait_until 15 daemon_up b
        T_SECOND=$(now_ms)
        start_daemon a "$NS_A" "$TMP/$CASE-a.yaml"
        check "a: up" wait_until 15 daemon_up a
}

# time_to_ping LABEL SECONDS: wait for the first ping a->b; prints the time since T_SECOND.
TIME_TO_PING=""
time_to_ping() {
        local label=$1 t
        TIME_TO_PING=""
        if wait_ping "$2" "$NS_A" "$TUN_B"; then
                t=$(($(now_ms) - T_SECOND))
                TIME_TO_PING=$(awk -v t="$t" 'BEGIN { printf "%.2f", t / 1000 }')
                pass "$label: first ping a->b within $2 s of starting the second daemon"
                note "$label: second daemon started -> first ping answered: $TIME_TO_PING s"
        else
                fail "$label: first ping a->b within $2 s of starting the second daemon"
                CASE_DEAD=1
        fi
}

# start_capture NAME NS DEV FILTER...: tcpdump to $TMP/NAME.pcap; waits until it listens.
declare -A CAPTURE_PID=()
start_capture() {
        local name=$1 ns=$2 dev=$3
        shift 3
        spawn "$ns" "$TMP/$name-tcpdump.out" \
                tcpdump -Z root -U --immediate-mode -s 9216 -B 16384 -n -i "$dev" \
                -w "$TMP/$name.pcap" "$@"
        CAPTURE_PID[$name]=$SPAWNED_PID
        wait_until 10 grep -q "listening on" "$TMP/$name-tcpdump.out"
}

stop_capture() {
        local pid=${CAPTURE_PID[$1]}
        kill_own INT "$pid" || true
        wait_until 10 has_exited "$pid" || return 1
        { wait "$pid"; } 2>/dev/null || true
}

# pcap_hex FILE: the whole file as one line of hex digits.
pcap_hex() { od -An -v -tx1 "$1" | tr -d ' \n'; }

# iperf_run LABEL: 5 s of TCP a->b through the tunnel; sets IPERF_MBITS ("" on failure).
IPERF_MBITS=""
iperf_run() {
        local label=$1 port=5201 bps
        IPERF_MBITS=""
        if ((CASE_DEAD)); then
                fail "$label: iperf3 a->b (not run: the tunnel never carried a ping)"
                return 0
        fi
        spawn "$NS_B" "$TMP/$CASE-iperf3-server-$label.out" iperf3 -s -1 -B "$TUN_B" -p "$port"
        local server=$SPAWNED_PID
        if ! wait_until 10 iperf_listening "$port"; then
                fail "$label: iperf3 server listening in b"
                return 0
        fi
        if ! in_ns "$NS_A" timeout 60 iperf3 -c "$TUN_B" -p "$port" -t 5 -J --connect-timeout 5000 \
                >"$TMP/$CASE-iperf3-$label.json" 2>&1; then
                fail "$label: iperf3 a->b ran" "$(tail -n 5 "$TMP/$CASE-iperf3-$label.json")"
                stop_pid "$server"
                return 0
        fi
        bps=$(awk '/"sum_received"/ { f = 1 }
                f && /"bits_per_second"/ { gsub(/[^0-9.eE+]/, "", $2); print $2; exit }' \
                "$TMP/$CASE-iperf3-$label.json")
        IPERF_MBITS=$(awk -v b="${bps:-0}" 'BEGIN { printf "%.1f", b / 1e6 }')
        check "$label: iperf3 TCP a->b moved data ($IPERF_MBITS Mbit/s)" \
                awk -v b="${bps:-0}" 'BEGIN { exit !(b > 0) }'
        stop_pid "$server"
}
iperf_listening() { in_ns "$NS_B" ss -Hltn "sport = :$1" | grep -q .; }

# ---- the internet's firewall (case 5) ---------------------------------------------------------

# block_sites: drop UDP between the two sites' public addresses in the internet namespace; the
# relay and the STUN server stay reachable from both.
block_sites() {
        in_ns "$NS_INET" nft -f - <<EOT
table inet smblock {
        chain forward {
                type filter hook forward priority filter; policy accept;
                ip saddr $WAN_A ip daddr $WAN_B meta l4proto udp counter drop
                ip saddr $WAN_B ip daddr $WAN_A meta l4proto udp counter drop
        }
}
EOT
}
unblock_sites() { in_ns "$NS_INET" nft delete table inet smblock; }
# blocked_count: packets the block dropped so far.
blocked_count() {
        in_ns "$NS_INET" nft list table inet smblock 2>/dev/null |
                awk '/counter packets/ { for (i = 1; i < NF; i++) if ($i == "packets") n += $(i + 1) }
                     END { print n + 0 }'
}

# ---- per-case helpers shared by direct.sh, relay.sh and upgrade.sh ---------------------------

# start_servers: coturn and the relay in the internet namespace.
start_servers() {
        check "$CASE: coturn listening on $STUN_IP:$STUN_PORT and $STUN_IP2:$STUN_ALT_PORT" start_coturn
        check "$CASE: shadowmesh-relay listening on $RELAY_IP:$RELAY_PORT" start_relay
}

# check_introduced: both daemons registered with the relay and were told about the other.
check_introduced() {
        local side
        for side in a b; do
                check "$side: registered with relay $RELAY_IP:$RELAY_PORT" \
                        wait_log "$side" "registered with relay $RELAY_IP:$RELAY_PORT" 15
                check "$side: relay introduced the peer" wait_log "$side" "relay introduced peer" 15
                check "$side: handshake complete" \
                        wait_log "$side" "handshake complete with peer" "$(secs 10)"
        done
}

# endpoint_ip_is NAME IP: the Endpoint property's address part.
endpoint_ip_is() { [[ $(prop "$1" Endpoint) == "$2":* ]]; }

# relay_packets NAME: relay_tx_packets + relay_rx_packets of a fresh stats line.
relay_packets() {
        local tx rx
        tx=$(get_stat "$1" relay_tx_packets)
        rx=$(current_log "$1" | grep 'stats: ' | tail -n 1 | grep -o '\brelay_rx_packets=[0-9]*' |
                cut -d= -f2 || true)
        [[ -n $tx && -n $rx ]] || { echo ""; return 0; }
        echo $((tx + rx))
}

# check_relay_use NAME WANT(yes|no): 10 pings a->b, and whether NAME's relay counters grew by
# at least 10 (the echoes went through the relay) or by fewer than 10 (they did not; keepalives
# and re-registrations may still use it).
check_relay_use() {
        local name=$1 want=$2 before after
        before=$(relay_packets "$name")
        ping_all "$NS_A" "$TUN_B" 10 || true
        after=$(relay_packets "$name")
        if [[ -z $before || -z $after ]]; then
                fail "$name: stats line has relay_tx_packets and relay_rx_packets"
                return 0
        fi
        if [[ $want == yes ]]; then
                check "$name: 10 echoes went through the relay (relay packets $before -> $after)" \
                        test $((after - before)) -ge 10
        else
                check "$name: 10 echoes did not go through the relay (relay packets $before -> $after)" \
                        test $((after - before)) -lt 10
        fi
}
