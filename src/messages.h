/* SPDX-License-Identifier: MIT */
/*
 * Every wire format and every limit of protocol version 1, in one place.
 *
 * All integers on the wire are little-endian. Sizes follow WireGuard's so that its reasoning
 * about MTU, DoS and replay carries over (see DESIGN.md, "Protocol").
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "util.h"

enum {
        NOISE_PUBLIC_KEY_LEN = 32,
        NOISE_SYMMETRIC_KEY_LEN = 32,
        NOISE_HASH_LEN = 64, /* BLAKE2b-512 */
        NOISE_AUTHTAG_LEN = 16,
        NOISE_TIMESTAMP_LEN = 12, /* TAI64N */
        NOISE_PSK_LEN = 32,
        COOKIE_LEN = 16,
        COOKIE_NONCE_LEN = 24, /* XChaCha20-Poly1305 */
        COOKIE_KEY_LEN = 32,
        NETWORK_ID_LEN = 16,
};

#define noise_encrypted_len(plain_len) ((plain_len) + NOISE_AUTHTAG_LEN)

enum message_type {
        MESSAGE_INVALID = 0,
        MESSAGE_HANDSHAKE_INITIATION = 1,
        MESSAGE_HANDSHAKE_RESPONSE = 2,
        MESSAGE_HANDSHAKE_COOKIE = 3,
        MESSAGE_DATA = 4,
        /* Rendezvous and relay (between a node and shadowmesh-relay), see below. */
        MESSAGE_RELAY_REGISTER = 5,
        MESSAGE_RELAY_CHALLENGE = 6,
        MESSAGE_RELAY_REGISTERED = 7,
        MESSAGE_RELAY_PEER = 8,
        MESSAGE_RELAY_DATA = 9,
        /* Path probes (between two nodes, on an established session). */
        MESSAGE_PATH_PROBE = 10,
        MESSAGE_PATH_PROBE_REPLY = 11,
        /* The sender is leaving (Disconnect, SIGINT/SIGTERM): sealed on the session. */
        MESSAGE_CLOSE = 12,
        /* Mesh discovery: a peer-list chunk, sealed on the session (see "Mesh discovery"). */
        MESSAGE_DISCOVERY = 13,
};

struct message_header {
        /* The first byte is the type; the next three are zero in version 1. Reading the first
         * four bytes as one little-endian u32 gives the type and rejects any non-zero padding. */
        uint8_t type;
        uint8_t reserved_zero[3];
} _packed_;

struct message_macs {
        uint8_t mac1[COOKIE_LEN];
        uint8_t mac2[COOKIE_LEN];
} _packed_;

/* Identity mode, Noise_IKpsk2: -> e, es, s, ss */
struct message_handshake_initiation {
        struct message_header header;
        uint32_t sender_index;
        uint8_t unencrypted_ephemeral[NOISE_PUBLIC_KEY_LEN];
        uint8_t encrypted_static[noise_encrypted_len(NOISE_PUBLIC_KEY_LEN)];
        uint8_t encrypted_timestamp[noise_encrypted_len(NOISE_TIMESTAMP_LEN)];
        struct message_macs macs;
} _packed_;

/* Shared-key mode, Noise_NNpsk0: -> psk, e. Same type byte, told apart by its length: a node
 * runs one mode, so a message of the other mode's length is dropped and counted. */
struct message_handshake_initiation_psk {
        struct message_header header;
        uint32_t sender_index;
        uint8_t unencrypted_ephemeral[NOISE_PUBLIC_KEY_LEN];
        uint8_t encrypted_timestamp[noise_encrypted_len(NOISE_TIMESTAMP_LEN)];
        struct message_macs macs;
} _packed_;

/* Both modes: <- e, ee, se, psk (IKpsk2) or <- e, ee (NNpsk0). */
struct message_handshake_response {
        struct message_header header;
        uint32_t sender_index;
        uint32_t receiver_index;
        uint8_t unencrypted_ephemeral[NOISE_PUBLIC_KEY_LEN];
        uint8_t encrypted_nothing[noise_encrypted_len(0)];
        struct message_macs macs;
} _packed_;

struct message_handshake_cookie {
        struct message_header header;
        uint32_t receiver_index;
        uint8_t nonce[COOKIE_NONCE_LEN];
        uint8_t encrypted_cookie[noise_encrypted_len(COOKIE_LEN)];
} _packed_;

struct message_data {
        struct message_header header;
        uint32_t key_idx;
        uint64_t counter;
        uint8_t encrypted_data[];
} _packed_;

_Static_assert(sizeof(struct message_header) == 4, "header");
_Static_assert(sizeof(struct message_handshake_initiation) == 148, "initiation");
_Static_assert(sizeof(struct message_handshake_initiation_psk) == 100, "psk initiation");
_Static_assert(sizeof(struct message_handshake_response) == 92, "response");
_Static_assert(sizeof(struct message_handshake_cookie) == 64, "cookie reply");
_Static_assert(sizeof(struct message_data) == 16, "data header");

#define MESSAGE_DATA_MIN_LEN (sizeof(struct message_data) + NOISE_AUTHTAG_LEN) /* a keepalive */

