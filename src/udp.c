/* SPDX-License-Identifier: MIT */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/udp.h>
#include <stdio.h>

#include <systemd/sd-daemon.h>

#include "log.h"
#include "udp.h"
#include "util.h"

/* Big socket buffers keep bursts from being dropped between two recvmmsg calls. Root may exceed
 * net.core.rmem_max with SO_*BUFFORCE; otherwise the plain option gets what it can. */
#define UDP_SOCKET_BUFFER (4 * 1024 * 1024)

static void set_buffers(int fd) {
        int size = UDP_SOCKET_BUFFER;

        if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) < 0)
                (void) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
        if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof(size)) < 0)
                (void) setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
}

/* Ask for the destination address of every datagram (IP_PKTINFO for IPv4, also for v4-mapped
 * traffic on a dual-stack socket; IPV6_RECVPKTINFO for IPv6), to answer from it. */
static void enable_pktinfo(int fd, int family) {
        int one = 1;

        (void) setsockopt(fd, SOL_IP, IP_PKTINFO, &one, sizeof(one));
        if (family == AF_INET6)
                (void) setsockopt(fd, SOL_IPV6, IPV6_RECVPKTINFO, &one, sizeof(one));
}

void udp_read_pktinfo(struct msghdr *mh, struct endpoint *e) {
        e->src.family = 0;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
                if (c->cmsg_level == SOL_IP && c->cmsg_type == IP_PKTINFO &&
                    c->cmsg_len >= CMSG_LEN(sizeof(struct in_pktinfo))) {
                        struct in_pktinfo pi;
                        memcpy(&pi, CMSG_DATA(c), sizeof(pi));
                        e->src.family = AF_INET;
                        e->src.in = pi.ipi_addr;
                        e->src.ifindex = pi.ipi_ifindex;
                } else if (c->cmsg_level == SOL_IPV6 && c->cmsg_type == IPV6_PKTINFO &&
                           c->cmsg_len >= CMSG_LEN(sizeof(struct in6_pktinfo))) {
                        struct in6_pktinfo pi;
                        memcpy(&pi, CMSG_DATA(c), sizeof(pi));
                        e->src.family = AF_INET6;
                        e->src.in6 = pi.ipi6_addr;
                        e->src.ifindex = (int) pi.ipi6_ifindex;
                }
        }
}

int udp_set_gro(int fd, bool on) {
        int v = on;

        if (setsockopt(fd, SOL_UDP, UDP_GRO, &v, sizeof(v)) < 0)
                return -errno;
        return 0;
}

size_t udp_read_gro(struct msghdr *mh) {
        for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c))
                if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO &&
                    c->cmsg_len >= CMSG_LEN(sizeof(int))) {
                        int size;
                        memcpy(&size, CMSG_DATA(c), sizeof(size));
                        return size > 0 ? (size_t) size : 0;
                }
        return 0;
}

size_t udp_write_segment(void *buf, size_t controllen, uint16_t segment_size) {
        struct cmsghdr *c = (struct cmsghdr *) ((uint8_t *) buf + controllen);

        memset(c, 0, CMSG_SPACE(sizeof(segment_size)));
        c->cmsg_level = SOL_UDP;
        c->cmsg_type = UDP_SEGMENT;
        c->cmsg_len = CMSG_LEN(sizeof(segment_size));
        memcpy(CMSG_DATA(c), &segment_size, sizeof(segment_size));
        return controllen + CMSG_SPACE(sizeof(segment_size));
}

size_t udp_write_pktinfo(const struct endpoint *e, void *buf) {
        struct cmsghdr *c = buf;

        memset(buf, 0, UDP_PKTINFO_SPACE);
        if (e->src.family == AF_INET) {
                /* ipi_spec_dst sets the source address; the interface stays the routing's. */
                struct in_pktinfo pi = { .ipi_spec_dst = e->src.in };
                c->cmsg_level = SOL_IP;
                c->cmsg_type = IP_PKTINFO;
                c->cmsg_len = CMSG_LEN(sizeof(pi));
                memcpy(CMSG_DATA(c), &pi, sizeof(pi));
                return CMSG_SPACE(sizeof(pi));
        }
        if (e->src.family == AF_INET6) {
                struct in6_pktinfo pi = { .ipi6_addr = e->src.in6 };
                /* A link-local source only exists on its own link. */
                if (IN6_IS_ADDR_LINKLOCAL(&e->src.in6))
                        pi.ipi6_ifindex = (unsigned) e->src.ifindex;
                c->cmsg_level = SOL_IPV6;
                c->cmsg_type = IPV6_PKTINFO;
                c->cmsg_len = CMSG_LEN(sizeof(pi));
                memcpy(CMSG_DATA(c), &pi, sizeof(pi));
                return CMSG_SPACE(sizeof(pi));
        }
        return 0;
}

