/* SPDX-License-Identifier: MIT */
/*
 * rtnetlink over libmnl. Every call is one request sent with NLM_F_ACK on a private NETLINK_ROUTE
 * socket, then a blocking read until the kernel's acknowledgement for exactly that request
 * arrives: the kernel answers rtnetlink requests synchronously, so this never waits long.
 *
 * Replies are accepted only from the kernel (sender port id 0), addressed to our port id and
 * carrying the sequence number of the request; anything else is skipped. An NLMSG_ERROR with a
 * non-zero code becomes that -errno; the kernel's extended-ack text, when present, is logged at
 * debug level so a failure can be explained without changing what the caller sees.
 */
#include <arpa/inet.h>
#include <libmnl/libmnl.h>
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <time.h>

#include "log.h"
#include "netlink.h"
#include "util.h"

/* MNL_SOCKET_BUFFER_SIZE is a run-time expression (min(page size, 8192)) and would make every
 * buffer a VLA; its upper bound is a constant and also what the kernel itself recommends for
 * reading rtnetlink replies without truncation. */
enum { NETLINK_BUFFER_SIZE = 8192 };

struct netlink {
        struct mnl_socket *sock;
        uint32_t portid;
        uint32_t seq;
};

int netlink_open(struct netlink **ret) {
        struct netlink *nl;
        int one = 1;

        if (!ret)
                return -EINVAL;

        nl = calloc(1, sizeof(*nl));
        if (!nl)
                return -ENOMEM;

        nl->sock = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC);
        if (!nl->sock) {
                int r = -errno;
                free(nl);
                return r;
        }
        if (mnl_socket_bind(nl->sock, 0, MNL_SOCKET_AUTOPID) < 0) {
                int r = -errno;
                netlink_close(nl);
                return r;
        }
        nl->portid = mnl_socket_get_portid(nl->sock);
        /* Start at an arbitrary point so a reply meant for an earlier socket that happened to
         * get our port id cannot match by accident. */
        nl->seq = (uint32_t) time(NULL);

        /* Both are best effort (kernels >= 4.12 and >= 4.3): the error text is only for debug
         * logs, and capping the error message keeps an error reply as small as an ack. */
        (void) mnl_socket_setsockopt(nl->sock, NETLINK_EXT_ACK, &one, sizeof(one));
        (void) mnl_socket_setsockopt(nl->sock, NETLINK_CAP_ACK, &one, sizeof(one));

        *ret = nl;
        return 0;
}

struct netlink *netlink_close(struct netlink *nl) {
        if (!nl)
                return NULL;
        if (nl->sock)
                mnl_socket_close(nl->sock);
        free(nl);
        return NULL;
}

static int extack_attr_cb(const struct nlattr *attr, void *data) {
        const char **msg = data;

        if (mnl_attr_get_type(attr) == NLMSGERR_ATTR_MSG &&
            mnl_attr_validate(attr, MNL_TYPE_NUL_STRING) >= 0)
                *msg = mnl_attr_get_str(attr);
        return MNL_CB_OK;
}

/* The code of an NLMSG_ERROR (0 for an ack), or -EBADMSG when it is malformed. */
static int parse_error(const struct nlmsghdr *nlh) {
        const struct nlmsgerr *err;
        const char *msg = NULL;

        if (nlh->nlmsg_len < mnl_nlmsg_size(sizeof(struct nlmsgerr)))
                return -EBADMSG;
        err = mnl_nlmsg_get_payload(nlh);
        if (err->error > 0)
                return -EBADMSG;

        if (nlh->nlmsg_flags & NLM_F_ACK_TLVS) {
                /* The TLVs follow the echoed request, or only its header when capped. */
                size_t offset = sizeof(*err);

                bool ok = true;

                if (!(nlh->nlmsg_flags & NLM_F_CAPPED)) {
                        ok = err->msg.nlmsg_len >= sizeof(struct nlmsghdr);
                        if (ok)
                                offset += err->msg.nlmsg_len - sizeof(struct nlmsghdr);
                }
                if (ok && offset <= mnl_nlmsg_get_payload_len(nlh))
                        (void) mnl_attr_parse(nlh, (unsigned) offset, extack_attr_cb, &msg);
        }
        if (err->error < 0 && msg)
                log_debug_errno(err->error, "netlink: %m (kernel: %s)", msg);
        return err->error;
}

