#!/bin/bash
# SPDX-License-Identifier: MIT
# bench/footprint.sh: what one ping's round trip touches in the answering daemon's user space.
#
# Two namespaces and a pair of shadowmeshd (shared-key mode, the benchmark's configuration);
# side B runs under valgrind's lackey, which logs every instruction fetch and every load and
# store. For each of N single pings from A, the part of that log written during the round
# trip is cut out; bench/footprint.py reports the median one: instructions run, distinct
# 64-byte lines of code and of data, 4 KiB pages, by object and by function.
#
# Why: on an idle tunnel a ping finds the caches cold, and what it costs then grows with what
# it touches, not with the instructions it runs (bench/README.md, "what one ping costs").
# Timing a change of a few lines is lost in the host's scatter; these counts do not scatter:
# the same binary gives the same numbers run after run. Only ShadowMesh is measured: under
# lackey, fastd's and tinc's handshakes (elliptic curves in plain C) never finish within
# their timeouts. Not a timed test; nothing here decides pass or fail.
#
# Usage: bench/footprint.sh [--pings N] [--top N] [--keep]   (root; valgrind, python3, iproute2)
#   --keep: leave the traces, the mappings and the logs in the work directory (BENCH_KEEP=1)
#   SHADOWMESHD=PATH  the daemon to measure (default: build/src/shadowmeshd)
#   threads/offload: the daemon's defaults (network.threads auto, network.offload yes)
set -u

REPO=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=bench/lib.sh
. "$REPO/bench/lib.sh"

PINGS=7 TOP=25
while (($#)); do
        case $1 in
        --pings) PINGS=${2:?--pings needs a number}; shift 2 ;;
        --top) TOP=${2:?--top needs a number}; shift 2 ;;
        --keep) BENCH_KEEP=1; shift ;;
        -h | --help) sed -n '2,/^set -u/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument '$1' (try --help)" ;;
        esac
done
[[ $PINGS =~ ^[1-9][0-9]?$ ]] || die "--pings: want 1-99, got '$PINGS'"
[[ $TOP =~ ^[1-9][0-9]*$ ]] || die "--top: want a positive number, got '$TOP'"
((EUID == 0)) || die "must run as root (it creates network namespaces)"
for p in valgrind python3 ip ping nm; do
        command -v "$p" >/dev/null || die "$p not found (apt-get install -y valgrind python3 iproute2 iputils-ping binutils)"
done
SMD=${SHADOWMESHD:-$REPO/build/src/shadowmeshd}
[[ -x $SMD ]] || die "$SMD: no such daemon (build first: meson setup build && ninja -C build)"

NS_A=smfp-a-$$ NS_B=smfp-b-$$ VETH_A=smfva$$ VETH_B=smfvb$$ UNDER_A=10.98.0.1 UNDER_B=10.98.0.2
TUN_A=10.0.0.1 TUN_B=10.0.0.2
WORK=""
bench_topology smfootprint

sm_configs "$WORK" "$(hexkey32)" "smfta$$" "smftb$$" 1380 yes auto auto # the defaults

bg_start PID_B "shadowmeshd B (under lackey)" "$NS_B" "$WORK/b.log" \
        valgrind --tool=lackey --trace-mem=yes --log-file="$WORK/b.trace" \
        "$SMD" --instance "smfp-b-$$" "$WORK/b.yaml"
bg_start PID_A "shadowmeshd A" "$NS_A" "$WORK/a.log" "$SMD" --instance "smfp-a-$$" "$WORK/a.yaml"
WAIT_ALIVE=("$PID_A" "$PID_B")
log "waiting for the tunnel (side B runs some 50 times slower under lackey)"
wait_until 90 "the tunnel to answer a ping" ping_once "$NS_A" "$TUN_B" ||
        die "no tunnel; logs: $WORK/a.log $WORK/b.log (run with --keep)"
cp "/proc/$PID_B/maps" "$WORK/maps" || die "cannot read valgrind's mappings"

# The round trip's tail (the accounting after the send) is in the file once it stops growing:
# the same size at two of wait_until's polls.
TRACE_SIZE=-1
trace_unchanged() {
        local now
        now=$(stat -c %s "$WORK/b.trace") || return 1
        [[ $now == "$TRACE_SIZE" ]] && return 0
        TRACE_SIZE=$now
        return 1
}
trace_settled() { TRACE_SIZE=-1; wait_until 5 "the trace to settle" trace_unchanged; }

# The median window is reported: one that caught the handshake's aftermath or a timer tick
# does not move it.
windows=()
for i in $(seq "$PINGS"); do
        trace_settled || die "the daemon under lackey never went quiet"
        before=$(stat -c %s "$WORK/b.trace")
        nsx "$NS_A" ping -n -c 1 -W 5 "$TUN_B" >/dev/null || die "ping $i through the tunnel got no answer"
        trace_settled || die "the trace kept growing after ping $i"
        after=$(stat -c %s "$WORK/b.trace")
        tail -c +"$((before + 1))" "$WORK/b.trace" | head -c "$((after - before))" >"$WORK/window-$i"
        windows+=("$WORK/window-$i")
        sleep 1.2 # the pings' interval: an idle tunnel's, each finding the caches cold
done
log "$SMD: $PINGS round trips, side B's user space"
python3 "$REPO/bench/footprint.py" "$WORK/maps" "$TOP" "${windows[@]}"
