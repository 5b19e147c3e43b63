/* SPDX-License-Identifier: MIT */
/* The UDP underlay sockets and endpoint addresses. Listening on every address, a daemon has an
 * IPv6-only socket and an IPv4 one on the same port; one socket when the config pins an
 * address, the kernel has no IPv6, or the service manager passed the socket. */
#pragma once

#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

/* An IPv4 or IPv6 address: the only families a UDP endpoint has. Not sockaddr_storage (128
 * bytes): every endpoint the data path copies per batch (a peer's, a datagram's source, the
 * send name) stays within one cache line (bench/footprint.sh). getsockname() and recvmmsg()
 * into it are told its size, so the kernel never writes past it. */
union sockaddr_union {
        struct sockaddr sa;
        struct sockaddr_in in;
        struct sockaddr_in6 in6;
};

/* Where to send to reach a peer: its address, or the relay's address plus the peer's slot at
 * the relay (messages then travel wrapped in RELAY_DATA). */
struct endpoint {
        union sockaddr_union addr;
        socklen_t len; /* 0: none */
        bool via_relay;
        uint32_t relay_slot;
        /* Our own address the peer's packets arrived at (IP_PKTINFO): replies leave from it,
         * so a multi-homed host answers from the address it was reached on. family 0: unset,
         * the kernel's routing picks. */
        struct {
                int family;
                union {
                        struct in_addr in;
                        struct in6_addr in6;
                };
                int ifindex;
        } src;
};
_Static_assert(sizeof(struct endpoint) <= 64, "an endpoint is one cache line's worth");

/* Control-message room for one packet-info cmsg of either family. */
#define UDP_PKTINFO_SPACE 64

/* Control-message room for a packet-info cmsg plus a UDP_SEGMENT (send) or UDP_GRO (receive)
 * one. */
#define UDP_CONTROL_SPACE (UDP_PKTINFO_SPACE + CMSG_SPACE(sizeof(int)))

/* UDP GRO on (or off again): the kernel may hand over several equal-sized datagrams from one
 * sender in one buffer (network.offload). -errno when the kernel has none (ENOPROTOOPT before
 * Linux 5.0). */
int udp_set_gro(int fd, bool on);
/* The size of each datagram in a buffer the kernel coalesced (its UDP_GRO cmsg; the last may
 * be shorter), 0 when the buffer holds one datagram. */
size_t udp_read_gro(struct msghdr *mh);
/* Append to a control buffer of UDP_CONTROL_SPACE bytes, whose first controllen bytes are in
 * use (a packet-info cmsg or nothing), the UDP_SEGMENT cmsg that makes one send leave as
 * datagrams of segment_size bytes (UDP GSO). Returns the new control length. */
size_t udp_write_segment(void *buf, size_t controllen, uint16_t segment_size);

/* The destination address of a received datagram (our address) from its control messages. */
void udp_read_pktinfo(struct msghdr *mh, struct endpoint *e);
/* Fill buf (UDP_PKTINFO_SPACE bytes) with the cmsg that makes a send leave from e->src;
 * returns its length, 0 when e has no source. */
size_t udp_write_pktinfo(const struct endpoint *e, void *buf);
/* A send with a source address failed because that address is no longer ours (the kernel
 * says EINVAL or, from the route lookup, ENETUNREACH or EADDRNOTAVAIL). */
static inline bool udp_source_gone(int error) {
        return error == EINVAL || error == ENETUNREACH || error == EADDRNOTAVAIL;
}
/* Same source address (family 0 matches only family 0). */
bool endpoint_same_source(const struct endpoint *a, const struct endpoint *b);
/* e's source is this address of ours (family AF_INET or AF_INET6, addr an in_addr or in6_addr;
 * an IPv4 address also matches its v4-mapped form). False when e has no source. */
bool endpoint_source_is(const struct endpoint *e, int family, const void *addr);

struct log_ratelimit;
/* Log that `packets` datagrams to `to` (the `what`: "peer", "relay"...) could not be sent
 * (error: a positive errno), through the caller's rate limit (one per thread): "cannot send to
 * peer 192.0.2.1:9001 from 192.0.2.11: Invalid argument (3 packets dropped)". */
void udp_log_send_error(struct log_ratelimit *rl, uint64_t now, const char *what,
                        const struct endpoint *to, int error, uint64_t packets);

/* Open, configure (non-blocking, close-on-exec, large buffers, packet info) and bind. host
 * NULL or "0.0.0.0"/"::": any address, with two sockets on the port: *ret_fd IPv6-only and
 * *ret_fd4 IPv4 (only *ret_fd, IPv4, on a kernel without IPv6; ret_fd4 NULL: one dual-stack
 * socket, as the relay keeps). A numeric host: one socket of
 * its family, *ret_fd4 -EBADF. *ret_family: the family endpoints are kept in (AF_INET6 with an
 * IPv6 socket: IPv4 addresses v4-mapped; udp_pick and udp_map_v4 translate for the IPv4
 * socket). -EADDRINUSE when the port is taken. */
int udp_open(const char *host, uint16_t port, int *ret_fd, int *ret_fd4, int *ret_family);

/* A daemon's sockets as udp_open made them: fd, and fd4 (-EBADF: none) for IPv4 beside an
 * IPv6-only fd. Whoever sends picks one per destination (udp_pick). */
struct udp_sockets {
        int fd, fd4;
};

/* The socket a datagram to `to` leaves by, with the address that socket takes in *ret_sa and
 * *ret_len: s->fd4 (when >= 0) and a sockaddr_in for an IPv4 (v4-mapped) address, else s->fd
 * and the address as it is. */
int udp_pick(const struct udp_sockets *s, const struct endpoint *to, union sockaddr_union *ret_sa,
             socklen_t *ret_len);
/* A source address the IPv4 socket reported, in the form endpoints are kept in when the
 * daemon also has an IPv6 socket (v4-mapped AF_INET6). Anything else is left as it is. */
void udp_map_v4(union sockaddr_union *sa, socklen_t *len);

/* Take over a bound UDP socket passed by the service manager (socket activation): make it
 * non-blocking and close-on-exec, size its buffers, report its family and port. Datagrams
 * already queued on it (the one that woke us) stay queued for the receive thread. */
int udp_adopt(int fd, int *ret_family, uint16_t *ret_port);

/* Socket activation: 1 and the adopted socket (udp_adopt) when the service manager passed
 * exactly one UDP socket, 0 when it passed none, -errno (logged) when what it passed is not
 * usable. */
int udp_take_activation_socket(int *ret_fd, int *ret_family, uint16_t *ret_port);

/* Resolve host:port for a socket of family (AF_INET6 sockets get v4-mapped addresses).
 * Blocking (getaddrinfo): call at start-up only. -EHOSTUNREACH style errors come back as
 * -EADDRNOTAVAIL with *ret_gai_error set to the getaddrinfo error for the message. */
int udp_resolve(const char *host, uint16_t port, int family, struct endpoint *ret,
                int *ret_gai_error);

/* Same address and port (v4-mapped v6 equals its v4 form), and the same relay slot. */
bool endpoint_equal(const struct endpoint *a, const struct endpoint *b);
/* Same address and port only (ignores relay slots). */
bool endpoint_same_address(const struct endpoint *a, const struct endpoint *b);
/* "192.0.2.1:9001" or "[2001:db8::1]:9001" (v4-mapped printed as v4), prefixed "relay " for a
 * relayed endpoint. buf of ENDPOINT_STRLEN. */
#define ENDPOINT_STRLEN (INET6_ADDRSTRLEN + 16)
const char *endpoint_to_string(const struct endpoint *e, char *buf);
