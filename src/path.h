/* SPDX-License-Identifier: MIT */
/*
 * How packets reach the peer: directly (one of its candidate addresses, or where its packets
 * really come from) or through the relay. Control loop only; the data path just follows the
 * peer's endpoint, which roams to the source of the last authenticated data packet.
 *
 *  - A handshake initiation goes to the peer's endpoint and every candidate at once; answers go
 *    to wherever packets came from (peer-reflexive addresses), which is how a node behind a
 *    symmetric NAT is reached from a cone side.
 *  - No session RELAY_FALLBACK_AFTER_MS after the first initiation: the same initiation goes
 *    through the relay too.
 *  - On the relay, PATH_PROBEs go to every direct candidate every PATH_PROBE_INTERVAL; a
 *    PATH_PROBE_REPLY proves a direct path both ways and the endpoint moves to it, without a
 *    new handshake (the session does not depend on the path).
 *  - Behind a NAT or on the relay, a keepalive every NAT_KEEPALIVE_INTERVAL keeps mappings open.
 */
#pragma once

#include "datapath.h"
#include "peer.h"

/* How the control loop's messages leave: the tunnel's UDP socket, its counters, and the
 * relay's address once resolved (len 0 before), which only names a failed send in the log.
 * device.c owns it. */
struct sender {
        struct udp_sockets sockets;
        struct stats *stats;
        struct endpoint relay;
};

/* Send one node-to-node message to `to` (wrapped in RELAY_DATA when to->via_relay). p: the
 * peer whose endpoint `to` may be, which forgets a source address that is gone (NULL for
 * messages to the relay itself). */
int path_send(const struct sender *s, struct peer *p, const struct endpoint *to, const void *msg,
              size_t len);
/* The same to the peer's endpoint, noted as sent for the timers (timers.c rules 4, 4b). */
int path_send_to_peer(const struct sender *s, struct peer *p, const void *msg, size_t len);
/* An empty data message on the current key pair (keepalive, and the initiator's confirmation);
 * -ENOKEY without one. */
int path_send_keepalive(const struct sender *s, struct peer *p);

/* Candidates learned from the relay (the address the relay saw first). Replaces the list. */
void path_set_candidates(struct peer *p, const struct endpoint *candidates, size_t n);
/* Is from one of the peer's candidates, or (relayed) its relay slot? Shared-key mode knows the
 * peer of an initiation by this before any work (handshake.c), so that an introduced node's
 * first initiation lands on the peer the relay introduced, not on a new one. */
bool path_reaches(const struct peer *p, const struct endpoint *from);
/* The relay can reach the peer at this slot. */
void path_set_relay(const struct sender *s, struct peer *p, const struct endpoint *via_relay);

/* A new handshake initiation (its bytes are kept for the relay fallback): send it everywhere. */
void path_send_initiation(const struct sender *s, struct peer *p, const uint8_t *msg, size_t len,
                          uint64_t now);

void path_on_probe(const struct sender *s, struct peer *p, const uint8_t nonce[8],
                   const struct endpoint *from);
void path_on_probe_reply(const struct sender *s, struct peer *p, const uint8_t nonce[8],
                         const struct endpoint *from);

/* Fallback, probes and NAT keepalives (nat_keepalive: behind a NAT or using a relay), once per
 * timer tick. */
void path_tick(const struct sender *s, struct peer *p, uint64_t now, bool nat_keepalive);
/* Log when the endpoint changed since the last report; true then (the caller emits Path and
 * Endpoint). */
bool path_report(const struct sender *s, struct peer *p);
/* "direct", "relay" or "none", for the Path property. */
const char *path_name(struct peer *p);
