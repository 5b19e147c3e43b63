#!/bin/bash
# SPDX-License-Identifier: MIT
#
# Checks the systemd units without systemd as PID 1:
#   - `systemd-analyze verify --man=no` prints nothing for the service and the socket, as
#     instance "test" (unknown keys and bad values only warn and leave the exit status 0, so
#     any output is a failure);
#   - `systemd-analyze security --offline=yes` rates the service at 2.5 or better;
#   - the settings the design fixes are there, and those that would break the TAP are not;
#   - the units meson installs differ from the ones tested here only in the daemon's path;
#   - the checks themselves can fail (a broken unit and an unhardened one are caught);
#   - shadowmesh-relay.service likewise (verify, exposure, its settings), tested as installed
#     with ExecStart= pointing at the relay of this build (src/relay/ beside the daemon).
#
# Usage: units.sh TEST_UNIT_DIR INSTALL_UNIT_DIR BUILT_DAEMON INSTALLED_DAEMON CONFIG_DIR MAN_DIR
#   CONFIG_DIR is <prefix>/<sysconfdir>/shadowmesh, where the units expect NAME.yaml.
set -u

test_dir=$1 install_dir=$2 built_daemon=$3 installed_daemon=$4 config_dir=$5 man_dir=$6
built_relay=$(dirname "$built_daemon")/relay/shadowmesh-relay
installed_relay=$(dirname "$installed_daemon")/shadowmesh-relay
max_exposure=2.5
passed=0
failed=0

pass() { passed=$((passed + 1)); printf 'PASS: %s\n' "$*"; }
fail() { failed=$((failed + 1)); printf 'FAIL: %s\n' "$*"; }
check() { # check NAME CMD...: pass when CMD succeeds
        local name=$1
        shift
        if "$@"; then pass "$name"; else fail "$name"; fi
}
summary() {
        printf '%d passed, %d failed\n' "$passed" "$failed"
        [ "$failed" -eq 0 ]
}

if ! command -v systemd-analyze >/dev/null; then
        fail "systemd-analyze not found: install Debian's systemd package (tools/setup-debian.sh)"
        summary
        exit 1
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/sm-units.XXXXXX")
trap 'rm -rf "$work"' EXIT
cp "$test_dir/shadowmesh@.service" "$test_dir/shadowmesh@.socket" "$work/"

# verify_quiet UNIT_DIR UNIT: verify UNIT (a path inside UNIT_DIR, possibly an instance of a
# template there); the output goes to $work/out. Succeeds when rc is 0 and nothing is printed.
verify_quiet() {
        (cd "$1" && systemd-analyze verify --man=no "./$2") >"$work/out" 2>&1
        local rc=$?
        [ "$rc" -eq 0 ] && [ ! -s "$work/out" ]
}

# exposure UNIT_DIR UNIT: print the overall exposure level, e.g. "2.4"
exposure() {
        (cd "$1" && systemd-analyze security --offline=yes "./$2" 2>&1) |
                sed -n 's/^.*Overall exposure level for [^:]*: \([0-9]*\.[0-9]*\).*$/\1/p'
}

# le A B: A <= B for decimals such as 2.4
le() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 <= b + 0) }'; }

# settings FILE: the unit's assignments without comments, one "Key=value" a line
settings() { grep -v '^[[:space:]]*[#;]' "$1" | grep '='; }

svc=$work/shadowmesh@.service
sock=$work/shadowmesh@.socket

echo "== the units under test use the daemon of this build"
check "ExecStart=$built_daemon --instance %i $config_dir/%i.yaml" \
        grep -qxF "ExecStart=$built_daemon --instance %i $config_dir/%i.yaml" "$svc"
check "$built_daemon is executable" test -x "$built_daemon"

echo "== systemd-analyze verify --man=no prints nothing"
for u in shadowmesh@test.service shadowmesh@test.socket; do
        if verify_quiet "$work" "$u"; then
                pass "verify $u: no output"
        else
                fail "verify $u:"
                sed 's/^/    /' "$work/out"
        fi
