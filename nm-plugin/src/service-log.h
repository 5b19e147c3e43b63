/* SPDX-License-Identifier: MIT */
/*
 * Logging of nm-shadowmesh-service, as NetworkManager asks its VPN services to log: the level
 * from NM_VPN_LOG_LEVEL (a syslog level; --debug raises it to LOG_DEBUG), to syslog when
 * NM_VPN_LOG_SYSLOG=1 (NetworkManager's default when it runs as a system service) and to
 * standard error otherwise, one line per event: "nm-shadowmesh[PID]: <level> message".
 * Messages are in English, for the journal; what the user sees goes through gettext elsewhere.
 *
 * "syslog" is the journal when it runs: each message goes there with the fields
 * NM_CONNECTION=<uuid> (once service_log_set_connection() named it) and SHADOWMESH_INSTANCE=, so
 * that the hint nmcli prints on a failure, `journalctl -xe NM_CONNECTION=<uuid> + NM_DEVICE=...`,
 * shows the plugin's own lines (and its daemon's, which it relays) beside NetworkManager's.
 * Without a journal they go to syslog(3) as before.
 */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <syslog.h>

void service_log_setup(bool debug);
/* The connection this service runs (one per process), for NM_CONNECTION= and
 * SHADOWMESH_INSTANCE=; NULL clears. Copied. */
void service_log_set_connection(const char *uuid, const char *instance);
int service_log_level(void);
void service_log(int level, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

#define log_debug(...) service_log(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) service_log(LOG_INFO, __VA_ARGS__)
#define log_notice(...) service_log(LOG_NOTICE, __VA_ARGS__)
#define log_warning(...) service_log(LOG_WARNING, __VA_ARGS__)
#define log_error(...) service_log(LOG_ERR, __VA_ARGS__)
