#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# The README's first command: ShadowMesh as the system service it is, on one machine.
#
# Two nodes, each `shadowmeshd --instance a|b` in a network namespace of its own, joined by a veth
# "internet", both on a private system-like dbus-daemon that loads the project's own policy
# (dbus/org.shadowmesh1.conf; DBUS_SYSTEM_BUS_ADDRESS points the daemons, shadowmeshctl and busctl
# at it). Each node runs the Go prototype's daemon.yaml unchanged in form: its HTTP API on
# 127.0.0.1:9090 (each namespace has its own loopback), tap0, the shared key, peer.address "" (both
# wait), NAT discovery through a STUN server name that does not resolve offline. Then, in order:
#
#   1. shadowmeshctl list            4. one busctl call           7. the ciphertext-only capture
#   2. shadowmeshctl connect         5. the prototype's curl API  8. shadowmeshctl disconnect
#   3. shadowmeshctl status (both)   6. pings both ways           9. a clean shutdown
#
# and ends with the prototype's video-stream check on a fresh pair of nodes: a 15 MB file served
# over HTTP by node b on its tunnel address, downloaded by node a through the tunnel, Mbit/s
# printed, checksums compared.
#
# Run as root on Debian 12. It installs what is missing (tools/setup-debian.sh), builds the two
# programs with meson into build/ and runs. With SHADOWMESHD and SHADOWMESHCTL set (the meson test
# `demo` does this) it uses those programs and neither installs nor builds. Any failed step ends
# the demo with a message and a non-zero exit status; nothing it made is left behind.
set -euo pipefail

top=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)
# shellcheck source=tests/common.sh
source "$top/tests/common.sh"

if [[ $EUID -ne 0 ]]; then
        echo "demo.sh: run as root (it makes network namespaces, TAP devices and a bus)" >&2
        exit 1
fi

# ---- output -------------------------------------------------------------------------------------

if [[ -t 1 ]]; then
        bold=$'\033[1m' plain=$'\033[0m'
else
        bold="" plain=""
fi
heading() { printf '\n%s== %s%s\n' "$bold" "$*" "$plain"; }
indent() { sed 's/^/    /'; }

