#!/bin/bash
# SPDX-License-Identifier: MIT
#
# NetworkManager says why: the reason nm-shadowmesh-service reports with its Failure signal, as
# nmcli shows it, and the service's own lines in the journal under NM_CONNECTION=<uuid>, the
# field of the hint nmcli prints ("journalctl -xe NM_CONNECTION=..."). The sandbox is lib.sh's
# (a real NetworkManager in a namespace, a private system bus) plus a real systemd-journald whose
# sockets NetworkManager's private mount namespace sees at /run/systemd/journal, where the
# service, started with NM_VPN_LOG_SYSLOG=1 as NetworkManager starts it on a real system, logs.
#
#   wrong key      Failure(LOGIN_FAILED), from the daemon's HandshakeTimeout error: nmcli says
#                  the login failed, not "Unknown reason"; the journal says "no answer from the
#                  peer: wrong address, blocked UDP port or a different key" under the
#                  connection's UUID
#   bad key        (63 hex digits) Failure(LOGIN_FAILED) before any daemon: nmcli says "Invalid
#                  secrets"; the journal says "vpn.secrets 'key': expected 64 hex digits, got 63"
#   busy port      UDP 9001 held by another program: Connect refused, "The VPN service failed
#                  to start" (no better reason exists for it); the journal names the port
#   taken name    tap-device the name of an existing (veth) device: the same, naming it
#   no such name  a peer whose name does not resolve (against a resolver on NetworkManager's
#                 loopback): Failure(CONNECT_FAILED), from the daemon's InvalidPeer error,
#                 "Unknown reason", the most NetworkManager can say once the daemon runs; the
#                 journal names the peer and says what to check
#   good key       the service's and its daemon's lines carry NM_CONNECTION and the instance
# shellcheck disable=SC2016 # sh -c scripts take their arguments as $1, $2
HERE=$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")
# shellcheck source=tests/nm/lib.sh
source "$HERE/lib.sh"
# shellcheck source=tests/journal/lib.sh
source "$HERE/../journal/lib.sh"

JOURNALD=${JOURNALD:-/lib/systemd/systemd-journald}
nm_init
[[ -x $JOURNALD ]] || skip "$JOURNALD is not installed"
need journalctl systemd
need python3 python3

# A real journald of the test's own, in the host's network namespace and a private mount
# namespace whose /run/systemd and /run/log are directories of the test; NetworkManager's mount
# namespace (below) sees the same /run/systemd/journal, so the sockets are the same.
JOURNALD_PID=""
start_journald() {
        mkdir -p "$TMP/jrun/journal" "$TMP/jlog/journal"
        unshare --mount --propagation private sh -c '
                mount --bind "$1/jrun" /run/systemd && mount --bind "$1/jlog" /run/log &&
                        SYSTEMD_LOG_TARGET=console exec "$2"' sh "$TMP" "$JOURNALD" \
                >"$TMP/journald.log" 2>&1 &
        JOURNALD_PID=$!
        OWN_PIDS+=("$JOURNALD_PID")
        wait_while_alive 10 "$JOURNALD_PID" test -S "$TMP/jrun/journal/socket"
}

# lib.sh's start_sandbox, with that journal in NetworkManager's mount namespace and the service
# logging the way NetworkManager runs it on a real system.
start_sandbox_with_journal() {
        sandbox_network
        sed -i 's/^NM_VPN_LOG_SYSLOG=0 /NM_VPN_LOG_SYSLOG=1 /' "$TMP/nm-shadowmesh-service"
        grep -q '^NM_VPN_LOG_SYSLOG=1 ' "$TMP/nm-shadowmesh-service" || return 1
        # After the private /run: the journal's directory of sockets.
        sed -i "/^mount -t tmpfs .* \\/run\$/a\\
mkdir -p /run/systemd/journal \\&\\& mount --bind \"$TMP/jrun/journal\" /run/systemd/journal" \
                "$TMP/nm-inner.sh"
        grep -q "jrun/journal" "$TMP/nm-inner.sh" || return 1
        # Names resolve against a server on NetworkManager's own loopback, where none listens:
        # a name that is not in /etc/hosts fails at once, and no query leaves the sandbox.
        printf 'nameserver 127.0.0.1\noptions attempts:1 timeout:1\n' >"$TMP/resolv.conf"
        sed -i "/^mount -t tmpfs .* \\/run\$/a\\
mount --bind \"$TMP/resolv.conf\" /etc/resolv.conf" "$TMP/nm-inner.sh"
        grep -q "resolv.conf" "$TMP/nm-inner.sh" || return 1
        sandbox_start_nm || return 1
        in_nm_mounts test -S /run/systemd/journal/socket
}

