#!/bin/bash
# SPDX-License-Identifier: MIT
# shellcheck disable=SC2317 # cleanup (the EXIT trap) and wait_for (through check) run indirectly
#
# Does the sandbox of shadowmesh@.service let the real daemon work? Without systemd as PID 1
# the unit cannot be started, so this test confines the daemon as the unit would, as far as
# plain tools can, and records what it does with strace:
#   - CapabilityBoundingSet= and NoNewPrivileges= (setpriv);
#   - ProtectSystem=strict: in a mount namespace every mount except /dev and /proc is
#     remounted read-only (only the test's own directory stays writable); /sys is read-only
#     too, as ProtectKernelTunables= and ProtectControlGroups= make it;
#   - ProtectProc=invisible and ProcSubset=pid: a fresh /proc mounted with
#     hidepid=invisible,subset=pid (no /proc/sys);
#   - ProtectHome=yes: empty, inaccessible /home, /root and /run/user.
# (PrivateTmp= is left out: the test's files live in $TMPDIR. DevicePolicy= is a cgroup
# setting; the trace is checked instead.)
# The confined daemon then runs a full session against a second daemon, each in a network
# namespace made here and joined by a veth pair: start, D-Bus on a private system-like bus,
# Connect, handshake, ping through the tunnel, GetStatus, LogLevel, Disconnect, SIGUSR1 and
# SIGTERM. Finally its system calls are checked against the unit's SystemCallFilter=
# (expanded by systemd-analyze), its sockets against RestrictAddressFamilies=, and the files
# it opened against DeviceAllow= and the read-only file system.
#
# Usage: sandbox.sh UNIT BUILT_DAEMON POLICY_FILE. Needs root and strace (exit 77 without).
set -u

# shellcheck source=tests/common.sh
source "$(dirname "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")")/common.sh"
# This test's lines read "PASS: NAME" and "FAIL: NAME".
PASS_MARK="PASS:"
FAIL_MARK="FAIL:"

unit=$1 daemon=$2 policy=$3

if [ "$(id -u)" -ne 0 ]; then
        echo "SKIP: needs root (network namespaces, TAP devices)"
        exit 77
fi
for tool in strace setpriv ip ping dbus-daemon busctl systemd-analyze; do
        if ! command -v "$tool" >/dev/null; then
                echo "SKIP: $tool not found"
                exit 77
        fi
done

ns_a=sm$$-sba
ns_b=sm$$-sbb
# Not $TMP: on failure this test prints the confined daemon's log itself, and KEEP=1 keeps it.
work=$(mktemp -d "${TMPDIR:-/tmp}/sm-sandbox.XXXXXX")
chmod 755 "$work"
cleanup() {
        local rc=$?
        cleanup_begin "$rc"
        stop_own_pids
        stop_pid "$BUS_PID"
        del_namespaces
        if [ -n "${KEEP:-}" ]; then echo "kept $work"; else rm -rf "$work"; fi
        cleanup_end "$rc"
}
trap cleanup EXIT

# wait_for FILE TEXT: up to 10 s for TEXT to appear in FILE
wait_for() { wait_until 10 grep -qsF -- "$2" "$1"; }

# words TEXT: TEXT's lines as one line of words
words() { printf '%s' "$1" | tr '\n' ' '; }

# unit_values KEY: the values of every KEY= line of the unit, one assignment a line
unit_values() { sed -n "s/^$1=//p" "$unit"; }

# expand GROUP_OR_CALL: the system calls it stands for, one a line
expand() {
        case $1 in
        @*)
                systemd-analyze syscall-filter "$1" | sed -n '2,$p' |
                        sed 's/^[[:space:]]*//' | grep -v '^#' | grep -v '^$' |
                        while read -r s; do expand "$s"; done
                ;;
        *) echo "$1" ;;
        esac
}

echo "== what the unit allows"
# SystemCallFilter=: the first assignment is an allow-list, "~" ones subtract. systemd also
# always allows execve, exit, exit_group, getrlimit, rt_sigreturn, sigreturn and the calls
# that read clocks and sleep (systemd.exec(5)); those are in @default.
: >"$work/allow"
: >"$work/deny"
while read -r line; do
        case $line in
        "~"*) for g in ${line#\~}; do expand "$g"; done >>"$work/deny" ;;
        *) for g in $line; do expand "$g"; done >>"$work/allow" ;;
        esac
done < <(unit_values SystemCallFilter)
{ expand @default; printf '%s\n' execve exit exit_group getrlimit rt_sigreturn sigreturn; } \
        >>"$work/allow"
sort -u "$work/allow" -o "$work/allow"
sort -u "$work/deny" -o "$work/deny"
comm -23 "$work/allow" "$work/deny" >"$work/allowed"
check "SystemCallFilter= expands to a non-empty set ($(wc -l <"$work/allowed") calls)" \
        test -s "$work/allowed"
