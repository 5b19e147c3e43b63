#!/bin/bash
# SPDX-License-Identifier: MIT
#
# Render every man page in MAN_DIR as man(1) does, with groff's warnings on:
#   LC_ALL=C.UTF-8 MANROFFSEQ='' MANWIDTH=80 man --warnings -E UTF-8 -l -Tutf8 -Z PAGE
# Each page must render with exit status 0, print nothing on standard error, produce output,
# and carry a .TH line whose name and section match its file name (NAME.SECTION). A page with
# a deliberate mistake is rendered too, to show that a warning is caught.
#
# Usage: render.sh MAN_DIR
set -u

man_dir=$1
passed=0
failed=0
pass() { passed=$((passed + 1)); printf 'PASS: %s\n' "$*"; }
fail() { failed=$((failed + 1)); printf 'FAIL: %s\n' "$*"; }
summary() {
        printf '%d passed, %d failed\n' "$passed" "$failed"
        [ "$failed" -eq 0 ]
}

work=$(mktemp -d "${TMPDIR:-/tmp}/sm-man.XXXXXX")
trap 'rm -rf "$work"' EXIT

if ! command -v man >/dev/null || ! command -v groff >/dev/null; then
        fail "man or groff not found: install man-db and groff-base (tools/setup-debian.sh)"
        summary
        exit 1
fi

# render PAGE: rc of man; the output in $work/out, standard error in $work/err
render() {
        LC_ALL=C.UTF-8 MANROFFSEQ='' MANWIDTH=80 \
                man --warnings -E UTF-8 -l -Tutf8 -Z "$1" >"$work/out" 2>"$work/err"
}

pages=0
for page in "$man_dir"/*.[1-8]; do
        [ -f "$page" ] || continue
        pages=$((pages + 1))
        file=$(basename "$page")
        render "$page"
        rc=$?
        if [ "$rc" -eq 0 ] && [ ! -s "$work/err" ] && [ -s "$work/out" ]; then
                pass "$file renders without warnings"
        else
                fail "$file: rc=$rc, $(wc -c <"$work/out") bytes of output, warnings:"
                sed 's/^/    /' "$work/err"
        fi
        # .TH NAME SECTION: NAME is the file name without its section, in upper case.
        th=$(sed -n 's/^\.TH[[:space:]]\{1,\}\([^[:space:]]*\)[[:space:]]\{1,\}\([^[:space:]]*\).*/\1 \2/p' "$page" | head -1)
        want="$(printf '%s' "${file%.*}" | tr '[:lower:]' '[:upper:]') ${file##*.}"
        if [ "$th" = "$want" ]; then
                pass "$file: .TH $th"
        else
                fail "$file: .TH says '$th', expected '$want'"
        fi
done
if [ "$pages" -gt 0 ]; then
        pass "$pages man pages found in $man_dir"
else
        fail "no man pages in $man_dir"
fi

# The check can fail: a page with an unknown macro must be reported.
printf '.TH BROKEN 1\n.SH NAME\nbroken \\- a page with mistakes\n.XY unknown macro\n' \
        >"$work/broken.1"
render "$work/broken.1"
if [ -s "$work/err" ]; then
        pass "a broken page is caught: $(head -1 "$work/err")"
else
        fail "a page with an unknown macro rendered without a warning"
fi

summary
