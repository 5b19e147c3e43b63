/* SPDX-License-Identifier: MIT */
/*
 * The TAP device. /dev/net/tun creates it (the only way to get the fd that carries its frames);
 * everything else (MTU, addresses, up) goes through rtnetlink, never through ip(8) or address
 * ioctls. The device is not persistent: closing the last fd removes it, so a crash leaves
 * nothing behind either.
 */
#include <endian.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/if_tun.h>
#include <sys/ioctl.h>
#include <time.h>

#include "log.h"
#include "netlink.h"
#include "tap.h"

/* How long tap_free and the failure path wait for the device to disappear: closing the fd
 * unregisters it synchronously, so this bound is only reached if something is badly wrong. */
enum { TAP_GONE_POLLS = 100, TAP_GONE_POLL_MS = 10 };

/*
 * Close fd and make sure the device ifindex (named name when we made it) is gone. Closing the
 * last fd of a non-persistent TAP unregisters it before close() returns; if it is still there,
 * someone made it persistent or holds a copy of the fd, and it is deleted outright: what we
 * created, we remove.
 */
static int tap_remove(struct netlink *nl, int *fd, const char *name, int ifindex) {
        bool deleted = false;

        *fd = safe_close(*fd);
        if (!nl || ifindex <= 0)
                return 0;

        for (unsigned i = 0; i < TAP_GONE_POLLS; i++) {
                struct timespec ts = {.tv_nsec = TAP_GONE_POLL_MS * (long) NSEC_PER_MSEC};
                int r = netlink_link_index(nl, name);

                /* A different index means the name was freed and already reused by another. */
                if (r == -ENODEV || (r > 0 && r != ifindex))
                        return 0;
                if (r < 0)
                        return r;
                if (!deleted) {
                        log_debug("tap: %s (ifindex %d) outlived its fd, deleting it", name,
                                  ifindex);
                        r = netlink_link_delete(nl, ifindex);
                        if (r < 0 && r != -ENODEV)
                                return r;
                        deleted = true;
                        continue;
                }
                (void) nanosleep(&ts, NULL);
        }
        return -ETIMEDOUT;
}

/* vnet header on every read and write (10 bytes, little-endian), and the offloads we can
 * finish in userspace (offload_segment): checksums, TCP segmentation over IPv4 and IPv6 (with
 * ECN). Never UFO/USO: UDP super-frames are not segmented here. */
static int tap_set_offload(int fd, const char *name, bool *ret_tso) {
        int sz = TAP_VNET_HDR_LEN;

        if (ioctl(fd, TUNSETVNETHDRSZ, &sz) < 0)
                return -errno;
#if __BYTE_ORDER == __BIG_ENDIAN
        /* Legacy virtio headers are in native order: ask for little-endian, which offload.c
         * reads. Little-endian hosts have it already. */
        int le = 1;
        if (ioctl(fd, TUNSETVNETLE, &le) < 0)
                return -errno;
#endif
        if (ioctl(fd, TUNSETOFFLOAD, (unsigned long) (TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 |
                                                      TUN_F_TSO_ECN)) < 0) {
                log_debug_errno(errno, "tap: %s: no TCP segmentation offload: %m", name);
                *ret_tso = false;
                return 0;
        }
        *ret_tso = true;
        return 0;
}

/* Close the further queues of a multi-queue TAP (not queue 0, which tap_remove closes last). */
static void close_queues(struct tap *t) {
        for (unsigned i = 1; i < t->n_queues; i++)
                t->queue_fd[i] = safe_close(t->queue_fd[i]);
        if (t->write_fd != t->fd)
                t->write_fd = safe_close(t->write_fd);
        t->write_fd = t->fd;
}

/* One more queue of the multi-queue TAP name (attached: read by a data thread), or detached
 * (only written to: struct tap). Returns the fd or -errno. */
static int open_queue(const char *name, unsigned flags, bool detached) {
        struct ifreq ifr = {};
        int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC | O_NONBLOCK), r;

        if (fd < 0)
                return -errno;
        memcpy(ifr.ifr_name, name, IFNAMSIZ);
        /* The device's flags: the kernel takes them from every queue's TUNSETIFF. */
        ifr.ifr_flags = (short) (IFF_TAP | IFF_NO_PI | IFF_MULTI_QUEUE);
        if (flags & TAP_OFFLOAD)
                ifr.ifr_flags |= IFF_VNET_HDR;
        if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
                r = -errno;
                close(fd);
                return r;
        }
        if (detached) {
                ifr = (struct ifreq){ .ifr_flags = IFF_DETACH_QUEUE };
                if (ioctl(fd, TUNSETQUEUE, &ifr) < 0) {
                        r = -errno;
                        close(fd);
                        return r;
                }
        }
        return fd;
}

