#!/bin/bash
# SPDX-License-Identifier: MIT
#
# bash completion for shadowmeshctl (shell-completion/bash/shadowmeshctl), driven the way bash
# drives it: COMP_WORDS and COMP_CWORD set, the function called, COMPREPLY read. Instance names
# come from the bus: two daemons ("alpha" and "peer-1", whose bus label is escaped as peer_2d1)
# run on a private system-like bus, and the completion must offer exactly their plain names.
set -euo pipefail
# shellcheck source=tests/dbus/lib.sh
source "$(dirname "$(dirname "$(readlink -f "$0")")")/dbus/lib.sh"

[[ -n ${SHADOWMESHCTL:-} ]] || skip "SHADOWMESHCTL is not set (shadowmeshctl is not built)"
dbus_init
SHADOWMESHCTL=$(readlink -f "$SHADOWMESHCTL")
COMPLETION=$SOURCE_ROOT/shell-completion/bash/shadowmeshctl
[[ -f $COMPLETION ]] || { echo "$COMPLETION not found" >&2; exit 1; }

# complete LINE: the candidates bash would offer for LINE (the cursor at its end; a trailing
# space starts a new, empty word), sorted, on one line. shadowmeshctl is found on PATH, as in
# a user's shell.
complete_line() {
        PATH="$(dirname "$SHADOWMESHCTL"):$PATH" bash --norc --noprofile -c '
                set -u
                source "$1"
                read -r -a COMP_WORDS <<<"$2"
                [[ $2 == *" " ]] && COMP_WORDS+=("")
                COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
                COMP_LINE=$2
                COMP_POINT=${#2}
                _shadowmeshctl
                printf "%s\n" "${COMPREPLY[@]}" | sort | tr "\n" " "' \
                sh "$COMPLETION" "$1"
}

check_complete() {
        local got
        got=$(complete_line "$2" 2>&1)
        check_eq "$1" "${got% }" "$3"
}

check_eq "the script has no syntax error" "$(bash -n "$COMPLETION" 2>&1)" ""
check_has "it registers itself for shadowmeshctl" \
        "$(bash --norc -c 'source "$1"; complete -p shadowmeshctl' sh "$COMPLETION")" \
        "complete -F _shadowmeshctl shadowmeshctl"

# ---- without any instance: commands and options -------------------------------------------------
start_bus
check_complete "commands and global options" "shadowmeshctl " \
        "--help --instance --json --version -h -i connect disconnect genkey help list netcheck pubkey status"
check_complete "a prefix: co" "shadowmeshctl co" "connect"
check_complete "a prefix: di" "shadowmeshctl di" "disconnect"
check_complete "connect's options" "shadowmeshctl connect --" \
        "--help --instance --public-key --relay --relay-server --timeout"
check_complete "connect --rel" "shadowmeshctl connect --rel" "--relay --relay-server"
check_complete "nothing to offer for --timeout's value" "shadowmeshctl connect --timeout " ""
check_complete "the command after -i NAME" "shadowmeshctl -i alpha sta" "status"
check_complete "help COMMAND" "shadowmeshctl help n" "netcheck"
check_complete "no instance runs: -i offers nothing" "shadowmeshctl -i " ""

# ---- instance names from the bus ----------------------------------------------------------------
setup_pair 57
KEY=$(random_hex_key)
write_config "$TMP/a.yaml" ip4=10.0.0.1/24 key="$KEY"
write_config "$TMP/b.yaml" ip4=10.0.0.2/24 key="$KEY"
start_daemon a "$NS_A" "$TMP/a.yaml" --instance alpha
start_daemon b "$NS_B" "$TMP/b.yaml" --instance peer-1
check "alpha is on the bus" wait_until 10 name_has_owner "$(inst_name alpha)"
check "peer-1 is on the bus" wait_until 10 name_has_owner "$(inst_name peer-1)"
check_complete "-i offers the running instances, by their plain names" "shadowmeshctl -i " \
        "alpha peer-1"
check_complete "--instance p" "shadowmeshctl --instance p" "peer-1"
check_complete "connect -i a" "shadowmeshctl connect -i a" "alpha"
check_complete "-i after the command too" "shadowmeshctl status -i " "alpha peer-1"

summary
