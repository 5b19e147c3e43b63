/* SPDX-License-Identifier: MIT */
#include <netdb.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <systemd/sd-daemon.h>

#include "handshake.h"
#include "hostport.h"
#include "log.h"
#include "manager.h"
#include "mesh-discovery.h"
#include "path.h"
#include "relay-client.h"
#include "resolve.h"
#include "shadowmesh/bus-api.h"
#include "timers.h"

/* The connection logic's own state; device.c keeps the pointer (d->manager). */
struct manager {
        struct manager_waiter *connect_waiter; /* the pending Connect's (bus.c's or http.c's) */
        sd_event_source *connect_timeout;
        struct resolve_query *resolve;
        /* The peer the pending Connect (or name resolution, or timeout) is for; target_new: the
         * Connect added it, so it goes again when the Connect fails. */
        struct peer *target;
        bool target_new;
        /* What PropertiesChanged last said of the counters and the endpoint. */
        uint64_t emitted_counters[4];
        uint64_t counters_emitted_ns;
        struct endpoint emitted_endpoint;
};

/* Counters go out as invalidations at most this often (dbus/org.shadowmesh1.Tunnel.txt). */
#define COUNTERS_EMIT_INTERVAL_NSEC (2 * NSEC_PER_SEC)

void manager_notify_status(struct device *d) {
        char buf[ENDPOINT_STRLEN];
        struct endpoint e;

        peer_get_endpoint(d->peer, &e);
        switch (d->state) {
        case TUNNEL_CONNECTED:
                sd_notifyf(false, "STATUS=Connected to %s", endpoint_to_string(&e, buf));
                break;
        case TUNNEL_CONNECTING:
                sd_notifyf(false, "STATUS=Connecting to %s",
                           d->peer->address ? d->peer->address : endpoint_to_string(&e, buf));
                break;
        case TUNNEL_RECONNECTING:
                sd_notifyf(false, "STATUS=Reconnecting to %s", endpoint_to_string(&e, buf));
                break;
        case TUNNEL_FAILED:
                sd_notifyf(false, "STATUS=Failed: %s", manager_failure_reason(d));
                break;
        case TUNNEL_DISCONNECTED:
                sd_notify(false, "STATUS=Disconnected");
                break;
        default:
                sd_notify(false, "STATUS=Waiting for the peer");
                break;
        }
}

const char *manager_failure_reason(const struct device *d) {
        if (d->state != TUNNEL_FAILED)
                return "";
        for (size_t i = 0; i < device_peer_count(d); i++)
                if (device_peer_at(d, i)->state == TUNNEL_FAILED)
                        return device_peer_at(d, i)->failure_reason;
        return "";
}

/* The errors manager_connect() and manager_disconnect() return (and a waiter's done() gets),
 * and their D-Bus names: the one table, for the D-Bus and the HTTP API alike. */
static const struct {
        int error;
        const char *name;
} error_names[] = {
        { -EDESTADDRREQ, BUS_ERROR_INVALID_PEER },
        { -EINVAL, BUS_ERROR_INVALID_ARGUMENTS },
        { -EISCONN, BUS_ERROR_ALREADY_CONNECTED },
        { -ENOTCONN, BUS_ERROR_NOT_CONNECTED },
        { -ETIMEDOUT, BUS_ERROR_HANDSHAKE_TIMEOUT },
        { -ENETUNREACH, BUS_ERROR_RELAY_UNAVAILABLE },
        { -ECANCELED, BUS_ERROR_CANCELLED },
};

const char *manager_error_name(int error) {
        for (size_t i = 0; i < ELEMENTSOF(error_names); i++)
                if (error_names[i].error == error)
                        return error_names[i].name;
        return NULL;
}

/* An error for the caller: -errno, with its message in ret_error. */
_printf_(3, 4) static int fail(struct manager_error *ret_error, int error, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(ret_error->message, sizeof(ret_error->message), fmt, ap);
        va_end(ap);
        return error;
}

/* The pending Connect is over (error 0: the tunnel is up): answer whoever waits for it. */
_printf_(3, 4) static void connect_done(struct device *d, int error, const char *fmt, ...) {
        struct manager_waiter *w = d->manager->connect_waiter;
        char text[512] = "";
        va_list ap;

        if (fmt) {
                va_start(ap, fmt);
                vsnprintf(text, sizeof(text), fmt, ap);
                va_end(ap);
        }
        d->manager->connect_waiter = NULL;
        d->manager->connect_timeout = sd_event_source_disable_unref(d->manager->connect_timeout);
        if (w)
                w->done(w, error, text);
}

