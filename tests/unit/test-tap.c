/* SPDX-License-Identifier: MIT */
/*
 * tap and netlink against the real kernel, inside a private network namespace the test makes
 * for itself (unshare(CLONE_NEWNET) before anything else), so nothing here touches the host's
 * links. Needs root and /dev/net/tun; exits 77 (skip) without them.
 *
 * What it proves: a TAP comes up with the exact MTU, flags and addresses asked for, its fd
 * carries raw Ethernet frames both ways, it disappears on free (even if made persistent
 * meanwhile), an existing name of any kind is a clean -EEXIST that leaves the owner untouched,
 * and a failure half-way leaves no device behind.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <libmnl/libmnl.h>
#include <linux/capability.h>
#include <linux/if_link.h>
#include <linux/if_tun.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>

#include "netlink.h"
#include "tap.h"
#include "tests.h"
#include "util.h"

/* ---- what the kernel says about a link, read with plain libmnl (independent of netlink.c) */

struct link_state {
        bool found;
        char name[IFNAMSIZ];
        unsigned flags;
        uint32_t mtu;
        char kind[32];
};

static int linkinfo_cb(const struct nlattr *attr, void *data) {
        struct link_state *ls = data;

        if (mnl_attr_get_type(attr) == IFLA_INFO_KIND &&
            mnl_attr_validate(attr, MNL_TYPE_STRING) >= 0)
                snprintf(ls->kind, sizeof(ls->kind), "%.*s", (int) mnl_attr_get_payload_len(attr),
                         (const char *) mnl_attr_get_payload(attr));
        return MNL_CB_OK;
}

static int link_attr_cb(const struct nlattr *attr, void *data) {
        struct link_state *ls = data;

        switch (mnl_attr_get_type(attr)) {
        case IFLA_IFNAME:
                if (mnl_attr_validate(attr, MNL_TYPE_NUL_STRING) >= 0)
                        snprintf(ls->name, sizeof(ls->name), "%s", mnl_attr_get_str(attr));
                break;
        case IFLA_MTU:
                if (mnl_attr_validate(attr, MNL_TYPE_U32) >= 0)
                        ls->mtu = mnl_attr_get_u32(attr);
                break;
        case IFLA_LINKINFO:
                mnl_attr_parse_nested(attr, linkinfo_cb, ls);
                break;
        }
        return MNL_CB_OK;
}

static int link_msg_cb(const struct nlmsghdr *nlh, void *data) {
        struct link_state *ls = data;
        const struct ifinfomsg *ifi = mnl_nlmsg_get_payload(nlh);

        ls->found = true;
        ls->flags = ifi->ifi_flags;
        mnl_attr_parse(nlh, sizeof(*ifi), link_attr_cb, ls);
        return MNL_CB_OK;
}

/* State of the link with this index; ls->found false when there is none. */
static void link_state(int ifindex, struct link_state *ls) {
        uint8_t buf[8192] __attribute__((aligned(8)));
        struct mnl_socket *sock;
        struct nlmsghdr *nlh;
        struct ifinfomsg *ifi;
        unsigned portid, seq = 4242;
        ssize_t n;

        memset(ls, 0, sizeof(*ls));
        sock = mnl_socket_open(NETLINK_ROUTE);
        if (!sock || mnl_socket_bind(sock, 0, MNL_SOCKET_AUTOPID) < 0)
                abort();
        portid = mnl_socket_get_portid(sock);

        nlh = mnl_nlmsg_put_header(buf);
        nlh->nlmsg_type = RTM_GETLINK;
        nlh->nlmsg_flags = NLM_F_REQUEST;
        nlh->nlmsg_seq = seq;
        ifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifi));
        ifi->ifi_family = AF_UNSPEC;
        ifi->ifi_index = ifindex;
        if (mnl_socket_sendto(sock, nlh, nlh->nlmsg_len) < 0)
                abort();
        n = mnl_socket_recvfrom(sock, buf, sizeof(buf));
        if (n < 0)
                abort();
        /* An -ENODEV error reply ends the run with found still false. */
        (void) mnl_cb_run(buf, (size_t) n, seq, portid, link_msg_cb, ls);
        mnl_socket_close(sock);
}

