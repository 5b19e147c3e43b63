/* SPDX-License-Identifier: MIT */
/* The data-path threads: one transmit thread per TAP queue (TAP -> UDP) and one receive thread
 * (UDP -> TAP). They move DATAPATH_BATCH packets per system call where the kernel allows it,
 * never allocate, lock or log per packet, and talk to the control loop only through atomics and
 * an eventfd.
 *
 * Queues (network.threads): a TAP with n_queues queues (tap.h) has one transmit thread per
 * queue. The kernel spreads the frames it sends over the queues by a hash of each flow, so a
 * flow's frames are read, sealed and sent by one thread, in order; the threads share nothing per
 * packet but atomics (a key pair's send counter, the counters) and the sockets. The receive
 * thread writes into the TAP's detached queue (tap.h: write_fd), which leaves the spreading to
 * the hash. The receive thread has rx_workers crypto workers (network.rx_workers; workers.h,
 * "Crypto workers" in datapath.c) that open a busy batch's datagrams beside it.
 *
 * struct datapath is what the threads work with: device.c owns it (and the TAP and the sockets it
 * lends it), fills it in before datapath_start(), keeps its peer table and reads the queue, the
 * wake-up eventfd and the counters from the control loop. The tx side is a learning switch
 * (tx_batch in datapath.c), the rx side learns (rx_data). */
#pragma once

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "mactable.h"
#include "peer.h"
#include "tap.h"
#include "udp.h"

/* Counters: written by the data threads (and the control loop) with relaxed atomics, read by
 * anyone. */
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
        /* The mesh: frames sent to one peer by the MAC table, frames flooded (and the copies
         * that went out), shared-key newcomers refused at MESH_MAX_PEERS, MAC addresses forgotten
         * with their peer (removed, or its session gone for good). */
        _Atomic uint64_t tx_unicast_frames, tx_flooded_frames, tx_flood_copies,
                peers_refused_full, macs_forgotten;
        /* Data messages the receive thread's crypto workers opened (not the thread itself). */
        _Atomic uint64_t rx_worker_datagrams;
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
        /* QUEUED_PROBE, _PROBE_REPLY, _CLOSE: the peer whose session opened it (its slot and
         * id: the control loop checks the slot still holds that peer). */
        uint32_t slot;
        uint64_t peer_id;
        uint8_t data[576]; /* >= STUN_MAX_MESSAGE_LEN, sizeof(struct message_relay_peer) */
};

/* Mesh discovery (mesh-discovery.c): a peer-list chunk the rx thread opened on the session of
 * the peer in slot (id peer_id), handed to the control loop in its own queue (messages.h,
 * DISCOVERY_QUEUE_LEN: why). */
struct queued_discovery {
        struct endpoint from;
        uint32_t slot;
        uint64_t peer_id;
        uint16_t len;
        uint8_t plain[DISCOVERY_PLAIN_MAX_LEN];
};

struct ratelimit;
struct credit;
struct datapath;

/* At most this many TAP queues, each with its transmit thread (network.threads). */
enum { DATAPATH_MAX_QUEUES = 8 };
_Static_assert((int) DATAPATH_MAX_QUEUES == (int) TAP_MAX_QUEUES, "a transmit thread per TAP queue");
_Static_assert((int) DATAPATH_MAX_QUEUES == (int) CONFIG_MAX_THREADS, "network.threads counts queues");
_Static_assert((int) DATAPATH_MAX_QUEUES + 1 <= (int) QS_MAX_THREADS, "a marker per data thread");
/* The index of a thread's quiescent-state marker in struct datapath's qs. */
#define DATAPATH_QS_RX 0
#define DATAPATH_QS_TX(queue) (1 + (queue))

/* One TAP queue and its transmit thread. */
struct datapath_queue {
        struct datapath *d;
        unsigned index;
        int tap_fd; /* the TAP's queue_fd[index], lent */
        pthread_t thread;
        /* Idle hand-over ("Idle hand-over" in datapath.c, issue 12's ping), per queue: which
         * data thread reads this queue and sends its frames: DATAPATH_TAP_TX (this queue's
         * transmit thread) or, while that thread is parked on an idle queue, DATAPATH_TAP_RX.
         * Only the thread it names changes it; the receive thread wakes this one through
         * handover_fd, this one the receive thread through struct datapath's rx_handover_fd
         * (made and closed by datapath_start/datapath_stop). */
        _Atomic unsigned tap_reader;
        int handover_fd;
        /* Frames read from this queue (by either thread): how the kernel spread the flows. */
        _Atomic uint64_t frames;
};

