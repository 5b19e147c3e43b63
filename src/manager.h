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

#include "device.h"

/* Take charge of the device's peer: its events come here from now on, and the configured
 * relay registers. Logged; -errno. */
int manager_start(struct device *d);

/* Stop: a resolution or timeout in progress is cancelled (main.c, before device_free). */
void manager_stop(struct device *d);
/* Is a Connect waiting for its outcome? */
bool manager_connect_pending(const struct device *d);

/* Feed an event to the peer's state machine. reason (printf format, may be NULL) is kept as
 * FailureReason when the event leads to `failed`. */
_printf_(4, 5) void manager_peer_event(struct device *d, struct peer *p, enum tunnel_event event,
                                       const char *reason, ...);
/* The peer's authenticated closing message arrived from `from` (datapath.c opened it) on the
 * session whose local index is key_idx; ignored unless that session is still ours. */
void manager_peer_closed(struct device *d, struct peer *p, uint32_t key_idx,
                         const struct endpoint *from);
/* The daemon is exiting (SIGINT, SIGTERM): tell the peer with a closing message. */
void manager_shutdown(struct device *d);
/* The FailureReason property: why the instance is failed, "" otherwise. */
const char *manager_failure_reason(const struct device *d);
/* A Connect pending until the tunnel is up waits through one of these (bus.c and http.c each
 * have theirs): done(w, 0, "") once the tunnel is up, or done(w, -errno, message) when it
 * cannot be (timeout, resolution failure, Disconnect). At most one Connect is pending. */
struct manager_waiter {
        void (*done)(struct manager_waiter *w, int error, const char *message);
};
/* Why a call failed, for the caller's reply (the error itself is the -errno returned). */
struct manager_error {
        char message[512];
};
struct manager_connect_request {
        const char *peer;           /* "host[:port]", or "" to take the peer the relay introduces */
        const uint8_t *public_key;  /* identity mode only; NULL: keep the configured one */
        uint32_t timeout_sec;       /* give up after this long (0: never) */
        bool relay;                 /* through the relay only */
        const char *relay_server;   /* a relay to use when none is configured; NULL: none */
};
/* Start connecting: to the peer with that address (or reached there), else to a waiting one,
 * else to a new peer (-ENOSPC at MESH_MAX_PEERS). w (may be NULL) waits for the outcome. Returns 0, or -errno with
 * ret_error's message set: -EISCONN (already connected or connecting), -EDESTADDRREQ (no or
 * no valid peer address), -EINVAL (a bad option), -ENETUNREACH (no relay), or a system
 * error. */
int manager_connect(struct device *d, const struct manager_connect_request *req,
                    struct manager_waiter *w, struct manager_error *ret_error);
/* Reload: an entry of the configuration's peers: list joins the running table. With an address
 * it is resolved off the loop and connected to, as at start; without one it waits for that
 * node. Returns 0, or -ENOSPC (MESH_MAX_PEERS) or a system error with ret_error's message. */
int manager_add_configured_peer(struct device *d, const struct config_peer *cp,
                                struct manager_error *ret_error);
/* Leave every peer (all but the table's first are removed; that one stays, disconnected);
 * -ENOTCONN when there is none. */
int manager_disconnect(struct device *d, struct manager_error *ret_error);
/* Leave one peer: it hears a closing message and is removed from the table (the last one
 * stays, as after manager_disconnect). Returns 0, or what manager_disconnect returns. */
int manager_disconnect_peer(struct device *d, struct peer *p, struct manager_error *ret_error);
/* w stops waiting (its client went away, or the API shuts down); it is not called. */
void manager_forget_waiter(struct device *d, struct manager_waiter *w);
/* The D-Bus error name (shadowmesh/bus-api.h) of an error the calls above return (or a
 * waiter gets); NULL for a plain system error. */
const char *manager_error_name(int error);

/* The peer's state moved (peer_event): the instance's follows, and is reported. */
void manager_peer_changed(struct device *d, struct peer *p);
/* Start the relay client d->relay with host:port (it reports to this module). */
int manager_relay_start(struct device *d, const char *host, uint16_t port);
/* A session is usable in both directions (initiator: response consumed; responder: first
 * data on the new key pair). */
void manager_session_up(struct device *d, struct peer *p);
/* The session stopped working (no answer, keys expired): TUNNEL_EVENT_LOST. */
void manager_session_lost(struct device *d, struct peer *p);
/* Once per tick: counters and endpoint changes for PropertiesChanged. */
void manager_tick(struct device *d, uint64_t now);
/* Status line for sd_notify (STATUS=) and logs. */
void manager_notify_status(struct device *d);