/* Whether name has family address text/prefixlen (and, for IPv4, broadcast brd if non-NULL). */
static bool has_address(const char *name, int family, const char *text, unsigned prefixlen,
                        const char *brd) {
        struct ifaddrs *list, *i;
        uint8_t want[16];
        bool found = false;

        if (inet_pton(family, text, want) != 1 || getifaddrs(&list) < 0)
                abort();
        for (i = list; i; i = i->ifa_next) {
                const uint8_t *a, *m;
                size_t len;
                unsigned bits = 0;

                if (!i->ifa_addr || i->ifa_addr->sa_family != family || !i->ifa_netmask ||
                    strcmp(i->ifa_name, name) != 0)
                        continue;
                if (family == AF_INET) {
                        a = (const uint8_t *) &((struct sockaddr_in *) i->ifa_addr)->sin_addr;
                        m = (const uint8_t *) &((struct sockaddr_in *) i->ifa_netmask)->sin_addr;
                        len = 4;
                } else {
                        a = (const uint8_t *) &((struct sockaddr_in6 *) i->ifa_addr)->sin6_addr;
                        m = (const uint8_t *) &((struct sockaddr_in6 *) i->ifa_netmask)->sin6_addr;
                        len = 16;
                }
                if (memcmp(a, want, len) != 0)
                        continue;
                for (size_t k = 0; k < len; k++)
                        bits += (unsigned) __builtin_popcount(m[k]);
                if (bits != prefixlen)
                        continue;
                if (brd) {
                        char got[INET_ADDRSTRLEN] = "";

                        if (!(i->ifa_flags & IFF_BROADCAST) || !i->ifa_broadaddr)
                                continue;
                        inet_ntop(AF_INET, &((struct sockaddr_in *) i->ifa_broadaddr)->sin_addr,
                                  got, sizeof(got));
                        if (strcmp(got, brd) != 0)
                                continue;
                }
                found = true;
        }
        freeifaddrs(list);
        return found;
}

/* Names of all links, sorted into one string, to prove a failure added nothing. */
static void link_names(char *out, size_t size) {
        struct if_nameindex *ni = if_nameindex(), *i;

        if (!ni)
                abort();
        out[0] = '\0';
        for (i = ni; i->if_index; i++) {
                strncat(out, i->if_name, size - strlen(out) - 1);
                strncat(out, ",", size - strlen(out) - 1);
        }
        if_freenameindex(ni);
}

static struct config_address addr4(const char *text, uint8_t prefixlen) {
        struct config_address a = {.family = AF_INET, .prefixlen = prefixlen};

        if (inet_pton(AF_INET, text, &a.addr.in) != 1)
                abort();
        return a;
}

static struct config_address addr6(const char *text, uint8_t prefixlen) {
        struct config_address a = {.family = AF_INET6, .prefixlen = prefixlen};

        if (inet_pton(AF_INET6, text, &a.addr.in6) != 1)
                abort();
        return a;
}

/* ---- frames */

enum { ETH_HLEN_ = 14, ETHERTYPE_ARP_ = 0x0806, ETHERTYPE_IPV4_ = 0x0800 };

static uint64_t now_ms(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}

/* Read frames from the TAP until one with ethertype arrives (others, e.g. IPv6 router
 * solicitations, are skipped) or 5 s pass. Returns its length, or 0 on timeout. */
static size_t read_frame(int fd, uint16_t ethertype, uint8_t *buf, size_t size) {
        uint64_t deadline = now_ms() + 5000;

        for (;;) {
                uint64_t now = now_ms();
                struct pollfd pfd = {.fd = fd, .events = POLLIN};
                ssize_t n;

                if (now >= deadline)
                        return 0;
                if (poll(&pfd, 1, (int) (deadline - now)) <= 0)
                        continue;
                n = read(fd, buf, size);
                if (n < 0 && (errno == EAGAIN || errno == EINTR))
                        continue;
                if (n < 0)
                        return 0;
                if ((size_t) n >= ETH_HLEN_ && get_be16(buf + 12) == ethertype)
                        return (size_t) n;
        }
}

