#!/bin/bash
# bench/run.sh: throughput and latency of ShadowMesh (with each of its offloads added one at a
# time) against bare veth, wireguard-go, tinc 1.0, fastd and OpenVPN, all between the same two
# network namespaces on this machine. A benchmark, not a
# test: it reports numbers and fails only when it cannot measure. See bench/README.md.
#
# usage: bench/run.sh [--build DIR] [--time SECONDS] [--only NAME,...] [--json FILE]
#                     [--repeat N] [--install] [--pin]
set -u -o pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/lib.sh
source "$REPO/bench/lib.sh"

# shadowmesh: every offload (network.offload: yes); the sm-* rows are the same daemon with parts
# turned off, one step at a time: sm-plain (network.offload: no), sm-vnet (TAP vnet header and
# TSO, segmented in userspace, nothing else), sm-gso (+ UDP GSO sends), sm-udpgro (+ UDP GRO
# receive), sm-1q (+ TCP coalescing towards the TAP); all of them with network.threads: 1.
# shadowmesh adds the threads: network.threads auto (one TAP queue and transmit thread per CPU
# the daemon may run on; with --pin that is one) and network.rx_workers auto (none below 4
# CPUs); sm-rxw is shadowmesh with one receive crypto worker (network.rx_workers: 1) whatever
# the CPUs.
ALL_VPNS=(veth shadowmesh sm-rxw sm-1q sm-udpgro sm-gso sm-vnet sm-plain wireguard-go tinc fastd
        openvpn)
SM_VARIANTS=(shadowmesh sm-rxw sm-1q sm-udpgro sm-gso sm-vnet sm-plain)

usage() {
        cat <<EOF
usage: bench/run.sh [--build DIR] [--time SECONDS] [--only NAME,...] [--json FILE]
                    [--repeat N] [--install] [--pin]

Measures, between two network namespaces joined by a veth pair: TCP with 1 and 4 streams,
UDP at an unlimited send rate (receiver throughput and loss) and ping RTT, for each of:
  ${ALL_VPNS[*]}

  --build DIR      meson build directory holding src/shadowmeshd (default: \$SHADOWMESHD,
                   else $REPO/build/src/shadowmeshd)
  --time SECONDS   length of each iperf3 test (default \$BENCH_TIME or 5)
  --only LIST      comma-separated subset of the names above
  --json FILE      where to write the JSON results (default bench/results-<date>.json)
  --repeat N       run every measurement N times and report the median (default 1)
  --install        apt-get install the packages that are missing instead of skipping them
  --pin            side A (its daemon and the iperf3 client) on CPU 0, side B (its daemon and
                   the iperf3 server) on CPU 1 (taskset): two one-core machines

Environment: BENCH_TIME, BENCH_PINGS (default 100), BENCH_PING_INTERVAL (default 0.02),
BENCH_IDLE_TIME (seconds of idle CPU and wake-ups measured after the tests, default 5),
BENCH_MTU (tunnel MTU, default 1380), BENCH_OPENVPN_CIPHER (default AES-256-GCM),
SHADOWMESHD (path of the daemon), BENCH_KEEP=1 (keep the work directory with configs,
logs and raw iperf3 JSON). Needs root.
EOF
}

BUILD_DIR=""
BENCH_TIME=${BENCH_TIME:-5}
BENCH_PINGS=${BENCH_PINGS:-100}
BENCH_PING_INTERVAL=${BENCH_PING_INTERVAL:-0.02}
BENCH_IDLE_TIME=${BENCH_IDLE_TIME:-5}
BENCH_MTU=${BENCH_MTU:-1380}
BENCH_OPENVPN_CIPHER=${BENCH_OPENVPN_CIPHER:-AES-256-GCM}
REPEAT=1
ONLY=""
JSON_OUT=""
INSTALL=0
PIN=0

while (($#)); do
        case $1 in
        --build) BUILD_DIR=${2:?--build needs a directory}; shift 2 ;;
        --build=*) BUILD_DIR=${1#*=}; shift ;;
        --time) BENCH_TIME=${2:?--time needs seconds}; shift 2 ;;
        --time=*) BENCH_TIME=${1#*=}; shift ;;
        --only) ONLY=${2:?--only needs a list}; shift 2 ;;
        --only=*) ONLY=${1#*=}; shift ;;
        --json) JSON_OUT=${2:?--json needs a file}; shift 2 ;;
        --json=*) JSON_OUT=${1#*=}; shift ;;
        --repeat) REPEAT=${2:?--repeat needs a count}; shift 2 ;;
        --repeat=*) REPEAT=${1#*=}; shift ;;
        --install) INSTALL=1; shift ;;
        --pin) PIN=1; shift ;;
        -h | --help) usage; exit 0 ;;
        *) usage >&2; exit 64 ;;
        esac
done

[[ $BENCH_TIME =~ ^[1-9][0-9]*$ ]] || die "--time must be a positive integer (got '$BENCH_TIME')"
[[ $REPEAT =~ ^[1-9][0-9]*$ ]] || die "--repeat must be a positive integer (got '$REPEAT')"
[[ $BENCH_PINGS =~ ^[1-9][0-9]*$ ]] || die "BENCH_PINGS must be a positive integer"
if ! [[ $BENCH_MTU =~ ^[0-9]+$ ]] || ((BENCH_MTU < 1280 || BENCH_MTU > 1400)); then
        die "BENCH_MTU must be within 1280..1400 (the underlay is a 1500-byte veth)"
fi

VPNS=()
if [[ -n $ONLY ]]; then
        IFS=, read -r -a want <<<"$ONLY"
        for w in "${want[@]}"; do
                [[ " ${ALL_VPNS[*]} " == *" $w "* ]] || die "unknown name '$w' (known: ${ALL_VPNS[*]})"
                VPNS+=("$w")
        done