bool endpoint_same_source(const struct endpoint *a, const struct endpoint *b) {
        if (a->src.family != b->src.family)
                return false;
        if (a->src.family == AF_INET)
                return a->src.in.s_addr == b->src.in.s_addr;
        if (a->src.family == AF_INET6)
                return memcmp(&a->src.in6, &b->src.in6, sizeof(a->src.in6)) == 0;
        return true;
}

bool endpoint_source_is(const struct endpoint *e, int family, const void *addr) {
        struct in_addr v4;

        if (e->src.family == AF_INET6 && family == AF_INET6)
                return memcmp(&e->src.in6, addr, sizeof(e->src.in6)) == 0;
        if (family != AF_INET)
                return false;
        memcpy(&v4, addr, sizeof(v4));
        if (e->src.family == AF_INET)
                return e->src.in.s_addr == v4.s_addr;
        return e->src.family == AF_INET6 && IN6_IS_ADDR_V4MAPPED(&e->src.in6) &&
               memcmp(&e->src.in6.s6_addr[12], &v4, sizeof(v4)) == 0;
}

void udp_log_send_error(struct log_ratelimit *rl, uint64_t now, const char *what,
                        const struct endpoint *to, int error, uint64_t packets) {
        char buf[ENDPOINT_STRLEN], src[INET6_ADDRSTRLEN + 8] = "";
        unsigned suppressed = 0;

        if (!log_ratelimit_below(rl, now, &suppressed))
                return;
        if (to->src.family == AF_INET || to->src.family == AF_INET6) {
                strcpy(src, " from ");
                inet_ntop(to->src.family, &to->src.in6, src + 6, sizeof(src) - 6);
        }
        log_warning_errno(error, "cannot send to %s %s%s: %m (%llu packet%s dropped%s)", what,
                          endpoint_to_string(to, buf), src, (unsigned long long) packets,
                          packets == 1 ? "" : "s", suppressed ? "; more suppressed" : "");
}

static bool host_is_any(const char *host) {
        return !host || !*host || strcmp(host, "0.0.0.0") == 0 || strcmp(host, "::") == 0 ||
               strcmp(host, "*") == 0;
}

/* One socket of family bound to sa; IPv6 wildcard sockets get IPV6_V6ONLY set to v6only. */
static int open_one(int family, const union sockaddr_union *sa, socklen_t salen, int v6only,
                    int *ret_fd) {
        _cleanup_close_ int fd = -EBADF;

        fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_UDP);
        if (fd < 0)
                return -errno;
        if (v6only >= 0 &&
            setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof(v6only)) < 0)
                return -errno;
        set_buffers(fd);
        enable_pktinfo(fd, family);
        if (bind(fd, &sa->sa, salen) < 0)
                return -errno;
        *ret_fd = TAKE_FD(fd);
        return 0;
}

int udp_open(const char *host, uint16_t port, int *ret_fd, int *ret_fd4, int *ret_family) {
        _cleanup_close_ int fd = -EBADF, fd4 = -EBADF;
        union sockaddr_union sa = {}, sa4 = {};
        int family, r;

        sa4.in.sin_family = AF_INET;
        sa4.in.sin_port = htons(port);
        if (host_is_any(host)) {
                /* Every address: an IPv6-only socket and an IPv4 one on the same port. IPv4
                 * then takes the kernel's IPv4 path both ways instead of the dual-stack
                 * socket's v4-mapped one (bench/README.md: 2-5 us per round trip). */
                family = AF_INET6;
                sa.in6.sin6_family = AF_INET6;
                sa.in6.sin6_addr = in6addr_any;
                sa.in6.sin6_port = htons(port);
                r = open_one(AF_INET6, &sa, sizeof(sa.in6), ret_fd4 ? 1 : 0, &fd);
                if (r == -EAFNOSUPPORT) {
                        /* No IPv6 in this kernel: IPv4 only. */
                        family = AF_INET;
                        r = open_one(AF_INET, &sa4, sizeof(sa4.in), -1, &fd);
                } else if (r >= 0 && ret_fd4)
                        r = open_one(AF_INET, &sa4, sizeof(sa4.in), -1, &fd4);
        } else if (inet_pton(AF_INET, host, &sa4.in.sin_addr) == 1) {
                family = AF_INET;
                r = open_one(AF_INET, &sa4, sizeof(sa4.in), -1, &fd);
        } else if (inet_pton(AF_INET6, host, &sa.in6.sin6_addr) == 1) {
                family = AF_INET6;
                sa.in6.sin6_family = AF_INET6;
                sa.in6.sin6_port = htons(port);
                r = open_one(AF_INET6, &sa, sizeof(sa.in6), -1, &fd);
        } else
                return -EINVAL; /* listen addresses are numeric */
        if (r < 0)
                return r;

        *ret_fd = TAKE_FD(fd);
        if (ret_fd4)
                *ret_fd4 = TAKE_FD(fd4);
        *ret_family = family;
        return 0;
}