static void send_udp(const char *dst, const char *payload) {
        struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(9)};
        int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

        if (s < 0 || inet_pton(AF_INET, dst, &sin.sin_addr) != 1)
                abort();
        CHECKF(sendto(s, payload, strlen(payload), 0, (struct sockaddr *) &sin, sizeof(sin)) ==
                       (ssize_t) strlen(payload),
               "sendto %s: %m", dst);
        close(s);
}

/*
 * Send a datagram to peer (unknown on the segment): the kernel must ask with an ARP request on
 * the TAP. Then answer as peer through the fd: the kernel must release the queued datagram to
 * the MAC we claimed. Proves raw Ethernet frames (no packet-info header) both ways.
 */
static void check_frames(int fd, const char *local, const char *peer) {
        static const uint8_t peer_mac[6] = {0x02, 0, 0, 0, 0, 0x42};
        static const uint8_t bcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
        const char *payload = "shadowmesh-tap-test";
        uint8_t frame[2048], reply[42], tap_mac[6], local_ip[4], peer_ip[4];
        size_t n;

        if (inet_pton(AF_INET, local, local_ip) != 1 || inet_pton(AF_INET, peer, peer_ip) != 1)
                abort();

        send_udp(peer, payload);
        n = read_frame(fd, ETHERTYPE_ARP_, frame, sizeof(frame));
        CHECKF(n >= ETH_HLEN_ + 28, "no ARP request for %s on the TAP", peer);
        if (n < ETH_HLEN_ + 28)
                return;
        CHECK_MEM(frame, bcast, 6);
        CHECK_EQ_INT(get_be16(frame + 14), 1);      /* htype Ethernet */
        CHECK_EQ_INT(get_be16(frame + 16), 0x0800); /* ptype IPv4 */
        CHECK_EQ_INT(get_be16(frame + 20), 1);      /* request */
        CHECK_MEM(frame + 14 + 14, local_ip, 4);    /* sender IP */
        CHECK_MEM(frame + 14 + 24, peer_ip, 4);     /* target IP */
        CHECK_MEM(frame + 14 + 8, frame + 6, 6);    /* sender MAC is the frame's source */
        memcpy(tap_mac, frame + 6, 6);

        /* The ARP reply, from peer to the TAP's MAC. */
        memcpy(reply, tap_mac, 6);
        memcpy(reply + 6, peer_mac, 6);
        put_be16(reply + 12, ETHERTYPE_ARP_);
        put_be16(reply + 14, 1);
        put_be16(reply + 16, 0x0800);
        reply[18] = 6;
        reply[19] = 4;
        put_be16(reply + 20, 2);
        memcpy(reply + 22, peer_mac, 6);
        memcpy(reply + 28, peer_ip, 4);
        memcpy(reply + 32, tap_mac, 6);
        memcpy(reply + 38, local_ip, 4);
        CHECK_EQ_INT(write(fd, reply, sizeof(reply)), sizeof(reply));

        n = read_frame(fd, ETHERTYPE_IPV4_, frame, sizeof(frame));
        CHECKF(n > 0, "queued datagram to %s not released after the ARP reply", peer);
        if (n < ETH_HLEN_ + 28 + strlen(payload))
                return;
        CHECK_MEM(frame, peer_mac, 6);
        CHECK_MEM(frame + 6, tap_mac, 6);
        CHECK_EQ_INT(frame[14 + 9], IPPROTO_UDP);
        CHECK_MEM(frame + 14 + 12, local_ip, 4);
        CHECK_MEM(frame + 14 + 16, peer_ip, 4);
        CHECK_EQ_INT(get_be16(frame + 14 + 20 + 2), 9);
        CHECK_MEM(frame + 14 + 28, payload, strlen(payload));
}

/* ---- cases */

