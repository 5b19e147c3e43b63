#!/bin/bash
# SPDX-License-Identifier: MIT
#
# What a wrong peer, an attacker on the path or a careless admin can throw at shadowmeshd:
#  - a wrong shared key: no tunnel, and the responder says why ("bad mac1", "different key");
#  - replayed data messages, resent from the original source and from another port: counted
#    in rx_replayed, never delivered, the tunnel keeps working (and keeps its endpoint);
#  - garbage datagrams (empty, short, unknown types, cut messages, random, oversized):
#    counted in rx_malformed, the daemon lives on;
#  - start-up errors, each with its message, exit status != 0 and no TAP left behind:
#    no CAP_NET_ADMIN, UDP port in use, unresolvable peer, TAP name taken by another device,
#    config typo (file:line:column and "did you mean", exit 1), usage error (exit 64).
#
#   sm$$-a: smt0 10.0.0.1/24, veth0 10.99.13.1 (initiator)
#   sm$$-b: smt0 10.0.0.2/24, veth0 10.99.13.2 (waits)
#   sm$$-c: loopback only, for the start-up errors

# Functions here are called through check/wait_until, which shellcheck cannot see.
# shellcheck disable=SC2317,SC2016
set -euo pipefail
# shellcheck source=tests/netns/lib.sh
source "$(dirname "$(readlink -f "$0")")/lib.sh"

netns_init 13
need tcpdump tcpdump
need setpriv util-linux
[[ -x $SM_UDP_TOOL ]] || { echo "SM_UDP_TOOL=$SM_UDP_TOOL is not executable (build tests/netns/udp-tool)" >&2; exit 1; }
setup_pair
setup_single

KEY=$(random_hex_key)
write_config "$TMP/a.yaml" ip4=$TUN4_A/24 peer="$UNDER_B:$PORT" key="$KEY"
write_config "$TMP/b.yaml" ip4=$TUN4_B/24 peer="" key="$KEY"
write_config "$TMP/b-wrong.yaml" ip4=$TUN4_B/24 peer="" key="$(random_hex_key)"

# ---- wrong shared key -------------------------------------------------------------------------
start_daemon b "$NS_B" "$TMP/b-wrong.yaml"
check "b (other key) listening" wait_log b "listening on udp port $PORT" 10
start_daemon a "$NS_A" "$TMP/a.yaml"
check "wrong key: b logs 'bad mac1'" wait_log b "bad mac1" 15
line=$(current_log b | grep -F "bad mac1" | head -n 1 || true)
echo "# b: $line"
check "wrong key: b's message says 'different key'" contains "$line" "different key"
check "wrong key: b's message names a's endpoint $UNDER_A:$PORT" \
        contains "$line" "rejected handshake from $UNDER_A:$PORT"
check_not "wrong key: no reply to ping a->b (5 s)" na ping -c 5 -i 1 -W 1 -q "$TUN4_B" >/dev/null
check "wrong key: no handshake on a" test "$(log_count a "handshake complete")" = 0
check "wrong key: no handshake on b" test "$(log_count b "handshake complete")" = 0
check "wrong key: b counts rx_bad_mac1" stat_at_least b rx_bad_mac1 1
# 200 more bad initiations at once: each one counted, but the log stays rate-limited.
request_stats b || true
bad0=$(get_stat b rx_bad_mac1)
lines0=$(log_count b "bad mac1")
out=$(na "$SM_UDP_TOOL" initiations "$UNDER_B" "$PORT" 200 2>&1) || true
check "wrong key: 200 forged initiations sent" test "$out" = "sent 200"
check "wrong key: b's rx_bad_mac1 grew by >= 200" \
        wait_until 5 stat_at_least b rx_bad_mac1 $((${bad0:-0} + 200))
lines=$(($(log_count b "bad mac1") - lines0))
# (handshake.c allows a burst of 10 lines per 5 s; 200 datagrams take well under 5 s)
check "wrong key: rejections are logged rate-limited ($lines lines for 200)" test "$lines" -le 20
check "wrong key: b still running" alive b

# b with the right key: a's retries (every 5 s) must find it without a restart of a.
stop_daemon b TERM 10 || true
start_daemon b "$NS_B" "$TMP/b.yaml"
check "right key: handshake complete on a (a's retry)" \
        wait_log a "handshake complete with peer $UNDER_B:$PORT" 20
