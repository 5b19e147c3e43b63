/* SPDX-License-Identifier: MIT */
/* Per-source token buckets (ratelimit.c): the burst, the refill rate, sources kept apart (and an
 * IPv6 /64, a v4-mapped address, the port counted as one host), a forgotten source coming back
 * with a full bucket, and the table's hard cap holding against many sources. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "messages.h"
#include "ratelimit.h"
#include "tests.h"

#define T0 (UINT64_C(1000) * NSEC_PER_SEC)
#define COST (NSEC_PER_SEC / RATELIMIT_PACKETS_PER_SECOND)

static struct sockaddr_in v4(const char *addr, uint16_t port) {
        struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(port) };
        if (inet_pton(AF_INET, addr, &sin.sin_addr) != 1)
                abort();
        return sin;
}

static struct sockaddr_in6 v6(const char *addr, uint16_t port) {
        struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6, .sin6_port = htons(port) };
        if (inet_pton(AF_INET6, addr, &sin6.sin6_addr) != 1)
                abort();
        return sin6;
}

#define SA(x) ((const struct sockaddr *) &(x)), sizeof(x)

/* How many of n packets at time now get through. */
static unsigned allowed(struct ratelimit *rl, const struct sockaddr *sa, socklen_t len,
                        unsigned n, uint64_t now) {
        unsigned k = 0;
        for (unsigned i = 0; i < n; i++)
                k += ratelimit_allow(rl, sa, len, now);
        return k;
}

static void test_burst_and_rate(void) {
        _cleanup_(ratelimit_freep) struct ratelimit *rl = NULL;
        struct sockaddr_in a = v4("192.0.2.1", 9001), a2 = v4("192.0.2.1", 40000),
                           b = v4("192.0.2.2", 9001);

        CHECK_EQ_INT(ratelimit_new(&rl), 0);
        /* A burst, then nothing more at the same instant, whatever the port. */
        CHECK_EQ_INT(allowed(rl, SA(a), 100, T0), RATELIMIT_BURST);
        CHECK_EQ_INT(allowed(rl, SA(a2), 10, T0), 0);
        /* Another source has its own bucket. */
        CHECK_EQ_INT(allowed(rl, SA(b), 100, T0), RATELIMIT_BURST);
        /* One packet's worth of time buys one packet, not more. */
        CHECK_EQ_INT(allowed(rl, SA(a), 10, T0 + COST), 1);
        CHECK_EQ_INT(allowed(rl, SA(a), 10, T0 + COST + COST / 2), 0);
        /* Over a steady flood of one second, about the rate gets through. */
        unsigned total = 0;
        for (uint64_t t = T0 + 2 * COST; t < T0 + 2 * COST + NSEC_PER_SEC; t += NSEC_PER_SEC / 1000)
                total += allowed(rl, SA(a), 1, t);
        CHECKF(total >= RATELIMIT_PACKETS_PER_SECOND - 1 && total <= RATELIMIT_PACKETS_PER_SECOND + 1,
               "%u in one second", total);
        /* Quiet for a second: the bucket is full again (and the slot reusable). */
        CHECK_EQ_INT(allowed(rl, SA(a), 100, T0 + 10 * NSEC_PER_SEC), RATELIMIT_BURST);
        CHECK_EQ_INT(ratelimit_count(rl, T0 + 10 * NSEC_PER_SEC), 1);
        /* A clock that goes backwards is not a gift of tokens. */
        CHECK_EQ_INT(allowed(rl, SA(a), 100, T0 + 10 * NSEC_PER_SEC - 1), 0);
        CHECK_EQ_INT(allowed(rl, SA(a), 100, T0 + 5 * NSEC_PER_SEC), 0);
        CHECK_EQ_INT(allowed(rl, SA(a), 100, T0 + 10 * NSEC_PER_SEC + COST), 1);
}

static void test_families(void) {
        _cleanup_(ratelimit_freep) struct ratelimit *rl = NULL;
        struct sockaddr_in a = v4("198.51.100.7", 1);
        struct sockaddr_in6 mapped = v6("::ffff:198.51.100.7", 2), n1 = v6("2001:db8:1:2::1", 1),
                            n2 = v6("2001:db8:1:2:ffff::9", 1), other = v6("2001:db8:1:3::1", 1);

        CHECK_EQ_INT(ratelimit_new(&rl), 0);
        /* A v4-mapped address is that IPv4 host. */
        CHECK_EQ_INT(allowed(rl, SA(a), 100, T0), RATELIMIT_BURST);
        CHECK_EQ_INT(allowed(rl, SA(mapped), 100, T0), 0);
        /* One IPv6 /64 is one host. */
        CHECK_EQ_INT(allowed(rl, SA(n1), 100, T0), RATELIMIT_BURST);
        CHECK_EQ_INT(allowed(rl, SA(n2), 100, T0), 0);
        CHECK_EQ_INT(allowed(rl, SA(other), 100, T0), RATELIMIT_BURST);
        /* A short or foreign address shares one bucket instead of crashing or passing free. */
        struct sockaddr_in shortsa = a;
        CHECK_EQ_INT(allowed(rl, (const struct sockaddr *) &shortsa, 4, 100, T0), RATELIMIT_BURST);
        CHECK_EQ_INT(allowed(rl, NULL, 0, 100, T0), 0);
}

/* Many sources at once: the table never holds more than its cap, a source it has no room for
 * is refused (it cannot evict live ones), and known sources keep their buckets. */
static void test_table_cap(void) {
        _cleanup_(ratelimit_freep) struct ratelimit *rl = NULL;
        struct sockaddr_in known = v4("203.0.113.1", 9001);
        unsigned refused = 0;

        CHECK_EQ_INT(ratelimit_new(&rl), 0);
        CHECK(ratelimit_allow(rl, SA(known), T0));
        for (uint32_t i = 0; i < 4 * RATELIMIT_TABLE_SIZE; i++) {
                struct sockaddr_in s = { .sin_family = AF_INET,
                                         .sin_addr.s_addr = htonl(0x0a000000u + i) };
                refused += !ratelimit_allow(rl, SA(s), T0);
        }
        CHECK(ratelimit_count(rl, T0) <= RATELIMIT_TABLE_SIZE);
        CHECKF(refused >= 3 * RATELIMIT_TABLE_SIZE, "%u refused", refused);
        /* The known source still has its own (partly spent) bucket, not a fresh one. */
        CHECK_EQ_INT(allowed(rl, SA(known), 100, T0), RATELIMIT_BURST - 1);
        /* A second later every slot is free again. */
        struct sockaddr_in late = v4("10.255.0.1", 1);
        CHECK(ratelimit_allow(rl, SA(late), T0 + 2 * NSEC_PER_SEC));
        CHECK_EQ_INT(ratelimit_count(rl, T0 + 2 * NSEC_PER_SEC), 1);
}

int main(void) {
        if (sodium_init() < 0)
                return 1;
        test_burst_and_rate();
        test_families();
        test_table_cap();
        return test_summary();
}