/* The instance's state follows from its peers'. */
static void update_instance_state(struct device *d) {
        enum tunnel_state states[MESH_MAX_PEERS], state;
        size_t n = device_peer_count(d);
        struct peer *t = d->manager->target ? d->manager->target : d->peer;

        for (size_t i = 0; i < n; i++)
                states[i] = device_peer_at(d, i)->state;
        state = tunnel_state_of_instance(states, n);

        if (d->state != state) {
                log_debug("state %s -> %s", tunnel_state_to_string(d->state),
                          tunnel_state_to_string(state));
                d->state = state;
                manager_notify_status(d);
                device_properties_changed(d, "State", "FailureReason", "Path", "Endpoint",
                                          "PeerAddress", "LastHandshake");
        } else
                /* Only a peer's own state moved: its object, and which peers the APIs list. */
                device_emit_changed(d, (const char *const[]){ NULL });

        /* The pending Connect waits for its own peer's state, also when the instance's stays
         * as it was (a Connect that adds a peer to a connected instance). */
        if (!d->manager->connect_waiter)
                return;
        if (t->state == TUNNEL_CONNECTED)
                connect_done(d, 0, NULL);
        else if (t->state == TUNNEL_FAILED)
                connect_done(d, -ETIMEDOUT, "%s", t->failure_reason);
}

void manager_peer_event(struct device *d, struct peer *p, enum tunnel_event event,
                        const char *reason, ...) {
        va_list ap;
        bool changed;

        va_start(ap, reason);
        changed = peer_eventv(p, event, reason, ap);
        va_end(ap);
        if (changed)
                manager_peer_changed(d, p);
}

void manager_peer_changed(struct device *d, struct peer *p) {
        (void) p;
        update_instance_state(d);
}

void manager_session_up(struct device *d, struct peer *p) {
        manager_peer_event(d, p, TUNNEL_EVENT_HANDSHAKE, NULL);
        mesh_discovery_session_up(d, p); /* mesh discovery: our list goes to it */
        /* A new handshake while connected changes LastHandshake only. */
        if (p == d->peer)
                device_properties_changed(d, "LastHandshake", "Endpoint");
}

void manager_session_lost(struct device *d, struct peer *p) {
        manager_peer_event(d, p, TUNNEL_EVENT_LOST, NULL);
}

/* Something needs a session with the peer now. */
static void want_handshake(struct device *d, struct peer *p) {
        if (timers_want_handshake(&d->keys, &d->sender, p, now_ns()) & TIMERS_STATE_CHANGED)
                manager_peer_changed(d, p);
}

/* The relay client's events. Its address is known: the control loop names it in logs, and the
 * rx thread takes relayed data from there (set once: the data path reads it without a lock). */
static void on_relay_resolved(void *userdata, const struct endpoint *relay) {
        struct device *d = userdata;

        d->sender.relay = *relay;
        if (!atomic_load_explicit(&d->dp.relay_address_set, memory_order_acquire)) {
                d->dp.relay_address = *relay;
                atomic_store_explicit(&d->dp.relay_address_set, true, memory_order_release);
        }
}

/* relaymesh: the peer table for relay_introduction_match(). */
static struct peer *relay_table_at(void *userdata, size_t i) {
        return device_peer_at(userdata, i);
}

/* The relay introduced a node: its own peer (the one it is, else a new one up to
 * MESH_MAX_PEERS) gets its candidates and relay slot (relay-client.h). */
