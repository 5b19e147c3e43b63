#!/bin/bash
# SPDX-License-Identifier: MIT
#
# The Debian packages, end to end, on this machine: build them from the source tree with
# dpkg-buildpackage (a copy of the tree, so the source stays clean), run lintian, install them
# with apt-get, then check what a user of the installed packages relies on:
#   - the programs in /usr/sbin and /usr/bin run (--version prints the package's version);
#   - /etc/shadowmesh exists with mode 0700, and no unit is enabled or running;
#   - `systemd-analyze verify` accepts the installed units;
#   - the NetworkManager .name file names programs and a plugin that are installed;
#   - a tunnel between two network namespaces made here, started from /usr/sbin/shadowmeshd
#     (the installed binary, not the build tree's), pings both ways, and the installed
#     shadowmeshctl lists both instances through a private bus that loads the installed policy;
# and finally purge them and check that nothing is left: no file of any package, no
# /etc/shadowmesh, no unit enablement, no dpkg or deb-systemd-helper state.
#
# It changes the machine, so it restores it whatever happens: packages it installed are purged
# by the EXIT trap even when a check fails or the script aborts. It refuses to run (skip) when
# any of the packages is already installed, since it would replace and purge the owner's
# installation, and fails when files of the packages already exist without a package.
# Runs alone (a lock): two runs would install and purge under each other.
#
# Usage: package.sh SOURCE_ROOT. Needs root (skips without); the build dependencies are those of
# debian/control (tools/setup-debian.sh installs them).

# Functions here are called through check, wait_until and the EXIT trap, which shellcheck cannot see.
# shellcheck disable=SC2317
set -euo pipefail
# shellcheck source=tests/netns/lib.sh
source "$(dirname "$(dirname "$(readlink -f "$0")")")/netns/lib.sh"

SRC=$(readlink -f "${1:?usage: package.sh SOURCE_ROOT}")
PACKAGES=(shadowmesh shadowmesh-relay network-manager-shadowmesh network-manager-shadowmesh-gnome)
INSTALLED_HERE=0   # 1 once apt-get may have installed a package: the trap purges them
LOCK=/run/lock/shadowmesh-package-test.lock
APT_OPTS=(-q -y --no-install-recommends -o DPkg::Lock::Timeout=300)

[[ $EUID -eq 0 ]] || skip "needs root (installs and purges Debian packages)"
need dpkg-buildpackage dpkg-dev
need dh debhelper
need lintian lintian
need systemd-analyze systemd
need apt-get apt
need dbus-daemon dbus-daemon
[[ -f $SRC/debian/control ]] || { echo "no debian/control in $SRC" >&2; exit 1; }

installed() { [[ $(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null) == installed ]]; }
# Any state at all (installed, config-files, half-installed...): not "not-installed".
known_to_dpkg() {
        local s
        s=$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null) || return 1
        [[ -n $s && $s != not-installed ]]
}

for p in "${PACKAGES[@]}"; do
        if known_to_dpkg "$p"; then
                skip "$p is already on this machine ($(dpkg-query -W -f='${db:Status-Status}' "$p")):" \
                        "the test would replace and purge it"
        fi
done