/*
 * Rendezvous and relay (protocol version 1). A node registers with shadowmesh-relay:
 *
 *   node  -> relay  REGISTER   (cookie, proof and signature zero), with a fresh random
 *                              client_nonce (every REGISTER has its own)
 *   relay -> node   CHALLENGE  relay's current ephemeral X25519 key and a cookie binding it to
 *                              the node's source address (stateless: MAC under a rotating secret)
 *   node  -> relay  REGISTER   with the cookie echoed and the proof
 *                              MAC(HASH(LABEL_RELAY_PROOF || DH(node_id's key, relay ephemeral)),
 *                                  REGISTER up to the proof field) - possession of node_id's key
 *                              (identity mode: the static key; shared-key mode: a key pair made
 *                              afresh for each daemon run), and, in shared-key mode only, the
 *                              membership signature (below)
 *   relay -> node   REGISTERED the node's slot, the address the relay saw, the lifetime
 *   relay -> node   PEER       for each registered node it may talk to: its slot, id and
 *                              candidates (what it reported, plus the address the relay saw)
 *
 * Replies are authenticated: CHALLENGE, REGISTERED and PEER end in auth = MAC(client_nonce,
 * the message up to auth), MAC = BLAKE2b-128 keyed, under the nonce of the REGISTER they answer
 * (PEER: the nonce of the addressee's latest REGISTER). The nonce travels only in REGISTER, so
 * whoever cannot read the node's REGISTERs cannot forge what the relay tells it, even with the
 * relay's source address. A node keeps the nonces of its last RELAY_CLIENT_NONCES REGISTERs, and
 * takes one CHALLENGE per nonce.
 *
 * Shared-key membership: both sides derive from the psk an Ed25519 key pair,
 *   seed = BLAKE2b-256(key = psk, LABEL_RELAY_MEMBER), network_key = its public key,
 * and a shared-key REGISTER carries network_key and signature = Ed25519(REGISTER up to the
 * signature field). The relay checks the signature, so it admits only holders of the psk, yet
 * holds only a public key (it can verify, never sign, and learns nothing of the psk or the
 * tunnel keys). The signature covers the cookie (the source address) and the per-run node_id,
 * and the proof binds node_id to its private key: another holder of the psk can register nodes
 * of its own, but not move or refresh someone else's registration.
 *
 * Who may reach whom: both nodes registered with the same network_id (BLAKE2b-128 of the psk:
 * the relay never learns a key) and, in identity mode, each naming the other's node_id as
 * want_peer; in shared-key mode (want_peer all zeros) the same network_key as well.
 * A node re-registers every RELAY_REGISTER_INTERVAL (which also keeps its NAT mapping open);
 * a registration not renewed for RELAY_REGISTRATION_LIFETIME expires.
 *
 * RELAY_DATA carries any node-to-node message (handshake, data, probe) through the relay:
 * node -> relay with slot = destination; relay -> node with slot = source. The relay rewrites
 * that one field and nothing else; it never sees plaintext. A node takes RELAY_DATA only from
 * the relay's address.
 */
enum {
        RELAY_MAX_CANDIDATES = 8,
        RELAY_PORT_DEFAULT = 9545,
        RELAY_REGISTER_INTERVAL = 20,       /* s: well inside Linux conntrack's 30 s UDP timeout */
        RELAY_REGISTRATION_LIFETIME = 60,   /* s */
        RELAY_CHALLENGE_SECRET_MAX_AGE = 120, /* s: the relay rotates its ephemeral key and secret */
        RELAY_FALLBACK_AFTER_MS = 3000,     /* no direct path authenticated by then: use the relay */
        PATH_PROBE_INTERVAL = 5,            /* s: probe direct candidates while on the relay */
        NAT_KEEPALIVE_INTERVAL = 20,        /* s: keepalive on a direct path through a NAT */
};

/* Our own address changed (addrwatch.c): the peer is told after a burst of notifications has
 * settled, and a keepalive that cannot leave yet (the new address has no route for a moment)
 * is tried again, well inside the 2 s a roaming node is given to carry traffic again. */
enum {
        ADDRESS_CHANGE_SETTLE_MS = 50,
        ADDRESS_CHANGE_RETRY_MS = 250,
        ADDRESS_CHANGE_RETRIES = 8,
};
#define LABEL_RELAY_PROOF "relay-proof-----"
#define LABEL_RELAY_MEMBER "relay-member----"
enum {
        RELAY_CLIENT_NONCE_LEN = 16,   /* keys the replies' MAC: crypto_generichash_KEYBYTES_MIN */
        RELAY_AUTH_LEN = 16,           /* BLAKE2b-128 */
        RELAY_NETWORK_KEY_LEN = 32,    /* Ed25519 public key */
        RELAY_SIGNATURE_LEN = 64,      /* Ed25519 */
        RELAY_CLIENT_NONCES = 4,       /* REGISTERs whose replies a node still takes */
};

enum relay_candidate_family {
        RELAY_CANDIDATE_NONE = 0,
        RELAY_CANDIDATE_IPV4 = 4,
        RELAY_CANDIDATE_IPV6 = 6,
};

/* An address on the wire: family 4 (first 4 bytes of addr) or 6; port big-endian (as in IP). */
struct relay_candidate {
        uint8_t family;
        uint8_t reserved_zero;
        uint16_t port_be;
        uint8_t addr[16];
} _packed_;