typedef int (*reply_fn)(const struct nlmsghdr *nlh, void *userdata);

/*
 * Send req (NLM_F_REQUEST|NLM_F_ACK added) and read until its ack or error. Each other message
 * answering it goes to on_reply, whose first error is kept and returned after the ack.
 */
/* One datagram from the netlink socket into buf: its length, or -ENOMSG when it came from a
 * process rather than the kernel (any process may unicast to our port: only the kernel's word
 * counts; *ret_sender, if given, names that port), -EMSGSIZE when it was cut short, or -errno
 * (-EINTR, -EAGAIN with MSG_DONTWAIT). Shared by requests and the address monitor. */
static ssize_t recv_from_kernel(int fd, void *buf, size_t size, int flags, uint32_t *ret_sender) {
        struct sockaddr_nl sender = {};
        struct iovec iov = {.iov_base = buf, .iov_len = size};
        struct msghdr mh = {
                .msg_name = &sender,
                .msg_namelen = sizeof(sender),
                .msg_iov = &iov,
                .msg_iovlen = 1,
        };
        ssize_t n = recvmsg(fd, &mh, flags);

        if (n < 0)
                return -errno;
        if (mh.msg_flags & MSG_TRUNC)
                return -EMSGSIZE;
        if (mh.msg_namelen != sizeof(sender) || sender.nl_pid != 0) {
                if (ret_sender)
                        *ret_sender = sender.nl_pid;
                return -ENOMSG;
        }
        return n;
}

static int netlink_call(struct netlink *nl, struct nlmsghdr *req, reply_fn on_reply,
                        void *userdata) {
        uint8_t buf[NETLINK_BUFFER_SIZE] __attribute__((aligned(8)));
        int reply_r = 0;
        ssize_t n;

        if (++nl->seq == 0) /* 0 marks kernel notifications; never use it for a request */
                nl->seq = 1;
        req->nlmsg_flags |= NLM_F_REQUEST | NLM_F_ACK;
        req->nlmsg_seq = nl->seq;
        req->nlmsg_pid = nl->portid;

        n = mnl_socket_sendto(nl->sock, req, req->nlmsg_len);
        if (n < 0)
                return -errno;
        if ((size_t) n != req->nlmsg_len)
                return -EIO;

        for (;;) {
                const struct nlmsghdr *nlh;
                uint32_t sender;
                int len;

                n = recv_from_kernel(mnl_socket_get_fd(nl->sock), buf, sizeof(buf), 0, &sender);
                if (n == -EINTR)
                        continue;
                if (n == -ENOMSG) {
                        log_debug("netlink: dropping a message from port %u", sender);
                        continue;
                }
                if (n < 0)
                        return (int) n;

                len = (int) n;
                for (nlh = (const struct nlmsghdr *) buf; mnl_nlmsg_ok(nlh, len);
                     nlh = mnl_nlmsg_next(nlh, &len)) {
                        int r;

                        if (nlh->nlmsg_seq != nl->seq || nlh->nlmsg_pid != nl->portid) {
                                log_debug("netlink: skipping message seq %u port %u (want %u %u)",
                                          nlh->nlmsg_seq, nlh->nlmsg_pid, nl->seq, nl->portid);
                                continue;
                        }
                        switch (nlh->nlmsg_type) {
                        case NLMSG_ERROR:
                                r = parse_error(nlh);
                                return r < 0 ? r : reply_r;
                        case NLMSG_DONE:
                                /* Only dumps end this way, and we send none; an ack follows. */
                        case NLMSG_NOOP:
                                continue;
                        case NLMSG_OVERRUN:
                                return -EOVERFLOW;
                        default:
                                if (on_reply && reply_r == 0)
                                        reply_r = on_reply(nlh, userdata);
                        }
                }
        }
}

static int link_index_cb(const struct nlmsghdr *nlh, void *userdata) {
        const struct ifinfomsg *ifi;
        int *ifindex = userdata;

        if (nlh->nlmsg_type != RTM_NEWLINK)
                return 0;
        if (mnl_nlmsg_get_payload_len(nlh) < sizeof(*ifi))
                return -EBADMSG;
        ifi = mnl_nlmsg_get_payload(nlh);
        if (ifi->ifi_index <= 0)
                return -EBADMSG;
        *ifindex = ifi->ifi_index;
        return 0;
}

