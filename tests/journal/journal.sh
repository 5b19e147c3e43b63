#!/bin/bash
# SPDX-License-Identifier: MIT
#
# Structured journal fields, read back from a real systemd-journald. The script re-runs itself
# in a private mount namespace whose /run/systemd and /run/log are directories of the test:
# there a systemd-journald of its own listens on /run/systemd/journal/socket, the only place
# sd_journal_send() writes to, and keeps its files in /run/log/journal. Each daemon's stderr is
# a journal stream (systemd-cat) and JOURNAL_STREAM names it, as systemd sets it for a service
# with StandardError=journal. Then `journalctl SHADOWMESH_PEER=...` must find the handshake of
# that peer, with the instance and the endpoint, sent over the native protocol.
#
#   sm$$-a: instance "alpha", veth0 10.99.41.1, smt0 10.0.0.1/24, connects to b
#   sm$$-b: instance "beta",  veth0 10.99.41.2, smt0 10.0.0.2/24, waits

# Functions here are called through check/wait_until, which shellcheck cannot see.
# shellcheck disable=SC2317,SC2016
set -euo pipefail

JOURNALD=${JOURNALD:-/lib/systemd/systemd-journald}
if [[ -z ${SM_JOURNAL_NS:-} ]]; then
        [[ $EUID -eq 0 ]] || { echo "SKIP: needs root"; exit 77; }
        [[ -x $JOURNALD ]] || { echo "SKIP: $JOURNALD is not installed"; exit 77; }
        [[ -d /run/systemd && -d /run/log ]] ||
                { echo "SKIP: no /run/systemd or /run/log to hide in a mount namespace"; exit 77; }
        command -v unshare >/dev/null || { echo "SKIP: unshare (util-linux) is missing"; exit 77; }
        exec env SM_JOURNAL_NS=1 unshare --mount --propagation private bash "$0" "$@"
fi

# shellcheck source=tests/netns/lib.sh
source "$(dirname "$(dirname "$(readlink -f "$0")")")/netns/lib.sh"
# shellcheck source=tests/journal/lib.sh
source "$(dirname "$(readlink -f "$0")")/lib.sh"

netns_init 41
need systemd-cat systemd
need journalctl systemd
need python3 python3

# ---- our own journald ---------------------------------------------------------------------------
mkdir -p "$TMP/run-systemd/journal" "$TMP/run-log/journal"
mount --bind "$TMP/run-systemd" /run/systemd
mount --bind "$TMP/run-log" /run/log
JOURNAL_DIR=/run/log/journal
SYSTEMD_LOG_TARGET=console "$JOURNALD" >"$TMP/journald.log" 2>&1 &
JOURNALD_PID=$!
OWN_PIDS+=("$JOURNALD_PID")
check "journald listens on /run/systemd/journal/socket" \
        wait_while_alive 10 "$JOURNALD_PID" test -S /run/systemd/journal/socket
check "journald takes stream connections" test -S /run/systemd/journal/stdout

setup_pair
KEY=$(random_hex_key)
cat >"$TMP/a.yaml" <<EOT
daemon:
  log_level: info
network:
  tap_device: smt0
  local_ip: $TUN4_A/24
  listen_port: $PORT
encryption:
  key: "$KEY"
peer:
  address: "$UNDER_B:$PORT"
nat:
  enabled: false
EOT
sed -e "s|$TUN4_A/24|$TUN4_B/24|" -e "s|\"$UNDER_B:$PORT\"|\"\"|" "$TMP/a.yaml" >"$TMP/b.yaml"
chmod 600 "$TMP/a.yaml" "$TMP/b.yaml"

# start_journal_daemon NAME NS INSTANCE CONFIG: shadowmeshd with its stdout and stderr on a
# journal stream (systemd-cat) and JOURNAL_STREAM=DEV:INODE of that stream. systemd-cat and
# `sh -c exec` exec, so the PID is the daemon's.
start_journal_daemon() {
        local name=$1 ns=$2 instance=$3 config=$4
        env --default-signal=INT ip netns exec "$ns" systemd-cat -t shadowmeshd sh -c '
                JOURNAL_STREAM=$(stat -L -c %d:%i /proc/self/fd/2)
                export JOURNAL_STREAM
                exec "$@"' sh "$SHADOWMESHD" --instance "$instance" "$config" \
                >"$TMP/$name.log" 2>&1 &
        OWN_PIDS+=("$!")
        DAEMON_PID[$name]=$!
        DAEMON_LOG[$name]=$TMP/$name.log
}

