# SPDX-License-Identifier: MIT
# shellcheck shell=bash
# shellcheck disable=SC2034 # the state below is read and set by the files that source this one
#
# What the shell test libraries share (tests/dbus/lib.sh, tests/nm/lib.sh, tests/netns/lib.sh,
# tests/systemd/sandbox.sh): the check counters with their "ok - NAME" / "FAIL - NAME" lines and
# the closing "N passed, N failed" line, bounded polling, processes stopped only by the PIDs the
# test started, network namespaces, a private system-like dbus-daemon, and the pieces of the EXIT
# trap that report an aborted script.
#
# Sourcing this file only defines functions and the state below: it sets no shell option, installs
# no trap and runs nothing. Every function works under `set -euo pipefail`. A library sources it
# relative to its own file, so that a script also finds it when run directly:
#
#   # shellcheck source=tests/common.sh
#   source "$(dirname "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")")/common.sh"
#
# A library's EXIT trap has this shape (the order of the middle part is the library's own):
#
#   cleanup() {
#           local rc=$?
#           cleanup_begin "$rc"
#           stop_own_pids
#           stop_pid "$BUS_PID"
#           del_namespaces
#           cleanup_end "$rc"
#   }

PASSED=0
FAILED=0
SUMMARY_DONE=0     # 1 once the closing line is printed: the EXIT trap then reports no abort
PASS_MARK="ok -"   # what starts the line of a passed check
FAIL_MARK="FAIL -" # ... and of a failed one
SANITIZER_CHECK=0  # 1: summary first checks the logs for sanitizer reports
TMP=""             # the test's directory: dump_logs prints its *.log and *.out, cleanup_end removes it
DUMP_LOG_LINES=""  # set to N: dump_logs prints only the last N lines of each file
OWN_PIDS=()        # every background process the test started; stop_own_pids stops them
NAMESPACES=()      # every network namespace add_ns made; del_namespaces deletes them
BUS_PID=""         # the private dbus-daemon (start_private_bus)

# ---- checks -------------------------------------------------------------------------------------

# skip REASON: the test cannot run here (meson counts exit status 77 as skipped).
skip() {
        echo "SKIP: $*"
        SUMMARY_DONE=1
        exit 77
}

pass() {
        PASSED=$((PASSED + 1))
        echo "$PASS_MARK $1"
}

# fail NAME [DETAIL...]: each detail on a line of its own, indented.
fail() {
        FAILED=$((FAILED + 1))
        echo "$FAIL_MARK $1"
        shift
        local line
        for line in "$@"; do
                printf '       %s\n' "$line"
        done
}

# check NAME COMMAND...: passes when the command succeeds.
check() {
        local name=$1
        shift
        if "$@"; then
                pass "$name"
        else
                fail "$name" "(command: $*)"
        fi
}

# check_not NAME COMMAND...: passes when the command fails.
check_not() {
        local name=$1
        shift
        if "$@"; then
                fail "$name" "(command succeeded: $*)"
        else
                pass "$name"
        fi
}

# check_eq NAME GOT WANT
check_eq() {
        if [[ $2 == "$3" ]]; then
                pass "$1"
        else
                fail "$1" "got:  $2" "want: $3"
        fi
}

# contains TEXT SUBSTRING
contains() { [[ $1 == *"$2"* ]]; }

# check_has NAME TEXT SUBSTRING
check_has() {
        if contains "$2" "$3"; then
                pass "$1"
        else
                fail "$1" "got:  $2" "want (substring): $3"
        fi
}

note() { echo "# $*"; }

# need TOOL PACKAGE: a missing tool is an error of the machine's set-up, not a skip. Ends the
# script with its closing line.
need() {
        if ! command -v "$1" >/dev/null; then
                fail "'$1' is installed (apt-get install $2)"
                SUMMARY_DONE=1
                echo "$PASSED passed, $FAILED failed"
                exit 1
        fi
}

# ---- time ---------------------------------------------------------------------------------------

now_ms() { echo $(($(date +%s%N) / 1000000)); }

# wait_until SECONDS COMMAND...: poll every 0.1 s until the command succeeds; false at the
# deadline (the command is tried at least once).
wait_until() {
        local deadline=$(($(now_ms) + $1 * 1000))
        shift
        while :; do
                "$@" && return 0
                (($(now_ms) < deadline)) || return 1
                sleep 0.1
        done
}