static void test_netlink(struct netlink *nl) {
        struct link_state ls;
        struct in_addr a;
        int lo = netlink_link_index(nl, "lo");

        CHECK_EQ_INT(lo, 1); /* the first device of every namespace */
        CHECK_EQ_INT(netlink_link_index(nl, "smnothere0"), -ENODEV);
        CHECK_EQ_INT(netlink_link_index(nl, ""), -EINVAL);
        CHECK_EQ_INT(netlink_link_index(nl, "sixteen-chars-xx"), -EINVAL);
        CHECK_EQ_INT(netlink_link_index(nl, NULL), -EINVAL);

        /* A fresh namespace's loopback is down: set it up (later cases check it stays so). */
        link_state(lo, &ls);
        CHECK(ls.found && !(ls.flags & IFF_UP));
        CHECK_EQ_INT(netlink_link_set_up(nl, lo, true), 0);
        link_state(lo, &ls);
        CHECK(ls.flags & IFF_UP);
        CHECK_EQ_INT(netlink_link_set_up(nl, lo, false), 0);
        link_state(lo, &ls);
        CHECK(!(ls.flags & IFF_UP));
        CHECK_EQ_INT(netlink_link_set_up(nl, lo, true), 0);

        CHECK_EQ_INT(netlink_link_set_mtu(nl, lo, 60000), 0);
        link_state(lo, &ls);
        CHECK_EQ_INT(ls.mtu, 60000);
        CHECK_EQ_INT(netlink_link_set_mtu(nl, lo, 65536), 0);
        link_state(lo, &ls);
        CHECK_EQ_INT(ls.mtu, 65536);

        /* Errors from the kernel arrive as -errno, and the socket stays usable after them. */
        CHECK_EQ_INT(netlink_link_set_up(nl, 999999, true), -ENODEV);
        CHECK_EQ_INT(netlink_link_set_mtu(nl, 999999, 1400), -ENODEV);
        CHECK_EQ_INT(netlink_link_delete(nl, 999999), -ENODEV);
        CHECK_EQ_INT(netlink_link_set_up(nl, 0, true), -EINVAL);
        CHECK_EQ_INT(netlink_link_index(nl, "lo"), 1);

        inet_pton(AF_INET, "10.77.0.1", &a);
        CHECK_EQ_INT(netlink_address_add(nl, lo, AF_PACKET, &a, 8), -EAFNOSUPPORT);
        CHECK_EQ_INT(netlink_address_add(nl, lo, AF_INET, &a, 33), -EINVAL);
        CHECK_EQ_INT(netlink_address_add(nl, 999999, AF_INET, &a, 32), -ENODEV);
        CHECK_EQ_INT(netlink_address_add(nl, lo, AF_INET, &a, 32), 0);
        CHECK(has_address("lo", AF_INET, "10.77.0.1", 32, NULL));
        CHECK_EQ_INT(netlink_address_add(nl, lo, AF_INET, &a, 32), -EEXIST);
}