journal_has() { journal "${@:2}" | grep -qF -- "$1"; }

start_journal_daemon b "$NS_B" beta "$TMP/b.yaml"
check "beta logs to the journal" \
        wait_while_alive 10 "${DAEMON_PID[b]}" journal_has "listening on udp port" SHADOWMESH_INSTANCE=beta
start_journal_daemon a "$NS_A" alpha "$TMP/a.yaml"
check "handshake: a's line for peer b in the journal" \
        wait_while_alive 20 "${DAEMON_PID[a]}" journal_has "handshake complete" \
        "SHADOWMESH_PEER=$UNDER_B:$PORT"
check "handshake: b's line for peer a in the journal" \
        wait_while_alive 20 "${DAEMON_PID[b]}" journal_has "handshake complete" \
        "SHADOWMESH_PEER=$UNDER_A:$PORT"
check "ping through the tunnel" wait_ping 10 "$NS_A" "$TUN4_B"
check_eq "nothing went to the stream instead (a's stderr)" "$(journal _TRANSPORT=stdout SHADOWMESH_INSTANCE=alpha)" ""

# ---- the fields of one line ---------------------------------------------------------------------
A_PEER=$(journal "SHADOWMESH_PEER=$UNDER_B:$PORT")
check_eq "SHADOWMESH_PEER=$UNDER_B:$PORT: instance" \
        "$(field_of "$A_PEER" "handshake complete" SHADOWMESH_INSTANCE)" alpha
check_eq "... endpoint" "$(field_of "$A_PEER" "handshake complete" SHADOWMESH_ENDPOINT)" \
        "$UNDER_B:$PORT"
check_eq "... priority (info)" "$(field_of "$A_PEER" "handshake complete" PRIORITY)" 6
check_eq "... identifier" "$(field_of "$A_PEER" "handshake complete" SYSLOG_IDENTIFIER)" shadowmeshd
check_eq "... sent over the native protocol" \
        "$(field_of "$A_PEER" "handshake complete" _TRANSPORT)" journal
check_eq "... the message as on a terminal" \
        "$(field_of "$A_PEER" "handshake complete" MESSAGE)" \
        "handshake complete with peer $UNDER_B:$PORT (initiator)"
check_eq "the path line is the peer's too" \
        "$(field_of "$A_PEER" "path to peer: direct" SHADOWMESH_ENDPOINT)" "$UNDER_B:$PORT"
check_eq "no misleading CODE_FILE (the logger's own)" \
        "$(field_of "$A_PEER" "handshake complete" CODE_FILE)" "<absent>"
check_eq "b's line names alpha's endpoint, under instance beta" \
        "$(field_of "$(journal "SHADOWMESH_PEER=$UNDER_A:$PORT")" "handshake complete" SHADOWMESH_INSTANCE)" \
        beta
ALPHA=$(journal SHADOWMESH_INSTANCE=alpha)
check_eq "a line about no peer carries no SHADOWMESH_PEER" \
        "$(field_of "$ALPHA" "starting instance" SHADOWMESH_PEER)" "<absent>"
check_eq "... and still its instance" "$(field_of "$ALPHA" "starting instance" SHADOWMESH_INSTANCE)" \
        alpha

# ---- JOURNAL_STREAM that is not stderr: plain text on stderr --------------------------------------
stop_daemon a TERM 10 || true
JOURNAL_STREAM=1:2 ip netns exec "$NS_A" "$SHADOWMESHD" --instance gamma "$TMP/b.yaml" \
        >"$TMP/gamma.log" 2>&1 &
GAMMA=$!
OWN_PIDS+=("$GAMMA")
check "a stale JOURNAL_STREAM: text lines on stderr" \
        wait_while_alive 10 "$GAMMA" grep -q "^shadowmeshd: starting instance 'gamma'" "$TMP/gamma.log"
check_eq "... and nothing in the journal" "$(journal SHADOWMESH_INSTANCE=gamma)" ""
stop_pid "$GAMMA"

summary
