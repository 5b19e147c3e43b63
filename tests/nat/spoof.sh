#!/bin/bash
# SPDX-License-Identifier: MIT
#
# Forged relay messages (issue 9, items 2 and "Also"). The source address of a datagram proves
# nothing; a node must believe only what carries the MAC under its REGISTER's nonce.
#   s1  both sites behind symmetric NATs, the tunnel on the relay. A spoofer in the internet
#       namespace sends a's NAT mapping, with the relay's address and port as source (raw
#       socket): PEER messages naming a new relay slot and candidates at an address it listens
#       on and at loopback, a CHALLENGE and a REGISTERED. a must log that it ignored them, keep
#       its path (pings keep passing: the data endpoint did not move to the forged slot), and
#       send nothing to the spoofer's address (no initiation, no probe) for longer than a probe
#       interval.
#   s2  a on the internet itself: RELAY_DATA from an address that is not the relay's is
#       dropped ("relay data not from the relay"), and the tunnel is unaffected.
set -euo pipefail
source "$(dirname "$(readlink -f "$0")")/lib.sh"

nat_init relay
need python3 python3

KEY=$(random_hex_key)
EVIL_IP=198.18.0.66 EVIL_PORT=7777

# spoof SRC_IP SRC_PORT DST_IP DST_PORT KIND COUNT [GAP]: COUNT datagrams of KIND from SRC to
# DST, GAP seconds apart (default 0), sent from the internet namespace with a raw socket (so SRC
# may be any address, the relay's included). KIND: peer (a PEER naming slot 0x41414141 and candidates EVIL_IP:EVIL_PORT and
# 127.0.0.1:9001, with a random MAC), challenge, registered (random MACs), relaydata (a
# RELAY_DATA wrapping a 32-byte data message).
spoof() {
        in_ns "$NS_INET" python3 -c "$SPOOF_PY" "$1" "$2" "$3" "$4" "$5" "$6" "${7:-0}" \
                "$EVIL_IP" "$EVIL_PORT"
}
SPOOF_PY=$(cat <<'EOF'
import os, socket, struct, sys, time
src, sport, dst, dport, kind, count, gap, evil, eport = sys.argv[1:10]
gap = float(gap)
sport, dport, count, eport = int(sport), int(dport), int(count), int(eport)

def cand4(ip, port):
    return struct.pack("!BBH", 4, 0, port) + socket.inet_aton(ip) + bytes(12)

if kind == "peer":
    cands = cand4(evil, eport) + cand4("127.0.0.1", 9001)
    msg = (bytes([8, 0, 0, 0]) + struct.pack("<I", 0x41414141) + bytes(32) +
           cand4(evil, eport) + bytes([2, 0, 0, 0]) + cands + bytes(20 * 6) + os.urandom(16))
    assert len(msg) == 240
elif kind == "challenge":
    msg = bytes([6, 0, 0, 0]) + os.urandom(32 + 16 + 16)
    assert len(msg) == 68
elif kind == "registered":
    msg = (bytes([7, 0, 0, 0]) + struct.pack("<I", 0x41414141) + cand4(evil, eport) +
           struct.pack("<H", 60) + bytes(2) + os.urandom(16))
    assert len(msg) == 48
elif kind == "relaydata":
    msg = bytes([9, 0, 0, 0]) + struct.pack("<I", 0x41414141) + bytes([4, 0, 0, 0]) + os.urandom(28)
else:
    sys.exit("unknown kind " + kind)

udp_len = 8 + len(msg)
udp = struct.pack("!HHHH", sport, dport, udp_len, 0) + msg  # IPv4: checksum 0 = none
ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + udp_len, 0, 0x4000, 64, socket.IPPROTO_UDP, 0,
                 socket.inet_aton(src), socket.inet_aton(dst))
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
for i in range(count):
    if i and gap:
        time.sleep(gap)
    s.sendto(ip + udp, (dst, 0))
EOF
)

# listen_evil OUT: count the datagrams that reach EVIL_IP:EVIL_PORT (one line each in OUT).
listen_evil() {
        spawn "$NS_INET" "$1" python3 -u -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], int(sys.argv[2])))
print("listening", flush=True)
while True:
    data, addr = s.recvfrom(65535)
    print("got", len(data), "from", addr, flush=True)
' "$EVIL_IP" "$EVIL_PORT"
        wait_until 5 grep -q listening "$1"
}
evil_got() { grep -q '^got' "$1"; }

