#!/bin/bash
# The translations are complete and current:
#  - po/POTFILES.in lists every source file of src/ and nm-plugin/ with translatable strings;
#  - po/shadowmesh.pot holds exactly the messages of those files (as `meson compile
#    shadowmesh-pot` would write them now);
#  - each language of po/LINGUAS passes `msgfmt --check --check-format`, translates every
#    message of the sources, and has no fuzzy or untranslated entry.
# usage: check-po.sh SOURCE_ROOT
set -uo pipefail
root=$1
po=$root/po
for tool in msgfmt msgcmp msgattrib xgettext; do
    command -v $tool >/dev/null || { echo "# $tool is not installed (gettext)"; exit 77; }
done
tmp=$(mktemp -d /tmp/po-check.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
passed=0 failed=0
ok() { echo "ok: $*"; passed=$((passed + 1)); }
fail() { echo "FAIL: $*"; failed=$((failed + 1)); }

grep -v -e '^#' -e '^[[:space:]]*$' "$po/POTFILES.in" | sort > "$tmp/listed"

# Files that mark strings, as xgettext itself sees them (same keywords as below).
xgettext_args=(--from-code=UTF-8 --add-comments --keyword=_ --keyword=N_ --keyword=C_:1c,2
               --keyword=NC_:1c,2 --keyword=g_dngettext:2,3 --package-name=shadowmesh)
(cd "$root" && find -H src nm-plugin -name '*.c' -o -name '*.h' | sort > "$tmp/all" &&
    xgettext "${xgettext_args[@]}" -f "$tmp/all" -o "$tmp/all.pot") ||
    fail "xgettext on every source file"
grep '^#: ' "$tmp/all.pot" | tr ' ' '\n' | grep -v '^#:$' | sed 's/:[0-9]*$//' |
    sort -u > "$tmp/marked"
missing=$(comm -13 "$tmp/listed" "$tmp/marked")
if [ -z "$missing" ]; then ok "POTFILES.in lists all $(wc -l < "$tmp/marked") files with messages"
else fail "POTFILES.in misses: $missing"; fi
for f in $(cat "$tmp/listed"); do
    [ -f "$root/$f" ] || fail "POTFILES.in names $f, which does not exist"
done

# The messages as the sources have them now (meson's "glib" preset keywords).
(cd "$root" && xgettext "${xgettext_args[@]}" -f "$tmp/listed" -o "$tmp/fresh.pot") ||
    fail "xgettext on the sources"
n=$(grep -c '^msgid ' "$tmp/fresh.pot")
n=$((n - 1))
if [ -f "$po/shadowmesh.pot" ] &&
   msgcmp --use-untranslated "$po/shadowmesh.pot" "$tmp/fresh.pot" 2>"$tmp/err1" &&
   msgcmp --use-untranslated "$tmp/fresh.pot" "$po/shadowmesh.pot" 2>"$tmp/err2"; then
    ok "po/shadowmesh.pot is current ($n messages)"
else
    fail "po/shadowmesh.pot is not current: run meson compile shadowmesh-pot shadowmesh-update-po"
    sed 's/^/#   /' "$tmp/err1" "$tmp/err2" 2>/dev/null | head -20
fi

for lang in $(grep -v '^#' "$po/LINGUAS"); do
    f=$po/$lang.po
    [ -f "$f" ] || { fail "$lang.po is missing"; continue; }
    if msgfmt --check --check-format -o /dev/null "$f" 2>"$tmp/err"; then
        ok "$lang.po: msgfmt --check --check-format"
    else
        fail "$lang.po: msgfmt --check --check-format"; sed 's/^/#   /' "$tmp/err"
    fi
    # Every message of the sources, translated (untranslated ones count as missing).
    if msgcmp "$f" "$tmp/fresh.pot" 2>"$tmp/err"; then
        ok "$lang.po translates all $n messages of the sources"
    else
        fail "$lang.po lacks translations"; sed 's/^/#   /' "$tmp/err" | head -20
    fi
    fuzzy=$(msgattrib --only-fuzzy --no-obsolete "$f" | grep -c '^msgid ')
    untranslated=$(msgattrib --untranslated --no-obsolete "$f" | grep -c '^msgid ')
    if [ "$fuzzy" -eq 0 ] && [ "$untranslated" -eq 0 ]; then
        ok "$lang.po: no fuzzy or untranslated entry"
    else
        fail "$lang.po: $fuzzy fuzzy, $untranslated untranslated"
    fi
    # A plural message has exactly the forms the language's Plural-Forms header declares.
    nplurals=$(grep -o 'nplurals=[0-9]*' "$f" | head -1 | cut -d= -f2)
    bad=$(awk -v np="$nplurals" '
        /^msgid_plural/ { inplural = 1; max = -1; next }
        inplural && /^msgstr\[[0-9]+\]/ { i = substr($0, 8) + 0; if (i > max) max = i; next }
        inplural && /^$/ { if (max + 1 != np) bad++; inplural = 0 }
        END { if (inplural && max + 1 != np) bad++; print bad + 0 }' "$f")
    if [ -n "$nplurals" ] && [ "$bad" -eq 0 ]; then ok "$lang.po: $nplurals plural forms everywhere"
    else fail "$lang.po: $bad plural messages without nplurals=$nplurals forms"; fi
done

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