done
# A plain instance name and one that needs escaping load alike.
for u in shadowmesh@peer2.service shadowmesh@peer-1.service; do
        if verify_quiet "$work" "$u"; then pass "verify $u: no output"
        else fail "verify $u:"; sed 's/^/    /' "$work/out"; fi
done
# The caveat the unit's comment and shadowmeshd(8) document: a leading digit makes BusName=
# invalid (the daemon's label would be _31x); systemd ignores it with a warning.
verify_quiet "$work" shadowmesh@1x.service
check "verify shadowmesh@1x.service warns about BusName= (documented caveat)" \
        grep -q 'Invalid bus name, ignoring: org.shadowmesh1.Instance.1x' "$work/out"

echo "== systemd-analyze security --offline=yes"
level=$(exposure "$work" shadowmesh@test.service)
printf '  overall exposure level: %s\n' "${level:-<none>}"
check "exposure $level <= $max_exposure" le "${level:-99}" "$max_exposure"
check "--threshold=25 passes" \
        bash -c "cd '$work' && systemd-analyze security --offline=yes --threshold=25 \
                ./shadowmesh@test.service >/dev/null 2>&1"

echo "== settings of shadowmesh@.service"
settings "$svc" >"$work/svc.settings"
for want in 'Type=notify' \
            'BusName=org.shadowmesh1.Instance.%i' \
            'WatchdogSec=30s' \
            'Restart=on-failure' \
            'RestartSec=2s' \
            'Documentation=man:shadowmeshd(8) man:shadowmesh.yaml(5)' \
            'After=network-online.target' \
            'Wants=network-online.target' \
            'CapabilityBoundingSet=CAP_NET_ADMIN CAP_NET_BIND_SERVICE' \
            'DevicePolicy=closed' \
            'DeviceAllow=/dev/net/tun rw' \
            'ProtectSystem=strict' \
            'NoNewPrivileges=yes' \
            'WantedBy=multi-user.target'; do
        check "$want" grep -qxF -- "$want" "$work/svc.settings"
done
# Each of these would break the daemon: a private network namespace or user namespace keeps
# the TAP away from the host (or forbids creating it); private /dev hides /dev/net/tun.
for bad in PrivateNetwork PrivateUsers PrivateDevices DynamicUser SecureBits; do
        check "no $bad=" bash -c "! grep -q '^$bad=' '$work/svc.settings'"
done

echo "== settings of shadowmesh@.socket"
settings "$sock" >"$work/sock.settings"
for want in 'ListenDatagram=9001' \
            'Service=shadowmesh@%i.service' \
            'WantedBy=sockets.target'; do
        check "$want" grep -qxF -- "$want" "$work/sock.settings"
done