# wait_while_alive SECONDS PID COMMAND...: wait_until, but once PID has exited the command gets
# one last try instead of the rest of the time (a daemon that died logs nothing more).
wait_while_alive() {
        local deadline=$(($(now_ms) + $1 * 1000)) pid=$2
        shift 2
        while :; do
                "$@" && return 0
                if has_exited "$pid"; then
                        "$@"
                        return
                fi
                (($(now_ms) < deadline)) || return 1
                sleep 0.1
        done
}

# ---- processes ----------------------------------------------------------------------------------
# Background processes are started in the script's own shell (never from a subshell or by
# backgrounding a shell function), so that each is a child of $$: a PID is signalled only while
# it still is one, never after the kernel gave it to an unrelated process.

ppid_of() { awk '/^PPid:/ { print $2 }' "/proc/$1/status" 2>/dev/null || true; }
proc_state() { awk '/^State:/ { print $2 }' "/proc/$1/status" 2>/dev/null || true; }

# has_exited PID: gone, a zombie, or no longer our child (the PID was reused).
has_exited() {
        local state
        state=$(proc_state "$1")
        [[ -z $state || $state == Z || $(ppid_of "$1") != "$$" ]]
}

# kill_own SIGNAL PID: signal PID only while it is still a child of this shell.
kill_own() {
        [[ -n $2 && $(ppid_of "$2") == "$$" ]] || return 1
        kill "-$1" "$2" 2>/dev/null
}

# wait_pid_exit PID SECONDS: wait for PID to exit and reap it; EXIT_CODE is its exit status (128+N
# after signal N). Returns 1, EXIT_CODE empty, if it still runs at the deadline.
EXIT_CODE=""
wait_pid_exit() {
        local pid=$1
        EXIT_CODE=""
        wait_until "$2" has_exited "$pid" || return 1
        EXIT_CODE=0
        # (braces: bash's "Killed" notice for a SIGKILLed job goes to /dev/null too)
        { wait "$pid"; } 2>/dev/null || EXIT_CODE=$?
        return 0
}

# stop_pid PID [SIGNAL]: signal (TERM by default), wait up to 5 s, then KILL; reaps it. An empty
# PID, or one that is gone, is not an error.
stop_pid() {
        local pid=$1 sig=${2:-TERM}
        [[ -n $pid ]] || return 0
        kill_own "$sig" "$pid" || true
        wait_until 5 has_exited "$pid" || kill_own KILL "$pid" || true
        wait_until 2 has_exited "$pid" || true
        # (braces: bash's "Killed" notice for a SIGKILLed job goes to /dev/null too)
        { wait "$pid"; } 2>/dev/null || true
}

# stop_own_pids: SIGTERM to every process in OWN_PIDS at once, then stop_pid each.
stop_own_pids() {
        local pid
        for pid in "${OWN_PIDS[@]}"; do
                kill_own TERM "$pid" || true
        done
        for pid in "${OWN_PIDS[@]}"; do
                stop_pid "$pid"
        done
}

# ---- network namespaces -------------------------------------------------------------------------

# require_netns PREFIX: skip unless root with a working `ip netns` (tried on PREFIX-probe).
require_netns() {
        [[ $EUID -eq 0 ]] || skip "needs root"
        command -v ip >/dev/null || skip "ip (iproute2) not installed"
        ip netns add "$1-probe" 2>/dev/null || skip "ip netns is not usable here"
        ip netns del "$1-probe"
}

# add_ns NAME: a namespace with its loopback up, deleted by del_namespaces.
add_ns() {
        ip netns add "$1"
        NAMESPACES+=("$1")
        ip -n "$1" link set lo up
}

del_namespaces() {
        local ns
        for ns in "${NAMESPACES[@]}"; do
                ip netns del "$ns" 2>/dev/null || true
        done
}

# veth_pair NS1 ADDR1 NS2 ADDR2: a veth pair, veth0 in each namespace with ADDR/24, up (no device
# in the host's namespace); returns 1 unless NS1 reaches ADDR2 within 10 s.
veth_pair() {
        ip -n "$1" link add veth0 type veth peer name veth0 netns "$3"
        ip -n "$1" addr add "$2/24" dev veth0
        ip -n "$3" addr add "$4/24" dev veth0
        ip -n "$1" link set veth0 up
        ip -n "$3" link set veth0 up
        wait_until 10 ping_ok "$1" "$4"
}

