/* SPDX-License-Identifier: MIT */
#include <netdb.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <systemd/sd-daemon.h>

#include "bus.h"
#include "handshake.h"
#include "log.h"
#include "manager.h"
#include "relay-client.h"
#include "resolve.h"
#include "timers.h"

/* Counters go out as invalidations at most this often (dbus/org.shadowmesh1.Tunnel.txt). */
#define COUNTERS_EMIT_INTERVAL_NSEC (2 * NSEC_PER_SEC)

static const char *const state_names[] = {
        [TUNNEL_DISCONNECTED] = "disconnected",
        [TUNNEL_CONNECTING] = "connecting",
        [TUNNEL_CONNECTED] = "connected",
        [TUNNEL_RECONNECTING] = "reconnecting",
};

const char *tunnel_state_to_string(enum tunnel_state s) {
        return (size_t) s < ELEMENTSOF(state_names) ? state_names[s] : "unknown";
}

void manager_notify_status(struct device *d) {
        char buf[ENDPOINT_STRLEN];
        struct endpoint e;

        peer_get_endpoint(&d->peer, &e);
        switch (d->state) {
        case TUNNEL_CONNECTED:
                sd_notifyf(false, "STATUS=Connected to %s", endpoint_to_string(&e, buf));
                break;
        case TUNNEL_CONNECTING:
                sd_notifyf(false, "STATUS=Connecting to %s",
                           d->peer_address ? d->peer_address : endpoint_to_string(&e, buf));
                break;
        case TUNNEL_RECONNECTING:
                sd_notifyf(false, "STATUS=Reconnecting to %s", endpoint_to_string(&e, buf));
                break;
        default:
                sd_notify(false, d->accept_incoming ? "STATUS=Waiting for the peer"
                                                    : "STATUS=Disconnected");
                break;
        }
}

/* The pending Connect is over: answer whoever waits for it, D-Bus or a manager_waiter. */
_printf_(3, 4) static void connect_done(struct device *d, const char *error, const char *fmt, ...) {
        struct manager_waiter *w = d->connect_waiter;
        char text[512] = "";
        va_list ap;

        if (fmt) {
                va_start(ap, fmt);
                vsnprintf(text, sizeof(text), fmt, ap);
                va_end(ap);
        }
        d->connect_waiter = NULL;
        d->connect_timeout = sd_event_source_disable_unref(d->connect_timeout);
        if (w)
                w->done(w, error, text);
        if (error)
                bus_reply_connect(d, error, "%s", text);
        else
                bus_reply_connect(d, NULL, NULL);
}

void manager_set_state(struct device *d, enum tunnel_state state) {
        if (d->state == state)
                return;
        log_debug("state %s -> %s", tunnel_state_to_string(d->state),
                  tunnel_state_to_string(state));
        d->state = state;
        manager_notify_status(d);
        bus_emit_changed(d, "State", "Path", "Endpoint", "PeerAddress", "LastHandshake", NULL);

        if (state == TUNNEL_CONNECTED && (d->connect_request || d->connect_waiter))
                connect_done(d, NULL, NULL);
}

void manager_session_up(struct device *d) {
        manager_set_state(d, TUNNEL_CONNECTED);
        /* A new handshake while connected changes LastHandshake only. */
        bus_emit_changed(d, "LastHandshake", "Endpoint", NULL);
}

void manager_session_lost(struct device *d) {
        if (d->state == TUNNEL_CONNECTED)
                manager_set_state(d, TUNNEL_RECONNECTING);
}

static void forget_peer(struct device *d) {
        struct endpoint none = {};

        d->resolve = resolve_cancel(d->resolve);
        d->connect_timeout = sd_event_source_disable_unref(d->connect_timeout);
        handshake_clear_keys(d);
        d->peer.handshake_attempts_started_ns = 0;
        d->peer.handshake_attempts = 0;
        d->peer.static_endpoint = false;
        d->force_relay = false;
        peer_set_endpoint(&d->peer, &none);
        free(d->peer_address);
        d->peer_address = NULL;
}

static int on_connect_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        struct device *d = userdata;
        char *peer = d->peer_address ? strdup(d->peer_address) : NULL;
        forget_peer(d);
        manager_set_state(d, TUNNEL_DISCONNECTED);
        connect_done(d, BUS_ERROR_PREFIX "HandshakeTimeout",
                     "No handshake with %s before the timeout: the peer did not answer "
                     "(wrong address, UDP port blocked, or a different key)",
                     peer ? peer : "the peer");
        log_peer_warning(peer, NULL, "connect to %s timed out", peer ? peer : "the peer");
        free(peer);
        return 0;
}

