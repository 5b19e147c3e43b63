#!/bin/bash
# SPDX-License-Identifier: MIT
#
# Reload (SIGHUP) of a peers: list of several nodes while the mesh runs (identity mode):
#  - a lists b; b and c list a (without an address: they wait for it). a and b talk; c is no
#    peer of a (a's file does not name its key);
#  - a's list grows to b and c: on SIGHUP c joins (handshake, ping a->c), while b's session is
#    untouched (no new handshake with b, pings a->b go on), in the same process and TAP;
#  - a's list shrinks to c alone: b hears a closing message and leaves a's table (b logs it; a
#    no longer reaches b), c goes on without a new handshake;
#  - a file that no longer loads changes nothing, and says so.
#
#   sm$$-{a,b,c} on one bridge (sm$$-br): veth0 10.99.61.{1,2,3}, smt0 10.0.0.{1,2,3}/24

# Functions here are called through check/wait_until, which shellcheck cannot see.
# shellcheck disable=SC2317
set -euo pipefail
# shellcheck source=tests/netns/lib.sh
source "$(dirname "$(dirname "$(readlink -f "$0")")")/netns/lib.sh"

netns_init 61
declare -A NS=() UNDER=() TUN4=() PUB=()
setup_bridge a b c
i=0
for n in a b c; do
        i=$((i + 1))
        TUN4[$n]=10.0.0.$i
        (umask 077 && "$SHADOWMESHD" genkey >"$TMP/$n.key")
        PUB[$n]=$("$SHADOWMESHD" pubkey <"$TMP/$n.key")
done

# entry NODE [address]: one entry of a peers: list (with the node's address when asked).
entry() {
        printf '  - name: %s\n    public_key: "%s"\n' "$1" "${PUB[$1]}"
        [[ -z ${2:-} ]] || printf '    address: "%s:%s"\n' "${UNDER[$1]}" "$PORT"
}
# config NODE ENTRIES...: NODE's file with a peers: list of the entries ("b+": with address).
config() {
        local n=$1 e list="peers:"
        shift
        for e in "$@"; do
                list+=$'\n'$(entry "${e%+}" "${e//[^+]/}")
        done
        write_config "$TMP/$n.yaml" ip4="${TUN4[$n]}/24" private_key_file="$TMP/$n.key" \
                peers="$list"
}
na() { ip netns exec "${NS[a]}" "$@"; }
hup() { kill_own HUP "${DAEMON_PID[a]}"; }
reaches() { ping_ok "${NS[a]}" "${TUN4[$1]}"; }
no_reply() { ! na ping -c 3 -i 0.5 -W 1 -q "${TUN4[$1]}" >/dev/null 2>&1; }

config a b+
config b a
config c a
for n in b c; do
        start_daemon "$n" "${NS[$n]}" "$TMP/$n.yaml"
        check "$n waits for a" wait_log "$n" "waiting for the peer to connect" 10
done
start_daemon a "${NS[a]}" "$TMP/a.yaml"
check "a: handshake with b" wait_log a "handshake complete with peer ${UNDER[b]}:$PORT" 15
check "a reaches b" wait_until 10 reaches b
check "a does not reach c (not in its list)" no_reply c
IFINDEX=$(ip -n "${NS[a]}" -o link show dev "$TAP" | cut -d: -f1)
PID_A=${DAEMON_PID[a]}

# ---- the list grows: c joins, b stays as it was -------------------------------------------------
HS_B=$(log_count a "handshake complete with peer ${UNDER[b]}:$PORT")
config a b+ c+
hup
check "grow: reloaded, one peer joined" wait_log a "(peers: 1 joined, 0 left)" 10
check "grow: a says c joins, with its line" log_has a "reload: peer c at ${UNDER[c]} joins (line"
check "grow: a handshakes with c" wait_log a "handshake complete with peer ${UNDER[c]}:$PORT" 15
check "grow: a reaches c" wait_until 10 reaches c
check "grow: a still reaches b" reaches b
check_eq "grow: no new handshake with b" \
        "$(log_count a "handshake complete with peer ${UNDER[b]}:$PORT")" "$HS_B"
check_eq "grow: the same process" "${DAEMON_PID[a]}" "$PID_A"
check "grow: a still runs" alive a
check_eq "grow: the same TAP (ifindex)" \
        "$(ip -n "${NS[a]}" -o link show dev "$TAP" | cut -d: -f1)" "$IFINDEX"

# ---- the list shrinks: b leaves ------------------------------------------------------------------
HS_C=$(log_count a "handshake complete with peer ${UNDER[c]}:$PORT")
config a c+
hup
check "shrink: reloaded, one peer left" wait_log a "(peers: 0 joined, 1 left)" 10
check "shrink: a says b leaves" log_has a "reload: peer b is no longer configured: it leaves"
check "shrink: b heard the closing message" wait_log b "closed the tunnel" 10
check "shrink: a no longer reaches b" no_reply b
check "shrink: a still reaches c" reaches c
check_eq "shrink: no new handshake with c" \
        "$(log_count a "handshake complete with peer ${UNDER[c]}:$PORT")" "$HS_C"

# ---- a file that does not load ------------------------------------------------------------------
printf 'peers:\n  - name: [\n' >>"$TMP/a.yaml"
hup
check "broken file: refused, the running list stays" \
        wait_log a "reload failed, the running configuration stays" 10
check "broken file: a still reaches c" reaches c

for n in a b c; do
        if stop_daemon "$n" TERM 10; then pass "$n stops on SIGTERM"; else fail "$n stops on SIGTERM"; fi
done
check "no TAP left in a" link_gone "${NS[a]}" "$TAP"
summary
