/* SPDX-License-Identifier: MIT */
/*
 * Candidate addresses on the wire (struct relay_candidate, messages.h): what the relay's
 * REGISTER and PEER messages and the mesh's discovery lists carry. Converting them to and from
 * socket addresses, the one filter every received candidate goes through, and the list of our
 * own. A leaf: relay-client.c, discovery.c and mesh-discovery.c all use it.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "messages.h"
#include "udp.h"

/* sa (AF_INET, or AF_INET6; IPv4-mapped becomes IPv4) in its wire form; zeros for another
 * family. */
void candidate_from_sockaddr(struct relay_candidate *c, const struct sockaddr *sa);
/* A wire candidate as an endpoint a socket of family (AF_INET or a dual-stack AF_INET6) can
 * send to; false when it cannot (port 0, or IPv6 on an IPv4 socket). */
bool endpoint_from_candidate(const struct relay_candidate *c, int family, struct endpoint *ret);
/* Whether a peer's candidate address may be sent to: never loopback, unspecified, multicast,
 * broadcast or reserved (240/4), which a peer has no business naming and which would aim our
 * handshakes and probes at ourselves or a whole segment. Link-local addresses (169.254/16,
 * fe80::/10) need the scope of the link they live on, which a wire candidate cannot carry and
 * candidates_gather() never offers: they are refused too. */
bool relay_candidate_acceptable(const struct relay_candidate *c);
/* Is c (byte for byte) one of list's n? */
bool candidate_in(const struct relay_candidate *c, const struct relay_candidate *list, size_t n);
/* Our own candidates, at most max: public (the STUN-reflexive endpoint, may be NULL or empty)
 * first, then every acceptable address of our interfaces that are up, other than loopback and
 * the TAP tap_name (that would loop), IPv6 only when our socket's family is AF_INET6, each with
 * our port; no duplicates. */
size_t candidates_gather(const struct endpoint *public, const char *tap_name, int family,
                         uint16_t port, struct relay_candidate *out, size_t max);