struct message_relay_register {
        struct message_header header;
        uint8_t network_id[NETWORK_ID_LEN];
        uint8_t node_id[NOISE_PUBLIC_KEY_LEN];
        uint8_t want_peer[NOISE_PUBLIC_KEY_LEN];
        uint8_t cookie[COOKIE_LEN];          /* zeros, or the last CHALLENGE's cookie */
        uint8_t relay_ephemeral[NOISE_PUBLIC_KEY_LEN]; /* echoed from that CHALLENGE */
        uint8_t n_candidates;
        uint8_t reserved_zero[3];
        struct relay_candidate candidates[RELAY_MAX_CANDIDATES];
        uint8_t client_nonce[RELAY_CLIENT_NONCE_LEN]; /* random, fresh in every REGISTER */
        uint8_t network_key[RELAY_NETWORK_KEY_LEN];   /* shared-key mode; zeros in identity mode */
        uint8_t proof[COOKIE_LEN];                    /* zeros until a cookie is echoed */
        uint8_t signature[RELAY_SIGNATURE_LEN];       /* shared-key mode, with a cookie; else 0 */
} _packed_;

struct message_relay_challenge {
        struct message_header header;
        uint8_t relay_ephemeral[NOISE_PUBLIC_KEY_LEN];
        uint8_t cookie[COOKIE_LEN];
        uint8_t auth[RELAY_AUTH_LEN];
} _packed_;

struct message_relay_registered {
        struct message_header header;
        uint32_t slot;
        struct relay_candidate observed;
        uint16_t lifetime; /* seconds */
        uint8_t reserved_zero[2];
        uint8_t auth[RELAY_AUTH_LEN];
} _packed_;

struct message_relay_peer {
        struct message_header header;
        uint32_t slot;
        uint8_t node_id[NOISE_PUBLIC_KEY_LEN];
        struct relay_candidate observed;
        uint8_t n_candidates;
        uint8_t reserved_zero[3];
        struct relay_candidate candidates[RELAY_MAX_CANDIDATES];
        uint8_t auth[RELAY_AUTH_LEN];
} _packed_;

struct message_relay_data {
        struct message_header header;
        uint32_t slot;
        uint8_t inner[]; /* one whole node-to-node message */
} _packed_;

/* A probe is sealed like a data message (same keys, same counter space and replay window) with
 * an 8-byte nonce as plaintext; the reply echoes the nonce. A reply received from an address
 * proves the path works both ways; data on it then moves the peer's endpoint (roaming). */
struct message_path_probe {
        struct message_header header;
        uint32_t key_idx;
        uint64_t counter;
        uint8_t encrypted_nonce[noise_encrypted_len(8)];
} _packed_;

/* Closing message: sealed like a probe (the 4-byte header as associated data, the session's
 * counter and replay window), its plaintext the fixed CLOSE_MARKER. Only a holder of the session
 * key can make one, and a captured one is refused by the replay window (or, once the session is
 * gone, by its unknown index), so no one else can make a node drop its peer. Sent
 * CLOSE_COPIES times (each with its own counter): there is no retransmission, the sender is
 * leaving, and one lost datagram would otherwise leave the peer waiting for the dead-peer rule
 * (KEEPALIVE_TIMEOUT + REKEY_TIMEOUT). */
#define CLOSE_MARKER "SM-CLOSE"
enum { CLOSE_MARKER_LEN = sizeof(CLOSE_MARKER) - 1, CLOSE_COPIES = 2 };
struct message_close {
        struct message_header header;
        uint32_t key_idx;
        uint64_t counter;
        uint8_t encrypted_marker[noise_encrypted_len(CLOSE_MARKER_LEN)];
} _packed_;

_Static_assert(sizeof(struct relay_candidate) == 20, "candidate");
_Static_assert(sizeof(struct message_close) == 40, "close");
_Static_assert(CLOSE_MARKER_LEN == 8, "close marker");
_Static_assert(sizeof(struct message_relay_register) ==
                       4 + 16 + 32 + 32 + 16 + 32 + 4 + 160 + 16 + 32 + 16 + 64,
               "register");
_Static_assert(sizeof(struct message_relay_register) == 424, "register");
_Static_assert(sizeof(struct message_relay_challenge) == 68, "challenge");
_Static_assert(sizeof(struct message_relay_registered) == 48, "registered");
_Static_assert(sizeof(struct message_relay_peer) == 4 + 4 + 32 + 20 + 4 + 160 + 16, "peer");
/* A reply to a stranger is never larger than what it answers (no amplification). */
_Static_assert(sizeof(struct message_relay_challenge) < sizeof(struct message_relay_register),
               "challenge smaller than register");
/* The auth MAC ends each reply, so "the message up to auth" is all but the last 16 bytes. */
_Static_assert(offsetof(struct message_relay_challenge, auth) + RELAY_AUTH_LEN ==
                       sizeof(struct message_relay_challenge), "challenge auth last");
_Static_assert(offsetof(struct message_relay_registered, auth) + RELAY_AUTH_LEN ==
                       sizeof(struct message_relay_registered), "registered auth last");
_Static_assert(offsetof(struct message_relay_peer, auth) + RELAY_AUTH_LEN ==
                       sizeof(struct message_relay_peer), "peer auth last");
_Static_assert(sizeof(struct message_relay_data) == 8, "relay data header");
_Static_assert(sizeof(struct message_path_probe) == 40, "probe");
#define MESSAGE_RELAY_DATA_MIN_LEN (sizeof(struct message_relay_data) + sizeof(struct message_header))
/* The largest datagram on the wire: a full data message wrapped for the relay. */
#define RELAYED_DATAGRAM_MAX_LEN (DATAGRAM_MAX_LEN + sizeof(struct message_relay_data))
#define MESSAGE_PADDING_MULTIPLE 16