purge_packages() {
        local p present=()
        for p in "${PACKAGES[@]}"; do
                known_to_dpkg "$p" && present+=("$p")
        done
        ((${#present[@]} == 0)) && return 0
        DEBIAN_FRONTEND=noninteractive apt-get purge "${APT_OPTS[@]}" "${present[@]}" \
                >>"$TMP/purge.log" 2>&1
}

cleanup() {
        local rc=$?
        cleanup_begin "$rc"
        stop_own_pids
        stop_pid "$BUS_PID"
        del_namespaces
        if ((INSTALLED_HERE)); then
                # Restore the machine even after a failure: what this test installed goes.
                purge_packages || echo "# purging the packages failed: see purge.log"
                for p in "${PACKAGES[@]}"; do
                        if known_to_dpkg "$p"; then
                                echo "$FAIL_MARK $p is still known to dpkg after the cleanup"
                                FAILED=$((FAILED + 1))
                        fi
                done
        fi
        cleanup_end "$rc"
}

TMP=$(mktemp -d "${TMPDIR:-/tmp}/shadowmesh-package.XXXXXX")
DUMP_LOG_LINES=60
trap cleanup EXIT
trap 'exit 130' INT TERM

exec {lock_fd}>"$LOCK"
flock -w 600 "$lock_fd" || { echo "another package test holds $LOCK" >&2; exit 1; }

# ---- build ----------------------------------------------------------------------------------
# A copy of the tree: the files git knows plus untracked ones it does not ignore, without what
# an earlier build left in it, or the whole tree without build directories when it is no git
# checkout.
mkdir "$TMP/src"
# build_product PATH: what a build left in the tree (dpkg-buildpackage's or meson's), not source.
build_product() {
        case $1 in
        obj-*/* | build*/* | debian/tmp/* | debian/.debhelper/* | debian/files | \
                debian/debhelper-build-stamp | debian/*.debhelper.log | debian/*.substvars | \
                debian/*.debhelper | debian/shadowmesh*/* | debian/network-manager-shadowmesh*/*)
                return 0 ;;
        esac
        return 1
}
if git -C "$SRC" rev-parse --git-dir >/dev/null 2>&1; then
        mapfile -d '' files < <(git -C "$SRC" ls-files -z --cached --others --exclude-standard)
        keep=()
        for f in "${files[@]}"; do
                # (a file deleted but not yet committed is still listed)
                [[ -e $SRC/$f || -L $SRC/$f ]] || continue
                build_product "$f" || keep+=("$f")
        done
        (cd "$SRC" && printf '%s\0' "${keep[@]}" | xargs -0 cp --parents -a -t "$TMP/src")
else
        tar -C "$SRC" --exclude='./build*' --exclude='./obj-*' --exclude='./debian/tmp' \
                --exclude='./debian/.debhelper' -cf - . | tar -C "$TMP/src" -xf -
fi
check "the copy of the source has debian/rules and meson.build" \
        test -f "$TMP/src/debian/rules" -a -f "$TMP/src/meson.build"

VERSION=$(cd "$TMP/src" && dpkg-parsechangelog -S Version)
ARCH=$(dpkg --print-architecture)
note "building shadowmesh $VERSION for $ARCH"
start=$(now_ms)
# nocheck: the unit suite runs in the project's own test run already; this test is about the
# packages. parallel=2: the machine's two cores.
if (cd "$TMP/src" && DEB_BUILD_OPTIONS="nocheck parallel=2" \
        dpkg-buildpackage -us -uc -b) >"$TMP/build.out" 2>&1; then
        pass "dpkg-buildpackage -us -uc -b ($(( ($(now_ms) - start) / 1000 )) s)"
else
        fail "dpkg-buildpackage -us -uc -b" "$(tail -n 30 "$TMP/build.out")"
        summary
fi
DEBS=()
for p in "${PACKAGES[@]}"; do
        deb=$TMP/${p}_${VERSION}_${ARCH}.deb
        check "built $p" test -f "$deb"
        DEBS+=("$deb")
done
((FAILED == 0)) || summary

# ---- lintian --------------------------------------------------------------------------------
# No error, and no warning that debian/ does not justify (overridden tags do not count).
if lintian --fail-on error,warning "$TMP/shadowmesh_${VERSION}_${ARCH}.changes" \
        >"$TMP/lintian.out" 2>&1; then
        pass "lintian: no error and no unjustified warning"
else
        fail "lintian: no error and no unjustified warning" "$(grep -E '^[EW]:' "$TMP/lintian.out")"
fi

# ---- the machine before ---------------------------------------------------------------------
# Every path the packages ship, and whether it exists now: only directories shared with the
# system (/usr/sbin...) may. A file that exists without its package is another installation
# (ninja install with --prefix=/usr) that the packages would overwrite and the purge delete.
: >"$TMP/paths"
for deb in "${DEBS[@]}"; do
        dpkg-deb --fsys-tarfile "$deb" | tar -t | sed 's,^\./,/,; s,/$,,' | grep -v '^/*$' >>"$TMP/paths"
done
sort -u -o "$TMP/paths" "$TMP/paths"
: >"$TMP/existed"
stray=()
while read -r path; do
        if [[ -e $path || -L $path ]]; then
                echo "$path" >>"$TMP/existed"
                [[ -d $path ]] || stray+=("$path") # (a directory, or a link to one: /lib)
        fi
done <"$TMP/paths"
if ((${#stray[@]})); then
        fail "no file of the packages exists before they are installed" "${stray[@]}"
        summary
fi
pass "no file of the packages exists before they are installed ($(wc -l <"$TMP/paths") paths)"

# State that no package lists but the maintainer scripts or dpkg create.
state_snapshot() {
        {
                find /etc /var/lib/dpkg/info /var/lib/systemd /lib/systemd /usr/lib/systemd \
                        -name '*shadowmesh*' 2>/dev/null || true
                [[ ! -e /run/shadowmesh ]] || echo /run/shadowmesh
        } | sort
}
state_snapshot >"$TMP/state.before"

# ---- install --------------------------------------------------------------------------------
# apt-get resolves nothing from the network here: the dependencies must already be installed
# (tools/setup-debian.sh), so that the purge restores the machine exactly.
sim=$(apt-get install -s "${APT_OPTS[@]}" "${DEBS[@]}" 2>&1 | sed -n 's/^Inst \([^ ]*\) .*/\1/p' | sort)
check_eq "apt-get would install exactly the four packages" "$sim" \
        "$(printf '%s\n' "${PACKAGES[@]}" | sort)"
if [[ $sim != "$(printf '%s\n' "${PACKAGES[@]}" | sort)" ]]; then
        summary
fi
INSTALLED_HERE=1
if DEBIAN_FRONTEND=noninteractive apt-get install "${APT_OPTS[@]}" "${DEBS[@]}" \
        >"$TMP/install.log" 2>&1; then
        pass "apt-get install the four packages"
else
        fail "apt-get install the four packages" "$(tail -n 20 "$TMP/install.log")"
fi
for p in "${PACKAGES[@]}"; do
        check "$p is installed" installed "$p"
done

# ---- the installed programs -----------------------------------------------------------------
check_eq "/usr/sbin/shadowmeshd --version" "$(/usr/sbin/shadowmeshd --version 2>&1)" \
        "shadowmeshd $VERSION"
check_eq "/usr/bin/shadowmeshctl --version" "$(/usr/bin/shadowmeshctl --version 2>&1)" \
        "shadowmeshctl $VERSION"
check_eq "/usr/sbin/shadowmesh-relay --version" "$(/usr/sbin/shadowmesh-relay --version 2>&1)" \
        "shadowmesh-relay $VERSION"
check_eq "/etc/shadowmesh: a directory, mode 700, root:root" \
        "$(stat -c '%F %a %U:%G' /etc/shadowmesh 2>&1)" "directory 700 root:root"
check_eq "a German translation is installed" \
        "$(find /usr/share/locale/de/LC_MESSAGES -name shadowmesh.mo)" \
        /usr/share/locale/de/LC_MESSAGES/shadowmesh.mo
check "man shadowmeshd(8) is installed" test -f /usr/share/man/man8/shadowmeshd.8.gz

# Nothing enabled: no symlink to any of the units anywhere in /etc/systemd, and no record of
# an enablement by deb-systemd-helper.
enabled=$(find /etc/systemd -name '*shadowmesh*' 2>/dev/null || true)
check_eq "no unit is enabled (/etc/systemd has no shadowmesh link)" "$enabled" ""
dsh=$(find /var/lib/systemd/deb-systemd-helper-enabled -name '*shadowmesh*' -type l 2>/dev/null || true)
check_eq "deb-systemd-helper enabled nothing" "$dsh" ""

# ---- systemd-analyze verify of the installed units ------------------------------------------
verify() {
        systemd-analyze verify --man=no "$1" >"$TMP/verify.out" 2>&1 && [[ ! -s $TMP/verify.out ]]
}
for u in /lib/systemd/system/shadowmesh@test.service /lib/systemd/system/shadowmesh@test.socket \
        /lib/systemd/system/shadowmesh-relay.service; do
        if verify "$u"; then
                pass "systemd-analyze verify $u: no output"
        else
                fail "systemd-analyze verify $u" "$(cat "$TMP/verify.out")"
        fi
done
check "shadowmesh@.service starts /usr/sbin/shadowmeshd" grep -qxF \
        "ExecStart=/usr/sbin/shadowmeshd --instance %i /etc/shadowmesh/%i.yaml" \
        /lib/systemd/system/shadowmesh@.service

# ---- NetworkManager -------------------------------------------------------------------------
name=/usr/lib/NetworkManager/VPN/nm-shadowmesh-service.name
for key in program auth-dialog plugin; do
        target=$(sed -n "s/^$key=//p" "$name" 2>/dev/null | head -n 1)
        check "$name: $key= names an installed file (${target:-<none>})" test -n "$target" -a -f "$target"
done
for so in libnm-vpn-plugin-shadowmesh-editor.so libnm-gtk4-vpn-plugin-shadowmesh-editor.so; do
        check "the editor $so is installed" test -f "$(dirname "$(sed -n 's/^plugin=//p' "$name")")/$so"
done

# ---- a tunnel from the installed daemon -----------------------------------------------------
SHADOWMESHD=/usr/sbin/shadowmeshd
require_netns "sm$$"
SUBNET=53
UNDER_A=10.99.$SUBNET.1
UNDER_B=10.99.$SUBNET.2
setup_pair
KEY=$(random_hex_key)
write_config "$TMP/a.yaml" ip4=$TUN4_A/24 peer="$UNDER_B:$PORT" key="$KEY"
write_config "$TMP/b.yaml" ip4=$TUN4_B/24 peer="" key="$KEY"
# A private system-like bus with the installed policy only: the daemons own their names
# through it and the installed shadowmeshctl finds them.
start_private_bus "$TMP/bus" "$TMP/dbus-daemon.log" /usr/share/dbus-1/system.d/org.shadowmesh1.conf
start_daemon b "$NS_B" "$TMP/b.yaml" --instance b
check "b (installed daemon): listening on udp port $PORT" \
        wait_log b "listening on udp port $PORT" 10
start_daemon a "$NS_A" "$TMP/a.yaml" --instance a
check "handshake complete on a" wait_log a "handshake complete with peer $UNDER_B:$PORT" 15
check "ping a->b through the tunnel" wait_ping 20 "$NS_A" "$TUN4_B"
check "ping b->a through the tunnel" wait_ping 10 "$NS_B" "$TUN4_A"
list=$(/usr/bin/shadowmeshctl list 2>&1 || true)
check "shadowmeshctl list (installed policy and client): a connected" grep -qE '^a +connected ' <<<"$list"
check "shadowmeshctl list (installed policy and client): b connected" grep -qE '^b +connected ' <<<"$list"
check_eq "the daemons run /usr/sbin/shadowmeshd" \
        "$(readlink "/proc/${DAEMON_PID[a]}/exe") $(readlink "/proc/${DAEMON_PID[b]}/exe")" \
        "/usr/sbin/shadowmeshd /usr/sbin/shadowmeshd"
for side in a b; do
        if stop_daemon "$side" TERM 10; then
                check_eq "$side: exit status after SIGTERM" "$EXIT_CODE" 0
        else
                fail "$side stops within 10 s of SIGTERM"
        fi
done
del_namespaces
NAMESPACES=()
stop_pid "$BUS_PID"
BUS_PID=""

# ---- purge: nothing left --------------------------------------------------------------------
if purge_packages; then
        pass "apt-get purge the four packages"
else
        fail "apt-get purge the four packages" "$(tail -n 20 "$TMP/purge.log")"
fi
INSTALLED_HERE=0
for p in "${PACKAGES[@]}"; do
        check_not "$p is purged (dpkg knows nothing of it)" known_to_dpkg "$p"
done
left=()
while read -r path; do
        grep -qxF -- "$path" "$TMP/existed" && continue
        [[ -e $path || -L $path ]] && left+=("$path")
done <"$TMP/paths"
if ((${#left[@]})); then
        fail "no file of the packages is left after the purge" "${left[@]}"
else
        pass "no file of the packages is left after the purge"
fi
check_not "/etc/shadowmesh is gone" test -e /etc/shadowmesh
state_snapshot >"$TMP/state.after"
if cmp -s "$TMP/state.before" "$TMP/state.after"; then
        pass "no shadowmesh state left in /etc, /var/lib/dpkg, /var/lib/systemd, /lib/systemd, /run"
else
        fail "no shadowmesh state left in /etc, /var/lib/dpkg, /var/lib/systemd, /lib/systemd, /run" \
                "$(diff "$TMP/state.before" "$TMP/state.after" | grep '^[<>]')"
fi

summary
