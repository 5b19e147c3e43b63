/* SPDX-License-Identifier: MIT */
/* rtnetlink over libmnl: the link and address requests the daemon makes. Synchronous request/ack
 * on a private socket (each call completes in microseconds, at start and stop only). And the
 * address monitor: a non-blocking socket that hears the kernel's address notifications, for an
 * event loop. */
#pragma once

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct netlink;
struct nlmsghdr;

int netlink_open(struct netlink **ret);
struct netlink *netlink_close(struct netlink *nl);

/* ifindex of name, -ENODEV when there is none. */
int netlink_link_index(struct netlink *nl, const char *name);
int netlink_link_set_mtu(struct netlink *nl, int ifindex, uint32_t mtu);
/* Ethernet address (before the link is up). */
int netlink_link_set_mac(struct netlink *nl, int ifindex, const uint8_t mac[6]);
/* Length of the queue between the kernel and the TAP reader (tun's ptr_ring). */
int netlink_link_set_txqlen(struct netlink *nl, int ifindex, uint32_t txqlen);
int netlink_link_set_up(struct netlink *nl, int ifindex, bool up);
/* family AF_INET or AF_INET6; addr points to in_addr / in6_addr. -EEXIST if already there. */
int netlink_address_add(struct netlink *nl, int ifindex, int family, const void *addr,
                        uint8_t prefixlen);
int netlink_link_delete(struct netlink *nl, int ifindex);

/* One address notification (RTM_NEWADDR or RTM_DELADDR). */
struct netlink_address {
        bool removed; /* RTM_DELADDR */
        int family;   /* AF_INET or AF_INET6 */
        int ifindex;
        uint32_t flags; /* IFA_F_* (all 32 bits: IFA_FLAGS when the kernel sends it) */
        uint8_t scope;  /* RT_SCOPE_* */
        uint8_t prefixlen;
        union {
                struct in_addr in;
                struct in6_addr in6;
        };
};
/* Decode an RTM_NEWADDR or RTM_DELADDR message: the local address (IFA_LOCAL, else IFA_ADDRESS).
 * Pure. -EOPNOTSUPP for another message type or family, -EBADMSG when it is malformed. */
int netlink_parse_address(const struct nlmsghdr *nlh, struct netlink_address *ret);

/* A NETLINK_ROUTE socket subscribed to RTNLGRP_IPV4_IFADDR and RTNLGRP_IPV6_IFADDR,
 * non-blocking, close-on-exec. */
struct netlink_monitor;
int netlink_monitor_open(struct netlink_monitor **ret);
struct netlink_monitor *netlink_monitor_close(struct netlink_monitor *m);
int netlink_monitor_fd(const struct netlink_monitor *m);
/* Read what is queued without blocking (at most a bounded number of datagrams per call) and call
 * on_address for every address notification from the kernel. 0 when drained, 1 when more may be
 * queued, -ENOBUFS when the kernel dropped notifications because the socket was full (the
 * caller must assume that any address changed), other -errno on failure. */
typedef void (*netlink_address_fn)(const struct netlink_address *a, void *userdata);
int netlink_monitor_read(struct netlink_monitor *m, netlink_address_fn on_address, void *userdata);