/* The Noise prologue is this label followed by the NETWORK_ID_LEN-byte network id. */
#define SHADOWMESH_PROLOGUE_LABEL "ShadowMesh v1"
/* Labels for the mac1 and cookie keys, hashed with the responder's key material. */
#define LABEL_MAC1 "mac1----"
#define LABEL_COOKIE "cookie--"
/* Network id = BLAKE2b-128(key=none, LABEL_NETWORK_ID || psk); zeros when there is no psk. */
#define LABEL_NETWORK_ID "shadowmesh-network-id"

/* Protocol limits: timers (seconds) and counters are WireGuard's (see timers.c for the rules). */
enum limits {
        REKEY_AFTER_TIME = 120,
        REJECT_AFTER_TIME = 180,
        REKEY_ATTEMPT_TIME = 90,
        REKEY_TIMEOUT = 5,
        REKEY_TIMEOUT_JITTER_MAX_MS = 334,
        KEEPALIVE_TIMEOUT = 10,
        COOKIE_SECRET_MAX_AGE = 2 * 60,
        COOKIE_SECRET_LATENCY = 5,
        MAX_TIMER_HANDSHAKES = REKEY_ATTEMPT_TIME / REKEY_TIMEOUT,
        INITIATIONS_PER_SECOND = 50,
        MAX_PEERS = 1 << 16,
        /* Handshake messages waiting for the control loop; past this the node is "under load"
         * (mac2/cookies required) and then drops. */
        MAX_QUEUED_HANDSHAKES = 4096,
        UNDER_LOAD_QUEUE_LEN = MAX_QUEUED_HANDSHAKES / 8,
        UNDER_LOAD_AFTER_TIME = 1, /* stay "under load" this long after the queue drains */
        /* Under load, handshake messages per source address (IPv4 address, IPv6 /64), as
         * WireGuard's ratelimiter: a token bucket of this rate and burst, once on the rx thread
         * before the queue (one address cannot fill it) and once on the control loop after mac2
         * (no DH work beyond this rate for one cookie-proven address). The table of sources is
         * a hard cap: a new source that finds no free slot among RATELIMIT_PROBES is refused. */
        RATELIMIT_PACKETS_PER_SECOND = 20,
        RATELIMIT_BURST = 5,
        RATELIMIT_TABLE_SIZE = 4096, /* power of two */
        RATELIMIT_PROBES = 8,
        /* Key pairs retired but not yet wiped (both data threads must pass a quiescent point
         * first). A handshake that would retire more waits for room (the peer retries), so the
         * list never overflows; HANDSHAKE_RETIRE_RESERVE slots stay free for dropping every key
         * pair at once (next, current, previous). */
        MAX_RETIRED_KEYPAIRS = 16,
        HANDSHAKE_RETIRE_RESERVE = 3,
        /* Frames moved per batch in each direction (recvmmsg/sendmmsg vector length). */
        DATAPATH_BATCH = 64,
        /* Frames the kernel queues for our TAP reader (the tun default of 500 drops bursts
         * of a single TCP flow while the tx thread seals the previous batch; 1000 is the
         * Ethernet default and WireGuard's queue depth). */
        TAP_TX_QUEUE_LEN = 1000,
        /* network.offload (DESIGN "Data path"): the struct virtio_net_hdr in front of every
         * frame a TAP with IFF_VNET_HDR reads or writes. */
        TAP_VNET_HDR_LEN = 10,
        /* Datagrams one transmit batch seals before it sends them (a 64 KiB TCP super-frame
         * becomes ~47 at the default MTU; a super-frame that does not fit is carried over to
         * the next batch, never dropped). */
        DATAPATH_TX_DATAGRAMS = 128,
        /* UDP GSO (UDP_SEGMENT): the kernel takes at most UDP_MAX_SEGMENTS (64 before Linux
         * 6.11) datagrams per send, and their sum must fit one IPv4 UDP payload. */
        UDP_GSO_MAX_SEGMENTS = 64,
        UDP_GSO_MAX_BYTES = 65535 - 20 - 8,
        /* UDP GRO (UDP_GRO): receive buffers of a coalesced datagram (at most 64 KiB) and how
         * many of them one recvmmsg fills. */
        UDP_GRO_BUFFER_LEN = 65536,
        DATAPATH_RX_GRO_SLOTS = 16,
        /* Liveness (timers.c): with a session and nothing sent for this long, send a keepalive,
         * so that a quiet peer still proves it is alive well inside the dead-peer window
         * (KEEPALIVE_TIMEOUT + REKEY_TIMEOUT: two lost keepalives in a row are tolerated). */
        LIVENESS_KEEPALIVE_INTERVAL = 5,
        /* Restart detection (timers.c, rule 3b): data sent and nothing authenticated back for
         * this long (ms), while we kept sending data for UNANSWERED_FAST_SENDING_MS of it and
         * the peer had sent data within PEER_CHATTY_WINDOW_MS before it, starts a new
         * handshake at once. */
        UNANSWERED_FAST_TIMEOUT_MS = 2500,
        UNANSWERED_FAST_SENDING_MS = 1000,
        PEER_CHATTY_WINDOW_MS = 2000,
        /* After the peer's closing message an initiator retries its first handshake this soon
         * (ms): a peer that closed is usually restarting. */
        CLOSE_FIRST_RETRY_MS = 1000,
        /* Per-source byte credit (credit.c): data for an unknown session, counted per source
         * address, buys one handshake initiation back to it once it adds up to the initiation's
         * size, at most once per CREDIT_INTERVAL_MS per source. */
        CREDIT_TABLE_SIZE = 256, /* power of two */
        CREDIT_PROBES = 4,
        CREDIT_INTERVAL_MS = 1000,
        CREDIT_IDLE_SEC = 30, /* an entry unused this long is free again */
        /* The HTTP API's limits (body, connections, timeouts) are enum http_limits in
         * http-api.h. */
};

