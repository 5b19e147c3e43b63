/* SPDX-License-Identifier: MIT */
/*
 * One peer: its key pairs and their retirement, its endpoint (a seqlock), its handshake and
 * timer state, its paths (direct candidates, relay slot) and its state in the connection
 * state machine. device.c keeps the peers in its peer table; the other modules get the peer
 * they work on as an argument.
 *
 * Threads: the data threads read the endpoint (seqlock) and the key pair pointers (atomics,
 * inside a batch) and record the timer inputs (atomics); everything else is the control
 * loop's. Key pairs are wiped only after every data thread passed a quiescent point since they
 * were unpublished (peer_retire_keypair), so no lock is taken per packet.
 */
#pragma once

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "cookie.h"
#include "messages.h"
#include "noise.h"
#include "session.h"
#include "state.h"
#include "udp.h"
#include "util.h"

enum handshake_state {
        HANDSHAKE_ZEROED,
        HANDSHAKE_CREATED_INITIATION,
};

struct resolve_query; /* resolve.h: manager.c resolves a configured address */

/* One data thread's quiescent-state marker (datapath.c bumps it: odd inside a batch, even
 * otherwise), alone in its 64 bytes so that threads bumping theirs share no cache line. */
struct qs_marker {
        _Atomic uint64_t v;
        uint8_t pad[64 - sizeof(uint64_t)];
};
/* Room for every data thread's marker (datapath.h: DATAPATH_MAX_QUEUES transmit threads and
 * their receive threads). */
enum { QS_MAX_THREADS = 16 };
/* The data threads' markers: n of them from m. n == 0: no data thread exists, so nothing can
 * hold a retired key pair. */
struct qs_markers {
        const struct qs_marker *m;
        unsigned n;
};

/* A key pair waiting for every data thread to pass a quiescent point before it is wiped. */
struct retired_keypair {
        struct keypair *kp;
        uint64_t qs[QS_MAX_THREADS];
};

struct peer {
        /* Identity in the table (device.c): unique per run, never reused, from 1; the config
         * entry's name (owned, NULL when none); the table slot, carried in the low bits of
         * every local session index (MESH_SLOT_OF_INDEX). Set at creation, then constant. */
        uint64_t id;
        char *name;
        uint32_t slot;
        /* This peer's traffic (the data threads add, anyone reads; relaxed). The instance's
         * totals stay in struct stats. */
        _Atomic uint64_t rx_bytes, tx_bytes, rx_packets, tx_packets;

        /* Endpoint: a seqlock so the tx thread reads it without a lock; writers (rare: roaming,
         * handshakes) serialise on endpoint_lock. */
        _Atomic unsigned endpoint_seq;
        struct endpoint endpoint;
        pthread_mutex_t endpoint_lock;

        _Atomic(struct keypair *) current, previous, next;
        /* Unpublished key pairs, wiped once the data threads (qs) moved on. Control loop. */
        struct qs_markers qs;
        struct retired_keypair retired[MAX_RETIRED_KEYPAIRS];
        size_t n_retired;

        /* Control loop only. */
        bool listed;              /* the APIs show it (device.c: in play, see device_peer_count) */
        /* It joined by itself (device_add_joiner): it expires (PEER_EXPIRE_AFTER_TIME) unless
         * Connect gave it an address since. */
        bool joined;
        uint64_t added_ns;
        /* manager.c: its configured address, being resolved (a peer added by reload). */
        struct resolve_query *resolve;
        char *address;            /* "host:port" as configured or given to Connect; NULL: none */
        enum tunnel_state state;  /* this peer's, by state.c's table (manager_peer_event) */
        char failure_reason[256]; /* why it is TUNNEL_FAILED; "" otherwise */
        struct noise_handshake handshake;
        enum handshake_state handshake_state;
        uint32_t handshake_index;
        struct cookie_maker cookie_maker;
        uint8_t last_timestamp[NOISE_TIMESTAMP_LEN];
        uint64_t last_initiation_consumed_ns;
        uint64_t last_sent_handshake_ns;
        uint64_t handshake_attempts_started_ns; /* 0: not retrying */
        unsigned handshake_attempts;
        uint64_t retry_interval_ns;         /* timers.c rule 1: until the next retry */
        uint64_t fast_rehandshake_for_ns; /* timers.c rule 3b: the stretch it fired for */
        uint64_t last_handshake_ns;         /* last completed handshake (monotonic) */
        uint64_t last_handshake_realtime_us; /* for status */
        bool static_endpoint;                /* peer.address configured: we initiate */
        bool force_relay;                    /* Connect's relay option (use_relay) */
        bool macs_forgotten; /* its MAC entries were dropped since its session last went */
        /* Identity mode: the pinned key (peer.public_key, or Connect's public_key option). */
        uint8_t public_key[NOISE_PUBLIC_KEY_LEN];