JOURNAL_DIR=$TMP/jlog/journal

# journal_has UUID TEXT: a line of the connection's in the journal says TEXT.
# shellcheck disable=SC2317 # run by wait_until
journal_has() { contains "$(messages "$(journal "NM_CONNECTION=$1")")" "$2"; }

start_journald || { fail "journald starts"; summary; }
start_sandbox_with_journal || { fail "NetworkManager starts in the sandbox with the journal"; summary; }
pass "NetworkManager and a journald run in the sandbox"

KEY=$(random_hex_key)
OTHER_KEY=$(random_hex_key)
cat >"$TMP/peer.yaml" <<EOF
network:
  tap_device: smp0
  listen_port: 9001
  local_ip: "10.77.0.1/24"
encryption:
  key: "$KEY"
EOF
chmod 600 "$TMP/peer.yaml"
check "peer shadowmeshd starts in the second namespace" start_peer peer "$TMP/peer.yaml"

nm connection add type ethernet ifname up0 con-name uplink ipv4.method manual \
        ipv4.addresses 192.0.2.2/24 ipv4.gateway 192.0.2.1 ipv6.method disabled
nm connection up uplink
check "uplink profile activates" [ $RC -eq 0 ]

# ---- wrong key: LOGIN_FAILED, and the journal says what that can mean ---------------------------
nm connection add type vpn con-name sm-wrong vpn-type shadowmesh vpn.timeout 8 \
        vpn.data "peer=$PEER_IP, local-ip=10.77.0.2/24, tap-device=smwrong0" \
        vpn.secrets "key=$OTHER_KEY"
UUID_WR=$(con_uuid sm-wrong)
nm connection up sm-wrong
note "wrong key: nmcli: $(tr '\n' ' ' <<<"$OUT")"
check "wrong key: the activation failed" [ $RC -ne 0 ]
# NetworkManager's words for NM_ACTIVE_CONNECTION_STATE_REASON_LOGIN_FAILED.
check_has "wrong key: nmcli gives the login failure's reason" "$OUT" \
        "Connection activation failed: Invalid secrets"
check_not "wrong key: not 'Unknown reason'" has "Unknown reason"
check_has "wrong key: nmcli's hint names the connection's UUID" "$OUT" "NM_CONNECTION=$UUID_WR"
WRONG=$(journal "NM_CONNECTION=$UUID_WR")
check_has "wrong key: the journal under NM_CONNECTION=$UUID_WR says why" "$(messages "$WRONG")" \
        "connection failed (login-failed): "
check_has "... no answer: wrong address, blocked port or a different key" "$(messages "$WRONG")" \
        "no answer from the peer: wrong address, blocked UDP port or a different key"
# The reason follows from the daemon's D-Bus error name, which the service's line names.
check_has "... told by the daemon's error name, HandshakeTimeout" "$(messages "$WRONG")" \
        "(org.shadowmesh1.Error.HandshakeTimeout)"
check_eq "... under the service's identifier" \
        "$(field_of "$WRONG" "connection failed" SYSLOG_IDENTIFIER)" nm-shadowmesh
check_eq "... as an error" "$(field_of "$WRONG" "connection failed" PRIORITY)" 3
check "wrong key: no daemon left" wait_until 10 no_daemon

