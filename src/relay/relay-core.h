/* SPDX-License-Identifier: MIT */
/*
 * The relay's protocol core: the registrations table, challenge cookies, identity proofs, who
 * may talk to whom, forwarding, rate limits and expiry. Pure: one datagram and its source
 * address in, the datagrams to send out; the clock is passed in; no sockets, no logging above
 * debug. relay.c owns the socket and the event loop around it.
 *
 * The protocol is the comment above struct message_relay_register in messages.h. Decisions
 * taken here, beyond it:
 *   - A source address (IP and port) holds at most one registration: a registration arriving
 *     from an address that another registration occupies replaces it (a NAT reused the
 *     mapping; the old one no longer reaches its node). RELAY_DATA is attributed to the
 *     registration of its source address.
 *   - A registration is named by (network_id, node_id, want_peer), want_peer zeros for one
 *     with a want list (messages.h, "several wanted peers"); the same name registering from a
 *     new address moves (NAT rebinding) and keeps its slot, so its peers need not learn
 *     anything new to keep sending to it. An identity node registering under another name
 *     from the address its own registration holds renames that one (same slot).
 *   - Shared-key registrations (want_peer zero) must carry a non-zero network_id and
 *     network_key, a valid proof of node_id's (per-run) key and a valid Ed25519 signature by
 *     network_key (messages.h). They are grouped by a hash of (network_id, network_key): a
 *     party that knows a network id but not its psk can only make a group of its own. At most
 *     RELAY_MAX_NETWORK_REGISTRATIONS of them per group, which bounds the PEER messages one
 *     REGISTER causes.
 *   - Rate limits are per source IP (IPv6: per /64, as one host gets a whole /64): a token
 *     bucket of rate packets per second with a burst of twice that, charged for every datagram
 *     before anything else is done with it, except RELAY_DATA from a registered node's
 *     address, which only the per-registration bandwidth limit bounds. A REGISTER that echoes
 *     a valid cookie (it comes from its source for real) is charged to a second table of the
 *     same buckets, so spoofing a node's address cannot starve its registrations.
 *   - Nothing is answered to a datagram that fails a check (malformed, rate-limited, network
 *     not allowed, bad proof, table full). The only replies to sources without a registration
 *     are CHALLENGE (68 bytes, to a REGISTER of 424) and STUN responses; both are under a
 *     global budget (RELAY_UNAUTH_REPLY_RATE), and a STUN answer larger than its request also
 *     under RELAY_AMPLIFY_REPLY_RATE, so a spoofed flood cannot be amplified toward a victim.
 *     REGISTERED and PEER go only to addresses that echoed a cookie, and every reply carries
 *     a MAC under the addressee's client nonce.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "messages.h"
#include "udp.h"

enum {
        /* Shared-key registrations in one network: a REGISTER sends PEER messages to and about
         * every other one, so this bounds that burst to 2 * (64 - 1) messages. */
        RELAY_MAX_NETWORK_REGISTRATIONS = 64,
        RELAY_MAX_ALLOWED_NETWORKS = 256,
        RELAY_MAX_REGISTRATIONS_LIMIT = 1 << 20,
        RELAY_RATE_MAX = 10 * 1000 * 1000,        /* packets/s per source */
        RELAY_BANDWIDTH_MAX = 1000 * 1000 * 1000, /* bytes/s per registration */
        /* Global budgets (replies/s, burst twice that) for replies to sources that hold no
         * registration: CHALLENGE and STUN answers together, and of those the STUN answers
         * larger than their request. They bound what spoofed datagrams make the relay send to
         * a victim, summed over every spoofed source: at most 2 * 256 * 52 bytes in the first
         * second and 256 * 52 = 13 kB/s after, of amplifying replies. */
        RELAY_UNAUTH_REPLY_RATE = 4096,
        RELAY_AMPLIFY_REPLY_RATE = 256,
        /* One REGISTER's answer: REGISTERED and two PEER messages per peer. */
        RELAY_ACTIONS_MAX = 1 + 2 * (RELAY_MAX_NETWORK_REGISTRATIONS - 1),
};
/* An identity REGISTER with a want list pairs with at most two registrations per wanted key
 * (messages.h): its answer fits too. */
_Static_assert(1 + 2 * 2 * RELAY_MAX_WANTS <= RELAY_ACTIONS_MAX, "a want list's answer fits");

struct relay_core_config {
        unsigned max_registrations; /* 1 .. RELAY_MAX_REGISTRATIONS_LIMIT */
        unsigned rate;              /* packets/s per source IP, burst 2x; 0: unlimited */
        uint64_t bandwidth;         /* forwarded bytes/s per registration, burst 2x; 0: unlimited */
        const uint8_t (*allowed_networks)[NETWORK_ID_LEN]; /* NULL/0: any network may register */
        size_t n_allowed_networks;                         /* <= RELAY_MAX_ALLOWED_NETWORKS */
};

