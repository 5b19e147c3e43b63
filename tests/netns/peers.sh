#!/bin/bash
# SPDX-License-Identifier: MIT
#
# The peers: list of the configuration, end to end (identity mode):
#  - `shadowmeshd --check` explains a duplicate key by file:line:column and names the first
#    entry's line (exit 1), and the daemon refuses that file the same way without a TAP;
#  - a list naming two other nodes: --check says ok without a warning, and the daemon starts
#    with both as peers (the mesh: tests/netns/mesh.sh has the traffic), then stops cleanly;
#  - a tunnel with a one-entry peers: list on both sides: handshake, ping both ways; then a's
#    entry moves to another address of b and SIGHUP applies it live, as it does for peer:
#    (a list of several peers reloads live too: tests/reload/peers.sh);
#  - one peers: list shared by both nodes (the same lines in both files): each node drops its
#    own entry, a connects to b, b waits for a, ping both ways.
#
#   sm$$-a: smt0 10.0.0.1/24, veth0 10.99.57.1
#   sm$$-b: smt0 10.0.0.2/24, veth0 10.99.57.2

# Functions here are called through check/wait_until, which shellcheck cannot see.
# shellcheck disable=SC2317,SC2016
set -euo pipefail
# shellcheck source=tests/netns/lib.sh
source "$(dirname "$(readlink -f "$0")")/lib.sh"

netns_init 57
setup_pair

genkey() { (umask 077 && "$SHADOWMESHD" genkey >"$1"); }
for k in a b c; do
        check "genkey writes $k.key" genkey "$TMP/$k.key"
done
PUB_A=$("$SHADOWMESHD" pubkey <"$TMP/a.key")
PUB_B=$("$SHADOWMESHD" pubkey <"$TMP/b.key")
PUB_C=$("$SHADOWMESHD" pubkey <"$TMP/c.key")

# line_of FILE TEXT: the number of the first line of FILE holding TEXT.
line_of() { grep -nF -- "$2" "$1" | head -n 1 | cut -d: -f1; }

# ---- a duplicate key ----------------------------------------------------------------------------
write_config "$TMP/dup.yaml" ip4=$TUN4_A/24 private_key_file="$TMP/a.key" peers="peers:
  - name: b
    address: \"$UNDER_B:$PORT\"
    public_key: \"$PUB_B\"
  - name: b-again
    public_key: \"$PUB_B\""
first=$(line_of "$TMP/dup.yaml" "  - name: b")
second=$(($(line_of "$TMP/dup.yaml" "  - name: b-again") + 1))
rc=0
out=$("$SHADOWMESHD" --check "$TMP/dup.yaml" 2>&1) || rc=$?
echo "# --check dup.yaml: $out"
check "duplicate key: --check exits 1 (got $rc)" test "$rc" = 1
check_has "duplicate key: --check names file:line:column, the entry and the first one" "$out" \
        "$TMP/dup.yaml:$second:17: peers[1].public_key: duplicate key: peers[0] (line $first) has the same public key; list each node once"
if run_daemon_to_exit dup "$NS_A" 10 "$SHADOWMESHD" "$TMP/dup.yaml"; then
        check "duplicate key: the daemon exits 1 (got $EXIT_CODE)" test "$EXIT_CODE" = 1
        check "duplicate key: the daemon names dup.yaml:$second:17" log_has dup "dup.yaml:$second:17"
else
        fail "duplicate key: the daemon exits by itself"
fi
check "duplicate key: no TAP left behind" link_gone "$NS_A" "$TAP"

# ---- two other nodes: both are peers --------------------------------------------------------------
write_config "$TMP/two.yaml" ip4=$TUN4_A/24 private_key_file="$TMP/a.key" peers="peers:
  - name: b
    address: \"$UNDER_B:$PORT\"
    public_key: \"$PUB_B\"
  - name: c
    public_key: \"$PUB_C\""
rc=0
out=$("$SHADOWMESHD" --check "$TMP/two.yaml" 2>&1) || rc=$?
echo "# --check two.yaml: $out"
check "two other nodes: --check exits 0 without a warning (got $rc)" \
        test "$rc" = 0 -a "$out" = "$TMP/two.yaml: ok"