int udp_pick(const struct udp_sockets *s, const struct endpoint *to, union sockaddr_union *ret_sa,
             socklen_t *ret_len) {
        if (s->fd4 >= 0 && to->addr.sa.sa_family == AF_INET6 &&
            IN6_IS_ADDR_V4MAPPED(&to->addr.in6.sin6_addr)) {
                *ret_sa = (union sockaddr_union){ .in.sin_family = AF_INET,
                                                  .in.sin_port = to->addr.in6.sin6_port };
                memcpy(&ret_sa->in.sin_addr, &to->addr.in6.sin6_addr.s6_addr[12], 4);
                *ret_len = sizeof(ret_sa->in);
                return s->fd4;
        }
        memcpy(ret_sa, &to->addr, MIN((size_t) to->len, sizeof(*ret_sa)));
        *ret_len = to->len;
        return s->fd;
}

void udp_map_v4(union sockaddr_union *sa, socklen_t *len) {
        struct sockaddr_in in = sa->in;

        if (in.sin_family != AF_INET)
                return;
        *sa = (union sockaddr_union){ .in6.sin6_family = AF_INET6, .in6.sin6_port = in.sin_port };
        sa->in6.sin6_addr.s6_addr[10] = 0xff;
        sa->in6.sin6_addr.s6_addr[11] = 0xff;
        memcpy(&sa->in6.sin6_addr.s6_addr[12], &in.sin_addr, 4);
        *len = sizeof(sa->in6);
}

int udp_resolve(const char *host, uint16_t port, int family, struct endpoint *ret,
                int *ret_gai_error) {
        struct addrinfo hints = {
                .ai_socktype = SOCK_DGRAM,
                .ai_protocol = IPPROTO_UDP,
                .ai_flags = AI_NUMERICSERV | AI_ADDRCONFIG,
        }, *res = NULL;
        char portstr[8];
        int r;

        hints.ai_family = family == AF_INET ? AF_INET : AF_UNSPEC;
        snprintf(portstr, sizeof(portstr), "%u", port);
        r = getaddrinfo(host, portstr, &hints, &res);
        if (r == EAI_ADDRFAMILY || r == EAI_NONAME) {
                /* AI_ADDRCONFIG hides literal addresses on hosts with only loopback; retry. */
                hints.ai_flags &= ~AI_ADDRCONFIG;
                r = getaddrinfo(host, portstr, &hints, &res);
        }
        if (r != 0) {
                if (ret_gai_error)
                        *ret_gai_error = r;
                return r == EAI_SYSTEM ? -errno : -EADDRNOTAVAIL;
        }

        /* Prefer the first IPv4 result when dual-stack (the prototype's peers are IPv4), else the
         * first result of a family the socket can reach. */
        struct addrinfo *pick = NULL;
        for (struct addrinfo *ai = res; ai; ai = ai->ai_next)
                if (ai->ai_family == AF_INET) {
                        pick = ai;
                        break;
                }
        if (!pick && family == AF_INET6)
                for (struct addrinfo *ai = res; ai; ai = ai->ai_next)
                        if (ai->ai_family == AF_INET6) {
                                pick = ai;
                                break;
                        }
        if (!pick) {
                freeaddrinfo(res);
                if (ret_gai_error)
                        *ret_gai_error = EAI_ADDRFAMILY;
                return -EAFNOSUPPORT;
        }

        struct endpoint e = {};
        memcpy(&e.addr, pick->ai_addr, pick->ai_addrlen);
        e.len = pick->ai_addrlen;
        if (family == AF_INET6)
                udp_map_v4(&e.addr, &e.len); /* a dual-stack socket's form */
        freeaddrinfo(res);
        *ret = e;
        return 0;
}

