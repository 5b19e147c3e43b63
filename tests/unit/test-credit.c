/* SPDX-License-Identifier: MIT */
/* Per-source byte credit (credit.c): nothing granted before a source has sent the cost, never
 * more bytes granted than received over any sequence (no amplification), at most one grant per
 * CREDIT_INTERVAL_MS, sources (address and port) kept apart, a stored credit capped, and the
 * table's hard cap holding against many sources. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>

#include "credit.h"
#include "messages.h"
#include "tests.h"

#define T0 (UINT64_C(1000) * NSEC_PER_SEC)
#define COST sizeof(struct message_handshake_initiation)
#define MS NSEC_PER_MSEC

static struct sockaddr_in v4(const char *addr, uint16_t port) {
        struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(port) };
        if (inet_pton(AF_INET, addr, &sin.sin_addr) != 1)
                abort();
        return sin;
}

#define SA(x) ((const struct sockaddr *) &(x)), sizeof(x)

static void test_earn(void) {
        _cleanup_(credit_freep) struct credit *c = NULL;
        struct sockaddr_in a = v4("192.0.2.1", 9001), a2 = v4("192.0.2.1", 9002);
        struct sockaddr_in6 b = { .sin6_family = AF_INET6, .sin6_port = htons(9001) };
        struct sockaddr_un_like {
                sa_family_t family;
                char path[20];
        } unix_sa = { .family = AF_UNIX };

        CHECK_EQ_INT(credit_new(&c), 0);
        /* A keepalive-sized packet (32 B) at a time: the grant comes with the packet that
         * brings the total to the cost, not before. */
        unsigned n = 0;
        while (!credit_earn(c, SA(a), 32, COST, T0 + n * MS) && n < 100)
                n++;
        CHECK_EQ_INT(n + 1, (COST + 31) / 32);
        /* The same address, another port: another source. */
        CHECK(!credit_earn(c, SA(a2), COST - 1, COST, T0));
        CHECK(credit_earn(c, SA(a2), 1, COST, T0 + 2 * CREDIT_INTERVAL_MS * MS));
        /* IPv6 too. */
        CHECK(credit_earn(c, SA(b), COST, COST, T0));
        /* Nothing for what is neither. */
        CHECK(!credit_earn(c, (const struct sockaddr *) &unix_sa, sizeof(unix_sa), 10000, COST,
                           T0));
}

/* Whatever the sizes and timing, granted bytes never exceed received bytes, and grants are at
 * least CREDIT_INTERVAL_MS apart. */
static void test_no_amplification(void) {
        _cleanup_(credit_freep) struct credit *c = NULL;
        struct sockaddr_in a = v4("198.51.100.7", 40000);
        uint64_t received = 0, granted = 0, last = 0, t = T0;
        unsigned grants = 0;

        CHECK_EQ_INT(credit_new(&c), 0);
        srand(1);
        for (unsigned i = 0; i < 200000; i++) {
                size_t len = 32 + (size_t) (rand() % 1500);
                t += (uint64_t) (rand() % 20) * MS / 4;
                received += len;
                if (credit_earn(c, SA(a), len, COST, t)) {
                        granted += COST;
                        CHECKF(grants == 0 || t - last >= CREDIT_INTERVAL_MS * MS,
                               "grants %llu ns apart", (unsigned long long) (t - last));
                        last = t;
                        grants++;
                }
                if (granted > received) {
                        CHECKF(false, "granted %llu > received %llu", (unsigned long long) granted,
                               (unsigned long long) received);
                        break;
                }
        }
        CHECK(grants > 0);
        /* About one per interval under a steady stream, not more. */
        CHECK(grants <= (t - T0) / (CREDIT_INTERVAL_MS * MS) + 1);

        /* A long stream stores no more than a few initiations' worth: after 10 s of silence
         * with a full store, grants still come one per interval, not as a burst. */
        t += 10 * NSEC_PER_SEC;
        unsigned burst = 0;
        for (unsigned i = 0; i < 100; i++)
                burst += credit_earn(c, SA(a), 0, COST, t);
        CHECK_EQ_INT(burst, 1);
}

/* Many sources cannot grow the table: once full, new sources earn nothing until entries go
 * idle (CREDIT_IDLE_SEC). */
static void test_table_cap(void) {
        _cleanup_(credit_freep) struct credit *c = NULL;
        unsigned granted = 0;

        CHECK_EQ_INT(credit_new(&c), 0);
        for (unsigned i = 0; i < 100000; i++) {
                struct sockaddr_in s = { .sin_family = AF_INET, .sin_port = htons(1000),
                                         .sin_addr.s_addr = htonl(0x0a000000u + i) };
                granted += credit_earn(c, SA(s), COST, COST, T0);
        }
        CHECKF(granted <= CREDIT_TABLE_SIZE, "%u grants from a table of %u", granted,
               (unsigned) CREDIT_TABLE_SIZE);
        CHECK(granted >= CREDIT_TABLE_SIZE / 2);
        /* After the idle time the slots are free again. */
        struct sockaddr_in late = v4("203.0.113.9", 1);
        CHECK(credit_earn(c, SA(late), COST, COST,
                          T0 + (uint64_t) CREDIT_IDLE_SEC * NSEC_PER_SEC));
}

int main(void) {
        test_earn();
        test_no_amplification();
        test_table_cap();
        return test_summary();
}