static void on_relay_peer(void *userdata, const struct relay_introduction *intro) {
        char text[(RELAY_MAX_CANDIDATES + 1) * (ENDPOINT_STRLEN + 2)] = "", buf[ENDPOINT_STRLEN];
        struct device *d = userdata;
        bool identity = d->keys.pattern == NOISE_PATTERN_IKPSK2;
        struct peer *p = relay_introduction_match(intro, identity, relay_table_at, d);
        size_t off = 0;
        int r;

        if (!p && identity)
                return; /* not one of ours (relay-client.c asked for this one only) */
        if (!p) {
                r = device_add_joiner(d, &p);
                if (r < 0) {
                        log_warning("relay introduced a node, but no peer can be added for it: %s",
                                    r == -ENOSPC ? "the peer table is full" : strerror(-r));
                        return;
                }
        }
        for (size_t i = 0; i < intro->n_candidates; i++)
                off += (size_t) snprintf(text + off, sizeof(text) - off, "%s%s", i ? ", " : "",
                                         endpoint_to_string(&intro->candidates[i], buf));
        if (!p->relay_introduced || p->via_relay.relay_slot != intro->via_relay.relay_slot)
                log_info("relay introduced peer: candidates %s (relay slot %u)",
                         intro->n_candidates ? text : "(none)", intro->via_relay.relay_slot);
        relay_introduction_apply(&d->sender, p, intro);

        /* Someone to talk to and no session: start one (both sides do; handshake.c breaks the
         * tie). After Disconnect we wait for Connect. */
        if (tunnel_state_accepts_peer(p->state) && !atomic_load(&p->current)) {
                manager_peer_event(d, p, TUNNEL_EVENT_CONNECT, NULL);
                want_handshake(d, p);
        }
}

int manager_relay_start(struct device *d, const char *host, uint16_t port) {
        const struct relay_client_node node = {
                .event = d->event,
                .family = d->udp_family,
                .port = d->port,
                .tap_name = d->tap ? d->tap->name : "",
                .keys = &d->keys,
                .psk = d->config->has_psk ? d->keys.psk : NULL,
                .peer_key = d->peer->public_key,
                .peer_at = relay_table_at, /* identity mode: every peer's key is wanted */
                .public_endpoint = &d->public_endpoint_sa,
                .sender = &d->sender,
                .on_resolved = on_relay_resolved,
                .on_peer = on_relay_peer,
                .userdata = d,
        };
        int r;

        r = relay_client_new(&node, host, port, &d->relay);
        if (r < 0)
                return r;
        d->nat_keepalive = true;
        return 0;
}

int manager_start(struct device *d) {
        const struct config *c = d->config;
        int r;

        d->manager = calloc(1, sizeof(*d->manager));
        if (!d->manager)
                return log_error_errno(ENOMEM, "out of memory");
        d->events.peer_changed = manager_peer_changed;
        d->events.session_up = manager_session_up;
        d->events.peer_closed = manager_peer_closed;
        d->events.tick = manager_tick;
        d->events.pending = mesh_discovery_pending;
        /* Registration starts with name resolution on a worker thread and never blocks the
         * start; a relay that cannot be reached is a warning, not a failure. */
        if (c->relay_enabled && c->relay_host) {
                r = manager_relay_start(d, c->relay_host, c->relay_port);
                if (r < 0)
                        return log_error_errno(r, "starting the relay client: %m");
        }
        /* Mesh discovery, after the relay client: it takes the relay's node id. */
        r = mesh_discovery_start(d);
        if (r < 0)
                return log_error_errno(r, "starting mesh discovery: %m");
        return 0;
}

/* Does this node hold an address of its own for the peer (it initiates), or did it wait? */
static bool have_peer_address(const struct peer *p) {
        return p->static_endpoint || p->address || p->relay_introduced;
}

void manager_peer_closed(struct device *d, struct peer *p, uint32_t key_idx,
                         const struct endpoint *from) {
        char buf[ENDPOINT_STRLEN];

        if (!peer_has_session(p, key_idx))
                return; /* the second copy, or a session already replaced */
        endpoint_to_string(from, buf);
        log_peer_info(p->address ? p->address : buf, buf, "peer %s closed the tunnel", buf);
        /* Its keys are gone with it: ours are of no use. */
        peer_clear_keys(p);
        atomic_store_explicit(&p->tx_unanswered_since_ns, 0, memory_order_relaxed);
        atomic_store_explicit(&p->rx_unanswered_since_ns, 0, memory_order_relaxed);
        if (have_peer_address(p)) {
                /* Usually a restart: retry, the first time soon. */
                manager_peer_event(d, p, TUNNEL_EVENT_LOST, NULL);
                if (timers_want_handshake_soon(&d->keys, &d->sender, p, now_ns(),
                                               (uint64_t) CLOSE_FIRST_RETRY_MS * NSEC_PER_MSEC) &
                    TIMERS_STATE_CHANGED)
                        manager_peer_changed(d, p);
        } else {
                struct endpoint none = {};

                /* We waited for the peer: wait again, with no path to speak of. */
                peer_set_endpoint(p, &none);
                p->reported_endpoint = none;
                manager_peer_event(d, p, TUNNEL_EVENT_PEER_CLOSED, NULL);
        }
        if (p == d->peer)
                device_properties_changed(d, "Path", "Endpoint");
}