# ping_ok NS ADDR [PING_ARGS...]: one echo answered within a second.
ping_ok() {
        local ns=$1 addr=$2
        shift 2
        ip netns exec "$ns" ping -c 1 -W 1 -q "$@" "$addr" >/dev/null 2>&1
}

# wait_ping SECONDS NS ADDR [PING_ARGS...]: ping until a reply (covers handshake, ARP/ND).
wait_ping() {
        local secs=$1
        shift
        wait_until "$secs" ping_ok "$@"
}

# ---- the daemons' inputs and programs -----------------------------------------------------------

random_hex_key() { od -An -tx1 -N32 /dev/urandom | tr -d ' \n'; }

# write_config FILE OPTION...: a daemon configuration, mode 600. Options are NAME=VALUE:
#   tap=smt0 ip4=10.0.0.1/24 ip6=fd00::1/64 listen=0.0.0.0:9001 peer=HOST:PORT|"" key=HEX
#   private_key_file=PATH peer_public_key=B64 mtu=N log=LEVEL control_group=GROUP
#   http=127.0.0.1:9090 peers=YAML
# listen= is the tunnel's UDP address: its port becomes network.listen_port and a host other than
# 0.0.0.0 or [::] network.bind_address. http= is daemon.listen_address, the HTTP control API.
# The defaults: tap $TAP (else smt0), listen on port $PORT (else 9001), log $SM_LOG_LEVEL (else
# info); without key= there is no encryption: section (identity mode). peers= is a peers: section
# written as given (YAML lines), in place of the peer: section that peer= and peer_public_key= make.
write_config() {
        local file=$1 kv
        shift
        local tap=${TAP:-smt0} ip4="" ip6="" listen="0.0.0.0:${PORT:-9001}" peer="" key=""
        local privfile="" peerpub="" mtu="" log=${SM_LOG_LEVEL:-info} group="" http="" peers=""
        local bind port
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
                control_group=*) group=${kv#*=} ;;
                http=*) http=${kv#*=} ;;
                peers=*) peers=${kv#*=} ;;
                *) echo "write_config: unknown option $kv" >&2; return 1 ;;
                esac
        done
        port=${listen##*:}
        bind=${listen%:*}
        bind=${bind#[}
        bind=${bind%]}
        case $bind in 0.0.0.0 | :: | "") bind="" ;; esac
        {
                echo "daemon:"
                [[ -z $http ]] || echo "  listen_address: \"$http\""
                echo "  log_level: $log"
                [[ -z $group ]] || echo "  control_group: $group"
                echo "network:"
                echo "  tap_device: $tap"
                echo "  listen_port: $port"
                [[ -z $bind ]] || echo "  bind_address: \"$bind\""
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
                if [[ -n $peers ]]; then
                        printf '%s\n' "$peers"
                else
                        echo "peer:"
                        echo "  address: \"$peer\""
                        [[ -z $peerpub ]] || echo "  public_key: \"$peerpub\""
                fi
                echo "nat:"
                echo "  enabled: false"
        } >"$file"
        chmod 600 "$file"
}

# require_program VAR: $VAR must name an executable; it is replaced by its absolute path.
# Otherwise the script ends with status 1 (a broken build or environment, not a skip).
require_program() {
        local var=$1
        [[ -n ${!var:-} ]] || { echo "$var is not set" >&2; exit 1; }
        [[ -x ${!var} ]] || { echo "$var=${!var} is not executable" >&2; exit 1; }
        printf -v "$var" '%s' "$(readlink -f "${!var}")"
}

# ---- the private bus ----------------------------------------------------------------------------