else
        VPNS=("${ALL_VPNS[@]}")
fi

((EUID == 0)) || die "must run as root (it creates network namespaces)"

if [[ -n $BUILD_DIR ]]; then
        SMD=$BUILD_DIR/src/shadowmeshd
elif [[ -n ${SHADOWMESHD:-} ]]; then
        SMD=$SHADOWMESHD
else
        SMD=$REPO/build/src/shadowmeshd
fi

# ---------------------------------------------------------------------------------------------
# Packages
# ---------------------------------------------------------------------------------------------

# which package provides the program each part needs
declare -A PKG_OF=([ip]=iproute2 [ss]=iproute2 [ping]=iputils-ping [iperf3]=iperf3 [jq]=jq
        [openssl]=openssl [tincd]=tinc [fastd]=fastd [openvpn]=openvpn [timeout]=coreutils
        [wireguard-go]=wireguard-go [wg]=wireguard-tools [taskset]=util-linux)
declare -A NEEDS_OF=([veth]="" [shadowmesh]="" [sm-rxw]="" [sm-1q]="" [sm-udpgro]="" [sm-gso]="" [sm-vnet]="" [sm-plain]=""
        [wireguard-go]="wireguard-go wg" [tinc]=tincd [fastd]=fastd [openvpn]="openvpn openssl")

have() { command -v "$1" >/dev/null 2>&1; }