static void test_create(struct netlink *nl) {
        struct config_address addrs[] = {addr4("10.9.0.1", 24), addr6("fd00:9::1", 64)};
        struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6};
        struct tap *t = NULL;
        struct link_state ls;
        struct ifreq ifr = {};
        int s;

        CHECK_EQ_INT(tap_create("smtest0", NULL, 1380, addrs, ELEMENTSOF(addrs), &t), 0);
        if (t) {
                /* A chosen Ethernet address is set before the link goes up. */
                static const uint8_t mac[6] = { 0x02, 0x53, 0x4d, 0x01, 0x02, 0x03 };
                struct tap *t2 = NULL;
                struct ifreq hw = {};
                int hs = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
                CHECK_EQ_INT(tap_create("smtest9", mac, 1380, NULL, 0, &t2), 0);
                strncpy(hw.ifr_name, "smtest9", IFNAMSIZ - 1);
                CHECK(hs >= 0 && ioctl(hs, SIOCGIFHWADDR, &hw) == 0);
                CHECK(memcmp(hw.ifr_hwaddr.sa_data, mac, 6) == 0);
                if (hs >= 0)
                        close(hs);
                tap_free(t2);
        }
        if (!t)
                return;
        CHECK(strcmp(t->name, "smtest0") == 0);
        CHECK_EQ_INT(t->mtu, 1380);
        CHECK(t->fd >= 0);
        CHECK(fcntl(t->fd, F_GETFL) & O_NONBLOCK);
        CHECK(fcntl(t->fd, F_GETFD) & FD_CLOEXEC);
        CHECK_EQ_INT(netlink_link_index(nl, "smtest0"), t->ifindex);

        /* The kernel's queue in front of our reader is deepened from tun's default 500. */
        {
                struct ifreq q = {};
                int qs = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
                strncpy(q.ifr_name, "smtest0", IFNAMSIZ - 1);
                CHECK(qs >= 0 && ioctl(qs, SIOCGIFTXQLEN, &q) == 0);
                CHECK_EQ_INT(q.ifr_qlen, TAP_TX_QUEUE_LEN);
                if (qs >= 0)
                        close(qs);
        }

        link_state(t->ifindex, &ls);
        CHECK(ls.found);
        CHECK(strcmp(ls.name, "smtest0") == 0);
        CHECK_EQ_INT(ls.mtu, 1380);
        CHECK(ls.flags & IFF_UP);
        CHECKF(strcmp(ls.kind, "tun") == 0, "kind \"%s\"", ls.kind);

        /* The fd's view: a TAP without packet-info header, not persistent. */
        CHECK_EQ_INT(ioctl(t->fd, TUNGETIFF, &ifr), 0);
        CHECK(strcmp(ifr.ifr_name, "smtest0") == 0);
        CHECK(ifr.ifr_flags & IFF_TAP);
        CHECK(!(ifr.ifr_flags & IFF_TUN));
        CHECK(ifr.ifr_flags & IFF_NO_PI);
        CHECK(!(ifr.ifr_flags & IFF_PERSIST));

        CHECK(has_address("smtest0", AF_INET, "10.9.0.1", 24, "10.9.0.255"));
        CHECK(has_address("smtest0", AF_INET6, "fd00:9::1", 64, NULL));
        CHECK(!has_address("smtest0", AF_INET, "10.9.0.1", 32, NULL));

        /* IFA_F_NODAD: the IPv6 address is usable at once (a tentative one cannot be bound). */
        s = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        CHECK(s >= 0);
        inet_pton(AF_INET6, "fd00:9::1", &sin6.sin6_addr);
        CHECKF(bind(s, (struct sockaddr *) &sin6, sizeof(sin6)) == 0, "bind fd00:9::1: %m");
        close(s);

        check_frames(t->fd, "10.9.0.1", "10.9.0.2");

        t = tap_free(t);
        CHECK(t == NULL);
        CHECK_EQ_INT(netlink_link_index(nl, "smtest0"), -ENODEV);
        CHECK(!has_address("smtest0", AF_INET, "10.9.0.1", 24, NULL));
        CHECK(tap_free(NULL) == NULL);
}

static void test_name_taken_by_tap(struct netlink *nl) {
        struct config_address a = addr4("10.9.1.1", 24);
        _cleanup_(tap_freep) struct tap *t1 = NULL;
        struct tap *t2 = NULL;
        struct link_state ls;

        CHECK_EQ_INT(tap_create("smtest1", NULL, 1380, &a, 1, &t1), 0);
        if (!t1)
                return;
        CHECK_EQ_INT(tap_create("smtest1", NULL, 1400, NULL, 0, &t2), -EEXIST);
        CHECK(t2 == NULL);

        /* The first one is untouched and still carries frames. */
        CHECK_EQ_INT(netlink_link_index(nl, "smtest1"), t1->ifindex);
        link_state(t1->ifindex, &ls);
        CHECK_EQ_INT(ls.mtu, 1380);
        CHECK(ls.flags & IFF_UP);
        CHECK(has_address("smtest1", AF_INET, "10.9.1.1", 24, "10.9.1.255"));
        check_frames(t1->fd, "10.9.1.1", "10.9.1.2");
}

static void test_name_taken_by_loopback(struct netlink *nl) {
        struct config_address a = addr4("10.9.9.1", 24);
        struct link_state before, after;
        struct tap *t = NULL;

        link_state(1, &before);
        CHECK(before.flags & IFF_UP);
        CHECK_EQ_INT(tap_create("lo", NULL, 1380, &a, 1, &t), -EEXIST);
        CHECK(t == NULL);
        link_state(1, &after);
        CHECK(after.found);
        CHECK_EQ_INT(after.flags, before.flags);
        CHECK_EQ_INT(after.mtu, before.mtu);
        CHECK(strcmp(after.kind, before.kind) == 0);
        CHECK(has_address("lo", AF_INET, "127.0.0.1", 8, NULL));
        CHECK(!has_address("lo", AF_INET, "10.9.9.1", 24, NULL));
        CHECK_EQ_INT(netlink_link_index(nl, "lo"), 1);
}

