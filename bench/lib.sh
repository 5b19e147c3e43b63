# shellcheck shell=bash
# bench/lib.sh: helpers for bench/run.sh (sourced, not executed).
#
# Namespaces, processes the benchmark started, bounded waits on real conditions, and the
# measurements (ping, iperf3). Everything here acts only inside the two namespaces the
# benchmark created; every process it starts is recorded in BENCH_PIDS and nothing else is
# ever signalled.

BENCH_PIDS=()                   # every background process this run started
declare -A BENCH_PID_NAME=()    # pid -> human name, for messages

log() { printf 'bench: %s\n' "$*" >&2; }
die() { printf 'bench: error: %s\n' "$*" >&2; exit 1; }

# nsx NS CMD...: run CMD in network namespace NS.
nsx() {
        local ns=$1
        shift
        ip netns exec "$ns" "$@"
}

# alive PID: the process exists and is not a zombie (a child we have not reaped yet
# still answers kill -0, so look at its state instead).
alive() {
        local pid=$1 stat
        [[ -r /proc/$pid/stat ]] || return 1
        stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
        stat=${stat##*) }
        [[ ${stat:0:1} != Z ]]
}

# bg_start VAR NAME NS LOGFILE CMD...: start CMD in namespace NS in the background with
# stdout+stderr to LOGFILE; store its pid in the variable VAR. `ip netns exec` execs CMD,
# so the pid is the daemon's own.
bg_start() {
        local __var=$1 name=$2 ns=$3 logfile=$4 pid
        shift 4
        ip netns exec "$ns" "$@" >"$logfile" 2>&1 </dev/null &
        pid=$!
        BENCH_PIDS+=("$pid")
        BENCH_PID_NAME[$pid]=$name
        printf -v "$__var" '%s' "$pid"
}

# stop_pid PID [SECONDS]: SIGTERM, wait up to SECONDS (default 10) for the exit, then
# SIGKILL; reaps the child. Returns the exit status (or 137 when it had to be killed).
stop_pid() {
        local pid=$1 limit=${2:-10} deadline rc=0
        [[ -n $pid ]] || return 0
        if alive "$pid"; then
                kill -TERM "$pid" 2>/dev/null
                deadline=$((SECONDS + limit))
                while alive "$pid" && ((SECONDS < deadline)); do
                        sleep 0.05
                done
                if alive "$pid"; then
                        log "${BENCH_PID_NAME[$pid]:-pid $pid} ignored SIGTERM for ${limit}s, killing it"
                        kill -KILL "$pid" 2>/dev/null
                fi
        fi
        wait "$pid" 2>/dev/null || rc=$?
        return "$rc"
}

# bench_cleanup: the EXIT trap of a script that set NS_A, NS_B and WORK (each may be empty):
# stops every process it started, deletes its two namespaces and its work directory, unless
# BENCH_KEEP=1 (then says where it is). Exits with the script's status.
bench_cleanup() {
        local rc=$? pid
        trap - EXIT INT TERM
        for pid in "${BENCH_PIDS[@]}"; do
                alive "$pid" && kill -TERM "$pid" 2>/dev/null
        done
        for pid in "${BENCH_PIDS[@]}"; do
                stop_pid "$pid" 5 >/dev/null 2>&1
        done
        [[ -n ${NS_A:-} ]] && ip netns del "$NS_A" 2>/dev/null
        [[ -n ${NS_B:-} ]] && ip netns del "$NS_B" 2>/dev/null
        if [[ -n ${WORK:-} && -d $WORK ]]; then
                if [[ ${BENCH_KEEP:-0} == 1 ]]; then
                        log "kept configs, logs and measurements in $WORK"
                else
                        rm -rf -- "$WORK"
                fi
        fi
        exit "$rc"
}

# bench_topology TAG: what every bench script stands on. Sets the EXIT trap (bench_cleanup) and
# WORK (a new /tmp/TAG.PID.XXXXXX), then makes the caller's namespaces NS_A and NS_B, joined by
# the veth pair VETH_A / VETH_B with UNDER_A/24 and UNDER_B/24, everything up, and waits until
# A reaches B over it.
bench_topology() {
        trap bench_cleanup EXIT
        trap 'exit 130' INT
        trap 'exit 143' TERM
        WORK=$(mktemp -d "/tmp/$1.$$.XXXXXX") || die "mktemp failed"
        ip netns add "$NS_A" || die "cannot create network namespace $NS_A"
        ip netns add "$NS_B" || die "cannot create network namespace $NS_B"
        ip link add "$VETH_A" netns "$NS_A" type veth peer name "$VETH_B" netns "$NS_B" ||
                die "cannot create veth pair"
        nsx "$NS_A" ip addr add "$UNDER_A/24" dev "$VETH_A"
        nsx "$NS_B" ip addr add "$UNDER_B/24" dev "$VETH_B"
        local ns
        for ns in "$NS_A" "$NS_B"; do
                nsx "$ns" ip link set lo up
        done
        nsx "$NS_A" ip link set "$VETH_A" up
        nsx "$NS_B" ip link set "$VETH_B" up
        wait_until 10 "underlay reachable" ping_once "$NS_A" "$UNDER_B" || die "underlay does not work"
}

hexkey32() { od -An -N32 -tx1 /dev/urandom | tr -d ' \n'; }

# sm_configs DIR KEY DEV_A DEV_B MTU OFFLOAD THREADS RX_WORKERS: a ShadowMesh pair in shared-key
# mode, DIR/a.yaml and DIR/b.yaml: A (TUN_A on DEV_A) initiates to B's UNDER_B:9001, B (TUN_B on
# DEV_B) waits; network.offload, .threads and .rx_workers as given.
sm_configs() {
        local dir=$1 key=$2 dev_a=$3 dev_b=$4 mtu=$5 offload=$6 threads=$7 rx_workers=$8 side ip peer dev
        for side in a b; do
                if [[ $side == a ]]; then
                        ip=$TUN_A peer="$UNDER_B:9001" dev=$dev_a
                else
                        ip=$TUN_B peer="" dev=$dev_b
                fi
                cat >"$dir/$side.yaml" <<EOF
daemon:
  log_level: info
network:
  tap_device: $dev
  local_ip: $ip/24
  mtu: $mtu
  listen_port: 9001
  offload: $offload
  threads: $threads
  rx_workers: $rx_workers
encryption:
  key: "$key"
peer:
  address: "$peer"
nat:
  enabled: false
EOF
                chmod 600 "$dir/$side.yaml"
        done
}

# fastd_configs DIR DEV_A DEV_B MTU METHOD: a fastd pair in mode tap, DIR/a.conf and DIR/b.conf,
# with fresh keys (fastd --generate-key): A (TUN_A on DEV_A) connects to B's UNDER_B:10000, B
# waits; each brings its interface up with its address.
fastd_configs() {
        local dir=$1 dev_a=$2 dev_b=$3 mtu=$4 method=$5 side other ip under dev out
        local -A sec=() pub=()
        for side in a b; do
                out=$(fastd --generate-key 2>/dev/null) || { log "fastd --generate-key failed"; return 1; }
                sec[$side]=$(awk '/^Secret:/ { print $2 }' <<<"$out")
                pub[$side]=$(awk '/^Public:/ { print $2 }' <<<"$out")
                [[ ${#sec[$side]} == 64 && ${#pub[$side]} == 64 ]] ||
                        { log "unexpected fastd --generate-key output"; return 1; }
        done
        for side in a b; do
                if [[ $side == a ]]; then
                        ip=$TUN_A under=$UNDER_A dev=$dev_a other=b
                else
                        ip=$TUN_B under=$UNDER_B dev=$dev_b other=a
                fi
                {
                        echo "log level info;"
                        echo "mode tap;"
                        echo "interface \"$dev\";"
                        echo "method \"$method\";"
                        echo "secret \"${sec[$side]}\";"
                        echo "bind $under:10000;"
                        echo "mtu $mtu;"
                        echo "on up sync \"ip link set dev \$INTERFACE up &&" \
                                "ip addr add $ip/24 dev \$INTERFACE\";"
                        echo "peer \"$other\" {"
                        echo "        key \"${pub[$other]}\";"
                        [[ $side == a ]] && echo "        remote $UNDER_B:10000;"
                        echo "}"
                } >"$dir/$side.conf"
                chmod 600 "$dir/$side.conf"
        done
}

PIN_A=() PIN_B=()
# start_pair VPN PORT CMD_A... -- CMD_B...: the common start sequence: B in NS_B (logging to
# RUN_DIR/b.log), a wait until it binds udp PORT, then A in NS_A; PID_A and PID_B set. PIN_A and
# PIN_B (arrays, may be empty) prefix each command (run.sh --pin).
start_pair() {
        local vpn=$1 port=$2 dir=$RUN_DIR
        shift 2
        local -a cmd_a=() cmd_b=()
        while (($#)) && [[ $1 != -- ]]; do cmd_a+=("$1"); shift; done
        shift
        cmd_b=("$@")
        bg_start PID_B "$vpn (B)" "$NS_B" "$dir/b.log" "${PIN_B[@]}" "${cmd_b[@]}"
        WAIT_ALIVE=("$PID_B")
        wait_until 20 "$vpn (B) to bind udp port $port" udp_bound "$NS_B" "$port" || return 1
        bg_start PID_A "$vpn (A)" "$NS_A" "$dir/a.log" "${PIN_A[@]}" "${cmd_a[@]}"
        WAIT_ALIVE=()
        return 0
}

# wait_until SECONDS DESCRIPTION CMD...: poll CMD every 0.1 s until it succeeds; fail (with
# a message) after SECONDS. Set WAIT_ALIVE to a list of pids that must stay alive meanwhile:
# the wait fails at once when one of them exits.
WAIT_ALIVE=()
wait_until() {
        local limit=$1 what=$2 deadline p
        shift 2
        deadline=$((SECONDS + limit))
        while :; do
                "$@" >/dev/null 2>&1 && return 0
                for p in "${WAIT_ALIVE[@]}"; do
                        if ! alive "$p"; then
                                log "while waiting for $what: ${BENCH_PID_NAME[$p]:-pid $p} exited"
                                return 1
                        fi
                done
                if ((SECONDS >= deadline)); then
                        log "timed out after ${limit}s waiting for $what"
                        return 1
                fi
                sleep 0.1
        done
}

# Conditions for wait_until.
udp_bound() { [[ -n $(nsx "$1" ss -lunH "sport = :$2") ]]; }
tcp_listening() { [[ -n $(nsx "$1" ss -ltnH "sport = :$2") ]]; }
link_exists() { nsx "$1" ip link show dev "$2" >/dev/null 2>&1; }
link_gone() { ! link_exists "$@"; }
log_has() { grep -qF -- "$2" "$1"; }
ping_once() { nsx "$1" ping -n -c 1 -W 1 "$2" >/dev/null 2>&1; }

# rss_kib PID: resident memory of PID in KiB (VmRSS), "null" when it is gone.
rss_kib() {
        awk '/^VmRSS:/ { print $2; found = 1 } END { if (!found) print "null" }' \
                "/proc/$1/status" 2>/dev/null || echo null
}

# cpu_ticks PID...: user+system clock ticks consumed so far by the given processes.
cpu_ticks() {
        local pid stat sum=0 f
        for pid in "$@"; do
                stat=$(cat "/proc/$pid/stat" 2>/dev/null) || continue
                stat=${stat##*) }
                read -r -a f <<<"$stat"
                # after the comm field: f[0]=state ... f[11]=utime f[12]=stime
                sum=$((sum + f[11] + f[12]))
        done
        echo "$sum"
}

# cpu_ns PID...: nanoseconds on a CPU so far, every thread of the given processes together
# (/proc/PID/task/TID/schedstat, the scheduler's own account: exact where clock ticks are 10 ms).
cpu_ns() {
        local pid f sum=0 t
        for pid in "$@"; do
                for f in /proc/"$pid"/task/*/schedstat; do
                        read -r t _ 2>/dev/null <"$f" || continue
                        sum=$((sum + t))
                done
        done
        echo "$sum"
}

# wakeups PID...: voluntary context switches so far (a thread went to sleep and was woken
# again), every thread of the given processes together.
wakeups() {
        local pid f sum=0 n
        for pid in "$@"; do
                for f in /proc/"$pid"/task/*/status; do
                        n=$(awk '/^voluntary_ctxt_switches:/ { print $2 }' "$f" 2>/dev/null) || continue
                        sum=$((sum + ${n:-0}))
                done
        done
        echo "$sum"
}

# udp_out_datagrams NS: UDP datagrams sent so far in namespace NS (/proc/net/snmp is per
# namespace). Shows that a VPN carries its data over UDP and not over a TCP side channel.
udp_out_datagrams() {
        # shellcheck disable=SC2016 # an awk program
        nsx "$1" awk '/^Udp:/ && $2 ~ /^[0-9]/ { print $5; exit }' /proc/net/snmp
}

# median VALUES...: the median of numeric values ("null" entries ignored); "null" if none.
median() {
        printf '%s\n' "$@" | grep -v '^null$' | sort -g |
                awk '{ v[NR] = $1 } END {
                        if (NR == 0) { print "null"; exit }
                        if (NR % 2) printf "%.6g\n", v[(NR + 1) / 2]
                        else printf "%.6g\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# measure_ping NS_CLIENT TARGET COUNT INTERVAL: prints "avg p50 p99 mdev loss_pct" (ms, %)
# from the individual replies; "null" fields when nothing came back.
measure_ping() {
        local ns=$1 target=$2 count=$3 interval=$4
        nsx "$ns" ping -n -c "$count" -i "$interval" -W 1 "$target" 2>/dev/null |
                awk -v count="$count" '
                /time=/ { for (i = 1; i <= NF; i++) if ($i ~ /^time=/) {
                                t = substr($i, 6); n++; v[n] = t; s += t; ss += t * t } }
                END {
                        if (n == 0) { print "null null null null 100"; exit }
                        # insertion sort: n is small
                        for (i = 2; i <= n; i++) { x = v[i]; j = i - 1
                                while (j > 0 && v[j] > x) { v[j + 1] = v[j]; j-- }
                                v[j + 1] = x }
                        avg = s / n
                        var = ss / n - avg * avg; if (var < 0) var = 0
                        # nearest-rank percentiles
                        r50 = int(0.50 * n); if (r50 < 0.50 * n) r50++
                        r99 = int(0.99 * n); if (r99 < 0.99 * n) r99++
                        printf "%.4f %.4f %.4f %.4f %.2f\n", avg, v[r50], v[r99], sqrt(var),
                                100 * (count - n) / count
                }'
}

# iperf_run NS_CLIENT NS_SERVER TARGET OUTFILE IPERF_CLIENT_ARGS...: one iperf3 test against
# a one-off server in NS_SERVER; the client's JSON goes to OUTFILE. Returns non-zero when
# the test did not complete. With --pin the client runs on side A's core and the server on
# side B's (PIN_A, PIN_B: a taskset prefix, or empty).
iperf_run() {
        local nsc=$1 nss=$2 target=$3 out=$4 spid rc=0
        shift 4
        bg_start spid "iperf3 server" "$nss" "$out.server" "${PIN_B[@]}" iperf3 -s -1 -B "$target"
        WAIT_ALIVE=("$spid")
        if ! wait_until 10 "iperf3 server on $target:5201" tcp_listening "$nss" 5201; then
                WAIT_ALIVE=()
                stop_pid "$spid" 2
                return 1
        fi
        WAIT_ALIVE=()
        timeout $((BENCH_TIME + 40)) ip netns exec "$nsc" "${PIN_A[@]}" \
                iperf3 -c "$target" -J --connect-timeout 5000 -t "$BENCH_TIME" "$@" >"$out" 2>"$out.stderr" ||
                rc=$?
        # the one-off server exits by itself after the test; bound the wait anyway
        stop_pid "$spid" 5 >/dev/null 2>&1
        if ((rc != 0)); then
                log "iperf3 $* to $target failed (exit $rc):" \
                        "$(jq -r '.error // empty' "$out" 2>/dev/null | head -c 300)"
                return 1
        fi
        return 0
}
