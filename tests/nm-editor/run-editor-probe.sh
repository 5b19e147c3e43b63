#!/bin/bash
# Runs an editor probe (GTK 3 or GTK 4 build of editor-probe.c) on its own Xvfb display.
# Skips (77) only when Xvfb is missing or cannot start.
#
# usage: run-editor-probe.sh PROBE NAME_FILE OUT_PNG [COPY_TO]
#   COPY_TO: also copy the screenshot there (the docs/ pictures; see the
#   nm-editor-screenshots run target).
set -uo pipefail
probe=$1 name=$2 out=$3 copy_to=${4:-}

command -v Xvfb >/dev/null || { echo "# Xvfb is not installed"; exit 77; }
tmp=$(mktemp -d /tmp/nm-editor-probe.XXXXXX)
xpid=
cleanup() {
    if [ -n "$xpid" ]; then
        kill "$xpid" 2>/dev/null
        wait "$xpid" 2>/dev/null
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT

# -displayfd: Xvfb picks a free display number and writes it once it accepts clients.
exec 3>"$tmp/display"
Xvfb -displayfd 3 -screen 0 1280x1024x24 -nolisten tcp -auth /dev/null >"$tmp/xvfb.log" 2>&1 &
xpid=$!
exec 3>&-
for _ in $(seq 100); do
    [ -s "$tmp/display" ] && break
    kill -0 "$xpid" 2>/dev/null || break
    sleep 0.1
done
if [ ! -s "$tmp/display" ]; then
    echo "# Xvfb did not start:"; sed 's/^/# /' "$tmp/xvfb.log"
    exit 77
fi

export DISPLAY=:$(head -n1 "$tmp/display")
# English (the probe compares messages), no accessibility or session bus, software rendering.
export LANGUAGE=C LC_ALL=C.UTF-8 NO_AT_BRIDGE=1 GTK_A11Y=none GDK_BACKEND=x11 GSK_RENDERER=cairo
# No OpenGL: GTK 4 would load (and unload) a Mesa driver for nothing.
export GDK_DEBUG=gl-disable
export XDG_RUNTIME_DIR=$tmp GSETTINGS_BACKEND=memory
unset DBUS_SESSION_BUS_ADDRESS
echo "# DISPLAY=$DISPLAY"
"$probe" "$name" "$out"
rc=$?
if [ $rc -eq 0 ] && [ -n "$copy_to" ]; then
    cp "$out" "$copy_to" && echo "# copied to $copy_to"
fi
exit $rc