static void test_failure_leaves_nothing(struct netlink *nl) {
        struct config_address good[] = {addr4("10.9.2.1", 24), addr6("fd00:92::1", 64)};
        struct config_address bad_prefix[] = {addr6("fd00:92::1", 64), addr4("10.9.2.1", 33)};
        struct config_address dup[] = {addr4("10.9.2.1", 24), addr4("10.9.2.1", 24)};
        struct config_address bad_family = addr4("10.9.2.1", 24);
        char names_before[1024], names_after[1024];
        struct tap *t = NULL;

        bad_family.family = AF_PACKET;
        link_names(names_before, sizeof(names_before));

        /* The kernel refuses the MTU (a TAP's maximum is 65535, Ethernet's minimum 68)... */
        CHECK_EQ_INT(tap_create("smtest2", NULL, 70000, good, ELEMENTSOF(good), &t), -EINVAL);
        CHECK_EQ_INT(netlink_link_index(nl, "smtest2"), -ENODEV);
        CHECK_EQ_INT(tap_create("smtest2", NULL, 60, good, ELEMENTSOF(good), &t), -EINVAL);
        CHECK_EQ_INT(netlink_link_index(nl, "smtest2"), -ENODEV);
        /* ... an address after a good one is invalid, or listed twice, or of no IP family. */
        CHECK_EQ_INT(tap_create("smtest2", NULL, 1380, bad_prefix, ELEMENTSOF(bad_prefix), &t), -EINVAL);
        CHECK_EQ_INT(netlink_link_index(nl, "smtest2"), -ENODEV);
        CHECK_EQ_INT(tap_create("smtest2", NULL, 1380, dup, ELEMENTSOF(dup), &t), -EADDRINUSE);
        CHECK_EQ_INT(netlink_link_index(nl, "smtest2"), -ENODEV);
        CHECK_EQ_INT(tap_create("smtest2", NULL, 1380, &bad_family, 1, &t), -EAFNOSUPPORT);
        CHECK_EQ_INT(netlink_link_index(nl, "smtest2"), -ENODEV);
        CHECK(t == NULL);

        link_names(names_after, sizeof(names_after));
        CHECKF(strcmp(names_before, names_after) == 0, "links were \"%s\", now \"%s\"",
               names_before, names_after);
        CHECK(!has_address("lo", AF_INET6, "fd00:92::1", 64, NULL));

        /* And the name is free for a good attempt. */
        CHECK_EQ_INT(tap_create("smtest2", NULL, 1380, good, ELEMENTSOF(good), &t), 0);
        CHECK(has_address("smtest2", AF_INET, "10.9.2.1", 24, "10.9.2.255"));
        t = tap_free(t);
        CHECK_EQ_INT(netlink_link_index(nl, "smtest2"), -ENODEV);
}

