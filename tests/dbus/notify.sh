#!/bin/bash
# SPDX-License-Identifier: MIT
#
# sd_notify(3) as a service manager sees it, read from a NOTIFY_SOCKET this test owns
# (notify-recv): READY=1 only once the bus name is owned, STATUS= on every state change,
# WATCHDOG=1 often enough for WatchdogSec, STOPPING=1 on SIGTERM; no READY=1 from a duplicate
# instance; READY=1 right away without a bus.
#
#   sm$$-a: instance "notif", smt0 10.0.0.1/24, NOTIFY_SOCKET, WATCHDOG_USEC=2000000
#   sm$$-b: instance "peer", smt0 10.0.0.2/24 (the peer)
#   sm$$-c: a duplicate "notif", then a daemon without a bus
set -euo pipefail
source "$(dirname "$(readlink -f "$0")")/lib.sh"

dbus_init
[[ -x $SM_NOTIFY_RECV ]] || { echo "SM_NOTIFY_RECV=$SM_NOTIFY_RECV is not executable" >&2; exit 1; }
setup_pair 41
add_ns "$NS_C"
start_bus

KEY=$(random_hex_key)
write_config "$TMP/a.yaml" ip4=$TUN_A/24 key="$KEY"
write_config "$TMP/b.yaml" ip4=$TUN_B/24 key="$KEY"
write_config "$TMP/c.yaml" ip4=10.0.0.3/24 key="$KEY"
NAME=$(inst_name notif)

# start_receiver TAG: notify-recv on $TMP/TAG.sock, output in $TMP/TAG.out.
start_receiver() {
        "$SM_NOTIFY_RECV" "$TMP/$1.sock" "$NAME" >"$TMP/$1.out" 2>&1 &
        OWN_PIDS+=("$!")
        wait_until 5 grep -q '^listening on' "$TMP/$1.out" ||
                { echo "notify-recv did not start" >&2; exit 1; }
}

# start_notified NAME NS CONFIG SOCKET_TAG [VAR=VALUE...] -- [ARGS...]: the daemon with
# NOTIFY_SOCKET, and WATCHDOG_PID set to its own PID as systemd does (bash -c execs into it).
start_notified() {
        local name=$1 ns=$2 config=$3 tag=$4
        shift 4
        local vars=()
        while (($# > 0)) && [[ $1 != -- ]]; do
                vars+=("$1")
                shift
        done
        shift
        env --default-signal=INT NOTIFY_SOCKET="$TMP/$tag.sock" "${vars[@]}" \
                bash -c 'export WATCHDOG_PID=$$; exec ip netns exec "$@"' _ \
                "$ns" "$SHADOWMESHD" "$@" "$config" >"$TMP/$name.log" 2>&1 &
        register_daemon "$name" $!
}

# notes TAG: the notification lines so far; count TAG REGEX
notes() { grep '^notify ' "$TMP/$1.out" || true; }
count() { notes "$1" | grep -cE -- "$2" || true; }
at_least() { (($(count "$1" "$2") >= $3)); }

start_daemon b "$NS_B" "$TMP/b.yaml" --instance peer
start_receiver main
start_notified a "$NS_A" "$TMP/a.yaml" main WATCHDOG_USEC=2000000 -- --instance notif
PID_A=${DAEMON_PID[a]}

# ---- start-up -----------------------------------------------------------------------------------
check "READY=1 arrives" wait_until 10 at_least main '(: |\|)READY=1' 1
check_eq "the bus name was owned when READY=1 came" \
        "$(grep '^name ' "$TMP/main.out" | head -n 1)" "name $NAME owned at READY=1: yes"
check "READY=1 comes from the daemon's PID" at_least main "^notify pid=$PID_A .*READY=1" 1
check "STATUS=Waiting for the peer" wait_until 5 at_least main 'STATUS=Waiting for the peer' 1

# ---- watchdog -----------------------------------------------------------------------------------
check "WATCHDOG=1 at least 3 times within 3 s" wait_until 3 at_least main 'WATCHDOG=1' 3
gaps=$(notes main | grep 'WATCHDOG=1' | sed 's/.* ms=\([0-9]*\):.*/\1/' |
        awk 'NR > 1 && $1 - prev >= 2000 { print prev "->" $1 } { prev = $1 }')
check_eq "no gap between WATCHDOG=1 pings reaches WATCHDOG_USEC (2 s)" "$gaps" ""

# ---- STATUS on state changes --------------------------------------------------------------------
check "Connect" timeout 20 busctl call "$NAME" "$(inst_path notif)" $TUNNEL_IFACE Connect 'sa{sv}' \
        "$UNDER_B:$PORT" 0
check "STATUS=Connecting to $UNDER_B:$PORT" \
        wait_until 5 at_least main "STATUS=Connecting to $UNDER_B:$PORT" 1
check "STATUS=Connected to $UNDER_B:$PORT" \
        wait_until 5 at_least main "STATUS=Connected to $UNDER_B:$PORT" 1
check "Disconnect" busctl call "$NAME" "$(inst_path notif)" $TUNNEL_IFACE Disconnect
check "STATUS=Disconnected" wait_until 5 at_least main 'STATUS=Disconnected' 1

# ---- a duplicate instance never reports READY ---------------------------------------------------
start_receiver dup
start_notified dup "$NS_C" "$TMP/c.yaml" dup -- --instance notif
if wait_exit dup 15; then
        check_eq "a duplicate 'notif' exits with status 2" "$EXIT_CODE" 2
else
        fail "a duplicate 'notif' exits with status 2" "still running after 15 s"
fi
check_eq "the duplicate sent no READY=1" "$(count dup 'READY=1')" 0

# ---- stopping -----------------------------------------------------------------------------------
kill -TERM "$PID_A"
check "STOPPING=1 after SIGTERM" wait_until 5 at_least main "^notify pid=$PID_A .*STOPPING=1" 1
if wait_exit a 10; then
        check_eq "the daemon exits 0" "$EXIT_CODE" 0
else
        fail "the daemon exits 0" "still running after 10 s"
fi
check_eq "every notification came from the daemon's PID" \
        "$(notes main | grep -vc "^notify pid=$PID_A " || true)" 0

# ---- without a bus ------------------------------------------------------------------------------
start_receiver nobus
start_notified nobus "$NS_C" "$TMP/c.yaml" nobus DBUS_SYSTEM_BUS_ADDRESS="unix:path=$TMP/no-bus" \
        -- --instance nobus
check "without a bus: READY=1 arrives" wait_until 10 at_least nobus 'READY=1' 1
check "without a bus: it says so" log_has nobus "running without the D-Bus API"
check "without a bus: STATUS=Waiting for the peer" \
        wait_until 5 at_least nobus 'STATUS=Waiting for the peer' 1
kill -TERM "${DAEMON_PID[nobus]}"
check "without a bus: STOPPING=1 after SIGTERM" wait_until 5 at_least nobus 'STOPPING=1' 1
summary
