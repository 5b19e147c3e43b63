/* SPDX-License-Identifier: MIT */
/* The learning switch's table: learning, ageing, moves, the cap, group addresses, forgetting a
 * port, and a reader racing the writer. */
#include <pthread.h>
#include <sodium.h>
#include <string.h>

#include "mactable.h"
#include "tests.h"

static void mac_of(uint32_t n, uint8_t mac[6]) {
        /* Locally administered unicast (02:...), as TAP devices' addresses are. */
        mac[0] = 0x02;
        mac[1] = 0x53;
        mac[2] = (uint8_t) (n >> 24);
        mac[3] = (uint8_t) (n >> 16);
        mac[4] = (uint8_t) (n >> 8);
        mac[5] = (uint8_t) n;
}

static void test_learn_lookup(void) {
        struct mactable t;
        uint8_t a[6], b[6];

        CHECK(mactable_init(&t, 16) == 0);
        mac_of(1, a);
        mac_of(2, b);
        CHECK_EQ_INT(mactable_lookup(&t, a, 1000), MACTABLE_PORT_NONE); /* unknown: flood */
        CHECK_EQ_INT(mactable_learn(&t, a, 7, 1000), 1);
        CHECK_EQ_INT(mactable_learn(&t, a, 7, 1001), 0); /* refresh */
        CHECK_EQ_INT(mactable_lookup(&t, a, 1001), 7);
        CHECK_EQ_INT(mactable_lookup(&t, b, 1001), MACTABLE_PORT_NONE);
        CHECK_EQ_INT(mactable_learn(&t, b, 9, 1001), 1);
        CHECK_EQ_INT(mactable_lookup(&t, b, 1001), 9);
        CHECK_EQ_INT(mactable_lookup(&t, a, 1001), 7);
        CHECK_EQ_INT(atomic_load(&t.stats.learned), 2);
        CHECK_EQ_INT(mactable_count_port(&t, 7, 1001), 1);
        mactable_done(&t);
}

static void test_group_and_zero_never_learned(void) {
        struct mactable t;
        static const uint8_t bcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
        static const uint8_t v6mcast[6] = {0x33, 0x33, 0x00, 0x00, 0x00, 0x01};
        static const uint8_t v4mcast[6] = {0x01, 0x00, 0x5e, 0x00, 0x00, 0xfb};
        static const uint8_t zero[6] = {0};

        CHECK(mactable_init(&t, 16) == 0);
        CHECK_EQ_INT(mactable_learn(&t, bcast, 1, 5), 0);
        CHECK_EQ_INT(mactable_learn(&t, v6mcast, 1, 5), 0);
        CHECK_EQ_INT(mactable_learn(&t, v4mcast, 1, 5), 0);
        CHECK_EQ_INT(mactable_learn(&t, zero, 1, 5), 0);
        /* Group destinations always flood. */
        CHECK_EQ_INT(mactable_lookup(&t, bcast, 5), MACTABLE_PORT_NONE);
        CHECK_EQ_INT(mactable_lookup(&t, v6mcast, 5), MACTABLE_PORT_NONE);
        CHECK_EQ_INT(mactable_lookup(&t, v4mcast, 5), MACTABLE_PORT_NONE);
        CHECK_EQ_INT(t.used, 0);
        mactable_done(&t);
}

static void test_ageing(void) {
        struct mactable t;
        uint8_t a[6];

        CHECK(mactable_init(&t, 16) == 0);
        mac_of(3, a);
        CHECK_EQ_INT(mactable_learn(&t, a, 4, 100), 1);
        CHECK_EQ_INT(mactable_lookup(&t, a, 100 + MACTABLE_AGEING_SEC - 1), 4);
        CHECK_EQ_INT(mactable_lookup(&t, a, 100 + MACTABLE_AGEING_SEC), MACTABLE_PORT_NONE);
        /* A frame refreshes the entry. */
        CHECK_EQ_INT(mactable_learn(&t, a, 4, 200), 0);
        CHECK_EQ_INT(mactable_lookup(&t, a, 200 + MACTABLE_AGEING_SEC - 1), 4);
        /* Seen again after ageing: learned anew, in the same slot. */
        CHECK_EQ_INT(mactable_learn(&t, a, 4, 200 + MACTABLE_AGEING_SEC + 5), 1);
        CHECK_EQ_INT(t.used, 1);
        /* Across the wrap of the 32-bit seconds. */
        CHECK_EQ_INT(mactable_learn(&t, a, 4, UINT32_MAX - 10), 1);
        CHECK_EQ_INT(mactable_lookup(&t, a, 20), 4);
        CHECK_EQ_INT(mactable_lookup(&t, a, UINT32_MAX - 10 + MACTABLE_AGEING_SEC),
                     MACTABLE_PORT_NONE);
        mactable_done(&t);
}

