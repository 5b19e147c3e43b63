# SPDX-License-Identifier: MIT
# shellcheck shell=bash
#
# Reading a test's own systemd-journald back (tests/journal/journal.sh, tests/nm/nm-reasons.sh).
# The sourcing script sets JOURNAL_DIR, the directory journald keeps its files in.

# journal MATCH...: the entries that match, one JSON object per line.
journal() { journalctl -D "$JOURNAL_DIR" --no-pager -o json "$@" 2>/dev/null || true; }

# messages JSON_LINES: their MESSAGE fields, one per line.
messages() {
        python3 -c '
import json, sys
for line in sys.argv[1].splitlines():
    print(json.loads(line).get("MESSAGE", ""))' "$1"
}

# field_of JSON_LINES MESSAGE_SUBSTRING FIELD: FIELD of the first entry whose MESSAGE has it.
field_of() {
        python3 -c '
import json, sys
for line in sys.argv[1].splitlines():
    e = json.loads(line)
    if sys.argv[2] in str(e.get("MESSAGE", "")):
        print(e.get(sys.argv[3], "<absent>"))
        break
else:
    print("<no such entry>")' "$1" "$2" "$3"
}