#define REKEY_AFTER_MESSAGES (UINT64_C(1) << 60)
#define COUNTER_BITS_TOTAL 8192
#define COUNTER_REDUNDANT_BITS 64
#define COUNTER_WINDOW_SIZE (COUNTER_BITS_TOTAL - COUNTER_REDUNDANT_BITS)
#define REJECT_AFTER_MESSAGES (UINT64_MAX - COUNTER_WINDOW_SIZE - 1)

/* TAP MTU: 1380 fits PPPoE and IPv6 underlays: 1500 - 8 (PPPoE) - 48 (IPv6+UDP)
 * - 32 (header+tag) - 14 (Ethernet) - up to 15 padding, rounded down. */
enum {
        MTU_DEFAULT = 1380,
        MTU_MIN = 576,
        MTU_MAX = 9000,
        ETHERNET_HEADER_LEN = 14,
        ETHERNET_VLAN_LEN = 4,
        /* Biggest frame a TAP of MTU_MAX hands us (with one VLAN tag), and its datagram. */
        FRAME_MAX_LEN = MTU_MAX + ETHERNET_HEADER_LEN + ETHERNET_VLAN_LEN,
        DATAGRAM_MAX_LEN = sizeof(struct message_data) + ALIGN_TO(FRAME_MAX_LEN, 16) + NOISE_AUTHTAG_LEN,
        PORT_DEFAULT = 9001,
};

/* First four bytes as the message type, or MESSAGE_INVALID when reserved bytes are non-zero or
 * the length does not fit the type (and, for type 1, neither initiation size). Pure, total:
 * every input gets an answer. This is the parser the fuzzer drives. */
enum message_type message_classify(const uint8_t *buf, size_t len);

/*
 * ---- Mesh discovery (issue 11 section 4; src/discovery.c is the codec) ----
 *
 * Peers tell each other, inside the tunnel, the endpoints and candidates of the peers they have,
 * so that from one configured address a node finds the whole mesh and handshakes directly with
 * every node (or through the relay where a pair cannot punch through).
 *
 * Construction: exactly the closing message's (type 12). A DISCOVERY message is sealed with
 * session_encrypt_control(kp, MESSAGE_DISCOVERY, list, list_len, ...) on the established
 * session: the 4-byte header is associated data, the counter is the session's and the replay
 * window refuses a captured copy. No padding: the length gives the number of entries (an
 * observer learns how many peers a chunk names, at most DISCOVERY_MAX_ENTRIES). No new
 * cryptography: only a holder of the session key makes one.
 *
 *   message:   type=13|0[3]|key_idx u32|counter u64|AEAD(list chunk)      32 + plaintext
 *   plaintext: epoch u64|version u32|chunk_index u16|chunk_count u16       16
 *              then 0..DISCOVERY_MAX_ENTRIES entries of 136 bytes:
 *   entry:     id[32]|flags u8|n_candidates u8|0[2]|endpoint[20]|candidates[4][20]
 *   address:   struct relay_candidate (family 0/4/6, 0, port big-endian, addr[16])
 *
 * epoch is random for each run of the sender, version grows (serial arithmetic, RFC 1982) each
 * time the sender's list changes; a receiver takes a chunk whose (epoch, version) is not older
 * than the last it took from that sender (another epoch: the sender restarted) and ignores the
 * rest as stale. A list longer than DISCOVERY_MAX_ENTRIES spans chunk_count chunks of the same
 * (epoch, version); every chunk stands alone (its entries mean the same whichever other chunks
 * arrive), so a lost datagram costs only its entries until the sender's next periodic resend.
 * chunk_index < chunk_count <= DISCOVERY_MAX_CHUNKS; only a list's single chunk may be empty.
 *
 * id is the peer's node id as the relay knows it: its static public key in identity mode, the
 * per-run key pair's public key in shared-key mode (relay-client.c). Never all zeros, never twice
 * in one chunk.
 * flags: SELF, the entry describes the sender itself (at most one per chunk; no endpoint; its
 * candidates are the sender's own: local addresses and its STUN-reflexive address). This is how a
 * shared-key node, whose handshake carries no identity, tells its peers its node id.
 * DIRECT, the sender has a working direct path to that peer at endpoint (required then).
 * RELAY, the sender reaches that peer only through the relay (no endpoint then).
 * Neither: the sender knows the peer (configured, or told) without a session; endpoint optional.
 * Other bits, DIRECT with RELAY, and SELF with either are malformed.
 * endpoint: the address the sender's authenticated traffic with that peer uses (the
 * peer-reflexive address: the most useful one behind NAT), family 0 and all zeros when absent.
 * candidates: n_candidates addresses (family 4 or 6), the unused slots all zeros. An IPv4
 * address is family 4 with addr[4..16) zero, never IPv4-mapped IPv6; reserved bytes are zero;
 * no address twice in an entry. Addresses relay_candidate_acceptable() refuses (port 0,
 * loopback, unspecified, multicast, broadcast, reserved, link-local) are never sent, and a
 * receiver drops them (counted) while keeping the rest of the chunk, as for the relay's PEER.
 *
 * Limits: one sealed chunk, wrapped for the relay (RELAY_DATA) and carried over IPv6 + UDP, fits
 * the IPv6 minimum MTU of 1280 bytes, so no path needs IP fragmentation and nothing relies on
 * ICMP (DESIGN "MTU"): 48 + 8 + 32 + 16 + 8 x 136 = 1192. A ninth entry would make it 1328.
 * DISCOVERY_MAX_CANDIDATES: the endpoint plus 4 candidates (the STUN-reflexive address and three
 * interface addresses) is what a node behind NAT needs to be reached; the relay's own limit of 8
 * would halve the entries per chunk.
 * A receiver adds at most DISCOVERY_NEW_PEERS_BURST peers it did not know from one sender at
 * once, and one more per DISCOVERY_NEW_PEER_REFILL_MS after that (a token bucket per sender):
 * in shared-key mode any member may name any id and address, and every peer added means
 * handshakes sent to the addresses it came with.
 */
