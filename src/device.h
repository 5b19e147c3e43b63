/* SPDX-License-Identifier: MIT */
/*
 * One tunnel instance at run time: the TAP, the UDP socket, the peer, the two data-path threads
 * and the sd-event control loop that owns everything else.
 *
 * Threads and what they may touch:
 *   control (sd-event): handshakes, timers, key rotation, logging of events, counters' readers.
 *   tx thread: reads the TAP, seals with peer->current, sends with sendmmsg.
 *   rx thread: recvmmsg, opens data messages with current/previous/next, writes the TAP, queues
 *              handshake messages for the control loop.
 * Key pairs are published through atomic pointers and wiped only after both data threads have
 * passed a quiescent point (datapath_synchronize), so no lock is taken per packet.
 */
#pragma once

#include <pthread.h>
#include <sys/types.h>
#include <stdatomic.h>
#include <systemd/sd-event.h>

#include "config.h"
#include "cookie.h"
#include "messages.h"
#include "noise.h"
#include "session.h"
#include "state.h"
#include "tap.h"
#include "udp.h"


enum handshake_state {
        HANDSHAKE_ZEROED,
        HANDSHAKE_CREATED_INITIATION,
};

/* Counters: written by the data threads with relaxed atomics, read by anyone. */
struct stats {
        _Atomic uint64_t tx_packets, tx_bytes, tx_dropped_no_session, tx_errors;
        _Atomic uint64_t rx_packets, rx_bytes;
        _Atomic uint64_t rx_replayed, rx_bad_tag, rx_unknown_index, rx_malformed, rx_bad_mac1,
                rx_handshake_dropped, rx_handshake_failed;
        _Atomic uint64_t handshakes, initiations_sent, cookies_sent;
        /* Our own initiations sent back to us (refused), handshake messages over a source's
         * rate under load (refused), handshakes put off because key pairs still in use by the
         * data threads filled the retirement list (the peer retries). */
        _Atomic uint64_t rx_reflected, rx_handshake_ratelimited, handshakes_deferred;
        _Atomic uint64_t relay_tx_packets, relay_rx_packets, probes_sent, path_switches;
        /* Offloads (network.offload): TCP super-frames the TAP handed over and we segmented,
         * datagrams that left in a multi-datagram UDP GSO send, datagrams that arrived
         * coalesced by UDP GRO, and TCP segments merged into a super-frame for the TAP. */
        _Atomic uint64_t tx_gso_frames, tx_udp_gso_datagrams, rx_udp_gro_datagrams,
                rx_gro_merged;
};

struct peer {
        /* Endpoint: a seqlock so the tx thread reads it without a lock; writers (rare: roaming,
         * handshakes) serialise on endpoint_lock. */
        _Atomic unsigned endpoint_seq;
        struct endpoint endpoint;
        pthread_mutex_t endpoint_lock;

        _Atomic(struct keypair *) current, previous, next;

        /* Control loop only. */
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
        uint64_t fast_rehandshake_for_ns; /* timers.c rule 3b: the stretch it fired for */
        uint64_t last_handshake_ns;         /* last completed handshake (monotonic) */
        uint64_t last_handshake_realtime_us; /* for status */
        bool static_endpoint;                /* peer.address configured: we initiate */
        /* Identity mode: the pinned key (peer.public_key, or Connect's public_key option). */
        uint8_t public_key[NOISE_PUBLIC_KEY_LEN];

        /* NAT traversal (path.c), control loop only: where the peer might be reached. The
         * relay (when registered and the peer introduced) is one more way, tried after
         * RELAY_FALLBACK_AFTER_MS. */
        struct endpoint candidates[RELAY_MAX_CANDIDATES + 1];
        size_t n_candidates;
        bool relay_introduced;     /* the relay told us the peer's slot */
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

/* A key pair waiting for both data threads to pass a quiescent point before it is wiped. */
struct retired_keypair {
        struct keypair *kp;
        uint64_t tx_qs, rx_qs;
};

/* One message handed from the rx thread to the control loop: a handshake message, a relay
 * control message, a STUN response, or a path probe the rx thread already opened (then data
 * holds its 8-byte nonce). */
enum queued_kind {
        QUEUED_MESSAGE,
        QUEUED_PROBE,
        QUEUED_PROBE_REPLY,
        QUEUED_CLOSE,           /* the peer's closing message, opened (data: its header) */
        QUEUED_UNKNOWN_SESSION, /* data for a session we do not know; the source earned an
                                 * initiation's worth of credit (credit.c) */
};
struct queued_handshake {
        struct endpoint from;
        uint8_t kind;
        uint16_t len;
        uint8_t data[576]; /* >= STUN_MAX_MESSAGE_LEN, sizeof(struct message_relay_peer) */
};

struct addrwatch;
struct resolve_query;
struct ratelimit;
struct credit;
struct relay_client;
struct netcheck_run;
struct manager_waiter;
struct http_server;

struct device {
        struct config *config;
        const char *instance;
        sd_event *event;
        sd_event_source *tick_source, *wake_source;

        /* Connection management (manager.c). */
        enum tunnel_state state; /* the instance's, from its peers' (state.c) */
        char *peer_address;   /* "host:port" as configured or given to Connect; NULL: none */
        struct sd_bus_message *connect_request; /* pending Connect, replied to later */
        struct manager_waiter *connect_waiter;  /* ... or pending for the HTTP API */
        sd_event_source *connect_timeout;
        struct resolve_query *resolve;