/* Counters since start (registrations: the current number). */
struct relay_stats {
        uint64_t registrations;
        uint64_t packets_in;
        uint64_t forwarded;
        uint64_t forwarded_bytes;
        uint64_t dropped_rate;         /* source over its packet rate */
        uint64_t dropped_unregistered; /* RELAY_DATA from an unregistered source or to no slot */
        uint64_t dropped_not_allowed;  /* REGISTER for a network not on the allow list */
        uint64_t bad_proof;            /* identity REGISTER with a wrong proof or a bad key */
        uint64_t stun;                 /* STUN Binding requests answered */
        uint64_t challenges;           /* CHALLENGE sent (REGISTER without a valid cookie) */
        uint64_t registered;           /* REGISTERED sent (new and refreshed registrations) */
        uint64_t peers_sent;           /* PEER messages sent */
        uint64_t moved;                /* registrations that moved to a new source address */
        uint64_t replaced;             /* registrations pushed out by another at their address */
        uint64_t renamed;              /* identity: a node's own registration, another want */
        uint64_t expired;              /* registrations not renewed in time */
        uint64_t dropped_unpaired;     /* RELAY_DATA between registrations that may not talk */
        uint64_t dropped_bandwidth;    /* RELAY_DATA over its sender's bandwidth */
        uint64_t dropped_full;         /* REGISTER refused: table or network full */
        uint64_t dropped_invalid;      /* malformed or unexpected datagrams */
        uint64_t dropped_unauth_budget; /* reply to an unregistered source over a global budget */
};

/* One datagram to send. data points into the relay_actions (replies) or into the datagram
 * given to relay_core_receive() (forwarded: rewritten in place), so it is valid until the next
 * call with the same actions or buffer. */
struct relay_send {
        struct endpoint dest;
        const uint8_t *data;
        size_t len;
        bool forward; /* RELAY_DATA being forwarded (data is the input buffer) */
};

struct relay_actions {
        size_t n;
        struct relay_send send[RELAY_ACTIONS_MAX];
        size_t used;
        uint8_t storage[RELAY_ACTIONS_MAX * sizeof(struct message_relay_peer)];
};

struct relay_core;

/* A REGISTER's parts once its form is checked (relay_register_parse): the fixed part, and the
 * want list (messages.h) when there is one. Points into the datagram. */
struct relay_register_view {
        const struct message_relay_register *m;
        const struct relay_want_list *list; /* NULL: a 424-byte REGISTER */
        size_t n_wants;
        bool shared; /* shared-key mode: no want_peer, no list */
};

/* Why a REGISTER's form is wrong: what, and which candidate or want (-1: none). */
struct relay_register_error {
        const char *what;
        int candidate;
        int want;
};

/* Check the form of a REGISTER of len bytes (messages.h: lengths, reserved bytes, candidates,
 * each mode's fields, the want list's count, keys and order), not its cookie, proof or
 * signature. 0 and *ret filled, or -EBADMSG and *ret_why (may be NULL) says what and where.
 * Pure. */
int relay_register_parse(const uint8_t *buf, size_t len, struct relay_register_view *ret,
                         struct relay_register_error *ret_why);

/* -EINVAL on a configuration out of range, -ENOMEM. now: the monotonic clock in ns. */
int relay_core_new(const struct relay_core_config *config, uint64_t now, struct relay_core **ret);
struct relay_core *relay_core_free(struct relay_core *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct relay_core *, relay_core_free);

/* Handle one datagram of len bytes from src, received at now. buf is modified in place when
 * the datagram is forwarded (the slot is rewritten). *ret is reset, then filled with what to
 * send (possibly nothing). Returns the message type handled (STUN: 0x100 | STUN type byte,
 * see RELAY_HANDLED_STUN), or a negative errno saying why the datagram was dropped:
 *   -ENOBUFS   rate limit (per source or bandwidth)      -EACCES   network not allowed
 *   -EBADMSG   malformed, or a type the relay does not take  -EPERM  bad proof
 *   -ENOENT    RELAY_DATA from/to nobody registered        -ENOSPC   table or network full
 *   -ESRCH     RELAY_DATA between registrations that may not talk */
#define RELAY_HANDLED_STUN 0x100
int relay_core_receive(struct relay_core *c, uint8_t *buf, size_t len, const struct endpoint *src,
                       uint64_t now, struct relay_actions *ret);

/* Drop registrations whose lifetime ended and rotate the challenge secret when due. Returns
 * the number of registrations dropped. Call about once a second (receive also rotates and
 * ignores expired registrations, so this only bounds how long they occupy the table). */
unsigned relay_core_expire(struct relay_core *c, uint64_t now);

const struct relay_stats *relay_core_stats(const struct relay_core *c);

/* Test and fuzzing introspection. */
size_t relay_core_count(const struct relay_core *c);
/* The registration holding slot (0 if none, or expired at now): where it is and what it is. */
bool relay_core_lookup_slot(const struct relay_core *c, uint32_t slot, uint64_t now,
                            struct endpoint *ret_addr, uint8_t ret_node_id[NOISE_PUBLIC_KEY_LEN]);
/* Check the tables' internal invariants (hash chains, counts, unique slots and addresses);
 * false when one is broken. O(max_registrations). */
bool relay_core_check_invariants(const struct relay_core *c);
