#!/bin/bash
# SPDX-License-Identifier: MIT
#
# nm-shadowmesh-auth-dialog speaks the secret agents' protocol: connection details on stdin
# (DATA_KEY/DATA_VAL, SECRET_KEY/SECRET_VAL, DONE); with --external-ui-mode a key file that
# describes the prompt ([VPN Plugin UI] first, Version=2, one group per secret with Value, Label,
# IsSecret, ShouldAsk), as nmcli and GNOME Shell read it; without it "name\nvalue\n" pairs, an
# empty line pair, and exit only after QUIT. No root needed. Ends with "N passed, N failed".
set -uo pipefail

DIALOG=${NM_SHADOWMESH_AUTH_DIALOG:?NM_SHADOWMESH_AUTH_DIALOG is not set}
SERVICE=org.freedesktop.NetworkManager.shadowmesh
KEY=273084db4483448d759eb9d0148cd039077f7c4c2526a71892c0a8289f51f88f
PRIV=YHhRbSzAxjUfOYPaIzt2c7i6/9A4XsvMcKfKuqjBNmM=
PASSED=0
FAILED=0
TMP=$(mktemp -d "${TMPDIR:-/tmp}/sm-authdialog.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

pass() {
        PASSED=$((PASSED + 1))
        echo "ok - $1"
}
fail() {
        FAILED=$((FAILED + 1))
        echo "FAIL - $1"
        shift
        printf '       %s\n' "$@"
}
# expect NAME GOT WANT
expect() {
        if [[ $2 == "$3" ]]; then pass "$1"; else fail "$1" "got:  $2" "want: $3"; fi
}

# details K=V... : the stdin an agent writes; "!k=v" is a secret.
details() {
        local kv
        for kv in "$@"; do
                if [[ $kv == !* ]]; then
                        kv=${kv#!}
                        printf 'SECRET_KEY=%s\nSECRET_VAL=%s\n\n' "${kv%%=*}" "${kv#*=}"
                else
                        printf 'DATA_KEY=%s\nDATA_VAL=%s\n\n' "${kv%%=*}" "${kv#*=}"
                fi
        done
        printf 'DONE\n'
}

# ext [-r] -- DETAILS...: run in external UI mode as nmcli does; output in $OUT, status in $RC.
ext() {
        local flags=()
        while [[ $1 != -- ]]; do
                flags+=("$1")
                shift
        done
        shift
        OUT=$({ details "$@"; printf 'QUIT\n'; } |
                timeout 10 "$DIALOG" -u 3f2a9c1e-5b7d-4e0f-9a1b-2c3d4e5f6a7b -n office \
                        -s "$SERVICE" --external-ui-mode -i "${flags[@]}" 2>"$TMP/err")
        RC=$?
}
# kf GROUP KEY: a value of the key file in $OUT
kf() {
        awk -v g="[$1]" -v k="$2" '
                /^\[/ { in_g = ($0 == g); next }
                in_g && index($0, k "=") == 1 { print substr($0, length(k) + 2); exit }' <<<"$OUT"
}
groups() { grep '^\[' <<<"$OUT" | tr '\n' ' '; }

# ---- external UI mode -----------------------------------------------------------------------
ext -- peer=192.0.2.1 key-flags=1
expect "external UI: exit status 0" "$RC" 0
expect "external UI: [VPN Plugin UI] first, then [key]" "$(groups)" "[VPN Plugin UI] [key] "
expect "external UI: Version=2" "$(kf 'VPN Plugin UI' Version)" 2
expect "external UI: Title names the connection" "$(kf 'VPN Plugin UI' Title)" \
        "Authenticate VPN office"
expect "external UI: the key is a secret" "$(kf key IsSecret)" true
expect "external UI: a missing key is asked for" "$(kf key ShouldAsk)" true
expect "external UI: Label of the key" "$(kf key Label)" "Shared key"
expect "external UI: no value known" "$(kf key Value)" ""

ext -- peer=192.0.2.1 key-flags=1 "!key=$KEY"
expect "external UI: a known key is not asked again" "$(kf key ShouldAsk)" false
expect "external UI: a known key is handed back as Value" "$(kf key Value)" "$KEY"

ext -r -- peer=192.0.2.1 key-flags=1 "!key=$KEY"
expect "external UI -r: asked again" "$(kf key ShouldAsk)" true

ext -- peer=192.0.2.1 mode=identity
expect "identity mode: only the private key (no psk flags)" "$(groups)" \
        "[VPN Plugin UI] [private-key] "
ext -- peer=192.0.2.1 mode=identity key-flags=1 private-key-flags=1
expect "identity mode with an agent-owned psk: private key and psk" "$(groups)" \
        "[VPN Plugin UI] [key] [private-key] "
ext -- peer=192.0.2.1 mode=identity key-flags=4
expect "identity mode, psk not required: not asked" "$(groups)" "[VPN Plugin UI] [private-key] "

# ---- classic mode ------------------------------------------------------------------------------
# The answer, then the dialog must still run until QUIT.
mkfifo "$TMP/in"
timeout 10 "$DIALOG" -u u -n office -s "$SERVICE" <"$TMP/in" >"$TMP/out" 2>"$TMP/err" &
DPID=$!
exec 3>"$TMP/in"
details peer=192.0.2.1 "!key=$KEY" >&3
for _ in $(seq 50); do [[ -s $TMP/out ]] && break; sleep 0.1; done
expect "classic: secrets as name/value lines and an empty line pair" "$(od -c <"$TMP/out")" \
        "$(printf 'key\n%s\n\n\n' "$KEY" | od -c)"
if kill -0 "$DPID" 2>/dev/null; then pass "classic: waits for QUIT after answering"; else
        fail "classic: waits for QUIT after answering"; fi
printf 'QUIT\n' >&3
exec 3>&-
wait "$DPID"
expect "classic: exit status 0 after QUIT" "$?" 0

OUT=$(details peer=192.0.2.1 mode=identity "!private-key=$PRIV" |
        timeout 10 "$DIALOG" -u u -n office -s "$SERVICE" 2>/dev/null)
expect "classic, identity mode: the private key" "$OUT" "$(printf 'private-key\n%s' "$PRIV")"

# No terminal (setsid), no toolkit: the dialog must fail, not hang or answer empty.
OUT=$(details peer=192.0.2.1 | timeout 10 setsid "$DIALOG" -u u -n office -s "$SERVICE" -i \
        2>"$TMP/err")
RC=$?
expect "classic, key missing, no terminal: exit status 1" "$RC" 1
expect "classic, key missing, no terminal: nothing on stdout" "$OUT" ""
if grep -q "external UI support" "$TMP/err"; then pass "classic: says which agents can ask"; else
        fail "classic: says which agents can ask" "$(cat "$TMP/err")"; fi

# ---- misuse ------------------------------------------------------------------------------------
details peer=h | timeout 10 "$DIALOG" -u u -n office -s org.freedesktop.NetworkManager.openvpn \
        --external-ui-mode >/dev/null 2>&1
expect "another service's connection: refused (exit 1)" "$?" 1
: | timeout 10 "$DIALOG" -u u -n office -s "$SERVICE" --external-ui-mode >/dev/null 2>&1
expect "no connection details: refused (exit 1)" "$?" 1

echo "$PASSED passed, $FAILED failed"
((FAILED == 0))
