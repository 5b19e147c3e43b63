/* SPDX-License-Identifier: MIT */
/* Reload on SIGHUP: see reload.h for what is applied and what needs a restart. */
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/signalfd.h>
#include <systemd/sd-daemon.h>

#include "config.h"
#include "device.h"
#include "hostport.h"
#include "log.h"
#include "manager.h"
#include "netcheck.h"
#include "relay-client.h"
#include "reload.h"

static bool str_eq(const char *a, const char *b) {
        return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static bool peer_changed(const struct config *old, const struct config *new) {
        return !str_eq(config_first_peer(old)->host, config_first_peer(new)->host) ||
               config_first_peer(old)->port != config_first_peer(new)->port ||
               config_first_peer(old)->has_public_key != config_first_peer(new)->has_public_key ||
               memcmp(config_first_peer(old)->public_key, config_first_peer(new)->public_key,
                      sizeof(config_first_peer(old)->public_key)) != 0;
}

/* Any entry of peers: (its address, port, key or name) differs, or their number. */
static bool peer_list_changed(const struct config *old, const struct config *new) {
        if (old->n_peers != new->n_peers)
                return true;
        for (size_t i = 0; i < old->n_peers; i++) {
                const struct config_peer *a = &old->peers[i], *b = &new->peers[i];
                if (!str_eq(a->host, b->host) || a->port != b->port || !str_eq(a->name, b->name) ||
                    a->has_public_key != b->has_public_key ||
                    memcmp(a->public_key, b->public_key, sizeof(a->public_key)) != 0)
                        return true;
        }
        return false;
}

static bool relay_changed(const struct config *old, const struct config *new) {
        return old->relay_enabled != new->relay_enabled || !str_eq(old->relay_host, new->relay_host) ||
               old->relay_port != new->relay_port;
}

static bool stun_changed(const struct config *old, const struct config *new) {
        return old->nat_enabled != new->nat_enabled || !str_eq(old->stun_host, new->stun_host) ||
               old->stun_port != new->stun_port;
}

/* The keys whose change reload cannot apply to a running tunnel, as a comma-separated list in
 * buf (empty when there is none). Secrets are compared in constant time and never printed. */
static void restart_only_changes(const struct device *d, const struct config *old,
                                 const struct config *new, char *buf, size_t size) {
        size_t off = 0;
        struct endpoint e;

#define CHANGED(cond, key)                                                                         \
        do {                                                                                       \
                if ((cond) && off < size)                                                          \
                        off += (size_t) snprintf(buf + off, size - off, "%s%s", off ? ", " : "",   \
                                                 key);                                             \
        } while (0)

        buf[0] = 0;
        CHANGED(strcmp(old->tap_device, new->tap_device) != 0, "network.tap_device");
        CHANGED(old->n_addresses != new->n_addresses ||
                        memcmp(old->addresses, new->addresses,
                               old->n_addresses * sizeof(old->addresses[0])) != 0,
                "network.local_ip");
        CHANGED(old->mtu != new->mtu, "network.mtu");
        CHANGED(old->offload != new->offload, "network.offload");
        CHANGED(old->threads != new->threads, "network.threads");
        CHANGED(old->rx_workers != new->rx_workers, "network.rx_workers");
        CHANGED(old->listen_port != new->listen_port, "network.listen_port");
        CHANGED(!str_eq(old->bind_host, new->bind_host), "network.bind_address");
        CHANGED(!str_eq(old->control_host, new->control_host) ||
                        old->control_port != new->control_port,
                "daemon.listen_address");
        /* The keys decide the handshake pattern, the prologue and the cookies of every session. */
        CHANGED(old->has_psk != new->has_psk ||
                        (old->has_psk && sodium_memcmp(old->psk, new->psk, sizeof(old->psk)) != 0),
                "encryption.key");
        CHANGED(old->has_private_key != new->has_private_key ||
                        (old->has_private_key && sodium_memcmp(old->private_key, new->private_key,
                                                               sizeof(old->private_key)) != 0),
                "identity.private_key_file");
        /* Waiting instead of a configured peer is a state the model reaches only at start-up
         * (an instance that held a peer's address never goes back to waiting on its own). */
        CHANGED(config_first_peer(old)->host && !config_first_peer(new)->host,
                "peer.address (now empty: to wait for the peer)");
        CHANGED(!config_first_peer(old)->host && !config_first_peer(new)->host &&
                        peer_changed(old, new) &&
                        d->state != TUNNEL_WAITING && d->state != TUNNEL_FAILED,
                "peer.public_key (a waiting instance with a session to the old peer)");
        /* A list of several peers is applied entry by entry (apply_peer_list); dropping the
         * whole list is the one-peer rule above (waiting is reached only at start-up). */
        CHANGED(old->n_peers > 1 && new->n_peers == 0,
                "peers (now empty: to wait for a peer)");
        /* A new relay while the tunnel runs through the old one would cut it: only then. */
        peer_get_endpoint((struct peer *) d->peer, &e);
        CHANGED(relay_changed(old, new) && e.len && e.via_relay,
                "relay.server (the tunnel runs through the relay now)");
#undef CHANGED
}

/* The peer as the file now says: the session with the old peer ends (it is no longer
 * configured: it gets the closing message) and the new one is connected to. */
static int apply_peer(struct device *d, const struct config *new, char *buf, size_t size) {
        struct manager_error err = {};
        char addr[HOSTPORT_STRLEN];
        int r;

        if (!config_first_peer(new)->host) {
                /* A waiting instance with no session (restart_only_changes saw to that): only
                 * the key it accepts changes. */
                if (config_identity_mode(new)) {
                        memcpy(d->peer->public_key, config_first_peer(new)->public_key,
                               sizeof(d->peer->public_key));
                        cookie_maker_init(&d->peer->cookie_maker, d->peer->public_key);
                }
                log_info("reload: waiting for the peer with the new public key");
                return 0;
        }
        if ((d->state != TUNNEL_DISCONNECTED && d->state != TUNNEL_WAITING) ||
            manager_connect_pending(d)) {
                r = manager_disconnect(d, &err);
                if (r < 0) {
                        snprintf(buf, size, "reload: cannot leave the old peer: %s", err.message);
                        return r;
                }
        }
        if (config_identity_mode(new)) {
                memcpy(d->peer->public_key, config_first_peer(new)->public_key,
                       sizeof(d->peer->public_key));
                cookie_maker_init(&d->peer->cookie_maker, d->peer->public_key);
        }
        (void) hostport_format(config_first_peer(new)->host, config_first_peer(new)->port, addr,
                               sizeof(addr));
        r = manager_connect(d, &(const struct manager_connect_request){ .peer = addr }, NULL,
                            &err);
        if (r < 0) {
                snprintf(buf, size, "reload: cannot connect to the new peer %s: %s", addr,
                         err.message);
                return r;
        }
        log_info("reload: peer is now %s", addr);
        return 0;
}

/* The same node in both lists: the same public key (identity mode), else the same name when
 * both have one, else the same address. */
static bool same_node(const struct config_peer *a, const struct config_peer *b, bool identity) {
        if (identity)
                return a->has_public_key && b->has_public_key &&
                       memcmp(a->public_key, b->public_key, sizeof(a->public_key)) == 0;
        if (a->name && b->name)
                return strcmp(a->name, b->name) == 0;
        return !a->name && !b->name && a->host && b->host && strcmp(a->host, b->host) == 0 &&
               a->port == b->port;
}

static const struct config_peer *find_node(const struct config *c, const struct config_peer *e,
                                           bool identity) {
        for (size_t i = 0; i < c->n_peers; i++)
                if (same_node(&c->peers[i], e, identity))
                        return &c->peers[i];
        return NULL;
}

/* The running peer an entry of the old list made (device_new, or an earlier reload). */
static struct peer *running_peer(struct device *d, const struct config_peer *cp, bool identity) {
        char addr[HOSTPORT_STRLEN] = "";
        struct peer *p;

        if (cp->host)
                (void) hostport_format(cp->host, cp->port, addr, sizeof(addr));
        for (size_t i = 0; (p = device_peer_at(d, i)); i++) {
                if (identity ? memcmp(p->public_key, cp->public_key, sizeof(p->public_key)) == 0
                    : cp->name ? p->name && strcmp(p->name, cp->name) == 0
                               : !p->name && p->address && strcmp(p->address, addr) == 0)
                        return p;
        }
        return NULL;
}

static bool entry_moved(const struct config_peer *a, const struct config_peer *b) {
        return !str_eq(a->host, b->host) || a->port != b->port || !str_eq(a->name, b->name);
}

/* A list of several peers (before or after): the entries that are new join the running table,
 * those that are gone hear a closing message and leave it, and an entry whose address or name
 * changed is the node left and joined again. New ones first, so that the table never runs
 * empty on the way. Peers that joined by themselves, or through Connect, are not touched. */
static int apply_peer_list(struct device *d, const struct config *old, const struct config *new,
                           char *buf, size_t size) {
        bool identity = config_identity_mode(new);
        struct manager_error err = {};
        _cleanup_free_ uint64_t *leaving = NULL;
        size_t added = 0, n_leaving = 0;
        int r;

        /* Who leaves, found before anyone joins (a moved entry's new peer has the old name). */
        leaving = calloc(MAX(old->n_peers, (size_t) 1), sizeof(*leaving));
        if (!leaving) {
                snprintf(buf, size, "reload: %s", strerror(ENOMEM));
                return -ENOMEM;
        }
        for (size_t i = 0; i < old->n_peers; i++) {
                const struct config_peer *cp = &old->peers[i], *now = find_node(new, cp, identity);
                struct peer *p;

                if (now && !entry_moved(cp, now))
                        continue;
                p = running_peer(d, cp, identity);
                if (p)
                        leaving[n_leaving++] = p->id;
        }
        for (size_t i = 0; i < new->n_peers; i++) {
                const struct config_peer *cp = &new->peers[i], *was = find_node(old, cp, identity);

                if (was && !entry_moved(was, cp))
                        continue;
                r = manager_add_configured_peer(d, cp, &err);
                if (r < 0) {
                        snprintf(buf, size, "reload: cannot add peers[%zu] (line %zu): %s", i,
                                 cp->line, err.message);
                        return r;
                }
                log_info("reload: peer %s%s%s joins (line %zu)", cp->name ? cp->name : "",
                         cp->name ? " at " : "", cp->host ? cp->host : "(it connects to us)",
                         cp->line);
                added++;
        }
        for (size_t k = 0; k < n_leaving; k++) {
                struct peer *p = NULL;

                for (size_t i = 0; (p = device_peer_at(d, i)) && p->id != leaving[k]; i++)
                        ;
                if (!p)
                        continue;
                log_info("reload: peer %s is no longer configured: it leaves",
                         p->name ? p->name : p->address ? p->address : "(no address)");
                r = manager_disconnect_peer(d, p, &err);
                if (r < 0 && r != -ENOTCONN) {
                        snprintf(buf, size, "reload: cannot leave peer %s: %s",
                                 p->name ? p->name : p->address ? p->address : "", err.message);
                        return r;
                }
        }
        snprintf(buf, size, "%zu joined, %zu left", added, n_leaving);
        return 0;
}

static int apply_relay(struct device *d, const struct config *new) {
        int r;

        d->relay = relay_client_free(d->relay);
        d->sender.relay = (struct endpoint){};
        d->peer->relay_introduced = false;
        if (!new->relay_enabled || !new->relay_host) {
                log_info("reload: no relay");
                return 0;
        }
        r = manager_relay_start(d, new->relay_host, new->relay_port);
        if (r < 0)
                return log_error_errno(r, "reload: starting the relay client: %m");
        log_info("reload: relay %s:%u", new->relay_host, new->relay_port);
        return 0;
}

static void apply_stun(struct device *d) {
        int r;

        d->netcheck = netcheck_free(d->netcheck);
        if (!d->config->nat_enabled || !d->config->stun_host) {
                log_info("reload: no STUN server");
                return;
        }
        r = device_start_netcheck(d);
        if (r < 0)
                log_warning_errno(r, "reload: cannot start NAT discovery: %m");
        else
                log_info("reload: NAT discovery with %s:%u", d->config->stun_host,
                         d->config->stun_port);
}

/* Swap the running configuration for the new one, member by member where the running code
 * holds pointers into it (the relay and STUN host names). */
static void take_config(struct device *d, struct config *new) {
        struct config *old = d->config;

        SWAP_PTR(old->peers, new->peers);
        SWAP_PTR(old->n_peers, new->n_peers);
        old->peers_line = new->peers_line;
        old->peers_column = new->peers_column;
        old->relay_enabled = new->relay_enabled;
        SWAP_PTR(old->relay_host, new->relay_host);
        old->relay_port = new->relay_port;
        old->nat_enabled = new->nat_enabled;
        SWAP_PTR(old->stun_host, new->stun_host);
        old->stun_port = new->stun_port;
        SWAP_PTR(old->control_group, new->control_group);
}

int reload_config(struct device *d, char *buf, size_t size) {
        _cleanup_(config_freep) struct config *new = NULL;
        char errbuf[512] = "", changed[512];
        char list_msg[1024] = "";
        bool peer, list, relay, stun, group;
        int r;

        r = config_load(d->config->path, &new, errbuf, sizeof(errbuf));
        if (r < 0) {
                snprintf(buf, size, "reload failed, the running configuration stays: %s",
                         errbuf[0] ? errbuf : strerror(-r));
                return r;
        }
        /* First, whatever else changed. */
        if (new->log_level != d->config->log_level) {
                log_set_max_level(new->log_level);
                d->config->log_level = new->log_level;
                log_info("reload: log level %s", log_level_to_string(new->log_level));
        }

        restart_only_changes(d, d->config, new, changed, sizeof(changed));
        if (changed[0]) {
                snprintf(buf, size,
                         "reload refused: %s changed in %s, which needs a restart "
                         "(systemctl restart shadowmesh@%s); the tunnel keeps running with the "
                         "values it started with",
                         changed, d->config->path, d->instance);
                return -EBUSY;
        }

        list = (d->config->n_peers > 1 || new->n_peers > 1) && peer_list_changed(d->config, new);
        peer = !list && peer_changed(d->config, new);
        relay = relay_changed(d->config, new);
        stun = stun_changed(d->config, new);
        group = !str_eq(d->config->control_group, new->control_group);
        take_config(d, new);
        if (group) {
                device_resolve_control_group(d);
                log_info("reload: control group %s", device_control_group(d));
        }
        if (relay) {
                r = apply_relay(d, d->config);
                if (r < 0) {
                        snprintf(buf, size, "reload: the relay client did not start: %s", strerror(-r));
                        return r;
                }
        }
        if (stun)
                apply_stun(d);
        if (peer) {
                r = apply_peer(d, d->config, buf, size);
                if (r < 0)
                        return r;
        }
        if (list) {
                /* take_config swapped the lists: new holds the old one now. */
                r = apply_peer_list(d, new, d->config, list_msg, sizeof(list_msg));
                if (r < 0) {
                        snprintf(buf, size, "%s", list_msg);
                        return r;
                }
        }
        snprintf(buf, size, "reloaded %s%s%s%s%s%s%s%s", d->config->path,
                 peer ? " (peer applied)" : "", list ? " (peers: " : "", list_msg,
                 list ? ")" : "", relay ? " (relay applied)" : "",
                 stun ? " (STUN server applied)" : "", group ? " (control group applied)" : "");
        return 0;
}

int reload_on_sighup(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        struct device *d = userdata;
        char msg[1024];
        int r;

        (void) sd_notify(false, "RELOADING=1\nSTATUS=Reloading the configuration");
        r = reload_config(d, msg, sizeof(msg));
        if (r < 0)
                log_error("%s", msg);
        else {
                log_info("%s", msg);
                log_debug("reload: the log level in force is %s",
                          log_level_to_string(log_get_max_level()));
        }
        (void) sd_notifyf(false, "READY=1\nSTATUS=%s", r < 0 ? "Reload refused, see the log"
                                                              : "Configuration reloaded");
        return 0;
}
