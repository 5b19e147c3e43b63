/* SPDX-License-Identifier: MIT */
/* rtnetlink over libmnl: the link and address requests the daemon makes. Synchronous request/ack
 * on a private socket (each call completes in microseconds, at start and stop only). */
#pragma once

#include <stdbool.h>
#include <stdint.h>

struct netlink;

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
