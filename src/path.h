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

#include "device.h"

/* Send one node-to-node message to `to` (wrapped in RELAY_DATA when to->via_relay). */
int path_send(struct device *d, const struct endpoint *to, const void *msg, size_t len);

/* Candidates learned from the relay (the address the relay saw first). Replaces the list. */
void path_set_candidates(struct device *d, const struct endpoint *candidates, size_t n);
/* The relay can reach the peer at this slot. */
void path_set_relay(struct device *d, const struct endpoint *via_relay);

/* A new handshake initiation (its bytes are kept for the relay fallback): send it everywhere. */
void path_send_initiation(struct device *d, const uint8_t *msg, size_t len, uint64_t now);

void path_on_probe(struct device *d, const uint8_t nonce[8], const struct endpoint *from);
void path_on_probe_reply(struct device *d, const uint8_t nonce[8], const struct endpoint *from);

/* Fallback, probes, NAT keepalives and path reporting, once per timer tick. */
void path_tick(struct device *d, uint64_t now);
/* Log and emit (Path, Endpoint) when the endpoint changed since the last report. */
void path_report(struct device *d);
/* "direct", "relay" or "none", for the Path property. */
const char *path_name(struct device *d);
