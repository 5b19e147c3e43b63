/* SPDX-License-Identifier: MIT */
/*
 * The D-Bus face of an instance (dbus/org.shadowmesh1.Tunnel.txt): sd-bus on the device's
 * sd-event loop. Thin glue: parsing, access checks and replies here; what a call does lives in
 * manager.c (manager_connect, manager_disconnect).
 */
#pragma once

#include "shadowmesh/bus-api.h"

struct device;

/* The polkit actions (polkit/org.shadowmesh1.policy) that authorize a caller who is neither
 * root nor a member of the control group: Connect and Disconnect; NetCheck. */
#define POLKIT_ACTION_CONNECT "org.shadowmesh1.connect"
#define POLKIT_ACTION_NETCHECK "org.shadowmesh1.netcheck"

/* Connect to the system bus ($DBUS_SYSTEM_BUS_ADDRESS honoured), register the objects and ask
 * for the name; on_ready runs once the name is owned (or at once with -ENOTCONN when there is
 * no system bus, and the daemon goes on without its API). Errors: -EEXIST name taken. */
int bus_open(struct device *d, void (*on_ready)(struct device *d, int r));
void bus_close(struct device *d);

/* The daemon is shutting down: a Connect pending over D-Bus gets Cancelled. */
void bus_cancel_connect(struct device *d);

/* The instance's label: name escaped as sd_bus_path_encode() does (malloc'd). */
int bus_label_escape(const char *name, char **ret);
