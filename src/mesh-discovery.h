/* SPDX-License-Identifier: MIT */
/*
 * Mesh discovery's engine (issue 11, section 4): from one address a node finds the whole mesh.
 * Each node tells every peer it has a session with, inside the tunnel (MESSAGE_DISCOVERY,
 * discovery.h's codec), who it is and whom it has; a receiver merges that against its peer
 * table (discovery_merge) and handshakes directly with the peers it learns of.
 *
 *  - The list: a SELF entry (our node id and candidates: the STUN-reflexive address first when
 *    known, then our interfaces' global addresses with our port), then every peer with a
 *    session whose node id we know: DIRECT with its endpoint, or RELAY when we reach it through
 *    the relay, with the candidates it told us about itself.
 *  - When: DISCOVERY_COALESCE_MS after the list changed, to every peer with a session; at once
 *    (next tick) to a peer whose session came up; every DISCOVERY_RESEND_INTERVAL_MS anyway.
 *  - Ids: identity mode, the static public key (and only keys of peers: may be added: they are
 *    all in the table already, so discovery only gives them addresses); shared-key mode, a
 *    per-run node id (the relay client's when there is one, so the relay and the mesh name a
 *    node alike), learned from the sender's SELF entry.
 *  - Verdicts: ADD -> a new peer (device_add_peer) with the entry's addresses as candidates,
 *    and a handshake to all of them (bounded by the merge's per-sender budget and
 *    MESH_MAX_PEERS); TRY -> the addresses join the peer's candidates, and a handshake when it
 *    has no session; SENDER -> the sender's id and candidates are kept (and passed on).
 *
 * Control loop only. Per-peer state lives here, by table slot (checked against the peer's id),
 * so that struct peer does not grow for it.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "discovery.h"

struct device;
struct peer;

/* Start the engine on d (after the relay client, whose node id it takes): sets
 * d->discovery and d->events.discovery. -ENOMEM. */
int mesh_discovery_start(struct device *d);
/* Stop it (accepts a device without one). */
void mesh_discovery_stop(struct device *d);

/* p's session came up: send it our list on the next tick. */
void mesh_discovery_session_up(struct device *d, struct peer *p);
/* Every timer tick: notice a changed list, and send what is due. */
void mesh_discovery_tick(struct device *d, uint64_t now);
/* Is a send due (a changed list, our addresses changed, a session that came up)? It goes out
 * on the next tick. */
bool mesh_discovery_pending(const struct device *d);
/* A chunk p sent (the plaintext the rx thread opened): decode, merge, act. Returns the number
 * of peers added, or -errno when the chunk was refused (logged, rate-limited). */
int mesh_discovery_input(struct device *d, struct peer *p, const uint8_t *plain, size_t len,
                         uint64_t now);

/* Our node id (the SELF entry's). */
const uint8_t *mesh_discovery_self_id(const struct device *d);
/* The node id we know p by: its key in identity mode, what its SELF entry said in shared-key
 * mode; NULL while unknown. */
const uint8_t *mesh_discovery_peer_id(const struct device *d, const struct peer *p);

/* Build our whole list into out (room for MESH_MAX_PEERS + 1 entries): the SELF entry first,
 * with self_candidates (n_self <= DISCOVERY_MAX_CANDIDATES), then the peers. Returns the number
 * of entries. */
size_t mesh_discovery_build_list(const struct device *d,
                                 const struct relay_candidate *self_candidates, size_t n_self,
                                 struct discovery_entry *out);
