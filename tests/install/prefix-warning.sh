#!/bin/bash
# SPDX-License-Identifier: MIT
#
# meson warns when the prefix puts files where the system never reads them: configure the source
# tree into scratch build directories (configuration only, nothing is built) and check
#   --prefix=/usr/local: a WARNING for the D-Bus policy (<prefix>/share/dbus-1/system.d; dbus-daemon
#     reads only /usr/share/dbus-1/system.d and /etc/dbus-1/system.d) and, when the NetworkManager
#     plugin is built, one for its .name file (<prefix>/lib/NetworkManager/VPN; NetworkManager
#     reads only /usr/lib/NetworkManager/VPN and /etc/NetworkManager/VPN), and the summary says so;
#   --prefix=/usr: no such warning, and the summary names the directories the system reads.
#
# Usage: prefix-warning.sh SOURCE_ROOT MESON NM_PLUGIN (enabled|disabled, as in the build under
# test, so that the scratch configurations make the same parts)
set -u

src=$1 meson=$2 nm=$3
passed=0
failed=0
pass() { passed=$((passed + 1)); printf 'PASS: %s\n' "$*"; }
fail() { failed=$((failed + 1)); printf 'FAIL: %s\n' "$*"; }
# has NAME FILE STRING / lacks NAME FILE STRING
has() { if grep -qF -- "$3" "$2"; then pass "$1"; else fail "$1 (no '$3')"; fi; }
# has_re NAME FILE REGEX: a line matches the extended REGEX.
has_re() { if grep -qE -- "$3" "$2"; then pass "$1"; else fail "$1 (no line matches '$3')"; fi; }
lacks() { if grep -qF -- "$3" "$2"; then fail "$1: $(grep -F -- "$3" "$2")"; else pass "$1"; fi; }

work=$(mktemp -d "${TMPDIR:-/tmp}/sm-prefix.XXXXXX")
trap 'rm -rf "$work"' EXIT

# setup NAME ARGS...: meson setup into $work/NAME; its output in $work/NAME.log.
setup() {
        local name=$1
        shift
        if "$meson" setup "$work/$name" "$src" -Dnm_plugin="$nm" "$@" >"$work/$name.log" 2>&1; then
                pass "meson setup $*"
                return 0
        fi
        fail "meson setup $*:"
        sed 's/^/    /' "$work/$name.log"
        return 1
}

if setup local --prefix=/usr/local; then
        has "/usr/local: warns about the D-Bus policy" "$work/local.log" \
                "WARNING: prefix /usr/local: the D-Bus policy is installed to /usr/local/share/dbus-1/system.d, but dbus-daemon reads policies only from /usr/share/dbus-1/system.d and /etc/dbus-1/system.d"
        has "/usr/local: the summary says so" "$work/local.log" \
                "/usr/local/share/dbus-1/system.d (NOT read by dbus-daemon)"
        if [ "$nm" = enabled ]; then
                has "/usr/local: warns about the NetworkManager .name file" "$work/local.log" \
                        "WARNING: prefix /usr/local: the .name file of the NetworkManager plugin is installed to /usr/local/lib/NetworkManager/VPN, but NetworkManager reads VPN plugins only from /usr/lib/NetworkManager/VPN and /etc/NetworkManager/VPN"
                has "/usr/local: the summary says so (NetworkManager)" "$work/local.log" \
                        "/usr/local/lib/NetworkManager/VPN (NOT read by NetworkManager)"
        fi
        has_re "/usr/local: configurations in /usr/local/etc/shadowmesh" "$work/local.log" \
                '^ +configurations +: /usr/local/etc/shadowmesh$'
fi

if setup usr --prefix=/usr; then
        lacks "/usr: no warning about where files go" "$work/usr.log" "WARNING: prefix"
        lacks "/usr: nothing unread in the summary" "$work/usr.log" "NOT read by"
        has_re "/usr: the D-Bus policy in /usr/share/dbus-1/system.d" "$work/usr.log" \
                '^ +D-Bus policy +: /usr/share/dbus-1/system.d$'
        if [ "$nm" = enabled ]; then
                vpndir=$(pkg-config --variable=vpnservicedir libnm)
                has_re "/usr: the .name file in libnm's vpnservicedir, $vpndir" "$work/usr.log" \
                        "^ +NetworkManager plugin *: $vpndir\$"
        fi
        has_re "/usr: configurations in /etc/shadowmesh" "$work/usr.log" \
                '^ +configurations +: /etc/shadowmesh$'
fi

printf '%d passed, %d failed\n' "$passed" "$failed"
[ "$failed" -eq 0 ]