# ---- a key of 63 hex digits: a failed login, and the journal says how many digits -------------
nm connection add type vpn con-name sm-badkey vpn-type shadowmesh \
        vpn.data "peer=$PEER_IP, local-ip=10.77.0.2/24, tap-device=smbad0" \
        vpn.secrets "key=${KEY:0:63}"
UUID_BAD=$(con_uuid sm-badkey)
nm connection up sm-badkey
note "bad key: nmcli: $(tr '\n' ' ' <<<"$OUT")"
check "bad key: the activation failed" [ $RC -ne 0 ]
check_has "bad key: nmcli says the secrets are invalid" "$OUT" \
        "Connection activation failed: Invalid secrets"
check_not "bad key: not 'The VPN service failed to start'" has "failed to start"
check "bad key: its failure reaches the journal" wait_until 10 journal_has "$UUID_BAD" \
        "connection failed"
BADKEY=$(journal "NM_CONNECTION=$UUID_BAD")
check_has "bad key: the journal under NM_CONNECTION=$UUID_BAD names the key and the count" \
        "$(messages "$BADKEY")" \
        "connection failed (login-failed): vpn.secrets 'key': expected 64 hex digits, got 63"
check_eq "... as an error" "$(field_of "$BADKEY" "connection failed" PRIORITY)" 3
check "bad key: no daemon was started" no_daemon
# The next activation starts a new service: the old one must have left the bus name.
check "bad key: the service has exited" wait_until 15 no_service

# ---- the UDP port taken by another program in NetworkManager's namespace: refused before the ---
# daemon runs, "The VPN service failed to start" (the most NetworkManager can say, see
# failure_reason's comment in nm-shadowmesh-service.c), and the journal names the port.
ip netns exec "$NS" python3 -c '
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 9001))
open(sys.argv[1], "w").close()
time.sleep(240)' "$TMP/holder.ready" &
HOLDER_PID=$!
OWN_PIDS+=("$HOLDER_PID")
check "busy port: another program holds UDP port 9001" \
        wait_while_alive 10 "$HOLDER_PID" test -e "$TMP/holder.ready"
nm connection add type vpn con-name sm-busy vpn-type shadowmesh \
        vpn.data "peer=$PEER_IP, local-ip=10.77.0.2/24, tap-device=smbusy0" \
        vpn.secrets "key=$KEY"
UUID_BUSY=$(con_uuid sm-busy)
nm connection up sm-busy
note "busy port: nmcli: $(tr '\n' ' ' <<<"$OUT")"
check "busy port: the activation failed" [ $RC -ne 0 ]
check_has "busy port: nmcli says the service failed to start" "$OUT" \
        "Connection activation failed: The VPN service failed to start"
check_not "busy port: not 'Unknown reason'" has "Unknown reason"
check_has "busy port: nmcli's hint names the connection's UUID" "$OUT" "NM_CONNECTION=$UUID_BUSY"
check "busy port: the refusal reaches the journal" wait_until 10 journal_has "$UUID_BUSY" \
        "Connect refused"
BUSY=$(journal "NM_CONNECTION=$UUID_BUSY")
check_has "busy port: the journal under NM_CONNECTION=$UUID_BUSY names the port" \
        "$(messages "$BUSY")" "Connect refused: UDP port 9001 is already in use"
check_eq "... as an error" "$(field_of "$BUSY" "Connect refused" PRIORITY)" 3
check "busy port: no daemon was started" no_daemon
check "busy port: the service has exited" wait_until 15 no_service
kill "$HOLDER_PID" 2>/dev/null
wait "$HOLDER_PID" 2>/dev/null

# ---- the TAP name taken by another device: refused before the daemon runs, the journal names it
ip -n "$NS" link add smtaken0 type veth peer name smtaken0p
check "taken name: a veth device smtaken0 exists" link_exists smtaken0
nm connection add type vpn con-name sm-taken vpn-type shadowmesh \
        vpn.data "peer=$PEER_IP, local-ip=10.77.0.2/24, tap-device=smtaken0" \
        vpn.secrets "key=$KEY"