static void test_move(void) {
        struct mactable t;
        uint8_t a[6];

        CHECK(mactable_init(&t, 16) == 0);
        mac_of(4, a);
        CHECK_EQ_INT(mactable_learn(&t, a, 1, 10), 1);
        /* The address shows up behind another peer: it moves at once. */
        CHECK_EQ_INT(mactable_learn(&t, a, 2, 11), 2);
        CHECK_EQ_INT(mactable_lookup(&t, a, 11), 2);
        CHECK_EQ_INT(atomic_load(&t.stats.moved), 1);
        CHECK_EQ_INT(mactable_count_port(&t, 1, 11), 0);
        CHECK_EQ_INT(mactable_count_port(&t, 2, 11), 1);
        CHECK_EQ_INT(t.used, 1);
        mactable_done(&t);
}

static void test_cap(void) {
        enum { CAP = 100 };
        struct mactable t;
        uint8_t m[6];
        int refused = 0;

        CHECK(mactable_init(&t, CAP) == 0);
        for (uint32_t i = 0; i < CAP; i++) {
                mac_of(i + 1, m);
                CHECK_EQ_INT(mactable_learn(&t, m, i % 5, 50), 1);
        }
        /* At the cap: new addresses are refused and counted; old ones still resolve. */
        for (uint32_t i = CAP; i < CAP + 20; i++) {
                mac_of(i + 1, m);
                if (mactable_learn(&t, m, 1, 60) == -ENOSPC)
                        refused++;
                CHECK_EQ_INT(mactable_lookup(&t, m, 60), MACTABLE_PORT_NONE);
        }
        CHECK_EQ_INT(refused, 20);
        CHECK_EQ_INT(atomic_load(&t.stats.refused_full), 20);
        for (uint32_t i = 0; i < CAP; i++) {
                mac_of(i + 1, m);
                CHECK_EQ_INT(mactable_lookup(&t, m, 60), i % 5);
        }
        CHECK(t.used <= CAP);
        /* Once the old entries have aged out, new addresses take their slots. */
        int learned = 0;
        for (uint32_t i = CAP; i < CAP + 20; i++) {
                mac_of(i + 1, m);
                if (mactable_learn(&t, m, 3, 50 + MACTABLE_AGEING_SEC + 1) == 1)
                        learned++;
        }
        CHECKF(learned == 20, "only %d of 20 new addresses took aged slots", learned);
        CHECK(t.used <= CAP);
        mactable_done(&t);
}

static void test_forget_port(void) {
        struct mactable t;
        uint8_t a[6], b[6];

        CHECK(mactable_init(&t, 16) == 0);
        mac_of(10, a);
        mac_of(11, b);
        CHECK_EQ_INT(mactable_learn(&t, a, 5, 1), 1);
        CHECK_EQ_INT(mactable_learn(&t, b, 6, 1), 1);
        mactable_forget_port(&t, 5);
        CHECK_EQ_INT(mactable_lookup(&t, a, 2), MACTABLE_PORT_NONE);
        CHECK_EQ_INT(mactable_lookup(&t, b, 2), 6);
        /* The address comes back behind another peer: learned, not a move. */
        CHECK_EQ_INT(mactable_learn(&t, a, 6, 3), 1);
        CHECK_EQ_INT(mactable_lookup(&t, a, 3), 6);
        CHECK_EQ_INT(t.used, 2);
        mactable_done(&t);
}

