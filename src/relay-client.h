/* SPDX-License-Identifier: MIT */
/* The node's side of the rendezvous protocol (messages.h): register with shadowmesh-relay,
 * answer its challenge (with a proof of our static key in identity mode), re-register every
 * RELAY_REGISTER_INTERVAL, and hand the peer's candidates and relay slot to its owner
 * (on_peer), which gives them to path.c. */
#pragma once

#include <stdbool.h>
#include <systemd/sd-event.h>

#include "datapath.h"
#include "handshake.h"
#include "messages.h"
#include "path.h"

/* What the client needs of this node; device.c fills it in. The pointers must outlive the
 * client. */
struct relay_client_node {
        sd_event *event;
        int family;                             /* the tunnel socket's address family */
        uint16_t port;                          /* ours, for our candidates */
        const char *tap_name;                   /* never offered as a candidate */
        const struct handshake_keys *keys;      /* the pattern; identity mode: our key pair */
        const uint8_t *psk;                     /* the shared key; NULL: none */
        const uint8_t *peer_key;                /* identity mode: the peer to be introduced to */
        const struct endpoint *public_endpoint; /* STUN's (len 0 until known) */
        const struct sender *sender;
        /* Events, on the control loop. The relay's address is known (and now in use): */
        void (*on_resolved)(void *userdata, const struct endpoint *relay);
        /* The relay introduced the peer: its acceptable candidates, and its slot. */
        void (*on_peer)(void *userdata, const struct endpoint *candidates, size_t n,
                        const struct endpoint *via_relay);
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
/* The relay's address, once resolved (for NetCheck). */
const struct endpoint *relay_client_address(const struct relay_client *rc);
const char *relay_client_name(const struct relay_client *rc);
bool relay_client_registered(const struct relay_client *rc);
/* The node id it registers under (identity mode: our static key; shared-key mode: this run's). */
const uint8_t *relay_client_node_id(const struct relay_client *rc);
/* Whether a candidate the relay passed on may be sent to (not loopback, unspecified, multicast,
 * broadcast, reserved or link-local). */
bool relay_candidate_acceptable(const struct relay_candidate *c);