/* Tell the peer we are leaving, if there is a session to say it on. */
static void send_close(struct device *d, struct peer *p) {
        int r = handshake_send_close(&d->sender, p);

        if (r >= 0)
                log_info("sent the peer a closing message%s%s%s", p->name ? " (" : "",
                         p->name ? p->name : "", p->name ? ")" : "");
        else if (r != -ENOKEY)
                log_debug_errno(r, "could not send the peer a closing message: %m");
}

void manager_shutdown(struct device *d) {
        for (size_t i = 0; i < device_peer_count(d); i++)
                send_close(d, device_peer_at(d, i));
}

/* Drop what the peer had (keys, address); a Connect in progress for it stops. */
static void forget_peer(struct device *d, struct peer *p) {
        struct endpoint none = {};

        if (d->manager->target == p) {
                d->manager->resolve = resolve_cancel(d->manager->resolve);
                d->manager->connect_timeout =
                        sd_event_source_disable_unref(d->manager->connect_timeout);
        }
        p->resolve = resolve_cancel(p->resolve);
        peer_clear_keys(p);
        p->handshake_attempts_started_ns = 0;
        p->handshake_attempts = 0;
        p->static_endpoint = false;
        p->force_relay = false;
        peer_set_endpoint(p, &none);
        free(p->address);
        p->address = NULL;
}

/* A Connect that added its peer failed: the peer goes (the table keeps no dead entries). */
static void drop_new_target(struct device *d) {
        struct peer *p = d->manager->target;

        if (!p || !d->manager->target_new || device_peer_count(d) <= 1)
                return;
        d->manager->target = NULL;
        d->manager->target_new = false;
        device_remove_peer(d, p);
        update_instance_state(d);
}

static int on_connect_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        struct device *d = userdata;
        struct peer *p = d->manager->target ? d->manager->target : d->peer;
        char *peer = p->address ? strdup(p->address) : NULL;
        forget_peer(d, p);
        log_peer_warning(peer, NULL, "connect to %s timed out", peer ? peer : "the peer");
        /* Answers the pending Connect with HandshakeTimeout and this reason. */
        manager_peer_event(d, p, TUNNEL_EVENT_GAVE_UP,
                           "No handshake with %s before the timeout: the peer did not answer "
                           "(wrong address, UDP port blocked, or a different key)",
                           peer ? peer : "the peer");
        free(peer);
        drop_new_target(d);
        return 0;
}

static void on_resolved(struct resolve_query *q, int r, int gai_error,
                        const struct endpoint *result, void *userdata) {
        struct device *d = userdata;
        struct peer *p = d->manager->target ? d->manager->target : d->peer;
        char buf[ENDPOINT_STRLEN];

        d->manager->resolve = NULL;
        if (r < 0) {
                char *peer = p->address ? strdup(p->address) : NULL;
                const char *why = gai_error ? gai_strerror(gai_error) : strerror(-r);
                forget_peer(d, p);
                if (d->manager->connect_waiter)
                        connect_done(d, -EDESTADDRREQ, "Cannot resolve '%s': %s",
                                     peer ? peer : "", why);
                log_peer_warning(peer, NULL, "connect: cannot resolve '%s'", peer ? peer : "");
                manager_peer_event(d, p, TUNNEL_EVENT_GAVE_UP, "Cannot resolve '%s': %s",
                                   peer ? peer : "", why);
                free(peer);
                drop_new_target(d);
                return;
        }
        peer_set_endpoint(p, result);
        p->static_endpoint = true;
        endpoint_to_string(result, buf);
        log_peer_info(p->address, buf, "connecting to %s (%s)", buf, p->address);
        if (p == d->peer)
                device_properties_changed(d, "Endpoint");
        want_handshake(d, p);
}

/* A configured peer's address (manager_add_configured_peer) resolved: connect to it, as the
 * start does with the peers of the file. */
