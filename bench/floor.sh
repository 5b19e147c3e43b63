#!/bin/bash
# SPDX-License-Identifier: MIT
# bench/floor.sh: where a ping's round trip goes, against a floor that does nothing but the
# unavoidable. Alternating rounds of one pair at a time, in two network namespaces:
#
#   fastd            fastd, mode tap, salsa2012+umac (the benchmark's fastd)
#   shadowmesh       shadowmeshd, shared-key mode, the daemon's defaults (the benchmark's)
#   shadowmesh:PATH  the same with another build's shadowmeshd (a change against its parent,
#                    in the same rounds)
#   floor[:OPTS]     bench-floor (bench/floor.c): one thread, read, seal, send; receive, open,
#                    write, with ShadowMesh's cipher and message layout. NOT A VPN (a fixed key,
#                    no handshake). OPTS, comma-separated, add what shadowmeshd's receive thread
#                    does beyond that: cipher=none, poll, vnet, queues=N, threads=N, mmsg
#                    (bench/floor.c says what each one is).
#
# Each round starts the pair, waits for the tunnel, warms it (20 pings), then pings A->B
# (--pings at --interval, like the benchmark's ping) and reads each daemon's CPU time
# (every thread, /proc/PID/task/*/schedstat) around it. The summary is the median over the
# rounds: ping average, CPU per round trip on side A (pings) and side B (answers), and each
# against fastd's. A difference between two variants that stays on one side in most rounds is
# what this host's scatter (10-20 % from run to run) lets one read; single rounds are not.
# Not a timed test: nothing here decides pass or fail.
#
# Usage: bench/floor.sh [--rounds N] [--pings N] [--interval S] [--keep] [VARIANT...]
#   default variants: fastd shadowmesh floor floor:cipher=none floor:poll,vnet,queues=2,threads=3,mmsg
#   SHADOWMESHD=PATH, BENCH_FLOOR=PATH: other builds (default build/src/shadowmeshd,
#   build/bench/bench-floor). Root; iproute2, iputils-ping, fastd for the fastd variant.
set -u

REPO=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=bench/lib.sh
. "$REPO/bench/lib.sh"

ROUNDS=8 PINGS=300 INTERVAL=0.02 MTU=1380
VARIANTS=()
while (($#)); do
        case $1 in
        --rounds) ROUNDS=${2:?--rounds needs a number}; shift 2 ;;
        --pings) PINGS=${2:?--pings needs a number}; shift 2 ;;
        --interval) INTERVAL=${2:?--interval needs seconds}; shift 2 ;;
        --keep) BENCH_KEEP=1; shift ;;
        -h | --help) sed -n '2,/^set -u/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        -*) die "unknown option '$1' (try --help)" ;;
        *) VARIANTS+=("$1"); shift ;;
        esac