start_daemon two "$NS_A" "$TMP/two.yaml"
check "two other nodes: the daemon starts" wait_log two "listening on" 10
check "two other nodes: b is a peer, by name and address" log_has two "peer b at $UNDER_B:$PORT"
check "two other nodes: the TAP exists" link_exists "$NS_A" "$TAP"
if stop_daemon two TERM 10; then pass "two other nodes: stops on SIGTERM"; else fail "two other nodes: stops on SIGTERM"; fi
check "two other nodes: no TAP left behind" link_gone "$NS_A" "$TAP"

# ---- a one-entry peers: list on both sides -------------------------------------------------------
write_config "$TMP/a1.yaml" ip4=$TUN4_A/24 private_key_file="$TMP/a.key" peers="peers:
  - name: b
    address: \"$UNDER_B:$PORT\"
    public_key: \"$PUB_B\""
write_config "$TMP/b1.yaml" ip4=$TUN4_B/24 private_key_file="$TMP/b.key" peers="peers:
  - name: a
    public_key: \"$PUB_A\""
for f in a1 b1; do
        rc=0
        out=$("$SHADOWMESHD" --check "$TMP/$f.yaml" 2>&1) || rc=$?
        check "one entry: --check $f.yaml exits 0 without a warning" \
                test "$rc" = 0 -a "$out" = "$TMP/$f.yaml: ok"
done
start_daemon b "$NS_B" "$TMP/b1.yaml"
check "one entry: b waits" wait_log b "waiting for the peer to connect" 10
start_daemon a "$NS_A" "$TMP/a1.yaml"
check "one entry: handshake complete on a" wait_log a "handshake complete with peer $UNDER_B:$PORT" 15
check "one entry: ping a->b" wait_ping 15 "$NS_A" "$TUN4_B"
check "one entry: ping b->a" wait_ping 10 "$NS_B" "$TUN4_A"
# Reload: b gets a second underlay address and a's one entry points there.
UNDER_B2=10.98.57.12
ip -n "$NS_B" addr add "$UNDER_B2/24" dev veth0
ip -n "$NS_A" addr add 10.98.57.11/24 dev veth0
write_config "$TMP/a1.yaml" ip4=$TUN4_A/24 private_key_file="$TMP/a.key" peers="peers:
  - name: b
    address: \"$UNDER_B2:$PORT\"
    public_key: \"$PUB_B\""
kill_own HUP "${DAEMON_PID[a]}"
check "one entry, reload: a applies the new address" wait_log a "reload: peer is now $UNDER_B2:$PORT" 10
check "one entry, reload: handshake with b at $UNDER_B2" \
        wait_log a "handshake complete with peer $UNDER_B2:$PORT" 15
check "one entry, reload: ping a->b" wait_ping 15 "$NS_A" "$TUN4_B"
for n in a b; do
        if stop_daemon $n TERM 10; then pass "one entry: $n stops on SIGTERM"; else fail "one entry: $n stops on SIGTERM"; fi
done

# ---- one list, the same lines on both nodes ------------------------------------------------------
SHARED="peers:
  - name: a
    public_key: \"$PUB_A\"
  - name: b
    address: \"$UNDER_B:$PORT\"
    public_key: \"$PUB_B\""
write_config "$TMP/a2.yaml" ip4=$TUN4_A/24 private_key_file="$TMP/a.key" peers="$SHARED"
write_config "$TMP/b2.yaml" ip4=$TUN4_B/24 private_key_file="$TMP/b.key" peers="$SHARED"
check "shared list: the peers: lines of a2.yaml and b2.yaml are the same" \
        test "$(sed -n '/^peers:/,/^nat:/p' "$TMP/a2.yaml")" = "$(sed -n '/^peers:/,/^nat:/p' "$TMP/b2.yaml")"
start_daemon b "$NS_B" "$TMP/b2.yaml"
# b's own entry (with b's address) is dropped: b keeps a, which has no address, and waits.
check "shared list: b waits (its own entry, with its address, is ignored)" \
        wait_log b "waiting for the peer to connect" 10
start_daemon a "$NS_A" "$TMP/a2.yaml"
check "shared list: a connects to b" wait_log a "peer $UNDER_B:$PORT" 10
check "shared list: handshake complete on a" wait_log a "handshake complete with peer $UNDER_B:$PORT" 15
check "shared list: handshake complete on b" wait_log b "handshake complete with peer $UNDER_A:$PORT" 15
check "shared list: ping a->b" wait_ping 15 "$NS_A" "$TUN4_B"
check "shared list: ping b->a" wait_ping 10 "$NS_B" "$TUN4_A"
check "a still running at the end" alive a
check "b still running at the end" alive b

summary