/* The IPv4 address of an AF_INET or v4-mapped AF_INET6 sockaddr, or NULL. */
static const uint8_t *v4_bytes(const union sockaddr_union *u, uint16_t *ret_port) {
        if (u->sa.sa_family == AF_INET) {
                *ret_port = u->in.sin_port;
                return (const uint8_t *) &u->in.sin_addr;
        }
        if (u->sa.sa_family == AF_INET6 && IN6_IS_ADDR_V4MAPPED(&u->in6.sin6_addr)) {
                *ret_port = u->in6.sin6_port;
                return &u->in6.sin6_addr.s6_addr[12];
        }
        return NULL;
}

bool endpoint_equal(const struct endpoint *a, const struct endpoint *b) {
        if (a->via_relay != b->via_relay || (a->via_relay && a->relay_slot != b->relay_slot))
                return false;
        return endpoint_same_address(a, b);
}

bool endpoint_same_address(const struct endpoint *a, const struct endpoint *b) {
        uint16_t pa = 0, pb = 0;
        const uint8_t *va, *vb;

        if (a->len == 0 || b->len == 0)
                return a->len == b->len;
        va = v4_bytes(&a->addr, &pa);
        vb = v4_bytes(&b->addr, &pb);
        if (va || vb)
                return va && vb && pa == pb && memcmp(va, vb, 4) == 0;
        return a->addr.sa.sa_family == AF_INET6 && b->addr.sa.sa_family == AF_INET6 &&
               a->addr.in6.sin6_port == b->addr.in6.sin6_port &&
               memcmp(&a->addr.in6.sin6_addr, &b->addr.in6.sin6_addr, 16) == 0 &&
               a->addr.in6.sin6_scope_id == b->addr.in6.sin6_scope_id;
}

const char *endpoint_to_string(const struct endpoint *e, char *buf) {
        char addr[INET6_ADDRSTRLEN];
        uint16_t port = 0;
        const uint8_t *v4;

        if (e->len == 0) {
                strcpy(buf, "(none)");
                return buf;
        }
        v4 = v4_bytes(&e->addr, &port);
        if (v4) {
                inet_ntop(AF_INET, v4, addr, sizeof(addr));
                snprintf(buf, ENDPOINT_STRLEN, "%s%s:%u", e->via_relay ? "relay " : "", addr,
                         ntohs(port));
        } else {
                inet_ntop(AF_INET6, &e->addr.in6.sin6_addr, addr, sizeof(addr));
                snprintf(buf, ENDPOINT_STRLEN, "%s[%s]:%u", e->via_relay ? "relay " : "", addr,
                         ntohs(e->addr.in6.sin6_port));
        }
        return buf;
}

int udp_adopt(int fd, int *ret_family, uint16_t *ret_port) {
        union sockaddr_union sa = {};
        socklen_t len = sizeof(sa);
        int flags;

        if (getsockname(fd, &sa.sa, &len) < 0)
                return -errno;
        if (sa.sa.sa_family != AF_INET && sa.sa.sa_family != AF_INET6)
                return -EAFNOSUPPORT;
        flags = fcntl(fd, F_GETFL);
        if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0 ||
            fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
                return -errno;
        set_buffers(fd);
        enable_pktinfo(fd, sa.sa.sa_family);
        *ret_family = sa.sa.sa_family;
        *ret_port = ntohs(sa.sa.sa_family == AF_INET ? sa.in.sin_port : sa.in6.sin6_port);
        return 0;
}

int udp_take_activation_socket(int *ret_fd, int *ret_family, uint16_t *ret_port) {
        int n, fd = SD_LISTEN_FDS_START, r;

        n = sd_listen_fds(true);
        if (n < 0)
                return log_error_errno(n, "reading the sockets passed by the service manager: %m");
        if (n == 0)
                return 0;
        if (n > 1)
                return log_error_errno(EINVAL, "expected one socket from socket activation, got %d",
                                       n);
        if (sd_is_socket(fd, AF_UNSPEC, SOCK_DGRAM, -1) <= 0)
                return log_error_errno(EINVAL, "the socket passed by the service manager is not a "
                                               "UDP socket");
        r = udp_adopt(fd, ret_family, ret_port);
        if (r < 0)
                return log_error_errno(r, "adopting the socket passed by the service manager: %m");
        *ret_fd = fd;
        return 1;
}