check "right key: ping a->b" wait_ping 15 "$NS_A" "$TUN4_B"
check "right key: ping b->a" wait_ping 10 "$NS_B" "$TUN4_A"

# ---- replay -----------------------------------------------------------------------------------
if start_capture replay "$NS_A" veth0 "udp and src host $UNDER_A and dst host $UNDER_B and dst port $PORT"; then
        check "replay: 10 pings a->b while capturing" ping_all "$NS_A" "$TUN4_B" 10
        stop_capture replay || true
        check "b: stats on SIGUSR1" request_stats b
        replayed0=$(get_stat b rx_replayed)
        rx0=$(get_stat b rx_packets)
        echo "# b before replay: rx_packets=$rx0 rx_replayed=$replayed0"
        # Exactly as captured: a's address and source port, through a raw socket.
        out=$(na "$SM_UDP_TOOL" replay-raw "$TMP/replay.pcap" "$PORT" 4 2>&1) || true
        n=$(sed -n 's/^sent \([0-9]*\)$/\1/p' <<<"$out")
        echo "# resent from $UNDER_A:$PORT: ${n:-0} data messages ($out)"
        check "replay: captured and resent >= 10 data messages" test "${n:-0}" -ge 10
        n=${n:-0}
        check "replay: b's rx_replayed grew by >= $n" \
                wait_until 5 stat_at_least b rx_replayed $((${replayed0:-0} + n))
        echo "# b after replay: rx_replayed=$(get_stat b rx_replayed)"
        check "replay: b still running" alive b
        check "replay: ping a->b still works" ping_all "$NS_A" "$TUN4_B" 3
        check "replay: ping b->a still works" ping_all "$NS_B" "$TUN4_A" 3

        # The same payloads from another source port: still replays, and b must not move its
        # endpoint for a to this port (that needs an authenticated, fresh message).
        replayed1=$(get_stat b rx_replayed)
        out=$(na "$SM_UDP_TOOL" replay-udp "$TMP/replay.pcap" "$PORT" 4 "$UNDER_B" 2>&1) || true
        n2=$(sed -n 's/^sent \([0-9]*\)$/\1/p' <<<"$out")
        echo "# resent from another port: ${n2:-0} data messages"
        check "replay from another port: b's rx_replayed grew by >= ${n2:-0}" \
                wait_until 5 stat_at_least b rx_replayed $((${replayed1:-0} + ${n2:-1}))
        check "replay from another port: ping b->a still works (endpoint kept)" \
                ping_all "$NS_B" "$TUN4_A" 3
else
        fail "replay: tcpdump listening on a's veth0"
fi

# ---- garbage ----------------------------------------------------------------------------------
request_stats b || true
malformed0=$(get_stat b rx_malformed)
out=$(na "$SM_UDP_TOOL" garbage "$UNDER_B" "$PORT" 2>&1) || true
m=$(sed -n 's/^malformed \([0-9]*\)$/\1/p' <<<"$out")
echo "# garbage: ${m:-0} malformed datagrams sent to b ($(tr '\n' ' ' <<<"$out"))"
check "garbage: sent" test "${m:-0}" -gt 0
check "garbage: b's rx_malformed grew by >= ${m:-0}" \
        wait_until 5 stat_at_least b rx_malformed $((${malformed0:-0} + ${m:-1}))
echo "# b: $(current_log b | grep 'stats: ' | tail -n 1)"
check "garbage: b still running" alive b
check "garbage: ping a->b still works" ping_all "$NS_A" "$TUN4_B" 3
check "garbage: ping b->a still works" ping_all "$NS_B" "$TUN4_A" 3
# The same into a (the initiator), from b's address.
request_stats a || true
malformed0=$(get_stat a rx_malformed)
out=$(nb "$SM_UDP_TOOL" garbage "$UNDER_A" "$PORT" 2>&1) || true
m=$(sed -n 's/^malformed \([0-9]*\)$/\1/p' <<<"$out")
check "garbage into a: a's rx_malformed grew by >= ${m:-0}" \
        wait_until 5 stat_at_least a rx_malformed $((${malformed0:-0} + ${m:-1}))
