#!/bin/bash
# SPDX-License-Identifier: MIT
#
# Install the build into a scratch DESTDIR and compare the result with the tree the project
# promises, computed here from the build's own options (`meson introspect --buildoptions`) and
# from what exists in the source tree:
#   <sbindir>/shadowmeshd, <bindir>/shadowmeshctl and <sbindir>/shadowmesh-relay (when their
#     sources exist), executable;
#   <unitdir>/shadowmesh@.service and shadowmesh@.socket, starting <sbindir>/shadowmeshd, and
#     <unitdir>/shadowmesh-relay.service, starting <sbindir>/shadowmesh-relay, where <unitdir>
#     is systemd.pc's systemdsystemunitdir for prefix /usr and <prefix>/lib/systemd/system
#     otherwise (see systemd/meson.build);
#   <datadir>/dbus-1/system.d/org.shadowmesh1.conf, <datadir>/dbus-1/interfaces/
#     org.shadowmesh1.Tunnel.xml and .Peer.xml, <datadir>/doc/shadowmesh/org.shadowmesh1.Tunnel.txt
#     and .Peer.txt;
#   <datadir>/polkit-1/actions/org.shadowmesh1.policy;
#   <mandir>/manN/ for every man/*.N page;
#   <datadir>/doc/shadowmesh/examples/ for every examples/*.yaml (and no *.key), and networkd/;
#   <datadir>/doc/shadowmesh/LICENSE;
#   <sysconfdir>/shadowmesh/, an empty directory of mode 0700 (the configurations and keys);
# installed data identical to the sources, and nothing else.
#
# Usage: install-tree.sh BUILD_ROOT SOURCE_ROOT
set -u

build=$1 src=$2
passed=0
failed=0
pass() { passed=$((passed + 1)); printf 'PASS: %s\n' "$*"; }
fail() { failed=$((failed + 1)); printf 'FAIL: %s\n' "$*"; }
summary() {
        printf '%d passed, %d failed\n' "$passed" "$failed"
        [ "$failed" -eq 0 ]
}

dest=$(mktemp -d "${TMPDIR:-/tmp}/sm-install.XXXXXX")
trap 'rm -rf "$dest"' EXIT

# The build's directory options, as absolute paths.
prefix="" bindir="" sbindir="" datadir="" mandir="" sysconfdir="" libdir="" libexecdir="" localedir=""
eval "$(meson introspect --buildoptions "$build" | python3 -c '
import json, os, sys
opts = {o["name"]: o["value"] for o in json.load(sys.stdin)}
prefix = opts["prefix"]
print("prefix=%s" % prefix)
for name in ("bindir", "sbindir", "datadir", "mandir", "sysconfdir", "libdir", "libexecdir",
             "localedir"):
        print("%s=%s" % (name, os.path.join(prefix, opts[name])))
')"
if [ -z "$prefix" ] || [ -z "$sbindir" ]; then
        fail "cannot read the build options of $build"
        summary
        exit 1
fi
printf 'prefix=%s sbindir=%s bindir=%s datadir=%s mandir=%s sysconfdir=%s\n' \
        "$prefix" "$sbindir" "$bindir" "$datadir" "$mandir" "$sysconfdir"
if [ "$prefix" = /usr ] && pkg-config --exists systemd; then
        unitdir=$(pkg-config --variable=systemdsystemunitdir systemd)
else
        unitdir=$prefix/lib/systemd/system
fi

if meson install -C "$build" --destdir "$dest" --no-rebuild --quiet >"$dest.log" 2>&1; then
        pass "meson install --destdir"
else
        fail "meson install --destdir:"
        sed 's/^/    /' "$dest.log"
fi
rm -f "$dest.log"

# expect PATH MODE [SOURCE]: PATH (absolute, before DESTDIR) is expected with MODE, and when
# SOURCE is given, with the same content.
: >"$dest.expected"
expect() {
        local path=$1 mode=$2 source=${3:-}
        printf '%s\n' "$path" >>"$dest.expected"
        if [ ! -f "$dest$path" ]; then
                fail "$path is not installed"
                return
        fi
        local got
        got=$(stat -c %a "$dest$path")
        if [ "$got" != "$mode" ]; then
                fail "$path has mode $got, expected $mode"
        elif [ -n "$source" ] && ! cmp -s "$source" "$dest$path"; then
                fail "$path differs from ${source#"$src"/}"
        else
                pass "$path ($mode${source:+, same as ${source#"$src"/}})"
        fi
}

[ -f "$src/src/main.c" ] && expect "$sbindir/shadowmeshd" 755
[ -f "$src/src/ctl/meson.build" ] && expect "$bindir/shadowmeshctl" 755
[ -f "$src/src/relay/meson.build" ] && expect "$sbindir/shadowmesh-relay" 755

expect "$unitdir/shadowmesh@.service" 644
expect "$unitdir/shadowmesh@.socket" 644
want="ExecStart=$sbindir/shadowmeshd --instance %i $sysconfdir/shadowmesh/%i.yaml"
if grep -qxF "$want" "$dest$unitdir/shadowmesh@.service" 2>/dev/null; then
        pass "installed unit: $want"
else
        fail "installed unit lacks: $want"
fi
if [ -f "$src/systemd/shadowmesh-relay.service" ]; then
        expect "$unitdir/shadowmesh-relay.service" 644
        want="ExecStart=$sbindir/shadowmesh-relay"
        if grep -qxF "$want" "$dest$unitdir/shadowmesh-relay.service" 2>/dev/null; then
                pass "installed unit: $want"
        else
                fail "installed unit lacks: $want"
        fi