/* MESSAGE_DISCOVERY = 13 is in enum message_type (the classifier knows it). */

enum discovery_entry_flag {
        DISCOVERY_ENTRY_SELF = 1 << 0,
        DISCOVERY_ENTRY_DIRECT = 1 << 1,
        DISCOVERY_ENTRY_RELAY = 1 << 2,
        DISCOVERY_ENTRY_FLAGS_KNOWN = DISCOVERY_ENTRY_SELF | DISCOVERY_ENTRY_DIRECT |
                                      DISCOVERY_ENTRY_RELAY,
};

enum {
        DISCOVERY_MAX_ENTRIES = 8,    /* per chunk: the IPv6 minimum MTU, see above */
        DISCOVERY_MAX_CANDIDATES = 4, /* per entry, besides its endpoint */
        /* A whole list: every peer a node may have, and the sender itself. */
        DISCOVERY_MAX_LIST_ENTRIES = MAX_PEERS + 1,
        DISCOVERY_MAX_CHUNKS =
                (DISCOVERY_MAX_LIST_ENTRIES + DISCOVERY_MAX_ENTRIES - 1) / DISCOVERY_MAX_ENTRIES,
        DISCOVERY_NEW_PEERS_BURST = 32,
        DISCOVERY_NEW_PEER_REFILL_MS = 2000,
        DISCOVERY_UNDERLAY_MTU = 1280,           /* the IPv6 minimum MTU, RFC 8200 section 5 */
        DISCOVERY_UNDERLAY_HEADERS_LEN = 40 + 8, /* IPv6 + UDP */
};

struct discovery_list_header {
        uint64_t epoch;
        uint32_t version;
        uint16_t chunk_index;
        uint16_t chunk_count;
} _packed_;

struct discovery_wire_entry {
        uint8_t id[NOISE_PUBLIC_KEY_LEN];
        uint8_t flags;
        uint8_t n_candidates;
        uint8_t reserved_zero[2];
        struct relay_candidate endpoint;
        struct relay_candidate candidates[DISCOVERY_MAX_CANDIDATES];
} _packed_;

/* Laid out as a data message (and the closing message): the same session code seals it. */
struct message_discovery {
        struct message_header header;
        uint32_t key_idx;
        uint64_t counter;
        uint8_t encrypted_list[]; /* noise_encrypted_len(plaintext) */
} _packed_;

#define DISCOVERY_PLAIN_MIN_LEN sizeof(struct discovery_list_header)
#define DISCOVERY_PLAIN_MAX_LEN                                                                    \
        (sizeof(struct discovery_list_header) +                                                    \
         DISCOVERY_MAX_ENTRIES * sizeof(struct discovery_wire_entry))
#define DISCOVERY_MESSAGE_MIN_LEN                                                                  \
        (sizeof(struct message_discovery) + noise_encrypted_len(DISCOVERY_PLAIN_MIN_LEN))
#define DISCOVERY_MESSAGE_MAX_LEN                                                                  \
        (sizeof(struct message_discovery) + noise_encrypted_len(DISCOVERY_PLAIN_MAX_LEN))
/* The lengths a DISCOVERY message may have (for the classifier): 48 + n * 136, n <= 8. */
#define DISCOVERY_MESSAGE_LEN_OK(len)                                                              \
        ((len) >= DISCOVERY_MESSAGE_MIN_LEN && (len) <= DISCOVERY_MESSAGE_MAX_LEN &&               \
         ((len) - DISCOVERY_MESSAGE_MIN_LEN) % sizeof(struct discovery_wire_entry) == 0)

_Static_assert(sizeof(struct discovery_list_header) == 16, "discovery list header");
_Static_assert(sizeof(struct discovery_wire_entry) == 32 + 4 + 20 + 4 * 20, "discovery entry");
_Static_assert(sizeof(struct discovery_wire_entry) == 136, "discovery entry");
_Static_assert(sizeof(struct message_discovery) == sizeof(struct message_data), "discovery header");
_Static_assert(offsetof(struct message_discovery, counter) ==
                       offsetof(struct message_data, counter),
               "discovery laid out as data");
_Static_assert(DISCOVERY_MESSAGE_MIN_LEN == 48, "empty discovery chunk");
_Static_assert(DISCOVERY_MESSAGE_MAX_LEN == 1136, "full discovery chunk");
/* A full chunk, relayed, over IPv6: no fragmentation on any IPv6 path; a ninth entry would. */
_Static_assert(DISCOVERY_UNDERLAY_HEADERS_LEN + sizeof(struct message_relay_data) +
                       DISCOVERY_MESSAGE_MAX_LEN <= DISCOVERY_UNDERLAY_MTU,
               "discovery chunk fits the IPv6 minimum MTU");