static void on_configured_resolved(struct resolve_query *q, int r, int gai_error,
                                   const struct endpoint *result, void *userdata) {
        struct device *d = userdata;
        char buf[ENDPOINT_STRLEN];
        struct peer *p = NULL;

        for (size_t i = 0; i < device_peer_count(d) && !p; i++)
                if (device_peer_at(d, i)->resolve == q)
                        p = device_peer_at(d, i);
        if (!p)
                return; /* cannot happen: removing a peer cancels its query */
        p->resolve = NULL;
        if (r < 0) {
                const char *why = gai_error ? gai_strerror(gai_error) : strerror(-r);
                log_peer_warning(p->address, NULL, "reload: cannot resolve peer address '%s': %s",
                                 p->address, why);
                manager_peer_event(d, p, TUNNEL_EVENT_CONNECT, NULL);
                manager_peer_event(d, p, TUNNEL_EVENT_GAVE_UP, "Cannot resolve '%s': %s",
                                   p->address, why);
                return;
        }
        peer_set_endpoint(p, result);
        p->static_endpoint = true;
        endpoint_to_string(result, buf);
        log_peer_info(p->address, buf, "connecting to %s (%s)", buf, p->address);
        manager_peer_event(d, p, TUNNEL_EVENT_CONNECT, NULL);
        want_handshake(d, p);
}

int manager_add_configured_peer(struct device *d, const struct config_peer *cp,
                                struct manager_error *ret_error) {
        struct peer *p;
        int r;

        r = device_add_peer(d, cp->name, &p);
        if (r == -ENOSPC)
                return fail(ret_error, r, "Too many peers (at most %u)", (unsigned) MESH_MAX_PEERS);
        if (r < 0)
                return fail(ret_error, r, "%s", strerror(-r));
        if (cp->has_public_key) {
                memcpy(p->public_key, cp->public_key, sizeof(p->public_key));
                if (d->keys.pattern == NOISE_PATTERN_IKPSK2)
                        cookie_maker_init(&p->cookie_maker, p->public_key);
        }
        if (!cp->host)
                return 0; /* it waits for that node to connect */
        p->address = hostport_join(cp->host, cp->port);
        if (!p->address) {
                device_remove_peer(d, p);
                return fail(ret_error, -ENOMEM, "%s", strerror(ENOMEM));
        }
        r = resolve_start(d->event, cp->host, cp->port, d->udp_family, on_configured_resolved, d,
                          &p->resolve);
        if (r < 0) {
                device_remove_peer(d, p);
                return fail(ret_error, r, "Cannot start name resolution: %s", strerror(-r));
        }
        return 0;
}

/* Is host:port (numeric) where p is reached now? */
static bool endpoint_is(const struct peer *p, const char *host, uint16_t port) {
        struct endpoint e;
        char want[ENDPOINT_STRLEN + 8], buf[ENDPOINT_STRLEN];

        peer_get_endpoint((struct peer *) p, &e);
        if (!e.len || e.via_relay)
                return false;
        return hostport_format(host, port, want, sizeof(want)) == 0 &&
               strcmp(endpoint_to_string(&e, buf), want) == 0;
}

/* The peer a Connect to host:port is for: the one with that address (as given to Connect or
 * in peers:) or reached there, else one that waits with nothing (no address, no endpoint,
 * no session: the waiting mode's peer), else a new one. NULL with -ENOSPC at MESH_MAX_PEERS. */
static int connect_target(struct device *d, const char *addr, const char *host, uint16_t port,
                          struct peer **ret) {
        struct peer *p;

        for (size_t i = 0; (p = device_peer_at(d, i)); i++)
                if ((p->address && strcmp(p->address, addr) == 0) || endpoint_is(p, host, port)) {
                        *ret = p;
                        return 0;
                }
        for (size_t i = 0; (p = device_peer_at(d, i)); i++) {
                struct endpoint e;
                peer_get_endpoint(p, &e);
                if (!p->address && !e.len && !p->relay_introduced && !atomic_load(&p->current)) {
                        *ret = p;
                        return 0;
                }
        }
        return device_add_peer(d, NULL, ret);
}