static void test_bad_init(void) {
        struct mactable t;

        CHECK_EQ_INT(mactable_init(&t, 0), -EINVAL);
        CHECK_EQ_INT(mactable_init(&t, (size_t) MACTABLE_MAX_ENTRIES + 1), -EINVAL);
}

/* A reader looks addresses up while the writer keeps moving them between two ports and
 * learning new ones: a lookup may miss, but never names a port the address never had. */
struct race {
        struct mactable t;
        _Atomic bool stop;
        unsigned wrong, hits;
};

static void *reader(void *arg) {
        struct race *r = arg;
        uint8_t m[6];

        while (!atomic_load(&r->stop))
                for (uint32_t i = 0; i < 256; i++) {
                        uint32_t p;
                        mac_of(i + 1, m);
                        p = mactable_lookup(&r->t, m, 1);
                        if (p == MACTABLE_PORT_NONE)
                                continue;
                        r->hits++;
                        /* Address i only ever lives behind port 2i or 2i+1. */
                        if (p / 2 != i)
                                r->wrong++;
                }
        return NULL;
}

static void test_reader_race(void) {
        struct race r = {};
        pthread_t th;
        uint8_t m[6];

        CHECK(mactable_init(&r.t, 512) == 0);
        CHECK(pthread_create(&th, NULL, reader, &r) == 0);
        for (unsigned round = 0; round < 2000; round++)
                for (uint32_t i = 0; i < 256; i++) {
                        mac_of(i + 1, m);
                        mactable_learn(&r.t, m, 2 * i + (round & 1), 1);
                }
        atomic_store(&r.stop, true);
        pthread_join(th, NULL);
        CHECKF(r.wrong == 0, "%u of %u lookups named a wrong port", r.wrong, r.hits);
        mactable_done(&r.t);
}

/* Which frames look for a host (datapath.c asks a sessionless peer for a handshake only for
 * them). */
static void test_frame_seeks_host(void) {
        uint8_t f[80] = {};

        CHECK(!frame_seeks_host(f, 13)); /* shorter than a header */
        memcpy(f, (const uint8_t[]){ 0x02, 0, 0, 0, 0, 1 }, 6);
        CHECK(frame_seeks_host(f, 14)); /* unicast, whatever it carries */
        memset(f, 0xff, 6);
        f[12] = 0x08;
        f[13] = 0x06;
        CHECK(frame_seeks_host(f, 42)); /* ARP */
        f[13] = 0x00;
        CHECK(!frame_seeks_host(f, 60)); /* an IPv4 broadcast (DHCP, NetBIOS) */
        /* 802.1Q-tagged ARP. */
        f[12] = 0x81;
        f[13] = 0x00;
        f[16] = 0x08;
        f[17] = 0x06;
        CHECK(frame_seeks_host(f, 46));
        /* IPv6: ICMPv6 135 (neighbour solicitation) yes; 133 (router solicitation), 143 (MLDv2
         * report) no; too short to hold the type: no. */
        memcpy(f, (const uint8_t[]){ 0x33, 0x33, 0xff, 0, 0, 1 }, 6);
        f[12] = 0x86;
        f[13] = 0xdd;
        f[14 + 6] = 58;
        f[54] = 135;
        CHECK(frame_seeks_host(f, 78));
        CHECK(!frame_seeks_host(f, 54));
        f[54] = 133;
        CHECK(!frame_seeks_host(f, 70));
        f[54] = 143;
        CHECK(!frame_seeks_host(f, 70));
        f[54] = 135;
        f[14 + 6] = 0; /* behind a hop-by-hop header: MLD's way, not a solicitation's */
        CHECK(!frame_seeks_host(f, 78));
        /* mDNS over IPv4. */
        memcpy(f, (const uint8_t[]){ 0x01, 0, 0x5e, 0, 0, 0xfb }, 6);
        f[12] = 0x08;
        f[13] = 0x00;
        CHECK(!frame_seeks_host(f, 60));
}

int main(void) {
        if (sodium_init() < 0)
                return 1;
        test_learn_lookup();
        test_group_and_zero_never_learned();
        test_ageing();
        test_move();
        test_cap();
        test_forget_port();
        test_bad_init();
        test_reader_race();
        test_frame_seeks_host();
        return test_summary();
}
