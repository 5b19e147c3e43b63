#!/usr/bin/env bash
# Cross-build ShadowMesh for arm64 (the prototype's Raspberry Pis, 64-bit Raspberry Pi OS) on a
# Debian 12 amd64 machine, with Debian's multiarch arm64 packages, and run the unit test suite
# under qemu-user.
#
#   tools/cross-arm64.sh          build build-arm64/ (tools/arm64-cross.ini) and run
#                                 `meson test --suite unit` there under qemu-aarch64-static;
#                                 meson prints its summary ("Ok: N ... Fail: N").
#   tools/cross-arm64.sh --deb    build the arm64 .deb files with dpkg-buildpackage -a arm64
#                                 into build-arm64-deb/ (see debian/README.source).
#
# As root it first installs what is missing, idempotently: the arm64 architecture in dpkg,
# crossbuild-essential-arm64, qemu-user-static and the :arm64 libraries (apt-get update only
# when something is missing). Without root it expects them installed.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

mode=unit
case ${1:-} in
"") ;;
--deb) mode=deb ;;
*) echo "usage: $0 [--deb]" >&2; exit 64 ;;
esac

# The arm64 .deb build drops the GTK 4 editor: Debian 12 cannot install libgtk-4-dev:arm64
# (gobject-introspection:arm64 needs python3:arm64). A native build on the Pi has both editors.
deb_profiles=pkg.shadowmesh.nogtk4

# Host tools, and the arm64 libraries the daemon, shadowmeshctl, the relay and the unit tests
# link (the NetworkManager plugin is not built for the unit tests: it has none).
# pkgconf:arm64 is what gives aarch64-linux-gnu-pkg-config, the pkgconfig of arm64-cross.ini.
host_packages=(crossbuild-essential-arm64 qemu-user-static meson ninja-build pkgconf)
arm64_packages=(pkgconf:arm64 libc6-dev:arm64 libsodium-dev:arm64 libsystemd-dev:arm64 libmnl-dev:arm64
        libyaml-dev:arm64 nettle-dev:arm64 libjansson-dev:arm64 libmicrohttpd-dev:arm64)

is_installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

install_missing() {
        local missing=() p
        for p in "$@"; do
                is_installed "$p" || missing+=("$p")
        done
        [ ${#missing[@]} -gt 0 ] || return 0
        if [ "$(id -u)" -ne 0 ]; then
                echo "cross-arm64.sh: missing ${missing[*]}; run as root to install them" >&2
                exit 1
        fi
        echo "cross-arm64.sh: installing ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -q
        apt-get install -y -q --no-install-recommends -o DPkg::Lock::Timeout=300 "${missing[@]}"
}

if ! dpkg --print-foreign-architectures | grep -qx arm64; then
        if [ "$(id -u)" -ne 0 ]; then
                echo "cross-arm64.sh: dpkg does not know arm64; run as root" >&2
                exit 1
        fi
        echo "cross-arm64.sh: dpkg --add-architecture arm64"
        dpkg --add-architecture arm64
        # (install_missing runs apt-get update: the arm64 libraries are missing now)
fi
install_missing "${host_packages[@]}" "${arm64_packages[@]}"

if [ "$mode" = deb ]; then
        # The build dependencies of debian/control for arm64 under the profile: the GTK 3,
        # libnm and libnma :arm64 packages (about 230 packages the first time).
        if ! dpkg-checkbuilddeps -a arm64 -P "$deb_profiles" debian/control 2>/dev/null; then
                [ "$(id -u)" -eq 0 ] || { echo "cross-arm64.sh: build dependencies missing" >&2; exit 1; }
                DEBIAN_FRONTEND=noninteractive apt-get build-dep -y -q --no-install-recommends \
                        -o DPkg::Lock::Timeout=300 -a arm64 -P "$deb_profiles" "$top"
        fi
        # A copy of the tree (dpkg-buildpackage writes into debian/ and next to the source).
        out=$top/build-arm64-deb
        rm -rf "$out"
        mkdir -p "$out/src"
        mapfile -d '' files < <(git -C "$top" ls-files -z --cached --others --exclude-standard)
        keep=()
        for f in "${files[@]}"; do
                # (deleted but not yet committed files are listed; earlier builds are not source)
                [ -e "$top/$f" ] || [ -L "$top/$f" ] || continue
                case $f in
                obj-*/* | debian/tmp/* | debian/.debhelper/* | debian/shadowmesh*/* | \
                        debian/network-manager-shadowmesh*/*) continue ;;
                esac
                keep+=("$f")
        done
        (cd "$top" && printf '%s\0' "${keep[@]}" | xargs -0 cp --parents -a -t "$out/src")
        (cd "$out/src" && DEB_BUILD_OPTIONS="parallel=$(nproc)" \
                dpkg-buildpackage -a arm64 -P"$deb_profiles" -us -uc -b)
        echo "cross-arm64.sh: arm64 packages in $out:"
        for deb in "$out"/*.deb; do
                printf '  %s (%s)\n' "${deb##*/}" "$(dpkg-deb -f "$deb" Architecture)"
        done
        # The packaged programs run (under qemu): unpacked, never installed on this machine.
        version=$(cd "$out/src" && dpkg-parsechangelog -S Version)
        unpacked=$out/unpacked
        dpkg-deb -x "$out/shadowmesh_${version}_arm64.deb" "$unpacked"
        dpkg-deb -x "$out/shadowmesh-relay_${version}_arm64.deb" "$unpacked"
        for prog in usr/sbin/shadowmeshd usr/bin/shadowmeshctl usr/sbin/shadowmesh-relay; do
                got=$(qemu-aarch64-static "$unpacked/$prog" --version)
                if [ "$got" != "${prog##*/} $version" ]; then
                        echo "cross-arm64.sh: $prog --version under qemu printed '$got'" >&2
                        exit 1
                fi
                echo "cross-arm64.sh: $prog --version under qemu: $got"
        done
        exit 0
fi

build="build-arm64"
if [ ! -f "$build/build.ninja" ]; then
        meson setup "$build" --cross-file tools/arm64-cross.ini -Dwerror=true \
                --buildtype=debugoptimized -Dnm_plugin=disabled -Dnetns_tests=false
fi
ninja -C "$build"
machine=$(readelf -h "$build/src/shadowmeshd" | sed -n 's/^ *Machine: *//p')
if [ "$machine" != AArch64 ]; then
        echo "cross-arm64.sh: $build/src/shadowmeshd is not an arm64 binary (${machine:-?})" >&2
        exit 1
fi
echo "cross-arm64.sh: $build/src/shadowmeshd is an $machine binary"
# The unit suite under qemu (the cross file's exe_wrapper): emulation is slow, hence the
# timeout multiplier.
meson test -C "$build" --suite unit --print-errorlogs --num-processes "$(nproc)" \
        --timeout-multiplier 3