int tap_create_queues(const char *name, const uint8_t *mac, uint32_t mtu,
                      const struct config_address *addresses, size_t n_addresses,
                      unsigned flags, unsigned n_queues, struct tap **ret) {
        struct netlink *nl = NULL;
        struct ifreq ifr = {};
        struct tap *t;
        int fd = -EBADF, ifindex = 0, r;
        size_t len;

        if (!name || !ret || (n_addresses > 0 && !addresses) || n_queues < 1 ||
            n_queues > TAP_MAX_QUEUES)
                return -EINVAL;
        len = strlen(name);
        if (len == 0 || len >= IFNAMSIZ)
                return -EINVAL;

        t = calloc(1, sizeof(*t));
        if (!t)
                return -ENOMEM;
        t->fd = t->write_fd = -EBADF;
        for (unsigned i = 0; i < TAP_MAX_QUEUES; i++)
                t->queue_fd[i] = -EBADF;

        r = netlink_open(&nl);
        if (r < 0)
                goto fail;

        /* IFF_TUN_EXCL alone makes the kernel refuse any existing name, but asking first turns
         * every kind of device (loopback, a bridge, someone's TAP) into the same clean -EEXIST,
         * whatever the kernel's TUNSETIFF would say about it. */
        r = netlink_link_index(nl, name);
        if (r >= 0) {
                r = -EEXIST;
                goto fail;
        }
        if (r != -ENODEV)
                goto fail;

        fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC | O_NONBLOCK);
        if (fd < 0) {
                r = -errno;
                goto fail;
        }

        memcpy(ifr.ifr_name, name, len + 1);
        ifr.ifr_flags = (short) (IFF_TAP | IFF_NO_PI | IFF_TUN_EXCL); /* 0x8000 is the sign bit */
        if (flags & TAP_OFFLOAD)
                ifr.ifr_flags |= IFF_VNET_HDR;
        if (n_queues > 1)
                ifr.ifr_flags |= IFF_MULTI_QUEUE;
        if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
                /* EBUSY: the name appeared since we asked (IFF_TUN_EXCL at work). */
                r = errno == EBUSY ? -EEXIST : -errno;
                goto fail;
        }
        /* The kernel's name: differs from ours only for a pattern such as "sm%d". */
        memcpy(t->name, ifr.ifr_name, IFNAMSIZ);
        t->name[IFNAMSIZ - 1] = '\0';

        /* From here on the device exists: every failure must remove it. */
        r = netlink_link_index(nl, t->name);
        if (r < 0)
                goto fail_device;
        ifindex = r;

        /* The further queues, and the detached one the data path writes through. */
        t->fd = t->write_fd = t->queue_fd[0] = fd;
        t->n_queues = 1;
        if (n_queues > 1) {
                for (; t->n_queues < n_queues; t->n_queues++) {
                        r = open_queue(t->name, flags, false);
                        if (r < 0)
                                goto fail_device;
                        t->queue_fd[t->n_queues] = r;
                }
                r = open_queue(t->name, flags, true);
                if (r < 0)
                        goto fail_device;
                t->write_fd = r;
        }

        if (flags & TAP_OFFLOAD) {
                r = tap_set_offload(fd, t->name, &t->tso);
                if (r < 0) {
                        r = r == -EINVAL || r == -ENOTTY ? -EOPNOTSUPP : r;
                        goto fail_device;
                }
                t->vnet_hdr = true;
        }

        /* MTU before addresses and before up, so IPv6 and the routes see the final one. */
        r = netlink_link_set_mtu(nl, ifindex, mtu);
        if (r < 0)
                goto fail_device;
        r = netlink_link_set_txqlen(nl, ifindex, TAP_TX_QUEUE_LEN);
        if (r < 0)
                goto fail_device;
        if (mac) {
                r = netlink_link_set_mac(nl, ifindex, mac);
                if (r < 0)
                        goto fail_device;
        }

        for (size_t i = 0; i < n_addresses; i++) {
                r = netlink_address_add(nl, ifindex, addresses[i].family, &addresses[i].addr,
                                        addresses[i].prefixlen);
                /* The device is brand new, so this is the same address listed twice: do not
                 * let it read as -EEXIST, which means "a device of that name exists". */
                if (r == -EEXIST)
                        r = -EADDRINUSE;
                if (r < 0)
                        goto fail_device;
        }

        r = netlink_link_set_up(nl, ifindex, true);
        if (r < 0)
                goto fail_device;

        log_debug("tap: created %s (ifindex %d, mtu %" PRIu32 ", %zu addresses, %u queue%s%s)",
                  t->name, ifindex, mtu, n_addresses, t->n_queues, t->n_queues > 1 ? "s" : "",
                  t->tso ? ", TSO" : t->vnet_hdr ? ", vnet header without TSO" : "");
        netlink_close(nl);
        t->ifindex = ifindex;
        t->mtu = mtu;
        *ret = t;
        return 0;

fail_device:
        log_debug_errno(r, "tap: setting up %s failed, removing it: %m", t->name);
        close_queues(t);
        (void) tap_remove(nl, &fd, t->name, ifindex);
fail:
        safe_close(fd);
        netlink_close(nl);
        free(t);
        return r;
}

struct tap *tap_free(struct tap *t) {
        struct netlink *nl = NULL;
        int r;

        if (!t)
                return NULL;

        close_queues(t);
        r = netlink_open(&nl);
        if (r < 0) {
                /* Cannot watch it go; closing the fd still removes the device. */
                log_debug_errno(r, "tap: no rtnetlink to watch %s go: %m", t->name);
                t->fd = safe_close(t->fd);
        } else {
                r = tap_remove(nl, &t->fd, t->name, t->ifindex);
                if (r < 0)
                        log_debug_errno(r, "tap: removing %s: %m", t->name);
                netlink_close(nl);
        }
        free(t);
        return NULL;
}
