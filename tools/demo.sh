#!/usr/bin/env bash
# The main job, on one machine: two ShadowMesh nodes in network namespaces joined by a veth
# "internet", configured with the Go prototype's config format. Shows both daemons up, the
# handshake, ping both ways through the tunnel, what the wire carries, and a clean shutdown.
# Run as root on Debian 12: installs what is missing, builds into build/, then runs.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
"$top/tools/setup-debian.sh" >/dev/null
if [ ! -f "$top/build/build.ninja" ]; then
        meson setup "$top/build" "$top" >/dev/null
fi
ninja -C "$top/build" >/dev/null
daemon=$top/build/src/shadowmeshd

id=$$
nsa=smdemo$id-a nsb=smdemo$id-b
tmp=$(mktemp -d "${TMPDIR:-/tmp}/smdemo.$id.XXXXXX")
pids=()
cleanup() {
        for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
        for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
        ip netns del "$nsa" 2>/dev/null || true
        ip netns del "$nsb" 2>/dev/null || true
        rm -rf "$tmp"
}
trap cleanup EXIT

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
# wait_for SECONDS COMMAND...: poll a real condition, bounded.
wait_for() {
        local deadline=$((SECONDS + $1)); shift
        until "$@" >/dev/null 2>&1; do
                [ $SECONDS -lt $deadline ] || return 1
                sleep 0.1
        done
}

say "Two hosts: $nsa (198.51.100.1) and $nsb (198.51.100.2) joined by a veth link"
ip netns add "$nsa"
ip netns add "$nsb"
ip link add veth-a netns "$nsa" type veth peer name veth-b netns "$nsb"
ip -n "$nsa" addr add 198.51.100.1/24 dev veth-a
ip -n "$nsb" addr add 198.51.100.2/24 dev veth-b
for ns in "$nsa" "$nsb"; do
        ip -n "$ns" link set lo up
done
ip -n "$nsa" link set veth-a up
ip -n "$nsb" link set veth-b up

key=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')
write_config() { # file local_ip peer
        cat >"$1" <<YAML
# The Go prototype's /etc/shadowmesh/daemon.yaml, unchanged: listen_address is its local
# HTTP control API; the tunnel uses UDP port 9001 (network.listen_port's default).
daemon:
  listen_address: "127.0.0.1:9090"
  log_level: "info"
network:
  tap_device: "tap0"
  local_ip: "$2"
encryption:
  key: "$key"
peer:
  address: "$3"
nat:
  enabled: false
YAML
        chmod 600 "$1"
}
write_config "$tmp/a.yaml" 10.0.0.1/24 "198.51.100.2:9001"
write_config "$tmp/b.yaml" 10.0.0.2/24 ""
echo "shared key: ${key:0:8}... (same 64 hex digits in both configs)"

say "Start both daemons (b waits, a connects to 198.51.100.2:9001)"
ip netns exec "$nsb" "$daemon" "$tmp/b.yaml" 2>"$tmp/b.log" &
pids+=($!)
wait_for 10 grep -q "waiting for the peer" "$tmp/b.log" || { cat "$tmp/b.log"; exit 1; }
ip netns exec "$nsa" "$daemon" "$tmp/a.yaml" 2>"$tmp/a.log" &
pids+=($!)
wait_for 10 grep -q "handshake complete" "$tmp/a.log" || { cat "$tmp/a.log" "$tmp/b.log"; exit 1; }
wait_for 10 grep -q "handshake complete" "$tmp/b.log" || { cat "$tmp/a.log" "$tmp/b.log"; exit 1; }
sed 's/^/  a| /' "$tmp/a.log"
sed 's/^/  b| /' "$tmp/b.log"

say "Status: tap0 on both sides"
ip -n "$nsa" -br addr show dev tap0 | sed 's/^/  a| /'
ip -n "$nsb" -br addr show dev tap0 | sed 's/^/  b| /'

say "Capture the underlay while pinging with a marker payload (5348414430574d45 = 'SHAD0WME')"
ip netns exec "$nsa" tcpdump --immediate-mode -i veth-a -U -w "$tmp/wire.pcap" udp port 9001 2>"$tmp/tcpdump.log" &
tcpdump_pid=$!
pids+=($tcpdump_pid)
wait_for 10 grep -q "listening on" "$tmp/tcpdump.log"

say "ping 10.0.0.2 from a, through the tunnel"
ip netns exec "$nsa" ping -c 3 -i 0.2 -W 2 -s 256 -p 5348414430574d45 10.0.0.2 | sed 's/^/  a| /'
say "ping 10.0.0.1 from b, through the tunnel"
ip netns exec "$nsb" ping -c 3 -i 0.2 -W 2 -s 256 -p 5348414430574d45 10.0.0.1 | sed 's/^/  b| /'
kill -INT "$tcpdump_pid"
wait "$tcpdump_pid" 2>/dev/null || true

say "What the wire carried (one data message, hex): no marker, only ciphertext"
tcpdump -nn -r "$tmp/wire.pcap" -c 1 -x 'udp and greater 200' 2>/dev/null | head -8 | sed 's/^/  /'
packets=$(tcpdump -nn -r "$tmp/wire.pcap" 2>/dev/null | wc -l)
if od -An -tx1 -v "$tmp/wire.pcap" | tr -d ' \n' | grep -q 5348414430574d45; then
        echo "  MARKER FOUND ON THE WIRE: plaintext leaked" >&2
        exit 1
fi
echo "  $packets UDP packets captured; the marker 5348414430574d45 appears in none of them"

say "Clean shutdown (SIGINT, as Ctrl+C)"
for p in "${pids[@]:0:2}"; do kill -INT "$p"; done
rc=0
for p in "${pids[@]:0:2}"; do wait "$p" || rc=$?; done
pids=()
tail -n 3 "$tmp/a.log" | sed 's/^/  a| /'
tail -n 3 "$tmp/b.log" | sed 's/^/  b| /'
if ip -n "$nsa" link show tap0 >/dev/null 2>&1 || ip -n "$nsb" link show tap0 >/dev/null 2>&1; then
        echo "tap0 still present after shutdown" >&2
        exit 1
fi
echo "  both daemons exited with status $rc; tap0 is gone on both sides"
[ "$rc" -eq 0 ]
say "Demo complete"