echo "== shadowmesh-relay.service"
relay_svc=$work/shadowmesh-relay.service
if [ -f "$install_dir/shadowmesh-relay.service" ]; then
        sed "s|$installed_relay|$built_relay|g" "$install_dir/shadowmesh-relay.service" >"$relay_svc"
        check "installed: ExecStart=$installed_relay" \
                grep -qxF "ExecStart=$installed_relay" "$install_dir/shadowmesh-relay.service"
        check "$built_relay is executable" test -x "$built_relay"
        if verify_quiet "$work" shadowmesh-relay.service; then
                pass "verify shadowmesh-relay.service: no output"
        else
                fail "verify shadowmesh-relay.service:"
                sed 's/^/    /' "$work/out"
        fi
        level=$(exposure "$work" shadowmesh-relay.service)
        printf '  overall exposure level: %s\n' "${level:-<none>}"
        check "relay exposure $level <= $max_exposure" le "${level:-99}" "$max_exposure"
        settings "$relay_svc" >"$work/relay.settings"
        for want in 'Type=notify' \
                    "ExecStart=$built_relay" \
                    'WatchdogSec=30s' \
                    'Restart=on-failure' \
                    'RestartPreventExitStatus=64' \
                    'Documentation=man:shadowmesh-relay(8)' \
                    'DynamicUser=yes' \
                    'CapabilityBoundingSet=' \
                    'NoNewPrivileges=yes' \
                    'ProtectSystem=strict' \
                    'RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6' \
                    'WantedBy=multi-user.target'; do
                check "$want" grep -qxF -- "$want" "$work/relay.settings"
        done
        # It owns no bus name and needs no capability: none may sneak back in.
        for bad in BusName AmbientCapabilities=CAP User Group; do
                check "no $bad" bash -c "! grep -q '^$bad' '$work/relay.settings'"
        done
        mkdir -p "$work/relay-soft"
        sed '/^DynamicUser=/,/^\[Install\]/{/^\[Install\]/!d}' "$relay_svc" \
                >"$work/relay-soft/shadowmesh-relay.service"
        soft=$(exposure "$work/relay-soft" shadowmesh-relay.service)
        printf '  relay exposure without the sandbox: %s\n' "${soft:-<none>}"
        check "an unhardened relay unit is rated above $max_exposure" \
                bash -c "! awk -v a='${soft:-0}' -v b=$max_exposure 'BEGIN { exit !(a + 0 <= b + 0) }'"
else
        fail "$install_dir/shadowmesh-relay.service missing"
fi

echo "== every man page the units name is in man/"
for page in $(sed -n 's/^Documentation=//p' "$svc" "$sock" "$install_dir/shadowmesh-relay.service" 2>/dev/null |
                tr ' ' '\n' | sed -n 's/^man://p' | sort -u); do
        name=${page%%(*}
        section=${page#*(}
        section=${section%)}
        check "Documentation=man:$page -> man/$name.$section" test -f "$man_dir/$name.$section"
done

echo "== installed units = tested units, but for the daemon's path"
for u in shadowmesh@.service shadowmesh@.socket; do
        if [ ! -f "$install_dir/$u" ]; then
                fail "$install_dir/$u missing"
                continue
        fi
        sed "s|$installed_daemon|$built_daemon|g" "$install_dir/$u" >"$work/installed-$u"
        if cmp -s "$work/installed-$u" "$work/$u"; then
                pass "$u: only the daemon path differs"
        else
                fail "$u differs from the tested copy beyond the daemon path:"
                diff -u "$work/$u" "$work/installed-$u" | sed 's/^/    /'
        fi
done
check "installed: ExecStart=$installed_daemon --instance %i $config_dir/%i.yaml" \
        grep -qxF "ExecStart=$installed_daemon --instance %i $config_dir/%i.yaml" \
        "$install_dir/shadowmesh@.service"

echo "== the checks can fail"
mkdir -p "$work/broken" "$work/soft"
sed 's/^ProtectSystem=strict$/ProtectSystem=strictest\nBogusKey=1/' "$svc" >"$work/broken/shadowmesh@.service"
verify_quiet "$work/broken" shadowmesh@test.service
rc=$?
check "a bad value and an unknown key are caught (rc 0, but output)" \
        bash -c "[ $rc -ne 0 ] && grep -q BogusKey '$work/out'"
# Without its sandbox (every line after CapabilityBoundingSet= dropped) the unit scores worse.
sed '/^CapabilityBoundingSet=/,/^\[Install\]/{/^\[Install\]/!d}' "$svc" >"$work/soft/shadowmesh@.service"
soft=$(exposure "$work/soft" shadowmesh@test.service)
printf '  exposure without the sandbox: %s\n' "${soft:-<none>}"
check "an unhardened unit is rated above $max_exposure" bash -c "! awk -v a='${soft:-0}' -v b=$max_exposure 'BEGIN { exit !(a + 0 <= b + 0) }'"

summary