_Static_assert(DISCOVERY_UNDERLAY_HEADERS_LEN + sizeof(struct message_relay_data) +
                       DISCOVERY_MESSAGE_MAX_LEN + sizeof(struct discovery_wire_entry) >
                       DISCOVERY_UNDERLAY_MTU,
               "DISCOVERY_MAX_ENTRIES is the most that fits");
_Static_assert(DISCOVERY_MESSAGE_MAX_LEN <= DATAGRAM_MAX_LEN, "discovery fits relay data");
_Static_assert(DISCOVERY_MAX_ENTRIES <= UINT8_MAX && DISCOVERY_MAX_CANDIDATES <= UINT8_MAX,
               "entry and candidate counts fit a byte");
_Static_assert(DISCOVERY_MAX_CHUNKS <= UINT16_MAX, "chunk count fits u16");
_Static_assert(MESSAGE_DISCOVERY == MESSAGE_CLOSE + 1, "discovery is the next message type");
/* ---- end of mesh discovery ---- */
/* Idle hand-over of the TAP between the data threads (issue 12's ping; datapath.c): the tx
 * thread parks after finding the TAP empty for DATAPATH_IDLE_PARK_MS (an idle tunnel costs
 * it one wake-up, 1 ms after the last frame), and the rx thread, which then reads the TAP,
 * hands it back as soon as one of its transmit batches finds the tunnel busy, for instance
 * by reading DATAPATH_IDLE_TX_FRAMES frames at once. */
enum {
        DATAPATH_IDLE_PARK_MS = 1,
        DATAPATH_IDLE_TX_FRAMES = 16,
        /* A frame within this long of the last one the rx thread sent from the same queue is a
         * burst (the rx thread reads on); one after a longer pause is a lone frame, sent
         * without a read that would find the TAP empty. It also tells an answer "right after"
         * a batch written to the TAP from the next request. */
        DATAPATH_IDLE_BURST_US = 200,
};
/* ---- mesh data plane (issue 11, section 3): the peer table ---- */
/* device.c's peer table has MESH_MAX_PEERS slots (a hard cap: a shared-key node refuses, and
 * counts, an initiation from a new node once it is full). Every local session index (the
 * handshake's and each key pair's) carries its peer's slot in its low MESH_SLOT_BITS bits, so
 * the rx thread finds the peer of a message in O(1) and then checks that the peer owns it. */
/* The learning switch's MAC table holds at most MESH_MAX_MACS addresses (mactable.h says what
 * happens at the cap: new addresses are flooded to, not learned). */
enum {
        MESH_SLOT_BITS = 10,
        MESH_MAX_PEERS = 1 << MESH_SLOT_BITS,
        MESH_MAX_MACS = 1 << 16,
};
#define MESH_SLOT_OF_INDEX(idx) ((uint32_t) (idx) & (MESH_MAX_PEERS - 1))
/* ---- end of mesh data plane ---- */
/* ---- mesh discovery engine (issue 11, section 4; mesh-discovery.c) ---- */
/* The rx thread opens a DISCOVERY message on the session (the replay window has one writer)
 * and hands the plaintext to the control loop through a queue of its own,
 * DISCOVERY_QUEUE_LEN slots of a whole chunk (about 1.1 KiB each: 36 KiB in all), instead of
 * growing every slot of the handshake queue (MAX_QUEUED_HANDSHAKES of them) to a chunk's size
 * (+2.1 MiB). A full queue drops the chunk: the sender's periodic resend brings it again.
 * A node sends its list to every peer with a session DISCOVERY_COALESCE_MS after it changed
 * (a burst of changes, one send), at once to a peer whose session just came up, and every
 * DISCOVERY_RESEND_INTERVAL_MS otherwise (a lost chunk costs at most that long). Refusals
 * (a malformed chunk, a lying sender, a full table) are logged at most once per
 * DISCOVERY_REFUSAL_LOG_INTERVAL_MS. */
enum {
        DISCOVERY_QUEUE_LEN = 32,
        DISCOVERY_COALESCE_MS = 250,
        DISCOVERY_RESEND_INTERVAL_MS = 30000,
        DISCOVERY_REFUSAL_LOG_INTERVAL_MS = 10000,
        /* Our interface addresses (the SELF entry's candidates) are read again when the host's
         * addresses change (addrwatch.h) and, in case a change went unseen (a link down
         * without an address removed), this often; every DISCOVERY_ADDRESSES_POLL_MS when
         * rtnetlink cannot be watched. */
        DISCOVERY_ADDRESSES_REFRESH_MS = DISCOVERY_RESEND_INTERVAL_MS,
        DISCOVERY_ADDRESSES_POLL_MS = 1000,
};
/* ---- end of mesh discovery engine ---- */
/* ---- mesh: joiners expire (issue 11) ----
 * A peer that joined by itself (a shared-key newcomer, one a peer or the relay told us of: not
 * configured, not given to Connect) is removed once nothing authenticated came from it for
 * PEER_EXPIRE_AFTER_TIME seconds and it has no session: the Linux bridge's ageing time, well
 * past the 15 s after which a silent peer counts as gone and the 90 s of retries. It joins
 * again when it comes back. */
