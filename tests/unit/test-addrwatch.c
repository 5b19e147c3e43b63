/* SPDX-License-Identifier: MIT */
/* Roaming's pure parts: decoding rtnetlink address notifications (netlink_parse_address), the
 * rule that says when our cached source address is wrong (addrwatch_source_stale), and the
 * source comparison under it (endpoint_source_is). */
#include <arpa/inet.h>
#include <libmnl/libmnl.h>
#include <linux/if_addr.h>
#include <linux/rtnetlink.h>
#include <string.h>

#include "addrwatch.h"
#include "netlink.h"
#include "tests.h"

/* ---- netlink_parse_address ---------------------------------------------------------------- */

struct msg {
        uint8_t buf[512] __attribute__((aligned(8)));
        struct nlmsghdr *nlh;
        struct ifaddrmsg *ifa;
};

static void msg_init(struct msg *m, uint16_t type, uint8_t family, uint32_t ifindex) {
        memset(m->buf, 0, sizeof(m->buf));
        m->nlh = mnl_nlmsg_put_header(m->buf);
        m->nlh->nlmsg_type = type;
        m->ifa = mnl_nlmsg_put_extra_header(m->nlh, sizeof(*m->ifa));
        m->ifa->ifa_family = family;
        m->ifa->ifa_index = ifindex;
        m->ifa->ifa_prefixlen = family == AF_INET ? 24 : 64;
        m->ifa->ifa_scope = RT_SCOPE_UNIVERSE;
}

static void put_addr(struct msg *m, uint16_t attr, int family, const char *text) {
        struct in6_addr a;

        if (inet_pton(family, text, &a) != 1)
                abort();
        mnl_attr_put(m->nlh, attr, family == AF_INET ? 4 : 16, &a);
}

