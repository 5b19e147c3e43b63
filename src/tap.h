/* SPDX-License-Identifier: MIT */
/* The TAP device: created through /dev/net/tun (IFF_TAP|IFF_NO_PI|IFF_TUN_EXCL, so an existing
 * device of that name is never taken over), configured through rtnetlink, deleted on free. */
#pragma once

#include <net/if.h>
#include <stdbool.h>
#include <stdint.h>

#include "config.h"

/* Queues of a multi-queue TAP (datapath.h: DATAPATH_MAX_QUEUES). */
enum { TAP_MAX_QUEUES = 8 };

struct tap {
        int fd; /* non-blocking, close-on-exec; queue 0 of a multi-queue TAP */
        /* A multi-queue TAP (IFF_MULTI_QUEUE, n_queues > 1): queue_fd[0..n_queues) are its
         * queues (queue_fd[0] is fd), over which the kernel spreads the frames it sends by a
         * hash of each flow. write_fd is one more queue, detached (IFF_DETACH_QUEUE): frames
         * written there reach the kernel as from any queue, but the kernel never reads it to us
         * and never learns from it which queue a flow's replies should take (its flow table
         * is fed by writes on attached queues only), so every flow stays on the queue its hash
         * gives. A single-queue TAP: n_queues 1, write_fd is fd. */
        unsigned n_queues;
        int queue_fd[TAP_MAX_QUEUES];
        int write_fd;
        int ifindex;
        char name[IFNAMSIZ];
        uint32_t mtu;
        /* TAP_OFFLOAD: every read and write carries a struct vnet_hdr (offload.h) first, and
         * the kernel may hand over TCP frames of up to 64 KiB (TSO) or frames whose checksum
         * is left to us; tso says whether it accepted TUNSETOFFLOAD. */
        bool vnet_hdr, tso;
};

enum tap_flags {
        TAP_OFFLOAD = 1 << 0, /* IFF_VNET_HDR + TUNSETOFFLOAD(CSUM, TSO4, TSO6, TSO_ECN) */
};

/*
 * Create name with mtu and Ethernet address mac (NULL: the kernel's random one), add each
 * address, set it up. n_queues (1..TAP_MAX_QUEUES): more than one makes a multi-queue TAP
 * (struct tap above). flags: enum tap_flags (TAP_OFFLOAD: -EOPNOTSUPP when the kernel has no
 * vnet header support; a kernel that refuses only the segmentation offloads leaves tso false).
 * Errors: -EEXIST (a device of that name exists: not ours), -ENOENT (/dev/net/tun missing),
 * -EPERM (no CAP_NET_ADMIN), or rtnetlink's.
 * On any failure nothing is left behind: the half-made device is deleted.
 */
int tap_create_queues(const char *name, const uint8_t *mac, uint32_t mtu,
                      const struct config_address *addresses, size_t n_addresses,
                      unsigned flags, unsigned n_queues, struct tap **ret);
/* One queue (n_queues 1: no IFF_MULTI_QUEUE), as before multi-queue TAPs. */
static inline int tap_create_flags(const char *name, const uint8_t *mac, uint32_t mtu,
                                   const struct config_address *addresses, size_t n_addresses,
                                   unsigned flags, struct tap **ret) {
        return tap_create_queues(name, mac, mtu, addresses, n_addresses, flags, 1, ret);
}
/* A plain TAP: one Ethernet frame per read and write, no vnet header. */
static inline int tap_create(const char *name, const uint8_t *mac, uint32_t mtu,
                             const struct config_address *addresses, size_t n_addresses,
                             struct tap **ret) {
        return tap_create_flags(name, mac, mtu, addresses, n_addresses, 0, ret);
}
/* Close the fd (which removes the non-persistent device) and wait until it is gone. */
struct tap *tap_free(struct tap *t);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct tap *, tap_free);
