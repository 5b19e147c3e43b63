# SPDX-License-Identifier: MIT
# shellcheck shell=bash disable=SC2034,SC2317
#
# Shared pieces of the end-to-end tests. Each test script sources this file, then calls
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

readonly TAP=smt0
readonly TUN4_A=10.0.0.1 TUN4_B=10.0.0.2
readonly TUN6_A=fd00::1 TUN6_B=fd00::2
readonly PORT=9001

PASSED=0
FAILED=0
SUMMARY_DONE=0
TMP=""
NS_A="sm$$-a"
NS_B="sm$$-b"
NS_C="sm$$-c"
NAMESPACES=()
# Every background process this script started (daemons, tcpdump, iperf3, helpers).
OWN_PIDS=()
declare -A DAEMON_PID=() DAEMON_LOG=()
SUBNET=""
UNDER_A="" UNDER_B=""

skip() {
        echo "SKIP: $*"
        exit 77
}

pass() {
        PASSED=$((PASSED + 1))
        echo "ok - $1"
}

# fail NAME [DETAIL...]
fail() {
        FAILED=$((FAILED + 1))
        echo "FAIL - $1"
        shift
        if (($# > 0)); then
                echo "       $*"
        fi
}

# check NAME COMMAND...: the check passes when the command succeeds.
check() {
        local name=$1
        shift
        if "$@"; then
                pass "$name"
        else
                fail "$name" "(command: $*)"
        fi
}

# check_not NAME COMMAND...: the check passes when the command fails.
check_not() {
        local name=$1
        shift
        if "$@"; then
                fail "$name" "(command succeeded: $*)"
        else
                pass "$name"
        fi
}

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

# kill_own SIGNAL PID: signal PID only while it is still a child of this shell, so that a PID
# reused by an unrelated process after ours exited is never hit.
kill_own() {
        [[ $(ppid_of "$2") == "$$" ]] || return 1
        kill "-$1" "$2" 2>/dev/null
}
ppid_of() { awk '/^PPid:/ { print $2 }' "/proc/$1/status" 2>/dev/null || true; }
proc_state() { awk '/^State:/ { print $2 }' "/proc/$1/status" 2>/dev/null || true; }

# has_exited PID: gone, a zombie, or no longer our child (the PID was reused).
has_exited() {
        local state
        state=$(proc_state "$1")
        [[ -z $state || $state == Z || $(ppid_of "$1") != "$$" ]]
}

contains() { [[ $1 == *"$2"* ]]; }

now_ms() { echo $(($(date +%s%N) / 1000000)); }

# wait_until SECONDS COMMAND...: poll until the command succeeds; false at the deadline.
wait_until() {
        local deadline=$(($(now_ms) + $1 * 1000))
        shift
        while :; do
                if "$@"; then
                        return 0
                fi
                if (($(now_ms) >= deadline)); then
                        return 1
                fi
                sleep 0.1
        done
}

# ---- setup and cleanup ------------------------------------------------------------------------

dump_logs() {
        local f
        [[ -n $TMP && -d $TMP ]] || return 0
        for f in "$TMP"/*.log; do
                [[ -e $f ]] || continue
                echo "----- ${f##*/} -----"
                cat "$f" || true
        done
        echo "----- end of logs -----"
}

cleanup() {
        local rc=$? pid ns i
        set +e
        trap - EXIT
        if ((SUMMARY_DONE == 0)); then
                FAILED=$((FAILED + 1))
                echo "FAIL - script aborted (exit status $rc)"
        fi
        for pid in "${OWN_PIDS[@]}"; do
                kill_own TERM "$pid"
        done
        for pid in "${OWN_PIDS[@]}"; do
                for ((i = 0; i < 50; i++)); do
                        has_exited "$pid" && break
                        sleep 0.1
                done
                kill_own KILL "$pid"
                { wait "$pid"; } 2>/dev/null
        done
        for ns in "${NAMESPACES[@]}"; do
                ip netns del "$ns" 2>/dev/null
        done
        if ((SUMMARY_DONE == 0)); then
                dump_logs
                echo "$PASSED passed, $FAILED failed"
                rc=1
        fi
        [[ -n $TMP ]] && rm -rf "$TMP"
        exit "$rc"
}

# summary: print the logs when a check failed (or SM_VERBOSE=1), then the closing line.
summary() {
        # UBSan reports and goes on, so a passing run can still hide one: look for them.
        local reports
        reports=$(cat "$TMP"/*.log 2>/dev/null |
                grep -E 'runtime error:|AddressSanitizer|LeakSanitizer|ThreadSanitizer' || true)
        if [[ -z $reports ]]; then
                pass "no sanitizer reports in the logs"
        else
                fail "no sanitizer reports in the logs" "$(head -n 3 <<<"$reports")"
        fi
        if ((FAILED > 0)) || [[ ${SM_VERBOSE:-0} == 1 ]]; then
                dump_logs
        fi
        SUMMARY_DONE=1
        echo "$PASSED passed, $FAILED failed"
        if ((FAILED > 0)); then
                exit 1
        fi
        exit 0
}

# need TOOL PACKAGE: a missing tool is an error of the machine's setup, not a skip.
need() {
        if ! command -v "$1" >/dev/null; then
                fail "'$1' is installed (apt-get install $2)"
                SUMMARY_DONE=1
                echo "$PASSED passed, $FAILED failed"
                exit 1
        fi
}

# netns_init X: checks, temp dir, trap; the underlay is 10.99.X.0/24.
netns_init() {
        SUBNET=$1
        UNDER_A=10.99.$SUBNET.1
        UNDER_B=10.99.$SUBNET.2
        [[ $EUID -eq 0 ]] || skip "needs root"
        command -v ip >/dev/null || skip "ip (iproute2) not installed"
        if ! ip netns add "sm$$-probe" 2>/dev/null; then
                skip "ip netns is not usable here"
        fi
        ip netns del "sm$$-probe"
        [[ -n ${SHADOWMESHD:-} ]] || { echo "SHADOWMESHD is not set" >&2; exit 1; }
        [[ -x $SHADOWMESHD ]] || { echo "SHADOWMESHD=$SHADOWMESHD is not executable" >&2; exit 1; }
        SHADOWMESHD=$(readlink -f "$SHADOWMESHD")
        if [[ -z ${SM_UDP_TOOL:-} ]]; then
                SM_UDP_TOOL=$(dirname "$SHADOWMESHD")/../tests/netns/udp-tool
        fi
        need ping iputils-ping
        need timeout coreutils
        need ss iproute2

        TMP=$(mktemp -d "${TMPDIR:-/tmp}/shadowmesh-netns.XXXXXX")
        trap cleanup EXIT
}

add_ns() {
        ip netns add "$1"
        NAMESPACES+=("$1")
        ip -n "$1" link set lo up
}

# setup_pair: namespaces a and b joined by a veth pair (no device in the host's namespace).
setup_pair() {
        add_ns "$NS_A"
        add_ns "$NS_B"
        ip -n "$NS_A" link add veth0 type veth peer name veth0 netns "$NS_B"
        ip -n "$NS_A" addr add "$UNDER_A/24" dev veth0
        ip -n "$NS_B" addr add "$UNDER_B/24" dev veth0
        ip -n "$NS_A" link set veth0 up
        ip -n "$NS_B" link set veth0 up
        wait_until 10 na ping -c 1 -W 1 -q "$UNDER_B" >/dev/null ||
                { echo "underlay veth does not work" >&2; exit 1; }
}

# setup_single: namespace c, loopback only (for the daemon's start-up errors).
setup_single() {
        add_ns "$NS_C"
}

random_hex_key() { od -An -tx1 -N32 /dev/urandom | tr -d ' \n'; }

# write_config FILE OPTIONS...: a daemon config; options are NAME=VALUE:
#   tap=smt0 ip4=10.0.0.1/24 ip6=fd00::1/64 listen=0.0.0.0:9001 peer=HOST:PORT|"" key=HEX
#   private_key_file=PATH peer_public_key=B64 mtu=N log=LEVEL
write_config() {
        local file=$1 kv
        shift
        local tap=$TAP ip4="" ip6="" listen="0.0.0.0:$PORT" peer="" key="" privfile="" peerpub=""
        local mtu="" log=${SM_LOG_LEVEL:-info}
        for kv in "$@"; do
                case $kv in
                tap=*) tap=${kv#*=} ;;
                ip4=*) ip4=${kv#*=} ;;
                ip6=*) ip6=${kv#*=} ;;
                listen=*) listen=${kv#*=} ;;
                peer=*) peer=${kv#*=} ;;
                key=*) key=${kv#*=} ;;
                private_key_file=*) privfile=${kv#*=} ;;
                peer_public_key=*) peerpub=${kv#*=} ;;
                mtu=*) mtu=${kv#*=} ;;
                log=*) log=${kv#*=} ;;
                *) echo "write_config: unknown option $kv" >&2; return 1 ;;
                esac
        done
        {
                echo "daemon:"
                echo "  listen_address: \"$listen\""
                echo "  log_level: $log"
                echo "network:"
                echo "  tap_device: $tap"
                if [[ -n $ip6 ]]; then
                        echo "  local_ip: [$ip4, \"$ip6\"]"
                else
                        echo "  local_ip: $ip4"
                fi
                [[ -z $mtu ]] || echo "  mtu: $mtu"
                if [[ -n $key ]]; then
                        echo "encryption:"
                        echo "  key: \"$key\""
                fi
                if [[ -n $privfile ]]; then
                        echo "identity:"
                        echo "  private_key_file: $privfile"
                fi
                echo "peer:"
                echo "  address: \"$peer\""
                [[ -z $peerpub ]] || echo "  public_key: \"$peerpub\""
                echo "nat:"
                echo "  enabled: false"
        } >"$file"
        chmod 600 "$file"
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

# wait_log NAME STRING SECONDS: the string appears in NAME's log (fails early if it died).
wait_log() {
        local name=$1 str=$2 secs=$3
        local deadline=$(($(now_ms) + secs * 1000))
        while :; do
                log_has "$name" "$str" && return 0
                if ! alive "$name"; then
                        log_has "$name" "$str"
                        return
                fi
                (($(now_ms) < deadline)) || return 1
                sleep 0.1
        done
}

# wait_exit NAME SECONDS: wait for the daemon to exit; sets EXIT_CODE (or returns 1 on timeout).
EXIT_CODE=""
wait_exit() {
        local pid=${DAEMON_PID[$1]}
        EXIT_CODE=""
        wait_until "$2" has_exited "$pid" || return 1
        EXIT_CODE=0
        # (braces: bash's "Killed" notice for a SIGKILLed job goes to /dev/null too)
        { wait "$pid"; } 2>/dev/null || EXIT_CODE=$?
        return 0
}

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

# ping_ok NS ADDR [ARGS...]: one echo answered within a second.
ping_ok() {
        local ns=$1 addr=$2
        shift 2
        ip netns exec "$ns" ping -c 1 -W 1 -q "$@" "$addr" >/dev/null 2>&1
}

# wait_ping SECONDS NS ADDR: polls ping until a reply (covers handshake, ARP/ND).
wait_ping() {
        local secs=$1
        shift
        wait_until "$secs" ping_ok "$@"
}

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