fi

expect "$datadir/dbus-1/system.d/org.shadowmesh1.conf" 644 "$src/dbus/org.shadowmesh1.conf"
expect "$datadir/dbus-1/interfaces/org.shadowmesh1.Tunnel.xml" 644 \
        "$src/dbus/org.shadowmesh1.Tunnel.xml"
expect "$datadir/doc/shadowmesh/org.shadowmesh1.Tunnel.txt" 644 \
        "$src/dbus/org.shadowmesh1.Tunnel.txt"
expect "$datadir/dbus-1/interfaces/org.shadowmesh1.Peer.xml" 644 \
        "$src/dbus/org.shadowmesh1.Peer.xml"
expect "$datadir/doc/shadowmesh/org.shadowmesh1.Peer.txt" 644 \
        "$src/dbus/org.shadowmesh1.Peer.txt"
expect "$datadir/polkit-1/actions/org.shadowmesh1.policy" 644 "$src/polkit/org.shadowmesh1.policy"

for page in "$src"/man/*.[1-8]; do
        [ -f "$page" ] || continue
        name=$(basename "$page")
        expect "$mandir/man${name##*.}/$name" 644 "$page"
done

for example in "$src"/examples/*.yaml; do
        [ -f "$example" ] || continue
        expect "$datadir/doc/shadowmesh/examples/$(basename "$example")" 644 "$example"
done
if [ "$prefix" = /usr ] && pkg-config --exists bash-completion; then
        compdir=$(pkg-config --variable=completionsdir bash-completion)
else
        compdir=$datadir/bash-completion/completions
fi
expect "$compdir/shadowmeshctl" 644 "$src/shell-completion/bash/shadowmeshctl"

for example in "$src"/examples/networkd/*; do
        [ "$(basename "$example")" != meson.build ] || continue
        expect "$datadir/doc/shadowmesh/examples/networkd/$(basename "$example")" 644 "$example"
done

expect "$datadir/doc/shadowmesh/LICENSE" 644 "$src/LICENSE"
if grep -q "license : 'MIT'" "$src/meson.build" && head -n 1 "$src/LICENSE" | grep -qx 'MIT License'; then
        pass "LICENSE is the MIT license that meson.build declares"
else
        fail "LICENSE does not match meson.build's license"
fi

# The configuration directory: made by the install, empty, root only.
confdir=$sysconfdir/shadowmesh
if [ ! -d "$dest$confdir" ]; then
        fail "$confdir/ is not created"
elif [ "$(stat -c %a "$dest$confdir")" != 700 ]; then
        fail "$confdir/ has mode $(stat -c %a "$dest$confdir"), expected 700"
elif [ -n "$(ls -A "$dest$confdir")" ]; then
        fail "$confdir/ is not empty: $(ls -A "$dest$confdir" | xargs)"
else
        pass "$confdir/ (700, empty)"
fi

# The NetworkManager plugin, its editors and the translations, when this build made them (they
# depend on libnm, libnma/GTK and gettext being present).
if [ -x "$build/nm-plugin/nm-shadowmesh-service" ]; then
        expect "$libexecdir/nm-shadowmesh-service" 755
        expect "$libexecdir/nm-shadowmesh-auth-dialog" 755
        if [ "$prefix" = /usr ] && pkg-config --exists libnm; then
                vpndir=$(pkg-config --variable=vpnservicedir libnm)
        else
                vpndir=$prefix/lib/NetworkManager/VPN
        fi
        expect "$vpndir/nm-shadowmesh-service.name" 644
        expect "$datadir/dbus-1/system.d/nm-shadowmesh-service.conf" 644 \
                "$src/nm-plugin/nm-shadowmesh-service.conf"
        expect "$datadir/metainfo/org.freedesktop.NetworkManager.shadowmesh.metainfo.xml" 644 \
                "$src/nm-plugin/org.freedesktop.NetworkManager.shadowmesh.metainfo.xml"
fi
for lib in libnm-vpn-plugin-shadowmesh.so libnm-vpn-plugin-shadowmesh-editor.so \
        libnm-gtk4-vpn-plugin-shadowmesh-editor.so; do
        [ -f "$build/nm-plugin/editor/$lib" ] && expect "$libdir/NetworkManager/$lib" 755
done
if [ -f "$src/po/LINGUAS" ] && [ -d "$build/po" ]; then
        for lang in $(grep -v '^#' "$src/po/LINGUAS"); do
                expect "$localedir/$lang/LC_MESSAGES/shadowmesh.mo" 644
        done
fi

# Nothing else: every installed file must be expected.
(cd "$dest" && find . -type f -o -type l) | sed 's/^\.//' | sort >"$dest.installed"
sort -o "$dest.expected" "$dest.expected"
extra=$(comm -13 "$dest.expected" "$dest.installed")
if [ -z "$extra" ]; then
        pass "nothing else installed ($(wc -l <"$dest.installed") files)"
else
        fail "unexpected files installed:"
        printf '%s\n' "$extra" | sed 's/^/    /'
fi
if [ "$failed" -ne 0 ]; then
        echo "--- installed tree under DESTDIR:"
        (cd "$dest" && find . | sort | sed 's/^/    /')
fi
rm -f "$dest.expected" "$dest.installed"

summary
