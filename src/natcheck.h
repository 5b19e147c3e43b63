/* SPDX-License-Identifier: MIT */
/*
 * NAT behaviour discovery (RFC 5780 sections 4.3 and 4.4) over the stun.h codec, as a pure
 * state machine: the caller owns the socket and the clock. It hands out the next request to
 * send and where, takes in every STUN response that arrived, and retransmits per RFC 8489
 * section 6.2.1 (RTO doubling from NATCHECK_RTO_MS, at most Rc requests, Rm * RTO final wait).
 *
 *   test I    Binding to the server                  -> public endpoint (XOR-MAPPED-ADDRESS);
 *                                                       no answer at all: UDP blocked
 *   mapping   Binding to OTHER-ADDRESS's IP, primary port, then to OTHER-ADDRESS (IP and port):
 *             same mapped address each time -> endpoint-independent; changes with the IP only
 *             -> address-dependent; changes with the port too -> address-and-port-dependent
 *   filtering test II  CHANGE-REQUEST ip+port: answered -> endpoint-independent;
 *             test III CHANGE-REQUEST port: answered -> address-dependent; else
 *             address-and-port-dependent
 * Mapped address equal to the local address: no NAT. A server without OTHER-ADDRESS gives the
 * public endpoint only (mapping and filtering stay unknown). The filtering tests run before
 * the mapping tests: on one socket, the mapping tests' requests would open the very filters
 * the filtering tests probe, and a restricted cone would read as a full cone.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "stun.h"

enum {
        NATCHECK_RTO_MS = 250, /* RFC 8489 allows a smaller RTO on known-good paths */
        NATCHECK_RC = 4,       /* requests per test: a test on a filtered path must end soon */
        NATCHECK_RM = 4,
};

enum nat_mapping {
        NAT_MAPPING_UNKNOWN,
        NAT_MAPPING_NO_NAT,
        NAT_MAPPING_ENDPOINT_INDEPENDENT,
        NAT_MAPPING_ADDRESS_DEPENDENT,
        NAT_MAPPING_ADDRESS_PORT_DEPENDENT,
};

enum nat_filtering {
        NAT_FILTERING_UNKNOWN,
        NAT_FILTERING_ENDPOINT_INDEPENDENT,
        NAT_FILTERING_ADDRESS_DEPENDENT,
        NAT_FILTERING_ADDRESS_PORT_DEPENDENT,
};

struct natcheck_result {
        bool udp_blocked;  /* test I got no answer */
        bool has_public;   /* public endpoint known */
        struct sockaddr_storage public_endpoint;
        bool server_supports_rfc5780; /* OTHER-ADDRESS seen */
        enum nat_mapping mapping;
        enum nat_filtering filtering;
        uint64_t rtt_ns; /* of test I */
};

struct natcheck; /* opaque; allocated by natcheck_new */

/* server: the STUN server's address; local: the socket's bound address (for "no NAT"; may be a
 * wildcard, then no-NAT is decided by comparing with local_addresses below). full: run the
 * mapping and filtering tests (else test I only, to learn the public endpoint). */
int natcheck_new(const struct sockaddr *server, socklen_t server_len, const struct sockaddr *local,
                 socklen_t local_len, bool full, uint64_t now_ns, struct natcheck **ret);
struct natcheck *natcheck_free(struct natcheck *n);

/* Addresses of this host's interfaces, so a mapped address equal to one of them means no NAT. */
void natcheck_add_local_address(struct natcheck *n, const struct sockaddr *sa, socklen_t len);

/* The next request due at now: returns its length (> 0) with buf and *dst filled, 0 when
 * nothing is due. Call until it returns 0. */
int natcheck_next_packet(struct natcheck *n, uint64_t now_ns, uint8_t *buf, size_t max,
                         struct sockaddr_storage *dst, socklen_t *dst_len);
/* When the caller should call natcheck_next_packet again (absolute ns), UINT64_MAX when done. */
uint64_t natcheck_next_timeout(const struct natcheck *n);
/* Offer a received datagram. true when it was one of ours (consumed). */
bool natcheck_input(struct natcheck *n, const uint8_t *buf, size_t len, const struct sockaddr *from,
                    socklen_t from_len, uint64_t now_ns);
bool natcheck_done(const struct natcheck *n);
const struct natcheck_result *natcheck_result(const struct natcheck *n);

/* "no-nat", "full-cone", "restricted-cone", "port-restricted-cone", "symmetric",
 * "udp-blocked" or "unknown" (classic names, derived from mapping and filtering). */
const char *natcheck_type_string(const struct natcheck_result *r);
const char *nat_mapping_to_string(enum nat_mapping m);
const char *nat_filtering_to_string(enum nat_filtering f);
