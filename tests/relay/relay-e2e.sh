#!/bin/bash
# SPDX-License-Identifier: MIT
#
# shadowmesh-relay end to end on loopback (no root needed, no traffic beyond 127.0.0.0/8):
#   1. the relay on a free port of 127.0.0.1 (--listen 127.0.0.1:0; the port is read from its
#      "listening on" line), with a test-owned NOTIFY_SOCKET and WATCHDOG_USEC: READY=1,
#      STATUS=, WATCHDOG=1; relay-client-test registers two shared-key nodes, two identity
#      nodes and a node of another network, checks REGISTERED and PEER, forwards both ways,
#      checks isolation and STUN; SIGUSR1's stats line must show exactly the counts the client
#      expects; SIGTERM: STOPPING=1 and exit status 0;
#   2. --allow-network and --rate: a network not allowed gets nothing, a burst of STUN requests
#      is cut to the rate, and the counters agree; SIGINT: exit status 0;
#   3. the command line: --help, --version, usage errors (64), a port in use (2);
#   4. socket activation (systemd-socket-activate --datagram): the relay adopts the socket and
#      answers the datagram that started it.
# Every wait is bounded and on a real condition (a log line, a datagram). Processes are killed
# by the PIDs this script started.
#
# Usage: relay-e2e.sh RELAY_BINARY CLIENT_BINARY
set -u
# The shared helpers (wait_until, now_ms, ...); this script keeps its own pass/fail/summary.
# shellcheck source=tests/common.sh
source "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/../common.sh"

relay=$1 client=$2
passed=0
failed=0
pids=()
work=$(mktemp -d "${TMPDIR:-/tmp}/sm-relay.XXXXXX")

pass() { passed=$((passed + 1)); printf 'ok - %s\n' "$*"; }
failures=()
fail() { failed=$((failed + 1)); failures+=("$*"); printf 'FAIL - %s\n' "$*"; }
check() { # check NAME CMD...
        local name=$1
        shift
        if "$@"; then pass "$name"; else fail "$name"; fi
}

cleanup() {
        local pid i
        for pid in "${pids[@]}"; do
                kill -TERM "$pid" 2>/dev/null
        done
        for pid in "${pids[@]}"; do
                for ((i = 0; i < 50; i++)); do
                        kill -0 "$pid" 2>/dev/null || break
                        sleep 0.1
                done
                kill -KILL "$pid" 2>/dev/null
                wait "$pid" 2>/dev/null
        done
        rm -rf "$work"
}
trap cleanup EXIT



dump() { # dump FILE...: show files after a failure
        local f
        for f in "$@"; do
                echo "----- ${f##*/} -----"
                cat "$f" 2>/dev/null
        done
}

