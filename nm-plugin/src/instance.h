/* SPDX-License-Identifier: MIT */
/*
 * One shadowmeshd process serving one NetworkManager connection, seen from the service:
 *
 *   instance_start   private runtime directory (0700) with the config and key files (0600),
 *                    spawn `shadowmeshd --instance NAME CONFIG` (nothing secret on its command
 *                    line or in its environment; SIGTERM when the service dies), relay its
 *                    output to the service's log
 *   bus name         org.shadowmesh1.Instance.<label> appears within start_timeout_sec: the
 *                    daemon has read its files, so they are wiped right away
 *   Connect          org.shadowmesh1.Tunnel.Connect(peer, {timeout_sec}), asynchronously;
 *                    then GetStatus for TapDevice, Mtu and Endpoint -> connected()
 *   further peers    then Connect(peers[k], {timeout_sec, public_key}) one after the other (the
 *                    daemon takes one Connect at a time); one that fails is logged with its
 *                    address and does not fail the connection
 *   failed()         Connect failed, the daemon exited or did not appear, or its tunnel went to
 *                    State "disconnected": called at most once, with a translated message and,
 *                    when the daemon answered with an error, that error's D-Bus name
 *   instance_stop    SIGTERM, SIGKILL after stop_timeout_sec, reap, wipe the runtime
 *                    directory -> stopped()
 *
 * Driven by the GLib main loop; nothing here blocks except instance_free() on an instance that
 * was never stopped (it kills the daemon and waits for it).
 */
#pragma once

#include <gio/gio.h>
#include <stdbool.h>
#include <stdint.h>

#include "settings.h"

struct instance;

struct instance_callbacks {
        void (*connected)(struct instance *i, void *userdata);
        /* error_name: the D-Bus error name the daemon answered with (one of
         * include/shadowmesh/bus-api.h's), or NULL when no error reply failed it. */
        void (*failed)(struct instance *i, const char *error_name, const char *message,
                       void *userdata);
        void (*stopped)(struct instance *i, void *userdata);
};

struct instance_options {
        const char *shadowmeshd; /* path of the daemon */
        const char *runtime_dir; /* parent of the per-connection directories */
        bool debug;              /* daemon.log_level debug */
        unsigned start_timeout_sec;
        unsigned connect_timeout_sec; /* Connect's timeout_sec */
        unsigned stop_timeout_sec;
};

bool instance_start(const struct settings *s, const struct instance_options *o,
                    GDBusConnection *bus, const struct instance_callbacks *cb, void *userdata,
                    struct instance **ret, GError **error);

/* Idempotent; stopped() follows from the main loop (also when the daemon had exited already). */
void instance_stop(struct instance *i);
bool instance_is_stopped(const struct instance *i);

/* Valid from connected() on. */
const char *instance_tap_device(const struct instance *i);
uint32_t instance_mtu(const struct instance *i);
const char *instance_endpoint(const struct instance *i);
const char *instance_bus_name(const struct instance *i);
GPid instance_pid(const struct instance *i);

struct instance *instance_free(struct instance *i);
