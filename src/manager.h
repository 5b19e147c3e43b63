/* SPDX-License-Identifier: MIT */
/*
 * Connection management: Connect and Disconnect from the APIs, and the peer's state, driven by
 * events through state.c's one transition table (written out in dbus/org.shadowmesh1.Tunnel.txt
 * and shadowmeshctl(1)). The state is kept per peer (struct peer's state and failure_reason);
 * the instance's State is derived from its peers' (tunnel_state_of_instance), so that many
 * peers on one segment change nothing here but the loop over them.
 *
 * After an explicit Disconnect an instance is `disconnected`: it sent the peer a closing
 * message and refuses the peer's handshakes until Connect. A peer's closing message makes an
 * instance that waited for the peer (no address of its own for it) `waiting` again, and one
 * that holds the peer's address `reconnecting` (it retries: the peer may be restarting).
 */
#pragma once

#include <systemd/sd-bus.h>

#include "device.h"

/* Feed an event to the peer's state machine. reason (printf format, may be NULL) is kept as
 * FailureReason when the event leads to `failed`. */
_printf_(3, 4) void manager_peer_event(struct device *d, enum tunnel_event event,
                                       const char *reason, ...);
/* The peer's authenticated closing message arrived from `from` (datapath.c opened it) on the
 * session whose local index is key_idx; ignored unless that session is still ours. */
void manager_peer_closed(struct device *d, uint32_t key_idx, const struct endpoint *from);
/* The daemon is exiting (SIGINT, SIGTERM): tell the peer with a closing message. */
void manager_shutdown(struct device *d);
/* The FailureReason property: why the instance is failed, "" otherwise. */
const char *manager_failure_reason(const struct device *d);
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
/* The peer's state moved (peer_event): the instance's follows, and is reported. */
void manager_peer_changed(struct device *d);
/* Start the relay client d->relay with host:port (it reports to this module). */
int manager_relay_start(struct device *d, const char *host, uint16_t port);
/* A session is usable in both directions (initiator: response consumed; responder: first
 * data on the new key pair). */
void manager_session_up(struct device *d);
/* The session stopped working (no answer, keys expired): TUNNEL_EVENT_LOST. */
void manager_session_lost(struct device *d);
/* Once per tick: counters and endpoint changes for PropertiesChanged. */
void manager_tick(struct device *d, uint64_t now);
/* Status line for sd_notify (STATUS=) and logs. */
void manager_notify_status(struct device *d);
