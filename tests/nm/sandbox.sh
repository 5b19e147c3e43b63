#!/bin/bash
# SPDX-License-Identifier: MIT
#
# Where systemd is PID 1, nm-shadowmesh-service starts shadowmeshd with systemd-run and the
# protections of systemd/shadowmesh@.service (nm-plugin/src/instance.c, sandbox_properties).
# systemd is not PID 1 on the test machines, so this holds the two lists together: every
# hardening line of the unit's [Service] section (from "# Hardening" on) is in the plugin's
# list, the list has nothing else, and each property is compiled into the service.
#
# Usage: sandbox.sh SOURCE_ROOT NM_SHADOWMESH_SERVICE
set -euo pipefail
source "$(dirname "$(readlink -f "$0")")/../common.sh"

ROOT=$1
SERVICE=$2
UNIT=$ROOT/systemd/shadowmesh@.service
SOURCE=$ROOT/nm-plugin/src/instance.c

unit_list=$(awk '/^\[Service\]/ { svc = 1 } /^\[Install\]/ { svc = 0 }
                 svc && /^# Hardening/ { on = 1 }
                 svc && on && /^[A-Za-z]+=/ { print }' "$UNIT" | sort)
plugin_list=$(awk '/^static const char \*const sandbox_properties\[\] = \{/ { on = 1; next }
                   on && /^\};/ { on = 0 }
                   on { sub(/^ *"/, ""); sub(/",$/, ""); print }' "$SOURCE" | sort)

check "the unit has hardening properties" test -n "$unit_list"
note "$(wc -l <<<"$unit_list") properties in $UNIT"
check_eq "the plugin's systemd-run properties are the unit's hardening, no more, no less" \
        "$plugin_list" "$unit_list"
missing=""
while read -r p; do
        grep -qaF -- "$p" "$SERVICE" || missing+="$p; "
done <<<"$unit_list"
check_eq "each property is compiled into nm-shadowmesh-service" "$missing" ""
summary