# words ARGS...: the arguments as they would be typed ("..." or '...' around those that need it).
words() {
        local a out=()
        for a in "$@"; do
                if [[ $a =~ ^[A-Za-z0-9_./:=@%+,-]+$ ]]; then
                        out+=("$a")
                elif [[ $a != *[\"\$\`\\]* ]]; then
                        out+=("\"$a\"")
                else
                        out+=("'$a'")
                fi
        done
        echo "${out[*]}"
}

# shown NODE COMMAND...: print "NODE$ COMMAND", run it, its output indented; its status.
shown() {
        local node=$1 rc=0
        shift
        printf '  %s$ %s\n' "$node" "$(words "$@")"
        "$@" >"$tmp/shown.out" 2>&1 || rc=$?
        indent <"$tmp/shown.out"
        return "$rc"
}

# die MESSAGE: the demo failed. The daemons' logs, then exit 1 (the EXIT trap cleans up).
die() {
        printf '\n%sdemo.sh: FAILED: %s%s\n' "$bold" "$*" "$plain" >&2
        local f
        for f in "$tmp"/*.log; do
                [[ -s $f ]] || continue
                echo "----- ${f##*/} (last 30 lines) -----" >&2
                tail -n 30 "$f" >&2
        done
        exit 1
}

# log_lines NODE FROM: the node's log from line FROM on, prefixed "NODE| ".
log_lines() { tail -n "+$2" "$tmp/$1.log" | sed "s/^/  $1| /"; }
log_length() { wc -l <"$tmp/$1.log"; }

# ---- install and build --------------------------------------------------------------------------

if [[ -n ${SHADOWMESHD:-} || -n ${SHADOWMESHCTL:-} ]]; then
        require_program SHADOWMESHD
        require_program SHADOWMESHCTL
else
        "$top/tools/setup-debian.sh" >/dev/null
        buildlog=$(mktemp "${TMPDIR:-/tmp}/smdemo-build.$$.XXXXXX")
        if ! { [[ -f $top/build/build.ninja ]] || meson setup "$top/build" "$top"; } \
                >"$buildlog" 2>&1 ||
                ! ninja -C "$top/build" src/shadowmeshd src/ctl/shadowmeshctl >>"$buildlog" 2>&1; then
                cat "$buildlog" >&2
                rm -f "$buildlog"
                echo "demo.sh: building into $top/build failed" >&2
                exit 1
        fi
        rm -f "$buildlog"
        SHADOWMESHD=$top/build/src/shadowmeshd
        SHADOWMESHCTL=$top/build/src/ctl/shadowmeshctl
fi
# shadowmeshctl by its name in what the demo shows.
PATH=$(dirname "$SHADOWMESHCTL"):$PATH
for tool in ip ping tcpdump busctl dbus-daemon curl python3 sha256sum; do
        command -v "$tool" >/dev/null ||
                { echo "demo.sh: $tool is missing (tools/setup-debian.sh installs it)" >&2; exit 1; }
done

# ---- the two nodes ------------------------------------------------------------------------------

id=$$
nsa=smdemo$id-a
nsb=smdemo$id-b
wire_a=198.51.100.1 wire_b=198.51.100.2
tun_a=10.0.0.1 tun_b=10.0.0.2
port=9001                       # network.listen_port's default: the prototype's port
api=http://127.0.0.1:9090       # daemon.listen_address: the prototype's HTTP API
marker=5348414430574d45         # "SHAD0WME", the pings' payload pattern
key=$(random_hex_key)
tmp=""
daemon_pid_a="" daemon_pid_b=""

cleanup() {
        local rc=$?
        set +e
        trap - EXIT
        stop_own_pids
        stop_pid "$BUS_PID"
        del_namespaces
        [[ -z $tmp ]] || rm -rf "$tmp"
        exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# write_config FILE LOCAL_IP: the prototype's /etc/shadowmesh/daemon.yaml, unchanged in form.
write_config() {
        cat >"$1" <<YAML
daemon:
  listen_address: "127.0.0.1:9090"
  log_level: "info"
network:
  tap_device: "tap0"
  local_ip: "$2"
encryption:
  key: "$key"
peer:
  address: ""
nat:
  enabled: true
  stun_server: "stun.l.google.com:19302"
YAML
        chmod 600 "$1"
}

bus_has_name() {
        [[ $(busctl call org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus \
                NameHasOwner s "org.shadowmesh1.Instance.$1" 2>/dev/null) == "b true" ]]
}
tunnel_state() {
        busctl get-property "org.shadowmesh1.Instance.$1" "/org/shadowmesh1/instance/$1" \
                org.shadowmesh1.Tunnel State 2>/dev/null
}
state_is() { [[ $(tunnel_state "$1") == "s \"$2\"" ]]; }

# bring_up: namespaces, the bus, both daemons, each waiting for a peer once it owns its bus name
# (it takes the name after tap0 is up and the tunnel listens).
bring_up() {
        tmp=$(mktemp -d "${TMPDIR:-/tmp}/smdemo.$id.XXXXXX")
        chmod 755 "$tmp"
        add_ns "$nsa"
        add_ns "$nsb"
        ip -n "$nsa" link add veth0 type veth peer name veth0 netns "$nsb"
        ip -n "$nsa" addr add "$wire_a/24" dev veth0
        ip -n "$nsb" addr add "$wire_b/24" dev veth0
        ip -n "$nsa" link set veth0 up
        ip -n "$nsb" link set veth0 up
        wait_until 10 ping_ok "$nsa" "$wire_b" || die "the veth link between the namespaces is down"

        start_private_bus "$tmp/bus" "$tmp/dbus-daemon.log" "$top/dbus/org.shadowmesh1.conf" ||
                die "the private system bus did not start"

        write_config "$tmp/a.yaml" "$tun_a/24"
        write_config "$tmp/b.yaml" "$tun_b/24"
        # `env` and `ip netns exec` exec: the PIDs are the daemons'. SIGINT back to its default
        # (bash ignores it in background jobs).
        env --default-signal=INT ip netns exec "$nsa" "$SHADOWMESHD" --instance a "$tmp/a.yaml" \
                >"$tmp/a.log" 2>&1 &
        daemon_pid_a=$!
        OWN_PIDS+=("$daemon_pid_a")
        env --default-signal=INT ip netns exec "$nsb" "$SHADOWMESHD" --instance b "$tmp/b.yaml" \
                >"$tmp/b.log" 2>&1 &
        daemon_pid_b=$!
        OWN_PIDS+=("$daemon_pid_b")
        wait_while_alive 10 "$daemon_pid_a" bus_has_name a || die "node a did not come up on the bus"
        wait_while_alive 10 "$daemon_pid_b" bus_has_name b || die "node b did not come up on the bus"
}

# connect_a: shadowmeshctl connect, checked.
connect_a() {
        shown "host" shadowmeshctl -i a connect "$wire_b:$port" ||
                die "shadowmeshctl connect failed"
        state_is a connected || die "node a is not connected after shadowmeshctl connect"
        wait_until 10 state_is b connected || die "node b did not see the handshake"
}

# shut_down: SIGINT to both daemons (as Ctrl+C), then the checks that nothing is left.
shut_down() {
        local node pid
        for pid in "$daemon_pid_a" "$daemon_pid_b"; do
                kill_own INT "$pid" || die "daemon $pid is not running at shutdown"
        done
        for node in a b; do
                pid=daemon_pid_$node
                wait_pid_exit "${!pid}" 10 || die "node $node did not stop within 10 s of SIGINT"
                [[ $EXIT_CODE == 0 ]] || die "node $node exited with status $EXIT_CODE"
                grep -E 'shutting down|removed|stopped' "$tmp/$node.log" | sed "s/^/  $node| /"
        done
        OWN_PIDS=()
        if link_exists "$nsa" tap0 || link_exists "$nsb" tap0; then
                die "a tap0 is still there after shutdown"
        fi
        echo "  both daemons exited with status 0; tap0 is gone in both namespaces"

        stop_pid "$BUS_PID"
        has_exited "$BUS_PID" || die "the bus did not stop"
        BUS_PID=""
        unset DBUS_SYSTEM_BUS_ADDRESS
        del_namespaces
        NAMESPACES=()
        if ip netns list | grep -q "^smdemo$id-"; then
                die "a namespace of the demo is still there"
        fi
        rm -rf "$tmp"
        tmp=""
        local left
        left=$(find /run /tmp -maxdepth 3 -name "*smdemo*$id*" 2>/dev/null || true)
        [[ -z $left ]] || die "left behind: $left"
        echo "  the bus is stopped, both namespaces are deleted, nothing of the demo is left in" \
                "/run or /tmp"
}
link_exists() { ip -n "$1" link show dev "$2" >/dev/null 2>&1; }

# ---- the steps ----------------------------------------------------------------------------------

start_nodes() {
        heading "Two nodes: $nsa and $nsb, joined by a veth \"internet\" ($wire_a, $wire_b)"
        bring_up
        echo "  private system bus: $DBUS_SYSTEM_BUS_ADDRESS"
        echo "    (Debian's system.conf rules plus dbus/org.shadowmesh1.conf)"
        echo "  node a: shadowmeshd --instance a, the prototype's daemon.yaml:"
        sed -e "s/$key/${key:0:8}... (64 hex digits, the same on both nodes)/" -e 's/^/    /' \
                "$tmp/a.yaml"
        echo "  node b: the same, with local_ip \"$tun_b/24\""
        log_lines a 1
        log_lines b 1
}

step_list() {
        heading "1. shadowmeshctl list"
        shown "host" shadowmeshctl list || die "shadowmeshctl list failed"
        if ! grep -qE '^a +waiting ' "$tmp/shown.out" ||
                ! grep -qE '^b +waiting ' "$tmp/shown.out"; then
                die "shadowmeshctl list does not show both instances, waiting"
        fi
}

step_connect() {
        heading "2. shadowmeshctl connect: node a connects to node b"
        local from_a from_b
        from_a=$(($(log_length a) + 1))
        from_b=$(($(log_length b) + 1))
        connect_a
        echo "  what the daemons logged meanwhile:"
        log_lines a "$from_a"
        log_lines b "$from_b"
}

step_status() {
        heading "3. shadowmeshctl status, on both sides"
        shown "host" shadowmeshctl -i a status || die "shadowmeshctl status (a) failed"
        grep -qE '^ *State: connected$' "$tmp/shown.out" || die "a's status is not connected"
        shown "host" shadowmeshctl -i b status || die "shadowmeshctl status (b) failed"
        grep -qE '^ *State: connected$' "$tmp/shown.out" || die "b's status is not connected"
}

step_busctl() {
        heading "4. The same over D-Bus with busctl"
        shown "host" busctl get-property org.shadowmesh1.Instance.b /org/shadowmesh1/instance/b \
                org.shadowmesh1.Tunnel State Endpoint TapDevice ||
                die "busctl get-property failed"
        [[ $(head -n 1 "$tmp/shown.out") == 's "connected"' ]] || die "busctl: State is not connected"
}

# api NODE EXPECTATIONS -- CURL-ARGS...: one of the prototype's curl calls, in NODE's namespace
# (its own 127.0.0.1:9090). EXPECTATIONS are KEY=VALUE on the JSON reply (dotted keys for nested
# objects; VALUE compared as JSON when it parses as JSON, else as a string).
api() {
        local node=$1 ns rc=0
        shift
        local expect=()
        while [[ $1 != -- ]]; do
                expect+=("$1")
                shift
        done
        shift
        ns=smdemo$id-$node
        printf '  %s$ curl %s\n' "$node" "$(words "$@")"
        : >"$tmp/api.out"
        ip netns exec "$ns" curl -sS --fail-with-body --max-time 10 -o "$tmp/api.out" "$@" \
                2>"$tmp/api.err" || rc=$?
        { cat "$tmp/api.out" "$tmp/api.err"; echo; } | sed '/^$/d' | indent
        ((rc == 0)) || die "curl $(words "$@") failed on node $node (curl exit status $rc)"
        python3 - "$tmp/api.out" "${expect[@]}" <<'EOF' || die "unexpected reply from $node's HTTP API"
import json, sys
reply = json.load(open(sys.argv[1]))
for e in sys.argv[2:]:
    path, want = e.split("=", 1)
    try:
        want = json.loads(want)
    except ValueError:
        pass
    got = reply
    for k in path.split("."):
        got = got.get(k) if isinstance(got, dict) else None
    if got != want:
        sys.exit("%s is %r, expected %r" % (path, got, want))
EOF
}

step_http_api() {
        heading "5. The prototype's HTTP API, with its curl commands (each node's 127.0.0.1:9090)"
        echo "  (run with -sS --fail-with-body --max-time 10: an error reply or no answer ends the demo)"
        api a status=success -- "$api/health"
        api a status=success state=Connected details.connected=true details.tap_device=tap0 \
                -- "$api/status"
        api a status=success -- -X POST "$api/disconnect"
        wait_until 10 state_is a disconnected || die "D-Bus does not show node a disconnected"
        echo "  (D-Bus agrees: $(tunnel_state a))"
        api a status=success -- -X POST "$api/connect" -H "Content-Type: application/json" \
                -d "{\"peer_address\": \"$wire_b:$port\"}"
        wait_until 10 state_is a connected || die "D-Bus does not show node a connected"
        api a status=success state=Connected details.connected=true \
                "details.peer_address=$wire_b:$port" -- "$api/status"
        api b status=success state=Connected details.connected=true -- "$api/status"
}

# capture_start NAME NS DEV FILTER...: tcpdump into $tmp/NAME.pcap until capture_stop.
capture_start() {
        local name=$1 ns=$2 dev=$3
        shift 3
        ip netns exec "$ns" tcpdump -Z root -U --immediate-mode -n -i "$dev" -w "$tmp/$name.pcap" \
                "$@" >"$tmp/$name-tcpdump.out" 2>&1 &
        OWN_PIDS+=($!)
        eval "capture_pid_$name=\$!"
        wait_until 10 grep -qs "listening on" "$tmp/$name-tcpdump.out" ||
                die "tcpdump on $dev did not start"
}
capture_stop() {
        local pid=capture_pid_$1
        stop_pid "${!pid}" INT
}

ping_both_ways() {
        shown "a" ip netns exec "$nsa" ping -c 3 -i 0.2 -W 2 -s 256 -p "$marker" "$tun_b" ||
                die "ping a -> b failed"
        grep -q ' 0% packet loss' "$tmp/shown.out" || die "ping a -> b lost packets"
        shown "b" ip netns exec "$nsb" ping -c 3 -i 0.2 -W 2 -s 256 -p "$marker" "$tun_a" ||
                die "ping b -> a failed"
        grep -q ' 0% packet loss' "$tmp/shown.out" || die "ping b -> a lost packets"
}

step_pings() {
        heading "6. Pings both ways through the tunnel (payload pattern $marker, \"SHAD0WME\")"
        # Step 7's captures: the wire (veth0, the tunnel's UDP) and node a's tap0 (the plaintext).
        capture_start wire "$nsa" veth0 udp port "$port"
        capture_start tap "$nsa" tap0 icmp
        ping_both_ways
        capture_stop wire
        capture_stop tap
}

step_capture() {
        heading "7. What the wire carried: ciphertext only"
        echo "  node a's veth0, one data message:"
        tcpdump -nn -r "$tmp/wire.pcap" -c 1 -x 'udp and greater 300' 2>/dev/null | head -n 8 | indent
        # Each UDP payload's message type (its first 4 bytes, little-endian; 4 is a data message)
        # and where the marker occurs, on the wire and on tap0.
        python3 - "$tmp/wire.pcap" "$tmp/tap.pcap" "$marker" <<'EOF' || die "the capture check failed"
import struct, sys
names = {1: "handshake initiation", 2: "handshake response", 3: "cookie reply", 4: "data"}

def packets(path):
    data = open(path, "rb").read()
    magic = struct.unpack("<I", data[:4])[0]
    endian = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D) else ">"
    if struct.unpack(endian + "I", data[20:24])[0] != 1:
        sys.exit("%s: not an Ethernet capture" % path)
    off = 24
    while off + 16 <= len(data):
        caplen = struct.unpack(endian + "I", data[off + 8:off + 12])[0]
        yield data[off + 16:off + 16 + caplen]
        off += 16 + caplen

marker = bytes.fromhex(sys.argv[3])
types, with_marker, total = {}, 0, 0
for frame in packets(sys.argv[1]):
    if frame[12:14] != b"\x08\x00" or frame[23] != 17:  # IPv4, UDP
        continue
    ihl = (frame[14] & 0x0F) * 4
    payload = frame[14 + ihl + 8:]
    total += 1
    t = struct.unpack("<I", payload[:4])[0] if len(payload) >= 4 else 0
    types[t] = types.get(t, 0) + 1
    with_marker += marker in payload
inside = sum(marker in f for f in packets(sys.argv[2]))
print("    veth0 (the wire): %d UDP datagrams: %s" % (total, ", ".join(
    "%d %s" % (n, names.get(t, "type %d" % t)) for t, n in sorted(types.items()))))
print("    veth0 (the wire): the marker appears in %d of them" % with_marker)
print("    tap0 (inside the tunnel): the marker appears in %d frames" % inside)
if with_marker or not types.get(4) or inside < 12:
    sys.exit("expected data messages without the marker on the wire, and the 12 pings on tap0")
print("    => the pings crossed the wire as data messages, and their payload never appeared there")
EOF
}

step_disconnect() {
        heading "8. shadowmeshctl disconnect"
        shown "host" shadowmeshctl -i a disconnect || die "shadowmeshctl disconnect failed"
        state_is a disconnected || die "node a is not disconnected after shadowmeshctl disconnect"
        shown "host" shadowmeshctl list || die "shadowmeshctl list failed"
}

step_shutdown() {
        heading "9. Clean shutdown: SIGINT to both daemons, as Ctrl+C"
        shut_down
}

# The prototype's video-stream check: a 15 MB file over HTTP through the tunnel.
step_stream() {
        heading "10. The prototype's video-stream check (a fresh pair of nodes)"
        bring_up
        connect_a
        local size=15000000 rc=0 got secs mbits sum_sent sum_got
        mkdir "$tmp/www"
        head -c "$size" /dev/urandom >"$tmp/www/stream.bin"
        ip netns exec "$nsb" python3 -m http.server --bind "$tun_b" --directory "$tmp/www" 8080 \
                >"$tmp/http-server.log" 2>&1 &
        OWN_PIDS+=($!)
        wait_while_alive 10 "$!" http_listening || die "python3 -m http.server did not start"
        echo "  b$ python3 -m http.server --bind $tun_b --directory www 8080   # a 15 MB file"
        printf '  a$ %s\n' "curl -o stream.bin http://$tun_b:8080/stream.bin"
        ip netns exec "$nsa" curl -sS --fail --max-time 30 -o "$tmp/got.bin" \
                -w '%{size_download} %{time_total}\n' "http://$tun_b:8080/stream.bin" \
                >"$tmp/curl-stream.out" 2>&1 || rc=$?
        ((rc == 0)) || die "the download failed: $(cat "$tmp/curl-stream.out")"
        read -r got secs <"$tmp/curl-stream.out"
        [[ $got == "$size" ]] || die "downloaded $got bytes of $size"
        mbits=$(awk -v b="$got" -v s="$secs" 'BEGIN { printf "%.1f", b * 8 / s / 1e6 }')
        sum_sent=$(sha256sum <"$tmp/www/stream.bin" | cut -d' ' -f1)
        sum_got=$(sha256sum <"$tmp/got.bin" | cut -d' ' -f1)
        echo "    $got bytes in $secs s: $mbits Mbit/s through the tunnel"
        echo "    sha256 served:     $sum_sent"
        echo "    sha256 downloaded: $sum_got"
        [[ $sum_sent == "$sum_got" ]] || die "the checksums differ"
        echo "    => the checksums match"
        echo "  shutdown:"
        stop_pid "${OWN_PIDS[-1]}"
        shut_down
}
http_listening() { ip netns exec "$nsb" ss -Hltn "sport = :8080" | grep -q .; }

start=$SECONDS
start_nodes
step_list
step_connect
step_status
step_busctl
step_http_api
step_pings
step_capture
step_disconnect
step_shutdown
step_stream
heading "Demo complete in $((SECONDS - start)) s"