        /* D-Bus (bus.c); bus is NULL when there is no system bus. */
        struct sd_bus *bus;
        char *bus_name, *bus_path;
        gid_t control_gid;
        bool has_control_gid;
        void (*on_bus_ready)(struct device *d, int r);
        struct http_server *http; /* http.c: daemon.listen_address's API; NULL: none */
        uint64_t emitted_counters[4];
        uint64_t counters_emitted_ns;
        struct endpoint emitted_endpoint;

        struct tap *tap;
        int udp_fd, udp_family;
        uint16_t port;

        /* Keys and derived constants. */
        enum noise_pattern pattern;
        uint8_t static_private[NOISE_PUBLIC_KEY_LEN], static_public[NOISE_PUBLIC_KEY_LEN];
        uint8_t psk[NOISE_PSK_LEN];
        uint8_t prologue[sizeof(SHADOWMESH_PROLOGUE_LABEL) - 1 + NETWORK_ID_LEN];
        struct cookie_checker cookie_checker;
        /* Random per run: keys the tag that marks the timestamps of our own initiations, so a
         * node knows its own initiation when it comes back (handshake.c). */
        uint8_t own_initiation_key[32];
        /* Per-source buckets under load: the rx thread's (before the queue) and the control
         * loop's (after mac2). Each belongs to that one thread. */
        struct ratelimit *rx_ratelimit, *handshake_ratelimit;
        /* The rx thread's per-source byte credit for data on unknown sessions (credit.c). */
        struct credit *rx_credit;

        struct peer peer;
        struct stats stats;

        struct addrwatch *addrwatch; /* addrwatch.c; NULL when rtnetlink cannot be watched */

        /* NAT traversal. */
        struct relay_client *relay;         /* relay-client.c; NULL without relay.server */
        /* The relay's address, once resolved: written once by the control loop, then
         * relay_address_set (release); the rx thread takes RELAY_DATA only from there. */
        struct endpoint relay_address;
        _Atomic bool relay_address_set;
        struct netcheck_run *netcheck;      /* netcheck.c: the start-up discovery */
        struct netcheck_run *netcheck_api;  /* netcheck.c: a NetCheck() call in progress */
        char public_endpoint[ENDPOINT_STRLEN]; /* "" until STUN tells */
        struct endpoint public_endpoint_sa;
        char nat_type[32];                  /* "unknown" until measured */
        bool nat_keepalive; /* behind a NAT or using a relay: keep mappings open */
        bool force_relay;   /* Connect's relay option (the prototype's use_relay) */

        /* Data path. */
        pthread_t tx_thread, rx_thread;
        bool threads_started;
        int stop_fd;                      /* eventfd: data threads exit when readable */
        int wake_fd;                      /* eventfd: data threads -> control loop */
        _Atomic uint64_t tx_qs, rx_qs;    /* odd: inside a batch; even: quiescent */
        unsigned offload_disabled;        /* DATAPATH_NO_* (datapath.h), set before the start */
        _Atomic bool stopping;
        /* Idle hand-over (datapath.c, issue 12's ping): which data thread reads the TAP and
         * sends its frames: DATAPATH_TAP_TX or, while the tx thread is parked on an idle TAP,
         * DATAPATH_TAP_RX (datapath.h). Only the thread it names changes it; each wakes the other through
         * its eventfd (made and closed by datapath_start/datapath_stop). */
        _Atomic unsigned tap_reader;
        int tx_handover_fd, rx_handover_fd;

        /* rx -> control handshake queue (single producer, single consumer). */
        struct queued_handshake *hs_queue;
        _Atomic uint32_t hs_head, hs_tail;
        uint64_t under_load_until_ns;

        struct retired_keypair retired[MAX_RETIRED_KEYPAIRS];
        size_t n_retired;
};

int device_new(struct config *config, const char *instance, struct device **ret);
/* Run the event loop until SIGINT/SIGTERM; returns 0 or -errno. */
int device_run(struct device *d);
struct device *device_free(struct device *d);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct device *, device_free);

/* Log the one-line counter summary. */
void device_log_stats(struct device *d);

/* Peer endpoint access (seqlock). */
void peer_get_endpoint(struct peer *p, struct endpoint *ret);
void peer_set_endpoint(struct peer *p, const struct endpoint *e);
/* Our source address for the peer is no longer ours: drop it (routing chooses until the next
 * authenticated packet pins one again), unless the endpoint (address or source) has changed
 * from stale meanwhile. true when it was dropped. */
bool peer_forget_source(struct peer *p, const struct endpoint *stale);

/* Wake the control loop from a data thread. */
void device_wake(struct device *d);

/* Key pair life cycle, control loop only. The caller unpublishes kp (seq_cst store or
 * exchange) before retiring it; it is wiped and freed once both data threads passed a
 * quiescent point (device_collect_retired). */
void device_retire_keypair(struct device *d, struct keypair *kp);
void device_collect_retired(struct device *d);
/* Collect, then: may n more key pairs be retired, keeping HANDSHAKE_RETIRE_RESERVE free? */
bool device_retire_room(struct device *d, size_t n);