int manager_connect(struct device *d, const struct manager_connect_request *req,
                    struct manager_waiter *w, struct manager_error *ret_error) {
        const char *peer = req->peer, *relay_server = req->relay_server;
        uint32_t timeout_sec = req->timeout_sec;
        _cleanup_free_ char *host = NULL, *addr = NULL;
        struct peer *p = d->peer;
        bool added = false;
        uint16_t port;
        int r;

        if (*peer) {
                r = config_parse_host_port(peer, PORT_DEFAULT, &host, &port);
                if (r < 0)
                        return fail(ret_error, -EDESTADDRREQ,
                                    "Peer address '%s' is not valid: expected host[:port]",
                                    peer);
                addr = hostport_join(host, port);
                if (!addr)
                        return fail(ret_error, -ENOMEM, "%s", strerror(ENOMEM));
                size_t before = device_peer_count(d);
                r = connect_target(d, addr, host, port, &p);
                added = r >= 0 && device_peer_count(d) > before;
                if (r == -ENOSPC)
                        return fail(ret_error, -ENOSPC, "Too many peers (at most %u)",
                                    (unsigned) MESH_MAX_PEERS);
                if (r < 0)
                        return fail(ret_error, r, "%s", strerror(-r));
        }
        /* One Connect at a time; and a peer that is up (or on its way) stays as it is. */
        if (d->manager->connect_waiter || p->state == TUNNEL_CONNECTING ||
            p->state == TUNNEL_CONNECTED || p->state == TUNNEL_RECONNECTING) {
                char buf[ENDPOINT_STRLEN];
                struct endpoint e;
                struct peer *busy = d->manager->connect_waiter && d->manager->target
                                            ? d->manager->target
                                            : p;
                peer_get_endpoint(busy, &e);
                return fail(ret_error, -EISCONN, "Already %s %s; call Disconnect first",
                            busy->state == TUNNEL_CONNECTED ? "connected to" : "connecting to",
                            busy->address ? busy->address : endpoint_to_string(&e, buf));
        }
        if ((req->relay || relay_server) && !d->relay) {
                _cleanup_free_ char *rhost = NULL;
                uint16_t rport;

                if (!relay_server)
                        return fail(ret_error, -ENETUNREACH,
                                    "No relay configured: set relay.server or pass the "
                                    "relay_server option");
                r = config_parse_host_port(relay_server, RELAY_PORT_DEFAULT, &rhost, &rport);
                if (r < 0)
                        return fail(ret_error, -EINVAL,
                                    "Option 'relay_server' is not host[:port]: '%s'",
                                    relay_server);
                r = manager_relay_start(d, rhost, rport);
                if (r < 0)
                        return fail(ret_error, r, "Cannot start the relay client: %s",
                                    strerror(-r));
        }
        if (!*peer && !d->relay)
                return fail(ret_error, -EDESTADDRREQ,
                            "Peer address is empty: expected host[:port] (an empty peer needs "
                            "a relay to introduce it)");

        d->manager->target = p;
        d->manager->target_new = added;
        if (req->public_key) {
                memcpy(p->public_key, req->public_key, NOISE_PUBLIC_KEY_LEN);
                cookie_maker_init(&p->cookie_maker, p->public_key);
                relay_client_set_want(d->relay, req->public_key);
        }
        p->force_relay = req->relay;
        if (!*peer) {
                /* Rendezvous: the relay's PEER message starts the handshake. */
                d->manager->connect_waiter = w;
                if (timeout_sec > 0) {
                        r = sd_event_add_time_relative(d->event, &d->manager->connect_timeout,
                                                       CLOCK_BOOTTIME,
                                                       (uint64_t) timeout_sec * USEC_PER_SEC, 0,
                                                       on_connect_timeout, d);
                        if (r < 0) {
                                d->manager->connect_waiter = NULL;
                                return fail(ret_error, r, "Cannot arm the timeout: %s",
                                            strerror(-r));
                        }
                }
                log_info("connect through relay %s requested", relay_client_name(d->relay));
                manager_peer_event(d, p, TUNNEL_EVENT_CONNECT, NULL);
                relay_client_refresh(d->relay);
                if (p->relay_introduced)
                        want_handshake(d, p);
                return 0;
        }

        free(p->address);
        p->address = TAKE_PTR(addr);

        r = resolve_start(d->event, host, port, d->udp_family, on_resolved, d, &d->manager->resolve);
        if (r < 0) {
                free(p->address);
                p->address = NULL;
                return fail(ret_error, r, "Cannot start name resolution: %s", strerror(-r));
        }
        if (timeout_sec > 0) {
                r = sd_event_add_time_relative(d->event, &d->manager->connect_timeout, CLOCK_BOOTTIME,
                                               (uint64_t) timeout_sec * USEC_PER_SEC, 0,
                                               on_connect_timeout, d);
                if (r < 0) {
                        forget_peer(d, p);
                        return fail(ret_error, r, "Cannot arm the timeout: %s", strerror(-r));
                }
        }
        d->manager->connect_waiter = w;
        log_peer_info(p->address, NULL, "connect to %s requested", p->address);
        manager_peer_event(d, p, TUNNEL_EVENT_CONNECT, NULL);
        if (p == d->peer)
                device_properties_changed(d, "PeerAddress");
        return 0;
}