struct datapath {
        /* Lent by device.c, set before datapath_start(): the TAP (with its queues) and the
         * socket. */
        struct tap *tap;
        struct udp_sockets sockets; /* the rx thread reads both, the tx side picks (udp_pick) */
        /* The peer table (device.c writes it, the data threads read it without a lock): a slot
         * holds its peer or NULL; peers_end is one past the highest slot ever used, so a flood
         * walks no further. A thread loads a peer only inside a batch (qs markers below), so a
         * removed peer is freed only once every data thread passed a quiescent point (peer.c). */
        _Atomic(struct peer *) peers[MESH_MAX_PEERS];
        _Atomic uint32_t peers_end;
        /* The learning switch (mactable.h): the rx thread learns, the tx thread looks up. A
         * port is datapath_port(peer): the slot, and the peer's id above it, so that an entry
         * of a removed peer never names the peer that reuses its slot. */
        struct mactable macs;
        /* Ports whose entries the rx thread should drop (control loop -> rx thread, single
         * producer, single consumer); a full ring only delays reclaiming (entries age out). */
        uint32_t forget_ports[64];
        _Atomic uint32_t forget_head, forget_tail;
        int stop_fd; /* eventfd: data threads exit when readable */
        int wake_fd; /* eventfd: data threads -> control loop */
        unsigned offload_disabled; /* DATAPATH_NO_*, set before the start */
        unsigned rx_workers;       /* the receive thread's crypto workers, set before the start */
        /* The rx thread's own: per-source buckets under load (before the queue), and per-source
         * byte credit for data on unknown sessions (credit.c). */
        struct ratelimit *rx_ratelimit;
        struct credit *rx_credit;
        /* The relay's address, once resolved: written once by the control loop, then
         * relay_address_set (release); the rx thread takes RELAY_DATA only from there. */
        struct endpoint relay_address;
        _Atomic bool relay_address_set;

        /* The queues (as many as the TAP has: datapath_start) and the receive thread. */
        struct datapath_queue queues[DATAPATH_MAX_QUEUES];
        unsigned n_queues;
        pthread_t rx_thread;
        bool threads_started;
        _Atomic bool stopping;
        /* Each data thread's marker (DATAPATH_QS_RX, DATAPATH_QS_TX(queue)): odd inside a
         * batch, even quiescent (peer.h). */
        struct qs_marker qs[QS_MAX_THREADS];
        int rx_handover_fd; /* a transmit thread parked: the receive thread reads its queue */

        /* rx -> control handshake queue (single producer, single consumer). */
        struct queued_handshake *hs_queue;
        _Atomic uint32_t hs_head, hs_tail;
        /* Set by the rx thread whenever it finds the queue long (and starts limiting sources);
         * the control loop takes it as "under load", so the two cannot disagree while the
         * limiter holds the queue just at the mark. */
        _Atomic bool hs_queue_was_long;
        /* rx -> control discovery queue (single producer, single consumer; mesh discovery). */
        struct queued_discovery disco_queue[DISCOVERY_QUEUE_LEN];
        _Atomic uint32_t disco_head, disco_tail;

        struct stats stats;
};

/* The parts of network.offload that the environment variable SHADOWMESHD_OFFLOAD_DISABLE (a
 * comma-separated list of "udp-gso", "udp-gro", "tcp-gro") turns off, so that bench/run.sh can
 * measure what each one buys (bench/README.md). Not a configuration key: with offloads on,
 * every part the kernel offers is used. */
enum {
        DATAPATH_NO_UDP_GSO = 1 << 0,
        DATAPATH_NO_UDP_GRO = 1 << 1,
        DATAPATH_NO_TCP_GRO = 1 << 2,
};
/* Parse such a list into DATAPATH_NO_* flags; -EINVAL (and *ret_bad set to the word) for an
 * unknown word. NULL or "" is no flag. */
int datapath_parse_disable(const char *s, unsigned *ret, char *ret_bad, size_t bad_len);

/* The learning switch's port of a peer: its slot, and the low bits of its id above. */
static inline uint32_t datapath_port(const struct peer *p) {
        uint32_t port = p->slot | (uint32_t) (p->id << MESH_SLOT_BITS);

        return port == MACTABLE_PORT_NONE ? port - MESH_MAX_PEERS : port; /* never "none" */
}
/* Ask the rx thread to drop the MAC table's entries of port (control loop). false when the
 * ring is full (they age out instead). */
bool datapath_forget_port(struct datapath *dp, uint32_t port);

/* The markers that key pair retirement (peer.h) waits on: every data thread's (those of queues
 * the TAP does not have stay 0: quiescent). */
static inline struct qs_markers datapath_markers(struct datapath *dp) {
        return (struct qs_markers){ .m = dp->qs, .n = DATAPATH_QS_TX(DATAPATH_MAX_QUEUES) };
}

/* The number of queues network.threads asks for: threads itself (1..DATAPATH_MAX_QUEUES), or
 * with 0 (auto) the CPUs the process may run on (sched_getaffinity), at most
 * DATAPATH_MAX_QUEUES, and 1 on one CPU or when the mask cannot be read. */
unsigned datapath_queues_for(uint32_t threads);
/* The crypto workers for network.rx_workers (CONFIG_RX_WORKERS_AUTO: from the CPUs this process
 * may run on, see shadowmesh.yaml(5)). */
unsigned datapath_rx_workers_for(uint32_t rx_workers);

/* Start the receive thread and one transmit thread per queue of dp->tap. */
int datapath_start(struct datapath *dp);
/* Signal the threads to exit and join them (bounded: they check stop_fd on every wake-up). */
void datapath_stop(struct datapath *dp);

/* Which data thread reads a TAP queue (struct datapath_queue's tap_reader; "Idle hand-over" in
 * datapath.c). */
enum {
        DATAPATH_TAP_TX, /* the queue's tx thread (as the threads start) */
        DATAPATH_TAP_RX, /* the rx thread, while the tx thread is parked on an idle queue */
};
