/* SPDX-License-Identifier: MIT */
/* The node's side of the rendezvous protocol (messages.h): register with shadowmesh-relay,
 * answer its challenge (with a proof of our static key in identity mode), re-register every
 * RELAY_REGISTER_INTERVAL, and hand every node the relay introduces (its node id, candidates and
 * relay slot) to its owner (on_peer). In shared-key mode the relay introduces every node
 * registered under the same network tag, so one node may hear of many: the owner turns each into
 * its own peer (relay_introduction_match, else a new one) and relay_introduction_apply() gives it
 * its own candidates and relay slot, so that each pair punches through where it can and falls
 * back to the relay only for itself (path.c). In identity mode the relay pairs two nodes that want
 * each other, and knows one registration per source address (our socket of the relay's address
 * family), so one REGISTER names every peer we want (messages.h, "several wanted peers"): the keys
 * of the peers in our table (relay_client_select_wants), and each peer the relay introduces gets
 * its own candidates and relay slot as in shared-key mode. With one wanted peer the REGISTER is
 * the old 424-byte one (any relay serves it); with more it carries a want list, unless the relay
 * answers none (built before want lists): then the one peer that needs the relay most, and a list
 * again at each re-registration (messages.h, RELAY_WANTS_FALLBACK_TRIES). */
#pragma once

#include <stdbool.h>
#include <systemd/sd-event.h>

#include "datapath.h"
#include "handshake.h"
#include "messages.h"
#include "path.h"

/* One node the relay introduced: its node id (identity mode: its static public key; shared-key
 * mode: a key of its own for this run), its acceptable candidates (the address the relay saw
 * first), and the relay's address with its slot. */
struct relay_introduction {
        uint8_t node_id[NOISE_PUBLIC_KEY_LEN];
        struct endpoint candidates[RELAY_MAX_CANDIDATES + 1];
        size_t n_candidates;
        struct endpoint via_relay;
};

/* What the client needs of this node; device.c fills it in. The pointers must outlive the
 * client. */
struct relay_client_node {
        sd_event *event;
        int family;                             /* the tunnel socket's address family */
        uint16_t port;                          /* ours, for our candidates */
        const char *tap_name;                   /* never offered as a candidate */
        const struct handshake_keys *keys;      /* the pattern; identity mode: our key pair */
        const uint8_t *psk;                     /* the shared key; NULL: none */
        const uint8_t *peer_key;                /* identity mode: the peer to be introduced to,
                                                 * when peer_at is NULL */
        /* Identity mode: the peer table (at(userdata, 0), ... until NULL), whose keys we want
         * the relay to pair us with (relay_client_select_wants). NULL: peer_key only. */
        struct peer *(*peer_at)(void *userdata, size_t i);
        const struct endpoint *public_endpoint; /* STUN's (len 0 until known) */
        const struct sender *sender;
        /* Events, on the control loop. The relay's address is known (and now in use): */
        void (*on_resolved)(void *userdata, const struct endpoint *relay);
        /* The relay introduced a node (again: every re-registration repeats it). */
        void (*on_peer)(void *userdata, const struct relay_introduction *intro);
        void *userdata;
};

struct relay_client;

int relay_client_new(const struct relay_client_node *node, const char *host, uint16_t port,
                     struct relay_client **ret);
struct relay_client *relay_client_free(struct relay_client *rc);

/* A relay control message (CHALLENGE, REGISTERED, PEER) from the rx thread. */
void relay_client_input(struct relay_client *rc, const struct queued_handshake *q);
/* Registration timers. */
void relay_client_tick(struct relay_client *rc, uint64_t now);
/* Identity mode: the peer we want the relay to introduce (Connect's public_key). */
void relay_client_set_want(struct relay_client *rc, const uint8_t key[32]);
/* Our candidates changed (STUN found the public endpoint): register again now. */
void relay_client_refresh(struct relay_client *rc);
/* Nothing to retry or send soon: registered (or no relay), no new registration asked for.
 * Accepts NULL. */
bool relay_client_settled(const struct relay_client *rc);
/* The relay's address, once resolved (for NetCheck). */
const struct endpoint *relay_client_address(const struct relay_client *rc);
const char *relay_client_name(const struct relay_client *rc);
bool relay_client_registered(const struct relay_client *rc);
/* The node id it registers under (identity mode: our static key; shared-key mode: this run's). */
const uint8_t *relay_client_node_id(const struct relay_client *rc);

/* Which of the peers (at(userdata, 0), at(userdata, 1), ... until NULL) an introduced node is;
 * NULL: none (shared-key mode: the caller adds a peer; identity mode: the node is not ours).
 * Identity mode: the peer with that public key. Shared-key mode, in this order: the peer
 * introduced under that node id before; else one reached directly at one of its candidates (a
 * peers: address, or a node that restarted and so has a new node id); else one that waits with
 * nothing (no address, endpoint, introduction or session: `peer: address: ""`). Pure. */
struct peer *relay_introduction_match(const struct relay_introduction *intro, bool identity,
                                      struct peer *(*at)(void *userdata, size_t i),
                                      void *userdata);
/* Identity mode: the keys to name in our REGISTER, at most max (RELAY_MAX_WANTS): every
 * distinct non-zero key of the peers (at(userdata, 0), ... until NULL) but own_key, first the
 * peers without a direct session (no session, or on the relay: the ones the relay is for), then
 * the others, each group in table order. Returns how many; out in that order. Pure. */
size_t relay_client_select_wants(struct peer *(*at)(void *userdata, size_t i), void *userdata,
                                 const uint8_t own_key[NOISE_PUBLIC_KEY_LEN],
                                 uint8_t (*out)[NOISE_PUBLIC_KEY_LEN], size_t max);
/* p is the introduced node: its node id, candidates and relay slot (path.c). */
void relay_introduction_apply(const struct sender *s, struct peer *p,
                              const struct relay_introduction *intro);
