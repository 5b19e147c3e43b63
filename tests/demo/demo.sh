#!/bin/bash
# SPDX-License-Identifier: MIT
#
# tools/demo.sh, the README's first command, as a test: it exits 0 in under a minute, its output
# has every step in order with the lines that prove it (shadowmeshctl, busctl, the prototype's
# curl calls and their JSON, pings without loss, the capture, the shutdown, the video-stream
# check), and afterwards none of its namespaces, processes or files are left.
#
# Usage: demo.sh PATH/TO/tools/demo.sh (SHADOWMESHD and SHADOWMESHCTL in the environment)
set -euo pipefail
# shellcheck source=tests/common.sh
source "$(dirname "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")")/common.sh"

demo=$1
require_netns "smdt$$"
require_program SHADOWMESHD
require_program SHADOWMESHCTL
TMP=$(mktemp -d "${TMPDIR:-/tmp}/shadowmesh-demo-test.XXXXXX")
cleanup() {
        local rc=$?
        cleanup_begin "$rc"
        stop_own_pids
        cleanup_end "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- run it -------------------------------------------------------------------------------------
started=$(now_ms)
bash "$demo" >"$TMP/demo.out" 2>&1 &
pid=$!
OWN_PIDS+=("$pid")
if ! wait_pid_exit "$pid" 120; then
        fail "demo.sh finished within 120 s"
        summary
fi
elapsed=$((($(now_ms) - started) / 1000))
OWN_PIDS=()
check_eq "demo.sh exits 0" "$EXIT_CODE" 0
check "demo.sh finished in under a minute (${elapsed} s)" test "$elapsed" -lt 60

# ---- the steps, in order ------------------------------------------------------------------------
headings=$(grep -E '^== [0-9]+\. ' "$TMP/demo.out" | sed -E 's/^== ([0-9]+)\. .*/\1/' | xargs)
check_eq "the ten steps are there, in order" "$headings" "1 2 3 4 5 6 7 8 9 10"

# section N: the output of step N (its heading up to the next one).
section() { awk -v n="$1" '/^== / { on = ($2 == n ".") } on' "$TMP/demo.out"; }
# has_line N REGEX: step N's output has a line matching the extended REGEX.
has_line() { section "$1" | grep -qE -- "$2"; }
# has_fixed_line N LINE: ... a line that is exactly LINE.
has_fixed_line() { section "$1" | grep -qxF -- "$2"; }

check "the nodes run the prototype's HTTP API address" \
        grep -qF 'listen_address: "127.0.0.1:9090"' "$TMP/demo.out"
check "the nodes run as instances a and b" grep -qF "starting instance 'b'" "$TMP/demo.out"
check "1: shadowmeshctl list shows both instances" has_line 1 '^ +b +waiting +- +tap0$'
check "2: shadowmeshctl connect reports its progress" has_line 2 'Connecting to 198\.51\.100\.2:9001\.\.\.'
check "2: shadowmeshctl connect connects" has_line 2 'Connected to 198\.51\.100\.2:9001 \(direct\)'
check "2: node b logged the handshake" has_line 2 '^  b\| .*handshake complete'
check "3: status on both sides is connected" \
        test "$(section 3 | grep -cE '^ +State: connected$')" -eq 2
check "4: busctl reads State over D-Bus" has_line 4 '^  host\$ busctl get-property'
check "4: ... connected" has_line 4 '^    s "connected"$'
for call in 'curl http://127.0.0.1:9090/health' 'curl http://127.0.0.1:9090/status' \
        'curl -X POST http://127.0.0.1:9090/disconnect' \
        "curl -X POST http://127.0.0.1:9090/connect -H \"Content-Type: application/json\" -d '{\"peer_address\": \"198.51.100.2:9001\"}'"; do
        check "5: the prototype's call on node a: $call" has_fixed_line 5 "  a\$ $call"
done
check "5: every reply is a success" \
        test "$(section 5 | grep -cE '^    \{.*"status": ?"success"')" -eq 6
check "5: /status says Connected" has_line 5 '"state": ?"Connected"'
check "6: ping from a to 10.0.0.2" has_line 6 '^  a\$ .*ping .* 10\.0\.0\.2$'
check "6: ping from b to 10.0.0.1" has_line 6 '^  b\$ .*ping .* 10\.0\.0\.1$'
check_eq "6: no packet lost" "$(section 6 | grep -c ' 3 received, 0% packet loss')" 2
check "7: data messages on the wire" has_line 7 'veth0 \(the wire\): [0-9]+ UDP datagrams: .*[0-9]+ data'
check "7: the marker never on the wire" has_line 7 'the marker appears in 0 of them'
check "7: the marker inside the tunnel" has_line 7 'tap0 \(inside the tunnel\): the marker appears in [1-9][0-9]* frames'
check "8: shadowmeshctl disconnect" has_line 8 '^  host\$ shadowmeshctl -i a disconnect$'
check "8: a is disconnected" has_line 8 '^ +a +disconnected '
check "9: SIGINT stops both nodes" test "$(section 9 | grep -c 'received SIGINT')" -eq 2
check "9: tap0 removed on both" has_line 9 'exited with status 0; tap0 is gone in both namespaces'
check "9: nothing left" has_line 9 'the bus is stopped, both namespaces are deleted, nothing'
check "10: the 15 MB file crossed the tunnel" \
        has_line 10 '^    15000000 bytes in [0-9.]+ s: [0-9.]+ Mbit/s through the tunnel$'
check "10: checksums match" has_line 10 '=> the checksums match'
check "10: and that pair shut down cleanly too" has_line 10 'nothing of the demo is left'
check "the demo says it is complete" grep -qE '^== Demo complete in [0-9]+ s$' "$TMP/demo.out"

# ---- nothing left, seen from outside ------------------------------------------------------------
check_not "no namespace of the demo left" grep -q "^smdemo$pid-" <(ip netns list)
check_not "no process of the demo left" pgrep -f "smdemo\\.$pid\\." 
check_eq "no file of the demo left in /tmp or /run" \
        "$(find /tmp /run -maxdepth 3 -name "*smdemo*$pid*" 2>/dev/null)" ""

summary