int manager_disconnect(struct device *d, struct manager_error *ret_error) {
        /* Nothing to disconnect while waiting either (the prototype's /disconnect said so). */
        if ((d->state == TUNNEL_DISCONNECTED || d->state == TUNNEL_WAITING) && !d->manager->connect_waiter)
                return fail(ret_error, -ENOTCONN, "No peer is connected");
        if (d->manager->connect_waiter)
                connect_done(d, -ECANCELED,
                             "Disconnected before the handshake with %s completed",
                             d->manager->target && d->manager->target->address
                                     ? d->manager->target->address
                                     : "the peer");
        d->manager->target = NULL;
        /* Every peer hears it (before forget_peer() wipes the session it is sealed with); all
         * but the table's first go, and that one stays, disconnected. */
        for (size_t i = 0; i < device_peer_count(d); i++)
                send_close(d, device_peer_at(d, i));
        while (device_peer_count(d) > 1) {
                struct peer *p = device_peer_at(d, device_peer_count(d) - 1);
                forget_peer(d, p);
                device_remove_peer(d, p);
        }
        forget_peer(d, d->peer);
        log_info("disconnected by request");
        manager_peer_event(d, d->peer, TUNNEL_EVENT_DISCONNECT, NULL);
        update_instance_state(d);
        return 0;
}

int manager_disconnect_peer(struct device *d, struct peer *p, struct manager_error *ret_error) {
        if (device_peer_count(d) <= 1)
                return manager_disconnect(d, ret_error);
        if (d->manager->connect_waiter && d->manager->target == p)
                connect_done(d, -ECANCELED,
                             "Disconnected before the handshake with %s completed",
                             p->address ? p->address : "the peer");
        send_close(d, p);
        forget_peer(d, p);
        if (d->manager->target == p)
                d->manager->target = NULL;
        log_info("peer %s disconnected by request", p->name ? p->name : "");
        device_remove_peer(d, p);
        update_instance_state(d);
        return 0;
}

void manager_forget_waiter(struct device *d, struct manager_waiter *w) {
        if (d->manager->connect_waiter == w)
                d->manager->connect_waiter = NULL;
}

void manager_tick(struct device *d, uint64_t now) {
        struct stats *s = &d->dp.stats;
        uint64_t c[4] = {
                atomic_load_explicit(&s->rx_bytes, memory_order_relaxed),
                atomic_load_explicit(&s->tx_bytes, memory_order_relaxed),
                atomic_load_explicit(&s->rx_packets, memory_order_relaxed),
                atomic_load_explicit(&s->tx_packets, memory_order_relaxed),
        };
        struct endpoint e;

        mesh_discovery_tick(d, now); /* mesh discovery: what is due to be sent */
        if (device_expire_peers(d, now) > 0)
                update_instance_state(d);
        if (!d->emit_changed)
                return;
        if (memcmp(c, d->manager->emitted_counters, sizeof(c)) != 0 &&
            now - d->manager->counters_emitted_ns >= COUNTERS_EMIT_INTERVAL_NSEC) {
                memcpy(d->manager->emitted_counters, c, sizeof(c));
                d->manager->counters_emitted_ns = now;
                device_properties_changed(d, "RxBytes", "TxBytes", "RxPackets", "TxPackets");
        }
        /* Roaming happens on the rx thread; report it from here. */
        peer_get_endpoint(d->peer, &e);
        if (!endpoint_equal(&e, &d->manager->emitted_endpoint)) {
                d->manager->emitted_endpoint = e;
                device_properties_changed(d, "Endpoint");
        }
}

bool manager_connect_pending(const struct device *d) {
        return d->manager->connect_waiter != NULL;
}

void manager_stop(struct device *d) {
        if (!d->manager)
                return;
        for (size_t i = 0; i < device_peer_count(d); i++)
                device_peer_at(d, i)->resolve = resolve_cancel(device_peer_at(d, i)->resolve);
        mesh_discovery_stop(d);
        memset(&d->events, 0, sizeof(d->events));
        d->manager->resolve = resolve_cancel(d->manager->resolve);
        d->manager->connect_timeout = sd_event_source_disable_unref(d->manager->connect_timeout);
        free(d->manager);
        d->manager = NULL;
}