static struct nlmsghdr *put_link_header(void *buf, uint16_t type, int ifindex,
                                        struct ifinfomsg **ret_ifi) {
        struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
        struct ifinfomsg *ifi;

        nlh->nlmsg_type = type;
        ifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifi));
        ifi->ifi_family = AF_UNSPEC;
        ifi->ifi_index = ifindex;
        if (ret_ifi)
                *ret_ifi = ifi;
        return nlh;
}

int netlink_link_index(struct netlink *nl, const char *name) {
        uint8_t buf[NETLINK_BUFFER_SIZE] __attribute__((aligned(8)));
        struct nlmsghdr *nlh;
        int ifindex = 0, r;

        if (!nl || !name || name[0] == '\0' || strlen(name) >= IFNAMSIZ)
                return -EINVAL;

        nlh = put_link_header(buf, RTM_GETLINK, 0, NULL);
        mnl_attr_put_strz(nlh, IFLA_IFNAME, name);
        /* Only the index is wanted: leave the statistics out of the reply. */
        mnl_attr_put_u32(nlh, IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);

        r = netlink_call(nl, nlh, link_index_cb, &ifindex);
        if (r < 0)
                return r;
        if (ifindex <= 0)
                return -EBADMSG; /* acked, yet no link in the answer */
        return ifindex;
}

int netlink_link_set_mtu(struct netlink *nl, int ifindex, uint32_t mtu) {
        uint8_t buf[NETLINK_BUFFER_SIZE] __attribute__((aligned(8)));
        struct nlmsghdr *nlh;

        if (!nl || ifindex <= 0)
                return -EINVAL;

        nlh = put_link_header(buf, RTM_NEWLINK, ifindex, NULL);
        mnl_attr_put_u32(nlh, IFLA_MTU, mtu);
        return netlink_call(nl, nlh, NULL, NULL);
}

int netlink_link_set_mac(struct netlink *nl, int ifindex, const uint8_t mac[6]) {
        uint8_t buf[NETLINK_BUFFER_SIZE] __attribute__((aligned(8)));
        struct nlmsghdr *nlh;

        if (!nl || ifindex <= 0 || !mac)
                return -EINVAL;

        nlh = put_link_header(buf, RTM_NEWLINK, ifindex, NULL);
        mnl_attr_put(nlh, IFLA_ADDRESS, 6, mac);
        return netlink_call(nl, nlh, NULL, NULL);
}

int netlink_link_set_txqlen(struct netlink *nl, int ifindex, uint32_t txqlen) {
        uint8_t buf[NETLINK_BUFFER_SIZE] __attribute__((aligned(8)));
        struct nlmsghdr *nlh;

        if (!nl || ifindex <= 0)
                return -EINVAL;

        nlh = put_link_header(buf, RTM_NEWLINK, ifindex, NULL);
        mnl_attr_put_u32(nlh, IFLA_TXQLEN, txqlen);
        return netlink_call(nl, nlh, NULL, NULL);
}

int netlink_link_set_up(struct netlink *nl, int ifindex, bool up) {
        uint8_t buf[NETLINK_BUFFER_SIZE] __attribute__((aligned(8)));
        struct ifinfomsg *ifi;
        struct nlmsghdr *nlh;

        if (!nl || ifindex <= 0)
                return -EINVAL;

        nlh = put_link_header(buf, RTM_NEWLINK, ifindex, &ifi);
        /* ifi_change says which flags to touch: only IFF_UP, all others stay as they are. */
        ifi->ifi_change = IFF_UP;
        ifi->ifi_flags = up ? IFF_UP : 0;
        return netlink_call(nl, nlh, NULL, NULL);
}