done
((${#VARIANTS[@]})) ||
        VARIANTS=(fastd shadowmesh floor floor:cipher=none "floor:poll,vnet,queues=2,threads=3,mmsg")
[[ $ROUNDS =~ ^[1-9][0-9]?$ ]] || die "--rounds: want 1-99, got '$ROUNDS'"
[[ $PINGS =~ ^[1-9][0-9]{0,4}$ ]] || die "--pings: want 1-99999, got '$PINGS'"
[[ $INTERVAL =~ ^(0\.[0-9]*[1-9][0-9]*|[1-9][0-9]*(\.[0-9]+)?)$ ]] ||
        die "--interval: want seconds above 0, got '$INTERVAL'"
((EUID == 0)) || die "must run as root (it creates network namespaces)"
SMD=${SHADOWMESHD:-$REPO/build/src/shadowmeshd}
FLOOR=${BENCH_FLOOR:-$REPO/build/bench/bench-floor}

# floor_args OPTS: bench-floor's options for a variant's comma-separated OPTS (checked here, so
# that a typo stops the run before anything starts).
floor_args() {
        local opt
        local -a opts=() out=()
        IFS=, read -r -a opts <<<"$1"
        for opt in "${opts[@]}"; do
                case $opt in
                poll | vnet | mmsg) out+=("--$opt") ;;
                cipher=none | cipher=chacha20poly1305) out+=("--cipher" "${opt#cipher=}") ;;
                queues=[1-8]) out+=("--queues" "${opt#queues=}") ;;
                threads=[0-9] | threads=1[0-6]) out+=("--threads" "${opt#threads=}") ;;
                *) return 1 ;;
                esac
        done
        ((${#out[@]} == 0)) || printf '%s\n' "${out[@]}"
}
# floor_opts VARIANT: the OPTS of floor[:OPTS].
floor_opts() { [[ $1 == floor:* ]] && echo "${1#floor:}"; }
for v in "${VARIANTS[@]}"; do
        case $v in
        fastd) command -v fastd >/dev/null || die "fastd not installed (apt-get install -y fastd)" ;;
        shadowmesh) [[ -x $SMD ]] || die "$SMD: no such daemon (meson setup build && ninja -C build)" ;;
        shadowmesh:*) [[ -x ${v#shadowmesh:} ]] || die "variant '$v': ${v#shadowmesh:}: no such daemon" ;;
        floor | floor:*)
                [[ -x $FLOOR ]] || die "$FLOOR: not built (meson setup build && ninja -C build)"
                floor_args "$(floor_opts "$v")" >/dev/null ||
                        die "variant '$v': want floor:OPT,... with OPT one of cipher=none, poll, vnet, queues=1-8, threads=0-16, mmsg"
                ;;
        *) die "unknown variant '$v' (fastd, shadowmesh[:PATH] or floor[:OPTS]; try --help)" ;;
        esac
done

NS_A=smfl-a-$$ NS_B=smfl-b-$$ VETH_A=smflva$$ VETH_B=smflvb$$ UNDER_A=10.97.0.1 UNDER_B=10.97.0.2
TUN_A=10.0.0.1 TUN_B=10.0.0.2 DEV_A=smfla$$ DEV_B=smflb$$
WORK=""
bench_topology smfloor

# tap_up NS DEV IP: what bench-floor leaves to its caller (fastd and shadowmeshd do it).
tap_up() {
        link_exists "$1" "$2" && nsx "$1" ip link set dev "$2" mtu "$MTU" up &&
                nsx "$1" ip addr add "$3/24" dev "$2"
}

# start VARIANT: the pair, started; PID_A and PID_B set. Returns non-zero when it never
# carried a ping.
start() {
        local v=$1 dir=$WORK/$2 port
        local -a a=() b=() args=()
        mkdir -p "$dir"
        case $v in
        fastd)
                fastd_configs "$dir" "$DEV_A" "$DEV_B" "$MTU" salsa2012+umac || return 1
                a=(fastd -c "$dir/a.conf") b=(fastd -c "$dir/b.conf") port=10000 ;;
        shadowmesh | shadowmesh:*)
                local smd=$SMD
                [[ $v == shadowmesh:* ]] && smd=${v#shadowmesh:}
                sm_configs "$dir" "$(hexkey32)" "$DEV_A" "$DEV_B" "$MTU" yes auto auto
                a=("$smd" --instance "smfl-a-$$" "$dir/a.yaml")
                b=("$smd" --instance "smfl-b-$$" "$dir/b.yaml") port=9001 ;;
        floor*)
                mapfile -t args < <(floor_args "$(floor_opts "$v")")
                a=("$FLOOR" --tap "$DEV_A" --local "$UNDER_A:9002" --remote "$UNDER_B:9002" "${args[@]}")
                b=("$FLOOR" --tap "$DEV_B" --local "$UNDER_B:9002" --remote "$UNDER_A:9002" "${args[@]}")
                port=9002 ;;
        esac
        RUN_DIR=$dir
        start_pair "$v" "$port" "${a[@]}" -- "${b[@]}" || return 1
        WAIT_ALIVE=("$PID_A" "$PID_B")
        if [[ $v == floor* ]]; then
                wait_until 10 "$v's TAPs" tap_up "$NS_A" "$DEV_A" "$TUN_A" || return 1
                wait_until 10 "$v's TAPs" tap_up "$NS_B" "$DEV_B" "$TUN_B" || return 1
        fi
        wait_until 30 "$v to carry a ping" ping_once "$NS_A" "$TUN_B" || return 1
        WAIT_ALIVE=()
}

