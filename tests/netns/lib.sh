# SPDX-License-Identifier: MIT
# shellcheck shell=bash disable=SC2034,SC2317
#
# Shared pieces of the end-to-end tests (the generic ones, checks, polling, processes and
# namespaces, are in tests/common.sh). Each test script sources this file, then calls
# netns_init with its own underlay subnet number. Everything a test makes carries $$ in its
# name (namespaces sm$$-a, sm$$-b, sm$$-c), lives in one mktemp -d directory, and is removed
# by the EXIT trap, which kills only the processes this script started, by PID.
#
# Topology (made by setup_pair):
#
#   [ sm$$-a ]  veth0 10.99.X.1/24 <----veth----> veth0 10.99.X.2/24  [ sm$$-b ]
#     smt0 10.0.0.1/24 fd00::1/64                   smt0 10.0.0.2/24 fd00::2/64
#
# Every wait is a bounded poll on a real condition (a log line, a ping reply, a device).
#
# Environment: SHADOWMESHD (the daemon), SM_UDP_TOOL (tests/netns/udp-tool; found next to
# the daemon's build directory when unset), SM_LOG_LEVEL (the daemons' log level, default
# info), SM_VERBOSE=1 (print the logs even when every check passed).

set -euo pipefail

# shellcheck source=tests/common.sh
source "$(dirname "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")")/common.sh"

readonly TAP=smt0
readonly TUN4_A=10.0.0.1 TUN4_B=10.0.0.2
readonly TUN6_A=fd00::1 TUN6_B=fd00::2
readonly PORT=9001

NS_A="sm$$-a"
NS_B="sm$$-b"
NS_C="sm$$-c"
# OWN_PIDS (common.sh): every background process this script started (daemons, tcpdump, iperf3,
# helpers).
# summary (common.sh) first looks for sanitizer reports in the logs.
SANITIZER_CHECK=1
declare -A DAEMON_PID=() DAEMON_LOG=()
SUBNET=""
UNDER_A="" UNDER_B=""

# Never background these wrappers (`na cmd &`): that forks a bash subshell whose PID is not the
# command's, and killing it orphans the command. Use spawn for background processes.
na() { ip netns exec "$NS_A" "$@"; }
nb() { ip netns exec "$NS_B" "$@"; }
nsc() { ip netns exec "$NS_C" "$@"; }

# spawn NS OUTFILE CMD...: run CMD in NS in the background; its PID (the command's own, since
# ip netns exec execs) goes to SPAWNED_PID and to the list the cleanup kills.
SPAWNED_PID=""
spawn() {
        local ns=$1 out=$2
        shift 2
        ip netns exec "$ns" "$@" >"$out" 2>&1 &
        SPAWNED_PID=$!
        OWN_PIDS+=("$SPAWNED_PID")
}

# ---- setup and cleanup ------------------------------------------------------------------------

cleanup() {
        local rc=$?
        cleanup_begin "$rc"
        stop_own_pids
        del_namespaces
        cleanup_end "$rc"
}

# netns_init X: checks, temp dir, trap; the underlay is 10.99.X.0/24.
netns_init() {
        SUBNET=$1
        UNDER_A=10.99.$SUBNET.1
        UNDER_B=10.99.$SUBNET.2
        require_netns "sm$$"
        require_program SHADOWMESHD
        if [[ -z ${SM_UDP_TOOL:-} ]]; then
                SM_UDP_TOOL=$(dirname "$SHADOWMESHD")/../tests/netns/udp-tool
        fi
        need ping iputils-ping
        need timeout coreutils
        need ss iproute2

        TMP=$(mktemp -d "${TMPDIR:-/tmp}/shadowmesh-netns.XXXXXX")
        trap cleanup EXIT
        trap 'exit 130' INT TERM
}

# setup_bridge NODE...: one namespace per node, NS[node]=sm$$-NODE, all on one underlay bridge
# (br0 in sm$$-br), the i-th node (from 1) at UNDER[node]=10.99.$SUBNET.i/24; then checks that
# the first node reaches every other. The caller declares NS and UNDER associative arrays.
setup_bridge() {
        local i=0 n
        NS_BR="sm$$-br"
        add_ns "$NS_BR"
        ip -n "$NS_BR" link add br0 type bridge
        ip -n "$NS_BR" link set br0 up
        for n in "$@"; do
                i=$((i + 1))
                NS["$n"]="sm$$-$n"
                UNDER["$n"]=10.99.$SUBNET.$i
                add_ns "${NS[$n]}"
                ip -n "$NS_BR" link add "p$n" type veth peer name veth0 netns "${NS[$n]}"
                ip -n "$NS_BR" link set "p$n" master br0 up
                ip -n "${NS[$n]}" addr add "${UNDER[$n]}/24" dev veth0
                ip -n "${NS[$n]}" link set veth0 up
        done
        for n in "${@:2}"; do
                check "underlay: $1 reaches $n through the bridge" \
                        wait_until 10 ping_ok "${NS[$1]}" "${UNDER[$n]}"
        done
}

# setup_pair: namespaces a and b joined by a veth pair (no device in the host's namespace).
setup_pair() {
        add_ns "$NS_A"
        add_ns "$NS_B"
        veth_pair "$NS_A" "$UNDER_A" "$NS_B" "$UNDER_B" ||
                { echo "underlay veth does not work" >&2; exit 1; }
}

# setup_single: namespace c, loopback only (for the daemon's start-up errors).
setup_single() {
        add_ns "$NS_C"
}

# ---- daemons ----------------------------------------------------------------------------------