int netlink_address_add(struct netlink *nl, int ifindex, int family, const void *addr,
                        uint8_t prefixlen) {
        uint8_t buf[NETLINK_BUFFER_SIZE] __attribute__((aligned(8)));
        struct ifaddrmsg *ifa;
        struct nlmsghdr *nlh;

        if (!nl || ifindex <= 0 || !addr)
                return -EINVAL;
        if (family != AF_INET && family != AF_INET6)
                return -EAFNOSUPPORT;
        if (prefixlen > (family == AF_INET ? 32 : 128))
                return -EINVAL;

        nlh = mnl_nlmsg_put_header(buf);
        nlh->nlmsg_type = RTM_NEWADDR;
        /* EXCL: an address that is already there is reported (-EEXIST), never replaced. */
        nlh->nlmsg_flags = NLM_F_CREATE | NLM_F_EXCL;
        ifa = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifa));
        ifa->ifa_family = (uint8_t) family;
        ifa->ifa_prefixlen = prefixlen;
        ifa->ifa_scope = RT_SCOPE_UNIVERSE;
        ifa->ifa_index = (uint32_t) ifindex;

        if (family == AF_INET) {
                struct in_addr a, brd;

                memcpy(&a, addr, sizeof(a));
                /* On a point-to-point link, IFA_ADDRESS would be the peer; on our Ethernet
                 * segment it is the same as the local address. */
                mnl_attr_put(nlh, IFA_LOCAL, sizeof(a), &a);
                mnl_attr_put(nlh, IFA_ADDRESS, sizeof(a), &a);
                /* /31 (RFC 3021) and /32 have no broadcast address. */
                if (prefixlen < 31) {
                        uint32_t mask = prefixlen == 0 ? 0 : ~UINT32_C(0) << (32 - prefixlen);

                        brd.s_addr = a.s_addr | htonl(~mask);
                        mnl_attr_put(nlh, IFA_BROADCAST, sizeof(brd), &brd);
                }
        } else {
                /* The segment is ours and the addresses come from the configuration: skip
                 * duplicate address detection so the address is usable at once instead of
                 * staying tentative (unbindable) for a second or more after the link is up. */
                ifa->ifa_flags = IFA_F_NODAD;
                mnl_attr_put(nlh, IFA_ADDRESS, sizeof(struct in6_addr), addr);
        }
        return netlink_call(nl, nlh, NULL, NULL);
}

int netlink_link_delete(struct netlink *nl, int ifindex) {
        uint8_t buf[NETLINK_BUFFER_SIZE] __attribute__((aligned(8)));
        struct nlmsghdr *nlh;

        if (!nl || ifindex <= 0)
                return -EINVAL;

        nlh = put_link_header(buf, RTM_DELLINK, ifindex, NULL);
        return netlink_call(nl, nlh, NULL, NULL);
}

/* ---- the address monitor --------------------------------------------------------------------- */

struct address_attrs {
        const struct nlattr *local, *address, *flags;
};

static int address_attr_cb(const struct nlattr *attr, void *data) {
        struct address_attrs *t = data;

        switch (mnl_attr_get_type(attr)) {
        case IFA_LOCAL:
                t->local = attr;
                break;
        case IFA_ADDRESS:
                t->address = attr;
                break;
        case IFA_FLAGS:
                if (mnl_attr_validate(attr, MNL_TYPE_U32) < 0)
                        return MNL_CB_ERROR;
                t->flags = attr;
                break;
        default:
                break;
        }
        return MNL_CB_OK;
}

int netlink_parse_address(const struct nlmsghdr *nlh, struct netlink_address *ret) {
        const struct ifaddrmsg *ifa;
        struct address_attrs t = {};
        struct netlink_address a = {};
        const struct nlattr *addr;
        size_t len;

        if (!nlh || !ret)
                return -EINVAL;
        if (nlh->nlmsg_type != RTM_NEWADDR && nlh->nlmsg_type != RTM_DELADDR)
                return -EOPNOTSUPP;
        if (nlh->nlmsg_len < mnl_nlmsg_size(sizeof(*ifa)))
                return -EBADMSG;
        ifa = mnl_nlmsg_get_payload(nlh);
        if (ifa->ifa_family == AF_INET)
                len = sizeof(struct in_addr);
        else if (ifa->ifa_family == AF_INET6)
                len = sizeof(struct in6_addr);
        else
                return -EOPNOTSUPP;
        if (mnl_attr_parse(nlh, sizeof(*ifa), address_attr_cb, &t) < 0)
                return -EBADMSG;
        /* IFA_ADDRESS is the far end on a point-to-point link; IFA_LOCAL, when present, is
         * always ours. */
        addr = t.local ? t.local : t.address;
        if (!addr || mnl_attr_get_payload_len(addr) != len || ifa->ifa_index == 0 ||
            ifa->ifa_index > INT32_MAX)
                return -EBADMSG;

        a.removed = nlh->nlmsg_type == RTM_DELADDR;
        a.family = ifa->ifa_family;
        a.ifindex = (int) ifa->ifa_index;
        a.flags = t.flags ? mnl_attr_get_u32(t.flags) : ifa->ifa_flags;
        a.scope = ifa->ifa_scope;
        a.prefixlen = ifa->ifa_prefixlen;
        memcpy(&a.in6, mnl_attr_get_payload(addr), len);
        *ret = a;
        return 0;
}