enum {
        PEER_EXPIRE_AFTER_TIME = 300,
};
/* ---- end of mesh: joiners expire ---- */
/* ---- relay: several wanted peers in identity mode (issue 11, section 4; relayid) ---- */
/*
 * An identity-mode node of a mesh needs the relay for every pair that cannot punch through,
 * and the relay knows a node by its one registration (one source address, one socket). So a
 * REGISTER (type 5) may carry a want list after its 424 bytes, naming every peer the node
 * wants to be paired with:
 *
 *   REGISTER[424] | n_wants u8 | 0[3] | wants[n_wants][32]       428 + 32 * n_wants bytes
 *
 * Such a REGISTER is identity mode's (network_key and signature zero) and its want_peer is all
 * zeros: the list names them all. 1 <= n_wants <= RELAY_MAX_WANTS; each want is a static public
 * key (as want_peer), non-zero, not the node's own, and the keys are in strictly ascending
 * byte order (memcmp), which makes the list canonical, free of duplicates, and searchable by
 * bisection on the relay's forwarding path.
 *
 * The proof covers the list: proof = MAC(key, REGISTER up to the proof field || the want list
 * from n_wants to the end), key as before. For a 424-byte REGISTER the list is empty and the
 * proof is exactly the old one, so a node that sends the old REGISTER (one want_peer) is served
 * as before, and a node with one wanted peer sends the old REGISTER (any relay serves it).
 *
 * Pairing: two identity registrations of one network may talk when each wants the other, where
 * a registration wants the keys of its list, or its want_peer without a list. A list
 * registration is named (network_id, node_id, zeros), so changing the list keeps its slot; a
 * node that registers from the address its own registration holds (same network and node id)
 * keeps that registration and its slot whether or not it switches between the two forms.
 * Replies are unchanged: REGISTERED, and a PEER (authenticated as before) to both sides of each
 * pair the registration takes part in, so one REGISTER is answered by at most
 * 1 + 2 * 2 * RELAY_MAX_WANTS messages (a wanted node may hold two live registrations for a
 * while: one of each form, from two addresses).
 *
 * RELAY_MAX_WANTS: the longest REGISTER, carried over IPv6 + UDP, fits the IPv6 minimum MTU of
 * 1280 bytes (48 + 428 + 24 * 32 = 1244; a 26th want would not fit). A node with more peers
 * than that wants first the peers it has no direct session with (relay-client.c).
 */
enum {
        RELAY_MAX_WANTS = 24,
        RELAY_UNDERLAY_MTU = 1280,           /* the IPv6 minimum MTU, RFC 8200 section 5 */
        RELAY_UNDERLAY_HEADERS_LEN = 40 + 8, /* IPv6 + UDP */
};

struct relay_want_list {
        uint8_t n_wants;
        uint8_t reserved_zero[3];
        uint8_t wants[][NOISE_PUBLIC_KEY_LEN];
} _packed_;

#define RELAY_REGISTER_WANTS_LEN(n)                                                                \
        (sizeof(struct message_relay_register) + sizeof(struct relay_want_list) +                  \
         (size_t) (n) * NOISE_PUBLIC_KEY_LEN)
#define RELAY_REGISTER_MAX_LEN RELAY_REGISTER_WANTS_LEN(RELAY_MAX_WANTS)
/* The lengths a REGISTER with a want list may have (for the classifier). */
#define RELAY_REGISTER_WANTS_LEN_OK(len)                                                           \
        ((len) >= RELAY_REGISTER_WANTS_LEN(1) && (len) <= RELAY_REGISTER_MAX_LEN &&                \
         ((len) - RELAY_REGISTER_WANTS_LEN(0)) % NOISE_PUBLIC_KEY_LEN == 0)

_Static_assert(sizeof(struct relay_want_list) == 4, "want list header");
_Static_assert(RELAY_REGISTER_WANTS_LEN(0) == 428, "register with an empty want list");
_Static_assert(RELAY_REGISTER_MAX_LEN == 1196, "register with a full want list");
_Static_assert(RELAY_UNDERLAY_HEADERS_LEN + RELAY_REGISTER_MAX_LEN <= RELAY_UNDERLAY_MTU,
               "a full want list fits the IPv6 minimum MTU");
_Static_assert(RELAY_UNDERLAY_HEADERS_LEN + RELAY_REGISTER_WANTS_LEN(RELAY_MAX_WANTS + 2) >
                       RELAY_UNDERLAY_MTU,
               "RELAY_MAX_WANTS is close to the most that fits");
_Static_assert(RELAY_REGISTER_MAX_LEN <= RELAYED_DATAGRAM_MAX_LEN, "the relay receives it whole");
_Static_assert(RELAY_MAX_WANTS <= UINT8_MAX, "n_wants fits a byte");
/* A relay built before want lists drops a REGISTER with one as malformed, unanswered. A node
 * whose RELAY_WANTS_FALLBACK_TRIES REGISTERs with a want list in a row went unanswered (while
 * it knows of no answer to one from this relay) registers for the one peer that needs the relay
 * most, with a 424-byte REGISTER, as before want lists; registered so, it tries a want list
 * again at each re-registration (RELAY_REGISTER_INTERVAL), and keeps it once answered. */
enum { RELAY_WANTS_FALLBACK_TRIES = 2 };
/* ---- end of relay: several wanted peers ---- */
/* ---- receive-side crypto workers (issue 12's threads; datapath.c "Crypto workers") ---- */
/* A receive batch with at least DATAPATH_RX_SPLIT_MIN data messages is opened by the receive
 * thread and its helpers together (workers.h); smaller ones (an idle tunnel's ping) by the
 * receive thread alone, as before. At most DATAPATH_RX_OPEN_MAX messages of a batch are
 * opened so (a UDP GRO batch of tiny datagrams can hold more): the rest alone. */
enum {
        DATAPATH_RX_SPLIT_MIN = 8,
        DATAPATH_RX_OPEN_MAX = 1024,
};
/* ---- end of receive-side crypto workers ---- */