static void test_parse(void) {
        struct netlink_address a;
        struct in_addr v4;
        struct in6_addr v6;
        struct msg m;

        /* IPv4 on a point-to-point link: IFA_ADDRESS is the far end, IFA_LOCAL is ours. */
        msg_init(&m, RTM_NEWADDR, AF_INET, 7);
        put_addr(&m, IFA_ADDRESS, AF_INET, "192.0.2.99");
        put_addr(&m, IFA_LOCAL, AF_INET, "192.0.2.11");
        CHECK_EQ_INT(netlink_parse_address(m.nlh, &a), 0);
        inet_pton(AF_INET, "192.0.2.11", &v4);
        CHECK(!a.removed);
        CHECK_EQ_INT(a.family, AF_INET);
        CHECK_EQ_INT(a.ifindex, 7);
        CHECK_EQ_INT(a.prefixlen, 24);
        CHECK_EQ_INT(a.scope, RT_SCOPE_UNIVERSE);
        CHECK(a.in.s_addr == v4.s_addr);

        /* IPv6, IFA_ADDRESS only; IFA_FLAGS carries the bits past the header's eight. */
        msg_init(&m, RTM_DELADDR, AF_INET6, 3);
        m.ifa->ifa_flags = IFA_F_TENTATIVE;
        put_addr(&m, IFA_ADDRESS, AF_INET6, "2001:db8::11");
        mnl_attr_put_u32(m.nlh, IFA_FLAGS, IFA_F_TENTATIVE | IFA_F_MANAGETEMPADDR);
        CHECK_EQ_INT(netlink_parse_address(m.nlh, &a), 0);
        inet_pton(AF_INET6, "2001:db8::11", &v6);
        CHECK(a.removed);
        CHECK_EQ_INT(a.family, AF_INET6);
        CHECK_EQ_INT(a.ifindex, 3);
        CHECK_EQ_INT(a.flags, IFA_F_TENTATIVE | IFA_F_MANAGETEMPADDR);
        CHECK_MEM(&a.in6, &v6, sizeof(v6));

        /* Without IFA_FLAGS, the header's flags. */
        msg_init(&m, RTM_NEWADDR, AF_INET6, 3);
        m.ifa->ifa_flags = IFA_F_DEPRECATED;
        put_addr(&m, IFA_ADDRESS, AF_INET6, "2001:db8::11");
        CHECK_EQ_INT(netlink_parse_address(m.nlh, &a), 0);
        CHECK_EQ_INT(a.flags, IFA_F_DEPRECATED);

        /* Not an address notification, or not a family we speak: not ours to judge. */
        msg_init(&m, RTM_NEWLINK, AF_INET, 3);
        CHECK_EQ_INT(netlink_parse_address(m.nlh, &a), -EOPNOTSUPP);
        msg_init(&m, RTM_NEWADDR, AF_PACKET, 3);
        put_addr(&m, IFA_ADDRESS, AF_INET, "192.0.2.1");
        CHECK_EQ_INT(netlink_parse_address(m.nlh, &a), -EOPNOTSUPP);

        /* Malformed: no address, an address of the other family's size, a short IFA_FLAGS, no
         * interface, a message too short for its header. a stays as it was. */
        memset(&a, 0x5a, sizeof(a));
        struct netlink_address before = a;
        msg_init(&m, RTM_NEWADDR, AF_INET, 3);
        CHECK_EQ_INT(netlink_parse_address(m.nlh, &a), -EBADMSG);
        msg_init(&m, RTM_NEWADDR, AF_INET, 3);
        put_addr(&m, IFA_ADDRESS, AF_INET6, "2001:db8::1");
        CHECK_EQ_INT(netlink_parse_address(m.nlh, &a), -EBADMSG);
        msg_init(&m, RTM_NEWADDR, AF_INET6, 3);
        put_addr(&m, IFA_ADDRESS, AF_INET6, "2001:db8::1");
        mnl_attr_put_u16(m.nlh, IFA_FLAGS, 1);
        CHECK_EQ_INT(netlink_parse_address(m.nlh, &a), -EBADMSG);
        msg_init(&m, RTM_NEWADDR, AF_INET, 0);
        put_addr(&m, IFA_LOCAL, AF_INET, "192.0.2.1");
        CHECK_EQ_INT(netlink_parse_address(m.nlh, &a), -EBADMSG);
        msg_init(&m, RTM_DELADDR, AF_INET, 3);
        m.nlh->nlmsg_len = (uint32_t) mnl_nlmsg_size(sizeof(struct ifaddrmsg)) - 1;
        CHECK_EQ_INT(netlink_parse_address(m.nlh, &a), -EBADMSG);
        CHECK_MEM(&a, &before, sizeof(a));
}

/* ---- addrwatch_source_stale --------------------------------------------------------------- */

/* An endpoint: the peer at `peer` (an IPv4 peer as v4-mapped, as the dual-stack socket sees
 * it), our source `src` ("" for none). */
static struct endpoint endpoint(const char *peer, const char *src) {
        struct endpoint e = {};
        struct in_addr v4;

        e.addr.in6.sin6_family = AF_INET6;
        e.addr.in6.sin6_port = htons(9001);
        e.len = sizeof(e.addr.in6);
        if (inet_pton(AF_INET, peer, &v4) == 1) {
                e.addr.in6.sin6_addr.s6_addr[10] = 0xff;
                e.addr.in6.sin6_addr.s6_addr[11] = 0xff;
                memcpy(&e.addr.in6.sin6_addr.s6_addr[12], &v4, 4);
        } else if (inet_pton(AF_INET6, peer, &e.addr.in6.sin6_addr) != 1)
                abort();
        if (inet_pton(AF_INET, src, &e.src.in) == 1)
                e.src.family = AF_INET;
        else if (inet_pton(AF_INET6, src, &e.src.in6) == 1)
                e.src.family = AF_INET6;
        return e;
}

static struct netlink_address event(bool removed, const char *addr, uint8_t scope, uint32_t flags) {
        struct netlink_address a = {
                .removed = removed, .ifindex = 2, .scope = scope, .flags = flags};

        if (inet_pton(AF_INET, addr, &a.in) == 1)
                a.family = AF_INET;
        else if (inet_pton(AF_INET6, addr, &a.in6) == 1)
                a.family = AF_INET6;
        else
                abort();
        return a;
}