/* Room for a burst of notifications (an interface going down removes all its addresses at once)
 * between two turns of the event loop; past it the kernel drops them and says ENOBUFS. */
enum {
        NETLINK_MONITOR_RCVBUF = 256 * 1024,
        NETLINK_MONITOR_READS = 64, /* datagrams per netlink_monitor_read() call */
};

struct netlink_monitor {
        struct mnl_socket *sock;
};

int netlink_monitor_open(struct netlink_monitor **ret) {
        static const unsigned groups[] = {RTNLGRP_IPV4_IFADDR, RTNLGRP_IPV6_IFADDR};
        struct netlink_monitor *m;
        int size = NETLINK_MONITOR_RCVBUF, fd, r;

        if (!ret)
                return -EINVAL;
        m = calloc(1, sizeof(*m));
        if (!m)
                return -ENOMEM;
        m->sock = mnl_socket_open2(NETLINK_ROUTE, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (!m->sock) {
                r = -errno;
                free(m);
                return r;
        }
        if (mnl_socket_bind(m->sock, 0, MNL_SOCKET_AUTOPID) < 0)
                goto fail;
        for (size_t i = 0; i < ELEMENTSOF(groups); i++)
                if (mnl_socket_setsockopt(m->sock, NETLINK_ADD_MEMBERSHIP, (void *) &groups[i],
                                          sizeof(groups[i])) < 0)
                        goto fail;
        fd = mnl_socket_get_fd(m->sock);
        if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) < 0)
                (void) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
        *ret = m;
        return 0;
fail:
        r = -errno;
        netlink_monitor_close(m);
        return r;
}

struct netlink_monitor *netlink_monitor_close(struct netlink_monitor *m) {
        if (!m)
                return NULL;
        if (m->sock)
                mnl_socket_close(m->sock);
        free(m);
        return NULL;
}

int netlink_monitor_fd(const struct netlink_monitor *m) {
        return m ? mnl_socket_get_fd(m->sock) : -EBADF;
}

int netlink_monitor_read(struct netlink_monitor *m, netlink_address_fn on_address, void *userdata) {
        uint8_t buf[NETLINK_BUFFER_SIZE] __attribute__((aligned(8)));

        if (!m || !on_address)
                return -EINVAL;
        for (unsigned i = 0; i < NETLINK_MONITOR_READS; i++) {
                const struct nlmsghdr *nlh;
                ssize_t n;
                int len;

                n = recv_from_kernel(mnl_socket_get_fd(m->sock), buf, sizeof(buf), MSG_DONTWAIT,
                                     NULL);
                if (n == -EINTR || n == -ENOMSG)
                        continue;
                if (n == -EAGAIN)
                        return 0;
                /* A notification cut short is one we did not hear: the same as an overrun. */
                if (n == -EMSGSIZE)
                        return -ENOBUFS;
                if (n < 0)
                        return (int) n;

                len = (int) n;
                for (nlh = (const struct nlmsghdr *) buf; mnl_nlmsg_ok(nlh, len);
                     nlh = mnl_nlmsg_next(nlh, &len)) {
                        struct netlink_address a;
                        int r = netlink_parse_address(nlh, &a);

                        if (r == 0)
                                on_address(&a, userdata);
                        else if (r != -EOPNOTSUPP)
                                log_debug_errno(r, "netlink: ignoring a malformed address "
                                                   "notification: %m");
                }
        }
        return 1;
}