# a's public mapping toward the relay, as the relay told b ("relay introduced peer: candidates
# A:P, ..." lists the address the relay saw first).
mapping_of_a() {
        current_log b | sed -n 's/.*relay introduced peer: candidates \([0-9.]*:[0-9]*\).*/\1/p' |
                tail -n 1
}

# ---- s1: forged PEER, CHALLENGE, REGISTERED with the relay's source address -------------------
topology_new s1 symmetric symmetric
ip -n "$NS_INET" addr add "$EVIL_IP/32" dev lo
start_servers
start_pair "$KEY"
time_to_ping s1 40
check_introduced
check_path a relay 10
map=$(mapping_of_a)
note "s1: a's mapping toward the relay: $map"
check "s1: a's NAT mapping is known from b's log ($map)" test -n "$map"
check "s1: the spoofer listens on $EVIL_IP:$EVIL_PORT" listen_evil "$TMP/s1-evil.out"
hs_a=$(current_log a | grep -c "handshake complete" || true)

# PEER first, alone: a CHALLENGE makes a register again, and the real relay's answer would
# restore the real candidates and hide what a forged PEER did. A forged PEER every 0.25 s for
# 10 s, so that no real one (on every registration) undoes its effect while we look.
spawn "$NS_INET" "$TMP/s1-spoofer.out" python3 -c "$SPOOF_PY" "$RELAY_IP" "$RELAY_PORT" \
        "${map%:*}" "${map##*:}" peer 40 0.25 "$EVIL_IP" "$EVIL_PORT"
spoofer=$SPAWNED_PID
check "s1: a says it ignored unauthenticated control messages from the relay's address" \
        wait_log a "ignoring an unauthenticated control message from $RELAY_IP:$RELAY_PORT" 5
check "s1: a never took the forged candidates ($EVIL_IP)" \
        bash -c '! grep -q "relay introduced peer: candidates.*$1" "$2"' _ "$EVIL_IP" "${DAEMON_LOG[a]}"
# A forged PEER would have moved the endpoint to slot 0x41414141: the pings would be lost.
check "s1: ping a->b, 10 of 10 answered after the forged PEERs" ping_all "$NS_A" "$TUN_B" 10
check_path a relay 5
# Probes go to the candidates every 5 s while on the relay: 7 s would show one.
if wait_until 7 evil_got "$TMP/s1-evil.out"; then
        fail "s1: nothing reached the spoofer's address $EVIL_IP:$EVIL_PORT" \
                "$(head -n 5 "$TMP/s1-evil.out")"
else
        pass "s1: nothing reached the spoofer's address $EVIL_IP:$EVIL_PORT in 7 s"
fi
check "s1: the PEER spoofer finished" wait_until 10 has_exited "$spoofer"
# Then CHALLENGE and REGISTERED (slot 0x41414141 = 1094795585, "seen as" the spoofer).
spoof "$RELAY_IP" "$RELAY_PORT" "${map%:*}" "${map##*:}" challenge 5
spoof "$RELAY_IP" "$RELAY_PORT" "${map%:*}" "${map##*:}" registered 5
check "s1: ping a->b, 5 of 5 answered" ping_all "$NS_A" "$TUN_B" 5
check "s1: ping b->a, 5 of 5 answered" ping_all "$NS_B" "$TUN_A" 5
# (After the pings: a has long read the forgeries.)
check "s1: a never took the forged REGISTERED (slot 1094795585)" \
        bash -c '! grep -q "slot 1094795585" "$1"' _ "${DAEMON_LOG[a]}"
check_eq "s1: no new handshake on a" "$(current_log a | grep -c "handshake complete" || true)" "$hs_a"
# 50 forgeries in about 15 s; the log allows 5 lines per 10 s.
n_lines=$(current_log a | grep -c "ignoring .* from $RELAY_IP:$RELAY_PORT" || true)
check "s1: the log lines are rate-limited ($n_lines lines for 50 forgeries)" test "$n_lines" -le 15
check "a still running" alive a
topology_del

# ---- s2: RELAY_DATA from an address that is not the relay ------------------------------------
topology_new s2 none none
ip -n "$NS_INET" addr add "$EVIL_IP/32" dev lo
start_servers
start_pair "$KEY"
time_to_ping s2 40
check_introduced
spoof "$EVIL_IP" "$EVIL_PORT" "$WAN_A" "$PORT" relaydata 3
check "s2: a drops RELAY_DATA from $EVIL_IP:$EVIL_PORT (not its relay)" \
        wait_log a "relay data not from the relay" 15
check "s2: ping a->b, 5 of 5 answered" ping_all "$NS_A" "$TUN_B" 5
check "a still running" alive a
topology_del

summary
