/* SPDX-License-Identifier: MIT */
/*
 * What an instance is doing with its peer, as the D-Bus API and sd_notify report it:
 *
 *   disconnected --Connect / peer.address--> connecting --handshake--> connected
 *   connected --no answer to data, keys expired--> reconnecting --handshake--> connected
 *   any --Disconnect--> disconnected          connecting --Connect timeout--> disconnected
 *
 * A node with no peer (disconnected) still answers handshakes (the prototype's waiting side),
 * unless it was disconnected through the API.
 */
#pragma once

#include <systemd/sd-bus.h>

#include "device.h"

void manager_set_state(struct device *d, enum tunnel_state state);
/* Start connecting to peer ("host[:port]", or "" to take the peer the relay introduces).
 * public_key: identity mode only (NULL: keep the configured one). relay: through the relay
 * only; relay_server: a relay to use when none is configured. The pending request m (may be NULL) is answered when the tunnel is up, or
 * with an error after timeout_sec. Returns 0, or -errno with error set. */
int manager_connect(struct device *d, const char *peer, const uint8_t *public_key,
                    uint32_t timeout_sec, bool relay, const char *relay_server,
                    sd_bus_message *m, sd_bus_error *error);
int manager_disconnect(struct device *d, sd_bus_error *error);

/* The same two calls for a caller without sd-bus (the HTTP API, http.c). A Connect pending for
 * a waiter ends with w->done(w, NULL, message) once the tunnel is up, or with a BUS_ERROR_PREFIX
 * error name and a message (timeout, resolution failure, Disconnect); at most one Connect is
 * pending at a time, so one waiter suffices. Errors as the D-Bus calls, copied into ret_error. */
struct manager_waiter {
        void (*done)(struct manager_waiter *w, const char *error, const char *message);
};
struct manager_error {
        char name[96];     /* BUS_ERROR_PREFIX "AlreadyConnected" etc.; "" for a plain errno */
        char message[512];
};
int manager_connect_plain(struct device *d, const char *peer, uint32_t timeout_sec,
                          struct manager_waiter *w, struct manager_error *ret_error);
int manager_disconnect_plain(struct device *d, struct manager_error *ret_error);
/* w stops waiting (its client went away, or the API shuts down); it is not called. */
void manager_forget_waiter(struct device *d, struct manager_waiter *w);
/* A session is usable in both directions (initiator: response consumed; responder: first
 * data on the new key pair). */
void manager_session_up(struct device *d);
/* The session stopped working (no answer, keys expired). */
void manager_session_lost(struct device *d);
/* Once per tick: counters and endpoint changes for PropertiesChanged. */
void manager_tick(struct device *d, uint64_t now);
/* Status line for sd_notify (STATUS=) and logs. */
void manager_notify_status(struct device *d);