# start_daemon NAME NS CONFIG [ARGS...]: run shadowmeshd in NS in the background, stderr and
# stdout to $TMP/NAME.log (appended, so a restart keeps the history). SIGINT is reset to its
# default: bash makes background jobs ignore it, which a terminal's Ctrl+C never does.
# `ip netns exec` and `env` exec, so the PID is the daemon's own.
start_daemon() {
        local name=$1 ns=$2 config=$3
        shift 3
        local log=$TMP/$name.log
        echo "=== start $(date +%T.%N) ===" >>"$log"
        env --default-signal=INT,QUIT ip netns exec "$ns" \
                "$SHADOWMESHD" "$@" "$config" >>"$log" 2>&1 &
        local pid=$!
        OWN_PIDS+=("$pid")
        DAEMON_PID[$name]=$pid
        DAEMON_LOG[$name]=$log
}

# The log of NAME since its last start.
current_log() {
        local log=${DAEMON_LOG[$1]}
        awk '/^=== start / { buf = ""; next } { buf = buf $0 "\n" } END { printf "%s", buf }' "$log"
}

alive() { ! has_exited "${DAEMON_PID[$1]}"; }

# log_has NAME STRING: fixed-string match in the log since the last start.
log_has() { current_log "$1" | grep -qF -- "$2"; }
log_count() { current_log "$1" | grep -cF -- "$2" || true; }

# wait_log NAME STRING SECONDS: STRING appears in NAME's log (false early if it died).
wait_log() { wait_while_alive "$3" "${DAEMON_PID[$1]}" log_has "$1" "$2"; }

# wait_exit NAME SECONDS: wait for the daemon to exit; sets EXIT_CODE (see wait_pid_exit).
wait_exit() { wait_pid_exit "${DAEMON_PID[$1]}" "$2"; }

# stop_daemon NAME SIGNAL SECONDS: signal and wait; sets EXIT_CODE; returns 1 on timeout.
# A daemon that had already exited before the signal counts as a failure too.
stop_daemon() {
        if ! alive "$1"; then
                wait_exit "$1" 1 || true
                echo "# $1 had already exited (status $EXIT_CODE) before SIG$2"
                return 1
        fi
        kill_own "$2" "${DAEMON_PID[$1]}" || true
        wait_exit "$1" "$3"
}

# run_daemon_to_exit NAME NS SECONDS CMD...: start CMD the same way as a daemon and wait for it
# to exit by itself (start-up errors); sets EXIT_CODE; returns 1 if it is still running.
run_daemon_to_exit() {
        local name=$1 ns=$2 secs=$3
        shift 3
        local log=$TMP/$name.log
        echo "=== start $(date +%T.%N) ===" >>"$log"
        env --default-signal=INT,QUIT ip netns exec "$ns" "$@" >>"$log" 2>&1 &
        local pid=$!
        OWN_PIDS+=("$pid")
        DAEMON_PID[$name]=$pid
        DAEMON_LOG[$name]=$log
        wait_exit "$name" "$secs"
}

# ---- stats ------------------------------------------------------------------------------------

stats_lines() { current_log "$1" | grep -c 'stats: ' || true; }

# get_stat NAME FIELD: FIELD of the last stats line (empty if none).
get_stat() {
        current_log "$1" | grep 'stats: ' | tail -n 1 | grep -o "\b$2=[0-9]*" | cut -d= -f2 || true
}

# request_stats NAME: SIGUSR1 and wait for the new stats line.
request_stats() {
        local before
        before=$(stats_lines "$1")
        kill_own USR1 "${DAEMON_PID[$1]}" || return 1
        wait_until 5 stats_grew "$1" "$before"
}
stats_grew() { (($(stats_lines "$1") > $2)); }

# stat_at_least NAME FIELD MIN: ask for fresh stats; true when FIELD >= MIN.
stat_at_least() {
        request_stats "$1" || return 1
        local v
        v=$(get_stat "$1" "$2")
        [[ -n $v ]] && ((v >= $3))
}

# ---- network checks ---------------------------------------------------------------------------

# ping_all NS ADDR COUNT: every one of COUNT echoes answered.
ping_all() {
        ip netns exec "$1" ping -c "$3" -i 0.2 -W 2 -q "$2" >/dev/null 2>&1
}

link_exists() { ip -n "$1" link show dev "$2" >/dev/null 2>&1; }
link_gone() { ! link_exists "$@"; }

# mac_of NS DEV: DEV's Ethernet address (empty when there is no such device).
mac_of() {
        { ip -n "$1" -o link show dev "$2" 2>/dev/null || true; } |
                sed -n 's/.*link\/ether \([0-9a-f:]*\).*/\1/p'
}

# ipv6_ready NS DEV ADDR: DEV has ADDR and duplicate address detection has finished.
ipv6_ready() {
        local out
        out=$(ip -n "$1" -6 -o addr show dev "$2" 2>/dev/null || true)
        [[ $out == *" $3/"* && $out != *tentative* ]]
}

# start_capture NAME NS DEV FILTER...: tcpdump to $TMP/NAME.pcap; waits until it listens.
declare -A CAPTURE_PID=()
start_capture() {
        local name=$1 ns=$2 dev=$3
        shift 3
        spawn "$ns" "$TMP/$name-tcpdump.log" \
                tcpdump -Z root -U --immediate-mode -s 9216 -B 16384 -n -i "$dev" -w "$TMP/$name.pcap" "$@"
        CAPTURE_PID[$name]=$SPAWNED_PID
        wait_until 10 grep -q "listening on" "$TMP/$name-tcpdump.log"
}

stop_capture() {
        local pid=${CAPTURE_PID[$1]}
        kill_own INT "$pid" || true
        wait_until 10 has_exited "$pid" || return 1
        { wait "$pid"; } 2>/dev/null || true
}

# pcap_hex FILE: the whole file as one line of hex digits.
pcap_hex() { od -An -v -tx1 "$1" | tr -d ' \n'; }