static void test_names(struct netlink *nl) {
        struct tap sentinel, *t = &sentinel;
        struct config_address a = addr4("10.9.3.1", 24);

        CHECK_EQ_INT(tap_create("smtest-name-too-long", NULL, 1380, NULL, 0, &t), -EINVAL);
        CHECK_EQ_INT(tap_create("sixteen-chars-xx", NULL, 1380, NULL, 0, &t), -EINVAL);
        CHECK_EQ_INT(tap_create("", NULL, 1380, NULL, 0, &t), -EINVAL);
        CHECK_EQ_INT(tap_create(NULL, NULL, 1380, NULL, 0, &t), -EINVAL);
        CHECK_EQ_INT(tap_create("smtest3", NULL, 1380, NULL, 1, &t), -EINVAL);
        CHECK_EQ_INT(tap_create("smtest3", NULL, 1380, NULL, 0, NULL), -EINVAL);
        /* Names the kernel refuses. */
        CHECK_EQ_INT(tap_create("bad/name", NULL, 1380, NULL, 0, &t), -EINVAL);
        CHECK_EQ_INT(tap_create("bad name", NULL, 1380, NULL, 0, &t), -EINVAL);
        CHECK_EQ_INT(tap_create("..", NULL, 1380, NULL, 0, &t), -EINVAL);
        CHECK(t == &sentinel); /* ret_* untouched on failure */

        /* IFNAMSIZ - 1 characters is the longest name there is. */
        t = NULL;
        CHECK_EQ_INT(tap_create("smtest012345678", NULL, 1380, &a, 1, &t), 0);
        if (t) {
                CHECK(strcmp(t->name, "smtest012345678") == 0);
                CHECK_EQ_INT(netlink_link_index(nl, "smtest012345678"), t->ifindex);
                t = tap_free(t);
        }
        CHECK_EQ_INT(netlink_link_index(nl, "smtest012345678"), -ENODEV);

        /* A pattern lets the kernel pick the number; the struct names the real device. */
        t = NULL;
        CHECK_EQ_INT(tap_create("smpat%d", NULL, 1380, NULL, 0, &t), 0);
        if (t) {
                CHECK(strcmp(t->name, "smpat0") == 0);
                CHECK_EQ_INT(netlink_link_index(nl, "smpat0"), t->ifindex);
                t = tap_free(t);
        }
        CHECK_EQ_INT(netlink_link_index(nl, "smpat0"), -ENODEV);
}

static void test_removed_elsewhere(struct netlink *nl) {
        struct tap *t = NULL;
        int ifindex, on = 1;
        struct link_state ls;

        /* Deleted under us: free still works, the name is free again. */
        CHECK_EQ_INT(tap_create("smtest4", NULL, 1380, NULL, 0, &t), 0);
        if (!t)
                return;
        CHECK_EQ_INT(netlink_link_delete(nl, t->ifindex), 0);
        CHECK_EQ_INT(netlink_link_index(nl, "smtest4"), -ENODEV);
        t = tap_free(t);
        CHECK_EQ_INT(tap_create("smtest4", NULL, 1380, NULL, 0, &t), 0);
        t = tap_free(t);
        CHECK_EQ_INT(netlink_link_index(nl, "smtest4"), -ENODEV);

        /* Made persistent meanwhile (closing the fd no longer removes it): free deletes it. */
        CHECK_EQ_INT(tap_create("smtest5", NULL, 1380, NULL, 0, &t), 0);
        if (!t)
                return;
        ifindex = t->ifindex;
        CHECK_EQ_INT(ioctl(t->fd, TUNSETPERSIST, on), 0);
        t = tap_free(t);
        CHECK_EQ_INT(netlink_link_index(nl, "smtest5"), -ENODEV);
        link_state(ifindex, &ls);
        CHECK(!ls.found);
}

/* Flags of the TAP queue fd (TUNGETIFF): IFF_MULTI_QUEUE, and IFF_DETACH_QUEUE for a detached
 * queue. */
static int queue_flags(int fd) {
        struct ifreq ifr = {};

        return ioctl(fd, TUNGETIFF, &ifr) < 0 ? -errno : (unsigned short) ifr.ifr_flags;
}

/* Several queues (network.threads): one attached fd per queue and one detached fd to write
 * through; all gone with the device on free. One queue is the plain TAP, as before. */