UUID_TAKEN=$(con_uuid sm-taken)
nm connection up sm-taken
note "taken name: nmcli: $(tr '\n' ' ' <<<"$OUT")"
check "taken name: the activation failed" [ $RC -ne 0 ]
check_has "taken name: nmcli says the service failed to start" "$OUT" \
        "Connection activation failed: The VPN service failed to start"
check_not "taken name: not 'Unknown reason'" has "Unknown reason"
check "taken name: the refusal reaches the journal" wait_until 10 journal_has "$UUID_TAKEN" \
        "Connect refused"
check_has "taken name: the journal under NM_CONNECTION=$UUID_TAKEN names the device" \
        "$(messages "$(journal "NM_CONNECTION=$UUID_TAKEN")")" \
        "Connect refused: Network interface 'smtaken0' already exists"
check "taken name: no daemon was started" no_daemon
check "taken name: the service has exited" wait_until 15 no_service
ip -n "$NS" link del smtaken0

# ---- a peer whose name does not resolve: only the daemon finds out, once Connect has been
# accepted, so CONNECT_FAILED, "Unknown reason" (see failure_reason's comment); the journal says
# which name and what to check.
nm connection add type vpn con-name sm-noname vpn-type shadowmesh \
        vpn.data "peer=nosuch.invalid, local-ip=10.77.0.2/24, tap-device=smnoname0" \
        vpn.secrets "key=$KEY"
UUID_NONAME=$(con_uuid sm-noname)
nm connection up sm-noname
note "no such name: nmcli: $(tr '\n' ' ' <<<"$OUT")"
check "no such name: the activation failed" [ $RC -ne 0 ]
# NetworkManager's words for REASON_UNKNOWN, what CONNECT_FAILED becomes once Connect succeeded.
check_has "no such name: nmcli gives the connect failure's reason" "$OUT" \
        "Connection activation failed: Unknown reason"
check_not "no such name: not 'Invalid secrets'" has "Invalid secrets"
check_has "no such name: nmcli's hint names the connection's UUID" "$OUT" \
        "NM_CONNECTION=$UUID_NONAME"
check "no such name: the failure reaches the journal" wait_until 10 journal_has \
        "$UUID_NONAME" "connection failed"
NONAME=$(messages "$(journal "NM_CONNECTION=$UUID_NONAME")")
check_has "no such name: the journal names the peer's name" "$NONAME" \
        "Cannot resolve 'nosuch.invalid:9001'"
check_has "... as a connect failure" "$NONAME" "connection failed (connect-failed): "
check_has "... told by the daemon's error name, InvalidPeer" "$NONAME" \
        "(org.shadowmesh1.Error.InvalidPeer)"
check_has "... and says what to check" "$NONAME" \
        "the peer's host name does not resolve or its address is refused: check vpn.data 'peer' and the DNS servers"
check "no such name: the daemon has gone" wait_until 10 no_daemon
check "no such name: the service has exited" wait_until 15 no_service

# ---- the right key: every line of the connection, the daemon's too, under its UUID --------------
nm connection add type vpn con-name sm-good vpn-type shadowmesh \
        vpn.data "peer=$PEER_IP, local-ip=10.77.0.2/24, tap-device=smgood0" \
        vpn.secrets "key=$KEY"
UUID_GOOD=$(con_uuid sm-good)
nm connection up sm-good
check "good key: nmcli connection up" [ $RC -eq 0 ]
GOOD=$(journal "NM_CONNECTION=$UUID_GOOD")
check_has "good key: the service's Connect line" "$(messages "$GOOD")" "Connect: connection 'sm-good'"
check_has "good key: the daemon's handshake, relayed, under the same UUID" "$(messages "$GOOD")" \
        "handshake complete with peer $PEER_IP:9001"
check_eq "good key: with the instance" \
        "$(field_of "$GOOD" "handshake complete" SHADOWMESH_INSTANCE)" "nm-${UUID_GOOD:0:8}"
check_eq "the wrong-key connection's lines are not among them" \
        "$(field_of "$GOOD" "connection failed" MESSAGE)" "<no such entry>"
nm connection down sm-good
check "good key: down" wait_until 10 no_daemon

summary
