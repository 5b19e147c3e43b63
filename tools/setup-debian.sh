#!/usr/bin/env bash
# Install everything ShadowMesh needs to build, run its demo and run its whole test suite on
# Debian 12. Run as root. Idempotent: packages already present are left as they are.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
        echo "setup-debian.sh: run as root (it installs Debian packages)" >&2
        exit 1
fi

packages=(
        # build
        gcc clang meson ninja-build pkg-config
        libsodium-dev libsystemd-dev libmnl-dev libyaml-dev nettle-dev
        # the prototype's HTTP control API (and curl, its client, in the tests)
        libmicrohttpd-dev curl
        # tests: vectors (JSON), fuzzing and sanitizers with clang
        libjansson-dev libclang-rt-14-dev
        # end-to-end tests and the demo
        iproute2 iputils-ping iperf3 tcpdump socat util-linux procps kmod python3 strace curl
        # control plane tests: a private system-like bus, busctl, systemd-analyze,
        # systemd-socket-activate, test users
        dbus-daemon dbus-bin systemd passwd
        # NAT traversal tests: a real STUN server and NAT routers (conntrack: flushing a mapping)
        coturn nftables conntrack
        # NetworkManager plugin: a real NetworkManager in the tests, AppStream validation
        network-manager libnm-dev appstream
        # its editors (GTK 3 and GTK 4) under Xvfb, and translations
        libnma-dev libnma-gtk4-dev libgtk-3-dev libgtk-4-dev xvfb xauth gettext fonts-dejavu-core
        # man pages are rendered with warnings on by the test suite
        groff-base man-db
        # Debian packages (debian/, tests/package) and the arm64 cross build with its unit tests
        # under qemu (tools/cross-arm64.sh adds the arm64 architecture and its :arm64 libraries)
        debhelper dpkg-dev lintian crossbuild-essential-arm64 qemu-user-static
        # bench/run.sh's userspace WireGuard peer (benchmarks only; installed without its
        # Recommends, which would pull in a kernel image)
        wireguard-go wireguard-tools
)

# Skip the network entirely when everything is already installed.
missing=()
for p in "${packages[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
        echo "setup-debian.sh: installing ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -q
        apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# The TAP device needs the tun module (built in on most kernels).
[ -e /dev/net/tun ] || modprobe tun 2>/dev/null || true
echo "setup-debian.sh: all build and test dependencies are installed"
