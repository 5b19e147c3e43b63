/* SPDX-License-Identifier: MIT */
/*
 * The D-Bus API's names and limits, shared by the daemon (src/bus.c), shadowmeshctl and the
 * NetworkManager plugin. Documented in dbus/org.shadowmesh1.Tunnel.txt.
 */
#pragma once

#define BUS_NAME_PREFIX "org.shadowmesh1.Instance."
#define BUS_PATH_ROOT "/org/shadowmesh1"
#define BUS_PATH_PREFIX "/org/shadowmesh1/instance"
#define BUS_INTERFACE "org.shadowmesh1.Tunnel"
#define BUS_ERROR_PREFIX "org.shadowmesh1.Error."

/* Connect's timeout_sec option: the default when absent, and the largest accepted. */
#define CONNECT_TIMEOUT_DEFAULT_SEC 30
#define CONNECT_TIMEOUT_MAX_SEC 3600
