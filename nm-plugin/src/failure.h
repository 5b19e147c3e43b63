/* SPDX-License-Identifier: MIT */
/*
 * Why a connection failed, in NetworkManager's terms: the NM_VPN_PLUGIN_FAILURE_* reason the
 * service reports and the hint its log line gives (what to check). Told apart by the D-Bus error
 * name the daemon answered with (include/shadowmesh/bus-api.h), never by the error's text: the
 * text is for people and may change or be translated.
 */
#pragma once

#include <NetworkManager.h>

struct failure {
        NMVpnPluginFailure reason;
        const char *hint; /* English: for the service's log line */
};

/* The failure for the daemon's D-Bus error error_name (NULL when the connection failed without
 * an error reply: the daemon exited, never appeared, or its tunnel went down). Never NULL: an
 * error with nothing more specific to say is CONNECT_FAILED. */
const struct failure *failure_for_error(const char *error_name);

/* "login-failed", "bad-ip-config" or "connect-failed", for log lines. */
const char *failure_reason_name(NMVpnPluginFailure reason);