static void test_source_stale(void) {
        enum { G = RT_SCOPE_UNIVERSE, L = RT_SCOPE_LINK };
        static const struct {
                const char *peer, *src;
                bool removed;
                const char *addr;
                uint8_t scope;
                uint32_t flags;
                bool stale;
                const char *why;
        } cases[] = {
                {"192.0.2.2", "192.0.2.1", true, "192.0.2.1", G, 0, true, "our source removed"},
                {"192.0.2.2", "192.0.2.1", true, "192.0.2.7", G, 0, false, "another one removed"},
                {"192.0.2.2", "192.0.2.1", false, "192.0.2.11", G, 0, false, "another one added"},
                {"192.0.2.2", "192.0.2.1", false, "192.0.2.1", G, 0, false,
                 "ours refreshed: still the best answer to where the peer reached us"},
                {"192.0.2.2", "", true, "192.0.2.1", G, 0, false, "nothing cached"},
                {"2001:db8::2", "2001:db8::1", false, "2001:db8::1", G, IFA_F_DEPRECATED, true,
                 "ours deprecated"},
                {"2001:db8::2", "2001:db8::1", false, "2001:db8::1", G, IFA_F_TENTATIVE, true,
                 "ours tentative again (link went down and up)"},
                {"2001:db8::2", "2001:db8::1", false, "2001:db8::1", G, IFA_F_DADFAILED, true,
                 "ours failed DAD"},
                {"2001:db8::2", "2001:db8::1", true, "2001:db8::1", G, 0, true, "IPv6 removed"},
                {"2001:db8::2", "2001:db8::1", true, "192.0.2.1", G, 0, false, "other family"},
                {"2001:db8::2", "fe80::1", false, "2001:db8::11", G, 0, true,
                 "a global address replaces the stopgap link-local source"},
                {"2001:db8::2", "fe80::1", false, "2001:db8::11", G, IFA_F_TENTATIVE, false,
                 "... only once it is usable"},
                {"2001:db8::2", "fe80::1", true, "2001:db8::11", G, 0, false,
                 "... and not when one goes away"},
                {"2001:db8::2", "fe80::1", false, "fe80::2", L, 0, false,
                 "... and not for another link-local one"},
                {"fe80::2", "fe80::1", false, "2001:db8::11", G, 0, false,
                 "a link-local peer keeps its link-local source"},
                {"192.0.2.2", "192.0.2.1", false, "2001:db8::11", G, 0, false,
                 "an IPv6 address says nothing of an IPv4 source"},
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                struct endpoint e = endpoint(cases[i].peer, cases[i].src);
                struct netlink_address a =
                        event(cases[i].removed, cases[i].addr, cases[i].scope, cases[i].flags);
                bool got = addrwatch_source_stale(&e, &a);

                CHECKF(got == cases[i].stale, "case %zu (%s): got %d", i, cases[i].why, got);
        }
}

static void test_source_is(void) {
        struct endpoint e = endpoint("192.0.2.2", "192.0.2.1");
        struct in_addr v4;
        struct in6_addr v6 = {};

        inet_pton(AF_INET, "192.0.2.1", &v4);
        CHECK(endpoint_source_is(&e, AF_INET, &v4));
        CHECK(!endpoint_source_is(&e, AF_INET6, &v6));
        /* A v4-mapped source (IPV6_PKTINFO of an IPv4 datagram) is the same address. */
        e.src.family = AF_INET6;
        inet_pton(AF_INET6, "::ffff:192.0.2.1", &e.src.in6);
        CHECK(endpoint_source_is(&e, AF_INET, &v4));
        inet_pton(AF_INET, "192.0.2.3", &v4);
        CHECK(!endpoint_source_is(&e, AF_INET, &v4));
        inet_pton(AF_INET6, "2001:db8::1", &v6);
        e.src.in6 = v6;
        CHECK(endpoint_source_is(&e, AF_INET6, &v6));
        e.src.family = 0;
        CHECK(!endpoint_source_is(&e, AF_INET6, &v6));
}

int main(void) {
        test_parse();
        test_source_stale();
        test_source_is();
        return test_summary();
}