families=$(unit_values RestrictAddressFamilies | tr '\n' ' ')
check "RestrictAddressFamilies= is set ($families)" test -n "$families"
caps=$(unit_values CapabilityBoundingSet | tr ' ' '\n' | sed -n 's/^CAP_//p' |
        tr '[:upper:]' '[:lower:]' | sed 's/^/+/' | paste -sd, -)
check "CapabilityBoundingSet= is set ($caps)" test -n "$caps"
nnp=()
[ "$(unit_values NoNewPrivileges)" = yes ] && nnp=(--no-new-privs)

echo "== a private system-like bus with the project's policy"
check "bus is up" start_private_bus "$work/bus" "$work/bus.log" "$policy"

echo "== two daemons in $ns_a and $ns_b; the one in $ns_a confined and traced"
add_ns "$ns_a"
add_ns "$ns_b"
ip link add "smsb$$a" netns "$ns_a" type veth peer name "smsb$$b" netns "$ns_b"
ip -n "$ns_a" addr add 192.0.2.1/24 dev "smsb$$a"
ip -n "$ns_b" addr add 192.0.2.2/24 dev "smsb$$b"
ip -n "$ns_a" link set "smsb$$a" up
ip -n "$ns_b" link set "smsb$$b" up

key=$(random_hex_key)
for side in a b; do
        case $side in a) ip=10.77.0.1 ;; b) ip=10.77.0.2 ;; esac
        cat >"$work/$side.yaml" <<EOF
network:
  tap_device: smsb0
  local_ip: $ip/24
encryption:
  key: "$key"
EOF
        chmod 600 "$work/$side.yaml"
done

# The confinement, run as root inside the new mount namespace; then it execs the rest.
cat >"$work/confine.sh" <<'EOF'
set -e
work=$1
shift
mount --bind "$work" "$work"
findmnt -rn -o TARGET | while read -r m; do
        case $m in
        /dev | /dev/* | /proc | /proc/* | "$work") ;;
        *) mount -o remount,bind,ro "$m" 2>/dev/null || echo "confine: cannot make $m read-only" >&2 ;;
        esac
done
mount -t proc -o hidepid=invisible,subset=pid proc /proc
for d in /home /root /run/user; do
        if [ -d "$d" ]; then mount -t tmpfs -o ro,mode=000 tmpfs "$d"; fi
done
exec "$@"
EOF
# The confinement itself must work, or the checks below prove nothing. test -w asks the
# kernel (access(2)), which answers EROFS for a read-only mount even to root.
check "confinement: /, /etc and /sys read-only, no /proc/sys, empty /root, $work writable" \
        ip netns exec "$ns_a" unshare -m --propagation private -- sh "$work/confine.sh" "$work" \
        sh -c "! test -w / && ! test -w /etc && ! test -w /sys/class && ! test -e /proc/sys &&
               test -z \"\$(ls -A /root)\" && test -w '$work' && test -e /proc/self/status"
# LeakSanitizer cannot work under ptrace, so a sanitizer build's daemon runs without it here.
ip netns exec "$ns_a" unshare -m --propagation private -- sh "$work/confine.sh" "$work" \
        setpriv --bounding-set=-all,"$caps" --inh-caps=-all "${nnp[@]}" -- \
        env ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
        strace -ff -qq -o "$work/trace" "$daemon" --instance sba "$work/a.yaml" \
        2>"$work/a.log" &
traced=$!
OWN_PIDS+=("$traced")
ip netns exec "$ns_b" "$daemon" --instance sbb "$work/b.yaml" 2>"$work/b.log" &
OWN_PIDS+=("$!")

bus_a=(org.shadowmesh1.Instance.sba /org/shadowmesh1/instance/sba org.shadowmesh1.Tunnel)
check "confined daemon is up and owns its bus name" \
        wait_for "$work/a.log" "serving org.shadowmesh1.Instance.sba"
check "peer daemon is up" wait_for "$work/b.log" "serving org.shadowmesh1.Instance.sbb"
check "Connect over D-Bus completes the handshake" \
        timeout 20 busctl call "${bus_a[@]}" Connect 'sa{sv}' 192.0.2.2:9001 1 timeout_sec u 10
check "ping through the tunnel" ip netns exec "$ns_a" ping -c 3 -i 0.2 -W 2 10.77.0.2
check "GetStatus" busctl call "${bus_a[@]}" GetStatus
# The result of the set is not this test's business, only what the daemon does for it.
busctl set-property org.shadowmesh1.Instance.sba /org/freedesktop/LogControl1 \
        org.freedesktop.LogControl1 LogLevel s debug >/dev/null 2>&1
check "Disconnect" busctl call "${bus_a[@]}" Disconnect
# ip netns exec, unshare, sh, setpriv and env all exec, so $traced is strace, whose child is
# the daemon.
daemon_pid=$(pgrep -P "$traced" -x shadowmeshd)
check "found the traced daemon's pid (${daemon_pid:-none})" test -n "$daemon_pid"
if [ -n "$daemon_pid" ]; then
        kill -USR1 "$daemon_pid"
        check "SIGUSR1 logs the counters" wait_for "$work/a.log" "stats: tx_packets="
        kill -TERM "$daemon_pid"
fi
if ! wait_until 15 has_exited "$traced"; then
        fail "confined daemon still runs 15 s after SIGTERM"
        kill -KILL "$traced"
fi
wait "$traced"
rc=$?
# One file per thread (-ff): with -f, calls of the data-path threads interleave and split into
# "<unfinished ...>" and "resumed" halves, and a refused open could read as a successful one.
cat "$work"/trace.* >"$work/trace" 2>/dev/null || true
check "confined daemon exits 0 after SIGTERM (rc=$rc)" test "$rc" -eq 0
check "confined daemon removed its TAP" grep -q "smsb0 removed" "$work/a.log"
if [ "$FAILED" -ne 0 ] || grep -q '^confine:' "$work/a.log"; then
        echo "--- daemon log:"
        cat "$work/a.log"
fi

echo "== what the confined daemon did, against the unit"
# strace lines: "PID name(args) = result"; resumed and signal lines carry no new names.
sed -E 's/^[0-9]+ +//' "$work/trace" | sed -n -E 's/^([a-z0-9_]+)\(.*/\1/p' | sort -u \
        >"$work/used"