check "garbage into a: a still running" alive a
check "garbage into a: ping a->b still works" ping_all "$NS_A" "$TUN4_B" 3

# ---- start-up errors (namespace c) ------------------------------------------------------------
write_config "$TMP/c.yaml" tap=smt9 ip4=10.0.9.1/24 peer="" key="$KEY"

# startup_error NAME EXPECTED_TEXT [ENV/WRAPPER...] -- CONFIG: runs shadowmeshd in c, expects
# exit != 0 within 20 s with EXPECTED_TEXT in its output, and no smt9 left behind.
startup_error() {
        local what=$1 text=$2
        shift 2
        if run_daemon_to_exit "$what" "$NS_C" 20 "$@"; then
                pass "$what: exits by itself within 20 s"
                check "$what: exit status is 2 (setup error), got $EXIT_CODE" test "$EXIT_CODE" = 2
                check "$what: says '$text'" log_has "$what" "$text"
                echo "# $what: $(current_log "$what" | grep -vF 'stats:' | tail -n 1)"
        else
                fail "$what: exits by itself within 20 s"
        fi
        check "$what: no TAP left behind" link_gone "$NS_C" smt9
}

# No root: the config must be readable by nobody for the test to reach the capability check.
chmod 711 "$TMP"
mkdir -m 755 "$TMP/pub"
cp "$TMP/c.yaml" "$TMP/pub/c.yaml"
chmod 644 "$TMP/pub/c.yaml"
startup_error noroot "CAP_NET_ADMIN" \
        setpriv --reuid=65534 --regid=65534 --clear-groups "$SHADOWMESHD" "$TMP/pub/c.yaml"

# UDP port in use.
spawn "$NS_C" "$TMP/hold.out" "$SM_UDP_TOOL" hold 0.0.0.0 "$PORT"
HOLD_PID=$SPAWNED_PID
if wait_until 5 grep -q '^bound$' "$TMP/hold.out"; then
        startup_error portinuse "already in use" "$SHADOWMESHD" "$TMP/c.yaml"
        check "portinuse: names the port: 'udp port $PORT is already in use'" \
                log_has portinuse "udp port $PORT is already in use"
else
        fail "portinuse: helper holds udp port $PORT" "$(cat "$TMP/hold.out")"
fi
kill_own TERM "$HOLD_PID" || true
wait_until 5 has_exited "$HOLD_PID" || true

# Unresolvable peer (c has no route anywhere, so the lookup cannot leave the namespace).
write_config "$TMP/c-nosuch.yaml" tap=smt9 ip4=10.0.9.1/24 peer="nosuch.invalid:$PORT" key="$KEY"
startup_error noresolve "cannot resolve" "$SHADOWMESHD" "$TMP/c-nosuch.yaml"
check "noresolve: names the host" log_has noresolve "cannot resolve peer address 'nosuch.invalid'"

# The TAP name is taken by another device, which must be left exactly as it was: a veth (another
# kind of device), then a persistent TAP made by `ip tuntap` (the same kind: attaching to it
# would hijack someone else's device; IFF_TUN_EXCL must refuse).
tap_taken() {
        local what=$1
        local before after
        ip -n "$NS_C" link set smt9 mtu 1400
        before=$(ip -n "$NS_C" -o -d link show dev smt9)
        if run_daemon_to_exit "$what" "$NS_C" 20 "$SHADOWMESHD" "$TMP/c.yaml"; then
                pass "$what: exits by itself within 20 s"
                check "$what: exit status is 2, got $EXIT_CODE" test "$EXIT_CODE" = 2
                check "$what: says 'device smt9 already exists and is not ours'" \
                        log_has "$what" "device smt9 already exists and is not ours"
                echo "# $what: $(current_log "$what" | tail -n 1)"
        else
                fail "$what: exits by itself within 20 s"
        fi
        after=$(ip -n "$NS_C" -o -d link show dev smt9 2>&1 || true)
        check "$what: the existing smt9 is untouched (same ifindex, mtu, flags)" \
                test "$before" = "$after"
        check "$what: the existing smt9 got no address" \
                test -z "$(ip -n "$NS_C" -o addr show dev smt9 2>&1)"
        ip -n "$NS_C" link del smt9
}
ip -n "$NS_C" link add smt9 type veth peer name smt9peer
tap_taken taken-veth
ip -n "$NS_C" tuntap add dev smt9 mode tap
tap_taken taken-tap

