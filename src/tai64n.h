/* SPDX-License-Identifier: MIT */
/* TAI64N timestamps (12 bytes, big-endian) for handshake initiations: a responder accepts an
 * initiation only if its timestamp is greater than the last one it accepted from that peer. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "messages.h"

/* Pure: encode a realtime timespec. Nanoseconds are rounded down to a multiple of 2^24 (~17 ms)
 * so that the timestamp does not leak the clock finely (as WireGuard does). */
void tai64n_from_timespec(uint8_t out[NOISE_TIMESTAMP_LEN], const struct timespec *ts);
/* Now, from CLOCK_REALTIME. */
void tai64n_now(uint8_t out[NOISE_TIMESTAMP_LEN]);
/* a > b, byte-wise big-endian (constant time is not needed: timestamps are not secret). */
bool tai64n_after(const uint8_t a[NOISE_TIMESTAMP_LEN], const uint8_t b[NOISE_TIMESTAMP_LEN]);