summary() {
        local reports
        reports=$(cat "$work"/*.log 2>/dev/null |
                grep -E 'runtime error:|AddressSanitizer|LeakSanitizer' || true)
        if [ -z "$reports" ]; then
                pass "no sanitizer reports in the relay logs"
        else
                fail "sanitizer reports: $(head -n 3 <<<"$reports")"
        fi
        if [ "$failed" -ne 0 ]; then
                dump "$work"/*.log "$work"/*.out
                # Again after the logs, which a test runner may cut to their last lines.
                printf 'FAILED: %s\n' "${failures[@]}"
        fi
        printf '%d passed, %d failed\n' "$passed" "$failed"
        [ "$failed" -eq 0 ]
}

# start_relay NAME ARGS...: the relay on a free port of 127.0.0.1; sets PID and PORT.
PID="" PORT=""
start_relay() {
        local name=$1
        shift
        "$relay" --listen 127.0.0.1:0 "$@" >"$work/$name.log" 2>&1 &
        PID=$!
        pids+=("$PID")
        if ! wait_until 10 grep -q 'listening on 127\.0\.0\.1:[0-9]* (udp)' "$work/$name.log"; then
                fail "$name: relay ready (its 'listening on' line)"
                PORT=""
                return 1
        fi
        PORT=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\) (udp).*/\1/p' "$work/$name.log")
        pass "$name: relay listening on 127.0.0.1:$PORT"
}

# client_run NAME ARGS...: run the test client; fold its "N passed, N failed" into ours.
client_run() {
        local name=$1 p f
        shift
        "$client" "$@" >"$work/$name.out" 2>&1
        local rc=$?
        sed -n 's/^\(ok\|FAIL\) - /  client: &/p' "$work/$name.out"
        read -r p f < <(sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\1 \2/p' "$work/$name.out")
        passed=$((passed + ${p:-0}))
        failed=$((failed + ${f:-0}))
        if [ "$rc" -ne 0 ] || [ -z "${p:-}" ]; then
                fail "$name: relay-client-test exited with $rc"
                return 1
        fi
}

stats_count() { grep -c 'stats: ' "$1"; }
stats_grew() { (($(stats_count "$1") > $2)); }

# check_stats NAME PID CLIENT_OUT: SIGUSR1, then every "expect k=v" of the client must be in
# the new stats line.
check_stats() {
        local name=$1 pid=$2 out=$3 log=$work/$1.log before line kv
        before=$(stats_count "$log")
        kill -USR1 "$pid"
        # (a function, so that each poll counts again)
        if ! wait_until 5 stats_grew "$log" "$before"; then
                fail "$name: SIGUSR1 logs a stats line"
                return
        fi
        line=$(grep 'stats: ' "$log" | tail -n 1)
        pass "$name: SIGUSR1 logs a stats line"
        printf '  %s\n' "$line"
        while read -r kv; do
                if [[ " $line " == *" $kv "* ]]; then
                        pass "$name: stats $kv"
                else
                        fail "$name: stats $kv (line: $line)"
                fi
        done < <(sed -n 's/^expect //p' "$out")
}

# stop NAME PID SIGNAL: the relay exits 0 on SIGINT and SIGTERM.
stop() {
        local name=$1 pid=$2 sig=$3 rc
        kill "-$sig" "$pid"
        wait "$pid"
        rc=$?
        check "$name: SIG$sig -> exit status 0 (got $rc)" test "$rc" -eq 0
        check "$name: logs the shutdown" grep -q "received SIG$sig, shutting down" "$work/$name.log"
}

for tool in sed grep; do
        command -v "$tool" >/dev/null || { fail "$tool missing"; summary; exit 1; }
done
check "relay binary $relay is executable" test -x "$relay"
check "client binary $client is executable" test -x "$client"

echo "== 1. registrations, pairs, forwarding, STUN, notify, stats"
"$client" notify "$work/notify.sock" >"$work/notify.out" 2>&1 &
notify_pid=$!
pids+=("$notify_pid")
check "notify socket bound" wait_until 5 grep -qx bound "$work/notify.out"
export NOTIFY_SOCKET=$work/notify.sock WATCHDOG_USEC=2000000
if start_relay main; then
        main_pid=$PID
        unset NOTIFY_SOCKET WATCHDOG_USEC
        check "main: READY=1 sent" wait_until 5 grep -qx 'READY=1' "$work/notify.out"
        check "main: STATUS= names the address" \
                grep -q "^STATUS=Listening on 127\.0\.0\.1:$PORT, 0 registrations$" "$work/notify.out"
        client_run main-client main 127.0.0.1 "$PORT"
        check_stats main "$main_pid" "$work/main-client.out"
        check "main: STATUS= follows the registrations" \
                wait_until 5 grep -q "^STATUS=Listening on 127\.0\.0\.1:$PORT, 5 registrations$" \
                "$work/notify.out"
        check "main: WATCHDOG=1 pings (WATCHDOG_USEC=2000000)" \
                wait_until 5 grep -qx 'WATCHDOG=1' "$work/notify.out"
        stop main "$main_pid" TERM
        check "main: STOPPING=1 sent" wait_until 5 grep -qx 'STOPPING=1' "$work/notify.out"
fi
unset NOTIFY_SOCKET WATCHDOG_USEC
wait "$notify_pid" 2>/dev/null

echo "== 2. allow list and rate limit"
allowed=$("$client" network-id 6c696d6974732d6e6574776f726b2d6b65792d33322d62797465732121212121)
check "network id of a key: 32 hex digits" grep -qE '^[0-9a-f]{32}$' <<<"$allowed"
if start_relay limits --allow-network 00000000000000000000000000000001 \
        --allow-network "$allowed" --rate 20; then
        limits_pid=$PID limits_port=$PORT
        client_run limits-client limits 127.0.0.1 "$PORT" "$allowed"
        check_stats limits "$limits_pid" "$work/limits-client.out"

        echo "== 4. command line"
        "$relay" --listen "127.0.0.1:$limits_port" >"$work/busy.out" 2>&1
        rc=$?
        check "a port in use: exit status 2 (got $rc)" test "$rc" -eq 2
        check "a port in use: says so" grep -q 'already in use' "$work/busy.out"
        stop limits "$limits_pid" INT
fi
"$relay" --help >"$work/help.out" 2>&1
check "--help: exit 0 and usage" grep -q '^Usage: shadowmesh-relay' "$work/help.out"
check "--version" grep -qE '^shadowmesh-relay [0-9]+\.[0-9]+' <("$relay" --version)
for bad in "--rate x" "--rate 10000001" "--max-peers 0" "--relay-rate -1" \
           "--allow-network 1234" "--listen 1.2.3" "--listen ::1:9545" "--log-level loud" \
           "--bogus" "extra"; do
        # shellcheck disable=SC2086 # split on purpose
        "$relay" $bad >"$work/bad.out" 2>&1
        rc=$?
        check "'$bad': usage error, exit 64 (got $rc)" test "$rc" -eq 64
done

echo "== 4. socket activation"
if command -v systemd-socket-activate >/dev/null; then
        activated=""
        for attempt in 1 2 3 4 5; do
                port=$((20000 + RANDOM % 40000))
                systemd-socket-activate --datagram -l "127.0.0.1:$port" "$relay" \
                        >"$work/activated.log" 2>&1 &
                PID=$!
                pids+=("$PID")
                if wait_until 5 grep -q "Listening on 127.0.0.1:$port" "$work/activated.log"; then
                        activated=$PID
                        break
                fi
                kill "$PID" 2>/dev/null
                wait "$PID" 2>/dev/null
        done
        if [ -n "$activated" ]; then
                pass "systemd-socket-activate listens on 127.0.0.1:$port"
                client_run activated-client stun 127.0.0.1 "$port"
                check "activated: the relay adopted the socket" \
                        grep -q 'using the socket passed by the service manager' \
                        "$work/activated.log"
                stop activated "$activated" TERM
        else
                fail "systemd-socket-activate could not listen (5 ports tried)"
        fi
else
        fail "systemd-socket-activate missing (apt-get install systemd)"
fi

summary
