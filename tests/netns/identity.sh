#!/bin/bash
# SPDX-License-Identifier: MIT
#
# Identity mode (Noise_IKpsk2): keys from `shadowmeshd genkey` / `shadowmeshd pubkey`, each
# side pins the other's public key, both sides know the other's address (so both initiate and
# the handshakes cross). Then b comes back with a third key that a has not pinned: a must
# refuse it by name ("unknown public key") and no frame may pass. Then b's real key again, and
# last an optional shared key in the psk slot on both sides.
#
#   sm$$-a: smt0 10.0.0.1/24 fd00::1/64, veth0 10.99.12.1
#   sm$$-b: smt0 10.0.0.2/24 fd00::2/64, veth0 10.99.12.2

# Functions here are called through check/wait_until, which shellcheck cannot see.
# shellcheck disable=SC2317,SC2016
set -euo pipefail
# shellcheck source=tests/netns/lib.sh
source "$(dirname "$(readlink -f "$0")")/lib.sh"

netns_init 12
need base64 coreutils
setup_pair

# is_key STRING: base64 of exactly 32 bytes.
is_key() {
        [[ ${#1} -eq 44 ]] && [[ $(printf '%s' "$1" | base64 -d 2>/dev/null | wc -c) -eq 32 ]]
}

# ---- keys -------------------------------------------------------------------------------------
genkey() { (umask 077 && "$SHADOWMESHD" genkey >"$1"); }
pubkey() { "$SHADOWMESHD" pubkey <"$1"; }

for k in a b c; do
        check "genkey writes $k.key" genkey "$TMP/$k.key"
done
PRIV_A=$(tr -d '\n' <"$TMP/a.key")
PRIV_B=$(tr -d '\n' <"$TMP/b.key")
PRIV_C=$(tr -d '\n' <"$TMP/c.key")
check "genkey prints one base64 key of 32 bytes" is_key "$PRIV_A"
check "genkey prints a single line" test "$(wc -l <"$TMP/a.key")" = 1
check "three genkey runs give three keys" \
        test "$PRIV_A" != "$PRIV_B" -a "$PRIV_B" != "$PRIV_C" -a "$PRIV_A" != "$PRIV_C"
PUB_A=$(pubkey "$TMP/a.key" || true)
PUB_B=$(pubkey "$TMP/b.key" || true)
PUB_C=$(pubkey "$TMP/c.key" || true)
check "pubkey prints a base64 key of 32 bytes" is_key "$PUB_A"
check "pubkey is not the private key" test "$PUB_A" != "$PRIV_A"
check "pubkey is deterministic" test "$(pubkey "$TMP/a.key" || true)" = "$PUB_A"
check "three private keys, three public keys" \
        test -n "$PUB_B" -a -n "$PUB_C" -a "$PUB_A" != "$PUB_B" -a "$PUB_B" != "$PUB_C"
check_not "pubkey refuses input that is not a key" \
        sh -c 'echo not-a-key | "$1" pubkey >/dev/null 2>&1' sh "$SHADOWMESHD"
echo "# a: $PUB_A  b: $PUB_B  c (not pinned): $PUB_C"

write_config "$TMP/a.yaml" ip4=$TUN4_A/24 ip6=$TUN6_A/64 peer="$UNDER_B:$PORT" \
        private_key_file="$TMP/a.key" peer_public_key="$PUB_B"
write_config "$TMP/b.yaml" ip4=$TUN4_B/24 ip6=$TUN6_B/64 peer="$UNDER_A:$PORT" \
        private_key_file="$TMP/b.key" peer_public_key="$PUB_A"
write_config "$TMP/b-unpinned.yaml" ip4=$TUN4_B/24 ip6=$TUN6_B/64 peer="$UNDER_A:$PORT" \
        private_key_file="$TMP/c.key" peer_public_key="$PUB_A"

check "--check accepts a's config" sh -c '"$1" --check "$2" >/dev/null' sh "$SHADOWMESHD" "$TMP/a.yaml"

# ---- the tunnel -------------------------------------------------------------------------------
start_daemon a "$NS_A" "$TMP/a.yaml"
start_daemon b "$NS_B" "$TMP/b.yaml"
check "a: identity mode (Noise_IKpsk2)" wait_log a "identity mode (Noise_IKpsk2)" 10
check "b: identity mode (Noise_IKpsk2)" wait_log b "identity mode (Noise_IKpsk2)" 10
check "handshake complete on a" wait_log a "handshake complete with peer $UNDER_B:$PORT" 15
check "handshake complete on b" wait_log b "handshake complete with peer $UNDER_A:$PORT" 15
check "ping a->b" wait_ping 20 "$NS_A" "$TUN4_B"
check "ping b->a" wait_ping 10 "$NS_B" "$TUN4_A"
check "ping a->b, 5 of 5 answered" ping_all "$NS_A" "$TUN4_B" 5
check "ping b->a, 5 of 5 answered" ping_all "$NS_B" "$TUN4_A" 5
check "a: $TUN6_A out of DAD" wait_until 10 ipv6_ready "$NS_A" "$TAP" "$TUN6_A"
check "b: $TUN6_B out of DAD" wait_until 10 ipv6_ready "$NS_B" "$TAP" "$TUN6_B"
check "ping6 a->b" wait_ping 10 "$NS_A" "$TUN6_B"
check "ping6 b->a" wait_ping 10 "$NS_B" "$TUN6_A"
check "no private key in a's log" test "$(log_count a "$PRIV_A")" = 0

# ---- b with a key that a has not pinned -------------------------------------------------------
if stop_daemon b TERM 10; then
        pass "b stops on SIGTERM"
else
        fail "b stops on SIGTERM"
fi
hs_before=$(log_count a "handshake complete")
start_daemon b "$NS_B" "$TMP/b-unpinned.yaml"
check "unpinned b: a logs 'unknown public key'" wait_log a "unknown public key" 20
reject=$(current_log a | grep -F "unknown public key" | head -n 1 || true)
echo "# a: $reject"
check "a's rejection names b's endpoint $UNDER_B" contains "$reject" "$UNDER_B"
check_not "unpinned b: no reply to ping a->b" \
        na ping -c 3 -i 0.5 -W 1 -q "$TUN4_B" >/dev/null
check_not "unpinned b: no reply to ping b->a" \
        nb ping -c 3 -i 0.5 -W 1 -q "$TUN4_A" >/dev/null
check "unpinned b: a completed no new handshake" \
        test "$(log_count a "handshake complete")" = "$hs_before"
check "unpinned b: b completed no handshake" test "$(log_count b "handshake complete")" = 0
check "a still running" alive a

# ---- b's real key again: a takes it back without a restart ------------------------------------
if stop_daemon b TERM 10; then
        pass "unpinned b stops on SIGTERM"
else
        fail "unpinned b stops on SIGTERM"
fi
start_daemon b "$NS_B" "$TMP/b.yaml"
check "b back with its key: handshake complete on b" \
        wait_log b "handshake complete with peer $UNDER_A:$PORT" 20
check "b back with its key: ping b->a" wait_ping 20 "$NS_B" "$TUN4_A"
check "b back with its key: ping a->b" wait_ping 10 "$NS_A" "$TUN4_B"

# ---- identity plus a shared key in the psk slot -----------------------------------------------
stop_daemon a TERM 10 || true
stop_daemon b TERM 10 || true
PSK=$(random_hex_key)
write_config "$TMP/a-psk.yaml" ip4=$TUN4_A/24 peer="$UNDER_B:$PORT" \
        private_key_file="$TMP/a.key" peer_public_key="$PUB_B" key="$PSK"
write_config "$TMP/b-psk.yaml" ip4=$TUN4_B/24 peer="" \
        private_key_file="$TMP/b.key" peer_public_key="$PUB_A" key="$PSK"
start_daemon b "$NS_B" "$TMP/b-psk.yaml"
check "psk: b listening" wait_log b "listening on udp port $PORT" 10
start_daemon a "$NS_A" "$TMP/a-psk.yaml"
check "psk: identity mode with a shared key: handshake on a" \
        wait_log a "handshake complete with peer $UNDER_B:$PORT" 15
check "psk: ping a->b" wait_ping 20 "$NS_A" "$TUN4_B"
check "psk: ping b->a" wait_ping 10 "$NS_B" "$TUN4_A"
stop_daemon a TERM 10 || true

# a different psk on a: the static keys still match, the handshake must not.
write_config "$TMP/a-otherpsk.yaml" ip4=$TUN4_A/24 peer="$UNDER_B:$PORT" \
        private_key_file="$TMP/a.key" peer_public_key="$PUB_B" key="$(random_hex_key)"
hs_before=$(log_count b "handshake complete")
start_daemon a "$NS_A" "$TMP/a-otherpsk.yaml"
check "other psk: a up" wait_log a "listening on udp port $PORT" 10
check_not "other psk: no reply to ping a->b (8 s)" \
        na ping -c 8 -i 1 -W 1 -q "$TUN4_B" >/dev/null
check "other psk: b says it rejected a's handshake" \
        wait_log b "rejected handshake from $UNDER_A:$PORT" 5
check "other psk: a completed no handshake" test "$(log_count a "handshake complete")" = 0
check "other psk: b completed no new handshake" \
        test "$(log_count b "handshake complete")" = "$hs_before"
check "b still running" alive b

summary
