/* SPDX-License-Identifier: MIT */
/* Handshake messages on the control loop: building and consuming initiations, responses and
 * cookie replies with noise.c, cookie.c and tai64n.c, and installing the key pairs they yield
 * in the peer. Messages leave through path.c. */
#pragma once

#include "cookie.h"
#include "datapath.h"
#include "noise.h"
#include "path.h"
#include "peer.h"

/* This node's side of every handshake; device.c sets it up from the configuration. */
struct handshake_keys {
        enum noise_pattern pattern;
        uint8_t static_private[NOISE_PUBLIC_KEY_LEN], static_public[NOISE_PUBLIC_KEY_LEN];
        uint8_t psk[NOISE_PSK_LEN];
        uint8_t prologue[sizeof(SHADOWMESH_PROLOGUE_LABEL) - 1 + NETWORK_ID_LEN];
        struct cookie_checker cookie_checker;
        /* Random per run: keys the tag that marks the timestamps of our own initiations, so a
         * node knows its own initiation when it comes back (handshake.c). */
        uint8_t own_initiation_key[32];
        /* Per-source buckets under load, after mac2 (the control loop's; the rx thread has its
         * own before the queue). NULL: none. */
        struct ratelimit *ratelimit;
};

/* Start (or retry) a handshake with the peer's endpoint. */
int handshake_send_initiation(struct handshake_keys *k, const struct sender *s, struct peer *p);
/* The rx thread saw data for a session we do not know from `from`, which earned an
 * initiation's worth of byte credit: initiate a handshake there (restart recovery; the rules
 * are at the function). */
void handshake_answer_unknown_session(struct handshake_keys *k, const struct sender *s,
                                      struct peer *p, const struct endpoint *from);
/* The closing message (CLOSE_COPIES of them) on the current session; -ENOKEY without one. */
int handshake_send_close(const struct sender *s, struct peer *p);
/* The peers a handshake message may be for (device.c's table): at() gives the i-th peer, NULL
 * past the end; add() (may be NULL) makes a peer for a shared-key newcomer, NULL at the cap. */
struct handshake_peers {
        struct peer *(*at)(void *userdata, size_t i);
        struct peer *(*add)(void *userdata);
        void *userdata;
};
/* Handle one queued handshake message for whichever of the peers it is (rules at
 * consume_initiation). Returns true when it made that peer's session usable both ways (the
 * initiator consumed the response). *ret_peer (may be NULL): the peer whose session it set up
 * (an initiation consumed, or a response), NULL otherwise. */
bool handshake_process_peers(struct handshake_keys *k, const struct sender *s,
                             const struct handshake_peers *peers,
                             const struct queued_handshake *q, bool under_load,
                             struct peer **ret_peer);
/* The same with one peer (the unit tests' two-node setups). */
/* Handle one queued handshake message. under_load: require mac2 (cookies). true when it made
 * the session usable both ways (the initiator consumed the response): the caller reports it. */
bool handshake_process(struct handshake_keys *k, const struct sender *s, struct peer *p,
                       const struct queued_handshake *q, bool under_load);

/* Our own initiations' timestamps carry a per-run tag (see handshake.c): set it, and tell it. */
void handshake_mark_own_timestamp(const struct handshake_keys *k, uint8_t ts[NOISE_TIMESTAMP_LEN]);
bool handshake_is_own_timestamp(const struct handshake_keys *k,
                                const uint8_t ts[NOISE_TIMESTAMP_LEN]);
