/* SPDX-License-Identifier: MIT */
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sodium.h>
#include <string.h>

#include "candidate.h"

void candidate_from_sockaddr(struct relay_candidate *c, const struct sockaddr *sa) {
        memset(c, 0, sizeof(*c));
        if (sa->sa_family == AF_INET) {
                const struct sockaddr_in *in = (const struct sockaddr_in *) sa;
                c->family = RELAY_CANDIDATE_IPV4;
                memcpy(c->addr, &in->sin_addr, 4);
                c->port_be = in->sin_port;
        } else if (sa->sa_family == AF_INET6) {
                const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *) sa;
                if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
                        c->family = RELAY_CANDIDATE_IPV4;
                        memcpy(c->addr, &in6->sin6_addr.s6_addr[12], 4);
                } else {
                        c->family = RELAY_CANDIDATE_IPV6;
                        memcpy(c->addr, &in6->sin6_addr, 16);
                }
                c->port_be = in6->sin6_port;
        }
}

bool endpoint_from_candidate(const struct relay_candidate *c, int family,
                                    struct endpoint *ret) {
        struct endpoint e = {};

        if (c->family == RELAY_CANDIDATE_IPV4 && family == AF_INET) {
                e.addr.in.sin_family = AF_INET;
                memcpy(&e.addr.in.sin_addr, c->addr, 4);
                e.addr.in.sin_port = c->port_be;
                e.len = sizeof(e.addr.in);
        } else if (c->family == RELAY_CANDIDATE_IPV4 && family == AF_INET6) {
                e.addr.in6.sin6_family = AF_INET6;
                e.addr.in6.sin6_addr.s6_addr[10] = 0xff;
                e.addr.in6.sin6_addr.s6_addr[11] = 0xff;
                memcpy(&e.addr.in6.sin6_addr.s6_addr[12], c->addr, 4);
                e.addr.in6.sin6_port = c->port_be;
                e.len = sizeof(e.addr.in6);
        } else if (c->family == RELAY_CANDIDATE_IPV6 && family == AF_INET6) {
                e.addr.in6.sin6_family = AF_INET6;
                memcpy(&e.addr.in6.sin6_addr, c->addr, 16);
                e.addr.in6.sin6_port = c->port_be;
                e.len = sizeof(e.addr.in6);
        } else
                return false;
        if (c->port_be == 0)
                return false;
        *ret = e;
        return true;
}

bool relay_candidate_acceptable(const struct relay_candidate *c) {
        const uint8_t *a = c->addr;

        if (c->port_be == 0)
                return false;
        if (c->family == RELAY_CANDIDATE_IPV6) {
                static const uint8_t mapped[12] = {[10] = 0xff, [11] = 0xff};
                static const uint8_t loopback[16] = {[15] = 1};

                if (sodium_is_zero(a, 16) || memcmp(a, loopback, 16) == 0 || a[0] == 0xff ||
                    (a[0] == 0xfe && (a[1] & 0xc0) == 0x80))
                        return false;
                if (memcmp(a, mapped, 12) != 0)
                        return true;
                a += 12; /* an IPv4-mapped address: judged as IPv4 */
        } else if (c->family != RELAY_CANDIDATE_IPV4)
                return false;
        return a[0] != 0 && a[0] != 127 && a[0] < 224 && !(a[0] == 169 && a[1] == 254);
}

bool candidate_in(const struct relay_candidate *c, const struct relay_candidate *list, size_t n) {
        for (size_t i = 0; i < n; i++)
                if (memcmp(&list[i], c, sizeof(*c)) == 0)
                        return true;
        return false;
}

size_t candidates_gather(const struct endpoint *public, const char *tap_name, int family,
                         uint16_t port, struct relay_candidate *out, size_t max) {
        struct ifaddrs *ifa = NULL;
        size_t n = 0;

        if (public && public->len && n < max)
                candidate_from_sockaddr(&out[n++], &public->addr.sa);
        if (getifaddrs(&ifa) < 0)
                return n;
        for (struct ifaddrs *i = ifa; i && n < max; i = i->ifa_next) {
                struct relay_candidate c;

                if (!i->ifa_addr || (i->ifa_flags & IFF_LOOPBACK) || !(i->ifa_flags & IFF_UP) ||
                    strcmp(i->ifa_name, tap_name ? tap_name : "") == 0)
                        continue;
                if (i->ifa_addr->sa_family == AF_INET6) {
                        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *) i->ifa_addr;
                        if (IN6_IS_ADDR_LINKLOCAL(&in6->sin6_addr) || family != AF_INET6)
                                continue;
                } else if (i->ifa_addr->sa_family != AF_INET)
                        continue;
                candidate_from_sockaddr(&c, i->ifa_addr);
                c.port_be = htons(port);
                if (relay_candidate_acceptable(&c) && !candidate_in(&c, out, n))
                        out[n++] = c;
        }
        freeifaddrs(ifa);
        return n;
}
