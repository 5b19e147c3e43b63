/* SPDX-License-Identifier: MIT */
/* TAI64N encoding against values worked out by hand (2^62 + 10 + seconds, big-endian; the
 * nanoseconds rounded down to a multiple of 2^24), its order, and the realtime clock. */
#include <stdlib.h>
#include <string.h>

#include "tai64n.h"
#include "tests.h"

static void check_encoding(time_t sec, long nsec, const char *hex) {
        struct timespec ts = {.tv_sec = sec, .tv_nsec = nsec};
        uint8_t out[NOISE_TIMESTAMP_LEN];
        size_t n;
        uint8_t *expect = test_unhex(hex, &n);

        memset(out, 0xaa, sizeof(out));
        tai64n_from_timespec(out, &ts);
        CHECK_EQ_INT(n, NOISE_TIMESTAMP_LEN);
        CHECKF(memcmp(out, expect, NOISE_TIMESTAMP_LEN) == 0, "%lld.%09ld", (long long) sec, nsec);
        free(expect);
}

static void stamp(uint8_t out[NOISE_TIMESTAMP_LEN], time_t sec, long nsec) {
        struct timespec ts = {.tv_sec = sec, .tv_nsec = nsec};
        tai64n_from_timespec(out, &ts);
}

static void test_known_values(void) {
        check_encoding(0, 0, "400000000000000a00000000");
        check_encoding(1, 999999999, "400000000000000b3b000000");
        check_encoding(1700000000, 123456789, "400000006553f10a07000000");
        check_encoding(4102444800, 16777216, "40000000f486570a01000000"); /* 2100-01-01 */
        check_encoding(-1, 16777215, "400000000000000900000000");
        /* Every nanosecond value below 2^24 is the same timestamp. */
        check_encoding(0, 1, "400000000000000a00000000");
        check_encoding(0, (1 << 24) - 1, "400000000000000a00000000");
        check_encoding(0, 1 << 24, "400000000000000a01000000");
        check_encoding(0, 3 * (1 << 24) + 12345, "400000000000000a03000000");
}

static void test_order(void) {
        uint8_t a[12], b[12];

        stamp(a, 1000, 0);
        stamp(b, 999, 999999999);
        CHECK(tai64n_after(a, b));
        CHECK(!tai64n_after(b, a));
        CHECK(!tai64n_after(a, a));
        /* Within one 2^24 ns step: equal, so a replayed-or-too-fast initiation is not newer. */
        stamp(a, 1000, 5);
        stamp(b, 1000, (1 << 24) - 1);
        CHECK(!tai64n_after(b, a));
        CHECK(!tai64n_after(a, b));
        stamp(b, 1000, 1 << 24);
        CHECK(tai64n_after(b, a));
        /* Seconds dominate nanoseconds; carries across bytes compare right. */
        stamp(a, 255, 999999999);
        stamp(b, 256, 0);
        CHECK(tai64n_after(b, a));
        stamp(a, 0xffffffffLL, 0);
        stamp(b, 0x100000000LL, 0);
        CHECK(tai64n_after(b, a));
        CHECK(!tai64n_after(a, b));
        /* Before 1970 still orders below after. */
        stamp(a, -100, 0);
        stamp(b, 0, 0);
        CHECK(tai64n_after(b, a));

        /* A strictly increasing sequence of realistic times stays increasing. */
        unsigned increasing = 0;
        uint8_t prev[12];
        stamp(prev, 1700000000, 0);
        for (unsigned i = 1; i <= 1000; i++) {
                uint8_t cur[12];
                uint64_t ns = (uint64_t) i * 20000000; /* one per 20 ms: the rate limit */
                stamp(cur, 1700000000 + (time_t) (ns / 1000000000), (long) (ns % 1000000000));
                increasing += tai64n_after(cur, prev);
                memcpy(prev, cur, 12);
        }
        CHECK_EQ_INT(increasing, 1000);
}

static void test_now(void) {
        struct timespec t0, t1;
        uint8_t before[12], now[12], after[12];

        clock_gettime(CLOCK_REALTIME, &t0);
        tai64n_now(now);
        clock_gettime(CLOCK_REALTIME, &t1);
        tai64n_from_timespec(before, &t0);
        tai64n_from_timespec(after, &t1);
        CHECK(!tai64n_after(before, now));
        CHECK(!tai64n_after(now, after));
        CHECK_EQ_INT(now[0], 0x40);
        CHECK_EQ_INT(get_be32(now + 8) & 0xffffff, 0);
        CHECK(get_be32(now + 8) < 1000000000);
}

int main(void) {
        test_known_values();
        test_order();
        test_now();
        return test_summary();
}