        /* NAT traversal (path.c), control loop only: where the peer might be reached. The
         * relay (when registered and the peer introduced) is one more way, tried after
         * RELAY_FALLBACK_AFTER_MS. */
        struct endpoint candidates[RELAY_MAX_CANDIDATES + 1];
        size_t n_candidates;
        bool relay_introduced;     /* the relay told us the peer's slot */
        /* relaymesh: the node id the relay introduced it under (relay-client.c matches the
         * relay's introductions to peers by it); all zero: none. */
        uint8_t relay_node_id[NOISE_PUBLIC_KEY_LEN];
        struct endpoint via_relay; /* the relay's address with the peer's slot */
        bool relay_probe_pending;  /* a probe went to a new via_relay: its reply moves us */
        uint64_t last_relay_probe_ns;
        uint64_t handshake_first_sent_ns; /* of the current attempt, for the relay fallback */
        uint8_t last_initiation[sizeof(struct message_handshake_initiation)];
        size_t last_initiation_len;
        uint64_t last_probe_ns;
        uint8_t probe_nonce[8];
        struct endpoint reported_endpoint; /* last path logged/emitted */

        /* Timer inputs, set by the data threads (see timers.c). */
        _Atomic uint64_t last_tx_ns, last_rx_ns, last_rx_data_ns, last_tx_data_ns;
        _Atomic uint64_t tx_unanswered_since_ns; /* first data sent since anything was received */
        _Atomic uint64_t rx_unanswered_since_ns; /* first data received since anything was sent */
        _Atomic bool want_handshake;             /* tx had no usable key pair, or rekey due */
        _Atomic bool next_confirmed;             /* rx got data on the responder's next key pair */
};

/* A peer with no endpoint, no keys, the data threads' markers qs (may be NULL), in table slot
 * slot (< MESH_MAX_PEERS) with id id. */
int peer_new(const struct qs_markers *qs, uint32_t slot, uint64_t id, struct peer **ret);
/* Wipes and frees every key pair: call it once no data thread can reach p (none runs, or p
 * was unpublished and peer_retired() says every thread moved on since). Accepts NULL. */
struct peer *peer_free(struct peer *p);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct peer *, peer_free);

/* Endpoint access (seqlock): any thread reads, writers serialise. */
void peer_get_endpoint(struct peer *p, struct endpoint *ret);
void peer_set_endpoint(struct peer *p, const struct endpoint *e);
/* Our source address for the peer is no longer ours: drop it (routing chooses until the next
 * authenticated packet pins one again), unless the endpoint (address or source) has changed
 * from stale meanwhile. true when it was dropped. */
bool peer_forget_source(struct peer *p, const struct endpoint *stale);

/* May the peer be freed? Its slot was unpublished (seq_cst) before peer_retire_start(), which
 * snapshots the markers; peer_retired() is true once every data thread passed a quiescent
 * point since (see peer.c). */
void peer_retire_start(struct peer *p, uint64_t ret_qs[QS_MAX_THREADS]);
bool peer_retired(const struct peer *p, const uint64_t qs[QS_MAX_THREADS]);

/* Is key_idx the local index of one of the peer's key pairs? */
bool peer_has_session(struct peer *p, uint32_t key_idx);

/* Key pair life cycle, control loop only. The caller unpublishes kp (seq_cst store or
 * exchange) before retiring it; it is wiped and freed once every data thread passed a
 * quiescent point (peer_collect_retired). */
void peer_retire_keypair(struct peer *p, struct keypair *kp);
void peer_collect_retired(struct peer *p);
/* Collect, then: may n more key pairs be retired, keeping HANDSHAKE_RETIRE_RESERVE free? */
bool peer_retire_room(struct peer *p, size_t n);
/* Drop every key pair and the handshake in flight (closing, Disconnect, REJECT_AFTER_TIME * 3
 * without a handshake). */
void peer_clear_keys(struct peer *p);
/* A new key pair becomes current; current becomes previous, and the old previous retires. */
void peer_install_current(struct peer *p, struct keypair *kp);
/* The responder's next key pair carried data: make it current. true when it did (the session
 * is up: the caller reports it); put off (next_confirmed set again) without retirement room. */
bool peer_confirm_next(struct peer *p);

/* Feed an event to the peer's state machine (state.c's table). reason (printf format, may be
 * NULL) is kept as failure_reason when the event leads to `failed`. true when the state
 * changed: the caller reports it (manager_peer_changed), as the instance's state follows. */
_printf_(3, 4) bool peer_event(struct peer *p, enum tunnel_event event, const char *reason, ...);
_printf_(3, 0) bool peer_eventv(struct peer *p, enum tunnel_event event, const char *reason,
                                va_list ap);
