/* SPDX-License-Identifier: MIT */
/*
 * One tunnel instance at run time: the TAP, the UDP socket, the peer table (up to
 * MESH_MAX_PEERS peers, each a struct peer of peer.c), the MAC table of the learning switch, the
 * data path (datapath.c) and the sd-event control loop that dispatches what the rx thread
 * queues and runs every peer's timers. It calls down only: what the connection logic must hear
 * goes through `events` (manager.c sets them), what the bus must emit through `emit_changed`
 * (bus.c sets it). main.c starts and stops the front ends (manager, bus, HTTP, reload) around
 * it.
 *
 * Threads and what they may touch:
 *   control (sd-event): handshakes, timers, key rotation, logging of events, counters' readers.
 *   tx thread: reads the TAP, looks up the destination MAC, seals with each destination peer's
 *              current key pair, sends one sendmmsg per peer.
 *   rx thread: recvmmsg, finds the peer by the slot in the session index, opens data messages
 *              with its current/previous/next, learns the source MAC, writes the TAP, queues
 *              handshake messages for the control loop.
 * Peers and key pairs are published through atomic pointers and freed (wiped) only after both
 * data threads have passed a quiescent point (device_remove_peer, peer_retire_keypair), so no
 * lock is taken per packet.
 */
#pragma once

#include <sys/types.h>
#include <stdatomic.h>
#include <systemd/sd-event.h>

#include "config.h"
#include "cookie.h"
#include "datapath.h"
#include "handshake.h"
#include "messages.h"
#include "netcheck.h"
#include "noise.h"
#include "path.h"
#include "peer.h"
#include "state.h"
#include "tap.h"
#include "udp.h"

struct addrwatch;
struct ratelimit;
struct credit;
struct relay_client;
struct netcheck_run;
struct http_server;
struct bus;
struct manager;
struct mesh_discovery;

struct device {
        struct config *config;
        const char *instance;
        sd_event *event;
        sd_event_source *tick_source, *wake_source, *post_source;
        /* The tick is TIMERS_QUIET_TICK_NSEC apart, or when a timer rule falls due (nothing
         * under way: device.c, device_settled). */
        bool tick_quiet;

        enum tunnel_state state; /* the instance's, from its peers' (state.c) */
        /* daemon.control_group: its members may connect and disconnect through the APIs. */
        gid_t control_gid;
        bool has_control_gid;

        /* The front ends' own state, each opaque here: the connection logic's (manager_start),
         * the D-Bus face's (bus_open), the HTTP API's (http_start). NULL before they start. */
        struct manager *manager;
        struct mesh_discovery *discovery; /* mesh-discovery.c (manager_start starts it) */
        struct bus *bus;
        struct http_server *http;
        /* PropertiesChanged for these (NULL-terminated); set by bus_open, NULL without a bus. */
        void (*emit_changed)(struct device *d, const char *const *properties);
        /* What the connection logic (manager.c) hears of the peers; it sets these. */
        struct {
                void (*peer_changed)(struct device *d, struct peer *p); /* its state moved */
                void (*session_up)(struct device *d, struct peer *p);   /* usable both ways */
                /* Its authenticated closing message on the session with local index key_idx. */
                void (*peer_closed)(struct device *d, struct peer *p, uint32_t key_idx,
                                    const struct endpoint *from);
                void (*tick)(struct device *d, uint64_t now); /* every tick (timers.h) */
                /* Something of theirs is due on the next tick: keep the short one. */
                bool (*pending)(const struct device *d);
                /* Mesh discovery: a peer-list chunk p sent on its session, opened (plaintext). */
                void (*discovery)(struct device *d, struct peer *p, const uint8_t *plain,
                                  size_t len, const struct endpoint *from);
        } events;

        struct tap *tap;
        /* The tunnel's sockets (udp.h: fd, and fd4 for IPv4 beside an IPv6-only fd, -EBADF
         * when there is one socket), lent to the data path, the sender and netcheck; endpoints
         * are kept in udp_family. */
        struct udp_sockets sockets;
        int udp_family;
        uint16_t port;

        /* Keys and derived constants (handshake.c), and how the control loop sends (path.c). */
        struct handshake_keys keys;
        struct sender sender;

        /* The peer table (control loop's side; the data threads read dp.peers). by_id holds the
         * n_peers peers in the order they were created (their ids grow); a removed peer waits
         * in dying (its slot still taken, so no index of its can name another peer) until every
         * data thread passed a quiescent point (peer.c), then it is freed. */
        struct peer *by_id[MESH_MAX_PEERS];
        size_t n_peers;
        uint64_t last_peer_id;
        bool slot_taken[MESH_MAX_PEERS];
        struct {
                struct peer *p;
                uint64_t qs[QS_MAX_THREADS];
        } dying[MESH_MAX_PEERS];
        size_t n_dying;
        /* The peer the single-peer API properties (bus.c's Endpoint, Path, PeerAddress,
         * http.c) and Connect without a known address speak of: the table's first peer. Never
         * NULL once device_new() returned: removing the last peer keeps it, cleared (waiting). */
        struct peer *peer;
        /* PeerAdded/PeerRemoved for the bus (bus.c sets them; NULL: none). Called only through
         * device_peer_added() and device_peer_removed(). */
        struct {
                void (*added)(struct device *d, struct peer *p);
                void (*removed)(struct device *d, struct peer *p);
        } peer_hooks;