# start_private_bus DIR LOG [INCLUDE...]: a dbus-daemon of type "system" in the background,
# listening on DIR/socket (DIR is made, mode 755 so that test users reach the socket), stderr to
# LOG. Its rules are those of a system bus (Debian's system.conf): nobody owns a name or sends a
# method call unless a policy allows it. Each INCLUDE, a policy file or a directory of them, is
# added after those rules. There is no <user>, <fork/>, <pidfile> or service helper, so that it
# runs in the foreground as the test's own child (BUS_PID). DBUS_SYSTEM_BUS_ADDRESS is exported.
# Returns 1 (after printing LOG to stderr) when the bus does not answer within 10 s.
start_private_bus() {
        local dir=$1 log=$2 inc
        shift 2
        mkdir -p "$dir"
        chmod 755 "$dir"
        {
                cat <<EOF
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<!-- Test bus written by start_private_bus of tests/common.sh. -->
<busconfig>
  <type>system</type>
  <listen>unix:path=$dir/socket</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
    <allow send_destination="org.freedesktop.DBus"
           send_interface="org.freedesktop.DBus.Introspectable"/>
    <allow send_destination="org.freedesktop.DBus"
           send_interface="org.freedesktop.DBus.Properties"/>
    <deny send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"
          send_member="UpdateActivationEnvironment"/>
  </policy>
  <policy user="root">
    <allow send_destination="org.freedesktop.DBus"
           send_interface="org.freedesktop.DBus.Monitoring"/>
  </policy>
EOF
                for inc in "$@"; do
                        if [[ -d $inc ]]; then
                                echo "  <includedir>$inc</includedir>"
                        else
                                echo "  <include>$inc</include>"
                        fi
                done
                echo "</busconfig>"
        } >"$dir/bus.conf"
        export DBUS_SYSTEM_BUS_ADDRESS="unix:path=$dir/socket"
        dbus-daemon --config-file="$dir/bus.conf" --nofork --nopidfile --print-address=3 \
                3>"$dir/address" 2>"$log" &
        BUS_PID=$!
        if ! wait_until 10 test -s "$dir/address"; then
                echo "the private dbus-daemon did not start" >&2
                cat "$log" >&2
                return 1
        fi
}

# ---- the end ------------------------------------------------------------------------------------

dump_logs() {
        local f
        [[ -n $TMP && -d $TMP ]] || return 0
        for f in "$TMP"/*.log "$TMP"/*.out; do
                [[ -e $f ]] || continue
                echo "----- ${f##*/} -----"
                if [[ -n $DUMP_LOG_LINES ]]; then
                        tail -n "$DUMP_LOG_LINES" "$f" || true
                else
                        cat "$f" || true
                fi
        done
        echo "----- end of logs -----"
}

# check_no_sanitizer_reports: UBSan reports and goes on, so a passing run can still hide one.
check_no_sanitizer_reports() {
        local reports
        reports=$(cat "$TMP"/*.log 2>/dev/null |
                grep -E 'runtime error:|AddressSanitizer|LeakSanitizer|ThreadSanitizer' || true)
        if [[ -z $reports ]]; then
                pass "no sanitizer reports in the logs"
        else
                fail "no sanitizer reports in the logs" "$(head -n 3 <<<"$reports")"
        fi
}

# summary: the logs when a check failed (or SM_VERBOSE=1), the closing line, and the exit status.
summary() {
        ((SANITIZER_CHECK == 0)) || check_no_sanitizer_reports
        if ((FAILED > 0)) || [[ ${SM_VERBOSE:-0} == 1 ]]; then
                dump_logs
        fi
        SUMMARY_DONE=1
        echo "$PASSED passed, $FAILED failed"
        ((FAILED == 0)) || exit 1
        exit 0
}

# cleanup_begin RC: the first step of an EXIT trap. A script that exits before summary (set -e,
# a signal) fails: the abort counts as a failed check.
cleanup_begin() {
        set +e
        trap - EXIT
        if ((SUMMARY_DONE == 0)); then
                FAILED=$((FAILED + 1))
                echo "$FAIL_MARK script aborted (exit status $1)"
        fi
}

# cleanup_end RC: the last step of an EXIT trap, once the test's processes are stopped: the logs
# and the closing line of an aborted script; removes $TMP; exits with RC (1 after an abort).
cleanup_end() {
        local rc=$1
        if ((SUMMARY_DONE == 0)); then
                dump_logs
                echo "$PASSED passed, $FAILED failed"
                rc=1
        fi
        [[ -z $TMP ]] || rm -rf "$TMP"
        exit "$rc"
}