static void on_resolved(struct resolve_query *q, int r, int gai_error,
                        const struct endpoint *result, void *userdata) {
        struct device *d = userdata;
        char buf[ENDPOINT_STRLEN];

        d->resolve = NULL;
        if (r < 0) {
                char *peer = d->peer_address ? strdup(d->peer_address) : NULL;
                forget_peer(d);
                manager_set_state(d, TUNNEL_DISCONNECTED);
                connect_done(d, BUS_ERROR_PREFIX "InvalidPeer", "Cannot resolve '%s': %s",
                             peer ? peer : "", gai_error ? gai_strerror(gai_error) : strerror(-r));
                log_peer_warning(peer, NULL, "connect: cannot resolve '%s'", peer ? peer : "");
                free(peer);
                return;
        }
        peer_set_endpoint(&d->peer, result);
        d->peer.static_endpoint = true;
        endpoint_to_string(result, buf);
        log_peer_info(d->peer_address, buf, "connecting to %s (%s)", buf, d->peer_address);
        bus_emit_changed(d, "Endpoint", NULL);
        timers_want_handshake(d, now_ns());
}

int manager_connect(struct device *d, const char *peer, const uint8_t *public_key,
                    uint32_t timeout_sec, bool relay, const char *relay_server,
                    sd_bus_message *m, sd_bus_error *error) {
        _cleanup_free_ char *host = NULL;
        uint16_t port;
        int r;

        if (d->connect_request || d->state != TUNNEL_DISCONNECTED) {
                char buf[ENDPOINT_STRLEN];
                struct endpoint e;
                peer_get_endpoint(&d->peer, &e);
                return sd_bus_error_setf(error, BUS_ERROR_PREFIX "AlreadyConnected",
                                         "Already %s %s; call Disconnect first",
                                         d->state == TUNNEL_CONNECTED ? "connected to"
                                                                      : "connecting to",
                                         d->peer_address ? d->peer_address
                                                         : endpoint_to_string(&e, buf));
        }
        if ((relay || relay_server) && !d->relay) {
                _cleanup_free_ char *rhost = NULL;
                uint16_t rport;

                if (!relay_server)
                        return sd_bus_error_set(error, BUS_ERROR_PREFIX "RelayUnavailable",
                                                "No relay configured: set relay.server or pass "
                                                "the relay_server option");
                r = config_parse_host_port(relay_server, RELAY_PORT_DEFAULT, &rhost, &rport);
                if (r < 0)
                        return sd_bus_error_setf(error, BUS_ERROR_PREFIX "InvalidArguments",
                                                 "Option 'relay_server' is not host[:port]: '%s'",
                                                 relay_server);
                r = relay_client_new(d, rhost, rport, &d->relay);
                if (r < 0)
                        return sd_bus_error_set_errnof(error, -r, "Cannot start the relay "
                                                                  "client: %m");
                d->nat_keepalive = true;
        }
        if (!*peer && !d->relay)
                return sd_bus_error_set(error, BUS_ERROR_PREFIX "InvalidPeer",
                                        "Peer address is empty: expected host[:port] (an empty "
                                        "peer needs a relay to introduce it)");
        if (*peer) {
                r = config_parse_host_port(peer, PORT_DEFAULT, &host, &port);
                if (r < 0)
                        return sd_bus_error_setf(error, BUS_ERROR_PREFIX "InvalidPeer",
                                                 "Peer address '%s' is not valid: expected "
                                                 "host[:port]",
                                                 peer);
        }

        if (public_key) {
                memcpy(d->peer.public_key, public_key, NOISE_PUBLIC_KEY_LEN);
                cookie_maker_init(&d->peer.cookie_maker, d->peer.public_key);
                relay_client_set_want(d->relay, public_key);
        }
        d->force_relay = relay;
        if (!*peer) {
                /* Rendezvous: the relay's PEER message starts the handshake. */
                if (m)
                        d->connect_request = sd_bus_message_ref(m);
                if (timeout_sec > 0) {
                        r = sd_event_add_time_relative(d->event, &d->connect_timeout,
                                                       CLOCK_BOOTTIME,
                                                       (uint64_t) timeout_sec * USEC_PER_SEC, 0,
                                                       on_connect_timeout, d);
                        if (r < 0)
                                return sd_bus_error_set_errnof(error, -r,
                                                               "Cannot arm the timeout: %m");
                }
                d->accept_incoming = true;
                log_info("connect through relay %s requested", relay_client_name(d->relay));
                manager_set_state(d, TUNNEL_CONNECTING);
                relay_client_refresh(d->relay);
                if (d->peer.relay_introduced)
                        timers_want_handshake(d, now_ns());
                return 0;
        }

        d->peer_address = malloc(strlen(host) + 16);
        if (!d->peer_address)
                return sd_bus_error_set_errno(error, -ENOMEM);
        sprintf(d->peer_address, strchr(host, ':') ? "[%s]:%u" : "%s:%u", host, port);

        r = resolve_start(d->event, host, port, d->udp_family, on_resolved, d, &d->resolve);
        if (r < 0) {
                free(d->peer_address);
                d->peer_address = NULL;
                return sd_bus_error_set_errnof(error, -r, "Cannot start name resolution: %m");
        }
        if (timeout_sec > 0) {
                r = sd_event_add_time_relative(d->event, &d->connect_timeout, CLOCK_BOOTTIME,
                                               (uint64_t) timeout_sec * USEC_PER_SEC, 0,
                                               on_connect_timeout, d);
                if (r < 0) {
                        forget_peer(d);
                        return sd_bus_error_set_errnof(error, -r, "Cannot arm the timeout: %m");
                }
        }
        if (m)
                d->connect_request = sd_bus_message_ref(m);
        d->accept_incoming = true;
        log_peer_info(d->peer_address, NULL, "connect to %s requested", d->peer_address);
        manager_set_state(d, TUNNEL_CONNECTING);
        bus_emit_changed(d, "PeerAddress", NULL);
        return 0;
}