        struct addrwatch *addrwatch; /* addrwatch.c; NULL when rtnetlink cannot be watched */
        /* Bursts of changes to the host's addresses it reported (announce_address): mesh
         * discovery reads our addresses again when this moves. */
        unsigned address_changes;

        /* NAT traversal. */
        struct relay_client *relay;             /* relay-client.c; NULL without relay.server */
        struct netcheck_socket netcheck_socket; /* where NAT checks run */
        struct netcheck_run *netcheck;          /* the start-up discovery */
        struct netcheck_run *netcheck_api;      /* bus.c's NetCheck() call in progress */
        char public_endpoint[ENDPOINT_STRLEN];  /* "" until STUN tells */
        struct endpoint public_endpoint_sa;
        char nat_type[32];  /* "unknown" until measured */
        bool nat_keepalive; /* behind a NAT or using a relay: keep mappings open */

        /* The data path: its threads, the rx -> control queue, the counters. */
        struct datapath dp;
        uint64_t under_load_until_ns;
};

int device_new(struct config *config, const char *instance, struct device **ret);
/* Run the event loop until SIGINT/SIGTERM; returns 0 or -errno. */
int device_run(struct device *d);
struct device *device_free(struct device *d);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct device *, device_free);

/* daemon.control_group, or its default "netdev"; look it up again (at start and on reload):
 * its members may connect and disconnect through the APIs. */
const char *device_control_group(const struct device *d);
void device_resolve_control_group(struct device *d);
/* PropertiesChanged for these properties (NULL-terminated; empty: only the peers' own), through
 * emit_changed. */
void device_emit_changed(struct device *d, const char *const *properties);
#define device_properties_changed(d, ...)                                                          \
        device_emit_changed(d, (const char *const[]){ __VA_ARGS__, NULL })

/* (Re)start the NAT discovery against nat.stun_server (at start-up and on reload). */
int device_start_netcheck(struct device *d);

/* The peer table, control loop only. Peers in a stable order (by id); their traffic; the MAC
 * addresses the learning switch has behind a peer (a walk of the MAC table: not per packet). */
size_t device_peer_count(const struct device *d);
struct peer *device_peer_at(const struct device *d, size_t i);
/* The peers the APIs show (D-Bus Peer objects, Peers, shadowmeshctl status): those in play,
 * neither waiting nor disconnected, by id; peer_hooks announce each one entering and leaving
 * this list. (The table keeps a waiting instance's placeholder peer, which is no peer to a
 * user.) */
size_t device_listed_peer_count(const struct device *d);
struct peer *device_listed_peer_at(const struct device *d, size_t i);
void device_peer_counters(const struct device *d, const struct peer *p, uint64_t *ret_rx_bytes,
                          uint64_t *ret_tx_bytes);
size_t device_peer_macs(const struct device *d, const struct peer *p);
/* The bus's hooks (peer_hooks), which may be NULL. removed runs before the peer is freed. */
void device_peer_added(struct device *d, struct peer *p);
void device_peer_removed(struct device *d, struct peer *p);

/* A new peer in a free slot (name may be NULL), published to the data threads: -ENOSPC at
 * MESH_MAX_PEERS, -ENOMEM. */
int device_add_peer(struct device *d, const char *name, struct peer **ret);
/* The same for a peer that joined by itself (a shared-key newcomer, one discovery or the relay
 * told us of): it starts waiting and expires (device_expire_peers). */
int device_add_joiner(struct device *d, struct peer **ret);
/* Remove the joiners that expired: no session, nothing authenticated from them for
 * PEER_EXPIRE_AFTER_TIME s, no address given to Connect. Each is logged; returns how many went
 * (the caller brings the instance's state up to date). */
size_t device_expire_peers(struct device *d, uint64_t now);
/* Unpublish p and free it once the data threads cannot hold it; its MAC entries are dropped.
 * The last peer is not removed (d->peer stays): the caller clears it instead. */
void device_remove_peer(struct device *d, struct peer *p);
/* Free the removed peers that no data thread can hold any more (every tick). */
void device_collect_peers(struct device *d);
/* The peer in slot whose id is id (what the rx thread queued), or NULL. */
struct peer *device_peer_by_slot(const struct device *d, uint32_t slot, uint64_t id);
/* The peer whose endpoint is e (address and port), or NULL. */
struct peer *device_peer_by_endpoint(const struct device *d, const struct endpoint *e);
/* Drop the MAC table's entries behind p (it is gone, or its session is gone for good):
 * counted in macs_forgotten and logged. */
void device_forget_macs(struct device *d, struct peer *p);

/* Log the one-line counter summary. */
void device_log_stats(struct device *d);