stop_pair() {
        stop_pid "$PID_A" 10 >/dev/null 2>&1
        stop_pid "$PID_B" 10 >/dev/null 2>&1
        wait_until 10 "the TAPs to go" link_gone "$NS_A" "$DEV_A" || die "a TAP stayed behind"
        wait_until 10 "the TAPs to go" link_gone "$NS_B" "$DEV_B" || die "a TAP stayed behind"
}

# per_trip DELTA UNIT FORMAT: DELTA / UNIT per answered ping (CPU ns -> us, wake-ups).
per_trip() { awk -v d="$1" -v u="$2" -v n="$answered" "BEGIN { printf \"$3\", d / u / n }"; }

declare -A AVG CPU_A CPU_B WAKE_A WAKE_B
log "$ROUNDS rounds of ${VARIANTS[*]}; $PINGS pings at ${INTERVAL}s each"
for ((r = 1; r <= ROUNDS; r++)); do
        for i in "${!VARIANTS[@]}"; do
                v=${VARIANTS[$i]}
                start "$v" "r$r-v$i" || die "$v: no tunnel (logs in $WORK/r$r-v$i with --keep)"
                nsx "$NS_A" ping -n -q -c 20 -i 0.01 -W 1 "$TUN_B" >/dev/null 2>&1
                a0=$(cpu_ns "$PID_A") b0=$(cpu_ns "$PID_B") wa0=$(wakeups "$PID_A") wb0=$(wakeups "$PID_B")
                read -r avg _ _ _ loss < <(measure_ping "$NS_A" "$TUN_B" "$PINGS" "$INTERVAL")
                a1=$(cpu_ns "$PID_A") b1=$(cpu_ns "$PID_B") wa1=$(wakeups "$PID_A") wb1=$(wakeups "$PID_B")
                answered=$(awk -v n="$PINGS" -v l="$loss" 'BEGIN { printf "%d", n * (100 - l) / 100 + 0.5 }')
                ((answered > 0)) || die "$v: no ping answered"
                ca=$(per_trip $((a1 - a0)) 1000 %.1f) cb=$(per_trip $((b1 - b0)) 1000 %.1f)
                wa=$(per_trip $((wa1 - wa0)) 1 %.2f) wb=$(per_trip $((wb1 - wb0)) 1 %.2f)
                printf 'round %2d  %-44s ping %s ms  per round trip: CPU A %6s B %6s us, wake-ups A %s B %s  loss %s %%\n' \
                        "$r" "$v" "$avg" "$ca" "$cb" "$wa" "$wb" "$loss"
                AVG[$v]+="$avg " CPU_A[$v]+="$ca " CPU_B[$v]+="$cb " WAKE_A[$v]+="$wa " WAKE_B[$v]+="$wb "
                stop_pair
        done
done

echo
printf '%-44s %10s %10s %10s %7s %7s   %s\n' "median of $ROUNDS rounds" "ping ms" "CPU A us" \
        "CPU B us" "wake A" "wake B" "against fastd (ping, CPU A, CPU B)"
for v in "${VARIANTS[@]}"; do
        # shellcheck disable=SC2086 # the lists are space-separated numbers
        p=$(median ${AVG[$v]}) ca=$(median ${CPU_A[$v]}) cb=$(median ${CPU_B[$v]})
        vs=""
        if [[ -n ${AVG[fastd]:-} ]]; then
                # shellcheck disable=SC2086
                vs=$(awk -v p="$p" -v a="$ca" -v b="$cb" -v fp="$(median ${AVG[fastd]})" \
                        -v fa="$(median ${CPU_A[fastd]})" -v fb="$(median ${CPU_B[fastd]})" \
                        'BEGIN { printf "%.2fx %.2fx %.2fx", p / fp, a / fa, b / fb }')
        fi
        # shellcheck disable=SC2086
        printf '%-44s %10s %10s %10s %7s %7s   %s\n' "$v" "$p" "$ca" "$cb" "$(median ${WAKE_A[$v]})" \
                "$(median ${WAKE_B[$v]})" "$vs"
done