static void test_queues(struct netlink *nl) {
        struct tap *t = NULL;
        int f;

        CHECK_EQ_INT(tap_create_queues("smtestq", NULL, 1380, NULL, 0, 0, 0, &t), -EINVAL);
        CHECK_EQ_INT(tap_create_queues("smtestq", NULL, 1380, NULL, 0, 0, TAP_MAX_QUEUES + 1, &t),
                     -EINVAL);
        CHECK(!t);
        CHECK_EQ_INT(netlink_link_index(nl, "smtestq"), -ENODEV);

        CHECK_EQ_INT(tap_create_queues("smtestq", NULL, 1380, NULL, 0, TAP_OFFLOAD, 3, &t), 0);
        if (!t)
                return;
        CHECK_EQ_INT(t->n_queues, 3);
        CHECK_EQ_INT(t->queue_fd[0], t->fd);
        CHECK(t->vnet_hdr);
        for (unsigned i = 0; i < 3; i++) {
                CHECK(t->queue_fd[i] >= 0);
                CHECK(t->write_fd != t->queue_fd[i]);
                for (unsigned j = 0; j < i; j++)
                        CHECK(t->queue_fd[i] != t->queue_fd[j]);
                f = queue_flags(t->queue_fd[i]);
                CHECKF(f > 0 && (f & IFF_MULTI_QUEUE) && (f & IFF_VNET_HDR) &&
                               !(f & IFF_DETACH_QUEUE),
                       "queue %u flags %#x", i, (unsigned) f);
        }
        f = queue_flags(t->write_fd);
        CHECKF(f > 0 && (f & IFF_MULTI_QUEUE) && (f & IFF_DETACH_QUEUE), "write queue flags %#x",
               (unsigned) f);
        t = tap_free(t);
        CHECK_EQ_INT(netlink_link_index(nl, "smtestq"), -ENODEV);

        CHECK_EQ_INT(tap_create_queues("smtestq", NULL, 1380, NULL, 0, 0, 1, &t), 0);
        if (!t)
                return;
        CHECK_EQ_INT(t->n_queues, 1);
        CHECK_EQ_INT(t->write_fd, t->fd);
        f = queue_flags(t->fd);
        CHECKF(f > 0 && !(f & IFF_MULTI_QUEUE), "single queue flags %#x", (unsigned) f);
        t = tap_free(t);
        CHECK_EQ_INT(netlink_link_index(nl, "smtestq"), -ENODEV);
}

/* Without CAP_NET_ADMIN (root otherwise): -EPERM, and nothing created. */
static void test_no_capability(struct netlink *nl) {
        int status = -1;
        pid_t pid = fork();

        if (pid < 0)
                abort();
        if (pid == 0) {
                struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3};
                struct __user_cap_data_struct data[2] = {};
                struct config_address a = addr4("10.9.6.1", 24);
                struct tap *t = NULL;
                int r;

                if (syscall(SYS_capget, &hdr, data) < 0)
                        _exit(2);
                data[CAP_NET_ADMIN / 32].effective &= ~(1u << (CAP_NET_ADMIN % 32));
                if (syscall(SYS_capset, &hdr, data) < 0)
                        _exit(3);
                r = tap_create("smtest6", NULL, 1380, &a, 1, &t);
                if (r != -EPERM) {
                        fprintf(stderr, "tap_create without CAP_NET_ADMIN: %d\n", r);
                        _exit(4);
                }
                if (netlink_link_set_up(nl, 1, false) != -EPERM)
                        _exit(5);
                _exit(0);
        }
        CHECK_EQ_INT(waitpid(pid, &status, 0), pid);
        CHECK(WIFEXITED(status));
        CHECK_EQ_INT(WEXITSTATUS(status), 0);
        CHECK_EQ_INT(netlink_link_index(nl, "smtest6"), -ENODEV);
}

int main(void) {
        struct netlink *nl = NULL;
        int r;

        if (geteuid() != 0) {
                printf("skip: needs root (a private network namespace and /dev/net/tun)\n");
                return 77;
        }
        /* Before anything else: every device below lives and dies in this namespace. */
        if (unshare(CLONE_NEWNET) < 0) {
                printf("skip: unshare(CLONE_NEWNET): %m\n");
                return 77;
        }
        if (access("/dev/net/tun", R_OK | W_OK) < 0) {
                printf("skip: /dev/net/tun: %m\n");
                return 77;
        }
        if (netlink_open(&nl) < 0) {
                printf("FAIL: netlink_open\n");
                return 1;
        }

        test_netlink(nl);
        test_create(nl);
        test_name_taken_by_tap(nl);
        test_name_taken_by_loopback(nl);
        test_failure_leaves_nothing(nl);
        test_names(nl);
        test_removed_elsewhere(nl);
        test_queues(nl);
        test_no_capability(nl);
        r = test_summary();
        netlink_close(nl);
        return r;
}