install_missing() {
        local prog pkgs=()
        for prog in "$@"; do
                have "$prog" || pkgs+=("${PKG_OF[$prog]}")
        done
        ((${#pkgs[@]})) || return 0
        log "installing: ${pkgs[*]}"
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${pkgs[@]}" >&2
}

base_progs=(ip ss ping iperf3 jq timeout)
want_progs=("${base_progs[@]}")
for v in "${VPNS[@]}"; do
        for p in ${NEEDS_OF[$v]}; do want_progs+=("$p"); done
done
((INSTALL)) && { install_missing "${want_progs[@]}" || die "apt-get install failed"; }
for p in "${base_progs[@]}"; do
        have "$p" || die "$p not found: apt-get install -y ${PKG_OF[$p]} (or run with --install)"
done

# --pin: a taskset prefix for side A's processes and one for side B's.
PIN_A=() PIN_B=()
if ((PIN)); then
        have taskset || die "taskset not found: apt-get install -y util-linux"
        (($(nproc) >= 2)) || die "--pin needs two CPUs"
        PIN_A=(taskset -c 0) PIN_B=(taskset -c 1)
fi

# ---------------------------------------------------------------------------------------------
# Topology: two namespaces, one veth pair, underlay 10.98.0.1/24 <-> 10.98.0.2/24
# ---------------------------------------------------------------------------------------------

NS_A=smbench-a-$$
NS_B=smbench-b-$$
VETH_A=smbva$$
VETH_B=smbvb$$
UNDER_A=10.98.0.1
UNDER_B=10.98.0.2
TUN_A=10.0.0.1
TUN_B=10.0.0.2
WORK=""
bench_topology smbench

# ---------------------------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------------------------

METRICS=(tcp1_mbps tcp4_mbps udp_mbps udp_sent_mbps udp_loss_pct ping_avg_ms ping_p50_ms
        ping_p99_ms ping_mdev_ms ping_loss_pct ping_cpu_us tcp1_vpn_cpu_pct tcp4_vpn_cpu_pct udp_vpn_cpu_pct
        tcp1_underlay_udp_datagrams tcp1_cpu_pct_per_gbps idle_rss_kib idle_cpu_us_per_s
        idle_wakeups_per_s)
declare -A R=()          # "<vpn>.<metric>" -> number or null
declare -A STATUS=()     # ok | skipped | failed
declare -A NOTE=()       # why skipped/failed, or remarks
declare -A VERSION=()
declare -A CONFIG=()     # one-line description of the configuration used
declare -A DEV_MTU=()    # MTU of the interface the traffic used
declare -A EXTRA=()      # JSON object merged into the VPN's result

declare -A RAW=()         # "<vpn>.<metric>" -> the runs' values, space-separated
declare -A SAMPLES=()     # "<vpn>.<metric>" -> JSON array of the runs' values

val() { echo "${R[$1.$2]:-null}"; }

# add VPN METRIC VALUE: record one run's value
add() { RAW[$1.$2]+="$3 "; }

# summarize VPN: the median of the runs into R, the runs into SAMPLES
summarize() {
        local vpn=$1 m v
        local -a vals
        for m in "${METRICS[@]}"; do
                read -r -a vals <<<"${RAW[$vpn.$m]:-}"
                R[$vpn.$m]=$(median "${vals[@]}")
                v=$(printf '%s,' "${vals[@]}")
                SAMPLES[$vpn.$m]="[${v%,}]"
        done
}

CLK_TCK=$(getconf CLK_TCK)

now() { date +%s.%N; }

# cpu_pct TICKS WALL: percent of one core used over WALL seconds
cpu_pct() { awk -v t="$1" -v w="$2" -v hz="$CLK_TCK" 'BEGIN { printf "%.1f\n", 100 * t / hz / w }'; }

# measure VPN RUN TARGET PID...: one run of every measurement from NS_A to TARGET in NS_B;
# PIDs are the VPN's processes (for CPU accounting; none for bare veth). Returns non-zero
# when a measurement failed.
measure() {
        local vpn=$1 run=$2 target=$3 t0 c0=0 u0 w ticks out kind mbps cpu a b c d e rc=0
        shift 3
        local pids=("$@")
        local udp_len=$((BENCH_MTU - 28))       # largest UDP payload that fits the tunnel MTU
        local -a args

        log "$vpn: run $run/$REPEAT: ping x$BENCH_PINGS"
        ((${#pids[@]})) && c0=$(cpu_ns "${pids[@]}")
        read -r a b c d e < <(measure_ping "$NS_A" "$target" "$BENCH_PINGS" "$BENCH_PING_INTERVAL")
        # Both daemons' CPU time per answered ping (a round trip: each side seals one message
        # and opens one), in microseconds: what a ping costs, without the wake-up latencies
        # that make its time scatter from run to run.
        cpu=null
        ((${#pids[@]})) && [[ $e != 100 ]] &&
                cpu=$(awk -v d="$(($(cpu_ns "${pids[@]}") - c0))" -v n="$BENCH_PINGS" -v l="$e" \
                        'BEGIN { printf "%.1f\n", d / 1000 / (n * (1 - l / 100)) }')
        add "$vpn" ping_cpu_us "$cpu"
        add "$vpn" ping_avg_ms "$a"
        add "$vpn" ping_p50_ms "$b"
        add "$vpn" ping_p99_ms "$c"
        add "$vpn" ping_mdev_ms "$d"
        add "$vpn" ping_loss_pct "$e"

        for kind in tcp1 tcp4 udp; do
                out=$WORK/$vpn.$kind.$run.json
                # -O 1: leave TCP's slow start out; not for UDP, whose loss accounting
                # iperf3 gets wrong with omitted intervals
                case $kind in
                tcp1) args=(-O 1) ;;
                tcp4) args=(-O 1 -P 4) ;;
                udp) args=(-u -b 0 -l "$udp_len") ;;
                esac
                log "$vpn: run $run/$REPEAT: iperf3 $kind (${BENCH_TIME}s)"
                ticks="" cpu=null
                ((${#pids[@]})) && c0=$(cpu_ticks "${pids[@]}")
                u0=$(udp_out_datagrams "$NS_A")
                t0=$(now)
                if ! iperf_run "$NS_A" "$NS_B" "$target" "$out" "${args[@]}"; then
                        NOTE[$vpn]+="iperf3 $kind failed in run $run; "
                        rc=1
                        continue
                fi
                w=$(awk -v a="$t0" -v b="$(now)" 'BEGIN { print b - a }')
                ((${#pids[@]})) && ticks=$(($(cpu_ticks "${pids[@]}") - c0))
                [[ -n $ticks ]] && cpu=$(cpu_pct "$ticks" "$w")
                mbps=$(jq '.end.sum_received.bits_per_second / 1e6' "$out")
                add "$vpn" "${kind}_mbps" "$mbps"
                add "$vpn" "${kind}_vpn_cpu_pct" "$cpu"
                # Both daemons' CPU (% of one core) per Gbit/s of one TCP stream.
                [[ $kind == tcp1 ]] && add "$vpn" tcp1_cpu_pct_per_gbps "$(awk -v c="$cpu" -v m="$mbps" \
                        'BEGIN { if (c == "null" || m <= 0) print "null"; else printf "%.1f\n", c / (m / 1000) }')"
                case $kind in
                tcp1)
                        add "$vpn" tcp1_underlay_udp_datagrams \
                                "$(($(udp_out_datagrams "$NS_A") - u0))"
                        ;;
                udp)
                        add "$vpn" udp_sent_mbps "$(jq '.end.sum_sent.bits_per_second / 1e6' "$out")"
                        add "$vpn" udp_loss_pct "$(jq '.end.sum_received.lost_percent' "$out")"
                        ;;
                esac
        done

        # Idle: BENCH_IDLE_TIME seconds without traffic after the tests; per daemon (the mean
        # of the two), CPU time and wake-ups per second: what an idle tunnel costs a laptop.
        if ((${#pids[@]})); then
                log "$vpn: run $run/$REPEAT: idle ${BENCH_IDLE_TIME}s"
                c0=$(cpu_ns "${pids[@]}") w=$(wakeups "${pids[@]}") t0=$(now)
                sleep "$BENCH_IDLE_TIME" # the window measured, not a wait for a condition
                add "$vpn" idle_cpu_us_per_s "$(awk -v d="$(($(cpu_ns "${pids[@]}") - c0))" \
                        -v n="${#pids[@]}" -v a="$t0" -v b="$(now)" \
                        'BEGIN { printf "%.0f\n", d / 1000 / n / (b - a) }')"
                add "$vpn" idle_wakeups_per_s "$(awk -v d="$(($(wakeups "${pids[@]}") - w))" \
                        -v n="${#pids[@]}" -v a="$t0" -v b="$(now)" \
                        'BEGIN { printf "%.1f\n", d / n / (b - a) }')"
        fi
        return "$rc"
}

# ---------------------------------------------------------------------------------------------
# The VPNs. Each <vpn>_start writes its config under $RUN_DIR (fresh keys for every run),
# starts the passive side (B), waits until B's socket is bound, starts the active side (A),
# and sets PID_A PID_B DEV_A DEV_B.
# Every one: a TAP device with MTU $BENCH_MTU, 10.0.0.1/24 in A and 10.0.0.2/24 in B, UDP
# transport over the underlay, A initiates.
# ---------------------------------------------------------------------------------------------

PID_A="" PID_B="" DEV_A="" DEV_B=""



# --- ShadowMesh: shared-key mode (Noise_NNpsk0), ChaCha20-Poly1305 ---------------------------

shadowmesh_check() {
        [[ -x $SMD ]] || {
                echo "shadowmeshd not found at $SMD (build it: meson setup build &&" \
                        "ninja -C build; or pass --build DIR / set SHADOWMESHD)"
                return 1
        }
}

# sm_start VPN OFFLOAD DISABLE THREADS [RX_WORKERS]: ShadowMesh with network.offload OFFLOAD
# (yes/no), SHADOWMESHD_OFFLOAD_DISABLE=DISABLE (the parts of the offloads turned off),
# network.threads THREADS and network.rx_workers RX_WORKERS (default auto).
sm_start() {
        local vpn=$1 offload=$2 disable=$3 threads=$4 rx_workers=${5:-auto} dir=$RUN_DIR
        mkdir -p "$dir"
        DEV_A=sma$$ DEV_B=smb$$
        sm_configs "$dir" "$(hexkey32)" "$DEV_A" "$DEV_B" "$BENCH_MTU" "$offload" "$threads" "$rx_workers"
        VERSION[$vpn]=$("$SMD" --version 2>&1 | head -n1)
        CONFIG[$vpn]="shared-key mode (Noise_NNpsk0, ChaCha20-Poly1305), TAP mtu $BENCH_MTU,"
        CONFIG[$vpn]+=" network.offload $offload${disable:+, SHADOWMESHD_OFFLOAD_DISABLE=$disable},"
        CONFIG[$vpn]+=" network.threads $threads, network.rx_workers $rx_workers,"
        CONFIG[$vpn]+=" UDP 9001, A initiates"
        start_pair "$vpn" 9001 \
                env SHADOWMESHD_OFFLOAD_DISABLE="$disable" "$SMD" --instance "smbench-a-$$" "$dir/a.yaml" -- \
                env SHADOWMESHD_OFFLOAD_DISABLE="$disable" "$SMD" --instance "smbench-b-$$" "$dir/b.yaml"
}
shadowmesh_start() { sm_start shadowmesh yes "" auto; }
sm_rxw_start() { sm_start sm-rxw yes "" auto 1; }
sm_1q_start() { sm_start sm-1q yes "" 1; }
sm_udpgro_start() { sm_start sm-udpgro yes tcp-gro 1; }
sm_gso_start() { sm_start sm-gso yes udp-gro,tcp-gro 1; }
sm_vnet_start() { sm_start sm-vnet yes udp-gso,udp-gro,tcp-gro 1; }
sm_plain_start() { sm_start sm-plain no "" 1; }
sm_rxw_check() { shadowmesh_check; }
sm_1q_check() { shadowmesh_check; }
sm_udpgro_check() { shadowmesh_check; }
sm_gso_check() { shadowmesh_check; }
sm_vnet_check() { shadowmesh_check; }
sm_plain_check() { shadowmesh_check; }

# --- wireguard-go: Debian's userspace WireGuard on a TUN device (layer 3) ---------------------

wireguard_go_check() {
        have wireguard-go || { echo "wireguard-go not installed (apt-get install -y wireguard-go, or --install)"; return 1; }
        have wg || { echo "wg not installed (apt-get install -y wireguard-tools, or --install)"; return 1; }
}

# wg_side SIDE: start wireguard-go for SIDE (a or b) and configure its device with wg(8).
# -f keeps it in the foreground, so the pid is the daemon's; Debian's 2022 build refuses to
# run on Linux (where the kernel module exists) without the variable.
wg_side() {
        local side=$1 dir=$RUN_DIR ns dev ip other pid
        if [[ $side == a ]]; then
                ns=$NS_A dev=$DEV_A ip=$TUN_A other=b
                bg_start PID_A "wireguard-go (A)" "$ns" "$dir/a.log" "${PIN_A[@]}" \
                        env WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD=1 wireguard-go -f "$dev"
                pid=$PID_A
        else
                ns=$NS_B dev=$DEV_B ip=$TUN_B other=a
                bg_start PID_B "wireguard-go (B)" "$ns" "$dir/b.log" "${PIN_B[@]}" \
                        env WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD=1 wireguard-go -f "$dev"
                pid=$PID_B
        fi
        WAIT_ALIVE=("$pid")
        wait_until 10 "wireguard-go ($side) to create $dev" link_exists "$ns" "$dev" || return 1
        wait_until 10 "wireguard-go ($side) control socket" test -S "/var/run/wireguard/$dev.sock" ||
                return 1
        WAIT_ALIVE=()
        local -a peer=(peer "$(cat "$dir/$other.pub")" allowed-ips "${ip%.*}.0/24")
        [[ $side == a ]] && peer+=(endpoint "$UNDER_B:51820")
        nsx "$ns" wg set "$dev" private-key "$dir/$side.key" listen-port 51820 "${peer[@]}" ||
                return 1
        nsx "$ns" ip addr add "$ip/24" dev "$dev" &&
                nsx "$ns" ip link set dev "$dev" mtu "$BENCH_MTU" up
}

wireguard_go_start() {
        local dir=$RUN_DIR side
        mkdir -p "$dir"
        DEV_A=wga$$ DEV_B=wgb$$
        for side in a b; do
                (umask 077 && wg genkey >"$dir/$side.key") || { log "wg genkey failed"; return 1; }
                wg pubkey <"$dir/$side.key" >"$dir/$side.pub" || return 1
        done
        VERSION[wireguard-go]="wireguard-go $(dpkg-query -W -f '${Version}' wireguard-go 2>/dev/null)"
        CONFIG[wireguard-go]="Debian's wireguard-go (userspace, TUN: layer 3), mtu $BENCH_MTU,"
        CONFIG[wireguard-go]+=" keys from wg genkey, UDP 51820, only A has an endpoint"
        wg_side b || return 1
        wait_until 10 "wireguard-go (B) to bind udp port 51820" udp_bound "$NS_B" 51820 || return 1
        wg_side a
}

# --- tinc 1.0: Mode = switch, aes-256-cbc + HMAC-SHA256 (16-byte MAC) ------------------------

tinc_check() {
        have tincd || { echo "tincd not installed (apt-get install -y tinc, or --install)"; return 1; }
}

tinc_start() {
        local dir=$RUN_DIR side other ip under dev
        DEV_A=tia$$ DEV_B=tib$$
        for side in a b; do
                if [[ $side == a ]]; then
                        ip=$TUN_A under=$UNDER_A dev=$DEV_A
                else
                        ip=$TUN_B under=$UNDER_B dev=$DEV_B
                fi
                mkdir -p "$dir/$side/hosts"
                {
                        echo "Name = $side"
                        echo "Mode = switch"
                        echo "Interface = $dev"
                        echo "AddressFamily = ipv4"
                        echo "BindToAddress = $under"
                        echo "Port = 655"
                        [[ $side == a ]] && echo "ConnectTo = b"
                } >"$dir/$side/tinc.conf"
                {
                        echo "Address = $under"
                        echo "Port = 655"
                        echo "Cipher = aes-256-cbc"
                        echo "Digest = sha256"
                        echo "MACLength = 16"
                        echo "Compression = 0"
                        echo "PMTUDiscovery = no"
                } >"$dir/$side/hosts/$side"
                cat >"$dir/$side/tinc-up" <<EOF
#!/bin/sh
ip link set dev "\$INTERFACE" mtu $BENCH_MTU up
ip addr add $ip/24 dev "\$INTERFACE"
EOF
                chmod 755 "$dir/$side/tinc-up"
                # appends the public key to hosts/<side>
                tincd -c "$dir/$side" -K 2048 </dev/null >"$dir/$side/keygen.log" 2>&1 ||
                        { log "tincd -K failed: $(tail -n3 "$dir/$side/keygen.log")"; return 1; }
        done
        for side in a b; do
                other=$([[ $side == a ]] && echo b || echo a)
                cp "$dir/$other/hosts/$other" "$dir/$side/hosts/$other"
        done
        VERSION[tinc]=$(tincd --version 2>&1 | head -n1)
        CONFIG[tinc]="Mode = switch (TAP mtu $BENCH_MTU via tinc-up), RSA-2048 keys from tincd -K,"
        CONFIG[tinc]+=" Cipher aes-256-cbc, Digest sha256, MACLength 16, Compression 0,"
        CONFIG[tinc]+=" PMTUDiscovery no, UDP 655, A ConnectTo b"
        start_pair tinc 655 \
                tincd -D -d1 -c "$dir/a" --pidfile="$dir/a/tinc.pid" -- \
                tincd -D -d1 -c "$dir/b" --pidfile="$dir/b/tinc.pid"
}

# --- fastd: mode tap, salsa2012+umac ----------------------------------------------------------

fastd_check() {
        have fastd || { echo "fastd not installed (apt-get install -y fastd, or --install)"; return 1; }
}

FASTD_METHOD=salsa2012+umac

fastd_start() {
        local dir=$RUN_DIR
        mkdir -p "$dir"
        DEV_A=fda$$ DEV_B=fdb$$
        fastd_configs "$dir" "$DEV_A" "$DEV_B" "$BENCH_MTU" "$FASTD_METHOD" || return 1
        VERSION[fastd]=$(fastd --version 2>&1 | head -n1)
        CONFIG[fastd]="mode tap, method $FASTD_METHOD, mtu $BENCH_MTU, keys from fastd --generate-key,"
        CONFIG[fastd]+=" UDP 10000, only A has a remote"
        start_pair fastd 10000 \
                fastd -c "$dir/a.conf" -- \
                fastd -c "$dir/b.conf"
}

# --- OpenVPN: p2p TLS with self-signed certificates pinned by fingerprint, dev tap -----------

openvpn_check() {
        have openvpn || { echo "openvpn not installed (apt-get install -y openvpn, or --install)"; return 1; }
        have openssl || { echo "openssl not installed (apt-get install -y openssl, or --install)"; return 1; }
}

openvpn_start() {
        local dir=$RUN_DIR side other ip under dev
        local -A fp=()
        mkdir -p "$dir"
        DEV_A=ova$$ DEV_B=ovb$$
        for side in a b; do
                openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
                        -keyout "$dir/$side.key" -out "$dir/$side.crt" -days 2 \
                        -subj "/CN=smbench-$side" >"$dir/$side.certgen.log" 2>&1 ||
                        { log "openssl req failed: $(tail -n3 "$dir/$side.certgen.log")"; return 1; }
                fp[$side]=$(openssl x509 -noout -fingerprint -sha256 -in "$dir/$side.crt" | cut -d= -f2)
        done
        for side in a b; do
                if [[ $side == a ]]; then
                        ip=$TUN_A under=$UNDER_A dev=$DEV_A other=b
                else
                        ip=$TUN_B under=$UNDER_B dev=$DEV_B other=a
                fi
                {
                        echo "dev $dev"
                        echo "dev-type tap"
                        echo "disable-dco"
                        echo "proto udp4"
                        echo "local $under"
                        echo "lport 1194"
                        if [[ $side == a ]]; then
                                echo "remote $UNDER_B 1194"
                                echo "tls-client"
                        else
                                echo "tls-server"
                                echo "dh none"
                        fi
                        echo "cert $dir/$side.crt"
                        echo "key $dir/$side.key"
                        echo "peer-fingerprint ${fp[$other]}"
                        echo "data-ciphers $BENCH_OPENVPN_CIPHER"
                        echo "tun-mtu $BENCH_MTU"
                        echo "ifconfig $ip 255.255.255.0"
                        echo "verb 3"
                } >"$dir/$side.conf"
        done
        VERSION[openvpn]=$(openvpn --version 2>&1 | head -n1)
        CONFIG[openvpn]="p2p TLS (self-signed P-256 certs pinned with peer-fingerprint),"
        CONFIG[openvpn]+=" data-ciphers $BENCH_OPENVPN_CIPHER, dev-type tap, tun-mtu $BENCH_MTU,"
        CONFIG[openvpn]+=" disable-dco, UDP 1194, only A has a remote"
        start_pair openvpn 1194 \
                openvpn --config "$dir/a.conf" -- \
                openvpn --config "$dir/b.conf"
}

# ---------------------------------------------------------------------------------------------

show_logs() {
        local vpn=$1 f
        for f in "$RUN_DIR"/a.log "$RUN_DIR"/b.log; do
                [[ -s $f ]] || continue
                log "--- last lines of $vpn ${f##*/}:"
                tail -n 15 "$f" | sed 's/^/    /' >&2
        done
}

stop_vpn() {
        local vpn=$1 dev rca=0 rcb=0
        [[ -n $PID_A ]] && { stop_pid "$PID_A" 10 >/dev/null 2>&1 || rca=$?; }
        [[ -n $PID_B ]] && { stop_pid "$PID_B" 10 >/dev/null 2>&1 || rcb=$?; }
        # 143: ended by the SIGTERM itself (fastd re-raises it), as clean as 0
        if ! ((rca == 0 || rca == 143)) || ! ((rcb == 0 || rcb == 143)); then
                NOTE[$vpn]+="exit status on SIGTERM: A $rca, B $rcb; "
        fi
        # a daemon's TAP disappears with it; make sure before the next VPN reuses 10.0.0.0/24
        for dev in "$NS_A:$DEV_A" "$NS_B:$DEV_B"; do
                [[ -n ${dev#*:} ]] || continue
                if ! wait_until 5 "${dev#*:} to go away" link_gone "${dev%%:*}" "${dev#*:}"; then
                        NOTE[$vpn]+="left ${dev#*:} behind after exit; "
                        nsx "${dev%%:*}" ip link del "${dev#*:}" 2>/dev/null
                fi
        done
        PID_A="" PID_B="" DEV_A="" DEV_B=""
}

run_veth() { # run_veth RUN
        VERSION[veth]="kernel $(uname -r)"
        DEV_MTU[veth]=$(nsx "$NS_A" cat "/sys/class/net/$VETH_A/mtu")
        CONFIG[veth]="veth pair, underlay addresses $UNDER_A -> $UNDER_B, mtu ${DEV_MTU[veth]}"
        measure veth "$1" "$UNDER_B"
}

run_vpn() { # run_vpn VPN RUN: start VPN, measure once, stop it
        local vpn=$1 run=$2 rc=0
        RUN_DIR=$WORK/$vpn.run$run
        mkdir -p "$RUN_DIR"
        log "$vpn: run $run/$REPEAT: starting"
        if ! "${vpn//-/_}_start"; then
                NOTE[$vpn]+="did not start in run $run; "
                show_logs "$vpn"
                stop_vpn "$vpn"
                return 1
        fi
        WAIT_ALIVE=("$PID_A" "$PID_B")
        if ! wait_until 60 "$vpn tunnel ($TUN_A -> $TUN_B answers ping)" ping_once "$NS_A" "$TUN_B"; then
                WAIT_ALIVE=()
                NOTE[$vpn]+="tunnel never passed a ping in run $run; "
                show_logs "$vpn"
                stop_vpn "$vpn"
                return 1
        fi
        WAIT_ALIVE=()
        DEV_MTU[$vpn]=$(nsx "$NS_A" cat "/sys/class/net/$DEV_A/mtu" 2>/dev/null || echo null)
        [[ ${DEV_MTU[$vpn]} == "$BENCH_MTU" ]] ||
                NOTE[$vpn]+="tunnel device mtu is ${DEV_MTU[$vpn]}, not $BENCH_MTU; "
        log "$vpn: run $run/$REPEAT: tunnel up (${DEV_A} mtu ${DEV_MTU[$vpn]})"
        # Idle memory: the larger of the two daemons' resident sets, tunnel up, no traffic yet.
        local ra rb
        ra=$(rss_kib "$PID_A") rb=$(rss_kib "$PID_B")
        add "$vpn" idle_rss_kib "$(printf '%s\n' "$ra" "$rb" | grep -v null | sort -n | tail -n1)"
        measure "$vpn" "$run" "$TUN_B" "$PID_A" "$PID_B" || rc=1
        if ! alive "$PID_A" || ! alive "$PID_B"; then
                NOTE[$vpn]+="a daemon died during the measurements of run $run; "
                show_logs "$vpn"
                rc=1
        fi
        stop_vpn "$vpn"
        if [[ $vpn == openvpn && $run == 1 ]]; then
                NOTE[$vpn]+="$(grep -o "Data Channel: cipher '[^']*'" "$RUN_DIR/a.log" | tail -n1); "
        fi
        # ShadowMesh's own counters (printed at exit): a drop or a bad tag shows up here
        if [[ " ${SM_VARIANTS[*]} " == *" $vpn "* ]]; then
                SM_STATS+=("$(jq -n --argjson run "$run" \
                        --arg a "$(grep -o 'stats: .*' "$RUN_DIR/a.log" | tail -n1)" \
                        --arg b "$(grep -o 'stats: .*' "$RUN_DIR/b.log" | tail -n1)" \
                        --arg vpn "$vpn" '{vpn: $vpn, run: $run, a: $a, b: $b}')")
        fi
        return "$rc"
}

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
awk '{ exit !($1 > 0.5) }' /proc/loadavg &&
        log "warning: the machine is busy (load average $LOAD_START): the numbers will be noisy"
START_DATE=$(date -u +%Y-%m-%dT%H:%M:%SZ)
log "namespaces $NS_A / $NS_B, ${BENCH_TIME}s per iperf3 test, tunnel mtu $BENCH_MTU, repeat $REPEAT"

RUN_DIR=""
SM_STATS=()
declare -A OK_RUNS=()
RUNNABLE=()
for vpn in "${VPNS[@]}"; do
        if [[ $vpn != veth ]] && ! why=$("${vpn//-/_}_check"); then
                STATUS[$vpn]=skipped NOTE[$vpn]=$why
                log "$vpn: skipped: $why"
                continue
        fi
        RUNNABLE+=("$vpn")
        OK_RUNS[$vpn]=0
done
# Round robin: every repeat measures each VPN once, so a change in background load during
# the run is spread over all of them instead of hitting whichever came last.
for ((run = 1; run <= REPEAT; run++)); do
        for vpn in "${RUNNABLE[@]}"; do
                if [[ $vpn == veth ]]; then
                        run_veth "$run" && OK_RUNS[$vpn]=$((OK_RUNS[$vpn] + 1))
                else
                        run_vpn "$vpn" "$run" && OK_RUNS[$vpn]=$((OK_RUNS[$vpn] + 1))
                fi
        done
done
for vpn in "${RUNNABLE[@]}"; do
        summarize "$vpn"
        if ((OK_RUNS[$vpn] == REPEAT)); then
                STATUS[$vpn]=ok
        elif [[ $(val "$vpn" tcp1_mbps) != null || $(val "$vpn" ping_avg_ms) != null ]]; then
                STATUS[$vpn]=ok NOTE[$vpn]+="only ${OK_RUNS[$vpn]} of $REPEAT runs complete; "
        else
                STATUS[$vpn]=failed
        fi
done
((${#SM_STATS[@]})) &&
        EXTRA[shadowmesh]=$(printf '%s\n' "${SM_STATS[@]}" | jq -s '{daemon_stats_at_exit: .}')
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)

# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------


# ratio VPN METRIC: VPN's value over ShadowMesh's, or "n/a"
ratio() {
        local v s
        v=$(val "$1" "$2") s=$(val shadowmesh "$2")
        if [[ $v == null || $s == null || ${STATUS[shadowmesh]:-} != ok ]]; then
                echo n/a
        else
                awk -v v="$v" -v s="$s" 'BEGIN { if (s == 0) print "n/a"; else printf "%.2f\n", v / s }'
        fi
}

fmt() { # fmt VALUE DECIMALS
        [[ $1 == null ]] && { echo "-"; return; }
        awk -v v="$1" -v d="$2" 'BEGIN { printf "%.*f\n", d, v }'
}

cell() { # cell VPN METRIC DECIMALS: "value (ratio)"
        local v
        v=$(fmt "$(val "$1" "$2")" "$3")
        printf '%s (%s)' "$v" "$(ratio "$1" "$2")"
}

row() {
        local vpn=$1
        if [[ ${STATUS[$vpn]:-} != ok && ${STATUS[$vpn]:-} != "" ]] &&
                [[ $(val "$vpn" tcp1_mbps) == null ]]; then
                printf '%-12s %s: %s\n' "$vpn" "${STATUS[$vpn]}" "${NOTE[$vpn]:-}"
                return
        fi
        printf '%-12s %-18s %-18s %-18s %7s %-15s %8s %8s %8s %8s\n' "$vpn" \
                "$(cell "$vpn" tcp1_mbps 0)" "$(cell "$vpn" tcp4_mbps 0)" \
                "$(cell "$vpn" udp_mbps 0)" "$(fmt "$(val "$vpn" udp_loss_pct)" 1)" \
                "$(cell "$vpn" ping_avg_ms 3)" "$(fmt "$(val "$vpn" ping_p99_ms)" 3)" \
                "$(fmt "$(val "$vpn" tcp1_vpn_cpu_pct)" 0)" \
                "$(fmt "$(val "$vpn" tcp1_cpu_pct_per_gbps)" 0)" \
                "$(fmt "$(awk -v k="$(val "$vpn" idle_rss_kib)" 'BEGIN { print (k == "null" ? "null" : k / 1024) }')" 1)"
}

# targets: issue 12's goals, from this run's medians.
targets() {
        local best="" bv=0 v
        for v in wireguard-go tinc fastd openvpn; do
                [[ $(val "$v" tcp1_mbps) == null ]] && continue
                if awk -v a="$(val "$v" tcp1_mbps)" -v b="$bv" 'BEGIN { exit !(a > b) }'; then
                        best=$v bv=$(val "$v" tcp1_mbps)
                fi
        done
        [[ $(val shadowmesh tcp1_mbps) == null ]] && return
        [[ -n $best ]] && awk -v s="$(val shadowmesh tcp1_mbps)" -v b="$bv" -v n="$best" \
                'BEGIN { printf "target TCP-1 >= 3x the best other VPN (%s): %.2fx\n", n, s / b }'
        if [[ $(val fastd tcp1_cpu_pct_per_gbps) != null && $(val shadowmesh tcp1_cpu_pct_per_gbps) != null ]]; then
                awk -v s="$(val shadowmesh tcp1_cpu_pct_per_gbps)" -v f="$(val fastd tcp1_cpu_pct_per_gbps)" \
                        'BEGIN { printf "target CPU per Gbit/s <= 0.5x fastd'"'"'s: %.2fx (%.0f vs %.0f %%core/Gbit/s)\n", s / f, s, f }'
        fi
        if [[ $(val fastd ping_avg_ms) != null && $(val shadowmesh ping_avg_ms) != null ]]; then
                awk -v s="$(val shadowmesh ping_avg_ms)" -v f="$(val fastd ping_avg_ms)" \
                        'BEGIN { printf "target ping <= fastd'"'"'s: %.3f vs %.3f ms (%.2fx)\n", s, f, s / f }'
        fi
        if [[ $(val fastd ping_cpu_us) != null && $(val shadowmesh ping_cpu_us) != null ]]; then
                awk -v s="$(val shadowmesh ping_cpu_us)" -v f="$(val fastd ping_cpu_us)" \
                        'BEGIN { printf "ping CPU (both daemons, per round trip): %.1f vs fastd'"'"'s %.1f us (%.2fx)\n", s, f, s / f }'
        fi
        [[ $(val shadowmesh idle_rss_kib) != null ]] && awk -v k="$(val shadowmesh idle_rss_kib)" \
                'BEGIN { printf "target idle RSS <= 16 MiB per instance: %.1f MiB\n", k / 1024 }'
}

echo
printf 'ShadowMesh benchmark  %s  %s, %s CPUs, %ss per test, tunnel MTU %s, median of %s run(s)\n' \
        "$START_DATE" "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')" \
        "$(nproc)" "$BENCH_TIME" "$BENCH_MTU" "$REPEAT"
printf '%-12s %-18s %-18s %-18s %7s %-15s %8s %8s %8s %8s\n' "" "TCP x1 Mbit/s" "TCP x4 Mbit/s" \
        "UDP rx Mbit/s" "UDP" "ping avg ms" "ping p99" "VPN CPU" "CPU per" "idle RSS"
printf '%-12s %-18s %-18s %-18s %7s %-15s %8s %8s %8s %8s\n' "" "(ratio to SM)" "(ratio to SM)" \
        "(ratio to SM)" "loss %" "(ratio to SM)" "ms" "% TCP1" "Gbit/s" "MiB"
for vpn in "${SM_VARIANTS[@]}" wireguard-go tinc fastd openvpn; do
        [[ " ${VPNS[*]} " == *" $vpn "* ]] && row "$vpn"
done
if [[ " ${VPNS[*]} " == *" veth "* ]]; then
        printf -- '- bare veth, no VPN (MTU %s) -\n' "${DEV_MTU[veth]:-?}"
        row veth
fi
echo "load average: $LOAD_START at start, $LOAD_END at the end"
((PIN)) && echo "pinned: side A (daemon, iperf3 client) on CPU 0, side B (daemon, iperf3 server) on CPU 1"
targets
printf 'idle, per daemon (%s s without traffic after the tests): CPU us/s, wake-ups/s\n' \
        "$BENCH_IDLE_TIME"
for vpn in "${SM_VARIANTS[@]}" wireguard-go tinc fastd openvpn; do
        [[ " ${VPNS[*]} " == *" $vpn "* && $(val "$vpn" idle_cpu_us_per_s) != null ]] &&
                printf '  %-12s %6s %6s\n' "$vpn" "$(fmt "$(val "$vpn" idle_cpu_us_per_s)" 0)" \
                        "$(fmt "$(val "$vpn" idle_wakeups_per_s)" 1)"
done
for vpn in "${VPNS[@]}"; do
        [[ -n ${NOTE[$vpn]:-} && ${STATUS[$vpn]:-} == ok ]] && printf 'note: %s: %s\n' "$vpn" "${NOTE[$vpn]}"
done
[[ " ${VPNS[*]} " == *" shadowmesh "* && ${STATUS[shadowmesh]:-} == ok ]] ||
        echo "note: no ShadowMesh result, so no ratios (n/a)"

# JSON
if [[ -z $JSON_OUT ]]; then
        JSON_OUT=$REPO/bench/results-$(date +%Y-%m-%d).json
fi
{
        jq -n \
                --arg date "$START_DATE" \
                --arg cpu "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')" \
                --argjson cpus "$(nproc)" \
                --arg kernel "$(uname -r)" \
                --arg debian "$(cat /etc/debian_version 2>/dev/null || echo unknown)" \
                --arg load_start "$LOAD_START" --arg load_end "$LOAD_END" \
                --arg iperf3 "$(iperf3 --version 2>&1 | head -n1)" \
                --argjson time "$BENCH_TIME" --argjson mtu "$BENCH_MTU" \
                --argjson udp_len "$((BENCH_MTU - 28))" --argjson pings "$BENCH_PINGS" \
                --argjson ping_interval "$BENCH_PING_INTERVAL" --argjson repeat "$REPEAT" \
                --argjson pinned "$PIN" \
                '{date: $date,
                  host: {cpu: $cpu, cpus: $cpus, kernel: $kernel, debian: $debian,
                         loadavg_start: $load_start, loadavg_end: $load_end},
                  settings: {iperf3: $iperf3, seconds_per_test: $time, omit_seconds: 1,
                             tunnel_mtu: $mtu, udp_payload_bytes: $udp_len,
                             udp_target_rate: "unlimited (-b 0)", pings: $pings,
                             ping_interval_s: $ping_interval, repeat: $repeat,
                             pinned: ($pinned == 1),
                             statistic: "median over repeats"},
                  results: {}}'
        for vpn in "${VPNS[@]}"; do
                obj="{"
                for m in "${METRICS[@]}"; do
                        obj+="\"$m\": $(val "$vpn" "$m"),"
                done
                for m in tcp1_mbps tcp4_mbps udp_mbps ping_avg_ms ping_p99_ms tcp1_cpu_pct_per_gbps; do
                        r=$(ratio "$vpn" "$m")
                        [[ $r == n/a ]] && r=null
                        obj+="\"${m}_ratio_to_shadowmesh\": $r,"
                done
                obj+="\"tunnel_mtu\": ${DEV_MTU[$vpn]:-null}, \"samples\": {"
                for m in "${METRICS[@]}"; do
                        obj+="\"$m\": ${SAMPLES[$vpn.$m]:-[]},"
                done
                obj="${obj%,}}}"
                jq -n --arg vpn "$vpn" --argjson m "$obj" \
                        --arg status "${STATUS[$vpn]:-skipped}" --arg note "${NOTE[$vpn]:-}" \
                        --arg version "${VERSION[$vpn]:-}" --arg config "${CONFIG[$vpn]:-}" \
                        --argjson extra "${EXTRA[$vpn]:-"{}"}" \
                        '{($vpn): ({status: $status, version: $version, config: $config,
                                    note: $note} + $m + $extra)}'
        done
} | jq -s '.[0] * {results: (.[1:] | add // {})}' >"$JSON_OUT.tmp.$$" &&
        mv "$JSON_OUT.tmp.$$" "$JSON_OUT" && echo "results written to $JSON_OUT"
