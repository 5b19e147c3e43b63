/* SPDX-License-Identifier: MIT */
/* TAI64N (https://cr.yp.to/libtai/tai64.html): an 8-byte big-endian label 2^62 + 10 + seconds
 * (TAI was 10 s ahead of UTC in 1970; leap seconds since are ignored, as WireGuard does: only
 * the order matters) followed by 4 big-endian bytes of nanoseconds. */
#include <string.h>

#include "tai64n.h"

#define TAI64_EPOCH (UINT64_C(1) << 62)
#define TAI64_UTC_OFFSET 10
/* 2^24 ns: the largest power of two below NSEC_PER_SEC / INITIATIONS_PER_SECOND, so two
 * initiations allowed by the rate limit still get distinct timestamps most of the time, while
 * the timestamp no longer reveals the sender's clock to the nanosecond. */
#define TAI64N_NSEC_GRANULARITY (UINT32_C(1) << 24)

_Static_assert(TAI64N_NSEC_GRANULARITY <= NSEC_PER_SEC / INITIATIONS_PER_SECOND, "granularity");
_Static_assert(2 * TAI64N_NSEC_GRANULARITY > NSEC_PER_SEC / INITIATIONS_PER_SECOND, "power");

void tai64n_from_timespec(uint8_t out[NOISE_TIMESTAMP_LEN], const struct timespec *ts) {
        uint64_t secs = TAI64_EPOCH + TAI64_UTC_OFFSET + (uint64_t) ts->tv_sec;
        uint32_t nsec = (uint32_t) ts->tv_nsec & ~(TAI64N_NSEC_GRANULARITY - 1);

        put_be32(out, (uint32_t) (secs >> 32));
        put_be32(out + 4, (uint32_t) secs);
        put_be32(out + 8, nsec);
}

void tai64n_now(uint8_t out[NOISE_TIMESTAMP_LEN]) {
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        tai64n_from_timespec(out, &ts);
}

bool tai64n_after(const uint8_t a[NOISE_TIMESTAMP_LEN], const uint8_t b[NOISE_TIMESTAMP_LEN]) {
        return memcmp(a, b, NOISE_TIMESTAMP_LEN) > 0;
}