check "the trace holds system calls ($(wc -l <"$work/used"))" test -s "$work/used"
comm -23 "$work/used" "$work/allowed" >"$work/forbidden"
if [ -s "$work/forbidden" ]; then
        fail "system calls outside SystemCallFilter=: $(tr '\n' ' ' <"$work/forbidden")"
else
        pass "every system call is allowed by SystemCallFilter=: $(tr '\n' ' ' <"$work/used")"
fi

used_families=$(grep -oE 'socket\((AF_[A-Z0-9]+|[0-9]+)' "$work/trace" | sed 's/socket(//' | sort -u)
bad_families=""
for f in $used_families; do
        case " $families " in *" $f "*) ;; *) bad_families+="$f " ;; esac
done
check "socket families $(words "$used_families") are in RestrictAddressFamilies=" \
        test -z "$bad_families"

# Files it opened (successfully: what a hidden or read-only path refused does not count; the
# daemon survived that, as the checks above show).
opened=$(grep -E ' open(at)?\(' "$work/trace" | grep -vE '= -1 [A-Z]+' |
        grep -oE 'open(at)?\((AT_FDCWD, )?"[^"]*", [A-Z_|]+' | sed -E 's/^open(at)?\((AT_FDCWD, )?//')
devices=$(printf '%s\n' "$opened" | grep -oE '^"/dev/[^"]*"' | tr -d '"' | sort -u)
bad_devices=$(printf '%s\n' "$devices" | grep -vxE '/dev/net/tun|/dev/(null|zero|full|u?random)' |
        grep . || true)
check "devices opened: $(words "$devices") (DeviceAllow=/dev/net/tun, DevicePolicy=closed)" \
        test -z "$bad_devices"
writes=$(printf '%s\n' "$opened" | grep -E 'O_(WRONLY|RDWR|CREAT)' | grep -oE '^"[^"]*"' |
        tr -d '"' | sort -u)
# Its threads name themselves through /proc/self/task/TID/comm; nothing else may be written.
bad_writes=$(printf '%s\n' "$writes" | grep -vxE '/dev/net/tun|/dev/null|/proc/self/task/[0-9]+/comm' |
        grep . || true)
check "opened for writing only $(words "$writes") (ProtectSystem=strict)" test -z "$bad_writes"
refused=$(grep -E ' open(at)?\(' "$work/trace" | grep -E '= -1 (EROFS|EACCES|EPERM)' |
        grep -oE '"[^"]*"' | sort -u)
check "no open refused by the sandbox ($(words "$refused"))" test -z "$refused"
procs=$(printf '%s\n' "$opened" | grep -oE '^"/proc/[^"]*"' | tr -d '"' | sort -u)
bad_procs=$(printf '%s\n' "$procs" | grep -vE '^/proc/(self|thread-self|[0-9]+)(/|$)' | grep . || true)
check "/proc: only its own entries ($(words "$procs")) (ProcSubset=pid)" test -z "$bad_procs"

summary