# Config errors: a typo'd key names file:line:column and suggests the right key, exit 1.
cat >"$TMP/typo.yaml" <<EOF
daemon:
  log_level: info
network:
  tap_device: smt9
  lcoal_ip: 10.0.9.1/24
encryption:
  key: "$KEY"
peer:
  address: ""
EOF
chmod 600 "$TMP/typo.yaml"
rc=0
out=$("$SHADOWMESHD" --check "$TMP/typo.yaml" 2>&1) || rc=$?
echo "# --check typo.yaml: $out"
check "typo: --check exits 1 (got $rc)" test "$rc" = 1
check "typo: names $TMP/typo.yaml:5:3" contains "$out" "typo.yaml:5:3"
check "typo: suggests 'did you mean' local_ip" contains "$out" "did you mean"
check "typo: names the right key local_ip" contains "$out" "local_ip"
if run_daemon_to_exit typo "$NS_C" 10 "$SHADOWMESHD" "$TMP/typo.yaml"; then
        check "typo: the daemon exits 1 (got $EXIT_CODE)" test "$EXIT_CODE" = 1
        check "typo: the daemon names typo.yaml:5:3" log_has typo "typo.yaml:5:3"
else
        fail "typo: the daemon exits by itself"
fi
check "typo: no TAP left behind" link_gone "$NS_C" smt9

# A bad value: a key of the wrong length, on line 7.
sed 's/^  key: .*/  key: "00112233"/; s/lcoal_ip/local_ip/' "$TMP/typo.yaml" >"$TMP/badkey.yaml"
chmod 600 "$TMP/badkey.yaml"
rc=0
out=$("$SHADOWMESHD" --check "$TMP/badkey.yaml" 2>&1) || rc=$?
echo "# --check badkey.yaml: $out"
check "bad key value: --check exits 1 (got $rc)" test "$rc" = 1
check "bad key value: names badkey.yaml:7" contains "$out" "badkey.yaml:7:"

# This project's 0.1 form, listen_address as the tunnel's address: --check and the daemon both
# refuse it, naming the line and what to write instead; nothing is created.
sed 's/lcoal_ip/local_ip/; s/^  log_level: info/  listen_address: "0.0.0.0:9001"/' \
        "$TMP/typo.yaml" >"$TMP/oldform.yaml"
chmod 600 "$TMP/oldform.yaml"
rc=0
out=$("$SHADOWMESHD" --check "$TMP/oldform.yaml" 2>&1) || rc=$?
echo "# --check oldform.yaml: $out"
check "old listen_address form: --check exits 1 (got $rc)" test "$rc" = 1
check "old listen_address form: names oldform.yaml:2:19" contains "$out" "oldform.yaml:2:19: daemon.listen_address"
check "old listen_address form: says it is the HTTP control API" contains "$out" "HTTP control API"
check "old listen_address form: says to write network.listen_port" contains "$out" "network.listen_port"
if run_daemon_to_exit oldform "$NS_C" 10 "$SHADOWMESHD" "$TMP/oldform.yaml"; then
        check "old listen_address form: the daemon exits 1 (got $EXIT_CODE)" test "$EXIT_CODE" = 1
        check "old listen_address form: the daemon names the line" log_has oldform "oldform.yaml:2:19"
else
        fail "old listen_address form: the daemon exits by itself"
fi
check "old listen_address form: no TAP left behind" link_gone "$NS_C" smt9

rc=0
out=$("$SHADOWMESHD" --check "$TMP/c.yaml" 2>&1) || rc=$?
check "good config: --check exits 0 (got $rc)" test "$rc" = 0
check "good config: --check prints '$TMP/c.yaml: ok'" contains "$out" "$TMP/c.yaml: ok"
rc=0
"$SHADOWMESHD" --no-such-option >/dev/null 2>&1 || rc=$?
check "usage error: exit 64 (got $rc)" test "$rc" = 64

check "a still running at the end" alive a
check "b still running at the end" alive b

summary
