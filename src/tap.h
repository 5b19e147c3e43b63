/* SPDX-License-Identifier: MIT */
/* The TAP device: created through /dev/net/tun (IFF_TAP|IFF_NO_PI|IFF_TUN_EXCL, so an existing
 * device of that name is never taken over), configured through rtnetlink, deleted on free. */
#pragma once

#include <net/if.h>
#include <stdint.h>

#include "config.h"

struct tap {
        int fd; /* non-blocking, close-on-exec */
        int ifindex;
        char name[IFNAMSIZ];
        uint32_t mtu;
};

/*
 * Create name with mtu and Ethernet address mac (NULL: the kernel's random one), add each
 * address, set it up. Errors: -EEXIST (a device of that name
 * exists: not ours), -ENOENT (/dev/net/tun missing), -EPERM (no CAP_NET_ADMIN), or rtnetlink's.
 * On any failure nothing is left behind: the half-made device is deleted.
 */
int tap_create(const char *name, const uint8_t *mac, uint32_t mtu,
               const struct config_address *addresses, size_t n_addresses, struct tap **ret);
/* Close the fd (which removes the non-persistent device) and wait until it is gone. */
struct tap *tap_free(struct tap *t);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct tap *, tap_free);