int manager_disconnect(struct device *d, sd_bus_error *error) {
        if (d->state == TUNNEL_DISCONNECTED && !d->connect_request)
                return sd_bus_error_set(error, BUS_ERROR_PREFIX "NotConnected",
                                        "No peer is connected");
        if (d->connect_request || d->connect_waiter)
                connect_done(d, BUS_ERROR_PREFIX "Cancelled",
                             "Disconnected before the handshake with %s completed",
                             d->peer_address ? d->peer_address : "the peer");
        forget_peer(d);
        d->accept_incoming = false;
        log_info("disconnected by request");
        if (d->state == TUNNEL_DISCONNECTED)
                manager_notify_status(d); /* "Waiting for the peer" becomes "Disconnected" */
        else
                manager_set_state(d, TUNNEL_DISCONNECTED);
        return 0;
}

/* ---- the same calls for callers without sd-bus (the HTTP API) ---- */

static int plain_error(int r, sd_bus_error *error, struct manager_error *ret_error) {
        snprintf(ret_error->name, sizeof(ret_error->name), "%s",
                 error->name ? error->name : "");
        snprintf(ret_error->message, sizeof(ret_error->message), "%s",
                 error->message ? error->message : strerror(-r));
        sd_bus_error_free(error);
        return r;
}

int manager_connect_plain(struct device *d, const char *peer, uint32_t timeout_sec,
                          struct manager_waiter *w, struct manager_error *ret_error) {
        sd_bus_error error = SD_BUS_ERROR_NULL;
        int r;

        r = manager_connect(d, peer, NULL, timeout_sec, false, NULL, NULL, &error);
        if (r < 0)
                return plain_error(r, &error, ret_error);
        d->connect_waiter = w;
        return 0;
}

int manager_disconnect_plain(struct device *d, struct manager_error *ret_error) {
        sd_bus_error error = SD_BUS_ERROR_NULL;
        int r;

        r = manager_disconnect(d, &error);
        if (r < 0)
                return plain_error(r, &error, ret_error);
        return 0;
}

void manager_forget_waiter(struct device *d, struct manager_waiter *w) {
        if (d->connect_waiter == w)
                d->connect_waiter = NULL;
}

void manager_tick(struct device *d, uint64_t now) {
        struct stats *s = &d->stats;
        uint64_t c[4] = {
                atomic_load_explicit(&s->rx_bytes, memory_order_relaxed),
                atomic_load_explicit(&s->tx_bytes, memory_order_relaxed),
                atomic_load_explicit(&s->rx_packets, memory_order_relaxed),
                atomic_load_explicit(&s->tx_packets, memory_order_relaxed),
        };
        struct endpoint e;

        if (!d->bus)
                return;
        if (memcmp(c, d->emitted_counters, sizeof(c)) != 0 &&
            now - d->counters_emitted_ns >= COUNTERS_EMIT_INTERVAL_NSEC) {
                memcpy(d->emitted_counters, c, sizeof(c));
                d->counters_emitted_ns = now;
                bus_emit_changed(d, "RxBytes", "TxBytes", "RxPackets", "TxPackets", NULL);
        }
        /* Roaming happens on the rx thread; report it from here. */
        peer_get_endpoint(&d->peer, &e);
        if (!endpoint_equal(&e, &d->emitted_endpoint)) {
                d->emitted_endpoint = e;
                bus_emit_changed(d, "Endpoint", NULL);
        }
}
